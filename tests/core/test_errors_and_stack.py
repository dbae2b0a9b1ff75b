"""Stack semantics of the base combinators (seed 000 examples) and error paths."""

import jax.numpy as jnp
import numpy as np
import pytest

import pax_trax
from pax_trax import nn, shapes


def test_seed_branch_relu_times100():
    relu = nn.Relu()
    times_100 = nn.Fn("Times100", lambda x: x * 100.0)
    branch = nn.Branch(relu, times_100)
    x = np.array([[-2, -1, 0, 1, 2], [-20, -10, 0, 10, 20]])
    branch = branch.init(shapes.signature(x))
    y0, y1 = branch(x)
    assert np.asarray(y0).tolist() == [[0, 0, 0, 1, 2], [0, 0, 0, 10, 20]]
    assert np.asarray(y1).tolist() == [[-200.0, -100.0, 0.0, 100.0, 200.0],
                                       [-2000.0, -1000.0, 0.0, 1000.0, 2000.0]]
    assert (branch.n_in, branch.n_out) == (1, 2)


def test_seed_gcd_fn():
    gcd = nn.Fn("Gcd", lambda x0, x1: jnp.gcd(x0, x1))
    x0 = np.arange(1, 11)
    x1 = np.arange(11, 21)
    assert gcd.n_in == 2 and gcd.n_out == 1
    assert np.asarray(gcd((x0, x1))).tolist() == [1, 2, 1, 2, 5, 2, 1, 2, 1, 10]


def test_seed_sum_and_max_fn():
    sum_and_max = nn.Fn("SumAndMax", lambda x0, x1: (x0 + x1, jnp.maximum(x0, x1)), n_out=2)
    y0, y1 = sum_and_max([np.array([1, 2, 3, 4, 5]), np.array([10, -20, 30, -40, 50])])
    assert np.asarray(y0).tolist() == [11, -18, 33, -36, 55]
    assert np.asarray(y1).tolist() == [10, 2, 30, 4, 50]


def test_seed_flatten():
    x = np.array([[[1, 2, 3], [10, 20, 30], [100, 200, 300]],
                  [[4, 5, 6], [40, 50, 60], [400, 500, 600]]])
    assert nn.Flatten(n_axes_to_keep=1)(x).tolist() == [
        [1, 2, 3, 10, 20, 30, 100, 200, 300], [4, 5, 6, 40, 50, 60, 400, 500, 600]]
    assert nn.Flatten(n_axes_to_keep=2)(x).shape == (2, 3, 3)
    with pytest.raises(pax_trax.LayerError, match="Flatten_keep3.*must exceed"):
        nn.Flatten(n_axes_to_keep=3)(x)


def test_fn_rejects_default_and_keyword_arguments():
    with pytest.raises(ValueError, match="no default arguments"):
        nn.Fn("Bad", lambda x, y=1: x)
    with pytest.raises(ValueError, match="only positional"):
        nn.Fn("Bad", lambda *xs: xs)


def test_residual_adds_shortcut():
    layer = nn.Residual(nn.Fn("Double", lambda x: 2 * x))
    assert (layer.n_in, layer.n_out) == (1, 1)
    assert np.asarray(layer(np.array([1.0, 2.0]))).tolist() == [3.0, 6.0]
    with_shortcut = nn.Residual(nn.Fn("Double", lambda x: 2 * x),
                                shortcut=nn.Fn("Neg", lambda x: -x))
    assert np.asarray(with_shortcut(np.array([1.0, 2.0]))).tolist() == [1.0, 2.0]


def test_serial_uses_stack_and_passes_unused_items_through():
    # model_plus_eval from seed 000: the model uses x; y_target waits on the stack.
    model_plus_eval = nn.Serial(
        nn.Fn("Model", lambda x: x + 1),
        nn.Fn("Eval", lambda y_hat, y: jnp.sum(y_hat == y)),
    )
    assert (model_plus_eval.n_in, model_plus_eval.n_out) == (2, 1)
    assert int(model_plus_eval((np.array([1, 2, 3]), np.array([2, 0, 4])))) == 2
    # Items a sublayer doesn't consume are returned under the outputs.
    three = nn.Serial(nn.Add())
    out = nn.Serial(nn.Add(), nn.Dup())((np.array(1), np.array(2)))
    assert [int(v) for v in out] == [3, 3] and (three.n_in, three.n_out) == (2, 1)
    keep = nn.Serial(nn.Swap(), nn.Drop())
    assert (keep.n_in, keep.n_out) == (2, 1)
    assert int(keep((np.array(1), np.array(2)))) == 1


def test_n_in_n_out_of_compositions():
    assert (nn.Serial(nn.Drop(), nn.Drop()).n_in, nn.Serial(nn.Drop(), nn.Drop()).n_out) == (2, 0)
    b = nn.Branch(nn.Add(), nn.Dup())
    assert (b.n_in, b.n_out) == (2, 3)
    p = nn.Parallel(nn.Add(), nn.Dup())
    assert (p.n_in, p.n_out) == (3, 3)
    s = nn.Select([0, 1, 0], n_in=3)
    assert (s.n_in, s.n_out) == (3, 3)
    assert repr(nn.Serial()) == "Serial" and nn.Serial()(np.array(5)).item() == 5


def test_select_drops_and_reorders():
    a, b, c = np.array(1), np.array(2), np.array(3)
    assert [int(v) for v in nn.Select([2, 0])((a, b, c))] == [3, 1]
    assert int(nn.Select([1], n_in=3)((a, b, c))) == 2
    with pytest.raises(ValueError, match="out of range for n_in=2"):
        nn.Select([2], n_in=2)


def test_shape_mismatch_names_layer_path_expected_and_got():
    model = nn.Serial(nn.Dense(4), nn.Relu(), nn.Serial(nn.Dense(3), nn.Dense(2)))
    model = model.init(np.zeros((1, 5), np.float32))
    # Replace a nested weight with one of the wrong size to force a mismatch.
    inner = model.layers[2]
    bad = inner.replace(layers=(inner.layers[0], inner.layers[1].replace(w=jnp.zeros((7, 2)))))
    model = model.replace(layers=model.layers[:2] + (bad,))
    with pytest.raises(pax_trax.LayerError) as info:
        model(np.ones((1, 5), np.float32))
    err = info.value
    assert err.path == ["Serial[2]", "Serial[1]", "Dense_2"]
    assert "last axis has size 7" in str(err) and "got shape (1, 3)" in str(err)
    assert str(err).startswith("in Serial[2]/Serial[1]/Dense_2: ValueError")


def test_wrong_input_size_at_init_names_the_layer():
    class NeedsFour(pax_trax.Module):
        def __init__(self):
            self.name = "NeedsFour"

        def init_weights_and_state(self, input_signature, key):
            if input_signature.shape[-1] != 4:
                raise ValueError(f"expected last axis 4, got {input_signature.shape}")
            return self

        def forward(self, x):
            return x

    with pytest.raises(pax_trax.LayerError,
                       match=r"in Serial\[1\]/NeedsFour: ValueError: expected last axis 4, got \(2, 3\)"):
        nn.Serial(nn.Dense(3), NeedsFour()).init(shapes.ShapeDtype((2, 5)))


def test_wrong_number_of_inputs_is_explained():
    with pytest.raises(pax_trax.LayerError, match=r"in Serial: TypeError: expected 2 inputs as a tuple, "
                                                  r"got a single ndarray of shape \(2, 2\)"):
        nn.Serial(nn.Add())(np.zeros((2, 2)))
    with pytest.raises(pax_trax.LayerError, match="expected 2 inputs, got a tuple of 3"):
        nn.Add()((np.zeros(2), np.zeros(2), np.zeros(2)))


def test_embedding_float_ids_are_rejected_with_dtype():
    emb = nn.Embedding(10, 3).init(np.zeros(2, np.int32))
    with pytest.raises(pax_trax.LayerError, match="Embedding_10_3.*integer token ids, got dtype float32"):
        emb(np.zeros(2, np.float32))


def test_fn_returning_wrong_number_of_outputs():
    bad = nn.Fn("Bad", lambda x: (x, x, x), n_out=2)
    with pytest.raises(pax_trax.LayerError, match="promised n_out=2 outputs but returned 3"):
        nn.Serial(bad)(np.zeros(2))


def test_layer_error_is_also_the_original_builtin_type():
    emb = nn.Embedding(10, 3).init(np.zeros(2, np.int32))
    with pytest.raises(TypeError, match="integer token ids") as info:
        nn.Serial(emb)(np.zeros(2, np.float32))
    assert isinstance(info.value, pax_trax.LayerError)
    assert info.value.path == ["Serial[0]", "Embedding_10_3"]
    with pytest.raises(ValueError, match="not initialized"):
        nn.Dense(2)(np.zeros((1, 2), np.float32))


def test_zero_input_layers_called_plainly_and_in_serial():
    seq = nn.RngSeq(seed=0)
    new_seq, key = pax_trax.purecall(seq)
    assert key.shape == (2,) and not np.array_equal(new_seq.rng_key, seq.rng_key)
    const = nn.Fn("Const", lambda: jnp.ones(2))
    assert const.n_in == 0
    np.testing.assert_array_equal(const(), np.ones(2))
    np.testing.assert_array_equal(nn.Serial(const)(()), np.ones(2))
