"""``@record``: ``@dataclass`` with ``__repr__`` and ``__eq__`` written once, here, not compiled per class."""
from __future__ import annotations

import _thread
import dataclasses
import os
import sys
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable

# dataclasses writes the __init__, __repr__ and __eq__ of every class as source text and compiles
# it, at every import, and every session imports lockwatch.model. Its 18 classes took 62 M
# instructions to import on 3.11, 69 M on 3.13 (valgrind --tool=callgrind; a bare interpreter's
# whole start-up is ~88 M); with __repr__ and __eq__ from here, 40 M and 46 M. Those two are the
# same for every class but for the field names, so they are closures here; __init__ stays
# a function of its own per class, dataclasses' text (it runs for every record a snapshot or a
# loaded report makes: a closure over the field names measured ~2x slower). The classes stay
# dataclasses: fields(), replace(), asdict() and is_dataclass() work as before; a class that
# defines __repr__ or __eq__ keeps its own, as with @dataclass.
# The __init__s are written as dataclasses writes them (the same source for the same fields),
# but each is compiled when its class's __init__ is first looked up (an instance made,
# inspect.signature, dataclasses writing the docstring of a class without one): a process that
# switches on and exits makes 4 of the model's 18 kinds of record. `import lockwatch.model` took
# 44 M instructions with dataclasses' __init__s, 20 M without (callgrind, 3.11). InitVar and
# keyword-only fields are not supported: the model has none.

# The class itself is made a dataclass on first use, too, when it has a docstring of its own
# (dataclasses writes one into a class without): the fields of the model's 18 classes, each
# annotation parsed and checked, were 15 M of the 24 M instructions `import lockwatch.model` took
# (callgrind, 3.11), in every process that switches on. Until then, the class's
# __dataclass_fields__ and __dataclass_params__ (and, from 3.10, its __match_args__) are
# _OnFirstUse descriptors: anything that asks for them (fields(), is_dataclass(), replace(),
# asdict(), a subclass's @dataclass, the first instance's __init__, the first repr or ==) makes
# the class a dataclass, under one lock, and gets dataclasses' own answer. A fork waits for a
# class being made, and the child gets a new lock: it never sees a class half made.

_FIELDS = "__dataclass_fields__"
_PARAMS = "__dataclass_params__"
_LAZY = (_FIELDS, _PARAMS, "__match_args__") if sys.version_info >= (3, 10) else (_FIELDS, _PARAMS)

if TYPE_CHECKING:
    from dataclasses import dataclass as record  # what mypy checks the classes against
else:
    def record(cls: type) -> type:
        """@dataclass (init, repr, eq; not frozen), the repr and eq from here. As with @dataclass,
        the class is unhashable unless it defines __hash__."""
        defines = set(cls.__dict__)
        if any(getattr(value, "kw_only", False) is True for value in vars(cls).values()
               if isinstance(value, dataclasses.Field)) or "KW_ONLY" in str(cls.__dict__.get("__annotations__")):
            raise TypeError(f"@record {cls.__qualname__}: keyword-only fields are not supported")
        if "__init__" not in defines:
            # before dataclasses, which looks it up for the docstring of a class without one
            cls.__init__ = _InitOnFirstUse(cls)  # type: ignore[misc]
        if "__repr__" not in defines:
            _set(cls, "__repr__", _repr(cls))
        if "__eq__" not in defines:
            _set(cls, "__eq__", _eq(cls))
            if "__hash__" not in defines:
                cls.__hash__ = None  # what @dataclass(eq=True) does to a class without its own
        if cls.__dict__.get("__doc__") is None:
            _make_dataclass(cls)  # dataclasses writes its docstring: now, as @dataclass would
        else:
            for name in _LAZY:
                if name not in defines:
                    setattr(cls, name, _OnFirstUse(cls, name))
        return cls


_making = _thread.RLock()  # one thread makes a class a dataclass; the others wait for it


def _before_fork() -> None:
    _making.acquire()


def _after_fork_in_parent() -> None:
    _making.release()


def _after_fork_in_child() -> None:
    global _making
    _making = _thread.RLock()


if hasattr(os, "register_at_fork"):  # a fork waits for a class being made (as logging's lock does)
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


class _OnFirstUse:
    """One of a record class's dataclass attributes until the class is made a dataclass: looked
    up (on the class, a subclass or an instance), it makes it one and returns dataclasses' value."""

    def __init__(self, cls: type, name: str) -> None:
        self.cls = cls
        self.name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        cls = self.cls
        _make_dataclass(cls)
        value = cls.__dict__.get(self.name, self)
        if value is self:  # __match_args__, which dataclasses does not replace: its value
            value = tuple(f.name for f in dataclasses.fields(cls) if f.init)
            setattr(cls, self.name, value)
        return value


def _make_dataclass(cls: type) -> None:
    """Make ``cls`` a dataclass (once; dataclasses replaces the fields and params descriptors)."""
    with _making:
        if isinstance(cls.__dict__.get(_FIELDS), _OnFirstUse) or _FIELDS not in cls.__dict__:
            dataclasses.dataclass(cls, init=False, repr=False, eq=False)


def _field_names(cls: type, attribute: str) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if getattr(f, attribute)]


def _set(cls: type, name: str, function: Callable[..., Any]) -> None:
    function.__qualname__ = f"{cls.__qualname__}.{name}"
    setattr(cls, name, function)


def _repr(cls: type) -> Callable[[Any], str]:
    """ClassName(a=1, b='x'): @dataclass's repr, "..." for a record inside itself (its
    reprlib.recursive_repr). The field names are read on the first call."""
    running: set[tuple[int, int]] = set()
    names: list[str] = []
    known = False

    def __repr__(self: Any) -> str:
        nonlocal known
        if not known:
            names[:] = _field_names(cls, "repr")
            known = True
        key = id(self), _thread.get_ident()
        if key in running:
            return "..."
        running.add(key)
        try:
            inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
            return f"{self.__class__.__qualname__}({inner})"
        finally:
            running.discard(key)

    return __repr__


def _eq(cls: type) -> Callable[[Any, Any], Any]:
    """@dataclass's eq: the same class, and the compared fields equal; up to 3.12 as tuples of
    them, from 3.13 one by one, joined with `and` (so a NaN in a field is equal to itself there
    only in a tuple), each version as its own dataclasses does. The field names are read on the
    first call."""
    field_by_field = sys.version_info >= (3, 13)
    compare: list[Callable[[Any, Any], Any]] = []

    def __eq__(self: Any, other: Any) -> Any:
        if not compare:
            names = _field_names(cls, "compare")
            compare.append(_eq_field_by_field(names) if field_by_field else _eq_as_tuples(names))
        return compare[0](self, other)

    return __eq__


def _eq_as_tuples(names: list[str]) -> Callable[[Any, Any], Any]:
    """Up to 3.12's dataclass eq: `(self.a, self.b) == (other.a, other.b)`."""
    values: Callable[[Any], tuple[Any, ...]]
    if len(names) > 1:
        values = attrgetter(*names)  # a tuple of their values, in C
    else:
        values = lambda obj: tuple(getattr(obj, name) for name in names)  # noqa: E731

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    return __eq__


def _eq_field_by_field(names: list[str]) -> Callable[[Any, Any], Any]:
    """3.13's dataclass eq: `self.a == other.a and self.b == other.b ...`."""
    def __eq__(self: Any, other: Any) -> Any:
        if self is other:
            return True
        if other.__class__ is self.__class__:
            result: Any = True
            for name in names:
                result = getattr(self, name) == getattr(other, name)
                if not result:
                    break
            return result
        return NotImplemented
    return __eq__


class _InitOnFirstUse:
    """A record class's __init__ until first looked up: then the class gets its real one,
    which is what the lookup returns (bound to the instance, if any)."""

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        init = _compile_init(self.cls)
        return init if obj is None else init.__get__(obj, owner)


_FACTORY = getattr(dataclasses, "_HAS_DEFAULT_FACTORY", object())  # shown as "<factory>"


def _compile_init(cls: type) -> Callable[..., None]:
    """The __init__ dataclasses would give ``cls`` (same parameters, defaults and assignments),
    set on the class and returned."""
    params, body = ["self"], []
    names: dict[str, Any] = {"__lw_factory": _FACTORY}
    fields = dataclasses.fields(cls)
    for f in fields:
        key = f"__lw_{f.name}"
        if f.default_factory is not dataclasses.MISSING:
            names[key] = f.default_factory
            if f.init:
                params.append(f"{f.name}=__lw_factory")
                body.append(f"self.{f.name} = {key}() if {f.name} is __lw_factory else {f.name}")
            else:
                body.append(f"self.{f.name} = {key}()")
            continue
        if f.default is not dataclasses.MISSING:
            names[key] = f.default
            if not f.init:
                body.append(f"self.{f.name} = {key}")
                continue
            params.append(f"{f.name}={key}")
        elif f.init:
            params.append(f.name)
        else:
            continue
        body.append(f"self.{f.name} = {f.name}")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    source = "\n    ".join([f"def __init__({', '.join(params)}):", *(body or ["pass"])])
    exec(compile(source, f"<lockwatch.records {cls.__qualname__}>", "exec"), names)
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = {**{f.name: f.type for f in fields if f.init}, "return": None}
    cls.__init__ = init  # type: ignore[misc]
    return init
