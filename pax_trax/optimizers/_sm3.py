"""SM3 (https://arxiv.org/abs/1901.11150) with Trax's options, built on optax.scale_by_sm3."""

import enum
from typing import NamedTuple

import jax
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

__all__ = ["SM3", "MomentumType"]

# Trax adds 1e-16 to sqrt(accumulator); optax adds eps inside the square root.
_SM3_EPS = 1e-32  # == (1e-16) ** 2
_GRAFT_EPS = 1e-16


class MomentumType(enum.IntEnum):
    """SM3 momentum variants, as ``trax.optimizers.sm3.MomentumType``."""

    EMA = 1
    HEAVY_BALL = 2
    NESTEROV = 3


class _GraftState(NamedTuple):
    sm3: optax.OptState
    adagrad: optax.OptState


def _scale_by_sm3_grafted(b2, eps):
    """SM3 preconditioning with second-moment averaging ``b2`` and AdaGrad grafting.

    For each weight array, the SM3-with-``b2`` preconditioned gradient is
    rescaled to the norm of the SM3-with-``b2 = 1`` (AdaGrad-like)
    preconditioned gradient, as Trax's SM3 does when
    ``second_moment_averaging != 1``. Both preconditioners are
    ``optax.scale_by_sm3`` (with ``b1=0``); only the norm grafting (absent from
    optax) is written here.
    """
    main = optax.scale_by_sm3(b1=0.0, b2=b2, eps=eps)
    graft = optax.scale_by_sm3(b1=0.0, b2=1.0, eps=eps)

    def init_fn(params):
        return _GraftState(main.init(params), graft.init(params))

    def update_fn(updates, state, params=None):
        pg, sm3_state = main.update(updates, state.sm3, params)
        pg_graft, graft_state = graft.update(updates, state.adagrad, params)

        def rescale(u, v):
            u_norm = jnp.sqrt(jnp.sum(u * u))
            v_norm = jnp.sqrt(jnp.sum(v * v))
            return u * (v_norm / (u_norm + _GRAFT_EPS))

        return jax.tree.map(rescale, pg, pg_graft), _GraftState(sm3_state, graft_state)

    return optax.GradientTransformation(init_fn, update_fn)


def SM3(  # noqa: N802
    learning_rate=0.01,
    momentum=0.9,
    second_moment_averaging=1.0,
    weight_decay=0.0,
    momentum_type=MomentumType.EMA,
    clip_grad_norm=None,
):
    """SM3 optimizer, memory-efficient adaptive optimization, as ``trax.optimizers.SM3``.

    Trax's update per weight array: the SM3 accumulator
    ``acc = b2 * min_i(v_i) + c * g**2`` (``c = 1`` when ``b2 == 1``, else
    ``1 - b2``) gives ``pg = g / (sqrt(acc) + 1e-16)``; when
    ``second_moment_averaging != 1``, ``pg`` is grafted to the norm of the
    AdaGrad (``b2 = 1``) SM3 step; then ``pg += weight_decay * w`` (L2-style,
    before momentum); momentum (``momentum > 0``) is an EMA
    ``m = momentum * m + (1 - momentum) * pg``, heavy-ball ``m = pg + momentum * m``
    or Nesterov ``m = pg + momentum * m; d = pg + momentum * m``; finally
    ``w <- w - lr * d``.

    The optax chain with the defaults (EMA momentum, ``weight_decay == 0``,
    ``second_moment_averaging == 1``)::

        optax.chain(
            optax.clip_by_global_norm(clip_grad_norm),   # if clip_grad_norm is not None
            optax.scale_by_sm3(b1=momentum, b2=1.0, eps=1e-32),
            optax.scale_by_learning_rate(lr),            # lr: number or schedule(count + 1)
        )

    and otherwise::

        optax.chain(
            optax.clip_by_global_norm(clip_grad_norm),   # if clip_grad_norm is not None
            optax.scale_by_sm3(b1=0.0, b2=second_moment_averaging, eps=1e-32),
                # grafted to the norm of optax.scale_by_sm3(b1=0.0, b2=1.0) if b2 != 1
            optax.add_decayed_weights(weight_decay),
            optax.ema(momentum, debias=False),           # MomentumType.EMA
            # or optax.trace(momentum)                   # MomentumType.HEAVY_BALL
            # or optax.trace(momentum, nesterov=True)    # MomentumType.NESTEROV
            # (no momentum transformation if momentum == 0)
            optax.scale_by_learning_rate(lr),
        )

    ``eps=1e-32`` inside optax's square root stands for Trax's ``1e-16``
    added outside it. Like Trax's, this SM3 needs weight arrays of rank >= 1.

        >>> import jax.numpy as jnp
        >>> from pax_trax import optimizers
        >>> opt = optimizers.SM3(0.1)
        >>> state = opt.init({"w": jnp.ones((4, 3)), "b": jnp.zeros(3)})
    """
    name = "SM3"
    check_static(
        name,
        momentum=momentum,
        second_moment_averaging=second_moment_averaging,
        weight_decay=weight_decay,
        momentum_type=momentum_type,
    )
    check_learning_rate(name, learning_rate)
    check_number(name, "momentum", momentum, low=0.0)
    check_number(name, "second_moment_averaging", second_moment_averaging, low=0.0, high=1.0)
    check_number(name, "weight_decay", weight_decay, low=0.0)
    check_clip_grad_norm(name, clip_grad_norm)
    try:
        momentum_type = MomentumType(momentum_type)
    except ValueError:
        raise ValueError(
            f"{name}: momentum_type must be one of {[m.name for m in MomentumType]} "
            f"(or 1, 2, 3), got {momentum_type!r}"
        ) from None

    graft = second_moment_averaging != 1.0
    has_momentum = momentum > 0.0
    lr = optax.scale_by_learning_rate(trax_learning_rate(learning_rate))
    clip = maybe_clip(clip_grad_norm)

    if not graft and weight_decay == 0.0 and momentum_type == MomentumType.EMA:
        # optax's own momentum inside scale_by_sm3 is Trax's EMA momentum.
        return optax.chain(*clip, optax.scale_by_sm3(b1=momentum, b2=1.0, eps=_SM3_EPS), lr)

    if graft:
        precondition = _scale_by_sm3_grafted(second_moment_averaging, _SM3_EPS)
    else:
        precondition = optax.scale_by_sm3(b1=0.0, b2=1.0, eps=_SM3_EPS)
    chain = [*clip, precondition, optax.add_decayed_weights(weight_decay)]
    if has_momentum:
        if momentum_type == MomentumType.EMA:
            chain.append(optax.ema(momentum, debias=False))
        else:
            chain.append(optax.trace(momentum, nesterov=momentum_type == MomentumType.NESTEROV))
    chain.append(lr)
    return optax.chain(*chain)
