"""The 'data_source' backend of `pax_trax.data.TFDS`: examples read by key from
``tfds.data_source`` (array_record files), without TensorFlow.

Each epoch is a seeded permutation of the split's keys (or the stored order).
For splits whose records are plain scalar features (``Scalar``, ``ClassLabel``,
``Text``), raw records are read by key straight from array_record's readers
(`_ArrayRecordShards`), a chunk at a time while the next chunk is read in a
background thread, and each chunk is parsed at once with NumPy
(`_example_wire`, `_ScalarFeaturesDecoder`); other features take TFDS's own
per-example decoding.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading

import numpy as np

from pax_trax.data import _example_wire
from pax_trax.data._tfds_select import (
    _TFDS,
    _as_feature_dtype,
    _plain_scalar_features,
    _select,
    _small_enough_to_cache,
)

# Records read at once from a random-access data source.
_READ_CHUNK = 256
# Raw records are read in chunks of up to this many bytes, and up to this many records.
_READ_BYTES, _MAX_READ_CHUNK = 1 << 20, 2048


# ------------------------------------------------ the 'data_source' backend


def _data_source_examples(source, decode, shuffle, seed, repeat, preprocess_fn=None,
                          kept=None):
    """Example dicts from a random-access source (records made examples by `decode`):
    a fresh seeded permutation each epoch when `shuffle`, else in the stored order.

    `preprocess_fn` runs on each epoch's examples, as the 'tf' backend's
    ``preprocess_fn(dataset).repeat()``. Like tf.data's ``repeat``, the stream
    ends at an epoch that gives no example (e.g. `preprocess_fn` filtered all
    of them out) instead of looping forever without yielding.

    `kept` (a `_KeptExamples` of the source, without `preprocess_fn`): examples once
    decoded are kept there, and an epoch whose examples are all kept reads nothing.
    """
    rng = np.random.default_rng(seed)
    n = len(source)
    while True:
        order = rng.permutation(n) if shuffle else np.arange(n)
        if kept is not None and kept.complete():
            epoch = kept.in_order(order, decode)
        else:
            epoch = _read_in_order(source, order, decode, kept)
        if preprocess_fn is not None:
            epoch = preprocess_fn(epoch)
        empty = True
        for example in epoch:
            empty = False
            yield example
        if empty or not repeat:
            return


class _KeptExamples:
    """The decoded examples of a source, by key, as they are decoded (``tfds.load``
    caches small datasets after decoding too): kept only when they are tuples of
    immutable values (bytes, str, NumPy scalars), as the scalar decoder makes them, so
    that yielding the same objects every epoch is safe; any other example is kept as
    its record and decoded again in each epoch."""

    def __init__(self, n):
        self._examples = [None] * n

    def complete(self):
        return None not in self._examples

    def put(self, keys, examples, fallbacks):
        """Keeps `examples` (of the records at `keys`: the scalar decoder's tuples) but
        those at the indices `fallbacks` (not decoded yet)."""
        for key, example in zip(keys, examples):
            self._examples[key] = example
        for i in fallbacks:
            self._examples[keys[i]] = None

    def put_decoded(self, key, example, record):
        """Keeps `example`, decoded on its own from `record` (whatever it holds)."""
        if type(example) is tuple and all(type(value) in (bytes, str) or isinstance(
                value, np.generic) for value in example):
            self._examples[key] = example
        else:
            self._examples[key] = _Record(record)

    def in_order(self, order, decode):
        """The examples at the keys `order` (each kept record decoded anew)."""
        examples = map(self._examples.__getitem__, order.tolist())
        if _Record not in map(type, self._examples):
            return examples
        return (decode(x.record) if type(x) is _Record else x for x in examples)


class _Record:
    """A record kept in `_KeptExamples` instead of its decoded (mutable) example."""

    __slots__ = ("record",)

    def __init__(self, record):
        self.record = record


def _read_in_order(source, order, decode, kept=None):
    chunks = _chunks(source, order)
    decode_many = getattr(decode, "decode_many", None)
    if (decode_many is not None and isinstance(source, _ArrayRecordShards)
            and len(order) > _READ_CHUNK and not source.all_in_memory):
        # The next chunk is read while this one is decoded: array_record's reads (zstd)
        # release the interpreter lock for most of their time (~3 us a small record).
        chunks = _read_ahead(chunks)
    for keys, records in chunks:
        if decode_many is None:
            for key, record in zip(keys, records):
                example = decode(record)
                if kept is not None:
                    kept.put_decoded(key, example, record)
                yield example
            continue
        examples, fallbacks = decode_many(records)
        if len(fallbacks) > len(records) // 2:
            decode_many = None  # (records of another layout: not worth parsing twice)
        if kept is not None:
            kept.put(keys, examples, fallbacks)
        # The records not decoded at once are decoded in their turn (raising there if so).
        start = 0
        for i in fallbacks:
            yield from examples[start:i]
            example = decode(records[i])
            if kept is not None:
                kept.put_decoded(keys[i], example, records[i])
            yield example
            start = i + 1
        yield from examples[start:] if start else examples


# The read-ahead threads running, and the events that stop them (all set at exit).
_READ_AHEAD = {}


def _read_ahead(chunks):
    """`chunks` (an iterator), read one chunk ahead in a daemon thread, which stops (after
    the chunk it is reading) when this generator is closed or collected, or at exit."""
    slot, stop = queue.Queue(1), threading.Event()
    thread = threading.Thread(target=_read_ahead_work, args=(chunks, slot, stop),
                              name="pax_trax.data.TFDS read-ahead", daemon=True)
    _READ_AHEAD[thread] = stop
    thread.start()
    try:
        while True:
            records, error = slot.get()
            if error is not None:
                raise error
            if records is None:
                return
            yield records
    finally:
        stop.set()


def _read_ahead_work(chunks, slot, stop):
    try:
        try:
            for records in chunks:
                if not _put(slot, (records, None), stop):
                    return
            item = (None, None)
        except BaseException as error:  # noqa: BLE001 - raised by the reading generator
            item = (None, error)
        _put(slot, item, stop)
    finally:
        _READ_AHEAD.pop(threading.current_thread(), None)


def _put(slot, item, stop):
    """Puts `item` in `slot` unless `stop` is set first; whether it did."""
    while not stop.is_set():
        try:
            slot.put(item, timeout=0.05)
            return True
        except queue.Full:
            pass
    return False


@atexit.register
def _stop_reading_ahead():
    # (A daemon thread still inside array_record's C++ read at exit aborts the process.)
    running = list(_READ_AHEAD.items())
    for _, stop in running:
        stop.set()
    for thread, _ in running:
        thread.join(timeout=5)


def _chunks(source, order):
    """``(keys, records)``: lists of `source`'s records in `order`, with their keys; small
    raw records in larger chunks."""
    start, chunk = 0, _READ_CHUNK
    while start < len(order):
        keys = order[start:start + chunk].tolist()
        records = source.__getitems__(keys)
        start += chunk
        if records and isinstance(records[0], bytes):
            # Raw records: read small ones in larger chunks (random reads from array_record
            # cost ~15 us each in chunks of 256, ~8 us in chunks of 2048).
            size = sum(map(len, records)) / len(records)
            chunk = int(min(max(_READ_BYTES // max(size, 1), _READ_CHUNK), _MAX_READ_CHUNK))
        yield keys, records


class _ArrayRecordShards:
    """The raw records of a TFDS split stored as array_record, read by key straight from
    ``ArrayRecordReader``s: array_record's own data source maps each key to its
    shard with ~2 us of Python (a third of the cost of reading a small record);
    here a chunk's keys are mapped with NumPy and each shard read with one call.

    With `keep_in_memory`, each record is kept once read (as ``tfds.load`` caches
    datasets of up to 250 MiB): later epochs then index a list instead of reading and
    decompressing each record again (~3 us a small record).
    """

    def __init__(self, file_instructions, keep_in_memory=False):
        from array_record.python import array_record_module

        self._instructions = list(file_instructions)
        self._open = array_record_module.ArrayRecordReader
        self._readers = [None] * len(self._instructions)
        counts = [fi.take for fi in self._instructions]
        self._ends = np.cumsum(counts)
        self._starts = self._ends - counts
        self._skips = np.array([fi.skip for fi in self._instructions])
        self._lock = threading.Lock()  # (streams read in their own threads)
        self.small = False  # (whether the dataset is small enough to keep: `for_source`)
        self._kept = [None] * len(self) if keep_in_memory else None
        self._is_kept = np.zeros(len(self) if keep_in_memory else 0, bool)
        self._n_not_kept = len(self) if keep_in_memory else 0

    @classmethod
    def for_source(cls, source, keep_records=True):
        """Shards reading what `source` (``tfds.data_source(...)`` with RAW_BYTES) reads,
        or None when `source` is not array_record or its files cannot be opened so.
        Their records are kept in memory if `keep_records` and the dataset is `small`
        (`_small_enough_to_cache`, as tfds.load's autocache)."""
        try:
            info, split = source.dataset_info, source.split
            if info.file_format.value != "array_record":
                return None
            small = _small_enough_to_cache(info)
            shards = cls(info.splits[split].file_instructions,
                         keep_in_memory=keep_records and small)
            shards.small = small
        except (AttributeError, ImportError, KeyError, TypeError, ValueError):
            return None
        if int(shards._ends[-1]) != len(source) or any(
                fi.take < 0 for fi in shards._instructions):
            return None
        return shards

    def __len__(self):
        return int(self._ends[-1])

    @property
    def all_in_memory(self):
        """Whether every record is kept in memory (reads then cost no I/O)."""
        return self._kept is not None and self._n_not_kept == 0

    def _reader(self, shard):
        if self._readers[shard] is None:
            self._readers[shard] = self._open(
                os.fspath(self._instructions[shard].filename),
                options="readahead_buffer_size:0", file_reader_buffer_size=32768)
        return self._readers[shard]

    def __getitems__(self, keys):
        keys = np.asarray(keys, dtype=np.int64)
        if len(keys) and (keys.min() < 0 or keys.max() >= len(self)):
            raise IndexError(f"{_TFDS}: record keys must be in [0, {len(self)}).")
        with self._lock:
            if self._kept is None:
                return self._read(keys)
            if self._n_not_kept:
                new = np.unique(keys[~self._is_kept[keys]])
                if len(new):
                    for key, record in zip(new.tolist(), self._read(new)):
                        self._kept[key] = record
                    self._is_kept[new] = True
                    self._n_not_kept -= len(new)
            return list(map(self._kept.__getitem__, keys.tolist()))

    def _read(self, keys):
        shard_of = np.searchsorted(self._ends, keys, side="right")
        positions = keys - self._starts[shard_of] + self._skips[shard_of]
        try:
            records = self._read_shards(shard_of, positions)
        except RuntimeError as error:  # (array_record: "Corrupted Riegeli/records file", ...)
            raise self._changed_file_error(shard_of, positions, 0, f"failed: {error}") from error
        # (array_record reads an empty record where its file ends early; a TFDS example
        # is never empty: it names its features.)
        if b"" in records:
            raise self._changed_file_error(shard_of, positions, records.index(b""),
                                           "is empty: its file ends before it")
        return records

    def _changed_file_error(self, shard_of, positions, i, what):
        return OSError(
            f"{_TFDS}: reading record {int(positions[i])} of "
            f"{os.fspath(self._instructions[int(shard_of[i])].filename)} {what}. The file holds "
            "fewer or other records than the dataset's info says: was it changed, cut or "
            "emptied while the stream read it?")

    def _read_shards(self, shard_of, positions):
        if len(self._instructions) == 1:
            return self._reader(0).read(positions.tolist())
        records = [b""] * len(positions)
        for shard in np.unique(shard_of).tolist():
            where = np.flatnonzero(shard_of == shard)
            for i, record in zip(where.tolist(), self._reader(shard).read(positions[where].tolist())):
                records[i] = record
        return records


# Where a tf.train.Feature keeps values of each NumPy dtype kind.
_FEATURE_LISTS = {"i": "int64_list", "u": "int64_list", "b": "int64_list", "f": "float_list",
                  "O": "bytes_list", "S": "bytes_list", "U": "bytes_list"}


class _ScalarFeaturesDecoder:
    """Decodes serialized TFDS examples whose features are all scalars, ~10x faster than
    TFDS's generic ``deserialize_example_np`` (~50 us an example, which dominated
    the walkthrough pipeline's time).

    Used for a flat ``FeaturesDict`` of ``Scalar``, ``ClassLabel``, ``Text`` and
    ``Tensor(shape=())`` features stored plainly (no encoding, not optional, not
    uint64): TFDS stores each as a one-value ``tf.train.Feature`` list under its
    name. The values are those of TFDS's decoding plus `_as_feature_dtype`
    (NumPy scalars of the feature's dtype, text as bytes); a record that does
    not look as expected is decoded by TFDS instead.

    With `decode_text` not None, a record decodes straight to the stream's
    example, ``_select(decoded, names, decode_text)``, without the dict in between.

    `decode_many` decodes a chunk of records at once, ~5x faster on small records
    (`_example_wire`), leaving to ``self(record)`` the records it cannot decode so.
    """

    def __init__(self, example_class, features, names, fallback, decode_text=None):
        self._parse = example_class.FromString
        self._fields = []
        for name in names:
            dtype = np.dtype(features[name].np_dtype)
            convert = _scalar_converter(dtype)
            if decode_text and dtype.kind == "O":
                convert = bytes.decode  # (UTF-8, strict: as _decode_text)
            self._fields.append((name, _FEATURE_LISTS[dtype.kind], convert))
        self._fallback = fallback
        self._as_tuples = decode_text is not None
        self._columns = [(name, dtype, bool(decode_text) and dtype.kind == "O")
                         for name, dtype in ((name, np.dtype(features[name].np_dtype))
                                             for name in names)]
        self._wanted = {name: _WIRE_LISTS[dtype.kind] for name, dtype, _ in self._columns
                        if dtype.kind in _WIRE_LISTS}
        if len(self._wanted) < len(set(names)):
            self._wanted = None  # (a dtype that `_column` does not make: decoded one by one)

    @classmethod
    def for_features(cls, tfds, features, names, decode_text=None):
        """A decoder of `names` (None: all features), or None when they are not all plain
        scalars (or this TFDS has no proto module to parse with). With `decode_text`
        not None, it makes the stream's tuples of `names` (text decoded if true)."""
        try:
            from tensorflow_datasets.proto import tf_example_pb2
            deserialize = features.deserialize_example_np
        except (ImportError, AttributeError):
            return None
        names = _plain_scalar_features(tfds, features, names)
        if names is None:
            return None

        def fallback(record):
            example = _as_feature_dtype(deserialize(record), features)
            return example if decode_text is None else _select(example, names, decode_text)

        return cls(tf_example_pb2.Example, features, names, fallback, decode_text)

    def __call__(self, record):
        feature_map = self._parse(record).features.feature
        values = []
        try:
            for name, kind, convert in self._fields:
                stored = getattr(feature_map[name], kind).value
                if len(stored) != 1:
                    return self._fallback(record)
                values.append(convert(stored[0]))
        except (KeyError, TypeError, ValueError):
            return self._fallback(record)
        if self._as_tuples:
            return tuple(values)
        return {name: value for (name, _, _), value in zip(self._fields, values)}

    def decode_many(self, records):
        """`records` decoded at once (`_example_wire`): ``(examples, fallbacks)``, the
        examples of the records at the sorted indices `fallbacks` left for ``self(record)``
        (their places in `examples` hold something else)."""
        if self._wanted is None:
            return [None] * len(records), list(range(len(records)))
        values, fallbacks = _example_wire.parse_chunk(records, self._wanted)
        if len(fallbacks) == len(records):
            return [None] * len(records), fallbacks.tolist()
        bad = np.zeros(len(records), bool)
        bad[fallbacks] = True
        columns = [_column(values[name], dtype, as_text, bad)
                   for name, dtype, as_text in self._columns]
        if self._as_tuples:
            examples = list(zip(*columns))
        else:
            names = [name for name, _, _ in self._columns]
            examples = [dict(zip(names, row)) for row in zip(*columns)]
        return examples, np.flatnonzero(bad).tolist()


# Where `_example_wire` finds values of each NumPy dtype kind.
_WIRE_LISTS = {"i": _example_wire.BYTES_INT64, "u": _example_wire.BYTES_INT64,
               "b": _example_wire.BYTES_INT64, "f": _example_wire.BYTES_FLOAT,
               "O": _example_wire.BYTES_BYTES}


def _column(values, dtype, as_text, bad):
    """One feature's values of a chunk (`_example_wire.parse_chunk`) as the per-record
    decoder makes them; marks in `bad` the records it would not decode so (a number out
    of the dtype's range, text that is not UTF-8)."""
    if dtype.kind == "O":
        data, starts, ends = values
        starts, ends = np.where(bad, 0, starts).tolist(), np.where(bad, 0, ends).tolist()
        if not as_text:  # (the bad records' spans are empty: no copies of garbage)
            return [data[start:end] for start, end in zip(starts, ends)]
        try:
            return [data[start:end].decode() for start, end in zip(starts, ends)]
        except UnicodeDecodeError:
            column = []
            for i, (start, end) in enumerate(zip(starts, ends)):
                try:
                    column.append(data[start:end].decode())
                except UnicodeDecodeError:
                    column.append(None)
                    bad[i] = True
            return column
    if dtype.kind == "f":  # (float32 -> Python float -> dtype, as upb's value and dtype.type)
        with np.errstate(invalid="ignore"):  # (signaling NaNs, quieted as by upb)
            return list(values.astype(np.float64).astype(dtype))
    if dtype.kind == "b":
        return list(values != 0)
    info = np.iinfo(dtype)
    if info.min > np.iinfo(np.int64).min or info.max < np.iinfo(np.int64).max:
        bad |= (values < info.min) | (values > info.max)  # (dtype.type raises)
    return list(values.astype(dtype))


def _scalar_converter(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "O":  # text: the bytes as stored
        return bytes
    return dtype.type


def _data_source_stream(tfds, read, features):
    # Only the selected features are decoded, unless tfds_preprocess_fn needs them all;
    # without it, records decode straight to the stream's tuples.
    names = read.keys if read.preprocess_fn is None else None
    to_tuples = names is not None
    kept = None
    decode = _ScalarFeaturesDecoder.for_features(
        tfds, features, names, decode_text=read.decode_text if to_tuples else None)
    methods = getattr(tfds.decode, "DeserializeMethod", None)  # (not in older TFDS)
    if decode is None or methods is None:
        to_tuples = False
        source = tfds.data_source(read.dataset_name, split=read.split, data_dir=read.data_dir,
                                  download=False)

        def decode(record):
            return _as_feature_dtype(record, features)
    else:
        source = tfds.data_source(read.dataset_name, split=read.split, data_dir=read.data_dir,
                                  download=False, deserialize_method=methods.RAW_BYTES)
        shards = _ArrayRecordShards.for_source(source, keep_records=not to_tuples)
        if shards is not None:
            source = shards
            if to_tuples and shards.small:  # (tuples of scalars: the decoded ones are kept)
                kept = _KeptExamples(len(shards))

    def stream(generator=None):
        del generator
        examples = _data_source_examples(source, decode, read.shuffle, read.seed, read.repeat,
                                         read.preprocess_fn, kept)
        if to_tuples:
            return examples
        return (_select(example, read.keys, read.decode_text) for example in examples)

    return stream
