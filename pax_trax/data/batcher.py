"""The Inputs bundle and the batcher (`trax.data.inputs`).

`Inputs` holds stream-creating functions (``n_devices -> iterator of
batches``) for training, evaluation and evaluation on training data, plus the
example shapes read from one peeked training batch. `batcher` / `batch_fn`
turn streams of single examples into batched streams with Trax's bucketing
heuristics.
"""

from __future__ import annotations

import logging

import numpy as np

from pax_trax.data._checks import axis_size, describe, element
from pax_trax.data.batching import add_loss_weights, batch, bucket_by_length
from pax_trax.data.combinators import Parallel, Serial, shuffle

logger = logging.getLogger(__name__)


class _SharedStream:
    """A stream function over one iterator (for `make_inputs` given a stream).

    Every call continues the same iterator. The batch that `Inputs` peeks at
    to learn shapes is replayed to the next reader, so no data is lost.
    """

    def __init__(self, stream):
        self._iterator = iter(stream)
        self._replay = []

    def peek(self):
        if not self._replay:
            self._replay.append(next(self._iterator))
        return self._replay[0]

    def __call__(self, n_devices=None):
        del n_devices
        return self._generate()

    def _generate(self):
        while self._replay:
            yield self._replay.pop(0)
        yield from self._iterator


def _shape_and_dtype(where, value):
    array = np.asarray(value)
    if array.ndim == 0:
        raise ValueError(f"{where}: expected batched arrays with a batch axis, got {describe(value)}.")
    return tuple(array.shape), array.dtype


class Inputs:
    """Inputs bundle.

    Holds input streams and shapes for a training run. Each stream is a
    function taking ``n_devices`` (an int) and returning a Python iterator of
    batches, tuples like ``(input_batch, target_batch[, weights])``:

    * ``train_stream``: training data, with any augmentation; batches of
      ``[batch_size, ...]``;
    * ``train_eval_stream``: training data used for evaluation;
    * ``eval_stream``: evaluation data;
    * ``input_shape`` / ``input_dtype``: the ``[...]`` and dtype of inputs;
    * ``target_shape`` / ``target_dtype``: the same for targets (the last
      element of a batch).

    Args:
      train_stream: function ``n_devices -> iterator`` of training batches.
      eval_stream: the same for evaluation; None uses `train_stream`.
      train_eval_stream: the same for evaluation on training data; None uses
        `train_stream`.

    >>> stream = lambda n_devices: iter([(np.zeros((4, 3)), np.ones((4,), np.int32))] * 2)
    >>> inputs = Inputs(stream)
    >>> inputs.input_shape, inputs.target_shape, inputs.target_dtype
    ((3,), (), dtype('int32'))
    """

    def __init__(self, train_stream, eval_stream=None, train_eval_stream=None):
        if not callable(train_stream):
            raise ValueError(
                "Inputs: expected train_stream to be a function of n_devices, got "
                f"{type(train_stream).__name__}. Did you forget the n_devices argument? If your "
                "inputs do not use it, try lambda _: [your-inputs]."
            )
        for name, fn in (("eval_stream", eval_stream), ("train_eval_stream", train_eval_stream)):
            if fn is not None and not callable(fn):
                raise ValueError(f"Inputs: expected {name} to be a function of n_devices, got {fn!r}.")
        self._train_stream = train_stream
        self._eval_stream = eval_stream or train_stream
        self._train_eval_stream = train_eval_stream or train_stream

        # Peek into the train stream to get an example shape.
        try:
            if isinstance(train_stream, _SharedStream):
                example = train_stream.peek()
            else:
                example = next(iter(train_stream(1)))
        except StopIteration:
            raise ValueError("Inputs: the train stream is empty; expected at least one batch.") from None
        if not isinstance(example, (tuple, list)) or not example:
            raise ValueError(f"Inputs: expected batches to be tuples of arrays, got {describe(example)}.")
        shapes_dtypes = [_shape_and_dtype("Inputs", x) for x in example]
        self._input_shape = shapes_dtypes[0][0][1:]
        self._input_dtype = shapes_dtypes[0][1]
        self._target_shape = shapes_dtypes[-1][0][1:]
        self._target_dtype = shapes_dtypes[-1][1]
        self._example_shape = [s for s, _ in shapes_dtypes]
        self._example_dtype = [d for _, d in shapes_dtypes]

    def train_stream(self, n_devices):
        return self._train_stream(n_devices)

    def eval_stream(self, n_devices):
        return self._eval_stream(n_devices)

    def train_eval_stream(self, n_devices):
        # Trax returned the train stream here, ignoring train_eval_stream.
        return self._train_eval_stream(n_devices)

    @property
    def input_shape(self):
        """Example input shape, without batch dimension."""
        return self._input_shape

    @property
    def target_shape(self):
        """Example target shape, without batch dimension."""
        return self._target_shape

    @property
    def input_dtype(self):
        """Dtype of the input."""
        return self._input_dtype

    @property
    def target_dtype(self):
        """Dtype of the target."""
        return self._target_dtype

    @property
    def example_shape_dtype(self):
        """Shape and Dtype of an example batch."""
        return self._example_shape, self._example_dtype


def make_inputs(train_stream, eval_stream=None):
    """Create Inputs from two streams (iterators, or lists of stream functions).

    A list or tuple is combined with `Serial` and called. Every call of the
    resulting stream functions continues the same iterator.

    >>> inputs = make_inputs(iter([(np.zeros((2, 5)), np.zeros((2, 5)))] * 3))
    >>> inputs.input_shape, len(list(inputs.train_stream(1)))
    ((5,), 3)
    """
    if isinstance(train_stream, (list, tuple)):
        train_stream = Serial(train_stream)()
    if isinstance(eval_stream, (list, tuple)):
        eval_stream = Serial(eval_stream)()
    train_fn = _SharedStream(train_stream)
    eval_fn = None if eval_stream is None else _SharedStream(eval_stream)
    return Inputs(train_stream=train_fn, eval_stream=eval_fn)


def make_additional_stream(stream):
    """Create a stream (mostly for additional tasks) from stream functions.

    >>> list(make_additional_stream([lambda _: iter([1, 2]), lambda g: (x * 10 for x in g)]))
    [10, 20]
    """
    return Serial(stream)()


def make_parallel_stream(streams, counters=None):
    """Create a parallel stream (see `Parallel`) for additional tasks.

    >>> stream = make_parallel_stream([lambda: iter("ab"), lambda: iter("xy")])
    >>> list(stream)
    ['a', 'x', 'b', 'y']
    """
    return Parallel(streams, counters=counters)()


def batcher(
    data_streams,
    variable_shapes=True,
    batch_size_per_device=32,
    batch_size=None,
    eval_batch_size=32,
    bucket_length=32,
    buckets=None,
    buckets_include_inputs_in_length=False,
    batch_shuffle_size=None,
    max_eval_length=None,
    id_to_mask=None,
    strict_pad_on_len=False,
    seed=None,
):
    """Batcher: create Inputs from single-example data streams.

    Args:
      data_streams: a pair ``(train_fn, eval_fn)`` of no-argument functions
        returning iterators of examples, or a function returning that pair.
      seed: pax_trax addition: seed of the batch shuffle (see `batch_fn`).
      Other arguments: see `batch_fn`.

    >>> examples = lambda: iter([(np.ones(3, np.int32), np.ones(3, np.int32))] * 8)
    >>> inputs = batcher((examples, examples), variable_shapes=False, batch_size=4)
    >>> [x.shape for x in next(inputs.train_stream(1))]
    [(4, 3), (4, 3), (4, 3)]
    """
    if callable(data_streams):  # e.g. a function returning the pair
        data_streams = data_streams()
    if not isinstance(data_streams, (list, tuple)) or len(data_streams) != 2:
        raise ValueError(
            f"batcher: expected data_streams = (train_stream_fn, eval_stream_fn), got {data_streams!r}."
        )
    train_stream, eval_stream = data_streams
    options = dict(
        batch_size_per_device=batch_size_per_device,
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        bucket_length=bucket_length,
        buckets=buckets,
        buckets_include_inputs_in_length=buckets_include_inputs_in_length,
        batch_shuffle_size=batch_shuffle_size,
        max_eval_length=max_eval_length,
        id_to_mask=id_to_mask,
        strict_pad_on_len=strict_pad_on_len,
        seed=seed,
    )
    return Inputs(
        train_stream=lambda n: batch_fn(train_stream(), True, n, variable_shapes, **options),
        eval_stream=lambda n: batch_fn(eval_stream(), False, n, variable_shapes, **options),
        train_eval_stream=lambda n: batch_fn(train_stream(), False, n, variable_shapes, **options),
    )


def batch_fn(
    dataset,
    training,
    n_devices,
    variable_shapes,
    batch_size_per_device=32,
    batch_size=None,
    eval_batch_size=32,
    bucket_length=32,
    buckets=None,
    buckets_include_inputs_in_length=False,
    batch_shuffle_size=None,
    max_eval_length=None,
    id_to_mask=None,
    strict_pad_on_len=False,
    seed=None,
):
    """Batching function: batch (or bucket) a stream of examples, add loss weights.

    The batch size is `batch_size` (default ``batch_size_per_device *
    n_devices``) in training and `eval_batch_size` otherwise, rounded down to
    a multiple of `n_devices` (at least `n_devices`). `buckets` is a pair
    ``(boundaries, batch_sizes)`` for `bucket_by_length` on the target length
    (or the larger of input and target lengths with
    `buckets_include_inputs_in_length`); with `variable_shapes` and no
    `buckets`, Trax's heuristic buckets around `bucket_length` are used.
    Otherwise examples are padded and batched (`batch`). In training, batches
    are shuffled with a queue of `batch_shuffle_size` if given, seeded by
    `seed` (pax_trax addition). Finally `add_loss_weights` with `id_to_mask`.

    Args:
      n_devices: number of devices; None means ``jax.device_count()``.

    >>> stream = iter([(np.ones(2), np.ones(2))] * 4)
    >>> [x.shape for x in next(batch_fn(stream, True, 2, False, batch_size=4))]
    [(4, 2), (4, 2), (4, 2)]
    """
    if n_devices is None:
        import jax  # lazily: the device count is only needed here

        n_devices = jax.device_count()
    batch_size = batch_size or batch_size_per_device * n_devices
    cur_batch_size = batch_size if training else eval_batch_size
    # Make cur_batch_size divisible by n_devices.
    cur_batch_size = max(cur_batch_size // n_devices, 1) * n_devices
    if buckets is None and variable_shapes:
        buckets = _buckets_for_length(bucket_length, cur_batch_size, max_eval_length, n_devices, training)
        logger.info("Heuristically setting bucketing to %s based on shapes of target tensors.", buckets)

    if buckets:
        logger.info("Bucketing with buckets %s.", buckets)

        def example_length(example):
            # Length of axis 0 (no batch yet) of the target, or of the inputs too.
            targets = element("batch_fn", example, 1)
            length = axis_size("batch_fn", targets, 0, "the targets (example[1])")
            if buckets_include_inputs_in_length:
                inputs = element("batch_fn", example, 0)
                length = max(length, axis_size("batch_fn", inputs, 0, "the inputs (example[0])"))
            return length

        boundaries, batch_sizes = buckets
        dataset = bucket_by_length(dataset, example_length, boundaries, batch_sizes, strict_pad_on_len)
    else:
        logger.info("Not bucketing; cur_batch_size %d.", cur_batch_size)
        dataset = batch(dataset, cur_batch_size)
    if training and batch_shuffle_size is not None:
        dataset = shuffle(dataset, batch_shuffle_size, rng=seed)
    return add_loss_weights(dataset, id_to_mask)


def _buckets_for_length(bucket_length, batch_size, max_eval_length, n_devices, training):
    """Creates heuristically a set of bucket boundaries and sizes.

    The middle boundary is `bucket_length` with batch size `batch_size`;
    buckets of 1/2 and 1/4 the length get 2x and 4x the batch size, buckets of
    2x, 4x, ... 16x the length get 1/2, 1/4, ... the batch size, and the last
    (unbounded) bucket batch size 1. In eval the boundaries stop at
    `max_eval_length` (default ``32 * bucket_length``). Batch sizes are made
    divisible by `n_devices`.

    Returns:
      ``(bucket_boundaries, bucket_batch_sizes)``.
    """
    bucket_boundaries = [bucket_length // 4, bucket_length // 2, bucket_length,
                         bucket_length * 2, bucket_length * 4, bucket_length * 8,
                         bucket_length * 16]  # fmt: skip
    if not training:
        max_eval_length = max_eval_length or bucket_length * 32
        # The last boundary is max_eval_length; larger ones are cut off. Trax
        # lists max_eval_length twice (the second bucket is never used).
        bucket_boundaries = [b for b in bucket_boundaries if b < max_eval_length] + [max_eval_length]
        bucket_boundaries.append(max_eval_length)
    bucket_batch_sizes = [batch_size * 4, batch_size * 2, batch_size, batch_size // 2,
                          batch_size // 4, batch_size // 8, batch_size // 16, 1]  # fmt: skip
    if not training:
        # Trax's list could be one short here (an IndexError on long examples):
        # extend it with 1s so every boundary, plus the unbounded one, has a size.
        bucket_batch_sizes += [1] * max(0, len(bucket_boundaries) - len(bucket_batch_sizes))
        bucket_batch_sizes = bucket_batch_sizes[: len(bucket_boundaries)] + [1]
        bucket_batch_sizes[-2] = batch_size // max_eval_length
    bucket_batch_sizes = [max(b // n_devices, 1) * n_devices for b in bucket_batch_sizes]
    return (bucket_boundaries, bucket_batch_sizes)
