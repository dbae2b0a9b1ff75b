"""The seed walkthrough's input pipeline, end to end, on real text:

    data.Serial(data.TFDS(...), data.Tokenize(vocab_file=..., keys=[0]), data.Shuffle(),
                data.FilterByLength(max_length=..., length_keys=[0]),
                data.BucketByLength(boundaries=[...], batch_sizes=[...], length_keys=[0]),
                data.AddLossWeights())

read from a real TFDS dataset (2,000 of VADER's human-rated movie review
snippets, built here in a temporary data_dir by `tests/data_cache.py`, as
array_record for the TensorFlow-free 'data_source' backend and as tfrecord for
the 'tf' backend), tokenized with a ``.subword`` vocabulary learned here from
the training split's texts, and trained on: with a jitted train step and with
the supervised `Loop` fed through `data.Prefetch`. Then what bad input does
to it: malformed examples, an empty stream, a field that is not text.
"""

import importlib
import io
import itertools

import jax
import numpy as np
import optax
import pytest

import pax_trax
from pax_trax import data, nn
from pax_trax.data import _lazy
from pax_trax.supervised import training
from pax_trax.supervised.train_step import init_optimizer_state, make_train_step

NAME = "movie_review_snippets"
VOCAB_TARGET = 1024
MAX_LENGTH = 64
BOUNDARIES, BATCH_SIZES = [16, 32, 64], [64, 32, 32, 16]
TIMEOUT_S = 60.0
data_cache = importlib.import_module("pax_trax_tests_data_cache")  # registered by conftest.py


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def dirs(rows, tmp_path_factory):
    """data_dirs of the dataset prepared as 'array_record' and as 'tfrecord'."""
    _lazy.tensorflow("tests")  # imported here, its import-time warnings silenced
    root = tmp_path_factory.mktemp("walkthrough")
    return {fmt: data_cache.prepare_tfds(root / fmt, rows, fmt)
            for fmt in ("array_record", "tfrecord")}


@pytest.fixture(scope="module")
def vocab_file(rows, tmp_path_factory):
    """A ``.subword`` vocabulary learned from the train split's texts only."""
    texts = [text for i, (_, text, _) in enumerate(rows) if not data_cache.is_test_position(i)]
    path = tmp_path_factory.mktemp("vocab") / "snippets.subword"
    return data.build_subword_vocab(texts, VOCAB_TARGET, str(path))


def walkthrough(dirs, vocab_file, fmt="array_record", extra=(), **tfds_kwargs):
    """The walkthrough's pipeline; `extra` stream functions go after AddLossWeights."""
    tfds_kwargs.setdefault("keys", ("text", "label"))
    tfds_kwargs.setdefault("train", True)
    return data.Serial(
        data.TFDS(NAME, data_dir=dirs[fmt], download=False, **tfds_kwargs),
        data.Tokenize(vocab_file=vocab_file, keys=[0]),
        data.Shuffle(seed=0),
        data.FilterByLength(max_length=MAX_LENGTH, length_keys=[0]),
        data.BucketByLength(boundaries=BOUNDARIES, batch_sizes=BATCH_SIZES, length_keys=[0]),
        data.AddLossWeights(),
        *extra,
    )


def walkthrough_model(vocab_file):
    return nn.Serial(nn.Embedding(data.vocab_size(vocab_file=vocab_file), 32), nn.Mean(axis=1),
                     nn.Dense(2))


# ----------------------------------------------------------- the walkthrough


def test_batches_are_tokenized_text_bucketed_by_length(dirs, rows, vocab_file):
    texts = {text for _, text, _ in rows}
    batches = walkthrough(dirs, vocab_file)()
    seen = set()
    for _ in range(12):
        x, y, w = next(batches)
        assert x.dtype == np.int64 and y.dtype == np.int64 and w.dtype == np.float32
        # Each bucket's batch size, padded to its boundary.
        assert x.shape in ((64, 16), (32, 32), (32, 64)), x.shape
        assert y.shape == w.shape == (x.shape[0],) and (w == 1).all()
        assert set(y.tolist()) <= {0, 1}
        for row in x:
            ids = row[row != 0]  # padding is 0; the subword vocabulary's ids start at 2
            assert (row[len(ids):] == 0).all() and len(ids) <= MAX_LENGTH
            text = data.detokenize(ids, vocab_file=vocab_file)
            assert text in texts  # the vocabulary is invertible: each row is a snippet
            seen.add(text)
    assert len(seen) > 300


def test_walkthrough_pipeline_trains(dirs, vocab_file):
    batches = walkthrough(dirs, vocab_file)()
    x, _, _ = next(batches)
    model = walkthrough_model(vocab_file).init(x, jax.random.PRNGKey(0))
    optimizer = optax.adam(0.05)
    opt_state = init_optimizer_state(optimizer, model)
    step = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), optimizer))
    losses = []
    for _ in range(60):
        model, opt_state, metrics = step(model, opt_state, next(batches))
        losses.append(float(metrics["loss"]))
    assert np.mean(losses[:10]) == pytest.approx(np.log(2), abs=0.1)
    assert np.mean(losses[-20:]) < np.mean(losses[:10]) - 0.08, losses


def test_loop_trains_on_the_prefetched_pipeline(within, dirs, vocab_file):
    train_batches = walkthrough(dirs, vocab_file, extra=[data.Prefetch(4)])()
    eval_batches = walkthrough(dirs, vocab_file, train=False)()
    task = training.TrainTask(train_batches, nn.WeightedCategoryCrossEntropy(),
                              pax_trax.optimizers.Adam(0.05), n_steps_per_checkpoint=24)
    eval_task = training.EvalTask(eval_batches, [nn.WeightedCategoryCrossEntropy(),
                                                 nn.WeightedCategoryAccuracy()], n_eval_batches=4)
    loop = training.Loop(walkthrough_model(vocab_file), task, eval_tasks=[eval_task],
                         random_seed=0, stdout=io.StringIO())
    within(TIMEOUT_S, lambda: loop.run(48))
    assert loop.step == 48
    train_loss = [value for _, value in loop.history.get("train", task.loss_name)]
    eval_loss = [value for _, value in loop.history.get("eval", "WeightedCategoryCrossEntropy")]
    assert len(train_loss) == len(eval_loss) == 3  # steps 1, 24 and 48
    assert train_loss[-1] < train_loss[0] - 0.08, train_loss
    assert eval_loss[-1] < eval_loss[0], eval_loss
    train_batches.close()  # stops the Prefetch thread


# ---------------------------------------------------------------- bad input


def _inserted(examples, position=0):
    """A stream function that puts `examples` into the stream at `position`."""
    def insert(stream):
        return itertools.chain(itertools.islice(stream, position), examples, stream)

    return insert


def test_text_that_is_none_or_not_text_is_a_type_error_naming_tokenize(dirs, vocab_file):
    source = data.TFDS(NAME, data_dir=dirs["array_record"], keys=("text", "label"),
                       download=False)
    tokenize = data.Tokenize(vocab_file=vocab_file, keys=[0])
    with pytest.raises(TypeError, match=r"pax_trax\.data\.Tokenize: expected text \(str or "
                                        r"bytes\) at key 0, got NoneType"):
        list(data.Serial(source, _inserted([(None, np.int64(1))], 5), tokenize)())
    # A field that is not text: the label (keys=[1]), or the id read first.
    with pytest.raises(TypeError, match=r"pax_trax\.data\.Tokenize: expected text .* at key 1, "
                                        r"got int64 .*choose them with keys="):
        next(data.Serial(source, data.Tokenize(vocab_file=vocab_file, keys=[0, 1]))())
    with pytest.raises(TypeError, match=r"pax_trax\.data\.Tokenize: expected text .* at key 0, "
                                        r"got int64"):
        next(walkthrough(dirs, vocab_file, keys=("id", "text"))())
    # A whole example that is None (not a tuple).
    with pytest.raises(TypeError, match=r"pax_trax\.data\.Tokenize: expected text .* as the "
                                        r"example, got NoneType"):
        list(tokenize(iter([None])))


def test_a_type_error_reaches_the_loop_through_prefetch(within, dirs, vocab_file):
    pipeline = data.Serial(
        data.TFDS(NAME, data_dir=dirs["array_record"], keys=("text", "label"), download=False),
        _inserted([(None, np.int64(0))], 300),
        data.Tokenize(vocab_file=vocab_file, keys=[0]),
        data.FilterByLength(max_length=32, length_keys=[0]),
        # One batch shape, (16, 32): one compilation of the Loop's step.
        data.BucketByLength(boundaries=[32], batch_sizes=[16], length_keys=[0],
                            strict_pad_on_len=True),
        data.AddLossWeights(),
        data.Prefetch(2),
    )
    task = training.TrainTask(pipeline(), nn.WeightedCategoryCrossEntropy(), optax.adam(0.01))
    loop = training.Loop(walkthrough_model(vocab_file), task, random_seed=0,
                         stdout=io.StringIO())
    with pytest.raises(TypeError, match=r"pax_trax\.data\.Tokenize: .*got NoneType"):
        within(TIMEOUT_S, lambda: loop.run(20))
    assert 0 < loop.step < 20  # it trained until the bad example came


@pytest.mark.parametrize("bad", [("a snippet with no label",),
                                 ("a snippet with two labels", np.int64(1), np.int64(0))])
def test_an_example_of_the_wrong_arity_is_a_value_error_naming_bucket_by_length(within,
        dirs, vocab_file, bad):
    pipeline = data.Serial(
        data.TFDS(NAME, data_dir=dirs["array_record"], keys=("text", "label"), download=False,
                  repeat=False),
        _inserted([bad], 10),
        data.Tokenize(vocab_file=vocab_file, keys=[0]),
        data.FilterByLength(max_length=MAX_LENGTH, length_keys=[0]),  # (passes it: length ok)
        data.BucketByLength(boundaries=BOUNDARIES, batch_sizes=BATCH_SIZES, length_keys=[0]),
        data.AddLossWeights(),
    )
    # Not skipped, not counted: the batch it falls into fails, naming the combinator,
    # the arity expected and what was got.
    with pytest.raises(ValueError, match=r"^BucketByLength: expected every example in a batch "
                                         r"to be a tuple of \d like the first \(tuple of \d: "):
        within(TIMEOUT_S, lambda: list(pipeline()))


def test_the_walkthrough_pipeline_on_an_empty_stream_ends(within, vocab_file):
    pipeline = data.Serial(lambda _: iter(()), data.Tokenize(vocab_file=vocab_file, keys=[0]),
                           data.Shuffle(), data.FilterByLength(max_length=MAX_LENGTH,
                                                               length_keys=[0]),
                           data.BucketByLength(boundaries=BOUNDARIES, batch_sizes=BATCH_SIZES,
                                               length_keys=[0]),
                           data.AddLossWeights(), data.Prefetch())
    assert within(TIMEOUT_S, lambda: list(pipeline())) == []


@pytest.mark.parametrize("fmt", ["array_record", "tfrecord"])
def test_a_repeating_tfds_stream_whose_epochs_are_empty_ends(within, dirs, vocab_file, fmt):
    # tfds_preprocess_fn drops every example: as tf.data's repeat(), both backends end
    # the stream at an empty epoch instead of looping forever.
    if fmt == "tfrecord":
        drop_all = lambda dataset: dataset.filter(lambda example: example["id"] < 0)  # noqa: E731
    else:
        drop_all = lambda examples: (e for e in examples if e["id"] < 0)  # noqa: E731
    pipeline = walkthrough(dirs, vocab_file, fmt, extra=[data.Prefetch()],
                           tfds_preprocess_fn=drop_all)
    assert within(TIMEOUT_S, lambda: list(pipeline())) == []
    # The preprocessing runs per epoch: keeping a few examples still repeats them.
    if fmt == "tfrecord":
        keep = lambda dataset: dataset.filter(lambda example: example["id"] < 100)  # noqa: E731
    else:
        keep = lambda examples: (e for e in examples if e["id"] < 100)  # noqa: E731
    stream = data.TFDS(NAME, data_dir=dirs[fmt], keys=("id",), download=False,
                       tfds_preprocess_fn=keep)()
    ids = [int(next(stream)[0]) for _ in range(40)]
    assert len(set(ids)) == 16 and sorted(ids[:16]) == sorted(ids[16:32])


def test_a_pipeline_that_filters_out_everything_ends(within, dirs, vocab_file):
    pipeline = data.Serial(
        data.TFDS(NAME, data_dir=dirs["array_record"], keys=("text", "label"), download=False,
                  repeat=False),
        data.Tokenize(vocab_file=vocab_file, keys=[0]),
        data.FilterByLength(max_length=1, length_keys=[0]),  # no snippet is that short
        data.BucketByLength(boundaries=BOUNDARIES, batch_sizes=BATCH_SIZES, length_keys=[0]),
        data.AddLossWeights(), data.Prefetch())
    assert within(TIMEOUT_S, lambda: list(pipeline())) == []


def test_the_loop_stops_when_the_pipeline_ends(within, dirs, vocab_file):
    batches = data.Serial(walkthrough(dirs, vocab_file, repeat=False),
                          lambda stream: itertools.islice(stream, 3), data.Prefetch())()
    task = training.TrainTask(batches, nn.WeightedCategoryCrossEntropy(), optax.adam(0.01))
    loop = training.Loop(walkthrough_model(vocab_file), task, random_seed=0,
                         stdout=io.StringIO())
    # It trains on every batch, then stops with an error that says why (no hang).
    with pytest.raises(RuntimeError, match="TrainTask: labeled_data ran out after 3 batches"):
        within(TIMEOUT_S, lambda: loop.run(10))
    assert loop.step == 3
