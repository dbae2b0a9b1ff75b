"""RNNLM, GRULM, LSTMSeq2SeqAttn: Trax's shapes and structure, counts, modes, training."""

import jax
import numpy as np
import optax
import pytest

import pax_trax
from pax_trax import nn
from pax_trax.core.errors import StateChangeError
from pax_trax.core.module import num_parameters
from pax_trax.models.rnn import GRULM, RNNLM, LSTMSeq2SeqAttn
from pax_trax.supervised.train_step import init_optimizer_state, make_train_step

# Jitted calls: one compilation per model instead of many small eager dispatches.
apply = jax.jit(lambda model, x: model(x))
purecall = jax.jit(pax_trax.purecall)

TOKENS = np.array([[3, 1, 4, 1, 5, 9], [2, 7, 1, 8, 2, 8]], np.int32)


def _lstm_cell_params(d_in, d):
    return (d_in + d) * 4 * d + 4 * d


def _decode_one_token_at_a_time(model, tokens, source=None):
    """Feeds 0, x_0, ..., x_{n-2} one per call (predict mode); returns the outputs joined."""
    shifted = np.concatenate([np.zeros_like(tokens[:, :1]), tokens[:, :-1]], axis=1)
    outputs = []
    for t in range(tokens.shape[1]):
        step_input = shifted[:, t:t + 1]
        if source is None:
            model, y = purecall(model, step_input)
        else:
            model, (y, _) = purecall(model, (source, step_input))
        outputs.append(y)
    return np.concatenate(outputs, axis=1)


def _train(model, batch, steps=25, learning_rate=0.05):
    optimizer = optax.adam(learning_rate)
    opt_state = init_optimizer_state(optimizer, model)
    step = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), optimizer))
    losses = []
    for _ in range(steps):
        model, opt_state, metrics = step(model, opt_state, batch)
        losses.append(float(metrics["loss"]))
    return losses


# --------------------------------------------------------------------------- RNNLM


@pytest.fixture(scope="module")
def rnnlm():
    """An initialized RNNLM(vocab_size=20, d_model=16) in 'eval' mode, shared by tests."""
    return RNNLM(vocab_size=20, d_model=16, mode="eval").init(TOKENS, jax.random.PRNGKey(0))


def test_rnnlm_forward_shape_as_trax_test(rnnlm):
    x = np.ones((3, 28), np.int32)
    model = rnnlm.train()
    model, y = purecall(model, x)  # Dropout is active in 'train' mode.
    assert y.shape == (3, 28, 20)
    assert (model.n_in, model.n_out) == (1, 1)


def test_rnnlm_structure_and_weights_as_trax(rnnlm):
    names = [layer.name for layer in rnnlm.sublayers]
    assert names == ["ShiftRight(1)", "Embedding_20_16", "Dropout", "Branch", "Scan",
                     "Select[0]", "Dense_20"]
    weights = rnnlm.weights
    assert weights[1].shape == (20, 16)
    split_w, cells_w, concat_w = weights[4][0]  # Scan -> MultiRNNCell
    (w1, b1), select1, (w2, b2), select2 = cells_w
    assert (w1.shape, b1.shape, w2.shape, b2.shape) == ((32, 64), (64,), (32, 64), (64,))
    assert [w.shape for w in weights[6]] == [(16, 20), (20,)]


def test_rnnlm_parameter_count_by_hand(rnnlm):
    expected = 20 * 16 + 2 * _lstm_cell_params(16, 16) + (16 * 20 + 20)
    assert num_parameters(rnnlm) == expected


def test_rnnlm_with_gru_cells():
    model = RNNLM(vocab_size=20, d_model=16, rnn_cell=nn.GRUCell,
                  rnn_cell_d_state_multiplier=1, mode="eval").init(TOKENS)
    assert apply(model, TOKENS).shape == (2, 6, 20)


def test_rnnlm_dropout_train_vs_eval(rnnlm):
    model = rnnlm.train()
    with pytest.raises(StateChangeError, match="purecall"):
        apply(model, TOKENS)
    new_model, y_train = purecall(model, TOKENS)
    assert not np.allclose(y_train, apply(rnnlm, TOKENS))
    assert not np.array_equal(new_model.sublayers[2].rng, model.sublayers[2].rng)
    # Without dropout, training mode computes what eval mode computes.
    layers = list(model.layers)
    layers[2] = layers[2].replace(rate=0.0)
    _, y_no_dropout = purecall(model.replace(layers=tuple(layers)), TOKENS)
    np.testing.assert_allclose(y_no_dropout, apply(rnnlm, TOKENS), atol=1e-6)


def test_rnnlm_output_is_causal(rnnlm):
    changed = TOKENS.copy()
    changed[:, 3] = 0
    y, y_changed = apply(rnnlm, TOKENS), apply(rnnlm, changed)
    # The right shift means position t sees tokens < t only.
    np.testing.assert_allclose(y[:, :4], y_changed[:, :4], atol=1e-6)
    assert not np.allclose(y[:, 4:], y_changed[:, 4:])


def test_rnnlm_predict_mode_matches_eval(rnnlm):
    predict_model = RNNLM(vocab_size=20, d_model=16, mode="predict").init(TOKENS[:, :1])
    predict_model = predict_model.update_parameters(rnnlm.parameters())
    decoded = _decode_one_token_at_a_time(predict_model, TOKENS)
    np.testing.assert_allclose(decoded, apply(rnnlm, TOKENS), atol=1e-5)


def test_rnnlm_needs_two_layers():
    with pytest.raises(ValueError, match="RNNLM: the number of layers must be 2"):
        RNNLM(vocab_size=10, n_layers=3)


def test_rnnlm_trains(rnnlm):
    x = np.tile(np.array([[1, 2, 3, 4, 5, 6, 7, 1]], np.int32), (4, 1))
    losses = _train(rnnlm.train(), (x, x, np.ones(x.shape, np.float32)))
    assert losses[-1] < 0.5 * losses[0]


# --------------------------------------------------------------------------- GRULM


def test_grulm_forward_shape_as_trax_test():
    x = np.ones((3, 28), np.int32)
    model = GRULM(vocab_size=20, d_model=16).init(x)
    assert apply(model, x).shape == (3, 28, 20)


def test_grulm_parameter_count_by_hand():
    model = GRULM(vocab_size=20, d_model=16, n_layers=2).init(TOKENS)
    gru_cell = (32 * 32 + 32) + (32 * 16 + 16)
    assert num_parameters(model) == 20 * 16 + 2 * gru_cell + (16 * 20 + 20)
    names = [layer.name for layer in model.sublayers]
    assert names == ["ShiftRight(1)", "Embedding_20_16", "GRU_16", "GRU_16", "Dense_20"]


def test_grulm_predict_mode_matches_eval(getkey):
    eval_model = GRULM(vocab_size=20, d_model=16, n_layers=2, mode="eval").init(TOKENS, getkey())
    predict_model = GRULM(vocab_size=20, d_model=16, n_layers=2, mode="predict")
    predict_model = predict_model.init(TOKENS[:, :1]).update_parameters(eval_model.parameters())
    decoded = _decode_one_token_at_a_time(predict_model, TOKENS)
    np.testing.assert_allclose(decoded, apply(eval_model, TOKENS), atol=1e-5)


def test_grulm_trains(getkey):
    x = np.tile(np.array([[1, 2, 3, 4, 5, 6, 7, 1]], np.int32), (4, 1))
    model = GRULM(vocab_size=20, d_model=16).init(x, getkey())
    losses = _train(model, (x, x, np.ones(x.shape, np.float32)))
    assert losses[-1] < 0.5 * losses[0]


def test_grulm_rejects_float_tokens():
    with pytest.raises(TypeError, match="integer token ids"):
        GRULM(vocab_size=20, d_model=16).init(TOKENS.astype(np.float32))


# ----------------------------------------------------------------- LSTMSeq2SeqAttn


@pytest.fixture(scope="module")
def seq2seq():
    """An initialized LSTMSeq2SeqAttn(20, 20, d_model=16) in 'eval' mode, shared by tests."""
    model = LSTMSeq2SeqAttn(input_vocab_size=20, target_vocab_size=20, d_model=16, mode="eval")
    return model.init((TOKENS, TOKENS), jax.random.PRNGKey(0))


def test_seq2seq_forward_shapes_as_trax_test(seq2seq):
    x = np.ones((3, 28), np.int32)
    model = seq2seq.train()
    log_probs, targets = apply(model, (x, x))
    assert [log_probs.shape, targets.shape] == [(3, 28, 20), (3, 28)]
    assert (model.n_in, model.n_out) == (2, 2)
    np.testing.assert_array_equal(targets, x)
    # Log-probabilities: each position's distribution sums to one.
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, rtol=1e-5)


def test_seq2seq_parameter_count_by_hand(seq2seq):
    lstm = _lstm_cell_params(16, 16)
    encoder = 20 * 16 + 2 * lstm
    pre_attention_decoder = 20 * 16 + lstm
    attention = 4 * (16 * 16 + 16)
    decoder = 2 * lstm + (16 * 20 + 20)
    assert num_parameters(seq2seq) == encoder + pre_attention_decoder + attention + decoder


def test_seq2seq_ignores_source_padding(seq2seq):
    source = np.array([[3, 1, 4, 0, 0, 0], [2, 7, 1, 8, 2, 0]], np.int32)
    longer_padding = np.concatenate([source, np.zeros((2, 3), np.int32)], axis=1)
    y, _ = apply(seq2seq, (source, TOKENS))
    y_longer, _ = apply(seq2seq, (longer_padding, TOKENS))
    np.testing.assert_allclose(y, y_longer, atol=1e-5)
    other_source = source.copy()
    other_source[0, 1] = 5
    y_other, _ = apply(seq2seq, (other_source, TOKENS))
    assert not np.allclose(y[0], y_other[0]) and np.allclose(y[1], y_other[1], atol=1e-6)


def test_seq2seq_predict_mode_matches_eval(seq2seq):
    source = np.array([[3, 1, 4, 0, 0, 0], [2, 7, 1, 8, 2, 8]], np.int32)
    predict_model = LSTMSeq2SeqAttn(20, 20, d_model=16, mode="predict")
    predict_model = predict_model.init((source, TOKENS[:, :1]))
    predict_model = predict_model.update_parameters(seq2seq.parameters())
    decoded = _decode_one_token_at_a_time(predict_model, TOKENS, source=source)
    np.testing.assert_allclose(decoded, apply(seq2seq, (source, TOKENS))[0], atol=1e-5)


def test_seq2seq_trains(getkey):
    # Copy task: the target is the source.
    rng = np.random.default_rng(0)
    source = rng.integers(1, 6, size=(8, 5)).astype(np.int32)
    model = LSTMSeq2SeqAttn(20, 20, d_model=16, n_encoder_layers=1, n_decoder_layers=1)
    model = model.init((source, source), getkey())
    # Trax's convention: the model passes the targets through, so the batch is
    # (inputs, targets, weights) and the loss gets (log-probs, targets, weights).
    losses = _train(model, (source, source, np.ones(source.shape, np.float32)))
    assert losses[-1] < 0.6 * losses[0]


def test_bad_arguments_name_the_model():
    with pytest.raises(ValueError, match="LSTMSeq2SeqAttn: d_model"):
        LSTMSeq2SeqAttn(d_model=0)
    with pytest.raises(ValueError, match="GRULM: mode"):
        GRULM(mode="decode")
