"""Synthetic inputs: digits helpers, addition, sequence copy, random and sine inputs."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pax_trax import data
from pax_trax.data import inputs as di

# --- lower-endian digits --------------------------------------------------


@given(st.integers(0, 10**30), st.integers(2, 40))
def test_number_lower_endian_round_trip(n, base):
    digits = di.number_to_lower_endian(n, base)
    assert all(0 <= d < base for d in digits)
    assert di.lower_endian_to_number(digits, base) == n
    if base <= 36:  # NumPy's independent conversion (big-endian, digits 0-9A-Z)
        assert digits == [int(c, 36) for c in reversed(np.base_repr(n, base))]


@given(st.lists(st.integers(0, 6), min_size=1, max_size=12))
def test_lower_endian_to_number_matches_positional_value(digits):
    assert di.lower_endian_to_number(digits, 7) == int("".join(map(str, reversed(digits))), 7)


@given(st.integers(1, 15), st.integers(2, 20), st.integers(0, 10**6))
def test_random_number_lower_endian(length, base, seed):
    digits = di.random_number_lower_endian(length, base, rng=seed)
    assert len(digits) == length and all(0 <= d < base for d in digits)
    if length > 1:
        assert digits[-1] != 0  # no leading zero: the number really has `length` digits
    number = di.lower_endian_to_number(digits, base)
    assert di.number_to_lower_endian(number, base) == digits


def test_digit_helpers_by_hand_and_errors():
    assert di.number_to_lower_endian(0, 10) == [0]
    assert di.number_to_lower_endian(6, 2) == [0, 1, 1]
    assert di.lower_endian_to_number([0, 1, 1], 2) == 6
    with pytest.raises(ValueError, match="number_to_lower_endian: expected n >= 0 and base >= 2"):
        di.number_to_lower_endian(5, 1)


# --- addition -------------------------------------------------------------


def _decode_decoder_only(row, weights, base):
    """Parses <S> a + b <S> sum (tokens are digits + 1) and checks the weights."""
    plus, start = base + 1, base + 2
    tokens = row.tolist()
    assert tokens[0] == start
    second_start = tokens.index(start, 1)
    a_tokens, b_tokens = [], []
    plus_at = tokens.index(plus)
    a_tokens, b_tokens = tokens[1:plus_at], tokens[plus_at + 1 : second_start]
    sum_tokens = [t for t in tokens[second_start + 1 :] if t != 0]
    n_content = second_start + 1 + len(sum_tokens)
    assert weights.tolist() == [0.0] * (second_start + 1) + [1.0] * len(sum_tokens) + [0.0] * (
        len(tokens) - n_content
    )
    to_number = lambda ts: di.lower_endian_to_number([t - 1 for t in ts], base)  # noqa: E731
    return to_number(a_tokens), to_number(b_tokens), to_number(sum_tokens)


def test_addition_input_stream_actually_adds():
    vocab_size = 13  # base 10
    stream = di.addition_input_stream(vocab_size, 8, 3, 12, pad_to_multiple=16, seed=0)
    for _ in range(3):
        x, y, w = next(stream)
        assert x.shape[0] == 8 and x.shape[1] % 16 == 0 and x.dtype == np.int32
        np.testing.assert_array_equal(x, y)
        assert x.max() <= vocab_size - 1
        for row, weights in zip(x, w):
            a, b, total = _decode_decoder_only(row, weights, base=10)
            assert a + b == total


def test_addition_encdec_actually_adds():
    stream = di.addition_input_stream(13, 16, 3, 10, pad_to_multiple=10, encdec=True, seed=1)
    x, y, w = next(stream)
    assert x.shape == (16, 10) and y.shape == (16, 10)
    for row, target, weights in zip(x, y, w):
        tokens = [t - 1 for t in row.tolist() if t != 0]
        plus_at = tokens.index(10)
        a = di.lower_endian_to_number(tokens[:plus_at], 10)
        b = di.lower_endian_to_number(tokens[plus_at + 1 :], 10)
        total_digits = [t - 1 for t in target.tolist() if t != 0]
        assert a + b == di.lower_endian_to_number(total_digits, 10)
        assert weights.tolist() == [1.0] * len(total_digits) + [0.0] * (10 - len(total_digits))


def test_addition_inputs_constraints():
    # Trax's test: every stream's batches are exactly seq_length long.
    seq_length = 64
    inputs = di.addition_inputs(
        vocab_size=5,
        batch_size=32,
        train_length=seq_length,
        eval_min_length=seq_length,
        eval_max_length=seq_length,
        pad_to_multiple=seq_length,
        encdec=True,
        seed=0,
    )
    for stream in (inputs.train_stream(1), inputs.eval_stream(1)):
        for _ in range(3):
            x, y, weights = next(stream)
            assert x.shape[1] == y.shape[1] == weights.shape[1] == seq_length


@pytest.mark.parametrize("encdec", [True, False])
def test_addition_inputs_exceptions(encdec):
    with pytest.raises(ValueError, match="maximum/minimum length must be at least 3"):
        di.addition_inputs(
            vocab_size=5,
            batch_size=4,
            train_length=2,
            eval_min_length=1,
            eval_max_length=64,
            pad_to_multiple=64,
            encdec=encdec,
        )
    with pytest.raises(ValueError, match="maximum/minimum length must be at least 3"):
        di.addition_inputs(
            vocab_size=5,
            batch_size=4,
            train_length=64,
            eval_min_length=1,
            eval_max_length=64,
            pad_to_multiple=64,
            encdec=encdec,
        )
    with pytest.raises(ValueError, match="addition_input_stream: expected vocab_size >= 5, got 4"):
        di.addition_input_stream(4, 2, 3, 5)


def test_addition_inputs_seeded_streams_repeat():
    a = next(di.addition_inputs(13, 4, 8, 8, 8, pad_to_multiple=8, seed=5).train_stream(1))
    b = next(di.addition_inputs(13, 4, 8, 8, 8, pad_to_multiple=8, seed=5).train_stream(1))
    c = next(di.addition_inputs(13, 4, 8, 8, 8, pad_to_multiple=8, seed=6).train_stream(1))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


# --- sequence copy --------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
def test_sequence_copy_targets_copy_the_inputs(reverse):
    vocab_size = 7
    inputs = di.sequence_copy_inputs(
        vocab_size,
        4,
        train_length=5,
        eval_min_length=6,
        eval_max_length=8,
        reverse=reverse,
        pad_to_multiple=8,
        seed=0,
    )
    for stream, lengths in ((inputs.train_stream(1), range(4, 11, 2)), (inputs.eval_stream(1), (14, 16))):
        for _ in range(5):
            x, y, w = next(stream)
            np.testing.assert_array_equal(x, y)
            assert x.shape[0] == 4 and x.shape[1] % 8 == 0
            n = int(w[0].sum())  # the length of w
            assert 2 * n + 2 in lengths
            for row, weights in zip(x, w):
                first, second = row[1 : n + 1], row[n + 2 : 2 * n + 2]
                assert row[0] == 0 and row[n + 1] == 0 and (row[2 * n + 2 :] == 0).all()
                np.testing.assert_array_equal(second, first[::-1] if reverse else first)
                assert ((first >= 1) & (first <= vocab_size - 2)).all()
                assert weights.tolist() == [0.0] * (n + 2) + [1.0] * n + [0.0] * (len(row) - 2 * n - 2)


def test_simple_sequence_copy_inputs():
    inputs = di.simple_sequence_copy_inputs(
        6, 3, train_length=4, eval_min_length=5, eval_max_length=6, pad_to_multiple=4, seed=0
    )
    seen_lengths = set()
    stream = inputs.train_stream(1)
    for _ in range(20):
        x, y, w = next(stream)
        np.testing.assert_array_equal(x, y)
        n = int(w[0].sum())
        seen_lengths.add(n)
        assert x.shape == (3, 4) and (x[:, :n] >= 1).all() and (x[:, n:] == 0).all()
    assert seen_lengths == {1, 2, 3, 4}
    # With an int seed every new stream starts the same way.
    np.testing.assert_array_equal(next(inputs.train_stream(1))[0], next(inputs.train_stream(1))[0])
    x, _, w = next(inputs.eval_stream(1))
    assert x.shape == (3, 8) and int(w[0].sum()) in (5, 6)


def test_copy_inputs_errors():
    with pytest.raises(ValueError, match="sequence_copy_inputs: expected train_length >= 2"):
        di.sequence_copy_inputs(5, 2, train_length=1, eval_min_length=2, eval_max_length=4)
    with pytest.raises(ValueError, match="simple_sequence_copy_inputs: expected vocab_size >= 3"):
        di.simple_sequence_copy_inputs(2, 2, 3, 1, 2)


# --- random and sine inputs -----------------------------------------------


def test_random_inputs_shapes_ranges_and_seed():
    inputs = data.random_inputs((4, 6), input_range=(0, 1), output_shape=(4,), output_range=(3, 3), seed=0)
    assert inputs.input_shape == (6,) and inputs.target_shape == () and inputs.input_dtype == np.int32
    x, y = next(inputs.train_stream(2))
    assert set(np.unique(x).tolist()) == {0, 1}  # the range is inclusive
    assert y.tolist() == [3, 3, 3, 3]
    again, _ = next(data.random_inputs((4, 6), input_range=(0, 1), output_shape=(4,), seed=0).train_stream(1))
    np.testing.assert_array_equal(x, again)
    floats = data.random_inputs((2, 3), np.float32, (-1.0, 1.0), (2, 3), np.float32, (5.0, 6.0), seed=1)
    fx, fy = next(floats.train_stream(1))
    assert fx.dtype == np.float32 and (np.abs(fx) <= 1).all() and ((fy >= 5) & (fy <= 6)).all()
    with pytest.raises(
        ValueError,
        match=r"random_inputs: expected the batch size input_shape\[0\] to be divisible by n_devices=3",
    ):
        next(inputs.train_stream(3))
    with pytest.raises(ValueError, match="random_inputs: expected input_shape and output_shape"):
        data.random_inputs((2, 3))


def test_sine_inputs_are_sinusoids():
    inputs = data.sine_inputs(batch_size=3, length=12, seed=0)
    train_batch = next(inputs.train_stream(n_devices=1))
    eval_batch = next(inputs.eval_stream(n_devices=1))
    assert len(train_batch) == 4 and len(eval_batch) == 4  # (obs, act, obs, mask)
    for x, y in zip(train_batch, eval_batch):
        assert x.shape == (3, 12) and y.shape == (3, 12)
    obs, act, obs2, mask = train_batch
    assert obs is obs2 and act.dtype == np.int32 and not act.any() and (mask == 1).all()
    assert not np.allclose(obs, eval_batch[0])
    # s_t = sin((t - phase) / period) satisfies s_{t+1} + s_{t-1} = 2 cos(1 / period) s_t.
    for row in obs.astype(np.float64):
        mid = np.abs(row[1:-1]) > 0.2
        ratios = ((row[2:] + row[:-2]) / (2 * row[1:-1]))[mid]
        assert np.ptp(ratios) < 1e-4 and -1 <= ratios[0] <= 1
