"""pax_trax.data.TFDS and friends on a real TFDS dataset built here from real text.

The dataset: 2,000 of the human-rated movie review snippets shipped in the
sdist of ``vaderSentiment==3.3.2`` (`tests/data_cache.py` fetches it once with
pip; the tests skip only if it is not cached and cannot be fetched), every
fifth line of the file, written by a ``tfds.core.GeneratorBasedBuilder``
(``tests/data_cache.py: tfds_builder``, shared with the walkthrough tests and
``benchmarks/data.py``) with ``download_and_prepare`` into a temporary
data_dir, once as tfrecord (read with
TensorFlow) and once as array_record (read with ``tfds.data_source``, also in
a subprocess where TensorFlow cannot be imported). Features: ``id`` (the
snippet's line in the file), ``text``, ``label`` (score > 0) and ``score``;
splits ``train`` (1,600) and ``test`` (400). Nothing is downloaded: every
load passes download=False, or the dataset is prepared. The walkthrough's
whole pipeline (TFDS, Tokenize, ..., the Loop) is tested in
``test_walkthrough_pipeline.py``.
"""

import importlib
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from pax_trax.data import _lazy, tfds_prepare
from pax_trax.data.tfds import (
    TFDS,
    data_streams,
    dataset_to_stream,
    download_and_prepare,
)

ROOT = Path(__file__).resolve().parents[2]
NAME = "movie_review_snippets"
TRAIN_ONLY = "movie_review_snippets_train_only"
N_TRAIN, N_TEST = 1600, 400  # of conftest.py's `rows`: every fifth of 2,000 is a test one
N_TRAIN_ONLY = 300
KEYS = ("id", "text", "label", "score")
data_cache = importlib.import_module("pax_trax_tests_data_cache")  # registered by conftest.py


# ------------------------------------------------------------------ the data


def _is_test(position):
    return data_cache.is_test_position(position)


def _define_builders(tfds, rows):
    """Builder classes for `rows` (``[(line, text, score)]``), not registered with TFDS
    (`tests/data_cache.py`): the tests find the prepared datasets by name in their
    data_dir, as a user would."""
    full = data_cache.tfds_builder(tfds, rows, NAME)

    class MovieReviewSnippetsTrainOnly(full, skip_registration=True):
        """The first rows, one split, and a feature that is not a scalar (``word_lengths``,
        the length of each space-separated word: decoded by TFDS's own code)."""

        name = TRAIN_ONLY

        def _info(self):
            features = {**data_cache.tfds_features(tfds),
                        "word_lengths": tfds.features.Tensor(shape=(None,), dtype=np.int64)}
            return tfds.core.DatasetInfo(builder=self,
                                         features=tfds.features.FeaturesDict(features))

        def _split_generators(self, dl_manager):
            return {"train": ((key, {**example, "word_lengths": word_lengths(example["text"])})
                              for key, example in data_cache.tfds_examples(rows[:N_TRAIN_ONLY]))}

    return full, MovieReviewSnippetsTrainOnly


def word_lengths(text):
    return [len(word) for word in text.split()]


@pytest.fixture(scope="session")
def dirs(rows, tmp_path_factory):
    """data_dirs of the prepared datasets: 'tfrecord', 'array_record', 'train_only'."""
    _lazy.tensorflow("tests")  # imported here, its import-time warnings silenced
    tfds = _lazy.tensorflow_datasets("tests")
    full, train_only = _define_builders(tfds, rows)
    root = tmp_path_factory.mktemp("tfds")
    made = {}
    for key, cls, file_format in (("tfrecord", full, "tfrecord"),
                                  ("array_record", full, "array_record"),
                                  ("train_only", train_only, "array_record")):
        made[key] = str(root / key)
        cls(data_dir=made[key], file_format=file_format).download_and_prepare()
    return made


def take(stream_fn, n):
    stream = stream_fn()
    return [next(stream) for _ in range(n)]


def ids(examples):
    return [int(example[0]) for example in examples]


def load(dirs, fmt="tfrecord", **kwargs):
    kwargs.setdefault("keys", KEYS)
    kwargs.setdefault("download", False)
    return TFDS(NAME, data_dir=dirs[fmt], **kwargs)


def one_pass(dirs, fmt="tfrecord", **kwargs):
    return list(load(dirs, fmt, repeat=False, **kwargs)())


def train_ids(rows):
    return [line for i, (line, _, _) in enumerate(rows) if not _is_test(i)]


# ------------------------------------------------------------ examples, keys


def test_eval_examples_are_the_raw_files(dirs, rows):
    examples = one_pass(dirs, train=False)
    raw = {line: (text, score) for line, text, score in rows}
    assert len(examples) == N_TEST
    assert sorted(ids(examples)) == [line for i, (line, _, _) in enumerate(rows) if _is_test(i)]
    for line, text, label, score in examples[:50]:
        assert (type(line), type(text), type(label), type(score)) == (
            np.int64, bytes, np.int64, np.float32)
        assert text == raw[line][0].encode("utf-8")
        assert label == int(raw[line][1] > 0) and score == np.float32(raw[line][1])
    # The eval stream is the stored order, the same on every call.
    assert ids(examples) == ids(one_pass(dirs, train=False))
    assert 0.4 < np.mean([e[2] for e in examples]) < 0.6


def test_keys_select_and_order_features(dirs):
    (label, text), = take(load(dirs, keys=("label", "text"), train=False), 1)
    first = take(load(dirs, train=False), 1)[0]
    assert (label, text) == (first[2], first[1])
    for fmt in ("tfrecord", "array_record"):
        example = take(load(dirs, fmt, keys=None, train=False), 1)[0]
        assert isinstance(example, dict) and set(example) == set(KEYS)
        assert example["text"] == first[1] and example["id"] == first[0]


def test_data_source_backend_gives_what_tensorflow_gives(dirs):
    for train, shuffle in ((False, False), (True, False)):
        tf_examples = one_pass(dirs, "tfrecord", train=train, shuffle_train=shuffle)
        ds_examples = one_pass(dirs, "array_record", train=train, shuffle_train=shuffle)
        types = [tuple(map(type, e)) for e in tf_examples]
        assert [tuple(map(type, e)) for e in ds_examples] == types
        assert ds_examples == tf_examples  # same values, same stored order
    shuffled_tf = one_pass(dirs, "tfrecord")
    shuffled_ds = one_pass(dirs, "array_record")
    assert sorted(shuffled_tf) == sorted(shuffled_ds) == sorted(tf_examples)
    assert ids(shuffled_ds) != ids(tf_examples) and ids(shuffled_tf) != ids(tf_examples)


# The subprocess: TensorFlow cannot be imported (as if not installed).
NO_TENSORFLOW = """
import importlib.machinery, sys
BLOCKED = {blocked!r}

class _Blocked(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return None
        return super().find_spec(name, path, target)

sys.meta_path[:] = [_Blocked if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
"""


def run_blocked(blocked, code, tmp_path):
    script = tmp_path / "script.py"
    script.write_text(NO_TENSORFLOW.format(blocked=tuple(blocked)) + textwrap.dedent(code))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120, cwd=ROOT, check=False,
                            env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def as_json(examples):
    return [[int(i), t.decode("utf-8"), int(lab), float(s),
             [type(v).__name__ for v in (i, t, lab, s)]] for i, t, lab, s in examples]


def test_without_tensorflow(dirs, tmp_path):
    code = f"""
    import json, sys
    try:
        import tensorflow
        sys.exit("tensorflow is importable")
    except ImportError:
        pass
    from pax_trax.data.tfds import TFDS
    keys = {KEYS!r}
    out = {{}}
    for train in (False, True):
        stream = TFDS({NAME!r}, data_dir={dirs['array_record']!r}, keys=keys, train=train,
                      download=False, repeat=False)
        out[str(train)] = [[int(i), t.decode("utf-8"), int(l), float(s),
                            [type(v).__name__ for v in (i, t, l, s)]] for i, t, l, s in stream()]
    try:
        TFDS({NAME!r}, data_dir={dirs['tfrecord']!r}, download=False)
    except ImportError as err:
        out["tfrecord_error"] = str(err)
    out["tensorflow_imported"] = "tensorflow" in sys.modules
    print(json.dumps(out))
    """
    out = run_blocked(["tensorflow"], code, tmp_path)
    assert out["tensorflow_imported"] is False
    assert out["False"] == as_json(one_pass(dirs, "tfrecord", train=False))  # same order
    train = as_json(one_pass(dirs, "tfrecord", train=True))
    assert sorted(map(str, out["True"])) == sorted(map(str, train))  # same multiset
    assert out["True"] != train  # (each backend shuffled its own way)
    assert "pip install 'pax_trax[data]'" in out["tfrecord_error"]
    assert "array_record" in out["tfrecord_error"] and NAME in out["tfrecord_error"]


def test_missing_tfds_names_the_extra(tmp_path):
    code = """
    import json, sys
    import pax_trax.data
    from pax_trax.data.tfds import TFDS, download_and_prepare
    messages = []
    for call in (lambda: TFDS("mnist", data_dir="/nowhere", download=False),
                 lambda: download_and_prepare("mnist", "/nowhere")):
        try:
            call()
        except ImportError as err:
            messages.append(str(err))
    print(json.dumps(messages))
    """
    first, second = run_blocked(["tensorflow", "tensorflow_datasets"], code, tmp_path)
    assert first.startswith(
        "pax_trax.data.TFDS needs TensorFlow Datasets: pip install 'pax_trax[data]'")
    assert second.startswith("pax_trax.data.download_and_prepare needs TensorFlow Datasets")


def test_import_loads_neither_tensorflow_nor_tfds():
    code = ("import sys, pax_trax, pax_trax.data, pax_trax.data.tfds; "
            "print([m for m in ('tensorflow', 'tensorflow_datasets') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"


def test_data_dir_none_is_tfds_default(dirs, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", dirs["array_record"])
    examples = list(TFDS(NAME, keys=("id",), train=False, download=False, repeat=False)())
    assert ids(examples) == ids(one_pass(dirs, "array_record", train=False))
    assert download_and_prepare(NAME, None) == dirs["array_record"]


# -------------------------------------------------- repeat, shuffle, splits


@pytest.mark.parametrize("fmt", ["tfrecord", "array_record"])
def test_train_stream_repeats_and_reshuffles_each_epoch(dirs, rows, fmt):
    examples = take(load(dirs, fmt, keys=("id",)), 2 * N_TRAIN + 10)
    epochs = [ids(examples[:N_TRAIN]), ids(examples[N_TRAIN:2 * N_TRAIN])]
    assert sorted(epochs[0]) == sorted(epochs[1]) == sorted(train_ids(rows))
    assert epochs[0] != epochs[1]
    once = list(load(dirs, fmt, keys=("id",), repeat=False)())
    assert len(once) == N_TRAIN
    # Eval repeats too (as Trax), in the same order each time.
    evaluation = ids(take(load(dirs, fmt, keys=("id",), train=False), 2 * N_TEST))
    assert evaluation[:N_TEST] == evaluation[N_TEST:]


@pytest.mark.parametrize("fmt", ["tfrecord", "array_record"])
def test_shuffle_is_seeded(dirs, fmt):
    def first_ids(**kwargs):
        return ids(take(load(dirs, fmt, keys=("id",), shuffle_buffer_size=256, **kwargs), 300))

    stream = load(dirs, fmt, keys=("id",), shuffle_buffer_size=256)
    first = ids(take(stream, 300))
    assert ids(take(stream, 300)) == first  # every call: the same stream
    assert first_ids() == first
    assert first_ids(shuffle_seed=1) != first
    stored = first_ids(shuffle_train=False)
    assert stored == first_ids(shuffle_train=False) and stored != first


def test_unshuffled_train_is_the_stored_order(dirs):
    stored = ids(one_pass(dirs, "array_record", shuffle_train=False))
    assert stored == ids(one_pass(dirs, "tfrecord", shuffle_train=False))
    assert stored != ids(one_pass(dirs, "array_record"))


@pytest.mark.parametrize("holdout, n_eval", [(0.1, 160), (100, 100)])
def test_eval_holdout_size(dirs, rows, holdout, n_eval):
    for fmt in ("tfrecord", "array_record"):
        evaluation = one_pass(dirs, fmt, train=False, eval_holdout_size=holdout)
        train = one_pass(dirs, fmt, eval_holdout_size=holdout)
        assert (len(evaluation), len(train)) == (n_eval, N_TRAIN - n_eval)
        assert not set(ids(evaluation)) & set(ids(train))
        assert sorted(ids(evaluation) + ids(train)) == sorted(train_ids(rows))
        # The holdout is the end of the stored train split (as Trax's train[-k:]).
        assert ids(evaluation) == ids(one_pass(dirs, fmt, shuffle_train=False))[-n_eval:]


def test_train_only_dataset_needs_a_holdout_to_evaluate(dirs, rows):
    with pytest.raises(ValueError, match="no 'validation' or 'test' split.*eval_holdout_size"):
        TFDS(TRAIN_ONLY, data_dir=dirs["train_only"], train=False, download=False)
    held = TFDS(TRAIN_ONLY, data_dir=dirs["train_only"], keys=("id",), train=False,
                eval_holdout_size=0.2, download=False, repeat=False)
    rest = TFDS(TRAIN_ONLY, data_dir=dirs["train_only"], keys=("id",), train=True,
                eval_holdout_size=0.2, download=False, repeat=False)
    assert (len(list(held())), len(list(rest()))) == (60, 240)
    assert sorted(ids(held()) + ids(rest())) == [line for line, _, _ in rows[:N_TRAIN_ONLY]]
    for bad in (1.0, -1, 300, 0.5j, True):
        with pytest.raises((ValueError, TypeError), match="eval_holdout_size must be"):
            TFDS(TRAIN_ONLY, data_dir=dirs["train_only"], train=False, eval_holdout_size=bad,
                 download=False)


@pytest.mark.parametrize("fmt", ["tfrecord", "array_record"])
def test_hosts_read_disjoint_parts_that_cover_the_train_split(dirs, rows, fmt):
    parts = [ids(one_pass(dirs, fmt, host_id=h, n_hosts=3, eval_holdout_size=0.1))
             for h in range(3)]
    assert [len(p) for p in parts] == [480, 480, 480]
    assert sum(len(set(p)) for p in parts) == len(set().union(*parts)) == 1440
    held = ids(one_pass(dirs, fmt, train=False, eval_holdout_size=0.1, host_id=2, n_hosts=3))
    assert sorted(held + [i for p in parts for i in p]) == sorted(train_ids(rows))
    assert len(held) == 160  # eval data is not sharded
    unsharded = ids(one_pass(dirs, fmt, shuffle_train=False, eval_holdout_size=0.1))
    assert ids(one_pass(dirs, fmt, shuffle_train=False, host_id=1, n_hosts=3,
                        eval_holdout_size=0.1)) == unsharded[480:960]
    for host_id, n_hosts in ((3, 3), (-1, 2)):
        with pytest.raises(ValueError, match="0 <= host_id < n_hosts"):
            load(dirs, fmt, host_id=host_id, n_hosts=n_hosts)


def test_bytes_and_str(dirs, rows):
    raw = {line: text for line, text, _ in rows}
    accented = [line for line, text, _ in rows if not text.isascii()]
    assert accented
    for fmt in ("tfrecord", "array_record"):
        as_bytes = {int(i): t for i, t in one_pass(dirs, fmt, keys=("id", "text"))}
        as_str = {int(i): t for i, t in one_pass(dirs, fmt, keys=("id", "text"), decode_text=True)}
        assert all(type(t) is bytes for t in as_bytes.values())
        assert all(type(t) is str and t == raw[i] for i, t in as_str.items())
        assert {i: t.decode("utf-8") for i, t in as_bytes.items()} == as_str
        line = next(i for i in accented if i in as_str)
        assert as_str[line] == raw[line] and as_bytes[line] == raw[line].encode("utf-8")
    # Text a preprocessing function already made str stays str.
    def upper(examples):
        return ({**e, "text": e["text"].decode().upper()} for e in examples)

    text, = take(load(dirs, "array_record", keys=("text",), train=False,
                      tfds_preprocess_fn=upper, decode_text=True), 1)[0]
    assert isinstance(text, str) and text == text.upper()


def test_tfds_preprocess_fn(dirs):
    positive_tf = load(dirs, "tfrecord", keys=("label", "n"), train=False, repeat=False,
                       tfds_preprocess_fn=lambda ds: ds.filter(lambda e: e["label"] == 1).map(
                           lambda e: {**e, "n": e["id"] * 2}))
    positive_ds = load(dirs, "array_record", keys=("label", "n"), train=False, repeat=False,
                       tfds_preprocess_fn=lambda it: ({**e, "n": e["id"] * 2}
                                                      for e in it if e["label"] == 1))
    tf_examples, ds_examples = list(positive_tf()), list(positive_ds())
    assert tf_examples == ds_examples and 150 < len(tf_examples) < 250
    assert all(label == 1 for label, _ in tf_examples)
    with pytest.raises(KeyError, match=r"key 'nope' is not a feature of the examples.*'label'"):
        load(dirs, "tfrecord", keys=("nope",), tfds_preprocess_fn=lambda ds: ds)
    stream = load(dirs, "array_record", keys=("nope",), tfds_preprocess_fn=lambda it: it)
    with pytest.raises(KeyError, match="'nope' is not in the examples made by tfds_preprocess_fn"):
        next(stream())


def test_features_that_are_not_scalars(dirs, rows):
    # The 'data_source' backend decodes plain scalar features itself (fast) and any
    # other feature with TFDS's decoding: both must give what TFDS gives.
    raw = {line: text for line, text, _ in rows}
    mixed = list(TFDS(TRAIN_ONLY, data_dir=dirs["train_only"], keys=("id", "word_lengths", "text"),
                      download=False, repeat=False, shuffle_train=False)())
    assert len(mixed) == N_TRAIN_ONLY
    for line, lengths, text in mixed:
        assert type(line) is np.int64 and type(text) is bytes and text == raw[line].encode()
        assert lengths.dtype == np.int64 and lengths.tolist() == word_lengths(raw[line])
    scalars = list(TFDS(TRAIN_ONLY, data_dir=dirs["train_only"], keys=("id", "text"),
                        download=False, repeat=False, shuffle_train=False)())
    assert scalars == [(line, text) for line, _, text in mixed]
    assert [tuple(map(type, e)) for e in scalars] == [(np.int64, bytes)] * N_TRAIN_ONLY
    # The 'tf' backend reads in batches unless a shape is unknown (here: words).
    tf = _lazy.tensorflow("tests")
    words = load(dirs, "tfrecord", keys=("id", "words"), train=False, repeat=False,
                 tfds_preprocess_fn=lambda ds: ds.map(
                     lambda e: {**e, "words": tf.strings.split(e["text"])}))
    for line, split in itertools.islice(words(), 50):
        assert split.dtype == object and split.tolist() == raw[line].encode().split()


# --------------------------------------------- data_streams, dataset_to_stream


def test_data_streams(dirs, rows):
    texts = {text.encode("utf-8"): line for line, text, _ in rows}
    # seed=31: the training stream's random skip (as Trax's, up to 100,000) is 1,609.
    train, evaluation = data_streams(NAME, dirs["tfrecord"], eval_holdout_size=0.1,
                                     shuffle_buffer_size=64, seed=31, download=False)
    first = take(evaluation, 200)
    text, label = first[0]
    assert isinstance(text, bytes) and label.dtype == np.int64
    held = set(ids(one_pass(dirs, train=False, eval_holdout_size=0.1)))
    assert {texts[t] for t, _ in first} <= held
    assert take(evaluation, 200) == first  # seeded: the same each call
    training = take(train, 300)
    assert not {texts[t] for t, _ in training} & held
    assert take(train, 300) == training
    # input_name / target_name select other features.
    _, test_stream = data_streams(NAME, dirs["tfrecord"], input_name="id", target_name="score",
                                  seed=31, download=False)
    line, score = next(test_stream())
    assert score == np.float32({r[0]: r[2] for r in rows}[int(line)])
    with pytest.raises(KeyError, match="key 'nope' is not a feature"):
        data_streams(NAME, dirs["tfrecord"], input_name="nope", download=False)
    with pytest.raises(ValueError, match="backend='tf' reads datasets stored as tfrecord"):
        data_streams(NAME, dirs["array_record"], download=False)


def test_dataset_to_stream():
    tf = _lazy.tensorflow("tests")
    dataset = tf.data.Dataset.from_tensor_slices(
        ({"image": np.arange(6, dtype=np.uint8).reshape(3, 2), "mask": np.ones((3, 2), np.float32)},
         np.array([4, 5, 6], np.uint8)))
    examples = list(dataset_to_stream(dataset, "image"))
    assert len(examples) == 3 and len(examples[0]) == 3
    image, target, mask = examples[1]
    assert image.dtype == np.int32 and image.tolist() == [2, 3]
    assert target.dtype == np.int32 and target == 5 and mask.tolist() == [1.0, 1.0]
    with pytest.raises(KeyError, match="input_name 'text' is not in the features"):
        next(dataset_to_stream(dataset, "text"))


# ------------------------------------------------------ download_and_prepare


def test_download_and_prepare_leaves_a_prepared_dataset_alone(dirs):
    info = next(Path(dirs["tfrecord"]).glob(f"{NAME}/*/dataset_info.json"))
    before = info.stat().st_mtime_ns
    assert download_and_prepare(NAME, dirs["tfrecord"]) == dirs["tfrecord"]
    assert info.stat().st_mtime_ns == before


_REGISTERED = []


def test_download_and_prepare_prepares_a_local_builder(rows, tmp_path):
    tfds = _lazy.tensorflow_datasets("tests")
    if not _REGISTERED:  # registered once per process, under a name of its own
        class PaxTraxLocalSnippets(tfds.core.GeneratorBasedBuilder):
            VERSION = tfds.core.Version("1.0.0")

            def _info(self):
                return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
                    {"text": tfds.features.Text()}))

            def _split_generators(self, dl_manager):
                return {"train": self._generate_examples()}

            def _generate_examples(self):
                return ((line, {"text": text}) for line, text, _ in rows[:40])

        _REGISTERED.append(PaxTraxLocalSnippets.name)
    name = _REGISTERED[0]
    with pytest.raises(FileNotFoundError, match=f"{name}.*not prepared.*download=False"):
        TFDS(name, data_dir=str(tmp_path), download=False)
    assert download_and_prepare(name, str(tmp_path)) == str(tmp_path)
    texts = list(TFDS(name, data_dir=str(tmp_path), keys=("text",), download=False,
                      repeat=False, decode_text=True)())
    assert sorted(t for t, in texts) == sorted(text for _, text, _ in rows[:40])


def _network_reachable():
    try:
        tfds_prepare._check_network("mnist", "/tmp", "test")
        return True
    except ConnectionError:
        return False


def test_download_offline_fails_fast(tmp_path):
    if _network_reachable():
        pytest.skip("the network is reachable: this test checks the offline behaviour")
    start = time.perf_counter()
    for call in (lambda: download_and_prepare("mnist", str(tmp_path)),
                 lambda: TFDS("mnist", data_dir=str(tmp_path), keys=("image",))):
        with pytest.raises(ConnectionError, match=r"'mnist' is not prepared in .*cannot be reach"):
            call()
    assert time.perf_counter() - start < 30
    assert not list(tmp_path.glob("mnist/*/dataset_info.json"))


# ----------------------------------------------------------------- bad input


def test_bad_input_is_explained(dirs, tmp_path):
    with pytest.raises(ValueError, match=r"pax_trax.data.TFDS: no dataset 'no_such_dataset_xyz'"
                                         r".*data_dir .*download=False"):
        TFDS("no_such_dataset_xyz", data_dir=str(tmp_path), download=False)
    missing = str(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=f"no dataset '{NAME}'.*{missing}.*download=False"):
        TFDS(NAME, data_dir=missing, download=False)
    with pytest.raises(FileNotFoundError,
                       match=r"'mnist' is not prepared in data_dir .*download=False"):
        TFDS("mnist", data_dir=str(tmp_path), download=False)
    with pytest.raises(KeyError, match=r"key 'txt' is not a feature of dataset "
                                       r"'movie_review_snippets'; "
                                       r"its features are \['id', 'label', 'score', 'text'\]"):
        load(dirs, keys=("text", "txt"))
    with pytest.raises(TypeError, match=r"keys=\('text',\)"):
        load(dirs, keys="text")
    with pytest.raises(ValueError, match="backend must be None, 'tf' or 'data_source'"):
        load(dirs, backend="torch")
    with pytest.raises(ValueError, match="backend='data_source' reads datasets stored as arr"):
        load(dirs, "tfrecord", backend="data_source")
    with pytest.raises(ValueError, match="backend='tf' reads datasets stored as tfrecord"):
        load(dirs, "array_record", backend="tf")


def test_array_record_shards_read_keys_across_shards_and_slices(tmp_path):
    # The data_source backend's own array_record reader: keys over several shards, each
    # read from `skip` for `take` records (a sliced split), equal what was written.
    from array_record.python import array_record_module

    from pax_trax.data._tfds_data_source import _ArrayRecordShards

    class Instruction:  # (the fields of a TFDS FileInstruction it reads)
        def __init__(self, filename, skip, take):
            self.filename, self.skip, self.take = filename, skip, take

    shards, instructions = [], []
    for shard, (n, skip, take) in enumerate([(5, 1, 3), (4, 0, 4), (6, 2, 2)]):
        path = str(tmp_path / f"data.array_record-0000{shard}")
        writer = array_record_module.ArrayRecordWriter(path, "group_size:1")
        records = [f"shard {shard} record {i}".encode() for i in range(n)]
        for record in records:
            writer.write(record)
        writer.close()
        shards.append(records[skip:skip + take])
        instructions.append(Instruction(path, skip, take))
    expected = [record for records in shards for record in records]
    source = _ArrayRecordShards(instructions)
    assert len(source) == len(expected) == 9
    keys = [8, 0, 3, 2, 7, 5, 1, 6, 4, 3]
    assert source.__getitems__(keys) == [expected[k] for k in keys]
    assert source.__getitems__([]) == []
    with pytest.raises(IndexError, match="TFDS: record keys must be in"):
        source.__getitems__([9])

    # Kept in memory: the same records; once all are read, the files are not needed.
    kept = _ArrayRecordShards(instructions, keep_in_memory=True)
    assert kept.__getitems__([4, 4, 0]) == [expected[4], expected[4], expected[0]]
    assert not kept.all_in_memory
    assert kept.__getitems__(keys) == [expected[k] for k in keys]
    assert kept.all_in_memory
    for path in tmp_path.iterdir():
        path.unlink()
    assert kept.__getitems__(keys[::-1]) == [expected[k] for k in keys[::-1]]
    with pytest.raises(IndexError, match="TFDS: record keys must be in"):
        kept.__getitems__([-1])


@pytest.mark.parametrize("keys", [("id", "text"), None])
@pytest.mark.parametrize("limit, kept", [(250 << 20, True), (1, False)])
def test_data_source_keeps_small_datasets_in_memory(dirs, tmp_path, monkeypatch, limit, kept,
                                                    keys):
    # As tfds.load caches datasets up to 250 MiB: the data_source backend keeps their
    # examples once decoded (tuples of scalars) or their records (dicts), so later
    # epochs read no files (here: emptied after one epoch; the readers hold them open,
    # so deleting them would not show it).
    import shutil

    from pax_trax.data import _tfds_select

    monkeypatch.setattr(_tfds_select, "_AUTOCACHE_BYTES", limit)
    data_dir = tmp_path / "copy"
    shutil.copytree(dirs["array_record"], data_dir)
    stream = TFDS(NAME, data_dir=str(data_dir), keys=keys, download=False,
                  backend="data_source")()
    if keys is None:
        stream = ((example["id"], example["text"]) for example in stream)
    first = [next(stream) for _ in range(N_TRAIN)]
    assert len({example[0] for example in first}) == N_TRAIN
    for path in data_dir.rglob("*.array_record*"):
        with open(path, "r+b") as file:
            file.truncate(0)
    if kept:
        second = [next(stream) for _ in range(N_TRAIN)]
        assert sorted(second) == sorted(first) and second != first  # (a new permutation)
    else:  # (array_record reads empty records from a cut file: explained)
        with pytest.raises(OSError, match=r"TFDS: reading record \d+ of .*train\.array_record.* is "
                                          r"empty: .* was it changed, cut or emptied while"):
            for _ in range(N_TRAIN):
                next(stream)


@pytest.mark.parametrize("cut", [0, 1000])
def test_data_source_files_cut_before_reading_are_an_explained_error(dirs, tmp_path, cut):
    import shutil

    data_dir = tmp_path / "copy"
    shutil.copytree(dirs["array_record"], data_dir)
    stream = TFDS(NAME, data_dir=str(data_dir), keys=("id", "text"), download=False,
                  backend="data_source")()
    for path in data_dir.rglob("*train.array_record*"):
        with open(path, "r+b") as file:
            file.truncate(cut)
    with pytest.raises(OSError, match=r"TFDS: reading record \d+ of .*train\.array_record.* "
                                      r"failed: ArrayRecord file should be at least 64KB big\. .* was it changed, cut"):
        next(stream)


# --- the 'tf' backend's batched reading
# Plain scalar features without tfds_preprocess_fn: the 'tf' backend reads the raw
# records and parses them in batches (`tf_datasets._scalar_stream`); anything else goes
# through tfds.load (`tf_datasets._tf_general_stream`). Both must give the same examples.

TYPED = "pax_trax_typed_scalars"
N_TYPED_TRAIN, N_TYPED_TEST = 90, 30


def _tf_read(dataset_name, data_dir, split, *, shuffle, keys, decode_text=False,
             preprocess_fn=None, repeat=False):
    from pax_trax.data._tfds_select import _Read

    return _Read(dataset_name, data_dir, split, shuffle=shuffle, seed=0,
                 shuffle_buffer_size=1024, preprocess_fn=preprocess_fn, keys=keys,
                 repeat=repeat, decode_text=decode_text)


def _paths(tfds, read):
    """(whether the fast path reads `read`, its one pass, the general path's one pass)."""
    from pax_trax.data import tf_datasets

    plan = tf_datasets._scalar_plan(tfds, read)
    general = list(tf_datasets._tf_general_stream(tfds, read)())
    return plan is not None, list(tf_datasets._tf_stream(tfds, read)()), general


def typed_examples(examples):
    """`examples` with their types and dtypes spelled out (repr: np.int32(3), b'..', 'x')."""
    return list(map(repr, examples))


def snippet_split(train, holdout=0, host_id=0, n_hosts=1):
    from pax_trax.data._tfds_select import _split_for

    return _split_for(NAME, {"train": N_TRAIN, "test": N_TEST}, train, holdout, host_id,
                      n_hosts)[0]


@pytest.mark.parametrize("keys", [KEYS, ("text", "label"), None])
@pytest.mark.parametrize("decode_text", [False, True])
def test_batched_reading_gives_what_tfds_load_gives(dirs, keys, decode_text):
    tfds = _lazy.tensorflow_datasets("tests")
    for train in (False, True):
        read = _tf_read(NAME, dirs["tfrecord"], snippet_split(train), shuffle=train, keys=keys,
                        decode_text=decode_text)
        fast_used, fast, general = _paths(tfds, read)
        assert fast_used and len(fast) == (N_TRAIN if train else N_TEST)
        # TFDS(...) itself is the fast path: the same examples.
        public = one_pass(dirs, keys=keys, train=train, decode_text=decode_text)
        assert typed_examples(public) == typed_examples(fast)
        if train:  # (the training order may differ from tfds.load's)
            assert sorted(typed_examples(fast)) == sorted(typed_examples(general))
        else:  # the stored order
            assert typed_examples(fast) == typed_examples(general)
        first = fast[0]
        if keys is None:
            assert isinstance(first, dict) and list(first) == list(general[0]) == sorted(KEYS)
            first = tuple(first[k] for k in KEYS)
        elif keys != KEYS:
            continue
        assert tuple(map(type, first)) == (np.int64, str if decode_text else bytes, np.int64,
                                           np.float32)


@pytest.mark.parametrize("holdout, host_id, n_hosts", [(0.1, 0, 1), (100, 1, 3), (0, 2, 3)])
def test_batched_reading_of_holdouts_and_host_slices(dirs, holdout, host_id, n_hosts):
    tfds = _lazy.tensorflow_datasets("tests")
    for train in (False, True):
        if not train and not holdout:
            continue
        split = snippet_split(train, holdout, host_id, n_hosts)
        read = _tf_read(NAME, dirs["tfrecord"], split, shuffle=False, keys=KEYS)
        fast_used, fast, general = _paths(tfds, read)
        assert fast_used and split.startswith("train[")
        assert typed_examples(fast) == typed_examples(general)
        public = one_pass(dirs, train=train, eval_holdout_size=holdout, host_id=host_id,
                          n_hosts=n_hosts, shuffle_train=False)
        assert typed_examples(public) == typed_examples(fast)


@pytest.fixture(scope="module")
def typed_dir(rows, tmp_path_factory):
    """A tfrecord dataset in 3 shards whose scalar features are of many dtypes, and one
    feature that is not a scalar (``lengths``)."""
    tfds = _lazy.tensorflow_datasets("tests")
    texts = [text for _, text, _ in rows[:N_TYPED_TRAIN + N_TYPED_TEST]]

    class PaxTraxTypedScalars(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        name = TYPED
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "n": tfds.features.Scalar(np.int64),
                "i32": tfds.features.Scalar(np.int32),
                "u8": tfds.features.Scalar(np.uint8),
                "flag": tfds.features.Scalar(np.bool_),
                "f32": tfds.features.Scalar(np.float32),
                "f64": tfds.features.Tensor(shape=(), dtype=np.float64),
                "label": tfds.features.ClassLabel(num_classes=3),
                "text": tfds.features.Text(),
                "lengths": tfds.features.Tensor(shape=(None,), dtype=np.int64),
            }))

        def _split_generators(self, dl_manager):
            n_all = N_TYPED_TRAIN + N_TYPED_TEST
            return {"train": self._generate_examples(0, N_TYPED_TRAIN),
                    "test": self._generate_examples(N_TYPED_TRAIN, n_all)}

        def _generate_examples(self, start, end):
            for n in range(start, end):
                yield n, {"n": n, "i32": -(2 ** 31) + 7 * n, "u8": (37 * n) % 256,
                          "flag": n % 3 == 0, "f32": n / 7, "f64": 1 + n * 1e-9,
                          "label": n % 3, "text": texts[n], "lengths": word_lengths(texts[n])}

    data_dir = str(tmp_path_factory.mktemp("typed"))
    PaxTraxTypedScalars(data_dir=data_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(num_shards=3))
    return data_dir


TYPED_SCALARS = ("n", "i32", "u8", "flag", "f32", "f64", "label", "text")


def test_batched_reading_casts_as_tfds_decodes(typed_dir):
    tfds = _lazy.tensorflow_datasets("tests")
    builder = tfds.builder(TYPED, data_dir=typed_dir)
    assert len(builder.info.splits["train"].file_instructions) == 3  # (interleaved shards)
    for split, shuffle, keys in (("test", False, TYPED_SCALARS), ("train", True, TYPED_SCALARS),
                                 ("train[-40:]", False, ("text", "flag")),
                                 ("train[25:70]", False, TYPED_SCALARS),
                                 ("train", False, None)):
        read = _tf_read(TYPED, typed_dir, split, shuffle=shuffle, keys=keys)
        fast_used, fast, general = _paths(tfds, read)
        assert fast_used == (keys is not None)  # (None: all features, `lengths` too)
        assert len(fast) == len(general) > 0
        if shuffle:
            assert sorted(typed_examples(fast)) == sorted(typed_examples(general))
        else:  # the stored order: 3 files interleaved as tfds.load does
            assert typed_examples(fast) == typed_examples(general)
    examples = list(TFDS(TYPED, data_dir=typed_dir, keys=TYPED_SCALARS, train=False,
                         download=False, repeat=False)())
    assert len(examples) == N_TYPED_TEST
    for n, i32, u8, flag, f32, f64, label, text in examples:
        assert (type(n), type(i32), type(u8), type(flag), type(f32), type(f64), type(label),
                type(text)) == (np.int64, np.int32, np.uint8, np.bool_, np.float32, np.float64,
                                np.int64, bytes)
        assert i32 == -(2 ** 31) + 7 * n and u8 == (37 * n) % 256 and flag == (n % 3 == 0)
        assert f32 == np.float32(n / 7) and label == n % 3
        assert f64 == np.float64(np.float32(1 + n * 1e-9))  # (TFDS stores floats as float32)


def test_general_path_for_other_features_and_preprocessing(dirs, rows, typed_dir):
    from pax_trax.data._tfds_select import _plain_scalar_features

    tfds = _lazy.tensorflow_datasets("tests")
    features = tfds.builder(TYPED, data_dir=typed_dir).info.features
    assert _plain_scalar_features(tfds, features, ("text", "f64")) == ["text", "f64"]
    assert _plain_scalar_features(tfds, features, ("text", "lengths")) is None
    assert _plain_scalar_features(tfds, features) is None
    assert _plain_scalar_features(tfds, features, ("nope",)) is None
    # A feature that is not a scalar: tfds.load reads it.
    raw = {line: text for line, text, _ in rows}
    read = _tf_read(TYPED, typed_dir, "test", shuffle=False, keys=("n", "lengths", "text"))
    fast_used, examples, general = _paths(tfds, read)
    assert not fast_used and len(examples) == N_TYPED_TEST
    assert typed_examples(examples) == typed_examples(general)
    for _, lengths, text in examples:
        assert lengths.dtype == np.int64 and lengths.tolist() == word_lengths(text.decode())
    # tfds_preprocess_fn: tfds.load reads, the function runs on its examples.
    def double(ds):
        return ds.map(lambda e: {**e, "id": e["id"] * 2})

    read = _tf_read(NAME, dirs["tfrecord"], "test", shuffle=False, keys=("id", "text"),
                    preprocess_fn=double)
    fast_used, examples, _ = _paths(tfds, read)
    assert not fast_used and len(examples) == N_TEST
    assert all(raw[int(line) // 2].encode() == text for line, text in examples)


@pytest.mark.parametrize("shuffle", [False, True])
def test_tf_fast_path_caches_as_tfds_load_does(dirs, tmp_path, shuffle):
    # tfds.load caches small datasets (DatasetBuilder._should_cache_ds); the fast path
    # caches the raw records in the same cases, so later epochs read no files (here: cut
    # after the first epoch; reading them would raise DataLossError).
    import shutil

    from pax_trax.data import tf_datasets

    tfds = _lazy.tensorflow_datasets("tests")
    data_dir = tmp_path / "copy"
    shutil.copytree(dirs["tfrecord"], data_dir)
    read = _tf_read(NAME, str(data_dir), "train", shuffle=shuffle, keys=("id", "text"),
                    repeat=True)
    builder = tfds.builder(NAME, data_dir=str(data_dir))
    plan = tf_datasets._scalar_plan(tfds, read)
    assert plan.cache == builder._should_cache_ds(
        split="train", shuffle_files=shuffle, read_config=tfds.ReadConfig()) is True
    stream = tf_datasets._tf_stream(tfds, read)()
    first = [next(stream) for _ in range(N_TRAIN)]
    for path in data_dir.rglob("*.tfrecord*"):
        with open(path, "r+b") as file:
            file.truncate(16)  # (inside the first record: emptied, tf.data would loop)
    second = [next(stream) for _ in range(N_TRAIN)]
    assert sorted(second) == sorted(first) and len(set(first)) == N_TRAIN
    assert (second != first) == shuffle


@pytest.mark.parametrize("path", ["fast", "general"])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("cut", [0, 16])
def test_tf_files_cut_under_an_uncached_stream_are_an_error_not_a_hang(dirs, tmp_path,
                                                                      monkeypatch, path,
                                                                      shuffle, cut):
    # Files emptied (0) or cut inside a record (16) after one epoch of a repeating stream
    # that does not cache: tf.data repeated the empty epoch forever (shuffled) or ended
    # the stream (unshuffled); now both paths raise, naming the split and what changed.
    # (The reading runs in a thread so that a hang fails the test instead of the suite.)
    import shutil
    import threading

    from pax_trax.data import _tfds_select, tf_datasets

    tfds = _lazy.tensorflow_datasets("tests")
    tf = _lazy.tensorflow("tests")
    monkeypatch.setattr(_tfds_select, "_AUTOCACHE_BYTES", 1)  # (the fast path's cache)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "_should_cache_ds",
                        lambda self, *args, **kwargs: False)  # (tfds.load's)
    data_dir = tmp_path / "copy"
    shutil.copytree(dirs["tfrecord"], data_dir)
    read = _tf_read(NAME, str(data_dir), "train", shuffle=shuffle, keys=("id", "text"),
                    repeat=True)
    assert tf_datasets._scalar_plan(tfds, read) is not None  # (TFDS's choice: the fast path)
    make = tf_datasets._tf_stream if path == "fast" else tf_datasets._tf_general_stream
    stream = make(tfds, read)()
    first = [next(stream) for _ in range(N_TRAIN)]
    assert len(set(first)) == N_TRAIN
    for file_path in data_dir.rglob("*.tfrecord*"):
        with open(file_path, "r+b") as file:
            file.truncate(cut)
    outcome = []

    def read_on():
        try:
            for _ in range(3 * N_TRAIN):
                next(stream)
            outcome.append("read on")
        except BaseException as error:  # (StopIteration included: the stream must not end)
            outcome.append(error)

    reader = threading.Thread(target=read_on, daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert outcome, "reading on after the files were cut hung"
    (error,) = outcome
    # (tf.data's threads may have read part of the next epoch before the cut: then the
    # file ends early whatever was cut, and the count is the error.)
    assert isinstance(error, (tf.errors.DataLossError, tf.errors.FailedPreconditionError) if cut
                      else tf.errors.FailedPreconditionError), repr(error)
    assert "pax_trax.data.TFDS: reading the 'train' split of 'movie_review_snippets'" in str(error)
    assert "were they changed, cut or emptied while the stream read them?" in str(error)
    assert "function_node" not in str(error)
    if isinstance(error, tf.errors.FailedPreconditionError):
        assert re.search(rf"expected to contain {N_TRAIN} elements but contained only \d+ ", str(error))


def test_tf_fast_path_does_not_cache_large_or_shuffled_multi_file_splits(dirs, monkeypatch):
    from pax_trax.data import _tfds_select, tf_datasets

    tfds = _lazy.tensorflow_datasets("tests")
    read = _tf_read(NAME, dirs["tfrecord"], "train", shuffle=True, keys=("id",))
    info = tfds.builder(NAME, data_dir=dirs["tfrecord"]).info
    assert tf_datasets._autocaches(info, read, n_files=1)
    assert not tf_datasets._autocaches(info, read, n_files=2)
    unshuffled = _tf_read(NAME, dirs["tfrecord"], "test", shuffle=False, keys=("id",))
    assert tf_datasets._autocaches(info, unshuffled, n_files=2)
    monkeypatch.setattr(_tfds_select, "_AUTOCACHE_BYTES", int(info.dataset_size) - 1)
    assert not tf_datasets._autocaches(info, unshuffled, n_files=1)
    assert not tf_datasets._scalar_plan(tfds, read).cache


def test_tf_fast_path_parses_about_a_mebibyte_of_records_at_a_time(dirs):
    from types import SimpleNamespace

    from pax_trax.data import tf_datasets

    def size(num_bytes, num_examples):
        return tf_datasets._read_batch_size(SimpleNamespace(num_bytes=num_bytes,
                                                            num_examples=num_examples))

    assert size(1 << 20, 1024) == 1024  # (1 KiB records)
    assert size(180 * 8484, 8484) == 4096  # (short texts: at most 4096)
    assert size(100 << 20, 1000) == 256  # (100 KiB records: at least 256)
    assert size(0, 0) == size(None, 10) == 256  # (size unknown)
    tfds = _lazy.tensorflow_datasets("tests")
    read = _tf_read(NAME, dirs["tfrecord"], "train", shuffle=True, keys=("id",))
    info = tfds.builder(NAME, data_dir=dirs["tfrecord"]).info.splits["train"]
    assert tf_datasets._scalar_plan(tfds, read).batch_size == size(info.num_bytes, N_TRAIN)


def test_array_record_shards_of_a_dataset_of_unknown_size_are_read_not_kept(dirs):
    # (tfds.load does not autocache a dataset whose size is unknown either.)
    from types import SimpleNamespace

    from pax_trax.data._tfds_data_source import _ArrayRecordShards

    tfds = _lazy.tensorflow_datasets("tests")
    info = tfds.builder(NAME, data_dir=dirs["array_record"]).info

    class Source:  # (what for_source reads of a tfds.data_source)
        split = "train"

        def __init__(self, dataset_size):
            self.dataset_info = SimpleNamespace(file_format=info.file_format,
                                                splits=info.splits, dataset_size=dataset_size)

        def __len__(self):
            return N_TRAIN

    for size, small in ((None, False), (0, False), (info.dataset_size, True)):
        shards = _ArrayRecordShards.for_source(Source(size))
        assert shards is not None and shards.small is small
        assert len(shards.__getitems__([0, N_TRAIN - 1])) == 2
        assert shards.all_in_memory is False
