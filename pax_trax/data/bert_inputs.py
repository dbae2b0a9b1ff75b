"""BERT inputs (Trax's ``trax.data.tf_inputs`` BERT functions): [CLS]/[SEP] framing and
segment ids, masked-LM token masking, next-sentence-prediction pairs and random text
chunks read from TensorFlow datasets.

The first four are stream functions over Python iterators of NumPy examples::

    from pax_trax import data

    pipeline = data.Serial(
        lambda _: my_tokenized_pairs,          # (sentence1 ids, sentence2 ids, label)
        data.CreateBertInputs(double_sentence=True, labeled=True),
        lambda rows: data.mask_random_tokens(rows, rng=0),
    )

`BertNextSentencePredictionInputs` and `CorpusToRandomChunks` read a dataset
with `pax_trax.data.TFDS` and do in Python what Trax had T5's preprocessors
(``next_sentence_prediction``, ``random_split_text``) do in tf.data; ``t5`` is
not needed. Their text helpers:

>>> _sentences("It rains. Really?! Yes")
['It rains.', 'Really?!', 'Yes']
>>> _text_pairs("A b. C d. E f.\\n\\nG h. I j.")
[('A b.', 'C d.'), ('C d.', 'E f.'), ('G h.', 'I j.')]
>>> _text_pairs("K.")  # one sentence, no pair
[]
>>> [len(chunk.split()) for chunk in _random_chunks(" ".join(["w"] * 50), 16, np.random.default_rng(0))]
[16, 16, 16, 2]
>>> _random_chunks(" \\n ", 16, np.random.default_rng(0))  # no words, no chunks
[]

Randomness takes explicit seeds (``rng=`` / ``seed=``), never NumPy's global RNG.
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import re

import numpy as np

from pax_trax.data._checks import describe

__all__ = [
    "BertDoubleSentenceInputs",
    "BertNextSentencePredictionInputs",
    "BertSingleSentenceInputs",
    "CorpusToRandomChunks",
    "CreateBertInputs",
    "mask_random_tokens",
]

_PREFIX = "pax_trax.data."


# ------------------------------------------------------------------ checks


def _check_int(where, name, value, minimum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{_PREFIX}{where}: expected an int {name}, got {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{_PREFIX}{where}: expected {name} >= {minimum}, got {value}.")
    return int(value)


def _row(where, row, sizes, form):
    """`row` as a tuple whose length is in `sizes`; else an error showing the expected `form`."""
    if not isinstance(row, (tuple, list)) or len(row) not in sizes:
        raise ValueError(f"{_PREFIX}{where}: expected rows {form}, got {describe(row)}.")
    return tuple(row)


def _tokens(where, value, what):
    """`value` as a 1-D integer array; else an error naming `what` it should have been."""
    array = np.asarray(value)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{_PREFIX}{where}: expected {what} to be a 1-D integer array, got {describe(value)}.")
    return array


def _framed(sentences, cls_id, sep_id):
    """``[CLS] s1 [SEP] (s2 [SEP])`` and its segment ids (0 up to the first [SEP], then 1)."""
    # Keep the sentences' integer width (int32 stays int32 for JAX), at least int32 so
    # the special ids fit.
    dtype = np.promote_types(np.result_type(*sentences), np.int32)
    if not np.issubdtype(dtype, np.integer):  # (uint64 with int32 promotes to float)
        dtype = np.dtype(np.int64)
    pieces = [np.array([cls_id], dtype)]
    for sentence in sentences:
        pieces += [sentence.astype(dtype, copy=False), np.array([sep_id], dtype)]
    token_ids = np.concatenate(pieces)
    segments = np.zeros(token_ids.shape[0], np.int32)
    segments[sentences[0].shape[0] + 2:] = 1
    return token_ids, segments


# ------------------------------------------------------- [CLS]/[SEP] framing


def BertSingleSentenceInputs(batch, labeled=True, cls_id=101, sep_id=102):  # noqa: N802 (Trax name)
    """Prepares inputs for BERT: adds [CLS] and [SEP] and makes segment embeddings.

    Args:
      batch: stream of rows ``(sentence, label)`` (``labeled``) or ``(sentence,)``,
        each sentence a 1-D integer array of token ids.
      labeled: whether rows carry a label.
      cls_id: id of the [CLS] token, put first.
      sep_id: id of the [SEP] token, put last.

    Yields:
      ``(token_ids, segment_ids, segment_ids, label, np.int32(1))`` when labeled,
      else ``(token_ids, segment_ids, segment_ids)`` (the segment ids twice, as
      in Trax; two separate arrays here), where ``token_ids`` is
      ``[cls_id, *sentence, sep_id]`` (the sentence's integer dtype, at least
      int32; Trax gave int64) and ``segment_ids`` are int32 zeros.

    >>> rows = [(np.array([7, 8, 9]), 1)]
    >>> tokens, segments, _, label, weight = next(BertSingleSentenceInputs(iter(rows)))
    >>> tokens.tolist(), segments.tolist(), label, weight
    ([101, 7, 8, 9, 102], [0, 0, 0, 0, 0], 1, np.int32(1))
    """
    where = "BertSingleSentenceInputs"
    cls_id, sep_id = _check_int(where, "cls_id", cls_id), _check_int(where, "sep_id", sep_id)
    form = "(sentence, label)" if labeled else "(sentence,)"
    return _framed_stream(where, batch, 1, bool(labeled), form, cls_id, sep_id)


def BertDoubleSentenceInputs(batch, labeled=True, cls_id=101, sep_id=102):  # noqa: N802 (Trax name)
    """Prepares inputs for BERT on sentence pairs: adds [CLS] and [SEP] and makes segment embeddings.

    Args:
      batch: stream of rows ``(sentence1, sentence2, label)`` (``labeled``) or
        ``(sentence1, sentence2)``, each sentence a 1-D integer array of token ids.
      labeled: whether rows carry a label.
      cls_id: id of the [CLS] token, put first.
      sep_id: id of the [SEP] token, put after each sentence.

    Yields:
      ``(token_ids, segment_ids, segment_ids, label, np.int32(1))`` when labeled,
      else ``(token_ids, segment_ids, segment_ids)``, where ``token_ids`` is
      ``[cls_id, *sentence1, sep_id, *sentence2, sep_id]`` and ``segment_ids``
      (int32) are 0 up to and including the first [SEP], then 1.

    >>> rows = [(np.array([7, 8]), np.array([9]))]
    >>> tokens, segments, _ = next(BertDoubleSentenceInputs(iter(rows), labeled=False))
    >>> tokens.tolist(), segments.tolist()
    ([101, 7, 8, 102, 9, 102], [0, 0, 0, 0, 1, 1])
    """
    where = "BertDoubleSentenceInputs"
    cls_id, sep_id = _check_int(where, "cls_id", cls_id), _check_int(where, "sep_id", sep_id)
    form = "(sentence1, sentence2, label)" if labeled else "(sentence1, sentence2)"
    return _framed_stream(where, batch, 2, bool(labeled), form, cls_id, sep_id)


def _framed_stream(where, batch, n_sentences, labeled, form, cls_id, sep_id):
    size = n_sentences + int(labeled)
    for row in batch:
        row = _row(where, row, (size,), form)
        sentences = [_tokens(where, row[i], f"sentence{i + 1 if n_sentences > 1 else ''}")
                     for i in range(n_sentences)]
        token_ids, segments = _framed(sentences, cls_id, sep_id)
        if labeled:
            yield token_ids, segments, segments.copy(), row[-1], np.int32(1)
        else:
            yield token_ids, segments, segments.copy()


def CreateBertInputs(double_sentence=True, labeled=True, cls_id=101, sep_id=102):  # noqa: N802 (Trax name)
    """Returns the stream function `BertDoubleSentenceInputs` (or, with
    ``double_sentence=False``, `BertSingleSentenceInputs`) with these arguments.

    >>> bert_inputs = CreateBertInputs(double_sentence=False, labeled=False)
    >>> [tokens.tolist() for tokens, _, _ in bert_inputs(iter([(np.array([5]),)]))]
    [[101, 5, 102]]
    """
    where = "CreateBertInputs"
    cls_id, sep_id = _check_int(where, "cls_id", cls_id), _check_int(where, "sep_id", sep_id)
    inputs_fn = BertDoubleSentenceInputs if double_sentence else BertSingleSentenceInputs
    return functools.partial(inputs_fn, labeled=labeled, cls_id=cls_id, sep_id=sep_id)


# ---------------------------------------------------------------- masking


def mask_random_tokens(
    batch,
    explicit_vocab_size=30522,
    masking_prob=0.15,
    cls_id=101,
    sep_id=102,
    mask_id=103,
    vocab_start_id=999,
    *,
    rng=None,
):
    """Prepares input for the masked-language-model task (BERT's masking).

    In each row, ``round(masking_prob * n)`` of its ``n`` non-special tokens are
    selected at random (without repetition); each selected token is
    replaced by `mask_id` with probability 0.8, by a random id in
    ``[vocab_start_id, explicit_vocab_size)`` with probability 0.1, and left
    unchanged with probability 0.1 (BERT's ``create_pretraining_data.py``).
    Special tokens, never selected, are `cls_id`, `sep_id` and padding (0), as
    in Trax (`vocab_start_id` only bounds the random replacements: other ids
    below it, such as [UNK], may be selected). A row with no token to select
    (``round(masking_prob * n) == 0``) is dropped, as in Trax.

    Args:
      batch: stream of rows, tuples whose first element is a 1-D integer array
        of token ids: ``(token_ids,)`` or ``(token_ids, segment_ids, nsp_label,
        nsp_weight)``, or any other tuple.
      explicit_vocab_size: the total size of the vocabulary.
      masking_prob: the fraction of non-special tokens selected, in [0, 1].
      cls_id: id of the special [CLS] token.
      sep_id: id of the special [SEP] token.
      mask_id: id of the special [MASK] token.
      vocab_start_id: id of the first non-special token in the vocabulary: random
        replacements are drawn from ``[vocab_start_id, explicit_vocab_size)``.
      rng: pax_trax addition: an int seed or a ``numpy.random.Generator`` (used
        and advanced as is); None draws fresh entropy. Trax used NumPy's global RNG.

    Yields:
      Each row with its token ids masked, followed by two arrays: the original
      token ids (a copy: the MLM labels) and the token weights (float32,
      Trax's were float64; ``1 / round(masking_prob * n)`` at the selected
      positions, 0 elsewhere, so they sum to 1). E.g. ``(masked_ids,
      segment_ids, nsp_label, nsp_weight, original_ids, weights)``. The input arrays are not modified
      (Trax masked them in place).

    >>> ids = np.array([101, 1000, 1001, 1002, 1003, 102])
    >>> masked, original, weights = next(mask_random_tokens(iter([(ids,)]), masking_prob=0.5, rng=0))
    >>> original.tolist(), int((weights > 0).sum()), float(weights.sum())
    ([101, 1000, 1001, 1002, 1003, 102], 2, 1.0)
    >>> masked[[0, -1]].tolist()  # [CLS] and [SEP] are never selected
    [101, 102]
    """
    where = "mask_random_tokens"
    explicit_vocab_size = _check_int(where, "explicit_vocab_size", explicit_vocab_size, 1)
    cls_id, sep_id, mask_id = (_check_int(where, name, value) for name, value in
                               (("cls_id", cls_id), ("sep_id", sep_id), ("mask_id", mask_id)))
    vocab_start_id = _check_int(where, "vocab_start_id", vocab_start_id, 0)
    if vocab_start_id >= explicit_vocab_size:
        raise ValueError(f"{_PREFIX}{where}: expected vocab_start_id < explicit_vocab_size (the random "
                         f"replacements are drawn from [vocab_start_id, explicit_vocab_size)), got "
                         f"vocab_start_id={vocab_start_id}, explicit_vocab_size={explicit_vocab_size}.")
    if isinstance(masking_prob, bool) or not isinstance(masking_prob, numbers.Real) or not 0 <= masking_prob <= 1:
        raise ValueError(f"{_PREFIX}{where}: expected masking_prob in [0, 1], got {masking_prob!r}.")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(None if rng is None else _check_int(where, "rng (a seed)", rng, 0))
    return _masked_stream(batch, explicit_vocab_size, float(masking_prob), cls_id, sep_id, mask_id,
                          vocab_start_id, rng)


def _masked_stream(batch, vocab_size, masking_prob, cls_id, sep_id, mask_id, vocab_start_id, rng):
    where = "mask_random_tokens"
    for row in batch:
        if not isinstance(row, (tuple, list)) or not row:
            raise ValueError(f"{_PREFIX}{where}: expected rows to be tuples whose first element is the "
                             f"token ids, e.g. (token_ids,), got {describe(row)}.")
        token_ids, *rest = row
        token_ids = _tokens(where, token_ids, "the token ids (the first element of a row)")
        special = (token_ids == cls_id) | (token_ids == sep_id) | (token_ids == 0)
        viable = np.flatnonzero(~special)
        n_selected = round(masking_prob * viable.shape[0])
        if n_selected == 0:
            continue  # too short to select any token at this rate (Trax drops the row)
        selected = rng.choice(viable, n_selected, replace=False)
        weights = np.zeros(token_ids.shape, np.float32)
        weights[selected] = 1 / n_selected
        scores = rng.random(n_selected)
        masked = token_ids.copy()
        masked[selected[scores < 0.8]] = mask_id
        replaced = selected[(0.8 <= scores) & (scores < 0.9)]
        masked[replaced] = rng.integers(vocab_start_id, vocab_size, replaced.shape[0])
        # (the remaining 10% keep their token)
        yield (masked, *rest, token_ids.copy(), weights)


# -------------------------------------------------------- text from TFDS


# T5 ends a sentence after each run of '.', '!' and '?'.
_SENTENCE_END = re.compile(r"(?<=[.!?])(?![.!?])")


def _sentences(line):
    """`line` split after each run of sentence-ending punctuation, stripped, empty ones dropped."""
    return [s for s in (piece.strip() for piece in _SENTENCE_END.split(line)) if s]


def _text_pairs(text):
    """``(sentence, next sentence)`` within each non-empty line of `text` (T5's
    ``neighboring_pairs`` with ``reuse_sentences=True``): A B C -> (A, B), (B, C)."""
    pairs = []
    for line in text.split("\n"):
        sentences = _sentences(line)
        pairs += zip(sentences[:-1], sentences[1:])
    return pairs


def _each_output(texts, outputs_of, max_idle, where, what):
    """``outputs_of(text)`` (a list) for each of `texts`, yielded in turn.

    `max_idle` (None: no limit) bounds the texts in a row that may give no
    output: a repeating stream of texts none of which gives any would loop
    forever without yielding, so that is an error instead.
    """
    idle = 0
    for text in texts:
        outputs = outputs_of(text)
        if outputs:
            idle = 0
            yield from outputs
            continue
        idle += 1
        if max_idle is not None and idle >= max_idle:
            raise ValueError(f"{_PREFIX}{where}: the dataset gave no {what} in {idle} texts in a row, "
                             f"a whole pass over it at least: none of its texts has any, so the "
                             f"repeating stream would never yield one.")


def _nsp_examples(pairs, rng):
    """Pairs two at a time: both kept ('next') or, half the time, their second
    sentences swapped ('not next'), as T5's ``next_sentence_prediction``."""
    while True:
        couple = list(itertools.islice(pairs, 2))
        if len(couple) < 2:
            return  # (an odd pair at the end of a finite stream is dropped, as T5's batch(2))
        (first0, second0), (first1, second1) = couple
        if rng.random() < 0.5:
            yield first0, second0, True
            yield first1, second1, True
        else:
            yield first0, second1, False
            yield first1, second0, False


def _random_chunks(text, num_tokens, rng, min_words=16, max_words_total=8192):
    """`text`'s words in consecutive chunks of one random length (T5's ``random_split_text``).

    The length is log-uniform in ``[min(min_words, num_tokens), num_tokens]``;
    the last chunk may be shorter. A text of more than `max_words_total` words
    keeps one of its `max_words_total`-word blocks, chosen at random.
    """
    words = text.split()
    if len(words) > max_words_total:
        block = int(rng.integers(math.ceil(len(words) / max_words_total)))
        words = words[block * max_words_total:(block + 1) * max_words_total]
    low = min(min_words, num_tokens)
    length = int(math.exp(rng.uniform(math.log(low), math.log(num_tokens)))) if low < num_tokens else num_tokens
    length = min(max(length, low), num_tokens)  # (exp(log(x)) may round just past x)
    return [" ".join(words[start:start + length]) for start in range(0, len(words), length)]


def _text_stream(where, dataset_name, data_dir, text_key, train, seed, download, repeat):
    """``(texts, max_idle)``: the stream function of `pax_trax.data.TFDS` of `text_key` as
    ``str`` (its errors name `where` too), and, if it repeats, twice the size of the
    dataset's largest split (more texts in a row than that include a whole pass)."""
    from pax_trax.data.tfds import TFDS  # (TFDS's modules import TensorFlow lazily)
    from pax_trax.data.tfds_prepare import _prepared_builder

    if not isinstance(text_key, str):
        raise TypeError(f"{_PREFIX}{where}: expected text_key to be a feature name (str), got {text_key!r}.")
    try:
        stream = TFDS(dataset_name, data_dir=data_dir, keys=(text_key,), train=train, download=download,
                      repeat=repeat, shuffle_seed=seed, decode_text=True)
    except (KeyError, ValueError, TypeError, FileNotFoundError) as err:
        message = err.args[0] if err.args else str(err)
        message = f"{_PREFIX}{where}: cannot read text {text_key!r} of dataset {dataset_name!r}: {message}"
        try:
            renamed = type(err)(message)  # the same kind of error, naming this function
        except Exception:  # (a subclass with another constructor)
            renamed = ValueError(message)
        raise renamed from err

    def texts():
        for (text,) in stream():
            if not isinstance(text, str):
                raise TypeError(f"{_PREFIX}{where}: expected feature {text_key!r} of dataset "
                                f"{dataset_name!r} to be text, got {describe(text)}.")
            yield text

    max_idle = None
    if repeat:  # (TFDS found the dataset prepared: this reads its info again, no data)
        builder, _ = _prepared_builder(dataset_name, data_dir, False, _PREFIX + where)
        max_idle = 2 * max(split.num_examples for split in builder.info.splits.values())
    return texts, max_idle


def _check_seed(where, seed):
    if seed is not None:
        _check_int(where, "seed", seed, 0)
    return seed


def BertNextSentencePredictionInputs(  # noqa: N802 (Trax name)
    dataset_name,
    data_dir=None,
    text_key="text",
    train=True,
    shuffle_size=50000,
    *,
    seed=None,
    download=True,
    repeat=True,
):
    """Defines a stream for the next sentence prediction task.

    Reads the texts of `dataset_name` (`pax_trax.data.TFDS`), splits each into
    lines and each line into sentences (after each run of ``.``, ``!``,
    ``?``), takes every pair of neighbouring sentences of a line, shuffles the
    pairs in a buffer of `shuffle_size`, and takes them two at a time: with
    probability 1/2 both are yielded as they are (``is_next`` True), otherwise
    their second sentences are exchanged (``is_next`` False for both), as T5's
    ``next_sentence_prediction`` (which Trax used; ``t5`` is not needed here).

    Args:
      dataset_name: a TFDS dataset name (see `pax_trax.data.TFDS`).
      data_dir: its data directory (None: TFDS's default).
      text_key: the text feature to read.
      train: read the training split (else the eval split).
      shuffle_size: the size of the shuffle buffer of sentence pairs.
      seed: pax_trax addition: an int makes the stream reproducible (the TFDS
        shuffle, the pair shuffle and the coin flips); None: fresh entropy.
      download: pax_trax addition, passed to `pax_trax.data.TFDS` (use False
        for a dataset prepared in `data_dir`).
      repeat: pax_trax addition: True (Trax) repeats the data forever; False
        gives one pass. A repeating stream over texts none of which has two
        sentences in a line raises ValueError (it would never yield a pair).

    Returns:
      A stream function: ``f(generator=None)`` returns an iterator of
      ``(sentence1, sentence2, is_next)``, two ``str`` and a ``bool``. (Trax's
      ``is_next`` compared bytes with a str and was always False.)

    >>> stream = BertNextSentencePredictionInputs('wiki40b/en', data_dir='/data/tfds',
    ...                                           download=False, seed=0)  # doctest: +SKIP
    >>> next(stream())  # doctest: +SKIP
    ('It opened in 1906.', 'The station closed in 1962.', True)
    """
    where = "BertNextSentencePredictionInputs"
    shuffle_size = _check_int(where, "shuffle_size", shuffle_size, 1)
    seed = _check_seed(where, seed)
    texts, max_idle = _text_stream(where, dataset_name, data_dir, text_key, train, seed, download, repeat)

    def nsp_stream(generator=None):
        del generator  # a source: its argument is ignored, as in Trax
        from pax_trax.data.combinators import _shuffle

        shuffle_rng, coin_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        pairs = _each_output(texts(), _text_pairs, max_idle, where, "pair of neighboring sentences")
        return _nsp_examples(_shuffle(pairs, shuffle_size, shuffle_rng), coin_rng)

    return nsp_stream


def CorpusToRandomChunks(  # noqa: N802 (Trax name)
    dataset_name,
    num_tokens=512,
    train=True,
    *,
    data_dir=None,
    text_key="text",
    seed=None,
    download=True,
    repeat=True,
    decode_text=False,
):
    """A stream of the texts of `dataset_name` cut into chunks of at most `num_tokens` words.

    Each text is split on whitespace and cut into consecutive chunks of one
    length drawn for that text, log-uniformly between 16 and `num_tokens`
    words (exactly `num_tokens` if that is less than 16: T5 then drew lengths
    between `num_tokens` and 16, above the maximum); the last chunk may be
    shorter. A text of more than 8,192 words keeps only one of its 8,192-word
    blocks, chosen at random. As T5's ``random_split_text`` with ``max_words_per_segment=num_tokens``
    (which Trax used; ``t5`` is not needed here).

    Args:
      dataset_name: a TFDS dataset name (see `pax_trax.data.TFDS`).
      num_tokens: the largest number of words in a chunk.
      train: read the training split (else the eval split).
      data_dir: pax_trax addition: the data directory (Trax always used TFDS's default).
      text_key: pax_trax addition: the text feature to read (Trax: ``'text'``).
      seed: pax_trax addition: an int makes the stream reproducible (the TFDS
        shuffle and the lengths); None: fresh entropy.
      download: pax_trax addition, passed to `pax_trax.data.TFDS`.
      repeat: pax_trax addition: True (Trax) repeats the data forever; False
        gives one pass. A repeating stream over texts none of which has a
        word raises ValueError (it would never yield a chunk).
      decode_text: pax_trax addition: False gives chunks as UTF-8 ``bytes``
        (as Trax, from TFDS); True as ``str``.

    Returns:
      A stream function: ``f(generator=None)`` returns an iterator of 1-tuples
      ``(chunk,)``, the chunk's words joined by single spaces.

    >>> stream = CorpusToRandomChunks('wiki40b/en', num_tokens=128, data_dir='/data/tfds',
    ...                               download=False, seed=0)  # doctest: +SKIP
    >>> next(stream())  # doctest: +SKIP
    (b'The station opened in 1906 ...',)
    """
    where = "CorpusToRandomChunks"
    num_tokens = _check_int(where, "num_tokens", num_tokens, 1)
    seed = _check_seed(where, seed)
    texts, max_idle = _text_stream(where, dataset_name, data_dir, text_key, train, seed, download, repeat)

    def chunk_stream(generator=None):
        del generator  # a source: its argument is ignored, as in Trax
        # (an offset seed: the lengths do not replay the TFDS shuffle's draws)
        rng = np.random.default_rng(None if seed is None else [seed, 1])
        for chunk in _each_output(texts(), lambda text: _random_chunks(text, num_tokens, rng), max_idle,
                                  where, "words"):
            yield (chunk,) if decode_text else (chunk.encode("utf-8"),)

    return chunk_stream
