"""Argument checks shared by the model constructors (errors name the model)."""

from __future__ import annotations

import numpy as np


def positive_int(value, label, model):
    """`value` as an int, or a ValueError naming `model` and `label`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{model}: {label} must be a positive int, got {value!r}.")
    return int(value)


def non_negative_int(value, label, model):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{model}: {label} must be an int >= 0, got {value!r}.")
    return int(value)


def rate(value, label, model):
    """A probability in [0, 1) (dropout rates)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{model}: {label} must be a float in [0, 1), got {value!r}.")
    return float(value)


def layer_factory(value, label, model):
    if not callable(value):
        raise TypeError(
            f"{model}: {label} must be a layer factory such as nn.Relu (called once per "
            f"block), got {value!r}.")
    return value
