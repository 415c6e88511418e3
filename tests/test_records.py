"""Tests for lockwatch.records: @record behaves as @dataclass, class for class, without compiling a
__repr__ and an __eq__ for each."""
from __future__ import annotations

import dataclasses
import inspect
import os
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

import pytest

from lockwatch import model
from lockwatch.records import record


def twins(decorate: Any, doc: Optional[str] = None) -> dict[str, type]:
    """The same classes, made by ``decorate`` (@record or @dataclass); with ``doc``, each has
    that docstring (a record class with one is made a dataclass on first use)."""

    @decorate
    class Point:
        __doc__ = doc
        x: int
        y: int = 0
        tags: list[str] = field(default_factory=list)
        note: Optional[str] = field(default=None, repr=False, compare=False)
        KIND: ClassVar[str] = "point"

    @decorate
    class Named(Point):
        __doc__ = doc
        name: str = ""

    @decorate
    class Box:
        __doc__ = doc
        item: Any = None

    @decorate
    class Empty:
        __doc__ = doc

    @decorate
    class Own:
        __doc__ = doc
        a: int = 1

        def __repr__(self) -> str:
            return "own"

        def __eq__(self, other: object) -> bool:
            return True

        def __hash__(self) -> int:
            return 7

    return {"Point": Point, "Named": Named, "Box": Box, "Empty": Empty, "Own": Own}


MADE = twins(record)
REAL = twins(dataclass)

# (class name, args, kwargs) of instances that each kind of twin makes alike
SAMPLES = [
    ("Point", (1,), {}), ("Point", (1, 2), {"tags": ["a"]}), ("Point", (), {"x": 1, "note": "n"}),
    ("Named", (1,), {"name": "n"}), ("Named", (), {"x": 3, "y": 4, "tags": [], "note": None, "name": "m"}),
    ("Box", ("text",), {}), ("Box", (), {"item": [1, {"k": (2, 3)}]}), ("Box", (float("nan"),), {}),
    ("Empty", (), {}), ("Own", (5,), {}),
]


@pytest.mark.parametrize("name, args, kwargs", SAMPLES)
def test_a_record_is_built_shown_and_compared_as_a_dataclass(name: str, args: tuple, kwargs: dict) -> None:
    made, real = MADE[name](*args, **kwargs), REAL[name](*args, **kwargs)
    assert dataclasses.is_dataclass(made)
    assert vars(made) == vars(real) and list(vars(made)) == list(vars(real))  # same attributes, same order
    assert repr(made) == repr(real)  # both twins are twins.<locals>.<name>
    for other_args, other_kwargs in [(args, kwargs)] + [(a, k) for n, a, k in SAMPLES if n == name]:
        assert (made == MADE[name](*other_args, **other_kwargs)) == (real == REAL[name](*other_args, **other_kwargs))
        assert (made != MADE[name](*other_args, **other_kwargs)) == (real != REAL[name](*other_args, **other_kwargs))
    if name != "Own":  # (whose __eq__ says True to anything)
        assert (made == real) is (real == made) is False  # other classes, even with equal fields
    assert (MADE[name].__hash__ is None) == (REAL[name].__hash__ is None)
    if REAL[name].__hash__ is not None:
        assert hash(made) == hash(real)


def test_the_parts_dataclasses_gives_are_the_same() -> None:
    for name in MADE:
        made, real = MADE[name], REAL[name]
        assert [(f.name, f.default, f.repr, f.compare) for f in dataclasses.fields(made)] == \
               [(f.name, f.default, f.repr, f.compare) for f in dataclasses.fields(real)]
        assert inspect.signature(made) == inspect.signature(real)
        assert getattr(made, "__match_args__", None) == getattr(real, "__match_args__", None)
        assert (made.__hash__ is None) == (real.__hash__ is None)
    assert dataclasses.replace(MADE["Named"](1, name="a"), y=5) == MADE["Named"](1, 5, name="a")
    assert dataclasses.asdict(MADE["Point"](1, tags=["t"])) == {"x": 1, "y": 0, "tags": ["t"], "note": None}
    with pytest.raises(TypeError):
        MADE["Point"]()  # x is required, as in the dataclass
    with pytest.raises(TypeError):
        hash(MADE["Point"](1))


def test_the_repr_of_a_record_inside_itself() -> None:
    made, real = MADE["Box"](), REAL["Box"]()
    made.item, real.item = [made], [real]
    assert repr(made) == repr(real)
    assert repr(made).endswith("Box(item=[...])")


def test_every_class_of_the_model_is_a_record() -> None:
    classes = [c for c in vars(model).values()
               if isinstance(c, type) and c.__module__ == model.__name__ and dataclasses.is_dataclass(c)]
    assert len(classes) >= 18
    for cls in classes:
        assert cls.__repr__.__module__ == "lockwatch.records", cls
        assert cls.__eq__.__module__ == "lockwatch.records", cls
        assert cls.__hash__ is None, cls
    stats = model.LockStats(key="k", name="n", kind="Lock", filename="f.py", line=1, function="f")
    assert repr(stats).startswith("LockStats(key='k', name='n', kind='Lock', filename='f.py', line=1, ")
    assert stats == dataclasses.replace(stats) and stats != dataclasses.replace(stats, line=2)


def test_an_init_is_compiled_when_first_looked_up() -> None:
    """A record's __init__ is compiled when first needed: importing lockwatch.model compiles none
    of them, and makes none of the classes a dataclass yet; then each is a plain function of its
    class, dataclasses' own text for its fields."""
    probe = (
        "import dataclasses, inspect, lockwatch.model as m\n"
        "lazy = [c for c in vars(m).values() if isinstance(c, type) and\n"
        "        type(vars(c).get('__dataclass_fields__')).__name__ == '_OnFirstUse']\n"
        "print(len(lazy))\n"
        "records = [c for c in vars(m).values() if isinstance(c, type) and dataclasses.is_dataclass(c)]\n"
        "waiting = [c for c in records if type(vars(c)['__init__']).__name__ == '_InitOnFirstUse']\n"
        "m.LockStats(key='k', name='n', kind='Lock', filename='f.py', line=1, function='f')\n"
        "print(len(records), len(waiting), inspect.isfunction(vars(m.LockStats)['__init__']))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lazy, count, waiting, compiled = result.stdout.split()
    assert int(count) >= 18 and waiting == count == lazy and compiled == "True"
    made = twins(record)
    point = made["Point"](1, tags=["t"])
    init = vars(made["Point"])["__init__"]
    assert inspect.isfunction(init) and init.__qualname__.endswith("Point.__init__")
    assert (point.x, point.y, point.tags, point.note) == (1, 0, ["t"], None)
    assert made["Point"](1).tags is not made["Point"](1).tags  # a new list each time
    assert made["Named"].__doc__ == REAL["Named"].__doc__  # dataclasses' text, its own fields
    assert inspect.signature(made["Named"]) == inspect.signature(REAL["Named"])


def test_a_plain_subclass_of_a_record_gets_its_init() -> None:
    made = twins(record)

    class Sub(made["Point"]):  # type: ignore[misc,valid-type]
        pass

    sub = Sub(2, 3)
    assert (sub.x, sub.y, sub.tags) == (2, 3, []) and inspect.isfunction(vars(made["Point"])["__init__"])


# Each way a record class is first used, for classes made a dataclass on first use (documented).
FIRST_USES = {
    "fields": lambda made: dataclasses.fields(made["Named"]),
    "is_dataclass": lambda made: dataclasses.is_dataclass(made["Named"]),
    "instance": lambda made: made["Named"](1, name="a"),
    "signature": lambda made: inspect.signature(made["Named"]),
    "params": lambda made: made["Named"].__dataclass_params__,
    "plain subclass": lambda made: type("Sub", (made["Named"],), {})(1),
    "record subclass": lambda made: record(
        type("Sub", (made["Named"],), {"__doc__": "s", "__annotations__": {"z": "int"}, "z": 0}))(1, z=2),
}
if sys.version_info >= (3, 10):
    FIRST_USES["match_args"] = lambda made: made["Named"].__match_args__


@pytest.mark.parametrize("first", list(FIRST_USES))
def test_a_documented_record_is_made_a_dataclass_on_first_use(first: str) -> None:
    made, real = twins(record, doc="A class."), twins(dataclass, doc="A class.")
    assert all(type(vars(c)["__dataclass_fields__"]).__name__ == "_OnFirstUse" for c in made.values())
    FIRST_USES[first](made)
    assert isinstance(vars(made["Named"])["__dataclass_fields__"], dict)
    assert isinstance(vars(made["Point"])["__dataclass_fields__"], dict)  # its base, for its fields
    assert type(vars(made["Box"])["__dataclass_fields__"]).__name__ == "_OnFirstUse"  # not used yet
    for name, cls in made.items():
        assert cls.__doc__ == "A class."
        assert [(f.name, f.default, f.repr, f.compare) for f in dataclasses.fields(cls)] == \
               [(f.name, f.default, f.repr, f.compare) for f in dataclasses.fields(real[name])]
        assert inspect.signature(cls) == inspect.signature(real[name])
        assert getattr(cls, "__match_args__", None) == getattr(real[name], "__match_args__", None)
    for name, args, kwargs in SAMPLES:
        assert repr(made[name](*args, **kwargs)) == repr(real[name](*args, **kwargs))
        assert vars(made[name](*args, **kwargs)) == vars(real[name](*args, **kwargs))
    assert made["Point"](1).tags is not made["Point"](1).tags
    assert dataclasses.replace(made["Named"](1, name="a"), y=5) == made["Named"](1, 5, name="a")


def test_a_documented_record_compared_and_shown_before_anything_else() -> None:
    made, real = twins(record, doc="d"), twins(dataclass, doc="d")
    box = made["Box"].__new__(made["Box"])  # no __init__ either: == and repr read the fields themselves
    box.item = 3
    assert repr(box) == repr(real["Box"](3)) and box == made["Box"](3) and box != made["Box"](4)


def test_threads_making_one_record_a_dataclass_at_once_all_see_it_whole() -> None:
    """Threads use a new class first together, each in a different way: each sees the
    fields, defaults and factories of the class. Threads switch every microsecond meanwhile."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        _first_uses_together()
    finally:
        sys.setswitchinterval(interval)


def _first_uses_together() -> None:
    for _ in range(20):
        _first_use_together(twins(record, doc="d"))


def _first_use_together(made: dict[str, type]) -> None:
    barrier = threading.Barrier(len(FIRST_USES), timeout=10)
    seen: list[Any] = []

    def use(way: str) -> None:
        barrier.wait()
        FIRST_USES[way](made)
        point = made["Named"](1)
        seen.append(([f.name for f in dataclasses.fields(made["Named"])], point.tags, point.y))

    threads = [threading.Thread(target=use, args=(way,)) for way in FIRST_USES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [(["x", "y", "tags", "note", "name"], [], 0)] * len(FIRST_USES)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_fork_waits_for_a_class_being_made() -> None:
    """A fork while another thread makes a class a dataclass happens once it is made: the child
    sees the class whole, and its lock free."""
    from lockwatch import records

    held, made = threading.Event(), threading.Event()

    def maker() -> None:
        with records._making:
            held.set()
            time.sleep(0.3)
            made.set()  # the class is whole (the lock is still held)

    thread = threading.Thread(target=maker)
    thread.start()
    assert held.wait(10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: made before the fork, and the lock is its own
        os._exit(0 if made.is_set() and records._making.acquire(blocking=False) else 1)
    thread.join(10)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 if hasattr(os, "waitstatus_to_exitcode") else status == 0
