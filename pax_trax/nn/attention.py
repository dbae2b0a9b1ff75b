"""Attention layers, as Trax's ``trax.layers.attention``, and PAX's MultiHeadAttention.

Shapes: activations are ``(batch, length, d_feature)``; per-head arrays are
``(batch * n_heads, length, d_head)`` (merged) or ``(batch, n_heads, length,
d_head)``; padding masks are ``(batch, 1, 1, length)`` booleans (True = attend).

Modes (as Trax): ``'train'`` applies attention dropout; ``'eval'`` does not;
``'predict'`` decodes incrementally: `DotProductCausalAttention` keeps a
key/value cache and its position in state, so calls in that mode go through
``pax_trax.purecall``::

    >>> import numpy as np, pax_trax
    >>> layer = CausalAttention(4, n_heads=2, max_inference_length=8, mode='predict')
    >>> layer = layer.init(np.zeros((1, 1, 4), np.float32))
    >>> layer, y = pax_trax.purecall(layer, np.ones((1, 1, 4), np.float32))
    >>> int(layer.sublayers[1].cache_index), y.shape
    (1, (1, 1, 4))

Layers that hold attention dropout keep their RNG key in state (``rng``) and
advance it on each call in ``'train'`` mode.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from pax_trax.core.module import Module, rng_state, state, static, submodule
from pax_trax.nn import combinators as cb
from pax_trax.nn.base import Fn, call_sublayer, init_sublayer, to_stack
from pax_trax.nn.core import Dense, check_mode
from pax_trax.nn.position_encodings import PositionalEncoding

__all__ = [
    "Attention",
    "AttentionQKV",
    "PureAttention",
    "DotProductAttention",
    "SplitIntoHeads",
    "MergeHeads",
    "ConfigurableAttention",
    "CausalAttention",
    "DotProductCausalAttention",
    "ShiftRight",
    "PaddingMask",
    "EncoderDecoderMask",
    "PositionalEncoding",
]


# ---------------------------------------------------------------------------
# Helpers


class _Bound:
    """`fn(x, *args)` as a one-argument callable, equal (and hashing) by value.

    Used as the function of `Fn` layers so that equal layers (same `fn` and
    arguments) are equal pytree aux data and share jit cache entries.
    """

    __slots__ = ("fn", "args")

    def __init__(self, fn, *args):
        object.__setattr__(self, "fn", fn)
        object.__setattr__(self, "args", args)

    def __setattr__(self, name, value):
        raise AttributeError("_Bound is immutable")

    def __reduce__(self):  # copy / deepcopy / pickle despite the frozen slots
        return (_Bound, (self.fn, *self.args))

    def __call__(self, x):
        return self.fn(x, *self.args)

    def __eq__(self, other):
        return type(other) is _Bound and self.fn is other.fn and self.args == other.args

    def __hash__(self):
        return hash((self.fn, self.args))

    def __repr__(self):
        return f"{self.fn.__name__}{self.args}"


def _check_rate(rate, layer):
    if not isinstance(rate, (int, float, np.floating)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"{layer}: dropout must be a rate in [0, 1), got {rate!r}.")
    return float(rate)


def _check_positive(value, label, layer):
    if not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{layer}: {label} must be a positive int, got {value!r}.")
    return int(value)


def _check_heads(d_feature, n_heads, layer):
    d_feature = _check_positive(d_feature, "d_feature", layer)
    n_heads = _check_positive(n_heads, "n_heads", layer)
    if d_feature % n_heads != 0:
        raise ValueError(
            f"{layer}: dimensionality of feature embedding ({d_feature}) is not a multiple "
            f"of the requested number of attention heads ({n_heads})."
        )
    return d_feature, n_heads


def _check_rank(x, rank, what, layer):
    if x.ndim != rank:
        raise ValueError(f"{layer}: expected {what} (rank {rank}), got shape {tuple(x.shape)}.")


def _mask_value(dtype):
    return max(-1e9, float(jnp.finfo(dtype).min))


def _per_head_attention(queries, keys, values, mask, dropout, mode, rng):
    """Scaled dot-product attention on per-head arrays; returns (activations, strengths)."""
    if dropout is None:
        dropout = 0.0
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"Dropout rate ({dropout}) must be in [0, 1).")
    if queries.shape[-1] != keys.shape[-1]:
        raise ValueError(
            f"queries and keys must have the same depth, got shapes {tuple(queries.shape)} "
            f"and {tuple(keys.shape)}."
        )
    if keys.shape[-2] != values.shape[-2]:
        raise ValueError(
            f"keys and values must have the same length, got shapes {tuple(keys.shape)} "
            f"and {tuple(values.shape)}."
        )
    depth = queries.shape[-1]
    # Scaling the queries first is cheaper than scaling the (length x length) dots.
    queries = queries / jnp.asarray(math.sqrt(depth), queries.dtype)
    # (einsum contracts the depth axes in place; matmul with swapaxes made XLA on the
    # CPU copy the transposed keys, the whole KV cache at every decoding step: ~4.6x
    # slower for 1 query against 2048 cached keys.)
    dots = jnp.einsum("...qd,...kd->...qk", queries, keys)
    if mask is not None:
        try:
            jnp.broadcast_shapes(jnp.shape(mask), dots.shape)
        except ValueError:
            raise ValueError(
                f"the mask of shape {tuple(jnp.shape(mask))} does not broadcast to the "
                f"attention logits of shape {tuple(dots.shape)} (queries "
                f"{tuple(queries.shape)}, keys {tuple(keys.shape)})."
            ) from None
        dots = jnp.where(mask, dots, jnp.asarray(_mask_value(dots.dtype), dots.dtype))
    strengths = jax.nn.softmax(dots, axis=-1)
    if dropout > 0.0 and mode == "train":
        if rng is None:
            raise ValueError(
                "attention dropout in 'train' mode needs an RNG key; initialize the layer "
                "with init(...) (or pass rng=...)."
            )
        keep = jax.random.bernoulli(rng, 1.0 - dropout, strengths.shape)
        strengths = jnp.where(
            keep, strengths / jnp.asarray(1.0 - dropout, strengths.dtype),
            jnp.zeros((), strengths.dtype),
        )
    return jnp.matmul(strengths, values), strengths


def _causal_mask(length):
    return jnp.tril(jnp.ones((1, length, length), dtype=jnp.bool_))


class _DropoutRngMixin:
    """Shared handling of the attention-dropout RNG held in state as `rng`."""

    def _rng_state(self, key):
        return {"rng": key} if self.dropout > 0.0 else {}

    def _next_rng(self):
        """Returns (changes to the module, key for this call or None)."""
        if self.mode != "train" or self.dropout == 0.0:
            return {}, None
        if self.rng is None:
            raise ValueError(
                f"{self.name} has no RNG key for attention dropout: call "
                "model.init(...) first (or give it one with replace(rng=key))."
            )
        rng, sub = jax.random.split(self.rng)
        return {"rng": rng}, sub


# ---------------------------------------------------------------------------
# Core per-head attention layers


class DotProductAttention(_DropoutRngMixin, Module):
    """Per-head scaled dot-product attention: maps (Q, K, V, mask) to activations.

    As a layer (Trax's class): ``DotProductAttention(dropout=0.0, mode='train')``
    takes per-head ``(queries, keys, values, mask)`` and returns the
    activations. Called with arrays, as Trax's function
    ``DotProductAttention(queries, keys, values, mask, dropout, mode, rng)``,
    it computes directly and returns ``(activations, attention_strengths)``.

    >>> import numpy as np
    >>> q = np.array([[[1., 0.]]], np.float32); kv = np.array([[[1., 0.], [0., 1.]]], np.float32)
    >>> out, strengths = DotProductAttention(q, kv, kv, np.array([True, False]), 0.0, 'eval', None)
    >>> out.tolist(), strengths.tolist()
    ([[[1.0, 0.0]]], [[[1.0, 0.0]]])
    """

    dropout = static()
    mode = static(default="train")
    rng = rng_state()

    def __new__(cls, *args, **kwargs):
        # The layer takes at most (dropout, mode); the function takes 7 arguments.
        function_keys = {"queries", "keys", "values", "mask", "rng"}
        if len(args) + len(kwargs) > 2 or function_keys & set(kwargs):
            return _dot_product_attention_function(*args, **kwargs)
        return super().__new__(cls)

    def __init__(self, dropout=0.0, mode="train"):
        self.dropout = _check_rate(dropout, "DotProductAttention")
        self.mode = check_mode(mode, "DotProductAttention")
        self.n_in = 4

    def init_weights_and_state(self, input_signature, key):
        return self.replace(**self._rng_state(key))

    def forward_with_state(self, inputs):
        q, k, v, mask = to_stack(inputs, 4)
        changes, rng = self._next_rng()
        out, _ = _per_head_attention(q, k, v, mask, self.dropout, self.mode, rng)
        return (self.replace(**changes) if changes else self), out


def _dot_product_attention_function(queries, keys, values, mask, dropout, mode, rng):
    """Trax's function form of DotProductAttention: returns (activations, strengths)."""
    return _per_head_attention(queries, keys, values, mask, dropout, mode, rng)


class PureAttention(_DropoutRngMixin, Module):
    """Multi-head attention without projections: (Q, K, V, mask) -> (activations, mask).

    Q, K, V are ``(batch, length, d_feature)``; they are split into `n_heads`
    heads, attended per head under `mask` (True = attend), and merged back.

    >>> import numpy as np
    >>> x = np.ones((2, 3, 4), np.float32); mask = np.ones((2, 1, 1, 3), bool)
    >>> y, m = PureAttention(n_heads=2)((x, x, x, mask))
    >>> y.shape, m.shape
    ((2, 3, 4), (2, 1, 1, 3))
    """

    n_heads = static()
    dropout = static()
    mode = static(default="train")
    rng = rng_state()

    def __init__(self, n_heads=1, dropout=0.0, mode="train"):
        if not isinstance(n_heads, (int, np.integer)) or n_heads <= 0:
            raise ValueError(f"PureAttention: n_heads must be a positive int, got {n_heads!r}.")
        self.n_heads = int(n_heads)
        self.dropout = _check_rate(dropout, "PureAttention")
        self.mode = check_mode(mode, "PureAttention")
        self.n_in = 4
        self.n_out = 2

    def init_weights_and_state(self, input_signature, key):
        return self.replace(**self._rng_state(key))

    def forward_with_state(self, inputs):
        q, k, v, mask = to_stack(inputs, 4)
        for name, x in (("queries", q), ("keys", k), ("values", v)):
            _check_rank(x, 3, f"{name} of shape (batch, length, d_feature)", "PureAttention")
        split = lambda x: _split_into_heads(x, self.n_heads, False)  # noqa: E731
        changes, rng = self._next_rng()
        out, _ = _per_head_attention(split(q), split(k), split(v), mask, self.dropout,
                                     self.mode, rng)
        out = _merge_heads(out, self.n_heads, False)
        return (self.replace(**changes) if changes else self), (out, mask)


class DotProductCausalAttention(_DropoutRngMixin, Module):
    """Per-head attention in which each position attends only to itself and the past.

    Maps per-head ``(queries, keys, values)`` of shape ``(batch*heads, length,
    d_head)`` (Trax's layout; any leading batch axes work, e.g. ``(batch,
    heads, length, d_head)``) to activations of the queries' shape. In
    ``'predict'`` mode the layer appends each call's keys and values to a
    cache of `max_inference_length` positions held in state (``cache_keys``,
    ``cache_values``, ``cache_index``), so a sequence can be fed one token (or
    a few tokens) per call; the result equals ``'eval'`` mode on the whole
    sequence. Positions beyond `max_inference_length` are not supported (the
    cache index is traced, so an overflow cannot be detected at run time).
    """

    dropout = static()
    max_inference_length = static()
    mode = static(default="train")
    rng = rng_state()
    cache_keys = state()
    cache_values = state()
    cache_index = state()

    def __init__(self, dropout=0.0, max_inference_length=2048, mode="train"):
        self.dropout = _check_rate(dropout, "DotProductCausalAttention")
        self.max_inference_length = _check_positive(
            max_inference_length, "max_inference_length", "DotProductCausalAttention")
        self.mode = check_mode(mode, "DotProductCausalAttention")
        self.n_in = 3

    def init_weights_and_state(self, input_signature, key):
        q, k, v = to_stack(input_signature, 3)
        for name, sig in (("queries", q), ("keys", k), ("values", v)):
            if len(sig.shape) < 3:
                raise ValueError(
                    f"DotProductCausalAttention: expected per-head {name} of shape "
                    f"(batch*heads, length, d_head), got {sig}."
                )
        changes = self._rng_state(key)
        if self.mode == "predict":
            n = self.max_inference_length
            changes.update(
                cache_keys=jnp.zeros(k.shape[:-2] + (n, k.shape[-1]), k.dtype),
                cache_values=jnp.zeros(v.shape[:-2] + (n, v.shape[-1]), v.dtype),
                cache_index=jnp.zeros((), jnp.int32),
            )
        return self.replace(**changes)

    def forward_with_state(self, inputs):
        q, k, v = to_stack(inputs, 3)
        for name, x in (("queries", q), ("keys", k), ("values", v)):
            if x.ndim < 3:
                raise ValueError(
                    f"DotProductCausalAttention: expected per-head {name} of shape "
                    f"(batch*heads, length, d_head), got shape {tuple(x.shape)}."
                )
        if k.shape[-2] != q.shape[-2] or v.shape[-2] != q.shape[-2]:
            raise ValueError(
                "DotProductCausalAttention: queries, keys and values must have the same "
                f"length, got shapes {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}."
            )
        changes, rng = self._next_rng()
        if self.mode == "predict":
            cache_changes, k, v, mask = self._update_cache(k, v)
            changes.update(cache_changes)
        else:
            mask = _causal_mask(q.shape[-2])
        out, _ = _per_head_attention(q, k, v, mask, self.dropout, self.mode, rng)
        return (self.replace(**changes) if changes else self), out

    def _update_cache(self, k, v):
        if self.cache_keys is None:
            raise ValueError(
                "DotProductCausalAttention in 'predict' mode has no key/value cache: "
                "build the layer with mode='predict' and call init(...) on it."
            )
        ks, vs, idx = self.cache_keys, self.cache_values, self.cache_index
        drop_length = lambda shape: tuple(shape[:-2]) + tuple(shape[-1:])  # noqa: E731
        if (drop_length(k.shape), drop_length(v.shape)) != (drop_length(ks.shape),
                                                            drop_length(vs.shape)):
            raise ValueError(
                f"DotProductCausalAttention: the cache was initialized for keys "
                f"{drop_length(ks.shape)} and values {drop_length(vs.shape)} (shapes "
                f"without the length axis), got keys {tuple(k.shape)} and values "
                f"{tuple(v.shape)}."
            )
        length, n = k.shape[-2], self.max_inference_length
        if length > n:
            raise ValueError(
                f"DotProductCausalAttention: {length} positions in one call exceed "
                f"max_inference_length={n}."
            )
        axis = k.ndim - 2
        ks = jax.lax.dynamic_update_slice_in_dim(ks, k.astype(ks.dtype), idx, axis=axis)
        vs = jax.lax.dynamic_update_slice_in_dim(vs, v.astype(vs.dtype), idx, axis=axis)
        # Query i (absolute position idx + i) attends to cached positions <= idx + i.
        mask = jnp.arange(n)[None, :] <= (idx + jnp.arange(length))[:, None]
        changes = {"cache_keys": ks, "cache_values": vs, "cache_index": idx + length}
        return changes, ks, vs, mask


# ---------------------------------------------------------------------------
# Head splitting and merging


def _split_into_heads(x, n_heads, merged_batch_and_head):
    if x.ndim != 3:
        raise ValueError(
            "SplitIntoHeads: expected an input of shape (batch, length, d_feature), got "
            f"shape {tuple(x.shape)}."
        )
    batch, length, d_feature = x.shape
    if d_feature % n_heads != 0:
        raise ValueError(
            f"SplitIntoHeads: feature embedding dimensionality ({d_feature}) is not a "
            f"multiple of the requested number of attention heads ({n_heads})."
        )
    x = x.reshape((batch, length, n_heads, d_feature // n_heads)).transpose((0, 2, 1, 3))
    if merged_batch_and_head:
        x = x.reshape((batch * n_heads, length, d_feature // n_heads))
    return x


def _merge_heads(x, n_heads, merged_batch_and_head):
    if merged_batch_and_head:
        if x.ndim != 3 or x.shape[0] % n_heads != 0:
            raise ValueError(
                f"MergeHeads: expected an input of shape (batch*{n_heads}, length, d_head), "
                f"got shape {tuple(x.shape)}."
            )
        x = x.reshape((x.shape[0] // n_heads, n_heads) + tuple(x.shape[1:]))
    elif x.ndim != 4 or x.shape[1] != n_heads:
        raise ValueError(
            f"MergeHeads: expected an input of shape (batch, {n_heads}, length, d_head), "
            f"got shape {tuple(x.shape)}."
        )
    batch, _, length, d_head = x.shape
    return x.transpose((0, 2, 1, 3)).reshape((batch, length, n_heads * d_head))


def SplitIntoHeads(n_heads, merged_batch_and_head=True):
    """Reshapes ``(batch, length, d)`` to ``(batch*n_heads, length, d/n_heads)``.

    With ``merged_batch_and_head=False`` the result is ``(batch, n_heads,
    length, d/n_heads)``. Head h takes features ``[h*d_head, (h+1)*d_head)``.
    """
    n_heads = _check_positive(n_heads, "n_heads", "SplitIntoHeads")
    return Fn("SplitIntoHeads", _Bound(_split_into_heads, n_heads, bool(merged_batch_and_head)))


def MergeHeads(n_heads, merged_batch_and_head=True):
    """Undoes `SplitIntoHeads`: back to ``(batch, length, n_heads*d_head)``."""
    n_heads = _check_positive(n_heads, "n_heads", "MergeHeads")
    return Fn("MergeHeads", _Bound(_merge_heads, n_heads, bool(merged_batch_and_head)))


# ---------------------------------------------------------------------------
# Full attention layers (combinations, as in Trax)


class _Cache(Module):
    """Trax's `Cache`: in 'predict' mode, runs its sublayer once and then returns
    the cached output; in other modes it just runs the sublayer. Kept in every
    mode so that models in different modes have the same parameter structure."""

    layer = submodule()
    mode = static(default="train")
    cached = state()

    def __init__(self, layer, mode="train"):
        self.layer = layer
        self.mode = check_mode(mode, "Cache")
        self.n_in, self.n_out = layer.n_in, layer.n_out
        self.name = "Cache"

    def init_with_output_signature(self, input_signature, key):
        layer, out = init_sublayer(f"{self.name}[0]", self.layer, input_signature, key)
        return self.replace(layer=layer, cached=None), out

    def forward_with_state(self, inputs):
        if self.mode == "predict" and self.cached is not None:
            return self, self.cached
        layer, out = call_sublayer(f"{self.name}[0]", self.layer, inputs)
        if self.mode != "predict":
            return (self if layer is self.layer else self.replace(layer=layer)), out
        return self.replace(layer=layer, cached=out), out


def Attention(d_feature, n_heads=1, dropout=0.0, mode="train"):
    """Multi-head self-attention mapping (activations, mask) to (activations, mask).

    Projects the activations to queries, keys and values (`Dense`), attends
    per head under the padding mask, merges the heads and projects back with a
    final `Dense(d_feature)`.
    """
    _check_heads(d_feature, n_heads, "Attention")
    return cb.Serial(
        cb.Select([0, 0, 0]),
        AttentionQKV(d_feature, n_heads=n_heads, dropout=dropout, mode=mode),
        name="Attention",
    )


def AttentionQKV(d_feature, n_heads=1, dropout=0.0, mode="train", cache_KV_in_predict=False):
    """Multi-head attention mapping (AQ, AK, AV, mask) to (activations, mask).

    The three activations may come from different sources (e.g. decoder
    queries, encoder keys/values). With ``cache_KV_in_predict=True`` and
    ``mode='predict'`` the key and value projections are computed on the
    first call and reused afterwards (for encoder-decoder decoding). The
    cached projections sit in a `Cache` layer in every mode, so the parameter
    structure does not depend on the mode.
    """
    _check_heads(d_feature, n_heads, "AttentionQKV")

    def kv_dense():
        dense = Dense(d_feature)
        return _Cache(dense, mode=mode) if cache_KV_in_predict else dense

    return cb.Serial(
        cb.Parallel(Dense(d_feature), kv_dense(), kv_dense()),
        PureAttention(n_heads=n_heads, dropout=dropout, mode=mode),
        Dense(d_feature),
        name="AttentionQKV",
    )


def ConfigurableAttention(q_layer, k_layer, v_layer, final_layer, qkv_attention_layer,
                          n_heads=1, name="ConfigurableAttention"):
    """Self-attention with configurable Q/K/V layers, per-head core and final layer.

    Maps activations to `q_layer`, `k_layer`, `v_layer` outputs, splits each
    into `n_heads` heads (merged with the batch axis), applies
    `qkv_attention_layer` (e.g. `DotProductCausalAttention`), merges the heads
    and applies `final_layer`.
    """
    return _configurable_attention(q_layer, k_layer, v_layer, final_layer, qkv_attention_layer,
                                   n_heads, name, merged_batch_and_head=True)


def _configurable_attention(q_layer, k_layer, v_layer, final_layer, qkv_attention_layer,
                            n_heads, name, merged_batch_and_head):
    def split():
        return SplitIntoHeads(n_heads, merged_batch_and_head=merged_batch_and_head)

    return cb.Serial(
        cb.Branch([q_layer, split()], [k_layer, split()], [v_layer, split()]),
        qkv_attention_layer,
        MergeHeads(n_heads, merged_batch_and_head=merged_batch_and_head),
        final_layer,
        name=name,
    )


def CausalAttention(d_feature, n_heads=1, dropout=0.0, max_inference_length=2048, mode="train"):
    """Multi-head self-attention in which each position sees only itself and the past.

    Maps ``(batch, length, d)`` activations to ``(batch, length, d_feature)``.
    In ``'predict'`` mode it decodes incrementally with a key/value cache of
    `max_inference_length` positions (see `DotProductCausalAttention`).

    The layers are Trax's (`ConfigurableAttention` of four `Dense` layers and
    `DotProductCausalAttention`), but the heads are kept on their own axis,
    ``(batch, heads, length, d_head)``, instead of merged into the batch axis:
    the same function, with no transposed copies of Q, K and V (about 10%
    faster forward+backward on CPU).

    >>> import numpy as np
    >>> layer = CausalAttention(8, n_heads=2).init(np.zeros((1, 5, 8), np.float32))
    >>> layer(np.ones((1, 5, 8), np.float32)).shape
    (1, 5, 8)
    """
    _check_heads(d_feature, n_heads, "CausalAttention")
    return _configurable_attention(
        Dense(d_feature), Dense(d_feature), Dense(d_feature), Dense(d_feature),
        DotProductCausalAttention(
            dropout=dropout, max_inference_length=max_inference_length, mode=mode),
        n_heads, "CausalAttention", merged_batch_and_head=False,
    )


# ---------------------------------------------------------------------------
# Shifting and masks


def _shift_right(x, n_positions, mode):
    if mode == "predict" or n_positions == 0:
        return x
    if x.ndim < 2:
        raise ValueError(
            f"ShiftRight: expected an input of shape (batch, length, ...), got shape "
            f"{tuple(x.shape)}."
        )
    pad = [(0, 0)] * x.ndim
    pad[1] = (n_positions, 0)
    return jnp.pad(x, pad)[:, : x.shape[1]]


def ShiftRight(n_positions=1, mode="train"):
    """Shifts sequences right along axis 1 by `n_positions`, padding with zeros.

    In ``'predict'`` mode (decoding one position at a time) it is the identity.

    >>> import numpy as np
    >>> ShiftRight()(np.array([[1, 2, 3]])).tolist()
    [[0, 1, 2]]
    """
    if not isinstance(n_positions, (int, np.integer)) or n_positions < 0:
        raise ValueError(f"ShiftRight: n_positions must be an int >= 0, got {n_positions!r}.")
    check_mode(mode, "ShiftRight")
    return Fn(f"ShiftRight({n_positions})", _Bound(_shift_right, int(n_positions), mode))


def _padding_mask(x, pad):
    if x.ndim != 2:
        raise ValueError(
            "PaddingMask: input must be a 2-D array with shape (batch_size, "
            f"sequence_length); instead got shape {tuple(x.shape)}."
        )
    return (x != pad).reshape((x.shape[0], 1, 1, x.shape[1]))


def PaddingMask(pad=0):
    """Maps integer sequences ``(batch, length)`` to masks ``(batch, 1, 1, length)``.

    The mask is True where the token is not `pad`.

    >>> import numpy as np
    >>> PaddingMask()(np.array([[5, 0, 7]])).tolist()
    [[[[True, False, True]]]]
    """
    return Fn(f"PaddingMask({pad})", _Bound(_padding_mask, pad))


def _encoder_decoder_mask(decoder_input, mask):
    if decoder_input.ndim != 3:
        raise ValueError(
            "EncoderDecoderMask: decoder input must be a 3-D array with shape "
            "(batch_size, decoder_sequence_length, d_model); instead got shape "
            f"{tuple(decoder_input.shape)}."
        )
    batch, enc_len, dec_len = mask.shape[0], mask.shape[-1], decoder_input.shape[1]
    mask = mask.reshape((batch, 1, 1, enc_len))
    return mask + jnp.zeros((1, 1, dec_len, 1), jnp.float32)


def EncoderDecoderMask():
    """Maps (decoder activations, encoder padding mask) to a cross-attention mask.

    The result has shape ``(batch, 1, decoder_length, encoder_length)`` and,
    as in Trax, is float (1.0 = attend, 0.0 = padding).
    """
    return Fn("EncoderDecoderMask", _encoder_decoder_mask)
