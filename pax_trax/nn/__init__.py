"""Layers: Trax's catalogue and PAX's modules, one file per family.

Trax names (Serial, Dense, Embedding, ...) follow Trax's semantics; PAX names
(Linear, Sequential, Lambda, Identity, RngSeq, ...) follow PAX's.
"""

from pax_trax.nn import initializers
from pax_trax.nn.activations import Exp, Gelu, Log, Relu, Sigmoid, Softplus, Tanh
from pax_trax.nn.base import Fn, PureLayer
from pax_trax.nn.combinators import (
    Add,
    Branch,
    Drop,
    Dup,
    Multiply,
    Parallel,
    Residual,
    Select,
    Serial,
    SubtractTop,
    Swap,
)
from pax_trax.nn.core import (
    Dense,
    Dropout,
    Embedding,
    Flatten,
    LogSoftmax,
    Max,
    Mean,
    Min,
    Softmax,
    Sum,
    ToFloat,
)
from pax_trax.nn.linear import Linear
from pax_trax.nn.normalization import BatchNorm
from pax_trax.nn.sharing import Shared
from pax_trax.nn.utility import Identity, Lambda, RngSeq, Sequential

__all__ = [
    "initializers",
    # base
    "Fn",
    "PureLayer",
    # combinators
    "Serial",
    "Parallel",
    "Branch",
    "Select",
    "Residual",
    "Dup",
    "Drop",
    "Swap",
    "Add",
    "SubtractTop",
    "Multiply",
    # core
    "Dense",
    "Embedding",
    "Dropout",
    "Mean",
    "Sum",
    "Max",
    "Min",
    "LogSoftmax",
    "Softmax",
    "Flatten",
    "ToFloat",
    # activations
    "Relu",
    "Sigmoid",
    "Tanh",
    "Gelu",
    "Exp",
    "Log",
    "Softplus",
    # normalization
    "BatchNorm",
    # PAX
    "Linear",
    "Sequential",
    "Lambda",
    "Identity",
    "RngSeq",
    # sharing
    "Shared",
]
