"""Tests for pax_trax.nn.rnn: Trax cells/layers and PAX cells, checked against Flax."""

import flax.linen as flax_nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import pax_trax
from pax_trax.core.shapes import ShapeDtype
from pax_trax.nn.rnn import (
    GRU,
    LSTM,
    SRU,
    ConvGRUCell,
    GRUCell,
    GRUState,
    InnerSRUCell,
    LSTMCell,
    LSTMState,
    MakeZeroState,
    PaxGRU,
    PaxLSTM,
    VanillaRNN,
    VanillaRNNState,
)

B, D, H = 2, 3, 4


def _normal(seed, shape, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def _flax_params(cell, x, h):
    """Random non-trivial parameters in the layout `cell` expects (biases included)."""
    d, n = x.shape[-1], h.shape[-1]
    names = {flax_nn.LSTMCell: ("i", "f", "g", "o"), flax_nn.GRUCell: ("r", "z", "n"),
             flax_nn.SimpleCell: ("",)}[type(cell)]
    params, seed = {}, 30
    for g in names:
        params["i" + g] = {"kernel": _normal(seed, (d, n), 0.5),
                           "bias": _normal(seed + 1, (n,), 0.5)}
        params["h" + g] = {"kernel": _normal(seed + 2, (n, n), 0.5),
                           "bias": _normal(seed + 3, (n,), 0.5)}
        seed += 4
    # Drop the biases the cell does not have (its init tells which).
    carry = jnp.asarray(h)
    if isinstance(cell, flax_nn.LSTMCell):
        carry = (carry, carry)
    shapes = jax.eval_shape(lambda: cell.init(jax.random.PRNGKey(0), carry, jnp.asarray(x)))
    for name, leaves in shapes["params"].items():
        assert set(leaves) <= set(params[name])
        params[name] = {k: params[name][k] for k in leaves}
    assert set(params) == set(shapes["params"])
    return params


def _flax_apply(cell, params, carry, x):
    return jax.jit(cell.apply)({"params": params}, carry, x)


def _k(p):
    return np.asarray(p["kernel"])


def _b(p):
    return np.asarray(p["bias"])


# ------------------------------------------------------------------ LSTM cells


def test_lstm_cell_matches_flax():
    x, c, h = _normal(0, (B, D)), _normal(1, (B, H)), _normal(2, (B, H))
    flax_cell = flax_nn.LSTMCell(features=H)
    p = _flax_params(flax_cell, x, h)
    (fc, fh), fy = _flax_apply(flax_cell, p, (c, h), x)
    # Trax gate order i, j(=g), f, o; rows: x then h; flax's biases live on the h maps.
    gates = ["i", "g", "f", "o"]
    w = np.concatenate([np.concatenate([_k(p["i" + g]), _k(p["h" + g])], axis=0) for g in gates],
                       axis=1)
    b = np.concatenate([_b(p["h" + g]) for g in gates])
    cell = LSTMCell(H).init((ShapeDtype((B, D)), ShapeDtype((B, 2 * H)))).replace(w=w, b=b)
    y, state = cell((x, np.concatenate([c, h], axis=-1)))
    np.testing.assert_allclose(y, fy, atol=1e-5)
    np.testing.assert_allclose(state, np.concatenate([fc, fh], axis=-1), atol=1e-5)


def test_pax_lstm_matches_flax():
    x, c, h = _normal(3, (B, D)), _normal(4, (B, H)), _normal(5, (B, H))
    flax_cell = flax_nn.LSTMCell(features=H)
    p = _flax_params(flax_cell, x, h)
    (fc, fh), fy = _flax_apply(flax_cell, p, (c, h), x)
    fgb = 0.7  # PAX adds forget_gate_bias inside the sigmoid: take it off the copied bias
    gates = ["i", "g", "f", "o"]
    w = np.concatenate([np.concatenate([_k(p["i" + g]), _k(p["h" + g])], axis=0) for g in gates],
                       axis=1)
    b = np.concatenate([_b(p["h" + g]) - (fgb if g == "f" else 0.0) for g in gates])
    cell = PaxLSTM(D, H, forget_gate_bias=fgb, rng_key=jax.random.PRNGKey(0))
    cell = cell.replace(fc=cell.fc.replace(weight=w, bias=b))
    state, y = cell(LSTMState(hidden=h, cell=c), x)
    assert isinstance(state, LSTMState)
    np.testing.assert_allclose(y, fy, atol=1e-5)
    np.testing.assert_allclose(state.hidden, fh, atol=1e-5)
    np.testing.assert_allclose(state.cell, fc, atol=1e-5)


# ------------------------------------------------------------------- GRU cells




def _flax_gru_params(x, h):
    flax_cell = flax_nn.GRUCell(features=H)
    p = _flax_params(flax_cell, x, h)
    # Flax applies the reset gate after the recurrent matmul, r * (W_hn h + b_hn);
    # Trax/PAX apply it before: W_h (r * h). They agree when W_hn is diagonal
    # and b_hn = 0, which keeps every other weight (and the reset gate) general.
    p = jax.tree_util.tree_map(np.asarray, p)
    p["hn"] = {"kernel": np.diag(_normal(20, (H,))), "bias": np.zeros(H, np.float32)}
    return flax_cell, p


def test_gru_cell_matches_flax():
    x, h = _normal(6, (B, D)), _normal(7, (B, H))
    flax_cell, p = _flax_gru_params(x, h)
    _, fy = _flax_apply(flax_cell, p, h, x)
    # Trax: u * s + (1 - u) * tanh(c)  ==  flax: z * h + (1 - z) * n, so u = z.
    w1 = np.concatenate([np.concatenate([_k(p["iz"]), _k(p["hz"])], axis=0),
                         np.concatenate([_k(p["ir"]), _k(p["hr"])], axis=0)], axis=1)
    b1 = np.concatenate([_b(p["iz"]), _b(p["ir"])])
    w2 = np.concatenate([_k(p["in"]), _k(p["hn"])], axis=0)
    b2 = _b(p["in"])
    cell = GRUCell(H).init((ShapeDtype((B, D)), ShapeDtype((B, H))))
    cell = cell.replace(w1=w1, b1=b1, w2=w2, b2=b2)
    y, state = cell((x, h))
    np.testing.assert_allclose(y, fy, atol=1e-5)
    np.testing.assert_allclose(state, fy, atol=1e-5)


def test_pax_gru_matches_flax():
    x, h = _normal(8, (B, D)), _normal(9, (B, H))
    flax_cell, p = _flax_gru_params(x, h)
    _, fy = _flax_apply(flax_cell, p, h, x)
    # PAX: (1 - z) * h + z * h_hat, so PAX's z = 1 - flax's z: negate its pre-activation.
    w_zr = np.concatenate([-np.concatenate([_k(p["iz"]), _k(p["hz"])], axis=0),
                           np.concatenate([_k(p["ir"]), _k(p["hr"])], axis=0)], axis=1)
    b_zr = np.concatenate([-_b(p["iz"]), _b(p["ir"])])
    w_h = np.concatenate([_k(p["in"]), _k(p["hn"])], axis=0)
    cell = PaxGRU(D, H, rng_key=jax.random.PRNGKey(0))
    cell = cell.replace(xh_zr_fc=cell.xh_zr_fc.replace(weight=w_zr, bias=b_zr),
                        xh_h_fc=cell.xh_h_fc.replace(weight=w_h, bias=_b(p["in"])))
    state, y = cell(GRUState(h), x)
    assert isinstance(state, GRUState)
    np.testing.assert_allclose(y, fy, atol=1e-5)
    np.testing.assert_allclose(state.hidden, fy, atol=1e-5)


def test_gru_cells_reset_gate_by_hand():
    # One unit, one input: every quantity is computable by hand.
    x, s = np.array([[1.0]], np.float32), np.array([[0.5]], np.float32)
    cell = GRUCell(1).init((ShapeDtype((1, 1)), ShapeDtype((1, 1)))).replace(
        w1=np.array([[0.0, 0.0], [0.0, 0.0]], np.float32), b1=np.zeros(2, np.float32),
        w2=np.array([[1.0], [2.0]], np.float32), b2=np.zeros(1, np.float32))
    y, _ = cell((x, s))  # u = r = 0.5; c = 1 + 2 * 0.25 = 1.5
    expected = 0.5 * 0.5 + 0.5 * np.tanh(1.5)
    np.testing.assert_allclose(y, [[expected]], atol=1e-6)


# ------------------------------------------------------------------ VanillaRNN


def test_vanilla_rnn_matches_flax_simple_cell():
    x, h = _normal(11, (B, D)), _normal(12, (B, H))
    flax_cell = flax_nn.SimpleCell(features=H)
    p = _flax_params(flax_cell, x, h)
    _, fy = _flax_apply(flax_cell, p, h, x)
    w = np.concatenate([_k(p["i"]), _k(p["h"])], axis=0)
    cell = VanillaRNN(D, H, rng_key=jax.random.PRNGKey(0))
    cell = cell.replace(fc=cell.fc.replace(weight=w, bias=_b(p["i"])))
    state, y = cell(VanillaRNNState(h), x)
    assert isinstance(state, VanillaRNNState)
    np.testing.assert_allclose(y, fy, atol=1e-5)
    np.testing.assert_allclose(state.hidden, fy, atol=1e-5)


@pytest.mark.parametrize("cls, state_type", [
    (VanillaRNN, VanillaRNNState), (PaxLSTM, LSTMState), (PaxGRU, GRUState)])
def test_pax_cells_initial_state_init_and_scan(cls, state_type):
    cell = cls(D, H, rng_key=jax.random.PRNGKey(1))
    s0 = cell.initial_state(B)
    assert isinstance(s0, state_type)
    assert all(v.shape == (B, H) and not v.any() for v in s0)
    # Without a key the cell is created empty and initialized by init(...).
    empty = cls(D, H)
    with pytest.raises(pax_trax.LayerError, match="not initialized"):
        empty(s0, np.ones((B, D), np.float32))
    made = empty.init((s0, ShapeDtype((B, D))), jax.random.PRNGKey(1))
    xs = _normal(13, (5, B, D))
    step = lambda s, x: cell(s, x)  # noqa: E731
    last, ys = jax.lax.scan(step, s0, xs)
    assert ys.shape == (5, B, H) and isinstance(last, state_type)
    same = jax.tree_util.tree_map(np.allclose, jax.tree_util.tree_leaves(cell),
                                  jax.tree_util.tree_leaves(made))
    assert all(same)  # the same key gives the same weights either way
    with pytest.raises(pax_trax.LayerError, match="input_dim=3"):
        cell(s0, np.ones((B, D + 1), np.float32))


def test_pax_lstm_forget_gate_bias_by_hand():
    # All-zero weights: every gate pre-activation is 0 except f gets the bias.
    cell = PaxLSTM(1, 1, forget_gate_bias=2.0, w_init=lambda shape, key: jnp.zeros(shape),
                   rng_key=jax.random.PRNGKey(0))
    state, h = cell(LSTMState(hidden=np.zeros((1, 1)), cell=np.ones((1, 1))), np.ones((1, 1)))
    c = 1.0 / (1.0 + np.exp(-2.0))  # sigmoid(2) * 1 + sigmoid(0) * tanh(0)
    np.testing.assert_allclose(state.cell, [[c]], atol=1e-6)
    np.testing.assert_allclose(h, [[0.5 * np.tanh(c)]], atol=1e-6)


# -------------------------------------------------------------- gradients


def test_lstm_cell_gradients():
    cell = LSTMCell(2).init((ShapeDtype((1, 2)), ShapeDtype((1, 4))))
    x, s = _normal(14, (1, 2)), _normal(15, (1, 4))

    def loss(w, b, x, s):
        y, new_s = cell.replace(w=w, b=b)((x, s))
        return jnp.sum(y * y) + jnp.sum(new_s)

    check_grads(jax.jit(loss), (cell.w, cell.b, x, s), order=1, modes=["rev"], atol=1e-2, rtol=1e-2)


def test_gru_cell_gradients():
    cell = GRUCell(2, kernel_initializer=lambda shape, key: jax.random.normal(key, shape))
    cell = cell.init((ShapeDtype((1, 2)), ShapeDtype((1, 2))))
    x, s = _normal(16, (1, 2)), _normal(17, (1, 2))

    def loss(w1, b1, w2, b2, x, s):
        y, _ = cell.replace(w1=w1, b1=b1, w2=w2, b2=b2)((x, s))
        return jnp.sum(jnp.sin(y))

    check_grads(jax.jit(loss), (cell.w1, cell.b1, cell.w2, cell.b2, x, s), order=1, modes=["rev"],
                atol=1e-2, rtol=1e-2)


# --------------------------------------------------------- Trax RNN layers


def test_make_zero_state():
    z = MakeZeroState(depth_multiplier=2)(np.ones((2, 5, 3), np.float32))
    assert z.shape == (2, 6) and not z.any()
    with pytest.raises(pax_trax.LayerError, match="rank 3"):
        MakeZeroState()(np.ones((2, 3), np.float32))


def test_lstm_layer_equals_unrolled_cell():
    x = _normal(18, (B, 5, H))
    lstm = LSTM(H).init(x)
    assert repr(lstm) == f"LSTM_{H}" and (lstm.n_in, lstm.n_out) == (1, 1)
    cell = lstm.layers[1].layer
    state = np.zeros((B, 2 * H), np.float32)
    outs = []
    for t in range(5):
        y, state = cell((x[:, t], state))
        outs.append(y)
    np.testing.assert_allclose(lstm(x), np.stack(outs, axis=1), atol=1e-5)
    both = LSTM(H, initial_state=True, return_state=True)
    assert (both.n_in, both.n_out) == (2, 2)
    both = both.init((x, ShapeDtype((B, 2 * H))))
    both = both.replace(layers=(both.layers[0].replace(layer=cell),))
    ys, last = both((x, np.zeros((B, 2 * H), np.float32)))
    np.testing.assert_allclose(last, state, atol=1e-5)
    with pytest.raises(pax_trax.LayerError, match=r"LSTM_4\[1\]/Scan\[0\]/LSTMCell"):
        LSTM(H).init(ShapeDtype((B, 5, H + 1)))


def test_lstm_predict_mode_is_incremental():
    x = _normal(19, (B, 6, H))
    full = LSTM(H).init(x)
    pred = LSTM(H, mode="predict").init(x)
    pred = pred.replace(layers=(pred.layers[0],
                                pred.layers[1].replace(layer=full.layers[1].layer),
                                pred.layers[2]))
    pred, y1 = pax_trax.purecall(pred, x[:, :4])
    pred, y2 = pax_trax.purecall(pred, x[:, 4:])
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=1), full(x), atol=1e-5)


def test_gru_layer_equals_unrolled_cell():
    x = _normal(20, (B, 4, H))
    gru = GRU(H).init(x)
    assert repr(gru) == f"GRU_{H}"
    cell = gru.layers[1].layer
    s, outs = np.zeros((B, H), np.float32), []
    for t in range(4):
        y, s = cell((x[:, t], s))
        outs.append(y)
    np.testing.assert_allclose(gru(x), np.stack(outs, axis=1), atol=1e-5)


def test_sru_matches_its_equations():
    x = _normal(21, (B, 4, 3))
    sru = SRU(3).init(x)
    assert repr(sru) == "SRU_3"
    dense = sru.layers[0].layers[1].layers[0]
    r_f_y = x @ np.asarray(dense.w) + np.asarray(dense.b)
    r, f, y = np.split(r_f_y, 3, axis=-1)
    r, f = 1 / (1 + np.exp(-r)), 1 / (1 + np.exp(-f))
    c, hs = np.zeros((B, 3), np.float32), []
    for t in range(4):
        c = f[:, t] * c + (1 - f[:, t]) * y[:, t]
        hs.append(c * r[:, t] + x[:, t] * (1 - r[:, t]) * np.sqrt(3))
    np.testing.assert_allclose(sru(x), np.stack(hs, axis=1), atol=1e-5)
    assert InnerSRUCell().n_in == 3 and InnerSRUCell().n_out == 2
    stacked = SRU(3, n_layers=2).init(x)
    assert stacked(x).shape == x.shape


def test_conv_gru_cell_shapes_and_gating():
    s = _normal(22, (1, 5, 5, 2))
    cell = ConvGRUCell(2).init(s).eval()  # eval: no dropout
    assert (cell.n_in, cell.n_out) == (1, 1)
    out = cell(s)
    assert out.shape == s.shape
    # new_s = u * s + (1 - u) * c with u, c in (0, 1) and (-1, 1): a convex mix.
    assert np.all(np.abs(out) <= np.maximum(np.abs(s), 1.0) + 1e-6)
    _, train_out = pax_trax.purecall(cell.train(), s)
    assert train_out.shape == s.shape


@pytest.mark.parametrize("make", [LSTM, GRU])
def test_layers_equal_a_python_loop_over_the_cell(make):
    # Scan hoists the input projection out of the loop (scan_prepare/scan_step);
    # the result must equal running the cell's own forward step by step.
    x = _normal(40, (2, 5, 3))
    layer = make(3, mode="eval").init(x, jax.random.PRNGKey(1))
    cell = [m for m in layer.modules() if isinstance(m, (LSTMCell, GRUCell))][0]
    depth = 2 * 3 if make is LSTM else 3
    state = np.zeros((2, depth), np.float32)
    outputs = []
    for t in range(5):
        y, state = cell((x[:, t], state))
        outputs.append(y)
    np.testing.assert_allclose(layer(x), np.stack(outputs, axis=1), rtol=1e-5, atol=1e-6)
