"""jax.jit, jax.grad, jax.vmap and jax.pmap applied to modules directly."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pax_trax
from pax_trax import nn


def mlp(key=0):
    model = nn.Serial(nn.Dense(8), nn.Relu(), nn.Dense(3))
    return model.init(np.zeros((1, 4), np.float32), jax.random.PRNGKey(key))


def reference_mlp(model, x):
    d1, d2 = model.layers[0], model.layers[2]
    h = np.maximum(np.asarray(x) @ np.asarray(d1.w) + np.asarray(d1.b), 0)
    return h @ np.asarray(d2.w) + np.asarray(d2.b)


X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)


def test_jit_takes_module_as_argument_and_caches_by_structure():
    traces = []

    @jax.jit
    def forward(model, x):
        traces.append(1)
        return model(x)

    model = mlp()
    np.testing.assert_allclose(forward(model, X), reference_mlp(model, X), rtol=1e-5, atol=1e-6)
    other = mlp(key=3)  # same structure, new weights: no retrace
    np.testing.assert_allclose(forward(other, X), reference_mlp(other, X), rtol=1e-5, atol=1e-6)
    assert len(traces) == 1


def test_jit_returns_modules():
    model = jax.jit(lambda m: jax.tree_util.tree_map(lambda w: w * 0, m))(mlp())
    assert isinstance(model, nn.Serial) and float(jnp.abs(model.layers[0].w).sum()) == 0.0


def test_grad_of_module_is_module_shaped_and_matches_finite_differences():
    model = mlp()

    def loss(m):
        return jnp.sum(m(X) ** 2)

    grads = jax.grad(loss)(model)
    assert isinstance(grads, nn.Serial)
    assert grads.layers[0].w.shape == (4, 8)
    # Central finite difference on one weight entry (one-sided differences in
    # float32 are off by the curvature term, a few percent here).
    eps = 1e-2

    def bumped(delta):
        w = model.layers[0].w.at[1, 2].add(delta)
        return model.replace(layers=(model.layers[0].replace(w=w),) + model.layers[1:])

    numeric = (loss(bumped(eps)) - loss(bumped(-eps))) / (2 * eps)
    np.testing.assert_allclose(grads.layers[0].w[1, 2], numeric, rtol=5e-3)


def test_no_gradient_flows_into_float_state():
    x = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    model = nn.Serial(nn.Dense(3), nn.BatchNorm(axis=(0,))).init(x).eval()
    # In eval mode the output depends on the running statistics, yet their
    # gradient is zero: state is not trainable.
    grads = jax.grad(lambda m: jnp.sum(m(x) ** 2), allow_int=True)(model)
    bn_grads = grads.layers[1]
    np.testing.assert_array_equal(bn_grads.running_mean, np.zeros(3))
    np.testing.assert_array_equal(bn_grads.running_var, np.zeros(3))
    assert float(jnp.abs(bn_grads.gamma).sum()) > 0


def test_grad_through_parameters_skips_state_entirely():
    model = nn.Serial(nn.Dense(4), nn.Dropout(0.5), nn.Dense(2)).init(X)

    def loss(params, model, x):
        model, y = pax_trax.purecall(model.update_parameters(params), x)
        return jnp.mean(y**2), model

    grads, new_model = jax.grad(loss, has_aux=True)(model.parameters(), model, X)
    assert grads.layers[1].rng is None  # state masked out of the gradient tree
    assert not np.array_equal(new_model.layers[1].rng, model.layers[1].rng)
    # optax consumes the parameter tree directly.
    opt = optax.sgd(0.1)
    updates, _ = opt.update(grads, opt.init(model.parameters()))
    stepped = model.update_parameters(optax.apply_updates(model.parameters(), updates))
    np.testing.assert_allclose(stepped.layers[0].w, model.layers[0].w - 0.1 * grads.layers[0].w, rtol=1e-6)


def test_vmap_over_stacked_modules_is_an_ensemble():
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    ensemble = jax.vmap(lambda k: nn.Dense(3).init(np.zeros((1, 4), np.float32), k))(keys)
    assert ensemble.w.shape == (4, 4, 3)
    out = jax.vmap(lambda m, x: m(x), in_axes=(0, None))(ensemble, X)
    for i in range(4):
        member = jax.tree_util.tree_map(lambda a, i=i: a[i], ensemble)
        np.testing.assert_allclose(out[i], X @ member.w + member.b, rtol=1e-5, atol=1e-6)


def test_vmap_over_inputs_with_module_broadcast():
    model = mlp()
    out = jax.vmap(lambda x: model(x))(X)
    np.testing.assert_allclose(out, reference_mlp(model, X), rtol=1e-5, atol=1e-6)


def replicate(tree, n):
    return jax.tree_util.tree_map(lambda a: jnp.stack([a] * n), tree)


def test_pmap_with_replicated_module():
    n = jax.local_device_count()
    assert n == 2, "conftest makes two host devices visible"
    model = mlp()
    replicated = replicate(model, jax.local_device_count())
    assert replicated.layers[0].w.shape == (2, 4, 8)
    xs = np.stack([X, 2 * X])
    out = jax.pmap(lambda m, x: m(x))(replicated, xs)
    np.testing.assert_allclose(out[1], reference_mlp(model, 2 * X), rtol=1e-5, atol=1e-6)


def test_pmap_gradient_averaging_equals_single_device_gradient():
    model = mlp()
    xs = np.stack([X[:2], X[2:4]])

    def loss(m, x):
        return jnp.mean(m(x) ** 2)

    def step(m, x):
        return jax.lax.pmean(jax.grad(loss)(m, x), "devices")

    replicated = replicate(model, jax.local_device_count())
    grads = jax.pmap(step, axis_name="devices")(replicated, xs)
    full = jax.grad(loss)(model, X[:4])
    np.testing.assert_allclose(grads.layers[0].w[0], full.layers[0].w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_layers", [50])
def test_flatten_unflatten_roundtrip_of_deep_model(n_layers):
    model = nn.Serial([nn.Dense(4) for _ in range(n_layers)]).init(np.zeros((1, 4), np.float32))
    leaves, treedef = jax.tree_util.tree_flatten(model)
    assert len(leaves) == 2 * n_layers
    again = jax.tree_util.tree_unflatten(treedef, leaves)
    np.testing.assert_array_equal(again.layers[-1].w, model.layers[-1].w)
