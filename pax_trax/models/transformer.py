"""Transformer models, as Trax's `trax.models.transformer`.

`TransformerEncoder` (classification), `TransformerDecoder` (causal, no
shift), `TransformerLM` (language model) and `Transformer` (encoder-decoder)
are built from `pax_trax.nn` layers the way Trax 1.4.1 builds them: the same
layers in the same order, so the Trax-style ``weights`` of a model are Trax's
and `Module.init_from_file` reads Trax 1.4.1 checkpoints of these models.
As in Trax 1.4.1 the models end in raw logits (no `LogSoftmax`).

``mode='predict'`` is for fast decoding (`pax_trax.supervised.decoding`):
attention layers keep key/value caches and positional encodings keep the
next position in state, so feeding the tokens one per call (with
`pax_trax.purecall`) gives the logits that ``'eval'`` mode gives for the
whole sequence. In the encoder-decoder `Transformer` the encoder sits in a
`nn.Cache` and the decoder's cross-attention caches its key/value
projections, so the source is encoded once per sequence.

Differences from Trax 1.4.1, all invisible to its checkpoints:

* The encoder of `Transformer` is wrapped in `nn.Cache` in every mode (Trax
  wraps it only in ``'predict'``), and attention layers keep their
  cross-attention `Cache` in every mode: models built in different modes
  have the same parameter structure, so ``predict_model.update_parameters(
  trained.parameters())`` just works. The cache is a pass-through outside
  ``'predict'``.
* In ``'predict'`` mode the causal attention caches hold `max_len` positions
  (Trax: 2048 whatever `max_len` is); `pax_trax.supervised.decoding` resizes
  them to the length actually decoded.
* `TransformerDecoder` passes `mode` to its `PositionalEncoding`, so it can
  decode in ``'predict'`` mode too.
* When `Transformer` shares one embedding between source and target
  (``output_vocab_size=None``), the model is an `nn.Shared` around the
  `Serial`: one stored copy of the table, gradients from both uses.
"""

from __future__ import annotations

from pax_trax import nn
from pax_trax.models import _arguments as args
from pax_trax.nn.base import check_mode

__all__ = [
    "TransformerEncoder",
    "TransformerDecoder",
    "TransformerLM",
    "Transformer",
    "EncoderBlock",
    "DecoderBlock",
    "EncoderDecoderBlock",
    "FeedForwardBlock",
]


class _Hyper:
    """The checked hyperparameters every block takes, in one place."""

    def __init__(self, model, d_model, d_ff, n_heads, dropout, dropout_shared_axes, max_len,
                 mode, ff_activation):
        self.d_model = args.positive_int(d_model, "d_model", model)
        self.d_ff = args.positive_int(d_ff, "d_ff", model)
        self.n_heads = args.positive_int(n_heads, "n_heads", model)
        if self.d_model % self.n_heads:
            raise ValueError(
                f"{model}: d_model ({self.d_model}) must be a multiple of n_heads "
                f"({self.n_heads}): each head attends over d_model / n_heads features.")
        self.dropout = args.rate(dropout, "dropout", model)
        self.dropout_shared_axes = dropout_shared_axes
        self.max_len = args.positive_int(max_len, "max_len", model)
        self.mode = check_mode(mode, model)
        self.ff_activation = args.layer_factory(ff_activation, "ff_activation", model)

    def dropout_layer(self, mode=None):
        return nn.Dropout(rate=self.dropout, shared_axes=self.dropout_shared_axes,
                          mode=mode or self.mode)

    def feed_forward(self, mode=None):
        return FeedForwardBlock(self.d_model, self.d_ff, self.dropout, self.dropout_shared_axes,
                                mode or self.mode, self.ff_activation)

    def residual_feed_forward(self, mode=None):
        return nn.Residual(nn.LayerNorm(), self.feed_forward(mode), self.dropout_layer(mode))


def FeedForwardBlock(d_model, d_ff, dropout, dropout_shared_axes, mode, activation):
    """``[Dense(d_ff), activation(), Dropout, Dense(d_model)]``: Trax's feed-forward block.

    >>> [layer.name for layer in FeedForwardBlock(4, 8, 0.1, None, 'train', nn.Relu)]
    ['Dense_8', 'Relu', 'Dropout', 'Dense_4']
    """
    return [
        nn.Dense(d_ff),
        activation(),
        nn.Dropout(rate=dropout, shared_axes=dropout_shared_axes, mode=mode),
        nn.Dense(d_model),
    ]


def EncoderBlock(d_model, d_ff, n_heads, dropout, dropout_shared_axes, mode, ff_activation):
    """Trax's encoder block: maps ``(activations, mask)`` to ``(activations, mask)``.

    Two residual layers: ``LayerNorm, Attention (under the padding mask),
    Dropout`` and ``LayerNorm, FeedForwardBlock, Dropout``.
    """
    h = _Hyper("EncoderBlock", d_model, d_ff, n_heads, dropout, dropout_shared_axes, 2048,
               mode, ff_activation)
    return _encoder_block(h, h.mode)


def _encoder_block(h, mode):
    return [
        nn.Residual(
            nn.LayerNorm(),
            nn.Attention(h.d_model, n_heads=h.n_heads, dropout=h.dropout, mode=mode),
            h.dropout_layer(mode),
        ),
        h.residual_feed_forward(mode),
    ]


def DecoderBlock(d_model, d_ff, n_heads, dropout, dropout_shared_axes, mode, ff_activation,
                 max_inference_length=2048):
    """Trax's decoder block: activations to activations, each position seeing only the past.

    Two residual layers: ``LayerNorm, CausalAttention, Dropout`` and
    ``LayerNorm, FeedForwardBlock, Dropout``.
    """
    h = _Hyper("DecoderBlock", d_model, d_ff, n_heads, dropout, dropout_shared_axes,
               max_inference_length, mode, ff_activation)
    return _decoder_block(h)


def _causal_attention(h):
    return nn.CausalAttention(h.d_model, n_heads=h.n_heads, dropout=h.dropout,
                              max_inference_length=h.max_len, mode=h.mode)


def _decoder_block(h):
    return [
        nn.Residual(nn.LayerNorm(), _causal_attention(h), h.dropout_layer()),
        h.residual_feed_forward(),
    ]


def EncoderDecoderBlock(d_model, d_ff, n_heads, dropout, dropout_shared_axes, mode,
                        ff_activation, max_inference_length=2048):
    """Trax's encoder-decoder block: ``(vec_d, mask, vec_e)`` to the same triple.

    Causal self-attention over the decoder activations, attention from the
    decoder (queries) to the encoder output (keys and values, projected once
    and cached in ``'predict'`` mode), and the feed-forward block; each in a
    residual ``LayerNorm, ..., Dropout``.
    """
    h = _Hyper("EncoderDecoderBlock", d_model, d_ff, n_heads, dropout, dropout_shared_axes,
               max_inference_length, mode, ff_activation)
    return _encoder_decoder_block(h)


def _encoder_decoder_block(h):
    return [                                   # vec_d masks vec_e
        nn.Residual(nn.LayerNorm(), _causal_attention(h), h.dropout_layer()),
        nn.Residual(
            nn.LayerNorm(),
            nn.Select([0, 2, 2, 1, 2]),        # vec_d vec_e vec_e masks vec_e
            nn.AttentionQKV(h.d_model, n_heads=h.n_heads, dropout=h.dropout, mode=h.mode,
                            cache_KV_in_predict=True),   # vec_d masks vec_e
            h.dropout_layer(),
        ),
        h.residual_feed_forward(),
    ]


def TransformerEncoder(vocab_size, n_classes=10, d_model=512, d_ff=2048, n_layers=6, n_heads=8,
                       max_len=2048, dropout=0.1, dropout_shared_axes=None, mode="train",
                       ff_activation=nn.Relu):
    """A Transformer encoder for N-way classification of token sequences.

    Maps token ids ``(batch, length)`` (0 is padding, which attention
    ignores) to raw logits ``(batch, n_classes)``: embedding, dropout,
    positional encoding, `n_layers` encoder blocks, LayerNorm, the mean over
    positions and ``Dense(n_classes)``. In ``'train'`` mode dropout is
    active: call the model with `pax_trax.purecall`.

    >>> import jax, numpy as np
    >>> model = TransformerEncoder(20, n_classes=3, d_model=8, d_ff=16, n_layers=1,
    ...                            n_heads=2, mode='eval')
    >>> model = model.init(np.zeros((2, 5), np.int32), jax.random.PRNGKey(0))
    >>> model(np.ones((2, 5), np.int32)).shape
    (2, 3)
    """
    name = "TransformerEncoder"
    vocab_size = args.positive_int(vocab_size, "vocab_size", name)
    n_classes = args.positive_int(n_classes, "n_classes", name)
    n_layers = args.non_negative_int(n_layers, "n_layers", name)
    h = _Hyper(name, d_model, d_ff, n_heads, dropout, dropout_shared_axes, max_len, mode,
               ff_activation)
    return nn.Serial(                             # toks
        nn.Branch([], nn.PaddingMask()),          # toks masks
        nn.Embedding(vocab_size, h.d_model),      # vecs masks
        h.dropout_layer(),
        nn.PositionalEncoding(max_len=h.max_len),
        [_encoder_block(h, h.mode) for _ in range(n_layers)],
        nn.Select([0], n_in=2),                   # vecs
        nn.LayerNorm(),
        nn.Mean(axis=1),
        nn.Dense(n_classes),                      # logits
    )


def TransformerDecoder(vocab_size=None, d_model=512, d_ff=2048, n_layers=6, n_heads=8,
                       max_len=2048, dropout=0.1, dropout_shared_axes=None, mode="train",
                       ff_activation=nn.Relu):
    """A Transformer decoder: causal attention, no shift of the input.

    With `vocab_size`, maps token ids ``(batch, length)`` to activations
    ``(batch, length, d_model)``; with ``vocab_size=None``, maps activation
    vectors ``(batch, length, d)`` (projected by ``Dense(d_model)``) to
    activations. The output at position t depends on inputs up to and
    including t.

    >>> import jax, numpy as np
    >>> model = TransformerDecoder(20, d_model=8, d_ff=16, n_layers=1, n_heads=2, mode='eval')
    >>> model.init(np.zeros((2, 5), np.int32))(np.ones((2, 5), np.int32)).shape
    (2, 5, 8)
    """
    name = "TransformerDecoder"
    if vocab_size is not None:
        vocab_size = args.positive_int(vocab_size, "vocab_size", name)
    n_layers = args.non_negative_int(n_layers, "n_layers", name)
    h = _Hyper(name, d_model, d_ff, n_heads, dropout, dropout_shared_axes, max_len, mode,
               ff_activation)
    embedder = (nn.Embedding(vocab_size, h.d_model) if vocab_size is not None
                else nn.Dense(h.d_model))
    return nn.Serial(
        embedder,
        h.dropout_layer(),
        nn.PositionalEncoding(max_len=h.max_len, mode=h.mode),
        [_decoder_block(h) for _ in range(n_layers)],
        nn.LayerNorm(),
    )


def TransformerLM(vocab_size, d_model=512, d_ff=2048, n_layers=6, n_heads=8, max_len=2048,
                  dropout=0.1, dropout_shared_axes=None, mode="train", ff_activation=nn.Relu):
    """A Transformer language model: token ids ``(batch, length)`` to logits ``(batch, length, vocab)``.

    The input is shifted right (a 0 is prepended), embedded, dropped out and
    position-encoded, then run through `n_layers` decoder blocks, LayerNorm
    and ``Dense(vocab_size)``; the logits at position t predict token t from
    the tokens before it. In ``'predict'`` mode there is no shift and the
    model keeps caches in state: feed ``0, x_0, x_1, ...`` one token per call
    with `pax_trax.purecall`, or use `pax_trax.supervised.decoding`.

    >>> import jax, numpy as np
    >>> lm = TransformerLM(20, d_model=8, d_ff=16, n_layers=1, n_heads=2, mode='eval')
    >>> lm = lm.init(np.zeros((2, 5), np.int32), jax.random.PRNGKey(0))
    >>> lm(np.ones((2, 5), np.int32)).shape
    (2, 5, 20)
    """
    name = "TransformerLM"
    vocab_size = args.positive_int(vocab_size, "vocab_size", name)
    n_layers = args.non_negative_int(n_layers, "n_layers", name)
    h = _Hyper(name, d_model, d_ff, n_heads, dropout, dropout_shared_axes, max_len, mode,
               ff_activation)
    return nn.Serial(
        nn.ShiftRight(mode=h.mode),
        nn.Embedding(vocab_size, h.d_model),
        h.dropout_layer(),
        nn.PositionalEncoding(max_len=h.max_len, mode=h.mode),
        [_decoder_block(h) for _ in range(n_layers)],
        nn.LayerNorm(),
        nn.Dense(vocab_size),
    )


def Transformer(input_vocab_size, output_vocab_size=None, d_model=512, d_ff=2048,
                n_encoder_layers=6, n_decoder_layers=6, n_heads=8, max_len=2048, dropout=0.1,
                dropout_shared_axes=None, mode="train", ff_activation=nn.Relu):
    """An encoder-decoder Transformer: ``(source, target)`` tokens to ``(logits, target)``.

    The encoder embeds the source (0 is padding), adds positions and runs
    `n_encoder_layers` encoder blocks; the decoder shifts the target right,
    embeds it and runs `n_decoder_layers` blocks of causal self-attention,
    attention to the encoder output and feed-forward; ``Dense(output_vocab_size)``
    gives logits ``(batch, target_length, output_vocab_size)``. The target is
    passed through as the second output (for the loss), as in Trax. With
    ``output_vocab_size=None`` source and target share one vocabulary and one
    embedding table.

    In ``'predict'`` mode the model is called with ``(source, target_tokens)``
    where the target tokens are the newest (start with 0): the encoder runs
    on the first call only and its output, and the cross-attention key/value
    projections, stay in state.

    >>> import jax, numpy as np
    >>> model = Transformer(20, d_model=8, d_ff=16, n_encoder_layers=1, n_decoder_layers=1,
    ...                     n_heads=2, mode='eval')
    >>> source, target = np.ones((2, 6), np.int32), np.ones((2, 4), np.int32)
    >>> model = model.init((source, target), jax.random.PRNGKey(0))
    >>> logits, tokens = model((source, target))
    >>> logits.shape
    (2, 4, 20)
    """
    name = "Transformer"
    input_vocab_size = args.positive_int(input_vocab_size, "input_vocab_size", name)
    shared_embedding = output_vocab_size is None
    output_vocab_size = input_vocab_size if shared_embedding else args.positive_int(
        output_vocab_size, "output_vocab_size", name)
    n_encoder_layers = args.non_negative_int(n_encoder_layers, "n_encoder_layers", name)
    n_decoder_layers = args.non_negative_int(n_decoder_layers, "n_decoder_layers", name)
    h = _Hyper(name, d_model, d_ff, n_heads, dropout, dropout_shared_axes, max_len, mode,
               ff_activation)
    # The encoder runs on the whole source at once, never step by step.
    encoder_mode = "eval" if h.mode == "predict" else h.mode
    encoder = nn.Serial(
        nn.Embedding(input_vocab_size, h.d_model),
        h.dropout_layer(encoder_mode),
        nn.PositionalEncoding(max_len=h.max_len, mode=encoder_mode),
        [_encoder_block(h, encoder_mode) for _ in range(n_encoder_layers)],
        nn.LayerNorm(),
    )
    model = nn.Serial(
        nn.Select([0, 1, 1]),                    # tok_e tok_d tok_d
        nn.Branch([], nn.PaddingMask()),         # tok_e masks tok_d tok_d
        nn.Cache(encoder, mode=h.mode),          # vec_e masks tok_d tok_d
        nn.Select([2, 1, 0]),                    # tok_d masks vec_e tok_d
        nn.ShiftRight(mode=h.mode),
        nn.Embedding(output_vocab_size, h.d_model),   # vec_d masks vec_e tok_d
        h.dropout_layer(),
        nn.PositionalEncoding(max_len=h.max_len, mode=h.mode),
        nn.Branch([], nn.EncoderDecoderMask()),  # vec_d masks vec_e tok_d
        [_encoder_decoder_block(h) for _ in range(n_decoder_layers)],
        nn.LayerNorm(),
        nn.Select([0], n_in=3),                  # vec_d tok_d
        nn.Dense(output_vocab_size),             # logits tok_d
    )
    if not shared_embedding:
        return model
    return nn.Shared(model, source=lambda m: m[2].layer[0].w, target=lambda m: m[5].w,
                     name="Transformer")
