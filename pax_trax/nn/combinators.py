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

import jax
import jax.numpy as jnp

from pax_trax.core.module import Module, static, submodule
from pax_trax.nn.base import (
    Fn,
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
