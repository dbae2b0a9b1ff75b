"""purecall, state changes, and the error a plain call gives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax_trax
from pax_trax import nn
from pax_trax.core.module import Module, param, state, stateful


def test_purecall_returns_updated_batchnorm_statistics():
    x = np.array([[1.0, 10.0], [3.0, 30.0]], np.float32)
    bn = nn.BatchNorm(axis=(0,), momentum=0.9).init(x)
    bn2, y = pax_trax.purecall(bn, x)
    # Batch mean [2, 20], variance [1, 100]; running = 0.9 * old + 0.1 * batch.
    np.testing.assert_allclose(bn2.running_mean, [0.2, 2.0], rtol=1e-6)
    np.testing.assert_allclose(bn2.running_var, [0.9 + 0.1, 0.9 + 10.0], rtol=1e-6)
    assert int(bn2.n_batches) == 1
    np.testing.assert_allclose(y, [[-1.0, -1.0], [1.0, 1.0]], atol=1e-4)
    # The input module is unchanged (immutable).
    np.testing.assert_array_equal(bn.running_mean, [0.0, 0.0])


def test_purecall_advances_dropout_rng_and_masks_differ():
    drop = nn.Dropout(0.5).init(np.zeros((100,), np.float32))
    x = np.ones((100,), np.float32)
    drop2, y1 = pax_trax.purecall(drop, x)
    drop3, y2 = pax_trax.purecall(drop2, x)
    assert not np.array_equal(drop.rng, drop2.rng) and not np.array_equal(drop2.rng, drop3.rng)
    assert set(np.unique(y1)) <= {0.0, 2.0}  # survivors scaled by 1 / (1 - rate)
    assert not np.array_equal(y1, y2)
    # Same key, same mask: calls are pure functions of the module.
    _, y1_again = pax_trax.purecall(drop, x)
    np.testing.assert_array_equal(y1, y1_again)


def test_plain_call_of_state_changing_module_raises_and_names_purecall():
    model = nn.Serial(nn.Dense(3), nn.Dropout(0.5)).init(np.zeros((2, 4), np.float32))
    with pytest.raises(pax_trax.StateChangeError, match=r"pax_trax.purecall\(model, x\)"):
        model(np.ones((2, 4), np.float32))
    with pytest.raises(pax_trax.StateChangeError):
        nn.BatchNorm(axis=(0,)).init(np.zeros((2, 3), np.float32))(np.ones((2, 3), np.float32))


def test_plain_call_is_fine_when_state_does_not_change():
    model = nn.Serial(nn.Dense(3), nn.Dropout(0.5), nn.BatchNorm(axis=(0,))).init(
        np.zeros((2, 4), np.float32)
    )
    y = model.eval()(np.ones((2, 4), np.float32))
    assert y.shape == (2, 3)
    assert nn.Dropout(0.0).init(np.zeros(3))(np.ones(3, np.float32)).tolist() == [1, 1, 1]


def test_plain_call_check_works_under_jit():
    model = nn.Dropout(0.5).init(np.zeros(4, np.float32))
    with pytest.raises(pax_trax.StateChangeError):
        jax.jit(lambda m, x: m(x))(model, np.ones(4, np.float32))
    new, y = jax.jit(pax_trax.purecall)(model, np.ones(4, np.float32))
    assert not np.array_equal(new.rng, model.rng)


def test_stateful_method_and_rngseq():
    seq = nn.RngSeq(seed=3)
    seq2, key = pax_trax.purecall(seq.next_rng_key)
    np.testing.assert_array_equal(key, jax.random.split(jax.random.PRNGKey(3), 2)[1])
    seq3, keys = pax_trax.purecall(seq2.next_rng_key, 3)
    assert len(keys) == 3 and not np.array_equal(seq3.rng_key, seq2.rng_key)
    with pytest.raises(pax_trax.StateChangeError, match=r"purecall\(module.next_rng_key"):
        seq.next_rng_key()
    explicit = nn.RngSeq(rng_key=jax.random.PRNGKey(9), seed=1)
    np.testing.assert_array_equal(explicit.rng_key, jax.random.PRNGKey(9))  # rng_key wins


def test_purecall_with_custom_stateful_method_and_kwargs():
    class Counter(Module):
        count = state()
        step = param()

        def __init__(self):
            self.count = jnp.zeros((), jnp.int32)
            self.step = jnp.ones(())

        @stateful
        def add(self, n, *, times=1):
            return self.replace(count=self.count + n * times), self.count

        @stateful
        def peek(self):
            return self, self.count

    c = Counter()
    c, before = pax_trax.purecall(c.add, 2, times=3)
    assert int(before) == 0 and int(c.count) == 6
    assert int(c.peek()) == 6  # no state change: a plain call is allowed
    with pytest.raises(TypeError, match="purecall expects a module"):
        pax_trax.purecall(lambda x: x, 1)


def test_forward_with_state_must_return_pair():
    class Broken(Module):
        def __init__(self):
            pass

        def forward_with_state(self, x):
            return x

    with pytest.raises(pax_trax.LayerError, match=r"must return \(new_module, outputs\)"):
        Broken()(np.ones(2))


def test_reseed_replaces_every_rng_key_deterministically():
    model = nn.Serial(nn.Dense(3), nn.Dropout(0.5), nn.Serial(nn.Dropout(0.5))).init(
        np.zeros((2, 4), np.float32))
    a = model.reseed(jax.random.PRNGKey(1))
    b = model.reseed(jax.random.PRNGKey(1))
    c = model.reseed(jax.random.PRNGKey(2))
    keys_a = [a.layers[1].rng, a.layers[2].layers[0].rng]
    np.testing.assert_array_equal(keys_a[0], b.layers[1].rng)
    assert not np.array_equal(keys_a[0], keys_a[1])  # each field gets its own key
    assert not np.array_equal(keys_a[0], c.layers[1].rng)
    assert keys_a[0].dtype == model.layers[1].rng.dtype  # raw keys stay raw
    assert a.layers[0].w is model.layers[0].w  # parameters untouched
    assert nn.Dropout._pt_rngs == ("rng",) and nn.BatchNorm._pt_rngs == ()
