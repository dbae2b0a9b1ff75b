"""The safe reader of Trax pickles and the Trax weights tree -> module mapping.

Reference trees come from two places: trees written out by hand in Trax's
layout (checked against numpy implementations of the layers), and trees that
Trax 1.4.1 itself saved (tests/supervised/trax_fixtures, made by
make_fixtures.py there), checked against the outputs Trax computed.
"""

import collections
import gzip
import os
import pickle
import sys
import types

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import pax_trax
from pax_trax import nn
from pax_trax.supervised import trax_checkpoints as tc
from pax_trax.supervised import weights_file as wf

FIXTURES = os.path.join(os.path.dirname(__file__), "trax_fixtures")


def fixture(*parts):
    return os.path.join(FIXTURES, *parts)


# ---------------------------------------------------------------------------
# Safe unpickling of what Trax checkpoints hold


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_plain_values_round_trip(protocol):
    values = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
        "big_endian": np.arange(3, dtype=">f8"),
        "bool": np.array([True, False]),
        "u16": np.array([1, 65535], np.uint16),
        "c64": np.array([1 + 2j], np.complex64),
        "empty": np.zeros((0, 4), np.float32),
        "scalar": np.float32(2.5),
        "int_scalar": np.int64(-3),
        "dtype": np.dtype("int32"),
        "type": np.float16,
        "jax": jnp.array([[1.5, 2.5]], jnp.float32),
        "history": collections.defaultdict(list, {"loss": [(1, 0.5), (2, 0.25)]}),
        "nested": ((), (np.ones(2, np.float32), ()), [1, "a", None, 2.0, b"x"]),
    }
    out = tc.safe_unpickle(pickle.dumps(values, protocol=protocol))
    for key in ("f32", "fortran", "big_endian", "bool", "u16", "c64", "empty"):
        assert isinstance(out[key], np.ndarray)
        np.testing.assert_array_equal(out[key], values[key])
        assert out[key].dtype == values[key].dtype.newbyteorder("=")
    assert out["big_endian"].dtype.isnative and out["big_endian"].tolist() == [0.0, 1.0, 2.0]
    assert out["scalar"] == np.float32(2.5) and out["scalar"].dtype == np.float32
    assert out["int_scalar"] == -3
    assert out["dtype"] == np.dtype("int32") and out["type"] == np.dtype("float16")
    assert isinstance(out["jax"], np.ndarray) and out["jax"].tolist() == [[1.5, 2.5]]
    assert type(out["history"]) is dict and out["history"] == {"loss": [(1, 0.5), (2, 0.25)]}
    assert out["nested"][0] == () and out["nested"][2] == [1, "a", None, 2.0, b"x"]
    np.testing.assert_array_equal(out["nested"][1][0], np.ones(2))


def test_shared_objects_stay_shared():
    a = np.arange(3, dtype=np.float32)
    out = tc.safe_unpickle(pickle.dumps((a, a)))
    assert out[0] is out[1]


def test_trax_history_object_becomes_a_dict(monkeypatch):
    # Trax's History class, registered under its real module name for pickling only.
    module = types.ModuleType("trax.supervised.history")

    class History:
        def __init__(self):
            self._values = {"train": collections.defaultdict(list)}

    History.__module__ = "trax.supervised.history"
    History.__qualname__ = "History"
    module.History = History
    for name in ("trax", "trax.supervised"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "trax.supervised.history", module)
    history = History()
    history._values["train"]["metrics/loss"].append((1, np.float32(0.5)))
    data = pickle.dumps({"history": history})
    for name in ("trax", "trax.supervised", "trax.supervised.history"):
        monkeypatch.delitem(sys.modules, name)
    out = tc.safe_unpickle(data)
    assert out == {"history": {"_values": {"train": {"metrics/loss": [(1, 0.5)]}}}}


def test_trax_checkpoint_pickle_gives_shape_dtype_signature():
    content = wf.read_trax_file(fixture("layers_attention", "flat_checkpoint.pkl.gz"))
    assert content.flat and content.step == 0 and content.flat_state == []
    assert isinstance(content.input_signature, pax_trax.shapes.ShapeDtype)
    assert content.input_signature.shape == (2, 8)
    assert content.input_signature.dtype == np.int32
    assert len(content.weights) == 21


def test_loop_checkpoint_reads_weights_beside_it():
    content = wf.read_trax_file(fixture("transformer_lm", "model.pkl.gz"))
    separate = wf.read_npy_stream(fixture("transformer_lm", "model.weights.npy.gz"))
    assert content.flat and len(content.weights) == len(separate) > 0
    for a, b in zip(content.weights, separate):
        np.testing.assert_array_equal(a, b)
    assert content.step == 2
    assert content.input_signature[0].shape == (2, 8)


class _Reduce:
    """Pickles as a call of `fn(*args)`: what a malicious checkpoint does."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "ran"
    yield path
    assert not path.exists(), "code from the pickle was executed"


def _py(marker):
    return f"open({str(marker)!r}, 'w').write('x')"


def test_refuses_os_system(marker):
    data = pickle.dumps({"w": _Reduce(os.system, f"touch {marker}")})
    with pytest.raises(tc.UnsafePickleError, match=r"posix\.system.*Nothing was executed"):
        tc.safe_unpickle(data, "evil.pkl")


def test_refuses_builtins_eval(marker):
    data = pickle.dumps([_Reduce(eval, _py(marker))])
    with pytest.raises(tc.UnsafePickleError, match=r"builtins\.eval"):
        tc.safe_unpickle(data)


def test_refuses_numpy_runstring(marker):
    from numpy.testing._private.utils import runstring

    data = pickle.dumps(_Reduce(runstring, _py(marker), {}))
    with pytest.raises(tc.UnsafePickleError, match=r"numpy\.testing\._private\.utils\.runstring"):
        tc.safe_unpickle(data)


def test_refuses_numpy_load_with_allow_pickle(marker, tmp_path):
    inner = tmp_path / "inner.npy"
    np.save(inner, np.array([_Reduce(eval, _py(marker))], dtype=object), allow_pickle=True)
    data = pickle.dumps(_Reduce(np.load, str(inner), None, True))
    with pytest.raises(tc.UnsafePickleError, match=r"numpy\.load"):
        tc.safe_unpickle(data)


def test_refuses_object_arrays(marker):
    data = pickle.dumps(np.array([1, "a"], dtype=object))
    with pytest.raises(tc.UnsafePickleError, match="only numeric dtypes are accepted, got 'O8'"):
        tc.safe_unpickle(data)
    # An object array whose element runs code: the element is refused at lookup.
    data = pickle.dumps(np.array([_Reduce(eval, _py(marker))], dtype=object))
    with pytest.raises(tc.UnsafePickleError):
        tc.safe_unpickle(data)


def test_refuses_structured_dtypes():
    data = pickle.dumps(np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]))
    with pytest.raises(tc.UnsafePickleError, match="only numeric dtypes are accepted, got 'V8'"):
        tc.safe_unpickle(data)


def test_allowed_names_cannot_be_misused(marker):
    # numpy's _reconstruct with something other than ndarray as the class.
    data = b"cnumpy._core.multiarray\n_reconstruct\n(I1\n(I0\ntS'b'\ntR."
    with pytest.raises(tc.UnsafePickleError, match="only build numpy.ndarray"):
        tc.safe_unpickle(data)
    # JAX's reconstructor with another callable than numpy's _reconstruct.
    data = (b"cjax._src.array\n_reconstruct_array\n(cnumpy._core.numeric\n_frombuffer\n"
            b"(t(t(dtR.")
    with pytest.raises(tc.UnsafePickleError, match="numpy's _reconstruct"):
        tc.safe_unpickle(data)
    # A numpy type is not callable here, and cannot be given state.
    with pytest.raises(tc.TraxCheckpointError):
        tc.safe_unpickle(b"cnumpy\nint32\n(S'import os'\ntR.")
    # defaultdict only with a builtin factory.
    data = pickle.dumps(_Reduce(collections.defaultdict, _Reduce(eval, _py(marker))))
    with pytest.raises(tc.UnsafePickleError, match="builtins.eval"):
        tc.safe_unpickle(data)
    # BUILD cannot give state to the allow-listed objects (they are shared by all loads).
    for name in (b"numpy._core.multiarray\n_reconstruct", b"numpy\ndtype", b"numpy\nndarray",
                 b"builtins\nlist", b"trax.shapes\nShapeDtype"):
        with pytest.raises(tc.TraxCheckpointError):
            tc.safe_unpickle(b"c" + name + b"\n(dS'__call__'\nI1\nsb.")
        with pytest.raises(tc.TraxCheckpointError):  # slot state: setattr
            tc.safe_unpickle(b"c" + name + b"\n(N(dS'fn'\nI1\nstb.")
    assert tc.safe_unpickle(pickle.dumps(np.ones(2, np.float32), protocol=2)).tolist() == [1, 1]
    # Array bytes that do not fit the shape.
    data = pickle.dumps(np.zeros(4, np.float32), protocol=2).replace(b"K\x04", b"K\x05")
    with pytest.raises(tc.TraxCheckpointError):
        tc.safe_unpickle(data)


def test_malformed_pickle_is_a_clear_error():
    data = pickle.dumps({"w": np.ones(3)})
    with pytest.raises(tc.TraxCheckpointError, match="Cannot read broken.pkl"):
        tc.safe_unpickle(data[:-10], "broken.pkl")


def test_trax_fixture_pickles_use_only_allowed_names():
    # Every pickle Trax wrote loads: the allow-list covers what Trax writes.
    for name in sorted(os.listdir(FIXTURES)):
        folder = fixture(name)
        if not os.path.isdir(folder):
            continue
        for fname in os.listdir(folder):
            if fname.endswith(".pkl.gz"):
                with gzip.open(os.path.join(folder, fname)) as f:
                    tc.safe_unpickle(f.read(), fname)


# ---------------------------------------------------------------------------
# Trax weights trees -> modules, hand-built


def _rand(key, *shape):
    return np.asarray(jax.random.normal(key, shape), np.float32)


def test_dense_relu_serial_from_nested_tree(getkey):
    model = nn.Serial(nn.Dense(4), nn.Relu(), nn.Dense(2)).init(np.zeros((1, 3), np.float32))
    w1, b1, w2, b2 = _rand(getkey(), 3, 4), _rand(getkey(), 4), _rand(getkey(), 4, 2), _rand(
        getkey(), 2)
    loaded = tc.set_trax_weights(model, ((w1, b1), (), (w2, b2)))
    x = _rand(getkey(), 5, 3)
    expected = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    np.testing.assert_allclose(loaded(x), expected, rtol=1e-5, atol=1e-5)
    # The flat list (Trax Loop checkpoints) gives the same module.
    flat = tc.set_trax_weights(model, [w1, b1, w2, b2])
    for a, b in zip(jax.tree_util.tree_leaves(flat), jax.tree_util.tree_leaves(loaded)):
        np.testing.assert_array_equal(a, b)


def test_embedding_layernorm_weights(getkey):
    model = nn.Serial(nn.Embedding(10, 4), nn.LayerNorm()).init(np.zeros((1, 3), np.int32))
    table, scale, bias = _rand(getkey(), 10, 4), _rand(getkey(), 4), _rand(getkey(), 4)
    loaded = tc.set_trax_weights(model, (table, (scale, bias)))
    ids = np.array([[1, 7, 3]])
    e = table[ids]
    mean = e.mean(-1, keepdims=True)
    var = ((e - mean) ** 2).mean(-1, keepdims=True)
    expected = (e - mean) / np.sqrt(var + 1e-6) * scale + bias
    np.testing.assert_allclose(loaded(ids), expected, rtol=1e-5, atol=1e-5)


def _numpy_causal_attention(x, weights, n_heads):
    (wq, bq), (wk, bk), (wv, bv), (wo, bo) = weights
    batch, length, d = x.shape
    d_head = d // n_heads

    def heads(y):
        return y.reshape(batch, length, n_heads, d_head).transpose(0, 2, 1, 3)

    q, k, v = heads(x @ wq + bq), heads(x @ wk + bk), heads(x @ wv + bv)
    logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d_head)
    logits = np.where(np.tril(np.ones((length, length), bool)), logits, -1e9)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, d)
    return out @ wo + bo


def test_causal_attention_from_trax_layout(getkey):
    model = nn.CausalAttention(8, n_heads=2, mode="eval").init(np.zeros((2, 5, 8), np.float32))
    dense = [(_rand(getkey(), 8, 8), _rand(getkey(), 8)) for _ in range(4)]
    split, merge = ((), (), ()), ((), (), ())  # Trax wraps these in shape-assertion Serials
    branch = ((), ((dense[0], split), (dense[1], split), (dense[2], split)))
    trax_tree = ((), (branch, (), merge, dense[3]), ())
    loaded = tc.set_trax_weights(model, trax_tree)
    x = _rand(getkey(), 2, 5, 8)
    np.testing.assert_allclose(loaded(x), _numpy_causal_attention(x, dense, 2),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: nn.Serial(nn.Dense(4), nn.Relu(), nn.Residual(nn.LayerNorm(), nn.Dense(4))),
    lambda: nn.Serial(nn.Embedding(10, 8), nn.CausalAttention(8, n_heads=2), nn.Dense(3)),
    lambda: nn.Serial(nn.Conv(3, (2, 2)), nn.BatchNorm(), nn.Flatten(), nn.Dense(2)),
    lambda: nn.Serial(nn.Embedding(10, 4), nn.PositionalEncoding(max_len=8), nn.LSTM(4)),
])
def test_weights_property_round_trips(make, getkey):
    """set_trax_weights inverts the `weights` property (nested and flat)."""
    module = make()
    if isinstance(module.sublayers[0], nn.Conv):
        x = np.zeros((2, 4, 4, 3), np.float32)
    elif isinstance(module.sublayers[0], nn.Embedding):
        x = np.zeros((2, 5), np.int32)
    else:
        x = np.zeros((2, 3), np.float32)
    source = module.init(x, getkey())
    target = module.init(x, getkey())
    flat = [np.asarray(w) for w in jax.tree_util.tree_leaves(source.weights)]
    for weights in (source.weights, flat):
        loaded = tc.set_trax_weights(target, weights)
        for a, b in zip(jax.tree_util.tree_leaves(loaded.parameters()),
                        jax.tree_util.tree_leaves(source.parameters())):
            np.testing.assert_array_equal(a, b)
        assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(target)


def test_shape_mismatch_names_layer_and_shapes(getkey):
    model = nn.Serial(nn.Dense(4), nn.Relu(), nn.Dense(2)).init(np.zeros((1, 3), np.float32))
    bad = ((np.zeros((3, 4)), np.zeros(4)), (), (np.zeros((5, 2)), np.zeros(2)))
    with pytest.raises(tc.TraxCheckpointError,
                       match=r"Serial\[2\]/Dense_2\.w expects shape \(4, 2\), the file has "
                             r"\(5, 2\)"):
        tc.set_trax_weights(model, bad)
    with pytest.raises(tc.TraxCheckpointError, match=r"Serial\[2\]/Dense_2.*\(4, 2\).*\(5, 2\)"):
        tc.set_trax_weights(model, [np.zeros((3, 4)), np.zeros(4), np.zeros((5, 2)), np.zeros(2)])


def test_structure_mismatch_names_layer():
    model = nn.Serial(nn.Dense(4), nn.Relu(), nn.Dense(2)).init(np.zeros((1, 3), np.float32))
    missing_layer = ((np.zeros((3, 4)), np.zeros(4)), ())
    with pytest.raises(tc.TraxCheckpointError,
                       match=r"Serial expects weights of shapes \(\(\(3, 4\), \(4,\)\), "
                             r"\(\(4, 2\), \(2,\)\)\), the file has \(\(3, 4\), \(4,\)\)"):
        tc.set_trax_weights(model, missing_layer)
    with pytest.raises(tc.TraxCheckpointError, match="the model has 4 weight arrays, the file has 2"):
        tc.set_trax_weights(model, [np.zeros((3, 4)), np.zeros(4)])
    with pytest.raises(tc.TraxCheckpointError, match="expects an array of shape"):
        tc.set_trax_weights(model, ((np.zeros((3, 4)), (np.zeros(4), np.zeros(4))), (),
                                    (np.zeros((4, 2)), np.zeros(2))))


def test_uninitialized_module_is_refused():
    with pytest.raises(tc.TraxCheckpointError, match=r"not initialized \(Dense_4\.w"):
        tc.set_trax_weights(nn.Dense(4), (np.zeros((3, 4)), np.zeros(4)))


def test_dtypes_cast_bfloat16_bits_and_kind_errors():
    model = nn.Dense(2, use_bfloat16=True).init(np.zeros((1, 3), np.float32))
    w = np.arange(6, dtype=np.float32).reshape(3, 2).astype(ml_dtypes.bfloat16)
    b = np.array([0.5, -1.0], ml_dtypes.bfloat16)
    loaded = tc.set_trax_weights(model, [w.view(np.uint16), b.view(np.uint16)])
    assert loaded.w.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(loaded.w, np.float32), w.astype(np.float32))
    model = nn.Dense(2).init(np.zeros((1, 3), np.float32))
    loaded = tc.set_trax_weights(model, (np.ones((3, 2), np.float64), np.ones(2, np.float64)))
    assert loaded.w.dtype == jnp.float32
    with pytest.raises(tc.TraxCheckpointError, match="expects dtype float32, the file has complex"):
        tc.set_trax_weights(model, (np.ones((3, 2), np.complex64), np.ones(2)))


def test_shared_weights_marker_counts_as_empty(getkey):
    model = nn.Serial(nn.Dense(2), nn.Relu()).init(np.zeros((1, 3), np.float32))
    w, b = _rand(getkey(), 3, 2), _rand(getkey(), 2)
    tree = ((w, b), {"__marker_for_cached_weights_": ()})
    np.testing.assert_array_equal(tc.set_trax_weights(model, tree).sublayers[0].w, w)


def test_state_from_flat_list(getkey):
    model = nn.Serial(nn.Dense(3), nn.BatchNorm(axis=(0,)), nn.Dropout(0.1))
    model = model.init(np.zeros((4, 2), np.float32), getkey())
    mean, var = _rand(getkey(), 3), np.abs(_rand(getkey(), 3))
    # Trax keeps BatchNorm statistics with the reduced axes as 1s and the dropout rate.
    loaded, ok = tc.set_trax_state(model, [mean[None], var[None], np.array(7, np.int32),
                                           np.array(0.1, np.float32)])
    assert ok
    bn = loaded.sublayers[1]
    np.testing.assert_array_equal(bn.running_mean, mean)
    np.testing.assert_array_equal(bn.running_var, var)
    assert int(bn.n_batches) == 7
    assert (loaded.sublayers[2].rng == model.sublayers[2].rng).all()  # RNG keys are kept
    same, ok = tc.set_trax_state(model, [mean[None], var[None]])  # does not fit: unchanged
    assert not ok and same is model


# ---------------------------------------------------------------------------
# Trees saved by Trax 1.4.1


def _attention_stack(mode="eval"):
    return nn.Serial(
        nn.Embedding(32, 8),
        nn.Residual(nn.LayerNorm(), nn.CausalAttention(8, n_heads=2, mode=mode)),
        nn.Residual(nn.LayerNorm(), nn.Dense(16), nn.Relu(), nn.Dense(8)),
        nn.LayerNorm(),
        nn.Dense(5),
    )


@pytest.mark.parametrize("fname", ["weights.pkl.gz", "flat_checkpoint.pkl.gz"])
def test_trax_layers_tree_matches_trax_outputs(fname):
    x = np.load(fixture("layers_attention", "input.npy"))
    expected = np.load(fixture("layers_attention", "output.npy"))
    model = _attention_stack().init_from_file(fixture("layers_attention", fname),
                                              input_signature=x)
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-5)


def test_trax_batchnorm_state_loads_with_weights():
    def make():
        return nn.Serial(nn.Conv(4, (3, 3)), nn.BatchNorm(mode="eval"), nn.Relu(), nn.Flatten(),
                         nn.Dense(3))

    path = fixture("layers_batchnorm", "model.pkl.gz")
    x = np.load(fixture("layers_batchnorm", "input.npy"))
    with_state = make().init_from_file(path)  # initialized from the file's signature
    np.testing.assert_allclose(with_state(x), np.load(fixture("layers_batchnorm", "output.npy")),
                               rtol=1e-5, atol=1e-5)
    weights_only = make().init_from_file(path, weights_only=True)
    np.testing.assert_allclose(weights_only(x),
                               np.load(fixture("layers_batchnorm", "output_weights_only.npy")),
                               rtol=1e-5, atol=1e-5)
    assert int(with_state.sublayers[1].n_batches) == 2  # two Trax training steps
    assert int(weights_only.sublayers[1].n_batches) == 0
