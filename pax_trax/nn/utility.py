"""PAX's utility modules: Sequential, Lambda, Identity, RngSeq."""

from __future__ import annotations

import jax

from pax_trax.core.module import Module, rng_state, stateful, static, submodule
from pax_trax.nn.base import call_sublayer, init_sublayer
from pax_trax.nn.core import Dropout

__all__ = ["Sequential", "Lambda", "Identity", "RngSeq", "PaxDropout"]


class Lambda(Module):
    """Turns a function of one array into a module.

    >>> import jax, jax.numpy as jnp
    >>> Lambda(jax.nn.relu)(jnp.array(-1)).item()
    0
    """

    func = static()

    def __init__(self, func, name=None):
        if not callable(func):
            raise TypeError(f"Lambda expects a callable, got {func!r}.")
        self.func = func
        self.name = name or f"x => {getattr(func, '__name__', 'f')}(x)"

    def forward(self, x):
        return self.func(x)

    def __repr__(self):
        return self.name


class Identity(Module):
    """Returns its input."""

    def __init__(self, *, name=None):
        self.name = name or "Identity"

    def forward(self, x):
        return x


class Sequential(Module):
    """Applies modules (or plain functions) one after another, as PAX's Sequential.

    >>> import jax, numpy as np
    >>> from pax_trax import nn
    >>> k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    >>> net = nn.Sequential(nn.Linear(2, 32, rng_key=k1), jax.nn.relu, nn.Linear(32, 3, rng_key=k2))
    >>> net(np.zeros((3, 2), np.float32)).shape
    (3, 3)
    """

    layers = submodule()

    def __init__(self, *layers, name=None):
        mods = []
        for layer in layers:
            if isinstance(layer, Module):
                mods.append(layer)
            elif callable(layer):
                mods.append(Lambda(layer))
            else:
                raise TypeError(f"Sequential: expected modules or functions, got {layer!r}.")
        for m in mods:
            if m.n_in != 1 or m.n_out != 1:
                raise ValueError(
                    f"Sequential: every layer must map one input to one output; "
                    f"{m.name} has n_in={m.n_in}, n_out={m.n_out}. Use nn.Serial for stacks."
                )
        self.layers = tuple(mods)
        self.name = name or "Sequential"

    def forward_with_state(self, x):
        new_layers = []
        for i, layer in enumerate(self.layers):
            layer, x = call_sublayer(f"{self.name}[{i}]", layer, x)
            new_layers.append(layer)
        if all(a is b for a, b in zip(new_layers, self.layers)):
            return self, x
        return self.replace(layers=tuple(new_layers)), x

    def init_with_output_signature(self, input_signature, key):
        keys = jax.random.split(key, max(len(self.layers), 1))
        new_layers, sig = [], input_signature
        for i, (layer, k) in enumerate(zip(self.layers, keys)):
            layer, sig = init_sublayer(f"{self.name}[{i}]", layer, sig, k)
            new_layers.append(layer)
        return self.replace(layers=tuple(new_layers)), sig

    def __getitem__(self, index):
        return self.layers[index]

    def __len__(self):
        return len(self.layers)

    def set(self, index, value):
        """Returns a copy with layer `index` replaced by `value`."""
        layers = list(self.layers)
        layers[index] = value if isinstance(value, Module) else Lambda(value)
        return self.replace(layers=tuple(layers))


class RngSeq(Module):
    """An endless sequence of RNG keys, held as state.

    `rng_key` wins over `seed`. Drawing keys changes the state, so it goes
    through purecall:

    >>> import pax_trax
    >>> seq = RngSeq(seed=42)
    >>> seq, key = pax_trax.purecall(seq.next_rng_key)
    >>> seq, (k1, k2) = pax_trax.purecall(seq.next_rng_key, 2)
    """

    rng_key = rng_state()

    def __init__(self, seed=None, rng_key=None):
        if rng_key is None:
            rng_key = jax.random.PRNGKey(0 if seed is None else seed)
        self.rng_key = rng_key
        self.n_in = 0

    @stateful
    def next_rng_key(self, num_keys=1):
        """Returns `(new_seq, key)` for one key, `(new_seq, [keys])` for several."""
        if num_keys < 1:
            raise ValueError(f"num_keys must be >= 1, got {num_keys}.")
        keys = jax.random.split(self.rng_key, num_keys + 1)
        new = self.replace(rng_key=keys[0])
        return new, keys[1] if num_keys == 1 else list(keys[1:])

    def forward_with_state(self, inputs=()):
        del inputs  # n_in == 0: called with an empty tuple of inputs
        return self.next_rng_key.__wrapped__(self)


class PaxDropout(Dropout):
    """PAX's Dropout(dropout_rate): drops in train mode, identity after `.eval()`.

    The RNG key is state: give `rng_key` at construction or let `init` set it.
    Exported as `pax_trax.pax.Dropout`.

    >>> import jax, numpy as np, pax_trax
    >>> drop = PaxDropout(0.5, rng_key=jax.random.PRNGKey(0))
    >>> drop, y = pax_trax.purecall(drop, np.ones(4, np.float32))
    >>> drop.eval()(np.ones(2, np.float32)).tolist()
    [1.0, 1.0]
    """

    def __init__(self, dropout_rate, *, rng_key=None, name=None):
        super().__init__(rate=dropout_rate)
        self.rng = rng_key
        self.name = name or "Dropout"
