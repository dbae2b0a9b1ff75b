"""Adam, Momentum, RMSProp and Adafactor with Trax's signatures and math.

Each factory returns an ``optax.GradientTransformation`` composed of optax
pieces; its docstring gives the chain. See :mod:`pax_trax.optimizers._base`
for the conventions on learning-rate schedules, step counts and clipping.
"""

import jax.numpy as jnp
import optax

from pax_trax.optimizers._base import (
    check_clip_grad_norm,
    check_learning_rate,
    check_number,
    check_static,
    maybe_clip,
    trax_learning_rate,
)

__all__ = ["Adam", "Momentum", "RMSProp", "Adafactor"]


def Adam(  # noqa: N802
    learning_rate=0.0001,
    weight_decay_rate=1e-5,
    b1=0.9,
    b2=0.999,
    eps=1e-5,
    clip_grad_norm=None,
):
    """Adam optimizer (https://arxiv.org/abs/1412.6980), as ``trax.optimizers.Adam``.

    Trax's update for step ``t`` (1 on the first update)::

        m = b1 * m + (1 - b1) * g;          v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t);            v_hat = v / (1 - b2**t)
        w <- (1 - weight_decay_rate) * w - lr * m_hat / (sqrt(v_hat) + eps)

    Weight decay is decoupled and *not* multiplied by the learning rate.

    The optax chain::

        optax.chain(
            optax.clip_by_global_norm(clip_grad_norm),   # if clip_grad_norm is not None
            optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
            optax.scale_by_learning_rate(lr),            # lr: number or schedule(count + 1)
            optax.add_decayed_weights(-weight_decay_rate),
        )

    Args:
      learning_rate: step size (number or schedule of the 1-based step).
      weight_decay_rate: fraction of the weights subtracted on each step.
      b1: decay rate of the first moment estimate.
      b2: decay rate of the second moment estimate.
      eps: small constant added to ``sqrt(v_hat)``.
      clip_grad_norm: if not None, the global gradient norm is clipped to it.

        >>> import jax.numpy as jnp
        >>> from pax_trax import optimizers
        >>> opt = optimizers.Adam(0.01)
        >>> state = opt.init({"w": jnp.zeros(3)})
    """
    name = "Adam"
    check_learning_rate(name, learning_rate)
    check_number(name, "weight_decay_rate", weight_decay_rate, low=0.0)
    check_number(name, "b1", b1, low=0.0, high=1.0, high_open=True)
    check_number(name, "b2", b2, low=0.0, high=1.0, high_open=True)
    check_number(name, "eps", eps, low=0.0)
    check_clip_grad_norm(name, clip_grad_norm)
    return optax.chain(
        *maybe_clip(clip_grad_norm),
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
        optax.scale_by_learning_rate(trax_learning_rate(learning_rate)),
        optax.add_decayed_weights(-weight_decay_rate),
    )


def Momentum(  # noqa: N802
    learning_rate=0.01,
    mass=0.9,
    weight_decay_rate=1e-5,
    nesterov=True,
    clip_grad_norm=None,
):
    """Momentum SGD, Nesterov by default, as ``trax.optimizers.Momentum``.

    Trax's update::

        v <- mass * v + g
        d = mass * v + g    if nesterov else    d = v
        w <- (1 - weight_decay_rate) * w - lr * d

    The optax chain::

        optax.chain(
            optax.clip_by_global_norm(clip_grad_norm),   # if clip_grad_norm is not None
            optax.trace(decay=mass, nesterov=nesterov),
            optax.scale_by_learning_rate(lr),            # lr: number or schedule(count + 1)
            optax.add_decayed_weights(-weight_decay_rate),
        )

    ``clip_grad_norm`` is a pax_trax extension (Trax's Momentum has none).

        >>> from pax_trax import optimizers
        >>> opt = optimizers.Momentum(0.1, mass=0.9, nesterov=False)
    """
    name = "Momentum"
    check_learning_rate(name, learning_rate)
    check_number(name, "mass", mass, low=0.0)
    check_number(name, "weight_decay_rate", weight_decay_rate, low=0.0)
    check_clip_grad_norm(name, clip_grad_norm)
    if not isinstance(nesterov, bool):
        raise TypeError(f"{name}: nesterov must be a bool, got {nesterov!r}")
    return optax.chain(
        *maybe_clip(clip_grad_norm),
        optax.trace(decay=mass, nesterov=nesterov),
        optax.scale_by_learning_rate(trax_learning_rate(learning_rate)),
        optax.add_decayed_weights(-weight_decay_rate),
    )


def RMSProp(learning_rate=0.001, gamma=0.9, eps=1e-8, clip_grad_norm=None):  # noqa: N802
    """RMSProp, as ``trax.optimizers.RMSProp``.

    Trax's update (the running average starts at **one**, and ``eps`` is added
    outside the square root)::

        a <- gamma * a + (1 - gamma) * g**2          # a starts at 1
        w <- w - lr * g / (sqrt(a) + eps)

    The optax chain::

        optax.chain(
            optax.clip_by_global_norm(clip_grad_norm),   # if clip_grad_norm is not None
            optax.scale_by_rms(decay=gamma, eps=eps, initial_scale=1.0, eps_in_sqrt=False),
            optax.scale_by_learning_rate(lr),            # lr: number or schedule(count + 1)
        )

        >>> from pax_trax import optimizers
        >>> opt = optimizers.RMSProp(learning_rate=0.01)
    """
    name = "RMSProp"
    check_learning_rate(name, learning_rate)
    check_number(name, "gamma", gamma, low=0.0, high=1.0)
    check_number(name, "eps", eps, low=0.0)
    check_clip_grad_norm(name, clip_grad_norm)
    return optax.chain(
        *maybe_clip(clip_grad_norm),
        optax.scale_by_rms(decay=gamma, eps=eps, initial_scale=1.0, eps_in_sqrt=False),
        optax.scale_by_learning_rate(trax_learning_rate(learning_rate)),
    )


class _DecayNSteps:
    """Trax's ``weight_decay_n_steps``: ``rate * max(n - count, 0) / n``."""

    def __init__(self, rate, n_steps):
        self.rate = rate
        self.n_steps = n_steps

    def __call__(self, count):
        remaining = jnp.maximum(self.n_steps - count, 0).astype(jnp.float32)
        return self.rate * remaining / self.n_steps

    def __repr__(self):
        return f"_DecayNSteps(rate={self.rate}, n_steps={self.n_steps})"


def Adafactor(  # noqa: N802
    learning_rate=0.05,
    factored=True,
    multiply_by_parameter_scale=True,
    do_clipping=True,
    do_momentum=False,
    momentum_in_bfloat16=False,
    beta1=0.0,
    decay_rate=0.8,
    clipping_threshold=1.0,
    weight_decay_rate=1e-5,
    weight_decay_n_steps=0,
    epsilon1=1e-16,
    epsilon2=1e-3,
    clip_grad_norm=None,
):
    """Adafactor (https://arxiv.org/abs/1804.04235), as ``trax.optimizers.Adafactor``.

    Per weight array, with ``t`` the 0-based step and ``r = 1 - (t+1)**-decay_rate``:
    a factored (rows/columns, for arrays of rank >= 2 when ``factored``) or
    full running mean of ``g**2`` with decay ``r`` gives ``y = g / sqrt(v)``;
    ``y`` is divided by ``max(1, rms(y) / clipping_threshold)`` (``do_clipping``),
    multiplied by ``lr`` and, with ``multiply_by_parameter_scale``, by
    ``max(rms(w), epsilon2)``; with ``do_momentum`` it is averaged as
    ``m = beta1 * m + (1 - beta1) * u``; finally
    ``w <- (1 - weight_decay_rate) * w - u``.

    The optax chain (items in brackets depend on the options)::

        optax.chain(
            [optax.clip_by_global_norm(clip_grad_norm)],
            optax.scale_by_factored_rms(factored=factored, decay_rate=decay_rate,
                                        min_dim_size_to_factor=1, epsilon=epsilon1),
            [optax.clip_by_block_rms(clipping_threshold)],         # do_clipping
            optax.scale_by_learning_rate(lr, flip_sign=False),     # lr: number or schedule(count + 1)
            [optax.scale_by_param_block_rms(min_scale=epsilon2)],  # multiply_by_parameter_scale
            [optax.ema(beta1, debias=False,
                       accumulator_dtype=jnp.bfloat16 if momentum_in_bfloat16 else None)],  # do_momentum
            optax.add_decayed_weights(weight_decay_rate),  # or a schedule with weight_decay_n_steps
            optax.scale(-1.0),
        )

    Differences from Trax's arithmetic (both within float rounding in
    practice): optax adds ``epsilon1`` to ``g**2`` before averaging, Trax adds
    it to the averaged statistics; for arrays of rank > 2 optax factors the
    two largest axes, Trax the last two.

    Args:
      learning_rate: number or schedule of the 1-based step.
      factored: use the factored second-moment estimator for arrays of rank >= 2.
      multiply_by_parameter_scale: scale the step by the weights' RMS.
      do_clipping: clip the update's RMS to ``clipping_threshold``.
      do_momentum: keep a momentum (running average of updates) with ``beta1``.
      momentum_in_bfloat16: store the momentum in bfloat16.
      beta1: momentum decay (used only with ``do_momentum``).
      decay_rate: exponent of the second-moment decay schedule.
      clipping_threshold: update clipping threshold (None: no clipping).
      weight_decay_rate: fraction of the weights subtracted on each step.
      weight_decay_n_steps: if >= 1, the decay falls linearly to 0 over this
        many steps; 0 or None decays always.
      epsilon1: regularization constant for the squared gradient.
      epsilon2: regularization constant (minimum) for the parameter scale.
      clip_grad_norm: pax_trax extension: clip the global gradient norm first.

        >>> import jax.numpy as jnp
        >>> from pax_trax import optimizers
        >>> opt = optimizers.Adafactor(0.05)
        >>> state = opt.init({"w": jnp.ones((4, 3)), "b": jnp.zeros(3)})
    """
    name = "Adafactor"
    check_static(name, weight_decay_n_steps=weight_decay_n_steps)
    check_learning_rate(name, learning_rate)
    check_number(name, "beta1", beta1, low=0.0, high=1.0)
    check_number(name, "decay_rate", decay_rate, low=0.0)
    if do_clipping and clipping_threshold is not None:
        check_number(name, "clipping_threshold", clipping_threshold, low=0.0, low_open=True)
    check_number(name, "weight_decay_rate", weight_decay_rate, low=0.0)
    if weight_decay_n_steps is not None:
        check_number(name, "weight_decay_n_steps", weight_decay_n_steps, low=0.0)
    check_number(name, "epsilon1", epsilon1, low=0.0)
    check_number(name, "epsilon2", epsilon2, low=0.0)
    check_clip_grad_norm(name, clip_grad_norm)

    chain = list(maybe_clip(clip_grad_norm))
    chain.append(
        optax.scale_by_factored_rms(
            factored=factored,
            decay_rate=decay_rate,
            step_offset=0,
            min_dim_size_to_factor=1,
            epsilon=epsilon1,
        )
    )
    if do_clipping and clipping_threshold is not None:
        chain.append(optax.clip_by_block_rms(clipping_threshold))
    chain.append(optax.scale_by_learning_rate(trax_learning_rate(learning_rate), flip_sign=False))
    if multiply_by_parameter_scale:
        chain.append(optax.scale_by_param_block_rms(min_scale=epsilon2))
    if do_momentum:
        dtype = jnp.bfloat16 if momentum_in_bfloat16 else None
        chain.append(optax.ema(beta1, debias=False, accumulator_dtype=dtype))
    if weight_decay_n_steps is not None and weight_decay_n_steps >= 1:
        chain.append(optax.add_decayed_weights(_DecayNSteps(weight_decay_rate, weight_decay_n_steps)))
    else:
        chain.append(optax.add_decayed_weights(weight_decay_rate))
    chain.append(optax.scale(-1.0))
    return optax.chain(*chain)
