"""`Module.init_from_file`: pax_trax checkpoints and Trax 1.4.1 checkpoints of whole models.

The Trax files and the outputs Trax computed from them are in trax_fixtures/
(made by trax_fixtures/make_fixtures.py in a Trax 1.4.1 virtualenv).
"""

import io
import os

import jax
import numpy as np
import optax
import pytest

import pax_trax
from pax_trax import nn
from pax_trax.shapes import ShapeDtype
from pax_trax.supervised import checkpoints, training
from pax_trax.supervised import trax_checkpoints as tc

FIXTURES = os.path.join(os.path.dirname(__file__), "trax_fixtures")


def fixture(*parts):
    return os.path.join(FIXTURES, *parts)


def assert_trees_equal(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def assert_trees_differ(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert any(not np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


# ---------------------------------------------------------------------------
# pax_trax checkpoints


def batches(seed, batch_size=8):
    rng = np.random.default_rng(seed)
    while True:
        y = rng.integers(0, 2, size=batch_size)
        x = (rng.normal(size=(batch_size, 4)) + (2 * y[:, None] - 1)).astype(np.float32)
        yield x, y.astype(np.int32), np.ones(batch_size, np.float32)


def classifier(mode="train"):
    return nn.Serial(nn.Dense(8), nn.BatchNorm(axis=(0,), mode=mode), nn.Relu(),
                     nn.Dropout(0.1, mode=mode), nn.Dense(2))


@pytest.fixture(scope="module")
def loop_checkpoint(tmp_path_factory):
    """A checkpoint written by pax_trax's Loop after 2 steps, and the trained model."""
    out = tmp_path_factory.mktemp("loop")
    task = training.TrainTask(batches(0), nn.WeightedCategoryCrossEntropy(), optax.adam(0.05),
                              n_steps_per_checkpoint=2)
    loop = training.Loop(classifier(), task, output_dir=str(out), random_seed=1,
                         stdout=io.StringIO())
    loop.run(2)
    return checkpoints.checkpoint_path(str(out)), loop.model


SIG = ShapeDtype((8, 4), np.float32)


def test_loads_loop_checkpoint_weights_and_state(loop_checkpoint):
    path, trained = loop_checkpoint
    loaded = classifier().init_from_file(path, input_signature=SIG)
    assert_trees_equal(loaded, trained)
    assert int(loaded.sublayers[1].n_batches) == 2


def test_weights_only_keeps_the_modules_state(loop_checkpoint, getkey):
    path, trained = loop_checkpoint
    fresh = classifier("eval").init(SIG, getkey())
    loaded = fresh.init_from_file(path, weights_only=True)
    assert_trees_equal(loaded.parameters(), trained.parameters())
    assert_trees_equal(loaded.states(), fresh.states())  # statistics and RNG keys kept
    assert_trees_differ(loaded.states(), trained.states())
    assert loaded.sublayers[1].mode == "eval"  # static fields come from the module


def test_module_file_and_mismatches(tmp_path, getkey):
    model = nn.Serial(nn.Dense(3), nn.Relu(), nn.Dense(2)).init(SIG, getkey())
    path = tmp_path / "model.ckpt"
    checkpoints.save_module(path, model)
    loaded = nn.Serial(nn.Dense(3), nn.Relu(), nn.Dense(2)).init_from_file(path, input_signature=SIG)
    assert_trees_equal(loaded, model)
    wider = nn.Serial(nn.Dense(5), nn.Relu(), nn.Dense(2)).init(SIG)
    with pytest.raises(checkpoints.CheckpointError, match=r"\.layers\[0\]\.w.*\(4, 3\).*\(4, 5\)"):
        wider.init_from_file(path, weights_only=True)
    with pytest.raises(checkpoints.CheckpointError, match=r"layers\[0\]\.w"):
        wider.init_from_file(path)
    deeper = nn.Serial(nn.Dense(3), nn.Relu(), nn.Dense(2), nn.Dense(2)).init(SIG)
    with pytest.raises(checkpoints.CheckpointError, match=r"no parameter \.layers\[3\]\.w"):
        deeper.init_from_file(path, weights_only=True)
    shallower = nn.Serial(nn.Dense(3), nn.Relu()).init(SIG)
    with pytest.raises(checkpoints.CheckpointError, match=r"leaves the model lacks: \.layers\[2\]"):
        shallower.init_from_file(path, weights_only=True)


def test_uninitialized_module_needs_a_signature(loop_checkpoint):
    path, _ = loop_checkpoint
    with pytest.raises(ValueError, match=r"Serial is not initialized and .* holds no input "
                                         r"signature; pass input_signature="):
        classifier().init_from_file(path)


def test_predict_caches_survive_weights_only(tmp_path, getkey):
    def lm(mode):
        return nn.Serial(nn.Embedding(11, 8), nn.PositionalEncoding(max_len=6, mode=mode),
                         nn.CausalAttention(8, n_heads=2, max_inference_length=6, mode=mode),
                         nn.Dense(11))

    trained = lm("eval").init(np.zeros((1, 6), np.int32), getkey())
    path = tmp_path / "lm.ckpt"
    checkpoints.save_module(path, trained)
    tokens = np.array([[3, 1, 4, 1, 5, 9]], np.int32)
    expected = trained(tokens)

    decoder = lm("predict").init(np.zeros((1, 1), np.int32), getkey())
    decoder = decoder.init_from_file(path, weights_only=True)
    step = jax.jit(pax_trax.purecall)
    steps = []
    for i in range(tokens.shape[1]):
        decoder, out = step(decoder, tokens[:, i:i + 1])
        steps.append(out)
    np.testing.assert_allclose(np.concatenate(steps, axis=1), expected, rtol=1e-5, atol=1e-5)
    # The caches (state) are filled now; loading weights keeps them, loading all does not fit.
    reloaded = decoder.init_from_file(path, weights_only=True)
    assert int(reloaded.sublayers[1].position) == 6
    with pytest.raises(checkpoints.CheckpointError, match="cache"):
        decoder.init_from_file(path)
    # A file saved with filled caches loads weights-only into an eval model too.
    checkpoints.save_module(tmp_path / "decoder.ckpt", decoder)
    back = lm("eval").init_from_file(tmp_path / "decoder.ckpt", weights_only=True,
                                     input_signature=np.zeros((1, 6), np.int32))
    np.testing.assert_allclose(back(tokens), expected, rtol=1e-6)


def test_file_format_errors(tmp_path):
    model = nn.Dense(2).init(SIG)
    with pytest.raises(FileNotFoundError, match="no such file"):
        model.init_from_file(tmp_path / "missing.ckpt")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world")
    with pytest.raises(ValueError, match="neither a pax_trax checkpoint"):
        model.init_from_file(junk)
    with pytest.raises(TypeError, match="expects a pax_trax Module"):
        from pax_trax.supervised.weights_file import init_from_file
        init_from_file("not a module", junk)


# ---------------------------------------------------------------------------
# Trax 1.4.1 checkpoints of models


def trax_reference(name):
    inputs = [np.load(fixture(name, f)) for f in sorted(os.listdir(fixture(name)))
              if f.startswith("input")]
    return inputs, np.load(fixture(name, "output.npy"))


def first(out):
    return out[0] if isinstance(out, tuple) else out


def test_trax_mlp_checkpoint():
    from pax_trax.models.mlp import MLP

    (x,), expected = trax_reference("mlp")
    model = MLP(layer_widths=(16, 8, 3), mode="eval").init_from_file(
        fixture("mlp", "model.pkl.gz"))
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-5)
    # The weights file alone (a gzipped .npy sequence) gives the same model.
    alone = MLP(layer_widths=(16, 8, 3), mode="eval").init_from_file(
        fixture("mlp", "model.weights.npy.gz"), input_signature=x)
    assert_trees_equal(alone, model)


@pytest.mark.parametrize("name", ["rnnlm", "grulm"])
def test_trax_rnn_language_models(name):
    from pax_trax.models import rnn

    (x,), expected = trax_reference(name)
    if name == "rnnlm":
        model = rnn.RNNLM(32, d_model=8, n_layers=2, mode="eval")
    else:
        model = rnn.GRULM(32, d_model=8, n_layers=1, mode="eval")
    model = model.init_from_file(fixture(name, "model.pkl.gz"), weights_only=True)
    np.testing.assert_allclose(first(model(x)), expected, rtol=1e-5, atol=1e-5)


def test_trax_checkpoint_into_a_different_model_names_the_layer():
    from pax_trax.models.mlp import MLP

    with pytest.raises(tc.TraxCheckpointError,
                       match=r"Cannot load the Trax weights of .*rnnlm/model.pkl.gz into Serial: "
                             r"Serial\[1\]/Dense_16\.w expects shape \(6, 16\), the file has "
                             r"\(32, 8\)\. \(weight 0 of the file's flat list\)"):
        MLP(layer_widths=(16, 8, 3)).init_from_file(
            fixture("mlp", "model.pkl.gz"), input_signature=ShapeDtype((4, 6), np.float32)
        ).init_from_file(fixture("rnnlm", "model.pkl.gz"))
