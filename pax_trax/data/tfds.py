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

The pure helpers run without TensorFlow:

>>> _holdout_count(0.1, 1000), _holdout_count(25, 1000)
(100, 25)
>>> [_host_range(10, host_id, 3) for host_id in range(3)]
[(0, 3), (3, 6), (6, 10)]
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import random
import socket

import numpy as np

from pax_trax.data import _lazy

__all__ = [
    "TFDS",
    "data_streams",
    "dataset_to_stream",
    "download_and_prepare",
    "no_preprocess",
]

_TFDS = "pax_trax.data.TFDS"
_BACKENDS = ("tf", "data_source")
# Trax skips up to this many examples at the start of `data_streams`' training stream.
_MAX_SKIP_EXAMPLES = 100_000
# Records read at once from a random-access data source.
_READ_CHUNK = 256
# Reachability check before a download: TFDS's download host, and how long to wait.
_PROBE_HOST, _PROBE_PORT, _PROBE_TIMEOUT_S = "storage.googleapis.com", 443, 5.0
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                    "ALL_PROXY", "all_proxy")


# ----------------------------------------------------------------- pure helpers


def _resolve_data_dir(data_dir):
    """`data_dir` with ``~`` expanded; None: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``.

    >>> _resolve_data_dir("/tmp/data")
    '/tmp/data'
    """
    if data_dir is None:
        data_dir = os.environ.get("TFDS_DATA_DIR") or os.path.join("~", "tensorflow_datasets")
    return os.path.expanduser(os.fspath(data_dir))


def _holdout_count(eval_holdout_size, n_train, who=_TFDS):
    """How many examples `eval_holdout_size` takes from the end of a train split of `n_train`.

    A float in [0, 1) is a fraction (rounded down, as Trax); an int >= 0 is a count.

    >>> _holdout_count(0.25, 10), _holdout_count(0, 10), _holdout_count(3, 10)
    (2, 0, 3)
    >>> _holdout_count(1.0, 10)
    Traceback (most recent call last):
    ...
    ValueError: pax_trax.data.TFDS: eval_holdout_size must be a fraction in [0, 1) or an int count in [0, 10), got 1.0.
    """
    expected = f"a fraction in [0, 1) or an int count in [0, {n_train})"
    if isinstance(eval_holdout_size, bool) or not isinstance(eval_holdout_size, numbers.Real):
        raise TypeError(f"{who}: eval_holdout_size must be {expected}, got {eval_holdout_size!r}.")
    if isinstance(eval_holdout_size, numbers.Integral):
        count = int(eval_holdout_size)
    elif 0 <= eval_holdout_size < 1:
        count = int(n_train * float(eval_holdout_size))
    else:
        count = -1
    if not 0 <= count < max(n_train, 1):
        raise ValueError(f"{who}: eval_holdout_size must be {expected}, got {eval_holdout_size!r}.")
    return count


def _host_range(n, host_id, n_hosts):
    """The slice ``[start, end)`` of `n` examples that host `host_id` of `n_hosts` reads.

    As Trax's subsplit ``(host_id / n_hosts, (host_id + 1) / n_hosts)``, in
    integer arithmetic: the hosts' ranges are disjoint and cover all `n`.

    >>> _host_range(7, 0, 2), _host_range(7, 1, 2)
    ((0, 3), (3, 7))
    """
    return n * host_id // n_hosts, n * (host_id + 1) // n_hosts


def _check_hosts(host_id, n_hosts, who=_TFDS):
    """Validated ``(host_id, n_hosts)``; None: this JAX process's index and the process count."""
    if host_id is None or n_hosts is None:
        import jax  # a core dependency; imported here so `import pax_trax.data` stays light

        host_id = jax.process_index() if host_id is None else host_id
        n_hosts = n_hosts or jax.process_count()
    for name, value in (("host_id", host_id), ("n_hosts", n_hosts)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{who}: {name} must be an int, got {value!r}.")
    if not 0 <= host_id < n_hosts:
        raise ValueError(
            f"{who}: expected 0 <= host_id < n_hosts, got host_id={host_id}, n_hosts={n_hosts}."
        )
    return int(host_id), int(n_hosts)


def _eval_split_name(dataset_name, split_names, use_alt_eval, who=_TFDS):
    """The eval split as Trax picks it: ``glue/mnli``'s (mis)matched validation,
    else ``'validation'``, else ``'test'``.

    >>> _eval_split_name("glue/mnli", ["train", "validation_matched"], use_alt_eval=True)
    'validation_mismatched'
    >>> _eval_split_name("x", ["train", "test"], use_alt_eval=False)
    'test'
    """
    if dataset_name.split(":")[0] == "glue/mnli":
        return "validation_mismatched" if use_alt_eval else "validation_matched"
    for name in ("validation", "test"):
        if name in split_names:
            return name
    raise ValueError(
        f"{who}: dataset {dataset_name!r} has no 'validation' or 'test' split to evaluate "
        f"on (its splits: {sorted(split_names)}); pass eval_holdout_size > 0 to hold out "
        "part of the train split instead."
    )


def _split_for(dataset_name, split_sizes, train, eval_holdout_size=0, host_id=0, n_hosts=1,
               use_alt_eval=False, who=_TFDS):
    """``(split, n_examples)`` to read, as Trax's ``_train_and_eval_dataset``.

    `split_sizes` maps split names to example counts. The eval holdout comes
    from the end of ``'train'``; the rest of ``'train'`` is sharded by host.
    The eval split is not sharded (every host evaluates on all of it).

    >>> sizes = {"train": 100, "test": 30}
    >>> _split_for("x", sizes, train=True, eval_holdout_size=0.2, host_id=1, n_hosts=2)
    ('train[40:80]', 40)
    >>> _split_for("x", sizes, train=False, eval_holdout_size=0.2)
    ('train[-20:]', 20)
    >>> _split_for("x", sizes, train=False)
    ('test', 30)
    """
    holdout = 0
    if train or eval_holdout_size:
        if "train" not in split_sizes:
            raise ValueError(
                f"{who}: dataset {dataset_name!r} has no 'train' split (its splits: "
                f"{sorted(split_sizes)}); it is needed for training and for eval_holdout_size."
            )
        holdout = _holdout_count(eval_holdout_size, split_sizes["train"], who)
    if not train:
        if holdout:
            return f"train[-{holdout}:]", holdout
        name = _eval_split_name(dataset_name, list(split_sizes), use_alt_eval, who)
        if name not in split_sizes:
            raise ValueError(
                f"{who}: dataset {dataset_name!r} has no split {name!r} "
                f"(its splits: {sorted(split_sizes)})."
            )
        return name, split_sizes[name]
    n_train = split_sizes["train"] - holdout
    if holdout == 0 and n_hosts == 1:
        return "train", n_train
    start, end = _host_range(n_train, host_id, n_hosts)
    if end <= start:
        raise ValueError(
            f"{who}: host {host_id} of {n_hosts} gets no training examples "
            f"({n_train} in the train split after the eval holdout of {holdout})."
        )
    return f"train[{start}:{end}]", end - start


def _key_tuple(keys, who=_TFDS):
    """`keys` as a tuple (None stays None); a bare string is refused, not split into letters.

    >>> _key_tuple(["text", "label"])
    ('text', 'label')
    """
    if keys is None:
        return None
    if isinstance(keys, (str, bytes)):
        raise TypeError(
            f"{who}: keys must be a tuple of feature names, got the string {keys!r}; "
            f"write keys=({keys!r},) for one feature."
        )
    return tuple(keys)


def _check_keys(keys, available, where, who=_TFDS):
    """`keys` as a tuple, every one of them in `available` (the feature names).

    >>> _check_keys(("txt",), ["label", "text"], "dataset 'x'")
    Traceback (most recent call last):
    ...
    KeyError: "pax_trax.data.TFDS: key 'txt' is not a feature of dataset 'x'; its features are ['label', 'text']."
    """
    keys = _key_tuple(keys, who)
    for key in keys or ():
        if key not in available:
            raise KeyError(
                f"{who}: key {key!r} is not a feature of {where}; its features are "
                f"{sorted(available)}."
            )
    return keys


def _decode_text(value):
    """``bytes`` -> ``str`` (UTF-8), also inside tuples, dicts and object arrays.

    >>> _decode_text((b'caf\\xc3\\xa9', 'tea', np.int64(1), np.array([b'a', b'b'], object)))
    ('café', 'tea', np.int64(1), array(['a', 'b'], dtype=object))
    """
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    if isinstance(value, tuple):
        return tuple(_decode_text(v) for v in value)
    if isinstance(value, dict):
        return {k: _decode_text(v) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.dtype == object:
        decoded = np.empty(value.shape, dtype=object)
        for index, item in np.ndenumerate(value):
            decoded[index] = _decode_text(item)
        return decoded
    return value


def _as_feature_dtype(value, feature):
    """A decoded data-source value with the NumPy types ``tfds.as_numpy`` gives.

    ``tfds.data_source`` returns Python ints and floats for scalars; this
    makes them NumPy scalars of the feature's dtype (``np.int64(1)``), so the
    two backends give equal examples. Text stays ``bytes``.
    """
    if isinstance(value, dict):
        inner = getattr(feature, "feature", feature)  # Sequence(FeaturesDict) holds dicts too
        return {k: _as_feature_dtype(v, _sub_feature(inner, k)) for k, v in value.items()}
    dtype = getattr(feature, "np_dtype", None)  # (`.dtype` would import TensorFlow)
    if dtype is None or np.dtype(dtype) == object:
        return value
    array = np.asarray(value, dtype=dtype)
    return array[()] if array.ndim == 0 else array


def _sub_feature(feature, key):
    try:
        return feature[key]
    except (KeyError, TypeError, IndexError):
        return None


def _select(example, keys, decode_text):
    """A TFDS example dict -> the stream's example (tuple in `keys` order, or the dict)."""
    if keys is not None:
        try:
            example = tuple(example[k] for k in keys)
        except KeyError as err:
            raise KeyError(
                f"{_TFDS}: key {err.args[0]!r} is not in the examples made by "
                f"tfds_preprocess_fn; their keys are {sorted(example)}."
            ) from None
    return _decode_text(example) if decode_text else example


# ------------------------------------------------------------- finding datasets


def _tfds_module(who):
    return _lazy.tensorflow_datasets(who)


def _expected_info(data_dir, dataset_name):
    """Where TFDS keeps a prepared dataset's description."""
    return os.path.join(data_dir, dataset_name.split(":")[0], "<version>", "dataset_info.json")


def _find_builder(tfds, dataset_name, data_dir, download, who, **builder_kwargs):
    """``tfds.builder(dataset_name, data_dir=...)``, with an explanation when there is none."""
    if not isinstance(dataset_name, str) or not dataset_name:
        raise TypeError(f"{who}: dataset_name must be a TFDS name such as 'glue/mnli', "
                        f"got {dataset_name!r}.")
    try:
        return tfds.builder(dataset_name, data_dir=data_dir, **builder_kwargs)
    except tfds.core.DatasetNotFoundError as err:
        raise ValueError(
            f"{who}: no dataset {dataset_name!r}: TFDS has no builder of that name and "
            f"data_dir {data_dir!r} holds no prepared dataset of that name (expected "
            f"{_expected_info(data_dir, dataset_name)}; download={download}). Check the "
            "name (tfds.list_builders() lists TFDS's catalog) and the data_dir the dataset "
            "was prepared in."
        ) from err


def _not_prepared_error(dataset_name, data_dir, download, who):
    contents = (sorted(os.listdir(data_dir))[:10] if os.path.isdir(data_dir)
                else "the directory does not exist")
    return FileNotFoundError(
        f"{who}: dataset {dataset_name!r} is not prepared in data_dir {data_dir!r} "
        f"(download={download}, so nothing was downloaded). Expected "
        f"{_expected_info(data_dir, dataset_name)}; data_dir holds: {contents}. Pass the "
        "data_dir it was prepared in, or prepare it with "
        f"pax_trax.data.download_and_prepare({dataset_name!r}, data_dir) "
        "or tfds.builder(...).download_and_prepare()."
    )


def _check_network(dataset_name, data_dir, who):
    """Raises ConnectionError unless the download host answers within a few seconds.

    With no network TFDS's downloader retries each URL with backoff for
    minutes; this check makes that a fast, explained error. Skipped when a
    proxy is configured (the proxy decides what is reachable).
    """
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return
    try:
        socket.create_connection((_PROBE_HOST, _PROBE_PORT), timeout=_PROBE_TIMEOUT_S).close()
    except OSError as err:
        raise ConnectionError(
            f"{who}: dataset {dataset_name!r} is not prepared in {data_dir!r} and would have "
            f"to be downloaded, but {_PROBE_HOST}:{_PROBE_PORT} cannot be reached ({err}); "
            "TFDS would retry for minutes, so pax_trax stops here. Prepare the dataset on a "
            f"machine with network access and copy {os.path.join(data_dir, dataset_name)} over, "
            "or pass the data_dir of a prepared copy (with download=False)."
        ) from err


def _is_catalog_builder(builder):
    """Whether `builder` comes from TFDS's catalog (downloads) rather than user code."""
    return type(builder).__module__.startswith("tensorflow_datasets.")


def _prepared_builder(dataset_name, data_dir, download, who):
    """The builder of a prepared dataset, preparing it first when `download` allows."""
    tfds = _tfds_module(who)
    data_dir = _resolve_data_dir(data_dir)
    builder = _find_builder(tfds, dataset_name, data_dir, download, who)
    if not builder.is_prepared():
        if not download:
            raise _not_prepared_error(dataset_name, data_dir, download, who)
        download_and_prepare(dataset_name, data_dir)
        builder = _find_builder(tfds, dataset_name, data_dir, download, who)
    return builder, data_dir


def download_and_prepare(dataset_name, data_dir, *, file_format=None):
    """Downloads and prepares TFDS dataset `dataset_name` in `data_dir`; returns `data_dir`.

    As Trax's ``download_and_prepare``: `data_dir` None means
    ``~/tensorflow_datasets`` (``$TFDS_DATA_DIR`` if set); the returned path
    has ``~`` expanded. An already prepared dataset is left as it is (no
    network). A TFDS catalog dataset that is not prepared is downloaded, after
    checking within 5 s that the network is reachable (offline, TFDS would
    retry for minutes): offline this raises ConnectionError. A builder of
    your own (e.g. a ``tfds.core.GeneratorBasedBuilder`` reading local files)
    is prepared directly. Differences from Trax: Trax prepared only when
    `data_dir` was None; T2T problems are not supported.

    Args:
      dataset_name: a TFDS name, e.g. ``'mnist'`` or ``'glue/mnli'``.
      data_dir: the TFDS data directory, or None.
      file_format: pax_trax addition: ``'tfrecord'`` or ``'array_record'`` (read
        without TensorFlow by `TFDS`) for a dataset prepared now; None is TFDS's
        default (tfrecord).

    >>> download_and_prepare('mnist', '/data/tfds')  # doctest: +SKIP
    '/data/tfds'
    """
    who = "pax_trax.data.download_and_prepare"
    tfds = _tfds_module(who)
    data_dir = _resolve_data_dir(data_dir)
    kwargs = {} if file_format is None else {"file_format": file_format}
    builder = _find_builder(tfds, dataset_name, data_dir, True, who, **kwargs)
    if builder.is_prepared():
        return data_dir
    if _is_catalog_builder(builder):
        _check_network(dataset_name, data_dir, who)
    builder.download_and_prepare()
    return data_dir


def _file_format(builder):
    file_format = builder.info.file_format
    return getattr(file_format, "value", file_format) or "tfrecord"


def _choose_backend(backend, file_format, dataset_name, data_dir, who=_TFDS):
    """``'tf'`` or ``'data_source'`` for a dataset stored in `file_format`.

    >>> _choose_backend(None, "array_record", "x", "/d")
    'data_source'
    >>> _choose_backend("tf", "array_record", "x", "/d")
    Traceback (most recent call last):
    ...
    ValueError: pax_trax.data.TFDS: backend='tf' reads datasets stored as tfrecord with tfds.load, but 'x' in '/d' is stored as array_record; use backend='data_source' (or None).
    """
    if backend not in (None, *_BACKENDS):
        raise ValueError(f"{who}: backend must be None, 'tf' or 'data_source', got {backend!r}.")
    random_access = file_format in ("array_record", "parquet")
    if backend is None:
        backend = "data_source" if random_access else "tf"
    if backend == "tf" and random_access:
        raise ValueError(
            f"{who}: backend='tf' reads datasets stored as tfrecord with tfds.load, but "
            f"{dataset_name!r} in {data_dir!r} is stored as {file_format}; use "
            "backend='data_source' (or None)."
        )
    if backend == "data_source" and not random_access:
        raise ValueError(
            f"{who}: backend='data_source' reads datasets stored as array_record, but "
            f"{dataset_name!r} in {data_dir!r} is stored as {file_format}; use backend='tf' "
            "(or None), or prepare the dataset with file_format='array_record'."
        )
    if backend == "tf" and not _lazy.has_module("tensorflow"):
        raise ImportError(
            f"{who} needs TensorFlow to read {dataset_name!r} in {data_dir!r}, which is stored "
            f"as {file_format}: {_lazy.EXTRA_HINT}. (Without TensorFlow, prepare the dataset "
            "with file_format='array_record'; TFDS then reads it with tfds.data_source.)"
        )
    return backend


# --------------------------------------------------------------------- backends


@dataclasses.dataclass(frozen=True)
class _Read:
    """What a `TFDS` stream reads, and how."""

    dataset_name: str
    data_dir: str
    split: str
    shuffle: bool
    seed: object
    shuffle_buffer_size: int
    preprocess_fn: object
    keys: object
    repeat: bool
    decode_text: bool


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
        for example in tfds.as_numpy(_tf_dataset(tfds, read)):
            yield _decode_text(example) if read.decode_text else example

    return stream


def _data_source_examples(source, features, shuffle, seed, repeat):
    """Example dicts from a random-access source: a fresh seeded permutation each
    epoch when `shuffle`, else in the stored order."""
    rng = np.random.default_rng(seed)
    n = len(source)
    while True:
        order = rng.permutation(n) if shuffle else np.arange(n)
        for start in range(0, n, _READ_CHUNK):
            for record in source.__getitems__(order[start:start + _READ_CHUNK].tolist()):
                yield _as_feature_dtype(record, features)
        if not repeat:
            return


def _data_source_stream(tfds, read, features):
    source = tfds.data_source(read.dataset_name, split=read.split, data_dir=read.data_dir,
                              download=False)

    def stream(generator=None):
        del generator
        examples = _data_source_examples(source, features, read.shuffle, read.seed, read.repeat)
        if read.preprocess_fn is not None:
            examples = read.preprocess_fn(examples)
        for example in examples:
            yield _select(example, read.keys, read.decode_text)

    return stream


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
        dicts of NumPy values (a pax_trax stream function).
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
