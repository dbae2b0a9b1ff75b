"""batch, pad_to_max_dims, bucket_by_length, UnBatch, AddLossWeights, Inputs and batcher."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pax_trax import data
from pax_trax.data import inputs as di
from pax_trax.data.batcher import _buckets_for_length

# --- batch ----------------------------------------------------------------


def test_batch_data():
    batch = next(data.batch(((i, i + 1) for i in range(10)), 10))
    assert len(batch) == 2
    assert batch[0].shape == (10,)
    assert batch[1].tolist() == list(range(1, 11))


def test_batch_data_padding():
    dataset = (([1] * (10 - i), i + 1) for i in range(10))
    batch = next(data.batch(dataset, 10))
    assert batch[0].shape == (10, 10)
    np.testing.assert_array_equal(batch[0][-1], [1] + 9 * [0])  # the short row padded
    np.testing.assert_array_equal(batch[0][0], [1] * 10)


@pytest.mark.parametrize("size", [0, -1])
def test_batch_exception_size(size):
    with pytest.raises(ValueError, match=f"batch size must be positive, but is {size}"):
        next(data.batch(((i, i + 1) for i in range(10)), size))
    with pytest.raises(ValueError, match="Batch: batch size must be positive"):
        data.Batch(size)


def test_batch_drops_the_incomplete_last_batch_and_ends_on_empty_stream():
    assert [b[0].tolist() for b in data.batch(((i,) for i in range(5)), 2)] == [[0, 1], [2, 3]]
    assert list(data.batch(iter([]), 3)) == []


def test_batch_bare_arrays():
    batch = next(data.Batch(2)(iter([np.ones(2), np.ones(3)])))
    assert batch.tolist() == [[1, 1, 0], [1, 1, 1]]


@given(
    st.lists(
        hnp.arrays(
            np.int32,
            hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=4),
            elements=st.integers(1, 9),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_batch_pads_with_zeros_and_keeps_values(arrays):
    (stacked,) = next(data.batch(((a,) for a in arrays), len(arrays)))
    rows = max(a.shape[0] for a in arrays)
    cols = max(a.shape[1] for a in arrays)
    assert stacked.shape == (len(arrays), rows, cols)
    for i, a in enumerate(arrays):
        np.testing.assert_array_equal(stacked[i, : a.shape[0], : a.shape[1]], a)
        assert stacked[i].sum() == a.sum()  # everything else is zero padding


@given(
    st.lists(hnp.arrays(np.int64, st.integers(0, 6), elements=st.integers(1, 9)), min_size=1, max_size=6),
    st.sampled_from([None, 4, 8]),
    st.booleans(),
)
def test_sequences_pad_as_np_pad_does(arrays, boundary, strict):
    # 1-D sequences (tokenized text) take a one-copy path; it must equal padding each.
    stacked = data.pad_to_max_dims(arrays, boundary=boundary, strict_pad_on_len=strict)
    longest = max(len(a) for a in arrays)
    assert stacked.shape[0] == len(arrays) and stacked.shape[1] >= longest
    expected = np.stack([np.pad(a, (0, stacked.shape[1] - len(a))) for a in arrays])
    np.testing.assert_array_equal(stacked, expected)
    assert stacked.dtype == np.int64


_COLUMN_VALUES = st.one_of(
    st.integers(-(2**70), 2**70),  # (ints beyond int64 make object arrays: the checked path)
    st.floats(allow_nan=False, width=32),
    st.booleans(),
    st.integers(-5, 5).map(np.int64),
    st.integers(-5, 5).map(np.int32),
    st.floats(-2, 2, width=32).map(np.float32),
    st.text(max_size=3),
    hnp.arrays(np.int64, st.integers(0, 6), elements=st.integers(1, 9)),
    hnp.arrays(np.int32, st.integers(0, 6), elements=st.integers(1, 9)),
    hnp.arrays(np.float32, st.integers(0, 3), elements=st.floats(-1, 1, width=32)),
    hnp.arrays(np.int64, hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), elements=st.integers(1, 9)),
    # (strided views have no contiguous buffer; big-endian and bool bytes join as they are)
    hnp.arrays(np.int64, st.integers(0, 12), elements=st.integers(1, 9)).map(lambda a: a[::2]),
    hnp.arrays(np.dtype(">i4"), st.integers(0, 6), elements=st.integers(-9, 9)),
    hnp.arrays(np.bool_, st.integers(0, 5)),
)


@given(st.lists(st.lists(_COLUMN_VALUES, min_size=2, max_size=2), min_size=1, max_size=5),
       st.sampled_from([None, 4, 8]), st.booleans())
def test_stacked_columns_equal_padding_each_element(rows, boundary, strict):
    # stack_examples stacks columns of scalars and of 1-D arrays without a loop over the
    # examples; every column must come out as the checked per-element path makes it
    # (or fail as it fails).
    from pax_trax.data.batching import _pad_to_max_dims, stack_examples

    examples = [tuple(row) for row in rows]
    expected, expected_error = [], None
    try:
        for i in range(2):
            column = [np.asarray(example[i]) for example in examples]
            expected.append(_pad_to_max_dims(f"B (element {i})", column, boundary, strict))
    except (ValueError, TypeError) as error:
        expected_error = error
    if expected_error is not None:
        with pytest.raises(type(expected_error)):
            stack_examples("B", examples, boundary, strict)
        return
    stacked = stack_examples("B", examples, boundary, strict)
    assert len(stacked) == 2
    for got, want in zip(stacked, expected):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_batch_bad_examples_name_the_combinator():
    with pytest.raises(ValueError, match=r"Batch: expected every example in a batch to be a tuple of 2"):
        next(data.batch(iter([(1, 2), (1, 2, 3)]), 2))
    with pytest.raises(
        ValueError, match=r"Batch \(element 0\): expected tensors of equal rank.*\(3,\), \(2, 2\)"
    ):
        next(data.batch(iter([(np.ones(3), 1), (np.ones((2, 2)), 1)]), 2))
    with pytest.raises(ValueError, match="Batch: expected every example in a batch to be a bare array"):
        next(data.batch(iter([np.ones(3), (np.ones(3),)]), 2))


# --- pad_to_max_dims (values from Trax's tests) ---------------------------


def test_pad_to_max_dims():
    assert di.pad_to_max_dims([np.zeros((3, 10)), np.ones((3, 10))]).shape == (2, 3, 10)
    assert di.pad_to_max_dims([np.zeros((2, 10)), np.ones((3, 9))]).shape == (2, 3, 10)
    assert di.pad_to_max_dims([np.zeros((8, 10)), np.ones((8, 9))], 12).shape == (2, 12, 12)
    # Boundary 12 is more than twice 3: the next power of two (4) is used instead.
    assert di.pad_to_max_dims([np.zeros((2, 10)), np.ones((3, 9))], 12).shape == (2, 4, 12)


def test_pad_to_max_dims_boundary_list():
    tensors = [np.zeros((1, 15, 31)), np.ones((2, 10, 35)), np.ones((4, 2, 3))]
    # No rounding in dim 0, 15 is already a multiple, 35 rounds up to 40.
    assert di.pad_to_max_dims(tensors, boundary=(None, 15, 20)).shape == (3, 4, 15, 40)


def test_pad_to_max_dims_strict_pad_on_len():
    tensors = [np.ones((15,)), np.ones((12,)), np.ones((14,))]
    padded = di.pad_to_max_dims(tensors, boundary=10, strict_pad_on_len=True)
    assert padded.shape == (3, 20)
    assert padded.sum(axis=1).tolist() == [15, 12, 14]


def test_pad_to_max_dims_boundary_rules_by_hand():
    a, b = np.full((3, 3), 5), np.full((3, 3), 6)
    # Every dimension already equals the boundary: stacked as they are.
    np.testing.assert_array_equal(di.pad_to_max_dims([a, b], boundary=3), np.stack([a, b]))
    # dim 0 has 2 != boundary 3 and 2 * 2 >= 3, so it pads up to the boundary.
    padded = di.pad_to_max_dims([np.full((2, 3), 5), np.full((2, 3), 6)], boundary=3)
    assert padded.shape == (2, 3, 3)
    assert padded[:, 2].tolist() == [[0, 0, 0], [0, 0, 0]]
    # Longer than the boundary: the longest length is kept.
    assert di.pad_to_max_dims([np.ones(7), np.ones(5)], boundary=4).shape == (2, 7)
    # Scalars stack into a vector; empty arrays stay empty.
    assert di.pad_to_max_dims([np.int32(1), np.int32(2)]).tolist() == [1, 2]
    assert di.pad_to_max_dims([np.ones(0), np.ones(0)], boundary=3).shape == (2, 0)


def test_pad_to_max_dims_errors():
    with pytest.raises(ValueError, match=r"pad_to_max_dims: expected tensors of equal rank"):
        di.pad_to_max_dims([np.ones(2), np.ones((2, 2))])
    with pytest.raises(ValueError, match=r"ndim\(2\) vs boundary\(\[1, 2, 3\]\)"):
        di.pad_to_max_dims([np.ones((2, 2))], boundary=[1, 2, 3])
    with pytest.raises(ValueError, match="at least one tensor"):
        di.pad_to_max_dims([])


# --- bucket_by_length -----------------------------------------------------


def _pairs(length, n):
    return [(np.ones((length,)), np.ones((length,))) for _ in range(n)]


def test_bucket_by_length_trax():
    batches = list(
        data.bucket_by_length(
            iter(_pairs(5, 6)), lambda x: max(len(x[0]), len(x[1])), [20], [2], strict_pad_on_len=True
        )
    )
    # Three batches of 2 examples each, padded to the boundary 20.
    assert len(batches) == 3
    assert isinstance(batches[0], tuple) and len(batches[0]) == 2
    assert batches[0][0].shape == (2, 20) and batches[0][1].shape == (2, 20)
    assert batches[0][0].sum() == 10


def test_bucket_by_length_routes_examples_to_buckets():
    stream = iter(_pairs(3, 2) + _pairs(6, 1) + _pairs(30, 1) + _pairs(5, 1) + _pairs(2, 1))
    bucketed = data.BucketByLength(boundaries=[4, 8], batch_sizes=[3, 2, 1])(stream)
    shapes = [b[0].shape for b in bucketed]
    # 30 > 8 goes alone to the unbounded bucket; 6 and 5 fill the <= 8 bucket
    # (padded to 8, since 2 * 6 >= 8); 3, 3, 2 fill the <= 4 bucket.
    assert shapes == [(1, 30), (2, 8), (3, 4)]


def test_bucket_by_length_keys_and_axis():
    stream = iter([(np.ones((2, 5)), np.ones(1)), (np.ones((2, 3)), np.ones(9))])
    bucketed = data.BucketByLength([4, 8], [1, 1, 1], length_keys=[0], length_axis=1)(stream)
    # Trax pads every dimension towards the boundary: with boundary 8 the first
    # axis (2, and 2 * 2 < 8) goes to the power of two 2; with boundary 4 it goes to 4.
    assert [b[0].shape for b in bucketed] == [(1, 2, 8), (1, 4, 4)]


def test_bucket_by_length_errors():
    with pytest.raises(
        ValueError, match=r"BucketByLength: expected len\(batch_sizes\) == len\(boundaries\) \+ 1"
    ):
        data.BucketByLength([4, 8], [1])
    with pytest.raises(TypeError, match=r"BucketByLength: expected int boundaries .*got 3.5 in \[3.5\]"):
        data.BucketByLength([3.5], [1, 1])
    with pytest.raises(TypeError, match="bucket_by_length: expected int boundaries"):
        data.bucket_by_length(iter([]), len, [True], [1, 1])
    with pytest.raises(ValueError, match="expected increasing boundaries"):
        data.BucketByLength([8, 4], [1, 1, 1])
    too_long = data.bucket_by_length(iter(_pairs(25, 1)), lambda x: len(x[0]), [20], [2])
    with pytest.raises(ValueError, match="example of length 25 is longer than the last boundary 20"):
        next(too_long)
    not_a_tuple = data.BucketByLength([4], [1, 1], length_keys=[1])(iter([np.ones(3)]))
    assert next(not_a_tuple).shape == (1, 4)  # a bare array is its own length
    missing_key = data.BucketByLength([4], [1, 1])(iter([(np.ones(3),)]))
    with pytest.raises(
        ValueError,
        match=r"BucketByLength: expected an example tuple with an element at index 1, got tuple of 1",
    ):
        next(missing_key)
    scalar = data.BucketByLength([4], [1, 1])(iter([(np.ones(3), 5)]))
    with pytest.raises(ValueError, match=r"BucketByLength: expected example\[1\] to have an axis 0"):
        next(scalar)



def _bucketed_by_hand(examples, length_of, boundaries, batch_sizes):
    """The ids (element 0 of each example) in each batch that bucket_by_length yields, in
    order: each example to the first boundary >= its length, a batch when a bucket is full."""
    buckets = [[] for _ in batch_sizes]
    batches = []
    for example in examples:
        bucket = next((i for i, b in enumerate(boundaries) if length_of(example) <= b),
                      len(boundaries))
        buckets[bucket].append(example[0])
        if len(buckets[bucket]) == batch_sizes[bucket]:
            batches.append(buckets[bucket])
            buckets[bucket] = []
    return batches


@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12), st.booleans()), max_size=40),
       st.lists(st.integers(0, 12), min_size=1, max_size=4).map(sorted),
       st.integers(1, 3), st.sampled_from([[1], [2], [1, 2], [-1]]))
def test_bucket_by_length_routes_as_by_hand(sizes, boundaries, batch_size, length_keys):
    # Examples (id, x, y): x and y arrays of the given lengths, or lists (read through
    # np.shape) where the flag says so; the last bucket unbounded.
    examples = [(i, np.ones(n) if is_array else [1] * n, np.ones(m))
                for i, (n, m, is_array) in enumerate(sizes)]
    batch_sizes = [batch_size] * (len(boundaries) + 1)
    bucketed = data.BucketByLength(boundaries, batch_sizes, length_keys=length_keys)(iter(examples))
    batches = list(bucketed)
    expected = _bucketed_by_hand(
        examples, lambda ex: max(len(ex[k]) for k in length_keys), boundaries, batch_sizes)
    assert [b[0].tolist() for b in batches] == expected
    for batch in batches:  # every example's values are in its batch, padded with zeros
        for row, i in enumerate(batch[0].tolist()):
            x = np.asarray(examples[i][1])
            assert batch[1][row, :len(x)].tolist() == x.tolist()
            assert not batch[1][row, len(x):].any()


@given(st.lists(st.integers(0, 30), max_size=30),
       st.sampled_from([int, np.int64, float, np.float64, lambda n: np.array(n), lambda n: n - 0.5]))
def test_bucket_by_length_takes_any_number_as_a_length(lengths, as_length):
    # A length function's result is compared with the boundaries as a number, whatever its
    # type: a NumPy integer or float, a 0-d array (not hashable), a fraction.
    examples = [(i, np.ones(n)) for i, n in enumerate(lengths)]
    boundaries, batch_sizes = [4, 10, 20], [2, 2, 1, 1]

    def length_of(example):
        return as_length(len(example[1]))

    bucketed = data.bucket_by_length(iter(examples), length_of, boundaries, batch_sizes)
    assert [b[0].tolist() for b in bucketed] == _bucketed_by_hand(
        examples, length_of, boundaries, batch_sizes)


def test_bucket_by_length_with_negative_or_no_boundaries():
    examples = [(i, np.ones(n)) for i, n in enumerate([3, 4, 0, 4, 3, 5])]
    bucketed = data.BucketByLength([-1, 3], [1, 2, 1], length_keys=[1])(iter(examples))
    # No length is <= -1; 0 and the 3s fill the bucket <= 3, each longer one is alone.
    assert [b[0].tolist() for b in bucketed] == [[1], [0, 2], [3], [5]]
    unbounded = data.BucketByLength([], [2], length_keys=[1])(iter(examples))
    assert [b[0].tolist() for b in unbounded] == [[0, 1], [2, 3], [4, 5]]

# --- UnBatch --------------------------------------------------------------


def test_unbatch():
    batched = [
        (np.arange(3 * 2).reshape(3, -1), np.arange(3 * 3).reshape(3, -1), np.arange(3 * 4).reshape(3, -1)),
        (np.arange(4 * 2).reshape(4, -1), np.arange(4 * 3).reshape(4, -1), np.arange(4 * 4).reshape(4, -1)),
    ]
    examples = list(data.UnBatch()(batched))
    assert len(examples) == 3 + 4
    assert [x.tolist() for x in examples[1]] == [[2, 3], [3, 4, 5], [4, 5, 6, 7]]


@given(st.lists(st.integers(0, 5), min_size=4, max_size=12))
def test_batch_then_unbatch_round_trips(values):
    examples = [(np.array([v]), np.array(v)) for v in values]
    round_trip = list(data.UnBatch()(data.batch(iter(examples), 2)))
    kept = len(values) - len(values) % 2
    assert [(x.tolist(), int(y)) for x, y in round_trip] == [([v], v) for v in values[:kept]]


def test_unbatch_errors():
    with pytest.raises(
        ValueError, match=r"UnBatch: expected a tuple of arrays with the same leading \(batch\) size"
    ):
        list(data.UnBatch()([(np.ones(3), np.ones(2))]))
    with pytest.raises(ValueError, match="UnBatch: expected a batch with a leading axis"):
        list(data.UnBatch()([np.float32(1)]))


# --- AddLossWeights -------------------------------------------------------


def test_add_loss_weights_pairs_get_float_ones():
    x, y, w = next(data.AddLossWeights()(iter([(np.ones(2), np.array([[3, 0, 4]]))])))
    assert w.dtype == np.float32 and w.tolist() == [[1.0, 1.0, 1.0]]


def test_add_loss_weights_masks_padding():
    stream = iter([(np.ones(3), np.array([5, 0, 0])), (1, np.array([0, 7, 8]), np.array([0.5, 0.5, 2.0]))])
    weights = [w.tolist() for _, _, w in data.add_loss_weights(stream, id_to_mask=0)]
    assert weights == [[1.0, 0.0, 0.0], [0.0, 0.5, 2.0]]


def test_add_loss_weights_other_examples():
    assert list(data.add_loss_weights(iter([(1,), (1, 2, 3, 4)]))) == [(1,), (1, 2, 3, 4)]
    with pytest.raises(ValueError, match=r"AddLossWeights: cannot mask id 0: expected \(inputs, targets\)"):
        next(data.add_loss_weights(iter([(1, 2, 3, 4)]), id_to_mask=0))
    with pytest.raises(
        ValueError, match=r"AddLossWeights: expected weights shaped like targets \(3,\), got \(2,\)"
    ):
        next(data.add_loss_weights(iter([(1, np.zeros(3), np.ones(2))]), id_to_mask=0))


def test_full_pipeline_from_trax_docs():
    # Trax's IMDB-style pipeline on hand-made tokenized examples.
    rows = [(np.arange(1, n + 1), np.array(n % 2)) for n in (3, 9, 2, 4, 30, 5, 1, 3)]
    pipeline = data.Serial(
        lambda _: iter(rows),
        data.Shuffle(4, seed=0),
        data.FilterByLength(max_length=16, length_keys=[0]),
        data.BucketByLength(boundaries=[4, 16], batch_sizes=[2, 2, 1], length_keys=[0]),
        data.AddLossWeights(id_to_mask=0),
    )
    batches = list(pipeline())
    lengths = sorted(int((x != 0).sum()) for b in batches for x in b[0])
    assert all(x.shape[1] in (4, 16) for x, _, _ in batches)
    assert set(lengths) <= {3, 9, 2, 4, 5, 1}  # 30 is filtered
    for _, y, w in batches:
        assert w.tolist() == (y != 0).astype(np.float32).tolist()


# --- Inputs, make_inputs, batcher, batch_fn --------------------------------


def _batches(n_batches=3, batch=4):
    return [(np.full((batch, 3), i, np.float32), np.full((batch,), i, np.int32)) for i in range(n_batches)]


def test_inputs_reads_shapes_and_uses_each_stream():
    inputs = data.Inputs(
        train_stream=lambda n: iter(_batches()),
        eval_stream=lambda n: iter(_batches(batch=2)),
        train_eval_stream=lambda n: iter(_batches(batch=1)),
    )
    assert (inputs.input_shape, inputs.input_dtype) == ((3,), np.float32)
    assert (inputs.target_shape, inputs.target_dtype) == ((), np.int32)
    assert inputs.example_shape_dtype == ([(4, 3), (4,)], [np.float32, np.int32])
    assert next(inputs.eval_stream(1))[0].shape == (2, 3)
    assert next(inputs.train_eval_stream(1))[0].shape == (1, 3)  # Trax returned the train stream
    only_train = data.Inputs(lambda n: iter(_batches()))
    assert next(only_train.eval_stream(1))[0].shape == (4, 3)


def test_inputs_errors():
    with pytest.raises(ValueError, match="Did you forget the n_devices argument"):
        data.Inputs(iter(_batches()))
    with pytest.raises(ValueError, match="Inputs: the train stream is empty"):
        data.Inputs(lambda n: iter([]))
    with pytest.raises(ValueError, match=r"Inputs: expected batched arrays with a batch axis, got int 3"):
        data.Inputs(lambda n: iter([(3, 4)]))


def test_make_inputs_does_not_lose_the_peeked_batch():
    inputs = data.make_inputs(iter(_batches()), eval_stream=[lambda _: iter(_batches(batch=2))])
    assert [int(x[0, 0]) for x, _ in inputs.train_stream(1)] == [0, 1, 2]
    assert next(inputs.eval_stream(1))[0].shape == (2, 3)
    assert list(data.make_additional_stream([lambda _: iter([1, 2]), lambda g: (x + 1 for x in g)])) == [2, 3]
    assert list(data.make_parallel_stream([lambda: iter("ab"), lambda: iter("xyz")], counters=(1, 2))) == [
        "a",
        "x",
        "y",
        "b",
        "z",
    ]


def test_batch_fn_fixed_shapes_uses_device_count_and_shuffles_batches():
    examples = [(np.full(2, i), np.full(2, i)) for i in range(16)]
    # n_devices=None reads jax.device_count() (2 in the tests): batch 2 * 2.
    batches = list(
        di.batch_fn(iter(examples), True, None, False, batch_size_per_device=2, batch_shuffle_size=2, seed=0)
    )
    assert [x.shape for x, _, _ in batches] == [(4, 2)] * 4
    firsts = [int(x[0, 0]) for x, _, _ in batches]
    assert sorted(firsts) == [0, 4, 8, 12] and firsts != [0, 4, 8, 12]
    eval_batches = list(di.batch_fn(iter(examples), False, 2, False, eval_batch_size=5))
    assert [x.shape for x, _, _ in eval_batches] == [(4, 2)] * 4  # 5 rounded down to a multiple of 2


def test_batch_fn_heuristic_buckets():
    # bucket_length 8, batch 4: boundaries [2, 4, 8, ...], sizes [16, 8, 4, ...];
    # targets of length 3 go to the <= 4 bucket of batch size 8, padded to 4.
    examples = [(np.ones(3, np.int32), np.ones(3, np.int32))] * 8
    ((x, y, w),) = list(di.batch_fn(iter(examples), True, 1, True, batch_size=4, bucket_length=8))
    assert x.shape == (8, 4) and w[:, 3].tolist() == [1.0] * 8
    masked = next(di.batch_fn(iter(examples), True, 1, True, batch_size=4, bucket_length=8, id_to_mask=0))
    assert masked[2][0].tolist() == [1.0, 1.0, 1.0, 0.0]
    # Bucketing on the input length too.
    long_inputs = [(np.ones(7, np.int32), np.ones(1, np.int32))] * 4
    batch = next(
        di.batch_fn(
            iter(long_inputs),
            True,
            1,
            True,
            batch_size=4,
            bucket_length=8,
            buckets_include_inputs_in_length=True,
        )
    )
    assert batch[0].shape == (4, 8)


def test_buckets_for_length_matches_trax():
    assert _buckets_for_length(32, 32, None, 1, True) == (
        [8, 16, 32, 64, 128, 256, 512],
        [128, 64, 32, 16, 8, 4, 2, 1],
    )
    assert _buckets_for_length(32, 32, 100, 1, False) == (
        [8, 16, 32, 64, 100, 100],
        [128, 64, 32, 16, 8, 1, 1],
    )
    # Trax's list was one short in this case (an IndexError on long examples).
    boundaries, sizes = _buckets_for_length(32, 32, None, 2, False)
    assert boundaries == [8, 16, 32, 64, 128, 256, 512, 1024, 1024]
    assert sizes == [128, 64, 32, 16, 8, 4, 2, 2, 2, 2]
    assert len(sizes) == len(boundaries) + 1


def test_batcher_builds_inputs_from_example_streams():
    train = lambda: iter([(np.ones(3, np.int32), np.ones(3, np.int32))] * 9)  # noqa: E731
    evaluate = lambda: iter([(np.ones(5, np.int32), np.ones(5, np.int32))] * 9)  # noqa: E731
    inputs = di.batcher(lambda: (train, evaluate), variable_shapes=False, batch_size=4, eval_batch_size=2)
    assert inputs.input_shape == (3,)
    assert [x.shape for x in next(inputs.train_stream(1))] == [(4, 3)] * 3
    assert next(inputs.eval_stream(1))[0].shape == (2, 5)
    assert next(inputs.train_eval_stream(1))[0].shape == (2, 3)
    with pytest.raises(
        ValueError, match=r"batcher: expected data_streams = \(train_stream_fn, eval_stream_fn\)"
    ):
        di.batcher([train])


@given(st.lists(hnp.arrays(np.int64, st.integers(0, 12), elements=st.integers(-9, 9)),
                min_size=1, max_size=8),
       st.sampled_from([lambda a: a, lambda a: a[::2], lambda a: a.astype(">i8"),
                        lambda a: a.astype(np.float16), lambda a: a != 0]))
def test_stacked_1d_columns_of_views_and_other_byte_orders(arrays, view):
    # The 1-D column path joins the arrays' bytes when they are contiguous, else
    # concatenates them: equal to padding each element either way.
    from pax_trax.data.batching import _pad_to_max_dims, stack_examples

    column = [view(a) for a in arrays]
    (got,) = stack_examples("B", [(a,) for a in column], None, False)
    want = _pad_to_max_dims("B", column, None, False)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
