"""A complete pure training loop: value_and_grad + optax + purecall, BN and Dropout."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pax_trax
from pax_trax import nn


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]], np.float32)
    labels = rng.integers(0, 3, size=n)
    x = centers[labels] + 0.6 * rng.normal(size=(n, 2)).astype(np.float32)
    return x.astype(np.float32), labels.astype(np.int32)


def test_pure_training_loop_with_batchnorm_and_dropout():
    model = nn.Serial(
        nn.Dense(32), nn.BatchNorm(axis=(0,)), nn.Relu(), nn.Dropout(0.2),
        nn.Dense(3), nn.LogSoftmax(),
    )
    x_train, y_train = blobs(512, seed=0)
    x_test, y_test = blobs(256, seed=1)
    model = model.init(x_train[:64], jax.random.PRNGKey(0))
    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(model.parameters())

    def loss_fn(params, model, x, y):
        model, log_probs = pax_trax.purecall(model.update_parameters(params), x)
        loss = -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1))
        return loss, model

    @jax.jit
    def train_step(model, opt_state, x, y):
        (loss, model), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            model.parameters(), model, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, model.parameters())
        model = model.update_parameters(optax.apply_updates(model.parameters(), updates))
        return model, opt_state, loss

    losses = []
    first_rng = model.layers[3].rng
    for step in range(150):
        i = (step * 64) % 512
        model, opt_state, loss = train_step(model, opt_state, x_train[i:i + 64], y_train[i:i + 64])
        losses.append(float(loss))

    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    assert int(model.layers[1].n_batches) == 150  # BN state threaded through every step
    assert not np.array_equal(model.layers[3].rng, first_rng)  # dropout RNG advanced
    accuracy = float(jnp.mean(jnp.argmax(model.eval()(x_test), axis=1) == y_test))
    assert accuracy > 0.9


def test_import_is_light():
    # Import *time* is measured in benchmarks/import_time.py, not asserted here.
    code = (
        "import sys; import pax_trax, pax_trax.nn, pax_trax.shapes; "
        "print([m for m in ('tensorflow', 'tensorflow_datasets', 'tensorflow_text', 'gymnax', "
        "'flax', 'sentencepiece') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
