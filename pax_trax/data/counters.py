"""Resumable stream positions: CountAndSkip and the data counters (`trax.data.inputs`).

`count_and_skip` counts the examples a named stream has produced in the
module-level dict `data_counters`; a new stream with the same name first
skips that many examples. Saving the counters with a checkpoint and loading
them on restart therefore resumes a deterministic stream where it stopped.

The counters are saved as JSON (``data_counters<host_id>.json``), written to a
temporary file and moved into place with ``os.replace`` so a crash never
leaves a truncated file. (Trax pickled them to ``data_counters<host_id>.pkl``.)

`data_counters` is one dict object for the life of the process: loading
updates it in place, so ``from pax_trax.data.inputs import data_counters``
stays valid.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile

logger = logging.getLogger(__name__)

data_counters: dict[str, int] = {}  # Used by {load,save}_data_counters and count_and_skip


def count_and_skip(generator, name):
    """Count the number of items in the generator, skip already counted ones.

    The number of examples produced so far under `name` is kept in
    ``data_counters[name]``. A new stream with the same name skips that many
    examples first, then increments the counter for every example it yields.
    When the data source is deterministic this restores the reading position
    from a checkpoint (see `save_data_counters` / `load_data_counters`).

    Args:
      generator: stream of examples.
      name: unique id of the stream.

    Yields:
      The examples of `generator` after the first ``data_counters[name]``.

    >>> data_counters.pop("doc_stream", None)
    >>> first = count_and_skip(iter("abcd"), "doc_stream")
    >>> next(first), next(first), data_counters["doc_stream"]
    ('a', 'b', 2)
    >>> next(count_and_skip(iter("abcd"), "doc_stream"))  # a new stream resumes
    'c'
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"CountAndSkip: expected a non-empty string name, got {name!r}.")
    return _count_and_skip(generator, name)


def _count_and_skip(generator, name):
    local_counter = 0
    for example in generator:
        local_counter += 1
        # Checked inside the loop: counters may be loaded after the stream
        # object is created but before it starts.
        if name not in data_counters:
            data_counters[name] = 0
        if local_counter > data_counters[name]:
            data_counters[name] += 1
            yield example


def CountAndSkip(name):  # noqa: N802 (Trax name)
    """Returns a function that counts and skips examples (see `count_and_skip`).

    >>> data_counters.pop("doc_toy", None)
    >>> stream_fn = CountAndSkip("doc_toy")
    >>> [x for _, x in zip(range(2), stream_fn(iter(range(5))))]  # take two
    [0, 1]
    >>> list(stream_fn(iter(range(5))))
    [2, 3, 4]
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"CountAndSkip: expected a non-empty string name, got {name!r}.")
    return lambda g: count_and_skip(g, name)


def _counters_path(output_dir, host_id):
    if host_id is None:
        import jax  # lazily: only the default host id needs it

        host_id = jax.process_index()
    return os.path.join(os.fspath(output_dir), f"data_counters{int(host_id)}.json")


def save_data_counters(output_dir, host_id=None):
    """Checkpoint data counters.

    Writes `data_counters` to ``output_dir/data_counters<host_id>.json``
    atomically (temporary file in the same directory, then ``os.replace``).
    `host_id` defaults to ``jax.process_index()``.
    """
    path = _counters_path(output_dir, host_id)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    snapshot = {name: int(count) for name, count in dict(data_counters).items()}
    fd, tmp_path = tempfile.mkstemp(prefix=".data_counters.", suffix=".tmp", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(snapshot, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def load_data_counters(output_dir, host_id=None):
    """Restore data counters saved by `save_data_counters`.

    Replaces the contents of `data_counters` (in place) with the saved ones.
    If the file does not exist, logs it and leaves the counters unchanged.
    A file that is not a JSON object of string -> non-negative int raises
    ``ValueError`` naming the file.
    """
    path = _counters_path(output_dir, host_id)
    if not os.path.exists(path):
        logger.info("Did not load data counters as %s does not exist.", path)
        return
    with open(path) as f:
        try:
            loaded = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"load_data_counters: {path} is not valid JSON: {e}") from e
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in loaded.items()
    ):
        raise ValueError(
            f"load_data_counters: expected {path} to hold a JSON object of stream name -> "
            f"non-negative int, got {loaded!r:.200}."
        )
    data_counters.clear()
    data_counters.update(loaded)
