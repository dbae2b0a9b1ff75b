"""Recurrent models, as Trax's `trax.models.rnn`: RNNLM, GRULM and LSTMSeq2SeqAttn.

Each is built from `pax_trax.nn` layers exactly as Trax 1.4.1 builds it, so
the layer tree and the order of the Trax-style `weights` are Trax's.
"""

from __future__ import annotations

import jax.numpy as jnp

from pax_trax import nn
from pax_trax.models import _arguments as args
from pax_trax.nn.base import check_mode

__all__ = ["RNNLM", "GRULM", "LSTMSeq2SeqAttn"]




def RNNLM(vocab_size, d_model=512, n_layers=2, rnn_cell=nn.LSTMCell,
          rnn_cell_d_state_multiplier=2, dropout=0.1, mode="train"):
    """An RNN language model: token ids `(batch, length)` to logits `(batch, length, vocab)`.

    Inputs are shifted right (a 0 is prepended), embedded, dropped out, and
    run through `n_layers` stacked `rnn_cell`s in one `Scan` over the
    sequence; a final `Dense(vocab_size)` gives logits (Trax 1.4.1 has no
    `LogSoftmax` here). As in Trax, `n_layers` must be 2, and the combined
    state of the cells is `n_layers * rnn_cell_d_state_multiplier * d_model`
    wide (2 for `LSTMCell`, whose state is `(c, h)`; use 1 for `GRUCell`).

    In `'train'` mode dropout is active, so the model is called with
    `pax_trax.purecall`. In `'predict'` mode the input is not shifted and the
    scan keeps its state between calls: feeding `0, x_0, x_1, ...` one token
    per call gives the logits that `'eval'` mode gives for `x`.

    >>> [layer.name for layer in RNNLM(vocab_size=20, d_model=8).sublayers]
    ['ShiftRight(1)', 'Embedding_20_8', 'Dropout', 'Branch', 'Scan', 'Select[0]', 'Dense_20']
    """
    vocab_size = args.positive_int(vocab_size, "vocab_size", "RNNLM")
    d_model = args.positive_int(d_model, "d_model", "RNNLM")
    check_mode(mode, "RNNLM")
    if n_layers != 2:
        raise ValueError(f"RNNLM: the number of layers must be 2 (as in Trax); got {n_layers!r}.")
    multiplier = args.positive_int(rnn_cell_d_state_multiplier, "rnn_cell_d_state_multiplier",
                               "RNNLM")

    def MultiRNNCell():
        """Splits the joint state, runs the cells in series, joins their states."""
        return nn.Serial(
            nn.Parallel([], nn.Split(n_items=n_layers)),
            nn.SerialWithSideOutputs([rnn_cell(n_units=d_model) for _ in range(n_layers)]),
            nn.Parallel([], nn.Concatenate(n_items=n_layers)),
        )

    zero_state = nn.MakeZeroState(depth_multiplier=n_layers * multiplier)
    return nn.Serial(
        nn.ShiftRight(mode=mode),
        nn.Embedding(vocab_size, d_model),
        nn.Dropout(rate=dropout, mode=mode),
        nn.Branch([], zero_state),
        nn.Scan(MultiRNNCell(), axis=1, mode=mode),
        nn.Select([0], n_in=2),  # Drop the RNN state.
        nn.Dense(vocab_size),
    )


def GRULM(vocab_size=256, d_model=512, n_layers=1, mode="train"):
    """A GRU language model: token ids `(batch, length)` to logits `(batch, length, vocab)`.

    `Serial(ShiftRight, Embedding, GRU x n_layers, Dense(vocab_size))`, as in
    Trax. In `'predict'` mode the input is not shifted and each GRU keeps its
    state between calls (feed one token per call with `pax_trax.purecall`).

    >>> [layer.name for layer in GRULM(vocab_size=20, d_model=8, n_layers=2).sublayers]
    ['ShiftRight(1)', 'Embedding_20_8', 'GRU_8', 'GRU_8', 'Dense_20']
    """
    vocab_size = args.positive_int(vocab_size, "vocab_size", "GRULM")
    d_model = args.positive_int(d_model, "d_model", "GRULM")
    n_layers = args.non_negative_int(n_layers, "n_layers", "GRULM")
    check_mode(mode, "GRULM")
    return nn.Serial(
        nn.ShiftRight(mode=mode),
        nn.Embedding(vocab_size, d_model),
        [nn.GRU(d_model, mode=mode) for _ in range(n_layers)],
        nn.Dense(vocab_size),
    )


def _prepare_attention_inputs(encoder_activations, decoder_activations, input_tokens):
    keys = values = encoder_activations
    queries = decoder_activations
    # The mask is 1 where the input is not padding (0) and 0 where it is, with
    # axes added for heads and decoder length: (batch, 1, decoder_len, encoder_len).
    mask = (input_tokens != 0)
    mask = jnp.reshape(mask, (mask.shape[0], 1, 1, mask.shape[1]))
    mask = mask + jnp.zeros((1, 1, decoder_activations.shape[1], 1))
    return queries, keys, values, mask.astype(jnp.float32)


def LSTMSeq2SeqAttn(input_vocab_size=256, target_vocab_size=256, d_model=512,
                    n_encoder_layers=2, n_decoder_layers=2, n_attention_heads=1,
                    attention_dropout=0.0, mode="train"):
    """An LSTM encoder-decoder with attention: (source, target) ids to (log-probs, target).

    The encoder (embedding and `n_encoder_layers` LSTMs) runs on the source
    tokens and gives keys and values; the pre-attention decoder (shift right,
    embedding, one LSTM) runs on the target tokens and gives queries;
    `AttentionQKV` (masking source padding, id 0) is added residually to the
    queries; `n_decoder_layers` LSTMs, `Dense(target_vocab_size)` and
    `LogSoftmax` follow. The target tokens are passed through as the second
    output, as in Trax, so a loss layer can take (log-probs, targets, weights).

    As in Trax, the encoder's LSTMs are built in `'train'` mode whatever
    `mode` is (they have no dropout, so this changes nothing but the mode
    label). In `'predict'` mode the decoder keeps its LSTM states and the
    attention keeps its key/value projections between calls, so the target
    can be fed one token per call (with the whole source on every call).

    >>> model = LSTMSeq2SeqAttn(input_vocab_size=20, target_vocab_size=30, d_model=8)
    >>> model.n_in, model.n_out, model.sublayers[-2].name
    (2, 2, 'Dense_30')
    """
    model = "LSTMSeq2SeqAttn"
    input_vocab_size = args.positive_int(input_vocab_size, "input_vocab_size", model)
    target_vocab_size = args.positive_int(target_vocab_size, "target_vocab_size", model)
    d_model = args.positive_int(d_model, "d_model", model)
    n_encoder_layers = args.non_negative_int(n_encoder_layers, "n_encoder_layers", model)
    n_decoder_layers = args.non_negative_int(n_decoder_layers, "n_decoder_layers", model)
    check_mode(mode, model)

    input_encoder = nn.Serial(
        nn.Embedding(input_vocab_size, d_model),
        [nn.LSTM(d_model) for _ in range(n_encoder_layers)],
    )
    pre_attention_decoder = nn.Serial(
        nn.ShiftRight(mode=mode),
        nn.Embedding(target_vocab_size, d_model),
        nn.LSTM(d_model, mode=mode),
    )
    prepare_attention_inputs = nn.Fn("PrepareAttentionInputs", _prepare_attention_inputs,
                                     n_out=4)

    return nn.Serial(                  # in-toks, target-toks
        nn.Select([0, 1, 0, 1]),       # in-toks, target-toks, in-toks, target-toks
        nn.Parallel(input_encoder, pre_attention_decoder),
        prepare_attention_inputs,      # q, k, v, mask, target-toks
        nn.Residual(
            nn.AttentionQKV(d_model, n_heads=n_attention_heads, dropout=attention_dropout,
                            mode=mode, cache_KV_in_predict=True)
        ),                             # decoder-vecs, mask, target-toks
        nn.Select([0, 2]),             # decoder-vecs, target-toks
        [nn.LSTM(d_model, mode=mode) for _ in range(n_decoder_layers)],
        nn.Dense(target_vocab_size),
        nn.LogSoftmax(),
    )
