"""BERT: agreement with a numpy BERT on checkpoint-layout weights, Trax's weight order, heads."""

import math

import jax
import numpy as np
import optax
import pytest

from pax_trax import nn
from pax_trax.core.module import num_parameters
from pax_trax.core.shapes import ShapeDtype
from pax_trax.models.bert import (
    BERT,
    AddBias,
    BERTClassifierHead,
    BERTMLMHead,
    BERTPretrainingHead,
    BERTPretrainingLoss,
    BERTRegressionHead,
)
from pax_trax.supervised.train_step import init_optimizer_state, make_train_step

apply = jax.jit(lambda model, x: model(x))

D, VOCAB, MAX_LEN, HEADS, D_FF, LAYERS = 8, 12, 6, 2, 16, 2
IDS = np.array([[1, 5, 7, 2, 0, 0], [3, 4, 4, 9, 11, 2]], np.int32)
TYPES = np.array([[0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1]], np.int32)


def _small_bert(**kwargs):
    return BERT(d_model=D, vocab_size=VOCAB, max_len=MAX_LEN, n_heads=HEADS, d_ff=D_FF,
                n_layers=LAYERS, **kwargs)


def _signature(batch=2, length=MAX_LEN):
    ids = ShapeDtype((batch, length), np.int32)
    return ids, ids, ids


@pytest.fixture(scope="module")
def bert():
    return _small_bert().init(_signature(), jax.random.PRNGKey(0))


def _random_checkpoint(seed=0, position_rows=10):
    """Tensors named and shaped as in Google's BERT checkpoints (the TF layout)."""
    rng = np.random.default_rng(seed)

    def t(*shape, scale=0.3):
        return (rng.normal(size=shape) * scale).astype(np.float32)

    ckpt = {
        "bert/embeddings/word_embeddings": t(VOCAB, D),
        "bert/embeddings/token_type_embeddings": t(2, D),
        "bert/embeddings/position_embeddings": t(position_rows, D),
        "bert/embeddings/LayerNorm/gamma": 1 + t(D, scale=0.1),
        "bert/embeddings/LayerNorm/beta": t(D, scale=0.1),
        "bert/pooler/dense/kernel": t(D, D),
        "bert/pooler/dense/bias": t(D),
    }
    for i in range(LAYERS):
        p = f"bert/encoder/layer_{i}"
        for part in ("query", "key", "value"):
            ckpt[f"{p}/attention/self/{part}/kernel"] = t(D, D)
            ckpt[f"{p}/attention/self/{part}/bias"] = t(D)
        ckpt[f"{p}/attention/output/dense/kernel"] = t(D, D)
        ckpt[f"{p}/attention/output/dense/bias"] = t(D)
        ckpt[f"{p}/intermediate/dense/kernel"] = t(D, D_FF)
        ckpt[f"{p}/intermediate/dense/bias"] = t(D_FF)
        ckpt[f"{p}/output/dense/kernel"] = t(D_FF, D)
        ckpt[f"{p}/output/dense/bias"] = t(D)
        for norm in ("attention/output/LayerNorm", "output/LayerNorm"):
            ckpt[f"{p}/{norm}/gamma"] = 1 + t(D, scale=0.1)
            ckpt[f"{p}/{norm}/beta"] = t(D, scale=0.1)
    return ckpt


_erf = np.vectorize(math.erf)


def _numpy_bert(ckpt, ids, types):
    """A plain numpy BERT (the original formulation) on checkpoint-layout tensors."""

    def norm(x, prefix):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * ckpt[f"{prefix}/gamma"] + ckpt[f"{prefix}/beta"]

    def dense(x, prefix):
        return x @ ckpt[f"{prefix}/kernel"] + ckpt[f"{prefix}/bias"]

    batch, length = ids.shape
    x = (ckpt["bert/embeddings/word_embeddings"][ids]
         + ckpt["bert/embeddings/token_type_embeddings"][types]
         + ckpt["bert/embeddings/position_embeddings"][:length])
    x = norm(x, "bert/embeddings/LayerNorm")
    padding = (ids == 0)[:, None, None, :]
    d_head = D // HEADS
    for i in range(LAYERS):
        p = f"bert/encoder/layer_{i}"

        def heads(y):
            return y.reshape(batch, length, HEADS, d_head).transpose(0, 2, 1, 3)

        q, k, v = (heads(dense(x, f"{p}/attention/self/{part}"))
                   for part in ("query", "key", "value"))
        logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d_head) - 1e9 * padding
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, D)
        x = norm(x + dense(context, f"{p}/attention/output/dense"),
                 f"{p}/attention/output/LayerNorm")
        h = dense(x, f"{p}/intermediate/dense")
        h = h * 0.5 * (1.0 + _erf(h / np.sqrt(2.0)))
        x = norm(x + dense(h, f"{p}/output/dense"), f"{p}/output/LayerNorm")
    pooled = np.tanh(dense(x[:, 0], "bert/pooler/dense"))
    return pooled, x


def test_output_shapes_and_stack(bert):
    pooled, sequence = apply(bert, (IDS, TYPES, IDS))
    assert pooled.shape == (2, D) and sequence.shape == (2, MAX_LEN, D)
    assert (bert.n_in, bert.n_out) == (3, 2)
    assert bert.name == "PretrainedBERT"


def test_matches_numpy_bert_after_loading_a_checkpoint(bert):
    ckpt = _random_checkpoint()
    model = bert.load_bert_checkpoint(ckpt.__getitem__)
    pooled, sequence = apply(model, (IDS, TYPES, IDS))
    expected_pooled, expected_sequence = _numpy_bert(ckpt, IDS, TYPES)
    np.testing.assert_allclose(sequence, expected_sequence, atol=2e-4)
    np.testing.assert_allclose(pooled, expected_pooled, atol=2e-4)
    # The kernels were split per head, as Trax's loader does.
    attention = model.layers[6].layers[0].layers[1].layers[1].layers[0]
    query = ckpt["bert/encoder/layer_0/attention/self/query/kernel"]
    np.testing.assert_array_equal(attention.w_q[1], query[:, D // 2:])


def test_weights_in_trax_order(bert):
    # The order Trax's PretrainedBERT writes checkpoint tensors into its weights.
    h, dh = HEADS, D // HEADS
    layer = [(h, D, dh)] * 3 + [(h, dh, D)] + [(h, dh)] * 3 + [(D,)] + [(D,), (D,)]
    layer += [(D, D_FF), (D_FF,), (D_FF, D), (D,), (D,), (D,)]
    expected = [(VOCAB, D), (2, D), (MAX_LEN, D), (D,), (D,)] + layer * LAYERS + [(D, D), (D,)]
    leaves = jax.tree_util.tree_leaves(bert.weights)
    assert [tuple(x.shape) for x in leaves] == expected


def test_parameter_count_by_hand(bert):
    embeddings = VOCAB * D + 2 * D + MAX_LEN * D + 2 * D
    attention = 4 * D * D + 3 * D + D  # Per-head q, k, v, o; q, k, v biases; AddBias.
    feed_forward = D * D_FF + D_FF + D_FF * D + D
    per_layer = attention + 2 * D + feed_forward + 2 * D
    assert num_parameters(bert) == embeddings + LAYERS * per_layer + D * D + D


def test_padding_is_masked(bert):
    _, sequence = apply(bert, (IDS, TYPES, IDS))
    # Another token type at a padding position changes no real position...
    other_types = TYPES.copy()
    other_types[0, 4] = 1
    _, other = apply(bert, (IDS, other_types, IDS))
    np.testing.assert_allclose(other[0, :4], sequence[0, :4], atol=1e-6)
    # ...while at a real position it changes them all.
    other_types[0, 2] = 0
    _, other = apply(bert, (IDS, other_types, IDS))
    assert not np.allclose(other[0, :4], sequence[0, :4])


def test_train_and_eval_modes_compute_the_same(bert):
    # Trax's BERT has no dropout: a plain call works in 'train' mode too.
    train_outputs = apply(bert.train(), (IDS, TYPES, IDS))
    for a, b in zip(train_outputs, apply(bert, (IDS, TYPES, IDS))):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_heads_shapes():
    model = _small_bert(head=lambda: BERTPretrainingHead(3, vocab_size=VOCAB))
    model = model.init(_signature(), jax.random.PRNGKey(1))
    nsp, mlm = apply(model, (IDS, TYPES, IDS))
    assert nsp.shape == (2, 3) and mlm.shape == (2, MAX_LEN, VOCAB)
    bert, heads = model.layers
    pooled_and_sequence = apply(bert, (IDS, TYPES, IDS))
    for head, shape in [(BERTClassifierHead(4), (2, 4)), (BERTRegressionHead(), (2,)),
                        (BERTMLMHead(vocab_size=VOCAB), (2, MAX_LEN, VOCAB))]:
        head = head.init(tuple(ShapeDtype(x.shape) for x in pooled_and_sequence))
        assert head(pooled_and_sequence).shape == shape


def test_pretraining_loss_by_hand():
    rng = np.random.default_rng(2)
    nsp_logits, mlm_logits = rng.normal(size=(2, 2)), rng.normal(size=(2, 3, 5))
    nsp_targets, mlm_targets = np.array([1, 0]), np.array([[4, 0, 2], [1, 1, 3]])
    nsp_weights, mlm_weights = np.array([1.0, 1.0]), np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])

    def weighted_ce(logits, targets, weights):
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        picked = np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
        return -(picked * weights).sum() / weights.sum()

    expected = (weighted_ce(nsp_logits, nsp_targets, nsp_weights)
                + weighted_ce(mlm_logits, mlm_targets, mlm_weights))
    loss = BERTPretrainingLoss()((nsp_logits.astype(np.float32), mlm_logits.astype(np.float32),
                                  nsp_targets, nsp_weights, mlm_targets, mlm_weights))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_classifier_trains():
    # Label: does the sequence contain token 5?
    rng = np.random.default_rng(3)
    ids = rng.integers(1, VOCAB, size=(16, MAX_LEN)).astype(np.int32)
    labels = (ids == 5).any(axis=1).astype(np.int32)
    model = _small_bert(head=lambda: BERTClassifierHead(2), mode="train")
    model = model.init(_signature(16), jax.random.PRNGKey(4))
    optimizer = optax.adam(0.01)
    opt_state = init_optimizer_state(optimizer, model)
    step = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), optimizer))
    batch = (ids, np.zeros_like(ids), ids, labels, np.ones(16, np.float32))
    losses = []
    for _ in range(20):
        model, opt_state, metrics = step(model, opt_state, batch)
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.5 * losses[0]


def test_add_bias_weights_are_the_bias():
    layer = AddBias().init(np.zeros((1, 3), np.float32))
    assert layer.weights.shape == (3,) and float(abs(layer.weights).sum()) == 0.0


def test_checkpoint_errors(bert):
    ckpt = _random_checkpoint()
    ckpt["bert/pooler/dense/bias"] = np.zeros(D + 1, np.float32)
    with pytest.raises(ValueError, match=r"bert/pooler/dense/bias has shape \(9,\), expected"):
        bert.load_bert_checkpoint(ckpt.__getitem__)
    with pytest.raises(ValueError, match="initialize the model"):
        _small_bert().load_bert_checkpoint(ckpt.__getitem__)


def test_bad_arguments_name_the_model():
    with pytest.raises(ValueError, match="BERT: mode 'predict' is not supported"):
        _small_bert(mode="predict")
    with pytest.raises(ValueError, match=r"BERT: d_model \(8\) must be a multiple of n_heads"):
        BERT(d_model=8, n_heads=3)
    with pytest.raises(ValueError, match="BERT: d_ff"):
        BERT(d_ff=0)
