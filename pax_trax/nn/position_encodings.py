"""Sinusoidal positional encoding, as Trax's ``trax.layers.attention.PositionalEncoding``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pax_trax.core.module import Module, param, rng_state, state, static
from pax_trax.nn import initializers as init
from pax_trax.nn.core import check_mode

__all__ = ["PositionalEncoding", "sinusoidal_table"]


def sinusoidal_table(max_len, d_feature):
    """The ``(max_len, d_feature)`` table ``[sin(p * w_i), cos(p * w_i), ...]``.

    Column ``2i`` holds ``sin(p / 10000**(2i/d))`` and column ``2i+1`` holds
    ``cos(p / 10000**(2i/d))`` for position ``p`` (Trax's and the Transformer
    paper's encoding).
    """
    pe = np.zeros((max_len, d_feature), dtype=np.float32)
    position = np.arange(0, max_len)[:, np.newaxis]
    div_term = np.exp(np.arange(0, d_feature, 2) * -(np.log(10000.0) / d_feature))
    pe[:, 0::2] = np.sin(position * div_term)
    pe[:, 1::2] = np.cos(position * div_term)[:, : d_feature // 2]
    return pe


class PositionalEncoding(Module):
    """Adds sinusoidal position vectors to ``(batch, length, d)`` activations.

    The table (the trainable parameter ``w``, shape ``(max_len, d)``) is
    initialized to `sinusoidal_table`. With `d_feature` the table has
    `d_feature` columns and a trainable ``ff`` matrix (``d_feature × d``,
    Glorot uniform) projects it to the input size.

    In ``'train'`` mode, `dropout` drops the position vectors (not the input)
    with a mask broadcast along `dropout_broadcast_dims`, and with
    ``start_from_zero_prob < 1`` the positions start, with probability
    ``1 - start_from_zero_prob``, at a random offset in ``[0,
    max_offset_to_add)`` (clipped so the slice fits in `max_len`); both use the
    RNG key held in state (``rng``). In ``'predict'`` mode the layer keeps the
    next position in state (``position``) and advances it by the length of
    each call's input, so decoding one token (or a few) per call adds the
    same vectors as ``'eval'`` on the whole sequence.

    >>> import numpy as np
    >>> pe = PositionalEncoding(max_len=16).init(np.zeros((1, 3, 4), np.float32))
    >>> pe(np.zeros((1, 3, 4), np.float32))[0, 0].tolist()
    [0.0, 1.0, 0.0, 1.0]
    """

    max_len = static()
    dropout = static()
    dropout_broadcast_dims = static()
    use_bfloat16 = static()
    start_from_zero_prob = static()
    max_offset_to_add = static()
    d_feature = static()
    mode = static(default="train")
    w = param()
    ff = param()
    rng = rng_state()
    position = state()

    def __init__(self, max_len=2048, dropout=0.0, dropout_broadcast_dims=(-2,),
                 use_bfloat16=False, start_from_zero_prob=1.0, max_offset_to_add=0,
                 d_feature=None, mode="train"):
        if not isinstance(max_len, (int, np.integer)) or max_len <= 0:
            raise ValueError(
                f"PositionalEncoding: max_len must be a positive int, got {max_len!r}."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"PositionalEncoding: dropout must be in [0, 1), got {dropout!r}.")
        if not 0.0 <= start_from_zero_prob <= 1.0:
            raise ValueError(
                "PositionalEncoding: start_from_zero_prob must be in [0, 1], got "
                f"{start_from_zero_prob!r}."
            )
        if not isinstance(max_offset_to_add, (int, np.integer)) or max_offset_to_add < 0:
            raise ValueError(
                "PositionalEncoding: max_offset_to_add must be an int >= 0, got "
                f"{max_offset_to_add!r}."
            )
        if d_feature is not None and (
            not isinstance(d_feature, (int, np.integer)) or d_feature <= 0
        ):
            raise ValueError(
                f"PositionalEncoding: d_feature must be None or a positive int, got {d_feature!r}."
            )
        self.max_len = int(max_len)
        self.dropout = float(dropout)
        self.dropout_broadcast_dims = tuple(int(d) for d in dropout_broadcast_dims)
        self.use_bfloat16 = bool(use_bfloat16)
        self.start_from_zero_prob = float(start_from_zero_prob)
        self.max_offset_to_add = int(max_offset_to_add)
        self.d_feature = None if d_feature is None else int(d_feature)
        self.mode = check_mode(mode, "PositionalEncoding")

    def _missing_params(self):
        if self.w is None:
            return ["w"]
        return ["ff"] if self.d_feature is not None and self.ff is None else []

    def _needs_rng(self):
        return self.dropout > 0.0 or self.start_from_zero_prob < 1.0

    def init_weights_and_state(self, input_signature, key):
        shape = input_signature.shape
        if len(shape) != 3:
            raise ValueError(
                "PositionalEncoding: expected activations of shape (batch, length, d), got "
                f"{input_signature}."
            )
        d_in = shape[-1]
        d_table = d_in if self.d_feature is None else self.d_feature
        k_ff, k_rng = jax.random.split(key)
        w = jnp.asarray(sinusoidal_table(self.max_len, d_table))
        if self.use_bfloat16:
            w = w.astype(jnp.bfloat16)
        changes = {"w": w}
        if self.d_feature is not None:
            changes["ff"] = init.GlorotUniformInitializer()((d_table, d_in), k_ff)
        if self._needs_rng():
            changes["rng"] = k_rng
        if self.mode == "predict":
            changes["position"] = jnp.zeros((), jnp.int32)
        return self.replace(**changes)

    def _vectors(self, start, length):
        """Rows [start, start + length) of the table, projected to the input size."""
        if isinstance(start, int):
            px = self.w[start:start + length]
        else:
            px = jax.lax.dynamic_slice_in_dim(self.w, start, length, axis=0)
        if self.ff is not None:
            px = jnp.dot(px, self.ff)
        return px[None]

    def forward_with_state(self, x):
        if x.ndim != 3:
            raise ValueError(
                "PositionalEncoding: expected activations of shape (batch, length, d), got "
                f"shape {tuple(x.shape)}."
            )
        length = x.shape[1]
        if length > self.max_len:
            raise ValueError(
                f"PositionalEncoding: the input has {length} positions, more than "
                f"max_len={self.max_len}."
            )
        d_out = self.w.shape[1] if self.ff is None else self.ff.shape[1]
        if x.shape[-1] != d_out:
            raise ValueError(
                f"PositionalEncoding: expected activations with last axis {d_out} (the size "
                f"this layer was initialized for), got shape {tuple(x.shape)}."
            )
        if self.mode == "predict":
            if self.position is None:
                raise ValueError(
                    "PositionalEncoding in 'predict' mode has no position state: build the "
                    "layer with mode='predict' and call init(...) on it."
                )
            # Positions past max_len are clipped by dynamic_slice (the index is traced).
            px = self._vectors(self.position, length)
            return self.replace(position=self.position + length), x + px
        if self.mode != "train" or not self._needs_rng():
            return self, x + self._vectors(0, length)
        if self.rng is None:
            raise ValueError(
                "PositionalEncoding has no RNG key: call model.init(...) first (or give it "
                "one with replace(rng=key))."
            )
        rng, k_start, k_zero, k_drop = jax.random.split(self.rng, 4)
        if self.start_from_zero_prob < 1.0 and self.max_offset_to_add > 0:
            start = jax.random.randint(k_start, (), 0, self.max_offset_to_add)
            start = jnp.minimum(start, self.max_len - length)
            from_zero = jax.random.uniform(k_zero, ()) < self.start_from_zero_prob
            start = jnp.where(from_zero, 0, start)
            px = self._vectors(start, length)
        else:
            px = self._vectors(0, length)
        if self.dropout > 0.0:
            noise_shape = list(px.shape)
            for dim in self.dropout_broadcast_dims:
                noise_shape[dim] = 1
            keep_prob = 1.0 - self.dropout
            keep = jax.random.bernoulli(k_drop, keep_prob, tuple(noise_shape))
            px = px * (keep.astype(x.dtype) / jnp.asarray(keep_prob, x.dtype))
        return self.replace(rng=rng), x + px
