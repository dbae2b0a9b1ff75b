"""MLP: Trax's structure, shapes, parameter counts, exact values and training."""

import jax
import numpy as np
import optax
import pytest

from pax_trax import nn
from pax_trax.core.module import num_parameters
from pax_trax.models.mlp import MLP
from pax_trax.supervised.train_step import init_optimizer_state, make_train_step


def test_forward_shape_as_trax_test():
    model = MLP(layer_widths=(32, 16, 8))
    x = np.ones((7, 28, 28, 3), np.float32)
    model = model.init(x)
    assert model(x).shape == (7, 8)
    assert (model.n_in, model.n_out) == (1, 1)


def test_layer_structure_as_trax():
    names = [layer.name for layer in MLP(layer_widths=(4, 3)).sublayers]
    assert names == ["Flatten_keep1", "Dense_4", "Relu", "Dense_3"]
    names = [layer.name for layer in MLP((4, 3), out_activation=True, flatten=False).sublayers]
    assert names == ["Dense_4", "Relu", "Dense_3", "Relu"]
    names = [layer.name for layer in MLP((5,), activation_fn=nn.Tanh).sublayers]
    assert names == ["Flatten_keep1", "Dense_5"]


def test_trax_style_weights_order():
    model = MLP(layer_widths=(4, 3)).init(np.zeros((2, 5), np.float32))
    flatten_w, (w1, b1), relu_w, (w2, b2) = model.weights
    assert flatten_w == () and relu_w == ()
    assert (w1.shape, b1.shape, w2.shape, b2.shape) == ((5, 4), (4,), (4, 3), (3,))


def test_parameter_count_by_hand():
    model = MLP(layer_widths=(32, 16, 8)).init(np.zeros((1, 28, 28, 3), np.float32))
    d_in = 28 * 28 * 3
    expected = (d_in * 32 + 32) + (32 * 16 + 16) + (16 * 8 + 8)
    assert num_parameters(model) == expected


def test_values_with_set_weights_equal_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2, 3)).astype(np.float32)
    model = MLP(layer_widths=(4, 2), activation_fn=nn.Tanh, out_activation=True)
    model = model.init(x)
    w1, b1 = rng.normal(size=(6, 4)), rng.normal(size=(4,))
    w2, b2 = rng.normal(size=(4, 2)), rng.normal(size=(2,))
    dense1 = model.sublayers[1].replace(w=np.float32(w1), b=np.float32(b1))
    dense2 = model.sublayers[3].replace(w=np.float32(w2), b=np.float32(b2))
    layers = list(model.layers)
    layers[1], layers[3] = dense1, dense2
    model = model.replace(layers=tuple(layers))
    expected = np.tanh(np.tanh(x.reshape(3, 6) @ w1 + b1) @ w2 + b2)
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-5)


def test_relu_between_layers_only():
    # With all-negative first-layer outputs, ReLU zeroes them: output = b2.
    x = np.ones((2, 3), np.float32)
    model = MLP(layer_widths=(4, 2), flatten=False).init(x)
    layers = list(model.layers)
    layers[0] = layers[0].replace(w=-np.ones((3, 4), np.float32), b=np.zeros(4, np.float32))
    layers[2] = layers[2].replace(b=np.array([1.5, -2.5], np.float32))
    model = model.replace(layers=tuple(layers))
    np.testing.assert_allclose(model(x), [[1.5, -2.5], [1.5, -2.5]])


def test_training_reduces_loss(getkey):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 4, 2)).astype(np.float32)
    y = (x[:, 0, 0] + x[:, 1, 1] > 0).astype(np.int32)
    weights = np.ones((32,), np.float32)
    model = MLP(layer_widths=(16, 2)).init(x, getkey())
    optimizer = optax.adam(0.05)
    opt_state = init_optimizer_state(optimizer, model)
    step = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), optimizer))
    losses = []
    for _ in range(30):
        model, opt_state, metrics = step(model, opt_state, (x, y, weights))
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("widths", [(), (4, 0), (4, 2.5), 8])
def test_bad_layer_widths_raise(widths):
    with pytest.raises(ValueError, match="MLP: layer_widths"):
        MLP(layer_widths=widths)


def test_bad_mode_raises():
    with pytest.raises(ValueError, match="MLP: mode"):
        MLP(mode="training")
