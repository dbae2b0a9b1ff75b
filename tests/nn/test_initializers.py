import jax
import numpy as np
import pytest

from pax_trax.nn import initializers as init

KEY = jax.random.PRNGKey(0)
SHAPE = (400, 300)  # fan_in 400, fan_out 300: enough samples for the moments


def test_random_normal_and_uniform_moments():
    w = np.asarray(init.RandomNormalInitializer(0.5)(SHAPE, KEY))
    assert w.dtype == np.float32 and w.shape == SHAPE
    assert abs(w.mean()) < 0.01 and abs(w.std() - 0.5) < 0.01
    u = np.asarray(init.RandomUniformInitializer(2.0)(SHAPE, KEY))
    assert u.min() >= -2.0 and u.max() < 2.0
    assert abs(u.var() - 4.0 / 3.0) < 0.03  # variance of U(-a, a) is a^2 / 3


@pytest.mark.parametrize(
    "factory, variance",
    [
        (init.GlorotNormalInitializer, 2.0 / (400 + 300)),
        (init.GlorotUniformInitializer, 2.0 / (400 + 300)),
        (init.LeCunNormalInitializer, 1.0 / 400),
        (init.LeCunUniformInitializer, 1.0 / 400),
        (init.KaimingNormalInitializer, 2.0 / 400),
        (init.KaimingUniformInitializer, 2.0 / 400),
    ],
)
def test_scaled_initializers_have_the_documented_variance(factory, variance):
    w = np.asarray(factory()(SHAPE, KEY))
    assert w.shape == SHAPE and abs(w.mean()) < 0.01 * np.sqrt(variance) * 10
    np.testing.assert_allclose(w.var(), variance, rtol=0.05)


def test_glorot_uniform_bound():
    w = np.asarray(init.GlorotUniformInitializer()(SHAPE, KEY))
    bound = np.sqrt(6.0 / (400 + 300))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound


def test_truncated_normal_variance_and_range():
    w = np.asarray(init.ScaledInitializer(-1, -2, 1.0, "fan_in", "truncated_normal")(SHAPE, KEY))
    np.testing.assert_allclose(w.var(), 1.0 / 400, rtol=0.05)
    assert np.abs(w).max() <= 2.0 / 0.87962566103423978 * np.sqrt(1.0 / 400) + 1e-6


def test_fans_of_a_convolution_kernel_include_the_receptive_field():
    # HWIO kernel 3x3, 16 in, 32 out: fan_in = 9 * 16, fan_out = 9 * 32.
    w = np.asarray(init.LeCunNormalInitializer()((3, 3, 16, 32), KEY))
    np.testing.assert_allclose(w.var(), 1.0 / (9 * 16), rtol=0.1)


def test_orthogonal_rows_or_columns():
    tall = np.asarray(init.OrthogonalInitializer()((6, 3), KEY))
    np.testing.assert_allclose(tall.T @ tall, np.eye(3), atol=1e-5)
    wide = np.asarray(init.OrthogonalInitializer(stddev=2.0)((3, 6), KEY))
    np.testing.assert_allclose(wide @ wide.T, 4.0 * np.eye(3), atol=1e-4)


def test_atari_conv_init_bound():
    w = np.asarray(init.AtariConvInit((8, 8, 4, 32), KEY))
    bound = 1.0 / np.sqrt(4 * 8 * 8)
    assert np.abs(w).max() <= bound and w.shape == (8, 8, 4, 32)


def test_initializers_are_deterministic_in_the_key():
    f = init.GlorotUniformInitializer()
    np.testing.assert_array_equal(f((3, 4), KEY), f((3, 4), KEY))
    assert not np.allclose(f((3, 4), KEY), f((3, 4), jax.random.PRNGKey(1)))


def test_zeros_ones_and_from_file(tmp_path):
    assert np.asarray(init.zeros((2, 3))).sum() == 0 and np.asarray(init.ones((2,))).tolist() == [1, 1]
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = tmp_path / "w.npy"
    np.save(path, values)
    np.testing.assert_array_equal(init.InitializerFromFile(str(path))((2, 3), KEY), values)
    with pytest.raises(ValueError, match=r"expected shape \(3, 2\), file has \(2, 3\)"):
        init.InitializerFromFile(str(path))((3, 2), KEY)


def test_bad_arguments():
    with pytest.raises(ValueError, match="scale must be a positive float"):
        init.ScaledInitializer(-1, -2, 0.0, "fan_in", "normal")
    with pytest.raises(ValueError, match="mode must be"):
        init.ScaledInitializer(-1, -2, 1.0, "fan_max", "normal")
    with pytest.raises(ValueError, match="distribution must be"):
        init.ScaledInitializer(-1, -2, 1.0, "fan_in", "cauchy")
