"""Layer benchmarks: pax_trax against Flax on the same computation.

Each benchmark times one jitted forward+backward step (gradient of a scalar
loss with respect to the parameters and the input) of a pax_trax layer and of
the equivalent Flax module, with identical weights, in the same process.
Runs are interleaved (pax_trax, Flax, pax_trax, ...) so that both see the
same machine load, and the median of the runs is reported together with the
ratio pax_trax / Flax (target: <= 1.05).

    python benchmarks/layers.py            # full size
    python benchmarks/layers.py --quick    # small shapes, a few seconds
    python benchmarks/layers.py --only causal_attention --repeats 15
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np


def _block(tree):
    jax.block_until_ready(tree)


def _time_once(fn, *args):
    """Returns (wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    _block(fn(*args))
    return time.perf_counter() - wall, time.process_time() - cpu


def compare(name, ours, theirs, repeats, warmup=2):
    """Times two (fn, args) pairs interleaved; prints and returns medians and ratios.

    Wall-clock time is the headline figure. Process CPU time (all threads) is
    printed too: on a machine shared with other jobs it is much less noisy,
    since waiting for a core is not counted.
    """
    (f_ours, a_ours), (f_theirs, a_theirs) = ours, theirs
    for _ in range(warmup):  # compile and warm caches
        _time_once(f_ours, *a_ours)
        _time_once(f_theirs, *a_theirs)
    t_ours, t_theirs = [], []
    for i in range(repeats):
        # Alternate which one goes first so neither always follows the other.
        if i % 2 == 0:
            t_ours.append(_time_once(f_ours, *a_ours))
            t_theirs.append(_time_once(f_theirs, *a_theirs))
        else:
            t_theirs.append(_time_once(f_theirs, *a_theirs))
            t_ours.append(_time_once(f_ours, *a_ours))
    med = lambda ts, j: statistics.median(t[j] for t in ts)  # noqa: E731
    wall_o, wall_t = med(t_ours, 0), med(t_theirs, 0)
    cpu_o, cpu_t = med(t_ours, 1), med(t_theirs, 1)
    print(f"{name}  (median of {repeats} interleaved runs)\n"
          f"  wall  pax_trax {wall_o * 1e3:9.2f} ms   flax {wall_t * 1e3:9.2f} ms   "
          f"ratio {wall_o / wall_t:5.3f}\n"
          f"  cpu   pax_trax {cpu_o * 1e3:9.2f} ms   flax {cpu_t * 1e3:9.2f} ms   "
          f"ratio {cpu_o / cpu_t:5.3f}")
    sys.stdout.flush()
    return {"name": name, "wall_ours_s": wall_o, "wall_flax_s": wall_t,
            "ratio": wall_o / wall_t, "cpu_ours_s": cpu_o, "cpu_flax_s": cpu_t,
            "cpu_ratio": cpu_o / cpu_t}


# ---------------------------------------------------------------------------
# CausalAttention vs flax.linen.MultiHeadDotProductAttention with a causal mask


def bench_causal_attention(quick, repeats):
    import flax.linen as fnn

    from pax_trax.nn.attention import CausalAttention

    batch, length, d, heads = (2, 256, 128, 4) if quick else (2, 1024, 512, 8)
    dh = d // heads
    x = jnp.asarray(np.random.default_rng(0).standard_normal((batch, length, d)), jnp.float32)

    ours = CausalAttention(d, n_heads=heads, mode="train").init(x, jax.random.PRNGKey(0))
    ours_params = ours.parameters()

    flax_model = fnn.MultiHeadDotProductAttention(num_heads=heads, qkv_features=d,
                                                  out_features=d, deterministic=True)
    # Copy our weights into Flax's layout so both compute the same function.
    dq, dk, dv = [s.sublayers[0] for s in ours.sublayers[0].sublayers[1].sublayers]
    final = ours.sublayers[3]

    def qkv(dense):
        return {"kernel": dense.w.reshape(d, heads, dh), "bias": dense.b.reshape(heads, dh)}

    flax_params = {"params": {"query": qkv(dq), "key": qkv(dk), "value": qkv(dv),
                              "out": {"kernel": final.w.reshape(heads, dh, d), "bias": final.b}}}

    def ours_loss(params, x):
        y = ours.update_parameters(params)(x)
        return jnp.mean(y * y)

    def flax_loss(params, x):
        mask = fnn.make_causal_mask(jnp.ones(x.shape[:2], jnp.int32))
        y = flax_model.apply(params, x, x, x, mask=mask)
        return jnp.mean(y * y)

    ours_step = jax.jit(jax.value_and_grad(ours_loss, argnums=(0, 1)))
    flax_step = jax.jit(jax.value_and_grad(flax_loss, argnums=(0, 1)))

    # Same function: check the values agree before timing.
    (l1, _), (l2, _) = ours_step(ours_params, x), flax_step(flax_params, x)
    if not np.allclose(float(l1), float(l2), rtol=1e-4):
        raise AssertionError(f"pax_trax and Flax disagree: loss {float(l1)} vs {float(l2)}")

    name = f"CausalAttention b{batch} l{length} d{d} h{heads}"
    return compare(name, (ours_step, (ours_params, x)), (flax_step, (flax_params, x)), repeats)


# ---------------------------------------------------------------------------
# LSTM vs flax.linen.RNN(flax.linen.LSTMCell)


def bench_lstm(quick, repeats):
    import flax.linen as fnn

    from pax_trax.nn.rnn import LSTM

    batch, length, d = (2, 64, 128) if quick else (2, 256, 512)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((batch, length, d)), jnp.float32)

    ours = LSTM(d, mode="eval").init(x, jax.random.PRNGKey(0))
    ours_params = ours.parameters()
    cell = [m for m in ours.modules() if type(m).__name__ == "LSTMCell"][0]
    # Our cell: [x, h] @ w + b, gates in Trax's order i, j(=g), f, o.
    # Flax's cell: separate input/hidden kernels per gate, biases on the hidden side.
    w, b = np.asarray(cell.w), np.asarray(cell.b)
    wx, wh = w[:d], w[d:]
    flax_cell = {}
    for k, gate in enumerate(["i", "g", "f", "o"]):
        cols = slice(k * d, (k + 1) * d)
        flax_cell["i" + gate] = {"kernel": wx[:, cols]}
        flax_cell["h" + gate] = {"kernel": wh[:, cols], "bias": b[cols]}
    flax_params = {"params": {"cell": flax_cell}}
    flax_model = fnn.RNN(fnn.LSTMCell(features=d))

    def ours_loss(params, x):
        y = ours.update_parameters(params)(x)
        return jnp.mean(y * y)

    def flax_loss(params, x):
        y = flax_model.apply(params, x)
        return jnp.mean(y * y)

    ours_step = jax.jit(jax.value_and_grad(ours_loss, argnums=(0, 1)))
    flax_step = jax.jit(jax.value_and_grad(flax_loss, argnums=(0, 1)))
    (l1, _), (l2, _) = ours_step(ours_params, x), flax_step(flax_params, x)
    if not np.allclose(float(l1), float(l2), rtol=1e-4):
        raise AssertionError(f"pax_trax and Flax disagree: loss {float(l1)} vs {float(l2)}")

    name = f"LSTM b{batch} l{length} d{d}"
    return compare(name, (ours_step, (ours_params, x)), (flax_step, (flax_params, x)), repeats)


BENCHMARKS = {
    "causal_attention": bench_causal_attention,
    "lstm": bench_lstm,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per layer")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append",
                        help="run only these benchmarks (repeatable)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (5 if args.quick else 11)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; "
          f"{'quick' if args.quick else 'full'} sizes; forward+backward, jitted")
    results = []
    for key in args.only or list(BENCHMARKS):
        results.append(BENCHMARKS[key](args.quick, repeats))
    return results


if __name__ == "__main__":
    main()
