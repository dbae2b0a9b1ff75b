"""Shared pieces of the Trax-named optimizers: argument checks, LR, SGD, norms.

Conventions shared by every optimizer in :mod:`pax_trax.optimizers`:

* ``learning_rate`` is a number or a Trax-style schedule. A schedule is called
  with the 1-based number of the step being taken (1 on the first update),
  which is how Trax's training ``Loop`` calls it and how the schedules in
  :mod:`pax_trax.supervised.lr_schedules` are defined (they give 0 at step 0).
* The optimizer's own step count (Adam's bias correction, Adafactor's decay
  schedule, ``weight_decay_n_steps``) is optax's ``count``: 0 on the first
  update, as when Trax's ``Optimizer.tree_update`` is called with ``step=0``.
* ``clip_grad_norm`` clips the gradient's global L2 norm first
  (``optax.clip_by_global_norm``), as Trax's ``Optimizer.tree_update`` does.
"""

import math

import jax
import optax

__all__ = ["SGD", "l2_norm", "clip_grads"]


def _concrete(value):
    """Returns `value` as a Python float, or None when it is traced/not a scalar."""
    if isinstance(value, jax.core.Tracer):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def check_number(opt_name, arg_name, value, *, low=None, high=None, low_open=False, high_open=False):
    """Checks a hyperparameter and raises an error that names it.

    Traced values (an optimizer built inside ``optax.inject_hyperparams``)
    are not checked.
    """
    if isinstance(value, jax.core.Tracer):
        return
    v = _concrete(value)
    if v is None:
        raise TypeError(f"{opt_name}: {arg_name} must be a number, got {value!r}")
    if math.isnan(v):
        raise ValueError(f"{opt_name}: {arg_name} must not be NaN")
    if low is not None and (v < low or (low_open and v == low)):
        op = ">" if low_open else ">="
        raise ValueError(f"{opt_name}: {arg_name} must be {op} {low}, got {value!r}")
    if high is not None and (v > high or (high_open and v == high)):
        op = "<" if high_open else "<="
        raise ValueError(f"{opt_name}: {arg_name} must be {op} {high}, got {value!r}")


def check_static(opt_name, **values):
    """Raises a TypeError if a structural hyperparameter is traced.

    Such arguments choose which optax transformations are chained, so they
    must be concrete, e.g. ``optax.inject_hyperparams(SM3, static_args=(...))``.
    """
    for arg_name, value in values.items():
        if isinstance(value, jax.core.Tracer):
            raise TypeError(
                f"{opt_name}: {arg_name} selects the optax transformations to chain and "
                f"cannot be a traced value; with optax.inject_hyperparams pass "
                f"static_args=({arg_name!r},)"
            )


def check_learning_rate(opt_name, learning_rate):
    if callable(learning_rate):
        return
    if learning_rate is None or isinstance(learning_rate, (str, bytes, bool)):
        raise TypeError(
            f"{opt_name}: learning_rate must be a non-negative number or a schedule "
            f"(a callable of the step), got {learning_rate!r}"
        )
    check_number(opt_name, "learning_rate", learning_rate, low=0.0)


def check_clip_grad_norm(opt_name, clip_grad_norm):
    if clip_grad_norm is not None:
        check_number(opt_name, "clip_grad_norm", clip_grad_norm, low=0.0, low_open=True)


class TraxStepSchedule:
    """Calls a Trax-style schedule at the 1-based step: ``schedule(count + 1)``."""

    def __init__(self, schedule):
        self.schedule = schedule

    def __call__(self, count):
        return self.schedule(count + 1)

    def __repr__(self):
        return f"TraxStepSchedule({self.schedule!r})"


def trax_learning_rate(learning_rate):
    """The learning rate as optax consumes it (see the module docstring)."""
    if callable(learning_rate):
        return TraxStepSchedule(learning_rate)
    return learning_rate


def maybe_clip(clip_grad_norm):
    """``[optax.clip_by_global_norm(clip_grad_norm)]`` or ``[]``."""
    if clip_grad_norm is None:
        return []
    return [optax.clip_by_global_norm(clip_grad_norm)]


def SGD(learning_rate=0.01, clip_grad_norm=None, weight_decay_rate=0.0):  # noqa: N802
    """Stochastic gradient descent (SGD), as ``trax.optimizers.SGD``.

    Update: ``w <- (1 - weight_decay_rate) * w - lr * g``. Trax's SGD has no
    weight decay; ``weight_decay_rate`` (default 0) is a pax_trax extension
    applied as in Trax's Adam and Momentum (not scaled by the learning rate).

    The optax chain::

        optax.chain(
            optax.clip_by_global_norm(clip_grad_norm),   # if clip_grad_norm is not None
            optax.scale_by_learning_rate(lr),            # lr: number or schedule(count + 1)
            optax.add_decayed_weights(-weight_decay_rate),
        )

        >>> import jax.numpy as jnp, optax
        >>> from pax_trax.optimizers import SGD
        >>> opt = SGD(0.1)
        >>> w = {"w": jnp.array([1.0, -2.0])}
        >>> updates, _ = opt.update({"w": jnp.array([1.0, 1.0])}, opt.init(w), w)
        >>> optax.apply_updates(w, updates)["w"].tolist()
        [0.8999999761581421, -2.0999999046325684]
    """
    check_learning_rate("SGD", learning_rate)
    check_clip_grad_norm("SGD", clip_grad_norm)
    check_number("SGD", "weight_decay_rate", weight_decay_rate, low=0.0)
    return optax.chain(
        *maybe_clip(clip_grad_norm),
        optax.scale_by_learning_rate(trax_learning_rate(learning_rate)),
        optax.add_decayed_weights(-weight_decay_rate),
    )


def l2_norm(tree):
    """Returns an L2 norm computed over all elements of all tensors in `tree`.

    The tensors are treated as one flattened vector (``optax.tree.norm``).

        >>> import jax.numpy as jnp
        >>> float(l2_norm({"a": jnp.array([3.0]), "b": [jnp.array([[4.0]])]}))
        5.0
    """
    return optax.tree.norm(tree)


def clip_grads(grad_tree, max_norm):
    """Proportionally reduces each gradient value to respect an aggregate limit.

    All elements of ``grad_tree`` are treated as one vector, which is scaled
    down (if needed) so that its L2 norm does not exceed ``max_norm``
    (``optax.clip_by_global_norm``). Returns a tree of the same structure.

        >>> import jax.numpy as jnp
        >>> clip_grads({"a": jnp.array([3.0, 4.0])}, 1.0)["a"].tolist()
        [0.6000000238418579, 0.800000011920929]
    """
    check_number("clip_grads", "max_norm", max_norm, low=0.0, low_open=True)
    clip = optax.clip_by_global_norm(max_norm)
    clipped, _ = clip.update(grad_tree, clip.init(grad_tree))
    return clipped
