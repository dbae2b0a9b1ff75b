"""Shapes and dtypes of layer inputs and outputs, as in ``trax.shapes``.

A *signature* is a :class:`ShapeDtype` or a (nested) tuple/dict of them. Layers
are initialized from signatures, so no real data is needed to build a model::

    >>> import numpy as np
    >>> from pax_trax import shapes
    >>> shapes.signature(np.zeros((2, 3), np.int32))
    ShapeDtype{shape:(2, 3), dtype:int32}
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "ShapeDtype",
    "signature",
    "splice_signatures",
    "assert_shape_equals",
    "assert_same_shape",
    "to_jax",
    "from_jax",
]


class ShapeDtype:
    """A NumPy ndarray-like object abstracted as shape and dtype.

    >>> ShapeDtype((2, 3)).as_tuple()
    ((2, 3), dtype('float32'))
    """

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype=np.float32):
        if isinstance(shape, int):
            shape = (shape,)
        try:
            shape = tuple(shape)
        except TypeError:
            raise TypeError(
                f"ShapeDtype: shape must be a tuple or list of ints, got {shape!r}."
            ) from None
        for dim in shape:
            if dim is not None and not isinstance(dim, (int, np.integer)):
                raise TypeError(
                    f"ShapeDtype: every dimension must be an int or None, got {shape!r}."
                )
        object.__setattr__(self, "shape", tuple(None if d is None else int(d) for d in shape))
        object.__setattr__(self, "dtype", _canonical_dtype(dtype))

    def __setattr__(self, name, value):
        raise AttributeError("ShapeDtype is immutable; use .replace(...) for a changed copy.")

    def as_tuple(self):
        return self.shape, self.dtype

    def replace(self, **kwargs):
        """Returns a copy with `shape` and/or `dtype` replaced."""
        unknown = set(kwargs) - {"shape", "dtype"}
        if unknown:
            raise TypeError(f"ShapeDtype.replace: unknown fields {sorted(unknown)}.")
        return ShapeDtype(kwargs.get("shape", self.shape), kwargs.get("dtype", self.dtype))

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape)) if None not in self.shape else None

    def __eq__(self, other):
        return (
            isinstance(other, ShapeDtype)
            and self.shape == other.shape
            and self.dtype == other.dtype
        )

    def __hash__(self):
        return hash((self.shape, self.dtype))

    def __repr__(self):
        return f"ShapeDtype{{shape:{self.shape}, dtype:{self.dtype}}}"


def _canonical_dtype(dtype):
    # jax.dtypes knows bfloat16 and key types; numpy alone does not.
    try:
        return np.dtype(dtype)
    except TypeError:
        import jax

        return jax.dtypes.canonicalize_dtype(dtype)


def signature(obj: Any):
    """Returns a ShapeDtype signature for `obj`.

    `obj` is anything with `shape` and `dtype` attributes, a ShapeDtype, or a
    list/tuple/dict of such objects (nested). Lists become tuples. Python
    numbers and nested lists of numbers are read as NumPy arrays.

    >>> signature((np.zeros(3), np.zeros((2, 2), np.int32)))
    (ShapeDtype{shape:(3,), dtype:float64}, ShapeDtype{shape:(2, 2), dtype:int32})
    """
    if isinstance(obj, ShapeDtype):
        return obj
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):
        return ShapeDtype(obj.shape, obj.dtype)
    if isinstance(obj, tuple):
        return _same_tuple_type(obj, [signature(x) for x in obj])
    if isinstance(obj, list):
        return tuple(signature(x) for x in obj)
    if isinstance(obj, dict):
        return {k: signature(v) for k, v in obj.items()}
    if isinstance(obj, (bool, int, float, complex, np.generic)):
        arr = np.asarray(obj)
        return ShapeDtype(arr.shape, arr.dtype)
    raise TypeError(
        "signature: expected an array, a ShapeDtype, or a list/tuple/dict of them; "
        f"got {type(obj).__name__}: {obj!r}."
    )


def splice_signatures(*sigs):
    """Flattens the top level of several signatures into one.

    `sd1, (sd2, sd3), (), sd4` becomes `(sd1, sd2, sd3, sd4)`; a single result
    is returned bare.
    """
    result = []
    for sig in sigs:
        if isinstance(sig, (list, tuple)):
            result.extend(sig)
        else:
            result.append(sig)
    return result[0] if len(result) == 1 else tuple(result)


def assert_shape_equals(array, shape):
    """Asserts that `array` has shape `shape`."""
    if tuple(array.shape) != tuple(shape):
        raise AssertionError(f"Expected shape {tuple(shape)}, got {tuple(array.shape)}.")


def assert_same_shape(array1, array2):
    """Asserts that two arrays have the same shape."""
    if tuple(array1.shape) != tuple(array2.shape):
        raise AssertionError(
            f"Expected arrays of the same shape, got {tuple(array1.shape)} "
            f"and {tuple(array2.shape)}."
        )


def canonicalize(sig):
    """Maps dtypes to those JAX computes in (float64 -> float32 unless x64 is on)."""
    import jax

    if isinstance(sig, ShapeDtype):
        return ShapeDtype(sig.shape, jax.dtypes.canonicalize_dtype(sig.dtype))
    if isinstance(sig, tuple):
        return _same_tuple_type(sig, [canonicalize(s) for s in sig])
    if isinstance(sig, dict):
        return {k: canonicalize(v) for k, v in sig.items()}
    return sig


def to_jax(sig):
    """Converts a signature to the same structure of `jax.ShapeDtypeStruct`."""
    import jax

    if isinstance(sig, ShapeDtype):
        if None in sig.shape:
            raise ValueError(
                f"Cannot trace a signature with unknown dimensions: {sig}. "
                "Give every dimension a size."
            )
        return jax.ShapeDtypeStruct(sig.shape, sig.dtype)
    if isinstance(sig, tuple):
        return _same_tuple_type(sig, [to_jax(s) for s in sig])
    if isinstance(sig, dict):
        return {k: to_jax(v) for k, v in sig.items()}
    return sig


def from_jax(tree):
    """Converts abstract values (anything with shape/dtype) back to ShapeDtype."""
    if hasattr(tree, "shape") and hasattr(tree, "dtype"):
        return ShapeDtype(tree.shape, tree.dtype)
    if isinstance(tree, tuple):
        return _same_tuple_type(tree, [from_jax(t) for t in tree])
    if isinstance(tree, list):
        return tuple(from_jax(t) for t in tree)
    if isinstance(tree, dict):
        return {k: from_jax(v) for k, v in tree.items()}
    return tree


def _same_tuple_type(original, items):
    """A tuple of `items`, keeping NamedTuple types (e.g. an RNN state)."""
    if hasattr(type(original), "_fields"):
        return type(original)(*items)
    return tuple(items)
