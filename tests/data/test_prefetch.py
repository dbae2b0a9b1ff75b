"""Prefetch: same items, producer errors re-raised, never hangs, stops when abandoned."""

import gc
import threading
import time

import numpy as np
import pytest

from pax_trax import data

TIMEOUT_S = 10.0


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "pax_trax.data.Prefetch"]


def _wait_until(condition, seconds=TIMEOUT_S):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_prefetch_yields_the_same_items_in_order(within):
    examples = [(np.full(3, i), np.array(i)) for i in range(50)]
    out = within(TIMEOUT_S, lambda: list(data.Prefetch(3)(iter(examples))))
    assert len(out) == 50
    assert all(a is b for x, y in zip(out, examples) for a, b in zip(x, y))  # the same objects


def test_prefetch_in_a_pipeline(within):
    pipeline = data.Serial(lambda _: ((i, i) for i in range(8)), data.Prefetch(), data.Batch(4))
    batches = within(TIMEOUT_S, lambda: list(pipeline()))
    assert [b[0].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_prefetch_reraises_producer_exception(within):
    def failing():
        yield 1
        yield 2
        raise KeyError("boom in the producer")

    stream = data.Prefetch(2)(failing())
    assert within(TIMEOUT_S, lambda: [next(stream), next(stream)]) == [1, 2]
    with pytest.raises(KeyError, match="boom in the producer") as info:
        within(TIMEOUT_S, lambda: next(stream))
    assert any(entry.name == "failing" for entry in info.traceback)  # the producer's frame is kept
    assert within(TIMEOUT_S, lambda: list(stream)) == []  # and the stream is over

    def fails_at_once():
        raise ValueError("no data")
        yield  # pragma: no cover

    with pytest.raises(ValueError, match="no data"):
        within(TIMEOUT_S, lambda: list(data.Prefetch()(fails_at_once())))


def test_prefetch_empty_stream_ends_without_hanging(within):
    assert within(TIMEOUT_S, lambda: list(data.Prefetch()(iter([])))) == []


def test_prefetch_slow_producer_is_waited_for(within):
    def slow():
        for i in range(3):
            time.sleep(0.25)  # longer than the consumer's polling interval
            yield i

    assert within(TIMEOUT_S, lambda: list(data.Prefetch(1)(slow()))) == [0, 1, 2]


def test_prefetch_reads_ahead_at_most_n_prefetch_items():
    pulled = []

    def counting():
        for i in range(1000):
            pulled.append(i)
            yield i

    stream = data.Prefetch(n_prefetch=3)(counting())
    assert next(stream) == 0
    assert _wait_until(lambda: len(pulled) >= 4), "the producer did not fill its buffer"
    time.sleep(0.3)  # time to overrun the buffer, if it could
    # 1 consumed + 3 buffered + at most 1 held by the blocked producer.
    assert len(pulled) <= 5
    stream.close()


@pytest.mark.parametrize("how", ["close", "drop"])
def test_prefetch_producer_stops_when_the_consumer_is_closed_or_dropped(how):
    upstream_closed = threading.Event()

    def infinite():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            upstream_closed.set()

    before = set(_prefetch_threads())
    stream = data.Prefetch(2)(infinite())
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    (producer,) = set(_prefetch_threads()) - before
    assert producer.daemon
    if how == "close":
        stream.close()
    else:
        del stream
        gc.collect()
    assert _wait_until(lambda: not producer.is_alive()), "the producer thread did not stop"
    assert upstream_closed.is_set()  # the upstream generator was closed, from the producer thread


def test_prefetch_errors():
    with pytest.raises(ValueError, match="Prefetch: expected an int n_prefetch >= 1, got 0"):
        data.Prefetch(0)
    with pytest.raises(ValueError, match="Prefetch: expected an input stream, got None"):
        data.Prefetch()(None)
