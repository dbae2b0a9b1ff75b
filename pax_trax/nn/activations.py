"""Activation layers (weightless, 1 → 1)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from pax_trax.nn.base import Fn

__all__ = ["Relu", "Sigmoid", "Tanh", "Gelu", "Exp", "Log", "Softplus"]


def _relu(x):
    return jnp.where(x <= 0, jnp.zeros_like(x), x)


def Relu():
    """max(x, 0), keeping the input dtype.

    >>> import numpy as np
    >>> Relu()(np.array([-2, 0, 3])).tolist()
    [0, 0, 3]
    """
    return Fn("Relu", _relu)


def Sigmoid():
    return Fn("Sigmoid", jax.nn.sigmoid)


def Tanh():
    return Fn("Tanh", jnp.tanh)


def Gelu():
    """Exact (erf-based) GELU."""
    return Fn("Gelu", lambda x: jax.nn.gelu(x, approximate=False))


def Exp():
    return Fn("Exp", jnp.exp)


def Log():
    return Fn("Log", jnp.log)


def Softplus():
    return Fn("Softplus", jax.nn.softplus)
