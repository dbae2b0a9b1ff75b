"""Tests of pax_trax.supervised.train_step: the functional training step."""

import functools

import jax
import jax.numpy as jnp
import jmp
import numpy as np
import optax
import pytest

import pax_trax
from pax_trax import nn, optimizers
from pax_trax.supervised.train_step import (
    LossScaleState,
    init_optimizer_state,
    make_eval_step,
    make_train_step,
)


def close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32),
                               rtol=rtol, atol=atol)


def trees_close(a, b, rtol=1e-5, atol=1e-6):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        close(x, y, rtol, atol)


def classification_data(n=8, d=5, k=3, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, d).astype(np.float32)
    y = rng.randint(0, k, size=(n,)).astype(np.int32)
    w = rng.uniform(0.5, 1.5, size=(n,)).astype(np.float32)
    return x, y, w


@functools.lru_cache(maxsize=None)  # modules are immutable: share the init
def mlp(d=5, k=3, seed=0):
    return nn.Serial(nn.Dense(4), nn.Relu(), nn.Dense(k)).init(
        np.zeros((1, d), np.float32), jax.random.PRNGKey(seed))


# ---------------------------------------------------------------------------
# Agreement with a hand-written optax step


def test_matches_hand_written_optax_step():
    model = mlp()
    x, y, w = classification_data()
    optimizer = optax.adam(0.05)
    opt_state = init_optimizer_state(optimizer, model)
    step = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), optimizer))
    new_model, new_opt_state, metrics = step(model, opt_state, (x, y, w))

    # The same step written by hand on a dict of arrays.
    d1, d2 = model.layers[0], model.layers[2]
    params = {"w1": d1.w, "b1": d1.b, "w2": d2.w, "b2": d2.b}

    def loss_fn(p):
        h = jnp.maximum(x @ p["w1"] + p["b1"], 0.0)
        logits = h @ p["w2"] + p["b2"]
        logp = jax.nn.log_softmax(logits)
        ce = -jnp.take_along_axis(logp, y[:, None], axis=-1)[:, 0]
        return jnp.sum(ce * w) / jnp.sum(w)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    ref_state = optimizer.init(params)
    updates, _ = optimizer.update(grads, ref_state, params)
    want = optax.apply_updates(params, updates)

    close(metrics["loss"], loss)
    assert metrics["loss"].dtype == jnp.float32 and metrics["loss"].shape == ()
    close(metrics["gradients_l2"], optax.tree.norm(grads))
    close(metrics["weights_l2"], optax.tree.norm(params))
    close(new_model.layers[0].w, want["w1"])
    close(new_model.layers[0].b, want["b1"])
    close(new_model.layers[2].w, want["w2"])
    close(new_model.layers[2].b, want["b2"])
    # The optimizer state advanced (Adam's count) and has the model's structure.
    assert int(new_opt_state[0].count) == 1
    assert not np.allclose(new_opt_state[0].mu.layers[0].w, 0.0)
    # The input model is untouched (immutability).
    assert np.array_equal(model.layers[0].w, d1.w)


def test_jit_equals_eager_and_pax_trax_optimizer():
    model = mlp()
    x, y, w = classification_data()
    optimizer = optimizers.Adam(learning_rate=0.01)
    opt_state = init_optimizer_state(optimizer, model)
    step = make_train_step(nn.WeightedCategoryCrossEntropy(), optimizer)
    jitted = jax.jit(step)
    m_e, s_e, met_e = step(model, opt_state, (x, y, w))
    m_j, s_j, met_j = jitted(model, opt_state, (x, y, w))
    assert not np.allclose(m_j.layers[0].w, model.layers[0].w)
    trees_close(m_e, m_j)
    trees_close(s_e, s_j)
    for name in ("loss", "gradients_l2", "weights_l2"):
        close(met_e[name], met_j[name])


def test_extra_batch_items_are_ignored_and_short_batch_is_an_error():
    model = mlp()
    x, y, w = classification_data()
    opt = optax.sgd(0.1)
    s = init_optimizer_state(opt, model)
    step = jax.jit(make_train_step(nn.CategoryCrossEntropy(), opt))
    m2, _, met2 = step(model, s, (x, y))
    m3, _, met3 = step(model, s, (x, y, w))  # weights unused by a 2-input loss
    close(met2["loss"], met3["loss"])
    trees_close(m2, m3)
    weighted = make_train_step(nn.WeightedCategoryCrossEntropy(), opt)
    with pytest.raises(ValueError, match="takes 3 batch items.*has 2"):
        weighted(model, s, (x, y))


# ---------------------------------------------------------------------------
# State threading and RNG keys


@functools.lru_cache(maxsize=None)
def stateful_model():
    model = nn.Serial(nn.Dense(6), nn.BatchNorm(axis=(0,)), nn.Relu(), nn.Dropout(0.5),
                      nn.Dense(3))
    return model.init(np.zeros((8, 5), np.float32), jax.random.PRNGKey(1))


def test_batchnorm_statistics_and_dropout_key_advance():
    model = stateful_model()
    x, y, w = classification_data()
    opt = optax.sgd(0.1)
    step = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), opt))
    new, _, metrics = step(model, init_optimizer_state(opt, model), (x, y, w))
    bn, new_bn = model.layers[1], new.layers[1]
    assert int(new_bn.n_batches) == int(bn.n_batches) + 1
    assert not np.allclose(new_bn.running_mean, bn.running_mean)
    assert new_bn.running_mean.dtype == bn.running_mean.dtype
    assert not np.array_equal(new.layers[3].rng, model.layers[3].rng)
    assert np.isfinite(metrics["loss"])
    # The parameters moved, and the model kept its mode.
    assert not np.allclose(new.layers[0].w, model.layers[0].w)
    assert new.layers[3].mode == "train"


def test_key_makes_the_step_deterministic_and_keys_change_masks():
    model = stateful_model()
    x, y, w = classification_data()
    opt = optax.sgd(0.5)
    s = init_optimizer_state(opt, model)
    step = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), opt))
    k1, k2 = jax.random.PRNGKey(10), jax.random.PRNGKey(11)
    a, _, ma = step(model, s, (x, y, w), k1)
    b, _, mb = step(model, s, (x, y, w), k1)
    c, _, mc = step(model, s, (x, y, w), k2)
    trees_close(a, b, rtol=0, atol=0)
    assert float(ma["loss"]) == float(mb["loss"])
    # A different key gives a different dropout mask: different loss and weights.
    assert float(ma["loss"]) != float(mc["loss"])
    assert not np.allclose(a.layers[0].w, c.layers[0].w)
    # The key overrides the model's own RNG state: a model with another
    # dropout key but the same `key` gives the same step.
    other = model.replace(layers=model.layers[:3] + (
        model.layers[3].replace(rng=jax.random.PRNGKey(99)),) + model.layers[4:])
    d, _, _ = step(other, s, (x, y, w), k1)
    trees_close(a, d, rtol=0, atol=0)


# ---------------------------------------------------------------------------
# Gradient accumulation


@pytest.mark.parametrize("kind", ["l2", "cce"])
def test_accumulation_equals_big_batch(kind):
    rng = np.random.RandomState(3)
    x = rng.randn(16, 5).astype(np.float32)
    if kind == "l2":
        loss_layer = nn.L2Loss()
        model = nn.Serial(nn.Dense(4), nn.Tanh(), nn.Dense(2)).init(np.zeros((1, 5), np.float32))
        y = rng.randn(16, 2).astype(np.float32)
        batch = (x, y, np.ones((16, 2), np.float32))
    else:
        loss_layer = nn.CategoryCrossEntropy()
        model = mlp()
        batch = (x, rng.randint(0, 3, size=(16,)).astype(np.int32))
    opt = optax.adam(0.01)
    s = init_optimizer_state(opt, model)
    big = jax.jit(make_train_step(loss_layer, opt))
    acc = jax.jit(make_train_step(loss_layer, opt, n_accumulation_steps=4))
    m1, s1, met1 = big(model, s, batch)
    m4, s4, met4 = acc(model, s, batch)
    close(met1["loss"], met4["loss"])
    close(met1["gradients_l2"], met4["gradients_l2"])
    trees_close(m1, m4, atol=2e-6)
    trees_close(s1, s4, atol=2e-6)


def test_accumulation_threads_state_through_micro_batches():
    model = stateful_model()
    x, y, w = classification_data(n=8)
    opt = optax.sgd(0.1)
    step = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), opt,
                                   n_accumulation_steps=2))
    new, _, metrics = step(model, init_optimizer_state(opt, model), (x, y, w),
                           jax.random.PRNGKey(0))
    assert int(new.layers[1].n_batches) == int(model.layers[1].n_batches) + 2
    assert np.isfinite(metrics["loss"])


def test_accumulation_batch_not_divisible_is_an_error():
    model = mlp()
    x, y, w = classification_data(n=6)
    opt = optax.sgd(0.1)
    step = make_train_step(nn.WeightedCategoryCrossEntropy(), opt, n_accumulation_steps=4)
    with pytest.raises(ValueError, match="divisible by 4.*shape \\(6, 5\\)"):
        step(model, init_optimizer_state(opt, model), (x, y, w))
    with pytest.raises(ValueError, match="n_accumulation_steps must be an integer >= 1"):
        make_train_step(nn.L2Loss(), opt, n_accumulation_steps=0)


# ---------------------------------------------------------------------------
# Chunked loss


VOCAB = 17


@functools.lru_cache(maxsize=None)
def lm(log_softmax=False, seed=0):
    layers = [nn.Embedding(VOCAB, 8), nn.Dense(6), nn.Relu(), nn.Serial(nn.Dense(VOCAB))]
    if log_softmax:
        layers.append(nn.LogSoftmax())
    return nn.Serial(*layers).init(np.zeros((1, 10), np.int32), jax.random.PRNGKey(seed))


def lm_batch(batch=4, length=10, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randint(0, VOCAB, size=(batch, length)).astype(np.int32)
    y = rng.randint(0, VOCAB, size=(batch, length)).astype(np.int32)
    w = (rng.uniform(size=(batch, length)) > 0.3).astype(np.float32)
    return x, y, w


def one_sgd_step(loss_layer, model, batch, **kw):
    opt = optax.sgd(1.0)  # new weights = weights - gradients
    step = jax.jit(make_train_step(loss_layer, opt, **kw))
    return step(model, init_optimizer_state(opt, model), batch)


@pytest.mark.parametrize(
    "loss_layer, log_softmax, n_items, chunk, shape",
    [
        # vocab 17, chunk 5: 4 * 10 = 40 rows in 8 chunks; 3 * 7 = 21 rows padded to 25
        (nn.WeightedCategoryCrossEntropy(), False, 3, 5, (4, 10)),
        (nn.WeightedCategoryCrossEntropy(label_smoothing=0.1), False, 3, 5, (3, 7)),
        (nn.CategoryCrossEntropy(), False, 2, 6, (4, 10)),  # padded, unweighted mean
        (nn.CrossEntropyLoss(), True, 3, 5, (3, 7)),  # model ends Dense, LogSoftmax
        (nn.CrossEntropyLossWithLogSoftmax(), False, 3, 9, (4, 10)),
        (nn.CrossEntropySum(), True, 3, 5, (4, 10)),
    ],
    ids=["wcce", "wcce_smooth_pad", "cce_pad", "xent_logsoftmax", "xent_with_ls", "xent_sum"],
)
def test_chunked_loss_equals_unchunked(loss_layer, log_softmax, n_items, chunk, shape):
    model = lm(log_softmax)
    batch = lm_batch(*shape)[:n_items]
    m_full, _, met_full = one_sgd_step(loss_layer, model, batch)
    m_chunk, _, met_chunk = one_sgd_step(loss_layer, model, batch, loss_chunk_size=chunk)
    close(met_chunk["loss"], met_full["loss"])
    close(met_chunk["gradients_l2"], met_full["gradients_l2"])
    # SGD with rate 1: equal new weights means equal gradients, leaf by leaf.
    trees_close(m_chunk, m_full, atol=1e-6)
    assert not np.allclose(m_chunk.layers[0].w, model.layers[0].w)
    assert not np.allclose(m_chunk.layers[3].layers[0].w, model.layers[3].layers[0].w)


def _all_eqns(jaxpr):
    """The equations of a jaxpr and of every jaxpr nested in it (pjit, scan, remat...)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for p in eqn.params.values():
            for sub in p if isinstance(p, (tuple, list)) else (p,):
                if hasattr(sub, "eqns"):
                    yield from _all_eqns(sub)
                elif hasattr(getattr(sub, "jaxpr", None), "eqns"):  # a ClosedJaxpr
                    yield from _all_eqns(sub.jaxpr)


def _all_avals(jaxpr):
    for eqn in _all_eqns(jaxpr):
        for v in eqn.outvars:
            yield v.aval


def test_chunked_loss_never_materializes_full_logits():
    model = lm()
    batch = lm_batch()  # 40 rows
    opt = optax.sgd(1.0)

    def biggest_logits(chunk):
        step = make_train_step(nn.WeightedCategoryCrossEntropy(), opt, loss_chunk_size=chunk)
        jaxpr = jax.make_jaxpr(step)(model, init_optimizer_state(opt, model), batch).jaxpr
        sizes = [int(np.prod(a.shape[:-1])) for a in _all_avals(jaxpr)
                 if getattr(a, "shape", ()) and a.shape[-1] == VOCAB and len(a.shape) >= 2]
        return max(sizes)

    assert biggest_logits(0) >= 40  # the unchunked step holds (4, 10, 17) logits
    assert biggest_logits(5) < 40  # chunked: (5, 17) logits at a time (and the (6, 17) kernel)


def test_chunked_loss_errors():
    opt = optax.sgd(0.1)
    no_dense = nn.Serial(nn.Embedding(VOCAB, 8), nn.Dense(VOCAB), nn.Relu()).init(
        np.zeros((1, 10), np.int32))
    step = make_train_step(nn.WeightedCategoryCrossEntropy(), opt, loss_chunk_size=5)
    with pytest.raises(ValueError, match="ends in a Dense layer.*'Relu'"):
        step(no_dense, init_optimizer_state(opt, no_dense), lm_batch())
    with pytest.raises(ValueError, match="cross-entropy loss layers.*got L2Loss"):
        make_train_step(nn.L2Loss(), opt, loss_chunk_size=5)
    with pytest.raises(ValueError, match="loss_chunk_size must be an integer >= 0"):
        make_train_step(nn.L2Loss(), opt, loss_chunk_size=-1)


# ---------------------------------------------------------------------------
# Mixed precision


def regression_problem(n=32, d=4, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, d).astype(np.float32)
    y = (x @ rng.randn(d, 1)).astype(np.float32)
    return x, y, np.ones_like(y)


def test_bfloat16_policy_keeps_float32_params_and_learns():
    model = nn.Serial(nn.Dense(16), nn.Relu(), nn.Dense(1)).init(np.zeros((1, 4), np.float32))
    batch = regression_problem()
    opt = optax.adam(0.02)
    policy = "params=float32,compute=bfloat16,output=float32"
    step_fn = make_train_step(nn.L2Loss(), opt, policy=policy)
    step = jax.jit(step_fn)
    # The forward matmuls run in bfloat16.
    jaxpr = jax.make_jaxpr(step_fn)(model, init_optimizer_state(opt, model), batch)
    dots = [e for e in _all_eqns(jaxpr.jaxpr) if e.primitive.name == "dot_general"]
    assert dots and all(e.invars[0].aval.dtype == jnp.bfloat16 for e in dots)
    s = init_optimizer_state(opt, model)
    losses = []
    m = model
    for _ in range(20):
        m, s, metrics = step(m, s, batch)
        losses.append(float(metrics["loss"]))
        assert metrics["loss"].dtype == jnp.float32
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(m.parameters()))
    assert all(leaf.dtype == jnp.float32
               for leaf in jax.tree_util.tree_leaves(s) if jnp.issubdtype(leaf.dtype, jnp.floating))
    assert losses[-1] < 0.5 * losses[0]


def test_bfloat16_policy_keeps_batchnorm_state_dtype():
    model = stateful_model()
    x, y, w = classification_data()
    opt = optax.sgd(0.1)
    step = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), opt,
                                   policy=jmp.get_policy("p=f32,c=bf16,o=f32")))
    new, _, metrics = step(model, init_optimizer_state(opt, model), (x, y, w))
    assert new.layers[1].running_mean.dtype == jnp.float32
    assert new.layers[0].w.dtype == jnp.float32
    assert np.isfinite(metrics["loss"])


def test_static_loss_scale_gives_the_unscaled_step():
    model = mlp()
    x, y, w = classification_data()
    opt = optax.sgd(0.1)
    s = init_optimizer_state(opt, model)
    plain = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), opt))
    scaled = make_train_step(nn.WeightedCategoryCrossEntropy(), opt,
                             loss_scale=jmp.StaticLossScale(2.0 ** 10))
    m1, _, met1 = plain(model, s, (x, y, w))
    m2, s2, met2 = jax.jit(scaled)(model, s, (x, y, w))
    close(met1["loss"], met2["loss"])  # the reported loss is unscaled
    trees_close(m1, m2)
    assert not isinstance(s2, LossScaleState)


def test_dynamic_loss_scale_skips_non_finite_step_and_lowers_scale():
    model = nn.Serial(nn.Dense(8), nn.BatchNorm(axis=(0,)), nn.Relu(), nn.Dense(1)).init(
        np.zeros((4, 4), np.float32))
    x, y, w = regression_problem(n=8)
    opt = optax.adam(0.01)
    loss_scale = jmp.DynamicLossScale(jnp.float32(2.0 ** 8), period=2)
    opt_state = init_optimizer_state(opt, model, loss_scale)
    assert isinstance(opt_state, LossScaleState)
    step = jax.jit(make_train_step(nn.L2Loss(), opt, loss_scale=loss_scale,
                                   policy="params=float32,compute=float16,output=float32"))

    # 1e6 overflows float16 (max 65504): the forward gives inf, the gradients NaN.
    bad_x = x.copy()
    bad_x[0, 0] = 1e6
    m1, s1, met1 = step(model, opt_state, (bad_x, y, w))
    assert not bool(met1["grads_finite"])
    assert isinstance(s1, LossScaleState)
    close(s1.loss_scale.loss_scale, 2.0 ** 7)
    close(met1["loss_scale"], 2.0 ** 7)
    trees_close(m1.parameters(), model.parameters(), rtol=0, atol=0)
    trees_close(s1.opt_state, opt_state.opt_state, rtol=0, atol=0)
    # Float statistics are not polluted by the skipped step.
    np.testing.assert_array_equal(m1.layers[1].running_mean, model.layers[1].running_mean)

    # A finite batch then updates the weights; the scale stays and the counter runs.
    m2, s2, met2 = step(m1, s1, (x, y, w))
    assert bool(met2["grads_finite"])
    assert np.isfinite(met2["loss"])
    close(s2.loss_scale.loss_scale, 2.0 ** 7)
    assert int(s2.loss_scale.counter) == 1
    assert not np.allclose(m2.layers[0].w, model.layers[0].w)
    assert m2.layers[0].w.dtype == jnp.float32
    # After `period` finite steps the scale grows again.
    _, s3, _ = step(m2, s2, (x, y, w))
    close(s3.loss_scale.loss_scale, 2.0 ** 8)


def test_dynamic_loss_scale_wraps_a_plain_opt_state():
    model = mlp()
    x, y, w = classification_data()
    opt = optax.sgd(0.1)
    step = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), opt,
                                   loss_scale=jmp.DynamicLossScale(jnp.float32(2.0 ** 4))))
    m, s, met = step(model, init_optimizer_state(opt, model), (x, y, w))
    assert isinstance(s, LossScaleState) and bool(met["grads_finite"])
    ref, _, _ = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), opt))(
        model, init_optimizer_state(opt, model), (x, y, w))
    trees_close(m, ref)


def test_bad_arguments():
    with pytest.raises(TypeError, match="optax.GradientTransformation"):
        make_train_step(nn.L2Loss(), object())
    with pytest.raises(TypeError, match="jmp.Policy"):
        make_train_step(nn.L2Loss(), optax.sgd(0.1), policy=3)
    with pytest.raises(TypeError, match="loss_scale must be"):
        make_train_step(nn.L2Loss(), optax.sgd(0.1), loss_scale=2.0)
    with pytest.raises(TypeError, match="batch must be a tuple"):
        make_train_step(nn.L2Loss(), optax.sgd(0.1))(mlp(), None, np.zeros((2, 5)))


# ---------------------------------------------------------------------------
# Eval step


def test_eval_step_matches_metric_layers_in_eval_mode():
    model = stateful_model()
    x, y, w = classification_data()
    metrics = [nn.WeightedCategoryAccuracy(), nn.WeightedCategoryCrossEntropy(),
               nn.CategoryAccuracy()]
    eval_step = jax.jit(make_eval_step(metrics))
    values = eval_step(model, (x, y, w))
    assert sorted(values) == ["CategoryAccuracy", "WeightedCategoryAccuracy",
                              "WeightedCategoryCrossEntropy"]
    logits = model.eval()(x)  # dropout off, running statistics: no state change
    close(values["WeightedCategoryCrossEntropy"],
          nn.WeightedCategoryCrossEntropy()((logits, y, w)))
    close(values["WeightedCategoryAccuracy"], nn.WeightedCategoryAccuracy()((logits, y, w)))
    close(values["CategoryAccuracy"], nn.CategoryAccuracy()((logits, y)))
    again = eval_step(model, (x, y, w))
    for k in values:
        assert float(values[k]) == float(again[k])


def test_eval_step_names():
    step = make_eval_step([nn.CategoryAccuracy(), nn.CategoryAccuracy()])
    model = mlp()
    x, y, _ = classification_data()
    assert list(step(model, (x, y))) == ["CategoryAccuracy", "CategoryAccuracy_1"]
    named = make_eval_step([nn.CategoryAccuracy()], metric_names=["acc"])
    assert list(named(model, (x, y))) == ["acc"]
    with pytest.raises(ValueError, match="distinct names"):
        make_eval_step([nn.CategoryAccuracy()], metric_names=["a", "b"])


def test_train_then_eval_with_purecall_contract():
    """The train step's model is an ordinary module: purecall and eval still work."""
    model = stateful_model()
    x, y, w = classification_data()
    opt = optax.sgd(0.1)
    new, _, _ = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), opt))(
        model, init_optimizer_state(opt, model), (x, y, w))
    newer, out = jax.jit(pax_trax.purecall)(new, x)
    assert out.shape == (8, 3)
    assert int(newer.layers[1].n_batches) == 2
