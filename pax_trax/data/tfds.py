"""TensorFlow Datasets as `pax_trax.data` streams: Trax's ``trax.data.tf_inputs``
loaders `TFDS`, `data_streams`, `dataset_to_stream`, `download_and_prepare`.

`TFDS` returns a stream function (``f(generator=None) -> iterator``) of
examples, the first stage of a `pax_trax.data.Serial` pipeline::

    from pax_trax import data

    pipeline = data.Serial(
        data.TFDS('imdb_reviews', data_dir='~/tensorflow_datasets',
                  keys=('text', 'label'), train=True, download=False),
        data.Tokenize(vocab_file='en_8k.subword', keys=[0]),
        data.Shuffle(),
        data.FilterByLength(max_length=2048, length_keys=[0]),
        data.BucketByLength(boundaries=[32, 128, 512, 2048],
                            batch_sizes=[512, 128, 32, 8, 1], length_keys=[0]),
        data.AddLossWeights(),
    )
    batch = next(pipeline())

Two backends read a prepared dataset (selected by ``backend=``, or by the
dataset's file format when None):

* ``'tf'``: ``tfds.load(...)`` and ``tfds.as_numpy``, for datasets stored as
  ``tfrecord`` (TFDS's default). Needs TensorFlow; imports it (~5 s).
* ``'data_source'``: ``tfds.data_source(...)``, random access, no TensorFlow,
  for datasets stored as ``array_record`` (prepare them with
  ``file_format='array_record'``). TFDS 4.9 cannot read array_record files
  through ``tfds.load`` (``.as_dataset()`` is not implemented for them), so
  this backend is the one for array_record even when TensorFlow is installed.

Speed: for plain scalar features (``Scalar``, ``ClassLabel``, ``Text``) the
'tf' backend shuffles and batches the raw records and parses ~1 MiB at a time
with ``tf.io.parse_example`` in tf.data's threads; the 'data_source' backend
parses a chunk of records at once with NumPy (`_example_wire`) while the
next chunk is read in a background thread. Other features take TFDS's own
per-example decoding (``benchmarks/RESULTS.md``, ``data.py``). As
``tfds.load`` caches datasets of up to 250 MiB in memory, both backends keep
such a dataset's records (the 'data_source' backend its decoded tuples of
scalars) once read: later epochs read no files.

Both give the same examples: a tuple of NumPy values in `keys` order (a dict
of all features when `keys` is None), text as ``bytes`` as TFDS stores it
(``decode_text=True`` gives ``str``; pax_trax's tokenizers accept both),
numbers as NumPy scalars and arrays of the features' dtypes. The eval stream
is in the stored order on both; the training stream's shuffle is seeded by
``shuffle_seed`` but differs between backends (a shuffle buffer in tf.data; a
full permutation per epoch with random access).

Nothing here downloads when ``download=False``: a dataset that is not
prepared in ``data_dir`` is an error naming it. With ``download=True``
(TFDS's default) a TFDS catalog dataset that is not prepared is downloaded,
but only after a quick check (5 s) that the network is reachable: TFDS
itself retries unreachable hosts for minutes.

Differences from Trax 1.4.1 (also noted on each function): extra
keyword-only arguments (``download``, ``backend``, ``repeat``,
``shuffle_seed``, ``shuffle_buffer_size``, ``decode_text``); `TFDS` also
shuffles training examples (Trax only shuffled files), and is reproducible by
default; ``keys=None`` gives dicts (Trax failed); ``eval_holdout_size`` may
also be a count; an eval split is only required when it is used; uint8
arrays (not only scalars) are cast to int32 by `dataset_to_stream`.
T2T problems (``'t2t_...'``) are not supported.

Where the code is: this module holds `TFDS`; `pax_trax.data.tf_datasets`
the ``'tf'`` backend, `data_streams`, `dataset_to_stream` and
`no_preprocess`; `pax_trax.data.tfds_prepare` `download_and_prepare` and
finding datasets; ``_tfds_data_source`` the ``'data_source'`` backend;
``_tfds_select`` the pure helpers (splits, hosts, keys, example values),
which run without TensorFlow:

>>> _split_for("x", {"train": 1000, "test": 30}, train=False, eval_holdout_size=0.1)
('train[-100:]', 100)
"""

from __future__ import annotations

from pax_trax.data._tfds_data_source import _data_source_stream
from pax_trax.data._tfds_select import (
    _TFDS,
    _check_hosts,
    _check_keys,
    _key_tuple,
    _Read,
    _split_for,
)
from pax_trax.data.tf_datasets import (
    _tf_stream,
    data_streams,
    dataset_to_stream,
    no_preprocess,
)
from pax_trax.data.tfds_prepare import (
    _choose_backend,
    _file_format,
    _prepared_builder,
    _tfds_module,
    download_and_prepare,
)

__all__ = [
    "TFDS",
    "data_streams",
    "dataset_to_stream",
    "download_and_prepare",
    "no_preprocess",
]

# ------------------------------------------------------------------------- TFDS


def TFDS(  # noqa: N802 (Trax name)
    dataset_name,
    data_dir=None,
    tfds_preprocess_fn=None,
    keys=None,
    train=True,
    use_alt_eval=False,
    shuffle_train=True,
    host_id=None,
    n_hosts=None,
    eval_holdout_size=0,
    *,
    download=True,
    backend=None,
    repeat=True,
    shuffle_seed=0,
    shuffle_buffer_size=1024,
    decode_text=False,
):
    """Creates a data source from TensorFlow dataset `dataset_name` (Trax's ``TFDS``).

    Args:
      dataset_name: Name of the dataset, as registered in TensorFlow datasets
        (e.g., ``'glue/mnli'``), or of a dataset prepared in `data_dir`.
      data_dir: Directory where the data is located (None:
        ``~/tensorflow_datasets`` or ``$TFDS_DATA_DIR``).
      tfds_preprocess_fn: If specified, function that applies to items in raw
        dataset (before selecting specific features): a ``tf.data.Dataset ->
        tf.data.Dataset`` function with the 'tf' backend (as Trax); with the
        'data_source' backend an ``iterator -> iterator`` function on example
        dicts of NumPy values (a pax_trax stream function). On both backends
        it runs on each epoch before the epochs are repeated; a repeating
        stream whose epoch comes out empty ends (as tf.data's ``repeat``).
      keys: Tuple of feature names to select; each example is then a tuple of
        their values in this order. None: each example is the dict of all
        features (Trax required keys).
      train: If True, select the training split from the dataset; else select
        an eval split (``'validation'``, else ``'test'``, or the holdout).
      use_alt_eval: If True, and if `train` is False, select the dataset's
        alternate eval split if it has one. This affects only ``glue/mnli``
        (``validation_mismatched`` instead of ``validation_matched``).
      shuffle_train: If True, shuffle the training data (files and examples,
        seeded by `shuffle_seed`); else read it in the stored order. Eval
        data is never shuffled.
      host_id: Index of this host when sharding (default: ``jax.process_index()``).
      n_hosts: If greater than 1, host `host_id` reads only its contiguous
        ``1/n_hosts`` part of the training data (default:
        ``jax.process_count()``). Eval data is not sharded, as in Trax.
      eval_holdout_size: If greater than 0, take the eval data from the end of
        the train split instead of a separate eval split: a fraction in [0, 1)
        (rounded down, as Trax) or an int number of examples. Training then
        uses the rest of the train split.
      download: pax_trax addition (``tfds.load``'s argument; default True as
        there): whether a dataset not prepared in `data_dir` may be downloaded
        and prepared (see `download_and_prepare`). With False, it is an error.
      backend: pax_trax addition: ``'tf'`` (tfds.load; tfrecord datasets),
        ``'data_source'`` (tfds.data_source; array_record datasets; no
        TensorFlow), or None to choose by the dataset's file format.
      repeat: pax_trax addition: True (Trax) repeats the data forever (train
        and eval); False gives one pass.
      shuffle_seed: pax_trax addition: the seed of the training shuffle; the
        same seed gives the same stream on every call (needed to resume with
        `pax_trax.data.CountAndSkip`). None: fresh entropy on the
        'data_source' backend, tf.data's default on the 'tf' backend.
      shuffle_buffer_size: pax_trax addition: the tf.data shuffle buffer of the
        'tf' backend (the 'data_source' backend permutes whole epochs).
      decode_text: pax_trax addition: False keeps text as TFDS's ``bytes``;
        True decodes it to ``str`` (UTF-8).

    Returns:
      A function `f` for use as a training or eval data source; call ``f()``
      to get an iterator of data samples (its argument is ignored, as in Trax).

    >>> stream = TFDS('imdb_reviews', data_dir='/data/tfds', keys=('text', 'label'),
    ...               download=False)  # doctest: +SKIP
    >>> next(stream())  # doctest: +SKIP
    (b'This was an absolutely terrible movie. ...', np.int64(0))
    """
    builder, data_dir = _prepared_builder(dataset_name, data_dir, download, _TFDS)
    info = builder.info
    file_format = _file_format(builder)
    backend = _choose_backend(backend, file_format, dataset_name, data_dir)
    if tfds_preprocess_fn is None:
        keys = _check_keys(keys, list(info.features.keys()), f"dataset {dataset_name!r}")
    else:  # (the function may make new features: checked on its examples)
        keys = _key_tuple(keys)
    host_id, n_hosts = _check_hosts(host_id, n_hosts) if train else (0, 1)
    sizes = {name: split.num_examples for name, split in info.splits.items()}
    split, n_examples = _split_for(dataset_name, sizes, train, eval_holdout_size,
                                   host_id, n_hosts, use_alt_eval)
    if n_examples == 0:
        raise ValueError(f"{_TFDS}: split {split!r} of {dataset_name!r} in {data_dir!r} "
                         "has no examples.")
    read = _Read(dataset_name, data_dir, split, shuffle=bool(train and shuffle_train),
                 seed=shuffle_seed, shuffle_buffer_size=shuffle_buffer_size,
                 preprocess_fn=tfds_preprocess_fn, keys=keys, repeat=bool(repeat),
                 decode_text=bool(decode_text))
    tfds = _tfds_module(_TFDS)
    if backend == "tf":
        return _tf_stream(tfds, read)
    return _data_source_stream(tfds, read, info.features)
