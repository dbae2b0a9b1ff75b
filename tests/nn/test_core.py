"""Tests for pax_trax.nn.core: Trax's core layers and PAX's Embed and EMA."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import pax_trax
from pax_trax.core.errors import LayerError, StateChangeError
from pax_trax.nn import initializers as init
from pax_trax.nn.combinators import Serial
from pax_trax.nn.core import (
    ArgMax,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    LocallyConnected1d,
    LogSoftmax,
    LogSumExp,
    Max,
    Mean,
    Min,
    Negate,
    PrintShape,
    RandomUniform,
    Softmax,
    StopGradient,
    Sum,
    SummaryImage,
    SummaryScalar,
    ThresholdToBinary,
    ToFloat,
    Weights,
    log_gaussian_diag_pdf,
    log_gaussian_pdf,
    log_softmax,
    logsoftmax_sample,
    multigaussian_loss,
    one_hot,
)
from pax_trax.nn.pax_modules import EMA, Embed

_RNG = np.random.RandomState(0)


def _randn(*shape):
    return _RNG.randn(*shape).astype(np.float32)


def _np_init(shape, key=None, **unused):
    """A cheap deterministic initializer (no XLA compile for random numbers)."""
    del key, unused
    return jnp.asarray(_randn(*shape))


def _cause(excinfo):
    """The original exception under the LayerError that a module call raises."""
    return excinfo.value.__cause__


# --------------------------------------------------------------------- Dense


def test_dense_with_given_weights():
    layer = Dense(4).init(np.zeros((2,), np.float32))
    w = np.array([[10000, 20000, 30000, 40000], [100, 200, 100, 200]], np.float32)
    b = np.array([9, 8, 7, 6], np.float32)
    y = layer.replace(w=w, b=b)(np.array([2, 3], np.float32))
    assert y.tolist() == [20309, 40608, 60307, 80606]


def test_dense_no_bias_and_shapes():
    layer = Dense(4, use_bias=False).init(np.zeros((3,), np.float32))
    assert layer.b is None and layer.w.shape == (3, 4)
    w = np.array([[100, 200, 300, 400], [10, 10, 10, 10], [1, 2, 1, 2]], np.float32)
    assert layer.replace(w=w)(np.array([2, 5, 3], np.float32)).tolist() == [253, 456, 653, 856]
    assert Dense(4).init(np.zeros((1, 2))).weights[1].shape == (4,)


def test_dense_errors():
    with pytest.raises(ValueError, match="positive int"):
        Dense(0)
    with pytest.raises(LayerError, match="not initialized"):
        Dense(3)(np.ones((1, 2), np.float32))
    layer = Dense(3).init(np.zeros((1, 2), np.float32))
    with pytest.raises(LayerError, match="last axis has size 2"):
        layer(np.ones((1, 5), np.float32))


def test_dense_separate_instances_get_separate_weights():
    model = Serial(Dense(5), Dense(5)).init(np.zeros((5,), np.float32))
    w0, w1 = model.sublayers[0].w, model.sublayers[1].w
    assert not np.allclose(w0, w1)


# ----------------------------------------------------------------- Embedding


def test_embedding_clips_out_of_range_ids():
    layer = Embedding(10, 3).init(np.zeros((5,), np.int32))
    y = layer(np.array([0, 2, 3, -2, -3, 9, 10, 20]))
    assert y.shape == (8, 3)
    assert y[0].tolist() == y[3].tolist() == y[4].tolist()  # negatives -> 0
    assert y[5].tolist() == y[6].tolist() == y[7].tolist()  # >= vocab -> 9
    assert y[0].tolist() != y[1].tolist() != y[2].tolist()


def test_embedding_explicit_initializer():
    def f(shape, key):
        del key
        return jnp.arange(np.prod(shape), dtype=jnp.float32).reshape(shape)

    layer = Embedding(5, 2, kernel_initializer=f).init(np.zeros((5,), np.int32))
    assert layer(np.arange(5)).tolist() == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


def test_embedding_bfloat16_weights_float32_activations():
    layer = Embedding(5, 2, use_bfloat16=True).init(np.zeros((3,), np.int32))
    assert layer.w.dtype == jnp.bfloat16
    assert layer(np.array([1, 2])).dtype == jnp.float32


def test_embedding_float_input_raises_type_error():
    layer = Embedding(10, 3).init(np.zeros((2,), np.int32))
    with pytest.raises(LayerError, match="integer token ids") as excinfo:
        layer(np.array([1.0, 2.0], np.float32))
    assert isinstance(_cause(excinfo), TypeError)
    assert "float32" in str(_cause(excinfo))
    with pytest.raises(LayerError, match="integer token ids") as excinfo:
        Embedding(10, 3).init(np.zeros((2,), np.float32))
    assert isinstance(_cause(excinfo), TypeError)


# ------------------------------------------------------------------- Dropout


def test_dropout_rate_zero_and_eval_are_identity():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    layer = Dropout(0.0).init(x)
    assert layer(x).tolist() == x.tolist()
    layer = Dropout(0.5, mode="eval").init(x)
    assert layer(x).tolist() == x.tolist()
    # .eval() switches a training Dropout into the identity with fixed state.
    assert Dropout(0.5).init(x).eval()(x).tolist() == x.tolist()


def test_dropout_train_scales_kept_values_and_advances_rng():
    x = np.ones((2, 5, 1000), np.float32)
    layer = Dropout(0.1).init(x)
    with pytest.raises(StateChangeError):
        layer(x)
    new, y = pax_trax.purecall(layer, x)
    y = np.asarray(y)
    assert len(np.unique(y)) == 2
    np.testing.assert_allclose(y[y != 0], 1 / 0.9, rtol=1e-6)
    n_kept = np.count_nonzero(y)
    assert abs(n_kept - 9000) < 4 * 30  # Binomial(10000, 0.9) within 4 sigma.
    assert not np.array_equal(np.asarray(new.rng), np.asarray(layer.rng))
    new2, y2 = pax_trax.purecall(new, x)
    assert not np.array_equal(np.asarray(y2), y)  # a fresh mask on the next call
    _, y_again = pax_trax.purecall(layer, x)
    assert np.array_equal(np.asarray(y_again), y)  # same key, same mask


def test_dropout_shared_axes_broadcast_mask():
    x = np.ones((4, 6, 8), np.float32)
    layer = Dropout(0.5, shared_axes=[0, 2]).init(x)
    _, y = pax_trax.purecall(layer, x)
    y = np.asarray(y)
    # The mask varies only along axis 1: every (i, :, k) slice is the same.
    assert np.all(y == y[:1, :, :1])
    assert set(np.unique(y).tolist()) <= {0.0, 2.0}


def test_dropout_errors():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="mode"):
        Dropout(0.1, mode="training")


# ------------------------------------------------- Weights, RandomUniform, ...


def test_weights_layer():
    layer = Weights(lambda shape, key: jnp.zeros(shape, jnp.float32), (2, 2)).init(())
    assert layer.n_in == 0 and layer.name == "Weights_(2, 2)"
    assert layer().tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert layer(()).tolist() == [[0.0, 0.0], [0.0, 0.0]]
    layer = Weights(init.RandomNormalInitializer(), (5, 10, 3)).init(())
    assert layer(()).shape == (5, 10, 3) and float(jnp.abs(layer.w).sum()) > 0
    # In a Serial it pushes one item on the stack; gradients reach it.
    model = Serial(Weights(lambda shape, key: jnp.full(shape, 3.0), (2,)), Sum()).init(())
    grads = jax.grad(lambda m: m(()))(model)
    assert grads.sublayers[0].w.tolist() == [1.0, 1.0]


def test_weights_bad_initializer_shape():
    with pytest.raises(LayerError, match="expected"):
        Weights(lambda shape, key: jnp.zeros((3,)), (2,)).init(())


def test_random_uniform_range_shape_and_rng():
    layer = RandomUniform(1.0, 2.0, shape=(1000,)).init(())
    with pytest.raises(StateChangeError):
        layer()
    new, y = pax_trax.purecall(layer)
    y = np.asarray(y)
    assert y.shape == (1000,) and y.dtype == np.float32
    assert 1.0 <= y.min() < 1.5 < y.max() < 2.0
    _, y2 = pax_trax.purecall(new)
    assert not np.array_equal(np.asarray(y2), y)
    assert RandomUniform().init(()).n_in == 0
    _, scalar = pax_trax.purecall(RandomUniform().init(()))
    assert scalar.shape == ()


def test_random_uniform_sync_across_devices():
    if jax.local_device_count() < 2:
        pytest.skip("needs two devices")
    keys = jax.random.split(jax.random.PRNGKey(3), 2)

    def per_device(sync):
        layers = [RandomUniform(shape=(4,), sync=sync).replace(rng=k) for k in keys]
        stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *layers)
        run = jax.pmap(lambda m: pax_trax.purecall(m)[1], axis_name="batch")
        return np.asarray(run(stacked))

    synced = per_device(True)
    assert np.array_equal(synced[0], synced[1])
    unsynced = per_device(False)
    assert not np.array_equal(unsynced[0], unsynced[1])


def test_random_uniform_needs_init():
    with pytest.raises(LayerError, match="init"):
        pax_trax.purecall(RandomUniform())


def test_print_shape(capsys):
    layer = PrintShape(n_in=2, msg="here")
    x = (np.zeros((2, 3), np.float32), np.zeros((4,), np.int32))
    out = layer(x)
    assert out[0] is x[0] and out[1] is x[1]
    assert capsys.readouterr().out == "PrintShape: here: [(2, 3)[float32], (4,)[int32]]\n"
    single = np.ones((1, 5), np.float32)
    assert PrintShape()(single) is single
    assert "[(1, 5)[float32]]" in capsys.readouterr().out
    assert (layer.n_in, layer.n_out) == (2, 2)


def test_summary_scalar_records_in_train_mode():
    x = np.array([[3.0, 5.0], [2.0, 6.0]], np.float32)
    layer = SummaryScalar("test").init(x)
    assert layer.name == "Summary_test"
    assert layer.state["summary_test"].tolist() == 0.0
    with pytest.raises(StateChangeError):
        layer(x)
    new, y = pax_trax.purecall(layer, x)
    assert y.tolist() == x.tolist()
    assert new.state["summary_test"].tolist() == 4.0
    layer_max = SummaryScalar("m", aggregation_fun=jnp.max).init(x)
    assert pax_trax.purecall(layer_max, x)[0].state["summary_m"].tolist() == 6.0
    # Eval mode: identity, state fixed, plain call allowed.
    assert layer.eval()(x).tolist() == x.tolist()


def test_summary_scalar_in_jitted_serial():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    model = Serial(SummaryScalar("act"), Negate()).init(x)
    new, y = jax.jit(pax_trax.purecall)(model, x)
    assert y.tolist() == (-x).tolist()
    assert new.sublayers[0].summary["summary_act"].tolist() == 2.5


def test_summary_image():
    a = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
    b = -a
    layer = SummaryImage("img", n_in=2, num_summaries=2).init((a, b))
    assert (layer.n_in, layer.n_out) == (2, 2)
    assert sorted(layer.summary) == ["summary_img0", "summary_img1"]
    assert layer.summary["summary_img0"].shape == (4, 2)
    new, out = pax_trax.purecall(layer, (a, b))
    assert out[0] is a and out[1] is b
    np.testing.assert_array_equal(new.summary["summary_img1"], np.concatenate([a[1], b[1]]))
    # recover_fn is applied to each item; batch smaller than num_summaries.
    layer = SummaryImage("r", n_in=1, num_summaries=5, recover_fn=lambda im: im * 10).init(a)
    new, _ = pax_trax.purecall(layer, a)
    assert sorted(new.summary) == ["summary_r0", "summary_r1", "summary_r2"]
    np.testing.assert_array_equal(new.summary["summary_r2"], a[2] * 10)


# -------------------------------------------------------- LocallyConnected1d


def _naive_locally_connected(x, w, b, padding):
    """Direct loops over Trax's definition (x: (L, D), w: (L, K, D, F))."""
    length, k = w.shape[0], w.shape[1]
    half = (k - 1) // 2
    out_len = length - k + 1 if padding == "VALID" else length
    y = np.zeros((out_len, w.shape[-1]))
    for j in range(out_len):
        for i in range(k):
            src = j + k - 1 - i if padding == "VALID" else j + i - half
            if padding == "WRAP":
                src %= length
            if 0 <= src < length:
                y[j] += x[src] @ w[src, i]
    return y + b


@pytest.mark.parametrize("padding", ["VALID", "SAME", "WRAP"])
def test_locally_connected_matches_definition(padding):
    x = _randn(5, 2)
    layer = LocallyConnected1d(3, 3, _np_init, _np_init, padding=padding).init(x)
    y = layer(x)
    expected = _naive_locally_connected(x, np.asarray(layer.w), np.asarray(layer.b), padding)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    assert y.shape == ((3, 3) if padding == "VALID" else (5, 3))


def test_locally_connected_shared_weights_is_a_convolution():
    # With one kernel for every position, SAME is a cross-correlation and
    # VALID a convolution (kernel flipped), as Trax's shifting implies.
    x = _randn(2, 6, 3)
    kernel = _randn(3, 3, 4)  # (K, D, F)
    w = jnp.broadcast_to(kernel, (6, 3, 3, 4))
    dn = ("NWC", "WIO", "NWC")
    for padding, k in (("SAME", kernel), ("VALID", kernel[::-1])):
        layer = LocallyConnected1d(4, 3, _np_init, padding=padding, use_bias=False).init(x)
        y = layer.replace(w=w)(x)
        ref = jax.lax.conv_general_dilated(x, k, (1,), padding, dimension_numbers=dn)
        np.testing.assert_allclose(y, ref, atol=1e-5)


def test_locally_connected_kernel1_shapes_and_errors():
    x = np.array([[0, 1], [2, 3], [4, 5]], np.float32)
    layer = LocallyConnected1d(6, 1).init(x)  # default (Glorot uniform) init
    assert layer.w.shape == (3, 1, 2, 6) and layer.b.shape == (3, 6)
    for padding in ("WRAP", "SAME", "VALID"):
        layer = LocallyConnected1d(6, 1, _np_init, _np_init, padding=padding).init(x)
        assert layer(x).shape == (3, 6)
        expected = np.einsum("lp,lpd->ld", x, np.asarray(layer.w)[:, 0]) + layer.b
        np.testing.assert_allclose(layer(x), expected, rtol=1e-5)
    layer = LocallyConnected1d(6, 3, _np_init, _np_init, padding="VALID").init(x)
    assert layer(x).shape == (1, 6)
    with pytest.raises(ValueError, match="odd"):
        LocallyConnected1d(6, 2)
    with pytest.raises(ValueError, match="padding"):
        LocallyConnected1d(6, 3, padding="CAUSAL")
    layer = LocallyConnected1d(6, 3, _np_init, _np_init).init(x)
    with pytest.raises(LayerError, match=r"\(\.\.\., 3, 2\)"):
        layer(np.zeros((4, 2), np.float32))


def test_locally_connected_gradients():
    x = jnp.asarray(_randn(2, 4, 2))
    layer = LocallyConnected1d(2, 3, _np_init, _np_init, padding="SAME").init(x)

    def f(w, b, x):
        return jnp.sum(jnp.sin(layer.replace(w=w, b=b)(x)))

    check_grads(jax.jit(f), (layer.w, layer.b, x), order=1, modes=["rev"])


# ------------------------------------------------------ weightless layers


def test_log_softmax_and_softmax_values():
    x = np.array([[2.0, 1.0, -10.0], [1.0, 1.0, -10.0]], np.float32)
    expected_log = [[-0.313, -1.313, -12.313], [-0.693, -0.693, -11.693]]
    np.testing.assert_allclose(LogSoftmax()(x), expected_log, atol=1e-3)
    np.testing.assert_allclose(log_softmax(x), expected_log, atol=1e-3)
    np.testing.assert_allclose(
        Softmax()(x), [[0.731, 0.269, 0.00000449], [0.5, 0.5, 0.00000835]], atol=1e-3
    )
    np.testing.assert_allclose(Softmax(axis=0)(x).sum(axis=0), [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(LogSoftmax(axis=0)(x)[:, 2], np.log([0.5, 0.5]), atol=1e-6)


def test_log_sum_exp():
    x = np.array([[0.0, 0.0], [np.log(2.0), np.log(3.0)]], np.float32)
    np.testing.assert_allclose(LogSumExp()(x), [[np.log(2.0)], [np.log(5.0)]], atol=1e-6)
    np.testing.assert_allclose(LogSumExp(axis=0)(x), [[np.log(3.0), np.log(4.0)]], atol=1e-6)


def test_reductions_and_small_layers():
    x = np.array([[3.0, 5.0], [2.0, 6.0]], np.float32)
    assert Min()(x).tolist() == [3.0, 2.0]
    assert Min(axis=0)(x).tolist() == [2.0, 5.0]
    assert Min(axis=None)(x).tolist() == 2.0
    assert Min(keepdims=True)(x).tolist() == [[3.0], [2.0]]
    assert Max()(x).tolist() == [5.0, 6.0]
    assert Max(axis=0, keepdims=True)(x).tolist() == [[3.0, 6.0]]
    assert Sum()(x).tolist() == 16.0
    assert Sum(axis=-1)(x).tolist() == [8.0, 8.0]
    assert Mean()(x).tolist() == [4.0, 4.0]
    assert Negate()(x).tolist() == [[-3.0, -5.0], [-2.0, -6.0]]
    assert ToFloat()(np.array([1, 2])).dtype == jnp.float32
    assert ThresholdToBinary()(np.array([0.3, 0.49, 0.5, 0.51, 0.7])).tolist() == [0, 0, 0, 1, 1]
    assert ThresholdToBinary(0.0)(np.array([-1.0, 1.0])).dtype == jnp.int32
    x2 = np.array([[0.1, 0.9, 0.2, 0.8], [0.22, 0.88, 0.11, 0.99]])
    assert ArgMax()(x2).tolist() == [1, 3]
    assert ArgMax(axis=0)(x2).tolist() == [1, 0, 0, 1]


def test_stop_gradient():
    x = np.array([[3.0, 5.0], [2.0, 6.0]], np.float32)
    assert StopGradient()(x).tolist() == x.tolist()
    g = jax.grad(lambda v: jnp.sum(StopGradient()(v) * v))(jnp.asarray(x))
    assert g.tolist() == x.tolist()  # d/dv [sg(v) * v] = sg(v)


def test_flatten():
    x = np.ones((1, 2, 3, 4, 5))
    assert Flatten()(x).shape == (1, 120)
    assert Flatten(n_axes_to_keep=3)(x).shape == (1, 2, 3, 20)
    assert Flatten(n_axes_to_keep=4)(x).shape == (1, 2, 3, 4, 5)
    with pytest.raises(LayerError, match="must exceed"):
        Flatten(n_axes_to_keep=5)(x)


# ---------------------------------------------------------------- functions


def test_one_hot():
    assert one_hot(np.array([2, 0, 1]), 5).tolist() == [
        [0, 0, 1, 0, 0], [1, 0, 0, 0, 0], [0, 1, 0, 0, 0]]
    assert one_hot(np.array([[1]]), 2, jnp.int32).dtype == jnp.int32


def test_log_gaussian_pdfs():
    x = np.zeros((2, 5), np.float32)
    eye = np.eye(5, dtype=np.float32)[None]
    prob = log_gaussian_pdf(x, x, np.concatenate([eye, 2 * eye]))
    assert prob.shape == (2,)
    np.testing.assert_allclose(prob, [-2.5 * np.log(2 * np.pi),
                                      -2.5 * np.log(2 * np.pi) - 2.5 * np.log(2)], rtol=1e-6)
    diag = np.concatenate([np.ones((1, 5)), 2 * np.ones((1, 5))]).astype(np.float32)
    np.testing.assert_allclose(log_gaussian_diag_pdf(x, x, diag), prob, rtol=1e-6)


def test_log_gaussian_diag_pdf_matches_full_covariance():
    x, mu = _randn(3, 4), _randn(3, 4)
    var = np.exp(_randn(3, 4))
    full = np.stack([np.diag(v) for v in var])
    np.testing.assert_allclose(log_gaussian_diag_pdf(x, mu, var), log_gaussian_pdf(x, mu, full),
                               rtol=1e-5)
    # One value by hand: N(1 | 0, 4) in one dimension.
    v = log_gaussian_diag_pdf(jnp.array([1.0]), jnp.array([0.0]), jnp.array([4.0]))
    np.testing.assert_allclose(v, -0.5 * (np.log(2 * np.pi) + np.log(4.0) + 0.25), rtol=1e-6)


def test_multigaussian_loss():
    # One Gaussian: the mixture log-likelihood is the Gaussian's.
    targets = np.array([[0.5, -1.0], [2.0, 0.0]], np.float32)
    mus = np.array([[0.0, 0.0], [1.0, 1.0]], np.float32)
    scales = np.array([[1.0, 2.0], [0.5, 1.0]], np.float32)
    preds = np.concatenate([np.zeros((2, 1), np.float32), mus, scales], axis=1)
    out = multigaussian_loss(preds, targets, ngauss=1)
    expected = log_gaussian_diag_pdf(targets, mus, scales**2 + 1e-6)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    # Two identical components with any logits give the same likelihood.
    preds2 = np.concatenate([np.array([[0.3, -2.0]] * 2, np.float32),
                             np.repeat(mus, 2, axis=0).reshape(2, 4),
                             np.repeat(scales, 2, axis=0).reshape(2, 4)], axis=1)
    preds2[:, 2:6] = np.concatenate([mus, mus], axis=1)
    preds2[:, 6:] = np.concatenate([scales, scales], axis=1)
    np.testing.assert_allclose(multigaussian_loss(preds2, targets, ngauss=2), expected,
                               rtol=1e-5)
    with pytest.raises(ValueError, match="ngauss"):
        multigaussian_loss(preds, targets, ngauss=2)


def test_logsoftmax_sample():
    log_probs = jnp.log(jnp.array([0.2, 0.5, 0.3]))
    key = jax.random.PRNGKey(0)
    assert int(logsoftmax_sample(log_probs, 0.0, key)) == 1
    batch = jnp.broadcast_to(log_probs, (20000, 3))
    samples = np.asarray(logsoftmax_sample(batch, 1.0, key))
    freqs = np.bincount(samples, minlength=3) / samples.size
    np.testing.assert_allclose(freqs, [0.2, 0.5, 0.3], atol=0.02)
    other = np.asarray(logsoftmax_sample(batch, 1.0, jax.random.PRNGKey(1)))
    assert not np.array_equal(samples, other)
    with pytest.raises(TypeError, match="explicit JAX key"):
        logsoftmax_sample(log_probs, 1.0)


# -------------------------------------------------------------------- Embed


def test_embed_pax_style(getkey):
    emb = Embed(10, 4, rng_key=getkey())
    assert emb.weight.shape == (10, 4)
    assert float(jnp.abs(emb.weight).max()) <= 2.0  # truncated normal in [-2, 2]
    y = emb(np.array([[1, 2], [3, 1]]))
    assert y.shape == (2, 2, 4)
    np.testing.assert_array_equal(y[0, 0], emb.weight[1])
    np.testing.assert_array_equal(y[1, 1], emb.weight[1])
    assert repr(emb) == "Embed(vocab_size=10, embed_dim=4)"


def test_embed_lazy_init_and_custom_w_init():
    emb = Embed(3, 2, w_init=lambda shape, key: jnp.arange(6.0).reshape(shape), name="tok")
    assert emb.weight is None and emb.name == "tok"
    with pytest.raises(LayerError, match="not initialized"):
        emb(np.array([0]))
    emb = emb.init(np.zeros((4,), np.int32))
    assert emb(np.array([2, 0])).tolist() == [[4.0, 5.0], [0.0, 1.0]]


def test_embed_float_input_raises_type_error(getkey):
    emb = Embed(10, 4, rng_key=getkey())
    with pytest.raises(LayerError, match="integer token ids") as excinfo:
        emb(np.array([0.0, 1.0]))
    assert isinstance(_cause(excinfo), TypeError)


def test_embed_gradients(getkey):
    emb = Embed(10, 4, rng_key=getkey())
    ids = np.array([0, 3, 3, 4])

    def f(weight):
        return jnp.sum(jnp.tanh(emb.replace(weight=weight)(ids)) ** 2)

    check_grads(jax.jit(f), (emb.weight,), order=1, modes=["rev"])
    g = jax.grad(f)(emb.weight)
    assert np.all(np.asarray(g[1]) == 0) and np.all(np.asarray(g[2]) == 0)


# ---------------------------------------------------------------------- EMA


def test_ema_updates_pytree():
    ema = EMA({"a": jnp.zeros(2), "b": jnp.array(1.0)}, decay_rate=0.9)
    xs = {"a": jnp.ones(2), "b": jnp.array(3.0)}
    with pytest.raises(StateChangeError):
        ema(xs)
    ema, avg = pax_trax.purecall(ema, xs)
    np.testing.assert_allclose(avg["a"], [0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(avg["b"], 0.9 * 1.0 + 0.1 * 3.0, rtol=1e-6)
    ema, avg = pax_trax.purecall(ema, xs)
    np.testing.assert_allclose(avg["a"], [0.19, 0.19], rtol=1e-6)
    assert ema.averages is avg


def test_ema_debias_first_value_replaces_initial():
    ema = EMA(jnp.array(100.0), decay_rate=0.9, debias=True)
    ema, avg = pax_trax.purecall(ema, jnp.array(1.0))
    assert float(avg) == pytest.approx(1.0)
    ema, avg = pax_trax.purecall(ema, jnp.array(2.0))
    assert float(avg) == pytest.approx(0.9 * 1.0 + 0.1 * 2.0)


def test_ema_integer_leaves():
    with pytest.raises(ValueError, match="allow_int"):
        EMA({"step": jnp.array(0)}, 0.9)
    ema = EMA({"w": jnp.array(0.0)}, 0.9)
    with pytest.raises(LayerError, match="allow_int") as excinfo:
        pax_trax.purecall(ema, {"w": jnp.array(1)})
    assert isinstance(_cause(excinfo), ValueError)
    ema = EMA({"step": jnp.array(0), "w": jnp.array(0.0)}, 0.5, allow_int=True)
    ema, avg = pax_trax.purecall(ema, {"step": jnp.array(7), "w": jnp.array(1.0)})
    assert int(avg["step"]) == 7 and avg["step"].dtype == jnp.int32
    assert float(avg["w"]) == 0.5


def test_ema_eval_mode_and_jit_and_structure_check():
    ema = EMA(jnp.zeros(3), 0.5)
    assert ema.eval()(jnp.ones(3)).tolist() == [0.0, 0.0, 0.0]
    step = jax.jit(pax_trax.purecall)
    ema, avg = step(ema, jnp.ones(3))
    ema, avg = step(ema, jnp.ones(3))
    np.testing.assert_allclose(avg, [0.75] * 3)
    with pytest.raises(LayerError, match="structure"):
        pax_trax.purecall(ema, (jnp.ones(3), jnp.ones(3)))
