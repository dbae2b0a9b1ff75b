"""Trax's ``tf.data`` preprocessing functions (``trax.data.tf_inputs``): CIFAR-10
augmentation, LM and translation concatenation, length filters, truncation,
padding and EOS.

Each function takes ``(dataset, training, ...)`` and returns a new
``tf.data.Dataset``, so it can be the ``preprocess_fn`` or
``bare_preprocess_fn`` of `pax_trax.data.data_streams`. Two kinds of
elements are expected, as in Trax:

* ``preprocess_fn``-style functions (``cifar10_*``, `concat_preprocess`,
  `squeeze_targets_preprocess`, `lm1b_preprocess`, `wmt_preprocess`,
  `wmt_concat_preprocess`, `bair_robot_pushing_preprocess`) read
  ``(features, targets)`` pairs with `features` a dict, which is what
  `data_streams` hands its ``preprocess_fn`` once targets are appended;
* the others (`downsampled_imagenet_flatten_bare_preprocess`,
  `lm_token_preprocessing`, `filter_dataset_on_len`,
  `truncate_dataset_on_len`, `pad_dataset_to_length`,
  `add_eos_to_output_features`) read plain feature dicts, as a
  ``bare_preprocess_fn`` gets them.

A dataset of other elements, a missing feature, a feature of the wrong rank
or a malformed ``len_map`` is an error naming the function, raised when the
function is called (not at the first element). TensorFlow is imported only
when one of these functions runs.

Differences from Trax 1.4.1: the random crop and flip of the CIFAR-10
augmentation take a keyword-only ``seed`` (Trax's were unseeded) and keep
an image's own height and width (Trax always cropped to 32x32x3; the same
for CIFAR's 32x32x3 images); `pad_dataset_to_length` pads features of any
rank along their first axis (Trax: 1-D only); `add_eos_to_output_features`
casts `eos` to the feature's dtype; flattened CIFAR targets are cast to
int64; `bair_robot_pushing_hparams` sets fields on any object or dict (Trax
was meant for tensor2tensor's ``HParams``, which is not needed).

>>> tf = _lazy.tensorflow("doctest")
>>> pairs = tf.data.Dataset.from_tensor_slices(({"inputs": [[1, 2], [3, 4]]}, [[5], [6]]))
>>> [t.tolist() for _, t in concat_preprocess(pairs, training=True).as_numpy_iterator()]
[[0, 1, 2, 0, 5], [0, 3, 4, 0, 6]]
"""

from __future__ import annotations

import numbers

from pax_trax.data import _lazy  # noqa: F401 (the doctests take TensorFlow from it)
from pax_trax.data._tf_checks import (
    _dict_spec,
    _int_arg,
    _len_map,
    _name,
    _pair_spec,
    _same_dtype,
    _tensor_spec,
    _tf,
)

# (The image and video functions live in their own file; they are part of this module's API.)
from pax_trax.data.tf_image_preprocessing import (
    bair_robot_pushing_hparams,
    bair_robot_pushing_preprocess,
    cifar10_augmentation_flatten_preprocess,
    cifar10_augmentation_preprocess,
    cifar10_no_augmentation_preprocess,
    downsampled_imagenet_flatten_bare_preprocess,
)

__all__ = [
    "cifar10_no_augmentation_preprocess",
    "cifar10_augmentation_preprocess",
    "cifar10_augmentation_flatten_preprocess",
    "downsampled_imagenet_flatten_bare_preprocess",
    "concat_preprocess",
    "squeeze_targets_preprocess",
    "lm1b_preprocess",
    "wmt_preprocess",
    "wmt_concat_preprocess",
    "lm_token_preprocessing",
    "bair_robot_pushing_hparams",
    "bair_robot_pushing_preprocess",
    "filter_dataset_on_len",
    "truncate_dataset_on_len",
    "pad_dataset_to_length",
    "add_eos_to_output_features",
]


# ------------------------------------------------------------ text and LM


def concat_preprocess(dataset, training, pad_symbol=0):
    """Pre-processing function that concatenates input and target for LM.

    Each ``(features, targets)`` becomes ``(features, seq)`` with ``seq =
    [pad_symbol] + inputs + [pad_symbol] + targets`` (along the first axis),
    also stored as ``features['inputs']``.

    >>> tf = _lazy.tensorflow("doctest")
    >>> pairs = tf.data.Dataset.from_tensor_slices(({"inputs": [[1, 2]]}, [[3, 4, 5]]))
    >>> features, seq = next(concat_preprocess(pairs, True, pad_symbol=9).as_numpy_iterator())
    >>> seq.tolist(), features["inputs"].tolist()
    ([9, 1, 2, 9, 3, 4, 5], [9, 1, 2, 9, 3, 4, 5])
    """
    who = _name("concat_preprocess")
    del training
    tf = _tf(who)
    features, targets = _pair_spec(dataset, who, ["inputs"])
    _tensor_spec(features["inputs"], "features['inputs']", who, min_rank=1)
    _tensor_spec(targets, "the targets", who, min_rank=1)
    _same_dtype(features["inputs"], targets, "features['inputs'] and the targets", who)

    def concat(features, targets):
        inputs = features["inputs"]
        pad = tf.expand_dims(tf.zeros_like(inputs[0]) + tf.cast(pad_symbol, inputs.dtype), axis=0)
        seq = tf.concat([pad, inputs, pad, targets], axis=0)
        return {**features, "inputs": seq}, seq

    return dataset.map(concat)


def squeeze_targets_preprocess(dataset, training):
    """Pre-processing function that squeezes last axis of targets.

    Targets whose last axis has (static) size 1 lose it; others are kept.

    >>> tf = _lazy.tensorflow("doctest")
    >>> pairs = tf.data.Dataset.from_tensor_slices(({"x": [0, 1]}, [[[3], [4]], [[5], [6]]]))
    >>> squeeze_targets_preprocess(pairs, True).element_spec[1].shape
    TensorShape([2])
    """
    who = _name("squeeze_targets_preprocess")
    del training
    tf = _tf(who)
    _, targets = _pair_spec(dataset, who)
    _tensor_spec(targets, "the targets", who)
    shape = targets.shape
    if shape.rank is None or shape.rank == 0 or shape[-1] != 1:
        return dataset
    return dataset.map(lambda features, targets: (features, tf.squeeze(targets, axis=-1)))


def lm1b_preprocess(dataset, training, max_target_length=-1, max_eval_target_length=-1):
    """Preprocessing for LM1B: filter out targets exceeding maximum length.

    In training, keeps the pairs whose targets have at most
    `max_target_length` entries along their first axis; in eval, at most
    `max_eval_target_length`. A limit of 0 or less keeps all.

    >>> tf = _lazy.tensorflow("doctest")
    >>> pairs = tf.data.Dataset.from_generator(lambda: iter([({"x": 0}, [1, 2]), ({"x": 1}, [1, 2, 3])]),
    ...     output_signature=({"x": tf.TensorSpec([], tf.int32)}, tf.TensorSpec([None], tf.int32)))
    >>> [int(f["x"]) for f, _ in lm1b_preprocess(pairs, True, max_target_length=2).as_numpy_iterator()]
    [0]
    >>> len(list(lm1b_preprocess(pairs, False, max_target_length=2).as_numpy_iterator()))
    2
    """
    who = _name("lm1b_preprocess")
    tf = _tf(who)
    _, targets = _pair_spec(dataset, who)
    train_limit = _int_arg(max_target_length, "max_target_length", who)
    eval_limit = _int_arg(max_eval_target_length, "max_eval_target_length", who)
    limit = train_limit if training else eval_limit
    if limit <= 0:
        return dataset
    _tensor_spec(targets, "the targets", who, min_rank=1)
    return dataset.filter(lambda _, targets: tf.shape(targets)[0] <= limit)


def wmt_preprocess(dataset, training, max_length=-1, max_eval_length=-1):
    """Preprocessing for WMT: filter out pairs exceeding maximum length.

    In training, keeps the pairs whose ``features['inputs']`` and targets both
    have at most `max_length` entries along their first axis; in eval, at
    most `max_eval_length`. A limit of 0 or less keeps all. (Trax's docstring
    here says LM1B: a copy of `lm1b_preprocess`'s.)

    >>> tf = _lazy.tensorflow("doctest")
    >>> pairs = tf.data.Dataset.from_generator(
    ...     lambda: iter([({"inputs": [1, 2, 3]}, [4]), ({"inputs": [1]}, [4, 5])]),
    ...     output_signature=({"inputs": tf.TensorSpec([None], tf.int32)}, tf.TensorSpec([None], tf.int32)))
    >>> [t.tolist() for _, t in wmt_preprocess(pairs, True, max_length=2).as_numpy_iterator()]
    [[4, 5]]
    """
    who = _name("wmt_preprocess")
    tf = _tf(who)
    features, targets = _pair_spec(dataset, who, ["inputs"])
    train_limit = _int_arg(max_length, "max_length", who)
    eval_limit = _int_arg(max_eval_length, "max_eval_length", who)
    limit = train_limit if training else eval_limit
    if limit <= 0:
        return dataset
    _tensor_spec(features["inputs"], "features['inputs']", who, min_rank=1)
    _tensor_spec(targets, "the targets", who, min_rank=1)

    def short_enough(features, targets):
        return tf.maximum(tf.shape(features["inputs"])[0], tf.shape(targets)[0]) <= limit

    return dataset.filter(short_enough)


def _concat_with_mask(tf, inputs, targets):
    """``inputs + [0] + targets`` and its mask (0 on inputs and the separator, 1 on targets)."""
    pad = tf.expand_dims(tf.zeros_like(inputs[0]), axis=0)
    seq = tf.concat([inputs, pad, targets], axis=0)
    mask = tf.concat([tf.zeros_like(inputs), pad, tf.ones_like(targets)], axis=0)
    return seq, mask


def wmt_concat_preprocess(dataset, training, max_length=-1, max_eval_length=-1):
    """Preprocessing for WMT: filter exceeding maximum length and concatenate.

    Filters as `wmt_preprocess`, then each pair becomes ``(features, seq)``
    with ``seq = inputs + [0] + targets`` stored as ``features['inputs']`` too,
    and ``features['mask']`` (of the inputs' dtype) 0 on the inputs and the
    separator, 1 on the targets: a translation pair as one LM sequence.

    >>> tf = _lazy.tensorflow("doctest")
    >>> pairs = tf.data.Dataset.from_tensor_slices(({"inputs": [[5, 6]]}, [[7, 8, 9]]))
    >>> features, seq = next(wmt_concat_preprocess(pairs, True).as_numpy_iterator())
    >>> seq.tolist(), features["mask"].tolist()
    ([5, 6, 0, 7, 8, 9], [0, 0, 0, 1, 1, 1])
    """
    who = _name("wmt_concat_preprocess")
    tf = _tf(who)
    features, targets = _pair_spec(dataset, who, ["inputs"])
    _tensor_spec(features["inputs"], "features['inputs']", who, min_rank=1)
    _tensor_spec(targets, "the targets", who, min_rank=1)
    _same_dtype(features["inputs"], targets, "features['inputs'] and the targets", who)
    dataset = wmt_preprocess(dataset, training, max_length, max_eval_length)

    def concat(features, targets):
        seq, mask = _concat_with_mask(tf, features["inputs"], targets)
        return {**features, "inputs": seq, "mask": mask}, seq

    return dataset.map(concat)


def lm_token_preprocessing(dataset, training):
    """Concatenates inputs, 0, targets, with masking only for targets.

    A bare preprocess function: each feature dict gets ``inputs`` and
    ``targets`` both set to ``inputs + [0] + targets`` and a ``mask`` (of the
    inputs' dtype) 0 on the inputs and the separator, 1 on the targets.

    >>> tf = _lazy.tensorflow("doctest")
    >>> examples = tf.data.Dataset.from_tensor_slices({"inputs": [[5, 6]], "targets": [[7]]})
    >>> x = next(lm_token_preprocessing(examples, True).as_numpy_iterator())
    >>> x["inputs"].tolist(), x["targets"].tolist(), x["mask"].tolist()
    ([5, 6, 0, 7], [5, 6, 0, 7], [0, 0, 0, 1])
    """
    who = _name("lm_token_preprocessing")
    del training
    tf = _tf(who)
    spec = _dict_spec(dataset, who, ["inputs", "targets"])
    _tensor_spec(spec["inputs"], "'inputs'", who, min_rank=1)
    _tensor_spec(spec["targets"], "'targets'", who, min_rank=1)
    _same_dtype(spec["inputs"], spec["targets"], "'inputs' and 'targets'", who)

    def concat(example):
        seq, mask = _concat_with_mask(tf, example["inputs"], example["targets"])
        return {**example, "inputs": seq, "targets": seq, "mask": mask}

    return dataset.map(concat)


# ----------------------------------------------------- lengths of feature dicts


def _sequence_features(spec, keys, who):
    for key in keys:
        _tensor_spec(spec[key], f"feature {key!r}", who, min_rank=1)


def filter_dataset_on_len(dataset, training, len_map=None, filter_on_eval=False):
    """Filters a dataset of lengths given in `len_map`.

    Args:
      dataset: `tf.data.Dataset` of feature dicts, the dataset to filter.
      training: bool, true if we are in training mode.
      len_map: optional dict of str to (int, int). We filter examples where a
        feature's size is beyond the specified bounds. Ex:
        {'inputs': (1, 512), 'targets': (64, 128)} will keep only those examples
        where 1 <= len(inputs) <= 512 and 64 <= len(targets) <= 128.
      filter_on_eval: bool if true, we will filter in eval mode also.

    Returns:
      a filtered `tf.data.Dataset`.

    >>> tf = _lazy.tensorflow("doctest")
    >>> examples = tf.data.Dataset.from_generator(lambda: ({"inputs": [7] * n} for n in range(5)),
    ...     output_signature={"inputs": tf.TensorSpec([None], tf.int32)})
    >>> [len(e["inputs"]) for e in filter_dataset_on_len(examples, True, {"inputs": (1, 3)})
    ...  .as_numpy_iterator()]
    [1, 2, 3]
    """
    who = _name("filter_dataset_on_len")
    if len_map is None:
        return dataset
    bounds = _len_map(len_map, who, bounds=True)
    if not training and not filter_on_eval:
        return dataset
    tf = _tf(who)
    spec = _dict_spec(dataset, who, list(bounds))
    _sequence_features(spec, bounds, who)

    def within_bounds(example):
        keep = tf.constant(True)
        for key, (low, high) in bounds.items():
            size = tf.shape(example[key])[0]
            keep = tf.logical_and(keep, tf.logical_and(low <= size, size <= high))
        return keep

    return dataset.filter(within_bounds)


def truncate_dataset_on_len(dataset, training, len_map=None, truncate_on_eval=False):
    """Truncates features in an example to lengths given in `len_map`.

    Args:
      dataset: `tf.data.Dataset` of feature dicts, the dataset to truncate.
      training: bool, true if we are in training mode.
      len_map: optional dict of str to int, we truncate examples where a feature's
        size is beyond the max. Ex: {'inputs': 512, 'targets': 64} will truncate
        examples to be within those bounds (along their first axis).
      truncate_on_eval: bool if true, we will truncate in eval mode also.

    Returns:
      a truncated `tf.data.Dataset`.

    >>> tf = _lazy.tensorflow("doctest")
    >>> examples = tf.data.Dataset.from_tensor_slices({"targets": [[1, 2, 3, 4]]})
    >>> [e["targets"].tolist() for e in truncate_dataset_on_len(examples, True, {"targets": 2})
    ...  .as_numpy_iterator()]
    [[1, 2]]
    """
    who = _name("truncate_dataset_on_len")
    if len_map is None:
        return dataset
    lengths = _len_map(len_map, who, bounds=False)
    if not training and not truncate_on_eval:
        return dataset
    _tf(who)
    spec = _dict_spec(dataset, who, list(lengths))
    _sequence_features(spec, lengths, who)

    def truncate(example):
        # (A slice past the end is the whole feature: no need to compare lengths first.)
        return {**example, **{key: example[key][:length] for key, length in lengths.items()}}

    return dataset.map(truncate)


def pad_dataset_to_length(dataset, training, len_map=None):
    """Pad features less than specified length to specified length.

    Each feature named in `len_map` (a dict of name -> int) that is shorter
    than its length along the first axis gets zeros appended up to it; longer
    ones are kept as they are (see `truncate_dataset_on_len`). Trax padded
    1-D features only; here any rank (the other axes are kept).

    >>> tf = _lazy.tensorflow("doctest")
    >>> examples = tf.data.Dataset.from_tensor_slices({"targets": [[1, 2]]})
    >>> [e["targets"].tolist() for e in pad_dataset_to_length(examples, True, {"targets": 4})
    ...  .as_numpy_iterator()]
    [[1, 2, 0, 0]]
    """
    who = _name("pad_dataset_to_length")
    del training
    if len_map is None:
        return dataset
    lengths = _len_map(len_map, who, bounds=False)
    tf = _tf(who)
    spec = _dict_spec(dataset, who, list(lengths))
    _sequence_features(spec, lengths, who)

    def pad_feature(value, length):
        missing = tf.maximum(length - tf.shape(value)[0], 0)
        paddings = tf.concat([[[0, missing]], tf.zeros([tf.rank(value) - 1, 2], tf.int32)], axis=0)
        return tf.pad(value, paddings)

    def pad(example):
        return {**example, **{key: pad_feature(example[key], length) for key, length in lengths.items()}}

    return dataset.map(pad)


def add_eos_to_output_features(dataset, training, output_features="targets", eos=1):
    """Adds `EOS` to all features in `output_features`.

    Appends `eos` (cast to each feature's dtype) to the 1-D features named by
    `output_features` (a name or a list of names) of each feature dict.

    >>> tf = _lazy.tensorflow("doctest")
    >>> examples = tf.data.Dataset.from_tensor_slices({"inputs": [[4, 5]], "targets": [[6]]})
    >>> x = next(add_eos_to_output_features(examples, True, ["inputs", "targets"]).as_numpy_iterator())
    >>> x["inputs"].tolist(), x["targets"].tolist()
    ([4, 5, 1], [6, 1])
    """
    who = _name("add_eos_to_output_features")
    del training
    tf = _tf(who)
    names = [output_features] if not isinstance(output_features, (list, tuple)) else list(output_features)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{who}: output_features must be a feature name or a list of them, "
                            f"got {output_features!r}.")
    if not isinstance(eos, numbers.Number) or isinstance(eos, bool):
        raise TypeError(f"{who}: eos must be a number, got {eos!r}.")
    spec = _dict_spec(dataset, who, names)
    for name in names:
        _tensor_spec(spec[name], f"feature {name!r}", who, rank=1)
        if spec[name].dtype.is_integer and not float(eos).is_integer():
            raise ValueError(f"{who}: eos must be an integer for the {spec[name].dtype.name} feature "
                             f"{name!r}, got {eos!r}.")

    def add_eos(example):
        ends = {}
        for name in names:
            dtype = example[name].dtype
            end = tf.constant([int(eos) if dtype.is_integer else eos], dtype)  # (2.0 is an int's 2)
            ends[name] = tf.concat([example[name], end], axis=0)
        return {**example, **ends}

    return dataset.map(add_eos)
