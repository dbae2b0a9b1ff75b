"""Core layers: Dense, Embedding, Dropout, and weightless array functions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pax_trax.core.module import Module, param, state, static
from pax_trax.nn import initializers as init
from pax_trax.nn.base import Fn

__all__ = [
    "Dense",
    "Embedding",
    "Dropout",
    "Mean",
    "Sum",
    "Max",
    "Min",
    "LogSoftmax",
    "Softmax",
    "Flatten",
    "ToFloat",
]

_MODES = ("train", "eval", "predict")


def check_mode(mode, layer):
    if mode not in _MODES:
        raise ValueError(f"{layer}: mode must be one of {_MODES}, got {mode!r}.")
    return mode


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
        if not isinstance(n_units, (int, np.integer)) or n_units <= 0:
            raise ValueError(f"Dense: n_units must be a positive int, got {n_units!r}.")
        self.n_units = int(n_units)
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
        for label, value in (("vocab_size", vocab_size), ("d_feature", d_feature)):
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"Embedding: {label} must be a positive int, got {value!r}.")
        self.vocab_size = int(vocab_size)
        self.d_feature = int(d_feature)
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
        return jnp.take(self.w, x, axis=0, mode="clip")


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
    mode it is the identity.
    """

    rate = static()
    shared_axes = static(default=())
    mode = static(default="train")
    rng = state()

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


def Mean(axis=-1, keepdims=False):
    """Mean along `axis`."""
    return Fn("Mean", lambda x: jnp.mean(x, axis=axis, keepdims=keepdims))


def Sum(axis=None, keepdims=False):
    """Sum along `axis` (all axes if None)."""
    return Fn("Sum", lambda x: jnp.sum(x, axis=axis, keepdims=keepdims))


def Max(axis=-1, keepdims=False):
    """Maximum along `axis`."""
    return Fn("Max", lambda x: jnp.max(x, axis=axis, keepdims=keepdims))


def Min(axis=-1, keepdims=False):
    """Minimum along `axis`."""
    return Fn("Min", lambda x: jnp.min(x, axis=axis, keepdims=keepdims))


def LogSoftmax(axis=-1):
    """Log of the softmax along `axis`: `x - logsumexp(x)`."""
    return Fn("LogSoftmax", lambda x: jax.nn.log_softmax(x, axis=axis))


def Softmax(axis=-1):
    """Softmax along `axis`."""
    return Fn("Softmax", lambda x: jax.nn.softmax(x, axis=axis))


def ToFloat():
    """Casts the input to float32."""
    return Fn("ToFloat", lambda x: x.astype(jnp.float32))


def Flatten(n_axes_to_keep=1):
    """Collapses all axes after the first `n_axes_to_keep` into one."""
    if n_axes_to_keep < 0:
        raise ValueError(f"Flatten: n_axes_to_keep must be >= 0, got {n_axes_to_keep}.")

    def f(x):
        if x.ndim <= n_axes_to_keep:
            raise ValueError(
                f"input rank ({x.ndim}) must exceed the number of axes to keep "
                f"({n_axes_to_keep}) after flattening."
            )
        return jnp.reshape(x, x.shape[:n_axes_to_keep] + (-1,))

    return Fn(f"Flatten_keep{n_axes_to_keep}", f)
