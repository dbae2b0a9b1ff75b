"""Convolutions: Trax's Conv/CausalConv/Conv1d and PAX's Conv1D/2D(+Transpose)."""

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from pax_trax.core.errors import LayerError
from pax_trax.nn.combinators import Serial
from pax_trax.nn.convolution import (
    CausalConv,
    Conv,
    Conv1D,
    Conv1d,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
)
from pax_trax.nn.utility import Sequential

KEY = jax.random.PRNGKey(0)


def rand(shape, seed=0):
    return np.random.RandomState(seed).normal(size=shape).astype(np.float32)


def np_init(seed=0, scale=0.5):
    """A NumPy initializer: no per-shape XLA compile of jax.random (keeps tests fast)."""

    def f(shape, key=None):
        return jnp.asarray(np.random.RandomState(seed).normal(size=shape) * scale, jnp.float32)

    return f


W, B = np_init(1), np_init(2)


def flax_apply(module, kernel, bias, x):
    params = {"kernel": jnp.asarray(kernel)}
    if bias is not None:
        params["bias"] = jnp.asarray(bias)
    return module.apply({"params": params}, x)


def nchw_to_nhwc(x):
    return np.moveaxis(np.asarray(x), 1, -1)


def nhwc_to_nchw(x):
    return np.moveaxis(np.asarray(x), -1, 1)


# ---------------------------------------------------------------- Trax Conv


def test_conv_shapes_and_weights():
    x = np.ones((9, 5, 5, 20), np.float32)
    conv = Conv(30, (3, 3), bias_initializer=B).init(x)  # default (Glorot normal) kernel
    assert conv(x).shape == (9, 3, 3, 30)
    w, b = conv.weights
    assert w.shape == (3, 3, 20, 30) and b.shape == (30,)
    fan_avg = 9 * (20 + 30) / 2
    assert 0.8 < float(jnp.std(w)) * np.sqrt(fan_avg) < 1.2

    no_bias = Conv(30, (3, 3), use_bias=False).init(x)
    assert no_bias.weights.shape == (3, 3, 20, 30)
    assert no_bias(x).shape == (9, 3, 3, 30)


def test_conv_rebatch():
    x = np.ones((2, 9, 5, 5, 20), np.float32)
    conv = Conv(30, (3, 3), kernel_initializer=W, bias_initializer=B).init(x)
    y = conv(x)
    assert y.shape == (2, 9, 3, 3, 30)
    np.testing.assert_allclose(y[1], conv(x[1]), atol=1e-5)


def test_conv_hand_computed():
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    conv = Conv(1, (2, 2), kernel_initializer=W, bias_initializer=B).init(x)
    conv = conv.replace(w=jnp.ones((2, 2, 1, 1)), b=jnp.array([0.5]))
    # Sums of the four 2x2 windows of [[0,1,2],[3,4,5],[6,7,8]], plus the bias.
    assert conv(x)[0, :, :, 0].tolist() == [[8.5, 12.5], [20.5, 24.5]]


@pytest.mark.parametrize("strides,padding", [((1, 1), "VALID"), ((2, 1), "SAME"),
                                             ((2, 2), ((1, 0), (2, 1)))])
def test_conv_matches_flax(strides, padding):
    x = rand((2, 7, 6, 3))
    conv = Conv(4, (3, 2), strides=strides, padding=padding, kernel_initializer=W,
                bias_initializer=B).init(x)
    ref = fnn.Conv(4, (3, 2), strides=strides, padding=padding)
    np.testing.assert_allclose(conv(x), flax_apply(ref, conv.w, conv.b, x), atol=1e-5)


def test_conv_nchw_dimension_numbers_matches_flax():
    x = rand((2, 3, 6, 5))  # NCHW
    conv = Conv(4, (3, 3), strides=(1, 2), padding="SAME", kernel_initializer=W,
                bias_initializer=B, dimension_numbers=("NCHW", "HWIO", "NCHW")).init(x)
    assert conv.b.shape == (4, 1, 1)  # Trax: bias shaped to broadcast over H, W
    conv = conv.replace(b=jnp.arange(4.0).reshape(4, 1, 1))
    ref = fnn.Conv(4, (3, 3), strides=(1, 2), padding="SAME")
    expected = flax_apply(ref, conv.w, jnp.arange(4.0), nchw_to_nhwc(x))
    np.testing.assert_allclose(conv(x), nhwc_to_nchw(expected), atol=1e-5)


def test_conv1d_matches_flax():
    x = rand((2, 9, 3))
    conv = Conv1d(5, 3, stride=2, kernel_initializer=W, bias_initializer=B).init(x)
    assert conv.w.shape == (3, 3, 5)
    ref = fnn.Conv(5, (3,), strides=(2,), padding="VALID")
    np.testing.assert_allclose(conv(x), flax_apply(ref, conv.w, conv.b, x), atol=1e-5)


def test_causal_conv_is_causal_and_matches_left_padded_conv():
    x = rand((2, 6, 3))
    conv = CausalConv(4, kernel_width=3, kernel_initializer=W, bias_initializer=B).init(x)
    y = conv(x)
    assert y.shape == (2, 6, 4)
    ref = fnn.Conv(4, (3,), padding=((2, 0),))
    np.testing.assert_allclose(y, flax_apply(ref, conv.w, conv.b, x), atol=1e-5)
    # Output step t depends on no input step after t.
    jac = jax.jacobian(lambda v: conv(v)[0, :, 0])(jnp.asarray(x))  # (T, B, T, C)
    for t in range(6):
        assert float(jnp.abs(jac[t, 0, t + 1:]).sum()) == 0.0
        assert float(jnp.abs(jac[t, 0, t]).sum()) > 0.0
    no_bias = CausalConv(4, use_bias=False, kernel_initializer=W).init(x)
    assert no_bias.weights.shape == (3, 3, 4)


def test_conv_grads():
    x = rand((1, 4, 4, 2))
    conv = Conv(2, (2, 2), strides=(2, 1), padding="SAME", kernel_initializer=W,
                bias_initializer=B).init(x)
    check_grads(lambda v: conv(v), (jnp.asarray(x),), order=1, modes=["rev"], eps=1e-2)
    check_grads(lambda w: conv.replace(w=w)(x), (conv.w,), order=1, modes=["rev"], eps=1e-2)


def test_conv_in_serial_and_jit():
    from pax_trax.nn.pooling import MaxPool

    x = rand((2, 6, 6, 3))
    model = Serial(Conv(4, (3, 3), padding="SAME", kernel_initializer=W, bias_initializer=B),
                   MaxPool((2, 2), (2, 2))).init(x)
    y = jax.jit(lambda m, v: m(v))(model, x)
    assert y.shape == (2, 3, 3, 4)


def test_conv_errors():
    conv = Conv(4, (3, 3), kernel_initializer=W, bias_initializer=B).init(
        np.zeros((1, 5, 5, 2), np.float32))
    with pytest.raises(LayerError, match=r"rank 4 \(layout NHWC\) or more.*\(5, 5, 2\)") as info:
        conv(np.zeros((5, 5, 2), np.float32))
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(LayerError, match="expected 2 input channels"):
        conv(np.zeros((1, 5, 5, 3), np.float32))
    with pytest.raises(TypeError, match="kernel_size must be a tuple of 2 ints"):
        Conv(4, 3)
    with pytest.raises(ValueError, match="padding must be 'SAME', 'VALID'"):
        Conv(4, (3, 3), padding="FULL")
    with pytest.raises(LayerError, match=r"\[batch, time, depth\] input of rank 3"):
        CausalConv(4, kernel_initializer=W).init(np.zeros((2, 5, 5, 3), np.float32))
    with pytest.raises(LayerError, match="not initialized"):
        Conv(4, (3, 3))(np.zeros((1, 5, 5, 2), np.float32))


# ----------------------------------------------------------------- PAX Conv


CONV2D_CASES = [
    # data_format, stride, rate, padding, groups
    ("NHWC", 1, 1, "SAME", 1),
    ("NHWC", (2, 1), 1, "VALID", 1),
    ("NHWC", 1, (2, 2), "SAME", 2),
    ("NCHW", 2, 1, "SAME", 1),
    ("NCHW", 1, 2, [(1, 0), (0, 2)], 4),
]


@pytest.mark.parametrize("data_format,stride,rate,padding,groups", CONV2D_CASES)
def test_conv2d_matches_flax(data_format, stride, rate, padding, groups):
    conv = Conv2D(4, 8, (3, 2), stride=stride, rate=rate, padding=padding,
                  data_format=data_format, feature_group_count=groups,
                  w_init=W, b_init=B, rng_key=KEY)
    assert conv.weight.shape == (3, 2, 4 // groups, 8) and conv.bias.shape == (8,)
    x_nhwc = rand((2, 7, 6, 4))
    ref = fnn.Conv(8, (3, 2), strides=stride, padding=padding, kernel_dilation=rate,
                   feature_group_count=groups)
    expected = flax_apply(ref, conv.weight, conv.bias, x_nhwc)
    if data_format == "NCHW":
        got = nchw_to_nhwc(conv(nhwc_to_nchw(x_nhwc)))
    else:
        got = conv(x_nhwc)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("data_format", ["NWC", "NCW"])
def test_conv1d_pax_matches_flax(data_format):
    conv = Conv1D(3, 5, 3, stride=2, rate=1, padding="SAME", data_format=data_format,
                  w_init=W, b_init=B, rng_key=KEY)
    x = rand((2, 9, 3))
    ref = fnn.Conv(5, (3,), strides=2, padding="SAME")
    expected = flax_apply(ref, conv.weight, conv.bias, x)
    got = conv(x) if data_format == "NWC" else nchw_to_nhwc(conv(nhwc_to_nchw(x)))
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("cls,kernel,stride,padding,data_format", [
    (Conv2DTranspose, (3, 3), 2, "SAME", "NHWC"),
    (Conv2DTranspose, (2, 3), (2, 1), "VALID", "NCHW"),
    (Conv1DTranspose, 4, 2, "SAME", "NWC"),
    (Conv1DTranspose, 3, 3, "VALID", "NCW"),
])
def test_conv_transpose_matches_flax(cls, kernel, stride, padding, data_format):
    conv = cls(3, 5, kernel, stride=stride, padding=padding, data_format=data_format,
               w_init=W, b_init=B, rng_key=KEY)
    n = 1 if cls is Conv1DTranspose else 2
    ksize = (kernel,) * n if isinstance(kernel, int) else kernel
    strides = (stride,) * n if isinstance(stride, int) else stride
    assert conv.weight.shape == ksize + (5, 3)  # Haiku's (..., out, in) layout
    x = rand((2,) + (4,) * n + (3,))
    ref = fnn.ConvTranspose(5, ksize, strides=strides, padding=padding)
    expected = flax_apply(ref, jnp.swapaxes(conv.weight, -1, -2), conv.bias, x)
    got = conv(x) if data_format[-1] == "C" else nchw_to_nhwc(conv(nhwc_to_nchw(x)))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_pax_conv_construction_and_init():
    conv = Conv2D(3, 8, 3, rng_key=KEY)
    assert conv.weight.shape == (3, 3, 3, 8)
    np.testing.assert_array_equal(conv.bias, np.zeros(8))
    # Default init: truncated normal (at 2 stddev) with stddev 1/sqrt(fan_in).
    assert float(jnp.max(jnp.abs(conv.weight))) <= 2 / np.sqrt(27) + 1e-6
    assert 0.6 / np.sqrt(27) < float(jnp.std(conv.weight)) < 1.1 / np.sqrt(27)

    lazy = Conv2D(3, 8, 3, with_bias=False)
    assert lazy.weight is None
    with pytest.raises(LayerError, match="not initialized"):
        lazy(np.zeros((1, 4, 4, 3), np.float32))
    ready = lazy.init(np.zeros((1, 4, 4, 3), np.float32), KEY)
    assert ready.weight.shape == (3, 3, 3, 8) and ready.bias is None
    assert ready(np.zeros((1, 4, 4, 3), np.float32)).shape == (1, 4, 4, 8)
    # init keeps weights created at construction.
    assert conv.init(np.zeros((1, 4, 4, 3), np.float32), jax.random.PRNGKey(9)).weight is \
        conv.weight

    net = Sequential(Conv2D(3, 4, 3, w_init=W, rng_key=KEY), jax.nn.relu,
                     Conv2DTranspose(4, 2, 2, stride=2, w_init=W, rng_key=KEY))
    assert net(np.ones((1, 4, 4, 3), np.float32)).shape == (1, 8, 8, 2)
    assert "Conv2D(in_features=3, out_features=8" in repr(conv)


def rev_grads(f, arg):
    # The layers are linear in each argument, so a large step is exact up to rounding.
    check_grads(f, (arg,), order=1, modes=["rev"], eps=1e-2)


def test_pax_conv_grads():
    conv = Conv2D(2, 2, 2, stride=2, rate=2, w_init=W, b_init=B, rng_key=KEY)
    x = jnp.asarray(rand((1, 3, 3, 2)))
    rev_grads(lambda v: conv(v), x)
    rev_grads(lambda w: conv.replace(weight=w)(x), conv.weight)
    tconv = Conv2DTranspose(2, 2, 2, stride=2, data_format="NCHW", w_init=W, b_init=B,
                            rng_key=KEY)
    xt = jnp.asarray(rand((1, 2, 2, 3)))
    rev_grads(lambda v: tconv(v), xt)
    rev_grads(lambda w: tconv.replace(weight=w)(xt), tconv.weight)


def test_pax_conv_errors():
    conv = Conv2D(3, 8, 3, w_init=W, rng_key=KEY)
    with pytest.raises(LayerError, match=r"batched input of rank 4 \(NHWC\).*\(4, 4, 3\)"):
        conv(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(LayerError, match="expects 3 input channels"):
        conv(np.zeros((1, 4, 4, 5), np.float32))
    with pytest.raises(LayerError, match=r"rank 3 \(NCW\)"):
        Conv1DTranspose(3, 8, 3, data_format="NCW", w_init=W, rng_key=KEY)(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError, match="data_format must be one of"):
        Conv2D(3, 8, 3, data_format="NWC")
    with pytest.raises(ValueError, match="divisible by feature_group_count"):
        Conv2D(3, 8, 3, feature_group_count=2)
    with pytest.raises(ValueError, match="kernel_shape must be a positive int or a sequence"):
        Conv2D(3, 8, (3, 3, 3))
    with pytest.raises(ValueError, match="padding needs 2"):
        Conv2D(3, 8, 3, padding=[(1, 1)])
