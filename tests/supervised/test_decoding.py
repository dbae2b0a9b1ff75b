"""Tests of pax_trax.supervised.decoding: sampling, greedy decoding and beam search.

Independent references: greedy and log-probabilities come from eval-mode
forwards of the whole prefix (no caches), beam search is compared with an
exhaustive enumeration, sampling with the model's distribution (chi-square).
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

import pax_trax
from pax_trax import nn
from pax_trax.supervised import decoding

VOCAB = 7
EOS = 1


# ---------------------------------------------------------------------------
# Models


def transformer_lm(vocab=VOCAB, d_model=16, d_ff=32, n_layers=1, n_heads=2, max_len=64,
                   mode="eval", extra=()):
    """Trax 1.4.1's TransformerLM structure (no dropout) from pax_trax.nn layers."""

    def block():
        return [
            nn.Residual(nn.LayerNorm(), nn.CausalAttention(d_model, n_heads=n_heads, mode=mode)),
            nn.Residual(nn.LayerNorm(), nn.Dense(d_ff), nn.Relu(), nn.Dense(d_model)),
        ]

    return nn.Serial(
        nn.ShiftRight(mode=mode), nn.Embedding(vocab, d_model), *extra,
        nn.PositionalEncoding(max_len=max_len, mode=mode),
        *[block() for _ in range(n_layers)], nn.LayerNorm(), nn.Dense(vocab))


def transformer(vocab=VOCAB, d_model=16, d_ff=32, n_heads=2, max_len=64, mode="eval"):
    """Trax 1.4.1's Transformer structure (one encoder and one decoder block)."""
    encoder_mode = "eval" if mode == "predict" else mode

    def feed_forward():
        return nn.Residual(nn.LayerNorm(), nn.Dense(d_ff), nn.Relu(), nn.Dense(d_model))

    return nn.Serial(
        nn.Select([0, 1, 1]),                                     # tok_e tok_d tok_d
        nn.Branch([], nn.PaddingMask()),                          # tok_e mask tok_d tok_d
        nn.Embedding(vocab, d_model), nn.PositionalEncoding(max_len=max_len, mode=encoder_mode),
        nn.Residual(nn.LayerNorm(), nn.Attention(d_model, n_heads=n_heads, mode=encoder_mode)),
        feed_forward(),
        nn.LayerNorm(),                                           # vec_e mask tok_d tok_d
        nn.Select([2, 1, 0]),                                     # tok_d mask vec_e tok_d
        nn.ShiftRight(mode=mode),
        nn.Embedding(vocab, d_model), nn.PositionalEncoding(max_len=max_len, mode=mode),
        nn.Branch([], nn.EncoderDecoderMask()),                   # vec_d mask vec_e tok_d
        nn.Residual(nn.LayerNorm(), nn.CausalAttention(d_model, n_heads=n_heads, mode=mode)),
        nn.Residual(nn.LayerNorm(), nn.Select([0, 2, 2, 1, 2]),
                    nn.AttentionQKV(d_model, n_heads=n_heads, mode=mode,
                                    cache_KV_in_predict=True)),
        feed_forward(),
        nn.LayerNorm(),
        nn.Parallel([], nn.Drop(), nn.Drop()),                    # vec_d tok_d
        nn.Dense(vocab),                                          # logits tok_d
    )


def _init(model, signature, seed, scale):
    """`model` with random parameters from numpy (no XLA compilation of initializers).

    Matrices are N(0, scale^2 / fan_in); vectors N(0, (0.1 scale)^2), plus 1
    for LayerNorm scales. A larger `scale` gives more peaked predictions.
    """
    shapes = jax.eval_shape(lambda: model.init(signature, jax.random.PRNGKey(0)))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        if len(leaf.shape) >= 2:
            return jnp.asarray(rng.normal(0, scale / np.sqrt(leaf.shape[0]), leaf.shape),
                               leaf.dtype)
        offset = 1.0 if "scale" in jax.tree_util.keystr(path[-1:]) else 0.0
        return jnp.asarray(offset + rng.normal(0, 0.1 * scale, leaf.shape), leaf.dtype)

    return model.update_parameters(
        jax.tree_util.tree_map_with_path(fill, shapes.parameters()))


@functools.lru_cache(maxsize=None)
def random_lm(seed=1, vocab=VOCAB, scale=1.0):
    """(reference, predict model without state) sharing random parameters.

    The reference is the eval-mode model without its leading ShiftRight: it
    maps a whole prefix, start symbol included, to the next-token logits at
    every position, as the predict-mode model sees the prefix.
    """
    evaluator = _init(transformer_lm(vocab=vocab), jax.ShapeDtypeStruct((1, 4), jnp.int32),
                      seed, scale)
    reference = nn.Serial(*evaluator.sublayers[1:])
    return reference, transformer_lm(vocab=vocab, mode="predict").update_parameters(
        evaluator.parameters())


@functools.lru_cache(maxsize=None)
def random_transformer(seed=3):
    """(eval model, predict model without state); the eval model shifts its targets."""
    signature = (jax.ShapeDtypeStruct((1, 5), jnp.int32), jax.ShapeDtypeStruct((1, 4), jnp.int32))
    evaluator = _init(transformer(), signature, seed, 2.0)
    return evaluator, transformer(mode="predict").update_parameters(evaluator.parameters())


# ---------------------------------------------------------------------------
# Independent references (eval mode, whole prefix, no caches)

PADDED = 16  # references pad to one length (causal models), so they compile once


@jax.jit
def _forward(model, tokens, source):
    out = model(tokens if source is None else (source, tokens))
    return jax.nn.log_softmax((out[0] if isinstance(out, tuple) else out).astype(jnp.float32))


def next_log_probs(reference, prefix, source=None):
    """log p(next token | prefix) from an eval-mode forward of the whole prefix.

    Language model: `reference` from `random_lm`, `prefix` starts with the
    start symbol. Encoder-decoder: the eval model, which shifts the target
    right itself (start 0); `prefix` holds the tokens decoded so far.
    """
    length = prefix.shape[1]
    tokens = np.zeros((prefix.shape[0], PADDED), np.int32)
    tokens[:, :length] = prefix
    position = length - 1 if source is None else length
    return np.asarray(_forward(reference, tokens, source)[:, position])


def greedy_reference(evaluator, prefix, length, source=None, eos_id=None):
    """A plain Python loop: full-prefix forward, argmax, append; rows stop at eos."""
    rows = prefix.shape[0] if source is None else source.shape[0]
    generated = np.zeros((rows, 0), np.int32)
    done = np.zeros(rows, bool)
    for _ in range(length):
        logp = next_log_probs(evaluator, np.concatenate([prefix, generated], 1), source)
        token = np.where(done, 0, logp.argmax(-1)).astype(np.int32)
        generated = np.concatenate([generated, token[:, None]], 1)
        if eos_id is not None:
            done |= token == eos_id
            if done.all():
                break
    return generated


def sequence_log_prob(reference, prefix, sequence, source=None):
    """log p(sequence | prefix) for one row, summed over its tokens (one forward)."""
    sequence = np.asarray(sequence, np.int32)[None]
    tokens = np.concatenate([prefix, sequence], 1)
    padded = np.zeros((1, PADDED), np.int32)
    padded[:, :tokens.shape[1]] = tokens
    logp = np.asarray(_forward(reference, padded, source))[0]
    first = prefix.shape[1] - (1 if source is None else 0)  # predicts sequence[0]
    return float(sum(logp[first + i, t] for i, t in enumerate(sequence[0])))


def trimmed(sequence, eos_id):
    """The tokens of a hypothesis: up to and including its eos."""
    sequence = list(sequence)
    return sequence[:sequence.index(eos_id) + 1] if eos_id in sequence else sequence


PREFIX_INPUTS = np.array([[3, 4], [5, 2]], np.int32)  # two rows of language-model inputs


def _lm_prefix(inputs):
    return np.concatenate([np.zeros((inputs.shape[0], 1), np.int32), inputs], 1)


# ---------------------------------------------------------------------------
# Sampling and greedy decoding


# Most tests decode the two rows of PREFIX_INPUTS for MAX_LENGTH tokens, so that
# they share compiled programs (eos and temperature are data, not compile-time).
MAX_LENGTH = 8


def greedy(lm, inputs=PREFIX_INPUTS, **kwargs):
    kwargs = {**dict(batch_size=inputs.shape[0], temperature=0.0, eos_id=None,
                     max_length=MAX_LENGTH), **kwargs}
    return decoding.autoregressive_sample(lm, inputs, **kwargs)


def beams(lm, inputs=PREFIX_INPUTS, **kwargs):
    kwargs = {**dict(batch_size=inputs.shape[0], n_beams=3, eos_id=None,
                     max_length=MAX_LENGTH, length_penalty=0.0), **kwargs}
    return decoding.beam_search(lm, inputs, **kwargs)


def test_output_shapes():
    _, lm = random_lm()
    out = greedy(lm)
    assert out.shape == (2, MAX_LENGTH) and out.dtype == np.int32
    seqs, scores = beams(lm)
    assert seqs.shape == (2, 3, MAX_LENGTH) and seqs.dtype == np.int32
    assert scores.shape == (2, 3) and scores.dtype == np.float32
    assert np.all(np.diff(scores, axis=1) <= 0), "beams must come best first"
    stream = decoding.autoregressive_sample_stream(lm, PREFIX_INPUTS, batch_size=2,
                                                   temperature=0.0)
    first = next(stream)
    assert first.shape == (2,) and first.dtype == np.int32


def test_greedy_equals_an_independent_greedy_loop():
    evaluator, lm = random_lm()
    expected = greedy_reference(evaluator, _lm_prefix(PREFIX_INPUTS), MAX_LENGTH)
    np.testing.assert_array_equal(greedy(lm), expected)
    assert len(set(map(tuple, expected))) == 2, "the rows should differ (weak test otherwise)"
    stream = decoding.autoregressive_sample_stream(lm, PREFIX_INPUTS, batch_size=2,
                                                   temperature=0.0)
    np.testing.assert_array_equal(np.stack([next(stream) for _ in range(MAX_LENGTH)], 1),
                                  expected)
    # Without inputs, the model starts from start_id alone (an int or one per row).
    start = np.array([[3], [5]], np.int32)
    np.testing.assert_array_equal(
        decoding.autoregressive_sample(lm, batch_size=2, temperature=0.0, start_id=start,
                                       eos_id=None, max_length=4),
        greedy_reference(evaluator, start, 4))
    np.testing.assert_array_equal(
        decoding.autoregressive_sample(lm, batch_size=2, temperature=0.0, start_id=5,
                                       eos_id=None, max_length=4),
        greedy_reference(evaluator, np.full((2, 1), 5), 4))


def test_eos_stops_a_row_and_the_loop():
    evaluator, lm = random_lm()
    free = greedy_reference(evaluator, _lm_prefix(PREFIX_INPUTS), MAX_LENGTH)
    eos = int(free[0, 2])  # row 0 ends at its third token, row 1 never
    assert eos not in free[0, :2] and eos not in free[1]
    out = greedy(lm, eos_id=eos)
    np.testing.assert_array_equal(out[0], np.r_[free[0, :3], np.zeros(MAX_LENGTH - 3)])
    np.testing.assert_array_equal(out[1], free[1])
    np.testing.assert_array_equal(
        out, greedy_reference(evaluator, _lm_prefix(PREFIX_INPUTS), MAX_LENGTH, eos_id=eos))
    # Both rows done: the loop exits, and the result is as long as the longest row.
    both = int(free[1, 0])  # row 1's first token, row 0's second
    assert both == free[0, 1] and both != free[0, 0]
    np.testing.assert_array_equal(greedy(lm, eos_id=both), [free[0, :2], [both, 0]])
    stream = decoding.autoregressive_sample_stream(lm, PREFIX_INPUTS, batch_size=2,
                                                   temperature=0.0, eos_id=both)
    np.testing.assert_array_equal(np.stack(list(stream), 1), [free[0, :2], [both, 0]])


def test_same_key_same_samples_and_different_keys_differ():
    _, lm = random_lm()
    sample = functools.partial(greedy, lm, temperature=1.0)
    a = sample(key=jax.random.PRNGKey(0))
    np.testing.assert_array_equal(a, sample(key=jax.random.PRNGKey(0)))
    b = sample(key=jax.random.PRNGKey(1))
    assert not np.array_equal(a, b)
    stream = decoding.autoregressive_sample_stream(lm, PREFIX_INPUTS, batch_size=2,
                                                   key=jax.random.PRNGKey(1))
    np.testing.assert_array_equal(np.stack([next(stream) for _ in range(MAX_LENGTH)], 1), b)


def test_sampling_matches_the_model_distribution():
    evaluator, lm = random_lm()
    temperature, n = 1.5, 4000
    logits = next_log_probs(evaluator, np.zeros((1, 1), np.int32))[0].astype(np.float64)

    def softmax(x):
        e = np.exp(x - x.max())
        return e / e.sum()

    samples = decoding.autoregressive_sample(lm, batch_size=n, temperature=temperature,
                                             eos_id=None, max_length=1,
                                             key=jax.random.PRNGKey(3))
    counts = np.bincount(samples[:, 0], minlength=VOCAB)
    assert stats.chisquare(counts, softmax(logits / temperature) * n).pvalue > 1e-3
    # The test has power: the distribution at temperature 1 is rejected.
    assert stats.chisquare(counts, softmax(logits) * n).pvalue < 1e-6


# ---------------------------------------------------------------------------
# Beam search


def test_beam_search_with_one_beam_is_greedy():
    evaluator, lm = random_lm()
    prefix = _lm_prefix(PREFIX_INPUTS)
    expected = greedy_reference(evaluator, prefix, MAX_LENGTH)
    for alpha in (0.0, 1.0):
        seqs, scores = beams(lm, n_beams=1, length_penalty=alpha)
        np.testing.assert_array_equal(seqs[:, 0], expected)
        for row in range(2):
            logp = sequence_log_prob(evaluator, prefix[row:row + 1], expected[row])
            np.testing.assert_allclose(scores[row, 0], logp / ((5 + MAX_LENGTH) / 6) ** alpha,
                                       rtol=1e-5)
    # With eos, one beam still follows the greedy path; where greedy ends at eos
    # (row 0, at its third token) so does the beam.
    seqs, _ = beams(lm, n_beams=1, eos_id=int(expected[0, 2]))
    np.testing.assert_array_equal(seqs[0, 0, :3], expected[0, :3])
    assert not seqs[0, 0, 3:].any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_beam_is_at_least_as_likely_as_greedy(seed):
    evaluator, lm = random_lm(seed=seed)
    prefix = _lm_prefix(PREFIX_INPUTS)
    expected = greedy_reference(evaluator, prefix, MAX_LENGTH)
    seqs, scores = beams(lm)
    for row in range(2):
        for beam in range(3):  # scores are the beams' log-probabilities (alpha = 0)
            np.testing.assert_allclose(
                scores[row, beam], sequence_log_prob(evaluator, prefix[row:row + 1],
                                                     seqs[row, beam]), rtol=1e-5, atol=1e-5)
        greedy_logp = sequence_log_prob(evaluator, prefix[row:row + 1], expected[row])
        assert scores[row, 0] >= greedy_logp - 1e-5


def exhaustive_beams(evaluator, vocab, max_length, eos_id, alpha):
    """All hypotheses (ending at eos, or max_length long without it), best first."""
    prefix = np.zeros((1, 1), np.int32)
    hypotheses = set()
    for full in itertools.product(range(vocab), repeat=max_length):
        hypotheses.add(tuple(trimmed(full, eos_id)))
    scored = []
    for hyp in hypotheses:
        logp = sequence_log_prob(evaluator, prefix, hyp)
        scored.append((logp / ((5 + len(hyp)) / 6) ** alpha, hyp))
    return sorted(scored, reverse=True)


def test_beam_search_equals_exhaustive_search_and_length_penalty_ranks():
    vocab, max_length = 4, 3
    evaluator, lm = random_lm(seed=4, vocab=vocab, scale=3.0)
    rankings = []
    for alpha in (0.0, 3.0):
        expected = exhaustive_beams(evaluator, vocab, max_length, EOS, alpha)
        n_valid = len(expected)  # 1 + 3 + 9 ending at eos, 27 without: 40
        seqs, scores = decoding.beam_search(lm, n_beams=vocab ** max_length, eos_id=EOS,
                                            max_length=max_length, length_penalty=alpha)
        got = [tuple(trimmed(s, EOS)) for s in seqs[0, :n_valid]]
        assert got == [hyp for _, hyp in expected]
        np.testing.assert_allclose(scores[0, :n_valid], [s for s, _ in expected], rtol=1e-5,
                                   atol=1e-5)
        # More beams than hypotheses: the rest are empty, scored -inf.
        assert np.all(np.isneginf(scores[0, n_valid:])) and not seqs[0, n_valid:].any()
        for s in seqs[0, :n_valid]:  # padded with 0 after eos
            if EOS in s:
                assert not s[list(s).index(EOS) + 1:].any()
        rankings.append(got)
    # The penalty reorders: alpha=3 moves longer hypotheses up, as the formula says.
    assert rankings[0] != rankings[1]
    mean_rank_of_long = [np.mean([i for i, h in enumerate(r) if len(h) == max_length])
                         for r in rankings]
    assert mean_rank_of_long[1] < mean_rank_of_long[0]


def test_length_penalty_factor_is_gnmt():
    np.testing.assert_allclose(decoding.length_penalty_factor(3, 0.5), np.sqrt(8 / 6),
                               rtol=1e-6)
    assert float(decoding.length_penalty_factor(10, 0.0)) == 1.0


# ---------------------------------------------------------------------------
# Encoder-decoder


def test_encoder_decoder_greedy_and_beams_per_row():
    evaluator, model = random_transformer()
    source = np.array([[3, 4, 5, 0, 0], [6, 2, 3, 4, 5]], np.int32)
    no_target = np.zeros((1, 0), np.int32)
    expected = greedy_reference(evaluator, no_target.repeat(2, 0), 6, source=source)
    assert not np.array_equal(expected[0], expected[1])
    out = decoding.autoregressive_sample(model, source, batch_size=2, temperature=0.0,
                                         eos_id=None, max_length=6)
    np.testing.assert_array_equal(out, expected)
    # Every beam's score is its log-probability under its own row's source: the
    # source and the cached encoder projections are tiled per beam, not mixed.
    seqs, scores = decoding.beam_search(model, source, batch_size=2, n_beams=3, eos_id=EOS,
                                        max_length=6)
    assert EOS in seqs[0, 0] and EOS not in seqs[1, 0]  # finished and cut at max_length
    for row in range(2):
        for beam in range(3):
            hyp = trimmed(seqs[row, beam], EOS)
            logp = sequence_log_prob(evaluator, no_target, hyp, source=source[row:row + 1])
            np.testing.assert_allclose(scores[row, beam], logp / ((5 + len(hyp)) / 6),
                                       rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------
# A trained model


def test_trained_transformer_lm_copies():
    n, vocab, sep = 4, 8, 2
    model = _init(transformer_lm(vocab=vocab, d_model=32, d_ff=64, n_layers=2),
                  jax.ShapeDtypeStruct((1, 2 * n + 2), jnp.int32), 0, 1.0)

    def batch(rng, size):
        x = rng.integers(3, vocab, (size, n))
        tokens = np.concatenate([x, np.full((size, 1), sep), x, np.full((size, 1), EOS)], 1)
        weights = np.zeros(tokens.shape, np.float32)
        weights[:, n + 1:] = 1.0  # only the copy (and its eos) is predictable
        return tokens.astype(np.int32), weights

    optimizer = optax.adam(3e-3)

    @jax.jit
    def train_step(model, opt_state, tokens, weights):
        def loss(params):
            logp = jax.nn.log_softmax(model.update_parameters(params)(tokens))
            nll = -jnp.take_along_axis(logp, tokens[..., None], -1)[..., 0]
            return jnp.sum(nll * weights) / jnp.sum(weights)

        value, grads = jax.value_and_grad(loss)(model.parameters())
        updates, opt_state = optimizer.update(grads, opt_state, model.parameters())
        return (model.update_parameters(optax.apply_updates(model.parameters(), updates)),
                opt_state, value)

    rng = np.random.default_rng(0)
    opt_state = optimizer.init(model.parameters())
    for _ in range(120):
        model, opt_state, loss = train_step(model, opt_state, *batch(rng, 64))
    assert float(loss) < 0.05

    tokens, _ = batch(np.random.default_rng(1), 8)
    lm = transformer_lm(vocab=vocab, d_model=32, d_ff=64, n_layers=2,
                        mode="predict").update_parameters(model.parameters())
    out = decoding.autoregressive_sample(lm, tokens[:, :n + 1], batch_size=8, temperature=0.0,
                                         eos_id=EOS, max_length=n + 3)
    np.testing.assert_array_equal(out, tokens[:, n + 1:])  # the copy, then eos
    seqs, _ = decoding.beam_search(lm, tokens[:, :n + 1], batch_size=8, n_beams=3, eos_id=EOS,
                                   max_length=n + 3)
    np.testing.assert_array_equal(seqs[:, 0, :n + 1], out)
    assert not seqs[:, 0, n + 1:].any()


# ---------------------------------------------------------------------------
# One compiled loop, caches and state


TRACES = []
predict_state = jax.jit(decoding.init_predict_state, static_argnums=(1, 2))


class CountTraces(pax_trax.Module):
    """Identity that records each time the model's forward is traced (run in Python)."""

    def __init__(self):
        self.name = "CountTraces"

    def forward(self, x):
        TRACES.append(x.shape)
        return x


def test_generation_is_one_compiled_loop():
    lm = transformer_lm(mode="predict", extra=(CountTraces(),)).update_parameters(
        _init(transformer_lm(extra=(CountTraces(),)), jax.ShapeDtypeStruct((1, 4), jnp.int32),
              0, 1.0).parameters())
    decode = functools.partial(greedy, lm)
    del TRACES[:]
    decode(max_length=3)
    per_compile = len(TRACES)
    decode(max_length=3)
    assert len(TRACES) == per_compile, "the same shapes must not retrace"
    decode(max_length=12)  # 4 times the tokens, the same number of traces
    assert len(TRACES) == 2 * per_compile

    prefix = jnp.asarray(_lm_prefix(PREFIX_INPUTS))
    eos = jnp.int32(EOS)
    for fn, extra in ((decoding._sample_loop, {}), (decoding._beam_loop, dict(n_beams=2))):
        kwargs = dict(max_length=5, cache_length=7, reuse=False, **extra)
        args = ((jax.random.PRNGKey(0), jnp.float32(0.0), eos) if fn is decoding._sample_loop
                else (jnp.float32(1.0), eos))
        jaxpr = jax.make_jaxpr(functools.partial(fn, **kwargs))(lm, prefix, None, *args)
        loops = [e for e in jaxpr.jaxpr.eqns if e.primitive.name in ("while", "scan")]
        assert len(loops) == 1, f"{fn.__name__}: expected one loop at the top level"


def cache_shapes(model):
    return [m.cache_keys.shape for m in model.modules()
            if isinstance(m, nn.DotProductCausalAttention)]


def test_caches_are_sized_to_the_decoded_length():
    _, lm = random_lm()
    signature = pax_trax.shapes.ShapeDtype((2, 1), np.int32)
    cache_length = 3 + MAX_LENGTH - 1  # start + 2 inputs, then one position per token but the last
    sized = predict_state(lm, signature, cache_length)
    assert cache_shapes(sized) == [(2, 2, cache_length, 8)]
    assert decoding._state_fits(sized, signature, cache_length)
    assert not decoding._state_fits(sized, signature, cache_length + 1)
    assert not decoding._state_fits(sized, pax_trax.shapes.ShapeDtype((3, 1), np.int32),
                                    cache_length)
    assert not decoding._state_fits(lm, signature, cache_length)  # no state at all
    # A state of exactly that size is used as it is; any other is rebuilt, e.g. one
    # initialized for another batch size and Trax's 2048 positions.
    initialized = predict_state(lm, pax_trax.shapes.ShapeDtype((5, 1), np.int32), None)
    assert cache_shapes(initialized) == [(5, 2, 2048, 8)]
    expected = greedy(lm)
    np.testing.assert_array_equal(greedy(sized), expected)
    np.testing.assert_array_equal(greedy(initialized), expected)


def test_stream_stops_when_the_cache_is_full():
    evaluator, lm = random_lm()
    small = predict_state(lm, pax_trax.shapes.ShapeDtype((1, 1), np.int32), 4)
    stream = decoding.autoregressive_sample_stream(small, temperature=0.0)
    tokens = [next(stream) for _ in range(4)]
    np.testing.assert_array_equal(np.concatenate(tokens),
                                  greedy_reference(evaluator, np.zeros((1, 1), np.int32), 4)[0])
    with pytest.raises(ValueError, match="caches hold 4 positions and are full"):
        next(stream)


# ---------------------------------------------------------------------------
# Errors


def test_errors_name_the_function_and_the_problem():
    evaluator, lm = random_lm()
    with pytest.raises(ValueError, match="autoregressive_sample: the model has no layer in "
                                         "'predict' mode"):
        decoding.autoregressive_sample(evaluator, temperature=0.0)
    with pytest.raises(ValueError, match="needs a JAX key"):
        decoding.autoregressive_sample(lm, temperature=1.0)
    with pytest.raises(ValueError, match=r"inputs batch size \(2\) does not match batch_size "
                                         r"arg \(3\)"):
        decoding.beam_search(lm, PREFIX_INPUTS, batch_size=3)
    with pytest.raises(ValueError, match="max_len=64"):
        decoding.autoregressive_sample(lm, temperature=0.0, max_length=100)
    with pytest.raises(ValueError, match="n_beams must be a positive int, got 0"):
        decoding.beam_search(lm, n_beams=0)
    with pytest.raises(ValueError, match="no parameters yet"):
        decoding.autoregressive_sample(transformer_lm(mode="predict"), temperature=0.0)
    with pytest.raises(ValueError, match="pass the source tokens as inputs"):
        decoding.autoregressive_sample(random_transformer()[1], temperature=0.0)
    with pytest.raises(ValueError, match=r"integer tokens of shape \(batch_size, length\)"):
        decoding.autoregressive_sample(lm, np.zeros((1, 2), np.float32), temperature=0.0)
