"""pax_trax: immutable pytree modules with Trax's layers, models and training.

    >>> import numpy as np, pax_trax
    >>> from pax_trax import nn
    >>> model = nn.Serial(nn.Embedding(8192, 256), nn.Mean(axis=1), nn.Dense(2))
    >>> model = model.init(np.zeros((1, 10), np.int32))
    >>> pax_trax.count_parameters(model)
    2097666
"""

from pax_trax import nn, shapes
from pax_trax.core.errors import FrozenModuleError, LayerError, StateChangeError
from pax_trax.core.module import (
    Module,
    param,
    purecall,
    rng_state,
    state,
    stateful,
    static,
    submodule,
)
from pax_trax.core.summary import count_parameters

__version__ = "0.1.0"

__all__ = [
    "Module",
    "param",
    "state",
    "rng_state",
    "static",
    "submodule",
    "purecall",
    "stateful",
    "count_parameters",
    "LayerError",
    "FrozenModuleError",
    "StateChangeError",
    "nn",
    "shapes",
    "__version__",
]
