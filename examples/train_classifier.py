"""Train a small classifier with a pure training loop: jax, optax and purecall.

The model uses BatchNorm (whose running statistics are state) and Dropout
(whose RNG key is state). A training call changes that state, so it is
written ``model, logits = pax_trax.purecall(model, x)`` and the new module
is threaded out of the jitted train step together with the optimizer state.

The data set, three interleaved spirals in 2-D, is generated here with
numpy: nothing is downloaded.

    python examples/train_classifier.py            # 600 steps, a few seconds on CPU
    python examples/train_classifier.py --steps 50
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pax_trax
from pax_trax import nn

N_CLASSES = 3


def make_spirals(n_per_class, seed, noise=0.25, turns=1.25):
    """Three interleaved noisy 2-D spirals: `(x float32 (n, 2), y int32 (n,))`, shuffled."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(N_CLASSES):
        r = np.linspace(0.05, 1.0, n_per_class)
        theta = r * turns * 2.0 * np.pi + c * 2.0 * np.pi / N_CLASSES
        theta = theta + rng.normal(0.0, noise, n_per_class)
        xs.append(np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1))
        ys.append(np.full(n_per_class, c))
    x = np.concatenate(xs).astype(np.float32)
    y = np.concatenate(ys).astype(np.int32)
    order = rng.permutation(len(y))
    return x[order], y[order]


def make_model(hidden=64, dropout=0.1):
    """An MLP with batch norm and dropout; the input size is inferred at `init`.

    BatchNorm's default momentum is Trax's 0.999: its running averages (what
    eval mode normalizes with) start at mean 0 / variance 1 and would need
    thousands of steps to reach the real statistics. A short run like this one
    uses 0.9.
    """
    return nn.Serial(
        nn.Dense(hidden),
        nn.BatchNorm(axis=(0,), momentum=0.9),
        nn.Relu(),
        nn.Dense(hidden),
        nn.BatchNorm(axis=(0,), momentum=0.9),
        nn.Relu(),
        nn.Dropout(dropout),
        nn.Dense(N_CLASSES),
    )


def make_train_step(optimizer):
    """Returns a jitted `(model, opt_state, x, y) -> (model, opt_state, loss)`."""

    def loss_fn(params, model, x, y):
        # Differentiate with respect to the parameters only: state (BN
        # statistics, the dropout key) is not trainable, and the key is an
        # integer array that jax.grad would refuse.
        model = model.update_parameters(params)
        model, logits = pax_trax.purecall(model, x)  # new BN stats, advanced dropout key
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, model

    @jax.jit
    def train_step(model, opt_state, x, y):
        params = model.parameters()
        (loss, model), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, model, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        model = model.update_parameters(optax.apply_updates(params, updates))
        return model, opt_state, loss

    return train_step


@jax.jit
def accuracy(model, x, y):
    """Accuracy of `model` (call it in eval mode: a plain call, no state change)."""
    return jnp.mean(jnp.argmax(model(x), axis=-1) == y)


def main(n_steps=600, seed=0, batch_size=128, learning_rate=3e-3, log_every=100, verbose=True):
    """Trains on spirals and evaluates on fresh ones.

    Returns a dict: `first_loss` (the first step's batch loss), `final_loss`
    (mean batch loss of the last 10 steps), `eval_accuracy` (on held-out data,
    in eval mode) and `model` (the trained module, still in train mode).
    """
    say = print if verbose else (lambda *a, **k: None)
    x_train, y_train = make_spirals(600, seed)
    x_test, y_test = make_spirals(200, seed + 1)

    key = jax.random.PRNGKey(seed)
    model = make_model().init(pax_trax.shapes.signature(x_train[:batch_size]), key)
    say(model)
    say(model.summary())

    optimizer = optax.adam(learning_rate)
    opt_state = optimizer.init(model.parameters())
    train_step = make_train_step(optimizer)

    rng = np.random.default_rng(seed)
    losses = []
    start = time.perf_counter()
    for step in range(1, n_steps + 1):
        idx = rng.choice(len(y_train), batch_size, replace=False)
        model, opt_state, loss = train_step(model, opt_state, x_train[idx], y_train[idx])
        losses.append(loss)
        if step == 1 or step % log_every == 0 or step == n_steps:
            say(f"step {step:5d}  loss {float(loss):.4f}")
    losses = [float(v) for v in losses]
    elapsed = time.perf_counter() - start

    eval_model = model.eval()  # BN uses its running statistics, Dropout is the identity
    acc = float(accuracy(eval_model, x_test, y_test))
    say(f"trained {n_steps} steps in {elapsed:.1f} s")
    say(f"eval accuracy: {acc:.3f}")
    return {
        "first_loss": losses[0],
        # One batch's loss is noisy (dropout, sampling): average the last few.
        "final_loss": float(np.mean(losses[-10:])),
        "eval_accuracy": acc,
        "model": model,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="number of training steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=100)
    args = parser.parse_args()
    main(n_steps=args.steps, seed=args.seed, log_every=args.log_every)
