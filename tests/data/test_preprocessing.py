"""Filters, truncation, padding, LM inputs, casts, appended values, PrefixLM."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pax_trax import data
from pax_trax.data import inputs as di

# --- FilterEmptyExamples / FilterByLength ---------------------------------


def test_filter_empty_examples():
    examples = [(np.zeros((0,)), np.ones((1, 5))), (np.zeros((1, 5)), np.ones((1, 5)))]
    filtered = next(di.FilterEmptyExamples()(examples))
    assert filtered[0].shape == (1, 5) and filtered[1].shape == (1, 5)
    only_axis_1 = next(di.FilterEmptyExamples(axes=[1])(examples))
    assert only_axis_1[0].shape == (0,) and only_axis_1[1].shape == (1, 5)
    assert list(di.FilterEmptyExamples()(iter([np.zeros(0), np.ones(2)])))[0].tolist() == [1.0, 1.0]
    assert list(di.FilterEmptyExamples()(iter([]))) == []


def test_filter_by_length():
    examples = [(np.ones(n), np.ones(m)) for n, m in [(2, 2), (5, 1), (1, 6), (3, 3), (0, 0)]]
    kept = list(data.FilterByLength(max_length=4, min_length=1)(iter(examples)))
    assert [(len(x), len(y)) for x, y in kept] == [(2, 2), (3, 3)]
    only_inputs = list(data.FilterByLength(max_length=4, length_keys=[0])(iter(examples)))
    assert [(len(x), len(y)) for x, y in only_inputs] == [(2, 2), (1, 6), (3, 3), (0, 0)]
    no_max = list(data.FilterByLength(None, min_length=5)(iter(examples)))
    assert [(len(x), len(y)) for x, y in no_max] == [(5, 1), (1, 6)]
    on_axis_1 = list(
        data.FilterByLength(2, length_keys=[0], length_axis=1)(iter([(np.ones((5, 2)),), (np.ones((1, 3)),)]))
    )
    assert [x.shape for (x,) in on_axis_1] == [(5, 2)]



@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.booleans()), max_size=20),
       st.integers(0, 9), st.integers(0, 9), st.sampled_from([[0], [1], [0, 1], [-1]]))
def test_filter_by_length_keeps_as_by_hand(sizes, low, high, length_keys):
    # Arrays, or lists (read through np.shape) where the flag says so.
    examples = [(np.ones(n) if is_array else [1] * n, np.ones(m)) for n, m, is_array in sizes]
    kept = list(data.FilterByLength(high, low, length_keys=length_keys)(iter(examples)))
    assert kept == [ex for ex in examples if low <= max(len(ex[k]) for k in length_keys) <= high]

def test_filter_by_length_errors():
    with pytest.raises(ValueError, match="FilterByLength: expected max_length or min_length"):
        data.FilterByLength(None, None)
    with pytest.raises(
        ValueError,
        match=r"FilterByLength: expected an example tuple with an element at index 1, "
              r"got tuple of 1: \(ndarray float64 \(3,\)\)",
    ):
        next(data.FilterByLength(4)(iter([(np.ones(3),)])))
    with pytest.raises(
        ValueError,
        match=r"FilterByLength: expected example\[0\] to have an axis 1 \(rank >= 2\), got ndarray float64 \(3,\)",
    ):
        next(data.FilterByLength(4, length_keys=[0], length_axis=1)(iter([(np.ones(3),)])))


# --- TruncateToLength -----------------------------------------------------


def _pairs_forever():
    while True:
        yield (np.zeros((1, 5)), np.ones((1, 5)))


@pytest.mark.parametrize(
    "len_map, out_shapes",
    [
        (None, ((1, 5), (1, 5))),
        ({0: (1, 77), 1: (1, 88)}, ((1, 5), (1, 5))),
        ({0: (1, 3), 1: (1, 2)}, ((1, 3), (1, 2))),
    ],
)
def test_truncate_to_length_len_map(len_map, out_shapes):
    y0, y1 = next(data.TruncateToLength(len_map=len_map)(_pairs_forever()))
    assert (y0.shape, y1.shape) == out_shapes


def test_truncate_to_length_slices_and_never_adds_values():
    # Trax's np.resize gave (1, 4, 6) here, wrapping values around; slicing
    # keeps the leading part of each axis and never invents values.
    x = np.arange(21).reshape((1, 21, 1))
    (y,) = next(data.TruncateToLength(len_map={0: (1, 4, 6)})(iter([x])))
    assert y.shape == (1, 4, 1)
    assert y.ravel().tolist() == [0, 1, 2, 3]
    grid = np.arange(12).reshape(3, 4)
    (z, t) = next(data.TruncateToLength({0: (2, 2), 1: 1})(iter([(grid, np.array([7, 8]))])))
    assert z.tolist() == [[0, 1], [4, 5]] and t.tolist() == [7]


def test_truncate_to_length_errors():
    with pytest.raises(ValueError, match=r"TruncateToLength: expected example\[0\] to have rank >= 2"):
        next(data.TruncateToLength({0: (1, 2)})(iter([(np.ones(3),)])))
    with pytest.raises(ValueError, match="TruncateToLength: expected an example tuple of arrays, got int 3"):
        next(data.TruncateToLength({0: 1})(iter([3])))
    with pytest.raises(
        ValueError, match=r"TruncateToLength: expected an example tuple with an element at index 1"
    ):
        next(data.TruncateToLength({1: 1})(iter([(np.ones(3),)])))


# --- PadToLength ----------------------------------------------------------


def test_pad_to_length():
    padded = next(di.PadToLength(len_map={0: 10, 1: 11}, pad_value={0: 0, 1: 1})([(np.zeros(5), np.ones(3))]))
    assert padded[0].shape == (10,) and padded[1].shape == (11,)
    assert padded[1].tolist() == [1.0] * 11  # padded with its own pad value
    multiple = di.PadToLength(len_map={0: 10, 1: 10}, pad_value={0: 0, 1: 1}, multiple=True)
    padded2 = next(multiple([(np.zeros(15), np.ones(20))]))
    assert padded2[0].shape == (20,) and padded2[1].shape == (20,)


def test_pad_to_length_multiple_pads_to_the_next_multiple():
    # Trax padded by len % 10 here (13 -> 16); the documented meaning is 20.
    (x,) = next(di.PadToLength({0: 10}, multiple=True)(iter([(np.arange(13),)])))
    assert x.shape == (20,) and x[13:].tolist() == [0] * 7


def test_pad_to_length_longer_examples_bare_arrays_and_rank_2():
    (x, y) = next(di.PadToLength({0: 3, 1: 4}, pad_value=9)(iter([(np.arange(5), np.ones((2, 2)))])))
    assert x.tolist() == [0, 1, 2, 3, 4]  # longer: unchanged, not truncated
    assert y.tolist() == [[1, 1], [1, 1], [9, 9], [9, 9]]  # only the length axis is padded
    assert next(di.PadToLength({0: 4}, pad_value=-1)(iter([np.array([5, 6])]))).tolist() == [5, 6, -1, -1]


def test_pad_to_length_errors():
    with pytest.raises(ValueError, match="PadToLength: len_map parameter should be provided"):
        di.PadToLength()
    with pytest.raises(ValueError, match="PadToLength: expected len_map\\[0\\] to be a positive int"):
        di.PadToLength({0: 0})
    with pytest.raises(ValueError, match=r"PadToLength: expected a pad_value for key 1"):
        next(di.PadToLength({1: 4}, pad_value={0: 0})(iter([(np.ones(2), np.ones(2))])))
    with pytest.raises(
        ValueError,
        match=r"PadToLength \(example\[0\]\): expected an array with a length axis, got ndarray int64 \(\)",
    ):
        next(di.PadToLength({0: 4})(iter([(np.int64(3),)])))
    with pytest.raises(
        ValueError, match="PadToLength: expected an example tuple or an array, got str 'text'"
    ):
        next(di.PadToLength({0: 4})(iter(["text"])))


# --- ConcatenateToLMInput -------------------------------------------------


def test_concatenate_lm_input():
    lm_input = next(di.ConcatenateToLMInput(pad_to_length=10)([(np.zeros(5), np.ones(3))]))
    assert [a.shape for a in lm_input] == [(10,)] * 3
    assert lm_input[2].tolist() == [0.0] * 5 + [1.0] * 3 + [0.0] * 2
    assert lm_input[0].tolist() == [0.0] * 5 + [1.0] * 3 + [0.0] * 2
    unpadded = next(di.ConcatenateToLMInput()([(np.array([4, 5, 6, 7, 8]), np.array([1, 2, 3]))]))
    assert [a.shape for a in unpadded] == [(8,)] * 3
    assert unpadded[0].tolist() == [4, 5, 6, 7, 8, 1, 2, 3]
    assert unpadded[2].tolist() == [0.0] * 5 + [1.0] * 3


def test_concatenate_lm_input_single_and_errors():
    x = np.array([1, 2])
    assert [a.tolist() for a in next(di.ConcatenateToLMInput()(iter([(x,)])))] == [[1, 2], [1, 2]]
    assert [a.tolist() for a in next(di.ConcatenateToLMInput()(iter([x])))] == [[1, 2], [1, 2]]
    with pytest.raises(
        ValueError, match=r"ConcatenateToLMInput: example lengths \(5, 3\) longer than pad_to_length \(6\)"
    ):
        next(di.ConcatenateToLMInput(6)(iter([(np.zeros(5), np.ones(3))])))
    with pytest.raises(
        ValueError,
        match="ConcatenateToLMInput: expected \\(input, target\\), \\(x,\\) or an array, got tuple of 3",
    ):
        next(di.ConcatenateToLMInput()(iter([(x, x, x)])))
    with pytest.raises(ValueError, match="ConcatenateToLMInput: expected 1-D"):
        next(di.ConcatenateToLMInput()(iter([(np.ones((2, 2)), x)])))


# --- CastTo / AppendValue -------------------------------------------------


def test_cast_to():
    x, y, w = next(di.CastTo()(iter([(np.array([1.7, 2.2]), np.array([3], np.int64), np.array([0.5]))])))
    assert x.dtype == np.int32 and x.tolist() == [1, 2]
    assert y.dtype == np.int32
    assert w.dtype == np.float64  # index 2 is not cast by default
    (z,) = next(di.CastTo(np.float32, indices=(0,))(iter([(np.array([1, 2]),)])))
    assert z.dtype == np.float32
    with pytest.raises(ValueError, match="CastTo: expected an example tuple, got ndarray"):
        next(di.CastTo()(iter([np.ones(2)])))
    with pytest.raises(ValueError, match="CastTo: expected an example tuple with an element at index 1"):
        next(di.CastTo()(iter([(np.ones(2),)])))


def test_append_value():
    examples = [(np.zeros((1, 5)), np.ones((1, 5)))]
    unmodified = next(di.AppendValue()(examples))
    assert unmodified[0].shape == (1, 5) and unmodified[1].shape == (1, 5)
    appended = next(di.AppendValue({0: [[5]], 1: [[4]]})(examples))
    assert appended[0].tolist() == [[0.0] * 5 + [5.0]]
    assert appended[1].tolist() == [[1.0] * 5 + [4.0]]
    eos = next(di.AppendValue({0: 1, 1: [1]})(iter([(np.array([7, 8]), np.array([9]))])))
    assert [a.tolist() for a in eos] == [[7, 8, 1], [9, 1]]
    assert next(di.AppendValue({0: [3]})(iter([np.array([1, 2])]))).tolist() == [1, 2, 3]
    with pytest.raises(
        ValueError,
        match=r"AppendValue \(example\[0\]\): expected the appended value to have the element's rank 2",
    ):
        next(di.AppendValue({0: [5]})(iter(examples)))


# --- PrefixLM -------------------------------------------------------------


@pytest.mark.parametrize(
    "tokens, expected",
    [
        ([1, 2, 3, 4, 5, 6, 7, 8], [([1, 2], [3, 4, 5]), ([6, 7], [8])]),  # last output short
        ([1, 2, 3, 4, 5, 6], [([1, 2], [3, 4, 5])]),  # last input short
        ([1, 2, 3, 4, 5, 6, 7], [([1, 2], [3, 4, 5])]),  # last input but no output
        ([1, 2], []),
        ([], []),
    ],
)
def test_prefix_lm(tokens, expected):
    assert list(data.PrefixLM(input_length=2, output_length=3)([tokens])) == expected


def test_prefix_lm_arrays_and_errors():
    ((x, y),) = list(data.PrefixLM(2, 3)(iter([np.arange(4)])))
    assert x.tolist() == [0, 1] and y.tolist() == [2, 3]
    with pytest.raises(ValueError, match="PrefixLM: expected a token sequence, got int 5"):
        list(data.PrefixLM(2, 3)(iter([5])))
    with pytest.raises(ValueError, match="PrefixLM: expected positive input_length"):
        data.PrefixLM(0, 3)
