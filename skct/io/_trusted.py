"""The one list of what :func:`skct.io.load` rebuilds, and how a type name becomes a class.

A file names every class and function it needs as ``"module:qualname"``. A name is looked up
here *before* anything is imported: names outside this list (and outside the caller's
``trusted``) are refused without touching ``importlib``. A name that passes is imported and the
object found must be exactly what the name says (``__module__``/``__qualname__``), of the
expected kind (a class, or one of the few named functions below).
"""

from __future__ import annotations

import builtins
import importlib
import types

from ._errors import UnsafeFileError, UntrustedTypeError

__all__ = ["DEFAULT_TRUSTED_TYPES", "OWN_PACKAGE", "SAFE_FUNCTIONS", "SETSTATE_HOOKS",
           "TRUSTED_PREFIXES", "TrustPolicy", "dotted", "type_name"]

#: Classes rebuilt (``cls.__new__(cls)`` + their attributes) without being asked. Classes of
#: skct, skorch, ``torch.nn`` modules and ``torch.optim`` optimizers are trusted by prefix (see
#: ``TRUSTED_PREFIXES``). ``FunctionTransformer`` is deliberately absent: pass it in
#: ``trusted`` to load one.
DEFAULT_TRUSTED_TYPES = frozenset({
    # scikit-learn: pipelines and the invertible preprocessing the explainer can map back
    "sklearn.pipeline:Pipeline",
    "sklearn.compose._column_transformer:ColumnTransformer",
    "sklearn.preprocessing._data:StandardScaler",
    "sklearn.preprocessing._data:MinMaxScaler",
    "sklearn.preprocessing._data:MaxAbsScaler",
    "sklearn.preprocessing._data:RobustScaler",
    "sklearn.preprocessing._encoders:OneHotEncoder",
    "sklearn.preprocessing._encoders:OrdinalEncoder",
    "sklearn.preprocessing._label:LabelEncoder",
    # class references a fitted skorch net holds (never instantiated by load)
    "torch.utils.data.dataloader:DataLoader",
    # builtin types that appear as values (e.g. the factory of a defaultdict)
    *(f"builtins:{t.__name__}"
      for t in (bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset,
                object)),
})

#: (package, base class) pairs: a class defined in the package (or below it) is trusted when
#: it subclasses the base (``None``: any class of that package).
TRUSTED_PREFIXES = (
    ("skct", None),
    ("skorch", None),
    ("torch.nn", "torch.nn.modules.module:Module"),
    ("torch.optim", "torch.optim.optimizer:Optimizer"),
    ("numpy", "numpy:generic"),  # scalar types such as numpy.float64 (OneHotEncoder's dtype)
)

#: Named library functions a fitted skorch net refers to (its print log's ``sink``, its
#: optimizer setters, the target extractor and data indexers of its scoring callbacks). A file
#: may name these; it never contains code, and ``load`` does not call them.
SAFE_FUNCTIONS = frozenset({
    "builtins:print",
    "skorch.setter:optimizer_setter",
    "skorch.net:NeuralNet._virtual_setattr",
    "skorch.utils:to_numpy",
    *(f"skorch.utils:_indexing_{kind}"
      for kind in ("none", "dict", "list_tuple_of_data", "ndframe", "other")),
})

#: Classes whose own ``__setstate__`` (pure library code that fills in defaults) is called with
#: the restored attributes, as pickle does. Every other class outside skct gets its attributes
#: with ``obj.__dict__.update``: skorch's hooks, for one, would unpickle bytes.
SETSTATE_HOOKS = frozenset({
    "torch.nn.modules.module:Module",
    "torch.optim.optimizer:Optimizer",
})

#: The package whose classes persist through their own ``__getstate__``/``__setstate__``.
OWN_PACKAGE = "skct"


def type_name(obj):
    """``"module:qualname"`` of a class or function."""
    return f"{obj.__module__}:{obj.__qualname__}"


def dotted(name):
    """``"module:qualname"`` -> ``"module.qualname"`` (the spelling shown to users)."""
    return name.replace(":", ".")


def _split(name):
    if not isinstance(name, str) or name.count(":") != 1:
        raise UnsafeFileError(f"Malformed type name {name!r} in the file (expected "
                              "'module:qualname').")
    module, qualname = name.split(":")
    parts = module.split(".") + qualname.split(".")
    if not all(p.isidentifier() for p in parts):
        raise UnsafeFileError(f"Malformed type name {name!r} in the file.")
    return module, qualname


def _import(name):
    """The object called ``name``; it must say it is that object (no re-exported aliases)."""
    module, qualname = _split(name)
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise UnsafeFileError(f"The file names {dotted(name)!r}, which does not exist in this "
                              f"environment ({exc}).") from None
    if getattr(obj, "__module__", None) != module or \
            getattr(obj, "__qualname__", None) != qualname:
        raise UnsafeFileError(f"The file names {dotted(name)!r}, but that name refers to "
                              f"{obj!r}, defined elsewhere.")
    return obj


def _user_names(trusted):
    """``trusted`` -> {"module:qualname": class or None (import it)}."""
    if trusted is None:
        return {}
    if isinstance(trusted, (str, type)):
        trusted = [trusted]
    out = {}
    for item in trusted:
        if isinstance(item, type):
            out[type_name(item)] = item
        elif isinstance(item, str):
            name = item if ":" in item else ":".join(item.rsplit(".", 1))
            out[name] = None
        else:
            raise TypeError(f"trusted: expected classes or 'module.ClassName' strings, got "
                            f"{item!r} ({type(item).__name__}).")
    return out


class TrustPolicy:
    """Decides, for each name in a file, whether it may be rebuilt, and resolves it.

    Parameters
    ----------
    trusted : list of class or str, or None
        Extra classes the caller trusts (classes, or ``"module.ClassName"`` strings).
    """

    def __init__(self, trusted=None):
        self._user = _user_names(trusted)
        self._cache = {}

    def is_trusted_type(self, name):
        """Whether a class name may be rebuilt, judged on the name alone (nothing imported)."""
        if name in DEFAULT_TRUSTED_TYPES or name in self._user:
            return True
        return _family(name) is not None

    def check(self, type_names, function_names):
        """Raise :class:`UntrustedTypeError` naming every class or function not trusted."""
        bad_types = sorted(n for n in set(type_names) if not self.is_trusted_type(n))
        bad_funcs = sorted(n for n in set(function_names) if n not in SAFE_FUNCTIONS)
        if bad_funcs:
            shown = ", ".join(dotted(n) for n in bad_funcs)
            raise UntrustedTypeError(
                f"The file refers to the function(s) {shown}. skct.io never loads functions "
                "(only the few named library functions a fitted skorch net holds), so this "
                "file was not written by skct.io.save or has been altered.", bad_funcs)
        if bad_types:
            shown = ", ".join(dotted(n) for n in bad_types)
            example = bad_types[0].rsplit(":", 1)[1].rsplit(".", 1)[-1]
            as_strings = [dotted(n) for n in bad_types]
            raise UntrustedTypeError(
                f"The file contains objects of type(s) not trusted by default: {shown}. "
                "Loading rebuilds objects of these classes; if you trust their code (e.g. your "
                f"own torch module), pass them explicitly: skct.io.load(path, trusted="
                f"[{example}]) or trusted={as_strings}. Do not trust a name you do not "
                "recognise: the file may have been crafted.", bad_types)

    def resolve_type(self, name):
        """The class called ``name`` (already checked with :meth:`check`)."""
        if name in self._cache:
            return self._cache[name]
        if not self.is_trusted_type(name):
            raise UntrustedTypeError(f"Type {dotted(name)!r} is not trusted.", [name])
        cls = self._user.get(name) or _import(name)
        if not isinstance(cls, type):
            raise UntrustedTypeError(f"{dotted(name)!r} is not a class; the file is not a "
                                     "valid skct.io file.", [name])
        if name not in DEFAULT_TRUSTED_TYPES and name not in self._user:
            _check_family(name, cls)
        self._cache[name] = cls
        return cls

    def resolve_function(self, name):
        """One of :data:`SAFE_FUNCTIONS`."""
        if name not in SAFE_FUNCTIONS:
            raise UntrustedTypeError(f"Function {dotted(name)!r} is not trusted.", [name])
        if name == "builtins:print":
            return builtins.print
        func = _import(name)
        if not isinstance(func, (types.FunctionType, types.BuiltinFunctionType)):
            raise UntrustedTypeError(f"{dotted(name)!r} is not a function.", [name])
        return func


def _family(name):
    """The ``TRUSTED_PREFIXES`` entry whose package holds ``name`` (or None)."""
    module = name.split(":", 1)[0]
    for package, base in TRUSTED_PREFIXES:
        if module == package or module.startswith(package + "."):
            return package, base
    return None


def _check_family(name, cls):
    """A prefix-trusted class must subclass its family's base (e.g. ``torch.nn.Module``)."""
    _, base = _family(name)
    if base is None or issubclass(cls, _import(base)):
        return
    raise UntrustedTypeError(
        f"Type {dotted(name)!r} is not trusted: in its package only subclasses of the trusted "
        f"bases are rebuilt. Pass it in trusted=[...] if you trust it.", [name])
