"""Reading the JSON files of the math-reasoning datasets (`mathqa`, `drop_inputs`):
local paths with plain Python, paths with a scheme (``gs://...``) through
``tf.io.gfile`` (TensorFlow imported only then), and their errors."""

from __future__ import annotations

import json
import os

import numpy as np

from pax_trax.data import _lazy


def _has_scheme(path):
    return "://" in path


def _dataset_path(dataset_path, who):
    if dataset_path is None:
        raise ValueError(f"{who}: dataset_path is required: the directory with the dataset's "
                         "JSON files (Trax had no default either).")
    if not isinstance(dataset_path, (str, os.PathLike)):
        raise TypeError(f"{who}: dataset_path must be a path, got {type(dataset_path).__name__} "
                        f"{dataset_path!r}.")
    dataset_path = os.fspath(dataset_path)
    return dataset_path if _has_scheme(dataset_path) else os.path.expanduser(dataset_path)


def _join(directory, name):
    return directory.rstrip("/") + "/" + name if _has_scheme(directory) else os.path.join(directory, name)


def _read_text(path, who, what):
    """The text of a local file, or of a ``gs://``-style path through ``tf.io.gfile``."""
    if _has_scheme(path):
        tf = _lazy.tensorflow(who)
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"{who}: no file {path!r} ({what}).")
        with tf.io.gfile.GFile(path, "r") as f:
            return f.read()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{who}: no file {path!r} ({what}).")
    with open(path, encoding="utf-8") as f:
        return f.read()


def _list_json_files(directory, who):
    if _has_scheme(directory):
        tf = _lazy.tensorflow(who)
        if not tf.io.gfile.isdir(directory):
            raise FileNotFoundError(f"{who}: no directory {directory!r} (expected a directory of "
                                    "JSON-lines files, as single_file=False).")
        names = tf.io.gfile.listdir(directory)
    else:
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"{who}: no directory {directory!r} (expected a directory of "
                                    "JSON-lines files, as single_file=False).")
        names = os.listdir(directory)
    return [_join(directory, name) for name in sorted(names) if "json" in name]


def _json_lines(text, path, who):
    examples = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            examples.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{who}: line {number} of {path!r} is not JSON ({err}); expected one "
                             "JSON object a line.") from err
    return examples


def _weights(target, dtype=np.int64):
    return np.ones(len(target), dtype=dtype)


def _no_example_error(who, path, why):
    return ValueError(f"{who}: a whole pass over {path!r} gave no example ({why}); "
                      "the stream would never yield.")
