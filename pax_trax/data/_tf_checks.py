"""Checks shared by the ``tf.data`` preprocessing functions (`tf_preprocessing`,
`tf_image_preprocessing`): what a dataset's elements must be, and their arguments."""

from __future__ import annotations

import collections.abc
import numbers

from pax_trax.data import _lazy


def _name(function):
    return f"pax_trax.data.{function}"


def _tf(who):
    return _lazy.tensorflow(who)


def _describe_spec(spec):
    """A short description of a tf.data element_spec: structure, dtypes and shapes."""
    if isinstance(spec, dict):
        return "{" + ", ".join(f"{key!r}: {_describe_spec(value)}" for key, value in spec.items()) + "}"
    if isinstance(spec, tuple):
        return "(" + ", ".join(_describe_spec(value) for value in spec) + ")"
    shape, dtype = getattr(spec, "shape", None), getattr(spec, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{dtype.name} {shape}"
    return type(spec).__name__


def _element_spec(dataset, who):
    if not (hasattr(dataset, "element_spec") and hasattr(dataset, "map")):
        raise TypeError(f"{who}: expected a tf.data.Dataset, got {type(dataset).__name__}.")
    return dataset.element_spec


def _require_keys(spec, keys, who, what):
    for key in keys:
        if key not in spec:
            raise KeyError(f"{who}: the {what} have no feature {key!r}; they have {sorted(spec)}.")


def _pair_spec(dataset, who, keys=()):
    """The (features, targets) specs of `dataset`'s elements, with `keys` in features."""
    spec = _element_spec(dataset, who)
    if not (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], dict)):
        raise ValueError(
            f"{who}: expected a dataset of (features, targets) pairs with features a dict (what "
            f"data_streams gives its preprocess_fn), got elements {_describe_spec(spec)}.")
    _require_keys(spec[0], keys, who, "features")
    return spec


def _dict_spec(dataset, who, keys=()):
    """The spec of `dataset`'s dict elements, with `keys` in them."""
    spec = _element_spec(dataset, who)
    if not isinstance(spec, dict):
        raise ValueError(
            f"{who}: expected a dataset of feature dicts (what data_streams gives its "
            f"bare_preprocess_fn), got elements {_describe_spec(spec)}.")
    _require_keys(spec, keys, who, "examples")
    return spec


def _tensor_spec(spec, what, who, min_rank=0, rank=None):
    """Checks that `spec` is one tensor of a fitting rank (when its rank is known)."""
    if not hasattr(spec, "shape") or isinstance(spec, (dict, tuple)):
        raise ValueError(f"{who}: expected {what} to be one tensor, got {_describe_spec(spec)}.")
    known = spec.shape.rank
    if known is not None and (known < min_rank or (rank is not None and known != rank)):
        wanted = f"rank {rank}" if rank is not None else f"at least {min_rank} ax{'i' if min_rank == 1 else 'e'}s"
        if (rank if rank is not None else min_rank) == 1:
            wanted += " (a sequence)"
        raise ValueError(f"{who}: expected {what} of {wanted}, got {_describe_spec(spec)}.")
    return spec


def _same_dtype(first, second, what, who):
    if first.dtype != second.dtype:
        raise ValueError(f"{who}: {what} must have one dtype to be concatenated, got "
                         f"{first.dtype.name} and {second.dtype.name}.")


def _int_arg(value, name, who, minimum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{who}: {name} must be an int, got {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{who}: {name} must be at least {minimum}, got {value!r}.")
    return int(value)


def _len_map(len_map, who, bounds):
    """`len_map` checked: a dict of feature name -> int (or -> (min, max) with `bounds`)."""
    if not isinstance(len_map, collections.abc.Mapping):
        raise TypeError(f"{who}: len_map must be a dict of feature name -> "
                        f"{'(min_len, max_len)' if bounds else 'length'}, got {len_map!r}.")
    checked = {}
    for key, value in len_map.items():
        if bounds:
            if not (isinstance(value, (tuple, list)) and len(value) == 2):
                raise ValueError(f"{who}: len_map[{key!r}] must be a pair (min_len, max_len), "
                                 f"got {value!r}.")
            low = _int_arg(value[0], f"len_map[{key!r}][0]", who)
            high = _int_arg(value[1], f"len_map[{key!r}][1]", who)
            checked[key] = (low, high)
        else:
            checked[key] = _int_arg(value, f"len_map[{key!r}]", who, minimum=0)
    return checked
