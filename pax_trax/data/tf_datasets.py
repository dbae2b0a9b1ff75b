"""The TensorFlow side of `pax_trax.data`'s TFDS support (Trax's ``tf_inputs``): the
``'tf'`` backend of `pax_trax.data.TFDS` (``tfds.load`` and ``tfds.as_numpy``,
for datasets stored as tfrecord), `data_streams`, `dataset_to_stream` and
`no_preprocess`. TensorFlow and TFDS are imported only when a function runs
(`dataset_to_stream` needs neither when given NumPy pairs).

>>> no_preprocess([1, 2], training=False)
[1, 2]
"""

from __future__ import annotations

import random

import numpy as np

from pax_trax.data import _lazy
from pax_trax.data._tfds_select import _check_keys, _decode_text, _split_for
from pax_trax.data.tfds_prepare import (
    _choose_backend,
    _file_format,
    _prepared_builder,
    _tfds_module,
)

__all__ = ["data_streams", "dataset_to_stream", "no_preprocess"]

# Trax skips up to this many examples at the start of `data_streams`' training stream.
_MAX_SKIP_EXAMPLES = 100_000
# Elements the 'tf' backend reads from tf.data at once (when their shapes allow).
_TF_READ_BATCH = 256


# ---------------------------------------------------------- the 'tf' backend


def _tf_dataset(tfds, read):
    """The tf.data pipeline of the 'tf' backend (built per stream, so that every
    stream starts with the same shuffle)."""
    read_config = tfds.ReadConfig(shuffle_seed=read.seed) if read.shuffle else None
    dataset = tfds.load(read.dataset_name, split=read.split, data_dir=read.data_dir,
                        download=False, shuffle_files=read.shuffle, read_config=read_config)
    if read.preprocess_fn is not None:
        dataset = read.preprocess_fn(dataset)
    keys = read.keys
    if keys is not None:
        spec = dataset.element_spec
        available = list(spec) if isinstance(spec, dict) else []
        _check_keys(keys, available, f"the examples of {read.dataset_name!r} ({read.split})")
        dataset = dataset.map(lambda example: tuple(example[k] for k in keys))
    if read.shuffle:
        dataset = dataset.shuffle(read.shuffle_buffer_size, seed=read.seed,
                                  reshuffle_each_iteration=True)
    return dataset.repeat() if read.repeat else dataset


def _tf_stream(tfds, read):
    _tf_dataset(tfds, read)  # Errors (keys, tfds_preprocess_fn) now, not at the first example.

    def stream(generator=None):
        del generator
        dataset = _tf_dataset(tfds, read)
        if _has_static_shapes(dataset.element_spec):
            examples = _unbatched(tfds.as_numpy(dataset.batch(_TF_READ_BATCH)))
        else:
            examples = tfds.as_numpy(dataset)
        for example in examples:
            yield _decode_text(example) if read.decode_text else example

    return stream


def _has_static_shapes(element_spec):
    """Whether every component of `element_spec` is a dense tensor of a fully known shape
    (so that elements can be read in batches, see `_unbatched`)."""
    tf = _lazy.tensorflow("pax_trax.data.TFDS")
    specs = tf.nest.flatten(element_spec)
    return bool(specs) and all(type(spec) is tf.TensorSpec and spec.shape.is_fully_defined()
                               for spec in specs)


def _unbatched(batches):
    """The examples of NumPy `batches` (tuples/dicts of arrays with a leading batch axis).

    tf.data hands out ~4,000 elements a second one by one through
    ``tfds.as_numpy`` (its per-element cost dominated the walkthrough
    pipeline); reading batches of `_TF_READ_BATCH` and splitting them here is
    ~10x faster and gives the same examples: NumPy scalars (``np.int64(3)``),
    ``bytes`` for text, and arrays of their own (copied, not views of the batch).
    """
    for batch in batches:
        n = len(_first_leaf(batch))
        for i in range(n):
            yield _take(batch, i)


def _first_leaf(tree):
    while isinstance(tree, (tuple, list, dict)):
        tree = next(iter(tree.values())) if isinstance(tree, dict) else tree[0]
    return tree


def _take(tree, i):
    if isinstance(tree, dict):
        return {key: _take(value, i) for key, value in tree.items()}
    if isinstance(tree, tuple):
        return tuple(_take(value, i) for value in tree)
    if isinstance(tree, list):
        return [_take(value, i) for value in tree]
    row = tree[i]
    return row.copy() if isinstance(row, np.ndarray) else row


# ----------------------------------------------------------------- data_streams


def no_preprocess(dataset, training):
    """Trax's identity preprocessing function: returns `dataset`.

    >>> no_preprocess([1, 2], training=True)
    [1, 2]
    """
    del training
    return dataset


def dataset_to_stream(dataset, input_name):
    """Takes a tf.Dataset and creates a numpy stream of ready batches.

    Each element of `dataset` is a pair ``(features, targets)`` with
    `features` a dict; the stream yields ``(features[input_name], targets)``,
    or ``(..., features['mask'])`` when there is a mask. uint8 values are cast
    to int32 (Trax cast only uint8 scalars). pax_trax addition: `dataset` may
    also be any iterable of such pairs of NumPy values.

    >>> pairs = [({'image': np.ones(2, np.uint8)}, np.int64(3))]
    >>> next(dataset_to_stream(pairs, 'image'))
    (array([1, 1], dtype=int32), np.int64(3))
    """
    who = "pax_trax.data.dataset_to_stream"
    if hasattr(dataset, "element_spec"):  # a tf.data.Dataset
        dataset = _tfds_module(who).as_numpy(dataset)
    for example in dataset:
        if not isinstance(example, (tuple, list)) or len(example) != 2:
            raise ValueError(f"{who}: expected (features, targets) pairs, got {example!r:.100}.")
        features, out = example
        if input_name not in features:
            raise KeyError(f"{who}: input_name {input_name!r} is not in the features; "
                           f"they are {sorted(features)}.")
        inp = _uint8_to_int32(features[input_name])
        out = _uint8_to_int32(out)
        mask = features.get("mask")
        yield (inp, out) if mask is None else (inp, out, mask)


def _uint8_to_int32(value):
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype == np.uint8:
        return value.astype(np.int32)
    return value


def _shuffle_data(dataset, target_names, training, shuffle_buffer_size, preprocess_fn,
                  bare_preprocess_fn, rng, seed):
    """Trax's ``_shuffle_data``: targets appended, repeated, a random skip (train), shuffled."""

    def append_targets(example):
        if len(target_names) == 1:
            return example, example[target_names[0]]
        return example, {name: example[name] for name in target_names}

    if bare_preprocess_fn is not None:
        dataset = bare_preprocess_fn(dataset, training)
    dataset = dataset.map(append_targets).repeat()
    if training:
        # As Trax: replicas skip different amounts and do not read in lock-step.
        dataset = dataset.skip(rng.randint(0, _MAX_SKIP_EXAMPLES))
    dataset = preprocess_fn(dataset, training)
    return dataset.shuffle(shuffle_buffer_size, seed=seed).prefetch(8)


def data_streams(dataset_name, data_dir=None, preprocess_fn=no_preprocess,
                 bare_preprocess_fn=None, shuffle_buffer_size=1024, eval_holdout_size=0,
                 input_name=None, target_name=None, *, download=True, seed=None):
    """Creates ``(train, eval)`` data sources from `dataset_name` (Trax's ``data_streams``).

    Needs TensorFlow and a dataset stored as tfrecord. As in Trax, both
    streams are ``tf.data`` pipelines: the examples get their targets
    appended (``(features, features[target_name])``), `bare_preprocess_fn`
    runs before that and `preprocess_fn` after it (both ``(dataset,
    training) -> dataset``); both repeat forever and are shuffled with
    `shuffle_buffer_size`; the training stream first skips a random number
    (up to 100,000) of examples; `dataset_to_stream` turns them into
    ``(inputs, targets)`` NumPy pairs.

    Args:
      dataset_name: Name of a TFDS dataset (T2T problems are not supported).
      data_dir: Directory where the data is located.
      preprocess_fn: Function to use for pre-processing after appending targets
        to inputs.
      bare_preprocess_fn: Function to use for pre-processing before appending
        targets to inputs.
      shuffle_buffer_size: Size of the shuffle buffer.
      eval_holdout_size: If greater than 0, a fraction of training data (or a
        count of examples) to siphon off and use as eval data, in place of a
        separate eval split.
      input_name: Name of the inputs from the dictionary (default: the
        dataset's first supervised key).
      target_name: Name of the outputs (default: the second supervised key).
      download: pax_trax addition: as in `TFDS`.
      seed: pax_trax addition: None (Trax) draws the skip and the shuffles from
        fresh entropy; an int makes both streams the same on every call.

    Returns:
      A pair of functions, ``(f, g)`` for use as data sources; call ``f()`` to
      get an iterator of training data samples, and call ``g()`` to get an
      iterator of eval data samples.

    >>> train, evaluate = data_streams('imdb_reviews', '/data/tfds')  # doctest: +SKIP
    >>> text, label = next(train())  # doctest: +SKIP
    """
    who = "pax_trax.data.data_streams"
    builder, data_dir = _prepared_builder(dataset_name, data_dir, download, who)
    _choose_backend("tf", _file_format(builder), dataset_name, data_dir, who)
    tfds = _tfds_module(who)
    info = builder.info
    sizes = {name: split.num_examples for name, split in info.splits.items()}
    splits = {which: _split_for(dataset_name, sizes, which == "train", eval_holdout_size,
                                who=who)[0] for which in ("train", "eval")}
    supervised = info.supervised_keys
    names = {}
    for role, given, index in (("input_name", input_name, 0), ("target_name", target_name, 1)):
        if given is None and not supervised:
            raise ValueError(f"{who}: dataset {dataset_name!r} has no supervised_keys; pass "
                             f"{role} (its features: {sorted(info.features.keys())}).")
        names[role] = given if given is not None else supervised[index]
    if preprocess_fn is no_preprocess and bare_preprocess_fn is None:
        # (Preprocessing functions may make these features.)
        _check_keys([names["input_name"], names["target_name"]], list(info.features.keys()),
                    f"dataset {dataset_name!r}", who)

    def stream(which):
        training = which == "train"
        rng = random.Random(seed)
        dataset = tfds.load(dataset_name, split=splits[which], data_dir=data_dir,
                            download=False, shuffle_files=training,
                            read_config=tfds.ReadConfig(shuffle_seed=seed))
        dataset = _shuffle_data(dataset, [names["target_name"]], training, shuffle_buffer_size,
                                preprocess_fn, bare_preprocess_fn, rng, seed)
        return dataset_to_stream(dataset, names["input_name"])

    return (lambda: stream("train")), (lambda: stream("eval"))
