import jax.numpy as jnp
import numpy as np
import pytest

from pax_trax import shapes
from pax_trax.shapes import ShapeDtype


def test_shape_dtype_canonicalizes_and_compares():
    sd = ShapeDtype([2, 3], "int32")
    assert sd.shape == (2, 3) and sd.dtype == np.int32
    assert sd.as_tuple() == ((2, 3), np.dtype("int32"))
    assert sd == ShapeDtype((2, 3), np.int32)
    assert hash(sd) == hash(ShapeDtype((2, 3), np.int32))
    assert ShapeDtype((2,)).dtype == np.float32  # Trax's default
    assert repr(sd) == "ShapeDtype{shape:(2, 3), dtype:int32}"
    assert ShapeDtype((2,), jnp.bfloat16).dtype == jnp.bfloat16


def test_shape_dtype_is_immutable_with_replace():
    sd = ShapeDtype((2, 3))
    with pytest.raises(AttributeError, match="immutable"):
        sd.shape = (1,)
    assert sd.replace(shape=(4,)) == ShapeDtype((4,))
    assert sd.replace(dtype=np.int32).shape == (2, 3)
    with pytest.raises(TypeError, match="unknown fields"):
        sd.replace(size=3)


def test_shape_dtype_rejects_bad_shapes():
    with pytest.raises(TypeError, match="int or None"):
        ShapeDtype((2, "a"))
    assert ShapeDtype((None, 3)).shape == (None, 3)


def test_signature_of_nested_structures():
    x = np.zeros((2, 3), np.float32)
    y = jnp.zeros((4,), jnp.int32)
    assert shapes.signature(x) == ShapeDtype((2, 3), np.float32)
    assert shapes.signature([x, y]) == (ShapeDtype((2, 3)), ShapeDtype((4,), np.int32))
    assert shapes.signature({"a": x}) == {"a": ShapeDtype((2, 3))}
    assert shapes.signature(ShapeDtype((1,))) == ShapeDtype((1,))
    with pytest.raises(TypeError, match="expected an array"):
        shapes.signature("text")


def test_splice_signatures_flattens_top_level():
    a, b, c, d = (ShapeDtype((i,)) for i in range(1, 5))
    assert shapes.splice_signatures(a, (b, c), (), d) == (a, b, c, d)
    assert shapes.splice_signatures((a,)) == a


def test_assert_shape_helpers():
    shapes.assert_shape_equals(np.zeros((2, 3)), (2, 3))
    with pytest.raises(AssertionError, match=r"Expected shape \(3, 2\), got \(2, 3\)"):
        shapes.assert_shape_equals(np.zeros((2, 3)), (3, 2))
    shapes.assert_same_shape(np.zeros((2,)), jnp.ones((2,)))
    with pytest.raises(AssertionError, match="same shape"):
        shapes.assert_same_shape(np.zeros((2,)), np.zeros((3,)))


def test_init_from_float64_numpy_example_uses_jax_dtype():
    from pax_trax import nn

    bn = nn.BatchNorm(axis=(0,)).init(np.zeros((8, 3)))  # float64 example, no warning
    assert bn.running_mean.dtype == jnp.float32


def test_named_tuples_keep_their_type_in_signatures():
    from typing import NamedTuple

    from pax_trax.core.shapes import from_jax, to_jax

    class Carry(NamedTuple):
        h: np.ndarray
        c: np.ndarray

    sig = shapes.signature(Carry(np.zeros(2, np.float32), np.zeros(3, np.float32)))
    assert isinstance(sig, Carry) and sig.c == ShapeDtype((3,))
    assert isinstance(to_jax(sig), Carry) and isinstance(from_jax(to_jax(sig)), Carry)
