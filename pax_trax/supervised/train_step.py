"""A functional training step, as the core of Trax's ``Loop``/``Trainer``.

``make_train_step(loss_layer, optimizer)`` returns a pure function::

    train_step(model, opt_state, batch, key=None) -> (model, opt_state, metrics)

It runs ``Serial(model, loss_layer)`` on the data stack ``batch`` (inputs,
targets[, weights]) as Trax's ``Loop`` does, takes the gradient of the loss
with respect to ``model.parameters()``, applies one optax update and returns
the updated model (new parameters and new state: BatchNorm statistics,
advanced dropout keys), the new optimizer state and a dict of metrics
(``loss``, ``gradients_l2``, ``weights_l2``). It is built for ``jax.jit``
(jit it yourself; donating ``model`` and ``opt_state`` saves memory)::

    step = jax.jit(make_train_step(loss_layer, optimizer), donate_argnums=(0, 1))

Options: gradient accumulation over micro-batches (``n_accumulation_steps``),
a memory-efficient chunked loss for models ending in ``Dense``
(``loss_chunk_size``), mixed precision with a ``jmp`` policy and loss scaling.

    >>> import jax, numpy as np, optax
    >>> from pax_trax import nn
    >>> model = nn.Serial(nn.Dense(4), nn.Relu(), nn.Dense(3)).init(np.zeros((8, 5), np.float32))
    >>> optimizer = optax.sgd(0.1)
    >>> opt_state = init_optimizer_state(optimizer, model)
    >>> step = jax.jit(make_train_step(nn.WeightedCategoryCrossEntropy(), optimizer))
    >>> x, y = np.ones((8, 5), np.float32), np.zeros((8,), np.int32)
    >>> model, opt_state, metrics = step(model, opt_state, (x, y, np.ones((8,), np.float32)))
    >>> sorted(metrics)
    ['gradients_l2', 'loss', 'weights_l2']
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jmp
import numpy as np
import optax

from pax_trax.core.module import Module, purecall
from pax_trax.nn import core as core_lib
from pax_trax.nn import metrics as metrics_lib
from pax_trax.nn.base import Fn
from pax_trax.nn.combinators import Serial
from pax_trax.optimizers import l2_norm

__all__ = [
    "make_train_step",
    "make_eval_step",
    "init_optimizer_state",
    "LossScaleState",
]


class LossScaleState(NamedTuple):
    """Optimizer state plus the state of a `jmp.DynamicLossScale`.

    A train step built with ``loss_scale=jmp.DynamicLossScale(...)`` returns
    its optimizer state as this pair, so the (changing) loss scale travels
    with the optimizer state through ``jit``, checkpoints and the Loop. Static
    and no-op loss scales are constants of the step and are not carried.
    """

    opt_state: Any
    loss_scale: jmp.DynamicLossScale


def init_optimizer_state(optimizer, model, loss_scale=None):
    """Returns ``optimizer.init(model.parameters())``.

    With a ``jmp.DynamicLossScale`` the result is a `LossScaleState` holding
    it, ready for a train step built with that loss scale.

    >>> import numpy as np, optax
    >>> from pax_trax import nn
    >>> model = nn.Dense(2).init(np.zeros((1, 3), np.float32))
    >>> state = init_optimizer_state(optax.adam(1e-3), model)
    >>> state[0].mu.w.shape
    (3, 2)
    """
    _check_optimizer(optimizer)
    if not isinstance(model, Module):
        raise TypeError(
            f"init_optimizer_state: expected a pax_trax Module, got {type(model).__name__}."
        )
    opt_state = optimizer.init(model.parameters())
    if isinstance(loss_scale, jmp.DynamicLossScale):
        return LossScaleState(opt_state, loss_scale)
    return opt_state


# ---------------------------------------------------------------------------
# Argument checks


def _check_optimizer(optimizer):
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            "optimizer must be an optax.GradientTransformation (with init and update), e.g. "
            f"optax.adam(1e-3) or pax_trax.optimizers.Adam(), got {optimizer!r}."
        )


def _check_policy(policy):
    if policy is None or isinstance(policy, jmp.Policy):
        return policy
    if isinstance(policy, str):
        return jmp.get_policy(policy)
    raise TypeError(
        "policy must be a jmp.Policy or a string for jmp.get_policy (e.g. "
        f"'params=float32,compute=bfloat16,output=float32'), got {policy!r}."
    )


_LOSS_SCALES = (jmp.NoOpLossScale, jmp.StaticLossScale, jmp.DynamicLossScale)


def _check_loss_scale(loss_scale):
    if loss_scale is None or isinstance(loss_scale, _LOSS_SCALES):
        return loss_scale
    raise TypeError(
        "loss_scale must be a jmp.NoOpLossScale, jmp.StaticLossScale or "
        f"jmp.DynamicLossScale, got {loss_scale!r}."
    )


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def _as_items(batch):
    if isinstance(batch, (tuple, list)):
        return tuple(batch)
    raise TypeError(
        "batch must be a tuple (inputs, targets[, weights]) of arrays, as Trax's data "
        f"streams give, got {type(batch).__name__}."
    )


# ---------------------------------------------------------------------------
# The data stack: Serial(model, loss_layer) without building it.


def _n_consumed(model, end_layer):
    """How many batch items ``Serial(model, end_layer)`` consumes."""
    return max(model.n_in, model.n_in - model.n_out + end_layer.n_in)


def _pack(items):
    return items[0] if len(items) == 1 else tuple(items)


def _model_inputs(model, items):
    return _pack(items[: model.n_in]) if model.n_in != 1 else items[0]


def _outputs_tuple(outputs, n_out):
    return (outputs,) if n_out == 1 else tuple(outputs)


def _check_batch(model, end_layer, items, what):
    needed = _n_consumed(model, end_layer)
    if len(items) < needed:
        raise ValueError(
            f"{what}: Serial(model, {end_layer.name}) takes {needed} batch items (the model "
            f"takes {model.n_in}, the {end_layer.name} layer its {end_layer.n_in} inputs from "
            f"the model's {model.n_out} output(s) and the rest of the batch), but the batch has "
            f"{len(items)}."
        )
    return items[:needed]


def _apply_end(end_layer, stack):
    """Runs a (weightless) loss/metric layer on the top of the stack; returns its scalar."""
    x = _pack(stack[: end_layer.n_in]) if end_layer.n_in != 1 else stack[0]
    _, value = purecall(end_layer, x)
    return value


# ---------------------------------------------------------------------------
# Mixed precision helpers


def _cast_floats(tree, dtype):
    def cast(x):
        if isinstance(x, (jax.Array, np.ndarray)) and jnp.issubdtype(x.dtype, jnp.floating):
            return x.astype(dtype)
        return x

    return jax.tree_util.tree_map(cast, tree)


def _restore_dtypes(new, old):
    """Casts `new`'s leaves to the dtypes of `old`'s (state keeps its dtypes)."""
    return jax.tree_util.tree_map(
        lambda n, o: n.astype(o.dtype) if hasattr(n, "astype") and n.dtype != o.dtype else n,
        new, old,
    )


# ---------------------------------------------------------------------------
# Chunked loss: which loss layers, which model tails.


class _ChunkLoss(NamedTuple):
    per_item: Any  # (model_output rows, target rows) -> per-row losses
    weighted: bool  # the loss layer takes weights (n_in == 3)
    normalize: bool  # divide by the sum of weights (mean) vs. plain weighted sum


def _is_fn(layer, f):
    return isinstance(layer, Fn) and layer.f is f


def _ce_from_log_probs(model_output, targets):
    return metrics_lib._cross_entropy(model_output, targets)


def _ce_with_log_softmax(model_output, targets):
    return metrics_lib._cross_entropy(core_lib.log_softmax(model_output), targets)


def _chunk_loss_spec(loss_layer):
    """The per-row form of a loss layer that chunked computation supports, or None."""
    if isinstance(loss_layer, Fn):
        f = loss_layer.f
        if isinstance(f, metrics_lib._WeightedCategoryCrossEntropy):
            ls = f.label_smoothing
            return _ChunkLoss(
                lambda out, t: metrics_lib._category_cross_entropy(out, t, ls), True, True)
        if isinstance(f, metrics_lib._CategoryCrossEntropy):
            ls = f.label_smoothing
            return _ChunkLoss(
                lambda out, t: metrics_lib._category_cross_entropy(out, t, ls), False, True)
        return None
    if _is_plain_serial(loss_layer):
        layers = loss_layer.layers
        if len(layers) == 2 and _is_fn(layers[0], metrics_lib._cross_entropy):
            if _is_fn(layers[1], metrics_lib._weighted_mean):  # CrossEntropyLoss
                return _ChunkLoss(_ce_from_log_probs, True, True)
            if _is_fn(layers[1], metrics_lib._weighted_sum):  # CrossEntropySum
                return _ChunkLoss(_ce_from_log_probs, True, False)
        if (len(layers) == 3 and _is_fn(layers[0], core_lib._log_softmax_last)
                and _is_fn(layers[1], metrics_lib._cross_entropy)
                and _is_fn(layers[2], metrics_lib._weighted_mean)):
            return _ChunkLoss(_ce_with_log_softmax, True, True)  # ...WithLogSoftmax
    return None


_CHUNKABLE = ("WeightedCategoryCrossEntropy, CategoryCrossEntropy, CrossEntropyLoss, "
              "CrossEntropyLossWithLogSoftmax, CrossEntropySum")


def _is_plain_serial(layer):
    return isinstance(layer, Serial) and type(layer).forward_with_state is Serial.forward_with_state


def _flat_layers(model):
    """The leaf layers of nested Serials, in order (Serial semantics compose)."""
    if _is_plain_serial(model):
        out = []
        for layer in model.layers:
            out.extend(_flat_layers(layer))
        return out
    return [model]


def _rebuild(model, layers_iter):
    """Puts the (updated) leaf layers back into the nested Serial structure of `model`."""
    if _is_plain_serial(model):
        new = tuple(_rebuild(layer, layers_iter) for layer in model.layers)
        return model.replace(layers=new)
    return next(layers_iter)


def _split_tail(model):
    """Splits the flat layers into (body, tail): tail is (Dense,) or (Dense, LogSoftmax)."""
    flat = _flat_layers(model)
    if len(flat) >= 2 and isinstance(flat[-2], core_lib.Dense) and _is_fn(
            flat[-1], core_lib._log_softmax_last):
        return flat[:-2], flat[-2:]
    if flat and isinstance(flat[-1], core_lib.Dense):
        return flat[:-1], flat[-1:]
    names = [layer.name for layer in flat[-2:]]
    raise ValueError(
        "loss_chunk_size > 0 needs a model that ends in a Dense layer (optionally followed "
        f"by LogSoftmax), e.g. Serial(..., Dense(vocab_size)); this model ends in {names}."
    )


# ---------------------------------------------------------------------------
# The train step


def make_train_step(loss_layer, optimizer, *, n_accumulation_steps=1, loss_chunk_size=0,
                    policy=None, loss_scale=None):
    """Returns ``train_step(model, opt_state, batch, key=None) -> (model, opt_state, metrics)``.

    Args:
      loss_layer: a weightless layer computing a scalar from the model's
        outputs and the rest of the batch, e.g. ``nn.WeightedCategoryCrossEntropy()``
        (model output, targets, weights) or ``nn.L2Loss()``. As in Trax the
        step runs ``Serial(model, loss_layer)`` on the batch; batch items
        beyond what that Serial consumes are ignored.
      optimizer: any ``optax.GradientTransformation`` (``pax_trax.optimizers.*``
        included); its state comes from `init_optimizer_state`.
      n_accumulation_steps: N > 1 splits the batch along axis 0 into N equal
        micro-batches, runs them one after the other (``lax.scan``, threading
        the model state), averages their gradients and losses and applies one
        update. With a mean loss over equal-size micro-batches and no
        batch-dependent layers this equals one step on the whole batch; a
        weighted loss is averaged per micro-batch (mean of means).
      loss_chunk_size: C > 0 computes the model's final ``Dense`` (and a
        following ``LogSoftmax``) together with the loss over chunks of C rows
        of the flattened (batch * length) positions, with ``jax.checkpoint``,
        so the full logits are never materialized at once (as Trax's Loop
        with ``loss_chunk_size``). Supported loss layers: the cross-entropy
        family (WeightedCategoryCrossEntropy, CategoryCrossEntropy,
        CrossEntropyLoss, CrossEntropyLossWithLogSoftmax, CrossEntropySum).
        When C does not divide the number of rows, the rows are padded with
        zero-weight rows; the result equals the unchunked loss.
      policy: a ``jmp.Policy`` or a string for ``jmp.get_policy`` such as
        ``'params=float32,compute=bfloat16,output=float32'``. Parameters stay
        in ``param_dtype``; the forward pass runs on parameters and float
        inputs cast to ``compute_dtype``; the model outputs are cast to
        ``output_dtype`` before the loss; gradients are in ``param_dtype``.
        Module state (e.g. BatchNorm statistics) keeps its dtype.
      loss_scale: a ``jmp.NoOpLossScale``, ``StaticLossScale`` or
        ``DynamicLossScale`` (None: no scaling, right for bfloat16; float16
        compute usually needs one). The loss is scaled and the gradients
        unscaled. With ``DynamicLossScale`` a step whose gradients are not
        finite is skipped (parameters, optimizer state and float module state
        are kept; RNG keys still advance) and the scale is adjusted; its state
        travels in ``opt_state`` as a `LossScaleState` (``train_step`` wraps a
        plain optimizer state on the first call, using this ``loss_scale``).

    The returned ``train_step(model, opt_state, batch, key=None)``:

    * ``batch``: a tuple (inputs, targets[, weights]) of arrays.
    * ``key``: if given, ``model.reseed(key)`` replaces every RNG key of the
      model (dropout) first, so the step is a pure function of its inputs.
    * The model runs in its own mode (normally ``'train'``) through
      ``pax_trax.purecall``, so its new state is in the returned model.
    * ``metrics``: float32 scalars ``loss``, ``gradients_l2`` (global norm of
      the averaged, unscaled gradients) and ``weights_l2`` (of the weights
      before the update, as Trax reports); with ``DynamicLossScale`` also
      ``loss_scale`` and ``grads_finite``.

    The function is pure and meant to be jitted by the caller, e.g.
    ``jax.jit(train_step, donate_argnums=(0, 1))``.
    """
    _check_optimizer(optimizer)
    if not isinstance(loss_layer, Module):
        raise TypeError(
            f"loss_layer must be a pax_trax layer (e.g. nn.WeightedCategoryCrossEntropy()), "
            f"got {type(loss_layer).__name__}."
        )
    n_acc = _check_int("n_accumulation_steps", n_accumulation_steps, 1)
    chunk = _check_int("loss_chunk_size", loss_chunk_size, 0)
    policy = _check_policy(policy)
    loss_scale = _check_loss_scale(loss_scale)
    if loss_layer.n_out != 1:
        raise ValueError(
            f"loss_layer must return one scalar (n_out=1), {loss_layer.name} has "
            f"n_out={loss_layer.n_out}."
        )
    chunk_spec = None
    if chunk:
        chunk_spec = _chunk_loss_spec(loss_layer)
        if chunk_spec is None:
            raise ValueError(
                f"loss_chunk_size > 0 is supported for the cross-entropy loss layers "
                f"({_CHUNKABLE}), got {loss_layer.name}."
            )
    dynamic = isinstance(loss_scale, jmp.DynamicLossScale)

    def forward_loss(params, states, items):
        """Returns (loss, new_states) for one (micro-)batch."""
        if policy is not None:
            params = policy.cast_to_compute(params)
            model_items = policy.cast_to_compute(items[: states.n_in])
            items = tuple(model_items) + tuple(items[states.n_in:])
        model = states.update_parameters(params)
        if chunk_spec is not None:
            loss, new_model = _chunked_loss(model, items)
        else:
            new_model, outputs = purecall(model, _model_inputs(model, items))
            if policy is not None:
                outputs = policy.cast_to_output(outputs)
            stack = _outputs_tuple(outputs, model.n_out) + tuple(items[model.n_in:])
            loss = _apply_end(loss_layer, stack)
        loss = jnp.asarray(loss)
        if loss.shape != ():
            raise ValueError(
                f"the loss layer {loss_layer.name} must return a scalar, got shape {loss.shape}."
            )
        new_states = _restore_dtypes(new_model.states(), states)
        return loss.astype(jnp.float32), new_states

    def _chunked_loss(model, items):
        body_layers, tail = _split_tail(model)
        if model.n_out != 1:
            raise ValueError(
                f"loss_chunk_size > 0 needs a model with one output, got n_out={model.n_out}."
            )
        body = Serial(*body_layers)
        new_body, hidden = purecall(body, _model_inputs(model, items))
        targets = items[model.n_in]
        if tuple(targets.shape) != tuple(hidden.shape[:-1]):
            raise ValueError(
                f"chunked loss: expected targets of shape {tuple(hidden.shape[:-1])} (the "
                f"positions of the final Dense's input {tuple(hidden.shape)}), got "
                f"{tuple(targets.shape)}."
            )
        if chunk_spec.weighted:
            weights = jnp.broadcast_to(items[model.n_in + 1], targets.shape)
        else:
            weights = jnp.ones(targets.shape, jnp.float32)
        weights = weights.astype(jnp.float32).reshape(-1)
        rows = hidden.reshape(-1, hidden.shape[-1])
        row_targets = targets.reshape(-1)
        n_rows = rows.shape[0]
        n_chunks = -(-n_rows // chunk)
        pad = n_chunks * chunk - n_rows
        if pad:  # zero-weight rows contribute nothing to the sums
            rows = jnp.pad(rows, ((0, pad), (0, 0)))
            row_targets = jnp.pad(row_targets, (0, pad))
            weights = jnp.pad(weights, (0, pad))
        rows = rows.reshape(n_chunks, chunk, rows.shape[-1])
        row_targets = row_targets.reshape(n_chunks, chunk)
        chunk_weights = weights.reshape(n_chunks, chunk)

        @jax.checkpoint
        def chunk_sum(tail_layers, h, t, w):
            out = h
            for layer in tail_layers:
                out = layer.forward(out)
            if policy is not None:
                out = policy.cast_to_output(out)
            per_row = chunk_spec.per_item(out, t)
            return jnp.sum(per_row.astype(jnp.float32) * w)

        def body_fn(total, xs):
            h, t, w = xs
            return total + chunk_sum(tuple(tail), h, t, w), None

        total, _ = jax.lax.scan(body_fn, jnp.zeros((), jnp.float32),
                                (rows, row_targets, chunk_weights))
        loss = total / jnp.sum(weights) if chunk_spec.normalize else total
        new_model = _rebuild(model, iter(list(new_body.layers) + list(tail)))
        return loss, new_model

    def grads_and_loss(params, states, items, scale):
        def scaled_loss(p, s, xs):
            loss, new_states = forward_loss(p, s, xs)
            scaled = scale.scale(loss) if scale is not None else loss
            return scaled, (loss, new_states)

        grad_fn = jax.grad(scaled_loss, has_aux=True)
        if n_acc == 1:
            grads, (loss, new_states) = grad_fn(params, states, items)
            return grads, loss, new_states

        micro = tuple(_split_micro(x, n_acc, i) for i, x in enumerate(items))

        def scan_fn(carry, xs):
            s, g_sum, l_sum = carry
            g, (loss, s2) = grad_fn(params, s, xs)
            g_sum = jax.tree_util.tree_map(jnp.add, g_sum, g)
            return (s2, g_sum, l_sum + loss), None

        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        (new_states, g_sum, l_sum), _ = jax.lax.scan(
            scan_fn, (states, zeros, jnp.zeros((), jnp.float32)), micro)
        grads = jax.tree_util.tree_map(lambda g: g / n_acc, g_sum)
        return grads, l_sum / n_acc, new_states

    def train_step(model, opt_state, batch, key=None):
        if not isinstance(model, Module):
            raise TypeError(f"train_step: expected a pax_trax Module, got {type(model).__name__}.")
        items = _check_batch(model, loss_layer, _as_items(batch), "train_step")
        items = tuple(jnp.asarray(x) for x in items)
        if key is not None:
            model = model.reseed(key)
        scale = loss_scale
        if dynamic:
            if isinstance(opt_state, LossScaleState):
                opt_state, scale = opt_state
        params = model.parameters()
        states = model.states()
        grads, loss, new_states = grads_and_loss(params, states, items, scale)
        if scale is not None:
            grads = scale.unscale(grads)
        if policy is not None:
            grads = policy.cast_to_param(grads)
        metrics = {
            "loss": loss,
            "gradients_l2": l2_norm(grads).astype(jnp.float32),
            "weights_l2": l2_norm(params).astype(jnp.float32),
        }
        updates, new_opt_state = optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        if dynamic:
            finite = jmp.all_finite(grads)
            new_params = jmp.select_tree(finite, new_params, params)
            new_opt_state = _select_like(finite, new_opt_state, opt_state)
            new_states = jax.tree_util.tree_map(
                lambda n, o: _select_float(finite, n, o), new_states, states)
            scale = scale.adjust(finite)
            metrics["loss_scale"] = jnp.asarray(scale.loss_scale, jnp.float32)
            metrics["grads_finite"] = finite
            new_opt_state = LossScaleState(new_opt_state, scale)
        return new_states.update_parameters(new_params), new_opt_state, metrics

    return train_step


def _select_float(pred, new, old):
    if jnp.issubdtype(new.dtype, jnp.floating):
        return jax.lax.select(pred, new, old)
    return new  # RNG keys and counters advance even on a skipped step


def _select_like(pred, a, b):
    return jax.tree_util.tree_map(
        lambda x, y: jax.lax.select(pred, jnp.asarray(x), jnp.asarray(y)), a, b)


def _split_micro(x, n, index):
    if x.ndim == 0 or x.shape[0] % n:
        raise ValueError(
            f"n_accumulation_steps={n}: every batch item must have a leading batch axis "
            f"divisible by {n}, but item {index} has shape {tuple(x.shape)}."
        )
    return x.reshape((n, x.shape[0] // n) + tuple(x.shape[1:]))


# ---------------------------------------------------------------------------
# Eval step


def make_eval_step(metric_layers, metric_names=None, *, policy=None):
    """Returns ``eval_step(model, batch) -> {name: value}`` for the given metric layers.

    Each metric is computed as ``Serial(model.eval(), metric)`` on the batch
    (the model runs once; each metric takes the model's outputs and the rest
    of the batch), as Trax's ``EvalTask``. Names default to the layers' names
    (repeated names get ``_1``, ``_2``... suffixes). Jit the result.

    >>> import numpy as np
    >>> from pax_trax import nn
    >>> model = nn.Dense(3).init(np.zeros((2, 4), np.float32))
    >>> eval_step = make_eval_step([nn.CategoryAccuracy(), nn.CategoryCrossEntropy()])
    >>> sorted(eval_step(model, (np.ones((2, 4), np.float32), np.array([0, 1]))))
    ['CategoryAccuracy', 'CategoryCrossEntropy']
    """
    if isinstance(metric_layers, Module):
        metric_layers = [metric_layers]
    metric_layers = tuple(metric_layers)
    if not metric_layers or not all(isinstance(m, Module) for m in metric_layers):
        raise TypeError(f"make_eval_step: expected a list of metric layers, got {metric_layers!r}.")
    if metric_names is None:
        names, seen = [], {}
        for m in metric_layers:
            count = seen.get(m.name, 0)
            seen[m.name] = count + 1
            names.append(m.name if count == 0 else f"{m.name}_{count}")
    else:
        names = list(metric_names)
        if len(names) != len(metric_layers) or len(set(names)) != len(names):
            raise ValueError(
                f"metric_names must be {len(metric_layers)} distinct names, one per metric, "
                f"got {names}."
            )
    policy = _check_policy(policy)

    def eval_step(model, batch):
        items = tuple(jnp.asarray(x) for x in _as_items(batch))
        for m in metric_layers:
            _check_batch(model, m, items, "eval_step")
        model = model.eval()
        if policy is not None:
            model = model.states().update_parameters(policy.cast_to_compute(model.parameters()))
            items = tuple(policy.cast_to_compute(items[: model.n_in])) + items[model.n_in:]
        _, outputs = purecall(model, _model_inputs(model, items))
        if policy is not None:
            outputs = policy.cast_to_output(outputs)
        stack = _outputs_tuple(outputs, model.n_out) + tuple(items[model.n_in:])
        return {name: _apply_end(m, stack) for name, m in zip(names, metric_layers)}

    return eval_step
