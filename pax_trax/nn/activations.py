"""Activation layers, as Trax's `trax.layers.activation_fns`.

All are weightless 1 → 1 `Fn` layers except `ThresholdedLinearUnit`, which
has one trainable scalar. The formulas follow Trax's code exactly (see
`HardSigmoid` for the one place where Trax's code and its docstring differ).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from pax_trax.core.module import Module, param
from pax_trax.nn.base import Fn

__all__ = [
    "Relu",
    "ParametricRelu",
    "LeakyRelu",
    "Elu",
    "Selu",
    "Gelu",
    "FastGelu",
    "Sigmoid",
    "Tanh",
    "HardSigmoid",
    "HardTanh",
    "Softplus",
    "Exp",
    "Log",
    "Swish",
    "Glu",
    "ThresholdedLinearUnit",
]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_LAMBDA = 1.0507009873554804934193349852946


def _relu(x):
    return jnp.where(x <= 0, jnp.zeros_like(x), x)


def _gelu(x):
    return x * 0.5 * (1.0 + jax.scipy.special.erf(x / jnp.sqrt(2.0)))


def _fast_gelu(x):
    return 0.5 * x * (1 + jnp.tanh(x * 0.7978845608 * (1 + 0.044715 * x * x)))


def _hard_sigmoid(x):
    return jnp.maximum(0, jnp.minimum(1, (1 + x)))


def _hard_tanh(x):
    return jnp.maximum(-1, jnp.minimum(1, x))


def _softplus(x):
    return jnp.logaddexp(x, 0.0)


def _swish(x):
    return x * jax.nn.sigmoid(x)


def _glu(x):
    if x.shape[-1] % 2:
        raise ValueError(
            f"Glu splits the last axis in two halves; its size must be even, got shape "
            f"{tuple(x.shape)}."
        )
    a, b = jnp.split(x, 2, axis=-1)
    return a * jax.nn.sigmoid(b)


# Parametrised functions are frozen dataclasses: equal parameters give equal
# (hashable) functions, so equal layers share jit cache entries.


@dataclasses.dataclass(frozen=True)
class _ParametricRelu:
    a: float

    def __call__(self, x):
        return jnp.maximum(self.a * x, jnp.zeros_like(x))


@dataclasses.dataclass(frozen=True)
class _LeakyRelu:
    a: float

    def __call__(self, x):
        return jnp.where(x >= 0, x, self.a * x)


@dataclasses.dataclass(frozen=True)
class _Elu:
    a: float

    def __call__(self, x):
        return jnp.where(x > 0, x, self.a * jnp.expm1(x))


@dataclasses.dataclass(frozen=True)
class _Selu:
    alpha: float
    lmbda: float

    def __call__(self, x):
        return self.lmbda * jnp.where(x > 0, x, self.alpha * jnp.expm1(x))


def Relu():
    """`max(x, 0)`, keeping the input dtype.

    >>> import numpy as np
    >>> Relu()(np.array([-2, 0, 3])).tolist()
    [0, 0, 3]
    """
    return Fn("Relu", _relu)


def ParametricRelu(a=1.0):
    """`a * x` for `x > 0`, else 0 (`a` is a fixed slope, not a weight)."""
    return Fn("ParametricRelu", _ParametricRelu(float(a)))


def LeakyRelu(a=0.01):
    """`x` for `x >= 0`, else `a * x`."""
    return Fn("LeakyRelu", _LeakyRelu(float(a)))


def Elu(a=1.0):
    """`x` for `x > 0`, else `a * (exp(x) - 1)`."""
    return Fn("Elu", _Elu(float(a)))


def Selu(alpha=_SELU_ALPHA, lmbda=_SELU_LAMBDA):
    """`lmbda * x` for `x > 0`, else `lmbda * alpha * (exp(x) - 1)`."""
    return Fn("Selu", _Selu(float(alpha), float(lmbda)))


def Gelu():
    """Exact GELU: `x / 2 * (1 + erf(x / sqrt(2)))`."""
    return Fn("Gelu", _gelu)


def FastGelu():
    """Tanh approximation of GELU: `x / 2 * (1 + tanh(a x + a b x^3))`."""
    return Fn("FastGelu", _fast_gelu)


def Sigmoid():
    """`1 / (1 + exp(-x))`."""
    return Fn("Sigmoid", jax.nn.sigmoid)


def Tanh():
    """Hyperbolic tangent."""
    return Fn("Tanh", jnp.tanh)


def HardSigmoid():
    """Piecewise-linear sigmoid, as Trax's code computes it: `clip(1 + x, 0, 1)`.

    (Trax's docstring shows `clip(x, 0, 1)`; its code, followed here, shifts
    by one: 0 for `x <= -1`, `1 + x` in between, 1 for `x >= 0`.)
    """
    return Fn("HardSigmoid", _hard_sigmoid)


def HardTanh():
    """Piecewise-linear tanh: `clip(x, -1, 1)`."""
    return Fn("HardTanh", _hard_tanh)


def Softplus():
    """`log(exp(x) + 1)`."""
    return Fn("Softplus", _softplus)


def Exp():
    """Elementwise exponential."""
    return Fn("Exp", jnp.exp)


def Log():
    """Elementwise natural logarithm."""
    return Fn("Log", jnp.log)


def Swish():
    """`x * sigmoid(x)`."""
    return Fn("Swish", _swish)


def Glu():
    """Gated linear unit: splits the last axis into halves `a, b`; `a * sigmoid(b)`."""
    return Fn("Glu", _glu)


class ThresholdedLinearUnit(Module):
    """Thresholded Linear Unit (https://arxiv.org/abs/1911.09737): `max(x, t)`.

    The threshold `t` is one trainable scalar, initialized to zero.

    >>> import numpy as np
    >>> tlu = ThresholdedLinearUnit().init(np.zeros(3, np.float32))
    >>> tlu(np.array([-1., 0.5, 2.], np.float32)).tolist()
    [0.0, 0.5, 2.0]
    """

    threshold = param()

    def __init__(self):
        self.name = "ThresholdedLinearUnit"

    def init_weights_and_state(self, input_signature, key):
        del input_signature, key
        return self.replace(threshold=jnp.zeros((), jnp.float32))

    def forward(self, x):
        return jnp.maximum(x, self.threshold)
