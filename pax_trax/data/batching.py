"""Batching, padding, bucketing and loss weights (`trax.data.inputs`).

Examples are tuples of arrays (``(inputs, targets)`` or ``(inputs, targets,
weights)``); a batch is the tuple of the stacked, zero-padded elements. A
stream of bare arrays (not tuples) is batched into bare arrays.
"""

from __future__ import annotations

import bisect
import functools
import math
import operator

import numpy as np

from pax_trax.data._checks import describe, element, is_example_tuple, length_function


def Batch(batch_size):  # noqa: N802 (Trax name)
    """Returns a batching function with given batch size.

    >>> xs, ys = next(Batch(2)(iter([(np.ones(3), 0), (np.ones(2), 1)])))
    >>> xs.tolist(), ys.tolist()
    ([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]], [0, 1])
    """
    _check_batch_size("Batch", batch_size)
    return lambda g: batch(g, batch_size)


def _check_batch_size(where, batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"{where}: expected an int batch_size, got {batch_size!r}.")
    if batch_size <= 0:
        raise ValueError(f"{where}: batch size must be positive, but is {batch_size}.")


def batch(generator, batch_size):
    """Batch and pad generator as in tf.data.Dataset.padded_batch.

    Every `batch_size` consecutive examples are padded with zeros to their
    largest shape (per element) and stacked. A final incomplete batch is
    dropped, as in Trax.

    >>> b = next(batch(iter([([1, 1, 1], 5), ([1], 6)]), 2))
    >>> b[0].tolist(), b[1].tolist()
    ([[1, 1, 1], [1, 0, 0]], [5, 6])
    """
    _check_batch_size("batch", batch_size)
    return _batch(iter(generator), batch_size)


def _batch(generator, batch_size):
    buffer = []
    for example in generator:
        buffer.append(example)
        if len(buffer) == batch_size:
            yield stack_examples("Batch", buffer)
            buffer = []


def stack_examples(where, examples, boundary=None, strict_pad_on_len=False):
    """Pads and stacks a list of examples element-wise (tuples) or whole (arrays)."""
    first = examples[0]
    if type(first) is tuple:
        stacked = _stack_tuples(where, examples, boundary, strict_pad_on_len)
        if stacked is not None:
            return stacked
    if not is_example_tuple(first):
        for example in examples:
            if is_example_tuple(example):
                raise ValueError(
                    f"{where}: expected every example in a batch to be a bare array like the "
                    f"first ({describe(first)}), got {describe(example)}."
                )
        return _pad_to_max_dims(where, [np.asarray(x) for x in examples], boundary, strict_pad_on_len)
    width = len(first)
    for example in examples:
        if not is_example_tuple(example) or len(example) != width:
            raise ValueError(
                f"{where}: expected every example in a batch to be a tuple of {width} like the "
                f"first ({describe(first)}), got {describe(example)}."
            )
    return tuple(
        _pad_to_max_dims(
            f"{where} (element {i})",
            [np.asarray(example[i]) for example in examples],
            boundary,
            strict_pad_on_len,
        )
        for i in range(width)
    )


# Python and NumPy scalar types whose values `np.array` stacks as `np.asarray` makes them.
_NUMBER_TYPES = (bool, int, float, complex, np.bool_, np.number)


def _stack_tuples(where, examples, boundary, strict_pad_on_len):
    """`stack_examples` of tuples of one width, column by column without a Python loop over
    the examples for the usual columns (numbers; 1-D number arrays of one dtype); None
    when the examples are not all tuples of the first one's width (the checked path
    explains what is wrong)."""
    if len(set(map(type, examples))) != 1 or len(set(map(len, examples))) != 1:
        return None
    stacked = []
    for i, column in enumerate(zip(*examples)):
        batch = _stack_column(f"{where} (element {i})", column, boundary, strict_pad_on_len)
        if batch is None:
            batch = _pad_to_max_dims(f"{where} (element {i})", [np.asarray(x) for x in column],
                                     boundary, strict_pad_on_len)
        stacked.append(batch)
    return tuple(stacked)


def _stack_column(where, column, boundary, strict_pad_on_len):
    """`_pad_to_max_dims` of one column of scalars or of 1-D arrays, or None for others."""
    types = set(map(type, column))
    if len(types) != 1 or isinstance(boundary, (list, tuple)):
        return None
    kind = types.pop()
    if issubclass(kind, _NUMBER_TYPES):
        if kind is int and not all(-2**63 <= x < 2**63 for x in column):
            return None  # (np.asarray(huge int) is an object array)
        batch = np.array(column)
        return batch if batch.dtype.kind in "biufc" else None
    if kind is not np.ndarray or set(map(operator.attrgetter("ndim"), column)) != {1}:
        return None
    dtypes = set(map(operator.attrgetter("dtype"), column))
    dtype = dtypes.pop() if len(dtypes) == 1 else None
    if dtype is None or dtype.kind not in "biufc":
        return None
    lengths = np.fromiter(map(len, column), np.intp, len(column))
    (target,) = _padded_shape([int(lengths.max())], [int(lengths.min())], boundary,
                              strict_pad_on_len, where)
    batch = np.zeros((len(column), target), dtype)
    batch[np.arange(target) < lengths[:, None]] = _concatenated(column, dtype)
    return batch


def _concatenated(arrays, dtype):
    """``np.concatenate(arrays)`` of 1-D arrays of `dtype`: joined as bytes when they are
    contiguous (~30 ns an array instead of ~100 ns: most of stacking a batch of short
    token arrays)."""
    try:
        return np.frombuffer(b"".join(arrays), dtype)
    except (BufferError, TypeError, ValueError):  # (a strided view: no contiguous buffer)
        return np.concatenate(arrays)


def pad_to_max_dims(tensors, boundary=None, strict_pad_on_len=False):
    """Pad a tuple of tensors to a joint dimension and return their batch.

    A pair of tensors of shape (2, 10) and (3, 9) is padded to (3, 10) and the
    result has shape (2, 3, 10).

    With `boundary`, each padded dimension is padded to `boundary` if possible,
    which reduces the number of distinct shapes (and XLA compilations): shapes
    (8, 10) and (8, 9) with ``boundary=12`` give (8, 12) each. When the boundary
    is more than twice the longest length, the next power of two is used
    instead: (2, 10) and (3, 9) with ``boundary=12`` give (4, 12).

    With ``strict_pad_on_len`` (or a list/tuple `boundary`, one entry per
    dimension, ``None`` for "no rounding"), every dimension is rounded up to a
    multiple of its boundary.

    Args:
      tensors: a tuple or list of arrays of equal rank.
      boundary: int, list of ints, or None.
      strict_pad_on_len: bool; pad to multiples of `boundary` strictly.

    Returns:
      The padded tensors stacked along a new leading axis.

    >>> pad_to_max_dims([np.zeros((2, 10)), np.ones((3, 9))], boundary=12).shape
    (2, 4, 12)
    """
    return _pad_to_max_dims("pad_to_max_dims", [np.asarray(t) for t in tensors], boundary, strict_pad_on_len)


def _next_power_of_two(n):
    return 0 if n == 0 else 2 ** math.ceil(math.log2(n))


def _padded_shape(max_lens, min_lens, boundary, strict_pad_on_len, where="pad_to_max_dims"):
    """The padded shape of tensors whose dimensions span ``min_lens .. max_lens``."""
    ndim = len(max_lens)
    if boundary is not None and (strict_pad_on_len or isinstance(boundary, (list, tuple))):
        boundaries = list(boundary) if isinstance(boundary, (list, tuple)) else [boundary] * ndim
        if len(boundaries) != ndim:
            raise ValueError(
                f"{where}: expected one boundary per dimension, got ndim({ndim}) vs "
                f"boundary({boundary}), len(boundary) = {len(boundaries)}."
            )
        # Round every dimension up to a multiple of its boundary.
        return [m if not b else b * math.ceil(m / b) for m, b in zip(max_lens, boundaries)]
    target = []
    for max_len, min_len in zip(max_lens, min_lens):
        if boundary is None or (max_len == min_len == boundary):
            target.append(max_len)
        else:
            padded_len = max(max_len, boundary)
            if 2 * max_len < padded_len:  # the boundary would waste > half
                padded_len = _next_power_of_two(max_len)
            target.append(padded_len)
    return target


def _pad_to_max_dims(where, tensors, boundary, strict_pad_on_len):
    if not tensors:
        raise ValueError(f"{where}: expected at least one tensor to pad, got none.")
    ndim = tensors[0].ndim
    if any(t.ndim != ndim for t in tensors):
        raise ValueError(
            f"{where}: expected tensors of equal rank to pad together, got shapes "
            f"{[t.shape for t in tensors]}."
        )

    max_lens = [max(t.shape[i] for t in tensors) for i in range(ndim)]
    min_lens = [min(t.shape[i] for t in tensors) for i in range(ndim)]
    target = _padded_shape(max_lens, min_lens, boundary, strict_pad_on_len, where)

    dtypes = {t.dtype for t in tensors}
    dtype = dtypes.pop() if len(dtypes) == 1 else np.result_type(*dtypes)  # as np.stack's
    if dtype.kind in "biufc" and ndim == 1:
        # Sequences: one copy of all their values into the batch's non-padding slots.
        lengths = np.array([t.shape[0] for t in tensors])
        batch = np.zeros((len(tensors), *target), dtype)
        batch[np.arange(target[0]) < lengths[:, None]] = np.concatenate(tensors)
        return batch
    if dtype.kind in "biufc":
        # Numbers: copy each tensor into a zeroed batch (a np.pad per tensor costs ~10x more).
        batch = np.zeros((len(tensors), *target), dtype)
        for i, t in enumerate(tensors):
            batch[(i, *map(slice, t.shape))] = t
        return batch
    padded = [
        np.pad(
            t,
            [(0, target[i] - t.shape[i]) for i in range(ndim)],
            mode="constant",
            constant_values=t.dtype.type(0),
        )
        if t.shape != tuple(target)
        else t
        for t in tensors
    ]
    return np.stack(padded)


def BucketByLength(  # noqa: N802 (Trax name)
    boundaries, batch_sizes, length_keys=None, length_axis=0, strict_pad_on_len=False
):
    """Returns a function for bucketing inputs, see `bucket_by_length`.

    The length of an example is the largest size on `length_axis` among the
    elements `length_keys` (default ``[0, 1]``).

    >>> stream = iter([(np.ones(3), np.ones(3))] * 2 + [(np.ones(9), np.ones(9))] * 1)
    >>> [b[0].shape for b in BucketByLength([4, 8], [2, 2, 1])(stream)]
    [(2, 4), (1, 9)]
    """
    _check_buckets("BucketByLength", boundaries, batch_sizes)
    length_keys = list(length_keys or [0, 1])
    length_fn = length_function("BucketByLength", length_axis, length_keys)
    # (One key: the loop reads a tuple's length itself, without calling length_fn.)
    direct_key = length_keys[0] if len(length_keys) == 1 else None
    return lambda g: _bucket_by_length(iter(g), length_fn, list(boundaries), list(batch_sizes),
                                       strict_pad_on_len, direct_key, length_axis)


def _check_buckets(where, boundaries, batch_sizes):
    boundaries, batch_sizes = list(boundaries), list(batch_sizes)
    for boundary in boundaries:
        if isinstance(boundary, bool) or not isinstance(boundary, (int, np.integer)):
            raise TypeError(f"{where}: expected int boundaries (lengths to pad to), got "
                            f"{boundary!r} in {boundaries}.")
    if any(b2 < b1 for b1, b2 in zip(boundaries, boundaries[1:])):
        raise ValueError(f"{where}: expected increasing boundaries, got {boundaries}.")
    if len(batch_sizes) not in (len(boundaries), len(boundaries) + 1):
        raise ValueError(
            f"{where}: expected len(batch_sizes) == len(boundaries) + 1 (the last bucket takes "
            f"longer examples) or == len(boundaries), got {len(batch_sizes)} batch sizes for "
            f"{len(boundaries)} boundaries."
        )
    for size in batch_sizes:
        _check_batch_size(where, size)


def bucket_by_length(generator, length_fn, boundaries, batch_sizes, strict_pad_on_len=False):
    """Bucket by length, like tf.data.experimental.bucket_by_sequence_length.

    Each example goes to the first bucket whose boundary is >= its length
    ``length_fn(example)`` (the last bucket, if ``len(batch_sizes) ==
    len(boundaries) + 1``, is unbounded). When a bucket holds its batch size,
    its examples are padded to the bucket's boundary (see `pad_to_max_dims`)
    and yielded as a batch. Incomplete buckets are dropped at the end.

    Args:
      generator: stream of examples.
      length_fn: function from an example to its length.
      boundaries: increasing list of bucket boundaries.
      batch_sizes: batch size per bucket.
      strict_pad_on_len: pad lengths to multiples of the boundary.

    Yields:
      Padded batches, each from one bucket.

    >>> stream = iter([(np.ones(5), np.ones(5))] * 2)
    >>> next(bucket_by_length(stream, lambda x: len(x[0]), [20], [2], True))[0].shape
    (2, 20)
    """
    _check_buckets("bucket_by_length", boundaries, batch_sizes)
    return _bucket_by_length(
        iter(generator), length_fn, list(boundaries), list(batch_sizes), strict_pad_on_len
    )


# Lengths up to the last boundary, if it is at most this, find their bucket in a dict.
_MAX_LENGTHS_LOOKED_UP = 2**14


def _bucket_by_length(generator, length_fn, boundaries, batch_sizes, strict_pad_on_len,
                      direct_key=None, length_axis=0):
    """`bucket_by_length`'s loop. With `direct_key`, the length of a tuple is read as
    ``example[direct_key].shape[length_axis]`` where it can be (`length_fn` otherwise:
    it is the same length, or explains the example's fault)."""
    pad_to = [*boundaries, None][:len(batch_sizes)]  # the last bucket may be unbounded
    buckets = [([], size, boundary) for size, boundary in zip(batch_sizes, pad_to)]
    first_boundary_at_least = functools.partial(bisect.bisect_left, boundaries)
    # (~0.1 us an example less than a bisect; negative or other lengths are bisected.)
    bucket_of_length = {}
    if boundaries and boundaries[-1] <= _MAX_LENGTHS_LOOKED_UP:
        bucket_of_length = {n: buckets[first_boundary_at_least(n)]
                            for n in range(max(0, boundaries[-1]) + 1)}
    for example in generator:
        if direct_key is not None and type(example) is tuple:
            try:
                length = example[direct_key].shape[length_axis]
            except (IndexError, AttributeError, TypeError):
                length = length_fn(example)
        else:
            length = length_fn(example)
        try:
            entry = bucket_of_length.get(length)
        except TypeError:  # (an unhashable length, such as a 0-d array)
            entry = None
        if entry is None:
            bucket_idx = first_boundary_at_least(length)
            if bucket_idx >= len(buckets):
                raise ValueError(
                    f"BucketByLength: example of length {length} is longer than the last boundary "
                    f"{boundaries[-1]} and there is no batch size for an unbounded last bucket "
                    f"(give len(boundaries) + 1 batch sizes); example: {describe(example)}."
                )
            entry = buckets[bucket_idx]
        bucket, batch_size, boundary = entry
        bucket.append(example)
        if len(bucket) == batch_size:
            batch = stack_examples("BucketByLength", bucket, boundary, strict_pad_on_len)
            bucket.clear()
            yield batch


def UnBatch():  # noqa: N802 (Trax name)
    """Returns a function which unbatches.

    >>> [ex[1].tolist() for ex in UnBatch()(iter([(np.zeros((2, 3)), np.array([4, 5]))]))]
    [4, 5]
    """

    def _unbatch(generator):
        for batched in generator:
            if not is_example_tuple(batched):
                if np.ndim(batched) < 1:
                    raise ValueError(
                        f"UnBatch: expected a batch with a leading axis, got {describe(batched)}."
                    )
                yield from batched
                continue
            sizes = {np.shape(x)[0] if np.ndim(x) else None for x in batched}
            if len(sizes) != 1 or None in sizes:
                raise ValueError(
                    "UnBatch: expected a tuple of arrays with the same leading (batch) size, "
                    f"got {describe(batched)}."
                )
            for i in range(sizes.pop()):
                yield tuple(x[i] for x in batched)

    return _unbatch


def AddLossWeights(id_to_mask=None):  # noqa: N802 (Trax name)
    """Returns a function to add loss weights; see `add_loss_weights`.

    >>> x, y, w = next(AddLossWeights(id_to_mask=0)(iter([(np.ones(3), np.array([7, 8, 0]))])))
    >>> w.tolist()
    [1.0, 1.0, 0.0]
    """
    return lambda g: add_loss_weights(g, id_to_mask=id_to_mask)


def add_loss_weights(generator, id_to_mask=None):
    """Add weights to inputs without weights and masks by id if requested.

    * ``(inputs, targets)`` becomes ``(inputs, targets, weights)`` with float32
      weights of ones shaped like ``targets``;
    * with `id_to_mask`, the weights of ``(inputs, targets, weights)`` are
      multiplied by 0 where ``targets == id_to_mask`` (padding), 1 elsewhere.

    Other examples pass unchanged when `id_to_mask` is None, and are an error
    otherwise (there is no target to mask).

    Args:
      generator: stream of tuples.
      id_to_mask: if not None, the int id that marks padding in targets.

    Yields:
      Examples from the augmented stream.

    >>> next(add_loss_weights(iter([(1, np.array([3, 0]), np.array([0.5, 0.5]))]), 0))[2].tolist()
    [0.5, 0.0]
    """
    for example in generator:
        if not is_example_tuple(example) or not 2 <= len(example) <= 3:
            if id_to_mask is not None:
                raise ValueError(
                    f"AddLossWeights: cannot mask id {id_to_mask}: expected (inputs, targets) or "
                    f"(inputs, targets, weights), got {describe(example)}."
                )
            yield example
            continue
        targets = np.asarray(element("AddLossWeights", example, 1))
        if len(example) == 2:
            weights = np.ones_like(targets, dtype=np.float32)
        else:
            weights = np.asarray(example[2]).astype(np.float32)
            if weights.shape != targets.shape and id_to_mask is not None:
                raise ValueError(
                    f"AddLossWeights: expected weights shaped like targets {targets.shape}, "
                    f"got {weights.shape}."
                )
        if id_to_mask is not None:
            weights = weights * (targets != id_to_mask).astype(np.float32)
        yield (example[0], example[1], weights)
