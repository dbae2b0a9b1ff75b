"""Normalization: Trax's `BatchNorm`, `LayerNorm` and `FilterResponseNorm`.

PAX's modules (`BatchNorm1D`, `BatchNorm2D`, `GroupNorm`, `PaxLayerNorm`) are
in `pax_trax.nn.pax_normalization` and re-exported here.
"""

from __future__ import annotations

import jax.numpy as jnp

from pax_trax.core.module import Module, param, state, static
from pax_trax.nn.core import check_mode
from pax_trax.nn.pax_normalization import BatchNorm1D, BatchNorm2D, GroupNorm, PaxLayerNorm

__all__ = [
    "BatchNorm",
    "LayerNorm",
    "FilterResponseNorm",
    "BatchNorm1D",
    "BatchNorm2D",
    "GroupNorm",
    "PaxLayerNorm",
]


class BatchNorm(Module):
    """Batch normalization, as Trax's: normalizes over `axis` with batch statistics.

    In `mode='train'` it normalizes with the batch's mean and variance and
    updates running averages (`momentum * old + (1 - momentum) * batch`), so
    it is called with `pax_trax.purecall`; in other modes it uses the running
    averages and leaves state unchanged. State: `running_mean`, `running_var`,
    `n_batches`. Parameters: `beta` (if `center`), `gamma` (if `scale`).

    >>> import numpy as np, pax_trax
    >>> bn = BatchNorm(axis=(0,)).init(np.zeros((4, 3), np.float32))
    >>> bn, y = pax_trax.purecall(bn, np.arange(12, dtype=np.float32).reshape(4, 3))
    >>> int(bn.n_batches)
    1
    """

    axis = static()
    epsilon = static()
    center = static()
    scale = static()
    momentum = static()
    mode = static(default="train")
    beta = param()
    gamma = param()
    running_mean = state()
    running_var = state()
    n_batches = state()

    def __init__(self, axis=(0, 1, 2), epsilon=1e-5, center=True, scale=True,
                 momentum=0.999, mode="train"):
        self.axis = (axis,) if isinstance(axis, int) else tuple(axis)
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.momentum = momentum
        self.mode = check_mode(mode, "BatchNorm")

    def _missing_params(self):
        missing = []
        if self.center and self.beta is None:
            missing.append("beta")
        if self.scale and self.gamma is None:
            missing.append("gamma")
        if self.running_mean is None:
            missing.append("running_mean")
        return missing

    def _stats_shape(self, shape):
        rank = len(shape)
        axes = {a % rank for a in self.axis}
        if max(self.axis, default=0) >= rank or min(self.axis, default=0) < -rank:
            raise ValueError(
                f"axis {self.axis} is out of range for an input of rank {rank} {tuple(shape)}."
            )
        return tuple(d for i, d in enumerate(shape) if i not in axes)

    def init_weights_and_state(self, input_signature, key):
        del key
        shape = self._stats_shape(input_signature.shape)
        dtype = input_signature.dtype
        return self.replace(
            beta=jnp.zeros(shape, dtype) if self.center else None,
            gamma=jnp.ones(shape, dtype) if self.scale else None,
            running_mean=jnp.zeros(shape, dtype),
            running_var=jnp.ones(shape, dtype),
            n_batches=jnp.zeros((), jnp.int32),
        )

    def _broadcast(self, v, rank):
        axes = tuple(a % rank for a in self.axis)
        return jnp.expand_dims(v, axes)

    def forward_with_state(self, x):
        stats_shape = self._stats_shape(x.shape)
        if stats_shape != tuple(self.running_mean.shape):
            raise ValueError(
                f"expected statistics of shape {tuple(self.running_mean.shape)} for axis="
                f"{self.axis}, but input of shape {tuple(x.shape)} gives {stats_shape}."
            )
        rank = x.ndim
        axes = tuple(a % rank for a in self.axis)
        new = self
        if self.mode == "train":
            mean = jnp.mean(x, axis=axes)
            var = jnp.mean(jnp.square(x - self._broadcast(mean, rank)), axis=axes)
            m = self.momentum
            new = self.replace(
                running_mean=m * self.running_mean + (1 - m) * mean,
                running_var=m * self.running_var + (1 - m) * var,
                n_batches=self.n_batches + 1,
            )
        else:
            mean, var = self.running_mean, self.running_var
        z = (x - self._broadcast(mean, rank)) / jnp.sqrt(self._broadcast(var, rank) + self.epsilon)
        if self.scale:
            z = z * self._broadcast(self.gamma, rank)
        if self.center:
            z = z + self._broadcast(self.beta, rank)
        return new, z.astype(x.dtype)


def _float_dtype(dtype):
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.float32


class LayerNorm(Module):
    """Layer normalization over the last axis, as Trax's `LayerNorm`.

    Weights are `(scale, bias)`, of the size of the last axis, starting at
    ones and zeros. With `center=False` the input is not centered and `bias`
    is not added (it is still created, as in Trax).

    >>> import numpy as np
    >>> x = np.array([[-2, -1, 0, 1, 2], [10, 20, 30, 40, 50]], np.float32)
    >>> ln = LayerNorm().init(x)
    >>> np.round(np.float64(ln(x)), 3).tolist()[1]
    [-1.414, -0.707, 0.0, 0.707, 1.414]
    """

    center = static()
    epsilon = static()
    scale = param()
    bias = param()

    def __init__(self, center=True, epsilon=1e-6):
        if not epsilon > 0:
            raise ValueError(f"LayerNorm: epsilon must be positive, got {epsilon!r}.")
        self.center = bool(center)
        self.epsilon = float(epsilon)

    def init_weights_and_state(self, input_signature, key):
        del key
        shape = input_signature.shape
        if len(shape) < 1:
            raise ValueError(f"expected an input with at least one axis, got {input_signature}.")
        dtype = _float_dtype(input_signature.dtype)
        return self.replace(scale=jnp.ones(shape[-1:], dtype), bias=jnp.zeros(shape[-1:], dtype))

    def forward(self, x):
        if x.ndim < 1 or x.shape[-1] != self.scale.shape[0]:
            raise ValueError(f"expected an input whose last axis has size {self.scale.shape[0]} "
                             f"(the size this layer was initialized for), got shape "
                             f"{tuple(x.shape)}.")
        mean = jnp.mean(x, axis=-1, keepdims=True)
        centered = x - mean if self.center else x
        variance = jnp.mean(centered * centered, axis=-1, keepdims=True)
        y = centered / jnp.sqrt(variance + self.epsilon) * self.scale
        if self.center:
            y = y + self.bias
        return y.astype(x.dtype) if jnp.issubdtype(x.dtype, jnp.floating) else y


class FilterResponseNorm(Module):
    """Filter Response Normalization (without the TLU), as Trax's.

    For an input `(B, ..., C)`: `nu2 = mean(x**2)` over the axes between the
    first and the last; `y = gamma * x / sqrt(nu2 + eps) + beta`. With
    `learn_epsilon`, `eps = init_epsilon + |epsilon_l|` where the trainable
    `epsilon_l` starts at `init_learnt_epsilon`. Weights are
    `(gamma, beta, epsilon_l)` with `epsilon_l` = `()` or `(value,)` as in Trax.
    `mode` is accepted and ignored, as in Trax.

    >>> import numpy as np
    >>> frn = FilterResponseNorm().init(np.zeros((2, 3, 3, 4), np.float32))
    >>> frn(np.ones((2, 3, 3, 4), np.float32)).shape
    (2, 3, 3, 4)
    """

    learn_epsilon = static()
    init_epsilon = static()
    init_learnt_epsilon = static()
    gamma = param()
    beta = param()
    epsilon_l = param()

    def __init__(self, mode=None, learn_epsilon=False, init_epsilon=1e-6,
                 init_learnt_epsilon=1e-4):
        del mode
        if not init_epsilon > 0 or not init_learnt_epsilon > 0:
            raise ValueError(
                f"FilterResponseNorm: init_epsilon and init_learnt_epsilon must be positive, "
                f"got {init_epsilon!r} and {init_learnt_epsilon!r}.")
        self.learn_epsilon = bool(learn_epsilon)
        self.init_epsilon = float(init_epsilon)
        self.init_learnt_epsilon = float(init_learnt_epsilon)

    @property
    def weights(self):
        """Trax's weights: `(gamma, beta, ())` or `(gamma, beta, (epsilon_l,))`."""
        return self.gamma, self.beta, (() if self.epsilon_l is None else (self.epsilon_l,))

    def _missing_params(self):
        missing = [n for n in ("gamma", "beta") if getattr(self, n) is None]
        if self.learn_epsilon and self.epsilon_l is None:
            missing.append("epsilon_l")
        return missing

    def init_weights_and_state(self, input_signature, key):
        del key
        shape = input_signature.shape
        if len(shape) < 2:
            raise ValueError(f"expected an input (batch, ..., channels) of rank >= 2, got "
                             f"{input_signature}.")
        eps_l = jnp.array(self.init_learnt_epsilon, jnp.float32) if self.learn_epsilon else None
        return self.replace(gamma=jnp.ones(shape[-1:], jnp.float32),
                            beta=jnp.zeros(shape[-1:], jnp.float32), epsilon_l=eps_l)

    def forward(self, x):
        if x.ndim < 2 or x.shape[-1] != self.gamma.shape[0]:
            raise ValueError(f"expected an input (batch, ..., channels={self.gamma.shape[0]}) "
                             f"of rank >= 2, got shape {tuple(x.shape)}.")
        epsilon = jnp.float32(self.init_epsilon)
        if self.epsilon_l is not None:
            epsilon = epsilon + jnp.abs(self.epsilon_l)
        nu2 = jnp.mean(jnp.square(x), axis=tuple(range(1, x.ndim - 1)), keepdims=True)
        return self.gamma * (x / jnp.sqrt(nu2 + epsilon)) + self.beta
