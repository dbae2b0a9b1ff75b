"""Normalization layers."""

from __future__ import annotations

import jax.numpy as jnp

from pax_trax.core.module import Module, param, state, static
from pax_trax.nn.core import check_mode

__all__ = ["BatchNorm"]


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
