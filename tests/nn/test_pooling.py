"""Pooling: Trax's MaxPool/SumPool/AvgPool layers and PAX's max_pool/avg_pool."""

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from pax_trax.core.errors import LayerError
from pax_trax.nn.pooling import AvgPool, MaxPool, SumPool, avg_pool, max_pool

# Trax's pooling_test.py inputs.
X4 = np.array([[
    [[1, 2, 3], [4, 5, 6], [10, 20, 30], [40, 50, 60]],
    [[4, 2, 3], [7, 1, 2], [40, 20, 30], [70, 10, 20]],
]])
X5 = np.array([[[0, 9], [1, 8], [2, 7], [3, 6], [4, 5]]])
X4T = np.array([[[0, 9], [1, 8], [2, 7], [3, 6]]])


def rand(shape, seed=0):
    return np.random.RandomState(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("layer", [MaxPool, SumPool, AvgPool])
def test_trax_forward_shape(layer):
    y = layer(pool_size=(2, 2), strides=(1, 2))(np.ones((11, 6, 4, 17), np.float32))
    assert y.shape == (11, 5, 2, 17)


def test_trax_pool_values():
    assert MaxPool(pool_size=(2, 2), strides=(2, 2))(X4).tolist() == [[[[7, 5, 6], [70, 50, 60]]]]
    assert SumPool(pool_size=(2, 2), strides=(2, 2))(X4).tolist() == \
        [[[[16, 10, 14], [160, 100, 140]]]]
    assert AvgPool(pool_size=(2, 2), strides=(2, 2))(X4).tolist() == \
        [[[[4.0, 2.5, 3.5], [40, 25, 35]]]]


def test_trax_pool_padding():
    # VALID drops the incomplete window at the end.
    assert MaxPool(pool_size=(3,), strides=(3,))(X5).tolist() == [[[2, 9]]]
    # SAME: one padding position (at the end), then two (one at each end).
    same = dict(pool_size=(3,), strides=(3,), padding="SAME")
    assert MaxPool(**same)(X5).tolist() == [[[2, 9], [4, 6]]]
    assert MaxPool(**same)(X4T).tolist() == [[[1, 9], [3, 7]]]
    assert SumPool(**same)(X5).tolist() == [[[3, 24], [7, 11]]]
    assert SumPool(**same)(X4T).tolist() == [[[1, 17], [5, 13]]]
    assert AvgPool(**same)(X5).tolist() == [[[1, 8], [3.5, 5.5]]]
    assert AvgPool(**same)(X4T).tolist() == [[[0.5, 8.5], [2.5, 6.5]]]


@pytest.mark.parametrize("pool,strides,padding", [((2, 2), None, "VALID"),
                                                   ((3, 2), (2, 1), "SAME"),
                                                   ((2, 3), (2, 2), "SAME")])
def test_trax_pool_matches_flax(pool, strides, padding):
    x = rand((2, 7, 6, 3))
    kw = dict(strides=strides, padding=padding)
    np.testing.assert_allclose(MaxPool(pool, **kw)(x), fnn.max_pool(x, pool, **kw), atol=1e-6)
    np.testing.assert_allclose(AvgPool(pool, **kw)(x),
                               fnn.avg_pool(x, pool, count_include_pad=False, **kw), atol=1e-6)
    window = np.prod(pool)
    np.testing.assert_allclose(SumPool(pool, **kw)(x),
                               fnn.avg_pool(x, pool, **kw) * window, atol=1e-5)


def test_trax_pool_layers_share_functions_and_names():
    a, b = MaxPool((2, 2), (2, 2)), MaxPool((2, 2), (2, 2))
    assert a.f == b.f and hash(a.f) == hash(b.f)  # equal settings share jit cache entries
    assert a.name == "MaxPool(2,2)" and AvgPool((3,)).name == "AvgPool(3,)"
    y = jax.jit(lambda m, x: m(x))(a, rand((1, 4, 4, 2)))
    assert y.shape == (1, 2, 2, 2)


def test_trax_pool_errors():
    with pytest.raises(LayerError, match=r"the input must have rank 4.*\(4, 4, 2\)") as info:
        MaxPool((2, 2))(np.zeros((4, 4, 2), np.float32))
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(ValueError, match="padding must be 'SAME' or 'VALID'"):
        AvgPool(padding="FULL")
    with pytest.raises(ValueError, match="strides .* must have the length of pool_size"):
        SumPool((2, 2), strides=(1,))


def test_pool_grads():
    x = jnp.asarray(rand((1, 4, 5, 2)))
    check_grads(AvgPool((2, 2), (1, 2), "SAME"), (x,), order=1, modes=["rev"], eps=1e-2)
    check_grads(MaxPool((2, 2), (2, 2)), (x,), order=1, modes=["rev"], eps=1e-3)


@pytest.mark.parametrize("layer", [MaxPool, SumPool, AvgPool])
@pytest.mark.parametrize("padding", ["VALID", "SAME"])
def test_pool_grads_under_jit(layer, padding):
    # Regression: a traced reduce_window init value made the VJP fail under jit.
    x = jnp.asarray(rand((1, 4, 4, 1)))
    pool = layer((2, 2), (2, 2), padding).init(x)
    grad = jax.jit(jax.grad(lambda x: pool(x).sum()))(x)
    np.testing.assert_allclose(grad, jax.grad(lambda x: pool(x).sum())(x), rtol=1e-6)
    scale = {MaxPool: None, SumPool: 1.0, AvgPool: 0.25}[layer]
    if scale is not None:  # 2x2 windows, stride 2, no overlap: every input once
        np.testing.assert_allclose(grad, np.full(x.shape, scale), rtol=1e-6)
    else:  # one 1 per window, at the window's maximum
        assert grad.sum() == 4 and set(np.unique(grad).tolist()) == {0.0, 1.0}


# --------------------------------------------------------------------- PAX


def test_pax_pool_hand_values():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    assert max_pool(x, 2, 2, "VALID")[0, ..., 0].tolist() == [[5, 7], [13, 15]]
    assert avg_pool(x, 2, 2, "VALID")[0, ..., 0].tolist() == [[2.5, 4.5], [10.5, 12.5]]
    # SAME with a 3x3 window and stride 1: corners average 4 values, not 9.
    same = avg_pool(x, 3, 1, "SAME")[0, ..., 0]
    assert same.shape == (4, 4)
    assert float(same[0, 0]) == (0 + 1 + 4 + 5) / 4
    assert float(same[1, 1]) == 5.0


@pytest.mark.parametrize("window,strides,padding", [(2, 2, "VALID"), (3, 2, "SAME"),
                                                     ((1, 3, 2, 1), (1, 1, 2, 1), "SAME"),
                                                     ((3, 2, 1), (2, 2, 1), "VALID")])
def test_pax_pool_matches_flax(window, strides, padding):
    x = rand((2, 7, 6, 3))
    spatial = lambda v: (v, v) if isinstance(v, int) else tuple(v)[-3:-1]  # noqa: E731
    ref_kw = dict(strides=spatial(strides), padding=padding)
    np.testing.assert_allclose(max_pool(x, window, strides, padding),
                               fnn.max_pool(x, spatial(window), **ref_kw), atol=1e-6)
    np.testing.assert_allclose(avg_pool(x, window, strides, padding),
                               fnn.avg_pool(x, spatial(window), count_include_pad=False,
                                            **ref_kw), atol=1e-6)


def test_pax_pool_channel_axis_nchw():
    x = rand((2, 3, 6, 6))  # NCHW: channel_axis=1 keeps the channels un-pooled
    y = max_pool(x, 2, 2, "VALID", channel_axis=1)
    assert y.shape == (2, 3, 3, 3)
    expected = fnn.max_pool(np.moveaxis(x, 1, -1), (2, 2), (2, 2))
    np.testing.assert_allclose(y, np.moveaxis(np.asarray(expected), -1, 1), atol=1e-6)
    assert avg_pool(x, 2, 2, "VALID", channel_axis=1).shape == (2, 3, 3, 3)


def test_pax_pool_integer_input_and_errors():
    xi = np.arange(8, dtype=np.int32).reshape(1, 8, 1)
    assert max_pool(xi, 2, 2, "VALID").ravel().tolist() == [1, 3, 5, 7]
    assert avg_pool(xi, 2, 2, "VALID").ravel().tolist() == [0.5, 2.5, 4.5, 6.5]
    with pytest.raises(ValueError, match="padding must be 'SAME' or 'VALID'"):
        max_pool(xi, 2, 2, "FULL")
    with pytest.raises(ValueError, match="invalid channel_axis 5"):
        avg_pool(xi, 2, 2, "VALID", channel_axis=5)
    with pytest.raises(ValueError, match="window_shape .* has more entries"):
        max_pool(xi, (1, 2, 2, 1), 1, "VALID")
