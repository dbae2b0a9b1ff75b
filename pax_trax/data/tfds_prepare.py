"""Finding and preparing TFDS datasets for `pax_trax.data.TFDS` and `data_streams`:
Trax's ``download_and_prepare``, the explained errors for a dataset that is not
there, the network check before a download, and the choice of backend by the
dataset's file format (``tfrecord``: ``'tf'``; ``array_record``:
``'data_source'``). TensorFlow Datasets is imported only when a function runs.

>>> _choose_backend(None, "tfrecord", "x", "/d")
'tf'
"""

from __future__ import annotations

import os
import socket

from pax_trax.data import _lazy
from pax_trax.data._tfds_select import _TFDS

__all__ = ["download_and_prepare"]

_BACKENDS = ("tf", "data_source")
# Reachability check before a download: TFDS's download host, and how long to wait.
_PROBE_HOST, _PROBE_PORT, _PROBE_TIMEOUT_S = "storage.googleapis.com", 443, 5.0
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                    "ALL_PROXY", "all_proxy")


def _resolve_data_dir(data_dir):
    """`data_dir` with ``~`` expanded; None: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``.

    >>> _resolve_data_dir("/tmp/data")
    '/tmp/data'
    """
    if data_dir is None:
        data_dir = os.environ.get("TFDS_DATA_DIR") or os.path.join("~", "tensorflow_datasets")
    return os.path.expanduser(os.fspath(data_dir))


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
