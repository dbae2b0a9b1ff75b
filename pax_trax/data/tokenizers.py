"""Tokenization stream functions: Trax 1.4.1's ``trax.data.tf_inputs`` tokenizers, offline.

`Tokenize` maps the text fields of a stream's examples to int arrays,
`detokenize` maps ids back to text and `vocab_size` sizes a model's output
layer, with Trax's names, signatures and semantics::

  from pax_trax import data

  pipeline = data.Serial(
      lambda _: iter(pairs),                              # (str, str) examples
      data.Tokenize(vocab_file='en_8k.subword', vocab_dir='vocabs/', keys=[0, 1]),
      data.Shuffle(seed=0),
      data.BucketByLength(...),
  )
  size = data.vocab_size(vocab_file='en_8k.subword', vocab_dir='vocabs/')

Vocabulary types (``vocab_type``): ``'subword'`` (a ``.subword`` file, pure
Python), ``'sentencepiece'`` (a SentencePiece ``.model``; the
``sentencepiece`` package), ``'char'`` (UTF-8 bytes; no file), ``'bert'`` and
``'bert-lowercase'`` (a WordPiece ``vocab.txt``; tensorflow-text to encode,
cased and lower-cased as in Trax). See `pax_trax.data.vocabularies` for how
each encodes and decodes.

``n_reserved_ids`` (Trax's semantics): every id is shifted up by it, so ids
``0 .. n_reserved_ids - 1`` are left free (e.g. for padding and EOS when
the vocabulary lacks them); `detokenize` shifts back and skips those reserved
ids, and `vocab_size` counts them.

>>> [ids.tolist() for ids in tokenize(iter(["ab", b"ab"]), vocab_type="char", n_reserved_ids=2)]
[[99, 100], [99, 100]]
>>> detokenize([99, 100], vocab_type="char", n_reserved_ids=2)
'ab'
>>> vocab_size(vocab_type="char", n_reserved_ids=2)
258

Differences from Trax: files are local (there is no default
``vocab_dir='gs://trax-ml/vocabs/'``, nor a default T5 SentencePiece model);
str and bytes are both accepted everywhere (bytes are UTF-8 with undecodable
bytes dropped; ``'char'`` keeps the bytes as they are); ids are always int64
arrays (Trax gives float64 for empty text); a field that is not text, a
missing file or a missing package raises an error that says so; a missing
file or bad argument is reported when the stream function is called, not at
the first example.

Tokenizers and vocabularies
---------------------------
To build a vocabulary from local text (an iterable of str, e.g. lines of a
file), offline and in-process:

* `build_subword_vocab` ``(texts, target_size, path)``: a ``.subword``
  vocabulary (tensor2tensor's SubwordTextEncoder, pure Python, invertible on
  any text). Then ``Tokenize(vocab_type='subword', vocab_file=path)``.
* `train_sentencepiece` ``(texts, model_path, vocab_size)``: a SentencePiece
  model (T5's ids: 0 pad, 1 EOS, 2 unknown; full character coverage). Then
  ``Tokenize(vocab_type='sentencepiece', vocab_file=model_path)`` or
  ``SentencePieceTokenize(spm_path=model_path)``.
* `learn_wordpiece_vocab` ``(texts, vocab_size, path=...)``: a BERT WordPiece
  vocabulary (tensorflow-text; imports TensorFlow). Then
  ``Tokenize(vocab_type='bert', vocab_file=path)``, or ``'bert-lowercase'``
  for a vocabulary learned with ``lower_case=True``.

>>> import os, tempfile
>>> texts = ["In the beginning God created the heaven and the earth."] * 4
>>> path = build_subword_vocab(texts, 40, os.path.join(tempfile.mkdtemp(), "kjv.subword"))
>>> ids = next(tokenize(iter([texts[0]]), vocab_file=path))
>>> detokenize(ids, vocab_file=path) == texts[0], vocab_size(vocab_file=path) > 2
(True, True)
"""

from __future__ import annotations

import itertools

import numpy as np

from pax_trax.data._checks import describe
from pax_trax.data.vocabularies import (
    as_text,
    build_subword_vocab,
    learn_wordpiece_vocab,
    load_vocabulary,
    train_sentencepiece,
)

__all__ = [
    "tokenize",
    "Tokenize",
    "detokenize",
    "vocab_size",
    "ConvertToUnicode",
    "sentencepiece_tokenize",
    "SentencePieceTokenize",
    "build_subword_vocab",
    "train_sentencepiece",
    "learn_wordpiece_vocab",
]


# ------------------------------------------------------------------ checks


def _checked_keys(keys, where):
    """`keys` as a tuple (None stays None: every field)."""
    if keys is None:
        return None
    if isinstance(keys, (int, str, bytes)):
        raise TypeError(f"{where}: keys must be a list of tuple indices or dict keys, e.g. keys=[0] or "
                        f"keys=['inputs'], got {keys!r}.")
    return tuple(keys)


def _checked_n_reserved_ids(n_reserved_ids, where):
    if isinstance(n_reserved_ids, bool) or not isinstance(n_reserved_ids, (int, np.integer)) \
            or n_reserved_ids < 0:
        raise ValueError(f"{where}: n_reserved_ids must be a non-negative int, got {n_reserved_ids!r}.")
    return int(n_reserved_ids)


def _checked_stream(stream, where):
    try:
        return iter(stream)
    except TypeError:
        raise TypeError(f"{where}: expected a stream (an iterable of examples), got "
                        f"{describe(stream)}.") from None


# Examples tokenized together when the vocabulary encodes lists of texts (`_map_fields`
# then reads a block ahead of what it has yielded): the first block has
# `_FIRST_BLOCK_SIZE`, later ones about `_BLOCK_CHARACTERS` characters of text (at the
# last block's mean length), so that a block's arrays stay in a core's L2 cache: 1024
# snippets of ~115 characters tokenize ~10% faster a text than 256, while 1024
# reviews of ~1,200 characters are slower than 128.
_FIRST_BLOCK_SIZE = 256
_MIN_BLOCK_SIZE, _MAX_BLOCK_SIZE = 16, 1024
_BLOCK_CHARACTERS = 2**17


def _map_fields(stream, keys, convert, convert_texts=None):
    """Applies ``convert(value, key)`` to the selected fields of each example (Trax's traversal).

    A tuple or list gives a tuple, a dict a dict, anything else is converted whole.
    With `convert_texts` (a list of str/bytes -> the list of their conversions), tuples
    with their fields chosen by index are converted `_BLOCK_SIZE` at a time.
    """
    # The usual case, a tuple with its fields chosen by index, is done without
    # visiting the other fields (the hot loop of a tokenizing pipeline).
    indices = None
    if keys is not None and all(type(k) is int and k >= 0 for k in keys):
        indices = sorted(set(keys))
    if indices is not None and convert_texts is not None:
        return _map_blocks(iter(stream), indices, convert, convert_texts)
    return _map_each(stream, keys, indices, convert)


def _map_each(stream, keys, indices, convert):
    for example in stream:
        if indices is not None and type(example) is tuple:
            fields = list(example)
            for i in indices:
                if i < len(fields):
                    fields[i] = convert(fields[i], i)
            yield tuple(fields)
        elif isinstance(example, (list, tuple)):
            yield tuple(convert(x, i) if keys is None or i in keys else x for i, x in enumerate(example))
        elif isinstance(example, dict):
            yield {k: convert(x, k) if keys is None or k in keys else x for k, x in example.items()}
        else:
            yield convert(example, None)


def _map_blocks(stream, indices, convert, convert_texts):
    """`_map_each` (with `indices`) a block of examples at a time; the same examples,
    errors and skips, in the same order."""
    size = _FIRST_BLOCK_SIZE
    while True:
        block = []
        try:
            for example in itertools.islice(stream, size):
                block.append(example)
        except Exception:
            yield from _map_each(block, indices, indices, convert)  # those read before the error
            raise
        converted, n_characters = _map_block(block, indices, convert, convert_texts)
        yield from converted
        if len(block) < size:
            return
        if n_characters:
            size = min(max(_BLOCK_CHARACTERS * len(block) // n_characters, _MIN_BLOCK_SIZE),
                       _MAX_BLOCK_SIZE)


def _map_block(block, indices, convert, convert_texts):
    """The converted examples of `block`: column by column when they are tuples of one
    width with text at `indices`; else one by one (which explains a bad field after
    yielding the examples before it). Also the number of characters converted column
    by column (0 one by one)."""
    if not block or len(set(map(type, block))) != 1 or type(block[0]) is not tuple:
        return _map_each(block, indices, indices, convert), 0
    widths = set(map(len, block))
    width = widths.pop()
    if widths or width == 0:
        return _map_each(block, indices, indices, convert), 0
    columns = list(zip(*block))
    chosen = [i for i in indices if i < width]
    if not all(set(map(type, columns[i])) <= {str, bytes} for i in chosen):
        return _map_each(block, indices, indices, convert), 0
    n_characters = 0
    for i in chosen:
        n_characters += sum(map(len, columns[i]))
        columns[i] = convert_texts(columns[i])
    return zip(*columns), n_characters


def _encoder(vocab, n_reserved_ids, where):
    """``convert(value, key)`` for `_map_fields`: text -> int64 ids, shifted by
    `n_reserved_ids`; and ``convert_texts(texts)`` when `vocab` encodes lists of
    texts at once (``encode_batch``), else None."""
    encode_array = getattr(vocab, "encode_array", None)  # (SubwordTextEncoder: no list made)
    if encode_array is None:
        def encode_array(text):
            return np.asarray(vocab.encode(text), dtype=np.int64)

    def convert(value, key):
        if not isinstance(value, (str, bytes)):
            value = as_text(value, where, key)
        ids = encode_array(value)
        return ids + n_reserved_ids if n_reserved_ids else ids

    encode_batch = getattr(vocab, "encode_batch", None)
    if encode_batch is None:
        return convert, None

    def convert_texts(texts):
        encoded = encode_batch(texts)
        return [ids + n_reserved_ids for ids in encoded] if n_reserved_ids else encoded

    return convert, convert_texts


# --------------------------------------------------------------- tokenizing


def _tokenize(stream, keys, vocab_type, vocab_file, vocab_dir, n_reserved_ids, where):
    keys = _checked_keys(keys, where)
    n_reserved_ids = _checked_n_reserved_ids(n_reserved_ids, where)
    vocab = load_vocabulary(vocab_type, vocab_file, vocab_dir, where=where)
    stream = _checked_stream(stream, where)
    return _map_fields(stream, keys, *_encoder(vocab, n_reserved_ids, where))


def tokenize(stream, keys=None, vocab_type="subword", vocab_file=None, vocab_dir=None, n_reserved_ids=0):
    """Tokenizes the examples of `stream`: text becomes an int64 array of ids.

    Examples are str/bytes, or tuples/lists/dicts with text at `keys`; a
    tuple or list comes out as a tuple, a dict as a dict, other fields as
    they were.

    Args:
      stream: an iterable of examples.
      keys: the tuple indices or dict keys to tokenize (default: all).
      vocab_type: ``'subword'``, ``'sentencepiece'``, ``'char'``, ``'bert'`` or ``'bert-lowercase'``.
      vocab_file: the vocabulary's file name (in `vocab_dir`) or path; unused for ``'char'``.
      vocab_dir: the directory of `vocab_file` (None: `vocab_file` is a path).
      n_reserved_ids: added to every id, so ids ``0 .. n_reserved_ids - 1``
        are unused (e.g. for padding and EOS, when the vocabulary does not
        already reserve them).

    Returns:
      An iterator of the examples with text at `keys` replaced by int64 arrays.

    >>> next(tokenize(iter([("hi", 7)]), keys=[0], vocab_type="char"))
    (array([104, 105]), 7)
    """
    return _tokenize(stream, keys, vocab_type, vocab_file, vocab_dir, n_reserved_ids,
                     "pax_trax.data.tokenize")


def Tokenize(keys=None, vocab_type="subword", vocab_file=None, vocab_dir=None, n_reserved_ids=0):  # noqa: N802
    """Returns a stream function that tokenizes text at `keys`; see `tokenize`.

    >>> stream = Tokenize(keys=["text"], vocab_type="char")(iter([{"text": "hi", "id": 3}]))
    >>> next(stream)
    {'text': array([104, 105]), 'id': 3}
    """
    where = "pax_trax.data.Tokenize"
    keys = _checked_keys(keys, where)
    _checked_n_reserved_ids(n_reserved_ids, where)
    load_vocabulary(vocab_type, vocab_file, vocab_dir, where=where)  # a bad vocabulary fails here

    def tokenize_stream(stream):
        return _tokenize(stream, keys, vocab_type, vocab_file, vocab_dir, n_reserved_ids, where)

    return tokenize_stream


def _checked_ids(x, where):
    """`x` as a list of Python ints, or a clear error."""
    ids = np.asarray(x)
    if ids.size == 0:
        return []
    if ids.ndim != 1:
        raise ValueError(f"{where}: expected one sequence of ids (a 1-D list or array), got "
                         f"{describe(ids)}; decode a batch row by row: [detokenize(row, ...) for row in batch].")
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{where}: expected integer ids, got {describe(ids)}; cast them with "
                        f"np.asarray(ids, np.int64) if they are whole numbers.")
    return ids.astype(np.int64).tolist()


def detokenize(x, vocab_type="subword", vocab_file=None, vocab_dir=None, n_reserved_ids=0):
    """Maps ids back to text: the opposite of `tokenize`.

    ``detokenize(tokenize(x)) == x`` for ``'char'`` and ``'subword'``
    vocabularies (any text), for SentencePiece on text already in its
    normalized form, and for ``'bert'`` up to BERT's normalization (one space
    between words and around punctuation; lower case for ``'bert-lowercase'``).
    Reserved ids (below `n_reserved_ids`) and ids outside the vocabulary
    decode to nothing (SentencePiece: the unknown piece, as T5; it also stops
    after the first EOS).

    Args:
      x: a 1-D list or array of ints.
      vocab_type, vocab_file, vocab_dir, n_reserved_ids: as given to `tokenize`.

    Returns:
      The text, a str.

    >>> detokenize(np.array([0, 1, 104, 105]), vocab_type="char", n_reserved_ids=0)
    '\\x00\\x01hi'
    >>> detokenize(np.array([0, 1, 106, 107]), vocab_type="char", n_reserved_ids=2)
    'hi'
    """
    where = "pax_trax.data.detokenize"
    n_reserved_ids = _checked_n_reserved_ids(n_reserved_ids, where)
    ids = _checked_ids(x, where)
    vocab = load_vocabulary(vocab_type, vocab_file, vocab_dir, where=where)
    return str(vocab.decode([i - n_reserved_ids for i in ids if i >= n_reserved_ids]))


def vocab_size(vocab_type="subword", vocab_file=None, vocab_dir=None, n_reserved_ids=0):
    """The number of ids a vocabulary uses, `n_reserved_ids` included.

    A model predicting these ids needs an output layer at least this large.
    ``'char'`` has 256 ids (one per byte); ``'subword'`` and ``'bert'`` one
    per line of the file; ``'sentencepiece'`` one per piece of the model.

    >>> vocab_size(vocab_type="char")
    256
    """
    where = "pax_trax.data.vocab_size"
    n_reserved_ids = _checked_n_reserved_ids(n_reserved_ids, where)
    return load_vocabulary(vocab_type, vocab_file, vocab_dir, where=where).vocab_size + n_reserved_ids


# ------------------------------------------------------------------ unicode


def _to_unicode(value, key, where):
    text = as_text(value, where, key)
    # Errors are ignored (Trax's reason: an incomplete example beats a lost one).
    return text if isinstance(text, str) else text.decode("utf-8", errors="ignore")


def ConvertToUnicode(keys=None):  # noqa: N802
    """Returns a stream function that decodes bytes at `keys` to str (UTF-8, errors ignored).

    Useful for TFDS, which yields text as bytes. str passes unchanged; a
    field that is not text raises a TypeError.

    Args:
      keys: the tuple indices or dict keys to convert (default: all).

    >>> next(ConvertToUnicode(keys=[0])(iter([(b"caf\\xc3\\xa9", b"raw")])))
    ('café', b'raw')
    """
    where = "pax_trax.data.ConvertToUnicode"
    keys = _checked_keys(keys, where)

    def convert_to_unicode(stream):
        return _map_fields(_checked_stream(stream, where), keys, lambda x, k: _to_unicode(x, k, where))

    return convert_to_unicode


# ------------------------------------------------------------ sentencepiece


def _sentencepiece_vocab(spm_path, extra_ids, where):
    if spm_path is None:
        raise ValueError(f"{where}: spm_path is required: the path of a local SentencePiece .model "
                         f"(Trax's default, T5's gs://t5-data/vocabs/cc_all.32000/sentencepiece.model, "
                         f"is not downloaded here; train_sentencepiece makes one from local text).")
    if isinstance(extra_ids, bool) or not isinstance(extra_ids, (int, np.integer)) or extra_ids < 0:
        raise ValueError(f"{where}: extra_ids must be a non-negative int, got {extra_ids!r}.")
    return load_vocabulary("sentencepiece", spm_path, None, int(extra_ids), where=where)


def _sentencepiece_tokenize(stream, vocab, where):
    for example in stream:
        # As Trax: an example is a text or a tuple whose first element is the text.
        key = None
        if isinstance(example, (tuple, list)):
            if not example:
                raise ValueError(f"{where}: expected a text or a tuple starting with one, got an empty "
                                 f"{type(example).__name__}.")
            example, key = example[0], 0
        yield np.asarray(vocab.encode(as_text(example, where, key)), dtype=np.int64)


def sentencepiece_tokenize(stream, spm_path=None, extra_ids=0):
    """Tokenizes a stream of texts (or tuples whose first element is the text) with SentencePiece.

    Yields one int64 array per example (the other tuple elements are
    dropped, as in Trax). `extra_ids` (T5's sentinel ids, appended after the
    model's pieces) does not change the ids of text.

    Args:
      stream: an iterable of str/bytes or of tuples ``(text, ...)``.
      spm_path: the path of a local SentencePiece ``.model`` (required here).
      extra_ids: the number of extra ids of the vocabulary.
    """
    where = "pax_trax.data.sentencepiece_tokenize"
    vocab = _sentencepiece_vocab(spm_path, extra_ids, where)
    return _sentencepiece_tokenize(_checked_stream(stream, where), vocab, where)


def SentencePieceTokenize(spm_path=None, extra_ids=0):  # noqa: N802
    """Returns a stream function that tokenizes text with SentencePiece; see `sentencepiece_tokenize`."""
    where = "pax_trax.data.SentencePieceTokenize"
    _sentencepiece_vocab(spm_path, extra_ids, where)  # fail at construction

    def sentencepiece_tokenize_stream(stream):
        vocab = _sentencepiece_vocab(spm_path, extra_ids, where)
        return _sentencepiece_tokenize(_checked_stream(stream, where), vocab, where)

    return sentencepiece_tokenize_stream
