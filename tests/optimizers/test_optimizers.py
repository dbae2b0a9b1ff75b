"""Tests of pax_trax.optimizers: optax chains, Trax's update formulas, errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pax_trax import nn, optimizers
from pax_trax.optimizers import MomentumType
from pax_trax.supervised import lr_schedules

# ---------------------------------------------------------------------------
# A small convex problem whose parameter tree includes a pax_trax module.
# ---------------------------------------------------------------------------

_RNG = np.random.default_rng(0)
_X = _RNG.normal(size=(8, 4)).astype(np.float32)
_Y = _RNG.normal(size=(8, 3)).astype(np.float32)
_T_VEC = _RNG.normal(size=(5,)).astype(np.float32)
_T_MAT = _RNG.normal(size=(2, 3)).astype(np.float32)


def make_params():
    dense = nn.Dense(3).init(np.zeros((1, 4), np.float32), jax.random.PRNGKey(0))
    return {
        "dense": dense.parameters(),
        "vec": jnp.asarray(np.linspace(-1.0, 1.0, 5), jnp.float32),
        "mat": jnp.asarray(np.arange(6.0).reshape(2, 3) / 3.0, jnp.float32),
    }


def loss_fn(params):
    pred = params["dense"](_X)
    return (
        jnp.mean((pred - _Y) ** 2)
        + 0.5 * jnp.sum((params["vec"] - _T_VEC) ** 2)
        + 0.25 * jnp.sum((params["mat"] - _T_MAT) ** 2)
    )


grad_fn = jax.jit(jax.grad(loss_fn))


def run(opt, params, n_steps, jit=False):
    """Returns the list of parameter trees after each of `n_steps` updates."""
    state = opt.init(params)
    update = jax.jit(opt.update) if jit else opt.update
    history = []
    for _ in range(n_steps):
        updates, state = update(grad_fn(params), state, params)
        params = optax.apply_updates(params, updates)
        history.append(params)
    return history


def assert_trees_close(a, b, rtol=1e-6, atol=1e-7):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------
# Each factory equals the explicit optax chain it is made of, step by step.
# ---------------------------------------------------------------------------

_SCHED = lr_schedules.warmup(3, 0.05)


def _chain_cases():
    lr_s = lambda c: _SCHED(c + 1)  # noqa: E731
    return {
        "adam": (
            optimizers.Adam(0.01, weight_decay_rate=1e-3, b1=0.8, b2=0.99, eps=1e-6),
            optax.chain(
                optax.scale_by_adam(b1=0.8, b2=0.99, eps=1e-6),
                optax.scale_by_learning_rate(0.01),
                optax.add_decayed_weights(-1e-3),
            ),
        ),
        "adam_clip_schedule": (
            optimizers.Adam(_SCHED, clip_grad_norm=0.5),
            optax.chain(
                optax.clip_by_global_norm(0.5),
                optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-5),
                optax.scale_by_schedule(lambda c: -lr_s(c)),
                optax.add_decayed_weights(-1e-5),
            ),
        ),
        "sgd": (
            optimizers.SGD(0.05),
            optax.chain(optax.scale(-0.05)),
        ),
        "sgd_clip_wd": (
            optimizers.SGD(0.05, clip_grad_norm=1.0, weight_decay_rate=0.01),
            optax.chain(
                optax.clip_by_global_norm(1.0),
                optax.scale(-0.05),
                optax.add_decayed_weights(-0.01),
            ),
        ),
        "momentum_nesterov": (
            optimizers.Momentum(0.02, mass=0.8, weight_decay_rate=1e-3),
            optax.chain(
                optax.trace(decay=0.8, nesterov=True),
                optax.scale(-0.02),
                optax.add_decayed_weights(-1e-3),
            ),
        ),
        "momentum_heavy_ball": (
            optimizers.Momentum(0.02, nesterov=False, clip_grad_norm=2.0),
            optax.chain(
                optax.clip_by_global_norm(2.0),
                optax.trace(decay=0.9, nesterov=False),
                optax.scale(-0.02),
                optax.add_decayed_weights(-1e-5),
            ),
        ),
        "rmsprop": (
            optimizers.RMSProp(0.01, gamma=0.8, eps=1e-6),
            optax.chain(
                optax.scale_by_rms(decay=0.8, eps=1e-6, initial_scale=1.0, eps_in_sqrt=False),
                optax.scale(-0.01),
            ),
        ),
        "adafactor_default": (
            optimizers.Adafactor(),
            optax.chain(
                optax.scale_by_factored_rms(
                    factored=True, decay_rate=0.8, min_dim_size_to_factor=1, epsilon=1e-16
                ),
                optax.clip_by_block_rms(1.0),
                optax.scale(0.05),
                optax.scale_by_param_block_rms(min_scale=1e-3),
                optax.add_decayed_weights(1e-5),
                optax.scale(-1.0),
            ),
        ),
        "adafactor_all_options": (
            optimizers.Adafactor(
                _SCHED, factored=False, multiply_by_parameter_scale=False, do_clipping=False,
                do_momentum=True, beta1=0.7, decay_rate=0.6, weight_decay_rate=0.01,
                weight_decay_n_steps=3, epsilon1=1e-12, clip_grad_norm=1.0,
            ),
            optax.chain(
                optax.clip_by_global_norm(1.0),
                optax.scale_by_factored_rms(
                    factored=False, decay_rate=0.6, min_dim_size_to_factor=1, epsilon=1e-12
                ),
                optax.scale_by_schedule(lr_s),
                optax.ema(0.7, debias=False),
                optax.add_decayed_weights(lambda c: 0.01 * jnp.maximum(3 - c, 0) / 3),
                optax.scale(-1.0),
            ),
        ),
        "sm3_default": (
            optimizers.SM3(),
            optax.chain(optax.scale_by_sm3(b1=0.9, b2=1.0, eps=1e-32), optax.scale(-0.01)),
        ),
        "sm3_heavy_ball_wd": (
            optimizers.SM3(0.05, momentum=0.5, weight_decay=0.01,
                           momentum_type=MomentumType.HEAVY_BALL),
            optax.chain(
                optax.scale_by_sm3(b1=0.0, b2=1.0, eps=1e-32),
                optax.add_decayed_weights(0.01),
                optax.trace(0.5),
                optax.scale(-0.05),
            ),
        ),
        "sm3_nesterov": (
            optimizers.SM3(0.05, momentum=0.5, momentum_type=MomentumType.NESTEROV),
            optax.chain(
                optax.scale_by_sm3(b1=0.0, b2=1.0, eps=1e-32),
                optax.add_decayed_weights(0.0),
                optax.trace(0.5, nesterov=True),
                optax.scale(-0.05),
            ),
        ),
    }


_CASES = _chain_cases()


@pytest.mark.parametrize("case", sorted(_CASES))
def test_factory_equals_explicit_optax_chain(case):
    opt, chain = _CASES[case]
    assert isinstance(opt, optax.GradientTransformation)
    params = make_params()
    got = run(opt, params, 4, jit=True)
    want = run(chain, params, 4, jit=True)
    for g, w in zip(got, want):
        assert_trees_close(g, w)


@pytest.mark.parametrize("case", ["adam_clip_schedule", "sm3_nesterov"])
def test_jit_update_equals_eager(case):
    opt, _ = _CASES[case]
    params = make_params()
    assert_trees_close(run(opt, params, 3, jit=True)[-1], run(opt, params, 3)[-1], rtol=1e-5)


# ---------------------------------------------------------------------------
# Every optimizer decreases a convex loss.
# ---------------------------------------------------------------------------

_DECREASE = {
    "Adam": lambda: optimizers.Adam(0.05),
    "Adam_schedule": lambda: optimizers.Adam(lr_schedules.warmup_and_rsqrt_decay(5, 0.1)),
    "SGD": lambda: optimizers.SGD(0.1),
    "Momentum": lambda: optimizers.Momentum(0.02),
    "RMSProp": lambda: optimizers.RMSProp(0.05),
    "Adafactor": lambda: optimizers.Adafactor(0.3),
    "SM3": lambda: optimizers.SM3(0.3),
    "SM3_graft": lambda: optimizers.SM3(0.3, second_moment_averaging=0.9),
}


@pytest.mark.parametrize("name", sorted(_DECREASE))
def test_optimizer_decreases_convex_loss(name):
    params = make_params()
    start = float(loss_fn(params))
    history = run(_DECREASE[name](), params, 40, jit=True)
    losses = [float(loss_fn(p)) for p in history]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * start, (start, losses[-1])
    # The module survives the round trip through optax.
    assert isinstance(history[-1]["dense"], nn.Dense)
    assert history[-1]["dense"](_X).shape == (8, 3)


# ---------------------------------------------------------------------------
# Hand-written numpy references of Trax's update formulas.
# ---------------------------------------------------------------------------


def reference_run(update_leaf, init_leaf, params, n_steps, lr_fn, clip=None):
    """Runs Trax's per-array update (in float64 numpy) for `n_steps` steps.

    `lr_fn(step)` gives the learning rate for Trax's 1-based Loop step; the
    optimizer sees the 0-based step, as in Trax's `tree_update(step=0, ...)`.
    """
    leaves, treedef = jax.tree.flatten(params)
    weights = [np.asarray(x, np.float64) for x in leaves]
    slots = [init_leaf(w) for w in weights]
    history = []
    for step in range(n_steps):
        tree = jax.tree.unflatten(treedef, [jnp.asarray(w, jnp.float32) for w in weights])
        grads = [np.asarray(g, np.float64) for g in jax.tree.leaves(grad_fn(tree))]
        if clip is not None:
            norm = np.sqrt(sum(np.vdot(g, g) for g in grads))
            grads = [g if norm < clip else g * (clip / norm) for g in grads]
        lr = float(lr_fn(step + 1))
        out = [update_leaf(step, g, w, s, lr) for g, w, s in zip(grads, weights, slots)]
        weights = [o[0] for o in out]
        slots = [o[1] for o in out]
        history.append(jax.tree.unflatten(treedef, weights))
    return history


def trax_adam(b1, b2, eps, wd):
    def init(w):
        return np.zeros_like(w), np.zeros_like(w)

    def update(step, g, w, slots, lr):
        m, v = slots
        m = (1 - b1) * g + b1 * m
        v = (1 - b2) * g**2 + b2 * v
        mhat = m / (1 - b1 ** (step + 1))
        vhat = v / (1 - b2 ** (step + 1))
        return (1 - wd) * w - lr * mhat / (np.sqrt(vhat) + eps), (m, v)

    return init, update


def trax_momentum(mass, wd, nesterov):
    def update(step, g, w, v, lr):
        new_v = mass * v + g
        d = mass * new_v + g if nesterov else new_v
        return (1 - wd) * w - lr * d, new_v

    return np.zeros_like, update


def trax_rmsprop(gamma, eps):
    def update(step, g, w, a, lr):
        a = a * gamma + g**2 * (1 - gamma)
        return w - lr * g / (np.sqrt(a) + eps), a

    return np.ones_like, update


def trax_adafactor(factored=True, mbps=True, do_clipping=True, do_momentum=False, beta1=0.0,
                   decay_rate=0.8, threshold=1.0, wd=1e-5, wd_n_steps=0, e1=1e-16, e2=1e-3):
    def init(w):
        slots = []
        if factored and w.ndim >= 2:
            slots += [np.zeros(w.shape[:-1]), np.zeros(w.shape[:-2] + w.shape[-1:])]
        else:
            slots.append(np.zeros_like(w))
        if do_momentum:
            slots.append(np.zeros_like(w))
        return slots

    def update(step, g, w, slots, lr):
        rate = wd if wd_n_steps < 1 else wd * max(wd_n_steps - step, 0) / wd_n_steps
        decay = 1.0 - (step + 1.0) ** (-decay_rate)
        scale = lr * max(np.sqrt(np.mean(w * w)), e2) if mbps else lr
        new_slots = []
        if factored and w.ndim >= 2:
            v_row = decay * slots[0] + (1 - decay) * np.mean(g * g, axis=-1)
            v_col = decay * slots[1] + (1 - decay) * np.mean(g * g, axis=-2)
            new_slots += [v_row, v_col]
            row_factor = (np.mean(v_row, axis=-1, keepdims=True) / (v_row + e1)) ** 0.5
            col_factor = (v_col + e1) ** -0.5
            y = g * row_factor[..., None] * col_factor[..., None, :]
        else:
            v = decay * slots[0] + (1 - decay) * g * g
            new_slots.append(v)
            y = g * (v + e1) ** -0.5
        if do_clipping:
            y = y / max(1.0, np.sqrt(np.mean(y * y)) / threshold)
        sub = scale * y
        if do_momentum:
            sub = beta1 * slots[-1] + (1 - beta1) * sub
            new_slots.append(sub)
        return (1 - rate) * w - sub, new_slots

    return init, update


def trax_sm3(momentum=0.9, beta2=1.0, wd=0.0, momentum_type=1):
    graft = beta2 != 1.0

    def init(w):
        return (np.zeros_like(w), [np.zeros(n) for n in w.shape],
                [np.zeros(n) for n in w.shape] if graft else [])

    def expanded(v, w, i):
        shape = [1] * w.ndim
        shape[i] = w.shape[i]
        return v.reshape(shape)

    def minimum(arrays):
        return functools.reduce(np.minimum, arrays)

    def update(step, g, w, slots, lr):
        m, v1, v2 = slots
        c = 1.0 if beta2 == 1 else 1.0 - beta2
        acc = beta2 * minimum([expanded(v, w, i) for i, v in enumerate(v1)]) + c * g * g
        pg = np.where(acc > 0, g / (np.sqrt(acc) + 1e-16), 0.0)
        if graft:
            acc2 = minimum([expanded(v, w, i) for i, v in enumerate(v2)]) + g * g
            pg2 = np.where(acc2 > 0, g / (np.sqrt(acc2) + 1e-16), 0.0)
            pg = pg * (np.linalg.norm(pg2) / (np.linalg.norm(pg) + 1e-16))
            v2 = [acc2.max(axis=tuple(j for j in range(w.ndim) if j != i)) for i in range(w.ndim)]
        pg = pg + w * wd
        if momentum > 0:
            if momentum_type == 1:
                m = (1 - momentum) * pg + momentum * m
                d = m
            elif momentum_type == 2:
                m = pg + momentum * m
                d = m
            else:
                m = pg + momentum * m
                d = pg + momentum * m
        else:
            d = pg
        v1 = [acc.max(axis=tuple(j for j in range(w.ndim) if j != i)) for i in range(w.ndim)]
        return w - lr * d, (m, v1, v2)

    return init, update


def _const(value):
    return lambda step: value


_REFERENCES = {
    "adam": (
        lambda: optimizers.Adam(0.01, weight_decay_rate=1e-3),
        trax_adam(0.9, 0.999, 1e-5, 1e-3), _const(0.01), None,
    ),
    "adam_clip_warmup": (
        lambda: optimizers.Adam(lr_schedules.warmup(4, 0.02), b1=0.5, b2=0.9, eps=1e-3,
                                clip_grad_norm=0.3),
        trax_adam(0.5, 0.9, 1e-3, 1e-5), lambda s: 0.02 * min(s / 5.0, 1.0), 0.3,
    ),
    "momentum_nesterov": (
        lambda: optimizers.Momentum(0.03, mass=0.8, weight_decay_rate=1e-3),
        trax_momentum(0.8, 1e-3, True), _const(0.03), None,
    ),
    "momentum_plain": (
        lambda: optimizers.Momentum(0.03, nesterov=False),
        trax_momentum(0.9, 1e-5, False), _const(0.03), None,
    ),
    "sgd": (
        lambda: optimizers.SGD(0.1, clip_grad_norm=0.5),
        trax_momentum(0.0, 0.0, False), _const(0.1), 0.5,
    ),
    "rmsprop": (
        lambda: optimizers.RMSProp(0.01, gamma=0.8, eps=1e-4),
        trax_rmsprop(0.8, 1e-4), _const(0.01), None,
    ),
    "adafactor_default": (
        lambda: optimizers.Adafactor(0.1),
        trax_adafactor(), _const(0.1), None,
    ),
    "adafactor_options": (
        lambda: optimizers.Adafactor(0.1, factored=False, do_momentum=True, beta1=0.6,
                                     clipping_threshold=2.0, weight_decay_rate=0.01,
                                     weight_decay_n_steps=2, decay_rate=0.5),
        trax_adafactor(factored=False, do_momentum=True, beta1=0.6, threshold=2.0, wd=0.01,
                       wd_n_steps=2, decay_rate=0.5), _const(0.1), None,
    ),
    "adafactor_no_scale_no_clip": (
        lambda: optimizers.Adafactor(0.01, multiply_by_parameter_scale=False, do_clipping=False),
        trax_adafactor(mbps=False, do_clipping=False), _const(0.01), None,
    ),
    "sm3_default": (
        lambda: optimizers.SM3(0.1),
        trax_sm3(), _const(0.1), None,
    ),
    "sm3_heavy_ball_wd": (
        lambda: optimizers.SM3(0.1, momentum=0.5, weight_decay=0.01, momentum_type=2),
        trax_sm3(0.5, wd=0.01, momentum_type=2), _const(0.1), None,
    ),
    "sm3_nesterov_graft": (
        lambda: optimizers.SM3(0.1, momentum=0.5, second_moment_averaging=0.8,
                               momentum_type=MomentumType.NESTEROV),
        trax_sm3(0.5, beta2=0.8, momentum_type=3), _const(0.1), None,
    ),
    "sm3_no_momentum": (
        lambda: optimizers.SM3(0.1, momentum=0.0, weight_decay=0.001),
        trax_sm3(0.0, wd=0.001), _const(0.1), None,
    ),
}


@pytest.mark.parametrize("case", sorted(_REFERENCES))
def test_matches_trax_update_formula(case):
    make_opt, (init_leaf, update_leaf), lr_fn, clip = _REFERENCES[case]
    params = make_params()
    n_steps = 3
    got = run(make_opt(), params, n_steps, jit=True)
    want = reference_run(update_leaf, init_leaf, params, n_steps, lr_fn, clip)
    for g, w in zip(got, want):
        assert_trees_close(g, w, rtol=2e-5, atol=1e-6)
    # The optimizer really moved the weights (the comparison is not vacuous).
    moved = jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), got[-1], params))
    assert max(moved) > 1e-3


def test_adam_two_steps_by_hand():
    """Two Adam steps on one weight, written out: Trax's formula, decay not scaled by lr."""
    lr, wd, b1, b2, eps = 0.1, 0.01, 0.9, 0.999, 1e-5
    opt = optimizers.Adam(lr, weight_decay_rate=wd, b1=b1, b2=b2, eps=eps)
    w = {"w": jnp.array([2.0])}
    state = opt.init(w)
    w_ref, m, v = 2.0, 0.0, 0.0
    for t, g in ((1, 0.5), (2, -1.5)):
        updates, state = opt.update({"w": jnp.array([g])}, state, w)
        w = optax.apply_updates(w, updates)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w_ref = (1 - wd) * w_ref - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        np.testing.assert_allclose(float(w["w"][0]), w_ref, rtol=1e-6)
        if t == 1:  # bias-corrected first step: ~lr * sign(g), plus the decay wd * w
            np.testing.assert_allclose(w_ref, 2.0 * (1 - wd) - lr * 0.5 / (0.5 + eps))


@pytest.mark.parametrize("nesterov", [True, False])
def test_momentum_two_steps_by_hand(nesterov):
    """Trax: v <- mass*v + g; d = mass*v + g (Nesterov) or v; w <- (1-wd)*w - lr*d."""
    lr, mass, wd = 0.1, 0.9, 0.01
    opt = optimizers.Momentum(lr, mass=mass, weight_decay_rate=wd, nesterov=nesterov)
    w = {"w": jnp.array([1.0])}
    state = opt.init(w)
    w_ref, v = 1.0, 0.0
    for g in (1.0, 2.0):
        updates, state = opt.update({"w": jnp.array([g])}, state, w)
        w = optax.apply_updates(w, updates)
        v = mass * v + g
        d = mass * v + g if nesterov else v
        w_ref = (1 - wd) * w_ref - lr * d
        np.testing.assert_allclose(float(w["w"][0]), w_ref, rtol=1e-6)
    # Step 1 written out: 0.99 - 0.1 * 1.9 (Nesterov) or 0.99 - 0.1 * 1.0.
    expected_first = 0.99 - 0.1 * (1.9 if nesterov else 1.0)
    expected_second = (1 - wd) * expected_first - lr * ((0.9 * 2.9 + 2.0) if nesterov else 2.9)
    np.testing.assert_allclose(w_ref, expected_second, rtol=1e-12)


def test_schedule_is_called_with_the_one_based_trax_step():
    seen = []

    def schedule(step):
        seen.append(step)
        return 0.1 * step

    opt = optimizers.SGD(schedule)
    w = {"w": jnp.array([0.0])}
    state = opt.init(w)
    for _ in range(3):
        updates, state = opt.update({"w": jnp.array([1.0])}, state, w)
        w = optax.apply_updates(w, updates)
    assert [int(s) for s in seen] == [1, 2, 3]
    np.testing.assert_allclose(float(w["w"][0]), -(0.1 + 0.2 + 0.3), rtol=1e-6)


def test_trax_schedules_under_jit_in_an_optimizer():
    opt = optimizers.Adam(lr_schedules.multifactor(constant=0.1, warmup_steps=2))
    params = make_params()
    history = run(opt, params, 4, jit=True)
    assert float(loss_fn(history[-1])) < float(loss_fn(params))


def test_works_inside_inject_hyperparams():
    opt = optax.inject_hyperparams(optimizers.Adam)(learning_rate=0.01, weight_decay_rate=0.0)
    params = make_params()
    got = run(opt, params, 3, jit=True)
    want = run(optimizers.Adam(0.01, weight_decay_rate=0.0), params, 3)
    assert_trees_close(got[-1], want[-1], rtol=1e-5)


def test_structural_arguments_must_be_static_under_inject_hyperparams():
    params = make_params()
    opt = optax.inject_hyperparams(optimizers.SM3)(learning_rate=0.1, momentum=0.5)
    with pytest.raises(TypeError, match=r"SM3: momentum selects the optax transformations"):
        jax.jit(opt.update)(grad_fn(params), opt.init(params), params)
    static = ("momentum", "second_moment_averaging", "weight_decay", "momentum_type")
    opt = optax.inject_hyperparams(optimizers.SM3, static_args=static)(learning_rate=0.1,
                                                                       momentum=0.5)
    got = run(opt, params, 2, jit=True)
    assert_trees_close(got[-1], run(optimizers.SM3(0.1, momentum=0.5), params, 2)[-1], rtol=1e-5)


def test_defaults_are_traxs():
    import inspect

    def defaults(f):
        return {k: p.default for k, p in inspect.signature(f).parameters.items()}

    assert defaults(optimizers.Adam) == dict(
        learning_rate=0.0001, weight_decay_rate=1e-5, b1=0.9, b2=0.999, eps=1e-5,
        clip_grad_norm=None)
    assert defaults(optimizers.Momentum) == dict(
        learning_rate=0.01, mass=0.9, weight_decay_rate=1e-5, nesterov=True, clip_grad_norm=None)
    assert defaults(optimizers.RMSProp) == dict(
        learning_rate=0.001, gamma=0.9, eps=1e-8, clip_grad_norm=None)
    assert defaults(optimizers.SM3) == dict(
        learning_rate=0.01, momentum=0.9, second_moment_averaging=1.0, weight_decay=0.0,
        momentum_type=MomentumType.EMA, clip_grad_norm=None)
    assert defaults(optimizers.SGD)["learning_rate"] == 0.01
    ada = defaults(optimizers.Adafactor)
    assert ada == dict(
        learning_rate=0.05, factored=True, multiply_by_parameter_scale=True, do_clipping=True,
        do_momentum=False, momentum_in_bfloat16=False, beta1=0.0, decay_rate=0.8,
        clipping_threshold=1.0, weight_decay_rate=1e-5, weight_decay_n_steps=0,
        epsilon1=1e-16, epsilon2=1e-3, clip_grad_norm=None)


def test_adafactor_momentum_in_bfloat16():
    opt = optimizers.Adafactor(0.1, do_momentum=True, beta1=0.5, momentum_in_bfloat16=True)
    params = make_params()
    state = opt.init(params)
    dtypes = {x.dtype for x in jax.tree.leaves(state) if x.ndim > 0}
    assert jnp.dtype(jnp.bfloat16) in dtypes
    history = run(opt, params, 3, jit=True)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(history[-1]))


# ---------------------------------------------------------------------------
# l2_norm and clip_grads.
# ---------------------------------------------------------------------------


def test_l2_norm():
    tree = {"a": jnp.array([3.0, 0.0]), "b": [jnp.array([[4.0], [12.0]])]}
    np.testing.assert_allclose(float(optimizers.l2_norm(tree)), 13.0, rtol=1e-6)
    params = make_params()
    flat = np.concatenate([np.ravel(x) for x in jax.tree.leaves(params)])
    np.testing.assert_allclose(float(optimizers.l2_norm(params)), np.linalg.norm(flat), rtol=1e-6)


def test_clip_grads():
    tree = {"a": jnp.array([3.0, 0.0]), "b": [jnp.array([[4.0], [12.0]])]}
    clipped = optimizers.clip_grads(tree, 6.5)  # norm 13 -> halved
    assert_trees_close(clipped, jax.tree.map(lambda x: x / 2, tree), rtol=1e-6)
    np.testing.assert_allclose(float(optimizers.l2_norm(clipped)), 6.5, rtol=1e-6)
    unchanged = optimizers.clip_grads(tree, 20.0)
    assert_trees_close(unchanged, tree)
    jitted = jax.jit(optimizers.clip_grads, static_argnums=1)(tree, 6.5)
    assert_trees_close(jitted, clipped)


# ---------------------------------------------------------------------------
# Bad arguments.
# ---------------------------------------------------------------------------

_FACTORIES = {
    "Adam": optimizers.Adam,
    "Adafactor": optimizers.Adafactor,
    "SGD": optimizers.SGD,
    "Momentum": optimizers.Momentum,
    "RMSProp": optimizers.RMSProp,
    "SM3": optimizers.SM3,
}


@pytest.mark.parametrize("name", sorted(_FACTORIES))
def test_negative_learning_rate_is_rejected(name):
    with pytest.raises(ValueError, match=rf"{name}: learning_rate must be >= 0"):
        _FACTORIES[name](-0.1)
    with pytest.raises(TypeError, match="learning_rate"):
        _FACTORIES[name]("fast")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: optimizers.Adam(clip_grad_norm=0.0), "Adam: clip_grad_norm must be > 0"),
        (lambda: optimizers.Adam(b1=1.0), "Adam: b1 must be < 1"),
        (lambda: optimizers.Adam(weight_decay_rate=-1.0), "Adam: weight_decay_rate must be >= 0"),
        (lambda: optimizers.Momentum(mass=-0.5), "Momentum: mass must be >= 0"),
        (lambda: optimizers.RMSProp(gamma=1.5), "RMSProp: gamma must be <= 1"),
        (lambda: optimizers.SM3(momentum_type=7), "SM3: momentum_type must be one of"),
        (lambda: optimizers.SM3(second_moment_averaging=2.0),
         "SM3: second_moment_averaging must be <= 1"),
        (lambda: optimizers.Adafactor(clipping_threshold=0.0),
         "Adafactor: clipping_threshold must be > 0"),
        (lambda: optimizers.clip_grads({"a": jnp.ones(2)}, -1.0), "clip_grads: max_norm must be > 0"),
    ],
)
def test_bad_hyperparameters_name_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_momentum_nesterov_must_be_bool():
    with pytest.raises(TypeError, match="nesterov"):
        optimizers.Momentum(nesterov="yes")
