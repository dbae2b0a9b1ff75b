"""Networks for playing Atari games (e.g. with PPO), as Trax's `trax.models.atari_cnn`.

Inputs are sequences of frames, `(batch, time, height, width, channels)`
for the CNNs and `(batch, time, features)` for `FrameStackMLP`; outputs are
`(batch, time, output_size)`. Each time step sees its `n_frames` most
recent frames, stacked along the last axis (zeros before the first frame).
"""

from __future__ import annotations

import numpy as np

from pax_trax import nn
from pax_trax.nn.base import check_mode

__all__ = ["AtariCnn", "AtariCnnBody", "FrameStackMLP"]


def _check_n_frames(n_frames, model):
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise ValueError(f"{model}: n_frames must be an int >= 1, got {n_frames!r}.")
    return int(n_frames)


def _check_sizes(sizes, n, model, label="hidden_sizes"):
    try:
        sizes = tuple(sizes)
    except TypeError:
        sizes = None
    if sizes is None or (n is not None and len(sizes) != n) or any(
            isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
            for s in sizes):
        count = f"{n} positive ints" if n is not None else "positive ints"
        raise ValueError(f"{model}: {label} must be a tuple of {count}, got {sizes!r}.")
    return tuple(int(s) for s in sizes)


def _check_size(size, label, model):
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"{model}: {label} must be a positive int, got {size!r}.")
    return int(size)


def _shift_right(n):
    # n copies of one weightless ShiftRight: the frames from n steps back.
    return [nn.ShiftRight()] * n


def _FrameStack(n_frames):
    """Stacks successive frames along their last axis: (B, T, ..., C) -> (B, T, ..., C * n)."""
    if n_frames == 1:
        return []  # No-op; the data flows through.
    return [
        # Copies of the sequence shifted right by 0, ..., n_frames - 1 steps,
        # concatenated along the channel axis.
        nn.Branch(*map(_shift_right, range(n_frames))),
        nn.Concatenate(n_items=n_frames, axis=-1),
    ]


def _bytes_to_floats(x):
    return x / 255.0


def _BytesToFloats():
    """Scales unsigned bytes (0..255) to floats in [0, 1]."""
    return nn.Fn("BytesToFloats", _bytes_to_floats)


def AtariCnn(n_frames=4, hidden_sizes=(32, 32), output_size=128, mode="train"):
    """A small Atari CNN: frames `(B, T, H, W, C)` (bytes) to features `(B, T, output_size)`.

    Frames are scaled to [0, 1] and `n_frames` of them stacked; two 5x5
    stride-2 SAME convolutions with ReLU follow, then `Dense(output_size)`
    and ReLU. `mode` is accepted for Trax's signature and ignored.

    >>> model = AtariCnn(hidden_sizes=(4, 4), output_size=6)
    >>> [layer.name for layer in model.sublayers][:5]
    ['BytesToFloats', 'Branch', 'Concatenate', 'Conv', 'Relu']
    """
    n_frames = _check_n_frames(n_frames, "AtariCnn")
    hidden_sizes = _check_sizes(hidden_sizes, 2, "AtariCnn")
    output_size = _check_size(output_size, "output_size", "AtariCnn")
    check_mode(mode, "AtariCnn")
    return nn.Serial(
        _BytesToFloats(),
        _FrameStack(n_frames=n_frames),  # (B, T, H, W, n_frames * C)
        nn.Conv(hidden_sizes[0], (5, 5), (2, 2), "SAME"),
        nn.Relu(),
        nn.Conv(hidden_sizes[1], (5, 5), (2, 2), "SAME"),
        nn.Relu(),
        nn.Flatten(n_axes_to_keep=2),  # B, T and the rest.
        nn.Dense(output_size),
        nn.Relu(),
    )


def AtariCnnBody(n_frames=4, hidden_sizes=(32, 64, 64), output_size=512, mode="train",
                 kernel_initializer=None, padding="VALID"):
    """The DQN-style Atari CNN body: frames `(B, T, H, W, C)` to `(B, T, output_size)`.

    Frames are scaled to [0, 1] and `n_frames` of them stacked; convolutions
    8x8 stride 4, 4x4 stride 2 and 3x3 stride 1 (with `padding` and
    `kernel_initializer`, default Glorot normal), each followed by ReLU, then
    `Dense(output_size)` and ReLU. With VALID padding the frames must be at
    least 36 pixels on each side (84x84 in DQN). `mode` is ignored.

    >>> [layer.name for layer in AtariCnnBody(n_frames=1).sublayers][:4]
    ['BytesToFloats', 'Conv', 'Relu', 'Conv']
    """
    n_frames = _check_n_frames(n_frames, "AtariCnnBody")
    hidden_sizes = _check_sizes(hidden_sizes, 3, "AtariCnnBody")
    output_size = _check_size(output_size, "output_size", "AtariCnnBody")
    check_mode(mode, "AtariCnnBody")
    return nn.Serial(
        _BytesToFloats(),
        _FrameStack(n_frames=n_frames),  # (B, T, H, W, n_frames * C)
        nn.Conv(hidden_sizes[0], (8, 8), (4, 4), padding=padding,
                kernel_initializer=kernel_initializer),
        nn.Relu(),
        nn.Conv(hidden_sizes[1], (4, 4), (2, 2), padding=padding,
                kernel_initializer=kernel_initializer),
        nn.Relu(),
        nn.Conv(hidden_sizes[2], (3, 3), (1, 1), padding=padding,
                kernel_initializer=kernel_initializer),
        nn.Relu(),
        nn.Flatten(n_axes_to_keep=2),  # B, T and the rest.
        nn.Dense(output_size),
        nn.Relu(),
    )


def FrameStackMLP(n_frames=4, hidden_sizes=(64,), output_size=64, mode="train"):
    """An MLP on the last `n_frames` frames: `(B, T, F)` to `(B, T, output_size)`.

    The frames are stacked (no byte scaling here), then `Dense(d)` and ReLU
    for each `d` in `hidden_sizes`, then `Dense(output_size)`. `mode` is
    ignored.

    >>> [layer.name for layer in FrameStackMLP(n_frames=2, hidden_sizes=(4,)).sublayers]
    ['Branch', 'Concatenate', 'Dense_4', 'Relu', 'Dense_64']
    """
    n_frames = _check_n_frames(n_frames, "FrameStackMLP")
    hidden_sizes = _check_sizes(hidden_sizes, None, "FrameStackMLP")
    output_size = _check_size(output_size, "output_size", "FrameStackMLP")
    check_mode(mode, "FrameStackMLP")
    return nn.Serial(
        _FrameStack(n_frames=n_frames),
        [[nn.Dense(d_hidden), nn.Relu()] for d_hidden in hidden_sizes],
        nn.Dense(output_size),
    )
