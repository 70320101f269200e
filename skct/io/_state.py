"""What an object's state is, and how it is put back: pickle's default protocol, checked.

Saving takes ``vars(obj)`` (plus ``__slots__`` values); a class defined in skct may shape its
state with its own ``__getstate__``/``__setstate__``, as it would for pickle. Loading creates
the instance with ``cls.__new__(cls)`` and restores the attributes with ``__dict__.update``,
or with the class's ``__setstate__`` where that is skct's own or one of
:data:`~skct.io._trusted.SETSTATE_HOOKS`. No other hook of a class is called.
"""

from __future__ import annotations

from ._errors import UnsafeFileError
from ._trusted import OWN_PACKAGE, SETSTATE_HOOKS, dotted, type_name

__all__ = ["get_state", "check_rebuildable", "new_instance", "restore_state"]

#: ``__new__`` implementations that take no arguments and run no code of the class.
_PLAIN_NEW = {object.__new__: object, list.__new__: list, dict.__new__: dict}


def _owner(cls, name):
    """The class in ``cls``'s MRO that defines ``name`` (None if none does)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass
    return None


def _is_own(klass):
    module = getattr(klass, "__module__", "") or ""
    return module == OWN_PACKAGE or module.startswith(OWN_PACKAGE + ".")


def _slot_names(cls):
    for klass in cls.__mro__:
        slots = vars(klass).get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            if name.startswith("__") and not name.endswith("__"):
                name = f"_{klass.__name__.lstrip('_')}{name}"
            yield name


def check_rebuildable(cls, path):
    """Raise TypeError unless instances of ``cls`` can be rebuilt by ``__new__`` + state."""
    name = dotted(type_name(cls))
    if cls.__module__ == "builtins":
        raise TypeError(f"Cannot save {path}: objects of type {cls.__name__} are not data.")
    if "<locals>" in cls.__qualname__:
        raise TypeError(f"Cannot save {path}: class {name} is defined inside a function, so "
                        "it cannot be found by name when loading; define it at module level.")
    if _PLAIN_NEW.get(cls.__new__) is None or not issubclass(cls, _PLAIN_NEW[cls.__new__]):
        raise TypeError(f"Cannot save {path}: {name} has its own __new__, so it cannot be "
                        "rebuilt from plain data.")
    if cls.__reduce_ex__ is not object.__reduce_ex__ or cls.__reduce__ is not object.__reduce__:
        raise TypeError(f"Cannot save {path}: {name} defines its own pickling (__reduce__), so "
                        "its state is not in its attributes.")


def get_state(obj, path):
    """``(attributes, slot values)`` of ``obj`` as dicts with string keys."""
    owner = _owner(type(obj), "__getstate__")
    if owner is not None and _is_own(owner):
        state = obj.__getstate__()
        if not isinstance(state, dict):
            raise TypeError(f"Cannot save {path}: {type(obj).__name__}.__getstate__ returned "
                            f"{type(state).__name__}, not a dict of attributes.")
        state = dict(state)
    else:
        state = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
    bad = [k for k in state if not isinstance(k, str)]
    if bad:
        raise TypeError(f"Cannot save {path}: attribute names {bad!r} are not strings.")
    slots = {}
    for name in _slot_names(type(obj)):
        if name not in state and hasattr(obj, name):
            slots[name] = getattr(obj, name)
    return state, slots


def new_instance(cls, where, *, items):
    """``cls.__new__(cls)``, refused for classes with their own ``__new__``.

    ``items`` is ``"list"``/``"dict"`` when the file holds list or dict items for the object.
    """
    base = _PLAIN_NEW.get(cls.__new__)
    if base is None or not issubclass(cls, base):
        raise UnsafeFileError(f"{where}: {dotted(type_name(cls))} cannot be rebuilt from plain "
                              "data (it has its own __new__).")
    if items == "list" and not issubclass(cls, list) or \
            items == "dict" and not issubclass(cls, dict):
        raise UnsafeFileError(f"{where}: {items} items for {dotted(type_name(cls))}, which is "
                              f"not a {items}.")
    return cls.__new__(cls)


def restore_state(obj, state, slots, where):
    """Put the decoded attributes back (see the module docstring for which hook is used)."""
    cls = type(obj)
    owner = _owner(cls, "__setstate__")
    if owner is not None and (_is_own(owner) or type_name(owner) in SETSTATE_HOOKS):
        obj.__setstate__(state)
    elif state:
        if not hasattr(obj, "__dict__"):
            raise UnsafeFileError(f"{where}: {dotted(type_name(cls))} has no attributes, but "
                                  "the file gives some.")
        obj.__dict__.update(state)
    valid = set(_slot_names(cls))
    for name, value in slots.items():
        if name not in valid:
            raise UnsafeFileError(f"{where}: {dotted(type_name(cls))} has no slot {name!r}.")
        object.__setattr__(obj, name, value)
