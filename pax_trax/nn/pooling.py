"""Pooling: Trax's `MaxPool`, `SumPool`, `AvgPool` layers and PAX's (Haiku's) functions.

Trax layers pool over every axis but the first (batch) and the last
(channels): an input of rank `n` needs a `pool_size` of length `n - 2`.
With `padding='SAME'` the padded positions never win a max, add nothing to
a sum, and are not counted in an average.

PAX's `max_pool` / `avg_pool` take a window and strides for every axis of
`value` (an int expands to all axes but the batch axis and `channel_axis`;
a shorter sequence is padded with leading 1s).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from jax import lax

from pax_trax.nn.base import Fn

__all__ = ["MaxPool", "SumPool", "AvgPool", "max_pool", "avg_pool"]


def _check_padding(padding, owner):
    if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
        raise ValueError(f"{owner}: padding must be 'SAME' or 'VALID', got {padding!r}.")
    return padding.upper()


# Init values are NumPy constants, not jnp arrays: under jit a jnp array is a
# tracer, and lax.reduce_window then falls back to a generic reduction that
# has no transpose rule (AvgPool/MaxPool would not be differentiable).
def _lowest(dtype):
    if jnp.issubdtype(dtype, jnp.floating):
        return np.array(-np.inf, dtype)
    if jnp.issubdtype(dtype, jnp.integer):
        return np.array(jnp.iinfo(dtype).min, dtype)
    if dtype == jnp.bool_:
        return np.array(False)
    raise TypeError(f"cannot max-pool an array of dtype {np.dtype(dtype).name}.")


def _window_max(x, dims, strides, padding):
    return lax.reduce_window(x, _lowest(x.dtype), lax.max, dims, strides, padding)


def _window_sum(x, dims, strides, padding):
    return lax.reduce_window(x, np.zeros((), x.dtype), lax.add, dims, strides, padding)


def _to_float(x):
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.float32)


def _window_mean(x, dims, strides, padding):
    x = _to_float(x)
    total = _window_sum(x, dims, strides, padding)
    if padding == "VALID":
        return total / np.prod(dims)
    # Count the real (unpadded) positions in each window.
    counts = _window_sum(jnp.ones(x.shape, x.dtype), dims, strides, padding)
    return total / counts


_REDUCERS = {"max": _window_max, "sum": _window_sum, "avg": _window_mean}


# ---------------------------------------------------------------------------
# Trax


@dataclasses.dataclass(frozen=True)
class _TraxPool:
    """The function of a Trax pooling layer; equal settings compare (and hash) equal."""

    kind: str
    pool_size: tuple
    strides: tuple | None
    padding: str

    def __call__(self, x):
        x = jnp.asarray(x)
        n = x.ndim - 2
        if isinstance(self.pool_size, int):
            pool_size = (self.pool_size,) * max(n, 0)
        else:
            pool_size = self.pool_size
        if n < 1 or len(pool_size) != n:
            raise ValueError(
                f"pool_size {self.pool_size} pools {len(pool_size)} axes, so the input must "
                f"have rank {len(pool_size) + 2} (batch, {len(pool_size)} spatial axes, "
                f"channels); got shape {tuple(x.shape)}.")
        strides = self.strides or (1,) * n
        if isinstance(strides, int):
            strides = (strides,) * n
        if len(strides) != n:
            raise ValueError(f"strides {self.strides} must have one entry per pooled axis "
                             f"({n}).")
        dims = (1,) + tuple(pool_size) + (1,)
        return _REDUCERS[self.kind](x, dims, (1,) + tuple(strides) + (1,), self.padding)


def _trax_pool(kind, layer, pool_size, strides, padding):
    def as_tuple(v, label):
        if v is None or isinstance(v, int):
            if isinstance(v, int) and v <= 0:
                raise ValueError(f"{layer}: {label} must be positive, got {v!r}.")
            return v
        try:
            v = tuple(int(d) for d in v)
        except TypeError:
            raise TypeError(f"{layer}: {label} must be a tuple of ints, got {v!r}.") from None
        if not v or any(d <= 0 for d in v):
            raise ValueError(f"{layer}: {label} must be a non-empty tuple of positive ints, "
                             f"got {v!r}.")
        return v

    pool_size = as_tuple(pool_size, "pool_size")
    if pool_size is None:
        raise ValueError(f"{layer}: pool_size is required.")
    strides = as_tuple(strides, "strides")
    if isinstance(pool_size, tuple) and isinstance(strides, tuple) and \
            len(strides) != len(pool_size):
        raise ValueError(f"{layer}: strides {strides} must have the length of pool_size "
                         f"{pool_size}.")
    f = _TraxPool(kind, pool_size, strides, _check_padding(padding, layer))
    return Fn(f"{layer}{pool_size}".replace(" ", ""), f)


def MaxPool(pool_size=(2, 2), strides=None, padding="VALID"):
    """Reduces each window over the middle axes to its maximum (Trax's `MaxPool`).

    >>> import numpy as np
    >>> x = np.array([[[0, 9], [1, 8], [2, 7], [3, 6], [4, 5]]], np.float32)
    >>> MaxPool(pool_size=(3,), strides=(3,), padding='SAME')(x).tolist()
    [[[2.0, 9.0], [4.0, 6.0]]]
    """
    return _trax_pool("max", "MaxPool", pool_size, strides, padding)


def SumPool(pool_size=(2, 2), strides=None, padding="VALID"):
    """Reduces each window over the middle axes to its sum (Trax's `SumPool`).

    >>> import numpy as np
    >>> x = np.array([[[0, 9], [1, 8], [2, 7], [3, 6], [4, 5]]], np.float32)
    >>> SumPool(pool_size=(3,), strides=(3,), padding='SAME')(x).tolist()
    [[[3.0, 24.0], [7.0, 11.0]]]
    """
    return _trax_pool("sum", "SumPool", pool_size, strides, padding)


def AvgPool(pool_size=(2, 2), strides=None, padding="VALID"):
    """Reduces each window over the middle axes to its mean (Trax's `AvgPool`).

    Padding added by `'SAME'` is not counted. Integer inputs give float32.

    >>> import numpy as np
    >>> x = np.array([[[0, 9], [1, 8], [2, 7], [3, 6], [4, 5]]], np.float32)
    >>> AvgPool(pool_size=(3,), strides=(3,), padding='SAME')(x).tolist()
    [[[1.0, 8.0], [3.5, 5.5]]]
    """
    return _trax_pool("avg", "AvgPool", pool_size, strides, padding)


# ---------------------------------------------------------------------------
# PAX (Haiku semantics)


def _infer_shape(x, size, channel_axis, label, owner):
    """Window or strides for every axis of `x`, as Haiku infers them."""
    if isinstance(size, (int, np.integer)):
        if channel_axis is not None and not -x.ndim <= channel_axis < x.ndim:
            raise ValueError(f"{owner}: invalid channel_axis {channel_axis} for an input "
                             f"of shape {tuple(x.shape)}.")
        if channel_axis is not None and channel_axis < 0:
            channel_axis += x.ndim
        # As Haiku: axis 0 (batch) is never pooled; channel_axis=0 means "none".
        return (1,) + tuple(1 if d == channel_axis else int(size) for d in range(1, x.ndim))
    size = tuple(int(s) for s in size)
    if len(size) > x.ndim:
        raise ValueError(f"{owner}: {label} {size} has more entries than the input has axes "
                         f"(shape {tuple(x.shape)}).")
    return (1,) * (x.ndim - len(size)) + size


def _pax_pool(kind, owner, value, window_shape, strides, padding, channel_axis):
    padding = _check_padding(padding, owner)
    value = jnp.asarray(value)
    if value.ndim < 1:
        raise ValueError(f"{owner}: expected an array with at least one axis, got a scalar.")
    window = _infer_shape(value, window_shape, channel_axis, "window_shape", owner)
    steps = _infer_shape(value, strides, channel_axis, "strides", owner)
    return _REDUCERS[kind](value, window, steps, padding)


def max_pool(value, window_shape, strides, padding, channel_axis=-1):
    """Max pool, as PAX's (Haiku's) `max_pool`; the result has the rank of `value`.

    >>> import numpy as np
    >>> max_pool(np.arange(16.).reshape(1, 4, 4, 1), 2, 2, 'VALID')[0, ..., 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """
    return _pax_pool("max", "max_pool", value, window_shape, strides, padding, channel_axis)


def avg_pool(value, window_shape, strides, padding, channel_axis=-1):
    """Average pool, as PAX's (Haiku's) `avg_pool`; `'SAME'` padding is not counted.

    >>> import numpy as np
    >>> avg_pool(np.arange(16.).reshape(1, 4, 4, 1), 2, 2, 'VALID')[0, ..., 0].tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    return _pax_pool("avg", "avg_pool", value, window_shape, strides, padding, channel_axis)
