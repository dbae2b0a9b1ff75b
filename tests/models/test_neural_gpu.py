"""NeuralGPU and its parts: Trax's shapes, shared steps, hand-computed values, training."""

import jax
import numpy as np
import optax
import pytest

import pax_trax
from pax_trax import nn
from pax_trax.core.errors import StateChangeError
from pax_trax.core.module import num_parameters
from pax_trax.core.shapes import ShapeDtype
from pax_trax.models.neural_gpu import (
    GET_STATE_FROM_CACHE,
    GET_WEIGHTS_FROM_CACHE,
    ConvDiagonalGRU,
    DiagonalGate,
    NeuralGPU,
    SaturationCost,
    SharedStepsSerial,
)
from pax_trax.supervised.train_step import init_optimizer_state, make_train_step

apply = jax.jit(lambda model, x: model(x))
purecall = jax.jit(pax_trax.purecall)


@pytest.fixture(scope="module")
def ngpu():
    """Trax's test configuration (train mode), initialized once."""
    model = NeuralGPU(d_feature=30, steps=4, vocab_size=22)
    return model.init(ShapeDtype((3, 5, 7), np.int32), jax.random.PRNGKey(0))


def test_forward_shape_as_trax_test(ngpu):
    x = np.ones((3, 5, 7), np.int32)
    _, y = purecall(ngpu, x)  # 'train' mode: the GRU's dropout is active.
    assert y.shape == (3, 5, 7, 22)
    assert (ngpu.n_in, ngpu.n_out) == (1, 1)


def test_steps_share_one_core(ngpu):
    # The core is stored once: the count does not depend on `steps`.
    conv = 3 * 3 * 30 * 30 + 30
    assert num_parameters(ngpu) == 22 * 30 + 3 * conv + (30 * 22 + 22)
    assert len(ngpu.layers) == 3
    # Trax's weights: one entry per use, the cache marker after the first.
    weights = ngpu.weights
    assert len(weights) == 1 + 4 + 1
    assert weights[0].shape == (22, 30) and [w.shape for w in weights[5]] == [(30, 22), (22,)]
    assert all(w == GET_WEIGHTS_FROM_CACHE for w in weights[2:5])
    assert weights[1] != GET_WEIGHTS_FROM_CACHE
    assert all(s == GET_STATE_FROM_CACHE for s in ngpu.state[2:5])
    assert str(ngpu).count("DiagonalGate") == 4


def test_model_applies_the_same_core_steps_times(ngpu):
    model = ngpu.eval()
    x = np.random.default_rng(0).integers(0, 22, size=(2, 3, 5)).astype(np.int32)
    embedding, core, dense = model.layers
    h = apply(embedding, x)
    for _ in range(4):
        h = apply(core, h)
    np.testing.assert_allclose(apply(model, x), apply(dense, h), rtol=1e-4, atol=1e-4)


def test_train_mode_dropout_and_eval_mode(ngpu):
    x = np.random.default_rng(1).integers(0, 22, size=(3, 5, 7)).astype(np.int32)
    with pytest.raises(StateChangeError, match="purecall"):
        apply(ngpu, x)
    new_model, y1 = purecall(ngpu, x)
    _, y2 = purecall(new_model, x)  # The dropout key advanced: another mask.
    assert not np.allclose(y1, y2)
    evaluated = ngpu.eval()
    np.testing.assert_array_equal(apply(evaluated, x), apply(evaluated, x))
    assert not np.allclose(apply(evaluated, x), y1)
    # mode='eval' at construction builds that eval model (Trax keeps dropout on).
    built_eval = NeuralGPU(d_feature=30, steps=4, vocab_size=22, mode="eval")
    assert all(m.mode == "eval" for m in built_eval.modules() if isinstance(m, nn.Dropout))


def test_diagonal_gate_by_hand():
    x = np.arange(1, 13, dtype=np.float32).reshape(1, 1, 2, 6)  # 2 positions, 6 channels.
    # First third from position i-1, middle from i, last third from i+1.
    expected = [[[0, 0, 3, 4, 11, 12], [1, 2, 9, 10, 0, 0]]]
    np.testing.assert_array_equal(DiagonalGate()(x)[0], expected)
    with pytest.raises(ValueError, match="divisible by 3"):
        DiagonalGate()(np.zeros((1, 1, 2, 4), np.float32))


def test_saturation_cost_by_hand():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 0.875, 1.0], np.float32)
    np.testing.assert_allclose(SaturationCost(x, limit=0.875),
                               [0.0, -0.375, -0.875, -0.375, 0.0, 0.0])


def _with_zero_convs(cell, biases):
    """Zero kernels; the i-th Conv (gate, reset, candidate) gets constant bias biases[i]."""
    biases = iter(biases)

    def fill(m):
        if isinstance(m, nn.Conv):
            return m.replace(w=np.zeros(m.w.shape, np.float32),
                             b=np.full(m.b.shape, next(biases), np.float32))
        return m

    return cell.map_modules(fill)


def test_conv_diagonal_gru_by_hand():
    s = np.random.default_rng(2).normal(size=(2, 1, 4, 6)).astype(np.float32)
    cell = ConvDiagonalGRU(units=6).eval().init(s)
    assert (cell.n_in, cell.n_out) == (1, 1)
    # Gate: Trax's HardSigmoid(0 + 0.5) = clip(1 + 0.5, 0, 1) = 1; so the new
    # state is 1 * DiagonalGate(s) + 0 * candidate.
    np.testing.assert_allclose(apply(_with_zero_convs(cell, [0.0, 0.0, 0.0]), s),
                               DiagonalGate()(s), atol=1e-6)
    # Gate bias -1.5: HardSigmoid(-1.5 + 0.5) = 0, so the candidate HardTanh(0.25) wins.
    np.testing.assert_allclose(apply(_with_zero_convs(cell, [-1.5, 0.0, 0.25]), s),
                               np.full(s.shape, 0.25), atol=1e-6)


def test_trains_on_a_copy_task(getkey):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, size=(8, 1, 6)).astype(np.int32)
    model = NeuralGPU(d_feature=6, steps=2, vocab_size=2).init(x, getkey())
    optimizer = optax.adam(0.02)
    opt_state = init_optimizer_state(optimizer, model)
    step = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), optimizer))
    losses = []
    for _ in range(20):
        model, opt_state, metrics = step(model, opt_state, (x, x, np.ones(x.shape, np.float32)))
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.5 * losses[0]


def test_shared_steps_serial_checks():
    with pytest.raises(ValueError, match="n_in == n_out"):
        SharedStepsSerial([nn.Dup()], repeats=[2])
    with pytest.raises(ValueError, match="outputs of its inputs' shapes"):
        SharedStepsSerial([nn.Dense(3)], repeats=[2]).init(np.zeros((1, 2), np.float32))
    layer = SharedStepsSerial([nn.Fn("Double", lambda x: 2 * x)], repeats=[3])
    assert layer(np.array([1.0])).tolist() == [8.0]


def test_bad_arguments_name_the_model():
    with pytest.raises(ValueError, match="NeuralGPU: d_feature must be divisible by 3"):
        NeuralGPU(d_feature=32)
    with pytest.raises(ValueError, match="NeuralGPU: steps"):
        NeuralGPU(steps=0)
