"""The TensorFlow side of `pax_trax.data`'s TFDS support (Trax's ``tf_inputs``): the
``'tf'`` backend of `pax_trax.data.TFDS` (``tfds.load`` and ``tfds.as_numpy``,
for datasets stored as tfrecord), `data_streams`, `dataset_to_stream` and
`no_preprocess`. TensorFlow and TFDS are imported only when a function runs
(`dataset_to_stream` needs neither when given NumPy pairs).

The 'tf' backend has two paths. When the selected features are all plain
scalars (``Scalar``, ``ClassLabel``, ``Text``, ``Tensor(shape=())``: see
`_plain_scalar_features`) and there is no ``tfds_preprocess_fn``, it reads the
split's tfrecord files itself and parses batches of records (~1 MiB) with one
``tf.io.parse_example`` (`_scalar_stream`: ~6x faster than ``tfds.load`` on
short texts, which parses each example on its own); otherwise it uses
``tfds.load`` (`_tf_general_stream`). Both give the same examples, the eval
stream in the same stored order; the fast path's training order comes from
the same seeded shuffles (it matched ``tfds.load``'s in our tests) but is not
guaranteed to stay equal to it.

>>> no_preprocess([1, 2], training=False)
[1, 2]
"""

from __future__ import annotations

import itertools
import random
import re

import numpy as np

from pax_trax.data import _lazy
from pax_trax.data._tfds_select import (
    _check_keys,
    _decode_text,
    _plain_scalar_features,
    _small_enough_to_cache,
    _split_for,
)
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
# Raw records the 'tf' backend's fast path parses at once: about this many bytes, from
# 256 to 4096 records (short texts: 4096 cost ~1.1 us an example here, 1024 ~1.3 us, 256
# ~1.7 us, mostly tf.data's per-batch overhead).
_SCALAR_READ_BYTES, _SCALAR_READ_BATCH = 1 << 20, (256, 4096)


# ---------------------------------------------------------- the 'tf' backend


def _tf_stream(tfds, read):
    """The 'tf' backend's stream function: `_scalar_stream` when it can read `read`
    (plain scalar features, no tfds_preprocess_fn), else `_tf_general_stream`."""
    plan = _scalar_plan(tfds, read)
    if plan is not None:
        return _scalar_stream(tfds, read, plan)
    return _tf_general_stream(tfds, read)


def _tf_dataset(tfds, read):
    """The tf.data pipeline of the general path (built per stream, so that every
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


def _tf_general_stream(tfds, read):
    """The general path: ``tfds.load`` (TFDS parses and decodes each example on its own)."""
    _tf_dataset(tfds, read)  # Errors (keys, tfds_preprocess_fn) now, not at the first example.

    def stream(generator=None):
        del generator
        dataset = _tf_dataset(tfds, read)
        tf = _lazy.tensorflow("pax_trax.data.TFDS")
        if _has_static_shapes(dataset.element_spec):
            batches = tfds.as_numpy(dataset.batch(_TF_READ_BATCH))
            examples = _unbatched(_explained_read_errors(tf, batches, read))
        else:
            examples = _explained_read_errors(tf, tfds.as_numpy(dataset), read)
        for example in examples:
            yield _decode_text(example) if read.decode_text else example

    return stream


# The fast path for plain scalar features. TFDS's tfds.load parses each serialized
# tf.train.Example with its own parse_single_example (~30 us an example in tf.data on
# 2 cores, short texts: most of the backend's time). For a split whose selected
# features are all plain scalars (`_plain_scalar_features`) and no tfds_preprocess_fn,
# `_scalar_stream` reads the raw records of the split's tfrecord files itself, as
# tfds.load does (the file instructions' skip/take, files shuffled per epoch with the
# seed, interleaved with TFDS's cycle_length and block_length), shuffles the serialized
# records with the same buffer and seed, repeats, batches ~1 MiB of records, parses each batch
# with one tf.io.parse_example (~2 us an example), casts the stored values to the
# features' dtypes as TFDS's decoding does (int64 -> int32, int64 -> bool, ...) and
# prefetches (records of a dataset up to 250 MiB cached after their first read, as
# tfds.load's autocache), so tf.data works in its own threads while Python splits the
# batches into examples with zip (C speed). The examples are the general path's, of the same
# types; the eval (unshuffled) stream is in the same stored order. The training order
# comes from the same seeded shuffles, so it came out the same as tfds.load's in the
# tests here, but that is not guaranteed: TFDS may change how it reads.

# TFDS's defaults (tfds.ReadConfig, tfrecord file adapter) for reading files.
_INTERLEAVE_CYCLE, _INTERLEAVE_BLOCK = 16, 16
_TFRECORD_BUFFER = 8 << 20


class _ScalarPlan:
    """What `_scalar_stream` reads: the split's files and how to parse its features."""

    def __init__(self, instructions, names, features, as_dicts, cache=False,
                 batch_size=_SCALAR_READ_BATCH[0]):
        self.cache = cache  # (keep the records read in memory: tfds.load's autocache)
        self.batch_size = batch_size  # (records parsed at once)
        self.paths = [str(fi.filename) for fi in instructions]
        self.skips = [int(fi.skip) for fi in instructions]
        self.takes = [int(fi.take) for fi in instructions]
        self.names = list(names)
        self.features = [features[name] for name in names]
        self.text = [np.dtype(f.np_dtype).kind in "OSU" for f in self.features]
        self.as_dicts = as_dicts


def _scalar_plan(tfds, read):
    """A `_ScalarPlan` for `read`, or None when the general path must read it."""
    if read.preprocess_fn is not None:
        return None
    try:
        builder = tfds.builder(read.dataset_name, data_dir=read.data_dir)
        info = builder.info
        if _file_format(builder) != "tfrecord" or getattr(info, "disable_shuffling", False):
            return None
        names = _plain_scalar_features(tfds, info.features, read.keys)
        instructions = list(info.splits[read.split].file_instructions)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    if not names or not instructions:
        return None
    for fi in instructions:
        # (`take` is the number of records to read: TFDS 4.9 resolves its -1, "to the end".)
        if fi.skip < 0 or fi.take < 0:
            return None
    for name in names:
        serialized = info.features[name].get_serialized_info()
        if tuple(getattr(serialized, "shape", (None,))) != ():
            return None
    if read.keys is None:
        names = sorted(names)  # (the order of tfds.load's dicts; features.keys() varies)
    return _ScalarPlan(instructions, names, info.features, as_dicts=read.keys is None,
                       cache=_autocaches(info, read, len(instructions)),
                       batch_size=_read_batch_size(info.splits[read.split]))


def _read_batch_size(split_info):
    """Records to parse at once: `_SCALAR_READ_BYTES` of the split's mean record."""
    low, high = _SCALAR_READ_BATCH
    try:
        mean_bytes = int(split_info.num_bytes) / max(int(split_info.num_examples), 1)
    except (AttributeError, TypeError, ValueError):
        return low
    if mean_bytes <= 0:  # (size unknown)
        return low
    return int(min(max(_SCALAR_READ_BYTES // mean_bytes, low), high))


def _autocaches(info, read, n_files):
    """Whether tfds.load would cache the split (``DatasetBuilder._should_cache_ds`` with
    the default ReadConfig): datasets of a known size up to 250 MiB, unless several
    files are shuffled (a cache would fix their order)."""
    return _small_enough_to_cache(info) and not (read.shuffle and n_files > 1)


def _storage_dtype(tf, feature):
    """The dtype TFDS stores `feature`'s values as in a tf.train.Example (as TFDS's
    ``example_parser._to_tf_example_spec``)."""
    kind = np.dtype(feature.np_dtype).kind
    if kind in "iub":
        return tf.int64
    if kind == "f":
        return tf.float32
    return tf.string


def _scalar_dataset(tf, read, plan):
    """The fast path's tf.data pipeline: batches (tuples of columns in `plan.names` order)."""
    files = tf.data.Dataset.from_tensor_slices(
        (plan.paths, np.array(plan.skips, np.int64), np.array(plan.takes, np.int64)))
    if read.shuffle:
        files = files.shuffle(len(plan.paths), seed=read.seed, reshuffle_each_iteration=True)

    def records_of(path, skip, take):
        records = tf.data.TFRecordDataset(path, buffer_size=_TFRECORD_BUFFER).skip(skip).take(take)
        # (A file cut or emptied while a stream reads it is an error, not a short epoch:
        # tf.data repeats an epoch that became empty forever, or ends the stream.)
        return records.apply(tf.data.experimental.assert_cardinality(take))

    records = files.interleave(
        records_of, cycle_length=_INTERLEAVE_CYCLE, block_length=_INTERLEAVE_BLOCK,
        num_parallel_calls=tf.data.AUTOTUNE,
        # (As TFDS: a shuffle without a seed need not be reproducible.)
        deterministic=not (read.shuffle and read.seed is None))
    if plan.cache:
        records = records.cache()
    if read.shuffle:
        records = records.shuffle(read.shuffle_buffer_size, seed=read.seed,
                                  reshuffle_each_iteration=True)
    if read.repeat:
        records = records.repeat()
    specs = {name: tf.io.FixedLenFeature([], _storage_dtype(tf, feature))
             for name, feature in zip(plan.names, plan.features)}

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, specs)
        columns = []
        for name, feature in zip(plan.names, plan.features):
            value = parsed[name]
            if value.dtype != feature.dtype:  # (as TFDS's _deserialize_single_field)
                value = tf.cast(value, feature.dtype)
            columns.append(feature.decode_batch_example(value))  # (a no-op for these)
        return tuple(columns)

    batches = records.batch(plan.batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    # (Fixed parallelism: tf.data's autotuning costs ~0.6 us of CPU an example here,
    # taken from the Python pipeline and the training on few cores.)
    options.autotune.enabled = False
    return batches.prefetch(tf.data.AUTOTUNE).with_options(options)


def _scalar_stream(tfds, read, plan):
    tf = _lazy.tensorflow("pax_trax.data.TFDS")

    def stream(generator=None):
        del generator
        batches = _explained_read_errors(tf, tfds.as_numpy(_scalar_dataset(tf, read, plan)), read)
        return _scalar_rows(batches, plan.names if plan.as_dicts else None,
                            plan.text if read.decode_text else None)

    return stream


def _explained_read_errors(tf, elements, read):
    """`elements`, with tf.data's errors for files that changed while being read (cut:
    DataLossError; fewer records than the split has: FailedPreconditionError, as
    tfds.load's) raised again with what was read and why it may have failed."""
    try:
        yield from elements
    except (tf.errors.DataLossError, tf.errors.FailedPreconditionError) as error:
        # (TF's message without the function node it names and the op.)
        message = re.sub(r"\{\{function_node .*?\}\}\s*|\s*\[Op:\w+\].*$", "", error.message,
                         flags=re.S).strip().rstrip(".")
        raise type(error)(
            error.node_def, error.op,
            f"pax_trax.data.TFDS: reading the {read.split!r} split of {read.dataset_name!r} "
            f"(data_dir {read.data_dir!r}) failed: {message}. Its files hold fewer "
            "or other records than the dataset's info says: were they changed, cut or emptied "
            "while the stream read them?") from error


def _scalar_rows(batches, names=None, text=None):
    """The examples of `batches` of scalar columns (tuples of 1-D arrays): tuples of their
    values (NumPy scalars; bytes from object arrays), dicts of `names` when given.
    `text`: which columns to decode from UTF-8 bytes to str (None: none).

    >>> batches = [(np.array([1, 2]), np.array([b'a', b'b'], object))]
    >>> list(_scalar_rows(batches))
    [(np.int64(1), b'a'), (np.int64(2), b'b')]
    >>> list(_scalar_rows(batches, names=['n', 's'], text=[False, True]))
    [{'n': np.int64(1), 's': 'a'}, {'n': np.int64(2), 's': 'b'}]
    """
    for columns in batches:
        if text is not None:
            columns = [list(map(bytes.decode, column)) if is_text else column
                       for column, is_text in zip(columns, text)]
        rows = zip(*columns)
        if names is not None:
            rows = map(dict, map(zip, itertools.repeat(names), rows))
        yield from rows


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
