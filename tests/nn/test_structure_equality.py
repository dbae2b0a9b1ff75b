"""Identically built modules have equal pytree structure (so jit reuses its programs).

Layer functions and initializers sit in static fields, which are part of the
structure; they compare by value (`nn.base.Partial`, `initializers.Initializer`),
never by identity.
"""

import pickle

import jax
import numpy as np
import pytest

from pax_trax import models, nn
from pax_trax.core.module import Module
from pax_trax.nn import initializers


def _no_argument_layers():
    for name in nn.__all__:
        factory = getattr(nn, name)
        if not callable(factory):
            continue
        try:
            layer = factory()
        except Exception:  # needs arguments
            continue
        if isinstance(layer, Module):
            yield name, factory


NO_ARGUMENT_LAYERS = list(_no_argument_layers())

SMALL_MODELS = {
    "TransformerLM": lambda: models.TransformerLM(10, d_model=4, d_ff=8, n_layers=1, n_heads=2),
    "Transformer": lambda: models.Transformer(10, d_model=4, d_ff=8, n_encoder_layers=1,
                                              n_decoder_layers=1, n_heads=2),
    "TransformerEncoder": lambda: models.TransformerEncoder(10, d_model=4, d_ff=8, n_layers=1,
                                                            n_heads=2),
    "RNNLM": lambda: models.RNNLM(10, d_model=4),
    "GRULM": lambda: models.GRULM(10, d_model=4),
    "MLP": lambda: models.MLP((4, 2)),
    "Resnet50": lambda: models.Resnet50(d_hidden=4, n_output_classes=3),
    "WideResnet": lambda: models.WideResnet(n_blocks=1),
    "LSTM": lambda: nn.LSTM(4),
    "Chunk": lambda: nn.Chunk(nn.Dense(2), 3),
    "Mean": lambda: nn.Mean(axis=[0, 1]),
}


def test_there_are_many_no_argument_layers():
    assert len(NO_ARGUMENT_LAYERS) > 40


@pytest.mark.parametrize("name, factory", NO_ARGUMENT_LAYERS, ids=[n for n, _ in NO_ARGUMENT_LAYERS])
def test_layer_built_twice_has_equal_structure(name, factory):
    assert jax.tree_util.tree_structure(factory()) == jax.tree_util.tree_structure(factory())


@pytest.mark.parametrize("name", sorted(SMALL_MODELS))
def test_model_built_twice_has_equal_structure(name):
    make = SMALL_MODELS[name]
    assert jax.tree_util.tree_structure(make()) == jax.tree_util.tree_structure(make())


def test_jit_does_not_retrace_for_an_identical_model():
    traces = []

    @jax.jit
    def apply(model, x):
        traces.append(1)
        return model(x)

    x = np.zeros((1, 3), np.int32)
    for _ in range(2):
        model = models.TransformerLM(10, d_model=4, d_ff=8, n_layers=1, n_heads=2, mode="eval")
        apply(model.init(x, jax.random.PRNGKey(0)), x)
    assert len(traces) == 1


def test_initializers_are_values():
    a, b = initializers.GlorotUniformInitializer(), initializers.GlorotUniformInitializer()
    assert a == b and hash(a) == hash(b)
    assert a != initializers.GlorotUniformInitializer(scale=2.0)
    assert a != initializers.LeCunUniformInitializer()
    key = jax.random.PRNGKey(0)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(a))((3, 4), key), a((3, 4), key))
    with pytest.raises(AttributeError, match="immutable"):
        a.scale = 3.0
