"""Object graph -> plain data: JSON nodes with type tags, numpy arrays and torch tensors.

Every value becomes a JSON primitive or a node ``{"$": tag, ...}``. Containers, arrays, tensors
and objects get an ``"id"``; a second reference to the same object is ``{"$": "ref", "id": n}``,
so shared objects (a module's parameters inside its optimizer, ``classes_`` shared with a label
encoder) stay shared after loading. An object is stored as its class name and its attributes
(``vars(obj)``, or the ``__getstate__`` of a class defined in skct), which is what pickle's
default protocol stores, minus the code: functions are refused with the attribute path that
holds them.
"""

from __future__ import annotations

import base64
import collections
import functools
import math
import types

import numpy as np
import torch

from ._state import get_state, check_rebuildable
from ._trusted import SAFE_FUNCTIONS, dotted, type_name

__all__ = ["GraphWriter"]

#: Values that are code, or handles to the running process, not data.
_CODE_TYPES = (types.FunctionType, types.BuiltinFunctionType, types.MethodType,
               types.MethodWrapperType, types.WrapperDescriptorType, types.MethodDescriptorType,
               types.ClassMethodDescriptorType, staticmethod, classmethod, property,
               functools.partial, np.ufunc)
_NOT_DATA_TYPES = (types.ModuleType, types.CodeType, types.FrameType, types.GeneratorType,
                   types.CoroutineType, types.AsyncGeneratorType, types.TracebackType)

#: numpy dtype kinds a scalar may have (JSON can hold their ``item()``).
SCALAR_KINDS = "biufU"


class GraphWriter:
    """Encodes one object graph; collects the arrays and tensors it holds.

    Attributes
    ----------
    arrays : dict of str -> ndarray
        Arrays without Python objects inside, saved with ``numpy.savez(allow_pickle=False)``.
    tensors : dict of str -> Tensor
        Plain tensors (parameters detached), saved with ``torch.save``.
    """

    def __init__(self):
        self.arrays = {}
        self.tensors = {}
        self._memo = {}  # id(obj) -> node id
        self._alive = []  # keeps temporaries alive so that their id() is not reused
        self._open_tuples = set()

    # -- entry -----------------------------------------------------------------------------
    def encode(self, obj, path):
        """JSON value for ``obj``; ``path`` (e.g. ``obj.net_.module_``) names it in errors."""
        t = type(obj)
        if obj is None or t is bool or t is str or t is int:
            return obj
        if t is float:
            return obj if math.isfinite(obj) else {"$": "float", "v": repr(obj)}
        if id(obj) in self._memo:
            if id(obj) in self._open_tuples:
                raise TypeError(f"Cannot save {path}: a tuple that contains itself.")
            return {"$": "ref", "id": self._memo[id(obj)]}
        handler = _EXACT.get(t)
        if handler is not None:
            return handler(self, obj, path)
        if isinstance(obj, np.generic):
            return self._scalar(obj, path)
        if isinstance(obj, np.dtype):
            return self._dtype(obj, path)
        if isinstance(obj, type):
            return self._type(obj, path)
        if isinstance(obj, _CODE_TYPES):
            return self._function(obj, path)
        if isinstance(obj, _NOT_DATA_TYPES):
            raise TypeError(f"Cannot save {path}: a {t.__name__} is not data.")
        if isinstance(obj, torch.Tensor):
            return self._tensor(obj, path)
        if isinstance(obj, np.ndarray):
            raise TypeError(f"Cannot save {path}: array subclass {dotted(type_name(t))} "
                            "(convert it with numpy.asarray first).")
        return self._object(obj, path)

    def _register(self, obj):
        i = len(self._memo)
        self._memo[id(obj)] = i
        self._alive.append(obj)
        return i

    def _items(self, pairs, path):
        return [[self.encode(k, f"{path}[key {k!r}]"), self.encode(v, f"{path}[{k!r}]")]
                for k, v in pairs]

    # -- containers ------------------------------------------------------------------------
    def _list(self, obj, path):
        i = self._register(obj)
        return {"$": "list", "id": i,
                "v": [self.encode(v, f"{path}[{j}]") for j, v in enumerate(obj)]}

    def _tuple(self, obj, path):
        i = self._register(obj)
        self._open_tuples.add(id(obj))
        try:
            v = [self.encode(x, f"{path}[{j}]") for j, x in enumerate(obj)]
        finally:
            self._open_tuples.discard(id(obj))
        return {"$": "tuple", "id": i, "v": v}

    def _set(self, obj, path):
        i = self._register(obj)
        tag = "set" if type(obj) is set else "frozenset"
        try:
            items = sorted(obj)  # a stable order, so that equal objects give equal files
        except TypeError:
            items = list(obj)
        return {"$": tag, "id": i, "v": [self.encode(v, f"{path}{{}}") for v in items]}

    def _dict(self, obj, path):
        i = self._register(obj)
        tag = "odict" if type(obj) is collections.OrderedDict else "dict"
        return {"$": tag, "id": i, "v": self._items(obj.items(), path)}

    def _defaultdict(self, obj, path):
        i = self._register(obj)
        factory = self.encode(obj.default_factory, f"{path}.default_factory")
        return {"$": "defaultdict", "id": i, "factory": factory,
                "v": self._items(obj.items(), path)}

    # -- leaves ----------------------------------------------------------------------------
    def _slice(self, obj, path):
        return {"$": "slice", "v": [self.encode(x, f"{path}.{name}") for x, name in
                                    ((obj.start, "start"), (obj.stop, "stop"),
                                     (obj.step, "step"))]}

    def _bytes(self, obj, path):
        return {"$": "bytes", "v": base64.b64encode(obj).decode("ascii")}

    def _complex(self, obj, path):
        return {"$": "complex", "v": [self.encode(obj.real, path), self.encode(obj.imag, path)]}

    def _scalar(self, obj, path):
        if obj.dtype.kind not in SCALAR_KINDS:
            raise TypeError(f"Cannot save {path}: numpy scalar of dtype {obj.dtype} "
                            "(only booleans, numbers and strings are stored).")
        return {"$": "npscalar", "dtype": obj.dtype.str, "v": self.encode(obj.item(), path)}

    def _dtype(self, obj, path):
        if obj.fields is not None or obj.subdtype is not None:
            raise TypeError(f"Cannot save {path}: structured dtype {obj}.")
        return {"$": "dtype", "v": obj.str}

    def _array(self, obj, path):
        if obj.dtype.fields is not None:
            raise TypeError(f"Cannot save {path}: structured array of dtype {obj.dtype}.")
        i = self._register(obj)
        if obj.dtype.hasobject:  # Python objects inside: stored as JSON, element by element
            flat = obj.reshape(-1, order="C")
            return {"$": "objarray", "id": i, "shape": list(obj.shape),
                    "v": [self.encode(x, f"{path}[{j}]") for j, x in enumerate(flat.tolist())]}
        key = f"a{len(self.arrays)}"
        self.arrays[key] = obj
        return {"$": "ndarray", "id": i, "key": key}

    def _tensor(self, obj, path):
        if type(obj) is torch.nn.Parameter:
            tag = "parameter"
        elif type(obj) is torch.Tensor:
            tag = "tensor"
        else:
            raise TypeError(f"Cannot save {path}: tensor subclass {dotted(type_name(type(obj)))}"
                            " (only plain tensors and nn.Parameter are stored).")
        i = self._register(obj)
        key = f"t{len(self.tensors)}"
        self.tensors[key] = obj.detach()
        return {"$": tag, "id": i, "key": key, "requires_grad": bool(obj.requires_grad)}

    def _random_state(self, obj, path):
        i = self._register(obj)
        state = obj.get_state(legacy=True)
        self._alive.append(state)
        return {"$": "randomstate", "id": i, "v": self.encode(state, f"{path}.get_state()")}

    def _generator(self, obj, path):
        i = self._register(obj)
        if isinstance(obj, torch.Generator):
            key = f"t{len(self.tensors)}"
            self.tensors[key] = obj.get_state()
            return {"$": "torchgen", "id": i, "device": str(obj.device), "key": key}
        state = obj.bit_generator.state
        self._alive.append(state)
        return {"$": "npgen", "id": i, "v": self.encode(state, f"{path}.bit_generator.state")}

    def _torch_leaf(self, obj, path):
        if isinstance(obj, torch.device):
            return {"$": "device", "v": str(obj)}
        if isinstance(obj, torch.dtype):
            return {"$": "tdtype", "v": str(obj).rsplit(".", 1)[-1]}
        return {"$": "size", "v": [int(d) for d in obj]}

    # -- references to classes and functions -----------------------------------------------
    def _type(self, obj, path):
        if "<locals>" in obj.__qualname__:
            raise TypeError(f"Cannot save {path}: class {obj.__qualname__} is defined inside a "
                            "function, so it cannot be found by name when loading; define it "
                            "at module level.")
        return {"$": "type", "name": type_name(obj)}

    def _function(self, obj, path):
        if isinstance(obj, functools.partial):
            func = self.encode(obj.func, f"{path}.func")
            args = [self.encode(a, f"{path}.args[{j}]") for j, a in enumerate(obj.args)]
            return {"$": "partial", "func": func, "args": args,
                    "kw": self._items(obj.keywords.items(), f"{path}.keywords")}
        name = getattr(obj, "__qualname__", None)
        module = getattr(obj, "__module__", None)
        if isinstance(name, str) and isinstance(module, str) and \
                f"{module}:{name}" in SAFE_FUNCTIONS:
            return {"$": "func", "name": f"{module}:{name}"}
        what = "a lambda" if name == "<lambda>" else f"the {type(obj).__name__} {name or obj!r}"
        raise TypeError(
            f"Cannot save {path}: it holds {what}. skct.io stores data only, never code "
            "(functions, lambdas, methods), so the file can be loaded without executing "
            "anything. Replace it with data (e.g. None, a string option or a trusted class) "
            "before saving."
        )

    # -- instances -------------------------------------------------------------------------
    def _object(self, obj, path):
        t = type(obj)
        check_rebuildable(t, path)
        i = self._register(obj)
        state, slots = get_state(obj, path)
        self._alive.append(state)
        node = {"$": "object", "id": i, "type": type_name(t),
                "state": [[k, self.encode(v, f"{path}.{k}")] for k, v in state.items()]}
        if slots:
            node["slots"] = [[k, self.encode(v, f"{path}.{k}")] for k, v in slots.items()]
        if isinstance(obj, list):
            node["list"] = [self.encode(v, f"{path}[{j}]") for j, v in enumerate(obj)]
        if isinstance(obj, dict):
            node["dict"] = self._items(obj.items(), path)
        return node


_EXACT = {
    list: GraphWriter._list,
    tuple: GraphWriter._tuple,
    set: GraphWriter._set,
    frozenset: GraphWriter._set,
    dict: GraphWriter._dict,
    collections.OrderedDict: GraphWriter._dict,
    collections.defaultdict: GraphWriter._defaultdict,
    slice: GraphWriter._slice,
    bytes: GraphWriter._bytes,
    complex: GraphWriter._complex,
    np.ndarray: GraphWriter._array,
    np.random.RandomState: GraphWriter._random_state,
    np.random.Generator: GraphWriter._generator,
    torch.Generator: GraphWriter._generator,
    torch.device: GraphWriter._torch_leaf,
    torch.dtype: GraphWriter._torch_leaf,
    torch.Size: GraphWriter._torch_leaf,
}
