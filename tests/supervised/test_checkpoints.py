"""Tests of pax_trax.supervised.checkpoints: safe format, exact round trips, atomic writes."""

import functools
import io
import json
import os
import pathlib
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pax_trax
from pax_trax import nn
from pax_trax.supervised import checkpoints as ckpt
from pax_trax.supervised.checkpoints import CheckpointError

X = np.linspace(-1, 1, 15, dtype=np.float32).reshape(3, 5)


def make_model(width=2, key=0, extra_layer=False):
    layers = [nn.Dense(4), nn.BatchNorm(axis=(0,)), nn.Dropout(0.5)]
    if extra_layer:
        layers.append(nn.Dense(4))
    layers.append(nn.Dense(width))
    return nn.Serial(*layers).init(X, jax.random.PRNGKey(key))


def loss_fn(params, model, x, y):
    model, out = pax_trax.purecall(model.update_parameters(params), x)
    return jnp.mean((out - y) ** 2), model


def make_step(tx):
    @jax.jit
    def step(model, opt_state, x, y):
        params = model.parameters()
        (loss, model), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, model, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return model.update_parameters(optax.apply_updates(params, updates)), opt_state, loss

    return step


def batch(position):
    """The data stream: batch `position` is a pure function of the position."""
    rng = np.random.default_rng(position)
    return rng.normal(size=(3, 5)).astype(np.float32), rng.normal(size=(3, 2)).astype(np.float32)


@functools.lru_cache(maxsize=None)
def trained_tree():
    tx = optax.adam(1e-2)
    model = make_model()
    opt_state = tx.init(model.parameters())
    step = make_step(tx)
    for i in range(2):
        model, opt_state, _ = step(model, opt_state, *batch(i))
    return {
        "model": model,
        "opt_state": opt_state,
        "key": jax.random.key(3),
        "rbg_key": jax.random.split(jax.random.key(4, impl="rbg"), 2),
        "raw_key": jax.random.PRNGKey(5),
        "bf16": jnp.arange(6, dtype=jnp.bfloat16).reshape(2, 3) / 7,
        "ints": np.arange(-3, 3, dtype=np.int8),
        "f64": np.array([np.pi, -0.0, np.inf]),
        "scalars": (7, 0.1, True, np.float32(2.5)),
        "nothing": None,
        "list": [jnp.zeros((0, 3)), jnp.uint32(2**32 - 1)],
    }


def template_like(tree):
    """A fresh template of the same structure with different values."""
    tx = optax.adam(1e-2)
    model = make_model(key=99)
    return {
        "model": model,
        "opt_state": tx.init(model.parameters()),
        "key": jax.random.key(0),
        "rbg_key": jax.random.split(jax.random.key(0, impl="rbg"), 2),
        "raw_key": jax.random.PRNGKey(0),
        "bf16": jnp.zeros((2, 3), jnp.bfloat16),
        "ints": np.zeros(6, np.int8),
        "f64": np.zeros(3),
        "scalars": (0, 0.0, False, np.float32(0)),
        "nothing": None,
        "list": [jnp.ones((0, 3)), jnp.uint32(0)],
    }


def bits(x):
    """A leaf as raw bytes plus its dtype, so that equality is bit-for-bit."""
    if isinstance(x, (bool, int, float)):
        return type(x), repr(x)
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return str(x.dtype), str(jax.random.key_impl(x)), bits(jax.random.key_data(x))
    a = np.asarray(x)
    return type(x).__name__ if isinstance(x, np.generic) else "array", str(a.dtype), \
        a.shape, a.tobytes()


def assert_same_tree(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    la = jax.tree_util.tree_leaves_with_path(a)
    lb = jax.tree_util.tree_leaves_with_path(b)
    assert [p for p, _ in la] == [p for p, _ in lb]
    for (p, x), (_, y) in zip(la, lb):
        assert bits(x) == bits(y), jax.tree_util.keystr(p)


def test_round_trip_is_bit_exact(tmp_path):
    tree = trained_tree()
    assert int(tree["opt_state"][0].count) == 2
    assert int(tree["model"].layers[1].n_batches) == 2
    meta = {"step": 2, "data_position": 2, "history": {"loss": [1.5, float("nan")]},
            "np_scalar": np.float32(0.25)}
    path = tmp_path / "model.ckpt"
    ckpt.save_checkpoint(path, tree, meta)
    like = template_like(tree)
    assert jax.tree_util.tree_structure(like) == jax.tree_util.tree_structure(tree)
    loaded, got_meta = ckpt.load_checkpoint(path, like)
    assert_same_tree(loaded, tree)
    assert got_meta["step"] == 2 and got_meta["data_position"] == 2
    assert got_meta["history"]["loss"][0] == 1.5 and np.isnan(got_meta["history"]["loss"][1])
    assert got_meta["np_scalar"] == 0.25
    assert ckpt.read_metadata(path) == got_meta or np.isnan(ckpt.read_metadata(
        path)["history"]["loss"][1])
    # Leaves are JAX arrays where the template had JAX arrays, numpy where numpy.
    assert isinstance(loaded["model"].layers[0].w, jax.Array)
    assert isinstance(loaded["f64"], np.ndarray) and loaded["f64"].dtype == np.float64
    assert isinstance(loaded["scalars"][3], np.float32)
    assert loaded["opt_state"][0].count.dtype == jnp.int32
    # The restored model computes what the saved one computes.
    np.testing.assert_array_equal(loaded["model"].eval()(X), tree["model"].eval()(X))
    # Typed keys still work as keys.
    np.testing.assert_array_equal(jax.random.normal(loaded["key"], (3,)),
                                  jax.random.normal(tree["key"], (3,)))


def test_template_of_shape_dtype_structs(tmp_path):
    full = trained_tree()
    keep = ("model", "opt_state", "key", "rbg_key", "raw_key", "bf16")
    tree = {k: full[k] for k in keep}
    ckpt.save_checkpoint(tmp_path / "c.ckpt", tree)
    # A template from abstract evaluation: no weights are computed to load a checkpoint.
    abstract = jax.eval_shape(lambda: {k: v for k, v in template_like(full).items() if k in keep})
    assert all(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree_util.tree_leaves(abstract))
    loaded, meta = ckpt.load_checkpoint(tmp_path / "c.ckpt", abstract)
    assert meta is None
    assert_same_tree(loaded, tree)


def test_file_is_a_zip_of_npy_arrays_and_a_json_manifest(tmp_path):
    tree = trained_tree()
    path = tmp_path / "model.ckpt"
    ckpt.save_checkpoint(path, tree, {"step": 2})
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
        n = len(manifest["leaves"])
        assert sorted(names) == sorted(["manifest.json"] + [f"leaves/{i}.npy" for i in range(n)])
        assert n == len(jax.tree_util.tree_leaves(tree))
        for i, e in enumerate(manifest["leaves"]):
            with zf.open(f"leaves/{i}.npy") as f:
                arr = np.load(io.BytesIO(f.read()), allow_pickle=False)
            assert arr.dtype.name == e["stored_dtype"] and list(arr.shape) == e["stored_shape"]
    assert manifest["format"] == "pax_trax.checkpoint" and manifest["version"] == 1
    assert manifest["metadata"] == {"step": 2}
    by_path = {e["path"]: e for e in manifest["leaves"]}
    assert by_path["['bf16']"]["dtype"] == "bfloat16"
    assert by_path["['bf16']"]["stored_dtype"] == "uint16"
    assert by_path["['key']"]["key_impl"] == "threefry2x32"
    assert by_path["['key']"]["stored_shape"] == [2]
    assert by_path["['rbg_key']"]["key_impl"] == "rbg"
    assert by_path["['rbg_key']"]["shape"] == [2]
    assert by_path["['opt_state'][0].count"]["dtype"] == "int32"
    assert by_path["['model'].layers[0].w"]["shape"] == [5, 4]
    assert dict(manifest["nodes"])["['model']"] == "Serial"
    assert dict(manifest["nodes"])["['opt_state'][0]"] == "ScaleByAdamState"
    # The manifest never contains reprs of static fields (initializer functions).
    assert "0x" not in json.dumps(manifest["nodes"])
    # Same content, same bytes: the fingerprint and the file are deterministic.
    ckpt.save_checkpoint(tmp_path / "again.ckpt", tree, {"step": 2})
    assert path.read_bytes() == (tmp_path / "again.ckpt").read_bytes()
    assert manifest["fingerprint"] == ckpt.structure_fingerprint(template_like(tree))


def test_fingerprint_ignores_static_fields_but_not_structure(tmp_path):
    m = make_model()
    assert ckpt.structure_fingerprint(m) == ckpt.structure_fingerprint(m.eval())
    assert ckpt.structure_fingerprint(m) == ckpt.structure_fingerprint(make_model(key=5))
    assert ckpt.structure_fingerprint(m) != ckpt.structure_fingerprint(make_model(width=3))
    # A checkpoint saved in training mode loads into an eval-mode model, which keeps eval.
    ckpt.save_module(tmp_path / "m.ckpt", m)
    loaded = ckpt.load_module(tmp_path / "m.ckpt", make_model(key=7).eval())
    assert loaded.layers[2].mode == "eval"
    assert_same_tree(loaded.train(), m)


# ---------------------------------------------------------------------------
# Nothing is executed on load


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def rewrite(src, dst, replace=None, add=None, manifest=None):
    """Copies a checkpoint zip, replacing/adding entries or the manifest."""
    replace = dict(replace or {})
    if manifest is not None:
        replace["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, replace.get(name, zin.read(name)))
        for name, data in (add or {}).items():
            zout.writestr(name, data)


def small_saved(tmp_path):
    tree = {"a": jnp.arange(3.0), "b": np.ones((2, 2), np.int32)}
    path = tmp_path / "good.ckpt"
    ckpt.save_checkpoint(path, tree, {"step": 1})
    return tree, path


def test_object_array_entry_is_refused_without_unpickling(tmp_path):
    tree, good = small_saved(tmp_path)
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    np.save(buf, np.array([RunsCode(marker), 1], dtype=object), allow_pickle=True)
    bad = tmp_path / "bad.ckpt"
    rewrite(good, bad, replace={"leaves/0.npy": buf.getvalue()})
    with pytest.raises(CheckpointError, match=r"leaves/0\.npy \(\['a'\]\).*allow_pickle=False"
                       r".*never hold pickled objects"):
        ckpt.load_checkpoint(bad, tree)
    assert not marker.exists()
    assert issubclass(CheckpointError, ValueError)


def test_raw_pickle_entry_is_refused(tmp_path):
    tree, good = small_saved(tmp_path)
    marker = tmp_path / "pwned"
    bad = tmp_path / "bad.ckpt"
    rewrite(good, bad, replace={"leaves/1.npy": pickle.dumps(RunsCode(marker))})
    with pytest.raises(CheckpointError, match=r"leaves/1\.npy.*not a plain numeric \.npy"):
        ckpt.load_checkpoint(bad, tree)
    assert not marker.exists()


def test_a_pickle_file_is_not_a_checkpoint(tmp_path):
    tree, _ = small_saved(tmp_path)
    marker = tmp_path / "pwned"
    bad = tmp_path / "model.pkl"
    bad.write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(CheckpointError, match="not a valid pax_trax checkpoint: not a zip"):
        ckpt.load_checkpoint(bad, tree)
    with pytest.raises(CheckpointError, match="not a zip"):
        ckpt.read_metadata(bad)
    assert not marker.exists()


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(code="__import__('os')"), r"manifest has fields \['code', "),
    (lambda m: m.pop("fingerprint"), "manifest has fields"),
    (lambda m: m.update(format="pickle"), "format 'pickle'"),
    (lambda m: m.update(version=2), "format version 2; this pax_trax reads version 1"),
    (lambda m: m["leaves"][0].update(loader="pickle"), "leaf entry 0 has fields"),
    (lambda m: m["leaves"][0].update(dtype="object", stored_dtype="object"),
     "unsupported dtype 'object'"),
    (lambda m: m["leaves"][0].update(shape=[4], stored_shape=[4]), "fingerprint does not match"),
    (lambda m: m["leaves"][0].update(kind="pickle"), "unknown kind"),
    (lambda m: m.update(leaves={}), "leaf list is malformed"),
])
def test_malformed_manifest_is_refused(tmp_path, change, message):
    tree, good = small_saved(tmp_path)
    with zipfile.ZipFile(good) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    change(manifest)
    bad = tmp_path / "bad.ckpt"
    rewrite(good, bad, manifest=manifest)
    with pytest.raises(CheckpointError, match=message):
        ckpt.load_checkpoint(bad, tree)


def test_unexpected_entries_are_refused(tmp_path):
    tree, good = small_saved(tmp_path)
    bad = tmp_path / "bad.ckpt"
    rewrite(good, bad, add={"../evil.py": b"import os"})
    with pytest.raises(CheckpointError, match=r"unexpected or missing entries \['\.\./evil"):
        ckpt.load_checkpoint(bad, tree)


def test_entry_that_disagrees_with_manifest_is_refused(tmp_path):
    tree, good = small_saved(tmp_path)
    buf = io.BytesIO()
    np.save(buf, np.arange(3, dtype=np.float64), allow_pickle=False)
    bad = tmp_path / "bad.ckpt"
    rewrite(good, bad, replace={"leaves/0.npy": buf.getvalue()})
    with pytest.raises(CheckpointError, match=r"holds float64\(3,\), the manifest says float32"):
        ckpt.load_checkpoint(bad, tree)


def test_corrupted_or_truncated_file_is_refused(tmp_path):
    tree, good = small_saved(tmp_path)
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("leaves/1.npy")
    # Flip one bit in the last byte of the int32 array's data.
    data[info.header_offset + 30 + len(info.filename) + info.file_size - 1] ^= 1
    (tmp_path / "flipped.ckpt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"leaves/1\.npy.*Bad CRC"):
        ckpt.load_checkpoint(tmp_path / "flipped.ckpt", tree)
    (tmp_path / "cut.ckpt").write_bytes(good.read_bytes()[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a zip"):
        ckpt.load_checkpoint(tmp_path / "cut.ckpt", tree)


def test_big_endian_arrays_round_trip(tmp_path):
    tree = {"be": np.arange(4, dtype=">i4"), "le": np.arange(3, dtype="<f8")}
    ckpt.save_checkpoint(tmp_path / "c.ckpt", tree)
    loaded, _ = ckpt.load_checkpoint(tmp_path / "c.ckpt", tree)
    assert loaded["be"].tolist() == [0, 1, 2, 3] and loaded["be"].dtype == np.int32
    assert loaded["le"].tolist() == [0.0, 1.0, 2.0]


# ---------------------------------------------------------------------------
# Loading into another structure


def saved_training_tree(tmp_path, tx=None, model=None):
    tx = tx or optax.adam(1e-3)
    model = model or make_model()
    path = tmp_path / "model.ckpt"
    ckpt.save_checkpoint(path, {"model": model, "opt_state": tx.init(model.parameters())})
    return path


def like_tree(tx, model):
    return {"model": model, "opt_state": tx.init(model.parameters())}


def test_other_layer_width_names_the_path(tmp_path):
    path = saved_training_tree(tmp_path)
    with pytest.raises(ValueError, match=re.escape(
            "the checkpoint has ['model'].layers[3].w of shape (4, 2) float32 but the "
            "template expects shape (4, 3) float32")):
        ckpt.load_checkpoint(path, like_tree(optax.adam(1e-3), make_model(width=3)))


def test_extra_layer_names_the_path(tmp_path):
    path = saved_training_tree(tmp_path)
    with pytest.raises(ValueError) as info:
        ckpt.load_checkpoint(path, like_tree(optax.adam(1e-3), make_model(extra_layer=True)))
    msg = str(info.value)
    assert "['model'].layers[3].w of shape (4, 2) float32 but the template expects shape " \
        "(4, 4)" in msg
    assert "The template has leaves the checkpoint lacks: ['model'].layers[4].w, " \
        "['model'].layers[4].b" in msg


def test_layer_of_another_class_names_the_path(tmp_path):
    path = saved_training_tree(tmp_path)
    other = nn.Serial(nn.Dense(4), nn.LayerNorm(), nn.Dropout(0.5), nn.Dense(2)).init(X)
    with pytest.raises(ValueError, match=re.escape(
            "at ['model'].layers[1] the checkpoint has a BatchNorm but the template has a "
            "LayerNorm")):
        ckpt.load_checkpoint(path, like_tree(optax.adam(1e-3), other))


def test_other_optimizer_names_the_path(tmp_path):
    path = saved_training_tree(tmp_path)
    with pytest.raises(ValueError) as info:
        ckpt.load_checkpoint(path, like_tree(optax.sgd(1e-3, momentum=0.9), make_model()))
    msg = str(info.value)
    assert "at ['opt_state'][0] the checkpoint has a ScaleByAdamState but the template has " \
        "a TraceState" in msg
    assert "The checkpoint has leaves the template lacks: ['opt_state'][0].count" in msg


def test_dtype_and_key_mismatches_are_named(tmp_path):
    path = tmp_path / "c.ckpt"
    ckpt.save_checkpoint(path, {"w": jnp.zeros(3, jnp.bfloat16), "k": jax.random.key(0)})
    with pytest.raises(ValueError, match=re.escape(
            "['w'] of shape (3,) bfloat16 but the template expects shape (3,) float32")):
        ckpt.load_checkpoint(path, {"w": jnp.zeros(3), "k": jax.random.key(0)})
    with pytest.raises(ValueError, match=re.escape(
            "['k'] of shape () key<fry> but the template expects shape (2,) uint32")):
        ckpt.load_checkpoint(path, {"w": jnp.zeros(3, jnp.bfloat16), "k": jax.random.PRNGKey(0)})
    with pytest.raises(ValueError, match=re.escape(
            "['k'] of shape () key<fry> but the template expects shape () key<rbg>")):
        ckpt.load_checkpoint(path, {"w": jnp.zeros(3, jnp.bfloat16),
                                    "k": jax.random.key(0, impl="rbg")})


def test_uninitialized_template_gets_a_hint(tmp_path):
    m = make_model()
    ckpt.save_module(tmp_path / "m.ckpt", m)
    blank = nn.Serial(nn.Dense(4), nn.BatchNorm(axis=(0,)), nn.Dropout(0.5), nn.Dense(2))
    with pytest.raises(ValueError, match=r"leaves the template lacks: .layers\[0\]\.w.*"
                                         r"must be initialized"):
        ckpt.load_module(tmp_path / "m.ckpt", blank)


def test_load_module_reads_the_model_of_a_training_checkpoint(tmp_path):
    tree = trained_tree()
    ckpt.save_checkpoint(tmp_path / "model.ckpt", tree)
    model = ckpt.load_module(tmp_path / "model.ckpt", make_model(key=42))
    assert_same_tree(model, tree["model"])
    with pytest.raises(TypeError, match="expects a pax_trax Module"):
        ckpt.save_module(tmp_path / "x.ckpt", {"a": 1})


def test_unsupported_leaves_are_refused_before_writing(tmp_path):
    path = tmp_path / "c.ckpt"
    with pytest.raises(TypeError, match=r"\['name'\]: a checkpoint leaf must be an array.*"
                                        "metadata"):
        ckpt.save_checkpoint(path, {"name": "adam"})
    with pytest.raises(TypeError, match="numeric arrays only"):
        ckpt.save_checkpoint(path, {"o": np.array([None])})
    with pytest.raises(TypeError, match="metadata must be JSON-serializable"):
        ckpt.save_checkpoint(path, {"a": np.zeros(2)}, metadata={"x": object()})
    with pytest.raises(TypeError, match="traced value"):
        jax.jit(lambda x: ckpt.save_checkpoint(path, {"x": x}))(1.0)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------
# Atomic writes


def test_failed_save_keeps_previous_checkpoint_and_leaves_no_temp_file(tmp_path):
    tree, path = small_saved(tmp_path)
    before = path.read_bytes()
    donated = jnp.ones(1000)
    donated.delete()  # as after buffer donation: conversion fails mid-write
    bad_tree = {"a": jnp.arange(3.0), "b": np.ones((2, 2), np.int32),
                "big": np.ones(1 << 18), "z_deleted": donated}
    with pytest.raises(RuntimeError, match="deleted"):
        ckpt.save_checkpoint(path, bad_tree, {"step": 2})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["good.ckpt"]
    loaded, meta = ckpt.load_checkpoint(path, tree)
    assert_same_tree(loaded, tree)
    assert meta == {"step": 1}


CRASH_SCRIPT = textwrap.dedent("""
    import os, sys, time
    os.environ["JAX_PLATFORMS"] = "cpu"
    import numpy as np
    from pax_trax.supervised import checkpoints as ckpt

    path, n_leaves, leaf_mb, pause_after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \\
        int(sys.argv[4])
    tree = [np.full((leaf_mb << 18,), i + 1, np.float32) for i in range(n_leaves)]
    real_save, calls = np.save, [0]

    def save_then_pause(*args, **kwargs):  # fault injection: stall mid-file, await SIGKILL
        real_save(*args, **kwargs)
        calls[0] += 1
        if calls[0] == pause_after:
            print("PARTIAL", flush=True)
            time.sleep(600)

    if pause_after:
        np.save = save_then_pause
    print("START", flush=True)
    ckpt.save_checkpoint(path, tree, {"step": 2})
    print("DONE", flush=True)
""")


def run_crasher(tmp_path, path, n_leaves, leaf_mb, pause_after):
    script = tmp_path / "crash.py"
    script.write_text(CRASH_SCRIPT)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.Popen(
        [sys.executable, str(script), str(path), str(n_leaves), str(leaf_mb), str(pause_after)],
        stdout=subprocess.PIPE, env=env, text=True)


def temp_files(directory):
    return [n for n in os.listdir(directory) if ".tmp-" in n]


def old_tree(n_leaves, leaf_mb):
    return [np.full((leaf_mb << 18,), -1.0, np.float32) for _ in range(n_leaves)]


def test_sigkill_mid_write_keeps_previous_checkpoint(tmp_path):
    out = tmp_path / "out"
    path = ckpt.checkpoint_path(out)
    n, mb = 6, 4
    ckpt.save_checkpoint(path, old_tree(n, mb), {"step": 1})
    before = pathlib.Path(path).read_bytes()
    proc = run_crasher(tmp_path, path, n, mb, pause_after=3)
    try:
        assert proc.stdout.readline().strip() == "START"
        assert proc.stdout.readline().strip() == "PARTIAL"
        (tmp,) = temp_files(out)
        assert os.path.getsize(out / tmp) > 3 * (mb << 20)  # three leaves are in it
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert pathlib.Path(path).read_bytes() == before
    assert ckpt.latest_checkpoint(out) == path
    loaded, meta = ckpt.load_checkpoint(ckpt.latest_checkpoint(out), old_tree(n, mb))
    assert meta == {"step": 1}
    assert_same_tree(loaded, old_tree(n, mb))
    # The torn temp file is a truncated zip that no reader takes for a checkpoint.
    with pytest.raises(CheckpointError):
        ckpt.read_metadata(out / temp_files(out)[0])
    # The next save still works.
    ckpt.save_checkpoint(path, old_tree(n, mb), {"step": 3})
    assert ckpt.read_metadata(path) == {"step": 3}


def test_sigkill_at_an_arbitrary_moment_leaves_old_or_new(tmp_path):
    out = tmp_path / "out"
    path = ckpt.checkpoint_path(out)
    n, mb = 24, 8  # ~200 MB
    ckpt.save_checkpoint(path, [np.zeros(1, np.float32)], {"step": 1})
    proc = run_crasher(tmp_path, path, n, mb, pause_after=0)
    try:
        assert proc.stdout.readline().strip() == "START"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            tmps = temp_files(out)
            if tmps and os.path.getsize(out / tmps[0]) > (1 << 20):
                break
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    meta = ckpt.read_metadata(path)
    if meta == {"step": 1}:
        loaded, _ = ckpt.load_checkpoint(path, [np.ones(1, np.float32)])
        assert loaded[0].tolist() == [0.0]
    else:  # the save finished before the kill landed
        assert meta == {"step": 2}
        loaded, _ = ckpt.load_checkpoint(path, [np.zeros(mb << 18, np.float32)] * n)
        assert all(float(x[0]) == i + 1 for i, x in enumerate(loaded))


# ---------------------------------------------------------------------------
# Names and resuming


def test_checkpoint_names_and_latest(tmp_path):
    assert ckpt.latest_checkpoint(tmp_path / "missing") is None
    assert ckpt.latest_checkpoint(tmp_path) is None
    tree = {"a": np.zeros(2)}
    ckpt.save_checkpoint(ckpt.checkpoint_path(tmp_path, 100), tree, {"step": 100})
    ckpt.save_checkpoint(ckpt.checkpoint_path(tmp_path, 20), tree, {"step": 20})
    assert ckpt.checkpoint_path(tmp_path, 20) == str(tmp_path / "model_20.ckpt")
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [20, 100]
    assert ckpt.latest_checkpoint(tmp_path) == str(tmp_path / "model_100.ckpt")
    ckpt.save_checkpoint(ckpt.checkpoint_path(tmp_path), tree, {"step": 100})
    assert ckpt.latest_checkpoint(tmp_path) == str(tmp_path / "model.ckpt")  # ties: rolling
    ckpt.save_checkpoint(ckpt.checkpoint_path(tmp_path, 200), tree, {"step": 200})
    assert ckpt.latest_checkpoint(tmp_path) == str(tmp_path / "model_200.ckpt")
    (tmp_path / ".model.ckpt.tmp-1-abcd").write_bytes(b"torn")
    (tmp_path / "model_300.ckpt.tmp").write_bytes(b"torn")
    assert ckpt.latest_checkpoint(tmp_path) == str(tmp_path / "model_200.ckpt")
    with pytest.raises(ValueError, match="non-negative int"):
        ckpt.checkpoint_path(tmp_path, -1)


def train(model, opt_state, step, start, stop, history):
    for position in range(start, stop):
        model, opt_state, loss = step(model, opt_state, *batch(position))
        history.append(float(loss))
    return model, opt_state


def test_resumed_training_matches_uninterrupted_run(tmp_path):
    tx = optax.adam(1e-2)
    step = make_step(tx)
    model = make_model()
    opt_state = tx.init(model.parameters())

    full = []
    train(model, opt_state, step, 0, 6, full)

    first = []
    m, s = train(model, opt_state, step, 0, 3, first)
    ckpt.save_checkpoint(ckpt.checkpoint_path(tmp_path), {"model": m, "opt_state": s},
                         {"step": 3, "data_position": 3, "history": first})
    del m, s
    # A new process would rebuild the template from the config, then restore.
    fresh = make_model(key=123)
    like = {"model": fresh, "opt_state": tx.init(fresh.parameters())}
    restored, meta = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path), like)
    history = meta["history"]
    train(restored["model"], restored["opt_state"], step, meta["data_position"], 6, history)
    assert history == full  # dropout RNG, batch-norm statistics and Adam moments all resumed

