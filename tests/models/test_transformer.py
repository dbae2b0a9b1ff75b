"""Transformer models: Trax 1.4.1's numbers, predict == eval, sharing, training, errors.

The Trax checkpoints and the logits Trax computed from them are in
tests/supervised/trax_fixtures (made by make_fixtures.py there with Trax 1.4.1).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pax_trax
from pax_trax import nn
from pax_trax.core.errors import StateChangeError
from pax_trax.core.module import num_parameters
from pax_trax.models import Transformer, TransformerDecoder, TransformerEncoder, TransformerLM
from pax_trax.supervised import decoding
from pax_trax.supervised.train_step import init_optimizer_state, make_train_step

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "supervised", "trax_fixtures")
VOCAB = 32
SMALL = dict(d_model=16, d_ff=32, n_heads=2, max_len=16)

apply = jax.jit(lambda model, x: model(x))
purecall = jax.jit(pax_trax.purecall)


def fixture(*parts):
    return os.path.join(FIXTURES, *parts)


def load(*parts):
    return np.load(fixture(*parts))


def lm(mode="eval", **kwargs):
    return TransformerLM(VOCAB, **{**SMALL, "n_layers": 2, **kwargs}, mode=mode)


def seq2seq(mode="eval", **kwargs):
    return Transformer(VOCAB, **{**SMALL, "n_encoder_layers": 2, "n_decoder_layers": 2,
                                 **kwargs}, mode=mode)


def decode_one_token_at_a_time(model, shifted, source=None):
    """Feeds `shifted` one position per call in 'predict' mode; joins the logits."""
    outputs = []
    for t in range(shifted.shape[1]):
        step = shifted[:, t:t + 1]
        model, out = purecall(model, step if source is None else (source, step))
        outputs.append(out if source is None else out[0])
    return model, np.concatenate(outputs, axis=1)


def shift_right(tokens):
    return np.concatenate([np.zeros_like(tokens[:, :1]), tokens[:, :-1]], axis=1)


# ---------------------------------------------------------------------------
# Trax 1.4.1's checkpoints give Trax's logits


def test_transformer_lm_matches_trax():
    x = load("transformer_lm", "input.npy")
    model = lm().init_from_file(fixture("transformer_lm", "model.pkl.gz"), weights_only=True,
                                input_signature=x)
    np.testing.assert_allclose(apply(model, x), load("transformer_lm", "output.npy"),
                               atol=1e-5, rtol=1e-5)


def test_transformer_lm_predict_mode_matches_trax():
    x = load("transformer_lm", "input.npy")
    model = lm("predict").init_from_file(fixture("transformer_lm", "model.pkl.gz"),
                                         weights_only=True, input_signature=x[:, :1])
    _, logits = decode_one_token_at_a_time(model, shift_right(x))
    np.testing.assert_allclose(logits, load("transformer_lm", "predict_output.npy"),
                               atol=1e-5, rtol=1e-5)
    # Trax's own predict and eval outputs agree, so this pins predict == eval too.
    np.testing.assert_allclose(logits, load("transformer_lm", "output.npy"), atol=1e-5)


def test_transformer_matches_trax_in_eval_and_predict_mode():
    src, tgt = load("transformer", "input_source.npy"), load("transformer", "input_target.npy")
    assert (src == 0).any()  # the padding mask matters
    path = fixture("transformer", "model.pkl.gz")
    model = seq2seq().init_from_file(path, weights_only=True, input_signature=(src, tgt))
    logits, targets = apply(model, (src, tgt))
    np.testing.assert_allclose(logits, load("transformer", "output.npy"), atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(targets, tgt)

    predict = seq2seq("predict").init_from_file(path, weights_only=True,
                                                input_signature=(src, tgt[:, :1]))
    _, step_logits = decode_one_token_at_a_time(predict, shift_right(tgt), source=src)
    np.testing.assert_allclose(step_logits, load("transformer", "predict_output.npy"),
                               atol=1e-5, rtol=1e-5)


def test_transformer_encoder_matches_trax():
    x = load("transformer_encoder", "input.npy")
    model = TransformerEncoder(VOCAB, n_classes=3, n_layers=1, **SMALL, mode="eval")
    model = model.init_from_file(fixture("transformer_encoder", "model.pkl.gz"),
                                 weights_only=True, input_signature=x)
    np.testing.assert_allclose(apply(model, x), load("transformer_encoder", "output.npy"),
                               atol=1e-5, rtol=1e-5)


def test_trax_flat_weights_are_exactly_the_parameters():
    # The same number of arrays, in order, as Trax's flat list: the same layer tree.
    from pax_trax.supervised.weights_file import read_trax_file

    for name, model, sig in [
        ("transformer_lm", lm(), np.zeros((2, 8), np.int32)),
        ("transformer", seq2seq(), (np.zeros((2, 8), np.int32),) * 2),
    ]:
        flat = read_trax_file(fixture(name, "model.pkl.gz")).weights
        model = model.init(sig, jax.random.PRNGKey(0))
        assert num_parameters(model) == sum(int(np.size(w)) for w in flat)


# ---------------------------------------------------------------------------
# Predict mode equals eval mode (random weights, several call patterns)


@pytest.fixture(scope="module")
def trained_like_lm():
    """An eval TransformerLM with random weights, and the same weights in predict mode."""
    x = np.zeros((2, 10), np.int32)
    model = lm(max_len=32).init(x, jax.random.PRNGKey(3))
    return model, lm("predict", max_len=32)


def test_lm_predict_equals_eval_one_token_at_a_time(trained_like_lm):
    model, predict = trained_like_lm
    x = np.random.default_rng(0).integers(1, VOCAB, (2, 10)).astype(np.int32)
    expected = apply(model, x)
    predict = predict.init(x[:, :1]).update_parameters(model.parameters())
    _, logits = decode_one_token_at_a_time(predict, shift_right(x))
    np.testing.assert_allclose(logits, expected, atol=1e-5, rtol=1e-5)


def test_lm_predict_equals_eval_prefix_then_tokens(trained_like_lm):
    model, predict = trained_like_lm
    x = np.random.default_rng(1).integers(1, VOCAB, (2, 10)).astype(np.int32)
    expected = np.asarray(apply(model, x))
    shifted = shift_right(x)
    predict = predict.init(x[:, :1]).update_parameters(model.parameters())
    predict, first = purecall(predict, shifted[:, :4])  # a 4-token prefix in one call
    _, rest = decode_one_token_at_a_time(predict, shifted[:, 4:])
    np.testing.assert_allclose(np.concatenate([first, rest], 1), expected, atol=1e-5, rtol=1e-5)


def test_lm_is_causal(trained_like_lm):
    model, _ = trained_like_lm
    x = np.random.default_rng(2).integers(1, VOCAB, (1, 10)).astype(np.int32)
    changed = x.copy()
    changed[0, 6] = (x[0, 6] + 1) % VOCAB
    a, b = np.asarray(apply(model, x)), np.asarray(apply(model, changed))
    # The model shifts right: logits at t see tokens < t, so positions <= 6 are unchanged.
    np.testing.assert_allclose(a[:, :7], b[:, :7], atol=1e-6)
    assert not np.allclose(a[:, 7:], b[:, 7:], atol=1e-4)


def test_transformer_predict_equals_eval_and_encodes_once():
    rng = np.random.default_rng(4)
    src = rng.integers(1, VOCAB, (2, 7)).astype(np.int32)
    src[0, 5:] = 0
    tgt = rng.integers(1, VOCAB, (2, 6)).astype(np.int32)
    model = seq2seq(output_vocab_size=20).init((src, tgt), jax.random.PRNGKey(5))
    tgt = tgt % 20
    expected, _ = apply(model, (src, tgt))
    predict = seq2seq("predict", output_vocab_size=20).init((src, tgt[:, :1]))
    predict = predict.update_parameters(model.parameters())
    predict, logits = decode_one_token_at_a_time(predict, shift_right(tgt), source=src)
    np.testing.assert_allclose(logits, expected, atol=1e-5, rtol=1e-5)

    # The encoder output is held in state after the first call and reused: a
    # different source on a later call does not change the decoder's view of it.
    cache = predict.sublayers[2]
    assert isinstance(cache, nn.Cache) and cache.cached[0].shape == (2, 7, 16)
    _, again = purecall(predict, (src, tgt[:, :1]))
    _, other_source = purecall(predict, (src[::-1].copy(), tgt[:, :1]))
    np.testing.assert_allclose(other_source[0][:, :, :], again[0], atol=1e-6)


def test_transformer_decoder_predict_equals_eval_on_vectors():
    x = np.random.default_rng(6).normal(size=(2, 5, 3)).astype(np.float32)
    model = TransformerDecoder(None, n_layers=1, **SMALL, mode="eval").init(x)
    assert model.sublayers[0].name == "Dense_16"  # vocab_size=None: a Dense embedder
    expected = apply(model, x)
    predict = TransformerDecoder(None, n_layers=1, **SMALL, mode="predict").init(x[:, :1])
    predict = predict.update_parameters(model.parameters())
    outs = []
    for t in range(5):
        predict, y = purecall(predict, x[:, t:t + 1])
        outs.append(y)
    np.testing.assert_allclose(np.concatenate(outs, 1), expected, atol=1e-5, rtol=1e-5)
    assert expected.shape == (2, 5, 16)


# ---------------------------------------------------------------------------
# Structure: parameter counts, sharing, modes


def test_parameter_counts_by_hand():
    d, f, v = 16, 32, VOCAB
    layer_norm, dense = 2 * d, lambda a, b: a * b + b
    attention = 4 * dense(d, d)
    feed_forward = dense(d, f) + dense(f, d)
    block = layer_norm + attention + layer_norm + feed_forward
    positions = 16 * d  # Trax's PositionalEncoding table is a weight (max_len x d)
    tokens = np.zeros((1, 4), np.int32)

    model = lm().init(tokens)
    assert num_parameters(model) == v * d + positions + 2 * block + layer_norm + dense(d, v)

    shared = seq2seq().init((tokens, tokens))
    encoder = v * d + positions + 2 * block + layer_norm
    decoder_block = block + layer_norm + attention
    decoder = positions + 2 * decoder_block + layer_norm + dense(d, v)
    assert num_parameters(shared) == encoder + decoder  # one embedding table
    separate = seq2seq(output_vocab_size=v).init((tokens, tokens))
    assert num_parameters(separate) == encoder + decoder + v * d

    classifier = TransformerEncoder(v, n_classes=3, n_layers=1, **SMALL).init(tokens)
    assert num_parameters(classifier) == v * d + positions + block + layer_norm + dense(d, 3)


def test_shared_embedding_gets_gradients_from_source_and_target():
    src = np.array([[5, 6, 0]], np.int32)
    tgt = np.array([[7, 8]], np.int32)
    model = seq2seq().init((src, tgt), jax.random.PRNGKey(0))

    def loss(params):
        logits, _ = model.update_parameters(params)((src, tgt))
        return jnp.sum(logits ** 2)

    table = jax.grad(loss)(model.parameters()).model.sublayers[2].layer.sublayers[0].w
    touched = np.flatnonzero(np.abs(np.asarray(table)).sum(1) > 0)
    # Source tokens 5, 6 (0 is padding but still embedded) and the shifted target 0, 7.
    assert set(touched.tolist()) == {0, 5, 6, 7}


def shapes_by_path(tree):
    return [(jax.tree_util.keystr(path), np.shape(leaf))
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]


def test_modes_share_parameter_structure():
    tokens = np.zeros((1, 4), np.int32)
    trained = seq2seq("train").init((tokens, tokens))
    for mode in ("eval", "predict"):
        other = seq2seq(mode).init((tokens, tokens[:, :1]))
        # The same parameter leaves (the modes differ only in static fields and state).
        assert shapes_by_path(other.parameters()) == shapes_by_path(trained.parameters())
        moved = other.update_parameters(trained.parameters())
        np.testing.assert_array_equal(jax.tree_util.tree_leaves(moved.parameters())[0],
                                      jax.tree_util.tree_leaves(trained.parameters())[0])


def test_train_mode_dropout_needs_purecall():
    x = np.ones((2, 6), np.int32)
    model = lm("train", dropout=0.5).init(x, jax.random.PRNGKey(0))
    with pytest.raises(StateChangeError, match="purecall"):
        model(x)
    new_model, a = purecall(model, x)
    _, b = purecall(new_model, x)
    assert not np.allclose(a, b)  # the key advanced: another dropout mask
    np.testing.assert_allclose(apply(model.eval(), x), apply(model.eval(), x))


def test_print_shows_trax_layers():
    text = str(lm(n_layers=1))
    assert text.startswith("Serial[\n  ShiftRight(1)\n  Embedding_32_16\n  Dropout\n")
    assert "CausalAttention" in text and text.rstrip().endswith("Dense_32\n]")


# ---------------------------------------------------------------------------
# Training: a few steps lower the loss


def _train(model, batch, steps, learning_rate=0.01):
    n_inputs = 2 if model.n_in == 2 else 1
    model = model.init(batch[0] if n_inputs == 1 else batch[:2], jax.random.PRNGKey(0))
    optimizer = optax.adam(learning_rate)
    opt_state = init_optimizer_state(optimizer, model)
    step = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), optimizer))
    losses = []
    for i in range(steps):
        model, opt_state, metrics = step(model, opt_state, batch, jax.random.PRNGKey(i))
        losses.append(float(metrics["loss"]))
    return model, losses


def test_lm_and_decoder_training_lowers_the_loss():
    x = np.random.default_rng(7).integers(1, VOCAB, (4, 8)).astype(np.int32)
    _, losses = _train(lm("train", dropout=0.1), (x, x, np.ones(x.shape, np.float32)), 12)
    assert losses[-1] < 0.7 * losses[0]
    decoder = nn.Serial(TransformerDecoder(VOCAB, n_layers=1, **SMALL), nn.Dense(VOCAB))
    _, losses = _train(decoder, (x, x, np.ones(x.shape, np.float32)), 12)
    assert losses[-1] < 0.7 * losses[0]


def test_transformer_and_encoder_training_lowers_the_loss():
    rng = np.random.default_rng(8)
    src = rng.integers(1, VOCAB, (4, 7)).astype(np.int32)
    tgt = src[:, ::-1].copy()
    _, losses = _train(seq2seq("train"), (src, tgt, np.ones(tgt.shape, np.float32)), 12)
    assert losses[-1] < 0.7 * losses[0]
    labels = (src[:, 0] % 3).astype(np.int32)
    classifier = TransformerEncoder(VOCAB, n_classes=3, n_layers=1, **SMALL)
    _, losses = _train(classifier, (src, labels, np.ones(4, np.float32)), 12)
    assert losses[-1] < 0.5 * losses[0]


def test_trained_seq2seq_reverses_with_decoding():
    """A Transformer trained to reverse sequences decodes the reversal greedily."""
    n, vocab, eos = 4, 10, 1
    model = Transformer(vocab, d_model=32, d_ff=64, n_encoder_layers=1, n_decoder_layers=1,
                        n_heads=2, max_len=16, dropout=0.0, mode="eval")

    def batch(rng, size):
        src = rng.integers(2, vocab, (size, n)).astype(np.int32)
        tgt = np.concatenate([src[:, ::-1], np.full((size, 1), eos, np.int32)], 1)
        return src, tgt, np.ones(tgt.shape, np.float32)

    optimizer = optax.adam(3e-3)
    model = model.init(batch(np.random.default_rng(0), 1)[:2], jax.random.PRNGKey(0))
    opt_state = init_optimizer_state(optimizer, model)
    step = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), optimizer))
    rng = np.random.default_rng(1)
    for _ in range(150):
        model, opt_state, metrics = step(model, opt_state, batch(rng, 32))
    assert float(metrics["loss"]) < 0.05

    src, tgt, _ = batch(np.random.default_rng(2), 6)
    predict = Transformer(vocab, d_model=32, d_ff=64, n_encoder_layers=1, n_decoder_layers=1,
                          n_heads=2, max_len=16, dropout=0.0, mode="predict")
    predict = predict.update_parameters(model.parameters())
    out = decoding.autoregressive_sample(predict, src, batch_size=6, temperature=0.0,
                                         eos_id=eos, max_length=n + 3)
    np.testing.assert_array_equal(out, tgt)
    seqs, _ = decoding.beam_search(predict, src, batch_size=6, n_beams=2, eos_id=eos,
                                   max_length=n + 3)
    np.testing.assert_array_equal(seqs[:, 0, :n + 1], out)


# ---------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("make, message", [
    (lambda: TransformerLM(0), "TransformerLM: vocab_size must be a positive int, got 0"),
    (lambda: TransformerLM(8, d_model=10, n_heads=3),
     r"TransformerLM: d_model \(10\) must be a multiple of n_heads \(3\)"),
    (lambda: Transformer(8, dropout=1.0), r"Transformer: dropout must be a float in \[0, 1\)"),
    (lambda: TransformerEncoder(8, n_classes=0), "TransformerEncoder: n_classes"),
    (lambda: TransformerDecoder(8, n_layers=-1), "TransformerDecoder: n_layers must be an int"),
    (lambda: TransformerLM(8, mode="infer"), "TransformerLM: mode"),
])
def test_bad_arguments_name_the_model(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_activation_and_too_long_input():
    with pytest.raises(TypeError, match="TransformerLM: ff_activation must be a layer factory"):
        TransformerLM(8, ff_activation="relu")
    model = TransformerLM(8, d_model=8, d_ff=8, n_layers=1, n_heads=2, max_len=4, mode="eval")
    with pytest.raises(ValueError, match="PositionalEncoding"):
        model.init(np.zeros((1, 6), np.int32))
