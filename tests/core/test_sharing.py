"""Explicit weight sharing that survives jit, grad and optax updates."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pax_trax
from pax_trax import nn

IDS = np.array([[1, 2, 3], [4, 0, 9]], np.int32)


def tied_lm():
    body = nn.Serial(nn.Embedding(10, 4), nn.Dense(4), nn.Relu(), nn.Dense(10, use_bias=False))
    return nn.Shared(body, source=lambda m: m[0].w, target=lambda m: m[3].w, get=jnp.transpose)


def test_tied_weight_is_stored_once():
    lm = tied_lm().init(IDS)
    assert lm.model[3].w is None
    shapes = sorted(leaf.shape for leaf in jax.tree_util.tree_leaves(lm))
    assert shapes == [(4,), (4, 4), (10, 4)]
    assert pax_trax.count_parameters(lm) == 10 * 4 + 4 * 4 + 4


def test_tied_output_uses_embedding_transpose():
    lm = tied_lm().init(IDS)
    emb = lm.model[0].w
    d = lm.model[1]
    h = np.maximum(np.asarray(emb)[IDS] @ np.asarray(d.w) + np.asarray(d.b), 0)
    np.testing.assert_allclose(lm(IDS), h @ np.asarray(emb).T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.jit(lambda m, x: m(x))(lm, IDS), h @ np.asarray(emb).T,
                               rtol=1e-5, atol=1e-6)


def test_gradient_from_both_uses_reaches_the_single_source():
    lm = tied_lm().init(IDS)

    def loss(m):
        return jnp.sum(m(IDS) ** 2)

    grads = jax.grad(loss)(lm)
    assert grads.model[3].w is None

    # Independent computation: the untied model with both copies, gradients summed.
    untied = lm.tied_model()
    g_untied = jax.grad(lambda m: jnp.sum(m(IDS) ** 2))(untied)
    expected = g_untied[0].w + g_untied[3].w.T
    np.testing.assert_allclose(grads.model[0].w, expected, rtol=1e-5, atol=1e-6)


def test_optax_update_keeps_the_tie():
    lm = tied_lm().init(IDS)
    opt = optax.adam(0.1)
    params = lm.parameters()
    opt_state = opt.init(params)

    @jax.jit
    def step(lm, opt_state):
        grads = jax.grad(lambda p: jnp.mean(lm.update_parameters(p)(IDS) ** 2))(lm.parameters())
        updates, opt_state = opt.update(grads, opt_state, lm.parameters())
        return lm.update_parameters(optax.apply_updates(lm.parameters(), updates)), opt_state

    new_lm, opt_state = step(lm, opt_state)
    new_lm, opt_state = step(new_lm, opt_state)
    assert not np.allclose(new_lm.model[0].w, lm.model[0].w)
    tied = new_lm.tied_model()
    np.testing.assert_array_equal(tied[3].w, tied[0].w.T)


def test_selectors_must_pick_array_fields():
    body = nn.Serial(nn.Embedding(10, 4), nn.Dense(10))
    with pytest.raises(ValueError, match="must return one array field"):
        nn.Shared(body, source=lambda m: m[0], target=lambda m: m[1].w)
    with pytest.raises(ValueError, match="same field"):
        nn.Shared(body, source=lambda m: m[0].w, target=lambda m: m[0].w)
