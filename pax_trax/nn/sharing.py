"""Explicit weight sharing: one copy of a weight used in two places.

A pytree holds no aliases: if the same array sat in two leaves, `jax.grad`
and optax would update two copies and they would drift apart. `Shared`
stores the tied weight once (the target leaf is kept as None) and rebuilds
the target from the source at every call, so gradients from both uses flow
into the one source leaf.

    >>> import jax.numpy as jnp, numpy as np
    >>> from pax_trax import nn
    >>> lm = nn.Shared(
    ...     nn.Serial(nn.Embedding(10, 4), nn.Dense(10, use_bias=False)),
    ...     source=lambda m: m[0].w, target=lambda m: m[1].w, get=jnp.transpose)
    >>> lm = lm.init(np.zeros((2, 3), np.int32))
    >>> lm(np.zeros((2, 3), np.int32)).shape
    (2, 3, 10)
"""

from __future__ import annotations

import jax

from pax_trax.core.module import Module, static, submodule
from pax_trax.nn.base import call_sublayer, init_sublayer

__all__ = ["Shared"]


class _Marker:
    __slots__ = ("path",)

    def __init__(self, path):
        self.path = path


def _is_leaf(x):
    return x is None


def _path_of(tree, where, what):
    markers = jax.tree_util.tree_map_with_path(lambda p, _: _Marker(p), tree, is_leaf=_is_leaf)
    try:
        found = where(markers)
    except Exception as exc:
        raise ValueError(f"Shared: could not apply the {what} selector to the model: {exc}") from exc
    if not isinstance(found, _Marker):
        raise ValueError(
            f"Shared: the {what} selector must return one array field of the model "
            f"(e.g. lambda m: m[0].w), got {type(found).__name__}."
        )
    return found.path


def _leaf_at(tree, path):
    for p, leaf in jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_leaf)[0]:
        if p == path:
            return leaf
    raise KeyError(path)


def _with_leaf(tree, path, value):
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_leaf)
    leaves = [value if p == path else leaf for p, leaf in flat]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _identity(x):
    return x


class Shared(Module):
    """Wraps `model` so that the `target` leaf is always `get(source leaf)`.

    `source` and `target` are selectors such as `lambda m: m[0].w`; `get`
    maps the source value to the target (default: identity; `jnp.transpose`
    ties an embedding to an output projection).
    """

    model = submodule()
    source_path = static()
    target_path = static()
    get = static()

    def __init__(self, model, source, target, get=None, name=None):
        if not isinstance(model, Module):
            raise TypeError(f"Shared: expected a module, got {type(model).__name__}.")
        self.source_path = _path_of(model, source, "source")
        self.target_path = _path_of(model, target, "target")
        if self.source_path == self.target_path:
            raise ValueError("Shared: source and target select the same field.")
        self.get = get or _identity
        self.model = _with_leaf(model, self.target_path, None)
        self.n_in, self.n_out = model.n_in, model.n_out
        self.name = name or "Shared"

    def tied_model(self):
        """The inner model with the target leaf filled in from the source."""
        source = _leaf_at(self.model, self.source_path)
        if source is None:
            return self.model
        return _with_leaf(self.model, self.target_path, self.get(source))

    def forward_with_state(self, inputs):
        new_model, outputs = call_sublayer(self.name, self.tied_model(), inputs)
        return self.replace(model=_with_leaf(new_model, self.target_path, None)), outputs

    def init_with_output_signature(self, input_signature, key):
        model, out = init_sublayer(self.name, self.model, input_signature, key)
        return self.replace(model=_with_leaf(model, self.target_path, None)), out

    def _missing_parameter_paths(self, where):
        # The target is None by design; it is missing only while the source is.
        return self.tied_model()._missing_parameter_paths(f"{where}[0]/{self.model.name}")

    def _sublayers_to_print(self):
        return (self.model,)
