"""Helpers that turn a malformed stream item into an error naming the combinator.

Every stream combinator in `pax_trax.data` reads examples through these
helpers, so a bad example fails with ``"<Combinator>: expected ..., got ..."``
instead of a bare ``IndexError`` deep inside NumPy.
"""

from __future__ import annotations

import numpy as np

_MAX_DESCRIBED_ITEMS = 6


def describe(item) -> str:
    """A short description of a stream item: type, dtype and shape, not values.

    >>> describe((np.zeros((2, 3), np.float32), 7))
    'tuple of 2: (ndarray float32 (2, 3), int 7)'
    """
    if isinstance(item, np.ndarray):
        return f"ndarray {item.dtype} {item.shape}"
    if isinstance(item, (tuple, list)):
        parts = [describe(x) for x in item[:_MAX_DESCRIBED_ITEMS]]
        if len(item) > _MAX_DESCRIBED_ITEMS:
            parts.append("...")
        return f"{type(item).__name__} of {len(item)}: ({', '.join(parts)})"
    if isinstance(item, (bool, int, float, np.generic)):
        return f"{type(item).__name__} {item!r}"
    if isinstance(item, (str, bytes)):
        shown = repr(item[:20]) + ("..." if len(item) > 20 else "")
        return f"{type(item).__name__} {shown}"
    if hasattr(item, "shape") and hasattr(item, "dtype"):
        return f"{type(item).__name__} {item.dtype} {tuple(item.shape)}"
    return type(item).__name__


def is_example_tuple(example) -> bool:
    """True for the tuple (or list) form of an example, false for a bare array."""
    return isinstance(example, (tuple, list))


def element(where: str, example, key: int):
    """Returns ``example[key]``; a clear error when `example` has no such element."""
    if not is_example_tuple(example):
        raise ValueError(
            f"{where}: expected an example tuple with an element at index {key}, got {describe(example)}."
        )
    if not -len(example) <= key < len(example):
        raise ValueError(
            f"{where}: expected an example tuple with an element at index {key}, got {describe(example)}."
        )
    return example[key]


def shape_of(where: str, value, what: str) -> tuple:
    """The shape of an array-like stream element, or a clear error."""
    try:
        return np.shape(value)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"{where}: expected {what} to be an array, got {describe(value)}.") from e


def axis_size(where: str, value, axis: int, what: str) -> int:
    """``value.shape[axis]``; a clear error when `value` has too few dimensions."""
    shape = shape_of(where, value, what)
    if not -len(shape) <= axis < len(shape):
        raise ValueError(
            f"{where}: expected {what} to have an axis {axis} (rank >= "
            f"{axis + 1 if axis >= 0 else -axis}), got {describe(value)}."
        )
    return shape[axis]


def example_length(where: str, example, length_axis: int, length_keys) -> int:
    """Length of an example: the largest size on `length_axis` over `length_keys`.

    A bare array (not a tuple) is its own length, as in Trax.

    Every malformed example is explained; `length_function` makes the fast
    version that streams use.

    >>> example_length("f", (np.zeros(3), np.zeros((5, 2))), 0, [0, 1])
    5
    """
    if not is_example_tuple(example):
        return axis_size(where, example, length_axis, "the example")
    return max(
        axis_size(where, element(where, example, key), length_axis, f"example[{key}]") for key in length_keys
    )


def length_function(where: str, length_axis: int, length_keys):
    """``example -> example_length(where, example, length_axis, length_keys)``, with the
    usual case, a tuple of arrays long enough, read directly (one key without a loop).

    >>> length_function("f", 0, [1])((np.zeros(3), np.zeros((5, 2))))
    5
    """
    length_keys = list(length_keys)
    only_key = length_keys[0] if len(length_keys) == 1 else None

    def length(example):
        if isinstance(example, tuple):
            try:
                if only_key is not None:
                    return example[only_key].shape[length_axis]
                return max(example[key].shape[length_axis] for key in length_keys)
            except (IndexError, AttributeError, TypeError):
                pass  # explained by example_length
        return example_length(where, example, length_axis, length_keys)

    return length
