"""Convolutions: Trax's `Conv`, `CausalConv`, `Conv1d` and PAX's (Haiku's) ConvND modules.

Trax layers infer the input channels at `init`; their weights are `(w, b)`
(just `w` when `use_bias=False`), the kernel laid out by the middle entry of
`dimension_numbers` (`'HWIO'` by default).

PAX modules take explicit sizes and hold `weight` / `bias`. The kernel is
`kernel_shape + (in_features // feature_group_count, out_features)` for
`Conv1D`/`Conv2D` and `kernel_shape + (out_features, in_features)` for the
transposed convolutions (Haiku's `WOI`/`HWOI` layout); the bias has shape
`(out_features,)` and is broadcast along the channel axis of `data_format`.
Initializers are called as `init(shape, key)` (pax_trax's convention).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from pax_trax.core.module import Module, param, static
from pax_trax.nn import initializers as init

__all__ = [
    "Conv",
    "CausalConv",
    "Conv1d",
    "Conv1D",
    "Conv2D",
    "Conv1DTranspose",
    "Conv2DTranspose",
]

_TRAX_BIAS_INIT = init.RandomNormalInitializer(1e-6)


def _as_int_tuple(value, n, label, owner):
    """An int or a sequence of `n` ints as a tuple of `n` positive ints."""
    if isinstance(value, (int, np.integer)):
        value = (int(value),) * n
    try:
        value = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"{owner}: {label} must be an int or a sequence of {n} ints, "
                        f"got {value!r}.") from None
    if len(value) != n or any(v <= 0 for v in value):
        raise ValueError(f"{owner}: {label} must be a positive int or a sequence of {n} "
                         f"positive ints, got {value!r}.")
    return value


def _as_padding(padding, n, owner):
    """'SAME' / 'VALID' (any case) or `n` (low, high) pairs, as a hashable value."""
    if isinstance(padding, str):
        upper = padding.upper()
        if upper not in ("SAME", "VALID"):
            raise ValueError(f"{owner}: padding must be 'SAME', 'VALID' or a sequence of "
                             f"{n} (low, high) pairs, got {padding!r}.")
        return upper
    try:
        pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: padding must be 'SAME', 'VALID' or a sequence of {n} "
                         f"(low, high) pairs, got {padding!r}.") from None
    if len(pairs) != n:
        raise ValueError(f"{owner}: padding needs {n} (low, high) pairs, one per spatial "
                         f"axis, got {len(pairs)}: {padding!r}.")
    return pairs


def _positive_int(value, label, owner):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{owner}: {label} must be a positive int, got {value!r}.")
    return int(value)


# ---------------------------------------------------------------------------
# Trax


class Conv(Module):
    """A general convolution, as Trax's `Conv`.

    `dimension_numbers` gives the layouts of input, kernel and output (e.g.
    `('NHWC', 'HWIO', 'NHWC')`); `kernel_size` lists the spatial kernel sizes
    in the order they appear in the kernel layout. Inputs with more axes than
    the input layout have their leading axes folded into the batch axis
    (Trax's "rebatching"), which needs layouts that start with `N`.

    >>> import numpy as np
    >>> conv = Conv(30, (3, 3)).init(np.zeros((9, 5, 5, 20), np.float32))
    >>> conv(np.ones((9, 5, 5, 20), np.float32)).shape
    (9, 3, 3, 30)
    """

    filters = static()
    kernel_size = static()
    strides = static()
    padding = static()
    dimension_numbers = static()
    kernel_initializer = static()
    bias_initializer = static()
    use_bias = static()
    w = param()
    b = param()

    def __init__(self, filters, kernel_size, strides=None, padding="VALID",
                 dimension_numbers=("NHWC", "HWIO", "NHWC"), kernel_initializer=None,
                 bias_initializer=_TRAX_BIAS_INIT, use_bias=True):
        owner = type(self).__name__
        self.filters = _positive_int(filters, "filters", owner)
        try:
            lhs, rhs, out = (str(s) for s in dimension_numbers)
        except (TypeError, ValueError):
            raise ValueError(f"{owner}: dimension_numbers must be three layout strings "
                             f"(input, kernel, output), got {dimension_numbers!r}.") from None
        n = len(lhs) - 2
        if n < 1 or len(rhs) != n + 2 or len(out) != n + 2 or "C" not in lhs or \
                "N" not in lhs or not {"I", "O"} <= set(rhs) or "C" not in out:
            raise ValueError(f"{owner}: inconsistent dimension_numbers {dimension_numbers!r}.")
        if isinstance(kernel_size, (int, np.integer)):
            raise TypeError(f"{owner}: kernel_size must be a tuple of {n} ints (one per "
                            f"spatial axis), got the int {kernel_size!r}.")
        self.kernel_size = _as_int_tuple(kernel_size, n, "kernel_size", owner)
        self.strides = (1,) * n if strides is None else _as_int_tuple(strides, n, "strides", owner)
        self.padding = _as_padding(padding, n, owner)
        self.dimension_numbers = (lhs, rhs, out)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.use_bias = bool(use_bias)
        self.name = "Conv"

    @property
    def weights(self):
        """Trax's weights: `(w, b)`, or just `w` without a bias."""
        return (self.w, self.b) if self.use_bias else self.w

    def _missing_params(self):
        return ["w"] if self.w is None else (["b"] if self.use_bias and self.b is None else [])

    def _folded_shape(self, shape):
        """Input shape with extra leading axes folded into the batch axis."""
        lhs, _, out = self.dimension_numbers
        rank = len(lhs)
        if len(shape) < rank:
            raise ValueError(f"expected an input of rank {rank} (layout {lhs}) or more, got "
                             f"shape {tuple(shape)} of rank {len(shape)}.")
        if len(shape) == rank:
            return tuple(shape)
        if lhs[0] != "N" or out[0] != "N":
            raise ValueError(f"inputs of rank > {rank} are only supported when the input and "
                             f"output layouts start with 'N', got {lhs!r} -> {out!r} and "
                             f"shape {tuple(shape)}.")
        return (math.prod(shape[:len(shape) - rank + 1]),) + tuple(shape[len(shape) - rank + 1:])

    def init_weights_and_state(self, input_signature, key):
        lhs, rhs, out = self.dimension_numbers
        shape = self._folded_shape(input_signature.shape)
        sizes = iter(self.kernel_size)
        kernel_shape = tuple(self.filters if c == "O" else shape[lhs.index("C")] if c == "I"
                             else next(sizes) for c in rhs)
        kernel_init = self.kernel_initializer or init.GlorotNormalInitializer(
            rhs.index("O"), rhs.index("I"))
        k_w, k_b = jax.random.split(key)
        w = kernel_init(kernel_shape, k_w)
        b = None
        if self.use_bias:
            bias_shape = [self.filters if c == "C" else 1 for c in out]
            while bias_shape and bias_shape[0] == 1:
                bias_shape.pop(0)
            b = self.bias_initializer(tuple(bias_shape), k_b)
        return self.replace(w=w, b=b)

    def forward(self, x):
        lhs, rhs, _ = self.dimension_numbers
        shape = self._folded_shape(x.shape)
        channels, expected = shape[lhs.index("C")], self.w.shape[rhs.index("I")]
        if channels != expected:
            raise ValueError(f"expected {expected} input channels (axis {lhs.index('C')} of "
                             f"layout {lhs}), got shape {tuple(x.shape)}.")
        y = jax.lax.conv_general_dilated(
            jnp.reshape(x, shape), self.w, self.strides, self.padding,
            dimension_numbers=self.dimension_numbers)
        if self.use_bias:
            y = y + self.b
        if x.ndim > len(lhs):
            y = jnp.reshape(y, tuple(x.shape[:x.ndim - len(lhs) + 1]) + tuple(y.shape[1:]))
        return y


class CausalConv(Conv):
    """Causal convolution over time for `[batch, time, depth]` inputs, as Trax's.

    The input is padded with `kernel_width - 1` zeros at the start of the time
    axis, so output step `t` sees only inputs `<= t`; the output keeps the
    input's length.

    >>> import numpy as np
    >>> conv = CausalConv(30, kernel_width=3).init(np.zeros((9, 5, 20), np.float32))
    >>> conv(np.ones((9, 5, 20), np.float32)).shape
    (9, 5, 30)
    """

    def __init__(self, filters, kernel_width=3, kernel_initializer=None,
                 bias_initializer=_TRAX_BIAS_INIT, use_bias=True):
        super().__init__(filters, (kernel_width,), strides=None, padding="VALID",
                         dimension_numbers=("NWC", "WIO", "NWC"),
                         kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer, use_bias=use_bias)
        self.name = "CausalConv"

    def _check_rank(self, shape):
        if len(shape) != 3:
            raise ValueError(f"expected a [batch, time, depth] input of rank 3, got shape "
                             f"{tuple(shape)}.")

    def init_weights_and_state(self, input_signature, key):
        self._check_rank(input_signature.shape)
        return super().init_weights_and_state(input_signature, key)

    def forward(self, x):
        self._check_rank(x.shape)
        pad = self.kernel_size[0] - 1
        return super().forward(jnp.pad(x, ((0, 0), (pad, 0), (0, 0))))


def Conv1d(filters, kernel_size, stride=1, padding="VALID", kernel_initializer=None,
           bias_initializer=_TRAX_BIAS_INIT, use_bias=True):
    """A 1-D convolution over `[batch, width, channels]` inputs (Trax's `Conv1d`)."""
    return Conv(filters, (kernel_size,), strides=(stride,), padding=padding,
                dimension_numbers=("NWC", "WIO", "NWC"),
                kernel_initializer=kernel_initializer,
                bias_initializer=bias_initializer, use_bias=use_bias)


# ---------------------------------------------------------------------------
# PAX (Haiku semantics)


def _truncated_normal(stddev):
    def f(shape, key):
        return (jax.random.truncated_normal(key, -2.0, 2.0, shape) * stddev).astype(jnp.float32)

    return f


class _PaxConvBase(Module):
    """Shared machinery of the PAX convolution modules."""

    _n_spatial = 0
    _formats = ()
    _transpose = False

    in_features = static()
    out_features = static()
    kernel_shape = static()
    stride = static()
    rate = static(default=None)
    padding = static()
    with_bias = static()
    w_init = static()
    b_init = static()
    data_format = static()
    feature_group_count = static(default=1)
    weight = param()
    bias = param()

    def _setup(self, in_features, out_features, kernel_shape, stride, padding, with_bias,
               w_init, b_init, data_format, name):
        owner = type(self).__name__
        n = self._n_spatial
        self.in_features = _positive_int(in_features, "in_features", owner)
        self.out_features = _positive_int(out_features, "out_features", owner)
        self.kernel_shape = _as_int_tuple(kernel_shape, n, "kernel_shape", owner)
        self.stride = _as_int_tuple(stride, n, "stride", owner)
        self.padding = _as_padding(padding, n, owner)
        if data_format not in self._formats:
            raise ValueError(f"{owner}: data_format must be one of {self._formats}, got "
                             f"{data_format!r}.")
        self.data_format = data_format
        self.with_bias = bool(with_bias)
        self.w_init = w_init
        self.b_init = b_init
        self.name = name or owner

    @property
    def _channel_axis(self):
        return 1 if self.data_format[1] == "C" else self._n_spatial + 1

    def _kernel_format(self):
        spatial = "W" if self._n_spatial == 1 else "HW"
        return spatial + ("OI" if self._transpose else "IO")

    def _weight_shape(self):
        if self._transpose:
            return self.kernel_shape + (self.out_features, self.in_features)
        return self.kernel_shape + (self.in_features // self.feature_group_count,
                                    self.out_features)

    def _create(self, key):
        k_w, k_b = jax.random.split(key)
        shape = self._weight_shape()
        if self._transpose:
            fan_in = math.prod(self.kernel_shape) * self.in_features
        else:
            fan_in = math.prod(shape[:-1])
        w_init = self.w_init or _truncated_normal(1.0 / math.sqrt(fan_in))
        weight = w_init(shape, k_w)
        bias = None
        if self.with_bias:
            bias = (self.b_init or init.zeros)((self.out_features,), k_b)
        return weight, bias

    def _missing_params(self):
        return ["weight"] if self.weight is None else (
            ["bias"] if self.with_bias and self.bias is None else [])

    def _check_input(self, shape):
        rank = self._n_spatial + 2
        if len(shape) != rank:
            raise ValueError(f"{self.name} expects a batched input of rank {rank} "
                             f"({self.data_format}), got shape {tuple(shape)}.")
        channels = shape[self._channel_axis]
        if channels != self.in_features:
            raise ValueError(f"{self.name} expects {self.in_features} input channels (axis "
                             f"{self._channel_axis} of {self.data_format}), got shape "
                             f"{tuple(shape)}.")

    def init_weights_and_state(self, input_signature, key):
        self._check_input(input_signature.shape)
        if self.weight is not None and not (self.with_bias and self.bias is None):
            return self
        weight, bias = self._create(key)
        return self.replace(weight=weight, bias=bias)

    def _add_bias(self, y):
        if not self.with_bias:
            return y
        if self._channel_axis == 1:
            return y + jnp.reshape(self.bias, (-1,) + (1,) * self._n_spatial)
        return y + self.bias

    def __repr__(self):
        parts = [f"in_features={self.in_features}", f"out_features={self.out_features}",
                 f"kernel_shape={self.kernel_shape}", f"padding={self.padding!r}"]
        if any(s != 1 for s in self.stride):
            parts.append(f"stride={self.stride}")
        if self.rate is not None and any(r != 1 for r in self.rate):
            parts.append(f"rate={self.rate}")
        if self.feature_group_count != 1:
            parts.append(f"feature_group_count={self.feature_group_count}")
        parts += [f"with_bias={self.with_bias}", f"data_format={self.data_format!r}"]
        return f"{type(self).__name__}({', '.join(parts)})"


class _PaxConv(_PaxConvBase):
    def __init__(self, in_features, out_features, kernel_shape, stride=1, rate=1,
                 padding="SAME", with_bias=True, w_init=None, b_init=None, data_format=None,
                 feature_group_count=1, *, name=None, rng_key=None):
        owner = type(self).__name__
        data_format = data_format or self._formats[0]
        self._setup(in_features, out_features, kernel_shape, stride, padding, with_bias,
                    w_init, b_init, data_format, name)
        self.rate = _as_int_tuple(rate, self._n_spatial, "rate", owner)
        groups = _positive_int(feature_group_count, "feature_group_count", owner)
        if self.in_features % groups or self.out_features % groups:
            raise ValueError(f"{owner}: in_features ({self.in_features}) and out_features "
                             f"({self.out_features}) must be divisible by "
                             f"feature_group_count ({groups}).")
        self.feature_group_count = groups
        if rng_key is not None:
            self.weight, self.bias = self._create(rng_key)

    def forward(self, x):
        self._check_input(x.shape)
        fmt = self.data_format
        y = jax.lax.conv_general_dilated(
            x, self.weight, self.stride, self.padding, rhs_dilation=self.rate,
            dimension_numbers=(fmt, self._kernel_format(), fmt),
            feature_group_count=self.feature_group_count)
        return self._add_bias(y)


class _PaxConvTranspose(_PaxConvBase):
    _transpose = True

    def __init__(self, in_features, out_features, kernel_shape, stride=1, padding="SAME",
                 with_bias=True, w_init=None, b_init=None, data_format=None, *, name=None,
                 rng_key=None):
        data_format = data_format or self._formats[0]
        self._setup(in_features, out_features, kernel_shape, stride, padding, with_bias,
                    w_init, b_init, data_format, name)
        if rng_key is not None:
            self.weight, self.bias = self._create(rng_key)

    def forward(self, x):
        self._check_input(x.shape)
        fmt = self.data_format
        y = jax.lax.conv_transpose(x, self.weight, self.stride, self.padding,
                                   dimension_numbers=(fmt, self._kernel_format(), fmt))
        return self._add_bias(y)


def _doc(kind, fmts):
    return f"""{kind} over inputs laid out as {' or '.join(fmts)}, as PAX's (Haiku's) module.

    With `rng_key` the weights are created at once; otherwise `init(...)`
    creates them. The default weight init is a truncated normal with stddev
    `1/sqrt(fan_in)`; the bias starts at zero.
    """


class Conv1D(_PaxConv):
    _n_spatial, _formats = 1, ("NWC", "NCW")
    __doc__ = _doc("1-D convolution", ("NWC", "NCW")) + """
    >>> import jax, numpy as np
    >>> conv = Conv1D(3, 8, 5, rng_key=jax.random.PRNGKey(0))
    >>> conv(np.ones((2, 10, 3), np.float32)).shape
    (2, 10, 8)
    """

    def __init__(self, in_features, out_features, kernel_shape, stride=1, rate=1,
                 padding="SAME", with_bias=True, w_init=None, b_init=None, data_format="NWC",
                 feature_group_count=1, *, name=None, rng_key=None):
        super().__init__(in_features, out_features, kernel_shape, stride, rate, padding,
                         with_bias, w_init, b_init, data_format, feature_group_count,
                         name=name, rng_key=rng_key)


class Conv2D(_PaxConv):
    _n_spatial, _formats = 2, ("NHWC", "NCHW")
    __doc__ = _doc("2-D convolution", ("NHWC", "NCHW")) + """
    >>> import jax, numpy as np
    >>> conv = Conv2D(3, 8, (3, 3), stride=2, rng_key=jax.random.PRNGKey(0))
    >>> conv(np.ones((2, 8, 8, 3), np.float32)).shape
    (2, 4, 4, 8)
    """

    def __init__(self, in_features, out_features, kernel_shape, stride=1, rate=1,
                 padding="SAME", with_bias=True, w_init=None, b_init=None, data_format="NHWC",
                 feature_group_count=1, *, name=None, rng_key=None):
        super().__init__(in_features, out_features, kernel_shape, stride, rate, padding,
                         with_bias, w_init, b_init, data_format, feature_group_count,
                         name=name, rng_key=rng_key)


class Conv1DTranspose(_PaxConvTranspose):
    _n_spatial, _formats = 1, ("NWC", "NCW")
    __doc__ = _doc("1-D transposed convolution", ("NWC", "NCW")) + """
    >>> import jax, numpy as np
    >>> conv = Conv1DTranspose(3, 8, 4, stride=2, rng_key=jax.random.PRNGKey(0))
    >>> conv(np.ones((2, 10, 3), np.float32)).shape
    (2, 20, 8)
    """

    def __init__(self, in_features, out_features, kernel_shape, stride=1, padding="SAME",
                 with_bias=True, w_init=None, b_init=None, data_format="NWC", *, name=None,
                 rng_key=None):
        super().__init__(in_features, out_features, kernel_shape, stride, padding, with_bias,
                         w_init, b_init, data_format, name=name, rng_key=rng_key)


class Conv2DTranspose(_PaxConvTranspose):
    _n_spatial, _formats = 2, ("NHWC", "NCHW")
    __doc__ = _doc("2-D transposed convolution", ("NHWC", "NCHW")) + """
    >>> import jax, numpy as np
    >>> conv = Conv2DTranspose(3, 8, (2, 2), stride=2, rng_key=jax.random.PRNGKey(0))
    >>> conv(np.ones((2, 4, 4, 3), np.float32)).shape
    (2, 8, 8, 8)
    """

    def __init__(self, in_features, out_features, kernel_shape, stride=1, padding="SAME",
                 with_bias=True, w_init=None, b_init=None, data_format="NHWC", *, name=None,
                 rng_key=None):
        super().__init__(in_features, out_features, kernel_shape, stride, padding, with_bias,
                         w_init, b_init, data_format, name=name, rng_key=rng_key)
