"""PAX's MultiHeadAttention (Haiku semantics): `mha(query, key, value, mask=None)`."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from pax_trax.core.module import Module, static, submodule
from pax_trax.core.shapes import ShapeDtype
from pax_trax.nn.attention import _check_positive
from pax_trax.nn.base import call_sublayer, init_sublayer
from pax_trax.nn.linear import Linear

__all__ = ["MultiHeadAttention"]


class _VarianceScaling:
    """Haiku/PAX weight init: variance scaling, fan_in, truncated normal."""

    __slots__ = ("scale",)

    def __init__(self, scale):
        object.__setattr__(self, "scale", float(scale))

    def __setattr__(self, name, value):
        raise AttributeError("_VarianceScaling is immutable")

    def __reduce__(self):
        return (_VarianceScaling, (self.scale,))

    def __call__(self, shape, key):
        init = jax.nn.initializers.variance_scaling(self.scale, "fan_in", "truncated_normal")
        return init(key, tuple(shape), jnp.float32)

    def __eq__(self, other):
        return type(other) is _VarianceScaling and other.scale == self.scale

    def __hash__(self):
        return hash(("_VarianceScaling", self.scale))


class MultiHeadAttention(Module):
    """Multi-headed attention, as PAX's (and Haiku's) `MultiHeadAttention`.

    Sizes are fixed as in PAX: ``model_size = num_heads * key_size`` is the
    last axis of `query`, `key`, `value` and of the output, so the projections
    (``qry_proj``, ``key_proj``, ``val_proj``, ``out_proj``: `Linear` modules,
    weights variance-scaled by `w_init_scale`, fan-in, truncated normal; zero
    biases) need no lazy size inference: they are created at construction with
    `rng_key`, or by ``init((query, key, value))`` without it.

    ``mask`` (True = attend) broadcasts against logits ``[..., heads, T_q, T_k]``.

    >>> import jax, numpy as np
    >>> mha = MultiHeadAttention(2, 4, 1.0, rng_key=jax.random.PRNGKey(0))
    >>> x = np.ones((3, 5, 8), np.float32)
    >>> mha(x, x, x).shape
    (3, 5, 8)
    """

    _pt_multi_arg_call = True

    num_heads = static()
    key_size = static()
    value_size = static()
    model_size = static()
    w_init_scale = static()
    query_projection = submodule()
    key_projection = submodule()
    value_projection = submodule()
    output_projection = submodule()

    def __init__(self, num_heads, key_size, w_init_scale, *, rng_key=None, name=None):
        self.num_heads = _check_positive(num_heads, "num_heads", "MultiHeadAttention")
        self.key_size = _check_positive(key_size, "key_size", "MultiHeadAttention")
        self.value_size = int(key_size)
        self.model_size = int(key_size * num_heads)
        self.w_init_scale = float(w_init_scale)
        self.name = name or "MultiHeadAttention"
        keys = [None] * 4 if rng_key is None else list(jax.random.split(rng_key, 4))
        w_init = _VarianceScaling(w_init_scale)
        m = self.model_size
        self.query_projection = Linear(m, m, w_init=w_init, rng_key=keys[0], name="qry_proj")
        self.key_projection = Linear(m, m, w_init=w_init, rng_key=keys[1], name="key_proj")
        self.value_projection = Linear(m, m, w_init=w_init, rng_key=keys[2], name="val_proj")
        self.output_projection = Linear(m, m, w_init=w_init, rng_key=keys[3], name="out_proj")

    def _projections(self):
        return (self.query_projection, self.key_projection, self.value_projection,
                self.output_projection)

    def init_with_output_signature(self, input_signature, key):
        sigs = tuple(input_signature) if isinstance(input_signature, (tuple, list)) else ()
        if len(sigs) not in (3, 4):
            raise ValueError(
                "MultiHeadAttention: init expects (query, key, value) or (query, key, value, "
                f"mask) signatures, got {input_signature!r}."
            )
        q_sig = sigs[0]
        out_sig = ShapeDtype(tuple(q_sig.shape[:-1]) + (self.model_size,), q_sig.dtype)
        new = []
        for label, layer, sig, k in zip(("query", "key", "value", "output"), self._projections(),
                                        (*sigs[:3], out_sig), jax.random.split(key, 4)):
            layer, _ = init_sublayer(f"{self.name}.{label}_projection", layer, sig, k)
            new.append(layer)
        module = self.replace(query_projection=new[0], key_projection=new[1],
                              value_projection=new[2], output_projection=new[3])
        return module, module.output_signature(input_signature)

    def __call__(self, query, key, value, mask=None):
        """Computes (optionally masked) multi-head attention."""
        if mask is None:
            return super().__call__(query, key, value)
        return super().__call__(query, key, value, mask)

    def forward_with_state(self, query, key, value, mask=None):
        # Accepts `mask=` as a keyword, e.g. from purecall(mha, q, k, v, mask=m).
        return self, self.forward(query, key, value, mask)

    def forward(self, query, key, value, mask=None):
        m = self.model_size
        for label, x in (("query", query), ("key", key), ("value", value)):
            if x.ndim < 2 or x.shape[-1] != m:
                raise ValueError(
                    f"MultiHeadAttention: expected {label} of shape [..., length, {m}] "
                    f"(model_size = num_heads * key_size), got shape {tuple(x.shape)}."
                )

        def project(label, layer, x):
            _, y = call_sublayer(f"{self.name}.{label}", layer, x)
            return y.reshape(tuple(x.shape[:-1]) + (self.num_heads, self.key_size))

        q = project("query_projection", self.query_projection, query)
        k = project("key_projection", self.key_projection, key)
        v = project("value_projection", self.value_projection, value)
        logits = jnp.einsum("...thd,...Thd->...htT", q, k)
        logits = logits / jnp.asarray(math.sqrt(self.key_size), logits.dtype)
        if mask is not None:
            try:
                jnp.broadcast_shapes(jnp.shape(mask), logits.shape)
            except ValueError:
                raise ValueError(
                    f"MultiHeadAttention: the mask of shape {tuple(jnp.shape(mask))} does not "
                    f"broadcast to the logits of shape {tuple(logits.shape)} "
                    "[..., heads, T_query, T_key]."
                ) from None
            logits = jnp.where(mask, logits, jnp.asarray(-1e30, logits.dtype))
        weights = jax.nn.softmax(logits)
        attn = jnp.einsum("...htT,...Thd->...thd", weights, v)
        attn = attn.reshape(tuple(query.shape[:-1]) + (m,))
        _, out = call_sublayer(f"{self.name}.output_projection", self.output_projection, attn)
        return out

    def __repr__(self):
        return f"MultiHeadAttention(num_heads={self.num_heads}, key_size={self.key_size})"
