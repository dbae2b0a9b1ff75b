"""Tests for pax_trax.nn.combinators: stack semantics, Scan/Cond/Chunk/Cache, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax.test_util import check_grads

import pax_trax
from pax_trax.core.shapes import ShapeDtype
from pax_trax.nn.base import Fn
from pax_trax.nn.combinators import (
    Add,
    Branch,
    Concatenate,
    Drop,
    Dup,
    FlattenList,
    Gate,
    Multiply,
    Parallel,
    Residual,
    Select,
    Serial,
    SerialWithSideOutputs,
    Split,
    SubtractTop,
    Swap,
)
from pax_trax.nn.control import BatchLeadingAxes, Cache, Chunk, Cond, Scan
from pax_trax.nn.core import Dense, Dropout


def _add_carry():
    """(x, carry) -> (x + carry, x + carry): Scan of it is a cumulative sum."""
    return Fn("AddCarry", lambda x, c: (x + c, x + c), n_out=2)


def _normal(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _tolist(outputs):
    return [np.asarray(o).tolist() for o in outputs]


# ------------------------------------------------------------------ n_in / n_out


@pytest.mark.parametrize(
    "layer, n_in, n_out",
    [
        (lambda: Branch(Add(), Dup()), 2, 3),
        (lambda: Parallel(Add(), Dup()), 3, 3),
        (lambda: SerialWithSideOutputs([Dup(), Dup()]), 1, 3),
        (lambda: Serial(Drop(), Drop()), 2, 0),
        (lambda: Serial(Dup(), Dup()), 1, 3),
        (lambda: Concatenate(n_items=3), 3, 1),
        (lambda: Split(n_items=4), 1, 4),
        (lambda: Gate(), 3, 1),
        (lambda: Scan(_add_carry()), 2, 2),
        (lambda: Cond(Fn("P", lambda x: x > 0), Add(), SubtractTop()), 3, 1),
        (lambda: Cache(Dup()), 1, 2),
        (lambda: Select([0, 0, 1], n_in=3), 3, 3),
        (lambda: Chunk(Add(), 2), 2, 1),
    ],
)
def test_n_in_n_out(layer, n_in, n_out):
    layer = layer()
    assert (layer.n_in, layer.n_out) == (n_in, n_out)


def test_reprs():
    assert repr(Concatenate()) == "Concatenate_in2"
    assert repr(Concatenate(n_items=3, axis=0)) == "Concatenate_axis0_in3"
    assert repr(Split(n_items=3)) == "Split_out3"
    assert repr(Serial(Dup(), Concatenate(), name="Block", sublayers_to_print=[])) == "Block"
    assert repr(Scan(_add_carry())) == "Scan_in2_out2[\n  AddCarry_in2_out2\n]"


# ---------------------------------------------------------------- simple layers


def test_concatenate_values_from_the_layers_intro():
    x0 = np.array([[1, 2, 3], [4, 5, 6]])
    x1 = np.array([[10, 20, 30], [40, 50, 60]])
    x2 = np.array([[100, 200, 300], [400, 500, 600]])
    assert Concatenate()((x0, x1)).tolist() == [[1, 2, 3, 10, 20, 30], [4, 5, 6, 40, 50, 60]]
    y = Concatenate(n_items=3, axis=0)([x0, x1, x2])
    assert y.tolist() == [
        [1, 2, 3], [4, 5, 6], [10, 20, 30], [40, 50, 60], [100, 200, 300], [400, 500, 600]
    ]
    assert Concatenate(n_items=3)((np.array([1, 2]), np.array([3, 4]), np.array([5, 6]))).tolist() \
        == [1, 2, 3, 4, 5, 6]


def test_split_inverts_concatenate():
    x = np.arange(12).reshape(2, 6)
    a, b, c = Split(n_items=3)(x)
    assert a.tolist() == [[0, 1], [6, 7]] and c.tolist() == [[4, 5], [10, 11]]
    assert Concatenate(n_items=3)((a, b, c)).tolist() == x.tolist()
    top, bottom = Split(axis=0)(x)
    assert top.tolist() == [[0, 1, 2, 3, 4, 5]] and bottom.tolist() == [[6, 7, 8, 9, 10, 11]]


def test_gate_and_arithmetic():
    m, g, c = np.array([2.0]), np.array([0.25]), np.array([6.0])
    assert Gate()((m, g, c)).tolist() == [0.25 * 2.0 + 0.75 * 6.0]
    assert SubtractTop()((np.array(3), np.array(10))).item() == 7
    assert Multiply()((np.array(3), np.array(10))).item() == 30


def test_select_drops_copies_and_reorders():
    a, b, c = np.array(1), np.array(2), np.array(3)
    assert Select([2], n_in=3)((a, b, c)).item() == 3  # drops a and b
    assert Select([], n_in=2)((a, b)) == ()
    assert _tolist(Select([1, 0, 1])((a, b))) == [2, 1, 2]
    assert _tolist(Serial(Select([0], n_in=2), Dup())((a, b))) == [1, 1]


def test_flatten_list():
    x, y, z = np.array([1]), np.array([2]), np.array([3])
    out = FlattenList()(((x, [y]), (z,)))
    assert _tolist(out) == [[1], [2], [3]]


def test_serial_with_side_outputs_moves_side_outputs_to_the_bottom():
    halve = Fn("Halve", lambda x: (x / 2, x), n_out=2)  # x -> (x/2, side x)
    layer = SerialWithSideOutputs([halve, halve])
    out = layer(np.array(8.0))
    assert _tolist(out) == [2.0, 8.0, 4.0]


# ------------------------------------------------------------------------ Scan


def test_scan_cumulative_sum_axis0():
    ys, last = Scan(_add_carry())((jnp.array([1, 2, 3]), jnp.array(0)))
    assert ys.tolist() == [1, 3, 6] and last.item() == 6


def test_scan_cumulative_sum_axis1():
    x = jnp.array([[1.0, 2, 3], [4, 5, 6]])
    layer = Scan(_add_carry(), axis=1).init((ShapeDtype((2, 3)), ShapeDtype((2,))))
    ys, last = layer((x, jnp.array([10.0, 0.0])))
    assert ys.tolist() == [[11, 13, 16], [4, 9, 15]]
    assert last.tolist() == [16, 15]


def test_scan_output_signature_and_multi_input():
    foo = Fn("Foo", lambda a, b, c: (a + b, b, c + 1), n_out=3)
    layer = Scan(foo, axis=1)
    sig = (ShapeDtype((3, 2, 7)), ShapeDtype((3, 2, 7)), ShapeDtype((3, 7)))
    assert layer.output_signature(sig) == sig
    ys, bs, count = layer((jnp.ones((3, 2, 7)), jnp.ones((3, 2, 7)), jnp.zeros((3, 7))))
    assert float(ys.sum()) == 2 * 42 and float(count[0, 0]) == 2.0


def test_scan_predict_mode_continues_from_kept_carry():
    x = jnp.array([1, 2, 3, 4, 5])
    whole = Scan(_add_carry())((x, jnp.array(0)))
    layer = Scan(_add_carry(), mode="predict").init(
        (ShapeDtype((3,), np.int32), ShapeDtype((), np.int32)))
    layer, (ys1, c1) = pax_trax.purecall(layer, (x[:3], jnp.array(0)))
    # The given carry is ignored now: the kept one continues the sequence.
    layer, (ys2, c2) = pax_trax.purecall(layer, (x[3:], jnp.array(100)))
    assert jnp.concatenate([ys1, ys2]).tolist() == whole[0].tolist() == [1, 3, 6, 10, 15]
    assert c2.item() == whole[1].item() == 15
    with pytest.raises(pax_trax.StateChangeError):
        Scan(_add_carry(), mode="predict")((x, jnp.array(0)))


def test_scan_threads_sublayer_state():
    drop = Scan(Serial(Parallel(Dropout(0.5), None), _add_carry()))
    layer = drop.init((ShapeDtype((6, 4)), ShapeDtype((4,))))
    new, (ys, _) = pax_trax.purecall(layer, (jnp.ones((6, 4)), jnp.zeros(4)))
    steps = jnp.diff(ys, axis=0, prepend=0.0)
    # Each step saw a fresh dropout mask (keys advanced inside the scan).
    assert len({tuple(r) for r in np.asarray(steps).tolist()}) > 1
    old_key = layer.layer.layers[0].layers[0].rng
    new_key = new.layer.layers[0].layers[0].rng
    assert not np.array_equal(np.asarray(old_key), np.asarray(new_key))
    # In eval mode nothing changes state, so a plain call is allowed.
    ys_eval, _ = layer.eval()((jnp.ones((6, 4)), jnp.zeros(4)))
    assert ys_eval[:, 0].tolist() == [1, 2, 3, 4, 5, 6]


def test_scan_remat_and_jit_agree():
    dense_cell = Serial(Parallel(Dense(3), None), Add(), Dup())
    layer = Scan(dense_cell).init((ShapeDtype((5, 2, 3)), ShapeDtype((2, 3))))
    remat = layer.replace(remat=True)
    x, c = _normal(1, (5, 2, 3)), jnp.ones((2, 3))
    a = layer((x, c))
    b = jax.jit(lambda m, x, c: m((x, c)))(remat, x, c)
    np.testing.assert_allclose(a[0], b[0], atol=1e-6)


def test_scan_gradients():
    dense_cell = Serial(Parallel(Dense(2), None), Add(), Fn("Tanh", jnp.tanh), Dup())
    layer = Scan(dense_cell, remat=True).init((ShapeDtype((3, 1, 2)), ShapeDtype((1, 2))))
    dense = layer.layer.layers[0].layers[0]
    x = _normal(2, (3, 1, 2))

    def loss(w, b, x, c):
        d = dense.replace(w=w, b=b)
        m = layer.replace(layer=layer.layer.replace(
            layers=(layer.layer.layers[0].replace(layers=(d,) + layer.layer.layers[0].layers[1:]),)
            + layer.layer.layers[1:]))
        ys, last = m((x, c))
        return jnp.sum(ys**2) + jnp.sum(last)

    check_grads(jax.jit(loss), (dense.w, dense.b + 0.1, x, jnp.ones((1, 2)) * 0.3), order=1,
                modes=["rev"], atol=1e-2, rtol=1e-2)


# ------------------------------------------------------------------------ Cond


def test_cond_chooses_each_branch():
    positive = Fn("Positive", lambda x: x > 0)
    layer = Cond(positive, Fn("Times10", lambda y: 10 * y), Fn("Neg", lambda y: -y))
    assert (layer.n_in, layer.n_out) == (2, 1)
    assert layer((jnp.array(1), jnp.array(5))).item() == 50
    assert layer((jnp.array(-1), jnp.array(5))).item() == -5
    identity_false = Cond(positive, Fn("Neg", lambda y: -y))
    assert identity_false((jnp.array(0), jnp.array(5))).item() == 5
    jitted = jax.jit(lambda p, y: layer((p, y)))
    assert [jitted(p, 3).item() for p in (2, -2)] == [30, -3]


def test_cond_with_multi_input_branches():
    is_big = Fn("IsBig", lambda x: x > 10)
    layer = Cond(is_big, Add(), SubtractTop())
    assert layer((jnp.array(11), jnp.array(3), jnp.array(5))).item() == 8
    assert layer((jnp.array(1), jnp.array(3), jnp.array(5))).item() == 2


def test_cond_updates_only_the_taken_branch_state():
    layer = Cond(Fn("P", lambda x: x > 0), Dropout(0.5), Dropout(0.5)).init(
        (ShapeDtype(()), ShapeDtype((8,))))
    new, _ = pax_trax.purecall(layer, (jnp.array(1.0), jnp.ones(8)))
    assert not np.array_equal(new.true.rng, layer.true.rng)
    assert np.array_equal(new.false.rng, layer.false.rng)
    new, _ = pax_trax.purecall(layer, (jnp.array(-1.0), jnp.ones(8)))
    assert np.array_equal(new.true.rng, layer.true.rng)
    assert not np.array_equal(new.false.rng, layer.false.rng)


def test_cond_rejects_mismatched_branches():
    with pytest.raises(ValueError, match="same n_in and n_out"):
        Cond(Fn("P", lambda x: x > 0), Add(), Dup())
    layer = Cond(Fn("P", lambda x: x > 0), Fn("Pair", lambda y: jnp.stack([y, y])))
    with pytest.raises(pax_trax.LayerError, match="same output signature"):
        layer.init((ShapeDtype(()), ShapeDtype((3,))))
    with pytest.raises(pax_trax.LayerError, match="same shapes and dtypes"):
        layer((jnp.array(1), jnp.ones(3)))


# ----------------------------------------------------------------- Chunk, Cache


def test_chunk_equals_unchunked_layer():
    x = _normal(0, (6, 4))
    dense = Dense(3).init(x)
    for size in (1, 2, 3, 4):  # 4 does not divide 6: passed through in one piece
        chunked = Chunk(dense, size)
        np.testing.assert_allclose(chunked(x), dense(x), atol=1e-6)
    with pytest.raises(pax_trax.LayerError, match="must divide"):
        Chunk(dense, 4, pass_unchunkable=False)(x)
    assert Chunk(dense, 0) is dense
    two_in = Chunk(Add(), 2)
    assert two_in((jnp.ones((4, 2)), jnp.ones((4, 2)))).tolist() == [[2, 2]] * 4


def test_cache_computes_once_in_predict_mode():
    inc = Fn("Inc", lambda x: x + 1)
    layer = Cache(inc).init(ShapeDtype((2,)))
    layer, y1 = pax_trax.purecall(layer, jnp.array([1.0, 2.0]))
    layer, y2 = pax_trax.purecall(layer, jnp.array([100.0, 200.0]))
    assert y1.tolist() == y2.tolist() == [2.0, 3.0]
    train = Cache(inc, mode="train")
    assert train(jnp.array([100.0, 200.0])).tolist() == [101.0, 201.0]
    multi = Cache(Dup())
    multi, (a, b) = pax_trax.purecall(multi, jnp.array(3))
    assert pax_trax.purecall(multi, jnp.array(7))[1][1].item() == 3


def test_batch_leading_axes():
    x = _normal(0, (2, 3, 4, 5))
    layer = BatchLeadingAxes(Dense(6)).init(x)
    y = layer(x)
    assert y.shape == (2, 3, 4, 6)
    np.testing.assert_allclose(y, x @ layer.layer.w + layer.layer.b, atol=1e-5)
    assert layer.output_signature(ShapeDtype((2, 3, 4, 5))).shape == (2, 3, 4, 6)
    flat2 = BatchLeadingAxes(Fn("SumLast2", lambda x: x.sum(axis=(1, 2))), n_last_axes_to_keep=2)
    assert flat2(jnp.ones((2, 3, 4, 5))).shape == (2, 3)
    with pytest.raises(ValueError, match="n_out = 1"):
        BatchLeadingAxes(Dup())


def test_residual_still_adds():
    layer = Residual(Fn("Times2", lambda x: 2 * x))
    assert layer(jnp.array([1, 2])).tolist() == [3, 6]


# ---------------------------------------------------------------------- errors


def test_stack_underflow_is_a_layer_error():
    layer = Serial(Dup(), Add(), Add())  # needs 2 items
    assert layer.n_in == 2
    with pytest.raises(pax_trax.LayerError, match=r"in Serial: .*expected 2 inputs"):
        layer(jnp.ones(3))
    with pytest.raises(pax_trax.LayerError, match="expected 3 inputs, got a tuple of 2"):
        Concatenate(n_items=3)((jnp.ones(2), jnp.ones(2)))
    lying = Fn("Lies", lambda x: x).replace(n_out=2)  # promises 2 outputs, returns 1
    with pytest.raises(pax_trax.LayerError, match=r"Serial\[1\]/Lies: .*promised n_out=2"):
        Serial(Dup(), lying, Add())(jnp.ones(2))


def test_concatenate_mismatched_shapes_names_the_path():
    layer = Serial(Dup(), Parallel(Fn("Half", lambda x: x[:, :1]), None), Concatenate(axis=0))
    with pytest.raises(pax_trax.LayerError) as info:
        layer(jnp.ones((2, 4)))
    msg = str(info.value)
    assert "Serial[2]/Concatenate_axis0" in msg and "(2, 1)" in msg and "(2, 4)" in msg
    nested = Serial(Dense(4), Serial(Dup(), Parallel(Fn("Half", lambda x: x[:, :1]), None),
                                     Concatenate(axis=0)))
    with pytest.raises(pax_trax.LayerError, match=r"Serial\[1\]/Serial\[2\]/Concatenate"):
        nested.init(ShapeDtype((2, 3)))


def test_constructor_errors():
    with pytest.raises(ValueError, match="n_items"):
        Concatenate(n_items=0)
    with pytest.raises(ValueError, match="n_carry"):
        Scan(Dup(), n_carry=1)
    with pytest.raises(ValueError, match="mode"):
        Scan(_add_carry(), mode="decode")
    with pytest.raises(pax_trax.LayerError, match="cannot be split"):
        Split(n_items=3)(jnp.ones(4))
    with pytest.raises(TypeError, match="expected a layer"):
        Scan(lambda x: x)


# ------------------------------------------------------- property: stack model


class _Underflow(Exception):  # noqa: N818 (a signal that the stack is too short, caught below)
    pass


def _model_apply(spec, items):
    """Trax's stack semantics on Python lists; `items[0]` is the stack top."""
    kind = spec[0]
    items = list(items)

    def need(n):
        if len(items) < n:
            raise _Underflow
        return items[:n], items[n:]

    if kind == "dup":
        (a,), rest = need(1)
        return [a, a] + rest
    if kind == "drop":
        _, rest = need(1)
        return rest
    if kind == "swap":
        (a, b), rest = need(2)
        return [b, a] + rest
    if kind == "add":
        (a, b), rest = need(2)
        return [a + b] + rest
    if kind == "select":
        indices, n_in = spec[1], spec[2]
        taken, rest = need(n_in)
        return [taken[i] for i in indices] + rest
    if kind == "serial":
        for sub in spec[1]:
            items = _model_apply(sub, items)
        return items
    if kind in ("parallel", "branch"):
        subs = spec[1]
        n_ins = [_model_n_in(s) for s in subs]
        if kind == "branch":
            taken, rest = need(max(n_ins))
            spans = [taken[:n] for n in n_ins]
        else:
            taken, rest = need(sum(n_ins))
            spans, start = [], 0
            for n in n_ins:
                spans.append(taken[start:start + n])
                start += n
        out = []
        for s, span in zip(subs, spans):
            out.extend(_model_apply(s, span))
        return out + rest
    raise AssertionError(kind)


def _model_n_in(spec):
    for k in range(0, 64):
        try:
            _model_apply(spec, list(range(k)))
            return k
        except _Underflow:
            continue
    raise AssertionError("no n_in found")


def _build(spec):
    kind = spec[0]
    if kind == "dup":
        return Dup()
    if kind == "drop":
        return Drop()
    if kind == "swap":
        return Swap()
    if kind == "add":
        return Add()
    if kind == "select":
        return Select(list(spec[1]), n_in=spec[2])
    subs = [_build(s) for s in spec[1]]
    return {"serial": Serial, "parallel": Parallel, "branch": Branch}[kind](*subs)


_leaves = st.one_of(
    st.sampled_from([("dup",), ("drop",), ("swap",), ("add",)]),
    st.integers(1, 3).flatmap(
        lambda n_in: st.lists(st.integers(0, n_in - 1), min_size=1, max_size=3).map(
            lambda idx: ("select", tuple(idx), n_in))),
)


def _extend(children):
    subs = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        subs.map(lambda s: ("serial", tuple(s))),
        subs.map(lambda s: ("parallel", tuple(s))),
        st.lists(children, min_size=2, max_size=3).map(lambda s: ("branch", tuple(s))),
    )


_specs = st.recursive(_leaves, _extend, max_leaves=6)


def _depth(spec):
    return 0 if spec[0] not in ("serial", "parallel", "branch") else 1 + max(
        _depth(s) for s in spec[1])


@given(spec=_specs.filter(lambda s: _depth(s) <= 3), data=st.data())
def test_random_compositions_follow_the_stack_model(spec, data):
    layer = _build(spec)
    n_in = _model_n_in(spec)
    values = data.draw(st.lists(st.integers(-50, 50), min_size=n_in, max_size=n_in))
    expected = _model_apply(spec, values)
    assert (layer.n_in, layer.n_out) == (n_in, len(expected))
    inputs = [jnp.array(v, jnp.int32) for v in values]
    out = layer(inputs[0] if n_in == 1 else tuple(inputs))
    got = [out] if layer.n_out == 1 else list(out)
    assert [int(v) for v in got] == expected
