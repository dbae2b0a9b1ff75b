"""Serial, Parallel, Shuffle, Log, UniformlySeek: Trax's expected sequences and properties."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pax_trax import data
from pax_trax.data import inputs as di

# --- Serial ---------------------------------------------------------------


def test_serial_shuffle_batch():
    dataset = lambda _: ((i, i + 1) for i in range(10))  # noqa: E731
    batches = data.Serial(dataset, data.Shuffle(3, seed=0), data.Batch(10))
    batch = next(batches())
    assert len(batch) == 2
    assert batch[0].shape == (10,)
    assert sorted(batch[0].tolist()) == list(range(10))
    np.testing.assert_array_equal(batch[1], batch[0] + 1)  # pairs stay together


def test_serial_composes_and_flattens_nested_lists():
    dataset = lambda _: ((i, i + 1) for i in range(10))  # noqa: E731
    serial1 = data.Serial(dataset, data.Shuffle(3, seed=1))
    batches = data.Serial(serial1, data.Batch(10))
    assert next(batches())[0].shape == (10,)
    nested = data.Serial([dataset, [lambda g: ((x * 2, y) for x, y in g)]], data.Batch(2))
    assert next(nested())[0].tolist() == [0, 2]


def test_serial_with_python():
    dataset = lambda _: ((i, i + 1) for i in range(10))  # noqa: E731
    batches = data.Serial(
        dataset,
        lambda g: map(lambda x: (x[0], x[1] + 1), g),
        lambda g: filter(lambda x: x[0] % 2 == 1, g),
        data.Batch(2),
    )
    xs, ys = next(batches())
    # First tuple after filtering is (1, 3) = (1, 2+1); the second (3, 5).
    assert xs.tolist() == [1, 3]
    assert ys.tolist() == [3, 5]


def test_serial_rejects_non_callables():
    with pytest.raises(TypeError, match=r"Serial: expected stream functions.*int: 3"):
        data.Serial(lambda _: iter([]), 3)


# --- Parallel (sequences from Trax's inputs_test.py) ----------------------


def _take(generator, n):
    return list(itertools.islice(generator, n))


def test_parallel_uniform():
    parallel = data.Parallel([lambda: iter(range(10)), lambda: iter(range(10, 20))])
    assert _take(parallel(), 6) == [0, 10, 1, 11, 2, 12]


def test_parallel_with_gen_not_none():
    parallel = data.Parallel([lambda _: iter(range(10)), lambda _: iter(range(10, 20))])

    def test_generator():
        yield 0

    assert _take(parallel(gen=test_generator), 6) == [0, 10, 1, 11, 2, 12]


def test_parallel_with_weights():
    parallel = data.Parallel([lambda: iter(range(10)), lambda: iter(range(10, 20))], counters=(2, 1))
    assert _take(parallel(), 10) == [0, 10, 1, 11, 2, 3, 12, 4, 5, 13]


def test_parallel_with_weights_and_minimum():
    parallel = data.Parallel(
        [lambda: iter(range(10)), lambda: iter(range(10, 110))],
        counters=(10, 100),
        reweight_by_minimum=True,
    )
    assert _take(parallel(), 23) == [0, *range(10, 20), 1, *range(20, 30), 2]


def test_parallel_with_weights_three_datasets():
    parallel = data.Parallel(
        [lambda: iter(range(10)), lambda: iter(range(10, 20)), lambda: iter(range(20, 30))],
        counters=(2, 1, 3),
    )
    assert _take(parallel(), 13) == [0, 10, 20, 1, 21, 22, 2, 11, 23, 3, 24, 25, 4]


def test_parallel_with_gradual_reweighting():
    parallel = data.Parallel(
        [
            lambda: itertools.cycle(range(10, 30)),
            lambda: itertools.cycle(range(1)),
            lambda: itertools.cycle(range(30, 70)),
        ],
        counters=(20, 1, 40),
        gradually_reweight=True,
    )
    expected = []
    for _ in range(3):
        expected.append(0)
        for i in range(20):
            expected += [10 + i, 30 + 2 * i, 30 + 2 * i + 1]
    assert _take(parallel(), len(expected)) == expected


def test_parallel_with_gradual_reweighting_remainders():
    parallel = data.Parallel(
        [
            lambda: itertools.cycle(range(10, 30)),
            lambda: itertools.cycle(range(1)),
            lambda: itertools.cycle(range(30, 80)),
        ],
        counters=(20, 1, 50),
        gradually_reweight=True,
        use_remainders=True,
    )
    expected = []
    for _ in range(3):
        expected.append(0)
        for i in range(20):
            expected += [10 + i, 30 + 2 * i, 30 + 2 * i + 1]
        expected += list(range(70, 80))  # the remainder of the third dataset
    assert _take(parallel(), len(expected)) == expected


def test_parallel_with_gradual_reweighting_remainders_big():
    parallel = data.Parallel(
        [
            lambda: itertools.cycle(range(10, 30)),
            lambda: itertools.cycle(range(1)),
            lambda: itertools.cycle(range(100, 220)),
            lambda: itertools.cycle(range(30, 80)),
        ],
        counters=(20, 1, 120, 50),
        gradually_reweight=True,
        use_remainders=True,
    )
    expected = []
    for _ in range(3):
        expected.append(0)
        for i in range(20):
            expected.append(10 + i)
            for j in range(2):
                expected.append(30 + 2 * i + j)
                expected += [100 + 4 * i + 2 * j + k for k in range(2)]
        expected += list(range(70, 80)) + list(range(180, 220))
    assert _take(parallel(), len(expected)) == expected


def test_stack_parallel():
    level0 = data.Parallel([lambda: iter(range(10)), lambda: iter(range(10, 20))])
    level1 = data.Parallel([level0, lambda: iter(range(20, 30))])
    assert _take(level1(), 11) == [0, 20, 10, 21, 1, 22, 11, 23, 2, 24, 12]


def test_parallel_with_zero_counters():
    parallel = data.Parallel(
        [lambda: iter(range(10)), lambda: iter(range(10, 20)), lambda: iter(range(20, 30))],
        counters=[1, 0, 1],
    )
    assert _take(parallel(), 8) == [0, 20, 1, 21, 2, 22, 3, 23]


@pytest.mark.parametrize("gradually_reweight", [False, True])
def test_parallel_ends_cleanly_when_a_stream_ends(gradually_reweight):
    parallel = data.Parallel(
        [lambda: iter(range(2)), lambda: iter(range(10, 20))], gradually_reweight=gradually_reweight
    )
    assert list(parallel()) == [0, 10, 1, 11]
    empty = data.Parallel([lambda: iter([]), lambda: iter(range(3))])
    assert list(empty()) == []


@given(st.lists(st.integers(1, 5), min_size=1, max_size=4))
def test_parallel_counters_give_the_proportions(counters):
    fns = [lambda k=k: itertools.repeat(k) for k in range(len(counters))]
    stream = data.Parallel(fns, counters=counters)()
    rounds = 3
    drawn = _take(stream, rounds * sum(counters))
    assert [drawn.count(k) for k in range(len(counters))] == [rounds * c for c in counters]


def test_parallel_errors():
    with pytest.raises(ValueError, match="Parallel: expected a non-empty list"):
        data.Parallel([])
    with pytest.raises(ValueError, match=r"Parallel: expected one counter per stream function \(2\), got 3"):
        data.Parallel([lambda: iter([]), lambda: iter([])], counters=(1, 2, 3))
    with pytest.raises(ValueError, match="non-negative counters"):
        data.Parallel([lambda: iter([])], counters=(-1,))
    with pytest.raises(ValueError, match="at least one non-zero counter"):
        data.Parallel([lambda: iter([])], counters=(0,))


# --- Shuffle --------------------------------------------------------------


@pytest.mark.parametrize("queue_size", [0, -5])
def test_shuffle_raises_error_on_queue_size(queue_size):
    with pytest.raises(ValueError, match=r"queue_size \(" + str(queue_size) + r"\) less than 1"):
        list(data.shuffle(iter(range(10)), queue_size))
    with pytest.raises(ValueError, match="Shuffle"):
        data.Shuffle(queue_size)


@pytest.mark.parametrize("queue_size", [1, 2, 20])
def test_shuffle_queue_size_limits_lookahead(queue_size):
    shuffled = data.shuffle(iter(range(100, 200)), queue_size, rng=0)
    first_ten = [next(shuffled) for _ in range(10)]
    # Queue size limits how far ahead the k-th sample can reach.
    for k, sample in enumerate(first_ten):
        assert sample < 100 + k + queue_size
    if queue_size == 1:  # degenerate: no shuffling
        assert first_ten == list(range(100, 110))
    else:
        assert first_ten != list(range(100, 110))


@pytest.mark.parametrize("n_samples", [0, 1, 99, 100, 101, 199, 1124, 1125, 3000])
def test_shuffle_yields_all_samples(n_samples):
    # (1124 = the queue plus one block of slots drawn at once: ends exactly at a block)
    assert sorted(data.shuffle(iter(range(n_samples)), 100, rng=3)) == list(range(n_samples))


@given(st.lists(st.integers(), max_size=40), st.integers(1, 10), st.integers(0, 2**31))
def test_shuffle_is_a_permutation(samples, queue_size, seed):
    assert sorted(data.shuffle(samples, queue_size, rng=seed)) == sorted(samples)


def test_shuffle_mixes_across_blocks_of_drawn_slots():
    # A random-out queue of q: sample k enters as output k - q leaves and waits a
    # geometric number of outputs (mean q), so its mean displacement is 0 and it is
    # never out more than q - 1 early, at every position, block boundaries included.
    n, queue_size = 3000, 10
    runs = np.array([list(data.shuffle(range(n), queue_size, rng=seed)) for seed in range(200)])
    displacement = np.argsort(runs, axis=1) - np.arange(n)
    assert displacement.min() == -(queue_size - 1)
    mean = displacement[:, 100:-100].mean(axis=0)  # (standard error ~0.67 per position)
    assert np.abs(mean).max() < 4
    # Successive blocks of drawn slots are fresh draws, not a repeated block.
    first, second = runs[0, 10:10 + 1024], runs[0, 10 + 1024:10 + 2048]
    assert not np.array_equal(first - first.min(), second - second.min())


def test_shuffle_seed_reproducible_and_per_stream():
    shuffle_fn = data.Shuffle(8, seed=42)
    first, second = list(shuffle_fn(iter(range(50)))), list(shuffle_fn(iter(range(50))))
    assert first == second  # an int seed: every stream is the same
    assert list(data.Shuffle(8, seed=43)(iter(range(50)))) != first
    generator = np.random.default_rng(0)
    a = list(data.shuffle(range(50), 8, rng=generator))
    b = list(data.shuffle(range(50), 8, rng=generator))
    assert a != b  # a Generator is advanced, not reset


def test_shuffle_does_not_use_numpy_global_rng():
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    list(data.shuffle(range(30), 5))
    list(data.Shuffle(5)(iter(range(30))))
    np.testing.assert_array_equal(np.random.get_state()[1], before)


# --- Log ------------------------------------------------------------------


def test_log_prints_shapes_every_n_steps(capsys):
    examples = [(np.zeros((i + 1, 2), np.float32), np.ones(3, np.int32)) for i in range(5)]
    out = list(data.Log(n_steps_per_example=2)(iter(examples)))
    assert out == examples  # passes through unchanged (same objects)
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == [
        "(ShapeDtype{shape:(1, 2), dtype:float32}, ShapeDtype{shape:(3,), dtype:int32})",
        "(ShapeDtype{shape:(3, 2), dtype:float32}, ShapeDtype{shape:(3,), dtype:int32})",
        "(ShapeDtype{shape:(5, 2), dtype:float32}, ShapeDtype{shape:(3,), dtype:int32})",
    ]


def test_log_full_values(capsys):
    list(data.Log(only_shapes=False)(iter([(1, "a")])))
    assert capsys.readouterr().out.strip() == "(1, 'a')"
    with pytest.raises(ValueError, match="Log: expected n_steps_per_example >= 1"):
        data.Log(n_steps_per_example=0)


# --- UniformlySeek --------------------------------------------------------


@pytest.mark.parametrize("host_id, expected_start", [(0, 0), (1, 3), (2, 6)])
def test_uniformly_seek_starts_each_host_at_its_share(host_id, expected_start):
    seek = data.UniformlySeek("toy", host_id=host_id, n_hosts=3, dataset_size=10)
    assert list(seek(iter(range(12)))) == list(range(expected_start, 12))
    assert list(seek(iter(range(12)))) == list(range(expected_start, 12))  # deterministic


def test_uniformly_seek_defaults_to_this_process_and_ends_cleanly():
    # One process here: host 0 of 1 does not skip.
    assert list(di.UniformlySeek("toy", dataset_size=4)(iter(range(3)))) == [0, 1, 2]
    # Seeking past the end of the stream ends it, no error and no hang.
    assert list(di.UniformlySeek("toy", host_id=1, n_hosts=2, dataset_size=100)(iter(range(5)))) == []


def test_uniformly_seek_errors():
    with pytest.raises(ValueError, match="UniformlySeek: expected a non-empty name"):
        data.UniformlySeek(dataset_size=10)
    bad = data.UniformlySeek("toy", host_id=2, n_hosts=2, dataset_size=10)
    with pytest.raises(
        ValueError, match=r"UniformlySeek\[toy\]: expected 0 <= host_id < n_hosts, got host_id=2"
    ):
        list(bad(iter(range(3))))
