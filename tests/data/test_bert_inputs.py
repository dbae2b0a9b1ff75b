"""pax_trax.data.bert_inputs: BERT framing, masking, next-sentence pairs and random chunks.

Token ids come from VADER's movie review snippets (conftest.py's `rows`): each
word gets an id from 1000 on, as a WordPiece vocabulary's ordinary tokens do.
The next-sentence and chunk streams read real TFDS datasets written here into
a temporary data_dir (``download=False``): texts made of whole snippets, each
one sentence (the snippets with one run of ``.!?``, at their end), so the true
neighbours of every sentence are known from how the texts were built.
"""

import collections
import importlib
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from pax_trax.data import _lazy
from pax_trax.data.bert_inputs import (
    BertDoubleSentenceInputs,
    BertNextSentencePredictionInputs,
    BertSingleSentenceInputs,
    CorpusToRandomChunks,
    CreateBertInputs,
    mask_random_tokens,
)
from pax_trax.data.combinators import Serial

data_cache = importlib.import_module("pax_trax_tests_data_cache")  # registered by conftest.py

CLS, SEP, MASK, START, VOCAB = 101, 102, 103, 999, 30522
PARAGRAPHS, DOCUMENTS = "snippet_paragraphs", "snippet_documents"
DOC_SENTENCES = 30  # sentences in a training document of DOCUMENTS
LONG = 8192  # a text of more words keeps one block of this many


# ------------------------------------------------------------ token rows


@pytest.fixture(scope="session")
def vocab(rows):
    words = sorted({word for _, text, _ in rows for word in text.lower().split()})
    return {word: 1000 + i for i, word in enumerate(words)}


def ids_of(text, vocab):
    return np.array([vocab[word] for word in text.lower().split()], np.int64)


@pytest.fixture(scope="session")
def pairs(rows, vocab):
    """(sentence1 ids, sentence2 ids, label) of consecutive snippets."""
    return [(ids_of(a, vocab), ids_of(b, vocab), np.int64(score > 0))
            for (_, a, score), (_, b, _) in zip(rows[0::2], rows[1::2])]


def test_single_sentence_inputs_by_hand():
    rows = [(np.array([7, 8, 9], np.int32), np.int64(1)), (np.array([], np.int32), np.int64(0))]
    out = list(BertSingleSentenceInputs(iter(rows)))
    assert len(out) == 2 and all(len(row) == 5 for row in out)
    tokens, segments, segments2, label, weight = out[0]
    assert tokens.tolist() == [CLS, 7, 8, 9, SEP] and tokens.dtype == np.int32
    assert segments.tolist() == segments2.tolist() == [0] * 5 and segments.dtype == np.int32
    assert segments is not segments2  # two arrays: changing one leaves the other
    assert label == 1 and weight == 1 and weight.dtype == np.int32
    assert out[1][0].tolist() == [CLS, SEP] and out[1][1].tolist() == [0, 0]
    unlabeled = list(BertSingleSentenceInputs(iter([(np.array([5]),)]), labeled=False, cls_id=1, sep_id=2))
    assert [[a.tolist() for a in row] for row in unlabeled] == [[[1, 5, 2], [0, 0, 0], [0, 0, 0]]]


def test_double_sentence_inputs_by_hand():
    rows = [(np.array([7, 8]), np.array([9, 10, 11]), np.int64(2))]
    tokens, segments, segments2, label, weight = next(BertDoubleSentenceInputs(iter(rows)))
    assert tokens.tolist() == [CLS, 7, 8, SEP, 9, 10, 11, SEP] and tokens.dtype == np.int64
    assert segments.tolist() == segments2.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert (label, weight) == (2, 1)
    (tokens, segments, _), = BertDoubleSentenceInputs(iter([(np.array([4]), np.array([], int))]),
                                                      labeled=False, cls_id=5, sep_id=6)
    assert tokens.tolist() == [5, 4, 6, 6] and segments.tolist() == [0, 0, 0, 1]


def test_double_sentence_inputs_on_snippets(pairs):
    out = list(BertDoubleSentenceInputs(iter(pairs)))
    assert len(out) == len(pairs) == 1000
    for (a, b, label), (tokens, segments, segments2, got_label, weight) in zip(pairs, out):
        # An independent construction: lists, not arrays.
        expected = [CLS, *a.tolist(), SEP, *b.tolist(), SEP]
        assert tokens.tolist() == expected
        assert segments.tolist() == [0] * (len(a) + 2) + [1] * (len(b) + 1)
        assert np.array_equal(segments, segments2) and got_label == label and weight == 1


def test_create_bert_inputs_dispatches(pairs):
    single_rows = [(a, label) for a, _, label in pairs[:50]]
    make = CreateBertInputs(double_sentence=False, labeled=True, cls_id=11, sep_id=12)
    got = list(make(iter(single_rows)))
    want = list(BertSingleSentenceInputs(iter(single_rows), cls_id=11, sep_id=12))
    assert len(got) == 50 and all(g[0].tolist() == w[0].tolist() for g, w in zip(got, want))
    assert got[0][0][0] == 11 and got[0][0][-1] == 12
    double = CreateBertInputs()  # Trax's defaults: pairs, labeled, 101 / 102
    got = list(double(iter(pairs[:50])))
    want = list(BertDoubleSentenceInputs(iter(pairs[:50])))
    assert len(got) == len(want) == 50 and got[0][1][-1] == 1  # (a second segment: two sentences)
    assert all(len(g) == 5 and g[0].tolist() == w[0].tolist() and g[1].tolist() == w[1].tolist()
               for g, w in zip(got, want))
    unlabeled = CreateBertInputs(labeled=False)(iter([(a, b) for a, b, _ in pairs[:3]]))
    assert [len(row) for row in unlabeled] == [3, 3, 3]


def test_bert_inputs_errors():
    with pytest.raises(ValueError, match=r"pax_trax.data.BertSingleSentenceInputs: expected rows "
                                         r"\(sentence, label\), got tuple of 1"):
        next(BertSingleSentenceInputs(iter([(np.array([1]),)])))
    with pytest.raises(ValueError, match=r"BertDoubleSentenceInputs: expected rows \(sentence1, sentence2\), "
                                         r"got ndarray"):
        next(BertDoubleSentenceInputs(iter([np.array([1, 2])]), labeled=False))
    with pytest.raises(ValueError, match=r"BertDoubleSentenceInputs: expected sentence2 to be a 1-D integer "
                                         r"array, got ndarray float64 \(2,\)"):
        next(BertDoubleSentenceInputs(iter([(np.array([1]), np.array([1.0, 2.0]), 0)])))
    with pytest.raises(ValueError, match=r"BertSingleSentenceInputs: expected sentence to be a 1-D integer "
                                         r"array, got ndarray int64 \(1, 2\)"):
        next(BertSingleSentenceInputs(iter([(np.array([[1, 2]]), 0)])))
    with pytest.raises(TypeError, match=r"pax_trax.data.CreateBertInputs: expected an int cls_id, got '101'"):
        CreateBertInputs(cls_id="101")


# ---------------------------------------------------------------- masking


def viable(tokens):
    """By hand: positions of ordinary tokens (not [CLS]/[SEP]/padding), as Trax selects."""
    return [i for i, t in enumerate(tokens.tolist()) if t not in (CLS, SEP, 0)]


@pytest.fixture(scope="session")
def bert_rows(pairs):
    """(token_ids, segment_ids, nsp_label, nsp_weight) with some padding and [UNK]s (100)."""
    out = []
    for k, (tokens, segments, _, label, weight) in enumerate(BertDoubleSentenceInputs(iter(pairs))):
        tokens = tokens.copy()
        tokens[2::9] = 100  # [UNK] (below vocab_start_id): selectable, as in Trax
        pad = k % 4
        out.append((np.concatenate([tokens, np.zeros(pad, tokens.dtype)]),
                    np.concatenate([segments, np.zeros(pad, np.int32)]), label, weight))
    return out


def test_mask_random_tokens_properties(bert_rows):
    kept = [tuple(a.copy() if isinstance(a, np.ndarray) else a for a in row) for row in bert_rows]
    out = list(mask_random_tokens(iter(bert_rows), rng=0))
    expected_rows = [row for row in bert_rows if round(0.15 * len(viable(row[0]))) > 0]
    assert len(out) == len(expected_rows) > 900
    counts = collections.Counter()
    for row, (masked, segments, label, weight, original, weights) in zip(expected_rows, out):
        tokens = row[0]
        assert segments is row[1] and label is row[2] and weight is row[3]  # passed through
        assert np.array_equal(original, tokens) and original is not tokens
        selected = np.flatnonzero(weights).tolist()
        assert len(selected) == round(0.15 * len(viable(tokens)))
        assert set(selected) <= set(viable(tokens))  # specials never selected
        assert weights.dtype == np.float32 and np.allclose(weights[selected], 1 / len(selected))
        assert math.isclose(float(weights.sum()), 1.0, rel_tol=1e-6)
        unselected = np.ones(len(tokens), bool)
        unselected[selected] = False
        assert np.array_equal(masked[unselected], tokens[unselected])
        for i in selected:
            if masked[i] == MASK:
                counts["mask"] += 1
            elif masked[i] == tokens[i]:
                counts["same"] += 1
            else:
                assert START <= masked[i] < VOCAB
                counts["random"] += 1
    # The input rows were not modified.
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(kept, bert_rows))
    n = sum(counts.values())
    assert n > 3000
    # 80 / 10 / 10 (binomial standard deviations ~0.007 and ~0.005 here).
    assert abs(counts["mask"] / n - 0.8) < 0.03
    assert abs(counts["random"] / n - 0.1) < 0.025 and abs(counts["same"] / n - 0.1) < 0.025


def test_mask_random_tokens_selects_uniformly_and_rounds_like_trax():
    tokens = np.array([CLS] + list(range(2000, 2020)) + [SEP, 0, 0])
    trials = 3000
    out = list(mask_random_tokens(iter([(tokens,)] * trials), rng=1))
    hits = np.zeros(len(tokens))
    for _, _, weights in out:
        hits += weights > 0
        assert (weights > 0).sum() == 3  # round(0.15 * 20)
    assert hits[[0, 21, 22, 23]].sum() == 0
    assert np.all(np.abs(hits[1:21] - trials * 3 / 20) < 100)  # 450 each, sd ~20
    # round() as Python's (Trax): half to even. 5 ordinary tokens at 0.5 -> 2, 7 -> 4.
    for n, want in ((5, 2), (7, 4), (3, 2)):
        row = (np.arange(1000, 1000 + n),)
        (_, _, weights), = mask_random_tokens(iter([row]), masking_prob=0.5, rng=2)
        assert (weights > 0).sum() == want
    (masked, _, weights), = mask_random_tokens(iter([(np.arange(1000, 1010),)]), masking_prob=1.0, rng=3)
    assert (weights > 0).all()


def test_mask_random_tokens_drops_rows_with_nothing_to_select():
    rows = [(np.array([CLS, 1000, SEP]),),  # round(0.15) == 0
            (np.array([CLS, SEP, 0, 0]),),  # only specials
            (np.arange(1000, 1010),)]
    out = list(mask_random_tokens(iter(rows), rng=0))
    assert len(out) == 1 and np.array_equal(out[0][1], rows[2][0])
    assert list(mask_random_tokens(iter(rows), masking_prob=0.0, rng=0)) == []


def test_mask_random_tokens_selects_ids_below_vocab_start_as_trax():
    # Trax's special tokens are [CLS], [SEP] and padding only: ids below vocab_start_id
    # (such as [UNK] or, in a small vocabulary, ordinary subwords) are selected too.
    (masked, original, weights), = mask_random_tokens(iter([(np.array([CLS, 5, 100, 7, SEP, 0]),)]),
                                                      masking_prob=1.0, rng=0)
    assert np.flatnonzero(weights).tolist() == [1, 2, 3]
    assert original.tolist() == [CLS, 5, 100, 7, SEP, 0]


def test_mask_random_tokens_random_ids_and_seeds():
    rows = [(np.arange(2000, 2100),)] * 200
    out = list(mask_random_tokens(iter(rows), explicit_vocab_size=1060, vocab_start_id=1050,
                                  masking_prob=0.5, mask_id=7, rng=4))
    replaced = np.concatenate([m[(m != o) & (m != 7)] for m, o, _ in out])
    assert len(replaced) > 500 and set(replaced.tolist()) == set(range(1050, 1060))
    same = [list(mask_random_tokens(iter(rows[:20]), rng=5)) for _ in range(2)]
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(*same))
    other = list(mask_random_tokens(iter(rows[:20]), rng=6))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(same[0], other))
    rng = np.random.default_rng(7)  # a Generator is used and advanced
    first = next(mask_random_tokens(iter(rows), rng=rng))
    second = next(mask_random_tokens(iter(rows), rng=rng))
    assert not np.array_equal(first[2], second[2])


def test_mask_random_tokens_in_a_pipeline(pairs):
    pipeline = Serial(lambda _: iter(pairs[:100]), CreateBertInputs(),
                      lambda g: ((tokens, segments, label, weight) for tokens, segments, _, label, weight in g),
                      lambda g: mask_random_tokens(g, rng=0))
    out = list(pipeline())
    assert len(out) == 100 and all(len(row) == 6 for row in out)
    for (a, b, label), (masked, segments, nsp_label, _, original, weights) in zip(pairs, out):
        assert original.tolist() == [CLS, *a.tolist(), SEP, *b.tolist(), SEP] and nsp_label == label
        assert masked.shape == original.shape == weights.shape == segments.shape


def test_mask_random_tokens_errors():
    row = (np.arange(1000, 1010),)
    for kwargs, message in (
            ({"masking_prob": 1.5}, r"expected masking_prob in \[0, 1\], got 1.5"),
            ({"vocab_start_id": 40000}, r"expected vocab_start_id < explicit_vocab_size .* got "
                                        r"vocab_start_id=40000, explicit_vocab_size=30522"),
            ({"explicit_vocab_size": 0}, r"expected explicit_vocab_size >= 1, got 0")):
        with pytest.raises(ValueError, match=r"pax_trax.data.mask_random_tokens: " + message):
            mask_random_tokens(iter([row]), **kwargs)
    with pytest.raises(TypeError, match=r"mask_random_tokens: expected an int mask_id, got 1.5"):
        mask_random_tokens(iter([row]), mask_id=1.5)
    with pytest.raises(TypeError, match=r"pax_trax.data.mask_random_tokens: expected an int rng \(a seed\), "
                                        r"got 'seed'"):
        mask_random_tokens(iter([row]), rng="seed")
    with pytest.raises(ValueError, match=r"pax_trax.data.mask_random_tokens: expected rng \(a seed\) >= 0, "
                                         r"got -1"):
        mask_random_tokens(iter([row]), rng=-1)
    with pytest.raises(ValueError, match=r"mask_random_tokens: expected rows to be tuples whose first "
                                         r"element is the token ids, e.g. \(token_ids,\), got ndarray"):
        next(mask_random_tokens(iter([row[0]])))
    with pytest.raises(ValueError, match=r"expected the token ids \(the first element of a row\) to be a 1-D "
                                         r"integer array, got ndarray float64 \(3,\)"):
        next(mask_random_tokens(iter([(np.ones(3),)])))


# ------------------------------------------------------ TFDS text datasets


def one_sentence_snippets(rows):
    """Snippets that are exactly one sentence by T5's rule: one run of .!? at the end."""
    out = []
    for _, text, _ in rows:
        text = " ".join(text.split())
        if re.fullmatch(r"[^.!?]+[.!?]+", text) and text not in out:
            out.append(text)
    return out


def paragraph_texts(sentences):
    """Texts of 1..7 sentences; some in two lines (an empty line between some): ``[[line, ...]]``
    where each line is a list of sentences."""
    texts, start = [], 0
    for k in range(10 ** 6):
        size = k % 7 + 1
        group = sentences[start:start + size]
        if len(group) < size:
            break
        start += size
        texts.append([group[:2], group[2:]] if size >= 4 and k % 2 == 0 else [group])
    return texts


def render(lines, k):
    return ("\n\n" if k % 4 == 0 else "\n").join(" ".join(line) for line in lines)


def true_pairs(texts):
    return {(a, b): k for k, lines in enumerate(texts) for line in lines for a, b in zip(line[:-1], line[1:])}


def document_texts(sentences):
    """Training documents of DOC_SENTENCES sentences (a newline every 7), and one long
    test document of all sentences."""
    train = []
    for start in range(0, len(sentences) - DOC_SENTENCES + 1, DOC_SENTENCES):
        group = sentences[start:start + DOC_SENTENCES]
        train.append("\n".join(" ".join(group[i:i + 7]) for i in range(0, len(group), 7)))
    return train, [" ".join(sentences)]


def text_builder(tfds, name, splits):
    class Texts(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """Texts made of movie review snippets."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "text": tfds.features.Text(), "n_words": tfds.features.Scalar(np.int64)}))

        def _split_generators(self, dl_manager):
            del dl_manager
            return {split: self._generate_examples(texts) for split, texts in splits.items()}

        def _generate_examples(self, texts):
            for k, text in enumerate(texts):
                yield k, {"text": text, "n_words": len(text.split())}

    Texts.name = name
    return Texts


@pytest.fixture(scope="session")
def corpus(rows, tmp_path_factory):
    sentences = one_sentence_snippets(rows)
    texts = paragraph_texts(sentences)
    train_texts = [t for k, t in enumerate(texts) if k % 5 != 4]
    test_texts = [t for k, t in enumerate(texts) if k % 5 == 4]
    docs_train, docs_test = document_texts(sentences)
    _lazy.tensorflow("tests")  # imported here, its import-time warnings silenced
    tfds = _lazy.tensorflow_datasets("tests")
    data_dir = str(tmp_path_factory.mktemp("bert_tfds"))
    text_builder(tfds, PARAGRAPHS, {
        "train": [render(t, k) for k, t in enumerate(train_texts)],
        "test": [render(t, k) for k, t in enumerate(test_texts)]})(data_dir=data_dir).download_and_prepare()
    text_builder(tfds, DOCUMENTS, {"train": docs_train, "test": docs_test})(
        data_dir=data_dir, file_format="array_record").download_and_prepare()
    return {"data_dir": data_dir, "sentences": sentences, "train": train_texts, "test": test_texts,
            "docs_train": docs_train, "docs_test": docs_test}


def nsp(corpus, **kwargs):
    kwargs.setdefault("repeat", False)
    return BertNextSentencePredictionInputs(PARAGRAPHS, data_dir=corpus["data_dir"], download=False, **kwargs)


def check_nsp_pass(out, texts):
    """Checks one pass of the NSP stream against the pairs known from how `texts` were built."""
    pairs = true_pairs(texts)
    successor = {a: b for a, b in pairs}
    assert all(isinstance(a, str) and isinstance(b, str) and isinstance(n, bool) for a, b, n in out)
    assert len(out) % 2 == 0 and len(pairs) - 1 <= len(out) <= len(pairs)  # (an odd last pair dropped)
    assert len({a for a, _, _ in out}) == len(out) and {a for a, _, _ in out} <= set(successor)
    for (a0, b0, next0), (a1, b1, next1) in zip(out[0::2], out[1::2]):
        assert next0 == next1  # two pairs at a time
        if next0:
            assert successor[a0] == b0 and successor[a1] == b1
        else:  # the second sentences exchanged
            assert b0 == successor[a1] and b1 == successor[a0] and b0 != successor[a0]
    return np.mean([n for _, _, n in out])


def test_next_sentence_prediction_pass(corpus, within):
    out = within(120, lambda: list(nsp(corpus, seed=0)()))
    assert len(out) > 800
    assert abs(check_nsp_pass(out, corpus["train"]) - 0.5) < 0.08  # 400 coin flips: sd 0.022
    # Pairs never cross lines: no first sentence of a line follows the last one of the line before.
    crossing = {(lines[0][-1], lines[1][0]) for lines in corpus["train"] if len(lines) == 2}
    assert crossing and not crossing & {(a, b) for a, b, n in out if n}
    eval_out = within(120, lambda: list(nsp(corpus, train=False, seed=1)()))
    check_nsp_pass(eval_out, corpus["test"])


def test_next_sentence_prediction_shuffles_pairs(corpus, within):
    def text_runs(out):
        """How many runs of consecutive pairs from one text the stream has."""
        text_of = true_pairs(corpus["test"])
        order = []
        for a, _, _ in out:
            key = next(k for (first, _), k in text_of.items() if first == a)
            if not order or order[-1] != key:
                order.append(key)
        return order

    unshuffled = within(120, lambda: list(nsp(corpus, train=False, shuffle_size=1, seed=0)()))
    runs = text_runs(unshuffled)
    assert len(runs) == len(set(runs))  # each text's pairs together, in TFDS's order
    shuffled = within(120, lambda: list(nsp(corpus, train=False, shuffle_size=1000, seed=0)()))
    assert len(text_runs(shuffled)) > 2 * len(set(text_runs(shuffled)))


def test_next_sentence_prediction_seeds_and_repeat(corpus, within):
    def first(n, **kwargs):
        stream = nsp(corpus, repeat=True, shuffle_size=100, **kwargs)()
        return within(120, lambda: [next(stream) for _ in range(n)])

    a, b, c = first(1500, seed=3), first(1500, seed=3), first(1500, seed=4)
    assert a == b and a != c
    # Repeating: more pairs than one pass has, every one of them a true or exchanged pair.
    successor = {x: y for x, y in true_pairs(corpus["train"])}
    assert all((successor[x] == y) == n for x, y, n in a)
    assert len(a) > len(successor)
    assert first(50) != first(50)  # no seed: fresh entropy


def test_next_sentence_prediction_errors(corpus):
    with pytest.raises(KeyError, match=r"pax_trax.data.BertNextSentencePredictionInputs: cannot read text "
                                       r"'txt' of dataset 'snippet_paragraphs'.*not a feature"):
        nsp(corpus, text_key="txt")
    with pytest.raises(TypeError, match=r"BertNextSentencePredictionInputs: expected feature 'n_words' of "
                                        r"dataset 'snippet_paragraphs' to be text, got int64"):
        next(nsp(corpus, text_key="n_words")())
    with pytest.raises(ValueError, match=r"BertNextSentencePredictionInputs: expected shuffle_size >= 1, got 0"):
        nsp(corpus, shuffle_size=0)
    with pytest.raises(ValueError, match=r"BertNextSentencePredictionInputs: expected seed >= 0, got -1"):
        nsp(corpus, seed=-1)
    with pytest.raises(ValueError, match=r"BertNextSentencePredictionInputs: cannot read .*no_such_dataset"):
        BertNextSentencePredictionInputs("no_such_dataset", data_dir=corpus["data_dir"], download=False)


def chunks(corpus, **kwargs):
    kwargs.setdefault("repeat", False)
    return CorpusToRandomChunks(DOCUMENTS, data_dir=corpus["data_dir"], download=False, **kwargs)


def split_into_documents(out, docs):
    """[(document index, [chunk word lists])] in stream order, found by the chunks' words."""
    words = [doc.split() for doc in docs]
    found, k = [], 0
    while k < len(out):
        chunk = out[k][0].split()
        index = next(i for i, w in enumerate(words) if w[:len(chunk)] == chunk)
        parts, n = [], 0
        while n < len(words[index]):
            part = out[k][0].split()
            assert words[index][n:n + len(part)] == part  # consecutive words, in order
            parts.append(part)
            n, k = n + len(part), k + 1
        assert n == len(words[index])
        found.append((index, parts))
    return found


def chunk_length(parts):
    """The drawn length of a document's chunks (all but the last have it; the last no more)."""
    length = len(parts[0])
    assert all(len(p) == length for p in parts[:-1]) and 1 <= len(parts[-1]) <= length
    return length


def test_corpus_to_random_chunks_pass(corpus, within):
    out = within(120, lambda: list(chunks(corpus, num_tokens=128, seed=0)()))
    assert all(isinstance(chunk, bytes) and len(row) == 1 for row in out for chunk in row)
    out = [(chunk.decode("utf-8"),) for chunk, in out]
    docs = corpus["docs_train"]
    found = split_into_documents(out, docs)
    assert sorted(i for i, _ in found) == list(range(len(docs)))  # each document once
    assert [i for i, _ in found] != list(range(len(docs)))  # (shuffled by TFDS)
    lengths = [chunk_length(parts) for _, parts in found]
    assert all(16 <= n <= 128 for n in lengths) and len(set(lengths)) > 10
    first_parts = found[0][1]  # chunks are the words joined by single spaces
    assert [" ".join(p) for p in first_parts] == [chunk for chunk, in out[:len(first_parts)]]


def test_corpus_to_random_chunks_lengths_are_log_uniform(corpus, within):
    lengths = []
    for seed in range(10):
        out = within(120, lambda s=seed: list(chunks(corpus, num_tokens=128, seed=s, decode_text=True)()))
        lengths += [chunk_length(parts) for _, parts in split_into_documents(out, corpus["docs_train"])]
    lengths = np.array(lengths)
    assert len(lengths) == 10 * len(corpus["docs_train"]) > 500
    # P(length < x) = log(x / 16) / log(128 / 16): 1/3 at 32, 2/3 at 64 (sd ~0.02 here).
    assert abs(np.mean(lengths < 32) - 1 / 3) < 0.07 and abs(np.mean(lengths < 64) - 2 / 3) < 0.07


def test_corpus_to_random_chunks_long_text_keeps_one_block(corpus, within):
    words = corpus["docs_test"][0].split()
    assert len(words) > 3 * LONG
    blocks = set()
    for seed in range(8):
        out = within(120, lambda s=seed: list(chunks(corpus, train=False, seed=s, decode_text=True)()))
        kept = " ".join(chunk for chunk, in out).split()
        start = next(b * LONG for b in range(4) if words[b * LONG:(b + 1) * LONG] == kept)
        blocks.add(start // LONG)
        assert all(isinstance(chunk, str) and 1 <= len(chunk.split()) <= 512 for chunk, in out)
    assert len(blocks) > 1


def test_corpus_to_random_chunks_short_num_tokens_and_seeds(corpus, within):
    out = within(120, lambda: list(chunks(corpus, num_tokens=5, seed=0, decode_text=True)()))
    found = split_into_documents(out, corpus["docs_train"])
    assert all(chunk_length(parts) == 5 for _, parts in found)  # below 16 words: exactly num_tokens
    a = within(120, lambda: list(chunks(corpus, seed=1)()))
    b = within(120, lambda: list(chunks(corpus, seed=1)()))
    c = within(120, lambda: list(chunks(corpus, seed=2)()))
    assert a == b and a != c
    stream = chunks(corpus, repeat=True, num_tokens=64)()
    repeated = within(120, lambda: [next(stream) for _ in range(3 * len(a))])
    assert len(repeated) == 3 * len(a)  # repeats past one pass


def test_corpus_to_random_chunks_errors(corpus):
    with pytest.raises(ValueError, match=r"pax_trax.data.CorpusToRandomChunks: expected num_tokens >= 1, got 0"):
        chunks(corpus, num_tokens=0)
    with pytest.raises(TypeError, match=r"CorpusToRandomChunks: expected text_key to be a feature name"):
        chunks(corpus, text_key=3)
    with pytest.raises(KeyError, match=r"CorpusToRandomChunks: cannot read text 'txt' of dataset "
                                       r"'snippet_documents'.*not a feature"):
        chunks(corpus, text_key="txt")


@pytest.fixture(scope="module")
def barren_corpus(tmp_path_factory):
    """Datasets whose texts give few or no pairs / chunks: 'blank' (no words at all),
    'single' (one sentence per line: no pairs) and 'sparse' (one text of 30 has a pair)."""
    _lazy.tensorflow("tests")
    tfds = _lazy.tensorflow_datasets("tests")
    data_dir = str(tmp_path_factory.mktemp("barren_tfds"))
    singles = [f"Sentence number {k} is alone." for k in range(29)]
    for name, texts in (("barren_blank", ["", " ", "\n\n", " \t "]),
                        ("barren_single", singles[:10] + ["First line.\nSecond line!"]),
                        ("barren_sparse", singles + ["The only pair. Is here."])):
        text_builder(tfds, name, {"train": texts})(data_dir=data_dir).download_and_prepare()
    return data_dir


def test_repeating_streams_over_barren_texts_raise_instead_of_hanging(barren_corpus, within):
    kwargs = dict(data_dir=barren_corpus, download=False, seed=0)
    for name in ("barren_blank", "barren_single"):
        stream = BertNextSentencePredictionInputs(name, shuffle_size=10, **kwargs)()
        with pytest.raises(ValueError, match=r"pax_trax\.data\.BertNextSentencePredictionInputs: the dataset "
                                             r"gave no pair of neighboring sentences in \d+ texts in a row"):
            within(60, lambda s=stream: next(s))
        # One pass is simply empty.
        assert within(60, lambda n=name: list(BertNextSentencePredictionInputs(n, repeat=False, **kwargs)())) == []
    stream = CorpusToRandomChunks("barren_blank", **kwargs)()
    with pytest.raises(ValueError, match=r"pax_trax\.data\.CorpusToRandomChunks: the dataset gave no words"):
        within(60, lambda: next(stream))
    assert within(60, lambda: list(CorpusToRandomChunks("barren_blank", repeat=False, **kwargs)())) == []
    # Texts that give something, however rarely, are read on (no false alarm): the sparse
    # dataset gives one pair per pass, whatever the shuffle puts between two of them.
    single_chunks = CorpusToRandomChunks("barren_single", decode_text=True, **kwargs)()
    assert within(60, lambda: [next(single_chunks) for _ in range(30)])[0][0].startswith(("Sentence", "First"))
    for seed in range(4):
        stream = BertNextSentencePredictionInputs("barren_sparse", data_dir=barren_corpus, download=False,
                                                  shuffle_size=1, seed=seed)()
        out = within(60, lambda s=stream: [next(s) for _ in range(10)])
        assert {(a, b) for a, b, _ in out} == {("The only pair.", "Is here.")}  # (exchanged: the same)


def test_import_does_not_load_tensorflow():
    code = ("import sys, pax_trax.data.bert_inputs; "
            "print('tensorflow' in sys.modules, 'tensorflow_datasets' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            check=False, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "False"]
