"""Tests for pax_trax.nn.activations (Trax's activation_fns)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from pax_trax.core.errors import LayerError
from pax_trax.nn import initializers
from pax_trax.nn.activations import (
    Elu,
    Exp,
    FastGelu,
    Gelu,
    Glu,
    HardSigmoid,
    HardTanh,
    LeakyRelu,
    Log,
    ParametricRelu,
    Relu,
    Selu,
    Sigmoid,
    Softplus,
    Swish,
    Tanh,
    ThresholdedLinearUnit,
)
from pax_trax.nn.combinators import Serial
from pax_trax.nn.core import Dense

X = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], np.float32)


def _close(layer, expected, x=X, **kw):
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=kw.get("rtol", 1e-6),
                               atol=kw.get("atol", 1e-6))


def test_relu_family_hand_values():
    assert Relu()(X).tolist() == [0.0, 0.0, 0.0, 0.5, 2.0]
    assert Relu()(np.array([-2, 0, 3])).tolist() == [0, 0, 3]
    assert ParametricRelu()(X).tolist() == [0.0, 0.0, 0.0, 0.5, 2.0]
    assert ParametricRelu(3.0)(X).tolist() == [0.0, 0.0, 0.0, 1.5, 6.0]
    _close(LeakyRelu(), [-0.02, -0.005, 0.0, 0.5, 2.0])
    _close(LeakyRelu(0.5), [-1.0, -0.25, 0.0, 0.5, 2.0])


def test_elu_selu():
    neg = np.expm1(np.array([-2.0, -0.5]))
    _close(Elu(), [*neg, 0.0, 0.5, 2.0])
    _close(Elu(2.0), [*(2 * neg), 0.0, 0.5, 2.0])
    alpha, lmbda = 1.6732632423543772, 1.0507009873554805
    _close(Selu(), [*(lmbda * alpha * neg), 0.0, lmbda * 0.5, lmbda * 2.0])
    _close(Selu(alpha=1.0, lmbda=2.0), [*(2 * neg), 0.0, 1.0, 4.0])


def test_gelu_exact_and_fast():
    erf = np.vectorize(math.erf)
    exact = X / 2 * (1 + erf(X / np.sqrt(2)))
    _close(Gelu(), exact)
    a, b = 0.7978845608, 0.044715
    fast = X / 2 * (1 + np.tanh(a * X + a * b * X**3))
    _close(FastGelu(), fast)
    np.testing.assert_allclose(Gelu()(X), FastGelu()(X), atol=1e-3)  # the approximation
    assert float(Gelu()(np.float32(1.0))) == pytest.approx(0.8413447, rel=1e-6)


def test_sigmoid_tanh_softplus_exp_log_swish():
    sig = 1 / (1 + np.exp(-X))
    _close(Sigmoid(), sig)
    _close(Tanh(), np.tanh(X))
    _close(Softplus(), np.log1p(np.exp(X)))
    assert float(Softplus()(np.float32(100.0))) == 100.0  # no overflow
    _close(Exp(), np.exp(X))
    _close(Log(), np.log([0.5, 1.0, 4.0]), x=np.array([0.5, 1.0, 4.0], np.float32))
    _close(Swish(), X * sig)


def test_hard_sigmoid_follows_trax_code():
    # Trax computes max(0, min(1, 1 + x)).
    x = np.array([-3.0, -1.0, -0.25, 0.0, 0.5, 3.0], np.float32)
    assert HardSigmoid()(x).tolist() == [0.0, 0.0, 0.75, 1.0, 1.0, 1.0]


def test_hard_tanh():
    x = np.array([-3.0, -1.0, -0.25, 0.0, 0.5, 3.0], np.float32)
    assert HardTanh()(x).tolist() == [-1.0, -1.0, -0.25, 0.0, 0.5, 1.0]


def test_glu():
    x = np.array([[1.0, 2.0, 0.0, 100.0], [3.0, -4.0, -100.0, 0.0]], np.float32)
    np.testing.assert_allclose(Glu()(x), [[0.5, 2.0], [0.0, -2.0]], atol=1e-6)
    with pytest.raises(LayerError, match="even"):
        Glu()(np.ones((2, 3), np.float32))


def test_names_and_shapes_preserved():
    for layer in (Relu(), ParametricRelu(), LeakyRelu(), Elu(), Selu(), Gelu(), FastGelu(),
                  Sigmoid(), Tanh(), HardSigmoid(), HardTanh(), Softplus(), Exp(), Log(),
                  Swish()):
        assert (layer.n_in, layer.n_out) == (1, 1)
        assert layer(np.ones((2, 3, 4), np.float32)).shape == (2, 3, 4)
    assert LeakyRelu(0.2).name == "LeakyRelu" and repr(Glu()) == "Glu"
    # Equal parameters give equal functions (shared jit cache entries).
    assert LeakyRelu(0.2).f == LeakyRelu(0.2).f and hash(Elu(2.0).f) == hash(Elu(2.0).f)
    assert LeakyRelu(0.2).f != LeakyRelu(0.3).f


def test_gradients_of_smooth_activations():
    x = jnp.asarray(X + 0.1)  # away from the kinks at 0
    for layer in (Elu(), Selu(), Gelu(), FastGelu(), Swish(), Softplus(), LeakyRelu(0.3)):
        check_grads(layer, (x,), order=1, modes=["rev"])


def test_thresholded_linear_unit():
    layer = ThresholdedLinearUnit().init(np.zeros((5,), np.float32))
    assert layer.threshold.shape == () and float(layer.threshold) == 0.0
    assert layer.weights.shape == ()
    assert layer(X).tolist() == [0.0, 0.0, 0.0, 0.5, 2.0]
    layer = layer.replace(threshold=jnp.float32(-1.0))
    assert layer(X).tolist() == [-1.0, -0.5, 0.0, 0.5, 2.0]


def test_thresholded_linear_unit_gradients():
    layer = ThresholdedLinearUnit().init(np.zeros((5,), np.float32))
    x = jnp.array([-2.0, -0.7, 0.3, 0.9, 2.0])

    def f(threshold, x):
        return jnp.sum(layer.replace(threshold=threshold)(x) ** 2)

    check_grads(f, (jnp.float32(-0.4), x), order=1, modes=["rev"])
    # d/dt sum(max(x, t)^2) = 2 t * #(x < t)
    g = jax.grad(f)(jnp.float32(-0.4), x)
    assert float(g) == pytest.approx(2 * -0.4 * 2)
    # Trained inside a model, it receives its gradient through the module tree.
    dense = Dense(3, kernel_initializer=initializers.ones, bias_initializer=initializers.zeros)
    model = Serial(dense, ThresholdedLinearUnit()).init(np.ones((2, 4), np.float32))
    model = model.replace(layers=(model.sublayers[0], model.sublayers[1].replace(
        threshold=jnp.float32(5.0))))  # above every Dense output (4.0): all clipped
    grads = jax.jit(jax.grad(lambda m: jnp.sum(m(np.ones((2, 4), np.float32)))))(model)
    assert float(grads.sublayers[1].threshold) == 6.0  # 2 x 3 outputs, each d/dt = 1
    assert float(jnp.abs(grads.sublayers[0].w).sum()) == 0.0
