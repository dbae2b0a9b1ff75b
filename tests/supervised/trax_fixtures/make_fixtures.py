"""Writes the Trax 1.4.1 reference checkpoints used by the pax_trax tests.

This script runs in a separate virtualenv that has Trax 1.4.1 installed (see
README.md in this directory for the exact recipe); pax_trax itself never
imports Trax. For each tiny model it

* trains 2 steps with Trax's own ``training.Loop`` and keeps the checkpoint it
  writes (``model.pkl.gz`` plus ``model.weights.npy.gz``; the optimizer slots
  are left out to keep the fixtures small),
* loads that checkpoint into the same model in ``'eval'`` mode with Trax's
  ``init_from_file`` and saves a fixed input and the outputs Trax computes on
  it (``input*.npy``, ``output.npy``),
* for language models, also decodes the input one token at a time in
  ``'predict'`` mode and saves those outputs (``predict_output.npy``).

The ``layers_*`` fixtures are compositions of ``trax.layers`` saved as a
gzipped pickle of the nested weights tree (``weights.pkl.gz``) or as an old
style checkpoint dict with the flat weights inside the pickle.

Nothing here runs on import (pytest imports every module with
``--doctest-modules``); run it as a script::

    /tmp/trax_venv/bin/python tests/supervised/trax_fixtures/make_fixtures.py
"""

import gzip
import os
import pickle
import shutil
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = 32
SEQ_LEN = 8


def _token_batches(seed, batch=2, length=SEQ_LEN, n_streams=1):
    rng = np.random.RandomState(seed)
    while True:
        xs = [rng.randint(1, VOCAB, size=(batch, length)).astype(np.int32)
              for _ in range(n_streams)]
        weights = np.ones((batch, length), np.float32)
        if n_streams == 1:
            yield xs[0], xs[0], weights
        else:  # (source, target, weights): Transformer copies the target for the loss
            yield (*xs, weights)


def _classification_batches(seed, shape, n_classes, batch=4):
    rng = np.random.RandomState(seed)
    while True:
        x = rng.normal(size=(batch,) + shape).astype(np.float32)
        y = rng.randint(0, n_classes, size=(batch,)).astype(np.int32)
        yield x, y, np.ones((batch,), np.float32)


def _train_and_save(name, model, batches):
    """Trains 2 steps with Trax's Loop; copies its checkpoint into fixtures/name."""
    from trax import layers as tl
    from trax import optimizers
    from trax.supervised import training

    out_dir = tempfile.mkdtemp(prefix=f"trax_{name}_")
    task = training.TrainTask(batches, tl.WeightedCategoryCrossEntropy(),
                              optimizers.Adam(0.01), n_steps_per_checkpoint=2)
    eval_task = training.EvalTask(batches, [tl.WeightedCategoryCrossEntropy()],
                                  n_eval_batches=1)
    loop = training.Loop(model, [task], eval_tasks=[eval_task], output_dir=out_dir,
                         random_seed=0)
    loop.run(2)
    target = os.path.join(HERE, name)
    os.makedirs(target, exist_ok=True)
    for fname in ("model.pkl.gz", "model.weights.npy.gz"):
        shutil.copy(os.path.join(out_dir, fname), os.path.join(target, fname))
    shutil.rmtree(out_dir)
    return os.path.join(target, "model.pkl.gz")


def _save_arrays(name, **arrays):
    for key, value in arrays.items():
        np.save(os.path.join(HERE, name, f"{key}.npy"), np.asarray(value), allow_pickle=False)


def _eval_outputs(make_model, ckpt, inputs, weights_only=True):
    model = make_model("eval")
    model.init_from_file(ckpt, weights_only=weights_only)
    out = model(inputs)
    if isinstance(out, (tuple, list)):
        out = out[0]
    return np.asarray(out)


def _predict_outputs(make_model, ckpt, tokens, extra_inputs=()):
    """Feeds `tokens` one position per call to the model in 'predict' mode."""
    from trax import shapes

    model = make_model("predict")
    batch = tokens.shape[0]
    step_sig = shapes.ShapeDtype((batch, 1), np.int32)
    sig = tuple(shapes.signature(x) for x in extra_inputs) + (step_sig,)
    model.init_from_file(ckpt, weights_only=True,
                         input_signature=sig if extra_inputs else step_sig)
    outs = []
    for i in range(tokens.shape[1]):
        step = tokens[:, i:i + 1]
        out = model((*extra_inputs, step) if extra_inputs else step)
        if isinstance(out, (tuple, list)):
            out = out[0]
        outs.append(np.asarray(out))
    return np.concatenate(outs, axis=1)


def make_transformer_lm():
    import trax

    def make(mode):
        return trax.models.TransformerLM(VOCAB, d_model=16, d_ff=32, n_layers=2, n_heads=2,
                                         max_len=16, mode=mode)

    ckpt = _train_and_save("transformer_lm", make("train"), _token_batches(0))
    x = np.random.RandomState(1).randint(1, VOCAB, size=(2, SEQ_LEN)).astype(np.int32)
    # In 'predict' mode the model sees the shifted input, so feed [0, x[:-1]].
    shifted = np.concatenate([np.zeros((2, 1), np.int32), x[:, :-1]], axis=1)
    _save_arrays("transformer_lm", input=x, output=_eval_outputs(make, ckpt, x),
                 predict_output=_predict_outputs(make, ckpt, shifted))


def make_transformer():
    import trax

    def make(mode):
        return trax.models.Transformer(VOCAB, d_model=16, d_ff=32, n_encoder_layers=2,
                                       n_decoder_layers=2, n_heads=2, max_len=16, mode=mode)

    ckpt = _train_and_save("transformer", make("train"), _token_batches(2, n_streams=2))
    rng = np.random.RandomState(3)
    src = rng.randint(1, VOCAB, size=(2, SEQ_LEN)).astype(np.int32)
    src[1, -2:] = 0  # padding, so the encoder mask matters
    tgt = rng.randint(1, VOCAB, size=(2, SEQ_LEN)).astype(np.int32)
    shifted = np.concatenate([np.zeros((2, 1), np.int32), tgt[:, :-1]], axis=1)
    _save_arrays("transformer", input_source=src, input_target=tgt,
                 output=_eval_outputs(make, ckpt, (src, tgt)),
                 predict_output=_predict_outputs(make, ckpt, shifted, extra_inputs=(src,)))


def make_transformer_encoder():
    import trax

    def make(mode):
        return trax.models.TransformerEncoder(VOCAB, n_classes=3, d_model=16, d_ff=32,
                                              n_layers=1, n_heads=2, max_len=16, mode=mode)

    def batches():
        for x, _, _ in _token_batches(4):
            yield x, (x[:, 0] % 3).astype(np.int32), np.ones((x.shape[0],), np.float32)

    ckpt = _train_and_save("transformer_encoder", make("train"), batches())
    x = np.random.RandomState(5).randint(1, VOCAB, size=(2, SEQ_LEN)).astype(np.int32)
    x[0, -3:] = 0
    _save_arrays("transformer_encoder", input=x, output=_eval_outputs(make, ckpt, x))


def make_mlp():
    import trax

    def make(mode):
        return trax.models.MLP(layer_widths=(16, 8, 3), mode=mode)

    ckpt = _train_and_save("mlp", make("train"), _classification_batches(6, (2, 3), 3))
    x = np.random.RandomState(7).normal(size=(4, 2, 3)).astype(np.float32)
    _save_arrays("mlp", input=x, output=_eval_outputs(make, ckpt, x))


def make_rnnlm():
    import trax

    def make(mode):
        return trax.models.RNNLM(VOCAB, d_model=8, n_layers=2, mode=mode)

    ckpt = _train_and_save("rnnlm", make("train"), _token_batches(8))
    x = np.random.RandomState(9).randint(1, VOCAB, size=(2, SEQ_LEN)).astype(np.int32)
    _save_arrays("rnnlm", input=x, output=_eval_outputs(make, ckpt, x))


def make_grulm():
    import trax

    def make(mode):
        return trax.models.GRULM(VOCAB, d_model=8, n_layers=1, mode=mode)

    ckpt = _train_and_save("grulm", make("train"), _token_batches(10))
    x = np.random.RandomState(11).randint(1, VOCAB, size=(2, SEQ_LEN)).astype(np.int32)
    _save_arrays("grulm", input=x, output=_eval_outputs(make, ckpt, x))


def make_layers_batchnorm():
    """Conv + BatchNorm: after 2 training steps the running statistics are state."""
    from trax import layers as tl

    def make(mode):
        return tl.Serial(tl.Conv(4, (3, 3)), tl.BatchNorm(mode=mode), tl.Relu(),
                         tl.Flatten(), tl.Dense(3))

    ckpt = _train_and_save("layers_batchnorm", make("train"),
                           _classification_batches(12, (5, 5, 2), 3))
    x = np.random.RandomState(13).normal(size=(4, 5, 5, 2)).astype(np.float32)
    _save_arrays("layers_batchnorm", input=x,
                 output=_eval_outputs(make, ckpt, x, weights_only=False),
                 output_weights_only=_eval_outputs(make, ckpt, x, weights_only=True))


def make_layers_attention():
    """Embedding, LayerNorm, CausalAttention, Residual, Dense: nested weights in a pickle."""
    import trax
    from trax import layers as tl
    from trax import shapes
    from trax.supervised import training

    model = tl.Serial(
        tl.Embedding(VOCAB, 8),
        tl.Residual(tl.LayerNorm(), tl.CausalAttention(8, n_heads=2, mode="eval")),
        tl.Residual(tl.LayerNorm(), tl.Dense(16), tl.Relu(), tl.Dense(8)),
        tl.LayerNorm(),
        tl.Dense(5),
    )
    sig = shapes.ShapeDtype((2, SEQ_LEN), np.int32)
    model.init(sig, rng=trax.fastmath.random.get_prng(0))
    target = os.path.join(HERE, "layers_attention")
    os.makedirs(target, exist_ok=True)
    # A pickle of the nested weights tree, as `pickle_to_file(model.weights)` writes.
    training.pickle_to_file(model.weights, os.path.join(target, "weights.pkl.gz"), gzip=True)
    # An old-style checkpoint: flat weights inside the pickle, with a signature.
    flat_weights, flat_state = tl.flatten_weights_and_state(model.weights, model.state)
    checkpoint = {"flat_weights": flat_weights, "flat_state": flat_state,
                  "input_signature": sig, "step": 0}
    with gzip.open(os.path.join(target, "flat_checkpoint.pkl.gz"), "wb") as f:
        pickle.dump(checkpoint, f, protocol=pickle.HIGHEST_PROTOCOL)
    x = np.random.RandomState(14).randint(0, VOCAB, size=(2, SEQ_LEN)).astype(np.int32)
    _save_arrays("layers_attention", input=x, output=np.asarray(model(x)))


def main(names=()):
    makers = (make_layers_attention, make_layers_batchnorm, make_mlp,
              make_transformer_lm, make_transformer, make_transformer_encoder,
              make_rnnlm, make_grulm)
    for make in makers:
        if not names or make.__name__[len("make_"):] in names:
            print("making", make.__name__, flush=True)
            make()


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
