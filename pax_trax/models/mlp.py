"""MLP: a multilayer perceptron assembled from Dense layers, as Trax's `trax.models.mlp`."""

from __future__ import annotations

import numpy as np

from pax_trax import nn
from pax_trax.nn.base import check_mode

__all__ = ["MLP"]


def MLP(layer_widths=(128, 64), activation_fn=nn.Relu, out_activation=False, flatten=True,
        mode="train"):
    """A multilayer perceptron: Dense layers with an activation between each pair.

    Built as Trax builds it: ``Serial(Flatten(), Dense(w1), activation_fn(),
    ..., Dense(wn))`` with one more ``activation_fn()`` at the end if
    `out_activation`, and no `Flatten` (which keeps the batch axis and flattens
    the rest) if not `flatten`. `mode` is accepted for Trax's signature and
    otherwise ignored: no layer here depends on it.

    >>> import numpy as np
    >>> model = MLP(layer_widths=(4, 2)).init(np.zeros((3, 2, 2), np.float32))
    >>> model(np.ones((3, 2, 2), np.float32)).shape
    (3, 2)
    """
    check_mode(mode, "MLP")
    widths = tuple(layer_widths) if isinstance(layer_widths, (list, tuple)) else None
    if not widths or any(isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1
                         for w in widths):
        raise ValueError(
            "MLP: layer_widths must be a non-empty tuple of positive ints (one width per "
            f"Dense layer), got {layer_widths!r}.")
    if not callable(activation_fn):
        raise TypeError(
            "MLP: activation_fn must be a layer factory such as nn.Relu (called once per "
            f"layer), got {activation_fn!r}.")

    layers = []
    for width in widths:
        layers.append(nn.Dense(int(width)))
        layers.append(activation_fn())
    if not out_activation:
        layers.pop()  # No activation after the last Dense.

    return nn.Serial([nn.Flatten()] if flatten else [], layers)
