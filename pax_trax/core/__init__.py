"""The module system: Module, fields, purecall, shapes, errors."""

from pax_trax.core import shapes
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

__all__ = [
    "Module",
    "param",
    "state",
    "rng_state",
    "static",
    "submodule",
    "purecall",
    "stateful",
    "shapes",
    "count_parameters",
    "LayerError",
    "FrozenModuleError",
    "StateChangeError",
]
