"""Control-flow combinators: Scan, Cond, Chunk, Cache, BatchLeadingAxes.

These wrap one or two sublayers in `lax.scan`, `lax.cond`, reshapes over the
batch, or a predict-mode cache, keeping Trax's stack contract.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from pax_trax.core import shapes as shapes_lib
from pax_trax.core.errors import in_sublayer
from pax_trax.core.module import Module, state, static, submodule
from pax_trax.nn.base import (
    Partial,
    PureLayer,
    call_sublayer,
    check_mode,
    from_stack,
    init_sublayer,
    outputs_as_tuple,
    to_stack,
)
from pax_trax.nn.combinators import Serial, _positive_int

__all__ = ["Scan", "Cond", "Chunk", "Cache", "BatchLeadingAxes"]



def _state_leaves_identical(old, new):
    """True when `new`'s state leaves are the very objects in `old` (trace-time test)."""
    a, b = old.state_leaves(), new.state_leaves()
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def _check_layer(obj, who):
    if not isinstance(obj, Module):
        raise TypeError(
            f"{who}: expected a layer (a pax_trax Module), got {type(obj).__name__}: {obj!r}."
        )
    return obj


def _shape_without_axis(sig, axis, who):
    nd = len(sig.shape)
    if not -nd <= axis < nd:
        raise ValueError(f"{who}: axis {axis} is out of range for an input of shape {sig.shape}.")
    ax = axis % nd
    return shapes_lib.ShapeDtype(sig.shape[:ax] + sig.shape[ax + 1:], sig.dtype)


class Scan(Module):
    """Applies a layer cumulatively along `axis`, threading `n_carry` carries.

    The layer maps `(x_1..x_N, carry_1..carry_M)` to `(y_1..y_K, new_carry_1..M)`;
    Scan slices every `x_i` along `axis`, runs the layer step by step with
    `lax.scan`, stacks the `y`s back along `axis` and returns them followed by
    the final carries. State changes of the layer (RNG keys, counters) are
    threaded from step to step. In `mode='predict'` the final carry is kept in
    this layer's state and used instead of the given carry on the next call,
    so a sequence can be fed in pieces. `remat=True` recomputes the step in
    the backward pass (`jax.checkpoint`).

    >>> import jax.numpy as jnp
    >>> from pax_trax.nn import Fn
    >>> cumsum = Scan(Fn('Add2', lambda x, c: (x + c, x + c), n_out=2))
    >>> ys, last = cumsum((jnp.array([1, 2, 3]), jnp.array(0)))
    >>> ys.tolist(), last.item()
    ([1, 3, 6], 6)
    """

    layer = submodule()
    axis = static()
    n_carry = static()
    remat = static()
    mode = static()
    carry = state()

    def __init__(self, layer, axis=0, n_carry=1, remat=False, mode="train"):
        layer = _check_layer(layer, "Scan")
        if isinstance(n_carry, bool) or not isinstance(n_carry, int) or n_carry < 0:
            raise ValueError(f"Scan: n_carry must be a non-negative int, got {n_carry!r}.")
        if n_carry >= layer.n_in or n_carry > layer.n_out:
            raise ValueError(
                f"Scan: the layer {layer.name} takes {layer.n_in} input(s) and gives "
                f"{layer.n_out} output(s); it needs at least one scanned input besides the "
                f"n_carry={n_carry} carries, and must return the carries among its outputs."
            )
        self.layer = layer
        self.axis = int(axis)
        self.n_carry = n_carry
        self.remat = bool(remat)
        self.mode = check_mode(mode, "Scan")
        self.n_in = layer.n_in
        self.n_out = layer.n_out
        self.name = "Scan"

    @property
    def sublayer(self):
        """The scanned layer (Trax's `sublayer`)."""
        return self.layer

    def _split(self, items):
        n = self.n_carry
        return (tuple(items[:-n]), tuple(items[-n:])) if n else (tuple(items), ())

    def init_with_output_signature(self, input_signature, key):
        xs, carry = self._split(to_stack(input_signature, self.n_in))
        step = tuple(_shape_without_axis(x, self.axis, self.name) for x in xs) + carry
        layer, _ = init_sublayer(f"{self.name}[0]", self.layer, from_stack(step), key)
        new = self if layer is self.layer and self.carry is None else self.replace(
            layer=layer, carry=None)
        return new, new.output_signature(input_signature)

    def forward_with_state(self, inputs):
        xs, carry = self._split(to_stack(inputs, self.n_in))
        if self.mode == "predict" and self.n_carry and self.carry is not None:
            carry = tuple(self.carry)
        lengths = set()
        moved = []
        for x in xs:
            x = jnp.asarray(x)
            if not -x.ndim <= self.axis < x.ndim:
                raise ValueError(
                    f"axis {self.axis} is out of range for a scanned input of shape {x.shape}."
                )
            lengths.add(x.shape[self.axis])
            moved.append(jnp.moveaxis(x, self.axis, 0))
        if len(lengths) != 1:
            raise ValueError(
                f"all scanned inputs need the same length along axis {self.axis}, got "
                f"shapes {[tuple(jnp.shape(x)) for x in xs]}."
            )
        label = f"{self.name}[0]"
        n_carry, layer0 = self.n_carry, self.layer
        # The parameters are constants of the loop (closed over); only the
        # layer's state and the carries are loop-carried. Carrying the weights
        # too would make XLA copy them through every step.
        params = layer0.parameters()
        changed = []
        # Cells may move the input-only part of a step (e.g. x @ W_x for all
        # time steps at once: one large matmul instead of one per step) out
        # of the loop; they then compute the rest in `scan_step`.
        hoisted = hasattr(layer0, "scan_prepare") and hasattr(layer0, "scan_step")
        if hoisted:
            with in_sublayer(label, layer0.name):
                layer0.check_initialized()
                moved = list(layer0.scan_prepare(tuple(moved)))

        def step(c, x_slice):
            layer_states, cur = c
            layer = layer_states.update_parameters(params)
            step_inputs = from_stack(tuple(x_slice) + tuple(cur))
            if hoisted:
                with in_sublayer(label, layer.name):
                    new_layer, res = layer, layer.scan_step(step_inputs)
            else:
                new_layer, res = call_sublayer(label, layer, step_inputs)
            res = outputs_as_tuple(res, layer.n_out, label, layer)
            changed.append(not _state_leaves_identical(layer, new_layer))
            k = len(res) - n_carry
            return (new_layer.states(), tuple(res[k:])), tuple(res[:k])

        if self.remat:
            step = jax.checkpoint(step)
        (new_states, final_carry), ys = lax.scan(
            step, (layer0.states(), tuple(carry)), tuple(moved))
        new_layer = new_states.update_parameters(params)
        ys = tuple(
            jnp.moveaxis(y, 0, self.axis if self.axis >= 0 else self.axis % y.ndim) for y in ys
        )
        changes = {}
        if any(changed):
            changes["layer"] = new_layer
        if self.mode == "predict" and n_carry:
            changes["carry"] = tuple(final_carry)
        new = self.replace(**changes) if changes else self
        return new, from_stack(ys + tuple(final_carry))


class Cond(Module):
    """Runs `true(y)` if `cond(x)` else `false(y)`, with `lax.cond`.

    `x` is the top `cond.n_in` stack items and `y` the next `true.n_in`;
    `cond` must return one boolean scalar. `true` and `false` must have the
    same n_in and n_out (and, at run time, outputs of the same shapes and
    dtypes). Only the branch taken updates its state. `false` defaults to
    the identity.

    >>> import jax.numpy as jnp
    >>> from pax_trax.nn import Fn
    >>> pos = Fn('Positive', lambda x: x > 0)
    >>> layer = Cond(pos, Fn('Neg', lambda y: -y))
    >>> layer((jnp.array(1), jnp.array(5))).item(), layer((jnp.array(-1), jnp.array(5))).item()
    (-5, 5)
    """

    cond = submodule()
    true = submodule()
    false = submodule()

    def __init__(self, cond, true, false=None, name=None):
        cond = _check_layer(cond, "Cond")
        true = _check_layer(true, "Cond")
        false = Serial() if false is None else _check_layer(false, "Cond")
        if cond.n_out != 1:
            raise ValueError(
                f"Cond: cond must have n_out=1, got {cond.name} with n_out={cond.n_out}."
            )
        if true.n_in != false.n_in or true.n_out != false.n_out:
            raise ValueError(
                "Cond: true and false must have the same n_in and n_out; got "
                f"true {true.name}: {true.n_in} -> {true.n_out}, "
                f"false {false.name}: {false.n_in} -> {false.n_out}."
            )
        self.cond = cond
        self.true = true
        self.false = false
        self.n_in = cond.n_in + true.n_in
        self.n_out = true.n_out
        self.name = name or "Cond"

    def _labels(self):
        return tuple(f"{self.name}[{i}]" for i in range(3))

    def init_with_output_signature(self, input_signature, key):
        stack = to_stack(input_signature, self.n_in)
        k_c, k_t, k_f = jax.random.split(key, 3)
        l_c, l_t, l_f = self._labels()
        n = self.cond.n_in
        cond, c_sig = init_sublayer(l_c, self.cond, from_stack(stack[:n]), k_c)
        rest = stack[n:]
        rest = from_stack(rest)
        true, t_sig = init_sublayer(l_t, self.true, rest, k_t)
        false, f_sig = init_sublayer(l_f, self.false, rest, k_f)
        if shapes_lib.signature(t_sig) != shapes_lib.signature(f_sig):
            raise ValueError(
                f"Cond: both branches must have the same output signature; true gives "
                f"{t_sig}, false gives {f_sig}."
            )
        if isinstance(c_sig, shapes_lib.ShapeDtype) and c_sig.shape != ():
            raise ValueError(f"Cond: cond must return a scalar, got {c_sig}.")
        subs = (cond, true, false)
        if all(a is b for a, b in zip(subs, (self.cond, self.true, self.false))):
            return self, t_sig
        return self.replace(cond=cond, true=true, false=false), t_sig

    def forward_with_state(self, inputs):
        stack = to_stack(inputs, self.n_in)
        l_c, l_t, l_f = self._labels()
        n = self.cond.n_in
        new_cond, pred = call_sublayer(l_c, self.cond, from_stack(stack[:n]))
        pred = jnp.asarray(pred)
        if pred.shape != ():
            raise ValueError(f"cond {self.cond.name} must return a scalar, got shape {pred.shape}.")
        rest = stack[n:]
        rest = from_stack(rest)
        changed = {"true": False, "false": False}

        def run_true(operands):
            y, t, f = operands
            new_t, out = call_sublayer(l_t, t, y)
            changed["true"] = not _state_leaves_identical(t, new_t)
            return out, new_t, f

        def run_false(operands):
            y, t, f = operands
            new_f, out = call_sublayer(l_f, f, y)
            changed["false"] = not _state_leaves_identical(f, new_f)
            return out, t, new_f

        try:
            out, new_t, new_f = lax.cond(pred, run_true, run_false, (rest, self.true, self.false))
        except TypeError as exc:
            if "branch" not in str(exc):
                raise
            detail = [ln for ln in str(exc).splitlines() if "has type" in ln]
            raise ValueError(
                "both branches must give outputs (and states) of the same shapes and dtypes"
                + (f": {detail[0]}" if detail else f": {exc}")
            ) from None
        changes = {}
        if new_cond is not self.cond:
            changes["cond"] = new_cond
        if changed["true"]:
            changes["true"] = new_t
        if changed["false"]:
            changes["false"] = new_f
        return (self.replace(**changes) if changes else self), out


def _reshape_to_chunks(chunk_size, pass_unchunkable, x):
    batch = x.shape[0]
    size, n_chunks = chunk_size, batch // chunk_size
    if batch % chunk_size:
        if not pass_unchunkable:
            raise ValueError(f"Chunk size {chunk_size} must divide batch size {batch}.")
        size, n_chunks = batch, 1
    return jnp.reshape(x, (n_chunks, size) + tuple(x.shape[1:]))


def _reshape_from_chunks(x):
    return jnp.reshape(x, (x.shape[0] * x.shape[1],) + tuple(x.shape[2:]))


def _map_items(f, xs):
    return jax.tree_util.tree_map(f, xs)


def Chunk(layer, chunk_size, pass_unchunkable=True):
    """Runs `layer` on batch chunks of `chunk_size` (a rematerialized Scan) to save memory.

    The result equals the unchunked layer. A batch that `chunk_size` does not
    divide is run in one piece if `pass_unchunkable`, else it is an error.
    `chunk_size < 1` returns `layer` itself.
    """
    _check_layer(layer, "Chunk")
    if chunk_size < 1:
        return layer
    to_chunks = Partial(
        _map_items, Partial(_reshape_to_chunks, int(chunk_size), bool(pass_unchunkable))
    )
    from_chunks = Partial(_map_items, _reshape_from_chunks)
    return Serial(
        PureLayer(to_chunks, n_in=layer.n_in, n_out=layer.n_in, name="ReshapeToChunks"),
        Scan(layer, axis=0, n_carry=0, remat=True),
        PureLayer(from_chunks, n_in=layer.n_out, n_out=layer.n_out, name="ReshapeFromChunks"),
    )


# ---------------------------------------------------------------------------
# Cache, BatchLeadingAxes, SerialWithSideOutputs


class Cache(Module):
    """Applies `layer` on the first call and returns those outputs on later calls.

    As Trax's Cache, the outputs are kept in this layer's state (`cached`),
    so the first call changes state (use `pax_trax.purecall`). With
    `mode='train'` or `'eval'` the layer is simply applied on every call.
    """

    layer = submodule()
    mode = static()
    cached = state()

    def __init__(self, layer, mode="predict"):
        self.layer = _check_layer(layer, "Cache")
        self.mode = check_mode(mode, "Cache")
        self.n_in = layer.n_in
        self.n_out = layer.n_out
        self.name = "Cache"

    @property
    def sublayer(self):
        return self.layer

    def init_with_output_signature(self, input_signature, key):
        layer, sig = init_sublayer(f"{self.name}[0]", self.layer, input_signature, key)
        new = self if layer is self.layer and self.cached is None else self.replace(
            layer=layer, cached=None)
        return new, sig

    def forward_with_state(self, inputs):
        if self.mode == "predict" and self.cached is not None:
            return self, from_stack(self.cached)
        label = f"{self.name}[0]"
        layer, y = call_sublayer(label, self.layer, inputs)
        changes = {} if layer is self.layer else {"layer": layer}
        if self.mode == "predict":
            changes["cached"] = outputs_as_tuple(y, self.n_out, label, self.layer)
        return (self.replace(**changes) if changes else self), y


class BatchLeadingAxes(Module):
    """Applies `layer` after flattening all but the last `n_last_axes_to_keep` axes to batch.

    >>> import numpy as np
    >>> from pax_trax.nn.core import Dense
    >>> layer = BatchLeadingAxes(Dense(3)).init(np.zeros((2, 4, 5), np.float32))
    >>> layer(np.zeros((2, 4, 5), np.float32)).shape
    (2, 4, 3)
    """

    layer = submodule()
    n_last_axes_to_keep = static()

    def __init__(self, layer, n_last_axes_to_keep=1):
        layer = _check_layer(layer, "BatchLeadingAxes")
        if layer.n_out != 1:
            raise ValueError(
                f"BatchLeadingAxes only works for layers with n_out = 1, got {layer.n_out}."
            )
        self.layer = layer
        self.n_last_axes_to_keep = _positive_int(
            n_last_axes_to_keep, "n_last_axes_to_keep", "BatchLeadingAxes")
        self.n_in = layer.n_in
        self.name = "BatchLeadingAxes"

    @property
    def sublayer(self):
        return self.layer

    def _check(self, shape):
        if len(shape) < self.n_last_axes_to_keep + 1:
            raise ValueError(
                f"expected inputs with more than n_last_axes_to_keep="
                f"{self.n_last_axes_to_keep} axes, got shape {tuple(shape)}."
            )

    def init_with_output_signature(self, input_signature, key):
        k = self.n_last_axes_to_keep
        items = to_stack(input_signature, self.n_in)
        batched = []
        for sig in items:
            self._check(sig.shape)
            lead = 1
            for d in sig.shape[:-k]:
                lead *= d
            batched.append(shapes_lib.ShapeDtype((lead,) + sig.shape[-k:], sig.dtype))
        layer, out = init_sublayer(f"{self.name}[0]", self.layer, from_stack(batched), key)
        out = out.replace(shape=tuple(items[-1].shape[:-k]) + tuple(out.shape[1:]))
        return (self if layer is self.layer else self.replace(layer=layer)), out

    def forward_with_state(self, inputs):
        k = self.n_last_axes_to_keep
        items = to_stack(inputs, self.n_in)
        batched = []
        for x in items:
            self._check(jnp.shape(x))
            lead_shape = tuple(x.shape[:-k])
            batched.append(jnp.reshape(x, (-1,) + tuple(x.shape[-k:])))
        layer, res = call_sublayer(f"{self.name}[0]", self.layer, from_stack(batched))
        res = jnp.reshape(res, lead_shape + tuple(res.shape[1:]))
        return (self if layer is self.layer else self.replace(layer=layer)), res
