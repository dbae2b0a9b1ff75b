"""PAX's `Linear`: a dense layer with explicit sizes, initialized at construction."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from pax_trax.core.module import Module, param, static
from pax_trax.nn import initializers as init

__all__ = ["Linear"]


def _truncated_normal(stddev):
    def f(shape, key):
        return (jax.random.truncated_normal(key, -2.0, 2.0, shape) * stddev).astype(jnp.float32)

    return f


class Linear(Module):
    """`y = x @ weight + bias` over the last axis, as PAX's (and Haiku's) Linear.

    With `rng_key` the weights are created at once (and `init` keeps them);
    without it the module is created uninitialized and `init(...)` fills it. The default weight init is
    a truncated normal with stddev `1/sqrt(in_dim)`; the bias starts at zero.

    >>> import jax, numpy as np
    >>> layer = Linear(3, 2, rng_key=jax.random.PRNGKey(0))
    >>> layer(np.ones((4, 3), np.float32)).shape
    (4, 2)
    """

    in_dim = static()
    out_dim = static()
    with_bias = static()
    w_init = static()
    b_init = static()
    weight = param()
    bias = param()

    def __init__(self, in_dim, out_dim, with_bias=True, w_init=None, b_init=None, *,
                 rng_key=None, name=None):
        self.in_dim = int(in_dim)
        self.out_dim = int(out_dim)
        self.with_bias = with_bias
        self.w_init = w_init
        self.b_init = b_init
        self.name = name or "Linear"
        if rng_key is not None:
            self.weight, self.bias = self._create(rng_key)

    def _create(self, key):
        k_w, k_b = jax.random.split(key)
        w_init = self.w_init or _truncated_normal(1.0 / math.sqrt(self.in_dim))
        weight = w_init((self.in_dim, self.out_dim), k_w)
        bias = (self.b_init or init.zeros)((self.out_dim,), k_b) if self.with_bias else None
        return weight, bias

    def _missing_params(self):
        return ["weight"] if self.weight is None else (
            ["bias"] if self.with_bias and self.bias is None else [])

    def init_weights_and_state(self, input_signature, key):
        if input_signature.shape[-1] != self.in_dim:
            raise ValueError(
                f"{self.name} was built for in_dim={self.in_dim}, got an input of shape "
                f"{input_signature.shape}."
            )
        if not self._missing_params():
            return self  # created at construction (rng_key given): keep those weights
        weight, bias = self._create(key)
        return self.replace(weight=weight, bias=bias)

    def forward(self, x):
        if x.shape[-1] != self.in_dim:
            raise ValueError(
                f"expected an input whose last axis has size {self.in_dim}, got shape "
                f"{tuple(x.shape)}."
            )
        y = jnp.dot(x, self.weight)
        return y + self.bias if self.with_bias else y

    def __repr__(self):
        return f"Linear(in_dim={self.in_dim}, out_dim={self.out_dim}, with_bias={self.with_bias})"
