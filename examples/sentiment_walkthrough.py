"""Trax's walkthrough sentiment model, trained by the supervised Loop on real reviews.

This is the "Models / Data / Supervised training" part of Trax's intro
walkthrough with pax_trax names:

    model = nn.Serial(nn.Embedding(vocab_size=8192, d_feature=256),
                      nn.Mean(axis=1), nn.Dense(2))
    train_task = training.TrainTask(train_batches, nn.WeightedCategoryCrossEntropy(),
                                    pax_trax.optimizers.Adam(0.01), n_steps_per_checkpoint=100)
    eval_task = training.EvalTask(eval_batches, [nn.WeightedCategoryCrossEntropy(),
                                                 nn.WeightedCategoryAccuracy()], n_eval_batches=...)
    training.Loop(model, train_task, eval_tasks=[eval_task], output_dir=...).run(300)

Trax trains on IMDB from TFDS, which cannot be downloaded here. This example
uses real labelled text that ships inside a PyPI package instead: the 10,605
movie review snippets (rottentomatoes.com sentences, each rated by at least 20
people from -4 to +4) of the VADER paper, inside the sdist of
``vaderSentiment==3.3.2``. ``tests/data_cache.py`` fetches that sdist once
with pip into ``~/.cache/pax_trax`` (or ``--cache-dir`` /
``$PAX_TRAX_DATA_CACHE``); after that the example runs offline.

Data, in plain Python generators (no ``pax_trax.data`` pipeline needed):

* labels: 1 (positive) if the mean rating is > 0, 0 (negative) if < 0; the
  37 snippets rated exactly 0 have no polarity and are dropped, leaving
  10,568 (50.4% negative);
* split: shuffled with a fixed seed (0), the last 20% (2,114 snippets) is the
  eval set, the rest the training set;
* tokens: lowercased runs of letters (``[^\\W\\d_]+``, so "don't" -> "don",
  "t" and "clichés" stays one word); the vocabulary is the 8,190 most
  frequent words of the *training* split (ties broken alphabetically) with
  ids 2..8191; id 1 is any other word, id 0 is padding. Every snippet is
  padded (or truncated: none is longer than 53 words) to 64 ids;
* batches: ``(ids int32 (B, 64), labels int32 (B,), weights float32 (B,))``.
  Training batches are full and reshuffled every epoch, with weight 1. The
  eval set is cut into ``ceil(n / B)`` batches of nearly equal size, each
  padded to B rows with rows of weight 0, so the ``n_eval_batches`` of one
  eval cover every eval snippet exactly once and the Loop's average of the
  per-batch metrics is the eval-set metric (to within 1/n).

As in Trax's model, ``Mean(axis=1)`` averages over all 64 positions, padding
included: a short snippet's mean is dominated by the (learned) embedding of
id 0. The model is kept exactly as in the walkthrough. Like the walkthrough's,
it has no LogSoftmax, so its outputs are logits; the walkthrough's
``np.exp(model(x))`` is therefore not a probability, and this example prints
``softmax(logits)`` instead.

    python examples/sentiment_walkthrough.py                 # 300 steps, ~10 s on CPU
    python examples/sentiment_walkthrough.py --steps 1000 --output-dir /tmp/sentiment
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import math
import re
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

import pax_trax
from pax_trax import nn
from pax_trax.supervised import training

VOCAB_SIZE = 8192
PAD_ID = 0
UNK_ID = 1
FIRST_WORD_ID = 2
MAX_LENGTH = 64
BATCH_SIZE = 64
EVAL_FRACTION = 0.2
SPLIT_SEED = 0

_WORD = re.compile(r"[^\W\d_]+")


def _load_data_cache(name="pax_trax_tests_data_cache"):
    """`tests/data_cache.py` of this repository (shared with the tests), loaded
    once per process under `name`."""
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "tests" / "data_cache.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


data_cache = _load_data_cache()


# ------------------------------------------------------------------- data


def tokenize(text):
    """Lowercased runs of letters: ``"Don't miss it!" -> ['don', 't', 'miss', 'it']``."""
    return _WORD.findall(text.lower())


def build_vocabulary(texts, vocab_size=VOCAB_SIZE):
    """``{word: id}`` for the ``vocab_size - 2`` most frequent words of `texts`.

    Ids 2.. go to words by decreasing count (ties alphabetically); 0 is
    padding and 1 is every word outside the vocabulary.
    """
    counts = collections.Counter(word for text in texts for word in tokenize(text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    words = [word for word, _ in ranked[: vocab_size - FIRST_WORD_ID]]
    return {word: i for i, word in enumerate(words, FIRST_WORD_ID)}


def encode(text, vocabulary, max_length=MAX_LENGTH):
    """Token ids of `text`, truncated/padded with 0 to `max_length`: int32 `(max_length,)`."""
    ids = [vocabulary.get(word, UNK_ID) for word in tokenize(text)][:max_length]
    return np.array(ids + [PAD_ID] * (max_length - len(ids)), np.int32)


def detokenize(ids, vocabulary):
    """The words of `ids` (padding left out, unknown words as ``<unk>``)."""
    words = {i: w for w, i in vocabulary.items()}
    words[UNK_ID] = "<unk>"
    return " ".join(words[int(i)] for i in ids if int(i) != PAD_ID)


def split_snippets(snippets, eval_fraction=EVAL_FRACTION, seed=SPLIT_SEED):
    """Labels and a fixed split: ``(train, eval)``, lists of ``(text, label)``.

    label 1 if the score is > 0, 0 if < 0; snippets scored exactly 0 are
    dropped. The snippets are shuffled with `seed` and the last
    `eval_fraction` of them is the eval set.
    """
    labelled = [(text, int(score > 0)) for text, score in snippets if score != 0]
    order = np.random.default_rng(seed).permutation(len(labelled))
    labelled = [labelled[i] for i in order]
    n_eval = int(round(eval_fraction * len(labelled)))
    return labelled[: len(labelled) - n_eval], labelled[len(labelled) - n_eval:]


def encode_examples(examples, vocabulary, max_length=MAX_LENGTH):
    """``[(text, label)]`` -> ``(ids int32 (n, max_length), labels int32 (n,))``."""
    ids = np.stack([encode(text, vocabulary, max_length) for text, _ in examples])
    labels = np.array([label for _, label in examples], np.int32)
    return ids, labels


def train_batches(ids, labels, batch_size=BATCH_SIZE, seed=SPLIT_SEED):
    """Endless full batches ``(ids, labels, weights=1)``, reshuffled every epoch
    (the tail of an epoch that does not fill a batch is left out)."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    if n < batch_size:
        raise ValueError(f"train_batches: {n} examples do not fill a batch of {batch_size}.")
    weights = np.ones(batch_size, np.float32)
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            index = order[start:start + batch_size]
            yield ids[index], labels[index], weights


def n_eval_batches(n_examples, batch_size=BATCH_SIZE):
    """How many batches of `eval_batches` cover the eval set once."""
    return math.ceil(n_examples / batch_size)


def eval_batches(ids, labels, batch_size=BATCH_SIZE):
    """Endless passes over the eval set, in order, as `n_eval_batches` batches of
    nearly equal size padded to `batch_size` rows of weight 0."""
    n = len(labels)
    n_batches = n_eval_batches(n, batch_size)
    bounds = np.linspace(0, n, n_batches + 1).round().astype(int)
    batches = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        pad = batch_size - (stop - start)
        batches.append((
            np.concatenate([ids[start:stop], np.full((pad, ids.shape[1]), PAD_ID, np.int32)]),
            np.concatenate([labels[start:stop], np.zeros(pad, np.int32)]),
            np.concatenate([np.ones(stop - start, np.float32), np.zeros(pad, np.float32)]),
        ))
    while True:
        yield from batches


def load_data(cache_dir=None, max_length=MAX_LENGTH):
    """Everything the walkthrough needs, as a dict: `train`/`eval` example lists,
    the `vocabulary`, and the encoded `train_ids`, `train_labels`, `eval_ids`,
    `eval_labels`."""
    train, evaluation = split_snippets(data_cache.movie_review_snippets(cache_dir))
    vocabulary = build_vocabulary([text for text, _ in train])
    train_ids, train_labels = encode_examples(train, vocabulary, max_length)
    eval_ids, eval_labels = encode_examples(evaluation, vocabulary, max_length)
    return dict(train=train, eval=evaluation, vocabulary=vocabulary,
                train_ids=train_ids, train_labels=train_labels,
                eval_ids=eval_ids, eval_labels=eval_labels)


# ------------------------------------------------------------ walkthrough


def make_model():
    """The walkthrough's model, exactly."""
    return nn.Serial(
        nn.Embedding(vocab_size=VOCAB_SIZE, d_feature=256),
        nn.Mean(axis=1),  # Average on axis 1 (length of sentence), padding included.
        nn.Dense(2),      # Classify 2 classes.
    )


def make_loop(data, output_dir, batch_size=BATCH_SIZE, n_steps_per_checkpoint=100,
              random_seed=0, model=None, stdout=None):
    """The walkthrough's TrainTask, EvalTask and Loop on `data` (from `load_data`)."""
    train_task = training.TrainTask(
        labeled_data=train_batches(data["train_ids"], data["train_labels"], batch_size),
        loss_layer=nn.WeightedCategoryCrossEntropy(),
        optimizer=pax_trax.optimizers.Adam(0.01),
        n_steps_per_checkpoint=n_steps_per_checkpoint,
    )
    eval_task = training.EvalTask(
        labeled_data=eval_batches(data["eval_ids"], data["eval_labels"], batch_size),
        metrics=[nn.WeightedCategoryCrossEntropy(), nn.WeightedCategoryAccuracy()],
        n_eval_batches=n_eval_batches(len(data["eval_labels"]), batch_size),  # the whole eval set
    )
    return training.Loop(model if model is not None else make_model(), train_task,
                         eval_tasks=[eval_task], output_dir=output_dir,
                         random_seed=random_seed, stdout=stdout)


def eval_accuracy(model, data):
    """Accuracy of `model` (in eval mode) on the whole eval set, computed directly."""
    logits = jax.jit(lambda m, x: m(x))(model.eval(), data["eval_ids"])
    return float(np.mean(np.argmax(np.asarray(logits), axis=-1) == data["eval_labels"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    parser.add_argument("--output-dir", default=None,
                        help="checkpoints and TensorBoard logs (default: a new temporary "
                             "directory); a directory holding a checkpoint is continued from it")
    parser.add_argument("--cache-dir", default=None,
                        help="where the vaderSentiment sdist is cached (default "
                             "$PAX_TRAX_DATA_CACHE or ~/.cache/pax_trax)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=0, help="the Loop's random_seed")
    args = parser.parse_args(argv)

    # Models.
    model = make_model()
    print(model)  # You can print model structure.

    # Data.
    data = load_data(args.cache_dir)
    print(f"{len(data['train'])} train and {len(data['eval'])} eval snippets, "
          f"{len(data['vocabulary']) + FIRST_WORD_ID} ids")
    print(data["train"][0])  # See one example: (text, label).
    example_batch = next(train_batches(data["train_ids"], data["train_labels"], args.batch_size))
    print(f"shapes = {[x.shape for x in example_batch]}")  # Check the shapes.

    # Supervised training.
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="sentiment_walkthrough_")
    training_loop = make_loop(data, output_dir, batch_size=args.batch_size,
                              random_seed=args.seed, model=model)
    training_loop.run(args.steps)
    print(f"Checkpoints and TensorBoard logs are in {output_dir}")

    # After training, run the model like any layer. Modules are immutable: the
    # trained weights are in `training_loop.model`, not in `model`.
    trained = training_loop.model.eval()
    example_input = next(eval_batches(data["eval_ids"], data["eval_labels"], args.batch_size))[0][0]
    print(f"example input_str: {detokenize(example_input, data['vocabulary'])}")
    print(f"original text: {data['eval'][0][0]!r}, label {data['eval'][0][1]}")
    logits = trained(example_input[None, :])  # Add batch dimension.
    print(f"Model returned sentiment probabilities: {np.asarray(jax.nn.softmax(logits))}")
    print(f"Eval accuracy on all {len(data['eval'])} eval snippets: "
          f"{eval_accuracy(trained, data):.4f}")
    return training_loop


if __name__ == "__main__":
    main()
