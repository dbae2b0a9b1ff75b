"""GLUE benchmarks as `pax_trax.data` streams: Trax's ``BertGlue*`` and ``T5Glue*``
functions of ``trax.data.tf_inputs``.

Each stream reads the TFDS dataset ``glue/<benchmark>`` with
`pax_trax.data.TFDS` (prepare it first, e.g. with
`pax_trax.data.download_and_prepare`, or pass ``download=True``):

* ``BertGlue*Stream``: the benchmark's text fields are tokenized (a BERT
  WordPiece vocabulary by default), joined by `CreateBertInputs` into
  ``[CLS] a [SEP] (b [SEP])`` with segment ids, shuffled, padded and truncated
  to ``max_length`` and batched: batches of ``(token_ids, segment_ids,
  segment_ids, labels, weights)``.
* ``T5Glue*Stream``: each example is written in T5's text-to-text form (T5's
  ``preprocessors.glue``: the benchmark's name, then ``"<feature>: <text>"``
  for each text feature in sorted order; the target is the label's name) and
  tokenized with a local SentencePiece model (``spm_path``): batches of
  ``(input_ids, target_ids, target_weights)``.

>>> _t5_glue_texts({"sentence1": "A cat.", "sentence2": "A dog.", "label": 1, "idx": 3}, "rte")
('rte sentence1: A cat. sentence2: A dog.', 'not_entailment')
>>> _t5_glue_texts({"sentence1": "A", "sentence2": "B", "label": 3.33, "idx": 0}, "stsb")
('stsb sentence1: A sentence2: B', '3.4')

A benchmark id names a benchmark and a split: ``'cola_t'`` (training),
``'rte_e'`` (validation), ``'mnli_e2'`` (MNLI's alternate eval,
``validation_mismatched``; ``'mnli_e'`` is ``validation_matched``).

Differences from Trax 1.4.1, whose versions only ran with gin settings (and
some not at all): the lengths, batch size, vocabulary and data directory are
keyword-only arguments here, with defaults; the Bert streams read the labels
too and join one or two sentences as the benchmark has (Trax read no labels
and always joined two); the T5 streams tokenize inputs and targets with
SentencePiece (Trax's T5 library is not used; there is no default T5
vocabulary offline, so ``spm_path`` is required) and their weights count
target tokens (Trax's counted the target's bytes); ``stsb`` and ``wnli`` use
T5's own targets (the similarity rounded to 0.2, and wnli's label names;
Trax's table had sentence names there); `T5GlueEvalTasks` also accepts
training ids (``'cola_t'``, which Trax's docs allow but its code rejected)
and names their metrics ``'<Name>_train ...'``.
"""

from __future__ import annotations

import numpy as np

from pax_trax.data.batching import Batch
from pax_trax.data.combinators import Parallel, Serial, Shuffle
from pax_trax.data.preprocessing import PadToLength, TruncateToLength
from pax_trax.data.tfds import TFDS
from pax_trax.data.tokenizers import Tokenize
from pax_trax.data.vocabularies import as_text, load_vocabulary

__all__ = [
    "BertGlueTrainStream",
    "BertGlueEvalStream",
    "T5GlueTrainStream",
    "T5GlueTrainStreamsParallel",
    "T5GlueEvalStream",
    "T5GlueEvalStreamsParallel",
    "T5GlueEvalTasks",
]

# The text features of each benchmark, in Trax's order (the Bert streams'
# order of sentences). The T5 format sorts them by name, as T5 does.
GLUE_KEYS = {
    "cola": ("sentence",),
    "sst2": ("sentence",),
    "mrpc": ("sentence1", "sentence2"),
    "qqp": ("question1", "question2"),
    "stsb": ("sentence1", "sentence2"),
    "mnli": ("premise", "hypothesis"),
    "qnli": ("question", "sentence"),
    "rte": ("sentence1", "sentence2"),
    "wnli": ("sentence1", "sentence2"),
}

# The label names of TFDS's glue ClassLabels, which T5 uses as targets
# (stsb's label is a float similarity; see _stsb_target).
GLUE_LABELS = {
    "cola": ("unacceptable", "acceptable"),
    "sst2": ("negative", "positive"),
    "mrpc": ("not_equivalent", "equivalent"),
    "qqp": ("not_duplicate", "duplicate"),
    "stsb": None,
    "mnli": ("entailment", "neutral", "contradiction"),
    "qnli": ("entailment", "not_entailment"),
    "rte": ("entailment", "not_entailment"),
    "wnli": ("not_entailment", "entailment"),
}

_MODES = ("t", "e", "e2")


# ------------------------------------------------------------ benchmark ids


def _check_benchmark(benchmark, where):
    if not isinstance(benchmark, str):
        raise TypeError(f"{where}: expected a GLUE benchmark name (str) such as 'cola', got {benchmark!r}.")
    if benchmark not in GLUE_KEYS:
        raise ValueError(f"{where}: expected a GLUE benchmark, one of {sorted(GLUE_KEYS)}, got {benchmark!r}.")
    return benchmark


def _ensure_eval_suffix(benchmark, where):
    """`benchmark` with ``'_e'`` appended unless it already ends in ``'_e'`` or ``'_e2'``."""
    if not isinstance(benchmark, str):
        raise TypeError(f"{where}: expected a GLUE benchmark name (str) such as 'cola', got {benchmark!r}.")
    return benchmark if benchmark.endswith(("_e", "_e2")) else benchmark + "_e"


def _parse_benchmark_id(benchmark_id, where):
    """``'mnli_e2'`` -> ``('mnli', 'e2')``, with clear errors."""
    if not isinstance(benchmark_id, str) or "_" not in benchmark_id:
        raise ValueError(f"{where}: expected a benchmark id such as 'cola_t', 'rte_e' or 'mnli_e2', "
                         f"got {benchmark_id!r}.")
    benchmark, mode = benchmark_id.rsplit("_", 1)
    _check_benchmark(benchmark, where)
    if mode not in _MODES:
        raise ValueError(f"{where}: expected a benchmark id ending in '_t' (train), '_e' (eval) or '_e2' "
                         f"(alternate eval), got {benchmark_id!r}.")
    if mode == "e2" and benchmark != "mnli":
        raise ValueError(f"{where}: only mnli has an alternate eval split ('mnli_e2'), got {benchmark_id!r}.")
    return benchmark, mode


def _glue_data(benchmark, mode, keys, where, data_dir, download, seed, decode_text):
    try:
        return TFDS(f"glue/{benchmark}", data_dir=data_dir, keys=keys, train=(mode == "t"),
                    use_alt_eval=(mode == "e2"), download=download, shuffle_seed=seed,
                    decode_text=decode_text)
    except (ValueError, FileNotFoundError) as err:  # e.g. not prepared in data_dir: say who asked
        raise type(err)(f"{where}: {err}") from err


def _check_positive(where, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: expected {name} to be a positive int, got {value!r}.")
    return int(value)


def _pad_and_batch(lengths, batch_size, seed, shuffle_queue_size):
    """Trax's ``Shuffle, PadToLength, TruncateToLength, Batch`` tail of the GLUE streams."""
    return [
        Shuffle(shuffle_queue_size, seed=seed),
        PadToLength(dict(lengths)),
        TruncateToLength({key: (length,) for key, length in lengths.items()}),
        Batch(batch_size),
    ]


# --------------------------------------------------------------------- Bert


def _bert_glue_stream(benchmark_id, where, *, data_dir, vocab_type, vocab_file, vocab_dir, max_length,
                      batch_size, cls_id, sep_id, seed, shuffle_queue_size, download):
    from pax_trax.data.bert_inputs import CreateBertInputs  # noqa: PLC0415 (sibling module)

    benchmark, mode = _parse_benchmark_id(benchmark_id, where)
    max_length = _check_positive(where, "max_length", max_length)
    batch_size = _check_positive(where, "batch_size", batch_size)
    if vocab_type != "char" and vocab_file is None:
        raise ValueError(f"{where}: vocab_file is required: the {vocab_type!r} vocabulary to tokenize "
                         f"{benchmark}'s text with (e.g. a BERT vocab.txt; Trax's default vocabularies "
                         "are not downloaded here).")
    text_keys = GLUE_KEYS[benchmark]
    n_texts = len(text_keys)
    glue_data = _glue_data(benchmark, mode, (*text_keys, "label"), where, data_dir, download, seed, False)
    return Serial(
        glue_data,
        Tokenize(keys=list(range(n_texts)), vocab_type=vocab_type, vocab_file=vocab_file, vocab_dir=vocab_dir),
        CreateBertInputs(double_sentence=(n_texts == 2), labeled=True, cls_id=cls_id, sep_id=sep_id),
        *_pad_and_batch({0: max_length, 1: max_length, 2: max_length}, batch_size, seed, shuffle_queue_size),
    )


def BertGlueTrainStream(  # noqa: N802 (Trax name)
    benchmark,
    *,
    data_dir=None,
    vocab_type="bert",
    vocab_file=None,
    vocab_dir=None,
    max_length=128,
    batch_size=32,
    cls_id=101,
    sep_id=102,
    seed=0,
    shuffle_queue_size=1024,
    download=True,
):
    """Returns a Bert-preprocessed training stream for `benchmark`.

    Args:
      benchmark: Simple lower-case name of a GLUE benchmark, e.g., ``'cola'``,
        ``'mnli'``, ``'rte'``.
      data_dir: pax_trax addition: the TFDS data directory of ``glue/<benchmark>``.
      vocab_type: pax_trax addition: the `pax_trax.data.Tokenize` vocabulary
        type (``'bert'``, ``'bert-lowercase'``, ``'subword'``,
        ``'sentencepiece'``, ``'char'``).
      vocab_file: pax_trax addition: the vocabulary file (required unless
        `vocab_type` is ``'char'``); `vocab_dir` its directory, if not a path.
      max_length: pax_trax addition: every example is padded with 0 and
        truncated to this many tokens.
      batch_size: pax_trax addition: examples per batch.
      cls_id: pax_trax addition: the id of ``[CLS]``, put first.
      sep_id: pax_trax addition: the id of ``[SEP]``, put after each sentence.
      seed: pax_trax addition: seeds the reading order and the shuffle (None:
        fresh entropy).
      shuffle_queue_size: pax_trax addition: the `Shuffle` buffer.
      download: pax_trax addition: as `pax_trax.data.TFDS`.

    Returns:
      A stream function; its stream yields batches ``(token_ids, segment_ids,
      segment_ids, labels, weights)``: int arrays ``(batch_size, max_length)``
      (segment 1 is the second sentence), the labels and ones.

    >>> batches = BertGlueTrainStream('rte', data_dir='/data/tfds', vocab_file='vocab.txt',
    ...                               max_length=64, batch_size=8)()  # doctest: +SKIP
    >>> [x.shape for x in next(batches)]  # doctest: +SKIP
    [(8, 64), (8, 64), (8, 64), (8,), (8,)]
    """
    where = "pax_trax.data.BertGlueTrainStream"
    _check_benchmark(benchmark, where)
    return _bert_glue_stream(benchmark + "_t", where, data_dir=data_dir, vocab_type=vocab_type,
                             vocab_file=vocab_file, vocab_dir=vocab_dir, max_length=max_length,
                             batch_size=batch_size, cls_id=cls_id, sep_id=sep_id, seed=seed,
                             shuffle_queue_size=shuffle_queue_size, download=download)


def BertGlueEvalStream(  # noqa: N802 (Trax name)
    benchmark,
    *,
    data_dir=None,
    vocab_type="bert",
    vocab_file=None,
    vocab_dir=None,
    max_length=128,
    batch_size=32,
    cls_id=101,
    sep_id=102,
    seed=0,
    shuffle_queue_size=1024,
    download=True,
):
    """Returns a Bert-preprocessed eval data stream for `benchmark`.

    Args:
      benchmark: Simple lower-case name of a GLUE benchmark, e.g., ``'cola'``,
        ``'mnli'``, ``'rte'``. If the benchmark includes an alternate eval
        (e.g., MNLI's "mismatched" eval/validation split), you can specify it
        with an ``'_e2'`` suffix, e.g., ``'mnli_e2'``.
      data_dir, vocab_type, vocab_file, vocab_dir, max_length, batch_size,
      cls_id, sep_id, seed, shuffle_queue_size, download: pax_trax additions,
        as in `BertGlueTrainStream`. (The eval examples are shuffled too, as
        in Trax.)

    Returns:
      A stream function of batches as `BertGlueTrainStream`'s, from the
      benchmark's validation split.

    >>> batches = BertGlueEvalStream('mnli_e2', data_dir='/data/tfds',
    ...                              vocab_file='vocab.txt')()  # doctest: +SKIP
    """
    where = "pax_trax.data.BertGlueEvalStream"
    return _bert_glue_stream(_ensure_eval_suffix(benchmark, where), where, data_dir=data_dir,
                             vocab_type=vocab_type, vocab_file=vocab_file, vocab_dir=vocab_dir,
                             max_length=max_length, batch_size=batch_size, cls_id=cls_id, sep_id=sep_id,
                             seed=seed, shuffle_queue_size=shuffle_queue_size, download=download)


# ----------------------------------------------------------------------- T5


def _stsb_target(label):
    # T5's preprocessors.stsb: the similarity rounded to the nearest 0.2
    # (float32, half to even as tf.round) and written with one decimal.
    value = np.round(np.float32(label) * np.float32(5)) / np.float32(5)
    return f"{float(value):.1f}"


def _t5_glue_texts(example, benchmark, where="pax_trax.data.T5GlueTrainStream"):
    """``(inputs, targets)`` of one GLUE example (a dict of its features) in T5's format."""
    names = sorted(set(example) - {"label", "idx"})
    if benchmark == "stsb":
        names = ["sentence1", "sentence2"]  # T5's stsb preprocessor names them explicitly
    parts = [benchmark]
    for name in names:
        parts += [f"{name}:", as_text(example[name], where, name)]
        if isinstance(parts[-1], bytes):
            parts[-1] = parts[-1].decode("utf-8")
    label = example["label"]
    if benchmark == "stsb":
        target = _stsb_target(label)
    elif int(label) == -1:  # an unlabeled (test) example, as T5
        target = "<unk>"
    else:
        label_names = GLUE_LABELS[benchmark]
        if not 0 <= int(label) < len(label_names):
            raise ValueError(f"{where}: expected a {benchmark} label in 0..{len(label_names) - 1} "
                             f"(or -1), got {label!r}.")
        target = label_names[int(label)]
    return " ".join(parts), target


def _t5_tokenized(glue_data, benchmark, vocab, where):
    def stream(generator=None):
        for example in glue_data(generator):
            inputs, targets = _t5_glue_texts(example, benchmark, where)
            input_ids = np.asarray(vocab.encode(inputs), np.int64)
            target_ids = np.asarray(vocab.encode(targets), np.int64)
            yield input_ids, target_ids, np.ones(len(target_ids), np.int64)

    return stream


def _t5_glue_stream(benchmark_id, where, *, spm_path, data_dir, max_length, max_target_length, batch_size,
                    seed, shuffle_queue_size, download):
    benchmark, mode = _parse_benchmark_id(benchmark_id, where)
    max_length = _check_positive(where, "max_length", max_length)
    max_target_length = _check_positive(where, "max_target_length", max_target_length)
    batch_size = _check_positive(where, "batch_size", batch_size)
    if spm_path is None:
        raise ValueError(f"{where}: spm_path is required: the path of a local SentencePiece .model "
                         "(Trax's default, T5's gs://t5-data/vocabs/cc_all.32000/sentencepiece.model, is "
                         "not downloaded here; pax_trax.data.train_sentencepiece makes one from local text).")
    vocab = load_vocabulary("sentencepiece", spm_path, where=where)
    glue_data = _glue_data(benchmark, mode, None, where, data_dir, download, seed, True)
    return Serial(
        _t5_tokenized(glue_data, benchmark, vocab, where),
        *_pad_and_batch({0: max_length, 1: max_target_length, 2: max_target_length}, batch_size, seed,
                        shuffle_queue_size),
    )


def T5GlueTrainStream(  # noqa: N802 (Trax name)
    benchmark,
    *,
    spm_path=None,
    data_dir=None,
    max_length=512,
    max_target_length=16,
    batch_size=32,
    seed=0,
    shuffle_queue_size=1024,
    download=True,
):
    """Returns a T5-preprocessed training data stream for `benchmark`.

    Args:
      benchmark: Simple lower-case name of a GLUE benchmark, e.g., ``'cola'``,
        ``'mnli'``, ``'rte'``.
      spm_path: pax_trax addition (required): the path of the SentencePiece
        model that tokenizes inputs and targets.
      data_dir: pax_trax addition: the TFDS data directory of ``glue/<benchmark>``.
      max_length: pax_trax addition: inputs are padded with 0 and truncated
        to this many tokens.
      max_target_length: pax_trax addition: the same for targets and weights.
      batch_size: pax_trax addition: examples per batch.
      seed: pax_trax addition: seeds the reading order and the shuffle.
      shuffle_queue_size: pax_trax addition: the `Shuffle` buffer.
      download: pax_trax addition: as `pax_trax.data.TFDS`.

    Returns:
      A stream function; its stream yields batches ``(input_ids, target_ids,
      weights)`` of shapes ``(batch_size, max_length)``, ``(batch_size,
      max_target_length)`` twice; the weights are 1 on target tokens, 0 on padding.

    >>> batches = T5GlueTrainStream('cola', spm_path='spm.model', data_dir='/data/tfds')()  # doctest: +SKIP
    >>> [x.shape for x in next(batches)]  # doctest: +SKIP
    [(32, 512), (32, 16), (32, 16)]
    """
    where = "pax_trax.data.T5GlueTrainStream"
    _check_benchmark(benchmark, where)
    return _t5_glue_stream(benchmark + "_t", where, spm_path=spm_path, data_dir=data_dir,
                           max_length=max_length, max_target_length=max_target_length, batch_size=batch_size,
                           seed=seed, shuffle_queue_size=shuffle_queue_size, download=download)


def T5GlueEvalStream(  # noqa: N802 (Trax name)
    benchmark,
    *,
    spm_path=None,
    data_dir=None,
    max_length=512,
    max_target_length=16,
    batch_size=32,
    seed=0,
    shuffle_queue_size=1024,
    download=True,
):
    """Returns a T5-preprocessed eval data stream for `benchmark`.

    Args:
      benchmark: Simple lower-case name of a GLUE benchmark, e.g., ``'cola'``,
        ``'mnli'``, ``'rte'``. If the benchmark includes an alternate eval
        (e.g., MNLI's "mismatched" eval/validation split), you can specify it
        with an ``'_e2'`` suffix, e.g., ``'mnli_e2'``. (pax_trax: ``'cola_t'``
        reads the training split.)
      spm_path, data_dir, max_length, max_target_length, batch_size, seed,
      shuffle_queue_size, download: pax_trax additions, as in `T5GlueTrainStream`.

    Returns:
      A stream function of batches as `T5GlueTrainStream`'s.

    >>> batches = T5GlueEvalStream('mnli_e2', spm_path='spm.model', data_dir='/data/tfds')()  # doctest: +SKIP
    """
    where = "pax_trax.data.T5GlueEvalStream"
    if isinstance(benchmark, str) and benchmark.endswith("_t") and benchmark[:-2] in GLUE_KEYS:
        benchmark_id = benchmark
    else:
        benchmark_id = _ensure_eval_suffix(benchmark, where)
    return _t5_glue_stream(benchmark_id, where, spm_path=spm_path, data_dir=data_dir, max_length=max_length,
                           max_target_length=max_target_length, batch_size=batch_size, seed=seed,
                           shuffle_queue_size=shuffle_queue_size, download=download)


def _check_benchmark_list(benchmark_list, where):
    if isinstance(benchmark_list, str) or not isinstance(benchmark_list, (list, tuple)) or not benchmark_list:
        raise ValueError(f"{where}: expected a non-empty list of GLUE benchmark names such as "
                         f"['cola', 'rte'], got {benchmark_list!r}.")
    return list(benchmark_list)


def T5GlueTrainStreamsParallel(  # noqa: N802 (Trax name)
    benchmark_list,
    counters=None,
    reweight_by_minimum=False,
    gradually_reweight=False,
    **stream_kwargs,
):
    """Returns a parallel set of training streams, based on `benchmark_list`.

    Args:
      benchmark_list: List of simple lower-case names of GLUE benchmarks, e.g.,
        ``'cola'``, ``'mnli'``, ``'rte'``.
      counters: a list of counters to be passed to `pax_trax.data.Parallel`,
        e.g., ``[8551, 392702, 2490]`` would be a reasonable counterpart to
        ``benchmark_list = ["cola", "mnli", "rte"]`` (the benchmarks' training
        sizes, as T5's ``glue_utils``).
      reweight_by_minimum: divide by the minimal counter.
      gradually_reweight: a more refined reweighting policy, see
        `pax_trax.data.Parallel`.
      **stream_kwargs: pax_trax addition: keyword arguments of
        `T5GlueTrainStream` (``spm_path`` is required), the same for every
        benchmark.

    Returns:
      An iterator (as in Trax: the combined stream already called) of the
      benchmarks' batches, interleaved as `counters` say.

    >>> batches = T5GlueTrainStreamsParallel(['cola', 'rte'], counters=[2, 1],
    ...                                      spm_path='spm.model')  # doctest: +SKIP
    """
    where = "pax_trax.data.T5GlueTrainStreamsParallel"
    benchmark_list = _check_benchmark_list(benchmark_list, where)
    streams = [T5GlueTrainStream(benchmark, **stream_kwargs) for benchmark in benchmark_list]
    return Parallel(streams, counters=counters, reweight_by_minimum=reweight_by_minimum,
                    gradually_reweight=gradually_reweight)()


def T5GlueEvalStreamsParallel(benchmark_list, **stream_kwargs):  # noqa: N802 (Trax name)
    """Returns a parallel set of T5 eval streams, based on `benchmark_list`.

    Args:
      benchmark_list: List of strings, each of which is a simple lower-case
        name of a GLUE benchmark, e.g., ``'cola'``, ``'mnli'``, ``'rte'``. If
        a benchmark includes an alternate eval (e.g., MNLI's "mismatched"
        eval/validation split), you can specify it with an ``'_e2'`` suffix,
        e.g., ``'mnli_e2'``.
      **stream_kwargs: pax_trax addition: keyword arguments of `T5GlueEvalStream`.

    Returns:
      An iterator (as in Trax) taking one batch from each eval stream in turn.

    >>> batches = T5GlueEvalStreamsParallel(['mnli', 'mnli_e2'], spm_path='spm.model')  # doctest: +SKIP
    """
    where = "pax_trax.data.T5GlueEvalStreamsParallel"
    benchmark_list = _check_benchmark_list(benchmark_list, where)
    return Parallel([T5GlueEvalStream(benchmark, **stream_kwargs) for benchmark in benchmark_list])()


def _eval_task_name(benchmark, mode):
    if mode == "t":
        return ("Cola" if benchmark == "cola" else benchmark.upper()) + "_train"
    if benchmark == "cola":
        return "Cola"
    if benchmark == "mnli":
        return "MNLI_matched" if mode == "e" else "MNLI_mismatched"
    return benchmark.upper()


def T5GlueEvalTasks(benchmark_list, *, n_eval_batches=1, **stream_kwargs):  # noqa: N802 (Trax name)
    """Returns a list of T5 GLUE eval tasks, based on `benchmark_list`.

    Each is a `pax_trax.supervised.training.EvalTask` on `T5GlueEvalStream`'s
    batches with Trax's metrics ``WeightedCategoryAccuracy`` and
    ``SequenceAccuracy``, named ``'<Name> accuracy'`` and ``'<Name> sequence
    accuracy'`` (Name: ``'Cola'``, ``'MNLI_matched'``, ``'MNLI_mismatched'``,
    else the benchmark in capitals; ``'<Name>_train'`` for a training split).

    Args:
      benchmark_list: List of strings, each of which indicates the name and
        data split of a GLUE benchmark. Data splits are indicated as
        underscore suffixes, e.g., ``'cola_t'`` (Cola benchmark, training
        split), ``'rte_e'`` (RTE benchmark, eval/validation split), and
        ``'mnli_e2'`` (MNLI alternate "mismatched" eval/validation split). A
        bare name means its eval split.
      n_eval_batches: pax_trax addition: the `EvalTask`'s batches per evaluation.
      **stream_kwargs: pax_trax addition: keyword arguments of `T5GlueEvalStream`.

    >>> tasks = T5GlueEvalTasks(['cola_e', 'mnli_e2'], spm_path='spm.model')  # doctest: +SKIP
    >>> tasks[1].metric_names  # doctest: +SKIP
    ['MNLI_mismatched accuracy', 'MNLI_mismatched sequence accuracy']
    """
    from pax_trax.nn.metrics import SequenceAccuracy, WeightedCategoryAccuracy  # noqa: PLC0415 (JAX layers)
    from pax_trax.supervised.training import EvalTask  # noqa: PLC0415

    where = "pax_trax.data.T5GlueEvalTasks"
    tasks = []
    for benchmark_id in _check_benchmark_list(benchmark_list, where):
        if isinstance(benchmark_id, str) and not benchmark_id.endswith(("_t", "_e", "_e2")):
            benchmark_id = _ensure_eval_suffix(benchmark_id, where)
        benchmark, mode = _parse_benchmark_id(benchmark_id, where)
        name = _eval_task_name(benchmark, mode)
        eval_data = T5GlueEvalStream(benchmark_id, **stream_kwargs)
        tasks.append(EvalTask(eval_data(), [WeightedCategoryAccuracy(), SequenceAccuracy()],
                              metric_names=[f"{name} accuracy", f"{name} sequence accuracy"],
                              n_eval_batches=n_eval_batches))
    return tasks
