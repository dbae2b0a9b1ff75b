"""The module contract: pytree, fields, immutability, params vs state, init, printing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax_trax
from pax_trax import nn, shapes
from pax_trax.core.module import Module, param, state, static


class Scale(Module):
    """A small custom layer: one parameter, one int state counter."""

    init_value = static()
    scale = param()
    calls = state()

    def __init__(self, init_value=1.0):
        self.init_value = init_value

    def init_weights_and_state(self, input_signature, key):
        del key
        return self.replace(
            scale=jnp.full(input_signature.shape[-1:], self.init_value, jnp.float32),
            calls=jnp.zeros((), jnp.int32),
        )

    def forward_with_state(self, x):
        return self.replace(calls=self.calls + 1), x * self.scale


def sentiment_model():
    return nn.Serial(nn.Embedding(vocab_size=8192, d_feature=256), nn.Mean(axis=1), nn.Dense(2))


# --------------------------------------------------------------------------- pytree


def test_module_is_a_pytree_with_array_leaves_only():
    model = nn.Serial(nn.Dense(4), nn.Relu(), nn.Dense(2)).init(np.zeros((3, 5), np.float32))
    leaves, treedef = jax.tree_util.tree_flatten(model)
    assert [leaf.shape for leaf in leaves] == [(5, 4), (4,), (4, 2), (2,)]
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(rebuilt) is nn.Serial
    assert repr(rebuilt) == repr(model)
    np.testing.assert_array_equal(rebuilt.layers[2].w, model.layers[2].w)


def test_static_fields_are_aux_data_and_key_paths_name_fields():
    model = nn.Dense(3).init(np.zeros((1, 2), np.float32))
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(model)[0]]
    assert paths == [".w", ".b"]
    other = nn.Dense(3).init(np.zeros((1, 2), np.float32), jax.random.PRNGKey(7))
    # Same structure and hyperparameters: same treedef (so jit reuses its cache).
    assert jax.tree_util.tree_structure(model) == jax.tree_util.tree_structure(other)
    assert jax.tree_util.tree_structure(model) != jax.tree_util.tree_structure(
        nn.Dense(4).init(np.zeros((1, 2), np.float32))
    )


def test_tree_map_over_module_returns_module():
    model = nn.Dense(3).init(np.zeros((1, 2), np.float32))
    doubled = jax.tree_util.tree_map(lambda x: 2 * x, model)
    assert isinstance(doubled, nn.Dense)
    np.testing.assert_allclose(doubled.w, 2 * model.w)


def test_declared_fields_collected_in_declaration_order():
    assert Scale._pt_params == ("scale",)
    assert Scale._pt_states == ("calls",)
    assert Scale._pt_static == ("name", "n_in", "n_out", "init_value")
    assert nn.Serial._pt_submodules == ("layers",)


# ---------------------------------------------------------------------- immutable


def test_assignment_after_construction_raises():
    layer = nn.Dense(2)
    with pytest.raises(pax_trax.FrozenModuleError, match=r"replace\(n_units=\.\.\.\)"):
        layer.n_units = 3
    with pytest.raises(pax_trax.FrozenModuleError):
        del layer.n_units
    assert layer.n_units == 2


def test_undeclared_attribute_in_init_is_an_error():
    class Bad(Module):
        def __init__(self):
            self.cache = {}

    with pytest.raises(AttributeError, match="no declared field 'cache'"):
        Bad()


def test_missing_required_field_is_an_error():
    class NeedsSize(Module):
        size = static()

        def __init__(self):
            pass

    with pytest.raises(TypeError, match="did not set the required field 'size'"):
        NeedsSize()


def test_static_field_must_be_hashable():
    class Holder(Module):
        value = static()

        def __init__(self, value):
            self.value = value

    assert Holder([1, [2, 3]]).value == (1, (2, 3))  # lists become tuples
    with pytest.raises(TypeError, match="must be hashable"):
        Holder({"a": 1})
    with pytest.raises(TypeError, match="param\\(\\) or pax_trax.state\\(\\)"):
        Holder(np.zeros(3))


def test_replace_returns_new_module_and_rejects_unknown_fields():
    layer = nn.Dense(2)
    renamed = layer.replace(name="Logits")
    assert renamed.name == "Logits" and layer.name == "Dense_2"
    with pytest.raises(AttributeError, match="no field\\(s\\) \\['units'\\]"):
        layer.replace(units=3)


# ------------------------------------------------------------ parameters vs state


def test_parameters_mask_state_and_update_parameters_merges_back():
    x = np.ones((4, 3), np.float32)
    model = nn.Serial(Scale(2.0), nn.BatchNorm(axis=(0,))).init(x)
    params = model.parameters()
    assert params.layers[0].calls is None
    assert params.layers[1].running_mean is None and params.layers[1].n_batches is None
    assert params.layers[1].gamma.shape == (3,)
    assert [leaf.shape for leaf in jax.tree_util.tree_leaves(params)] == [(3,), (3,), (3,)]

    new_params = jax.tree_util.tree_map(lambda p: p + 1.0, params)
    updated = model.update_parameters(new_params)
    np.testing.assert_allclose(updated.layers[0].scale, [3.0, 3.0, 3.0])
    np.testing.assert_allclose(updated.layers[1].beta, [1.0, 1.0, 1.0])
    # State is kept from the model, not from the parameter tree.
    assert updated.layers[1].running_var is model.layers[1].running_var
    assert updated.layers[0].calls is model.layers[0].calls


def test_update_parameters_with_wrong_structure_names_the_place():
    model = nn.Serial(nn.Dense(2), nn.Dense(3)).init(np.zeros((1, 4), np.float32))
    wrong = nn.Serial(nn.Dense(2), nn.Relu()).init(np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match=r"Serial.layers\[1\].*expected a Dense, got Fn"):
        model.update_parameters(wrong.parameters())


def test_trax_style_weights_and_state_properties():
    x = np.array([[-2, -1, 0, 1, 2], [1, 2, 3, 4, 5]], np.float32)
    block = nn.Serial(nn.Relu(), nn.Dense(2)).init(x)
    w = block.weights
    assert w[0] == () and w[1][0].shape == (5, 2) and w[1][1].shape == (2,)
    emb = nn.Embedding(20, 32).init(np.arange(15))
    assert emb.weights.shape == (20, 32)  # a single weight is bare, as in Trax


# ----------------------------------------------------------------------------- init


def test_init_from_signature_infers_every_shape_without_running_forward():
    model = sentiment_model()
    assert model.layers[2].w is None
    sig = shapes.ShapeDtype((4, 17), np.int32)
    model = model.init(sig, jax.random.PRNGKey(0))
    assert model.layers[0].w.shape == (8192, 256)
    assert model.layers[2].w.shape == (256, 2) and model.layers[2].b.shape == (2,)
    assert model.output_signature(sig) == shapes.ShapeDtype((4, 2), np.float32)


def test_seed_sentiment_model_prints_and_counts_as_in_trax():
    model = sentiment_model()
    assert str(model) == "Serial[\n  Embedding_8192_256\n  Mean\n  Dense_2\n]"
    model = model.init(shapes.signature(np.zeros((1, 10), np.int32)))
    assert pax_trax.count_parameters(model) == 2_097_666 == 8192 * 256 + 256 * 2 + 2


def test_init_is_deterministic_in_the_key_and_differs_across_keys():
    sig = shapes.ShapeDtype((2, 3))
    a = nn.Dense(4).init(sig, jax.random.PRNGKey(1))
    b = nn.Dense(4).init(sig, jax.random.PRNGKey(1))
    c = nn.Dense(4).init(sig, jax.random.PRNGKey(2))
    np.testing.assert_array_equal(a.w, b.w)
    assert not np.allclose(a.w, c.w)


def test_init_accepts_example_data_and_multi_input_signatures():
    model = nn.Serial(nn.Parallel(nn.Dense(3), nn.Dense(5)), nn.Fn("Cat", lambda a, b: jnp.concatenate([a, b], -1)))
    model = model.init((np.zeros((2, 4), np.float32), np.zeros((2, 6), np.float32)))
    out = model((np.ones((2, 4), np.float32), np.ones((2, 6), np.float32)))
    assert out.shape == (2, 8)
    assert model.layers[0].layers[1].w.shape == (6, 5)


def test_calling_uninitialized_module_explains_init():
    with pytest.raises(pax_trax.LayerError, match=r"Serial\[1\]/Dense_2.*not initialized.*model.init"):
        nn.Serial(nn.Relu(), nn.Dense(2))(np.ones((1, 3), np.float32))


def test_init_does_no_real_forward_compute():
    calls = []

    def spy(x):
        calls.append(type(x).__name__)
        return x

    nn.Serial(nn.Dense(3), nn.Fn("Spy", spy)).init(shapes.ShapeDtype((2, 4)))
    assert calls and all("Tracer" in c or "ShapeDtype" in c for c in calls)


# ------------------------------------------------------------------ modes, printing


def test_train_and_eval_return_copies_with_switched_modes():
    model = nn.Serial(nn.Dense(2), nn.Dropout(0.5), nn.Serial(nn.BatchNorm(axis=(0,))))
    evaluated = model.eval()
    assert model.layers[1].mode == "train" and evaluated.layers[1].mode == "eval"
    assert evaluated.layers[2].layers[0].mode == "eval"
    assert evaluated.train().layers[2].layers[0].mode == "train"
    predict = nn.Dropout(0.1, mode="predict")
    assert predict.eval().mode == "predict"  # predict is a structural mode: kept


def test_repr_marks_n_in_and_n_out_as_trax():
    assert repr(nn.Add()) == "Add_in2"
    assert repr(nn.Dup()) == "Dup_out2"
    assert repr(nn.Residual(nn.Dense(3))) == (
        "Serial[\n  Branch_out2[\n    None\n    Dense_3\n  ]\n  Add_in2\n]"
    )


def test_summary_lists_modules_shapes_and_total():
    model = sentiment_model().init(np.zeros((1, 10), np.int32))
    text = model.summary()
    assert "Serial[0]: Embedding_8192_256" in text
    assert "w(8192, 256) float32" in text
    assert "b(2,) float32" in text
    assert "2,097,152" in text and "514" in text
    assert text.splitlines()[-2] == "Total trainable parameters: 2,097,666"


def test_summary_counts_state_separately():
    bn = nn.BatchNorm(axis=(0,)).init(np.zeros((2, 3), np.float32))
    lines = bn.summary().splitlines()
    assert lines[-2] == "Total trainable parameters: 6"
    assert lines[-1] == "Total state values: 7"  # mean 3 + var 3 + n_batches 1


def test_modules_iterates_preorder():
    model = nn.Serial(nn.Dense(2), nn.Serial(nn.Relu(), nn.Dense(3)))
    assert [m.name for m in model.modules()] == ["Serial", "Dense_2", "Serial", "Relu", "Dense_3"]


def test_repr_during_construction_does_not_fail():
    class Checked(Module):
        size = static()

        def __init__(self, size):
            assert repr(self) == "<Checked under construction>"
            self.size = size

    assert repr(Checked(3)) == "Checked"


def test_states_is_the_complement_of_parameters():
    model = nn.Serial(nn.Dense(3), nn.BatchNorm(axis=(0,))).init(np.ones((4, 2), np.float32))
    states = model.states()
    assert states.layers[0].w is None and states.layers[1].gamma is None
    assert states.layers[1].running_mean is model.layers[1].running_mean
    rebuilt = states.update_parameters(model.parameters())
    for a, b in zip(jax.tree_util.tree_leaves(rebuilt), jax.tree_util.tree_leaves(model)):
        assert a is b
