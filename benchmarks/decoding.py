"""Tokens per second of pax_trax's compiled greedy decoding against loops of jitted calls.

Run from the repository root::

    python benchmarks/decoding.py            # full run (5 minutes on 2 idle CPU cores, 10 busy)
    python benchmarks/decoding.py --quick    # short run (2-3 minutes), same checks, noisier

The exit status is 1 if a target is missed or a check fails.

The model is ``pax_trax.models.TransformerLM(vocab_size=32000, d_model=512,
d_ff=2048, n_layers=6, n_heads=8)`` (Trax 1.4.1's structure; 52.8 M
parameters, of which 35.3 M, 141 MB, are read for every decoding step: the
embedding and position tables are gathered one row per token) with random
weights: initialized as usual, then the embedding table scaled by
sqrt(d_model) and the output layer by `OUT_SCALE`. Without the first scaling
the embeddings (std 0.044) are swamped by the position vectors and greedy
decoding repeats one token whatever the context; the second makes the
predictions peaked (the script prints the median top-1 probability and the
distinct tokens per row). Each row starts from its own random prefix of
`PREFIX` tokens after the start symbol 0, so the rows of batch 8 differ.

Methods, each generating `N_TOKENS` = 256 greedy tokens per row (no eos):

P. pax_trax: ``decoding.autoregressive_sample(model, inputs=prefix,
   batch_size=B, temperature=0.0, eos_id=None, max_length=256)``: one
   compiled ``lax.while_loop``, caches sized by the function to prefix + 256 - 1
   = 260 positions. Timed to the returned numpy array.
T. The issue's (b): a Python loop over one-token predict-mode calls of the
   model as built, as Trax 1.4.1's ``autoregressive_sample`` does, with the
   caches a predict-mode TransformerLM holds (``max_len`` = 2048 positions,
   Trax's size): one jitted step ``(params, state, tokens)
   -> (state, next tokens)`` with ``pax_trax.purecall``, the state donated;
   256 calls (the first feeds the start symbol and the prefix, a second compiled
   program). The host never waits inside the loop: the tokens stay on the
   device and are fetched at the end.
B. T with caches of 260 positions like P's (``decoding.init_predict_state``):
   the same work per step as P, so P / B is what the compiled loop alone
   buys (no target; about 1.1x on a CPU, where a step is bound by memory
   traffic and the host's work per step is small).
A. Recompute the whole prefix at every step: the eval-mode TransformerLM
   (same weights), jitted once, on a token buffer padded to the fixed length
   260 (``PREFIX + N_TOKENS``) so that one compiled program serves all 256
   calls; the step index is a traced argument; each call takes the argmax of
   the logits at the current position and writes it into the buffer
   (donated). The padding means every call does the work of 260 positions;
   padding to a few length buckets would halve that on average at the price
   of one compile per bucket.
H. A with the output layer applied at the current position only (the
   model's other layers still run on all 260 positions): A computes logits
   for every position, as calling the model does, and XLA does not remove
   the unused ones. A stronger baseline than the issue's (a); reported
   with its ratio against the 10x mark, the target is judged on A.

All run in one process. First each method runs once (compilation); the
tokens of these runs are compared: P and B must agree exactly (and T, in
the full run); A and H, whose arithmetic differs (attention over 260
padded positions rather than a cache), are compared token by token and
must agree with P on at least `MIN_AGREE` leading tokens of every row (on
all `check_calls` calls run: 256 at batch 1, fewer at batch 8 to bound the
run time). Then repetitions rotate the order P B T A H, H A T B P, ...; a
repetition of P, B and T is a full 256-token generation, one of A and H is
`a_calls` of their calls (every call costs the same, since the shape is
fixed, so tokens/s = batch * calls / time).

The table gives the median tokens/s of each method and, as the speedup of
P, the median over repetitions of the paired ratio time per token (method /
P); the ratio of the medians is printed too. Targets, at batch 1: P at
least 10x A and at least 3x B. Compile time is reported separately from
the steady-state figures: the seconds of each method's first call spent
tracing, lowering and compiling, summed from ``jax.monitoring`` events (B
and T compile two programs: the prefix call and the one-token call).

Ratios are what count: absolute times move with machine load.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import platform
import sys
import time
from statistics import median as _median

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
from training import (  # benchmarks/training.py: the scripts' shared helpers
    _load,
    _per_call,
)

import pax_trax
from pax_trax import nn
from pax_trax.core.shapes import ShapeDtype
from pax_trax.models.transformer import TransformerLM
from pax_trax.supervised import decoding

# ---------------------------------------------------------------------------
# Configuration

VOCAB, D_MODEL, D_FF, N_LAYERS, N_HEADS = 32000, 512, 2048, 6, 8
N_TOKENS = 256
PREFIX = 4
LENGTH = PREFIX + N_TOKENS        # cache positions of P and B; padded length of A and H
TRAX_CACHE = 2048                 # Trax 1.4.1's predict-mode cache size
OUT_SCALE = 20.0
SEED = 0
BATCHES = (1, 8)
MIN_AGREE = 128                   # leading tokens A and H must share with P in every row
MIN_DISTINCT = 16                 # distinct tokens per row (not a degenerate repeat)
TARGETS = {"A": 10.0, "T": 3.0}   # speedups of P at batch 1: the (a) and (b)

METHODS = ("P", "B", "T", "A", "H")
RECOMPUTE = ("A", "H")
NAMES = {
    "P": "P  pax_trax autoregressive_sample (while_loop)",
    "B": "B  Python loop, jitted predict step, cache 260",
    "T": "T  Python loop, jitted predict step, cache 2048",
    "A": "A  recompute, eval model padded to 260",
    "H": "H  A, output layer at the current position only",
}


# ---------------------------------------------------------------------------
# Model


def build_models():
    """(eval-mode model, predict-mode model) with the same random, rescaled weights."""
    model = TransformerLM(VOCAB, D_MODEL, D_FF, N_LAYERS, N_HEADS, mode="eval")
    model = model.init(jax.ShapeDtypeStruct((1, LENGTH), jnp.int32), jax.random.PRNGKey(SEED))
    layers = list(model.layers)
    emb, head = layers[1], layers[-1]
    assert isinstance(emb, nn.Embedding) and emb.w.shape == (VOCAB, D_MODEL), emb
    assert isinstance(head, nn.Dense) and head.w.shape == (D_MODEL, VOCAB), head
    layers[1] = emb.replace(w=emb.w * np.sqrt(D_MODEL))
    layers[-1] = head.replace(w=head.w * OUT_SCALE, b=head.b * OUT_SCALE)
    model = model.replace(layers=tuple(layers))
    predict = TransformerLM(VOCAB, D_MODEL, D_FF, N_LAYERS, N_HEADS, mode="predict")
    return model, predict.update_parameters(model.parameters())


def bytes_per_step(model, batch, cache_length):
    """(weight bytes, cache bytes) one decoding step reads: all weights but the gathered tables."""
    total = sum(x.nbytes for x in jax.tree_util.tree_leaves(model.parameters()))
    gathered = model.layers[1].w.nbytes + model.layers[3].w.nbytes  # embedding, positions
    caches = 2 * N_LAYERS * batch * cache_length * D_MODEL * 4       # keys and values, float32
    return total - gathered, caches


# ---------------------------------------------------------------------------
# The methods. P, B, T: a function that generates (batch, N_TOKENS) numpy tokens.


def make_pax_trax(predict, prefix):
    batch = prefix.shape[0]
    return lambda: decoding.autoregressive_sample(
        predict, inputs=prefix, batch_size=batch, temperature=0.0, eos_id=None,
        max_length=N_TOKENS)


@functools.partial(jax.jit, donate_argnums=(1,))
def _predict_step(params, states, tokens):
    model, logits = pax_trax.purecall(states.update_parameters(params), tokens)
    return model.states(), jnp.argmax(logits[:, -1, :], axis=-1).astype(jnp.int32)[:, None]


_fresh_state = jax.jit(decoding.init_predict_state, static_argnums=(1, 2))


def make_stepwise(predict, prefix, cache_length):
    batch = prefix.shape[0]
    signature = ShapeDtype((batch, 1), np.int32)
    params = predict.parameters()
    first = jnp.concatenate([jnp.zeros((batch, 1), jnp.int32), jnp.asarray(prefix)], axis=1)

    def generate():
        states = _fresh_state(predict, signature, cache_length).states()
        tokens, out = first, []
        for _ in range(N_TOKENS):
            states, tokens = _predict_step(params, states, tokens)
            out.append(tokens)
        return np.concatenate(jax.device_get(out), axis=1)

    return generate


# A, H: a function calls(n) that runs the first n steps and returns the buffer's tokens.


@functools.partial(jax.jit, donate_argnums=(1,))
def _recompute_step(model, buf, t):
    """Position t of `buf` := argmax of the eval model's logits there (logits everywhere)."""
    logits = jax.lax.dynamic_slice_in_dim(model(buf), t, 1, axis=1)[:, 0, :]
    token = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jax.lax.dynamic_update_slice_in_dim(buf, token[:, None], t, axis=1)


@functools.partial(jax.jit, donate_argnums=(2,))
def _recompute_head_step(body, head, buf, t):
    """As `_recompute_step`, applying the output layer at position t only."""
    hidden = jax.lax.dynamic_slice_in_dim(body(buf), t, 1, axis=1)   # (batch, 1, d_model)
    token = jnp.argmax(head(hidden)[:, 0, :], axis=-1).astype(jnp.int32)
    return jax.lax.dynamic_update_slice_in_dim(buf, token[:, None], t, axis=1)


def make_recompute(model, prefix, head_only):
    if head_only:
        step = functools.partial(_recompute_head_step, nn.Serial(*model.layers[:-1]),
                                 model.layers[-1])
    else:
        step = functools.partial(_recompute_step, model)
    start = np.zeros((prefix.shape[0], LENGTH), np.int32)
    start[:, :PREFIX] = prefix  # eval mode shifts right: the logits at t see buf[:, :t]

    def calls(n_calls):
        buf = jnp.asarray(start)
        for j in range(n_calls):
            buf = step(buf, np.int32(PREFIX + j))
        return np.asarray(buf)[:, PREFIX:]

    return calls


# ---------------------------------------------------------------------------
# Helpers


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


_COMPILE_SECONDS = [0.0]  # tracing, lowering and XLA compilation so far (jax.monitoring)


def _count_compile_time(event, seconds, **_):
    if event.startswith("/jax/core/compile/"):
        _COMPILE_SECONDS[0] += seconds


def _timed_first(fn):
    """(wall seconds, seconds of those spent tracing, lowering and compiling, fn's result)."""
    before = _COMPILE_SECONDS[0]
    seconds, out = _timed(fn)
    return seconds, _COMPILE_SECONDS[0] - before, out


def _agreement(a, b):
    """(fraction of equal tokens, fewest leading equal tokens over rows)."""
    equal = a == b
    leading = [row.size if row.all() else int(np.argmin(row)) for row in equal]
    return float(equal.mean()), min(leading)


def _peakedness(model, prefix, tokens):
    """Median top-1 probability and top-1 margin of the eval model at the generated positions."""
    logits = jax.jit(lambda m, x: m(x))(model, np.concatenate([prefix, tokens], axis=1))
    logits = logits[:, PREFIX:, :]
    top2 = jax.lax.top_k(logits, 2)[0]
    p1 = jnp.max(jax.nn.softmax(logits, axis=-1), axis=-1)
    return float(jnp.median(p1)), float(jnp.median(top2[..., 0] - top2[..., 1]))


# ---------------------------------------------------------------------------
# Benchmark


def check_tokens(batch, tokens, n_check, failures):
    """Compares every method's tokens with P's; returns a one-line summary."""
    ref, notes, ok = tokens["P"], [], True
    for k in ("B", "T"):
        if k in tokens:
            same = np.array_equal(ref, tokens[k])
            notes.append(f"P == {k} on all {batch}x{N_TOKENS} tokens: {same}")
            if not same:
                frac, lead = _agreement(ref, tokens[k])
                failures.append(f"batch {batch}: P and {k} disagree ({frac:.4f} of the tokens "
                                f"equal, {lead} leading)")
                ok = False
    for k in RECOMPUTE:
        frac, lead = _agreement(ref[:, :n_check], tokens[k][:, :n_check])
        notes.append(f"P vs {k} on the first {n_check}: {frac:.4f} equal, >= {lead} leading")
        if lead < min(MIN_AGREE, n_check):
            failures.append(f"batch {batch}: {k} agrees with P on only {lead} leading tokens")
            ok = False
    distinct = [len(set(row.tolist())) for row in ref]
    notes.append(f"distinct tokens per row {min(distinct)}-{max(distinct)}")
    if min(distinct) < MIN_DISTINCT:
        failures.append(f"batch {batch}: degenerate output ({min(distinct)} distinct tokens)")
        ok = False
    if len({row.tobytes() for row in ref}) < batch:
        failures.append(f"batch {batch}: the rows are not all different")
        ok = False
    return ("OK" if ok else "FAILED") + ": " + "; ".join(notes)


def bench_batch(model, predict, batch, cfg, methods, failures):
    rng = np.random.default_rng(SEED + batch)
    prefix = rng.integers(1, VOCAB, size=(batch, PREFIX)).astype(np.int32)
    gen = {"P": make_pax_trax(predict, prefix), "B": make_stepwise(predict, prefix, LENGTH)}
    if "T" in methods:
        gen["T"] = make_stepwise(predict, prefix, TRAX_CACHE)
    for k in RECOMPUTE:
        gen[k] = make_recompute(model, prefix, head_only=k == "H")
    print(f"--- batch {batch} ---")

    # First calls (compilation); their tokens are what the checks compare.
    first, compile_s, tokens, check = {}, {}, {}, {}
    n_check = cfg["check_calls"]
    for k in methods:
        if k in RECOMPUTE:
            first[k], compile_s[k], _ = _timed_first(functools.partial(gen[k], 1))
            check[k], tokens[k] = _timed(functools.partial(gen[k], n_check))
        else:
            first[k], compile_s[k], tokens[k] = _timed_first(gen[k])
    print("first call, s (of which tracing + lowering + compiling): "
          + ", ".join(f"{k} {first[k]:.2f} ({compile_s[k]:.2f})" for k in methods)
          + "; " + ", ".join(f"{k}: {n_check} calls in {check[k]:.2f} s" for k in RECOMPUTE))
    print("check " + check_tokens(batch, tokens, n_check, failures))
    p1, margin = _peakedness(model, prefix, tokens["P"])
    print(f"predictions: median top-1 probability {p1:.3f}, median top-1 margin {margin:.2f} "
          f"(logits)")

    # Interleaved repetitions: seconds per generated token (all rows together).
    def run(k):
        if k in RECOMPUTE:
            seconds, _ = _timed(functools.partial(gen[k], cfg["a_calls"]))
            return seconds / (cfg["a_calls"] * batch)
        seconds, _ = _timed(gen[k])
        return seconds / (N_TOKENS * batch)

    per_token = {k: [] for k in methods}
    for r in range(cfg["reps"]):
        for k in (methods if r % 2 == 0 else tuple(reversed(methods))):
            per_token[k].append(run(k))
    weights, caches = bytes_per_step(predict, batch, LENGTH)
    states = _fresh_state(predict, ShapeDtype((batch, 1), np.int32), LENGTH).states()
    params = predict.parameters()
    return dict(
        per_token=per_token, compile=compile_s, first=first,
        check_rate={k: batch * n_check / check[k] for k in RECOMPUTE}, n_check=n_check,
        weights=weights, caches=caches, caches_trax=bytes_per_step(predict, batch, TRAX_CACHE)[1],
        flatten=_per_call(lambda: jax.tree_util.tree_flatten((params, states)), 200),
        leaves=len(jax.tree_util.tree_leaves((params, states))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (noisier figures)")
    args = parser.parse_args(argv)
    if args.quick:  # fewer repetitions and fewer checked calls of A and H
        cfg = dict(reps=3, a_calls={1: 8, 8: 2}, check_calls={1: 32, 8: 8})
        methods = METHODS
    else:
        cfg = dict(reps=5, a_calls={1: 24, 8: 4}, check_calls={1: N_TOKENS, 8: 16})
        methods = METHODS

    dev = jax.devices()[0]
    print("pax_trax decoding benchmark" + (" (--quick)" if args.quick else ""))
    print(f"date:    {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"jax:     {jax.__version__} (jaxlib {jaxlib.__version__}), "
          f"pax_trax {pax_trax.__version__}")
    print(f"device:  {dev.platform} {dev.device_kind} ({len(jax.devices())} device(s)), "
          f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}")
    print(f"load:    {_load()} (1/5/15 min) at start")
    print(f"model:   TransformerLM vocab {VOCAB}, d_model {D_MODEL}, d_ff {D_FF}, "
          f"{N_LAYERS} layers, {N_HEADS} heads; greedy, {N_TOKENS} tokens after a "
          f"{PREFIX}-token prefix; embedding x sqrt(d_model), output layer x {OUT_SCALE}")
    print(f"config:  {cfg}")
    t_start = time.perf_counter()
    jax.monitoring.register_event_duration_secs_listener(_count_compile_time)
    model, predict = build_models()
    print(f"parameters: {pax_trax.count_parameters(model):,} "
          f"(built in {time.perf_counter() - t_start:.1f} s)")
    print()

    failures, results = [], {}
    for batch in BATCHES:
        bcfg = {k: (v[batch] if isinstance(v, dict) else v) for k, v in cfg.items()}
        results[batch] = bench_batch(model, predict, batch, bcfg, methods, failures)
        print(f"load: {_load()}")
        print()

    def paired(pt, k):
        return [x / p for x, p in zip(pt[k], pt["P"])]

    header = ("batch", "method", "tokens/s", "ms/step", "speedup of P", "compile (s)")
    widths = (5, 48, 9, 8, 12, 11)
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("-" * len(line))
    verdicts = []
    for batch, res in results.items():
        pt = res["per_token"]
        for k in methods:
            speedup = _median(paired(pt, k))
            cells = (str(batch), NAMES[k], f"{1 / _median(pt[k]):.1f}",
                     f"{_median(pt[k]) * batch * 1e3:.2f}",
                     "-" if k == "P" else f"{speedup:.2f}x", f"{res['compile'][k]:.2f}")
            print("  ".join(c.ljust(w) for c, w in zip(cells, widths)))
            if batch == 1 and k in TARGETS:
                verdicts.append((k, speedup, TARGETS[k], speedup >= TARGETS[k]))
    print()
    for k, value, target, ok in verdicts:
        print(f"target: P vs {k} at batch 1: {value:.2f}x (>= {target:g}x) -> "
              f"{'PASS' if ok else 'FAIL'}")
    h1 = _median(paired(results[1]["per_token"], "H"))
    print(f"(not a target) P vs H at batch 1: {h1:.2f}x "
          f"({'at least' if h1 >= TARGETS['A'] else 'under'} the 10x of A's target)")
    for failure in failures:
        print(f"check FAILED: {failure}")
    print("speedup = median over repetitions of the paired ratio time per token (method / P); "
          "ms/step = one decoding step (a token for every row; A, H: one call); "
          "compile = seconds of the first call spent tracing, lowering and compiling "
          "(jax.monitoring events; B and T compile two programs).")
    print("Details:")
    for batch, res in results.items():
        pt = res["per_token"]
        print(f"  batch {batch}: first call, s: "
              + ", ".join(f"{k} {res['first'][k]:.2f}" for k in methods)
              + " (P, B, T: a whole generation; A, H: one call)")
        for k in methods:
            r = paired(pt, k)
            print(f"  batch {batch} {k}: tokens/s median {1 / _median(pt[k]):.1f} "
                  f"(min {1 / max(pt[k]):.1f}, max {1 / min(pt[k]):.1f})"
                  + (f"; the {res['n_check']}-call check run: {res['check_rate'][k]:.1f} "
                     "tokens/s" if k in RECOMPUTE else "")
                  + ("" if k == "P" else
                     f"; speedup of P: paired median {_median(r):.2f} (min {min(r):.2f}, "
                     f"max {max(r):.2f}), ratio of medians "
                     f"{_median(pt[k]) / _median(pt['P']):.2f}"))
        gbs = (res["weights"] + res["caches"]) / (_median(pt["P"]) * batch) / 1e9
        print(f"  batch {batch}: a step reads {res['weights'] / 1e6:.0f} MB of weights and "
              f"{res['caches'] / 1e6:.1f} MB of caches at 260 positions "
              f"({res['caches_trax'] / 1e6:.1f} MB at 2048): P moves {gbs:.1f} GB/s")
        print(f"  batch {batch}: host work per call of B and T, flattening the parameters and "
              f"the state ({res['leaves']} leaves): {res['flatten'] * 1e6:.0f} us")
    print(f"load at end: {_load()}; wall time {time.perf_counter() - t_start:.1f} s")
    print("Ratios are what count; absolute times vary with machine load.")
    return 0 if all(v[3] for v in verdicts) and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
