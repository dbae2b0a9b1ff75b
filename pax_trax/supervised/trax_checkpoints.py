"""Reading Trax 1.4.1 checkpoints safely, and putting their weights into pax_trax modules.

Trax writes checkpoints as gzipped pickles (``model.pkl.gz``; since 2021 the
weights sit in ``model.weights.npy.gz``, a gzipped sequence of ``.npy``
arrays). Unpickling runs whatever callables the file names, so the reader
here never imports what a pickle asks for: `safe_unpickle` maps an explicit
allow-list of exact ``(module, name)`` pairs (numpy's array and dtype
reconstructors, JAX's array reconstructor, ``trax.shapes.ShapeDtype``, Trax's
``History``, ``collections.defaultdict``) to stand-ins written here, which only
collect data and check it; anything else (``os.system``, ``builtins.eval``,
numpy's own ``load`` or ``testing`` helpers, ...) is refused with an
`UnsafePickleError` naming it, before it could run. Arrays are rebuilt from raw
bytes with numeric dtypes only (no object arrays).

A Trax weights tree has the layout of ``layer.weights`` in Trax: nested tuples
in sublayer order, ``()`` for weightless layers, a leaf layer's own arrays as a
tuple (or bare when it has one). pax_trax modules expose the same layout in
their ``weights`` property; `set_trax_weights` is its inverse: it fills a
module's parameters from a nested Trax tree or from the flat list a Trax
``Loop`` checkpoint holds, and names the layer, the expected shape and the
shape found on any mismatch.

>>> import numpy as np, pax_trax.nn as nn
>>> model = nn.Serial(nn.Dense(2), nn.Relu()).init(np.zeros((1, 3), np.float32))
>>> trax_tree = ((np.ones((3, 2), np.float32), np.zeros(2, np.float32)), ())
>>> set_trax_weights(model, trax_tree).weights[0][0].tolist()
[[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
"""

from __future__ import annotations

import io
import math
import pickle
from typing import Any

import jax
import ml_dtypes
import numpy as np

from pax_trax.core import shapes as shapes_lib

__all__ = [
    "TraxCheckpointError",
    "UnsafePickleError",
    "StateNotLoadedWarning",
    "safe_unpickle",
    "set_trax_weights",
    "set_trax_state",
]


class TraxCheckpointError(ValueError):
    """A Trax checkpoint that cannot be read or does not fit the model."""


class UnsafePickleError(TraxCheckpointError):
    """A pickle that asks for something outside the allow-list (it is never run)."""


class StateNotLoadedWarning(UserWarning):
    """`weights_only=False`, but the file's state does not fit the model's: state kept."""


# ---------------------------------------------------------------------------
# Stand-ins: what the allow-listed names resolve to. They only collect data;
# `_finish` checks it and turns it into numpy arrays, dtypes and ShapeDtypes.

_NUMERIC_KINDS = "biufc"


def _checked_dtype(spec) -> np.dtype:
    """A numeric numpy dtype from a dtype string like '<f4' (nothing else)."""
    if not isinstance(spec, str) or len(spec) > 8:
        raise UnsafePickleError(f"a dtype must be a short string such as 'f4', got {spec!r:.60}.")
    dtype = np.dtype(spec)
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype:
        raise UnsafePickleError(f"only numeric dtypes are accepted, got {spec!r}.")
    return dtype


class _Inert:
    """Base of the allow-listed stand-ins: a pickle's BUILD opcode cannot change them."""

    __slots__ = ()

    def __setstate__(self, state):
        raise UnsafePickleError(f"{type(self).__name__[1:]} cannot be given state.")


class _DType:
    """Stand-in for ``numpy.dtype(spec, align, copy)`` followed by ``__setstate__``."""

    __slots__ = ("dtype",)

    def __init__(self, spec=None, align=False, copy=False):
        del align, copy
        self.dtype = _checked_dtype(spec)

    def __setstate__(self, state):
        # (version, byte order, subarray, names, fields, elsize, alignment, flags)
        if not (isinstance(state, tuple) and len(state) >= 5):
            raise UnsafePickleError(f"unexpected numpy dtype state {state!r:.80}.")
        order, subarray, names, fields = state[1:5]
        if subarray is not None or names is not None or fields is not None:
            raise UnsafePickleError("structured and sub-array dtypes are not accepted.")
        if order in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(order)
        elif order not in ("|", "="):
            raise UnsafePickleError(f"unknown byte order {order!r:.10} in a dtype.")


class _TypeName(_Inert):
    """Stand-in for a numpy scalar type named as a dtype (``numpy.int32``); not callable."""

    __slots__ = ("dtype",)

    def __init__(self, name):
        self.dtype = _checked_dtype(np.dtype(getattr(np, name)).str)


class _Array:
    """Stand-in for an ndarray built by ``_reconstruct`` + ``__setstate__`` or ``_frombuffer``."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5):
            raise UnsafePickleError(f"unexpected ndarray state {type(state).__name__}.")
        _, shape, dtype, is_fortran, raw = state
        self.array = _array_from_bytes(raw, dtype, shape, "F" if is_fortran else "C")


def _array_from_bytes(raw, dtype, shape, order):
    if not isinstance(dtype, _DType) or getattr(dtype, "dtype", None) is None:
        raise UnsafePickleError("an array's dtype must be a plain numpy dtype.")
    if not isinstance(raw, (bytes, bytearray)):
        # Object arrays store a list of Python objects here: refused.
        raise UnsafePickleError(
            f"array data must be raw bytes, got {type(raw).__name__} (object arrays are refused).")
    if not (isinstance(shape, tuple) and all(type(d) is int and d >= 0 for d in shape)):
        raise UnsafePickleError(f"invalid array shape {shape!r:.80}.")
    if order not in ("C", "F"):
        raise UnsafePickleError(f"invalid array order {order!r:.10}.")
    dt = dtype.dtype
    if len(raw) != math.prod(shape) * dt.itemsize:
        raise UnsafePickleError(
            f"array data has {len(raw)} bytes, but shape {shape} of {dt} needs "
            f"{math.prod(shape) * dt.itemsize}.")
    arr = np.frombuffer(bytes(raw), dtype=dt).reshape(shape, order=order)
    return arr.astype(dt.newbyteorder("="), copy=True)


class _NDArrayType(_Inert):
    """Stand-in for the class ``numpy.ndarray`` (only passed to ``_reconstruct``)."""

    __slots__ = ()


def _reconstruct(subtype, shape, dtype_code):
    """``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')``: an empty array to fill."""
    if not isinstance(subtype, _NDArrayType):
        raise UnsafePickleError("_reconstruct may only build numpy.ndarray.")
    del shape, dtype_code
    return _Array()


def _frombuffer(buffer, dtype, shape, order):
    """``numpy.core.numeric._frombuffer`` (pickle protocol 5)."""
    out = _Array()
    out.array = _array_from_bytes(buffer, dtype, shape, order)
    return out


def _reconstruct_array(fun, args, arr_state, aval_state):
    """``jax._src.array._reconstruct_array``: a numpy array's reduce plus JAX aval info."""
    if not (isinstance(fun, _Callable) and fun.fn is _reconstruct and isinstance(args, tuple)):
        raise UnsafePickleError("jax arrays must be rebuilt with numpy's _reconstruct.")
    if not isinstance(aval_state, dict):
        raise UnsafePickleError("unexpected jax array aval state.")
    out = fun(*args)
    out.__setstate__(arr_state)
    return out


class _Scalar(_Inert):
    """Stand-in for ``numpy.core.multiarray.scalar(dtype, bytes)``."""

    __slots__ = ("value",)

    def __init__(self, dtype=None, data=None):
        self.value = _array_from_bytes(data, dtype, (), "C")[()]


def _codecs_encode(text, encoding="utf-8"):
    """``_codecs.encode(str, 'latin1')``: how protocol-2 pickles store bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("_codecs.encode is only accepted as (str, 'latin1').")
    return text.encode("latin1")


def _empty_bytes(*args):
    """``builtins.bytes()``: how protocol-2 pickles store b''."""
    if args:
        raise UnsafePickleError("bytes(...) is only accepted without arguments.")
    return b""


class _Factory(_Inert):
    """A builtin type named as a ``defaultdict`` default factory; not callable."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name


class _Callable(_Inert):
    """An allow-listed function (plain functions could be given attributes by BUILD)."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args):
        return self.fn(*args)


def _defaultdict(factory=None, *items):
    """``collections.defaultdict(factory)``: becomes a plain dict."""
    if factory is not None and not isinstance(factory, _Factory) or items:
        raise UnsafePickleError("defaultdict is only accepted with a builtin list/dict factory.")
    return {}


class _StateObject:
    """Stand-in for a plain class rebuilt from its ``__dict__``/slots (ShapeDtype, History)."""

    __slots__ = ("fields",)
    kind = ""

    def __init__(self):  # NEWOBJ calls __new__ only; BUILD fills `fields`.
        self.fields = None

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (__dict__, slots)
            merged = dict(state[0] or {})
            merged.update(state[1] or {})
            state = merged
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise UnsafePickleError(f"unexpected state for {self.kind}.")
        self.fields = state


class _ShapeDtype(_StateObject):
    __slots__ = ()
    kind = "trax.shapes.ShapeDtype"


class _History(_StateObject):
    __slots__ = ()
    kind = "trax.supervised.history.History"


_NUMPY_TYPE_NAMES = ("bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                     "uint64", "float16", "float32", "float64", "complex64", "complex128")

# Exact (module, name) pairs and what they resolve to. Nothing else is found.
_ALLOWED = {
    ("numpy", "ndarray"): _NDArrayType(),
    ("numpy", "dtype"): _DType,
    ("numpy.core.multiarray", "_reconstruct"): _Callable(_reconstruct),
    ("numpy._core.multiarray", "_reconstruct"): _Callable(_reconstruct),
    ("numpy.core.multiarray", "scalar"): _Scalar,
    ("numpy._core.multiarray", "scalar"): _Scalar,
    ("numpy.core.numeric", "_frombuffer"): _Callable(_frombuffer),
    ("numpy._core.numeric", "_frombuffer"): _Callable(_frombuffer),
    ("jax._src.array", "_reconstruct_array"): _Callable(_reconstruct_array),
    ("_codecs", "encode"): _Callable(_codecs_encode),
    ("collections", "defaultdict"): _Callable(_defaultdict),
    ("builtins", "bytes"): _Callable(_empty_bytes),
    ("builtins", "list"): _Factory("list"),
    ("builtins", "dict"): _Factory("dict"),
    ("trax.shapes", "ShapeDtype"): _ShapeDtype,
    ("trax.supervised.history", "History"): _History,
}
_FRESH_PER_LOOKUP = {("numpy", n) for n in _NUMPY_TYPE_NAMES}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file, source):
        super().__init__(file)
        self._source = source

    def find_class(self, module, name):
        key = ("builtins" if module == "__builtin__" else module, name)  # protocol-2 name
        if key in _FRESH_PER_LOOKUP:
            return _TypeName(name)
        if key in _ALLOWED:
            return _ALLOWED[key]
        raise UnsafePickleError(
            f"Refusing to load {self._source}: the pickle asks for {module}.{name}, which is "
            "not on the allow-list of what Trax checkpoints hold (numpy arrays and dtypes, "
            "jax arrays, trax.shapes.ShapeDtype, History, defaultdict). Nothing was executed.")

    def persistent_load(self, pid):
        raise UnsafePickleError(f"Refusing to load {self._source}: persistent ids are not accepted.")


def _finish(obj, memo):
    """Turns stand-ins into numpy values and checks every object is plain data."""
    key = id(obj)
    if key in memo:
        return memo[key]
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return obj
    if isinstance(obj, _Array):
        if obj.array is None:
            raise UnsafePickleError("an ndarray was created but never filled.")
        out = obj.array
    elif isinstance(obj, _Scalar):
        out = obj.value
    elif isinstance(obj, (_DType, _TypeName)):
        out = obj.dtype
    elif isinstance(obj, _ShapeDtype):
        fields = obj.fields or {}
        if set(fields) != {"shape", "dtype"}:
            raise UnsafePickleError(f"a ShapeDtype must have shape and dtype, got {sorted(fields)}.")
        out = shapes_lib.ShapeDtype(_finish(fields["shape"], memo),
                                    _finish(fields["dtype"], memo))
    elif isinstance(obj, _History):
        out = _finish(obj.fields or {}, memo)
    elif isinstance(obj, _Factory):
        out = obj.name
    elif type(obj) is bytearray:
        out = bytes(obj)
    elif type(obj) in (list, tuple, set, frozenset):
        out = type(obj)(_finish(x, memo) for x in obj)
    elif type(obj) is dict:
        out = {_finish(k, memo): _finish(v, memo) for k, v in obj.items()}
    else:
        raise UnsafePickleError(f"unexpected object of type {type(obj).__name__} in the pickle.")
    memo[key] = out
    return out


def safe_unpickle(data: bytes, source: str = "the pickle") -> Any:
    """Unpickles `data` built only from plain containers and allow-listed numpy/Trax values.

    numpy and JAX arrays come back as numpy arrays, dtypes as ``np.dtype``,
    ``trax.shapes.ShapeDtype`` as `pax_trax.shapes.ShapeDtype`, History and
    defaultdict as dicts. Anything else raises `UnsafePickleError`.

    >>> import pickle, numpy as np
    >>> safe_unpickle(pickle.dumps({'w': np.arange(3, dtype=np.float32)}))['w'].tolist()
    [0.0, 1.0, 2.0]
    """
    try:
        raw = _SafeUnpickler(io.BytesIO(data), source).load()
        return _finish(raw, {})
    except UnsafePickleError as exc:
        if str(exc).startswith("Refusing"):
            raise
        raise UnsafePickleError(f"Refusing to load {source}: {exc}") from None
    except Exception as exc:  # a malformed pickle: truncated, wrong opcodes, bad arguments
        raise TraxCheckpointError(
            f"Cannot read {source} as a Trax checkpoint pickle: {type(exc).__name__}: {exc}"
        ) from None


# ---------------------------------------------------------------------------
# Module <-> Trax weights layout


class _Slot:
    """A hole in a template: one array leaf of the module, with its place in the model."""

    __slots__ = ("index", "where", "shape", "dtype", "ignored", "reshape")

    def __init__(self, index, where, shape, dtype, ignored=False, reshape=False):
        self.index, self.where, self.shape, self.dtype = index, where, shape, dtype
        self.ignored, self.reshape = ignored, reshape


class _Node:
    """A template tuple, labelled with the layer it belongs to."""

    __slots__ = ("where", "items")

    def __init__(self, where, items):
        self.where, self.items = where, tuple(items)


def _slotted(tree, prefix):
    """`tree` with each array leaf replaced by a `_Slot`; returns (slotted tree, slots, treedef)."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    slots = [_Slot(i, prefix + jax.tree_util.keystr(p), tuple(np.shape(x)),
                   x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype)
             for i, (p, x) in enumerate(flat)]
    return jax.tree_util.tree_unflatten(treedef, slots), slots, treedef


def _as_node(value, where):
    """Plain nested tuples (from a class's own `weights`) as labelled nodes."""
    if isinstance(value, (tuple, list)):
        return _Node(where, [_as_node(v, where) for v in value])
    if isinstance(value, dict):  # Trax orders dict entries by key
        return _Node(where, [_as_node(value[k], where) for k in sorted(value)])
    return value


def _layer_paths(module, where):
    """Yields (module, label) for sublayers, labelled as errors name them: ``Serial[2]/Dense_2``."""
    for i, sub in enumerate(module.sublayers):
        yield sub, f"{where}[{i}]/{sub.name}"


def _label_slots(m, where):
    """Names every slot after its layer path and field: ``Serial[2]/Dense_2.w``."""
    d = m.__dict__
    for n in m._pt_params + m._pt_states:
        flat = jax.tree_util.tree_flatten_with_path(d[n])[0]
        for path, slot in flat:
            if isinstance(slot, _Slot):
                slot.where = f"{where}.{n}{jax.tree_util.keystr(path)}"
    for sub, label in _layer_paths(m, where):
        _label_slots(sub, label)


def _weights_template(m, where):
    from pax_trax.core.module import Module

    if type(m).weights is not Module.weights:  # the class defines its Trax layout itself
        return _as_node(m.weights, where)
    d = m.__dict__
    own = [x for n in m._pt_params if (x := d[n]) is not None]  # unset optional params are absent
    own = [_as_node(x, where) for x in own]
    subs = [_weights_template(s, label) for s, label in _layer_paths(m, where)]
    if not subs and len(own) == 1:
        return own[0]
    return _Node(where, own + subs)


def _state_template(m, where):
    from pax_trax.nn.attention import DotProductCausalAttention
    from pax_trax.nn.core import Dropout
    from pax_trax.nn.normalization import BatchNorm

    if isinstance(m, Dropout):  # Trax keeps the dropout rate as state; pax_trax does not.
        return _Slot(-1, f"{where}.rate", (), None, ignored=True)
    d = m.__dict__
    own = [x for n in m._pt_states if n not in m._pt_rngs and (x := d[n]) is not None]
    # Trax merges attention heads into the batch axis of its caches and keeps batch
    # statistics with the reduced axes as 1s: the same values in another shape.
    if isinstance(m, (DotProductCausalAttention, BatchNorm)):
        for slot in own:
            slot.reshape = True
    own = [_as_node(x, where) for x in own]
    subs = [_state_template(s, label) for s, label in _layer_paths(m, where)]
    if not subs and len(own) == 1:
        return own[0]
    return _Node(where, own + subs)


def _flatten_template(t, out):
    if isinstance(t, _Node):
        for x in t.items:
            _flatten_template(x, out)
    elif isinstance(t, _Slot):
        out.append(t)
    return out


def _is_array(x):
    return isinstance(x, (np.ndarray, np.generic, jax.Array))


def _is_empty(x):
    """No arrays in `x`: (), None, nested empty tuples (weightless Serials), or the
    marker Trax puts in place of weights shared with an earlier layer."""
    if x is None:
        return True
    if isinstance(x, (tuple, list)):
        return all(_is_empty(v) for v in x)
    return isinstance(x, dict) and set(x) == {"__marker_for_cached_weights_"}


def _describe(x):
    return f"a tuple of {len(x)}" if isinstance(x, (tuple, list)) else f"a {type(x).__name__}"


def _convert(value, slot, what):
    """Checks `value` against `slot` and returns it with the slot's dtype."""
    arr = np.asarray(value)
    shape = tuple(arr.shape)
    if shape != slot.shape:
        if not (slot.reshape and math.prod(shape) == math.prod(slot.shape)):
            raise TraxCheckpointError(
                f"{what}: {slot.where} expects shape {slot.shape}, the file has {shape}.")
        arr = arr.reshape(slot.shape)
    if arr.dtype == np.uint16 and slot.dtype == ml_dtypes.bfloat16:
        return arr.view(ml_dtypes.bfloat16)  # Trax stores bfloat16 as its bits
    if arr.dtype != slot.dtype:
        if not np.can_cast(arr.dtype, slot.dtype, "same_kind"):
            raise TraxCheckpointError(
                f"{what}: {slot.where} expects dtype {slot.dtype}, the file has {arr.dtype}.")
        arr = arr.astype(slot.dtype)
    return arr


def _skeleton(x):
    """A Trax tree without its weightless parts and one-element tuples (Trax and
    pax_trax wrap layers in different Serials; what is left is the same)."""
    if _is_array(x) or not isinstance(x, (tuple, list, dict)):
        return x
    values = [x[k] for k in sorted(x)] if isinstance(x, dict) else x
    items = [_skeleton(v) for v in values if not _is_empty(v)]
    return items[0] if len(items) == 1 else tuple(items)


def _template_skeleton(t):
    if isinstance(t, _Slot):
        return t
    items = [_template_skeleton(v) for v in t.items]
    items = [v for v in items if isinstance(v, _Slot) or v.items]
    return items[0] if len(items) == 1 else _Node(t.where, items)


def _shapes(x, limit=160):
    def show(v):
        if isinstance(v, _Slot):
            return str(v.shape)
        if isinstance(v, _Node):
            v = v.items
        if isinstance(v, tuple):
            return "(" + ", ".join(show(i) for i in v) + ")"
        return str(tuple(np.shape(v))) if _is_array(v) else type(v).__name__

    text = show(x)
    return text if len(text) <= limit else text[:limit] + "..."


def _count(t):
    if isinstance(t, (_Slot, _Node)):
        return 1 if isinstance(t, _Slot) else sum(_count(v) for v in t.items)
    return 1 if not isinstance(t, tuple) else sum(_count(v) for v in t)


def _match(t, x, out, what):
    """Matches template skeleton `t` against Trax skeleton `x`; fills `out[slot.index]`.

    A mismatch is reported at the deepest layer that holds all of the difference.
    """
    if isinstance(t, _Slot):
        if not _is_array(x):
            raise TraxCheckpointError(
                f"{what}: {t.where} expects an array of shape {t.shape}, the file has "
                f"{_shapes(x)} there.")
        out[t.index] = _convert(x, t, what)
        return
    if isinstance(x, tuple) and len(x) == len(t.items):
        differing = [i for i, (ti, xi) in enumerate(zip(t.items, x)) if _count(ti) != _count(xi)]
        if len(differing) <= 1:
            for ti, xi in zip(t.items, x):
                _match(ti, xi, out, what)
            return
    raise TraxCheckpointError(
        f"{what}: {t.where} expects weights of shapes {_shapes(t)}, the file has "
        f"{_shapes(x)} there (weightless layers and single-layer wrappers left out).")


def _match_flat(slots, arrays, what, kind):
    """Matches template slots one to one with a flat list of arrays, in order."""
    out = {}
    for i, (slot, value) in enumerate(zip(slots, arrays)):
        if not _is_array(value):
            raise TraxCheckpointError(f"{what}: {kind} {i} in the file is {_describe(value)}.")
        if slot.ignored:
            if np.shape(value) != slot.shape:
                raise TraxCheckpointError(
                    f"{what}: {slot.where} ({kind} {i}) expects shape {slot.shape}, the file "
                    f"has {tuple(np.shape(value))}.")
            continue
        try:
            out[slot.index] = _convert(value, slot, what)
        except TraxCheckpointError as exc:
            raise TraxCheckpointError(f"{exc} ({kind} {i} of the file's flat list)") from None
    if len(slots) != len(arrays):
        raise TraxCheckpointError(
            f"{what}: the model has {len(slots)} {kind} arrays, the file has {len(arrays)} "
            "(the first ones match; the model's layer structure differs from the one saved).")
    return out


def set_trax_weights(module, weights, flat=None, what=None):
    """Returns `module` with its parameters taken from a Trax weights tree or flat list.

    `weights` is nested as Trax's ``layer.weights`` (tuples in sublayer order,
    ``()`` for weightless layers), or flat (a list of arrays in that order,
    without the empty entries, as in Trax's ``Loop`` checkpoints; `flat=None`
    takes a list of arrays as flat and anything else as nested). `module`
    must be initialized (its parameter shapes are what the file must match).
    Arrays are cast to the module's dtypes (Trax's uint16 bfloat16 bits are
    read as bfloat16). A mismatch raises `TraxCheckpointError` naming the
    layer path and the expected and found shapes.
    """
    what = what or f"Cannot load Trax weights into {module.name}"
    _check_initialized(module, what)
    slotted, slots, treedef = _slotted(module.parameters(), module.name)
    _label_slots(slotted, module.name)
    template = _weights_template(slotted, module.name)
    flat_slots = _flatten_template(template, [])
    if flat is None:
        flat = isinstance(weights, list) and all(_is_array(w) for w in weights)
    found = {}
    if flat:
        found = _match_flat(flat_slots, list(weights), what, "weight")
    else:
        _match(_template_skeleton(template), _skeleton(weights), found, what)
    missing = [s.where for s in slots if s.index not in found]
    if missing:
        raise TraxCheckpointError(
            f"{what}: no Trax weight maps to {', '.join(missing[:4])}"
            f"{' ...' if len(missing) > 4 else ''} (the layer's `weights` layout leaves it out).")
    params = jax.tree_util.tree_unflatten(treedef, [found[s.index] for s in slots])
    return module.update_parameters(params)


def set_trax_state(module, flat_state, what=None):
    """Returns `(module, loaded)`: state from Trax's flat state list, if it fits.

    The module's non-RNG state leaves, in Trax's order (Trax's dropout rates
    are skipped; attention caches with heads merged into the batch axis are
    reshaped), must agree one to one in number and shape with `flat_state`;
    otherwise the module is returned unchanged and `loaded` is False.
    """
    what = what or f"Cannot load Trax state into {module.name}"
    slotted, slots, treedef = _slotted(module.states(), module.name)
    _label_slots(slotted, module.name)
    template_slots = _flatten_template(_state_template(slotted, module.name), [])
    try:
        found = _match_flat(template_slots, list(flat_state), what, "state")
    except TraxCheckpointError:
        return module, False
    leaves = jax.tree_util.tree_leaves(module.states())
    new = [found.get(s.index, leaf) for s, leaf in zip(slots, leaves)]
    states = jax.tree_util.tree_unflatten(treedef, new)
    return states.update_parameters(module.parameters()), True


def _check_initialized(module, what):
    missing = module.missing_parameters()
    if missing:
        raise TraxCheckpointError(
            f"{what}: the module is not initialized ({', '.join(missing[:3])} unset); pass "
            "input_signature=... or call model.init(...) first.")
