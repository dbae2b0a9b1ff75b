"""The 'data_source' backend of pax_trax.data.TFDS decoding a chunk of records at once
(`pax_trax.data._example_wire`) and reading the next chunk in a thread: the same
examples, of the same types, in the same order as decoding each record with upb
(`_ScalarFeaturesDecoder.__call__`) and with TFDS's own ``deserialize_example_np``.

Datasets: the movie review snippets of `tests/data_cache.py` (as
``test_tfds.py``), and a small one of int32, int64, bool, float32, ClassLabel and
Text features with extreme values (negative and large integers, NaN and
infinities, empty and non-ASCII text, texts of over 127 and 16383 bytes) and a
variable-length int64 Tensor (one value in most records, so that most records
are decoded at once and the rest take the per-record path). Hypothesis
generates serialized Examples in other layouts (other field orders, unpacked
lists, unknown fields, repeated or missing features, corrupt bytes).
"""

import gc
import importlib
import struct
import threading
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pax_trax.data import _example_wire, _lazy
from pax_trax.data._tfds_data_source import (
    _ArrayRecordShards,
    _data_source_examples,
    _KeptExamples,
    _read_ahead,
    _read_in_order,
    _ScalarFeaturesDecoder,
)
from pax_trax.data._tfds_select import _as_feature_dtype, _select
from pax_trax.data.tfds import TFDS

data_cache = importlib.import_module("pax_trax_tests_data_cache")  # registered by conftest.py
MOVIES, ODD = "movie_review_snippets", "odd_scalars"
N_ODD = 300
pytest.importorskip("tensorflow_datasets")
pytest.importorskip("array_record")
tfds = _lazy.tensorflow_datasets("tests")
from tensorflow_datasets.proto import tf_example_pb2  # noqa: E402 (after tfds)

I64 = np.iinfo(np.int64)
I32 = np.iinfo(np.int32)
TEXTS = ["", "café ☕", "naïve — 日本語", "x" * 200, "long " * 3500, "plain"]


def odd_features():
    return {
        "i32": tfds.features.Scalar(np.int32),
        "i64": tfds.features.Scalar(np.int64),
        "flag": tfds.features.Scalar(np.bool_),
        "f32": tfds.features.Scalar(np.float32),
        "label": tfds.features.ClassLabel(num_classes=3),
        "text": tfds.features.Text(),
        "extra": tfds.features.Tensor(shape=(None,), dtype=np.int64),
    }


def odd_example(i):
    i64s = [I64.min, I64.max, -1, 0, 1 << 40, -(1 << 35) - 7]
    i32s = [I32.min, I32.max, -5, 0, 70000]
    f32s = [np.nan, np.inf, -np.inf, -0.0, 1e-40, 3.5, -1.25e30]
    return {"i32": i32s[i % 5], "i64": i64s[i % 6] + (i if i % 6 == 3 else 0),
            "flag": i % 3 == 0, "f32": np.float32(f32s[i % 7]), "label": i % 3,
            "text": TEXTS[i % 6] + (str(i) if i % 4 else ""),
            "extra": [i, -i] if i % 10 == 9 else [i]}


class OddScalars(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    name = ODD
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self,
                                     features=tfds.features.FeaturesDict(odd_features()))

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        return ((i, odd_example(i)) for i in range(N_ODD))


@pytest.fixture(scope="module")
def data_dir(rows, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("tfds_fast"))
    data_cache.tfds_builder(tfds, rows, MOVIES)(
        data_dir=root, file_format="array_record").download_and_prepare()
    OddScalars(data_dir=root, file_format="array_record").download_and_prepare()
    return root


def raw(data_dir, name, split="train"):
    """(all records of the split, in the stored order; the dataset's features)."""
    builder = tfds.builder(name, data_dir=data_dir)
    source = _ArrayRecordShards(builder.info.splits[split].file_instructions)
    return source.__getitems__(list(range(len(source)))), builder.info.features


def same(a, b, ordered=True):
    """Equal values of equal types (floats bit for bit: NaN too), in tuples and dicts (the
    keys in the same order if `ordered`: TFDS's are sorted, the scalar decoder's not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        keys_a, keys_b = (list(a), list(b)) if ordered else (sorted(a), sorted(b))
        return keys_a == keys_b and all(same(a[k], b[k]) for k in a)
    if isinstance(a, np.floating):
        return a.tobytes() == b.tobytes()
    return a == b


def decode_all(decoder, records):
    """What `_read_in_order` yields: decode_many, and the per-record decoder for the
    records it leaves (raising there)."""
    examples, fallbacks = decoder.decode_many(records)
    out = list(examples)
    for i in fallbacks:
        out[i] = decoder(records[i])
    return out, fallbacks


CONFIGS = [(None, None), (("text", "label"), False), (("label", "text"), True),
           (("i32", "i64", "flag", "f32", "text", "label"), False),
           (("text", "f32", "text"), True)]


@pytest.mark.parametrize("names,decode_text", CONFIGS)
def test_chunk_decoding_equals_per_record_and_tfds_decoding(data_dir, names, decode_text):
    records, features = raw(data_dir, ODD)
    decoder = _ScalarFeaturesDecoder.for_features(tfds, features, names, decode_text)
    if names is None:
        decoder = _ScalarFeaturesDecoder.for_features(
            tfds, features, [n for n in features.keys() if n != "extra"], None)
    out, fallbacks = decode_all(decoder, records)
    # Only the records whose 'extra' has two values are left to the per-record decoder.
    two = [i for i, record in enumerate(records) if len(
        tf_example_pb2.Example.FromString(record).features.feature["extra"].int64_list.value) == 2]
    assert fallbacks == two and len(two) == N_ODD // 10
    for i, (record, example) in enumerate(zip(records, out)):
        assert same(example, decoder(record)), i
        tfds_example = _as_feature_dtype(features.deserialize_example_np(record), features)
        if names is None:
            del tfds_example["extra"]
        else:
            tfds_example = _select(tfds_example, names, decode_text)
        assert same(example, tfds_example, ordered=False), i
    if names is None:  # (what was written, in TFDS's stored order)
        written = [odd_example(i) for i in range(N_ODD)]
        assert sorted((int(e["i64"]), int(e["i32"]), bool(e["flag"]), e["text"]) for e in out) \
            == sorted((e["i64"], e["i32"], e["flag"], e["text"].encode()) for e in written)
        assert {I64.min, I64.max}.issubset(int(e["i64"]) for e in out)


def test_chunk_decoding_of_real_text(data_dir):
    records, features = raw(data_dir, MOVIES)
    for names, decode_text in ((("text", "label"), False), (("id", "score", "text"), True)):
        decoder = _ScalarFeaturesDecoder.for_features(tfds, features, names, decode_text)
        out, fallbacks = decode_all(decoder, records)
        assert fallbacks == []
        assert all(same(example, decoder(record)) for example, record in zip(out, records))


def test_stream_order_for_a_seed_is_a_permutation_per_epoch(data_dir):
    records, features = raw(data_dir, ODD)
    decoder = _ScalarFeaturesDecoder.for_features(tfds, features, ("i64", "text"), False)
    rng = np.random.default_rng(7)
    expected = [decoder(records[k]) for _ in range(3) for k in rng.permutation(N_ODD)]
    stream = TFDS(ODD, data_dir=data_dir, keys=("i64", "text"), train=True, download=False,
                  shuffle_seed=7, backend="data_source")()
    got = [next(stream) for _ in range(3 * N_ODD)]
    assert all(map(same, got, expected))
    eval_like = TFDS(ODD, data_dir=data_dir, keys=("i64", "text"), train=True, download=False,
                     shuffle_train=False, repeat=False, backend="data_source")()
    assert all(map(same, eval_like, (decoder(r) for r in records)))


def read_ahead_threads():
    return [t for t in threading.enumerate() if t.name == "pax_trax.data.TFDS read-ahead"]


def wait_until(condition, seconds=5):
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(0.01)
    return condition()


def test_read_ahead_thread_stops_when_the_stream_is_closed_or_dropped(data_dir):
    assert wait_until(lambda: not read_ahead_threads())
    stream_fn = TFDS(MOVIES, data_dir=data_dir, keys=("text", "label"), train=True,
                     download=False, backend="data_source")
    stream = stream_fn()
    next(stream)
    assert len(read_ahead_threads()) == 1
    stream.close()
    assert wait_until(lambda: not read_ahead_threads())
    # (A new TFDS: stream_fn's records are now in memory, read without a thread.)
    stream = TFDS(MOVIES, data_dir=data_dir, keys=("text", "label"), train=True,
                  download=False, backend="data_source")()
    next(stream)
    assert len(read_ahead_threads()) == 1
    del stream
    gc.collect()
    assert wait_until(lambda: not read_ahead_threads())


def test_read_ahead_gives_chunks_in_order_then_the_reading_error():
    def chunks():
        yield [b"a"]
        yield [b"b", b"c"]
        raise IndexError("bad key")

    ahead = _read_ahead(chunks())
    assert next(ahead) == [b"a"] and next(ahead) == [b"b", b"c"]
    with pytest.raises(IndexError, match="bad key"):
        next(ahead)
    assert list(_read_ahead(iter([]))) == []
    assert wait_until(lambda: not read_ahead_threads())


def test_a_record_that_fails_is_raised_in_its_turn(data_dir):
    # The records before a bad one are yielded first, as when decoding one by one.
    records, features = raw(data_dir, MOVIES)
    decoder = _ScalarFeaturesDecoder.for_features(tfds, features, ("text", "label"), False)

    class Source(list):
        def __getitems__(self, keys):
            return [self[k] for k in keys]

    source = Source(records[:5] + [b"\x0a\x05junk"] + records[5:10])
    stream = _read_in_order(source, np.arange(len(source)), decoder)
    assert [next(stream) for _ in range(5)] == [decoder(r) for r in records[:5]]
    with pytest.raises(Exception) as error:
        next(stream)
    with pytest.raises(type(error.value)):
        decoder(source[5])


class ListSource(list):
    """A random-access source of records (as tfds.data_source's __getitems__)."""

    def __getitems__(self, keys):
        return [self[k] for k in keys]


def test_kept_examples_are_those_decoded_and_mutable_ones_are_decoded_anew():
    records = ListSource(f"record {i}".encode() * (i % 3 + 1) for i in range(40))

    def as_scalars(record):  # (immutable values: kept after their first epoch)
        return record, np.int64(len(record))

    def as_arrays(record):  # (an array: kept as its record, decoded in every epoch)
        return np.frombuffer(record, np.uint8).copy(), len(record)

    for decode in (as_scalars, as_arrays):
        kept = _KeptExamples(len(records))
        stream = _data_source_examples(records, decode, True, 3, True, kept=kept)
        plain = _data_source_examples(records, decode, True, 3, True)
        first = [next(stream) for _ in range(len(records))]
        assert kept.complete()
        later = [next(stream) for _ in range(2 * len(records))]
        expected = [next(plain) for _ in range(3 * len(records))]
        assert repr(first + later) == repr(expected)
        if decode is as_scalars:
            assert any(a is b for a in later for b in first)  # (the kept objects)
        else:
            first[0][0][:] = 0  # (a consumer writing into its example's array)
            assert not any(a[0] is b[0] for a in later for b in first)
            assert repr(later) == repr(expected[len(records):])


def test_kept_examples_leave_the_fallbacks_of_a_chunk_until_they_are_decoded():
    kept = _KeptExamples(4)
    kept.put([2, 0, 3, 1], [(b"c",), ("wrong",), (b"d",), (b"b",)], fallbacks=[1])
    assert not kept.complete()
    kept.put_decoded(0, (b"a",), b"record a")
    assert kept.complete()
    assert list(kept.in_order(np.array([3, 2, 1, 0]), None)) == [(b"d",), (b"c",), (b"b",),
                                                                (b"a",)]


# ---------------------------------------------------------- generated records


def varint(value):
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


UNKNOWN = [b"\x28\x07", b"\x35\x00\x00\x80\x3f", field(9, b"zz")]  # varint, fixed32, bytes


def encode(draw, values, names, plain):
    """A serialized Example of `values` (``{name: (kind, value)}``) in `names` order, in
    TFDS's layout if `plain`, else perhaps deviating from it."""
    entries = []
    for name in names:
        kind, value = values[name]
        if kind == "int":
            unpacked = not plain and draw(st.booleans())
            lst = field(3, b"\x08" + varint(value) if unpacked else field(1, varint(value)))
        elif kind == "float":
            item = struct.pack("<f", value)
            packed = plain or draw(st.booleans())
            lst = field(2, field(1, item) if packed else b"\x0d" + item)
        else:
            lst = field(1, field(1, value))
        if not plain and draw(st.integers(0, 9)) == 0:
            lst += draw(st.sampled_from(UNKNOWN))  # an unknown field in the Feature
        entry = field(1, name.encode()) + field(2, lst)
        if not plain and draw(st.integers(0, 19)) == 0:
            entry = field(2, lst) + field(1, name.encode())  # the value before the key
        entries.append(field(1, entry))
    body = b"".join(entries)
    record = field(1, body)
    change = -1 if plain else draw(st.integers(0, 9))
    if change == 0:
        record += draw(st.sampled_from(UNKNOWN))  # an unknown Example field
    elif change == 1:  # the Features in two parts (merged by upb)
        record = field(1, body[:len(body) // 2]) + field(1, body[len(body) // 2:])
    elif change == 2:
        record = record[:draw(st.integers(0, len(record) - 1))]  # truncated
    elif change == 3:
        record = field(1, body + entries[0])  # a repeated feature
    elif change == 4:
        record = field(1, b"".join(entries[1:]))  # a missing one
    elif change == 5:
        record = record[:-1] + bytes([record[-1] ^ 0x80])  # a corrupt last byte
    return record


@st.composite
def generated_records(draw):
    """Serialized Examples of GENERATED's features: the first and others in TFDS's layout
    (the same order, one packed value each), the rest perhaps in other layouts (other
    orders, unpacked lists, unknown fields and features, repeated or missing features,
    corrupt records). [(record, whether in TFDS's layout, its values)]."""
    order = draw(st.permutations(sorted(GENERATED.keys())))
    records = []
    for i in range(draw(st.integers(1, 10))):
        values = {
            "n": ("int", draw(st.integers(I64.min, I64.max))),
            "small": ("int", draw(st.one_of(st.integers(I32.min, I32.max),
                                            st.integers(I64.min, I64.max)))),
            "b": ("int", draw(st.sampled_from([0, 1, 2, -1]))),
            "x": ("float", draw(st.floats(width=32))),
            "t": ("bytes", draw(st.one_of(st.text(max_size=300).map(str.encode),
                                          st.binary(max_size=3)))),
        }
        plain = i == 0 or draw(st.booleans())
        names = order
        if not plain:
            for name in draw(st.lists(st.sampled_from(["u1", "n2"]), max_size=2, unique=True)):
                values[name] = ("int", draw(st.integers(-3, 3)))  # unknown features
            names = draw(st.permutations(sorted(values)))
        records.append((encode(draw, values, names, plain), plain, values))
    return records


def generated_features():
    return tfds.features.FeaturesDict({
        "n": tfds.features.Scalar(np.int64), "small": tfds.features.Scalar(np.int32),
        "b": tfds.features.Scalar(np.bool_), "x": tfds.features.Scalar(np.float32),
        "t": tfds.features.Text()})


GENERATED = generated_features()


def outcome(fn, *args):
    try:
        return True, fn(*args)
    except Exception as error:  # noqa: BLE001 - compared by type
        return False, type(error)


@given(generated_records(),
       st.sampled_from([(None, None), (("t", "n", "small", "b", "x"), True),
                        (("x", "t"), False), (("b", "n"), None)]))
def test_generated_records_decode_as_upb_and_tfds_decode_them(generated, config):
    names, decode_text = config
    decoder = _ScalarFeaturesDecoder.for_features(tfds, GENERATED, names, decode_text)
    records = [record for record, _, _ in generated]
    examples, fallbacks = decoder.decode_many(records)
    assert fallbacks == sorted(set(fallbacks))
    for i, (record, plain, values) in enumerate(generated):
        ok, expected = outcome(decoder, record)
        if i not in fallbacks:  # (what upb makes of it, and TFDS)
            assert ok and same(examples[i], expected), (i, record)
            tfds_example = _as_feature_dtype(GENERATED.deserialize_example_np(record),
                                             GENERATED)
            if names is not None:
                tfds_example = ({name: tfds_example[name] for name in names}
                                if decode_text is None
                                else _select(tfds_example, names, decode_text))
            assert same(examples[i], tfds_example, ordered=False)
        selected = GENERATED.keys() if names is None else names
        small = values["small"][1]
        if plain and ("small" not in selected or I32.min <= small <= I32.max) and (
                not decode_text or _utf8(values["t"][1])):
            assert i not in fallbacks, (i, record)  # TFDS's layout: decoded at once


def _utf8(value):
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


@given(st.binary(max_size=40), st.integers(0, 5))
def test_arbitrary_bytes_are_parsed_only_when_upb_agrees(junk, cut):
    good = tf_example_pb2.Example()
    good.features.feature["t"].bytes_list.value.append(b"ok")
    good.features.feature["n"].int64_list.value.append(-2)
    record = good.SerializeToString()
    records = [record, junk, record[:len(record) - cut] + junk]
    values, bad = _example_wire.parse_chunk(
        records, {"t": _example_wire.BYTES_BYTES, "n": _example_wire.BYTES_INT64})
    for i in set(range(3)) - set(bad.tolist()):
        message = tf_example_pb2.Example.FromString(records[i])  # (does not raise)
        data, starts, ends = values["t"]
        assert data[starts[i]:ends[i]] == message.features.feature["t"].bytes_list.value[0]
        assert values["n"][i] == message.features.feature["n"].int64_list.value[0]
    assert 0 not in bad.tolist()


def scalar_record(entries):
    """A serialized Example of ``(name, Feature bytes)`` entries, in that order."""
    return field(1, b"".join(field(1, field(1, name.encode()) + field(2, lst))
                             for name, lst in entries))


def test_edge_values_and_encodings_decode_as_upb_decodes_them():
    decoder = _ScalarFeaturesDecoder.for_features(tfds, GENERATED, ("x", "n", "t"), True)
    text = field(1, field(1, "ünï".encode()))

    def record(x_list, n_list):
        return scalar_record([("x", x_list), ("n", n_list), ("t", text)])

    snan, qnan = struct.pack("<I", 0x7F800001), struct.pack("<I", 0xFFC00123)
    taken = [
        record(field(2, field(1, snan)), field(3, field(1, varint(-1)))),  # signaling NaN
        record(field(2, b"\x0d" + qnan), field(3, b"\x08" + varint(I64.min))),  # unpacked
        record(field(2, field(1, struct.pack("<f", 1.5))), field(3, field(1, b"\x81\x00"))),
    ]
    left = [
        record(field(2, field(1, snan * 2)), field(3, field(1, varint(1)))),  # two floats
        record(field(2, field(1, snan)), field(3, field(1, b"\xff" * 9 + b"\x7f"))),  # > 64 bits
        record(field(2, field(1, snan)), field(3, field(1, b"\x01\x02"))),  # two ints
        record(field(2, field(1, snan)), field(1, field(1, b"1"))),  # another kind
        scalar_record([("x", field(2, field(1, snan))), ("t", text)]),  # missing
    ]
    records = taken + left + taken
    examples, fallbacks = decoder.decode_many(records)
    assert fallbacks == list(range(len(taken), len(taken) + len(left)))
    for i, record in enumerate(records):
        ok, expected = outcome(decoder, record)
        if i not in fallbacks:
            assert ok and same(examples[i], expected), i
    assert examples[1][1] == I64.min and examples[2][1] == 1 and examples[0][2] == "ünï"
    assert np.isnan(examples[0][0]) and type(examples[0][0]) is np.float32
