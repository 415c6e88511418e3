"""``@record``: ``@dataclass`` with ``__repr__`` and ``__eq__`` written once, here, not compiled per class."""
from __future__ import annotations

import _thread
import dataclasses
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
# defines __repr__ or __eq__ keeps its own, as with @dataclass. (Settings, frozen, would save
# 4 M of its 13 M: left to dataclasses.)
# The __init__s are written as dataclasses writes them (the same source for the same fields),
# but each is compiled when its class's __init__ is first looked up (an instance made,
# inspect.signature, dataclasses writing the docstring of a class without one): a process that
# switches on and exits makes 4 of the model's 18 kinds of record. `import lockwatch.model` took
# 44 M instructions with dataclasses' __init__s, 20 M without (callgrind, 3.11). InitVar and
# keyword-only fields are not supported: the model has none.

if TYPE_CHECKING:
    from dataclasses import dataclass as record  # what mypy checks the classes against
else:
    def record(cls: type) -> type:
        """@dataclass (init, repr, eq; not frozen), the repr and eq from here. As with @dataclass,
        the class is unhashable unless it defines __hash__."""
        defines = set(cls.__dict__)
        if "__init__" not in defines:
            # before dataclasses, which looks it up for the docstring of a class without one
            cls.__init__ = _InitOnFirstUse(cls)  # type: ignore[misc]
        cls = dataclasses.dataclass(cls, init=False, repr=False, eq=False)
        fields = dataclasses.fields(cls)
        if any(getattr(f, "kw_only", False) for f in fields):
            raise TypeError(f"@record {cls.__qualname__}: keyword-only fields are not supported")
        if "__repr__" not in defines:
            _set(cls, "__repr__", _repr([f.name for f in fields if f.repr]))
        if "__eq__" not in defines:
            _set(cls, "__eq__", _eq([f.name for f in fields if f.compare]))
            if "__hash__" not in defines:
                cls.__hash__ = None  # what @dataclass(eq=True) does to a class without its own
        return cls


def _set(cls: type, name: str, function: Callable[..., Any]) -> None:
    function.__qualname__ = f"{cls.__qualname__}.{name}"
    setattr(cls, name, function)


def _repr(names: list[str]) -> Callable[[Any], str]:
    """ClassName(a=1, b='x'): @dataclass's repr, "..." for a record inside itself (its
    reprlib.recursive_repr)."""
    running: set[tuple[int, int]] = set()

    def __repr__(self: Any) -> str:
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


def _eq(names: list[str]) -> Callable[[Any, Any], Any]:
    """@dataclass's eq: the same class, and the compared fields equal; up to 3.12 as tuples of
    them, from 3.13 one by one, joined with `and` (so a NaN in a field is equal to itself there
    only in a tuple), each version as its own dataclasses does."""
    if sys.version_info >= (3, 13):
        return _eq_field_by_field(names)
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
