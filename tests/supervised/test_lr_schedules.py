"""Tests of pax_trax.supervised.lr_schedules (values from Trax's lr_schedules_test)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pax_trax.supervised import lr_schedules


def close(a, b, rtol=1e-6, atol=1e-9):
    np.testing.assert_allclose(np.asarray(a), b, rtol=rtol, atol=atol)


def test_warmup():
    lr_fn = lr_schedules.warmup(9, 0.01)
    # Linear warm-up.
    for step, want in ((1, 0.001), (2, 0.002), (5, 0.005), (9, 0.009)):
        close(lr_fn(step), want)
    # Constant thereafter.
    for step in (10, 11, 20, 300, 4000):
        close(lr_fn(step), 0.01)
    close(lr_fn(0), 0.0)


def test_constant():
    lr_fn = lr_schedules.constant(0.02)
    for step in (1, 20, 300, 4000, 50000, 600000, 7000000, 80000000, 900000000):
        close(lr_fn(step), 0.02)
    close(lr_fn(0), 0.0)  # Trax: constant from step 1, the ramp starts at (0, 0)


def test_warmup_and_rsqrt_decay():
    lr_fn = lr_schedules.warmup_and_rsqrt_decay(24, 0.25)
    # Warm-up.
    for step, want in ((1, 0.01), (2, 0.02), (23, 0.23), (24, 0.24)):
        close(lr_fn(step), want)
    # Reciprocal square-root decay.
    for step in (25, 26, 27, 300, 4000, 50000):
        close(lr_fn(step), 0.25 * (5 / math.sqrt(step)))
    close(lr_fn(25), 0.25)


def test_cosine_sawtooth_tail():
    """Trax's private _CosineSawtoothTail test values."""
    tail_fn = lr_schedules._CosineSawtoothTail(180, min_value=0.1)
    lr_fn = lr_schedules._BodyAndTail(0.3, tail_start=0, tail_fn=tail_fn)
    for offset in (0, 180):
        close(lr_fn(offset + 1), 0.29998477)
        close(lr_fn(offset + 30), 0.28660254)
        close(lr_fn(offset + 60), 0.25)
        close(lr_fn(offset + 90), 0.20)
        close(lr_fn(offset + 120), 0.15)
        close(lr_fn(offset + 179), 0.10001523, rtol=1e-5)
    close(lr_fn(180), 0.3)


# multifactor: each factor against hand-computed values.

_KW = dict(constant=0.5, warmup_steps=100, decay_factor=0.5, steps_per_decay=30,
           steps_per_cycle=200, second_constant=0.05, second_constant_step=1000)


@pytest.mark.parametrize(
    "factors, expected",
    [
        ("constant", {1: 0.5, 10**6: 0.5}),
        ("linear_warmup", {0: 0.0, 25: 0.25, 100: 1.0, 5000: 1.0}),
        ("rsqrt_decay", {1: 0.1, 100: 0.1, 400: 0.05, 10000: 0.01}),
        ("rsqrt_normalized_decay", {1: 1.0, 100: 1.0, 400: 0.5, 10000: 0.1}),
        ("decay_every", {0: 1.0, 29: 1.0, 30: 0.5, 59: 0.5, 60: 0.25, 95: 0.125}),
        ("cosine_decay", {0: 1.0, 100: 1.0, 150: 0.5 * (1 + math.cos(math.pi / 4)),
                          200: 0.5, 299: 0.5 * (1 + math.cos(math.pi * 199 / 200)), 300: 1.0}),
        ("two_constants", {0: 0.5, 999: 0.5, 1000: 0.05, 10**5: 0.05}),
        ("constant * linear_warmup * rsqrt_decay",
         {50: 0.5 * 0.5 / 10, 100: 0.5 / 10, 2500: 0.5 / 50}),
        (" constant*decay_every ", {45: 0.25}),
    ],
)
def test_multifactor_each_factor(factors, expected):
    lr_fn = lr_schedules.multifactor(factors, **_KW)
    jitted = jax.jit(lr_fn)
    for step, want in expected.items():
        # float32: 1 + cos(x) near x = pi loses digits, hence the absolute tolerance.
        close(lr_fn(step), want, rtol=1e-5, atol=2e-8)
        close(jitted(jnp.asarray(step, jnp.int32)), want, rtol=1e-5, atol=2e-8)


def test_multifactor_defaults_match_trax():
    lr_fn = lr_schedules.multifactor()
    # constant 0.1 * linear warm-up over 400 steps * rsqrt(max(step, 400)).
    close(lr_fn(100), 0.1 * 0.25 / 20)
    close(lr_fn(400), 0.1 / 20)
    close(lr_fn(1600), 0.1 / 40)
    two = lr_schedules.multifactor("two_constants")  # Trax: 0.1 then 0.01 from step 10000
    close(two(9999), 0.1)
    close(two(10000), 0.01)


def test_multifactor_minimum():
    lr_fn = lr_schedules.multifactor("constant * linear_warmup", constant=1.0,
                                     warmup_steps=100, minimum=0.05)
    close(lr_fn(0), 0.05)
    close(lr_fn(3), 0.05)
    close(lr_fn(5), 0.05)
    close(lr_fn(50), 0.5)


SCHEDULES = {
    "constant": lr_schedules.constant(0.3),
    "warmup": lr_schedules.warmup(9, 0.01),
    "warmup_and_rsqrt_decay": lr_schedules.warmup_and_rsqrt_decay(24, 0.25),
    "multifactor_default": lr_schedules.multifactor(),
    "multifactor_all": lr_schedules.multifactor(
        "constant * two_constants * linear_warmup * rsqrt_normalized_decay * decay_every"
        " * cosine_decay * rsqrt_decay", minimum=1e-7, **_KW),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_jit_equals_eager(name):
    lr_fn = SCHEDULES[name]
    steps = np.array([0, 1, 2, 9, 10, 24, 25, 99, 100, 401, 999, 1000, 12345, 100000])
    eager = np.array([float(lr_fn(int(s))) for s in steps])
    jitted = jax.jit(jax.vmap(lr_fn))(jnp.asarray(steps, jnp.int32))
    np.testing.assert_allclose(np.asarray(jitted), eager, rtol=1e-6)
    assert np.all(np.isfinite(eager)) and np.all(eager >= 0)
    assert jitted.dtype == jnp.float32


def test_usable_as_optax_schedule():
    schedule = lr_schedules.warmup(4, 0.1)
    opt = optax.sgd(schedule)
    params = jnp.array([1.0])
    state = opt.init(params)
    step = jax.jit(opt.update)
    for count in range(3):
        updates, state = step(jnp.array([1.0]), state)
        close(updates, [-0.02 * count], rtol=1e-6)  # optax counts from 0


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: lr_schedules.multifactor("constant * linear_warmpu"), ValueError,
         r"multifactor: unknown factor 'linear_warmpu' in factors="),
        (lambda: lr_schedules.multifactor(""), ValueError, "unknown factor ''"),
        (lambda: lr_schedules.multifactor(["constant"]), TypeError, "factors must be a string"),
        (lambda: lr_schedules.multifactor("linear_warmup", warmup_steps=0), ValueError,
         "warmup_steps must be > 0"),
        (lambda: lr_schedules.multifactor("decay_every", steps_per_decay=0), ValueError,
         "steps_per_decay must be > 0"),
        (lambda: lr_schedules.multifactor("cosine_decay", steps_per_cycle=-5), ValueError,
         "steps_per_cycle must be > 0"),
        (lambda: lr_schedules.multifactor(constant=-0.1), ValueError, "constant must be >= 0"),
        (lambda: lr_schedules.constant(-1.0), ValueError, "constant: value must be >= 0"),
        (lambda: lr_schedules.constant("0.1x"), TypeError, "constant: value must be a number"),
        (lambda: lr_schedules.warmup(-3, 0.1), ValueError, "warmup: n_warmup_steps must be >= 0"),
        (lambda: lr_schedules.warmup(3, -0.1), ValueError, "warmup: max_value must be >= 0"),
        (lambda: lr_schedules.warmup_and_rsqrt_decay(10, float("nan")), ValueError,
         "max_value must not be NaN"),
    ],
)
def test_bad_arguments_name_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()
