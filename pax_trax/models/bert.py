"""BERT (https://arxiv.org/abs/1810.04805), as Trax's `trax.models.research.bert`.

`BERT(...)` maps `(token_ids, token_type_ids, idx)` (the third input is
dropped, as in Trax) to `(pooled, sequence)`: the tanh-pooled first position
`(batch, d_model)` and all positions `(batch, length, d_model)`. Token id 0
is padding. The layers are Trax's: word, type and learned (sinusoid
initialized) position embeddings, post-norm encoder blocks of masked
multi-head self-attention (with Trax's per-head weight layout) and a
Gelu feed-forward, and the pooler. Heads and the pretraining loss follow.

Trax's `init_checkpoint` reads TensorFlow checkpoints (and downloads them
by model name); here it is left out. `PretrainedBERT.load_bert_checkpoint`
takes the checkpoint's tensors by name instead, e.g.
`tf.train.load_checkpoint(path).get_tensor` where TensorFlow is installed,
or a dict of numpy arrays.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pax_trax import nn
from pax_trax.core.module import Module, param, static
from pax_trax.nn import initializers as init
from pax_trax.nn.base import check_mode, to_stack

__all__ = [
    "AddBias",
    "BERTClassifierHead",
    "BERTRegressionHead",
    "BERTMLMHead",
    "BERTPretrainingLoss",
    "BERTPretrainingHead",
    "BERT",
    "PretrainedBERT",
]

_LAYER_NORM_EPSILON = 1e-12


class AddBias(Module):
    """Adds a trainable bias (zeros at init) over the last axis; Trax's weights are the bias.

    >>> import numpy as np
    >>> layer = AddBias().init(np.zeros((2, 3), np.float32))
    >>> layer.replace(b=np.array([1., 2., 3.], np.float32))(np.zeros((2, 3))).tolist()
    [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    """

    b = param()

    def __init__(self):
        self.name = "AddBias"

    def init_weights_and_state(self, input_signature, key):
        del key
        return self.replace(b=jnp.zeros(input_signature.shape[-1:], jnp.float32))

    def forward(self, x):
        if x.shape[-1:] != self.b.shape:
            raise ValueError(f"expected an input whose last axis has size {self.b.shape[0]}, "
                             f"got shape {tuple(x.shape)}.")
        return x + self.b


class _MaskedSelfAttention(Module):
    """Trax's `SelfAttention(masked=True, bias=True)` (efficient_attention), unchunked.

    Maps `(x, mask)` with `x` of shape `(batch, length, d_model)` and a
    boolean `mask` `(batch, length)` (True = a real token) to the attention
    output `(batch, length, d_model)`, summed over heads without an output
    bias (BERT adds one with `AddBias`). Weights are stacked per head, in
    Trax's order: `w_q, w_k, w_v` `(n_heads, d_model, d_qk|d_v)`, `w_o`
    `(n_heads, d_v, d_model)`, `b_q, b_k, b_v` `(n_heads, d_qk|d_v)`.
    Keys at padding positions get -1e9 added to their logits. (Trax 1.4.1
    leaves padding at positions 0 and 1 unmasked through an off-by-one;
    this only differs for sequences with fewer than two real tokens.)
    """

    n_heads = static()
    d_qk = static()
    d_v = static()
    w_q = param()
    w_k = param()
    w_v = param()
    w_o = param()
    b_q = param()
    b_k = param()
    b_v = param()

    def __init__(self, n_heads, d_qk, d_v):
        self.n_heads = int(n_heads)
        self.d_qk = int(d_qk)
        self.d_v = int(d_v)
        self.n_in = 2
        self.name = "SelfAttention"

    def _kernel(self, shape, key):
        # Glorot uniform over the total width of all heads (Trax's choice).
        lim = np.sqrt(6.0 / (shape[-2] + shape[-1] * self.n_heads))
        return jax.random.uniform(key, (self.n_heads,) + shape, jnp.float32, -lim, lim)

    def init_weights_and_state(self, input_signature, key):
        x_sig, _ = input_signature
        d_model = x_sig.shape[-1]
        k_q, k_k, k_v, k_o = jax.random.split(key, 4)
        h = self.n_heads
        return self.replace(
            w_q=self._kernel((d_model, self.d_qk), k_q),
            w_k=self._kernel((d_model, self.d_qk), k_k),
            w_v=self._kernel((d_model, self.d_v), k_v),
            w_o=jnp.swapaxes(self._kernel((d_model, self.d_v), k_o), 1, 2),
            b_q=jnp.zeros((h, self.d_qk), jnp.float32),
            b_k=jnp.zeros((h, self.d_qk), jnp.float32),
            b_v=jnp.zeros((h, self.d_v), jnp.float32),
        )

    def forward(self, inputs):
        x, mask = to_stack(inputs, 2)
        d_model = self.w_q.shape[1]
        if x.ndim != 3 or x.shape[-1] != d_model:
            raise ValueError(f"expected activations of shape (batch, length, {d_model}), got "
                             f"shape {tuple(x.shape)}.")
        if tuple(mask.shape) != tuple(x.shape[:2]):
            raise ValueError(f"expected a mask of shape {tuple(x.shape[:2])} (batch, length), "
                             f"got shape {tuple(mask.shape)}.")
        q = jnp.einsum("bld,hdk->bhlk", x, self.w_q) + self.b_q[:, None, :]
        k = jnp.einsum("bld,hdk->bhlk", x, self.w_k) + self.b_k[:, None, :]
        v = jnp.einsum("bld,hdk->bhlk", x, self.w_v) + self.b_v[:, None, :]
        dots = jnp.einsum("bhqk,bhlk->bhql", q, k / jnp.sqrt(jnp.float32(self.d_qk)))
        padding = jnp.logical_not(mask.astype(bool))[:, None, None, :]
        dots = dots - 1e9 * padding.astype(dots.dtype)
        weights = jax.nn.softmax(dots, axis=-1)
        out = jnp.einsum("bhql,bhlv->bhqv", weights, v)
        return jnp.einsum("bhqv,hvd->bqd", out, self.w_o)


def _dense(n_units):
    return nn.Dense(n_units, kernel_initializer=init.RandomNormalInitializer(0.02),
                    bias_initializer=init.RandomNormalInitializer(1e-6))


def BERTClassifierHead(n_classes):
    """Takes BERT's `(pooled, sequence)`; returns class logits `Dense(n_classes)(pooled)`."""
    return nn.Serial([nn.Select([0], n_in=2), _dense(n_classes)])


def _remove_axis(x):
    return jnp.squeeze(x, axis=1)


def BERTRegressionHead():
    """Takes BERT's `(pooled, sequence)`; returns one value per example, shape `(batch,)`."""
    return nn.Serial([nn.Select([0], n_in=2), _dense(1), nn.Fn("RemoveAxis", _remove_axis)])


def BERTMLMHead(vocab_size=30522):
    """Takes BERT's `(pooled, sequence)`; returns token logits `(batch, length, vocab_size)`."""
    return nn.Serial([nn.Select([1], n_in=2), _dense(vocab_size)])


def BERTPretrainingLoss():
    """The sum of the next-sentence and masked-LM weighted cross-entropies.

    Inputs (6): NSP logits, MLM logits, NSP targets, NSP weights, MLM
    targets, MLM weights.
    """
    nsp_loss = [nn.Select([0, 2, 3], n_in=6), nn.WeightedCategoryCrossEntropy()]
    mlm_loss = [nn.Select([1, 4, 5], n_in=6), nn.WeightedCategoryCrossEntropy()]
    return nn.Serial(nn.Branch(nsp_loss, mlm_loss), nn.Add())


def BERTPretrainingHead(n_classes, vocab_size=30522):
    """Both pretraining heads: `(pooled, sequence)` to (NSP logits, MLM logits).

    Trax returns this `Branch` inside a 1-tuple (a stray comma) and sets the
    MLM vocabulary through gin; here the `Branch` is returned and
    `vocab_size` is an argument.
    """
    return nn.Branch(BERTClassifierHead(n_classes), BERTMLMHead(vocab_size))


def _squeeze_mask(mask):
    return jnp.squeeze(mask, (1, 2))


def _first_position_and_all(x):
    return x[:, 0, :], x


def BERT(d_model=768, vocab_size=30522, max_len=512, type_vocab_size=2, n_heads=12, d_ff=3072,
         n_layers=12, head=None, mode="eval"):
    """BERT (defaults: bert-base-uncased) as a `PretrainedBERT`, with `head()` on top if given.

    Inputs `(token_ids, token_type_ids, idx)`, ids `(batch, length)` with
    `length <= max_len` and 0 as padding; `idx` is ignored. Outputs
    `(pooled, sequence)`, or what `head` (a layer factory such as
    `lambda: BERTClassifierHead(2)`) makes of them. BERT has no dropout
    here (as in Trax), so `'train'` and `'eval'` compute the same; Trax's
    attention supports no `'predict'` mode for it, so neither does this.
    Trax's `init_checkpoint` is left out (see `PretrainedBERT`).

    >>> model = BERT(d_model=8, vocab_size=10, max_len=6, n_heads=2, d_ff=16, n_layers=1)
    >>> model.name, model.n_in, model.n_out
    ('PretrainedBERT', 3, 2)
    >>> BERT(n_layers=1, head=lambda: BERTClassifierHead(2)).n_out
    1
    """
    for label, value in (("d_model", d_model), ("vocab_size", vocab_size), ("max_len", max_len),
                         ("type_vocab_size", type_vocab_size), ("n_heads", n_heads),
                         ("d_ff", d_ff), ("n_layers", n_layers)):
        low = 0 if label == "n_layers" else 1
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"BERT: {label} must be an int >= {low}, got {value!r}.")
    if d_model % n_heads:
        raise ValueError(f"BERT: d_model ({d_model}) must be a multiple of n_heads ({n_heads}).")
    check_mode(mode, "BERT")
    if mode == "predict":
        raise ValueError("BERT: mode 'predict' is not supported (its bidirectional attention "
                         "has no incremental form); use 'train' or 'eval'.")
    if head is not None and not callable(head):
        raise TypeError(f"BERT: head must be a layer factory (called once), got {head!r}.")
    d_head = d_model // n_heads

    embeddings = [
        nn.Select([0, 1, 0], n_in=3),  # Drops the 'idx' input.
        nn.Parallel(
            nn.Embedding(vocab_size, d_model),
            nn.Embedding(type_vocab_size, d_model),
            [nn.PaddingMask(), nn.Fn("Squeeze", _squeeze_mask)],
        ),
        nn.Add(),
        nn.PositionalEncoding(max_len, mode=mode),
        nn.LayerNorm(epsilon=_LAYER_NORM_EPSILON),
    ]

    encoder = []
    for _ in range(n_layers):
        attention = _MaskedSelfAttention(n_heads=n_heads, d_qk=d_head, d_v=d_head)
        feed_forward = [nn.Dense(d_ff), nn.Gelu(), nn.Dense(d_model)]
        encoder += [
            nn.Select([0, 1, 1]),  # Save a copy of the mask.
            nn.Residual(attention, AddBias()),
            nn.LayerNorm(epsilon=_LAYER_NORM_EPSILON),
            nn.Residual(*feed_forward),
            nn.LayerNorm(epsilon=_LAYER_NORM_EPSILON),
        ]
    encoder += [nn.Select([0], n_in=2)]  # Drop the mask.

    pooler = [
        nn.Fn("", _first_position_and_all, n_out=2),
        nn.Dense(d_model),
        nn.Tanh(),
    ]

    bert = PretrainedBERT(embeddings + encoder + pooler)
    if head is not None:
        bert = nn.Serial(bert, head())
    return bert


class PretrainedBERT(nn.Serial):
    """The Serial that `BERT` builds; it can take weights from a BERT checkpoint's tensors.

    Trax's `init_checkpoint` argument (load TensorFlow checkpoint files,
    downloading them by model name) is left out: this library does not
    depend on TensorFlow. `load_bert_checkpoint(get_tensor)` does the same
    mapping from tensors looked up by name.
    """

    def __init__(self, *sublayers, name=None):
        super().__init__(*sublayers, name=name or "PretrainedBERT")

    def load_bert_checkpoint(self, get_tensor):
        """Returns this (initialized) model with the weights of a Google BERT checkpoint.

        `get_tensor(name)` returns the array stored under a name such as
        `'bert/embeddings/word_embeddings'` or
        `'bert/encoder/layer_0/attention/self/query/kernel'`: e.g.
        `tf.train.load_checkpoint(path).get_tensor`, or `dict.__getitem__`.
        Kernels are reshaped to the per-head layout; the position table is
        cut to this model's `max_len`. Shapes are checked.
        """
        layers = list(self.layers)
        self._check_initialized_tree()
        n_layers = (len(layers) - 5 - 1 - 3) // 5  # Embeddings, mask drop, pooler.

        def tensor(name, shape=None, reshape=None):
            value = np.asarray(get_tensor(name), np.float32)
            if reshape is not None:
                value = reshape(value)
            if shape is not None and value.shape != tuple(shape):
                raise ValueError(f"PretrainedBERT.load_bert_checkpoint: {name} has shape "
                                 f"{value.shape}, expected {tuple(shape)} for this model.")
            return jnp.asarray(value)

        word, types, _ = layers[1].layers
        positions, norm = layers[3], layers[4]
        layers[1] = layers[1].replace(layers=(
            word.replace(w=tensor("bert/embeddings/word_embeddings", word.w.shape)),
            types.replace(w=tensor("bert/embeddings/token_type_embeddings", types.w.shape)),
            layers[1].layers[2]))
        max_len = positions.w.shape[0]
        layers[3] = positions.replace(w=tensor(
            "bert/embeddings/position_embeddings", positions.w.shape,
            lambda x: x.reshape(-1, x.shape[-1])[:max_len]))
        layers[4] = _load_norm(norm, tensor, "bert/embeddings/LayerNorm")

        for i in range(n_layers):
            base, prefix = 5 + 5 * i, f"bert/encoder/layer_{i}"
            layers[base + 1] = _load_attention(layers[base + 1], tensor, prefix)
            layers[base + 2] = _load_norm(layers[base + 2], tensor,
                                          f"{prefix}/attention/output/LayerNorm")
            layers[base + 3] = _load_feed_forward(layers[base + 3], tensor, prefix)
            layers[base + 4] = _load_norm(layers[base + 4], tensor, f"{prefix}/output/LayerNorm")

        pooler = layers[-2]
        layers[-2] = pooler.replace(w=tensor("bert/pooler/dense/kernel", pooler.w.shape),
                                    b=tensor("bert/pooler/dense/bias", pooler.b.shape))
        return self.replace(layers=tuple(layers))

    def _check_initialized_tree(self):
        for module in self.modules():
            if module._missing_params():
                raise ValueError(
                    f"{self.name}: initialize the model (model.init(...)) before loading a "
                    f"checkpoint; {module.name} has no weights yet.")


def _load_norm(norm, tensor, prefix):
    return norm.replace(scale=tensor(f"{prefix}/gamma", norm.scale.shape),
                        bias=tensor(f"{prefix}/beta", norm.bias.shape))


def _residual_body(residual):
    """The layers inside Residual = Serial(Branch(None, body), Add)."""
    return residual.layers[0].layers[1].layers[1]


def _with_residual_body(residual, body):
    branch = residual.layers[0]
    parallel = branch.layers[1]
    parallel = parallel.replace(layers=(parallel.layers[0], body))
    branch = branch.replace(layers=(branch.layers[0], parallel))
    return residual.replace(layers=(branch,) + residual.layers[1:])


def _load_attention(residual, tensor, prefix):
    body = _residual_body(residual)
    attention, add_bias = body.layers
    h, d_model, d_head = attention.w_q.shape

    def heads_in(x):  # (d_model, h * d_head) -> (h, d_model, d_head)
        return x.reshape(x.shape[0], h, -1).swapaxes(0, 1)

    def heads_out(x):  # (h * d_head, d_model) -> (h, d_head, d_model)
        return x.reshape(h, -1, x.shape[-1])

    def heads_bias(x):  # (h * d_head,) -> (h, d_head)
        return x.reshape(h, -1)

    path = f"{prefix}/attention/self"
    attention = attention.replace(
        w_q=tensor(f"{path}/query/kernel", attention.w_q.shape, heads_in),
        w_k=tensor(f"{path}/key/kernel", attention.w_k.shape, heads_in),
        w_v=tensor(f"{path}/value/kernel", attention.w_v.shape, heads_in),
        w_o=tensor(f"{prefix}/attention/output/dense/kernel", attention.w_o.shape, heads_out),
        b_q=tensor(f"{path}/query/bias", attention.b_q.shape, heads_bias),
        b_k=tensor(f"{path}/key/bias", attention.b_k.shape, heads_bias),
        b_v=tensor(f"{path}/value/bias", attention.b_v.shape, heads_bias),
    )
    add_bias = add_bias.replace(b=tensor(f"{prefix}/attention/output/dense/bias",
                                         add_bias.b.shape))
    return _with_residual_body(residual, body.replace(layers=(attention, add_bias)))


def _load_feed_forward(residual, tensor, prefix):
    body = _residual_body(residual)
    dense_in, gelu, dense_out = body.layers
    dense_in = dense_in.replace(
        w=tensor(f"{prefix}/intermediate/dense/kernel", dense_in.w.shape),
        b=tensor(f"{prefix}/intermediate/dense/bias", dense_in.b.shape))
    dense_out = dense_out.replace(
        w=tensor(f"{prefix}/output/dense/kernel", dense_out.w.shape),
        b=tensor(f"{prefix}/output/dense/bias", dense_out.b.shape))
    return _with_residual_body(residual, body.replace(layers=(dense_in, gelu, dense_out)))
