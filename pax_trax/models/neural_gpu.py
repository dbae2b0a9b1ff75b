"""The improved Neural GPU (https://arxiv.org/abs/1702.08727), as Trax's `trax.models.neural_gpu`.

Trax builds the model as `Serial(Embedding, [core] * steps, Dense)`: one
core layer object used `steps` times, so all steps share its weights. A
pytree holds no aliases, so here the core is stored once in a
`SharedStepsSerial`, which runs it `steps` times and shows Trax's layer
list and Trax's `weights` (the core's weights at its first use, Trax's
"weights from cache" marker at the others).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from pax_trax.core.module import Module, static, submodule
from pax_trax.nn import activations, combinators, convolution, core, rnn
from pax_trax.nn.base import (
    call_sublayer,
    check_mode,
    from_stack,
    init_sublayer,
    outputs_as_tuple,
    take,
    to_stack,
)
from pax_trax.nn.combinators import _serial_n_in_n_out, _split_keys

__all__ = [
    "SaturationCost",
    "DiagonalGate",
    "ConvDiagonalGRU",
    "NeuralGPU",
    "SharedStepsSerial",
    "GET_WEIGHTS_FROM_CACHE",
    "GET_STATE_FROM_CACHE",
]

# Trax's markers (trax.layers.base) for the weights and state of a layer
# object that already appeared earlier in the same model.
GET_WEIGHTS_FROM_CACHE = {"__marker_for_cached_weights_": ()}
GET_STATE_FROM_CACHE = {"__marker_for_cached_state_": ()}


def SaturationCost(x, limit=0.9):
    """Trax's saturation cost of activations: `minimum(0, |x| - limit)` (elementwise).

    >>> import numpy as np
    >>> SaturationCost(np.array([-1.0, 0.25, 0.5, 2.0]), limit=0.5).tolist()
    [0.0, -0.25, 0.0, 0.0]
    """
    return jnp.minimum(0, jnp.abs(x) - limit)


def _diagonal_gate(x):
    if x.ndim != 4:
        raise ValueError(
            f"DiagonalGate: expected an input of shape (batch, height, length, depth), got "
            f"shape {tuple(x.shape)}.")
    depth = x.shape[-1] // 3
    if 3 * depth != x.shape[-1]:
        raise ValueError(
            f"DiagonalGate: the depth (last axis, {x.shape[-1]}) must be divisible by 3, got "
            f"shape {tuple(x.shape)}.")
    x = jnp.pad(x, [(0, 0), (0, 0), (1, 1), (0, 0)], mode="constant", constant_values=0.0)
    parts = [
        x[:, :, :-2, :depth],
        x[:, :, 1:-1, depth:2 * depth],
        x[:, :, 2:, 2 * depth:3 * depth],
    ]
    return jnp.concatenate(parts, axis=3)


def DiagonalGate():
    """Splits the channels in 3 parts; shifts the 1st right and the 3rd left along axis 2.

    For `(batch, height, length, depth)` inputs (depth divisible by 3),
    output position `i` takes the first third of the channels from input
    position `i - 1`, the middle third from `i` and the last third from
    `i + 1` (zeros beyond the ends).

    >>> import numpy as np
    >>> x = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    >>> DiagonalGate()(x)[0, 0].tolist()
    [[0.0, 2.0, 6.0], [1.0, 5.0, 9.0], [4.0, 8.0, 0.0]]
    """
    return core.Fn("DiagonalGate", _diagonal_gate)


def ConvDiagonalGRU(units, kernel_size=(3, 3)):
    """The convolutional GRU with diagonal gating of the improved Neural GPU.

    `GeneralGRUCell` with SAME convolutions of `units` filters as the
    transforms, `DiagonalGate` on the memory, `HardSigmoid` gates and a
    `HardTanh` candidate (with dropout 0.1 in `'train'` mode). Maps a
    `(batch, height, length, units)` state to a new state of that shape.
    """
    if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
        raise ValueError(f"ConvDiagonalGRU: units must be a positive int, got {units!r}.")

    def BuildConv():
        return convolution.Conv(filters=int(units), kernel_size=kernel_size, padding="SAME")

    return rnn.GeneralGRUCell(
        candidate_transform=BuildConv,
        memory_transform_fn=DiagonalGate,
        gate_nonlinearity=activations.HardSigmoid,
        candidate_nonlinearity=activations.HardTanh,
    )


class SharedStepsSerial(Module):
    """A Serial in which layer `i` is applied `repeats[i]` times in a row, with one set of weights.

    It computes what Trax's `Serial(a, [b] * n, c)` computes when the same
    layer object `b` appears `n` times: the weights (and state: e.g. a
    dropout key, which advances from one use to the next) of `b` are shared
    by all its uses. `sublayers` and the pytree hold each layer once, so
    gradients from all uses add up in one place. For Trax's view, `weights`
    and `state` list one entry per use, with `GET_WEIGHTS_FROM_CACHE` /
    `GET_STATE_FROM_CACHE` after the first, and `print` shows every use.

    >>> import numpy as np
    >>> from pax_trax import nn
    >>> layer = SharedStepsSerial([nn.Dense(2)], repeats=[3]).init(np.zeros((1, 2), np.float32))
    >>> len(layer.weights), layer.weights[1] == GET_WEIGHTS_FROM_CACHE
    (3, True)
    """

    layers = submodule()
    repeats = static()

    def __init__(self, layers, repeats, name="Serial"):
        layers = combinators._ensure_flat(layers)
        repeats = tuple(int(r) for r in repeats)
        if len(repeats) != len(layers):
            raise ValueError(
                f"SharedStepsSerial: got {len(layers)} layers but {len(repeats)} repeats.")
        for layer, r in zip(layers, repeats):
            if r < 1:
                raise ValueError(f"SharedStepsSerial: repeats must be >= 1, got {r} for "
                                 f"{layer.name}.")
            if r > 1 and layer.n_in != layer.n_out:
                raise ValueError(
                    f"SharedStepsSerial: a repeated layer must have n_in == n_out, got "
                    f"{layer.name} with n_in={layer.n_in}, n_out={layer.n_out}.")
        self.layers = layers
        self.repeats = repeats
        self.name = name
        if layers:
            self.n_in, self.n_out = _serial_n_in_n_out(self._uses(layers))

    def _uses(self, layers=None):
        layers = self.layers if layers is None else layers
        return [layer for layer, r in zip(layers, self.repeats) for _ in range(r)]

    def _labels(self, i):
        """Serial-style labels of the uses of layer `i` (Trax's positions)."""
        start = sum(self.repeats[:i])
        return [f"{self.name}[{start + k}]" for k in range(self.repeats[i])]

    def _run(self, stack, layer, labels, call):
        for label in labels:
            x, rest = take(stack, layer.n_in, label, layer)
            layer, y = call(label, layer, x)
            stack = outputs_as_tuple(y, layer.n_out, label, layer) + rest
        return layer, stack

    def init_with_output_signature(self, input_signature, key):
        if not self.layers:
            return self, input_signature
        stack = to_stack(input_signature, self.n_in)
        new_layers = []
        for i, (layer, k) in enumerate(zip(self.layers, _split_keys(key, len(self.layers)))):
            labels = self._labels(i)
            x, rest = take(stack, layer.n_in, labels[0], layer)
            new_layer, out = init_sublayer(labels[0], layer, x, k)
            out_items = outputs_as_tuple(out, layer.n_out, labels[0], layer)
            if len(labels) > 1 and out_items != to_stack(x, layer.n_in):
                raise ValueError(
                    f"in {labels[0]}: a layer used {len(labels)} times in a row must give "
                    f"outputs of its inputs' shapes; {layer.name} maps {x} to {out}.")
            stack = out_items + rest
            new_layers.append(new_layer)
        return self.replace(layers=tuple(new_layers)), from_stack(stack)

    def forward_with_state(self, inputs):
        if not self.layers:
            return self, inputs
        stack = to_stack(inputs, self.n_in)
        new_layers = []
        for i, layer in enumerate(self.layers):
            new_layer, stack = self._run(stack, layer, self._labels(i), call_sublayer)
            new_layers.append(new_layer)
        unchanged = all(a is b for a, b in zip(new_layers, self.layers))
        return (self if unchanged else self.replace(layers=tuple(new_layers))), from_stack(stack)

    @property
    def weights(self):
        """Trax's weights: one entry per use, the cache marker after a layer's first use."""
        out = []
        for layer, r in zip(self.layers, self.repeats):
            out.append(layer.weights)
            out.extend([GET_WEIGHTS_FROM_CACHE] * (r - 1))
        return tuple(out)

    @property
    def state(self):
        """Trax's state: one entry per use, the cache marker after a layer's first use."""
        out = []
        for layer, r in zip(self.layers, self.repeats):
            out.append(layer.state)
            out.extend([GET_STATE_FROM_CACHE] * (r - 1))
        return tuple(out)

    def _sublayers_to_print(self):
        return tuple(self._uses())


def NeuralGPU(d_feature=96, steps=16, vocab_size=2, mode="train"):
    """The improved Neural GPU: token ids `(batch, height, length)` to logits `(..., vocab)`.

    Embedding to `d_feature` channels, then one `ConvDiagonalGRU(d_feature)`
    applied `steps` times with shared weights, then `Dense(vocab_size)`.
    `d_feature` must be divisible by 3 (`DiagonalGate` splits the channels
    in three). In `'train'` mode the GRU's candidate dropout (rate 0.1) is
    active, so the model is called with `pax_trax.purecall`; unlike Trax,
    which ignores `mode` here and keeps that dropout on, `'eval'` and
    `'predict'` turn it off.

    >>> model = NeuralGPU(d_feature=6, steps=3, vocab_size=3)
    >>> [layer.name for layer in model.sublayers], model.repeats
    (['Embedding_3_6', 'Serial', 'Dense_3'], (1, 3, 1))
    """
    for label, value in (("d_feature", d_feature), ("steps", steps), ("vocab_size", vocab_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"NeuralGPU: {label} must be a positive int, got {value!r}.")
    if d_feature % 3:
        raise ValueError(
            f"NeuralGPU: d_feature must be divisible by 3 (DiagonalGate splits the channels "
            f"in three), got {d_feature}.")
    check_mode(mode, "NeuralGPU")

    core_layer = ConvDiagonalGRU(units=int(d_feature))
    if mode != "train":
        core_layer = core_layer.eval()
    return SharedStepsSerial(
        [core.Embedding(vocab_size=int(vocab_size), d_feature=int(d_feature)),
         core_layer,
         core.Dense(int(vocab_size))],
        repeats=[1, int(steps), 1],
    )
