"""PAX's normalization modules (Haiku semantics): `BatchNorm1D`, `BatchNorm2D`,
`GroupNorm` and `PaxLayerNorm` (PAX's `LayerNorm`, renamed because Trax's
`LayerNorm` has the plain name; `pax_trax.pax.LayerNorm` is this one).

They take the channel count up front and hold `scale` / `offset`; the
BatchNorms also hold running averages as state and change it in
`mode='train'`, so they are called there with `pax_trax.purecall`. Trax's
normalization layers are in `pax_trax.nn.normalization`.
"""

from __future__ import annotations

import collections.abc

import jax
import jax.numpy as jnp
import numpy as np

from pax_trax.core.module import Module, param, state, static
from pax_trax.nn import initializers as init
from pax_trax.nn.core import check_mode

__all__ = ["BatchNorm1D", "BatchNorm2D", "GroupNorm", "PaxLayerNorm"]


_AxisSlice = collections.namedtuple("_AxisSlice", "start stop step")


def _as_axis(axis, owner):
    """`axis` in a hashable form: a tuple of ints, or an _AxisSlice for a slice."""
    if isinstance(axis, slice):
        return _AxisSlice(axis.start, axis.stop, axis.step)
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        return (int(axis),)
    if isinstance(axis, collections.abc.Iterable):
        axis = tuple(axis)
        if all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
            return tuple(int(a) for a in axis)
    raise ValueError(f"{owner}: `axis` should be an int, slice or iterable of ints, got "
                     f"{axis!r}.")


def _resolve_axes(axis, rank, shape):
    if isinstance(axis, _AxisSlice):
        axes = tuple(range(rank))[slice(*axis)]
    else:
        bad = [a for a in axis if not -rank <= a < rank]
        if bad:
            raise ValueError(f"axis {axis} is out of range for an input of rank {rank} "
                             f"(shape {tuple(shape)}).")
        axes = tuple(sorted({a % rank for a in axis}))
    if not axes:
        raise ValueError(f"axis selects no axis of an input of shape {tuple(shape)}.")
    return axes


def _check_inits(create_scale, create_offset, scale_init, offset_init, owner):
    if not create_scale and scale_init is not None:
        raise ValueError(f"{owner}: cannot set `scale_init` if `create_scale=False`.")
    if not create_offset and offset_init is not None:
        raise ValueError(f"{owner}: cannot set `offset_init` if `create_offset=False`.")


def _missing_scale_offset(module):
    return [n for n, flag in (("scale", module.create_scale), ("offset", module.create_offset))
            if flag and getattr(module, n) is None]


class _ScaleOffsetMixin:
    """Creation of `(num_channels,)` scale/offset and the call with external ones."""

    def _create(self, key):
        k1, k2 = jax.random.split(key) if key is not None else (None, None)
        shape = (self.num_channels,)
        scale = (self.scale_init or init.ones)(shape, k1) if self.create_scale else None
        offset = (self.offset_init or init.zeros)(shape, k2) if self.create_offset else None
        return scale, offset

    def _maybe_create(self, rng_key):
        """At construction: with a key, or when the default (constant) inits are used."""
        if rng_key is not None or (self.scale_init is None and self.offset_init is None):
            self.scale, self.offset = self._create(rng_key)

    def _missing_params(self):
        return _missing_scale_offset(self)

    def _init_params(self, key):
        if self._missing_params():
            scale, offset = self._create(key)
            return self.replace(scale=scale, offset=offset)
        return self

    def _scale_offset(self, scale, offset):
        if self.create_scale and scale is not None:
            raise ValueError("cannot pass `scale` at call time if `create_scale=True`.")
        if self.create_offset and offset is not None:
            raise ValueError("cannot pass `offset` at call time if `create_offset=True`.")
        return (self.scale if self.create_scale else scale,
                self.offset if self.create_offset else offset)

    def __call__(self, x, scale=None, offset=None):
        extra = () if scale is None and offset is None else (scale, offset)
        return Module.__call__(self, x, *extra)


class PaxLayerNorm(_ScaleOffsetMixin, Module):
    """PAX's (Haiku's) `LayerNorm`, exported by PAX as `LayerNorm`.

    Normalizes over `axis` (an int, a sequence of ints or a slice) with
    `y = scale * (x - mean) / sqrt(var + eps) + offset`; `scale` and
    `offset` have shape `(num_channels,)` and act on the last axis. Without
    `create_scale` / `create_offset` they may be given at call time:
    `ln(x, scale, offset)`. The parameters are created at construction when
    the default (constant) initializers are used or `rng_key` is given, else
    by `init(...)`.

    >>> import numpy as np
    >>> ln = PaxLayerNorm(5, -1, True, True)
    >>> np.round(np.float64(ln(np.array([[1., 2., 3., 4., 5.]], np.float32))), 3).tolist()
    [[-1.414, -0.707, 0.0, 0.707, 1.414]]
    """

    num_channels = static()
    axis = static()
    create_scale = static()
    create_offset = static()
    eps = static()
    scale_init = static()
    offset_init = static()
    scale = param()
    offset = param()

    def __init__(self, num_channels, axis, create_scale, create_offset, eps=1e-5,
                 scale_init=None, offset_init=None, *, rng_key=None, name=None):
        owner = "LayerNorm"
        _check_inits(create_scale, create_offset, scale_init, offset_init, owner)
        if not isinstance(num_channels, (int, np.integer)) or num_channels <= 0:
            raise ValueError(f"{owner}: num_channels must be a positive int, got "
                             f"{num_channels!r}.")
        self.num_channels = int(num_channels)
        self.axis = _as_axis(axis, owner)
        self.create_scale = bool(create_scale)
        self.create_offset = bool(create_offset)
        self.eps = float(eps)
        self.scale_init = scale_init
        self.offset_init = offset_init
        self.name = name or "LayerNorm"
        self._maybe_create(rng_key)

    def _check(self, shape):
        if len(shape) < 1 or ((self.create_scale or self.create_offset)
                              and shape[-1] != self.num_channels):
            raise ValueError(f"{self.name} expects an input [N, ..., C] with C="
                             f"{self.num_channels} channels last, got shape {tuple(shape)}.")

    def init_weights_and_state(self, input_signature, key):
        self._check(input_signature.shape)
        _resolve_axes(self.axis, len(input_signature.shape), input_signature.shape)
        return self._init_params(key)

    def forward(self, x, scale=None, offset=None):
        self._check(x.shape)
        scale, offset = self._scale_offset(scale, offset)
        axes = _resolve_axes(self.axis, x.ndim, x.shape)
        mean = jnp.mean(x, axis=axes, keepdims=True)
        var = jnp.var(x, axis=axes, keepdims=True)
        inv = jax.lax.rsqrt(var + jnp.asarray(self.eps, var.dtype))
        if scale is not None:
            inv = inv * scale
        y = (x - mean) * inv
        return y + offset if offset is not None else y

    def __repr__(self):
        return (f"LayerNorm(num_channels={self.num_channels}, create_scale="
                f"{self.create_scale}, create_offset={self.create_offset})")


_CHANNELS_FIRST = ("channels_first", "NC...", "NCW", "NCHW", "NCDHW")
_CHANNELS_LAST = ("channels_last", "N...C", "NWC", "NHWC", "NDHWC")


class GroupNorm(_ScaleOffsetMixin, Module):
    """Group normalization, as PAX's (Haiku's) `GroupNorm`.

    The channels are split into `groups`; mean and variance are taken per
    group over `axis` (default: all axes but the batch axis), then
    `y = scale * (x - mean) / sqrt(var + eps) + offset` with per-channel
    `scale` / `offset` of shape `(num_channels,)`, applied along the channel
    axis of `data_format` (`'channels_last'` / `'N...C'` or
    `'channels_first'` / `'NC...'`).

    >>> import numpy as np
    >>> gn = GroupNorm(2, 4)
    >>> gn(np.arange(16, dtype=np.float32).reshape(2, 2, 4)).shape
    (2, 2, 4)
    """

    groups = static()
    num_channels = static()
    axis = static()
    create_scale = static()
    create_offset = static()
    eps = static()
    scale_init = static()
    offset_init = static()
    data_format = static()
    scale = param()
    offset = param()

    def __init__(self, groups, num_channels, axis=slice(1, None), create_scale=True,
                 create_offset=True, eps=1e-5, scale_init=None, offset_init=None,
                 data_format="channels_last", *, rng_key=None, name=None):
        owner = "GroupNorm"
        _check_inits(create_scale, create_offset, scale_init, offset_init, owner)
        for label, value in (("groups", groups), ("num_channels", num_channels)):
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{owner}: {label} must be a positive int, got {value!r}.")
        if num_channels % groups:
            raise ValueError(f"{owner}: the number of channels must be divisible by the "
                             f"number of groups, got num_channels={num_channels}, "
                             f"groups={groups}.")
        if data_format not in _CHANNELS_FIRST + _CHANNELS_LAST:
            raise ValueError(f"{owner}: data_format must be 'channels_last', 'N...C', "
                             f"'channels_first' or 'NC...', got {data_format!r}.")
        self.groups = int(groups)
        self.num_channels = int(num_channels)
        self.axis = _as_axis(axis, owner)
        self.create_scale = bool(create_scale)
        self.create_offset = bool(create_offset)
        self.eps = float(eps)
        self.scale_init = scale_init
        self.offset_init = offset_init
        self.data_format = data_format
        self.name = name or "GroupNorm"
        self._maybe_create(rng_key)

    @property
    def _channels_first(self):
        return self.data_format in _CHANNELS_FIRST

    def _check(self, shape):
        rank = len(shape)
        channel_axis = 1 if self._channels_first else rank - 1
        if rank < 2 or shape[channel_axis] != self.num_channels:
            where = "[N, C, ...]" if self._channels_first else "[N, ..., C]"
            raise ValueError(f"{self.name} expects an input {where} of rank >= 2 with C="
                             f"{self.num_channels}, got shape {tuple(shape)}.")

    def init_weights_and_state(self, input_signature, key):
        self._check(input_signature.shape)
        _resolve_axes(self.axis, len(input_signature.shape), input_signature.shape)
        return self._init_params(key)

    def forward(self, x, scale=None, offset=None):
        self._check(x.shape)
        scale, offset = self._scale_offset(scale, offset)
        rank, g, c = x.ndim, self.groups, self.num_channels
        axes = _resolve_axes(self.axis, rank, x.shape)
        # Split the channel axis into (groups, channels per group); the stats are
        # taken over the per-group channels, never over the groups axis.
        if self._channels_first:
            axes = tuple(a if a == 0 else a + 1 for a in axes)
            grouped = x.reshape(x.shape[:1] + (g, c // g) + x.shape[2:])
            channel_shape = (c,) + (1,) * (rank - 2)
        else:
            axes = tuple(a if a != rank - 1 else a + 1 for a in axes)
            grouped = x.reshape(x.shape[:-1] + (g, c // g))
            channel_shape = (c,)
        mean = jnp.mean(grouped, axis=axes, keepdims=True)
        var = jnp.var(grouped, axis=axes, keepdims=True)
        y = ((grouped - mean) * jax.lax.rsqrt(var + self.eps)).reshape(x.shape)
        if scale is not None:
            scale = scale.reshape(channel_shape) if self.create_scale else \
                jax.lax.broadcast_to_rank(jnp.asarray(scale), rank)
            y = y * scale
        if offset is not None:
            offset = offset.reshape(channel_shape) if self.create_offset else \
                jax.lax.broadcast_to_rank(jnp.asarray(offset), rank)
            y = y + offset
        return y


class _PaxBatchNorm(Module):
    """Shared code of PAX's BatchNorm1D / BatchNorm2D."""

    _n_spatial = 0
    _formats = ()

    num_channels = static()
    create_scale = static()
    create_offset = static()
    decay_rate = static()
    eps = static()
    data_format = static()
    mode = static(default="train")
    scale = param()
    offset = param()
    ema_mean = state()
    ema_var = state()
    ema_debias = state()

    def __init__(self, num_channels, create_scale=True, create_offset=True, decay_rate=0.9,
                 eps=1e-5, data_format=None, *, name=None, mode="train"):
        owner = type(self).__name__
        if not isinstance(num_channels, (int, np.integer)) or num_channels <= 0:
            raise ValueError(f"{owner}: num_channels must be a positive int, got "
                             f"{num_channels!r}.")
        if not 0.0 <= decay_rate <= 1.0:
            raise ValueError(f"{owner}: decay_rate must be in [0, 1], got {decay_rate!r}.")
        data_format = data_format or self._formats[0]
        if data_format not in self._formats:
            raise ValueError(f"{owner}: data_format must be one of {self._formats}, got "
                             f"{data_format!r}.")
        self.num_channels = int(num_channels)
        self.create_scale = bool(create_scale)
        self.create_offset = bool(create_offset)
        self.decay_rate = float(decay_rate)
        self.eps = float(eps)
        self.data_format = data_format
        self.mode = check_mode(mode, owner)
        self.name = name or owner
        shape = self._param_shape
        self.scale = jnp.ones(shape, jnp.float32) if create_scale else None
        self.offset = jnp.zeros(shape, jnp.float32) if create_offset else None
        self.ema_mean = jnp.zeros(shape, jnp.float32)
        self.ema_var = jnp.zeros(shape, jnp.float32)
        self.ema_debias = jnp.zeros((), jnp.float32)

    @property
    def _channel_axis(self):
        return 1 if self.data_format[1] == "C" else self._n_spatial + 1

    @property
    def _param_shape(self):
        shape = [1] * (self._n_spatial + 2)
        shape[self._channel_axis] = self.num_channels
        return tuple(shape)

    @property
    def _reduced_axes(self):
        return tuple(a for a in range(self._n_spatial + 2) if a != self._channel_axis)

    def _missing_params(self):
        return _missing_scale_offset(self)

    def _check(self, shape):
        rank = self._n_spatial + 2
        if len(shape) != rank or shape[self._channel_axis] != self.num_channels:
            raise ValueError(f"{self.name} expects an input of rank {rank} "
                             f"({self.data_format}) with {self.num_channels} channels, got "
                             f"shape {tuple(shape)}.")

    def init_weights_and_state(self, input_signature, key):
        del key
        self._check(input_signature.shape)
        return self

    def forward_with_state(self, x):
        self._check(x.shape)
        new = self
        if self.mode == "train":
            axes = self._reduced_axes
            mean = jnp.mean(x, axis=axes, keepdims=True)
            var = jnp.mean(jnp.square(x), axis=axes, keepdims=True) - jnp.square(mean)
            seen = self.ema_debias > 0
            d = self.decay_rate

            def update(average, value):
                # PAX's debiased EMA: the first update starts from the value itself.
                start = jnp.where(seen, average, value)
                return (start * d + value * (1 - d)).astype(average.dtype)

            new = self.replace(ema_mean=update(self.ema_mean, mean),
                               ema_var=update(self.ema_var, var),
                               ema_debias=jnp.ones_like(self.ema_debias))
        else:
            mean, var = self.ema_mean, self.ema_var
        inv = jax.lax.rsqrt(var + self.eps)
        if self.create_scale:
            inv = inv * self.scale
        y = (x - mean) * inv
        if self.create_offset:
            y = y + self.offset
        return new, y

    def __repr__(self):
        return (f"{type(self).__name__}(num_channels={self.num_channels}, create_scale="
                f"{self.create_scale}, create_offset={self.create_offset}, data_format="
                f"{self.data_format!r}, decay_rate={self.decay_rate})")


class BatchNorm1D(_PaxBatchNorm):
    """PAX's 1-D BatchNorm over `NWC` / `NCW` inputs.

    In `mode='train'` (the default) it normalizes with the batch statistics
    over all axes but the channel axis and updates the running averages
    `ema_mean` / `ema_var` (decay `decay_rate`; as PAX's debiased EMA, the
    first update sets them to the batch statistics), so it is called with
    `pax_trax.purecall`; after `.eval()` it uses the averages. Parameters
    `scale` / `offset` have shape `(1, 1, C)` (or `(1, C, 1)` for `NCW`).

    >>> import numpy as np, pax_trax
    >>> bn = BatchNorm1D(3)
    >>> bn, y = pax_trax.purecall(bn, np.arange(12, dtype=np.float32).reshape(2, 2, 3))
    >>> np.round(np.float64(bn.ema_mean.ravel()), 4).tolist()
    [4.5, 5.5, 6.5]
    """

    _n_spatial, _formats = 1, ("NWC", "NCW")

    def __init__(self, num_channels, create_scale=True, create_offset=True, decay_rate=0.9,
                 eps=1e-5, data_format="NWC", *, name=None, mode="train"):
        super().__init__(num_channels, create_scale, create_offset, decay_rate, eps,
                         data_format, name=name, mode=mode)


class BatchNorm2D(_PaxBatchNorm):
    """PAX's 2-D BatchNorm over `NHWC` / `NCHW` inputs; see `BatchNorm1D`.

    >>> import numpy as np
    >>> bn = BatchNorm2D(3, data_format='NCHW').eval()
    >>> bn(np.zeros((2, 3, 4, 4), np.float32)).shape
    (2, 3, 4, 4)
    """

    _n_spatial, _formats = 2, ("NHWC", "NCHW")

    def __init__(self, num_channels, create_scale=True, create_offset=True, decay_rate=0.9,
                 eps=1e-5, data_format="NHWC", *, name=None, mode="train"):
        super().__init__(num_channels, create_scale, create_offset, decay_rate, eps,
                         data_format, name=name, mode=mode)
