"""The vocabularies behind `pax_trax.data.tokenize`: loading (cached), encoding, decoding, building.

Trax 1.4.1's vocabulary types (``trax.data.tf_inputs._get_vocab``), read
from local files only:

====================  ===============================================  ========================
vocab_type            vocabulary file                                  needs
====================  ===============================================  ========================
``'subword'``         a ``.subword`` file (tensor2tensor's format)      nothing (pure Python)
``'sentencepiece'``   a SentencePiece ``.model``                       ``sentencepiece``
``'char'``            none: the UTF-8 bytes of the text, ids 0..255    nothing
``'bert'``            a WordPiece ``vocab.txt``, one token per line,   ``tensorflow-text`` to
                      cased (the text is not lower-cased)              encode; decoding and
``'bert-lowercase'``  the same, lower-cased and accents stripped       sizes are pure Python
====================  ===============================================  ========================

`load_vocabulary` reads a file once: vocabularies are cached by path (and the
file's modification time and size, so a vocabulary rebuilt at the same path
is read again). Every vocabulary has ``encode(text) -> list of ids``,
``decode(ids) -> str`` and ``vocab_size``.

Building a vocabulary from local text (all offline, in-process):
`build_subword_vocab` (pure Python), `train_sentencepiece` (the
``sentencepiece`` trainer) and `learn_wordpiece_vocab` (tensorflow-text's
``bert_vocab_from_dataset``).

>>> vocab = load_vocabulary("char")
>>> vocab.encode("ab"), vocab.decode([104, 105]), vocab.vocab_size
([97, 98], 'hi', 256)
"""

from __future__ import annotations

import functools
import os
import threading

import numpy as np

from pax_trax.data import _lazy
from pax_trax.data._checks import describe
from pax_trax.data.subword_text_encoder import SubwordTextEncoder

__all__ = [
    "VOCAB_TYPES",
    "BERT_RESERVED_TOKENS",
    "as_text",
    "load_vocabulary",
    "CharVocabulary",
    "SentencePieceVocabulary",
    "WordPieceVocabulary",
    "build_subword_vocab",
    "train_sentencepiece",
    "learn_wordpiece_vocab",
]

VOCAB_TYPES = ("subword", "sentencepiece", "char", "bert", "bert-lowercase")

# The special tokens of Google's BERT vocabularies, in their usual order.
BERT_RESERVED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

_BERT_UNKNOWN_TOKEN = "[UNK]"
_BERT_SUFFIX_INDICATOR = "##"
_N_BYTES = 256


# ---------------------------------------------------------------------- text


def as_text(value, where, key=None):
    """`value` as str or bytes, or a TypeError naming `where`, the key and what was got.

    NumPy string scalars and 0-d string arrays (what TFDS yields) are accepted.

    >>> as_text(b"hi", "f"), as_text(np.array("hi"), "f")
    (b'hi', 'hi')
    """
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "SUO":
        item = value.item()
        if isinstance(item, (str, bytes)):
            return item
    place = "as the example" if key is None else f"at key {key!r}"
    raise TypeError(f"{where}: expected text (str or bytes) {place}, got {describe(value)}. "
                    f"Only text fields can be tokenized; choose them with keys=[...].")


def _to_str(text):
    # As Trax's native_to_unicode and ConvertToUnicode: undecodable bytes are dropped.
    return text if isinstance(text, str) else text.decode("utf-8", errors="ignore")


# -------------------------------------------------------------- vocabularies


class CharVocabulary:
    """Trax's ``'char'`` vocabulary: each UTF-8 byte is its own id (0..255).

    Bytes are used as they are (str is UTF-8 encoded first). Decoding skips ids
    outside 0..255 and replaces invalid UTF-8 with U+FFFD, as Trax's
    ``ByteTextEncoder``.
    """

    vocab_size = _N_BYTES

    def encode(self, text):
        return list(text.encode("utf-8") if isinstance(text, str) else text)

    def decode(self, ids):
        return bytes(i for i in ids if 0 <= i < _N_BYTES).decode("utf-8", errors="replace")


class SentencePieceVocabulary:
    """A SentencePiece model with T5's vocabulary semantics (what Trax 1.4.1 uses).

    ``encode`` adds no BOS/EOS. ``vocab_size`` is the model's pieces plus
    `extra_ids`. ``decode`` (as T5/seqio) maps ids at or above the number of
    pieces to the unknown id, stops after the first EOS and skips negative ids.
    """

    def __init__(self, path, extra_ids=0):
        sentencepiece = _lazy.sentencepiece("pax_trax.data.tokenize")
        self.path = path
        self.extra_ids = extra_ids
        try:
            self._processor = sentencepiece.SentencePieceProcessor(model_file=path)
        except (OSError, RuntimeError) as err:
            raise ValueError(f"{path!r} is not a SentencePiece model ({err}).") from err
        self._n_pieces = self._processor.get_piece_size()

    @property
    def vocab_size(self):
        return self._n_pieces + self.extra_ids

    def encode(self, text):
        return self._processor.encode(_to_str(text))

    def encode_batch(self, texts):
        """The int64 ids of each of `texts`, encoded in one call to SentencePiece."""
        return [np.array(ids, np.int64) for ids in self._processor.encode(list(map(_to_str, texts)))]

    def decode(self, ids):
        unk_id, eos_id = self._processor.unk_id(), self._processor.eos_id()
        clean = [unk_id if i >= self._n_pieces else i for i in ids if i >= 0]
        if eos_id >= 0 and eos_id in clean:
            clean = clean[: clean.index(eos_id) + 1]
        return self._processor.decode(clean)


class WordPieceVocabulary:
    """A BERT WordPiece vocabulary file (Trax's ``BertEncoder``), one token per line.

    Line ``i`` (stripped) is id ``i``. Encoding runs tensorflow-text's
    ``BertTokenizer`` (imported on the first ``encode``): control characters
    are dropped, the text is split at whitespace and around punctuation and CJK
    characters, then each word is cut greedily into the longest vocabulary
    pieces (continuations prefixed ``##``); a word it cannot spell becomes
    ``[UNK]``. With `lower_case` the text is case-folded, NFD-normalized and
    stripped of accents first (Trax's ``'bert-lowercase'``); otherwise it is
    kept as is (``'bert'``). Decoding is pure Python, as Trax: the pieces are
    joined with spaces and ``##`` continuations glued to the piece before, so
    ``decode(encode(text))`` is the normalized text with one space between
    words and around punctuation. Two fixes of Trax's ``BertEncoder``: a
    continuation loses exactly its ``##`` (Trax strips every leading ``#``),
    and ``vocab_size`` is the number of lines (Trax counts distinct tokens,
    which is smaller than the largest id + 1 when a line repeats).
    """

    def __init__(self, path, lower_case=False):
        self.path = path
        self.lower_case = lower_case
        # Universal newlines and strip(), as Trax's BertEncoder.load_vocab.
        with open(path, encoding="utf-8") as f:
            self._tokens = [line.strip() for line in f]
        if not self._tokens:
            raise ValueError(f"the WordPiece vocabulary {path!r} is empty.")
        # A token listed twice maps to its last line, as Trax's dict does.
        self._token_to_id = {token: i for i, token in enumerate(self._tokens)}
        self._encode_fn = None
        self._lock = threading.Lock()

    @property
    def vocab_size(self):
        # The number of lines, so every id is below it (Trax counts distinct tokens).
        return len(self._tokens)

    def encode(self, text):
        if self._encode_fn is None:
            with self._lock:
                if self._encode_fn is None:
                    self._encode_fn = self._build_encoder()
        return self._encode_fn(_to_str(text)).numpy()

    def decode(self, ids):
        tokens = [self._tokens[i] for i in ids if 0 <= i < len(self._tokens)]
        if not tokens:
            return ""
        parts = [tokens[0]]
        for token in tokens[1:]:
            if token.startswith(_BERT_SUFFIX_INDICATOR):
                parts.append(token[len(_BERT_SUFFIX_INDICATOR):])
            else:
                parts.extend((" ", token))
        return "".join(parts)

    def _build_encoder(self):
        needed_by = f"pax_trax.data.tokenize (vocab_type={'bert-lowercase' if self.lower_case else 'bert'!r})"
        tf = _lazy.tensorflow(needed_by)
        text = _lazy.tensorflow_text(needed_by)
        if _BERT_UNKNOWN_TOKEN not in self._token_to_id:
            raise ValueError(
                f"{needed_by}: the WordPiece vocabulary {self.path!r} has no {_BERT_UNKNOWN_TOKEN} "
                f"token, so a word it cannot spell would get an id outside it; add "
                f"{_BERT_UNKNOWN_TOKEN} (learn_wordpiece_vocab's reserved_tokens include it).")
        # The table is built from the lines read here, so ids always match `decode`.
        table = tf.lookup.StaticVocabularyTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(self._token_to_id), tf.string),
                tf.constant(list(self._token_to_id.values()), tf.int64)),
            num_oov_buckets=1)
        tokenizer = text.BertTokenizer(table, token_out_type=tf.int64, unknown_token=_BERT_UNKNOWN_TOKEN,
                                       lower_case=self.lower_case)

        # One traced graph for every example: eager ops cost ~5 ms per text, this ~0.5 ms.
        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def encode(one_text):
            return tokenizer.tokenize(tf.reshape(one_text, [1])).flat_values

        return encode


# ------------------------------------------------------------------- loading


def vocab_path(vocab_file, vocab_dir, where, vocab_type):
    """``vocab_dir/vocab_file`` (or `vocab_file` alone), or a clear error when there is no such file."""
    if vocab_file is None:
        raise ValueError(f"{where}: vocab_type={vocab_type!r} needs vocab_file (the vocabulary's file "
                         f"name, found in vocab_dir, or a path), got None.")
    path = os.path.expanduser(os.path.join(vocab_dir, vocab_file) if vocab_dir else vocab_file)
    if not os.path.isfile(path):
        hint = ""
        if "://" in path:
            hint = (" pax_trax reads local files only: copy the vocabulary (e.g. Trax's from "
                    "gs://trax-ml/vocabs/) to a local directory and pass it as vocab_dir.")
        elif not vocab_dir:
            hint = " (Trax's default vocab_dir gs://trax-ml/vocabs/ is not used: pass a local vocab_dir.)"
        raise FileNotFoundError(f"{where}: vocabulary file {path!r} not found "
                                f"(vocab_file={vocab_file!r}, vocab_dir={vocab_dir!r}).{hint}")
    return path


_CHAR_VOCABULARY = CharVocabulary()


def load_vocabulary(vocab_type="subword", vocab_file=None, vocab_dir=None, extra_ids=0, *,
                    where="pax_trax.data.load_vocabulary"):
    """The vocabulary of `vocab_type` in ``vocab_dir/vocab_file``, read once and cached.

    Args:
      vocab_type: one of `VOCAB_TYPES`.
      vocab_file: the file's name (in `vocab_dir`) or path; unused for ``'char'``.
      vocab_dir: the directory of `vocab_file`; None: `vocab_file` is a path.
      extra_ids: SentencePiece only: ids added after the model's pieces (T5's sentinels).
      where: the public function named in errors.
    """
    if vocab_type not in VOCAB_TYPES:
        raise ValueError(f"{where}: vocab_type must be one of {', '.join(map(repr, VOCAB_TYPES))}, "
                         f"got {vocab_type!r}.")
    if vocab_type == "char":
        return _CHAR_VOCABULARY
    path = os.path.abspath(vocab_path(vocab_file, vocab_dir, where, vocab_type))
    if vocab_type == "sentencepiece":
        _lazy.sentencepiece(where)  # so a missing package names the caller, not the first one
    stat = os.stat(path)
    try:
        return _load_cached(vocab_type, path, int(extra_ids), stat.st_mtime_ns, stat.st_size)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{where}: cannot read the {vocab_type} vocabulary {path!r}: {err}") from err


@functools.lru_cache(maxsize=32)
def _load_cached(vocab_type, path, extra_ids, mtime_ns, size):
    del mtime_ns, size  # part of the cache key only: a rewritten file is read again
    if vocab_type == "subword":
        return SubwordTextEncoder(path)
    if vocab_type == "sentencepiece":
        return SentencePieceVocabulary(path, extra_ids)
    return WordPieceVocabulary(path, lower_case=vocab_type == "bert-lowercase")


# ------------------------------------------------------------------ building


def _checked_texts(texts, where):
    """The texts of `texts` as str, each checked (a clear TypeError for anything else)."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{where}: expected an iterable of texts (e.g. a list of str), got a single "
                        f"{type(texts).__name__}; wrap it in a list.")
    for i, text in enumerate(texts):
        yield _to_str(as_text(text, where, key=i))


def _ensure_parent_dir(path):
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)


def build_subword_vocab(texts, target_size, path, *, max_subtoken_length=None):
    """Learns a ``.subword`` vocabulary of about `target_size` subtokens and writes it to `path`.

    tensor2tensor's ``SubwordTextEncoder.build_from_generator`` (pure Python;
    ids 0 and 1 are ``<pad>`` and ``<EOS>``). Use the file with
    ``tokenize(..., vocab_type='subword', vocab_file=path)``; it encodes any
    text invertibly.

    Args:
      texts: an iterable of str or bytes.
      target_size: the vocabulary size wanted (the search stops within 1%).
      path: the file to write.
      max_subtoken_length: bounds the work per word (quadratic in the word's length when None).

    Returns:
      `path`.

    >>> import os, tempfile
    >>> path = build_subword_vocab(["the cat sat on the mat"] * 3, 30,
    ...                            os.path.join(tempfile.mkdtemp(), "tiny.subword"))
    >>> vocab = load_vocabulary("subword", path)
    >>> vocab.decode(vocab.encode("the bat"))
    'the bat'
    """
    where = "pax_trax.data.build_subword_vocab"
    try:
        encoder = SubwordTextEncoder.build_from_generator(
            _checked_texts(texts, where), target_size, max_subtoken_length=max_subtoken_length)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from err
    _ensure_parent_dir(path)
    encoder.store_to_file(path)
    return path


def train_sentencepiece(texts, model_path, vocab_size, *, model_type="unigram", character_coverage=1.0,
                        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, **trainer_options):
    """Trains a SentencePiece model on local text, in-process, and writes ``model_path``.

    The ids follow T5 (and so Trax's default SentencePiece model): 0 is
    padding, 1 is EOS, 2 is unknown, no BOS; Trax pads and masks with id 0.
    `character_coverage` 1.0 keeps every character seen (SentencePiece's
    0.9995 turns rare letters into unknowns). SentencePiece normalizes text
    (NFKC, single spaces, none at the ends), so ``detokenize(tokenize(s)) == s``
    for text already in that form. A ``.vocab`` file (pieces and scores) is
    written next to the model.

    Args:
      texts: an iterable of str or bytes, e.g. one sentence or line each.
      model_path: where to write the model; ``.model`` is appended when missing.
      vocab_size: the number of pieces (SentencePiece says the largest size
        the text allows when it is too large).
      model_type: ``'unigram'``, ``'bpe'``, ``'char'`` or ``'word'``.
      **trainer_options: any other ``SentencePieceTrainer`` option, e.g.
        ``user_defined_symbols=['<sep>']`` or ``num_threads=2``.

    Returns:
      The path of the ``.model`` file, for ``tokenize(..., vocab_type='sentencepiece', vocab_file=...)``.

    >>> import os, tempfile
    >>> path = train_sentencepiece(["the cat sat on the mat", "the dog sat on the log"] * 5,
    ...                            os.path.join(tempfile.mkdtemp(), "tiny.model"), vocab_size=19)
    >>> vocab = load_vocabulary("sentencepiece", path)
    >>> vocab.vocab_size, vocab.decode(vocab.encode("the dog sat"))
    (19, 'the dog sat')
    """
    where = "pax_trax.data.train_sentencepiece"
    sentencepiece = _lazy.sentencepiece(where)
    model_prefix = model_path[: -len(".model")] if model_path.endswith(".model") else model_path
    _ensure_parent_dir(model_prefix)
    # The trainer turns an exception of the iterator into a RuntimeError; keep the original.
    bad_text = []

    def sentences():
        try:
            yield from _checked_texts(texts, where)
        except TypeError as err:
            bad_text.append(err)
            raise

    options = dict(model_type=model_type, character_coverage=character_coverage, pad_id=pad_id,
                   eos_id=eos_id, unk_id=unk_id, bos_id=bos_id, minloglevel=2)
    options.update(trainer_options)
    try:
        sentencepiece.SentencePieceTrainer.train(sentence_iterator=sentences(), model_prefix=model_prefix,
                                                 vocab_size=vocab_size, **options)
    except RuntimeError as err:
        if bad_text:
            raise bad_text[0] from None
        message = str(err).split("] ", 1)[-1].strip()  # drop the C++ source location
        if "sentences_.empty()" in str(err):
            message = "no text to learn from (texts is empty)"
        raise ValueError(f"{where}: SentencePiece could not train a model with vocab_size={vocab_size}: "
                         f"{message}") from err
    return model_prefix + ".model"


def learn_wordpiece_vocab(texts, vocab_size, reserved_tokens=BERT_RESERVED_TOKENS, path=None, *,
                          lower_case=False, batch_size=1024, **learn_params):
    """Learns a BERT WordPiece vocabulary from local text with tensorflow-text (imports TensorFlow).

    tensorflow-text's ``bert_vocab_from_dataset``: the text is split into
    words as BERT does (see `WordPieceVocabulary`), then word pieces are
    learned. The vocabulary lists `reserved_tokens` first, then every
    character seen (alone and as a ``##`` continuation), then longer pieces;
    its size is at most `vocab_size` (the learner keeps pieces seen at least
    ``lower_thresh=10`` times, so small corpora give fewer).

    Use the same casing to tokenize: ``vocab_type='bert-lowercase'`` for a
    vocabulary learned with ``lower_case=True``, ``'bert'`` otherwise.

    Args:
      texts: an iterable of str or bytes.
      vocab_size: the largest vocabulary size wanted.
      reserved_tokens: tokens that come first; ``[UNK]`` must be among them
        for `tokenize` (it spells the words the vocabulary cannot).
      path: when given, the vocabulary is written there, one token per line.
      lower_case: lower-case (and strip accents from) the text first.
      batch_size: texts per TensorFlow batch while counting words.
      **learn_params: options of ``wordpiece_tokenizer_learner_lib.learn``
        (``upper_thresh``, ``lower_thresh``, ``num_iterations``,
        ``max_token_length``, ``max_unique_chars``, ``slack_ratio``, ...).

    Returns:
      The vocabulary: a list of tokens, id ``i`` at index ``i``.
    """
    where = "pax_trax.data.learn_wordpiece_vocab"
    tf = _lazy.tensorflow(where)
    _lazy.tensorflow_text(where)
    learner = _lazy.import_optional("tensorflow_text.tools.wordpiece_vocab.bert_vocab_from_dataset",
                                    where, "tensorflow-text")
    reserved_tokens = list(reserved_tokens)
    # Materialized (and checked) here: an error inside tf.data would lose its message.
    all_texts = list(_checked_texts(texts, where))
    if not all_texts:
        raise ValueError(f"{where}: no text to learn from (texts is empty).")
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(all_texts, tf.string)).batch(batch_size)
    vocab = learner.bert_vocab_from_dataset(dataset, vocab_size, reserved_tokens,
                                            bert_tokenizer_params={"lower_case": lower_case},
                                            learn_params=learn_params)
    if path is not None:
        _ensure_parent_dir(path)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(token + "\n" for token in vocab)
    return list(vocab)
