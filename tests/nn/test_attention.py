"""Tests for pax_trax.nn.attention and pax_trax.nn.position_encodings."""

import copy
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import pax_trax
from pax_trax.core.errors import LayerError, StateChangeError
from pax_trax.nn.attention import (
    Attention,
    AttentionQKV,
    CausalAttention,
    ConfigurableAttention,
    DotProductAttention,
    DotProductCausalAttention,
    EncoderDecoderMask,
    MergeHeads,
    PaddingMask,
    PureAttention,
    ShiftRight,
    SplitIntoHeads,
)
from pax_trax.nn.combinators import Serial
from pax_trax.nn.core import Dense
from pax_trax.nn.multi_head_attention import MultiHeadAttention
from pax_trax.nn.position_encodings import PositionalEncoding, sinusoidal_table

ATOL = 1e-5

# Whole-layer calls under jit: one compilation per layer and shape instead of one per
# primitive, which keeps this file fast on a small, shared CPU.
call = jax.jit(lambda layer, x: layer(x))
pure = jax.jit(pax_trax.purecall)
mcall = jax.jit(lambda layer, *args: layer(*args))


def rand(seed, shape, scale=1.0):
    # NumPy inputs: no per-shape XLA compilation of random ops.
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def with_update(x, index, value, add=False):
    x = np.array(x)
    if add:
        x[index] += value
    else:
        x[index] = value
    return x


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ---------------------------------------------------------------------------
# DotProductAttention


def test_dot_product_attention_function_hand_values():
    q = np.array([[[1.0, 0.0], [0.0, 2.0]]], np.float32)  # (1, 2, 2)
    k = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]], np.float32)  # (1, 3, 2)
    v = np.array([[[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]], np.float32)
    mask = np.array([True, True, False])
    out, strengths = DotProductAttention(q, k, v, mask, 0.0, "eval", None)
    # Query 0: dots (1, 0, 1)/sqrt(2), third masked.
    w0 = softmax(np.array([1.0, 0.0]) / math.sqrt(2))
    w1 = softmax(np.array([0.0, 2.0]) / math.sqrt(2))
    expected_w = np.array([[[w0[0], w0[1], 0.0], [w1[0], w1[1], 0.0]]])
    np.testing.assert_allclose(strengths, expected_w, atol=ATOL)
    np.testing.assert_allclose(out, expected_w @ v, atol=ATOL)
    # Without a mask all three keys count.
    out, strengths = DotProductAttention(q, k, v, None, 0.0, "eval", None)
    np.testing.assert_allclose(strengths[0, 0], softmax(np.array([1.0, 0.0, 1.0]) / math.sqrt(2)),
                               atol=ATOL)


def test_dot_product_attention_layer_and_dropout():
    layer = DotProductAttention(dropout=0.5, mode="train")
    assert isinstance(layer, pax_trax.Module) and layer.n_in == 4
    q = rand(0, (2, 4, 3))
    mask = np.ones((1, 1, 4), bool)
    sig = (q, q, q, mask)
    layer = layer.init(sig, jax.random.PRNGKey(1))
    with pytest.raises(StateChangeError):
        call(layer, (q, q, q, mask))
    new, y1 = pure(layer, (q, q, q, mask))
    assert bool((new.rng != layer.rng).any())
    _, y2 = pure(new, (q, q, q, mask))
    assert not np.allclose(y1, y2)  # a fresh dropout mask on each call
    # Dropped strengths are exactly zero, kept ones scaled by 2: y1 is a combination of v
    # with weights in {0, 2 * softmax}.
    ref, strengths = DotProductAttention(q, q, q, mask, 0.0, "eval", None)
    keep = jax.jit(lambda k: jax.random.bernoulli(jax.random.split(k)[1], 0.5, (2, 4, 4)))(
        layer.rng)
    np.testing.assert_allclose(y1, np.where(keep, 2 * strengths, 0) @ np.asarray(q), atol=ATOL)
    # Eval mode: no dropout and no state change.
    np.testing.assert_allclose(call(layer.eval(), (q, q, q, mask)), ref, atol=ATOL)


# ---------------------------------------------------------------------------
# Split / merge heads


@pytest.mark.parametrize("merged", [True, False])
def test_split_merge_heads_shapes_and_round_trip(merged):
    x = rand(0, (2, 5, 6))
    split = SplitIntoHeads(3, merged_batch_and_head=merged)(x)
    assert split.shape == ((6, 5, 2) if merged else (2, 3, 5, 2))
    heads = np.asarray(split).reshape(2, 3, 5, 2)
    # Head h of batch b holds features [2h, 2h + 2).
    np.testing.assert_array_equal(heads[1, 2, 4], np.asarray(x)[1, 4, 4:6])
    np.testing.assert_array_equal(MergeHeads(3, merged_batch_and_head=merged)(split), x)
    # Equal layers are equal pytree aux data (shared jit cache entries), also after a copy.
    layer = SplitIntoHeads(3, merged_batch_and_head=merged)
    assert copy.deepcopy(layer).f == layer.f == SplitIntoHeads(3, merged).f
    assert SplitIntoHeads(2).f != SplitIntoHeads(3).f


def test_split_merge_heads_errors():
    with pytest.raises(LayerError, match="not a multiple"):
        SplitIntoHeads(4)(np.zeros((2, 5, 6), np.float32))
    with pytest.raises(LayerError, match=r"\(batch, length, d_feature\)"):
        SplitIntoHeads(2)(np.zeros((5, 6), np.float32))
    with pytest.raises(LayerError, match="batch\\*4"):
        MergeHeads(4)(np.zeros((6, 5, 2), np.float32))
    with pytest.raises(ValueError, match="positive int"):
        SplitIntoHeads(0)


# ---------------------------------------------------------------------------
# ShiftRight and masks


def test_shift_right():
    x = np.arange(2 * 3 * 3).reshape(2, 3, 3)
    expected = np.array([[[0, 0, 0], [0, 1, 2], [3, 4, 5]], [[0, 0, 0], [9, 10, 11], [12, 13, 14]]])
    np.testing.assert_array_equal(ShiftRight()(x), expected)
    xf = x.astype(np.float32) / 2
    y = ShiftRight()(xf)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, expected / 2)
    np.testing.assert_array_equal(ShiftRight(2)(np.array([[1, 2, 3]])), [[0, 0, 1]])
    np.testing.assert_array_equal(ShiftRight(mode="predict")(x), x)
    np.testing.assert_array_equal(ShiftRight(mode="eval")(x), expected)
    assert ShiftRight(1).f == ShiftRight(1).f  # equal layers share jit cache entries


def test_padding_mask():
    mask = PaddingMask()(np.array([[5, 0, 7, 0], [0, 1, 1, 1]]))
    assert mask.shape == (2, 1, 1, 4) and mask.dtype == np.bool_
    np.testing.assert_array_equal(mask[:, 0, 0], [[1, 0, 1, 0], [0, 1, 1, 1]])
    np.testing.assert_array_equal(PaddingMask(pad=1)(np.array([[5, 1]]))[0, 0, 0], [True, False])
    with pytest.raises(LayerError, match="2-D array"):
        PaddingMask()(np.zeros((2, 3, 4), np.int32))


def test_encoder_decoder_mask():
    enc_mask = PaddingMask()(np.array([[3, 4, 0], [1, 0, 0]]))
    dec = np.zeros((2, 2, 8), np.float32)
    mask = EncoderDecoderMask()((dec, enc_mask))
    assert mask.shape == (2, 1, 2, 3)
    np.testing.assert_array_equal(mask[0, 0], [[1, 1, 0], [1, 1, 0]])
    np.testing.assert_array_equal(mask[1, 0], [[1, 0, 0], [1, 0, 0]])
    with pytest.raises(LayerError, match="3-D array"):
        EncoderDecoderMask()((np.zeros((2, 2)), enc_mask))


# ---------------------------------------------------------------------------
# PositionalEncoding


def test_positional_encoding_values_match_formula():
    d = 6
    pe = PositionalEncoding(max_len=10).init(np.zeros((1, 4, d), np.float32))
    y = np.asarray(call(pe, np.zeros((2, 4, d), np.float32)))
    for pos in range(4):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            np.testing.assert_allclose(y[:, pos, 2 * i], math.sin(angle), atol=1e-6)
            np.testing.assert_allclose(y[:, pos, 2 * i + 1], math.cos(angle), atol=1e-6)
    x = rand(3, (2, 4, d))
    np.testing.assert_allclose(call(pe, x), x + y[:1], atol=1e-6)
    assert sinusoidal_table(5, 3).shape == (5, 3)  # odd sizes work


def test_positional_encoding_predict_matches_eval():
    x = rand(0, (2, 7, 4))
    ev = PositionalEncoding(max_len=16, mode="eval").init(x)
    pr = PositionalEncoding(max_len=16, mode="predict").init(x[:, :1])
    expected = call(ev, x)
    outs = []
    for lo, hi in [(0, 3), (3, 4), (4, 5), (5, 7)]:
        pr, y = pure(pr, x[:, lo:hi])
        outs.append(y)
    assert int(pr.position) == 7
    np.testing.assert_allclose(jnp.concatenate(outs, 1), expected, atol=ATOL)
    with pytest.raises(StateChangeError):
        pr(x[:, :1])


def test_positional_encoding_train_dropout_and_offset():
    x = np.zeros((1, 5, 4), np.float32)
    table = sinusoidal_table(12, 4)
    pe = PositionalEncoding(max_len=12, dropout=0.5).init(x, jax.random.PRNGKey(0))
    pe2, y = pure(pe, x)
    assert bool((pe2.rng != pe.rng).any())
    # Default broadcast dims (-2,): each feature column is either all dropped or all x2.
    y = np.asarray(y)[0]
    for col in range(4):
        assert np.allclose(y[:, col], 0) or np.allclose(y[:, col], 2 * table[:5, col], atol=1e-6)
    np.testing.assert_allclose(pe.eval()(x)[0], table[:5], atol=1e-6)
    # Random start offsets: each call uses a contiguous slice of the table.
    po = PositionalEncoding(max_len=12, start_from_zero_prob=0.0, max_offset_to_add=6).init(x)
    starts = set()
    for _ in range(8):
        po, y = pure(po, x)
        matches = [s for s in range(8) if np.allclose(y[0], table[s:s + 5], atol=1e-6)]
        assert len(matches) == 1
        starts.add(matches[0])
    assert len(starts) > 1 and max(starts) < 6


def test_positional_encoding_d_feature_and_errors():
    x = rand(0, (2, 3, 5))
    pe = PositionalEncoding(max_len=8, d_feature=4).init(x)
    assert pe.w.shape == (8, 4) and pe.ff.shape == (4, 5)
    expected = x + sinusoidal_table(8, 4)[:3] @ np.asarray(pe.ff)
    np.testing.assert_allclose(call(pe, x), expected, atol=ATOL)
    with pytest.raises(LayerError, match="more than max_len=8"):
        pe(rand(0, (2, 9, 5)))
    with pytest.raises(LayerError, match=r"\(batch, length, d\)"):
        PositionalEncoding().init(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="dropout"):
        PositionalEncoding(dropout=1.0)


# ---------------------------------------------------------------------------
# Attention layers: reference computations


def dense_apply(layer, x):
    return np.asarray(x) @ np.asarray(layer.w) + np.asarray(layer.b)


def np_multihead(q, k, v, mask, n_heads):
    """Reference attention on (b, l, d) arrays with numpy."""
    b, lq, d = q.shape
    dh = d // n_heads
    split = lambda x: x.reshape(b, -1, n_heads, dh).transpose(0, 2, 1, 3)  # noqa: E731
    qh, kh, vh = split(q), split(k), split(v)
    dots = qh @ kh.transpose(0, 1, 3, 2) / math.sqrt(dh)
    if mask is not None:
        dots = np.where(mask, dots, -1e9)
    out = softmax(dots) @ vh
    return out.transpose(0, 2, 1, 3).reshape(b, lq, d)


def test_attention_matches_reference_and_respects_padding():
    x = rand(0, (2, 5, 6))
    mask = PaddingMask()(np.array([[1, 2, 3, 0, 0], [1, 1, 1, 1, 1]]))
    layer = Attention(6, n_heads=3, mode="eval").init((x, mask), jax.random.PRNGKey(2))
    y, m = call(layer, (x, mask))
    np.testing.assert_array_equal(m, mask)
    qkv = layer.sublayers[1]
    dq, dk, dv = qkv.sublayers[0].sublayers
    final = qkv.sublayers[2]
    ref = np_multihead(dense_apply(dq, x), dense_apply(dk, x), dense_apply(dv, x),
                       np.asarray(mask), 3)
    np.testing.assert_allclose(y, dense_apply(final, ref), atol=ATOL)
    # Padded positions do not influence any output.
    x2 = with_update(x, (0, slice(3, None)), 100.0)
    y2, _ = call(layer, (x2, mask))
    np.testing.assert_allclose(y2[0, :3], y[0, :3], atol=ATOL)


def test_attention_qkv_cross_attention_and_kv_cache():
    xq, xkv = rand(0, (2, 3, 4)), rand(1, (2, 5, 4))
    mask = np.ones((2, 1, 1, 5), bool)
    ev = AttentionQKV(4, n_heads=2, mode="eval", cache_KV_in_predict=True)
    ev = ev.init((xq, xkv, xkv, mask))
    y, _ = call(ev, (xq, xkv, xkv, mask))
    assert y.shape == (2, 3, 4)
    pr = AttentionQKV(4, n_heads=2, mode="predict", cache_KV_in_predict=True)
    pr = pr.init((xq[:, :1], xkv, xkv, mask)).update_parameters(ev.parameters())
    with pytest.raises(StateChangeError):
        pr((xq[:, :1], xkv, xkv, mask))
    pr, (y0, _) = pure(pr, (xq[:, :1], xkv, xkv, mask))
    # Later calls reuse the cached K/V projections even if given other arrays.
    junk = np.zeros_like(xkv)
    pr, (y1, _) = pure(pr, (xq[:, 1:2], junk, junk, mask))
    np.testing.assert_allclose(y0, y[:, :1], atol=ATOL)
    np.testing.assert_allclose(y1, y[:, 1:2], atol=ATOL)


def test_pure_attention_dropout_state_and_mask_errors():
    x = rand(0, (2, 3, 4))
    mask = np.ones((2, 1, 1, 3), bool)
    layer = PureAttention(n_heads=2, dropout=0.3).init((x, x, x, mask))
    new, (y, m) = pure(layer, (x, x, x, mask))
    assert bool((new.rng != layer.rng).any())
    y_eval, _ = call(layer.eval(), (x, x, x, mask))
    assert not np.allclose(y, y_eval)
    np.testing.assert_allclose(y_eval, np_multihead(x, x, x, mask, 2), atol=ATOL)
    with pytest.raises(LayerError, match="does not broadcast"):
        layer.eval()((x, x, x, np.ones((2, 1, 1, 4), bool)))
    with pytest.raises(LayerError, match="not a multiple"):
        PureAttention(n_heads=3).eval()((x, x, x, mask))


def causal_eval_reference(layer, x, n_heads):
    dq, dk, dv = [s.sublayers[0] for s in layer.sublayers[0].sublayers[1].sublayers]
    final = layer.sublayers[3]
    length = x.shape[1]
    mask = np.tril(np.ones((length, length), bool))
    ref = np_multihead(dense_apply(dq, x), dense_apply(dk, x), dense_apply(dv, x), mask, n_heads)
    return dense_apply(final, ref)


def test_causal_attention_matches_reference_and_is_causal():
    x = rand(0, (2, 6, 8))
    layer = CausalAttention(8, n_heads=2).init(x, jax.random.PRNGKey(4))
    y = call(layer, x)
    np.testing.assert_allclose(y, causal_eval_reference(layer, x, 2), atol=ATOL)
    for t in range(6):
        x2 = with_update(x, (slice(None), slice(t, None)), rand(t + 10, (2, 6 - t, 8)), add=True)
        y2 = call(layer, x2)
        np.testing.assert_allclose(y2[:, :t], y[:, :t], atol=ATOL)
        assert not np.allclose(y2[:, t], y[:, t])


def _feed(model, x, chunks):
    step = pure
    outs = []
    for lo, hi in chunks:
        model, y = step(model, x[:, lo:hi])
        outs.append(y)
    return model, jnp.concatenate(outs, axis=1)


@pytest.mark.parametrize(
    "chunks",
    [[(i, i + 1) for i in range(7)], [(0, 3)] + [(i, i + 1) for i in range(3, 7)],
     [(0, 2), (2, 5), (5, 7)]],
    ids=["one_at_a_time", "prefix3_then_singles", "uneven_chunks"],
)
@pytest.mark.parametrize("with_positions", [False, True], ids=["attn", "posenc+attn"])
def test_predict_mode_equals_eval_mode(chunks, with_positions):
    x = rand(0, (2, 7, 8))

    def build(mode):
        attn = CausalAttention(8, n_heads=2, max_inference_length=10, mode=mode)
        return Serial(PositionalEncoding(max_len=10, mode=mode), attn) if with_positions else attn

    ev = build("eval").init(x, jax.random.PRNGKey(5))
    pr = build("predict").init(x[:, :1]).update_parameters(ev.parameters())
    expected = call(ev, x)
    pr, got = _feed(pr, x, chunks)
    np.testing.assert_allclose(got, expected, atol=ATOL)
    core = [m for m in pr.modules() if isinstance(m, DotProductCausalAttention)][0]
    assert int(core.cache_index) == 7
    assert core.cache_keys.shape == (2, 2, 10, 4)  # (batch, heads, max_len, d_head)


def test_predict_mode_errors():
    x = rand(0, (1, 1, 4))
    pr = CausalAttention(4, max_inference_length=3, mode="predict").init(x)
    with pytest.raises(StateChangeError):
        pr(x)
    with pytest.raises(LayerError, match="exceed max_inference_length=3"):
        pax_trax.purecall(pr, rand(0, (1, 4, 4)))
    with pytest.raises(LayerError, match="cache was initialized"):
        pax_trax.purecall(pr, rand(0, (2, 1, 4)))
    uninit = DotProductCausalAttention(mode="predict")
    with pytest.raises(LayerError, match="no key/value cache"):
        pax_trax.purecall(uninit, (x, x, x))


def test_configurable_attention_equals_causal_attention():
    x = rand(0, (2, 4, 6))
    causal = CausalAttention(6, n_heads=3, mode="eval").init(x)
    conf = ConfigurableAttention(Dense(6), Dense(6), Dense(6), Dense(6),
                                 DotProductCausalAttention(mode="eval"), n_heads=3).init(x)
    conf = conf.update_parameters(causal.parameters())
    expected = call(causal, x)
    np.testing.assert_allclose(call(conf, x), expected, atol=ATOL)
    # Trax's merged (batch*heads, length, d_head) layout also decodes incrementally.
    pr = ConfigurableAttention(Dense(6), Dense(6), Dense(6), Dense(6),
                               DotProductCausalAttention(max_inference_length=5, mode="predict"),
                               n_heads=3).init(x[:, :1]).update_parameters(causal.parameters())
    pr, got = _feed(pr, x, [(0, 2), (2, 3), (3, 4)])
    np.testing.assert_allclose(got, expected, atol=ATOL)
    assert pr.sublayers[1].cache_keys.shape == (2 * 3, 5, 2)


def test_causal_attention_train_mode_dropout_and_switch():
    x = rand(0, (1, 4, 4))
    layer = CausalAttention(4, n_heads=2, dropout=0.5).init(x)
    with pytest.raises(StateChangeError):
        layer(x)
    layer2, y = pure(layer, x)
    assert not np.allclose(y, call(layer.eval(), x))
    np.testing.assert_allclose(call(layer.eval(), x), causal_eval_reference(layer, x, 2), atol=ATOL)


def _to_f64(tree):
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


def test_attention_gradients_match_finite_differences():
    x = rand(0, (1, 3, 4))
    mask = np.array([[[[True, True, False]]]])
    attn = Attention(4, n_heads=2, mode="eval").init((x, mask), jax.random.PRNGKey(1))
    causal = CausalAttention(4, n_heads=2, mode="eval").init(x, jax.random.PRNGKey(2))

    @jax.jit
    def f_attn(params, x):
        return attn.update_parameters(params)((x, mask))[0]

    @jax.jit
    def f_causal(params, x):
        return causal.update_parameters(params)(x)

    # In float64 the finite differences are accurate enough for tight tolerances.
    with jax.enable_x64(True):
        check_grads(f_attn, (_to_f64(attn.parameters()), _to_f64(x)), order=1, modes=["rev"])
        check_grads(f_causal, (_to_f64(causal.parameters()), _to_f64(x)), order=1, modes=["rev"])


def test_bad_construction_and_input_errors():
    with pytest.raises(ValueError, match=r"\(6\) is not a multiple .* heads \(4\)"):
        CausalAttention(6, n_heads=4)
    with pytest.raises(ValueError, match="not a multiple"):
        Attention(6, n_heads=4)
    with pytest.raises(ValueError, match="dropout"):
        CausalAttention(4, dropout=1.0)
    with pytest.raises(ValueError, match="mode"):
        CausalAttention(4, mode="training")
    with pytest.raises(LayerError, match=r"CausalAttention.*\(batch, length, d_feature\)"):
        CausalAttention(4).init(np.zeros((3, 4), np.float32))
    layer = CausalAttention(4).init(np.zeros((1, 3, 4), np.float32))
    with pytest.raises(LayerError, match="CausalAttention"):
        layer(np.zeros((1, 3, 5), np.float32))


# ---------------------------------------------------------------------------
# PAX MultiHeadAttention


def flax_mha_from(mha, q, k, v, mask=None):
    import flax.linen as fnn

    h, d, m = mha.num_heads, mha.key_size, mha.model_size
    model = fnn.MultiHeadDotProductAttention(num_heads=h, qkv_features=m, out_features=m,
                                             deterministic=True)

    def dense(lin, in_shape_heads):
        w, b = np.asarray(lin.weight), np.asarray(lin.bias)
        if in_shape_heads:
            return {"kernel": w.reshape(h, d, m), "bias": b}
        return {"kernel": w.reshape(m, h, d), "bias": b.reshape(h, d)}

    params = {"params": {
        "query": dense(mha.query_projection, False),
        "key": dense(mha.key_projection, False),
        "value": dense(mha.value_projection, False),
        "out": dense(mha.output_projection, True),
    }}
    return jax.jit(model.apply)(params, q, k, v, mask=mask)


def test_multi_head_attention_matches_flax():
    mha = MultiHeadAttention(num_heads=2, key_size=3, w_init_scale=1.0,
                             rng_key=jax.random.PRNGKey(0))
    q, kv = rand(1, (2, 4, 6)), rand(2, (2, 5, 6))
    np.testing.assert_allclose(mcall(mha, q, kv, kv), flax_mha_from(mha, q, kv, kv), atol=ATOL)
    mask = np.random.default_rng(3).random((2, 1, 4, 5)) < 0.6
    mask[..., 0] = True  # no fully masked rows (Flax and PAX fill with different constants)
    y = mcall(mha, q, kv, kv, mask)
    np.testing.assert_allclose(y, flax_mha_from(mha, q, kv, kv, mask), atol=ATOL)
    np.testing.assert_allclose(pax_trax.purecall(mha, q, kv, kv, mask=mask)[1], y, atol=ATOL)


def test_multi_head_attention_init_paths_and_errors():
    mha = MultiHeadAttention(2, 4, 0.5)
    assert mha.query_projection.weight is None and mha._pt_multi_arg_call
    x = rand(0, (3, 8))
    with pytest.raises(LayerError, match="not initialized"):
        mha(x, x, x)
    mha = mha.init((x, x, x), jax.random.PRNGKey(1))
    assert mha.output_projection.weight.shape == (8, 8)
    assert float(jnp.abs(mha.query_projection.bias).max()) == 0.0
    # Variance scaling (fan_in): std of the weights is about sqrt(0.5 / 8).
    w = np.concatenate([np.asarray(p.weight).ravel() for p in mha.sublayers])
    assert abs(w.std() - math.sqrt(0.5 / 8)) < 0.05
    assert mcall(mha, x, x, x).shape == (3, 8)  # unbatched [T, D] inputs work
    with pytest.raises(LayerError, match=r"model_size = num_heads \* key_size"):
        mha(rand(0, (3, 6)), x, x)
    with pytest.raises(LayerError, match="in_dim=8"):
        MultiHeadAttention(2, 4, 1.0).init((rand(0, (3, 6)),) * 3)
    with pytest.raises(LayerError, match="does not broadcast"):
        mha(x, x, x, mask=np.ones((2, 5, 5), bool))
    g = jax.jit(jax.grad(lambda p: jnp.sum(mha.update_parameters(p)(x, x, x) ** 2)))(
        mha.parameters())
    assert g.query_projection.weight.shape == (8, 8)
