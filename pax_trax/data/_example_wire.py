"""A vectorized reader of serialized ``tf.train.Example``s, for the 'data_source'
backend of `pax_trax.data.TFDS`: a whole chunk of records is parsed at once with
NumPy, instead of one ``Example.FromString`` and a few attribute look-ups a record
(~2.4 us a small record, more than half the cost of reading it).

Records written by one TFDS writer share their layout: the same features in the
same order, each a map entry ``key`` / ``Feature`` holding one list with one
value. `parse_chunk` walks all records' offsets in lock-step through that
layout (the first record's, "the template"), reading tags and varint lengths
for all of them at once, and checks every byte of structure on the way. A
record that deviates in any way (another order, a missing, extra or repeated
feature, more or fewer values, unknown fields, non-canonical lengths, a
feature of another kind, a truncated or corrupt record) is not parsed here:
its index is returned in ``bad``, for the caller's per-record decoder (upb),
which gives what it gives now, values or errors. So a record parsed here is a
well-formed ``Example`` whose values are exactly upb's.

The wire format (``tensorflow/core/example/{example,feature}.proto``)::

    Example  { Features features = 1; }              0x0a len Features
    Features { map<string, Feature> feature = 1; }   0x0a len {0x0a len key, 0x12 len Feature}
    Feature  { oneof { BytesList bytes_list = 1;     0x0a len {0x0a len bytes}
                       FloatList float_list = 2;     0x12 len {0x0a 0x04 f32 | 0x0d f32}
                       Int64List int64_list = 3; } } 0x1a len {0x0a n varint | 0x08 varint}

An Example of ``a``: int64 -3 (a 10-byte varint) and ``t``: b"hi", and a record that
is not an Example:

>>> a = b"\\n\\x01a\\x12\\x0e\\x1a\\x0c\\n\\n" + b"\\xfd" + b"\\xff" * 8 + b"\\x01"
>>> t = b"\\n\\x01t\\x12\\x06\\n\\x04\\n\\x02hi"
>>> record = b"\\n\\x22" + b"\\n\\x13" + a + b"\\n\\x0b" + t
>>> values, bad = parse_chunk([record, b"junk"], {"a": BYTES_INT64, "t": BYTES_BYTES})
>>> values["a"][0], bad.tolist()
(np.int64(-3), [1])
>>> data, starts, ends = values["t"]; data[starts[0]:ends[0]]
b'hi'
"""

from __future__ import annotations

import numpy as np

# The tag of each kind of list in a tf.train.Feature (field number << 3 | 2).
BYTES_BYTES, BYTES_FLOAT, BYTES_INT64 = 0x0A, 0x12, 0x1A

_PAD = 16  # zero bytes after the records: every gather reads within the buffer
_MAX_STEPS = 256  # features a record may have for the lock-step walk
_FOUR = np.arange(4)


def _varint(buf, p, most):
    """The varints at positions `p`: (values as uint64, lengths, bad), bad where one is longer
    than `most` bytes. ``p + most`` must be within `buf`."""
    b = buf[p]
    value = (b & 0x7F).astype(np.uint64)
    more = b >= 0x80
    length = np.ones(len(p), np.int64)
    if not more.any():
        return value, length, more
    for k in range(1, most):
        b = buf[p + k]
        value |= np.where(more, (b & 0x7F).astype(np.uint64) << np.uint64(7 * k), np.uint64(0))
        length += more
        more &= b >= 0x80
        if not more.any():
            break
    return value, length, more


def _length(buf, p, limit):
    """The length-delimited field lengths at `p`: (lengths, positions after them, bad)."""
    value, length, bad = _varint(buf, p, 5)
    return value.astype(np.int64), np.minimum(p + length, limit), bad


def parse_chunk(records, wanted):
    """Parses serialized Examples `records` (a list of bytes) at once.

    `wanted`: ``{feature name: BYTES_BYTES | BYTES_FLOAT | BYTES_INT64}``, the kind of
    list each is expected in, with one value.

    Returns ``(values, bad)``: `bad` the sorted indices of the records not parsed here
    (their values in `values` are meaningless); `values` maps each name to
    ``(data, starts, ends)`` (bytes: ``data[starts[i]:ends[i]]``) for BYTES_BYTES,
    float32 values for BYTES_FLOAT, int64 values for BYTES_INT64.
    """
    n = len(records)
    lens = np.fromiter(map(len, records), np.int64, n)
    ends = np.cumsum(lens)
    starts = ends - lens
    data = b"".join(records)
    limit = len(data)
    buf = np.frombuffer(data + bytes(_PAD), np.uint8)
    ok = lens > 0
    # Example: 0x0a len Features, ending with the record.
    p = np.minimum(starts, limit)
    ok &= buf[p] == 0x0A
    size, p, bad = _length(buf, p + 1, limit)
    ok &= ~bad & (p + size == ends)
    found = {}  # name -> (kind, value positions, value ends)
    step = 0
    while True:
        more = p < ends
        if not (ok & more).any():
            break
        template = int(np.argmax(ok))
        if not more[template] or step == _MAX_STEPS:
            ok &= ~more  # longer than the template
            break
        ok &= more
        step += 1
        # A map entry: 0x0a len {0x0a len key, 0x12 len Feature}.
        ok &= buf[p] == 0x0A
        size, q, bad = _length(buf, p + 1, limit)
        entry_end = q + size
        ok &= ~bad & (entry_end <= ends) & (buf[q] == 0x0A)
        key_size = buf[q + 1].astype(np.int64)  # (a key of < 128 bytes: one byte)
        key_start = q[template] + 2
        key = data[key_start:key_start + int(key_size[template])]
        ok &= (key_size == len(key)) & (key_size < 0x80)
        if key:
            at = np.minimum((q + 2)[:, None] + np.arange(len(key)), limit)
            ok &= (buf[at] == np.frombuffer(key, np.uint8)).all(axis=1)
        r = np.minimum(q + 2 + len(key), limit)
        ok &= buf[r] == 0x12
        size, r, bad = _length(buf, r + 1, limit)
        ok &= ~bad & (r + size == entry_end)
        # The Feature: one list, of the template's kind.
        kind = int(buf[r[template]])
        ok &= buf[r] == kind
        size, r, bad = _length(buf, r + 1, limit)
        ok &= ~bad & (r + size == entry_end)
        value_start = value_end = None
        if kind == BYTES_BYTES:  # 0x0a len bytes
            ok &= buf[r] == 0x0A
            size, r, bad = _length(buf, r + 1, limit)
            ok &= ~bad & (r + size == entry_end)
            value_start, value_end = r, entry_end
        elif kind == BYTES_FLOAT:  # packed 0x0a 0x04 f32, or 0x0d f32
            b0, b1 = buf[r], buf[r + 1]
            ok &= ((size == 6) & (b0 == 0x0A) & (b1 == 4)) | ((size == 5) & (b0 == 0x0D))
            value_start = entry_end - 4
        elif kind == BYTES_INT64:  # packed 0x0a n varint, or 0x08 varint
            b0, b1 = buf[r], buf[r + 1]
            packed = b0 == 0x0A
            ok &= (packed & (b1 == size - 2)) | (b0 == 0x08)
            v = np.minimum(r + 1 + packed, limit)
            value, length, bad = _varint(buf, v, 10)
            # (a 10-byte varint's last byte holds bit 63 only)
            ok &= ~bad & (v + length == entry_end) & ((length < 10) | (buf[v + 9] <= 1))
            value_start = value
        else:
            ok[:] = False
            break
        p = np.minimum(entry_end, limit)
        name = _utf8(key)
        if name is None:  # (not UTF-8: upb rejects the record)
            ok[:] = False
            break
        if name in wanted:
            if name in found:  # (repeated: upb keeps the last)
                ok[:] = False
                break
            found[name] = (kind, value_start, value_end)
    values = {}
    for name, kind in wanted.items():
        if name not in found or found[name][0] != kind:
            ok[:] = False
            values[name] = None
            continue
        _, value_start, value_end = found[name]
        if kind == BYTES_BYTES:
            values[name] = (data, value_start, value_end)
        elif kind == BYTES_FLOAT:
            at = np.minimum(value_start[:, None] + _FOUR, limit)
            values[name] = np.ascontiguousarray(buf[at]).view("<f4").ravel()
        else:
            values[name] = value_start.view(np.int64)
    return values, np.flatnonzero(~ok)


def _utf8(key):
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return None
