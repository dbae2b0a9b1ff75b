"""Combinators for composing layers through the data stack, as Trax's.

    >>> import numpy as np
    >>> from pax_trax import nn
    >>> nn.Branch(nn.Add(), nn.Dup())
    Branch_in2_out3[
      Add_in2
      Dup_out2
    ]
    >>> nn.Serial(nn.Drop(), nn.Drop()).n_in
    2
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from pax_trax.core import shapes as shapes_lib
from pax_trax.core.module import Module, state, static, submodule
from pax_trax.nn.base import (
    Fn,
    PureLayer,
    call_sublayer,
    from_stack,
    init_sublayer,
    outputs_as_tuple,
    take,
    to_stack,
)

__all__ = [
    "Serial",
    "Parallel",
    "Branch",
    "Select",
    "Residual",
    "Dup",
    "Drop",
    "Swap",
    "Add",
    "SubtractTop",
    "Multiply",
    "Gate",
    "Concatenate",
    "Split",
    "Scan",
    "Cond",
    "Chunk",
    "Cache",
    "BatchLeadingAxes",
    "SerialWithSideOutputs",
    "FlattenList",
]


def _ensure_flat(layers):
    """Flattens nested lists/tuples of layers; checks every item is a module."""
    flat = []
    for obj in layers:
        if isinstance(obj, (list, tuple)):
            flat.extend(_ensure_flat(obj))
        elif isinstance(obj, Module):
            flat.append(obj)
        elif obj is None:
            continue
        else:
            raise TypeError(
                f"Expected a layer (a pax_trax Module), got {type(obj).__name__}: {obj!r}. "
                "Wrap plain functions with nn.Fn(name, f)."
            )
    return tuple(flat)


def _serial_n_in_n_out(layers):
    running_max = 0
    running_total = 0
    for layer in layers:
        running_total += layer.n_in
        running_max = max(running_max, running_total)
        running_total -= layer.n_out
    return running_max, running_max - running_total


def _split_keys(key, n):
    return list(jax.random.split(key, n)) if n else []


class Serial(Module):
    """Applies layers in sequence, managing their inputs and outputs on a stack.

    Each sublayer takes its `n_in` items off the top of the stack and pushes
    its `n_out` outputs; items a layer does not use pass through. Serial's
    `n_in` is the deepest the stack is read; an empty Serial is a 1 → 1 no-op.

    >>> import jax.numpy as jnp
    >>> from pax_trax import nn
    >>> layer = nn.Serial(nn.Fn('Times2', lambda x: 2 * x), nn.Add())
    >>> (layer.n_in, layer.n_out)
    (2, 1)
    >>> layer((jnp.array(3), jnp.array(1))).item()
    7
    """

    layers = submodule()
    sublayers_to_print = static(default=None)

    def __init__(self, *sublayers, name=None, sublayers_to_print=None):
        layers = _ensure_flat(sublayers)
        self.layers = layers
        self.name = name or "Serial"
        if sublayers_to_print is not None:
            # Display only: construction-time layers (or None) shown by repr.
            self.sublayers_to_print = tuple(
                Serial(*s) if isinstance(s, (list, tuple)) else s for s in sublayers_to_print
            )
        if layers:
            self.n_in, self.n_out = _serial_n_in_n_out(layers)

    def _sublayers_to_print(self):
        if self.sublayers_to_print is None:
            return self.sublayers
        return tuple(_NoneRepr() if s is None else s for s in self.sublayers_to_print)

    def _label(self, i):
        return f"{self.name}[{i}]"

    def forward_with_state(self, inputs):
        layers = self.layers
        if not layers:
            return self, inputs
        stack = to_stack(inputs, self.n_in)
        new_layers = []
        for i, layer in enumerate(layers):
            label = self._label(i)
            x, rest = take(stack, layer.n_in, label, layer)
            new_layer, y = call_sublayer(label, layer, x)
            stack = outputs_as_tuple(y, layer.n_out, label, layer) + rest
            new_layers.append(new_layer)
        new = self if all(a is b for a, b in zip(new_layers, layers)) else self.replace(
            layers=tuple(new_layers)
        )
        return new, from_stack(stack)

    def init_with_output_signature(self, input_signature, key):
        layers = self.layers
        if not layers:
            return self, input_signature
        stack = to_stack(input_signature, self.n_in)
        new_layers = []
        for i, (layer, k) in enumerate(zip(layers, _split_keys(key, len(layers)))):
            label = self._label(i)
            x, rest = take(stack, layer.n_in, label, layer)
            new_layer, out = init_sublayer(label, layer, x, k)
            stack = outputs_as_tuple(out, layer.n_out, label, layer) + rest
            new_layers.append(new_layer)
        return self.replace(layers=tuple(new_layers)), from_stack(stack)

    def __getitem__(self, index):
        return self.layers[index]

    def __len__(self):
        return len(self.layers)


class Parallel(Module):
    """Applies layers to successive spans of the inputs; concatenates outputs.

    A `None` argument is a 1 → 1 no-op (it passes its input through).
    Parallel(F, G, H) with n_in 1, 3, 2 takes 6 inputs: F(a), G(b, c, d), H(e, f).
    """

    layers = submodule()

    def __init__(self, *sublayers, name=None):
        layers = []
        for obj in sublayers:
            if obj is None or (isinstance(obj, (list, tuple)) and not obj):
                layers.append(Serial())
            elif isinstance(obj, (list, tuple)):
                layers.append(Serial(obj))
            elif isinstance(obj, Module):
                layers.append(obj)
            else:
                raise TypeError(
                    f"Parallel: expected layers or None, got {type(obj).__name__}: {obj!r}."
                )
        for layer in layers:
            if layer.n_in == 0:
                raise ValueError(f"Parallel: a sublayer with n_in=0 is not allowed ({layer.name}).")
        self.layers = tuple(layers)
        self.name = name or "Parallel"
        self.n_in = sum(layer.n_in for layer in layers)
        self.n_out = sum(layer.n_out for layer in layers)

    def _spans(self, items):
        start = 0
        for layer in self.layers:
            end = start + layer.n_in
            yield layer, from_stack(items[start:end]) if layer.n_in != 1 else items[start]
            start = end

    def forward_with_state(self, inputs):
        items = to_stack(inputs, self.n_in)
        outputs, new_layers = [], []
        for i, (layer, x) in enumerate(self._spans(items)):
            label = f"{self.name}[{i}]"
            new_layer, y = call_sublayer(label, layer, x)
            outputs.extend(outputs_as_tuple(y, layer.n_out, label, layer))
            new_layers.append(new_layer)
        new = self if all(a is b for a, b in zip(new_layers, self.layers)) else self.replace(
            layers=tuple(new_layers)
        )
        return new, from_stack(outputs)

    def init_with_output_signature(self, input_signature, key):
        items = to_stack(input_signature, self.n_in)
        outputs, new_layers = [], []
        keys = _split_keys(key, len(self.layers))
        for i, ((layer, x), k) in enumerate(zip(self._spans(items), keys)):
            label = f"{self.name}[{i}]"
            new_layer, out = init_sublayer(label, layer, x, k)
            outputs.extend(outputs_as_tuple(out, layer.n_out, label, layer))
            new_layers.append(new_layer)
        return self.replace(layers=tuple(new_layers)), from_stack(outputs)

    def __getitem__(self, index):
        return self.layers[index]


class Select(Module):
    """Copies, reorders or deletes the top `n_in` stack items by `indices`.

    >>> import jax.numpy as jnp
    >>> Select([1, 0, 1])((jnp.array(1), jnp.array(2)))
    (Array(2, dtype=int32, weak_type=True), Array(1, dtype=int32, weak_type=True), Array(2, dtype=int32, weak_type=True))
    """

    indices = static()

    def __init__(self, indices, n_in=None, name=None):
        indices = tuple(int(i) for i in indices)
        if any(i < 0 for i in indices):
            raise ValueError(f"Select: indices must be non-negative, got {list(indices)}.")
        if n_in is None:
            n_in = max(indices) + 1 if indices else 0
        elif indices and max(indices) >= n_in:
            raise ValueError(
                f"Select: index {max(indices)} is out of range for n_in={n_in}."
            )
        self.indices = indices
        self.n_in = n_in
        self.n_out = len(indices)
        self.name = name or f"Select{list(indices)}".replace(" ", "")

    def forward(self, inputs):
        items = to_stack(inputs, self.n_in)
        return from_stack([items[i] for i in self.indices])


class _Branch(Serial):
    """A Serial(Select, Parallel) that prints as Trax prints Branch."""

    none_positions = static(default=())

    def _sublayers_to_print(self):
        parallel = self.layers[1]
        return tuple(
            _NoneRepr() if i in self.none_positions else layer
            for i, layer in enumerate(parallel.layers)
        )


class _NoneRepr:
    def __repr__(self):
        return "None"


def Branch(*layers, name="Branch"):
    """Applies each layer to copies of the top inputs; outputs go on the stack.

    For layers F (1 → 1), G (3 → 1), H (2 → 2), Branch(F, G, H) maps
    a, b, c to F(a), G(a, b, c), H(a, b). `None` is a 1 → 1 no-op.
    """
    if len(layers) == 1 and layers[0] is not None and not isinstance(layers[0], (list, tuple)):
        return layers[0]
    parallel = Parallel(*layers)
    indices = [i for layer in parallel.layers for i in range(layer.n_in)]
    none_positions = tuple(i for i, obj in enumerate(layers) if obj is None)
    branch = _Branch(Select(indices), parallel, name=name)
    return branch.replace(none_positions=none_positions)


def Residual(*layers, shortcut=None):
    """Adds the output of `layers` (in series) to `shortcut(x)` (default: `x`)."""
    flat = _ensure_flat(layers)
    if not flat:
        raise ValueError("Residual needs at least one layer.")
    layer = flat[0] if len(flat) == 1 else Serial(flat)
    return Serial(Branch(shortcut, layer), Add())


def _dup(x):
    return x, x


def _drop(x):
    return ()


def _swap(x0, x1):
    return x1, x0


def _add(x0, x1):
    return x0 + x1


def _subtract_top(x0, x1):
    return x1 - x0


def _multiply(x0, x1):
    return x0 * x1


def Dup():
    """Duplicates the top stack item: x → x, x."""
    return Fn("Dup", _dup, n_out=2)


def Drop():
    """Drops the top stack item."""
    return Fn("Drop", _drop, n_out=0)


def Swap():
    """Swaps the top two stack items."""
    return Fn("Swap", _swap, n_out=2)


def Add():
    """Adds the top two stack items elementwise."""
    return Fn("Add", _add)


def SubtractTop():
    """Subtracts the top item from the second: (x0, x1) → x1 - x0."""
    return Fn("SubtractTop", _subtract_top)


def Multiply():
    """Multiplies the top two stack items elementwise."""
    return Fn("Multiply", _multiply)


def _gate(m, g, c):
    return g * m + (1.0 - g) * c


def Gate():
    """Highway gating on (memory, gate, candidate): `gate * memory + (1 - gate) * candidate`."""
    return Fn("Gate", _gate)


def _deep_flatten(items):
    out = []
    for x in items:
        if isinstance(x, (list, tuple)):
            out.extend(_deep_flatten(x))
        else:
            out.append(x)
    return out


def _flatten_list(x):
    return tuple(_deep_flatten(x if isinstance(x, (list, tuple)) else (x,)))


def FlattenList():
    """Flattens nested lists/tuples of arrays into one flat tuple (one stack item)."""
    return Fn("FlattenList", _flatten_list)


# ---------------------------------------------------------------------------
# Array-joining layers


def _positive_int(value, what, layer):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{layer}: {what} must be a positive int, got {value!r}.")
    return value


class Concatenate(Module):
    """Concatenates `n_items` arrays along `axis` (n_in = n_items, n_out = 1).

    >>> import numpy as np
    >>> Concatenate(n_items=3)((np.array([1, 2]), np.array([3, 4]), np.array([5, 6]))).tolist()
    [1, 2, 3, 4, 5, 6]
    >>> Concatenate(n_items=3, axis=0)
    Concatenate_axis0_in3
    """

    n_items = static()
    axis = static()

    def __init__(self, n_items=2, axis=-1):
        self.n_items = _positive_int(n_items, "n_items", "Concatenate")
        self.axis = int(axis)
        self.n_in = n_items
        self.name = "Concatenate" if axis == -1 else f"Concatenate_axis{axis}"

    def forward(self, xs):
        items = to_stack(xs, self.n_in)
        shapes = [tuple(jnp.shape(x)) for x in items]
        ndims = {len(sh) for sh in shapes}
        if len(ndims) != 1:
            raise ValueError(
                f"cannot concatenate arrays of different ranks along axis {self.axis}: "
                f"got shapes {shapes}."
            )
        (ndim,) = ndims
        if not -ndim <= self.axis < ndim:
            raise ValueError(
                f"axis {self.axis} is out of range for arrays of rank {ndim} (shapes {shapes})."
            )
        ax = self.axis % ndim
        others = {sh[:ax] + sh[ax + 1:] for sh in shapes}
        if len(others) != 1:
            raise ValueError(
                f"cannot concatenate along axis {self.axis} arrays of shapes {shapes}: all "
                f"dimensions except axis {self.axis} must match."
            )
        return jnp.concatenate(items, axis=self.axis)


class Split(Module):
    """Splits the input into `n_items` equal parts along `axis` (n_out = n_items).

    >>> import numpy as np
    >>> [a.tolist() for a in Split()(np.array([1, 2, 3, 4]))]
    [[1, 2], [3, 4]]
    """

    n_items = static()
    axis = static()

    def __init__(self, n_items=2, axis=-1):
        self.n_items = _positive_int(n_items, "n_items", "Split")
        self.axis = int(axis)
        self.n_out = n_items
        self.name = "Split"

    def forward(self, x):
        shape = jnp.shape(x)
        if not -len(shape) <= self.axis < len(shape):
            raise ValueError(f"axis {self.axis} is out of range for an input of shape {shape}.")
        size = shape[self.axis]
        if size % self.n_items:
            raise ValueError(
                f"axis {self.axis} of the input (shape {shape}) has size {size}, which "
                f"cannot be split into {self.n_items} equal items."
            )
        parts = tuple(jnp.split(x, self.n_items, axis=self.axis))
        return parts[0] if self.n_items == 1 else parts


# ---------------------------------------------------------------------------
# Scan, Cond, Chunk


def _state_leaves_identical(old, new):
    """True when `new`'s state leaves are the very objects in `old` (trace-time test)."""
    a, b = old.state_leaves(), new.state_leaves()
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def _check_mode(mode, layer):
    if mode not in ("train", "eval", "predict"):
        raise ValueError(f"{layer}: mode must be 'train', 'eval' or 'predict', got {mode!r}.")
    return mode


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
        self.mode = _check_mode(mode, "Scan")
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
        changed = []

        def step(c, x_slice):
            layer, cur = c
            new_layer, res = call_sublayer(label, layer, from_stack(tuple(x_slice) + tuple(cur)))
            res = outputs_as_tuple(res, layer.n_out, label, layer)
            changed.append(not _state_leaves_identical(layer, new_layer))
            k = len(res) - n_carry
            return (new_layer, tuple(res[k:])), tuple(res[:k])

        if self.remat:
            step = jax.checkpoint(step)
        (new_layer, final_carry), ys = lax.scan(step, (layer0, tuple(carry)), tuple(moved))
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
    to_chunks = functools.partial(
        _map_items, functools.partial(_reshape_to_chunks, int(chunk_size), bool(pass_unchunkable))
    )
    from_chunks = functools.partial(_map_items, _reshape_from_chunks)
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
        self.mode = _check_mode(mode, "Cache")
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


def SerialWithSideOutputs(layers, n_side_outputs=1):
    """A Serial that moves `n_side_outputs` outputs of each layer to the bottom of the stack.

    For 1 → 2 layers and `n_side_outputs=1` it computes::

        side = []
        for layer in layers:
            x, s = layer(x)
            side.append(s)
        return [x] + side
    """
    layers = _ensure_flat(layers)
    if isinstance(n_side_outputs, int):
        n_side_outputs = [n_side_outputs] * len(layers)
    n_side_outputs = list(n_side_outputs)
    if len(n_side_outputs) != len(layers):
        raise ValueError(
            f"SerialWithSideOutputs: got {len(layers)} layers but {len(n_side_outputs)} "
            "n_side_outputs."
        )
    running_max = running_total = 0
    for layer, n_side in zip(layers, n_side_outputs):
        if not 0 <= n_side <= layer.n_out:
            raise ValueError(
                f"SerialWithSideOutputs: {layer.name} has n_out={layer.n_out}, cannot put "
                f"{n_side} outputs aside."
            )
        running_total += layer.n_in
        running_max = max(running_max, running_total)
        running_total -= layer.n_out - n_side
    cur = running_max
    serial_layers = []
    for layer, n_side in zip(layers, n_side_outputs):
        serial_layers.append(layer)
        cur += layer.n_out - layer.n_in
        keep = layer.n_out - n_side
        move_back = list(range(keep))
        move_back += [i + layer.n_out for i in range(cur - layer.n_out)]
        move_back += [i + keep for i in range(n_side)]
        serial_layers.append(Select(move_back))
    return Serial(serial_layers)
