"""`pax_trax.shapes`: ShapeDtype and signatures, as `trax.shapes`."""

from pax_trax.core.shapes import (  # noqa: F401
    ShapeDtype,
    assert_same_shape,
    assert_shape_equals,
    signature,
    splice_signatures,
)

__all__ = [
    "ShapeDtype",
    "signature",
    "splice_signatures",
    "assert_shape_equals",
    "assert_same_shape",
]
