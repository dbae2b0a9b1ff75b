"""Core layers (Trax's `trax.layers.core`) and PAX's `Embed` and `EMA`.

Trax layers: Dense, Embedding, Dropout, Weights, PrintShape, SummaryScalar,
SummaryImage, RandomUniform, LocallyConnected1d and the weightless array
functions (Flatten, LogSoftmax, LogSumExp, Softmax, ToFloat, Mean, Min, Max,
Sum, ThresholdToBinary, ArgMax, Negate, StopGradient), plus the plain
functions one_hot, log_softmax, log_gaussian_pdf, log_gaussian_diag_pdf,
multigaussian_loss and logsoftmax_sample.
"""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np

from pax_trax.core.module import Module, param, rng_state, state, static
from pax_trax.nn import initializers as init
from pax_trax.nn.base import Fn, Partial, PureLayer, check_mode, to_stack  # noqa: F401 (check_mode re-exported)

__all__ = [
    "Dense",
    "Embedding",
    "Dropout",
    "Weights",
    "PrintShape",
    "SummaryScalar",
    "SummaryImage",
    "RandomUniform",
    "LocallyConnected1d",
    "Flatten",
    "LogSoftmax",
    "LogSumExp",
    "Softmax",
    "ToFloat",
    "Mean",
    "Sum",
    "Max",
    "Min",
    "ThresholdToBinary",
    "ArgMax",
    "Negate",
    "StopGradient",
    "one_hot",
    "log_softmax",
    "log_gaussian_pdf",
    "log_gaussian_diag_pdf",
    "multigaussian_loss",
    "logsoftmax_sample",
]



def _check_positive_int(layer, label, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{layer}: {label} must be a positive int, got {value!r}.")
    return int(value)


# ---------------------------------------------------------------------------
# Trainable layers


class Dense(Module):
    """A fully connected layer: `y = x @ w + b` over the last axis.

    The input size is inferred at `init`. Weights are `(w, b)` as in Trax.

    >>> import numpy as np
    >>> layer = Dense(2).init(np.zeros((1, 3), np.float32))
    >>> layer = layer.replace(w=np.ones((3, 2), np.float32), b=np.array([0., 1.], np.float32))
    >>> layer(np.array([[1., 2., 3.]], np.float32)).tolist()
    [[6.0, 7.0]]
    """

    n_units = static()
    kernel_initializer = static()
    bias_initializer = static()
    use_bias = static()
    use_bfloat16 = static(default=False)
    w = param()
    b = param()

    def __init__(
        self,
        n_units,
        kernel_initializer=init.GlorotUniformInitializer(),
        bias_initializer=init.RandomNormalInitializer(1e-6),
        use_bias=True,
        use_bfloat16=False,
    ):
        self.n_units = _check_positive_int("Dense", "n_units", n_units)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.use_bias = use_bias
        self.use_bfloat16 = use_bfloat16
        self.name = f"Dense_{n_units}"

    def _missing_params(self):
        return ["w"] if self.w is None else (["b"] if self.use_bias and self.b is None else [])

    def init_weights_and_state(self, input_signature, key):
        if len(input_signature.shape) < 1:
            raise ValueError(f"expected an input with at least one axis, got {input_signature}.")
        k_w, k_b = jax.random.split(key)
        w = self.kernel_initializer((input_signature.shape[-1], self.n_units), k_w)
        b = self.bias_initializer((self.n_units,), k_b) if self.use_bias else None
        if self.use_bfloat16:
            w = w.astype(jnp.bfloat16)
            b = None if b is None else b.astype(jnp.bfloat16)
        return self.replace(w=w, b=b)

    def forward(self, x):
        w = self.w
        if x.ndim < 1 or x.shape[-1] != w.shape[0]:
            raise ValueError(
                f"expected an input whose last axis has size {w.shape[0]} (the size this "
                f"layer was initialized for), got shape {tuple(x.shape)}."
            )
        y = jnp.dot(x, w)
        return y + self.b if self.use_bias else y


class Embedding(Module):
    """Maps integer ids to trainable vectors; ids are clipped into [0, vocab_size).

    >>> import numpy as np
    >>> emb = Embedding(20, 32).init(np.arange(15))
    >>> emb(np.arange(15)).shape
    (15, 32)
    """

    vocab_size = static()
    d_feature = static()
    kernel_initializer = static()
    use_bfloat16 = static(default=False)
    w = param()

    def __init__(
        self,
        vocab_size,
        d_feature,
        use_bfloat16=False,
        kernel_initializer=init.ScaledInitializer(
            out_dim=-1, in_dim=-2, scale=1.0, mode="fan_out", distribution="uniform"
        ),
    ):
        self.vocab_size = _check_positive_int("Embedding", "vocab_size", vocab_size)
        self.d_feature = _check_positive_int("Embedding", "d_feature", d_feature)
        self.use_bfloat16 = use_bfloat16
        self.kernel_initializer = kernel_initializer
        self.name = f"Embedding_{vocab_size}_{d_feature}"

    def init_weights_and_state(self, input_signature, key):
        _check_int_ids(input_signature.dtype)
        w = self.kernel_initializer((self.vocab_size, self.d_feature), key)
        if self.use_bfloat16:
            w = w.astype(jnp.bfloat16)
        return self.replace(w=w)

    def forward(self, x):
        _check_int_ids(x.dtype)
        embedded = jnp.take(self.w, x, axis=0, mode="clip")
        if self.use_bfloat16:  # bfloat16 weights, float32 activations (as Trax).
            embedded = embedded.astype(jnp.float32)
        return embedded


def _check_int_ids(dtype):
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(
            f"expected integer token ids, got dtype {np.dtype(dtype).name}. "
            "Cast the ids with .astype(np.int32)."
        )


class Dropout(Module):
    """Zeroes each value with probability `rate` in training; scales the rest.

    The layer holds its own RNG key as state and advances it on every call,
    so in `mode='train'` it is called with `pax_trax.purecall`. In any other
    mode it is the identity. `shared_axes` lists axes along which one mask
    value is broadcast.
    """

    rate = static()
    shared_axes = static(default=())
    mode = static(default="train")
    rng = rng_state()

    def __init__(self, rate=0.0, shared_axes=None, mode="train"):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}.")
        self.rate = float(rate)
        self.shared_axes = tuple(shared_axes or ())
        self.mode = check_mode(mode, "Dropout")

    def init_weights_and_state(self, input_signature, key):
        return self.replace(rng=key)

    def forward_with_state(self, x):
        if self.mode != "train" or self.rate == 0.0:
            return self, x
        if self.rng is None:
            raise ValueError(
                "Dropout has no RNG key: call model.init(...) (or give it one with "
                "replace(rng=key)) before training."
            )
        rng, sub = jax.random.split(self.rng)
        mask_shape = list(x.shape)
        for axis in self.shared_axes:
            mask_shape[axis] = 1
        keep = jax.random.bernoulli(sub, 1.0 - self.rate, tuple(mask_shape))
        y = jnp.where(keep, x / (1.0 - self.rate), jnp.zeros((), x.dtype))
        return self.replace(rng=rng), y.astype(x.dtype)


class Weights(Module):
    """A layer with no input that returns its trainable array (Trax's `Weights`).

    `initializer(shape, key)` creates the array at `init`; in a Serial it
    pushes one item on the stack.

    >>> import numpy as np
    >>> w = Weights(lambda shape, key: np.full(shape, 2.0, np.float32), (2,)).init(())
    >>> w().tolist()
    [2.0, 2.0]
    """

    initializer = static()
    shape = static()
    use_bfloat16 = static(default=False)
    w = param()

    def __init__(self, initializer, shape=(), use_bfloat16=False):
        if not callable(initializer):
            raise TypeError(f"Weights: initializer must be callable, got {initializer!r}.")
        self.initializer = initializer
        self.shape = tuple(int(d) for d in shape)
        self.use_bfloat16 = use_bfloat16
        self.n_in = 0
        self.name = f"Weights_{self.shape}"

    def init_weights_and_state(self, input_signature, key):
        del input_signature  # There is no input.
        w = jnp.asarray(self.initializer(self.shape, key))
        if w.shape != self.shape:
            raise ValueError(
                f"the initializer returned shape {w.shape}, expected {self.shape}."
            )
        if self.use_bfloat16:
            w = w.astype(jnp.bfloat16)
        return self.replace(w=w)

    def forward(self, xs=()):
        del xs  # A Serial passes the empty tuple; a plain call passes nothing.
        return self.w


def PrintShape(n_in=1, msg=""):
    """Prints the shapes and dtypes of `n_in` inputs and returns them unchanged.

    Printing happens when the layer runs in Python: on every eager call, and
    once per trace under `jax.jit` (shapes are static, so that is enough).
    """

    return PureLayer(Partial(_print_shape, n_in=n_in, msg=msg), n_in=n_in, n_out=n_in,
                     name=f"PrintShape_{n_in}")


def _print_shape(xs, n_in, msg):
    items = to_stack(xs, n_in)
    shapes_and_dtypes = ", ".join(f"{tuple(x.shape)}[{x.dtype}]" for x in items)
    print(f"PrintShape: {msg}: [{shapes_and_dtypes}]")
    return xs


class SummaryScalar(Module):
    """Passes its input through and keeps `aggregation_fun(x)` in its state.

    The value sits in `layer.state['summary_' + name]` for a training loop to
    report. Recording changes state, so in `mode='train'` the layer is called
    with `pax_trax.purecall`; in other modes it is the identity and records
    nothing (a `model.eval()` call keeps state fixed).
    """

    summary_key = static()
    aggregation_fun = static()
    mode = static(default="train")
    summary = state()

    def __init__(self, name, aggregation_fun=jnp.mean, mode="train"):
        self.summary_key = "summary_" + name
        self.aggregation_fun = aggregation_fun
        self.mode = check_mode(mode, "SummaryScalar")
        self.name = f"Summary_{name}"

    def init_weights_and_state(self, input_signature, key):
        del key
        out = jax.eval_shape(self.aggregation_fun, jax.ShapeDtypeStruct(
            input_signature.shape, input_signature.dtype))
        return self.replace(summary={self.summary_key: jnp.zeros(out.shape, out.dtype)})

    def forward_with_state(self, x):
        if self.mode != "train":
            return self, x
        return self.replace(summary={self.summary_key: self.aggregation_fun(x)}), x


class SummaryImage(Module):
    """Passes `n_in` inputs through and keeps up to `num_summaries` images in state.

    For each of the first `min(num_summaries, batch)` examples `s` the state
    holds `summary_<name><s>`: the inputs' `s`-th items (after `recover_fn`,
    if given) concatenated along axis 0. As `SummaryScalar`, it records only
    in `mode='train'`, where it is called with `pax_trax.purecall`.
    """

    summary_key = static()
    num_summaries = static()
    recover_fn = static()
    mode = static(default="train")
    summary = state()

    def __init__(self, name, n_in, num_summaries=5, recover_fn=None, mode="train"):
        self.summary_key = "summary_" + name
        self.n_in = _check_positive_int("SummaryImage", "n_in", n_in)
        self.n_out = self.n_in
        self.num_summaries = int(num_summaries)
        self.recover_fn = recover_fn
        self.mode = check_mode(mode, "SummaryImage")
        self.name = f"Summary_{name}"

    def _images(self, xs):
        items = to_stack(xs, self.n_in)
        batch_size = items[0].shape[0]
        images = {}
        for s in range(min(self.num_summaries, batch_size)):
            parts = [self.recover_fn(x[s]) if self.recover_fn else x[s] for x in items]
            images[self.summary_key + str(s)] = jnp.concatenate(parts, axis=0)
        return images

    def init_weights_and_state(self, input_signature, key):
        del key
        abstract = jax.eval_shape(self._images, _to_struct(input_signature))
        zeros = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), abstract)
        return self.replace(summary=zeros)

    def forward_with_state(self, xs):
        if self.mode != "train":
            return self, xs
        return self.replace(summary=self._images(xs)), xs


def _to_struct(sig):
    if isinstance(sig, tuple):
        return tuple(_to_struct(s) for s in sig)
    return jax.ShapeDtypeStruct(sig.shape, sig.dtype)


class RandomUniform(Module):
    """A layer with no input that returns uniform random values in [min_val, max_val).

    It draws from an RNG key held in state and advances the key on every
    call, so it is called with `pax_trax.purecall`. With `sync=True`, inside
    a `pmap`/`shard_map` over the axis name `'batch'` every device uses the
    key of the first device, so all draw the same values.

    >>> import pax_trax
    >>> layer = RandomUniform(shape=(3,)).init(())
    >>> layer, y = pax_trax.purecall(layer)
    >>> y.shape
    (3,)
    """

    min_val = static()
    max_val = static()
    shape = static()
    dtype = static()
    sync = static()
    rng = rng_state()

    def __init__(self, min_val=0.0, max_val=1.0, shape=(), dtype=jnp.float32, sync=False):
        self.min_val = float(min_val)
        self.max_val = float(max_val)
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.sync = bool(sync)
        self.n_in = 0

    def init_weights_and_state(self, input_signature, key):
        del input_signature
        return self.replace(rng=key)

    def forward_with_state(self, xs=()):
        del xs  # Unused: there is no input.
        if self.rng is None:
            raise ValueError("RandomUniform has no RNG key: call layer.init(()) first.")
        rng, sub = jax.random.split(self.rng)
        if self.sync:
            sub = _first_device_key(sub)
        y = jax.random.uniform(sub, self.shape, self.dtype, self.min_val, self.max_val)
        return self.replace(rng=rng), y


def _first_device_key(key):
    try:
        return jax.lax.all_gather(key, "batch")[0]
    except NameError:  # Not inside a mapped 'batch' axis: nothing to synchronise.
        return key


class LocallyConnected1d(Module):
    """A 1-D convolution-like layer whose weights differ at every position.

    Input `(..., L, D)`, output `(..., L, filters)` for padding 'SAME' and
    'WRAP', `(..., L - kernel_size + 1, filters)` for 'VALID'. Weights are
    `w` of shape `(L, kernel_size, D, filters)` (one kernel per input
    position) and `b` of the output's last two axes, as Trax's.
    """

    filters = static()
    kernel_size = static()
    kernel_initializer = static()
    bias_initializer = static()
    use_bias = static()
    padding = static()
    w = param()
    b = param()

    def __init__(
        self,
        filters,
        kernel_size,
        kernel_initializer=init.GlorotUniformInitializer(),
        bias_initializer=init.RandomNormalInitializer(1e-6),
        use_bias=True,
        padding="VALID",
    ):
        self.filters = _check_positive_int("LocallyConnected1d", "filters", filters)
        self.kernel_size = _check_positive_int("LocallyConnected1d", "kernel_size", kernel_size)
        if self.kernel_size % 2 != 1:
            raise ValueError(
                f"LocallyConnected1d: kernel_size must be odd, got {kernel_size}."
            )
        if padding not in ("VALID", "SAME", "WRAP"):
            raise ValueError(
                f"LocallyConnected1d: padding must be 'VALID', 'SAME' or 'WRAP', got {padding!r}."
            )
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.use_bias = use_bias
        self.padding = padding
        self.name = f"LocallyConnected1d_{filters}_{kernel_size}"

    def _missing_params(self):
        return ["w"] if self.w is None else (["b"] if self.use_bias and self.b is None else [])

    def init_weights_and_state(self, input_signature, key):
        shape = input_signature.shape
        if len(shape) < 2:
            raise ValueError(f"expected an input of shape (..., length, depth), got {shape}.")
        length, depth = shape[-2], shape[-1]
        out_length = length - self.kernel_size + 1 if self.padding == "VALID" else length
        if out_length < 1:
            raise ValueError(
                f"input length {length} is shorter than kernel_size {self.kernel_size} "
                "with padding 'VALID'."
            )
        k_w, k_b = jax.random.split(key)
        shape_w = (length, self.kernel_size, depth, self.filters)
        if _accepts_kwarg(self.kernel_initializer, "nonreceptive_dims"):
            w = self.kernel_initializer(shape_w, k_w, nonreceptive_dims=[0])
        else:
            w = self.kernel_initializer(shape_w, k_w)
        b = self.bias_initializer((out_length, self.filters), k_b) if self.use_bias else None
        return self.replace(w=w, b=b)

    def forward(self, x):
        length, k, depth = self.w.shape[0], self.kernel_size, self.w.shape[2]
        if x.ndim < 2 or x.shape[-2:] != (length, depth):
            raise ValueError(
                f"expected an input of shape (..., {length}, {depth}) (the shape this layer "
                f"was initialized for), got {tuple(x.shape)}."
            )
        return _locally_connected(x, self.w, self.b if self.use_bias else None, k,
                                  self.padding)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _locally_connected(x, w, b, k, padding):
    length = w.shape[0]
    # per_offset[..., l, i, :] is input position l's contribution through offset i.
    per_offset = jnp.einsum("...lp,lkpd->...lkd", x, w)
    if padding == "VALID":
        out_length = length - k + 1
        # Output j takes input j + k - 1 - i through offset i (as Trax).
        y = sum(per_offset[..., k - 1 - i: k - 1 - i + out_length, i, :] for i in range(k))
    else:
        half = (k - 1) // 2
        pad = [(0, 0)] * per_offset.ndim
        pad[-3] = (half, half)
        mode = "wrap" if padding == "WRAP" else "constant"
        padded = jnp.pad(per_offset, pad, mode=mode)
        # Output j takes input j + i - half through offset i (as Trax).
        y = sum(padded[..., i: i + length, i, :] for i in range(k))
    return y if b is None else y + b


def _accepts_kwarg(fn, name):
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


# ---------------------------------------------------------------------------
# Weightless layers


def _log_softmax_last(x):
    return log_softmax(x, axis=-1)


def _softmax_last(x):
    return jnp.exp(log_softmax(x, axis=-1))


def Flatten(n_axes_to_keep=1):
    """Collapses all axes after the first `n_axes_to_keep` into one."""
    if n_axes_to_keep < 0:
        raise ValueError(f"Flatten: n_axes_to_keep must be >= 0, got {n_axes_to_keep}.")

    return Fn(f"Flatten_keep{n_axes_to_keep}", Partial(_flatten, n_axes_to_keep=n_axes_to_keep))


def _flatten(x, n_axes_to_keep):
    if x.ndim <= n_axes_to_keep:
        raise ValueError(
            f"input rank ({x.ndim}) must exceed the number of axes to keep "
            f"({n_axes_to_keep}) after flattening."
        )
    return jnp.reshape(x, x.shape[:n_axes_to_keep] + (-1,))


def LogSoftmax(axis=-1):
    """Log of the softmax along `axis`, computed as `x - logsumexp(x)`."""
    if axis == -1:
        return Fn("LogSoftmax", _log_softmax_last)
    return Fn("LogSoftmax", Partial(log_softmax, axis=_axis(axis)))


def LogSumExp(axis=-1):
    """`log(sum(exp(x)))` along `axis`, keeping that axis with size 1."""
    return Fn("LogSumExp", Partial(jax.scipy.special.logsumexp, axis=_axis(axis), keepdims=True))


def Softmax(axis=-1):
    """Softmax along `axis`."""
    if axis == -1:
        return Fn("Softmax", _softmax_last)
    return Fn("Softmax", Partial(_softmax, axis=_axis(axis)))


def _softmax(x, axis):
    return jnp.exp(log_softmax(x, axis=axis))


def _axis(axis):
    """Axes as a hashable value (layer functions are part of the pytree structure)."""
    return tuple(axis) if isinstance(axis, list) else axis


def _to_float(x):
    return x.astype(jnp.float32)


def ToFloat():
    """Casts the input to float32."""
    return Fn("ToFloat", _to_float)


def Mean(axis=-1, keepdims=False):
    """Mean along `axis`."""
    return Fn("Mean", Partial(jnp.mean, axis=_axis(axis), keepdims=keepdims))


def Sum(axis=None, keepdims=False):
    """Sum along `axis` (all axes if None)."""
    return Fn("Sum", Partial(jnp.sum, axis=_axis(axis), keepdims=keepdims))


def Max(axis=-1, keepdims=False):
    """Maximum along `axis`."""
    return Fn("Max", Partial(jnp.max, axis=_axis(axis), keepdims=keepdims))


def Min(axis=-1, keepdims=False):
    """Minimum along `axis`."""
    return Fn("Min", Partial(jnp.min, axis=_axis(axis), keepdims=keepdims))


def ThresholdToBinary(threshold=0.5):
    """1 (int32) where the input is strictly above `threshold`, else 0."""
    return Fn("ThresholdToBinary", Partial(_threshold_to_binary, threshold=threshold))


def _threshold_to_binary(x, threshold):
    return (x > threshold).astype(jnp.int32)


def ArgMax(axis=-1):
    """Index of the largest value along `axis`."""
    return Fn("ArgMax", Partial(jnp.argmax, axis=axis))


def _negate(x):
    return -x


def Negate():
    """Elementwise negation."""
    return Fn("Negate", _negate)


def StopGradient():
    """The identity in the forward pass; blocks gradients in the backward pass."""
    return Fn("StopGradient", jax.lax.stop_gradient)


# ---------------------------------------------------------------------------
# Functions


def one_hot(x, n_categories, dtype=jnp.float32):
    """One-hot vectors (n+1 axes) for an integer array (n axes).

    >>> one_hot(np.array([2, 0]), 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    x = jnp.asarray(x)
    return jnp.asarray(x[..., None] == jnp.arange(n_categories), dtype)


def log_softmax(x, axis=-1):
    """Log-probabilities from activations: `x - logsumexp(x, axis)`."""
    return x - jax.scipy.special.logsumexp(x, axis=axis, keepdims=True)


@jax.jit
def log_gaussian_pdf(x, mu, sigma):
    """`log N(x | mu, sigma)` for a full covariance matrix `sigma` (batched)."""
    d = mu.shape[-1]
    _, logdet = jnp.linalg.slogdet(sigma)
    diff = x - mu
    solved = jnp.linalg.solve(sigma, diff[..., None])[..., 0]
    quad = jnp.sum(diff * solved, axis=-1)
    return -0.5 * (d * jnp.log(2 * jnp.pi) + logdet + quad)


@jax.jit
def log_gaussian_diag_pdf(x, mu, diag_sigma):
    """`log N(x | mu, diag(diag_sigma))`: `diag_sigma` holds the variances."""
    d = mu.shape[-1]
    logdet = jnp.sum(jnp.log(diag_sigma), axis=-1)
    quad = jnp.sum((x - mu) ** 2 / diag_sigma, axis=-1)
    return -0.5 * (d * jnp.log(2 * jnp.pi) + logdet + quad)


def multigaussian_loss(preds, targets, ngauss=1):
    """Log-likelihood of `targets` under a mixture of diagonal Gaussians.

    `preds` has shape `(batch, ngauss * (1 + 2 * ndims))`: the mixture logits,
    then the means, then the scale parameters `s` (variance `s**2 + 1e-6`);
    `targets` has shape `(batch, ndims)`. Returns one value per example (as
    Trax, the log-likelihood itself: negate it to minimise).
    """
    ndims = targets.shape[-1]
    expected = ngauss * (1 + 2 * ndims)
    if preds.shape[-1] != expected:
        raise ValueError(
            f"multigaussian_loss: preds must have {expected} = ngauss * (1 + 2 * ndims) "
            f"values per example for ngauss={ngauss}, ndims={ndims}; got shape {preds.shape}."
        )
    return _multigaussian(preds, targets, ngauss)


@functools.partial(jax.jit, static_argnums=(2,))
def _multigaussian(preds, targets, ngauss):
    ndims = targets.shape[-1]
    logits = preds[:, :ngauss]
    mus = preds[:, ngauss: ngauss * (ndims + 1)]
    sigmas = preds[:, ngauss * (ndims + 1):]
    sigmas = sigmas * sigmas + 1e-6  # Make positive.
    log_weights = log_softmax(logits, axis=-1)
    mus = jnp.reshape(mus, (-1, ngauss, ndims))
    sigmas = jnp.reshape(sigmas, (-1, ngauss, ndims))
    targets = jnp.reshape(targets, (-1, 1, ndims))
    log_probs = log_gaussian_diag_pdf(targets, mus, sigmas)
    return jax.scipy.special.logsumexp(log_weights + log_probs, axis=-1)


def logsoftmax_sample(log_probs, temperature=1.0, key=None):
    """Samples indices from log-probabilities (last axis) with the Gumbel trick.

    `key` is a JAX PRNG key (required). `temperature=0` picks the argmax;
    1 samples from `softmax(log_probs)`.
    """
    if key is None:
        raise TypeError(
            "logsoftmax_sample needs an explicit JAX key: "
            "logsoftmax_sample(log_probs, temperature, jax.random.PRNGKey(0))."
        )
    log_probs = jnp.asarray(log_probs)
    u = jax.random.uniform(key, log_probs.shape, jnp.float32, 1e-6, 1.0 - 1e-6)
    g = -jnp.log(-jnp.log(u))
    return jnp.argmax(log_probs + g * temperature, axis=-1)
