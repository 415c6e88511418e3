"""Tests for lockwatch.records: @record behaves as @dataclass, class for class, without compiling a
__repr__ and an __eq__ for each."""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

import pytest

from lockwatch import model
from lockwatch.records import record


def twins(decorate: Any) -> dict[str, type]:
    """The same classes, made by ``decorate`` (@record or @dataclass)."""

    @decorate
    class Point:
        x: int
        y: int = 0
        tags: list[str] = field(default_factory=list)
        note: Optional[str] = field(default=None, repr=False, compare=False)
        KIND: ClassVar[str] = "point"

    @decorate
    class Named(Point):
        name: str = ""

    @decorate
    class Box:
        item: Any = None

    @decorate
    class Empty:
        pass

    @decorate
    class Own:
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
