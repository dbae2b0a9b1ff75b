"""Text-to-text preprocessing of ``tf.data`` datasets (C4 and T5-style text): Trax's
`c4_preprocess`, `c4_bare_preprocess_fn` and `generic_text_dataset_preprocess_fn`
of ``trax.data.tf_inputs``.

They take and return a ``tf.data.Dataset`` (use them as ``preprocess_fn`` or
``bare_preprocess_fn`` of `pax_trax.data.data_streams`, or as
``tfds_preprocess_fn`` of `pax_trax.data.TFDS`). Tokenization is
SentencePiece through tensorflow-text's ``SentencepieceTokenizer`` (no BOS,
no EOS added, as T5's vocabulary): the model is given by ``spm_path``, a
local path (or any ``tf.io.gfile`` path). Trax's default, T5's 32k model on
Google Cloud Storage, is not reachable here, so ``spm_path`` is required
wherever a SentencePiece model is used. Token ids are int64.

Differences from Trax 1.4.1: Trax built `c4_bare_preprocess_fn` and
`generic_text_dataset_preprocess_fn` on the ``t5`` library (not used here);
the T5 preprocessors that `c4_bare_preprocess_fn` ran between tokenizing and
adding EOS (none unless configured with gin) are the keyword-only
``preprocessors`` argument; the debug printing samples each example (Trax
drew one random number when the function was traced, so it printed all
examples or none) and goes to standard error (Trax's absl INFO log is
silenced by tensorflow-text). ``get_t5_preprocessor_by_name`` is not provided: it
looks up functions in T5's own registry of preprocessors.

>>> tf = _tf("doctest")
>>> ds = tf.data.Dataset.from_tensor_slices({"text": ["hé", "hello"]}).map(lambda x: (x, x["text"]))
>>> [t.tolist() for _, t in c4_preprocess(ds, training=True, max_target_length=3).as_numpy_iterator()]
[[104, 233]]
"""

from __future__ import annotations

import numbers
import sys

from pax_trax.data import _lazy

__all__ = [
    "c4_preprocess",
    "c4_bare_preprocess_fn",
    "generic_text_dataset_preprocess_fn",
]

EOS_ID = 1  # T5's (and train_sentencepiece's) end-of-sequence id
_TOKENIZED_KEYS = ("inputs", "targets")


def _tf(where):
    return _lazy.tensorflow(f"pax_trax.data.{where}")


def _check_dataset(tf, dataset, where):
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"pax_trax.data.{where}: expected a tf.data.Dataset, got {type(dataset).__name__}.")


def _check_dict_spec(spec, where, needed, what="examples"):
    if not isinstance(spec, dict):
        raise ValueError(f"pax_trax.data.{where}: expected {what} that are dicts of features, got {spec}.")
    missing = [key for key in needed if key not in spec]
    if missing:
        raise ValueError(f"pax_trax.data.{where}: expected {what} with feature(s) {missing}, "
                         f"got features {sorted(spec)}.")


def _spm_tokenizer(tf, spm_path, where):
    """A function: string tensor -> its int64 ids, by tensorflow-text's SentencepieceTokenizer
    of the model at `spm_path`."""
    if spm_path is None:
        raise ValueError(f"pax_trax.data.{where}: spm_path is required: the path of a local SentencePiece "
                         ".model (Trax's default, T5's gs://t5-data/vocabs/cc_all.32000/sentencepiece.model, "
                         "is not downloaded here; pax_trax.data.train_sentencepiece makes one from local text).")
    if not isinstance(spm_path, str):
        raise TypeError(f"pax_trax.data.{where}: expected spm_path to be a str path, got {spm_path!r}.")
    if not tf.io.gfile.exists(spm_path):
        raise FileNotFoundError(f"pax_trax.data.{where}: no SentencePiece model at spm_path={spm_path!r}.")
    with tf.io.gfile.GFile(spm_path, "rb") as f:
        model = f.read()
    tf_text = _lazy.tensorflow_text(f"pax_trax.data.{where}")
    try:
        tokenizer = tf_text.SentencepieceTokenizer(model=model)
    except Exception as err:  # the op's own error types vary (InternalError, InvalidArgumentError)
        raise ValueError(f"pax_trax.data.{where}: {spm_path!r} is not a SentencePiece model ({err}).") from err
    return lambda text: tf.cast(tokenizer.tokenize(text), tf.int64)


# ------------------------------------------------------------- c4_preprocess


def c4_preprocess(dataset, training, max_target_length=-1, tokenization=None, spm_path=None):
    """Pre-processing function for C4 dataset.

    Maps ``(features, targets)`` pairs (as `pax_trax.data.data_streams` gives
    its ``preprocess_fn``) to ``(features, tokens)`` where ``tokens``, the
    int64 tokens of ``features['text']``, are also set as
    ``features['inputs']`` and ``features['targets']``.

    Args:
      dataset: a ``tf.data.Dataset`` of ``(features, targets)``; `features`
        has a string feature ``'text'``.
      training: unused (the same processing for training and eval, as Trax).
      max_target_length: if positive, examples with more tokens are dropped.
      tokenization: None: the Unicode code points of the text; ``'spc'``:
        SentencePiece tokens of the model at `spm_path`.
      spm_path: the SentencePiece model for ``tokenization='spc'`` (required
        then).

    Returns:
      The processed ``tf.data.Dataset``.

    >>> tf = _tf("doctest")
    >>> ds = tf.data.Dataset.from_tensor_slices({"text": ["abc"]}).map(lambda x: (x, x["text"]))
    >>> features, targets = next(c4_preprocess(ds, training=False).as_numpy_iterator())
    >>> targets.tolist(), sorted(features)
    ([97, 98, 99], ['inputs', 'targets', 'text'])
    """
    where = "c4_preprocess"
    tf = _tf(where)
    _check_dataset(tf, dataset, where)
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise ValueError(f"pax_trax.data.{where}: expected (features, targets) pairs, got elements {spec}.")
    _check_dict_spec(spec[0], where, ["text"], "features")
    if tokenization not in (None, "spc"):
        raise ValueError(f"pax_trax.data.{where}: expected tokenization None (characters) or 'spc' "
                         f"(SentencePiece), got {tokenization!r}.")
    if isinstance(max_target_length, bool) or not isinstance(max_target_length, numbers.Integral):
        raise TypeError(f"pax_trax.data.{where}: expected an int max_target_length, got {max_target_length!r}.")
    max_target_length = int(max_target_length)

    if tokenization == "spc":
        tokenize = _spm_tokenizer(tf, spm_path, where)
    else:
        def tokenize(text):
            return tf.cast(tf.strings.unicode_decode(text, "UTF-8"), tf.int64)

    def with_tokens(features, targets):
        del targets
        tokens = tokenize(features["text"])
        return {**features, "inputs": tokens, "targets": tokens}, tokens

    dataset = dataset.map(with_tokens)
    if max_target_length > 0:
        dataset = dataset.filter(lambda _, tokens: tf.shape(tokens)[0] <= max_target_length)
    return dataset


# ------------------------------------------------------ c4_bare_preprocess_fn


def _check_len_map(sequence_length, where):
    if sequence_length is None:
        return None
    if not isinstance(sequence_length, dict):
        raise TypeError(f"pax_trax.data.{where}: expected sequence_length to be None or a dict such as "
                        f"{{'inputs': 512, 'targets': 114}}, got {sequence_length!r}.")
    for key, length in sequence_length.items():
        if key not in _TOKENIZED_KEYS:
            raise ValueError(f"pax_trax.data.{where}: expected sequence_length keys among "
                             f"{list(_TOKENIZED_KEYS)}, got {key!r}.")
        if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 1:
            raise ValueError(f"pax_trax.data.{where}: expected sequence_length[{key!r}] to be a positive "
                             f"int, got {length!r}.")
    return {key: int(length) for key, length in sequence_length.items()}


def _tokenize_features(tf, dataset, tokenizer, copy_pretokenized):
    """T5's ``tokenize``: string 'inputs'/'targets' become int64 tokens, optionally keeping
    the text as '<key>_pretokenized'."""
    def encode(features):
        out = {}
        for key, value in features.items():
            if key in _TOKENIZED_KEYS and value.dtype == tf.string:
                if copy_pretokenized:
                    out[f"{key}_pretokenized"] = value
                value = tokenizer(value)
            out[key] = value
        return out

    return dataset.map(encode, num_parallel_calls=tf.data.AUTOTUNE)


def c4_bare_preprocess_fn(dataset, training=True, spm_path=None, copy_pretokenized=True, sequence_length=None,
                          *, preprocessors=None):
    """Returns a dataset that contains 'inputs' and 'targets' from C4.

    Each example ``{'text': ..., ...}`` becomes ``{'targets': tokens of the
    text + [EOS], 'inputs': []}`` (T5's ``rekey``: inputs are the empty
    string), with ``'targets_pretokenized'`` / ``'inputs_pretokenized'`` (the
    texts) if `copy_pretokenized`. With `sequence_length`, features are then
    truncated to those lengths and padded with 0 to them (every example the
    same shape), in training and eval.

    Args:
      dataset: a ``tf.data.Dataset`` of dicts with a string feature ``'text'``.
      training: whether this is training data (the same processing either way).
      spm_path: the SentencePiece model (required here).
      copy_pretokenized: keep the texts as ``'<key>_pretokenized'``.
      sequence_length: None, or a dict of lengths for ``'inputs'`` and/or
        ``'targets'``, e.g. ``{'inputs': 512, 'targets': 114}``.
      preprocessors: pax_trax addition: functions ``(dataset, sequence_length)
        -> dataset`` applied to the tokenized examples before EOS is added
        (Trax ran T5's ``unsupervised`` preprocessors, none by default).

    Returns:
      The processed ``tf.data.Dataset``.

    >>> import os, tempfile
    >>> from pax_trax.data.vocabularies import train_sentencepiece
    >>> spm_path = train_sentencepiece(["the cat sat on the mat", "the dog sat on the log"] * 5,
    ...                                os.path.join(tempfile.mkdtemp(), "tiny.model"), vocab_size=19)
    >>> tf = _tf("doctest")
    >>> ds = tf.data.Dataset.from_tensor_slices({"text": ["the cat"]})
    >>> x = next(c4_bare_preprocess_fn(ds, spm_path=spm_path,
    ...                                sequence_length={"inputs": 2, "targets": 10}).as_numpy_iterator())
    >>> x["targets"].tolist(), x["inputs"].tolist(), x["targets_pretokenized"]
    ([3, 4, 6, 5, 3, 13, 7, 1, 0, 0], [0, 0], b'the cat')
    """
    where = "c4_bare_preprocess_fn"
    tf = _tf(where)
    _check_dataset(tf, dataset, where)
    _check_dict_spec(dataset.element_spec, where, ["text"])
    sequence_length = _check_len_map(sequence_length, where)
    preprocessors = _check_fns(preprocessors, where, "preprocessors")
    tokenizer = _spm_tokenizer(tf, spm_path, where)

    dataset = dataset.map(lambda x: {"targets": x["text"], "inputs": tf.constant("")})
    dataset = _tokenize_features(tf, dataset, tokenizer, copy_pretokenized)
    for fn in preprocessors:
        dataset = fn(dataset, sequence_length)

    def add_eos(x):
        return {**x, "targets": tf.concat([x["targets"], tf.constant([EOS_ID], x["targets"].dtype)], 0)}

    dataset = dataset.map(add_eos)
    if sequence_length:
        def truncate_and_pad(x):
            x = dict(x)
            for key, length in sequence_length.items():
                value = x[key][:length]
                x[key] = tf.pad(value, [[0, length - tf.shape(value)[0]]])
            return x

        dataset = dataset.map(truncate_and_pad)
    return dataset


# ------------------------------------------ generic_text_dataset_preprocess_fn


def _check_fns(fns, where, name):
    if fns is None:
        return []
    if callable(fns) or not isinstance(fns, (list, tuple)):
        raise TypeError(f"pax_trax.data.{where}: expected {name} to be None or a list of functions, got {fns!r}.")
    for i, fn in enumerate(fns):
        if not callable(fn):
            raise TypeError(f"pax_trax.data.{where}: expected {name}[{i}] to be a function, got {fn!r}.")
    return list(fns)


def _debug_print(tf, dataset, rate, select):
    def maybe_print(x):
        def print_it():
            # Trax printed to absl's INFO log; once tensorflow-text is loaded the
            # C++ INFO log that tf.print sends it to is silent, so: stderr.
            tf.print(select(x), output_stream=sys.stderr)
            return tf.constant(True)

        tf.cond(tf.random.uniform([]) < rate, print_it, lambda: tf.constant(False))
        return x

    return dataset.map(maybe_print)


def generic_text_dataset_preprocess_fn(
    dataset,
    training=True,
    text_preprocess_fns=None,
    token_preprocess_fns=None,
    spm_path=None,
    copy_pretokenized=False,
    debug_print_examples=False,
    debug_print_examples_rate=0.01,
):
    """Pre-processes, tokenizes and post-processes a `tf.data.Dataset`.

    Args:
      dataset: `tf.data.Dataset` to process.
      training: boolean, set to True if training, False otherwise.
      text_preprocess_fns: None or list of callables: `tf.data.Dataset`, bool
        -> `tf.data.Dataset` this operates before tokenization. Typically used
        to select which fields we want to learn over or change something into
        "text to text" form.
      token_preprocess_fns: None or list of callables: `tf.data.Dataset`, bool
        -> `tf.data.Dataset`, this operates after tokenization. Since this can
        view the tokenized fields, this can be used to filter on length etc.
      spm_path: str, path to a sentencepiece model to use for tokenization
        (required here: T5's default 32k vocabulary is not available offline).
      copy_pretokenized: bool, if True retains the original fields after
        tokenization (as ``'inputs_pretokenized'``, ``'targets_pretokenized'``).
      debug_print_examples: bool, if True this prints examples to the logging
        stream (here: standard error, with ``tf.print``) for inspection, both
        before and after tokenization.
      debug_print_examples_rate: float, [0, 1.0], on average this fraction of
        dataset examples will be printed out in each phase i.e. pre and post
        tokenization.

    Returns:
      a `tf.data.Dataset` with all the preprocessing and tokenization
      performed: the string features ``'inputs'`` and ``'targets'`` (those
      present after `text_preprocess_fns`) are int64 SentencePiece tokens.

    >>> import os, tempfile
    >>> from pax_trax.data.vocabularies import train_sentencepiece
    >>> spm_path = train_sentencepiece(["the cat sat on the mat", "the dog sat on the log"] * 5,
    ...                                os.path.join(tempfile.mkdtemp(), "tiny.model"), vocab_size=19)
    >>> tf = _tf("doctest")
    >>> ds = tf.data.Dataset.from_tensor_slices({"question": ["who sat"], "answer": ["the dog"]})
    >>> to_text2text = lambda ds, training: ds.map(lambda x: {"inputs": x["question"], "targets": x["answer"]})
    >>> x = next(generic_text_dataset_preprocess_fn(ds, text_preprocess_fns=[to_text2text],
    ...                                             spm_path=spm_path).as_numpy_iterator())
    >>> x["inputs"].tolist(), x["targets"].tolist()
    ([3, 2, 6, 9, 3, 10, 7], [3, 4, 6, 5, 3, 11, 12])
    """
    where = "generic_text_dataset_preprocess_fn"
    tf = _tf(where)
    _check_dataset(tf, dataset, where)
    text_preprocess_fns = _check_fns(text_preprocess_fns, where, "text_preprocess_fns")
    token_preprocess_fns = _check_fns(token_preprocess_fns, where, "token_preprocess_fns")
    if isinstance(debug_print_examples_rate, bool) or not isinstance(debug_print_examples_rate, numbers.Real) \
            or not 0 <= debug_print_examples_rate <= 1:
        raise ValueError(f"pax_trax.data.{where}: expected debug_print_examples_rate in [0, 1], "
                         f"got {debug_print_examples_rate!r}.")
    tokenizer = _spm_tokenizer(tf, spm_path, where)

    for fn in text_preprocess_fns:
        dataset = fn(dataset, training)
    _check_dataset(tf, dataset, where + " (after text_preprocess_fns)")
    _check_dict_spec(dataset.element_spec, where, [], "examples (after text_preprocess_fns)")
    if debug_print_examples:
        dataset = _debug_print(tf, dataset, debug_print_examples_rate, lambda x: x)
    dataset = _tokenize_features(tf, dataset, tokenizer, copy_pretokenized)
    for fn in token_preprocess_fns:
        dataset = fn(dataset, training)
    if debug_print_examples:
        def shapes_and_tokens(x):
            return {"inputs_shape": tf.size(x["inputs"]), "targets_shape": tf.size(x["targets"]),
                    "inputs": x["inputs"], "targets": x["targets"]}

        dataset = _debug_print(tf, dataset, debug_print_examples_rate, shapes_and_tokens)
    return dataset
