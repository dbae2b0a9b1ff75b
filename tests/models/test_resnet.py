"""Resnet50, WideResnet and their blocks: Trax's structure, shapes, counts, BatchNorm modes.

Initializing a Resnet50 for real compiles one random-number program per
distinct kernel shape (about 15 s on two CPU cores), so most tests build the
weights by abstract initialization (`jax.eval_shape` of `model.init`, which
checks every shape in the model) and fill them from numpy.
"""

import math

import jax
import numpy as np
import optax
import pytest

import pax_trax
from pax_trax import nn
from pax_trax.core.errors import StateChangeError
from pax_trax.core.module import num_parameters
from pax_trax.core.shapes import ShapeDtype
from pax_trax.models.resnet import (
    ConvBlock,
    IdentityBlock,
    Resnet50,
    WideResnet,
    WideResnetBlock,
    WideResnetGroup,
)
from pax_trax.supervised.train_step import init_optimizer_state, make_train_step

apply = jax.jit(lambda model, x: model(x))
purecall = jax.jit(pax_trax.purecall)


def _abstract_init(model, shape):
    """`model.init` by abstract evaluation: every leaf is a jax.ShapeDtypeStruct."""
    return jax.eval_shape(lambda key: model.init(ShapeDtype(shape), key), jax.random.PRNGKey(0))


def _init_with_numpy_weights(model, shape, seed=0):
    """Initializes Conv/Dense weights He-normal from numpy; BatchNorm as BatchNorm does."""
    rng = np.random.default_rng(seed)

    def fill(m):
        if isinstance(m, nn.BatchNorm):
            size = m.running_mean.shape
            zeros, ones = np.zeros(size, np.float32), np.ones(size, np.float32)
            return m.replace(beta=zeros, gamma=ones, running_mean=zeros, running_var=ones,
                             n_batches=np.zeros((), np.int32))
        if isinstance(m, (nn.Conv, nn.Dense)):
            fan_in = math.prod(m.w.shape[:-1])
            w = rng.normal(size=m.w.shape) * np.sqrt(2.0 / fan_in)
            return m.replace(w=w.astype(np.float32), b=np.zeros(m.b.shape, np.float32))
        return m

    model = _abstract_init(model, shape).map_modules(fill)
    leaves = jax.tree_util.tree_leaves(model)
    assert not any(isinstance(x, jax.ShapeDtypeStruct) for x in leaves), "unfilled weights"
    return model


def _conv(k, c_in, c_out):
    return k * k * c_in * c_out + c_out


def _batch_norm(c):
    return 2 * c  # beta and gamma; the running statistics are state.


def _batch_norms(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm)]


# --------------------------------------------------------------------------- Resnet50


def test_resnet50_forward_shape_and_batch_statistics():
    x = np.random.default_rng(1).normal(size=(1, 224, 224, 3)).astype(np.float32)
    model = _init_with_numpy_weights(Resnet50(d_hidden=2, n_output_classes=10), x.shape)
    assert (model.n_in, model.n_out) == (1, 1)
    new_model, y = purecall(model, x)
    assert y.shape == (1, 10)
    # Every BatchNorm used the batch statistics and counted the batch.
    assert [int(bn.n_batches) for bn in _batch_norms(new_model)] == [1] * 53


def test_resnet50_structure_as_trax():
    model = Resnet50(d_hidden=2, n_output_classes=10)
    names = [layer.name for layer in model.sublayers]
    assert names[:5] == ["ToFloat", "Conv", "BatchNorm", "Relu", "MaxPool(3,3)"]
    assert names[5:37] == ["Serial", "Relu"] * 16  # 16 blocks of [Residual, Relu].
    assert names[37:] == ["AvgPool(7,7)", "Flatten_keep1", "Dense_10"]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv)]
    assert len(convs) == 53 and len(_batch_norms(model)) == 53


def test_resnet50_parameter_count_by_hand():
    d, n_classes = 2, 10
    model = _abstract_init(Resnet50(d_hidden=d, n_output_classes=n_classes), (1, 224, 224, 3))

    def conv_block(c_in, a):
        main = (_conv(1, c_in, a) + _batch_norm(a) + _conv(3, a, a) + _batch_norm(a)
                + _conv(1, a, 4 * a) + _batch_norm(4 * a))
        return main + _conv(1, c_in, 4 * a) + _batch_norm(4 * a)

    def identity_block(a):
        return (_conv(1, 4 * a, a) + _batch_norm(a) + _conv(3, a, a) + _batch_norm(a)
                + _conv(1, a, 4 * a) + _batch_norm(4 * a))

    expected = _conv(7, 3, d) + _batch_norm(d)
    c_in = d
    for multiplier, n_identity in [(1, 2), (2, 3), (4, 5), (8, 2)]:
        a = multiplier * d
        expected += conv_block(c_in, a) + n_identity * identity_block(a)
        c_in = 4 * a
    expected += 32 * d * n_classes + n_classes
    assert num_parameters(model) == expected


def test_resnet50_with_filter_response_norm():
    model = Resnet50(d_hidden=2, n_output_classes=10, norm=nn.FilterResponseNorm,
                     non_linearity=nn.ThresholdedLinearUnit)
    model = _abstract_init(model, (1, 224, 224, 3))
    assert not _batch_norms(model)
    norms = [m for m in model.modules() if isinstance(m, nn.FilterResponseNorm)]
    units = [m for m in model.modules() if isinstance(m, nn.ThresholdedLinearUnit)]
    assert len(norms) == 53 and len(units) == 1 + 16 * 3


# ---------------------------------------------------------------------- ResNet blocks


def _set_block(model, conv_weights):
    """Gives the block's convolutions the given kernels (in order) and zero biases."""
    kernels = iter(conv_weights)

    def fill(m):
        if isinstance(m, nn.Conv):
            return m.replace(w=np.asarray(next(kernels), np.float32),
                             b=np.zeros(m.b.shape, np.float32))
        return m

    return model.map_modules(fill)


def test_identity_block_with_zero_main_path_is_relu_of_input():
    x = np.random.default_rng(2).normal(size=(2, 5, 5, 4)).astype(np.float32)
    block = nn.Serial(IdentityBlock(3, (2, 2, 4), nn.BatchNorm, nn.Relu, mode="eval"))
    block = _init_with_numpy_weights(block, x.shape)
    zero = [np.zeros(conv.w.shape) for conv in block.modules() if isinstance(conv, nn.Conv)]
    block = _set_block(block, zero)
    # Main path: BatchNorm(0) = beta = 0, so the block computes relu(x + 0).
    np.testing.assert_allclose(apply(block, x), np.maximum(x, 0), atol=1e-6)


def test_conv_block_with_identity_shortcut_by_hand():
    x = np.random.default_rng(3).normal(size=(2, 6, 6, 4)).astype(np.float32)
    block = nn.Serial(ConvBlock(3, (2, 2, 4), (2, 2), nn.BatchNorm, nn.Relu, mode="eval"))
    block = _init_with_numpy_weights(block, x.shape)
    convs = [conv.w.shape for conv in block.modules() if isinstance(conv, nn.Conv)]
    # As in Trax, Residual is Branch(shortcut, main): the 1x1 strided shortcut first.
    assert convs == [(1, 1, 4, 4), (1, 1, 4, 2), (3, 3, 2, 2), (1, 1, 2, 4)]
    kernels = [np.eye(4).reshape(1, 1, 4, 4)] + [np.zeros(s) for s in convs[1:]]
    block = _set_block(block, kernels)
    # Eval-mode BatchNorm with fresh statistics divides by sqrt(1 + eps).
    expected = np.maximum(x[:, ::2, ::2, :] / np.sqrt(1 + 1e-5), 0)
    np.testing.assert_allclose(apply(block, x), expected, atol=1e-5)


# ------------------------------------------------------------------------ WideResnet


def test_wide_resnet_forward_shape_as_trax_test():
    x = np.ones((3, 32, 32, 3), np.float32)
    model = _init_with_numpy_weights(WideResnet(n_blocks=1, n_output_classes=10), x.shape)
    _, y = purecall(model, x)
    assert y.shape == (3, 10)


def test_wide_resnet_parameter_count_by_hand():
    model = _abstract_init(WideResnet(n_blocks=2, widen_factor=1, n_output_classes=10),
                           (1, 32, 32, 3))

    def block(c_in, c):
        return _batch_norm(c_in) + _conv(3, c_in, c) + _batch_norm(c) + _conv(3, c, c)

    def group(c_in, c, n):
        return block(c_in, c) + _conv(3, c_in, c) + (n - 1) * block(c, c)

    expected = (_conv(3, 3, 16) + group(16, 16, 2) + group(16, 32, 2) + group(32, 64, 2)
                + _batch_norm(64) + 64 * 10 + 10)
    assert num_parameters(model) == expected


def test_wide_resnet_group_structure_as_trax():
    first, rest = WideResnetGroup(3, 8, strides=(2, 2))
    # Each Residual is Serial(Branch(shortcut, layers), Add).
    shortcut, main = first.layers[0].layers[1].layers
    assert [m.name for m in shortcut.sublayers] == ["Conv"]
    assert [m.name for m in main.sublayers] == [m.name for m in WideResnetBlock(8)]
    assert len(rest.layers[0].layers[1].layers[1].sublayers) == 2 * 6
    # With n=1 the second Residual is empty and doubles its input, as in Trax.
    _, doubling = WideResnetGroup(1, 8)
    np.testing.assert_allclose(doubling(np.ones((1, 2, 2, 8), np.float32)), 2.0)


def test_wide_resnet_batch_norm_train_vs_eval():
    x = np.random.default_rng(4).normal(size=(4, 32, 32, 3)).astype(np.float32)
    model = _init_with_numpy_weights(WideResnet(n_blocks=1, n_output_classes=10), x.shape)
    with pytest.raises(StateChangeError, match="purecall"):
        apply(model, x)
    trained, y_train = purecall(model, x)
    for old, new in zip(_batch_norms(model), _batch_norms(trained)):
        assert int(new.n_batches) == 1
        # momentum 0.9: the running mean moves 10% of the way to the batch mean.
        assert not np.allclose(new.running_mean, old.running_mean)
    first_bn = _batch_norms(trained)[0]
    stem = apply(model.layers[1], x)  # The input of the first BatchNorm.
    np.testing.assert_allclose(first_bn.running_mean, 0.1 * stem.mean(axis=(0, 1, 2)),
                               atol=1e-5)
    # Eval mode normalizes with the running statistics: other outputs, no state change.
    y_eval = apply(trained.eval(), x)
    assert not np.allclose(y_train, y_eval, atol=1e-3)


def test_wide_resnet_trains():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 32, 32, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 3], np.int32)
    model = _init_with_numpy_weights(WideResnet(n_blocks=1, n_output_classes=4), x.shape)
    optimizer = optax.adam(0.01)
    opt_state = init_optimizer_state(optimizer, model)
    step = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), optimizer))
    losses = []
    for _ in range(8):
        model, opt_state, metrics = step(model, opt_state, (x, y, np.ones(4, np.float32)))
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.5 * losses[0]


def test_bad_arguments_name_the_model():
    with pytest.raises(ValueError, match="Resnet50: d_hidden"):
        Resnet50(d_hidden=0)
    with pytest.raises(ValueError, match="ConvBlock: filters must be three ints"):
        ConvBlock(3, (4, 4), (1, 1), nn.BatchNorm, nn.Relu)
    with pytest.raises(ValueError, match="WideResnet: mode"):
        WideResnet(mode="test")
