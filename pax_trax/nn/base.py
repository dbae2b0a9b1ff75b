"""Weightless layers from functions (`Fn`) and the data-stack helpers.

Stack contract (as Trax): a layer with ``n_in == 1`` takes a bare array, with
``n_in != 1`` a tuple of ``n_in`` arrays; outputs are packaged the same way by
``n_out``.
"""

from __future__ import annotations

import functools
import inspect

from pax_trax.core.errors import in_sublayer
from pax_trax.core.module import Module, static

__all__ = ["Fn", "PureLayer", "Partial", "to_stack", "from_stack", "call_sublayer",
           "init_sublayer"]


class Partial(functools.partial):
    """`functools.partial` that compares and hashes by value.

    Layer functions sit in static fields, which are part of a module's pytree
    structure; plain partials compare by identity, so two identically built
    layers would differ in structure and `jax.jit` would compile each anew.

    >>> import operator
    >>> Partial(operator.add, 1) == Partial(operator.add, 1), Partial(operator.add, 1)(2)
    (True, 3)
    """

    def __eq__(self, other):
        return type(other) is type(self) and (self.func, self.args, self.keywords) == (
            other.func, other.args, other.keywords)

    def __hash__(self):
        return hash((self.func, self.args, tuple(sorted(self.keywords.items()))))


MODES = ("train", "eval", "predict")


def check_mode(mode, layer):
    """Validates a `mode` constructor argument."""
    if mode not in MODES:
        raise ValueError(f"{layer}: mode must be one of {MODES}, got {mode!r}.")
    return mode


def to_stack(inputs, n):
    """The inputs of an `n`-input layer as a tuple (the stack's top items)."""
    if n == 1:
        return (inputs,)
    if not isinstance(inputs, (tuple, list)):
        raise TypeError(
            f"expected {n} inputs as a tuple, got a single {type(inputs).__name__}"
            + (f" of shape {inputs.shape}" if hasattr(inputs, "shape") else "")
        )
    if len(inputs) != n:
        raise ValueError(f"expected {n} inputs, got a tuple of {len(inputs)}.")
    return tuple(inputs)


def from_stack(items):
    """Packages stack items as layer outputs: bare if one, else a tuple."""
    return items[0] if len(items) == 1 else tuple(items)


def take(stack, n, label, layer):
    """Splits `stack` into the `n` items `layer` consumes and the rest."""
    if len(stack) < n:
        raise _underflow(label, layer, n, len(stack))
    return from_stack(stack[:n]) if n != 1 else stack[0], stack[n:]


def _underflow(label, layer, needed, available):
    from pax_trax.core.errors import LayerError

    return LayerError(
        [label, layer.name],
        f"stack underflow: the layer needs {needed} input(s) but only {available} "
        f"item(s) are on the data stack.",
    )


def outputs_as_tuple(outputs, n_out, label, layer):
    if n_out == 1:
        return (outputs,)
    if not isinstance(outputs, (tuple, list)) or len(outputs) != n_out:
        from pax_trax.core.errors import LayerError

        got = (
            f"{len(outputs)} outputs" if isinstance(outputs, (tuple, list))
            else f"a single {type(outputs).__name__}"
        )
        raise LayerError(
            [label, layer.name], f"the layer promised n_out={n_out} outputs but returned {got}."
        )
    return tuple(outputs)


def call_sublayer(label, layer, inputs):
    """Runs `layer` on `inputs` inside a parent; errors get the parent's `label`."""
    with in_sublayer(label, layer.name):
        layer.check_initialized()
        return layer.forward_with_state(inputs)


def init_sublayer(label, layer, input_signature, key):
    """Initializes `layer` inside a parent; errors get the parent's `label`."""
    with in_sublayer(label, layer.name):
        return layer.init_with_output_signature(input_signature, key)


class PureLayer(Module):
    """A layer without weights that applies `forward_fn` to its (packaged) inputs."""

    forward_fn = static()

    def __init__(self, forward_fn, n_in=1, n_out=1, name="PureLayer"):
        self.forward_fn = forward_fn
        self.n_in = n_in
        self.n_out = n_out
        self.name = name

    def forward(self, inputs):
        return self.forward_fn(inputs)


class Fn(Module):
    """A layer without weights that applies the function `f`.

    `f` takes each input as a separate positional argument; `n_in` is the
    number of its parameters. Give `n_out` when `f` returns several outputs.

    >>> import jax.numpy as jnp
    >>> sum_and_max = Fn('SumAndMax', lambda x0, x1: (x0 + x1, jnp.maximum(x0, x1)), n_out=2)
    >>> [a.tolist() for a in sum_and_max((jnp.array([1, 5]), jnp.array([3, 2])))]
    [[4, 7], [3, 5]]
    """

    f = static()

    def __init__(self, name, f, n_out=1):
        self.name = name
        self.f = f
        self.n_in = _count_positional(name, f)
        self.n_out = n_out

    def forward(self, inputs):
        args = (inputs,) if self.n_in == 1 else to_stack(inputs, self.n_in)
        if len(args) != self.n_in:
            raise ValueError(f"expected {self.n_in} inputs, got {len(args)}.")
        outputs = self.f(*args)
        if self.n_out != 1 and (not isinstance(outputs, (tuple, list)) or len(outputs) != self.n_out):
            n_got = len(outputs) if isinstance(outputs, (tuple, list)) else 1
            raise ValueError(f"function promised n_out={self.n_out} outputs but returned {n_got}.")
        return tuple(outputs) if self.n_out != 1 else outputs


def _count_positional(name, f):
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):
        raise TypeError(f"Fn {name!r}: cannot read the signature of {f!r}.") from None
    params = list(sig.parameters.values())
    if isinstance(f, Partial):
        # The inputs are the leading parameters without a value; what the partial
        # binds by keyword (and the function's own defaults after it) is not an input.
        params = [p for p in params if p.default is p.empty and p.kind in (
            p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    n = 0
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.KEYWORD_ONLY):
            raise ValueError(
                f"Fn {name!r}: the function must take only positional arguments "
                f"(its parameter {p.name!r} is {p.kind.description})."
            )
        if p.default is not p.empty:
            raise ValueError(
                f"Fn {name!r}: the function must have no default arguments "
                f"(parameter {p.name!r} has one)."
            )
        n += 1
    return n
