"""Stream combinators: Serial, Parallel, Shuffle, Log, UniformlySeek (`trax.data.inputs`).

A *stream function* takes a Python iterator of examples (or ``None`` for a
data source) and returns a new iterator. Examples are usually tuples of NumPy
arrays, e.g. ``(inputs, targets)``. Combinators build stream functions from
stream functions, exactly as in Trax; plain Python (``map``, ``filter``,
lambdas) mixes in freely.

Randomness never touches NumPy's global RNG: `Shuffle` takes a ``seed``
(an int, a ``numpy.random.Generator``, or ``None`` for fresh entropy).
"""

from __future__ import annotations

import itertools
import logging
import math
import time

import numpy as np

from pax_trax.core.shapes import ShapeDtype
from pax_trax.data._checks import describe

# Queue slots `shuffle` draws at once.
_SLOTS_PER_DRAW = 1024

logger = logging.getLogger(__name__)


def _flatten_fns(fns, where):
    """Flattens nested lists/tuples of stream functions (Trax's tree_flatten)."""
    flat = []
    for fn in fns:
        if isinstance(fn, (list, tuple)):
            flat.extend(_flatten_fns(fn, where))
        elif callable(fn):
            flat.append(fn)
        else:
            raise TypeError(
                f"{where}: expected stream functions (callables taking a generator), "
                f"got {type(fn).__name__}: {fn!r}."
            )
    return flat


def Serial(*fns):  # noqa: N802 (Trax name)
    """Combines generator functions into one that runs them serially.

    The first function is called with ``None`` (or the argument given to the
    combined function); each next one receives the previous one's output.
    Nested lists of functions are flattened, so `Serial` composes.

    >>> source = lambda _: iter([(1, 2), (3, 4)])
    >>> pipeline = Serial(source, lambda g: (x + y for x, y in g))
    >>> list(pipeline())
    [3, 7]
    """
    fns = _flatten_fns(fns, "Serial")

    def composed_fns(generator=None):
        for fn in fns:
            generator = fn(generator)
        return generator

    return composed_fns


class _StreamEnded(Exception):  # noqa: N818 (a signal that a stream ended, not an error)
    """Raised inside Parallel when one of its streams is exhausted."""


def _next_or_end(iterator):
    # StopIteration must not escape a generator (PEP 479: it becomes a
    # RuntimeError), so an exhausted component stream is signalled explicitly.
    try:
        return next(iterator)
    except StopIteration:
        raise _StreamEnded from None


def Parallel(  # noqa: N802 (Trax name)
    fns=None,
    counters=None,
    reweight_by_minimum=False,
    gradually_reweight=False,
    use_remainders=False,
):
    """Combines generator functions into one that runs them in parallel.

    Args:
      fns: a sequence of stream functions; each is called with the argument of
        the combined function if it is truthy, else with no argument.
      counters: a sequence of non-negative numbers, one per function: how
        many examples to take from each stream per round. Streams with counter
        0 are dropped. ``None`` takes one from each in turn.
      reweight_by_minimum: divide every counter by the smallest one (floored),
        e.g. ``(10000, 100000)`` becomes ``(1, 10)`` so the streams interleave
        finely instead of in long runs.
      gradually_reweight: sort streams by counter and yield
        ``(a (b c^k)^m)^*`` recursively, where the exponents are the (floored)
        ratios of consecutive counters: counters ``1, 20, 40`` give
        ``(a (b c^2)^20)^*``.
      use_remainders: with `gradually_reweight`, after each round also yield the
        examples that the floored ratios left out (counters ``1, 20, 45``: 5
        more from the third stream per round).

    Returns:
      A stream function; its stream ends as soon as any component stream ends.

    Counters ``(2, 1)`` take two examples from the first stream for every one
    from the second, in Trax's order:

    >>> first = lambda: iter(range(10))
    >>> second = lambda: iter(range(10, 20))
    >>> stream = Parallel([first, second], counters=(2, 1))()
    >>> [next(stream) for _ in range(7)]
    [0, 10, 1, 11, 2, 3, 12]
    """
    if fns is None or not isinstance(fns, (list, tuple)) or not fns:
        raise ValueError(f"Parallel: expected a non-empty list of stream functions, got {fns!r}.")
    fns = list(fns)
    for i, fn in enumerate(fns):
        if not callable(fn):
            raise TypeError(f"Parallel: expected fns[{i}] to be a stream function, got {fn!r}.")
    if counters:
        counters = list(counters)
        if len(counters) != len(fns):
            raise ValueError(
                f"Parallel: expected one counter per stream function ({len(fns)}), "
                f"got {len(counters)} counters: {counters}."
            )
        if any(c < 0 for c in counters):
            raise ValueError(f"Parallel: expected non-negative counters, got {counters}.")
        kept = [j for j, c in enumerate(counters) if c != 0]
        if not kept:
            raise ValueError(f"Parallel: expected at least one non-zero counter, got {counters}.")
        counters = [counters[j] for j in kept]
        fns = [fns[j] for j in kept]
    else:
        counters = [1] * len(fns)

    if reweight_by_minimum:
        smallest = min(counters)
        counters = [math.floor(c / smallest) for c in counters]

    def emit_examples(sorted_streams, prev_counter):
        # Yields (a (b c^k)^m): the first stream once per unit of its ratio to
        # the previous counter, each time followed by the rest recursively.
        if sorted_streams:
            counter, stream = sorted_streams[0]
            for _ in range(math.floor(counter / prev_counter)):
                yield _next_or_end(stream)
                yield from emit_examples(sorted_streams[1:], counter)

    def emit_remainders(sorted_streams):
        processed = 1
        for i, (counter, stream) in enumerate(sorted_streams):
            for _ in range(int(counter - processed)):
                yield _next_or_end(stream)
            if i + 1 < len(sorted_streams):
                processed *= math.floor(sorted_streams[i + 1][0] / counter)

    def parallel_generator(gen=None):
        streams = [iter(fn(gen)) if gen else iter(fn()) for fn in fns]
        try:
            if gradually_reweight:
                sorted_streams = sorted(zip(counters, streams), key=lambda cs: cs[0])
                while True:
                    yield from emit_examples(sorted_streams, min(counters))
                    if use_remainders:
                        yield from emit_remainders(sorted_streams)
            else:
                # Round-robin: each stream gives one example per pass while it
                # is below its counter; all reset once every counter is reached.
                current = [0] * len(streams)
                total = sum(counters)
                while True:
                    for idx, stream in enumerate(streams):
                        if current[idx] < counters[idx]:
                            current[idx] += 1
                            if sum(current) == total:
                                current = [0] * len(streams)
                            yield _next_or_end(stream)
        except _StreamEnded:
            return

    return parallel_generator


def Shuffle(queue_size=1024, seed=None):  # noqa: N802 (Trax name)
    """Returns a shuffle function with the given queue size.

    Args:
      queue_size: number of examples held in the shuffling buffer.
      seed: pax_trax addition. An int makes every stream made by this function
        shuffle the same way; a ``numpy.random.Generator`` is used (and
        advanced) as is; ``None`` (default) draws fresh entropy per stream.

    >>> sorted(Shuffle(4, seed=0)(iter(range(6))))
    [0, 1, 2, 3, 4, 5]
    """
    _check_queue_size("Shuffle", queue_size)
    return lambda g: shuffle(g, queue_size, rng=seed)


def _check_queue_size(where, queue_size):
    if isinstance(queue_size, bool) or not isinstance(queue_size, (int, np.integer)):
        raise TypeError(f"{where}: expected an int queue_size, got {queue_size!r}.")
    if queue_size < 1:
        raise ValueError(f"{where}: expected queue_size >= 1, got queue_size ({queue_size}) less than 1.")


def shuffle(samples, queue_size, rng=None):
    """Shuffles a sample stream using a random-out next-in queue of given size.

    Args:
      samples: stream (any iterable) of samples.
      queue_size: minimum number of samples within which the streamed shuffling
        takes place; 1 means no shuffling.
      rng: pax_trax addition: a seed or ``numpy.random.Generator`` (see
        `Shuffle`); ``None`` draws fresh entropy.

    Yields:
      The same samples in shuffled order. A stream shorter than the queue is
      shuffled entirely; an empty stream yields nothing.

    >>> list(shuffle(iter(range(5)), 1))
    [0, 1, 2, 3, 4]
    """
    _check_queue_size("shuffle", queue_size)
    if queue_size == 1:
        logger.warning("Queue size of 1 results in no shuffling.")
    return _shuffle(iter(samples), queue_size, np.random.default_rng(rng))


def _shuffle(samples, queue_size, rng):
    queue = list(itertools.islice(samples, queue_size))  # Prep: fill the queue.
    if len(queue) == queue_size:
        while True:
            # Yield from a random slot, refill that slot with the next sample; the slots
            # are drawn a block at a time (one draw per sample costs ~10x more).
            n_drawn = 0
            for i, sample in zip(rng.integers(queue_size, size=_SLOTS_PER_DRAW).tolist(), samples):
                yield queue[i]
                queue[i] = sample
                n_drawn += 1
            if n_drawn < _SLOTS_PER_DRAW:
                break
    else:
        logger.warning("Not enough samples (%d) to fill initial queue (size %d).", len(queue), queue_size)
    # No new samples coming in; shuffle and drain the queue.
    for i in rng.permutation(len(queue)):
        yield queue[i]


def _shapes_only(item):
    if isinstance(item, (tuple, list)):
        return type(item)(_shapes_only(x) for x in item)
    if isinstance(item, dict):
        return {k: _shapes_only(v) for k, v in item.items()}
    if hasattr(item, "shape") and hasattr(item, "dtype"):
        return ShapeDtype(item.shape, item.dtype)
    return describe(item)


def Log(n_steps_per_example=1, only_shapes=True):  # noqa: N802 (Trax name)
    """Creates a logging component of the input pipeline.

    Prints (and logs at INFO) every `n_steps_per_example`-th example, or only
    its shapes and dtypes when `only_shapes`; examples pass through unchanged.

    >>> list(Log(only_shapes=True)(iter([(np.zeros(2, np.int32),)])))[0][0]
    (ShapeDtype{shape:(2,), dtype:int32},)
    array([0, 0], dtype=int32)
    """
    if n_steps_per_example < 1:
        raise ValueError(f"Log: expected n_steps_per_example >= 1, got {n_steps_per_example}.")

    def log(stream):
        for counter, example in enumerate(stream):
            if counter % n_steps_per_example == 0:
                item_to_log = _shapes_only(example) if only_shapes else example
                logger.info("%s", item_to_log)
                print(item_to_log)
            yield example

    return log


def UniformlySeek(name=None, host_id=None, n_hosts=None, dataset_size=None):  # noqa: N802
    """Sets each host at (dataset_size/n_hosts)-th of the dataset.

    Host `host_id` of `n_hosts` skips ``host_id * (dataset_size // n_hosts)``
    examples, then passes the rest through. `host_id` and `n_hosts` default to
    ``jax.process_index()`` and ``jax.process_count()`` (read when the stream
    starts). A stream that ends while seeking ends cleanly.

    >>> seek = UniformlySeek("toy", host_id=1, n_hosts=2, dataset_size=6)
    >>> list(seek(iter(range(6))))
    [3, 4, 5]
    """
    if not name:
        raise ValueError(f"UniformlySeek: expected a non-empty name for the dataset, got {name!r}.")
    if not dataset_size:
        dataset_size = 2**18  # 512 * 512, Trax's default
        logger.error("No dataset size given to UniformlySeek, assuming: %d", dataset_size)

    def _f(generator):
        nonlocal host_id, n_hosts
        if host_id is None or n_hosts is None:
            import jax  # lazily: only multi-host defaults need it

            host_id = jax.process_index() if host_id is None else host_id
            n_hosts = n_hosts or jax.process_count()
        if not 0 <= host_id < n_hosts:
            raise ValueError(
                f"UniformlySeek[{name}]: expected 0 <= host_id < n_hosts, "
                f"got host_id={host_id}, n_hosts={n_hosts}."
            )
        num_to_seek = host_id * int(dataset_size / n_hosts)
        start_time = time.time()
        logger.info("Dataset[%s] host_id[%d] is seeking to position[%d]", name, host_id, num_to_seek)
        generator = iter(generator)
        for position in range(num_to_seek):
            if next(generator, _END) is _END:
                logger.warning(
                    "Dataset[%s] ended at position %d while seeking to %d.", name, position, num_to_seek
                )
                return
        logger.info(
            "Dataset[%s] host_id[%d] reached position[%d]. Time taken [%s] seconds",
            name,
            host_id,
            num_to_seek,
            time.time() - start_time,
        )
        yield from generator

    return _f


_END = object()
