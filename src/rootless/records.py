"""`@record`: typing.NamedTuple's class syntax without importing typing.

`import typing` costs ~3 ms, a twentieth of `rootless run`, and the modules on its path
declare their records as NamedTuples. A class decorated with `@record` is written the
same way (annotated fields, defaults last, methods and properties) and becomes a tuple
subclass with what a collections.namedtuple has: the fields as read-only attributes,
`_fields`, `_field_defaults`, `_replace`, `_asdict`, `_make`, equality and hashing as
tuples, pickling by name. Under `from __future__ import annotations` the fields'
annotations are strings that nothing evaluates, so they cost nothing either.

Unlike namedtuple, no source text is compiled per class (namedtuple evaluates a
`__new__` for each, ~25 us: the runtime's plan alone has two dozen classes): one
`__new__` binds the arguments for all of them.

One difference from NamedTuple: a method may not call zero-argument `super()`, whose
implicit class would be the undecorated one.
"""

from __future__ import annotations

from operator import itemgetter

try:
    from _collections import _tuplegetter  # what namedtuple's fields are made of
except ImportError:  # another Python: the same, as a property
    def _tuplegetter(index: int, doc: str):
        return property(itemgetter(index), doc=doc)

_NOT_MEMBERS = ("__dict__", "__weakref__")


def record(cls: type) -> type:
    """The tuple class of `cls`'s annotated fields, with `cls`'s other members."""
    members = dict(cls.__dict__)
    fields = tuple(members.get("__annotations__", {}))
    given = [name in members for name in fields]
    if given != sorted(given):  # False sorts first: the defaults must come last
        raise TypeError(f"{cls.__name__}: a field without a default follows one with")
    defaults = {name: members.pop(name) for name in fields if name in members}
    for name in _NOT_MEMBERS:
        members.pop(name, None)
    for key, value in (("__repr__", _repr), ("__getnewargs__", _getnewargs),
                       ("_replace", _replace), ("_asdict", _asdict),
                       ("_make", classmethod(_make)), ("__match_args__", fields)):
        members.setdefault(key, value)  # the class's own (a __repr__, say) first
    members.update(__slots__=(), __new__=_new_of(cls.__name__, fields, defaults),
                   _fields=fields, _field_defaults=defaults)
    for index, name in enumerate(fields):
        members[name] = _tuplegetter(index, f"Alias for field number {index}")
    return type(cls.__name__, (tuple,), members)


def _new_of(name: str, fields: tuple[str, ...], defaults: dict):
    count, required = len(fields), len(fields) - len(defaults)
    new = tuple.__new__

    def __new__(cls, *args, **kwargs):
        if not kwargs and len(args) == count:  # how nearly every record is made
            return new(cls, args)
        if len(args) > count:
            raise TypeError(f"{name}() takes {count} positional arguments but "
                            f"{len(args)} were given")
        values = list(args)
        for field in fields[len(args):]:
            if field in kwargs:
                values.append(kwargs.pop(field))
            elif field in defaults:
                values.append(defaults[field])
            else:
                missing = [f for f in fields[len(values):required] if f not in kwargs]
                raise TypeError(f"{name}() missing required argument(s): "
                                f"{', '.join(map(repr, missing))}")
        if kwargs:
            extra = next(iter(kwargs))
            why = "multiple values for" if extra in fields else "an unexpected keyword"
            raise TypeError(f"{name}() got {why} argument {extra!r}")
        return new(cls, values)

    __new__.__qualname__ = f"{name}.__new__"
    return __new__


def _repr(self) -> str:
    inner = ", ".join(f"{f}={v!r}" for f, v in zip(self._fields, self))
    return f"{type(self).__name__}({inner})"


def _getnewargs(self) -> tuple:
    return tuple(self)


def _replace(self, **changes):
    values = [changes.pop(f, v) for f, v in zip(self._fields, self)]
    if changes:
        raise ValueError(f"got unexpected field names: {list(changes)!r}")
    return type(self)(*values)


def _asdict(self) -> dict:
    return dict(zip(self._fields, self))


def _make(cls, iterable):
    values = tuple(iterable)
    if len(values) != len(cls._fields):
        raise TypeError(f"expected {len(cls._fields)} arguments, got {len(values)}")
    return tuple.__new__(cls, values)
