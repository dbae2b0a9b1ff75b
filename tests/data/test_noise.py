"""Span corruption: random_spans_noise_mask, consume_noise_mask, chunks, MLM."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pax_trax import data
from pax_trax.data import inputs as di


def _span_lengths(mask):
    """Lengths of the runs of True in a boolean mask."""
    lengths, run = [], 0
    for value in list(mask) + [False]:
        if value:
            run += 1
        elif run:
            lengths.append(run)
            run = 0
    return lengths


@pytest.mark.parametrize("seed1, seed2", [(0, 1), (5, 5), (17, 3), (42, 99), (7, 0)])
def test_random_spans_noise_mask_density_and_mean_span(seed1, seed2):
    # Trax's test: 15 noise tokens in 5 spans of mean length exactly 3.
    is_noise = di.random_spans_noise_mask(100, 0.15, 3.0, seed1=seed1, seed2=seed2)
    assert is_noise.shape == (100,) and is_noise.dtype == bool
    assert int(is_noise.sum()) == 15
    spans = _span_lengths(is_noise)
    assert len(spans) == 5 and sum(spans) / len(spans) == 3.0
    assert not is_noise[0]  # starts with a non-noise span


@given(st.integers(2, 300), st.floats(0.05, 0.6), st.floats(1.0, 6.0), st.integers(0, 1000))
def test_random_spans_noise_mask_properties(length, density, mean_span, seed):
    mask = di.random_spans_noise_mask(length, density, mean_span, seed1=seed, seed2=seed + 1)
    n_noise = min(max(int(round(length * density)), 1), length - 1)
    n_spans = min(max(int(round(n_noise / mean_span)), 1), n_noise, length - n_noise)
    assert int(mask.sum()) == n_noise
    assert len(_span_lengths(mask)) == n_spans  # spans never touch
    assert not mask[0]


def test_random_spans_noise_mask_seeds_and_edges():
    a = di.random_spans_noise_mask(200, 0.3, 2.0, seed1=1, seed2=2)
    b = di.random_spans_noise_mask(200, 0.3, 2.0, seed1=1, seed2=2)
    c = di.random_spans_noise_mask(200, 0.3, 2.0, seed1=3, seed2=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert di.random_spans_noise_mask(1, seed1=0, seed2=0).tolist() == [False]
    assert di.random_spans_noise_mask(0, seed1=0, seed2=0).shape == (0,)
    with pytest.raises(ValueError, match="random_spans_noise_mask: expected 0 < noise_density < 1, got 1.5"):
        di.random_spans_noise_mask(10, noise_density=1.5)


def test_random_spans_noise_mask_leaves_global_rng_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    di.random_spans_noise_mask(50, seed1=1, seed2=2)
    di.random_spans_noise_mask(50)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_consume_noise_mask_by_hand():
    tokens = np.array([10, 11, 12, 13, 14, 15, 16])
    mask = np.array([0, 1, 1, 0, 0, 1, 0], bool)
    inputs, targets = next(data.consume_noise_mask(vocab_size=100)(iter([(tokens, mask)])))
    assert inputs.tolist() == [10, 99, 13, 14, 98, 16]
    assert targets.tolist() == [99, 11, 12, 98, 15, 97]


def _reconstruct(inputs, targets, vocab_size):
    """Undo span corruption: put each sentinel's target span back into the inputs."""
    spans, current = {}, None
    for token in targets.tolist():
        if token >= vocab_size - 50:  # a sentinel
            current = token
            spans[current] = []
        else:
            spans[current].append(token)
    out = []
    for token in inputs.tolist():
        out.extend(spans[token] if token >= vocab_size - 50 else [token])
    return out


@given(st.integers(2, 60), st.integers(0, 1000))
def test_mask_then_consume_round_trips(length, seed):
    vocab_size = 1000
    tokens = np.arange(1, length + 1)
    stream = data.Serial(
        lambda _: iter([tokens]),
        data.generate_random_noise_mask(0.3, 2.0, seed1=seed, seed2=seed + 7),
        data.consume_noise_mask(vocab_size=vocab_size),
    )
    inputs, targets = next(stream())
    assert _reconstruct(inputs, targets, vocab_size) == tokens.tolist()


def test_generate_random_noise_mask_masks_differ_per_example_but_streams_repeat():
    fn = data.generate_random_noise_mask(0.3, 2.0, seed1=0, seed2=1)
    examples = [np.arange(40)] * 4
    first = [m for _, m in fn(iter(examples))]
    second = [m for _, m in fn(iter(examples))]
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(first[0], m) for m in first[1:])
    with pytest.raises(ValueError, match="generate_random_noise_mask: expected a token sequence, got int 3"):
        next(fn(iter([3])))


def test_generate_sequential_chunks():
    chunks = [c.tolist() for c in data.generate_sequential_chunks(3)(iter([np.arange(8), np.arange(2)]))]
    # A sequence that fits is passed once (Trax repeated it).
    assert chunks == [[0, 1, 2], [3, 4, 5], [6, 7], [0, 1]]
    assert [c.tolist() for c in data.generate_sequential_chunks()(iter([np.arange(5)]))] == [[0, 1, 2, 3, 4]]
    with pytest.raises(ValueError, match="generate_sequential_chunks: expected max_length >= 1"):
        data.generate_sequential_chunks(0)


def test_mlm_pipeline():
    vocab_size = 500
    documents = [np.arange(1, 26), np.arange(100, 110)]
    mlm = data.MLM(
        vocab_size=vocab_size, max_length=10, noise_density=0.2, mean_noise_span_length=2.0, seed=3
    )
    pairs = list(mlm(iter(documents)))
    assert len(pairs) == 3 + 1  # 25 tokens in chunks of 10, then 10 tokens
    chunks = [np.arange(1, 11), np.arange(11, 21), np.arange(21, 26), np.arange(100, 110)]
    for (inputs, targets), chunk in zip(pairs, chunks):
        assert _reconstruct(inputs, targets, vocab_size) == chunk.tolist()
        sentinels = inputs[inputs >= vocab_size - 50].tolist()
        assert sentinels and sentinels == [vocab_size - 1 - k for k in range(len(sentinels))]
    again = list(mlm(iter(documents)))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(pairs, again))  # reproducible with a seed
    with pytest.raises(ValueError, match="MLM: expected a vocab_size"):
        data.MLM()


def test_consume_noise_mask_errors():
    with pytest.raises(ValueError, match=r"consume_noise_mask: expected \(tokens, noise_mask\), got ndarray"):
        next(data.consume_noise_mask(10)(iter([np.arange(3)])))
    with pytest.raises(
        ValueError, match="consume_noise_mask: expected 1-D tokens and a noise mask of the same shape"
    ):
        next(data.consume_noise_mask(10)(iter([(np.arange(3), np.zeros(2, bool))])))
