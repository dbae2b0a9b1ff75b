"""PAX's Embed and EMA modules."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from pax_trax.core.module import Module, param, state, static
from pax_trax.nn.core import _check_int_ids, _check_positive_int, check_mode

__all__ = ["Embed", "EMA"]


def _truncated_normal(shape, key):
    """PAX's default Embed init: a unit normal truncated to [-2, 2]."""
    return jax.random.truncated_normal(key, -2.0, 2.0, tuple(shape), jnp.float32)


class Embed(Module):
    """PAX's Embed: maps integer ids to trainable vectors, `weight[x]`.

    With `rng_key` the weight is created at once, otherwise `init(...)`
    creates it. `w_init(shape, key)` defaults to a unit truncated normal.
    Indexing follows JAX: negative ids count from the end and ids past the
    end are clamped.

    >>> import jax, numpy as np
    >>> emb = Embed(10, 4, rng_key=jax.random.PRNGKey(0))
    >>> emb(np.array([1, 2, 3])).shape
    (3, 4)
    """

    vocab_size = static()
    embed_dim = static()
    w_init = static()
    weight = param()

    def __init__(self, vocab_size, embed_dim, w_init=None, *, rng_key=None, name=None):
        self.vocab_size = _check_positive_int("Embed", "vocab_size", vocab_size)
        self.embed_dim = _check_positive_int("Embed", "embed_dim", embed_dim)
        self.w_init = w_init
        self.name = name or "Embed"
        if rng_key is not None:
            self.weight = self._create(rng_key)

    def _create(self, key):
        return (self.w_init or _truncated_normal)((self.vocab_size, self.embed_dim), key)

    def init_weights_and_state(self, input_signature, key):
        _check_int_ids(input_signature.dtype)
        return self.replace(weight=self._create(key))

    def forward(self, x):
        _check_int_ids(x.dtype)
        return self.weight[x]

    def __repr__(self):
        return f"Embed(vocab_size={self.vocab_size}, embed_dim={self.embed_dim})"


def _has_integer_leaves(tree):
    return any(
        not jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)
        for leaf in jax.tree_util.tree_leaves(tree)
    )


class EMA(Module):
    """PAX's exponential moving average of a pytree.

    `ema, avg = pax_trax.purecall(ema, xs)` returns the updated module and
    `decay_rate * old + (1 - decay_rate) * xs` leaf by leaf. With
    `debias=True` the first value replaces the initial value. Integer (and
    bool) leaves are an error unless `allow_int=True`, when they take the
    newest value. In a mode other than `'train'` the averages stay fixed.

    >>> import pax_trax, jax.numpy as jnp
    >>> ema = EMA(jnp.zeros(2), decay_rate=0.9)
    >>> ema, avg = pax_trax.purecall(ema, jnp.ones(2))
    >>> [round(v, 4) for v in avg.tolist()]
    [0.1, 0.1]
    """

    decay_rate = static()
    debias = static()
    allow_int = static()
    mode = static(default="train")
    averages = state()
    debias_started = state()

    def __init__(self, initial_value, decay_rate, debias=False, allow_int=False, *,
                 mode="train", name=None):
        if not allow_int and _has_integer_leaves(initial_value):
            raise ValueError(
                "EMA: there are integer arrays in the initial value. "
                "Use allow_int=True to allow this."
            )
        self.averages = jax.tree_util.tree_map(jnp.asarray, initial_value)
        self.decay_rate = float(decay_rate)
        self.debias = bool(debias)
        self.allow_int = bool(allow_int)
        # A float flag (not a bool) so jax.grad over the module needs no allow_int.
        self.debias_started = jnp.array(0.0) if debias else None
        self.mode = check_mode(mode, "EMA")
        self.name = name or "EMA"

    def forward_with_state(self, xs):
        if not self.allow_int and _has_integer_leaves(xs):
            raise ValueError(
                "there are integer arrays in the new value. Use allow_int=True to allow this."
            )
        old_def = jax.tree_util.tree_structure(self.averages)
        new_def = jax.tree_util.tree_structure(xs)
        if old_def != new_def:
            raise ValueError(
                f"expected a value with the structure of the averages, {old_def}; got {new_def}."
            )
        if self.mode != "train":
            return self, self.averages
        decay = self.decay_rate
        started = None if self.debias_started is None else self.debias_started > 0

        def update(a, x):
            if not jnp.issubdtype(a.dtype, jnp.inexact):
                return jnp.asarray(x)
            if started is not None:
                a = jnp.where(started, a, x)
            return (a * decay + x * (1 - decay)).astype(a.dtype)

        averages = jax.tree_util.tree_map(update, self.averages, xs)
        changes = {"averages": averages}
        if self.debias_started is not None:
            changes["debias_started"] = jnp.array(1.0)
        return self.replace(**changes), averages
