"""Weight initializers, as in ``trax.layers.initializers``.

Each factory returns a function ``init(shape, key) -> array``::

    >>> import jax
    >>> w = GlorotUniformInitializer()((3, 4), jax.random.PRNGKey(0))
    >>> w.shape
    (3, 4)

Fans follow the usual convention: for a kernel of rank > 2 (convolutions) the
product of the remaining (receptive-field) dimensions multiplies both fans.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Initializer",
    "RandomNormalInitializer",
    "RandomUniformInitializer",
    "ScaledInitializer",
    "GlorotNormalInitializer",
    "GlorotUniformInitializer",
    "LeCunNormalInitializer",
    "LeCunUniformInitializer",
    "KaimingNormalInitializer",
    "KaimingUniformInitializer",
    "OrthogonalInitializer",
    "AtariConvInit",
    "InitializerFromFile",
    "zeros",
    "ones",
]

# Standard deviation of a unit normal truncated to [-2, 2].
_TRUNCATED_STD = 0.87962566103423978


def _shape(shape):
    return tuple(int(d) for d in shape)


def _fans(shape, out_dim=-1, in_dim=-2, nonreceptive_dims=None):
    rank = len(shape)
    if rank == 0:
        return 1.0, 1.0
    if rank == 1:
        return float(shape[0]), float(shape[0])
    out_dim %= rank
    in_dim %= rank
    skip = {out_dim, in_dim}
    if nonreceptive_dims is not None:
        dims = nonreceptive_dims if isinstance(nonreceptive_dims, (list, tuple)) else [nonreceptive_dims]
        skip |= {d % rank for d in dims}
    receptive = math.prod(shape[i] for i in range(rank) if i not in skip)
    return float(shape[in_dim] * receptive), float(shape[out_dim] * receptive)


def zeros(shape, key=None, dtype=jnp.float32):
    """All zeros."""
    del key
    return jnp.zeros(_shape(shape), dtype)


def ones(shape, key=None, dtype=jnp.float32):
    """All ones."""
    del key
    return jnp.ones(_shape(shape), dtype)


class Initializer:
    """An initializer as a value: a module-level function and its hyperparameters.

    Layers keep their initializers in static (hashable) fields, which are part
    of a module's pytree structure. Closures would make two identically built
    models differ in structure (so `jax.jit` would recompile for each, and
    ``tree_structure`` would not match); these compare equal when their
    function and hyperparameters do, and pickle.

    >>> RandomNormalInitializer(0.5) == RandomNormalInitializer(0.5)
    True
    >>> RandomNormalInitializer(0.5)
    RandomNormalInitializer(stddev=0.5)
    """

    __slots__ = ("_name", "_fn", "_params")

    def __init__(self, name, fn, **params):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_fn", fn)
        object.__setattr__(self, "_params", tuple(sorted(params.items())))

    def __call__(self, shape, key, **extra):
        return self._fn(shape, key, **dict(self._params), **extra)

    def __setattr__(self, name, value):
        raise AttributeError(f"{self!r} is immutable.")

    def __eq__(self, other):
        return (isinstance(other, Initializer)
                and (self._fn, self._params) == (other._fn, other._params))

    def __hash__(self):
        return hash((self._fn, self._params))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._params)
        return f"{self._name}({args})"

    def __reduce__(self):
        return (_rebuild_initializer, (self._name, self._fn, dict(self._params)))


def _rebuild_initializer(name, fn, params):
    return Initializer(name, fn, **params)


def _random_normal(shape, key, stddev):
    return (stddev * jax.random.normal(key, _shape(shape))).astype(jnp.float32)


def RandomNormalInitializer(stddev=1e-2):
    """Normal values with mean 0 and standard deviation `stddev`."""
    return Initializer("RandomNormalInitializer", _random_normal, stddev=stddev)


def _random_uniform(shape, key, lim):
    return jax.random.uniform(key, _shape(shape), jnp.float32, -lim, lim)


def RandomUniformInitializer(lim=1.0):
    """Uniform values in [-lim, lim)."""
    return Initializer("RandomUniformInitializer", _random_uniform, lim=lim)


def _scaled(shape, key, out_dim, in_dim, scale, mode, distribution, nonreceptive_dims=None):
    shape = _shape(shape)
    fan_in, fan_out = _fans(shape, out_dim, in_dim, nonreceptive_dims)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    variance = scale / fan
    if distribution == "truncated_normal":
        stddev = math.sqrt(variance) / _TRUNCATED_STD
        return (jax.random.truncated_normal(key, -2.0, 2.0, shape) * stddev).astype(jnp.float32)
    if distribution == "normal":
        return (jax.random.normal(key, shape) * math.sqrt(variance)).astype(jnp.float32)
    lim = math.sqrt(3.0 * variance)
    return jax.random.uniform(key, shape, jnp.float32, -lim, lim)


def ScaledInitializer(out_dim, in_dim, scale, mode, distribution):
    """Variance scaling: variance `scale / fan`, fan chosen by `mode`."""
    if scale <= 0.0:
        raise ValueError(f"ScaledInitializer: scale must be a positive float, got {scale}.")
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"ScaledInitializer: mode must be fan_in, fan_out or fan_avg, got {mode!r}.")
    if distribution not in ("truncated_normal", "normal", "uniform"):
        raise ValueError(
            "ScaledInitializer: distribution must be truncated_normal, normal or uniform, "
            f"got {distribution!r}."
        )
    return Initializer("ScaledInitializer", _scaled, out_dim=out_dim, in_dim=in_dim,
                       scale=scale, mode=mode, distribution=distribution)


def GlorotNormalInitializer(out_dim=-1, in_dim=-2, scale=1.0):
    return ScaledInitializer(out_dim, in_dim, scale, "fan_avg", "normal")


def GlorotUniformInitializer(out_dim=-1, in_dim=-2, scale=1.0):
    return ScaledInitializer(out_dim, in_dim, scale, "fan_avg", "uniform")


def LeCunNormalInitializer(out_dim=-1, in_dim=-2, scale=1.0):
    return ScaledInitializer(out_dim, in_dim, scale, "fan_in", "normal")


def LeCunUniformInitializer(out_dim=-1, in_dim=-2, scale=1.0):
    return ScaledInitializer(out_dim, in_dim, scale, "fan_in", "uniform")


def KaimingNormalInitializer(out_dim=-1, in_dim=-2, param=0.0):
    return ScaledInitializer(out_dim, in_dim, 2.0 / math.sqrt(1 + param**2), "fan_in", "normal")


def KaimingUniformInitializer(out_dim=-1, in_dim=-2, param=0.0):
    return ScaledInitializer(out_dim, in_dim, 2.0 / math.sqrt(1 + param**2), "fan_in", "uniform")


def _orthogonal(shape, key, stddev):
    shape = _shape(shape)
    cur = list(shape)
    while len(cur) < 2:
        cur = [1] + cur
    n_rows = math.prod(cur[:-1])
    n_cols = cur[-1]
    flat = (n_cols, n_rows) if n_rows < n_cols else (n_rows, n_cols)
    a = jax.random.normal(key, flat, jnp.float32)
    q, r = jnp.linalg.qr(a)
    q = q * jnp.sign(jnp.diag(r))
    if n_rows < n_cols:
        q = q.T
    return stddev * jnp.reshape(q, shape)


def OrthogonalInitializer(stddev=1.0):
    """Orthogonal matrices (rows or columns, whichever fewer) times `stddev`."""
    return Initializer("OrthogonalInitializer", _orthogonal, stddev=stddev)


def AtariConvInit(kernel_shape, key, dtype=jnp.float32):
    """Uniform in ±1/sqrt(fan_in) for an HWIO kernel (Trax's Atari CNN init)."""
    height, width, fan_in, _ = kernel_shape
    std = 1.0 / math.sqrt(fan_in * height * width)
    return jax.random.uniform(key, _shape(kernel_shape), dtype, -std, std)


def _from_file(shape, key, path):
    del key
    values = np.load(path)
    if tuple(values.shape) != _shape(shape):
        raise ValueError(
            f"InitializerFromFile({path!r}): expected shape {_shape(shape)}, "
            f"file has {values.shape}."
        )
    return jnp.asarray(values)


def InitializerFromFile(path):
    """Loads the weights from a `.npy` file (the shape must match)."""
    return Initializer("InitializerFromFile", _from_file, path=path)
