"""Trax-named optimizers that return ``optax.GradientTransformation``s.

``Adam``, ``Adafactor``, ``SGD``, ``Momentum``, ``RMSProp`` and ``SM3`` take
Trax's arguments and defaults (``trax.optimizers``) and reproduce Trax's
update rules by composing optax transformations; each docstring gives its
chain. Any optax transformation can be used wherever one of these is.

Conventions (see each docstring for the details):

* ``learning_rate`` is a number or a Trax-style schedule, called with the
  1-based number of the step being taken (as Trax's ``Loop`` does), e.g. one
  from :mod:`pax_trax.supervised.lr_schedules`.
* ``weight_decay_rate`` is Trax's decoupled decay ``w <- (1 - rate) * w``,
  not multiplied by the learning rate.
* ``clip_grad_norm`` clips the global gradient norm before anything else.

    >>> import jax, jax.numpy as jnp, optax
    >>> from pax_trax import optimizers
    >>> params = {"w": jnp.array([1.0, -1.0])}
    >>> opt = optimizers.Adam(learning_rate=0.1, weight_decay_rate=0.0)
    >>> opt_state = opt.init(params)
    >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
    >>> updates, opt_state = opt.update(grads, opt_state, params)
    >>> [round(float(x), 3) for x in optax.apply_updates(params, updates)["w"]]
    [0.9, -0.9]
"""

from pax_trax.optimizers._base import SGD, clip_grads, l2_norm
from pax_trax.optimizers._sm3 import SM3, MomentumType
from pax_trax.optimizers._trax_optimizers import Adafactor, Adam, Momentum, RMSProp

__all__ = [
    "Adam",
    "Adafactor",
    "SGD",
    "Momentum",
    "RMSProp",
    "SM3",
    "MomentumType",
    "l2_norm",
    "clip_grads",
]
