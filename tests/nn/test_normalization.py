"""Normalization: Trax's BatchNorm/LayerNorm/FilterResponseNorm and PAX's modules."""

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import pax_trax
from pax_trax.core.errors import LayerError, StateChangeError
from pax_trax.nn.normalization import (
    BatchNorm,
    BatchNorm1D,
    BatchNorm2D,
    FilterResponseNorm,
    GroupNorm,
    LayerNorm,
    PaxLayerNorm,
)

KEY = jax.random.PRNGKey(0)


def rand(shape, seed=0, scale=1.0, shift=0.0):
    return (np.random.RandomState(seed).normal(size=shape) * scale + shift).astype(np.float32)


def np_init(seed):
    def f(shape, key=None):
        return jnp.asarray(np.random.RandomState(seed).normal(size=shape), jnp.float32)

    return f


def flax_train(ref, variables, x):
    return ref.apply(variables, x, use_running_average=False, mutable=["batch_stats"])


def to_nhwc(x):
    return np.moveaxis(np.asarray(x), 1, -1)


def to_nchw(x):
    return np.moveaxis(np.asarray(x), -1, 1)


# ------------------------------------------------------------ Trax LayerNorm


def test_layer_norm_seed_example():
    x = np.array([[-2, -1, 0, 1, 2], [1, 2, 3, 4, 5], [10, 20, 30, 40, 50]], np.float32)
    ln = LayerNorm().init(x)
    scale, bias = ln.weights
    assert scale.tolist() == [1.0] * 5 and bias.tolist() == [0.0] * 5
    expected = [-np.sqrt(2), -np.sqrt(0.5), 0.0, np.sqrt(0.5), np.sqrt(2)]
    for row in np.asarray(ln(x)):
        np.testing.assert_allclose(row, expected, atol=1e-3)
    assert np.round(np.float64(ln(x)[0]), 3).tolist() == [-1.414, -0.707, 0.0, 0.707, 1.414]


def test_layer_norm_shape_dtype_and_center():
    x = rand((3, 2, 7))
    ln = LayerNorm().init(x)
    assert ln(x).shape == x.shape and ln(x).dtype == jnp.float32
    nc = LayerNorm(center=False).init(x).replace(bias=jnp.ones(7))
    expected = x / np.sqrt(np.mean(x * x, -1, keepdims=True) + 1e-6)  # no centering, no bias
    np.testing.assert_allclose(nc(x), expected, rtol=1e-5, atol=1e-5)


def test_layer_norm_matches_flax_and_grads():
    x = rand((2, 3, 6), shift=3.0)
    scale, bias = rand((6,), 1), rand((6,), 2)
    ln = LayerNorm().init(x).replace(scale=jnp.asarray(scale), bias=jnp.asarray(bias))
    ref = fnn.LayerNorm(epsilon=1e-6).apply({"params": {"scale": scale, "bias": bias}}, x)
    np.testing.assert_allclose(ln(x), ref, atol=1e-5)
    check_grads(lambda v: ln(v), (jnp.asarray(x[:1, :1]),), order=1, modes=["rev"], eps=1e-2)
    check_grads(lambda s: ln.replace(scale=s)(x), (ln.scale,), order=1, modes=["rev"], eps=1e-2)


def test_layer_norm_errors():
    ln = LayerNorm().init(np.zeros((2, 5), np.float32))
    with pytest.raises(LayerError, match=r"last axis has size 5.*\(2, 4\)"):
        ln(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="epsilon must be positive"):
        LayerNorm(epsilon=0.0)


# --------------------------------------------------------- FilterResponseNorm


@pytest.mark.parametrize("learn_epsilon", [False, True])
def test_filter_response_norm(learn_epsilon):
    x = rand((4, 3, 5, 2))
    frn = FilterResponseNorm(learn_epsilon=learn_epsilon).init(x)
    gamma, beta, eps_l = frn.weights
    assert gamma.shape == beta.shape == (2,)
    assert eps_l == () if not learn_epsilon else float(eps_l[0]) == pytest.approx(1e-4)
    frn = frn.replace(gamma=jnp.array([2.0, 0.5]), beta=jnp.array([0.0, 1.0]))
    eps = 1e-6 + (1e-4 if learn_epsilon else 0.0)
    nu2 = np.mean(x ** 2, axis=(1, 2), keepdims=True)
    expected = np.array([2.0, 0.5]) * x / np.sqrt(nu2 + eps) + np.array([0.0, 1.0])
    np.testing.assert_allclose(frn(x), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="must be positive"):
        FilterResponseNorm(init_epsilon=0.0)
    with pytest.raises(LayerError, match=r"channels=2.*\(4, 3\)"):
        frn(np.zeros((4, 3), np.float32))


# ------------------------------------------------------------ Trax BatchNorm


@pytest.mark.parametrize("momentum", [0.999, 0.9, 0.8])
def test_batch_norm_trax_values(momentum):
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    bn = BatchNorm(momentum=momentum).init(x)
    mean0, var0, n0 = bn.state
    assert float(mean0) == 0.0 and float(var0) == 1.0 and int(n0) == 0
    bn, y = pax_trax.purecall(bn, x)
    running_mean, running_var, n_batches = bn.state
    mean_of_x, var_of_x = 11.5, 47.9167  # of range(24)
    np.testing.assert_allclose(running_mean, mean_of_x * (1 - momentum), rtol=1e-5)
    np.testing.assert_allclose(running_var, momentum + var_of_x * (1 - momentum), rtol=1e-5)
    assert int(n_batches) == 1
    np.testing.assert_allclose(y, (x - mean_of_x) / np.sqrt(var_of_x + 1e-5), rtol=1e-5,
                               atol=1e-6)


def test_batch_norm_matches_flax_two_steps_then_eval():
    x1, x2, x3 = rand((4, 3, 3, 5), 1, 2.0, 1.0), rand((4, 3, 3, 5), 2), rand((2, 3, 3, 5), 3)
    bn = BatchNorm(axis=(0, 1, 2), momentum=0.9).init(x1)
    bn = bn.replace(gamma=jnp.asarray(rand((5,), 4)), beta=jnp.asarray(rand((5,), 5)))
    ref = fnn.BatchNorm(momentum=0.9, epsilon=1e-5)
    variables = {"params": {"scale": bn.gamma, "bias": bn.beta},
                 "batch_stats": {"mean": jnp.zeros(5), "var": jnp.ones(5)}}
    for x in (x1, x2):
        bn, y = pax_trax.purecall(bn, x)
        y_ref, upd = flax_train(ref, variables, x)
        variables = {**variables, **upd}
        np.testing.assert_allclose(y, y_ref, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean, variables["batch_stats"]["mean"], atol=1e-5)
    np.testing.assert_allclose(bn.running_var, variables["batch_stats"]["var"], atol=1e-5)
    y_eval = ref.apply(variables, x3, use_running_average=True)
    np.testing.assert_allclose(bn.eval()(x3), y_eval, atol=1e-5)


def test_batch_norm_plain_call_in_train_raises():
    x = rand((4, 3))
    bn = BatchNorm(axis=(0,)).init(x)
    with pytest.raises(StateChangeError, match="purecall"):
        bn(x)
    assert bn.eval()(x).shape == (4, 3)


# ------------------------------------------------------- PAX BatchNorm1D/2D


def test_pax_batch_norm_ema_by_hand():
    bn = BatchNorm1D(2, decay_rate=0.9)
    assert bn.scale.shape == (1, 1, 2) and bn.ema_mean.shape == (1, 1, 2)
    x1 = np.array([[[1, 10], [3, 30]]], np.float32)  # mean (2, 20), var (1, 100)
    x2 = np.array([[[5, 0], [7, 0]]], np.float32)  # mean (6, 0), var (1, 0)
    bn, y1 = pax_trax.purecall(bn, x1)
    # PAX's debiased EMA: the first update sets the averages to the batch statistics.
    np.testing.assert_allclose(bn.ema_mean.ravel(), [2, 20], rtol=1e-6)
    np.testing.assert_allclose(bn.ema_var.ravel(), [1, 100], rtol=1e-6)
    np.testing.assert_allclose(y1[0], [[-1, -1], [1, 1]], atol=1e-4)
    bn, _ = pax_trax.purecall(bn, x2)
    np.testing.assert_allclose(bn.ema_mean.ravel(), [0.9 * 2 + 0.1 * 6, 0.9 * 20], rtol=1e-6)
    np.testing.assert_allclose(bn.ema_var.ravel(), [1.0, 90.0], rtol=1e-5)
    y_eval = bn.eval()(np.array([[[2.4, 18]]], np.float32))
    np.testing.assert_allclose(y_eval.ravel(), [0.0, 0.0], atol=1e-5)


@pytest.mark.parametrize("cls,data_format,shape", [
    (BatchNorm2D, "NHWC", (4, 3, 3, 5)),
    (BatchNorm2D, "NCHW", (4, 5, 3, 3)),
    (BatchNorm1D, "NCW", (4, 5, 6)),
])
def test_pax_batch_norm_matches_flax(cls, data_format, shape):
    """Two train steps, then eval; Flax's stats are seeded as PAX's debiased EMA seeds them."""
    channels_first = data_format[1] == "C"
    axis = 1 if channels_first else -1
    x1, x2, x3 = rand(shape, 1, 2.0, 1.0), rand(shape, 2), rand(shape, 3)
    bn = cls(5, data_format=data_format)
    pshape = bn.scale.shape
    bn = bn.replace(scale=jnp.asarray(rand((5,), 4)).reshape(pshape),
                    offset=jnp.asarray(rand((5,), 5)).reshape(pshape))
    reduce = tuple(a for a in range(len(shape)) if a != (1 if channels_first else len(shape) - 1))
    ref = fnn.BatchNorm(axis=axis, momentum=0.9, epsilon=1e-5)
    variables = {"params": {"scale": bn.scale.ravel(), "bias": bn.offset.ravel()},
                 "batch_stats": {"mean": jnp.asarray(x1.mean(reduce)),
                                 "var": jnp.asarray(x1.var(reduce))}}
    bn, y1 = pax_trax.purecall(bn, x1)
    y1_ref, _ = flax_train(ref, variables, x1)
    np.testing.assert_allclose(y1, y1_ref, atol=1e-5)
    np.testing.assert_allclose(bn.ema_mean.ravel(), variables["batch_stats"]["mean"], atol=1e-5)
    bn, y2 = pax_trax.purecall(bn, x2)
    y2_ref, upd = flax_train(ref, variables, x2)
    variables = {**variables, **upd}
    np.testing.assert_allclose(y2, y2_ref, atol=1e-5)
    np.testing.assert_allclose(bn.ema_mean.ravel(), variables["batch_stats"]["mean"], atol=1e-5)
    np.testing.assert_allclose(bn.ema_var.ravel(), variables["batch_stats"]["var"], atol=1e-5)
    evaluated = bn.eval()
    assert evaluated.mode == "eval"
    np.testing.assert_allclose(evaluated(x3), ref.apply(variables, x3, use_running_average=True),
                               atol=1e-5)


def test_pax_batch_norm_modes_options_and_errors():
    x = rand((2, 4, 3))
    bn = BatchNorm1D(3, create_scale=False, create_offset=False)
    assert bn.scale is None and bn.offset is None
    with pytest.raises(StateChangeError):
        bn(x)
    bn2, y = pax_trax.purecall(bn, x)
    np.testing.assert_allclose(np.mean(np.asarray(y), axis=(0, 1)), 0.0, atol=1e-5)
    assert float(bn2.ema_debias) == 1.0 and bn2.train().mode == "train"
    assert bn.init(x) is bn
    with pytest.raises(LayerError, match=r"rank 3 \(NWC\) with 3 channels.*\(2, 4, 3, 1\)"):
        pax_trax.purecall(bn, np.zeros((2, 4, 3, 1), np.float32))
    with pytest.raises(LayerError, match="with 3 channels"):
        BatchNorm2D(3).eval()(np.zeros((2, 4, 4, 5), np.float32))
    with pytest.raises(ValueError, match="data_format must be one of"):
        BatchNorm2D(3, data_format="NWC")
    with pytest.raises(ValueError, match="decay_rate must be in"):
        BatchNorm1D(3, decay_rate=1.5)


# ----------------------------------------------------------------- GroupNorm


@pytest.mark.parametrize("shape,groups", [((2, 4, 4, 6), 3), ((2, 5, 4), 2), ((3, 8), 4)])
def test_group_norm_matches_flax(shape, groups):
    c = shape[-1]
    x = rand(shape, 1, 3.0, 2.0)
    gn = GroupNorm(groups, c, scale_init=np_init(2), offset_init=np_init(3), rng_key=KEY)
    ref = fnn.GroupNorm(num_groups=groups, epsilon=1e-5)
    expected = ref.apply({"params": {"scale": gn.scale, "bias": gn.offset}}, x)
    np.testing.assert_allclose(gn(x), expected, atol=1e-5)


def test_group_norm_channels_first_matches_flax():
    x = rand((2, 6, 3, 4), 1)  # NCHW
    gn = GroupNorm(2, 6, data_format="channels_first", scale_init=np_init(2),
                   offset_init=np_init(3), rng_key=KEY)
    ref = fnn.GroupNorm(num_groups=2, epsilon=1e-5)
    expected = ref.apply({"params": {"scale": gn.scale, "bias": gn.offset}}, to_nhwc(x))
    np.testing.assert_allclose(gn(x), to_nchw(expected), atol=1e-5)
    assert GroupNorm(2, 6, data_format="NC...")(x).shape == x.shape


def test_group_norm_time_axis_and_external_scale():
    x = rand((2, 5, 4), 1)  # [N, T, C]; slice(2, None): stats per time step and group
    gn = GroupNorm(2, 4, axis=slice(2, None), create_scale=False, create_offset=False)
    grouped = x.reshape(2, 5, 2, 2)
    mean, var = grouped.mean(-1, keepdims=True), grouped.var(-1, keepdims=True)
    expected = ((grouped - mean) / np.sqrt(var + 1e-5)).reshape(x.shape)
    np.testing.assert_allclose(gn(x), expected, atol=1e-5)
    scale, offset = np.float32([1, 2, 3, 4]), np.float32([0, 0, 1, 1])
    np.testing.assert_allclose(gn(x, scale=scale, offset=offset), expected * scale + offset,
                               atol=1e-5)
    np.testing.assert_allclose(gn(x, scale, offset), expected * scale + offset, atol=1e-5)


def test_group_norm_grads_and_errors():
    gn = GroupNorm(2, 4, scale_init=np_init(2), rng_key=KEY)
    x = jnp.asarray(rand((1, 2, 4), 1))
    check_grads(lambda v: gn(v), (x,), order=1, modes=["rev"], eps=1e-2)
    check_grads(lambda s: gn.replace(scale=s)(x), (gn.scale,), order=1, modes=["rev"], eps=1e-2)
    with pytest.raises(ValueError, match="divisible by the number of groups"):
        GroupNorm(3, 4)
    with pytest.raises(LayerError, match=r"\[N, \.\.\., C\] of rank >= 2 with C=4.*\(2, 3\)"):
        gn(np.zeros((2, 3), np.float32))
    with pytest.raises(LayerError, match="cannot pass `scale`"):
        gn(x, scale=np.ones(4, np.float32))
    with pytest.raises(ValueError, match="cannot set `offset_init`"):
        GroupNorm(2, 4, create_offset=False, offset_init=np_init(0))
    with pytest.raises(ValueError, match="data_format"):
        GroupNorm(2, 4, data_format="NHCW?")
    lazy = GroupNorm(2, 4, scale_init=np_init(2))  # custom init and no key: init fills it
    assert lazy.scale is None
    assert lazy.init(np.zeros((1, 4), np.float32)).scale.shape == (4,)


# ------------------------------------------------------------ PAX LayerNorm


@pytest.mark.parametrize("axis,flax_axes", [(-1, -1), ((1, 2, 3), (1, 2, 3)),
                                            (slice(1, None), (1, 2, 3))])
def test_pax_layer_norm_matches_flax(axis, flax_axes):
    x = rand((2, 3, 4, 5), 1, 2.0, 1.0)
    ln = PaxLayerNorm(5, axis, True, True, scale_init=np_init(2), offset_init=np_init(3),
                      rng_key=KEY)
    ref = fnn.LayerNorm(epsilon=1e-5, reduction_axes=flax_axes, feature_axes=-1)
    expected = ref.apply({"params": {"scale": ln.scale, "bias": ln.offset}}, x)
    np.testing.assert_allclose(ln(x), expected, atol=1e-5)


def test_pax_layer_norm_defaults_external_params_grads_and_errors():
    ln = PaxLayerNorm(5, -1, True, True)  # constant inits: created at construction
    assert ln.scale.tolist() == [1.0] * 5 and ln.offset.tolist() == [0.0] * 5
    x = np.array([[1, 2, 3, 4, 5]], np.float32)
    np.testing.assert_allclose(ln(x)[0], [-1.41421, -0.70711, 0, 0.70711, 1.41421], atol=1e-4)
    bare = PaxLayerNorm(5, -1, False, False)
    np.testing.assert_allclose(bare(x, scale=np.float32(2.0), offset=np.float32(1.0)),
                               2 * ln(x) + 1, atol=1e-5)
    check_grads(lambda v: ln(v), (jnp.asarray(x),), order=1, modes=["rev"], eps=1e-2)
    with pytest.raises(LayerError, match="cannot pass `offset`"):
        ln(x, offset=np.float32(1.0))
    with pytest.raises(LayerError, match=r"C=5 channels last, got shape \(1, 4\)"):
        ln(np.zeros((1, 4), np.float32))
    with pytest.raises(LayerError, match="out of range"):
        PaxLayerNorm(5, 3, True, True)(x)
    with pytest.raises(ValueError, match="cannot set `scale_init`"):
        PaxLayerNorm(5, -1, False, True, scale_init=np_init(0))
    with pytest.raises(ValueError, match="should be an int, slice or iterable of ints"):
        PaxLayerNorm(5, "last", True, True)
    assert repr(ln).startswith("LayerNorm(num_channels=5")
