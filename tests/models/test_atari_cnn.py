"""AtariCnn, AtariCnnBody, FrameStackMLP: Trax's shapes, frame stacking by hand, training."""

import functools
import operator

import jax
import numpy as np
import optax
import pytest

from pax_trax import nn
from pax_trax.core.module import num_parameters
from pax_trax.core.shapes import ShapeDtype
from pax_trax.models.atari_cnn import AtariCnn, AtariCnnBody, FrameStackMLP
from pax_trax.supervised.train_step import init_optimizer_state, make_train_step

apply = jax.jit(lambda model, x: model(x))


@pytest.fixture(scope="module")
def atari_cnn():
    """Trax's test configuration, initialized for one frame of one sequence."""
    model = AtariCnn(hidden_sizes=(4, 4), output_size=6)
    return model.init(ShapeDtype((1, 1, 28, 28, 3)), jax.random.PRNGKey(0))


def test_atari_cnn_shape_as_trax_test(atari_cnn):
    batch, time, obs = 2, 2, (28, 28, 3)
    x = np.arange(batch * (time + 1) * functools.reduce(operator.mul, obs))
    x = x.reshape(batch, time + 1, *obs)
    y = apply(atari_cnn, x)
    assert y.shape == (batch, time + 1, 6)
    assert (atari_cnn.n_in, atari_cnn.n_out) == (1, 1)
    assert np.all(np.asarray(y) >= 0)  # Ends in ReLU.


def test_atari_cnn_structure_and_parameter_count(atari_cnn):
    names = [layer.name for layer in atari_cnn.sublayers]
    assert names == ["BytesToFloats", "Branch", "Concatenate", "Conv", "Relu", "Conv", "Relu",
                     "Flatten_keep2", "Dense_6", "Relu"]
    conv1 = 5 * 5 * (4 * 3) * 4 + 4  # 4 stacked frames of 3 channels.
    conv2 = 5 * 5 * 4 * 4 + 4
    dense = (7 * 7 * 4) * 6 + 6  # 28 -> 14 -> 7 with SAME, stride 2.
    assert num_parameters(atari_cnn) == conv1 + conv2 + dense


def test_atari_cnn_scales_bytes_and_is_causal_in_time(atari_cnn):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(1, 6, 28, 28, 3)).astype(np.uint8)
    y = apply(atari_cnn, frames)
    # Floats 255 times smaller give what the bytes give: the model divides by 255.
    np.testing.assert_allclose(apply(atari_cnn.replace(layers=atari_cnn.layers[1:]),
                                     frames / 255.0), y, rtol=1e-5, atol=1e-6)
    # Step t sees frames t-3..t: changing frame 4 changes steps 4 and 5 only.
    changed = frames.copy()
    changed[0, 4] = 255 - changed[0, 4]
    y_changed = apply(atari_cnn, changed)
    np.testing.assert_allclose(y[:, :4], y_changed[:, :4], atol=1e-6)
    assert not np.allclose(y[:, 4:], y_changed[:, 4:])


def test_atari_cnn_trains(atari_cnn):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(4, 3, 28, 28, 3)).astype(np.uint8)
    targets = rng.uniform(0.5, 1.5, size=(4, 3, 6)).astype(np.float32)
    optimizer = optax.adam(0.01)
    opt_state = init_optimizer_state(optimizer, atari_cnn)
    step = jax.jit(make_train_step(nn.L2Loss(), optimizer))
    model, losses = atari_cnn, []
    for _ in range(15):
        model, opt_state, metrics = step(model, opt_state,
                                         (frames, targets, np.ones_like(targets)))
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.5 * losses[0]


def test_atari_cnn_body_shape_and_parameter_count():
    kernel_init = lambda shape, key: np.full(shape, 0.01, np.float32)  # noqa: E731
    model = AtariCnnBody(n_frames=2, hidden_sizes=(4, 5, 6), output_size=8,
                         kernel_initializer=kernel_init)
    model = model.init(ShapeDtype((1, 1, 36, 36, 1)))
    y = apply(model, np.full((2, 3, 36, 36, 1), 255, np.uint8))
    assert y.shape == (2, 3, 8)
    # 36 -> (36-8)/4+1 = 8 -> (8-4)/2+1 = 3 -> 3-3+1 = 1 with VALID padding.
    conv = (8 * 8 * 2 * 4 + 4) + (4 * 4 * 4 * 5 + 5) + (3 * 3 * 5 * 6 + 6)
    assert num_parameters(model) == conv + (1 * 1 * 6) * 8 + 8
    convs = [m for m in model.modules() if isinstance(m, nn.Conv)]
    assert all(np.all(np.asarray(c.w) == 0.01) for c in convs)  # The given initializer.


def test_frame_stack_mlp_shape_as_trax_test():
    model = FrameStackMLP(hidden_sizes=(4, 4), output_size=6).init(ShapeDtype((1, 1, 3)))
    batch, time, obs = 2, 2, 3
    x = np.arange(batch * (time + 1) * obs).reshape(batch, time + 1, obs)
    assert apply(model, x).shape == (batch, time + 1, 6)
    assert num_parameters(model) == (12 * 4 + 4) + (4 * 4 + 4) + (4 * 6 + 6)


def test_frame_stack_by_hand():
    # No hidden layers and an identity Dense: the output is the stacked frames.
    model = FrameStackMLP(n_frames=3, hidden_sizes=(), output_size=6).init(ShapeDtype((1, 4, 2)))
    dense = model.layers[-1].replace(w=np.eye(6, dtype=np.float32),
                                     b=np.zeros(6, np.float32))
    model = model.replace(layers=model.layers[:-1] + (dense,))
    x = np.arange(1, 9, dtype=np.float32).reshape(1, 4, 2)  # frames [1,2], [3,4], [5,6], [7,8]
    expected = [[[1, 2, 0, 0, 0, 0],
                 [3, 4, 1, 2, 0, 0],
                 [5, 6, 3, 4, 1, 2],
                 [7, 8, 5, 6, 3, 4]]]
    np.testing.assert_array_equal(apply(model, x), expected)


def test_one_frame_is_no_stacking():
    names = [layer.name for layer in FrameStackMLP(n_frames=1, hidden_sizes=(3,)).sublayers]
    assert names == ["Dense_3", "Relu", "Dense_64"]


@pytest.mark.parametrize("make, match", [
    (lambda: AtariCnn(n_frames=0), "AtariCnn: n_frames"),
    (lambda: AtariCnn(hidden_sizes=(4, 4, 4)), "AtariCnn: hidden_sizes must be a tuple of 2"),
    (lambda: AtariCnnBody(output_size=-1), "AtariCnnBody: output_size"),
    (lambda: FrameStackMLP(hidden_sizes=(0,)), "FrameStackMLP: hidden_sizes"),
])
def test_bad_arguments_name_the_model(make, match):
    with pytest.raises(ValueError, match=match):
        make()
