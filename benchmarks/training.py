"""Steps per second of the training Loop against a hand-written jitted optax loop.

Run from the repository root::

    python benchmarks/training.py            # full run (about 2 minutes on 2 CPU cores)
    python benchmarks/training.py --quick    # short run (about 40 s), same checks, noisier

The exit status is 1 if the target is missed.

The model is Trax 1.4.1's ``TransformerLM`` built from ``pax_trax.nn`` layers
(``pax_trax.models`` does not exist yet)::

    Serial(ShiftRight(mode), Embedding(vocab, d_model), Dropout(rate),
           PositionalEncoding(max_len, mode),
           [Residual(LayerNorm(), CausalAttention(d_model, n_heads, dropout), Dropout(rate)),
            Residual(LayerNorm(), Dense(d_ff), Relu(), Dropout(rate), Dense(d_model),
                     Dropout(rate))] * n_layers,
           LayerNorm(), Dense(vocab))

with vocab 8192, d_model 256, d_ff 1024, 2 layers, 4 heads, dropout 0.1, on
batches of 8 sequences of 128 tokens, the loss ``WeightedCategoryCrossEntropy``
(on logits, as Trax 1.4.1's LM setup) and ``optax.adam(1e-3)``. The batches
come from a deterministic generator (token ids drawn from a fixed Zipf-like
unigram distribution, so the loss has something to learn; weights 1); as in
Trax's LM data the targets are the token ids themselves, and the model's
``ShiftRight`` makes the decoder input the targets shifted right by one.
Each side draws its own copy of the same stream, so both train on the same
batches, fed as numpy arrays (both pay the same host-to-device copy).

Sides, timed interleaved in one process (the order alternates A B C D, D C B A,
... so that load drift hits all sides equally):

A. ``training.Loop(model, TrainTask(batches, WeightedCategoryCrossEntropy(),
   optax.adam(1e-3), n_steps_per_checkpoint=10**9), output_dir=None,
   stdout=io.StringIO(), progress_bar=False, random_seed=SEED)``;
   a repetition is ``loop.run(k)``.
B. A hand-written loop: one ``jax.jit`` step (no buffer donation, like the
   Loop's step) using ``model.parameters()``, ``pax_trax.purecall``,
   ``jax.value_and_grad`` and ``optax.adam``, the same loss layer, and the
   same dropout keys as the Loop (``model.reseed(fold_in(PRNGKey(SEED),
   step))``, computed inside the jitted step from a step counter that lives
   on the device). The host blocks on the result only at the end of the
   repetition, so the host's dispatch of step n+1 overlaps step n's compute.
C. B plus ``float(loss)`` after every step, as the Loop does to stop on a
   non-finite loss: separates the cost of that per-step host sync from the
   rest of the Loop's overhead.
D. B with ``donate_argnums=(0, 1, 2)`` (model, optimizer state, step
   counter), as `overhead.py` and the `make_train_step` docstring recommend:
   shows what donating would change for the Loop.

Before timing, the script checks that A, B and D give the same losses over
the first steps (same initial weights, same batches, same dropout masks).

The table gives the median per-step time of each side over the repetitions
and, as the ratio, the median over repetitions of the paired ratio (the
sides of one repetition run back to back, so a burst of load from other
processes mostly cancels in their ratio; the ratio of the medians is printed
too). The target is on A / B: the Loop's per-step cost at most 1.03x the
hand-written loop's. Below the table, the per-step host work of the Loop
that B does not do is timed in isolation.

Ratios are what count: absolute times move with machine load.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import optax

import pax_trax
from pax_trax import nn
from pax_trax.supervised import training

# ---------------------------------------------------------------------------
# Configuration

VOCAB, D_MODEL, D_FF, N_LAYERS, N_HEADS = 8192, 256, 1024, 2, 4
DROPOUT, MAX_LEN = 0.1, 2048
BATCH, SEQ = 8, 128
LEARNING_RATE = 1e-3
SEED = 0
SANITY_STEPS = 4
TARGET = 1.03


# ---------------------------------------------------------------------------
# Model and data


def transformer_lm(vocab_size=VOCAB, d_model=D_MODEL, d_ff=D_FF, n_layers=N_LAYERS,
                   n_heads=N_HEADS, max_len=MAX_LEN, dropout=DROPOUT, mode="train"):
    """Trax 1.4.1's `trax.models.TransformerLM` (ff_activation=Relu) from pax_trax.nn layers."""

    def feed_forward():
        return [
            nn.LayerNorm(),
            nn.Dense(d_ff),
            nn.Relu(),
            nn.Dropout(rate=dropout, mode=mode),
            nn.Dense(d_model),
            nn.Dropout(rate=dropout, mode=mode),
        ]

    def decoder_block():
        return [
            nn.Residual(
                nn.LayerNorm(),
                nn.CausalAttention(d_model, n_heads=n_heads, dropout=dropout, mode=mode),
                nn.Dropout(rate=dropout, mode=mode),
            ),
            nn.Residual(*feed_forward()),
        ]

    return nn.Serial(
        nn.ShiftRight(mode=mode),
        nn.Embedding(vocab_size, d_model),
        nn.Dropout(rate=dropout, mode=mode),
        nn.PositionalEncoding(max_len=max_len, mode=mode),
        *[decoder_block() for _ in range(n_layers)],
        nn.LayerNorm(),
        nn.Dense(vocab_size),
    )


def batches(seed=SEED):
    """An endless deterministic stream of (inputs, targets, weights) token batches."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, VOCAB, dtype=np.float64)
    p = 1.0 / ranks  # Zipf-like unigram distribution over ids 1..VOCAB-1 (0 is padding)
    p /= p.sum()
    ids = rng.permutation(np.arange(1, VOCAB))
    weights = np.ones((BATCH, SEQ), np.float32)
    while True:
        tokens = rng.choice(ids, size=(BATCH, SEQ), p=p).astype(np.int32)
        yield tokens, tokens, weights


def _copy_tree(tree):
    """Independent device buffers with the same values (the hand-written step donates)."""
    return jax.tree_util.tree_map(lambda x: jnp.array(np.asarray(x)), tree)


# ---------------------------------------------------------------------------
# The two loops


def make_loop(model):
    task = training.TrainTask(
        batches(), nn.WeightedCategoryCrossEntropy(), optax.adam(LEARNING_RATE),
        n_steps_per_checkpoint=10**9)
    return training.Loop(model, task, output_dir=None, stdout=io.StringIO(),
                         progress_bar=False, random_seed=SEED)


def make_hand_step(loss_layer, optimizer, seed=SEED, donate=False):
    """A jitted step with the Loop's semantics: reseed dropout from fold_in(seed, step).

    With `donate`, the model, optimizer state and step counter buffers are
    donated to the step (`donate_argnums=(0, 1, 2)`).
    """
    base_key = jax.random.PRNGKey(seed)

    def step(model, opt_state, step_count, batch):
        x, y, w = batch
        step_count = step_count + 1
        model = model.reseed(jax.random.fold_in(base_key, step_count))
        params, states = model.parameters(), model.states()

        def loss_fn(p):
            new_model, logits = pax_trax.purecall(states.update_parameters(p), x)
            return loss_layer((logits, y, w)), new_model.states()

        (loss, new_states), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return new_states.update_parameters(params), opt_state, step_count, loss

    return jax.jit(step, donate_argnums=(0, 1, 2) if donate else ())


# ---------------------------------------------------------------------------
# Helpers


def _median(xs):
    return statistics.median(xs)


def _interleaved(fns, reps):
    """Runs each of `fns` `reps` times; even repetitions in order, odd ones reversed.

    Each fn runs one timed repetition and returns (wall, CPU) seconds per step.
    Returns one list of those pairs per fn.
    """
    times = [[] for _ in fns]
    for r in range(reps):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            times[i].append(fns[i]())
    return times


def _per_call(fn, iters):
    fn()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters


def _fmt_time(seconds):
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def _load():
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


# ---------------------------------------------------------------------------
# Benchmark


def sanity_check(loop, hand_sides):
    """Runs SANITY_STEPS steps on the Loop and on each hand-written side.

    `hand_sides` maps a name to `(step_fn, state, stream)`. Asserts that every
    side gives the Loop's losses; returns the Loop's losses, the losses of
    each side and each side's new state.
    """
    a_losses = []
    for _ in range(SANITY_STEPS):
        loop.run(1)
        a_losses.append(loop.history.get("train", loop.tasks[0].loss_name)[-1][1])
    losses, states = {}, {}
    for name, (step_fn, state, stream) in hand_sides.items():
        model, opt_state, count = state
        b_losses = []
        for _ in range(SANITY_STEPS):
            model, opt_state, count, loss = step_fn(model, opt_state, count, next(stream))
            b_losses.append(float(loss))
        np.testing.assert_allclose(
            a_losses, b_losses, rtol=2e-5, atol=2e-5,
            err_msg=f"the Loop and the hand-written step ({name}) disagree")
        losses[name], states[name] = b_losses, (model, opt_state, count)
    assert a_losses[-1] < a_losses[0], f"the loss did not decrease: {a_losses}"
    return a_losses, losses, states


def host_costs(loop, iters):
    """Per-step host work the Loop does and the hand-written loop does not, timed alone."""
    # The Loop derives the step key inside its compiled step and passes the
    # step as a numpy scalar; what is left on the host per step is this.
    metrics = {"loss": jnp.float32(1.0)}
    jax.block_until_ready(metrics)
    return {
        "np.int32(step)": _per_call(lambda: np.int32(7), iters),
        "float(loss) of a ready scalar": _per_call(lambda: float(metrics["loss"]), iters),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (noisier figures)")
    args = parser.parse_args(argv)
    if args.quick:
        cfg = dict(reps=5, steps=2, warmup=1, host_iters=200)
    else:
        cfg = dict(reps=15, steps=4, warmup=2, host_iters=2000)

    dev = jax.devices()[0]
    print("pax_trax training-loop benchmark" + (" (--quick)" if args.quick else ""))
    print(f"date:    {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"jax:     {jax.__version__} (jaxlib {jaxlib.__version__}), "
          f"optax {optax.__version__}, pax_trax {pax_trax.__version__}")
    print(f"device:  {dev.platform} {dev.device_kind} ({len(jax.devices())} device(s)), "
          f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}")
    print(f"load:    {_load()} (1/5/15 min) at start")
    print(f"model:   TransformerLM vocab {VOCAB}, d_model {D_MODEL}, d_ff {D_FF}, "
          f"{N_LAYERS} layers, {N_HEADS} heads, dropout {DROPOUT}; batch {BATCH} x {SEQ} "
          f"tokens; adam({LEARNING_RATE})")
    print(f"config:  {cfg}")
    print()
    t_start = time.perf_counter()

    model = transformer_lm().init(jax.ShapeDtypeStruct((BATCH, SEQ), jnp.int32),
                                  jax.random.PRNGKey(SEED))
    print(f"parameters: {pax_trax.count_parameters(model):,}")
    optimizer = optax.adam(LEARNING_RATE)

    def hand_state():
        m = _copy_tree(model)
        return m, optimizer.init(m.parameters()), jnp.zeros((), jnp.int32)

    loop = make_loop(model)
    loss_layer = nn.WeightedCategoryCrossEntropy()
    hand_step = make_hand_step(loss_layer, optimizer)
    donating_step = make_hand_step(loss_layer, optimizer, donate=True)
    streams = {"hand": batches(), "donating": batches()}

    t0 = time.perf_counter()
    a_losses, losses, box = sanity_check(loop, {
        "hand": (hand_step, hand_state(), streams["hand"]),
        "donating": (donating_step, hand_state(), streams["donating"]),
    })
    b_losses = losses["hand"]
    print(f"sanity check (includes compiling the steps, {time.perf_counter() - t0:.1f} s): "
          f"losses agree over {SANITY_STEPS} steps "
          f"(Loop {a_losses[0]:.5f} -> {a_losses[-1]:.5f}, "
          f"hand-written {b_losses[0]:.5f} -> {b_losses[-1]:.5f}, "
          f"also with donation)")
    steps = cfg["steps"]

    def run_loop():
        jax.block_until_ready((loop.model, loop.optimizer_states))
        t0, c0 = time.perf_counter(), time.process_time()
        loop.run(steps)
        jax.block_until_ready((loop.model, loop.optimizer_states))
        return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps

    def run_hand(kind, step_fn, sync_every_step):
        stream = streams[kind]

        def timed():
            model, opt_state, count = box[kind]
            jax.block_until_ready((model, opt_state, count))
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(steps):
                model, opt_state, count, loss = step_fn(model, opt_state, count,
                                                        next(stream))
                if sync_every_step:
                    float(loss)
            jax.block_until_ready((model, opt_state, count, loss))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            box[kind] = (model, opt_state, count)
            return wall / steps, cpu / steps

        return timed

    fns = [run_loop, run_hand("hand", hand_step, False), run_hand("hand", hand_step, True),
           run_hand("donating", donating_step, False)]
    for _ in range(cfg["warmup"]):  # settle caches and the allocator (no compilation left)
        for fn in fns:
            fn()
    results = _interleaved(fns, cfg["reps"])
    wall = {k: [t[0] for t in ts] for k, ts in zip("ABCD", results)}
    cpu = {k: [t[1] for t in ts] for k, ts in zip("ABCD", results)}

    def paired(times, x, y):
        return [a / b for a, b in zip(times[x], times[y])]

    host = host_costs(loop, cfg["host_iters"])

    print()
    header = ("side", "wall/step", "steps/s", "wall ratio", "CPU/step", "CPU ratio")
    widths = (50, 10, 7, 10, 10, 9)
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("-" * len(line))
    names = {"A": "A  Loop.run (training.Loop)",
             "B": "B  hand-written jit + optax (sync at the end only)",
             "C": "C  B + float(loss) every step",
             "D": "D  B + donate_argnums=(0, 1, 2)"}
    for k in "ABCD":
        cells = (names[k], _fmt_time(_median(wall[k])), f"{1 / _median(wall[k]):.2f}",
                 f"{_median(paired(wall, k, 'B')):.3f}", _fmt_time(_median(cpu[k])),
                 f"{_median(paired(cpu, k, 'B')):.3f}")
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)))
    ratio = _median(paired(wall, "A", "B"))
    ok = ratio <= TARGET
    print()
    print(f"target: Loop per-step wall time <= {TARGET} x hand-written (A/B, median paired "
          f"ratio): {ratio:.3f} -> {'PASS' if ok else 'FAIL'}")
    print("ratio = median over repetitions of the paired ratio side / B; CPU = process CPU "
          "time (all threads) per step.")
    print(f"Details ({cfg['reps']} repetitions of {steps} steps per side):")
    for k in "ABCD":
        print(f"  {k}: wall median {_fmt_time(_median(wall[k]))} (min {_fmt_time(min(wall[k]))}, "
              f"max {_fmt_time(max(wall[k]))}); CPU median {_fmt_time(_median(cpu[k]))}")
    for x, y in (("A", "B"), ("A", "C"), ("C", "B"), ("D", "B")):
        r, rc = paired(wall, x, y), paired(cpu, x, y)
        print(f"  {x}/{y}: wall paired ratio median {_median(r):.3f} (min {min(r):.3f}, "
              f"max {max(r):.3f}), ratio of medians "
              f"{_median(wall[x]) / _median(wall[y]):.3f}; CPU paired ratio median "
              f"{_median(rc):.3f} (min {min(rc):.3f}, max {max(rc):.3f})")
    print("Host work per step of the Loop that B does not do, timed alone:")
    for name, seconds in host.items():
        print(f"  {name:42s} {_fmt_time(seconds):>10s} "
              f"({seconds / _median(wall['B']) * 100:.3f}% of B's step)")
    print(f"load at end: {_load()}; wall time {time.perf_counter() - t_start:.1f} s")
    print("Ratios are what count; absolute times vary with machine load.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
