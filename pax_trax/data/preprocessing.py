"""Per-example preprocessing: filters, truncation, padding, casts (`trax.data.inputs`).

Each factory returns a stream function (iterator of examples -> iterator of
examples). Examples are tuples of arrays; where keys are used (``len_map``,
``length_keys``, ``indices``) they index into that tuple. A malformed example
raises a ``ValueError`` that names the combinator, what it expected and what
it got.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from pax_trax.data._checks import describe, element, is_example_tuple, length_function

logger = logging.getLogger(__name__)


def FilterEmptyExamples(axes=None, debug=False):  # noqa: N802 (Trax name)
    """Filters empty examples.

    Drops any example with an empty element (an array with no entries, e.g.
    shape ``(0,)``). With `axes`, only the elements at those indices are
    checked; an example is dropped if ANY of them is empty.

    Args:
      axes: list of element indices to check; None checks all.
      debug: if true, logs every filtered example.

    >>> stream = iter([(np.zeros(0), np.ones(2)), (np.ones(1), np.ones(2))])
    >>> [ex[0].shape for ex in FilterEmptyExamples()(stream)]
    [(1,)]
    """

    def _filter_examples(generator):
        for example in generator:
            items = example if is_example_tuple(example) else (example,)
            empty = any(np.size(x) == 0 for i, x in enumerate(items) if axes is None or i in axes)
            if not empty:
                yield example
            elif debug:
                logger.info("Filtered example: %r", example)

    return _filter_examples


def FilterByLength(max_length, min_length=0, length_keys=None, length_axis=0):  # noqa: N802
    """Returns a function that filters out examples by length.

    The length is the largest size on `length_axis` among the elements at
    `length_keys` (default ``[0, 1]``); examples with length outside
    ``[min_length, max_length]`` are dropped (a bound of None is no bound).

    >>> stream = iter([(np.ones(2), np.ones(2)), (np.ones(5), np.ones(1))])
    >>> [ex[0].shape for ex in FilterByLength(max_length=4)(stream)]
    [(2,)]
    """
    if max_length is None and min_length is None:
        raise ValueError("FilterByLength: expected max_length or min_length, got neither.")
    length_keys = list(length_keys or [0, 1])
    length_of = length_function("FilterByLength", length_axis, length_keys)
    low = -math.inf if min_length is None else min_length
    high = math.inf if max_length is None else max_length
    # (One key: a tuple's length is read here, without calling length_of, as BucketByLength.)
    direct_key = length_keys[0] if len(length_keys) == 1 else None

    def filtered(generator):
        for example in generator:
            if direct_key is not None and type(example) is tuple:
                try:
                    length = example[direct_key].shape[length_axis]
                except (IndexError, AttributeError, TypeError):
                    length = length_of(example)
            else:
                length = length_of(example)
            if low <= length <= high:
                yield example

    return filtered


def _as_shape(where, key, max_shape):
    if isinstance(max_shape, (int, np.integer)):
        return (int(max_shape),)
    try:
        return tuple(int(m) for m in max_shape)
    except TypeError:
        raise TypeError(
            f"{where}: expected len_map[{key}] to be an int or a tuple of ints, got {max_shape!r}."
        ) from None


def TruncateToLength(len_map=None):  # noqa: N802 (Trax name)
    """Returns a stream function that resizes items as specified by `len_map`.

    Args:
      len_map: dict from element index to maximum shape, e.g.
        ``{0: (256,), 1: (256,)}`` keeps at most 256 tokens of each element of
        a pair. A maximum shape covers the leading axes; an int means
        ``(int,)``. None leaves examples unchanged.

    Unlike Trax (which used ``np.resize`` and could wrap values around when
    the maximum shape had a different layout), each axis is sliced: values are
    only ever dropped, never repeated. A bare-array example becomes a
    1-tuple, as in Trax.

    >>> stream = iter([(np.arange(6).reshape(2, 3), np.ones(4))])
    >>> x, y = next(TruncateToLength({0: (1, 2), 1: 3})(stream))
    >>> x.tolist(), y.shape
    ([[0, 1]], (3,))
    """
    maps = {} if len_map is None else {k: _as_shape("TruncateToLength", k, v) for k, v in len_map.items()}

    def _truncate_to_length(generator):
        for example in generator:
            if isinstance(example, np.ndarray):
                example = (example,)
            if not is_example_tuple(example):
                raise ValueError(
                    f"TruncateToLength: expected an example tuple of arrays, got {describe(example)}."
                )
            example = list(example)
            for key, max_shape in maps.items():
                value = np.asarray(element("TruncateToLength", example, key))
                if len(max_shape) > value.ndim:
                    raise ValueError(
                        f"TruncateToLength: expected example[{key}] to have rank >= "
                        f"{len(max_shape)} for len_map[{key}]={max_shape}, got {describe(value)}."
                    )
                example[key] = value[tuple(slice(0, m) for m in max_shape)]
            yield tuple(example)

    return _truncate_to_length


def _pad_value_for(pad_value, key):
    if isinstance(pad_value, dict):
        if key not in pad_value:
            raise ValueError(f"PadToLength: expected a pad_value for key {key}, got pad_value={pad_value}.")
        return pad_value[key]
    return pad_value


def PadToLength(len_map=None, pad_value=0, multiple=False):  # noqa: N802 (Trax name)
    """Pads the values to lengths given in `len_map`.

    Args:
      len_map: dict from element index to length; axis 0 of that element is
        padded (at the end) to this length, or with `multiple` to the next
        multiple of it. Longer elements are left as they are.
      pad_value: the padding value, or a dict from element index to value.
      multiple: pad to the closest multiple of ``len_map[key]`` instead.

    Returns:
      Function to pad examples to given lengths. A bare-array example is padded
      with ``len_map[0]``.

    >>> stream = iter([(np.zeros(5), np.ones(3))])
    >>> x, y = next(PadToLength({0: 10, 1: 4}, pad_value={0: 0, 1: 7})(stream))
    >>> x.shape, y.tolist()
    ((10,), [1.0, 1.0, 1.0, 7.0])
    """
    if len_map is None:
        raise ValueError("PadToLength: len_map parameter should be provided.")
    for key, value in len_map.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"PadToLength: expected len_map[{key}] to be a positive int, got {value!r}.")

    def _pad(where, array, length, value):
        array = np.asarray(array)
        if array.ndim == 0:
            raise ValueError(f"{where}: expected an array with a length axis, got {describe(array)}.")
        current = array.shape[0]
        # Trax computed `current % length` here, which pads 13 to 16 (not 20)
        # for multiple=True, length=10; this pads to the next multiple.
        padding = (-current) % length if multiple else max(0, length - current)
        widths = [(0, padding)] + [(0, 0)] * (array.ndim - 1)
        return np.pad(array, widths, mode="constant", constant_values=value)

    def _pad_to_length(generator):
        for example in generator:
            if is_example_tuple(example):
                example = list(example)
                for key, length in len_map.items():
                    value = element("PadToLength", example, key)
                    example[key] = _pad(
                        f"PadToLength (example[{key}])", value, length, _pad_value_for(pad_value, key)
                    )
                yield tuple(example)
            elif isinstance(example, np.ndarray):
                if 0 not in len_map:
                    raise ValueError(
                        f"PadToLength: expected len_map[0] for a bare-array example, got len_map={len_map}."
                    )
                yield _pad("PadToLength", example, len_map[0], _pad_value_for(pad_value, 0))
            else:
                raise ValueError(
                    f"PadToLength: expected an example tuple or an array, got {describe(example)}."
                )

    return _pad_to_length


def ConcatenateToLMInput(pad_to_length=None):  # noqa: N802 (Trax name)
    """Prepares the input needed for training of Language Models.

    An ``(input, target)`` pair becomes ``(x, x, loss_weights)`` with ``x``
    their concatenation (zero-padded to `pad_to_length` if given) and float32
    loss weights that are 1 on the target only (not on the input nor the
    padding). A 1-tuple or bare array ``x`` becomes ``(x, x)``.

    >>> x, _, w = next(ConcatenateToLMInput(6)(iter([(np.array([5, 6]), np.array([7]))])))
    >>> x.tolist(), w.tolist()
    ([5, 6, 7, 0, 0, 0], [0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    """

    def _concatenate_to_lm_input(generator):
        for example in generator:
            if is_example_tuple(example) and len(example) == 2:
                inputs, targets = np.asarray(example[0]), np.asarray(example[1])
                if inputs.ndim != 1 or targets.ndim != 1:
                    raise ValueError(
                        f"ConcatenateToLMInput: expected 1-D (input, target) arrays, got {describe(example)}."
                    )
                concatenated = np.concatenate((inputs, targets), axis=-1)
                loss_weights = np.concatenate(
                    (np.zeros(inputs.shape, np.float32), np.ones(targets.shape, np.float32))
                )
                if pad_to_length is not None:
                    padding = pad_to_length - (inputs.shape[0] + targets.shape[0])
                    if padding < 0:
                        raise ValueError(
                            "ConcatenateToLMInput: example lengths "
                            f"({inputs.shape[0]}, {targets.shape[0]}) longer than pad_to_length "
                            f"({pad_to_length})."
                        )
                    loss_weights = np.pad(loss_weights, (0, padding), "constant")
                    concatenated = np.pad(concatenated, (0, padding), "constant")
                yield (concatenated, concatenated, loss_weights)
            elif is_example_tuple(example) and len(example) == 1:
                yield (example[0], example[0])
            elif isinstance(example, np.ndarray):
                yield (example, example)
            else:
                raise ValueError(
                    "ConcatenateToLMInput: expected (input, target), (x,) or an array, got "
                    f"{describe(example)}."
                )

    return _concatenate_to_lm_input


def CastTo(dtype=np.int32, indices=(0, 1), debug=False):  # noqa: N802 (Trax name)
    """Casts the given indices to the given dtype.

    >>> x, y = next(CastTo(np.int32, indices=(0,))(iter([(np.ones(2), np.ones(2))])))
    >>> x.dtype, y.dtype
    (dtype('int32'), dtype('float64'))
    """
    dtype = np.dtype(dtype)

    def _cast_fn(generator):
        for count, example in enumerate(generator, start=1):
            if not is_example_tuple(example):
                raise ValueError(f"CastTo: expected an example tuple, got {describe(example)}.")
            example = list(example)
            changed = []
            for i in indices:
                value = np.asarray(element("CastTo", example, i))
                if value.dtype != dtype:
                    # Downcasting int64 -> int32 is expected and not reported.
                    if not (value.dtype == np.int64 and dtype == np.int32):
                        changed.append((i, value.dtype))
                    value = value.astype(dtype)
                example[i] = value
            if debug and changed:
                logger.info("dtype mismatch in example[%d] = %r was earlier: %r", count, example, changed)
            yield tuple(example)

    return _cast_fn


def AppendValue(val=None):  # noqa: N802 (Trax name)
    """Appends values provided in `val` to inputs.

    Args:
      val: dict from element index to an array appended on the last axis of
        that element (e.g. an EOS id: ``{0: [1], 1: [1]}``). For a bare-array
        example, ``val[0]`` is appended to its flattened values.

    >>> next(AppendValue({0: [1]})(iter([(np.array([5, 6]), np.array([7]))])))[0].tolist()
    [5, 6, 1]
    """

    def _append(where, array, value):
        array = np.asarray(array)
        value = np.asarray(value)
        if value.ndim == 0 and array.ndim == 1:
            value = value[None]  # a single id appended to a token sequence
        if array.ndim != value.ndim:
            raise ValueError(
                f"{where}: expected the appended value to have the element's rank {array.ndim}, "
                f"got value shape {value.shape} for {describe(array)}."
            )
        try:
            return np.append(array, value, -1)
        except ValueError as e:
            raise ValueError(
                f"{where}: cannot append value of shape {value.shape} to {describe(array)} "
                f"on the last axis: {e}"
            ) from e

    def _append_value(generator):
        for example in generator:
            if is_example_tuple(example):
                example = list(example)
                for key, value in (val or {}).items():
                    example[key] = _append(
                        f"AppendValue (example[{key}])", element("AppendValue", example, key), value
                    )
                yield tuple(example)
            elif isinstance(example, np.ndarray):
                yield example if not val else np.append(example, val[0])
            else:
                raise ValueError(
                    f"AppendValue: expected an example tuple or an array, got {describe(example)}."
                )

    return _append_value


def PrefixLM(input_length=128, output_length=512):  # noqa: N802 (Trax name)
    """Chunks examples so as to make inputs/outputs of specified lengths.

    Each token sequence is cut into consecutive ``(input, output)`` pairs of
    `input_length` and up to `output_length` tokens; a trailing piece that does
    not leave at least one output token is dropped.

    >>> list(PrefixLM(input_length=2, output_length=3)([[1, 2, 3, 4, 5, 6, 7, 8]]))
    [([1, 2], [3, 4, 5]), ([6, 7], [8])]
    """
    if input_length < 1 or output_length < 1:
        raise ValueError(
            f"PrefixLM: expected positive input_length and output_length, got "
            f"{input_length} and {output_length}."
        )

    def _f(generator):
        for example in generator:
            try:
                n_tokens = len(example)
            except TypeError:
                raise ValueError(f"PrefixLM: expected a token sequence, got {describe(example)}.") from None
            begin = 0
            # |--- input_length ---|--- output_length ---| repeated while an
            # input chunk still leaves at least one output token.
            while begin + input_length < n_tokens:
                input_end = begin + input_length
                output_end = min(input_end + output_length, n_tokens)
                yield (example[begin:input_end], example[input_end:output_end])
                begin = output_end

    return _f
