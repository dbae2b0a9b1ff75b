r"""Learning rate (LR) schedules, as in ``trax.supervised.lr_schedules``.

A learning rate schedule is a function :math:`\text{step} \mapsto
\text{learning_rate}`. Steps are numbered as in Trax's training ``Loop``: the
first training step is step 1, and Trax's schedules are defined from step 1 on
(``constant(v)(0)`` is ``0``, the start of a linear warm-up from ``(0, 0)``).
The optimizers in :mod:`pax_trax.optimizers` call a schedule with this 1-based
step number.

Every schedule here is written with ``jax.numpy`` and no Python branching on
the step, so it takes a Python number or a (traced) JAX integer and works
inside ``jax.jit`` and as an optax schedule. It returns a float32 scalar.

    >>> from pax_trax.supervised import lr_schedules
    >>> lr = lr_schedules.warmup(9, 0.01)
    >>> [round(float(lr(s)), 6) for s in (1, 9, 10, 1000)]
    [0.001, 0.009, 0.01, 0.01]
"""

import math

import jax.numpy as jnp

__all__ = [
    "constant",
    "warmup",
    "warmup_and_rsqrt_decay",
    "multifactor",
    "MULTIFACTOR_FACTORS",
]

#: The factor names that :func:`multifactor` understands.
MULTIFACTOR_FACTORS = (
    "constant",
    "two_constants",
    "linear_warmup",
    "rsqrt_decay",
    "rsqrt_normalized_decay",
    "decay_every",
    "cosine_decay",
)


def _as_float_step(step):
    return jnp.asarray(step).astype(jnp.float32)


def _check_number(fn_name, arg_name, value, *, positive=False, allow_zero=True):
    """Raises a ValueError naming `arg_name` unless `value` is a valid number."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{fn_name}: {arg_name} must be a number, got {value!r} "
            f"of type {type(value).__name__}"
        ) from None
    if math.isnan(v):
        raise ValueError(f"{fn_name}: {arg_name} must not be NaN")
    if positive and (v < 0 or (v == 0 and not allow_zero)):
        need = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{fn_name}: {arg_name} must be {need}, got {value!r}")
    return v


def constant(value):
    """Returns an LR schedule that is constant from time (step) 1 to infinity.

    As in Trax, the value ramps linearly from ``(0, 0)`` so step 0 gives 0.

        >>> [round(float(constant(0.02)(s)), 6) for s in (0, 1, 5, 10**6)]
        [0.0, 0.02, 0.02, 0.02]
    """
    _check_number("constant", "value", value, positive=True)
    return _BodyAndTail(value, body_start=1)


def warmup(n_warmup_steps, max_value):
    """Returns an LR schedule with linear warm-up followed by constant value.

    Args:
      n_warmup_steps: Number of steps during which the learning rate rises on
        a line connecting ``(0, 0)`` and ``(n_warmup_steps + 1, max_value)``
        (so ``warmup(9, .01)`` gives ``.001`` at step 1 and ``.009`` at 9).
      max_value: Value for learning rate after warm-up has finished (from step
        ``n_warmup_steps + 1`` on).
    """
    _check_number("warmup", "n_warmup_steps", n_warmup_steps, positive=True)
    _check_number("warmup", "max_value", max_value, positive=True)
    return _BodyAndTail(max_value, body_start=n_warmup_steps + 1)


def warmup_and_rsqrt_decay(n_warmup_steps, max_value):
    """Returns an LR schedule with warm-up + reciprocal square root decay.

    Steps ``1 .. n_warmup_steps`` rise linearly (``step / (n_warmup_steps + 1)
    * max_value``); from ``t0 = n_warmup_steps + 1`` on the rate is
    ``max_value * sqrt(t0) / sqrt(step)``.
    """
    _check_number("warmup_and_rsqrt_decay", "n_warmup_steps", n_warmup_steps, positive=True)
    _check_number("warmup_and_rsqrt_decay", "max_value", max_value, positive=True)
    return _BodyAndTail(max_value, tail_start=n_warmup_steps + 1, tail_fn=_rsqrt)


def multifactor(
    factors="constant * linear_warmup * rsqrt_decay",
    constant=0.1,  # Trax's argument name (shadows the function above)
    warmup_steps=400,
    decay_factor=0.5,
    steps_per_decay=20000,
    steps_per_cycle=100000,
    second_constant=0.01,
    second_constant_step=10000,
    minimum=0,
):
    """Factor-based learning rate schedule.

    The result is the product of the factors named in ``factors`` (separated
    by ``*``), floored at ``minimum``:

    * ``constant``: ``constant``;
    * ``two_constants``: ``constant`` before ``second_constant_step``, then
      ``second_constant``;
    * ``linear_warmup``: ``min(1, step / warmup_steps)``;
    * ``rsqrt_decay``: ``1 / sqrt(max(step, warmup_steps))``;
    * ``rsqrt_normalized_decay``: ``sqrt(warmup_steps) / sqrt(max(step,
      warmup_steps))``;
    * ``decay_every``: ``decay_factor ** (step // steps_per_decay)``;
    * ``cosine_decay``: ``0.5 * (1 + cos(pi * (p % 1)))`` with ``p = max(0,
      (step - warmup_steps) / steps_per_cycle)`` (cyclic cosine decay).

    Args:
      factors: a string with factors separated by ``*`` that defines the
        schedule. An unknown name raises ``ValueError`` here, at construction.
      constant: float, the starting constant for the learning rate schedule.
      warmup_steps: how many steps to warm up for in the warmup schedule.
      decay_factor: The amount to decay the learning rate by.
      steps_per_decay: How often to decay the learning rate.
      steps_per_cycle: Steps per cycle when using cosine decay.
      second_constant: float, the second constant for the learning rate
        schedule.
      second_constant_step: the step when the second_constant is triggered.
      minimum: if the computed rate is below the minimum, then return the
        minimum.

    Returns:
      A function ``learning_rate(step)`` giving a float32 scalar.

        >>> lr = multifactor("constant * linear_warmup", constant=0.5, warmup_steps=10)
        >>> float(lr(5)), float(lr(20))
        (0.25, 0.5)
    """
    fn = "multifactor"
    if not isinstance(factors, str):
        raise TypeError(
            f"{fn}: factors must be a string of factor names separated by '*', "
            f"got {factors!r}"
        )
    names = [n.strip() for n in factors.split("*")]
    for name in names:
        if name not in MULTIFACTOR_FACTORS:
            raise ValueError(
                f"{fn}: unknown factor {name!r} in factors={factors!r}; "
                f"known factors: {', '.join(MULTIFACTOR_FACTORS)}"
            )
    _check_number(fn, "constant", constant, positive=True)
    _check_number(fn, "minimum", minimum)
    if "linear_warmup" in names:
        _check_number(fn, "warmup_steps", warmup_steps, positive=True, allow_zero=False)
    if {"rsqrt_decay", "rsqrt_normalized_decay", "cosine_decay"} & set(names):
        _check_number(fn, "warmup_steps", warmup_steps, positive=True)
    if "decay_every" in names:
        _check_number(fn, "decay_factor", decay_factor)
        _check_number(fn, "steps_per_decay", steps_per_decay, positive=True, allow_zero=False)
    if "cosine_decay" in names:
        _check_number(fn, "steps_per_cycle", steps_per_cycle, positive=True, allow_zero=False)
    if "two_constants" in names:
        _check_number(fn, "second_constant", second_constant)
        _check_number(fn, "second_constant_step", second_constant_step)

    def learning_rate(step):
        """Step to learning rate function."""
        s = _as_float_step(step)
        ret = jnp.float32(1.0)
        for name in names:
            if name == "constant":
                ret = ret * constant
            elif name == "two_constants":
                ret = ret * jnp.where(s < second_constant_step, constant, second_constant)
            elif name == "linear_warmup":
                ret = ret * jnp.minimum(1.0, s / warmup_steps)
            elif name == "rsqrt_decay":
                ret = ret / jnp.sqrt(jnp.maximum(s, warmup_steps))
            elif name == "rsqrt_normalized_decay":
                ret = ret * jnp.sqrt(jnp.float32(warmup_steps))
                ret = ret / jnp.sqrt(jnp.maximum(s, warmup_steps))
            elif name == "decay_every":
                ret = ret * jnp.power(decay_factor, jnp.floor(s / steps_per_decay))
            else:  # cosine_decay
                progress = jnp.maximum(0.0, (s - warmup_steps) / float(steps_per_cycle))
                ret = ret * (0.5 * (1.0 + jnp.cos(jnp.pi * (progress % 1.0))))
        ret = jnp.asarray(ret, jnp.float32)
        return jnp.where(ret <= minimum, jnp.float32(minimum), ret)

    return learning_rate


class _BodyAndTail:
    """A curve over time: linear ramp + constant body + optional curvy tail.

    The warm-up, if present, is the line connecting ``(0, 0)`` and
    ``(body_start, body_value)``. The tail, if defined, is a function
    ``tail_fn(step, tail_start, body_value)`` used from ``tail_start`` on.
    """

    def __init__(self, body_value, body_start=None, tail_start=None, tail_fn=None):
        if body_start is None and tail_start is None:
            raise ValueError("Both body start and tail start are None.")
        if tail_start is not None and tail_fn is None:
            raise ValueError(f"Tail start has value ({tail_start}) but tail_fn is None.")
        if body_start is None:
            body_start = tail_start
        self._body_value = body_value
        self._body_start = body_start
        self._tail_start = tail_start
        self._tail_fn = tail_fn

    def __call__(self, step_number):
        """Returns the learning rate for the given step number."""
        s = _as_float_step(step_number)
        value = jnp.float32(self._body_value)
        if self._body_start > 0:
            ramp = (s / self._body_start) * value
            value = jnp.where(s < self._body_start, ramp, value)
        if self._tail_start is not None:
            tail = self._tail_fn(s, self._tail_start, self._body_value)
            value = jnp.where(s >= self._tail_start, tail, value)
        return jnp.asarray(value, jnp.float32)

    def __repr__(self):
        return (
            f"_BodyAndTail(body_value={self._body_value}, body_start={self._body_start}, "
            f"tail_start={self._tail_start}, tail_fn={self._tail_fn})"
        )


def _rsqrt(step_number, tail_start, body_value):
    """Reciprocal square root tail, joining the body smoothly at tail_start."""
    safe_step = jnp.maximum(step_number, 1.0)  # the tail is only used for step >= tail_start
    return body_value * (math.sqrt(tail_start) / jnp.sqrt(safe_step))


class _CosineSawtoothTail:
    """Cosine-sawtooth tail simulating warm restarts (Loshchilov & Hutter 2017)."""

    def __init__(self, steps_per_cycle, min_value=1e-5):
        self._steps_per_cycle = steps_per_cycle
        self._min_value = min_value

    def __call__(self, step_number, tail_start, body_value):
        position_in_cycle = ((step_number - tail_start) / self._steps_per_cycle) % 1.0
        theta = jnp.pi * position_in_cycle
        return self._min_value + (body_value - self._min_value) * 0.5 * (1 + jnp.cos(theta))
