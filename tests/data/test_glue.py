"""pax_trax.data's GLUE streams (`BertGlue*`, `T5Glue*`) on local GLUE datasets of real text.

The datasets: TFDS's own ``glue`` builder (``tensorflow_datasets.text.glue.Glue``,
same name, version and configs) subclassed so that its splits are written
from VADER's movie review snippets (``tests/data_cache.py``) instead of being
downloaded: sentence(s) are snippets, labels come from their human scores.
They are prepared into a temporary data_dir, where TFDS's registered
``glue`` builder finds them by name, and read with download=False. A small
SentencePiece model is trained on the snippets for the T5 streams. The
expected values are computed here by hand from the examples written
(T5's text-to-text strings, the BERT layout), tokenized with `sentencepiece`
itself or UTF-8 bytes.
"""

import itertools

import numpy as np
import pytest

from pax_trax.data import _lazy
from pax_trax.data import glue as G  # noqa: N812 (short: used throughout)
from pax_trax.data.combinators import Parallel
from pax_trax.data.vocabularies import train_sentencepiece

CONFIGS = ("cola", "rte", "mnli", "stsb", "qnli")
N_TRAIN, N_EVAL = 24, 9
SPLITS = {"mnli": ("train", "validation_matched", "validation_mismatched")}


def _label(config, score):
    if config == "stsb":  # a similarity in [0, 5]
        return float(np.float32((score + 4) * 5 / 8))
    if config == "mnli":  # three classes
        return 0 if score > 1 else (1 if score >= -1 else 2)
    return int(score > 0)


def _examples(config, rows):
    """{split: [example dict]} written for `config`, from disjoint slices of `rows`."""
    import tensorflow_datasets.text.glue as tfds_glue  # noqa: PLC0415

    text_features = list(tfds_glue.Glue.builder_configs[config].text_features)
    out = {}
    start = CONFIGS.index(config) * 200
    for k, split in enumerate(SPLITS.get(config, ("train", "validation"))):
        n = N_TRAIN if split == "train" else N_EVAL + k  # the two mnli evals differ in size too
        part = rows[start:start + n + 1]
        start += n + 1
        out[split] = [
            {**{name: part[i + j][1] for j, name in enumerate(text_features)},
             "label": _label(config, part[i][2]), "idx": i}
            for i in range(n)
        ]
    return out


@pytest.fixture(scope="module")
def glue(rows, tmp_path_factory):
    """(data_dir, {config: {split: [example]}}) of the local GLUE datasets."""
    _lazy.tensorflow_datasets("tests")
    import tensorflow_datasets.text.glue as tfds_glue  # noqa: PLC0415

    written = {config: _examples(config, rows) for config in CONFIGS}

    class LocalGlue(tfds_glue.Glue, skip_registration=True):
        """TFDS's glue builder with local splits (nothing is downloaded)."""

        name = "glue"

        def _split_generators(self, dl_manager):
            del dl_manager
            splits = written[self.builder_config.name]
            return {split: ((ex["idx"], ex) for ex in examples) for split, examples in splits.items()}

    data_dir = str(tmp_path_factory.mktemp("glue_tfds"))
    for config in CONFIGS:
        LocalGlue(config=config, data_dir=data_dir).download_and_prepare()
    return data_dir, written


@pytest.fixture(scope="module")
def spm(rows, tmp_path_factory):
    """(path, sentencepiece processor) of a model trained on the snippets."""
    path = train_sentencepiece([text for _, text, _ in rows], str(tmp_path_factory.mktemp("spm") / "glue"),
                               vocab_size=800)
    sentencepiece = _lazy.sentencepiece("tests")
    return path, sentencepiece.SentencePieceProcessor(model_file=path)


def _t5_expected(config, example):
    """T5's text-to-text strings, written out by hand per benchmark."""
    ex = example
    if config == "cola":
        inputs = f"cola sentence: {ex['sentence']}"
    elif config == "rte":
        inputs = f"rte sentence1: {ex['sentence1']} sentence2: {ex['sentence2']}"
    elif config == "mnli":  # T5 sorts the feature names: hypothesis before premise
        inputs = f"mnli hypothesis: {ex['hypothesis']} premise: {ex['premise']}"
    elif config == "qnli":
        inputs = f"qnli question: {ex['question']} sentence: {ex['sentence']}"
    else:
        inputs = f"stsb sentence1: {ex['sentence1']} sentence2: {ex['sentence2']}"
    if config == "stsb":
        target = "%.1f" % (round(ex["label"] * 5) / 5)  # Python rounds half to even, as tf.round
    else:
        target = {"cola": ["unacceptable", "acceptable"], "rte": ["entailment", "not_entailment"],
                  "qnli": ["entailment", "not_entailment"],
                  "mnli": ["entailment", "neutral", "contradiction"]}[config][ex["label"]]
    return inputs, target


def _unpadded(ids):
    ids = list(np.asarray(ids).tolist())
    while ids and ids[-1] == 0:
        ids.pop()
    return tuple(ids)


def _epoch(stream, n):
    """The first n batches of batch size 1 as (inputs, targets) id tuples, unpadded."""
    out = []
    for inputs, targets, weights in itertools.islice(stream, n):
        assert inputs.shape[0] == targets.shape[0] == weights.shape[0] == 1
        n_target = int(weights[0].sum())
        np.testing.assert_array_equal(weights[0], (np.arange(weights.shape[1]) < n_target).astype(weights.dtype))
        out.append((_unpadded(inputs[0]), tuple(targets[0][:n_target].tolist())))
    return out


@pytest.mark.parametrize("config", CONFIGS)
def test_t5_eval_stream_is_t5s_text_to_text_format(config, glue, spm, within):
    data_dir, written = glue
    path, processor = spm
    split = "validation_matched" if config == "mnli" else "validation"
    examples = written[config][split]
    stream = within(60, lambda: G.T5GlueEvalStream(config, spm_path=path, data_dir=data_dir, download=False,
                                                   max_length=400, batch_size=1, shuffle_queue_size=1)())
    got = within(60, lambda: _epoch(stream, len(examples)))
    expected = []
    for ex in examples:
        inputs, target = _t5_expected(config, ex)
        expected.append((tuple(processor.encode(inputs)), tuple(processor.encode(target))))
    assert sorted(got) == sorted(expected)
    # The stream repeats: the next epoch is the same examples again.
    assert sorted(_epoch(stream, len(examples))) == sorted(expected)


def test_glue_tables_match_tfds_glue_configs():
    # Every benchmark's text features (in order) and label names, against TFDS's own
    # glue builder (what T5 takes its targets from), the nine the tables have too.
    _lazy.tensorflow_datasets("tests")
    import tensorflow_datasets.text.glue as tfds_glue  # noqa: PLC0415

    configs = tfds_glue.Glue.builder_configs
    assert sorted(G.GLUE_KEYS) == sorted(G.GLUE_LABELS) == sorted(
        ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"])
    for benchmark in G.GLUE_KEYS:
        assert G.GLUE_KEYS[benchmark] == tuple(configs[benchmark].text_features), benchmark
        labels = configs[benchmark].label_classes
        assert G.GLUE_LABELS[benchmark] == (None if labels is None else tuple(labels)), benchmark
    # wnli by hand (not among the datasets written here): label 1 is 'entailment'.
    example = {"sentence1": "It rained.", "sentence2": "The rain fell.", "label": 1, "idx": 0}
    assert G._t5_glue_texts(example, "wnli") == ("wnli sentence1: It rained. sentence2: The rain fell.",
                                                 "entailment")


def test_stsb_targets_are_similarities_rounded_to_a_fifth():
    # By hand: 3.33 * 5 = 16.65 -> 17 -> 3.4; 2.5 * 5 = 12.5 -> 12 (half to even) -> 2.4.
    assert G._stsb_target(3.33) == "3.4"
    assert G._stsb_target(2.5) == "2.4"
    assert G._stsb_target(0.0) == "0.0"
    assert G._stsb_target(5.0) == "5.0"
    assert G._t5_glue_texts({"sentence": "x", "label": -1, "idx": 0}, "cola") == ("cola sentence: x", "<unk>")


def test_mnli_alternate_eval_reads_the_mismatched_split(glue, spm, within):
    data_dir, written = glue
    path, processor = spm
    kwargs = dict(spm_path=path, data_dir=data_dir, download=False, max_length=400, batch_size=1,
                  shuffle_queue_size=1)
    for benchmark, split in (("mnli", "validation_matched"), ("mnli_e", "validation_matched"),
                             ("mnli_e2", "validation_mismatched")):
        examples = written["mnli"][split]
        stream = within(60, lambda b=benchmark: G.T5GlueEvalStream(b, **kwargs)())
        expected = sorted((tuple(processor.encode(i)), tuple(processor.encode(t)))
                          for i, t in (_t5_expected("mnli", ex) for ex in examples))
        assert sorted(within(60, lambda s=stream, n=len(examples): _epoch(s, n))) == expected


def test_t5_train_stream_pads_truncates_and_batches(glue, spm, within):
    data_dir, written = glue
    path, processor = spm
    examples = written["rte"]["train"]
    stream = within(60, lambda: G.T5GlueTrainStream("rte", spm_path=path, data_dir=data_dir, download=False,
                                                    max_length=12, max_target_length=3, batch_size=4,
                                                    shuffle_queue_size=1)())
    full = {}
    for ex in examples:
        inputs, target = _t5_expected("rte", ex)
        ids = processor.encode(inputs)
        full[tuple(ids[:12])] = processor.encode(target)
    seen = set()
    for _ in range(N_TRAIN // 4):
        inputs, targets, weights = next(stream)
        assert inputs.shape == (4, 12) and targets.shape == (4, 3) and weights.shape == (4, 3)
        for row, target_row, weight_row in zip(inputs, targets, weights):
            key = tuple(row.tolist())
            assert key in full  # the first 12 tokens of an example's inputs (all texts are longer)
            want = full[key][:3]
            assert target_row.tolist() == want + [0] * (3 - len(want))
            assert weight_row.tolist() == [1] * len(want) + [0] * (3 - len(want))
            seen.add(key)
    assert len(seen) == N_TRAIN  # one epoch (no Shuffle queue here): every training example once


def test_t5_train_streams_parallel_interleaves_by_counters(glue, spm, within):
    data_dir, _ = glue
    path, processor = spm
    prefixes = {b: tuple(processor.encode(f"{b} sentence")) for b in ("cola", "qnli")}
    prefixes["rte"] = tuple(processor.encode("rte sentence1:"))
    kwargs = dict(spm_path=path, data_dir=data_dir, download=False, max_length=64, batch_size=1)

    def benchmarks_of(batches, n):
        out = []
        for inputs, _, _ in itertools.islice(batches, n):
            row = tuple(inputs[0].tolist())
            out.append([b for b, p in prefixes.items() if row[:len(p)] == p])
        return out

    def expected(**parallel_kwargs):  # the order of data.Parallel on labelled streams
        names = Parallel([lambda: itertools.repeat(["cola"]), lambda: itertools.repeat(["rte"])],
                         **parallel_kwargs)()
        return list(itertools.islice(names, 7))

    batches = within(60, lambda: G.T5GlueTrainStreamsParallel(["cola", "rte"], counters=[2, 1], **kwargs))
    assert within(60, lambda: benchmarks_of(batches, 7)) == expected(counters=[2, 1])
    assert expected(counters=[2, 1]).count(["cola"]) == 4  # two cola batches for each rte one (and a start)
    batches = within(60, lambda: G.T5GlueTrainStreamsParallel(["cola", "rte"], counters=[10, 30],
                                                              reweight_by_minimum=True, **kwargs))
    assert within(60, lambda: benchmarks_of(batches, 7)) == expected(counters=[1, 3])
    batches = within(60, lambda: G.T5GlueTrainStreamsParallel(["cola", "rte"], counters=[1, 2],
                                                              gradually_reweight=True, **kwargs))
    assert within(60, lambda: benchmarks_of(batches, 6)) == [["cola"], ["rte"], ["rte"]] * 2
    evals = within(60, lambda: G.T5GlueEvalStreamsParallel(["cola", "rte"], **kwargs))
    assert within(60, lambda: benchmarks_of(evals, 4)) == [["cola"], ["rte"]] * 2


def test_t5_eval_tasks_measure_accuracy_on_glue_batches(glue, spm, within):
    from pax_trax.supervised.training import EvalTask  # noqa: PLC0415

    data_dir, _ = glue
    path, _ = spm
    tasks = within(60, lambda: G.T5GlueEvalTasks(
        ["cola", "mnli_e", "mnli_e2", "rte_t"], spm_path=path, data_dir=data_dir, download=False,
        max_length=32, max_target_length=4, batch_size=3, n_eval_batches=2))
    assert [t.metric_names for t in tasks] == [
        ["Cola accuracy", "Cola sequence accuracy"],
        ["MNLI_matched accuracy", "MNLI_matched sequence accuracy"],
        ["MNLI_mismatched accuracy", "MNLI_mismatched sequence accuracy"],
        ["RTE_train accuracy", "RTE_train sequence accuracy"],
    ]
    assert all(isinstance(t, EvalTask) and t.n_eval_batches == 2 for t in tasks)
    inputs, targets, weights = next(tasks[0].labeled_data)
    assert inputs.shape == (3, 32) and targets.shape == (3, 4)
    # A model output that puts the most weight on the right token scores 1; one
    # wrong weighted token in the first row: token accuracy drops by 1/(number of
    # weighted tokens), sequence accuracy by 1/3.
    vocab = 800
    logits = np.eye(vocab, dtype=np.float32)[targets]
    accuracy, sequence_accuracy = tasks[0].metrics
    assert float(accuracy((logits, targets, weights))) == pytest.approx(1.0)
    assert float(sequence_accuracy((logits, targets, weights))) == pytest.approx(1.0)
    wrong = logits.copy()
    wrong[0, 0] = np.roll(wrong[0, 0], 1)
    assert float(accuracy((wrong, targets, weights))) == pytest.approx(1 - 1 / weights.sum())
    assert float(sequence_accuracy((wrong, targets, weights))) == pytest.approx(2 / 3)


def _bert_expected(config, example):
    texts = [example[k].encode("utf-8") for k in G.GLUE_KEYS[config]]
    tokens = [101, *texts[0], 102]
    segments = [0] * len(tokens)
    if len(texts) == 2:
        tokens += [*texts[1], 102]
        segments += [1] * (len(texts[1]) + 1)
    return tuple(tokens), tuple(segments), example["label"]


@pytest.mark.parametrize("config", ["cola", "rte", "mnli_e2"])
def test_bert_eval_stream_joins_sentences_with_cls_and_sep(config, glue, within):
    data_dir, written = glue
    benchmark = config.split("_")[0]
    examples = written[benchmark]["validation_mismatched" if config == "mnli_e2" else
                                  "validation_matched" if benchmark == "mnli" else "validation"]
    stream = within(60, lambda: G.BertGlueEvalStream(config, data_dir=data_dir, download=False,
                                                     vocab_type="char", max_length=700, batch_size=1,
                                                     shuffle_queue_size=1)())
    got = []
    for tokens, segments, segments_again, labels, weights in within(
            60, lambda: list(itertools.islice(stream, len(examples)))):
        n = len(_unpadded(tokens[0]))
        np.testing.assert_array_equal(segments, segments_again)
        assert tokens.shape == segments.shape == (1, 700) and weights.tolist() == [1]
        assert not segments[0][n:].any()  # padding is segment 0
        got.append((tuple(tokens[0][:n].tolist()), tuple(segments[0][:n].tolist()), int(labels[0])))
    assert sorted(got) == sorted(_bert_expected(benchmark, ex) for ex in examples)


def test_bert_train_stream_batches_to_max_length(glue, within):
    data_dir, written = glue
    stream = within(60, lambda: G.BertGlueTrainStream("rte", data_dir=data_dir, download=False,
                                                      vocab_type="char", max_length=40, batch_size=8,
                                                      cls_id=1, sep_id=2, shuffle_queue_size=1)())
    expected = {}
    for ex in written["rte"]["train"]:
        a, b = ex["sentence1"].encode(), ex["sentence2"].encode()
        tokens = [1, *a, 2, *b, 2]
        segments = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        expected[tuple(tokens[:40])] = (tuple(segments[:40]), ex["label"])
    seen = set()
    for _ in range(N_TRAIN // 8):
        tokens, segments, _, labels, weights = next(stream)
        assert tokens.shape == (8, 40) and labels.shape == (8,) and weights.tolist() == [1] * 8
        for row, seg, label in zip(tokens, segments, labels):
            key = tuple(row.tolist())
            assert expected[key] == (tuple(seg.tolist()), int(label))
            seen.add(key)
    assert len(seen) == N_TRAIN


def test_bert_stream_with_a_wordpiece_vocabulary(glue, rows, tmp_path, within):
    from pax_trax.data.vocabularies import learn_wordpiece_vocab  # noqa: PLC0415

    data_dir, written = glue
    path = str(tmp_path / "vocab.txt")
    vocab = learn_wordpiece_vocab([t for _, t, _ in rows[:500]], 400, path=path, lower_case=True)
    cls_id, sep_id = vocab.index("[CLS]"), vocab.index("[SEP]")
    stream = within(60, lambda: G.BertGlueEvalStream("cola", data_dir=data_dir, download=False,
                                                     vocab_type="bert-lowercase", vocab_file=path,
                                                     max_length=200, batch_size=1, cls_id=cls_id,
                                                     sep_id=sep_id, shuffle_queue_size=1)())
    tf_text = _lazy.tensorflow_text("tests")
    tokenizer = tf_text.BertTokenizer(path, lower_case=True)
    expected = sorted(
        (cls_id, *tokenizer.tokenize([ex["sentence"]]).merge_dims(1, -1).numpy()[0].tolist(), sep_id)
        for ex in written["cola"]["validation"])
    got = sorted(_unpadded(b[0][0]) for b in itertools.islice(stream, len(expected)))
    assert got == expected


def test_bad_arguments_name_the_function(glue, spm, tmp_path):
    data_dir, _ = glue
    path, _ = spm
    with pytest.raises(ValueError, match=r"pax_trax\.data\.T5GlueTrainStream: expected a GLUE benchmark, "
                                         r"one of .*got 'imdb'"):
        G.T5GlueTrainStream("imdb", spm_path=path, data_dir=data_dir)
    with pytest.raises(ValueError, match=r"pax_trax\.data\.T5GlueEvalStream: only mnli has an alternate eval"):
        G.T5GlueEvalStream("rte_e2", spm_path=path, data_dir=data_dir)
    with pytest.raises(ValueError, match=r"pax_trax\.data\.T5GlueEvalStream: spm_path is required"):
        G.T5GlueEvalStream("rte", data_dir=data_dir)
    with pytest.raises(ValueError, match=r"pax_trax\.data\.BertGlueTrainStream: vocab_file is required"):
        G.BertGlueTrainStream("rte", data_dir=data_dir)
    with pytest.raises(ValueError, match=r"BertGlueEvalStream: expected batch_size to be a positive int, got 0"):
        G.BertGlueEvalStream("rte", data_dir=data_dir, vocab_type="char", batch_size=0)
    with pytest.raises(TypeError, match=r"pax_trax\.data\.BertGlueEvalStream: expected a GLUE benchmark name"):
        G.BertGlueEvalStream(3, data_dir=data_dir, vocab_type="char")
    with pytest.raises(ValueError, match=r"T5GlueEvalTasks: expected a GLUE benchmark, one of .*got 'rte_x'"):
        G.T5GlueEvalTasks(["rte_x"], spm_path=path, data_dir=data_dir)
    with pytest.raises(ValueError, match=r"T5GlueTrainStreamsParallel: expected a non-empty list"):
        G.T5GlueTrainStreamsParallel("cola", spm_path=path, data_dir=data_dir)
    # A benchmark that is not prepared in data_dir: an error, not a download.
    with pytest.raises(FileNotFoundError, match=r"pax_trax\.data\.T5GlueTrainStream: .*'glue/wnli' is not prepared"):
        G.T5GlueTrainStream("wnli", spm_path=path, data_dir=data_dir, download=False)
    with pytest.raises(ValueError, match=r"T5GlueTrainStream: .* is not a SentencePiece model"):
        bad = tmp_path / "bad.model"
        bad.write_bytes(b"not a model")
        G.T5GlueTrainStream("cola", spm_path=str(bad), data_dir=data_dir, download=False)
