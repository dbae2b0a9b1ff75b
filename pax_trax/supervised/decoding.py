"""Decoding with pax_trax models, as Trax's ``trax.supervised.decoding``.

Three entry points, with Trax 1.4.1's names and arguments plus explicit JAX
keys:

* `autoregressive_sample_stream`: a generator of one token per row per step.
* `autoregressive_sample`: a ``(batch, length)`` array of samples (greedy at
  ``temperature=0``), stopping each row at `eos_id`.
* `beam_search`: ``(batch, n_beams, length)`` sequences and their scores, with
  `eos_id` and a GNMT length penalty (which Trax 1.4.1 ignored).

The model is built with ``mode='predict'`` (e.g. ``TransformerLM(...,
mode='predict')``) and called as Trax does: a language model maps tokens
``(batch, n)`` to logits ``(batch, n, vocab)``, keeping its key/value caches
and positions in state (``model, logits = pax_trax.purecall(model, tokens)``);
an encoder-decoder maps ``(source, target_tokens)`` to ``(logits, ...)``.
The first call feeds the whole prefix (the start symbol, then `inputs` for a
language model); later calls feed the token just chosen.

`autoregressive_sample` and `beam_search` run the whole generation as one
compiled ``lax.while_loop`` that stops as soon as every row is done, with
caches sized to the length actually decoded (prefix + `max_length`), not to
Trax's 2048: at batch 1 decoding is bound by memory traffic, so every cache
position read per token costs time. The model's predict state is used as is
when it already has that batch size and cache length; otherwise it is built
afresh from the model's parameters (`init_predict_state`), so a predict
model initialized for any shape, or not at all, can be passed. The model
passed in is never changed. Compiled programs are cached: a second call with
the same model structure and shapes does not recompile.

    >>> import jax, numpy as np
    >>> from pax_trax import nn
    >>> lm = nn.Serial(nn.ShiftRight(mode='predict'), nn.Embedding(5, 4),
    ...                nn.CausalAttention(4, mode='predict'), nn.Dense(5))
    >>> lm = lm.init(np.zeros((1, 1), np.int32), jax.random.PRNGKey(0))
    >>> autoregressive_sample(lm, temperature=0.0, eos_id=None, max_length=3).shape
    (1, 3)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pax_trax.core.module import Module, purecall
from pax_trax.core.shapes import ShapeDtype

__all__ = [
    "autoregressive_sample_stream",
    "autoregressive_sample",
    "beam_search",
    "length_penalty_factor",
    "init_predict_state",
]


# ---------------------------------------------------------------------------
# Predict-mode state


def _in_predict_mode(module):
    return getattr(module, "mode", None) == "predict"


def _with_cache_length(model, max_inference_length):
    """`model` with every predict-mode cache sized to `max_inference_length` positions."""

    def resize(m):
        if _in_predict_mode(m) and "max_inference_length" in m._pt_fields:
            if m.max_inference_length != max_inference_length:
                return m.replace(max_inference_length=max_inference_length)
        return m

    return model.map_modules(resize)


def init_predict_state(model, input_signature, max_inference_length=None, key=None):
    """Returns `model` with fresh predict-mode state, keeping its parameters.

    The state (key/value caches, positions, cached encoder projections) is
    built for `input_signature` (e.g. ``ShapeDtype((batch, 1), np.int32)``,
    or a ``(source, target)`` pair for an encoder-decoder), with every
    attention cache resized to `max_inference_length` positions when given.
    Under `jax.jit` the parameter initializers this runs are dead code and
    compiled away; only the state is computed.

    >>> import numpy as np, pax_trax
    >>> from pax_trax import nn
    >>> att = nn.CausalAttention(4, mode='predict').init(np.zeros((1, 1, 4), np.float32))
    >>> att = init_predict_state(att, ShapeDtype((3, 1, 4)), max_inference_length=10)
    >>> att.sublayers[1].cache_keys.shape
    (3, 1, 10, 4)
    """
    _check_has_parameters(model, "init_predict_state")
    resized = model if max_inference_length is None else _with_cache_length(
        model, int(max_inference_length))
    key = jax.random.PRNGKey(0) if key is None else key
    return resized.init(input_signature, key).states().update_parameters(model.parameters())


def _check_has_parameters(model, where):
    missing = model.missing_parameters()
    if missing:
        raise ValueError(
            f"{where}: the model has no parameters yet (e.g. {missing[0]}). Decode with "
            "trained weights: model = model.update_parameters(trained.parameters()) or "
            "model.init(...)."
        )


def _cache_capacity(model):
    """The fewest positions any predict-mode cache or position table holds (None: no limit)."""
    limits = []
    for m in model.modules():
        if not _in_predict_mode(m):
            continue
        if "max_inference_length" in m._pt_fields:
            limits.append(m.max_inference_length)
        if "position" in m._pt_states and "max_len" in m._pt_fields:
            limits.append(m.max_len)
    return min(limits) if limits else None


def _position_table_limit(model):
    limits = [m.max_len for m in model.modules()
              if _in_predict_mode(m) and "position" in m._pt_states and "max_len" in m._pt_fields]
    return min(limits) if limits else None


_FITS_CACHE: dict = {}


def _state_fits(model, signature, cache_length):
    """Whether `model`'s predict state already has the shapes a fresh one would have."""
    leaves, treedef = jax.tree_util.tree_flatten(model.states())
    cache_key = (treedef, tuple((tuple(np.shape(x)), np.dtype(x.dtype)) for x in leaves),
                 signature, cache_length)
    if cache_key not in _FITS_CACHE:
        fresh = jax.eval_shape(
            lambda m: init_predict_state(m, signature, cache_length).states(), model)
        fresh_leaves, fresh_def = jax.tree_util.tree_flatten(fresh)
        if len(_FITS_CACHE) > 256:
            _FITS_CACHE.clear()
        _FITS_CACHE[cache_key] = fresh_def == treedef and all(
            (f.shape, f.dtype) == shape_dtype for f, shape_dtype in zip(fresh_leaves,
                                                                       cache_key[1]))
    return _FITS_CACHE[cache_key]


# ---------------------------------------------------------------------------
# Checks and shared pieces


def _check_model(model, where):
    if not isinstance(model, Module):
        raise TypeError(f"{where}: expected a pax_trax Module, got {type(model).__name__}.")
    if not any(_in_predict_mode(m) for m in model.modules()):
        raise ValueError(
            f"{where}: the model has no layer in 'predict' mode. Build it with "
            "mode='predict' (e.g. TransformerLM(..., mode='predict')) and give it the "
            "trained parameters: model.update_parameters(trained.parameters())."
        )
    _check_has_parameters(model, where)


def _check_positive_int(value, label, where, allow_none=False):
    if allow_none and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {label} must be a positive int, got {value!r}.")
    return int(value)


def _check_token_id(value, label, where):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{where}: {label} must be None or an int >= 0, got {value!r}.")
    return int(value)


def _check_temperature(temperature, key, where):
    try:
        temperature = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: temperature must be a float >= 0, got "
                         f"{temperature!r}.") from None
    if not temperature >= 0.0:
        raise ValueError(f"{where}: temperature must be a float >= 0, got {temperature!r}.")
    if temperature > 0.0 and key is None:
        raise ValueError(
            f"{where}: sampling at temperature {temperature} needs a JAX key: pass "
            "key=jax.random.PRNGKey(seed), or temperature=0.0 for greedy decoding."
        )
    if key is None:
        key = jax.random.PRNGKey(0)  # unused by greedy decoding
    return temperature, key


def _prefix_and_inputs(model, inputs, batch_size, start_id, where):
    """Returns (tokens of the first call, encoder inputs or None, is_encoder_decoder)."""
    batch_size = _check_positive_int(batch_size, "batch_size", where)
    if inputs is not None:
        inputs = np.asarray(inputs) if not isinstance(inputs, jax.Array) else inputs
        if inputs.ndim != 2 or not jnp.issubdtype(inputs.dtype, jnp.integer):
            raise ValueError(
                f"{where}: inputs must be integer tokens of shape (batch_size, length), "
                f"got {inputs.dtype} of shape {tuple(inputs.shape)}.")
        if inputs.shape[0] != batch_size:
            raise ValueError(f"{where}: inputs batch size ({inputs.shape[0]}) does not match "
                             f"batch_size arg ({batch_size}).")
        inputs = jnp.asarray(inputs, jnp.int32)
    if np.ndim(start_id) == 0:
        start = jnp.full((batch_size, 1), _check_token_id(int(start_id), "start_id", where),
                         jnp.int32)
    else:
        start = jnp.asarray(start_id, jnp.int32)
        if start.shape != (batch_size, 1):
            raise ValueError(f"{where}: start_id must be an int or an array of shape "
                             f"({batch_size}, 1), got shape {tuple(start.shape)}.")
    encoder_decoder = model.n_in > 1
    if encoder_decoder and inputs is None:
        raise ValueError(f"{where}: the model takes {model.n_in} inputs (an encoder-decoder); "
                         "pass the source tokens as inputs=.")
    if not encoder_decoder and inputs is not None:
        return jnp.concatenate([start, inputs], axis=1), None, False
    return start, inputs, encoder_decoder


def _signature(rows, inputs, encoder_decoder):
    target = ShapeDtype((rows, 1), np.int32)
    if encoder_decoder:
        return (ShapeDtype((rows, inputs.shape[1]), np.int32), target)
    return target


def _check_length_fits(model, positions, where):
    limit = _position_table_limit(model)
    if limit is not None and positions > limit:
        raise ValueError(
            f"{where}: decoding needs {positions} positions (prefix + max_length - 1) but "
            f"the model's PositionalEncoding holds max_len={limit}.")


def _call(params, states, tokens, inputs):
    """One predict-mode call: returns (new states, float32 logits of the last position)."""
    model, out = purecall(states.update_parameters(params),
                          tokens if inputs is None else (inputs, tokens))
    logits = out[0] if isinstance(out, tuple) else out
    return model.states(), logits[:, -1, :].astype(jnp.float32)


def _ready_model(model, signature, cache_length, reuse):
    return model if reuse else init_predict_state(model, signature, cache_length)


def _eos_value(eos_id):
    """eos as data (so all eos values share one compiled program); -1 never matches."""
    return jnp.int32(-1 if eos_id is None else eos_id)


def _sample_logits(logits, key, step, temperature):
    """Trax's `logsoftmax_sample`: argmax of logits + temperature * Gumbel noise.

    Temperature 0 takes the argmax branch at run time (no noise is drawn), so
    greedy decoding and sampling share one compiled program.
    """

    def sample():
        u = jax.random.uniform(jax.random.fold_in(key, step), logits.shape, logits.dtype,
                               minval=1e-6, maxval=1.0 - 1e-6)
        gumbel = -jnp.log(-jnp.log(u))
        # argmax(logits + T g) = argmax(logits / T + g): a sample of softmax(logits / T).
        return jnp.argmax(logits + temperature * gumbel, axis=-1).astype(jnp.int32)

    return jax.lax.cond(temperature == 0.0,
                        lambda: jnp.argmax(logits, axis=-1).astype(jnp.int32), sample)


# ---------------------------------------------------------------------------
# Sampling


def autoregressive_sample_stream(model, inputs=None, batch_size=1, temperature=1.0,
                                 start_id=0, accelerate=True, eos_id=None, key=None):
    """Yields samples from `model`, one position at a time, as Trax's function.

    Each yielded array holds one token per row, shape ``(batch_size,)``
    (what Trax 1.4.1 yields; its docstring says ``(batch_size, 1)``). The
    first token is predicted from the start symbol (and, for a language
    model, `inputs` after it); each later one from the tokens before it. The
    model's predict state holds the history, so the stream lasts at most as
    many positions as the model's caches (its ``max_inference_length``);
    asking for more raises an error. With `eos_id`, a row that has produced
    it yields 0 afterwards and the stream ends once every row has. Each step
    is one jitted call (``accelerate=False``: run op by op). Sampling uses
    `key` (fold_in of the step), at temperature 0 it is greedy.

    >>> import jax, numpy as np
    >>> from pax_trax import nn
    >>> lm = nn.Serial(nn.Embedding(5, 4), nn.CausalAttention(4, max_inference_length=8,
    ...                mode='predict'), nn.Dense(5)).init(np.zeros((2, 1), np.int32))
    >>> stream = autoregressive_sample_stream(lm, batch_size=2, key=jax.random.PRNGKey(0))
    >>> next(stream).shape
    (2,)
    """
    where = "autoregressive_sample_stream"
    _check_model(model, where)
    temperature, key = _check_temperature(temperature, key, where)
    eos_id = _check_token_id(eos_id, "eos_id", where)
    prefix, enc_inputs, encoder_decoder = _prefix_and_inputs(model, inputs, batch_size,
                                                             start_id, where)
    capacity = _cache_capacity(model)
    if capacity is not None and prefix.shape[1] > capacity:
        raise ValueError(f"{where}: the prefix has {prefix.shape[1]} positions, more than the "
                         f"model's caches hold ({capacity}).")
    return _stream(model, prefix, enc_inputs, encoder_decoder, temperature, key, eos_id,
                   capacity, accelerate)


def _stream(model, prefix, enc_inputs, encoder_decoder, temperature, key, eos_id, capacity,
            accelerate):
    rows = prefix.shape[0]
    signature = _signature(rows, enc_inputs, encoder_decoder)
    reuse = _state_fits(model, signature, None)
    step_fn = _stream_step_jit if accelerate else _stream_step
    temperature = jnp.float32(temperature)
    if not reuse:
        model = _fresh_state_jit(model, signature) if accelerate else init_predict_state(
            model, signature)
    states, params = model.states(), model.parameters()
    tokens, position, step = prefix, 0, 0
    done = np.zeros((rows,), bool)
    while True:
        if capacity is not None and position + tokens.shape[1] > capacity:
            raise ValueError(
                f"autoregressive_sample_stream: the model's caches hold {capacity} positions "
                "and are full. Build the model with a larger max_inference_length (and "
                "max_len), or use autoregressive_sample, which sizes its caches itself.")
        states, sample = step_fn(params, states, tokens, enc_inputs, key, step, temperature)
        position, step = position + tokens.shape[1], step + 1
        sample = np.where(done, 0, np.asarray(sample))
        yield sample
        if eos_id is not None:
            done |= sample == eos_id
            if done.all():
                return
        tokens = jnp.asarray(sample[:, None], jnp.int32)


def _stream_step(params, states, tokens, inputs, key, step, temperature):
    states, logits = _call(params, states, tokens, inputs)
    return states, _sample_logits(logits, key, step, temperature)


_stream_step_jit = jax.jit(_stream_step)
_fresh_state_jit = jax.jit(init_predict_state, static_argnums=(1, 2))


def autoregressive_sample(model, inputs=None, batch_size=1, temperature=1.0, start_id=0,
                          eos_id=1, max_length=100, accelerate=True, key=None):
    """Returns a batch of sequences created by autoregressive sampling (Trax's function).

    Generates up to `max_length` tokens per row in one compiled
    ``lax.while_loop``. A row stops after it produces `eos_id` (which is
    kept; later positions are 0) and the loop exits once every row has; the
    result has as many columns as the longest row, shape ``(batch_size,
    length)`` int32 (numpy). ``temperature=0`` is greedy decoding (argmax);
    otherwise tokens are drawn from ``softmax(logits / temperature)`` with
    `key` (required then); the same key gives the same samples. The caches
    are sized to ``prefix length + max_length - 1`` positions.
    `accelerate=False` runs the loop without the outer `jax.jit` (for
    debugging: the loop is still one ``while_loop``).

    >>> import numpy as np
    >>> from pax_trax import nn
    >>> lm = nn.Serial(nn.Embedding(5, 4), nn.CausalAttention(4, mode='predict'),
    ...                nn.Dense(5)).init(np.zeros((1, 1), np.int32))
    >>> autoregressive_sample(lm, np.array([[2, 3]]), temperature=0.0, eos_id=None,
    ...                       max_length=4).shape
    (1, 4)
    """
    where = "autoregressive_sample"
    _check_model(model, where)
    temperature, key = _check_temperature(temperature, key, where)
    eos_id = _check_token_id(eos_id, "eos_id", where)
    max_length = _check_positive_int(max_length, "max_length", where)
    prefix, enc_inputs, encoder_decoder = _prefix_and_inputs(model, inputs, batch_size,
                                                             start_id, where)
    cache_length = prefix.shape[1] + max_length - 1
    _check_length_fits(model, cache_length, where)
    signature = _signature(prefix.shape[0], enc_inputs, encoder_decoder)
    reuse = _state_fits(model, signature, cache_length)
    fn = _sample_jit if accelerate else _sample_loop
    tokens, n_steps = fn(model, prefix, enc_inputs, key, jnp.float32(temperature),
                         _eos_value(eos_id), max_length=max_length, cache_length=cache_length,
                         reuse=reuse)
    return np.asarray(tokens)[:, :int(n_steps)]


def _sample_loop(model, prefix, inputs, key, temperature, eos_id, *, max_length, cache_length,
                 reuse):
    """The whole generation: prefix call, then a while_loop of one-token calls."""
    rows = prefix.shape[0]
    model = _ready_model(model, _signature(rows, inputs, inputs is not None), cache_length,
                         reuse)
    params = model.parameters()
    states, logits = _call(params, model.states(), prefix, inputs)
    token = _sample_logits(logits, key, 0, temperature)
    done = token == eos_id
    out = jnp.zeros((rows, max_length), jnp.int32).at[:, 0].set(token)

    def cond(carry):
        step, _, _, _, done = carry
        return (step < max_length) & ~jnp.all(done)

    def body(carry):
        step, states, token, out, done = carry
        states, logits = _call(params, states, token[:, None], inputs)
        token = jnp.where(done, 0, _sample_logits(logits, key, step, temperature))
        out = jax.lax.dynamic_update_slice_in_dim(out, token[:, None], step, axis=1)
        return step + 1, states, token, out, done | (token == eos_id)

    step, _, _, out, _ = jax.lax.while_loop(cond, body, (jnp.int32(1), states, token, out, done))
    return out, step


_sample_jit = jax.jit(_sample_loop, static_argnames=("max_length", "cache_length", "reuse"))


# ---------------------------------------------------------------------------
# Beam search


def length_penalty_factor(length, alpha):
    """GNMT's length penalty ``((5 + length) / 6) ** alpha`` (Wu et al., 2016).

    `beam_search` ranks a hypothesis of `length` tokens (its eos included) by
    ``log_prob / length_penalty_factor(length, alpha)``: ``alpha=0`` ranks by
    plain log-probability; larger `alpha` favours longer hypotheses.

    >>> float(length_penalty_factor(7, 1.0))
    2.0
    """
    return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def beam_search(model, inputs=None, batch_size=1, n_beams=2, start_id=0, eos_id=1,
                max_length=100, length_penalty=1.0, accelerate=True):
    """Returns ``(sequences, scores)``: the `n_beams` best hypotheses per row, best first.

    `sequences` is int32 ``(batch_size, n_beams, length)`` (numpy) and
    `scores` float32 ``(batch_size, n_beams)``. A hypothesis ends at `eos_id`
    (kept, then 0 padding) or after `max_length` tokens; `length` is that of
    the longest one returned. Its score is ``log p(hypothesis) /
    length_penalty_factor(n_tokens, length_penalty)`` with GNMT's penalty
    ``((5 + n_tokens) / 6) ** alpha`` (n_tokens counts the eos);
    ``length_penalty=0`` ranks by log-probability. Each step extends every
    live beam by every token, keeps the `2 * n_beams` best extensions, moves
    those ending in eos to the finished set (the `n_beams` best kept) and
    continues with the `n_beams` best others. A row is done when no live beam
    can still beat its worst finished one; the compiled loop exits when all
    rows are done or after `max_length` tokens, and the live beams then
    compete with the finished ones. The model's predict state is tiled per
    beam (the source of an encoder-decoder too, so its cached encoder
    projections are per beam) and reordered by parent beam each step.
    `eos_id=None` disables eos. Trax's `accelerate` is accepted; `False`
    skips the outer `jax.jit`.

    >>> import numpy as np
    >>> from pax_trax import nn
    >>> lm = nn.Serial(nn.Embedding(5, 4), nn.CausalAttention(4, mode='predict'),
    ...                nn.Dense(5)).init(np.zeros((1, 1), np.int32))
    >>> seqs, scores = beam_search(lm, n_beams=3, eos_id=None, max_length=4)
    >>> seqs.shape, scores.shape
    ((1, 3, 4), (1, 3))
    """
    where = "beam_search"
    _check_model(model, where)
    n_beams = _check_positive_int(n_beams, "n_beams", where)
    eos_id = _check_token_id(eos_id, "eos_id", where)
    max_length = _check_positive_int(max_length, "max_length", where)
    try:
        alpha = float(length_penalty)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: length_penalty must be a float, got "
                         f"{length_penalty!r}.") from None
    prefix, enc_inputs, encoder_decoder = _prefix_and_inputs(model, inputs, batch_size,
                                                             start_id, where)
    cache_length = prefix.shape[1] + max_length - 1
    _check_length_fits(model, cache_length, where)
    # Every beam is a row of the model's batch: row b * n_beams + k is beam k of row b.
    prefix = jnp.repeat(prefix, n_beams, axis=0)
    if enc_inputs is not None:
        enc_inputs = jnp.repeat(enc_inputs, n_beams, axis=0)
    signature = _signature(prefix.shape[0], enc_inputs, encoder_decoder)
    reuse = _state_fits(model, signature, cache_length)
    fn = _beam_jit if accelerate else _beam_loop
    seqs, scores, lengths = fn(model, prefix, enc_inputs, jnp.float32(alpha),
                               _eos_value(eos_id), n_beams=n_beams, max_length=max_length,
                               cache_length=cache_length, reuse=reuse)
    n = max(int(jnp.max(lengths)), 1)
    return np.asarray(seqs)[:, :, :n], np.asarray(scores)


def _batch_factors(model, prefix, inputs, cache_length, reuse):
    """Per state leaf: c if its leading axis is rows * c (batch-major), else None.

    Found from the state's shapes at two batch sizes (abstract evaluation),
    so any cache layout with the batch outermost is reordered correctly.
    """

    def state_after_prefix(m, p, i):
        m = _ready_model(m, _signature(p.shape[0], i, i is not None), cache_length,
                         reuse=False)
        return _call(m.parameters(), m.states(), p, i)[0]

    def shapes(rows):
        p = jax.ShapeDtypeStruct((rows, prefix.shape[1]), jnp.int32)
        i = None if inputs is None else jax.ShapeDtypeStruct((rows, inputs.shape[1]),
                                                             jnp.int32)
        return jax.tree_util.tree_leaves(jax.eval_shape(state_after_prefix, model, p, i))

    del reuse
    rows = prefix.shape[0]
    factors = []
    for one, two in zip(shapes(rows), shapes(2 * rows)):
        if one.shape == two.shape:
            factors.append(None)
        elif one.ndim and two.shape[0] == 2 * one.shape[0] and one.shape[0] % rows == 0:
            factors.append(one.shape[0] // rows)
        else:
            raise ValueError(
                f"beam_search: cannot tell how the batch is laid out in a predict-state "
                f"array of shape {one.shape} (batch {rows}); the batch must be the leading "
                "axis (or its outer factor).")
    return factors


def _reorder_beams(states, factors, flat_parents):
    """Gathers every batch-major state leaf by parent beam (flat row indices)."""
    leaves, treedef = jax.tree_util.tree_flatten(states)
    rows = flat_parents.shape[0]
    out = []
    for leaf, c in zip(leaves, factors):
        if c is not None:
            shaped = leaf.reshape((rows, c) + leaf.shape[1:])
            leaf = jnp.take(shaped, flat_parents, axis=0).reshape(leaf.shape)
        out.append(leaf)
    return jax.tree_util.tree_unflatten(treedef, out)


def _take(x, index):
    """x[b, index[b, j], ...] for x of shape (B, N, ...) and index (B, M)."""
    index = index.reshape(index.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, index, axis=1)


def _expand(step, logp, alive, eos_id, alpha):
    """One beam step: extends the live beams (`step` tokens long) by one token."""
    alive_seq, alive_logp, fin_seq, fin_score, fin_len = alive
    batch, n_beams, vocab = logp.shape
    candidates = (alive_logp[:, :, None] + logp).reshape(batch, n_beams * vocab)
    values, index = jax.lax.top_k(candidates, min(2 * n_beams, n_beams * vocab))
    parent, token = index // vocab, (index % vocab).astype(jnp.int32)
    seqs = jax.lax.dynamic_update_slice_in_dim(_take(alive_seq, parent), token[:, :, None],
                                               step, axis=2)
    is_eos = token == eos_id
    new_len = step + 1
    ended = jnp.where(is_eos, values / length_penalty_factor(new_len, alpha), -jnp.inf)
    # Finished first, so that ties keep the older hypothesis.
    all_score = jnp.concatenate([fin_score, ended], axis=1)
    fin_score, best = jax.lax.top_k(all_score, n_beams)
    fin_seq = _take(jnp.concatenate([fin_seq, seqs], axis=1), best)
    fin_len = _take(jnp.concatenate([fin_len, jnp.full(ended.shape, new_len, jnp.int32)], axis=1), best)
    alive_logp, best = jax.lax.top_k(jnp.where(is_eos, -jnp.inf, values), n_beams)
    alive = (_take(seqs, best), alive_logp, fin_seq, fin_score, fin_len)
    return alive, _take(parent, best), _take(token, best)


def _rows_done(step, alive_logp, fin_score, alpha, max_length):
    """A row is done when its worst finished score beats any score a live beam can reach."""
    # log p only falls as a beam grows, so its best reachable score is log p divided
    # by the largest penalty factor over the lengths it can still end at.
    factor = jnp.where(alpha >= 0, length_penalty_factor(max_length, alpha),
                       length_penalty_factor(step, alpha))
    return fin_score[:, -1] >= alive_logp[:, 0] / factor


def _beam_loop(model, prefix, inputs, alpha, eos_id, *, n_beams, max_length, cache_length,
               reuse):
    rows = prefix.shape[0]
    batch = rows // n_beams
    factors = _batch_factors(model, prefix, inputs, cache_length, reuse)
    model = _ready_model(model, _signature(rows, inputs, inputs is not None), cache_length,
                         reuse)
    params = model.parameters()

    def log_probs(states, tokens):
        states, logits = _call(params, states, tokens, inputs)
        return states, jax.nn.log_softmax(logits).reshape(batch, n_beams, -1)

    states, logp = log_probs(model.states(), prefix)
    # All beams start equal: only beam 0 is live, so the first step has no duplicates.
    alive_logp = jnp.full((batch, n_beams), -jnp.inf, jnp.float32).at[:, 0].set(0.0)
    seqs = jnp.zeros((batch, n_beams, max_length), jnp.int32)
    alive = (seqs, alive_logp, seqs, jnp.full((batch, n_beams), -jnp.inf, jnp.float32),
             jnp.zeros((batch, n_beams), jnp.int32))
    alive, parent, token = _expand(0, logp, alive, eos_id, alpha)
    offsets = (jnp.arange(batch) * n_beams)[:, None]

    def cond(carry):
        step, _, alive, _, _ = carry
        done = _rows_done(step, alive[1], alive[3], alpha, max_length)
        return (step < max_length) & ~jnp.all(done)

    def body(carry):
        step, states, alive, parent, token = carry
        states = _reorder_beams(states, factors, (offsets + parent).reshape(-1))
        states, logp = log_probs(states, token.reshape(rows, 1))
        alive, parent, token = _expand(step, logp, alive, eos_id, alpha)
        return step + 1, states, alive, parent, token

    step, _, alive, _, _ = jax.lax.while_loop(
        cond, body, (jnp.int32(1), states, alive, parent, token))
    alive_seq, alive_logp, fin_seq, fin_score, fin_len = alive
    # Live beams are hypotheses too (cut at max_length); finished ones win ties.
    scores = jnp.concatenate(
        [fin_score, alive_logp / length_penalty_factor(step, alpha)], axis=1)
    scores, best = jax.lax.top_k(scores, n_beams)
    seqs = _take(jnp.concatenate([fin_seq, alive_seq], axis=1), best)
    lengths = _take(jnp.concatenate([fin_len, jnp.full(fin_len.shape, step, jnp.int32)], axis=1), best)
    valid = scores > -jnp.inf  # fewer hypotheses than beams (tiny vocabularies)
    return (jnp.where(valid[:, :, None], seqs, 0), scores, jnp.where(valid, lengths, 0))


_beam_jit = jax.jit(
    _beam_loop, static_argnames=("n_beams", "max_length", "cache_length", "reuse"))
