"""pax_trax.data.c4: `c4_preprocess`, `c4_bare_preprocess_fn` and
`generic_text_dataset_preprocess_fn` on tf.data datasets of real text.

The text: VADER's movie review snippets (``tests/data_cache.py``). The
SentencePiece model is trained on them here; expected tokens come from
`sentencepiece` itself (or the text's code points), computed independently
of the functions under test.
"""

import re

import numpy as np
import pytest

from pax_trax.data import _lazy, c4
from pax_trax.data.vocabularies import train_sentencepiece

N_TEXTS = 60


@pytest.fixture(scope="module")
def tf():
    return _lazy.tensorflow("tests")


@pytest.fixture(scope="module")
def texts(rows):
    return [text for _, text, _ in rows[:N_TEXTS]]


@pytest.fixture(scope="module")
def spm(rows, tmp_path_factory):
    path = train_sentencepiece([text for _, text, _ in rows], str(tmp_path_factory.mktemp("spm") / "c4"),
                               vocab_size=700)
    return path, _lazy.sentencepiece("tests").SentencePieceProcessor(model_file=path)


def _pairs(tf, texts):
    """(features, targets) pairs, as data_streams hands its preprocess_fn."""
    ids = list(range(len(texts)))
    return tf.data.Dataset.from_tensor_slices({"text": texts, "id": ids}).map(lambda x: (x, x["id"]))


def test_c4_preprocess_characters_and_length_filter(tf, texts):
    out = list(c4.c4_preprocess(_pairs(tf, texts), training=True).as_numpy_iterator())
    assert len(out) == len(texts)
    for (features, targets), text in zip(out, texts):
        assert targets.dtype == np.int64
        assert targets.tolist() == [ord(c) for c in text]
        np.testing.assert_array_equal(features["inputs"], targets)
        np.testing.assert_array_equal(features["targets"], targets)
        assert features["text"].decode() == text
    limit = int(np.median([len(t) for t in texts]))
    kept = [f["id"] for f, _ in c4.c4_preprocess(_pairs(tf, texts), False, max_target_length=limit)
            .as_numpy_iterator()]
    assert kept == [i for i, t in enumerate(texts) if len(t) <= limit]
    assert 0 < len(kept) < len(texts)
    kept_np = [f["id"] for f, _ in c4.c4_preprocess(_pairs(tf, texts), False, max_target_length=np.int64(limit))
               .as_numpy_iterator()]
    assert kept_np == kept  # a NumPy int length is an int too


def test_c4_preprocess_sentencepiece(tf, texts, spm):
    path, processor = spm
    encoded = [processor.encode(t) for t in texts]
    limit = int(np.median([len(e) for e in encoded]))
    out = list(c4.c4_preprocess(_pairs(tf, texts), True, max_target_length=limit, tokenization="spc",
                                spm_path=path).as_numpy_iterator())
    want = [(i, e) for i, e in enumerate(encoded) if len(e) <= limit]
    assert [(int(f["id"]), t.tolist()) for f, t in out] == want
    assert 0 < len(out) < len(texts)


def test_c4_bare_preprocess_fn_targets_are_text_tokens_with_eos(tf, texts, spm):
    path, processor = spm
    ds = tf.data.Dataset.from_tensor_slices({"text": texts, "url": ["u"] * len(texts)})
    out = list(c4.c4_bare_preprocess_fn(ds, spm_path=path).as_numpy_iterator())
    assert len(out) == len(texts)
    for example, text in zip(out, texts):
        assert sorted(example) == ["inputs", "inputs_pretokenized", "targets", "targets_pretokenized"]
        assert example["targets"].tolist() == processor.encode(text) + [1]
        assert example["targets"].dtype == np.int64
        assert example["inputs"].tolist() == []
        assert example["targets_pretokenized"].decode() == text and example["inputs_pretokenized"] == b""
    plain = next(c4.c4_bare_preprocess_fn(ds, spm_path=path, copy_pretokenized=False).as_numpy_iterator())
    assert sorted(plain) == ["inputs", "targets"]


def test_c4_bare_preprocess_fn_truncates_and_pads(tf, texts, spm):
    path, processor = spm
    ds = tf.data.Dataset.from_tensor_slices({"text": texts})
    length = 20
    # Truncation and padding apply to eval data too; NumPy ints are lengths as well.
    for training, lengths in ((True, {"inputs": 4, "targets": length}),
                              (False, {"inputs": np.int32(4), "targets": np.int64(length)})):
        out = list(c4.c4_bare_preprocess_fn(ds, training, spm_path=path, sequence_length=lengths)
                   .as_numpy_iterator())
        assert len(out) == len(texts)
        for example, text in zip(out, texts):
            full = processor.encode(text) + [1]
            want = full[:length] + [0] * (length - len(full))
            assert example["targets"].tolist() == want
            assert example["inputs"].tolist() == [0, 0, 0, 0]
    assert any(len(processor.encode(t)) + 1 < length for t in texts)  # both cases happen
    assert any(len(processor.encode(t)) + 1 > length for t in texts)


def test_c4_bare_preprocess_fn_runs_preprocessors_before_eos(tf, texts, spm):
    path, processor = spm
    calls = []

    def keep_first_three(dataset, sequence_length):
        calls.append(sequence_length)
        return dataset.map(lambda x: {**x, "targets": x["targets"][:3]})

    ds = tf.data.Dataset.from_tensor_slices({"text": texts[:5]})
    out = list(c4.c4_bare_preprocess_fn(ds, spm_path=path, sequence_length={"targets": 8},
                                        preprocessors=[keep_first_three]).as_numpy_iterator())
    assert calls == [{"targets": 8}]
    assert [x["targets"].tolist() for x in out] == [processor.encode(t)[:3] + [1, 0, 0, 0, 0] for t in texts[:5]]


def _question_answer(tf, texts):
    # A text-to-text task made from real text: the first word is the target.
    firsts = [t.split()[0] for t in texts]
    return tf.data.Dataset.from_tensor_slices({"text": texts, "first": firsts}), firsts


def test_generic_text_dataset_preprocess_fn_tokenizes_inputs_and_targets(tf, texts, spm):
    path, processor = spm
    ds, firsts = _question_answer(tf, texts)
    seen_training = []

    def to_text2text(dataset, training):
        seen_training.append(training)
        return dataset.map(lambda x: {"inputs": tf.strings.join(["first word: ", x["text"]]),
                                      "targets": x["first"], "n": tf.strings.length(x["text"])})

    def short_inputs(dataset, training):
        seen_training.append(training)
        return dataset.filter(lambda x: tf.size(x["inputs"]) <= 30)

    out = list(c4.generic_text_dataset_preprocess_fn(
        ds, training=False, text_preprocess_fns=[to_text2text], token_preprocess_fns=[short_inputs],
        spm_path=path, copy_pretokenized=True).as_numpy_iterator())
    assert seen_training == [False, False]
    want = [(processor.encode("first word: " + t), processor.encode(f), t) for t, f in zip(texts, firsts)]
    want = [w for w in want if len(w[0]) <= 30]
    assert 0 < len(want) < len(texts)
    assert [(x["inputs"].tolist(), x["targets"].tolist(), x["inputs_pretokenized"].decode()[12:]) for x in out] \
        == want
    assert all(x["n"] == len(x["inputs_pretokenized"].decode()) - 12 for x in out)  # other features kept
    plain = next(c4.generic_text_dataset_preprocess_fn(ds.map(lambda x: {"targets": x["text"]}), spm_path=path)
                 .as_numpy_iterator())
    assert sorted(plain) == ["targets"] and plain["targets"].tolist() == processor.encode(texts[0])


def test_generic_text_dataset_preprocess_fn_debug_prints(tf, texts, spm, capfd):
    path, _ = spm
    ds = tf.data.Dataset.from_tensor_slices({"inputs": texts[:4], "targets": texts[4:8]})

    def printed(rate):
        capfd.readouterr()
        out = list(c4.generic_text_dataset_preprocess_fn(ds, spm_path=path, debug_print_examples=True,
                                                         debug_print_examples_rate=rate).as_numpy_iterator())
        assert len(out) == 4
        return capfd.readouterr().err

    everything = printed(np.float32(1.0))  # (a NumPy float rate is a rate too)
    # Before tokenization the texts are printed, after it the shapes and tokens.
    assert all(t[:20] in everything for t in texts[:8])
    assert len(re.findall(r"inputs_shape", everything)) == 4
    assert "inputs_shape" not in printed(0.0) and texts[0][:20] not in printed(0.0)


def test_bad_input_names_the_function(tf, texts, spm, tmp_path):
    path, _ = spm
    ds = tf.data.Dataset.from_tensor_slices({"text": texts[:2]})
    with pytest.raises(ValueError, match=r"pax_trax\.data\.c4_preprocess: expected \(features, targets\) pairs"):
        c4.c4_preprocess(ds, True)
    with pytest.raises(ValueError, match=r"c4_preprocess: expected tokenization None .* got 'chars'"):
        c4.c4_preprocess(_pairs(tf, texts[:2]), True, tokenization="chars")
    with pytest.raises(ValueError, match=r"pax_trax\.data\.c4_preprocess: spm_path is required"):
        c4.c4_preprocess(_pairs(tf, texts[:2]), True, tokenization="spc")
    with pytest.raises(TypeError, match=r"pax_trax\.data\.c4_bare_preprocess_fn: expected a tf\.data\.Dataset, "
                                        r"got list"):
        c4.c4_bare_preprocess_fn(texts, spm_path=path)
    with pytest.raises(ValueError, match=r"c4_bare_preprocess_fn: expected examples with feature\(s\) \['text'\]"):
        c4.c4_bare_preprocess_fn(ds.map(lambda x: {"body": x["text"]}), spm_path=path)
    with pytest.raises(ValueError, match=r"c4_bare_preprocess_fn: expected sequence_length\['targets'\] to be a "
                                         r"positive int, got 0"):
        c4.c4_bare_preprocess_fn(ds, spm_path=path, sequence_length={"targets": 0})
    with pytest.raises(FileNotFoundError, match=r"c4_bare_preprocess_fn: no SentencePiece model at"):
        c4.c4_bare_preprocess_fn(ds, spm_path=str(tmp_path / "missing.model"))
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"generic_text_dataset_preprocess_fn: .* is not a SentencePiece model"):
        c4.generic_text_dataset_preprocess_fn(ds, spm_path=str(bad))
    with pytest.raises(TypeError, match=r"generic_text_dataset_preprocess_fn: expected text_preprocess_fns to be "
                                        r"None or a list"):
        c4.generic_text_dataset_preprocess_fn(ds, text_preprocess_fns=lambda d, t: d, spm_path=path)
    with pytest.raises(ValueError, match=r"generic_text_dataset_preprocess_fn: expected debug_print_examples_rate "
                                         r"in \[0, 1\], got 2"):
        c4.generic_text_dataset_preprocess_fn(ds, spm_path=path, debug_print_examples_rate=2)
