"""Plain data -> object graph, rebuilding only trusted classes.

:func:`scan` walks the JSON first (no object is created): it rejects unknown tags and collects
every class and function name, so that one error can list all untrusted types before anything
is built or imported. :class:`GraphReader` then rebuilds the graph.
"""

from __future__ import annotations

import base64
import collections
import functools

import numpy as np
import torch

from ._encode import SCALAR_KINDS
from ._errors import UnsafeFileError
from ._state import new_instance, restore_state

__all__ = ["GraphReader", "scan", "TAGS"]

#: numpy bit generators a ``numpy.random.Generator`` may be rebuilt with.
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")

#: Every tag a node may have (the writer's vocabulary).
TAGS = frozenset({"ref", "float", "list", "tuple", "set", "frozenset", "dict", "odict",
                  "defaultdict", "slice", "bytes", "complex", "npscalar", "dtype", "ndarray",
                  "objarray", "tensor", "parameter", "randomstate", "npgen", "torchgen",
                  "device", "tdtype", "size", "type", "func", "partial", "object"})


def _children(node):
    """The JSON values nested in a node (order irrelevant)."""
    for key, value in node.items():
        if key == "$":
            continue
        if isinstance(value, list):
            yield from value
        elif isinstance(value, dict):
            yield value


def scan(root):
    """``(class names, function names)`` a graph refers to; unknown tags raise."""
    types_, funcs = set(), set()
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        tag = node.get("$")
        if tag not in TAGS:
            raise UnsafeFileError(f"Unknown type tag {tag!r} in the file: it was not written "
                                  "by skct.io.save, or by a newer version, or it was altered.")
        if tag in ("object", "type"):
            types_.add(_get(node, "type" if tag == "object" else "name", str, tag))
        elif tag == "func":
            funcs.add(_get(node, "name", str, tag))
        stack.extend(_children(node))
    return types_, funcs


def _get(node, key, kind, where):
    try:
        value = node[key]
    except KeyError:
        raise UnsafeFileError(f"{where}: a {node.get('$')!r} node without {key!r}.") from None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UnsafeFileError(f"{where}: field {key!r} of a {node.get('$')!r} node has the "
                              f"wrong type ({type(value).__name__}).")
    return value


class GraphReader:
    """Rebuilds a graph written by :class:`~skct.io._encode.GraphWriter`.

    Parameters
    ----------
    policy : TrustPolicy
    arrays : mapping of str -> ndarray
    tensors : mapping of str -> Tensor
    """

    def __init__(self, policy, arrays, tensors):
        self._policy = policy
        self._arrays = arrays
        self._tensors = tensors
        self._memo = {}

    def decode(self, node, where="root"):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if not isinstance(node, dict):
            raise UnsafeFileError(f"{where}: expected a tagged node, got a JSON "
                                  f"{type(node).__name__}.")
        tag = node.get("$")
        handler = _HANDLERS.get(tag)
        if handler is None:
            raise UnsafeFileError(f"{where}: unknown type tag {tag!r}.")
        return handler(self, node, where)

    def _keep(self, node, obj, where):
        i = _get(node, "id", int, where)
        if i in self._memo:
            raise UnsafeFileError(f"{where}: object id {i} is defined twice.")
        self._memo[i] = obj
        return obj

    def _values(self, node, where, key="v"):
        values = _get(node, key, list, where)
        return [self.decode(v, f"{where}[{j}]") for j, v in enumerate(values)]

    def _pairs(self, node, where, key="v"):
        out = []
        for pair in _get(node, key, list, where):
            if not isinstance(pair, list) or len(pair) != 2:
                raise UnsafeFileError(f"{where}: a mapping entry is not a [key, value] pair.")
            k = self.decode(pair[0], f"{where}[key]")
            out.append((k, self.decode(pair[1], f"{where}[{k!r}]")))
        return out

    # -- containers ------------------------------------------------------------------------
    def _ref(self, node, where):
        i = _get(node, "id", int, where)
        if i not in self._memo:
            raise UnsafeFileError(f"{where}: reference to object {i}, which is not defined "
                                  "before it.")
        return self._memo[i]

    def _list(self, node, where):
        out = self._keep(node, [], where)
        out.extend(self._values(node, where))
        return out

    def _tuple(self, node, where):
        return self._keep(node, tuple(self._values(node, where)), where)

    def _set(self, node, where):
        kind = set if node["$"] == "set" else frozenset
        return self._keep(node, kind(self._values(node, where)), where)

    def _dict(self, node, where):
        out = self._keep(node, {} if node["$"] == "dict" else collections.OrderedDict(), where)
        out.update(self._pairs(node, where))
        return out

    def _defaultdict(self, node, where):
        factory = self.decode(node.get("factory"), f"{where}.default_factory")
        if factory is not None and not isinstance(factory, type):
            raise UnsafeFileError(f"{where}: a defaultdict's factory must be a class.")
        out = self._keep(node, collections.defaultdict(factory), where)
        out.update(self._pairs(node, where))
        return out

    # -- leaves ----------------------------------------------------------------------------
    def _float(self, node, where):
        v = _get(node, "v", str, where)
        if v not in ("nan", "inf", "-inf"):
            raise UnsafeFileError(f"{where}: float node with value {v!r}.")
        return float(v)

    def _slice(self, node, where):
        values = self._values(node, where)
        if len(values) != 3 or not all(v is None or type(v) is int for v in values):
            raise UnsafeFileError(f"{where}: a slice needs three integers or nulls.")
        return slice(*values)

    def _bytes(self, node, where):
        return base64.b64decode(_get(node, "v", str, where), validate=True)

    def _complex(self, node, where):
        real, imag = self._values(node, where)
        return complex(real, imag)

    def _scalar(self, node, where):
        dtype = np.dtype(_get(node, "dtype", str, where))
        if dtype.kind not in SCALAR_KINDS or dtype.fields is not None:
            raise UnsafeFileError(f"{where}: numpy scalar of dtype {dtype}.")
        value = self.decode(node.get("v"), where)
        if not isinstance(value, (bool, int, float, str)):
            raise UnsafeFileError(f"{where}: a numpy scalar's value must be a number or text.")
        return dtype.type(value)

    def _dtype(self, node, where):
        dtype = np.dtype(_get(node, "v", str, where))
        if dtype.fields is not None or dtype.subdtype is not None:
            raise UnsafeFileError(f"{where}: structured dtype {dtype}.")
        return dtype

    def _ndarray(self, node, where):
        key = _get(node, "key", str, where)
        if key not in self._arrays:
            raise UnsafeFileError(f"{where}: array {key!r} is not in arrays.npz.")
        return self._keep(node, self._arrays[key], where)

    def _objarray(self, node, where):
        shape = _get(node, "shape", list, where)
        if not all(type(d) is int and d >= 0 for d in shape):
            raise UnsafeFileError(f"{where}: an array shape must be non-negative integers.")
        values = _get(node, "v", list, where)
        if int(np.prod(shape, dtype=np.int64)) != len(values):
            raise UnsafeFileError(f"{where}: {len(values)} values for an array of shape "
                                  f"{tuple(shape)}.")
        out = self._keep(node, np.empty(shape, dtype=object), where)
        flat = out.reshape(-1)
        for j, v in enumerate(values):
            flat[j] = self.decode(v, f"{where}[{j}]")
        return out

    def _tensor(self, node, where):
        key = _get(node, "key", str, where)
        if key not in self._tensors:
            raise UnsafeFileError(f"{where}: tensor {key!r} is not in tensors.pt.")
        t = self._tensors[key]
        grad = bool(_get(node, "requires_grad", bool, where))
        if node["$"] == "parameter":
            return self._keep(node, torch.nn.Parameter(t, requires_grad=grad), where)
        if grad:
            t = t.detach().requires_grad_(True)
        return self._keep(node, t, where)

    def _random_state(self, node, where):
        rs = self._keep(node, np.random.RandomState(), where)
        state = self.decode(node.get("v"), f"{where}.state")
        if not isinstance(state, tuple):
            raise UnsafeFileError(f"{where}: a RandomState's state must be a tuple.")
        rs.set_state(state)
        return rs

    def _torch_generator(self, node, where):
        key = _get(node, "key", str, where)
        if key not in self._tensors:
            raise UnsafeFileError(f"{where}: tensor {key!r} is not in tensors.pt.")
        gen = torch.Generator(device=_get(node, "device", str, where))
        gen.set_state(self._tensors[key])
        return self._keep(node, gen, where)

    def _numpy_generator(self, node, where):
        state = self.decode(node.get("v"), f"{where}.state")
        name = state.get("bit_generator") if isinstance(state, dict) else None
        if name not in _BIT_GENERATORS:
            raise UnsafeFileError(f"{where}: unknown numpy bit generator {name!r}.")
        bit_generator = getattr(np.random, name)()
        bit_generator.state = state
        return self._keep(node, np.random.Generator(bit_generator), where)

    def _torch_leaf(self, node, where):
        tag = node["$"]
        if tag == "device":
            return torch.device(_get(node, "v", str, where))
        if tag == "size":
            dims = _get(node, "v", list, where)
            if not all(type(d) is int for d in dims):
                raise UnsafeFileError(f"{where}: a torch.Size needs integers.")
            return torch.Size(dims)
        dtype = getattr(torch, _get(node, "v", str, where), None)
        if not isinstance(dtype, torch.dtype):
            raise UnsafeFileError(f"{where}: {node['v']!r} is not a torch dtype.")
        return dtype

    # -- classes, functions, objects -------------------------------------------------------
    def _type(self, node, where):
        return self._policy.resolve_type(_get(node, "name", str, where))

    def _func(self, node, where):
        return self._policy.resolve_function(_get(node, "name", str, where))

    def _partial(self, node, where):
        func_node = _get(node, "func", dict, where)
        if func_node.get("$") != "func":
            raise UnsafeFileError(f"{where}: a partial must wrap a named function.")
        func = self._func(func_node, f"{where}.func")
        kw = self._pairs(node, f"{where}.keywords", key="kw")
        if not all(isinstance(k, str) for k, _ in kw):
            raise UnsafeFileError(f"{where}: keyword names must be strings.")
        return functools.partial(func, *self._values(node, where, key="args"), **dict(kw))

    def _object(self, node, where):
        cls = self._policy.resolve_type(_get(node, "type", str, where))
        items = "list" if "list" in node else "dict" if "dict" in node else None
        obj = self._keep(node, new_instance(cls, where, items=items), where)
        if items == "list":
            list.extend(obj, self._values(node, where, key="list"))
        elif items == "dict":
            dict.update(obj, self._pairs(node, where, key="dict"))
        state = self._attributes(node, "state", where)
        slots = self._attributes(node, "slots", where) if "slots" in node else {}
        restore_state(obj, state, slots, where)
        return obj

    def _attributes(self, node, key, where):
        out = {}
        for pair in _get(node, key, list, where):
            if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str):
                raise UnsafeFileError(f"{where}: an attribute entry is not a [name, value] "
                                      "pair.")
            out[pair[0]] = self.decode(pair[1], f"{where}.{pair[0]}")
        return out


_HANDLERS = {
    "ref": GraphReader._ref, "float": GraphReader._float, "list": GraphReader._list,
    "tuple": GraphReader._tuple, "set": GraphReader._set, "frozenset": GraphReader._set,
    "dict": GraphReader._dict, "odict": GraphReader._dict,
    "defaultdict": GraphReader._defaultdict, "slice": GraphReader._slice,
    "bytes": GraphReader._bytes, "complex": GraphReader._complex,
    "npscalar": GraphReader._scalar, "dtype": GraphReader._dtype,
    "ndarray": GraphReader._ndarray, "objarray": GraphReader._objarray,
    "tensor": GraphReader._tensor, "parameter": GraphReader._tensor,
    "randomstate": GraphReader._random_state, "npgen": GraphReader._numpy_generator,
    "torchgen": GraphReader._torch_generator, "device": GraphReader._torch_leaf,
    "tdtype": GraphReader._torch_leaf, "size": GraphReader._torch_leaf,
    "type": GraphReader._type, "func": GraphReader._func, "partial": GraphReader._partial,
    "object": GraphReader._object,
}
assert set(_HANDLERS) == TAGS
