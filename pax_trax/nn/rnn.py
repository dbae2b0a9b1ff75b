"""Recurrent layers: Trax's cells and RNN layers, and PAX's step modules.

Trax cells are stack layers mapping `(x, state) -> (output, new_state)`
(n_in = n_out = 2); `LSTM`, `GRU` and `SRU` run them along axis 1 with
`Scan`, built from combinators exactly as Trax builds them::

    >>> import numpy as np
    >>> lstm = LSTM(4).init(np.zeros((2, 5, 4), np.float32))
    >>> lstm(np.ones((2, 5, 4), np.float32)).shape
    (2, 5, 4)

PAX cells (`VanillaRNN`, `PaxLSTM`, `PaxGRU`; exported in PAX style as
`pax_trax.pax.LSTM` / `GRU`) take explicit sizes and are called one step at
a time as `new_state, y = cell(state, x)`, starting from
`cell.initial_state(batch_size)`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pax_trax.core.module import Module, param, static, submodule
from pax_trax.nn import initializers as init
from pax_trax.nn.activations import Sigmoid, Tanh
from pax_trax.nn.base import Fn, Partial, call_sublayer, to_stack
from pax_trax.nn.combinators import (
    Branch,
    Dup,
    Gate,
    Multiply,
    Parallel,
    Select,
    Serial,
    Split,
)
from pax_trax.nn.control import Scan
from pax_trax.nn.core import Dense, Dropout
from pax_trax.nn.linear import Linear

__all__ = [
    "LSTMCell",
    "LSTM",
    "GRUCell",
    "GRU",
    "ConvGRUCell",
    "GeneralGRUCell",
    "InnerSRUCell",
    "SRU",
    "MakeZeroState",
    "VanillaRNN",
    "VanillaRNNState",
    "PaxLSTM",
    "LSTMState",
    "PaxGRU",
    "GRUState",
]


def _check_units(n_units, layer):
    if isinstance(n_units, bool) or not isinstance(n_units, (int, np.integer)) or n_units < 1:
        raise ValueError(f"{layer}: n_units must be a positive int, got {n_units!r}.")
    return int(n_units)


def _check_pair(input_signature, layer):
    if not isinstance(input_signature, tuple) or len(input_signature) != 2:
        raise ValueError(f"{layer} takes (inputs, state); got the signature {input_signature}.")
    return input_signature


# ---------------------------------------------------------------------------
# Trax cells


class LSTMCell(Module):
    """Trax's LSTM cell: `(x, state) -> (new_h, new_state)`, state = concat(c, h).

    One dense map of `concat(x, h)` gives the gates in the order i (input),
    j (candidate), f (forget), o (output)::

        new_c = c * sigmoid(f) + sigmoid(i) * tanh(j)
        new_h = tanh(new_c) * sigmoid(o)

    The state's last axis is `2 * n_units`. As in Trax, `forget_bias` is
    added to the whole initial bias vector. Weights are `(w, b)`.
    """

    n_units = static()
    forget_bias = static()
    kernel_initializer = static()
    bias_initializer = static()
    w = param()
    b = param()

    def __init__(
        self,
        n_units,
        forget_bias=1.0,
        kernel_initializer=init.GlorotUniformInitializer(),
        bias_initializer=init.RandomNormalInitializer(1e-6),
    ):
        self.n_units = _check_units(n_units, "LSTMCell")
        self.forget_bias = float(forget_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.n_in = 2
        self.n_out = 2
        self.name = "LSTMCell"

    def init_weights_and_state(self, input_signature, key):
        x_sig, s_sig = _check_pair(input_signature, self.name)
        if s_sig.shape[-1:] != (2 * self.n_units,):
            raise ValueError(
                f"the last dimension of the state (shape {s_sig.shape}) must be "
                f"2 * n_units = {2 * self.n_units}."
            )
        k_w, k_b = jax.random.split(key)
        w = self.kernel_initializer((x_sig.shape[-1] + self.n_units, 4 * self.n_units), k_w)
        b = self.bias_initializer((4 * self.n_units,), k_b) + self.forget_bias
        return self.replace(w=w, b=b)

    def forward(self, inputs):
        x, lstm_state = to_stack(inputs, 2)
        if lstm_state.shape[-1] != 2 * self.n_units:
            raise ValueError(
                f"expected a state whose last axis is 2 * n_units = {2 * self.n_units}, got "
                f"shape {tuple(lstm_state.shape)}."
            )
        c, h = jnp.split(lstm_state, 2, axis=-1)
        xh = jnp.concatenate([x, h], axis=-1)
        if xh.shape[-1] != self.w.shape[0]:
            raise ValueError(
                f"expected inputs whose last axis has size {self.w.shape[0] - self.n_units} "
                f"(the size this cell was initialized for), got shape {tuple(x.shape)}."
            )
        y = jnp.dot(xh, self.w) + self.b
        return self._gates_to_state(y, c)

    @staticmethod
    def _gates_to_state(y, c):
        i, j, f, o = jnp.split(y, 4, axis=-1)
        new_c = c * jax.nn.sigmoid(f) + jax.nn.sigmoid(i) * jnp.tanh(j)
        new_h = jnp.tanh(new_c) * jax.nn.sigmoid(o)
        return new_h, jnp.concatenate([new_c, new_h], axis=-1)

    # Used by Scan: the input half of the dense map for all steps at once.
    def scan_prepare(self, xs):
        (x,) = xs
        d = self.w.shape[0] - self.n_units
        if x.shape[-1] != d:
            raise ValueError(
                f"expected inputs whose last axis has size {d} (the size this cell was "
                f"initialized for), got shape {tuple(x.shape)}."
            )
        return (jnp.dot(x, self.w[:d]) + self.b,)

    def scan_step(self, inputs):
        xw, lstm_state = to_stack(inputs, 2)
        c, h = jnp.split(lstm_state, 2, axis=-1)
        y = xw + jnp.dot(h, self.w[self.w.shape[0] - self.n_units:])
        return self._gates_to_state(y, c)


class GRUCell(Module):
    """Trax's GRU cell: `(x, s) -> (new_s, new_s)`.

    ::

        u, r = split(sigmoid(concat(x, s) @ w1 + b1))
        c = concat(x, r * s) @ w2 + b2
        new_s = u * s + (1 - u) * tanh(c)

    `forget_bias` is added to the initial `b1`. Weights are `(w1, b1, w2, b2)`.
    """

    n_units = static()
    forget_bias = static()
    kernel_initializer = static()
    bias_initializer = static()
    w1 = param()
    b1 = param()
    w2 = param()
    b2 = param()

    def __init__(
        self,
        n_units,
        forget_bias=0.0,
        kernel_initializer=init.RandomUniformInitializer(0.01),
        bias_initializer=init.RandomNormalInitializer(1e-6),
    ):
        self.n_units = _check_units(n_units, "GRUCell")
        self.forget_bias = float(forget_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.n_in = 2
        self.n_out = 2
        self.name = "GRUCell"

    def init_weights_and_state(self, input_signature, key):
        x_sig, s_sig = _check_pair(input_signature, self.name)
        if s_sig.shape[-1:] != (self.n_units,):
            raise ValueError(
                f"the last dimension of the state (shape {s_sig.shape}) must be "
                f"n_units = {self.n_units}."
            )
        d = x_sig.shape[-1] + self.n_units
        k1, k2, k3, k4 = jax.random.split(key, 4)
        return self.replace(
            w1=self.kernel_initializer((d, 2 * self.n_units), k1),
            b1=self.bias_initializer((2 * self.n_units,), k2) + self.forget_bias,
            w2=self.kernel_initializer((d, self.n_units), k3),
            b2=self.bias_initializer((self.n_units,), k4),
        )

    def forward(self, inputs):
        x, s = to_stack(inputs, 2)
        if s.shape[-1] != self.n_units:
            raise ValueError(
                f"expected a state whose last axis is n_units = {self.n_units}, got shape "
                f"{tuple(s.shape)}."
            )
        if x.shape[-1] + self.n_units != self.w1.shape[0]:
            raise ValueError(
                f"expected inputs whose last axis has size {self.w1.shape[0] - self.n_units} "
                f"(the size this cell was initialized for), got shape {tuple(x.shape)}."
            )
        y = jnp.dot(jnp.concatenate([x, s], axis=-1), self.w1) + self.b1
        u, r = jnp.split(jax.nn.sigmoid(y), 2, axis=-1)
        c = jnp.dot(jnp.concatenate([x, r * s], axis=-1), self.w2) + self.b2
        new_s = u * s + (1 - u) * jnp.tanh(c)
        return new_s, new_s

    # Used by Scan: the input halves of both dense maps for all steps at once.
    def scan_prepare(self, xs):
        (x,) = xs
        d = self.w1.shape[0] - self.n_units
        if x.shape[-1] != d:
            raise ValueError(
                f"expected inputs whose last axis has size {d} (the size this cell was "
                f"initialized for), got shape {tuple(x.shape)}."
            )
        return (jnp.concatenate([jnp.dot(x, self.w1[:d]) + self.b1,
                                 jnp.dot(x, self.w2[:d]) + self.b2], axis=-1),)

    def scan_step(self, inputs):
        xw, s = to_stack(inputs, 2)
        d = self.w1.shape[0] - self.n_units
        xw1, xw2 = xw[..., : 2 * self.n_units], xw[..., 2 * self.n_units:]
        u, r = jnp.split(jax.nn.sigmoid(xw1 + jnp.dot(s, self.w1[d:])), 2, axis=-1)
        c = xw2 + jnp.dot(r * s, self.w2[d:])
        new_s = u * s + (1 - u) * jnp.tanh(c)
        return new_s, new_s


def _make_zero_state(depth_multiplier, x):
    if len(x.shape) != 3:
        raise ValueError(
            "Layer input should be a rank 3 tensor representing (batch_size, "
            f"sequence_length, feature_depth); instead got shape {tuple(x.shape)}."
        )
    # Zeros in the input's float dtype, so a scan's carry keeps one dtype
    # (Trax always uses float32, which breaks bfloat16 or float64 inputs).
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    return jnp.zeros((x.shape[0], depth_multiplier * x.shape[-1]), dtype=dtype)


def MakeZeroState(depth_multiplier=1):
    """Zeros of shape `(batch, depth_multiplier * depth)` for a `(batch, length, depth)` input."""
    return Fn("MakeZeroState", Partial(_make_zero_state, int(depth_multiplier)))


def LSTM(n_units, mode="train", return_state=False, initial_state=False):
    """An LSTM running on axis 1 of `(batch, length, depth)` inputs.

    Built as Trax builds it: `Serial(Branch([], MakeZeroState(2)),
    Scan(LSTMCell(n_units), axis=1, mode=mode), Select([0], n_in=2))`. With
    `initial_state=True` the `(batch, 2 * n_units)` state is taken from the
    stack (n_in = 2); with `return_state=True` the final state is returned
    after the outputs. In `mode='predict'` the final state is kept and
    continues on the next call. As in Trax, the zero state is sized from the
    input depth, so without `initial_state` the input depth must be `n_units`.
    """
    n_units = _check_units(n_units, "LSTM")
    scan = Scan(LSTMCell(n_units=n_units), axis=1, mode=mode)
    layers = [] if initial_state else [Branch([], MakeZeroState(depth_multiplier=2))]
    layers.append(scan)
    if not return_state:
        layers.append(Select([0], n_in=2))
    return Serial(layers, name=f"LSTM_{n_units}", sublayers_to_print=[])


def GRU(n_units, mode="train"):
    """A GRU running on axis 1, built as Trax builds it (zero initial state).

    As in Trax, the zero state is sized from the input depth, which must be `n_units`.
    """
    n_units = _check_units(n_units, "GRU")
    return Serial(
        Branch([], MakeZeroState()),
        Scan(GRUCell(n_units=n_units), axis=1, mode=mode),
        Select([0], n_in=2),
        name=f"GRU_{n_units}",
        sublayers_to_print=[],
    )


class _Conv(Module):
    """A SAME-padded NHWC/HWIO convolution with bias (what ConvGRUCell needs).

    Initialized as Trax's Conv: Glorot-normal kernel, N(0, 1e-6) bias.
    """

    filters = static()
    kernel_size = static()
    w = param()
    b = param()

    def __init__(self, filters, kernel_size):
        self.filters = int(filters)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.name = "Conv"

    def init_weights_and_state(self, input_signature, key):
        if len(input_signature.shape) != 2 + len(self.kernel_size):
            raise ValueError(
                f"expected an input of rank {2 + len(self.kernel_size)} (NHWC), got "
                f"shape {input_signature.shape}."
            )
        k_w, k_b = jax.random.split(key)
        shape = self.kernel_size + (input_signature.shape[-1], self.filters)
        nd = len(self.kernel_size)
        w = init.GlorotNormalInitializer(out_dim=nd + 1, in_dim=nd)(shape, k_w)
        b = init.RandomNormalInitializer(1e-6)((self.filters,), k_b)
        return self.replace(w=w, b=b)

    def forward(self, x):
        nd = len(self.kernel_size)
        spatial = "HWD"[:nd] if nd <= 3 else None
        dn = ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")
        y = jax.lax.conv_general_dilated(
            x, self.w, (1,) * nd, "SAME", dimension_numbers=dn
        )
        return y + self.b


def _add_sigmoid_bias(bias, x):
    return x + bias


def GeneralGRUCell(
    candidate_transform,
    memory_transform_fn=None,
    gate_nonlinearity=Sigmoid,
    candidate_nonlinearity=Tanh,
    dropout_rate_c=0.1,
    sigmoid_bias=0.5,
):
    """Trax's parametrized GRU cell (1 → 1 on the state), built from combinators.

    ::

        u = gate(T_u(s) + sigmoid_bias); r = gate(T_r(s) + sigmoid_bias)
        c = dropout(cand(T_c(r * s)));   new_s = u * s + (1 - u) * c
    """

    def add_bias():
        f = Partial(_add_sigmoid_bias, sigmoid_bias)
        return Fn(f"AddSigmoidBias({sigmoid_bias})", f)

    gate_block = [candidate_transform(), add_bias(), gate_nonlinearity()]
    reset_block = [candidate_transform(), add_bias(), gate_nonlinearity()]
    candidate_block = [
        Dup(),
        reset_block,
        Multiply(),
        candidate_transform(),
        candidate_nonlinearity(),
        Dropout(rate=dropout_rate_c),
    ]
    memory_transform = memory_transform_fn() if memory_transform_fn else []
    return Serial(Branch(memory_transform, gate_block, candidate_block), Gate())


def ConvGRUCell(n_units, kernel_size=(3, 3)):
    """A convolutional GRU on NHWC states (https://arxiv.org/abs/1511.06432); 1 → 1.

    The last axis of the state must be `n_units`.
    """
    n_units = _check_units(n_units, "ConvGRUCell")

    def build_conv():
        return _Conv(filters=n_units, kernel_size=kernel_size)

    return GeneralGRUCell(
        candidate_transform=build_conv,
        memory_transform_fn=None,
        gate_nonlinearity=Sigmoid,
        candidate_nonlinearity=Tanh,
    )


def _inner_sru(cur_x_times_one_minus_f, cur_f, cur_state):
    res = cur_f * cur_state + cur_x_times_one_minus_f
    return res, res


def InnerSRUCell():
    """The sequential part of an SRU: `c = f * c_prev + x * (1 - f)` (3 → 2)."""
    return Fn("InnerSRUCell", _inner_sru, n_out=2)


def _sru_prepare(r, f, y):
    return y * (1.0 - f), f, r


_SQRT3 = 3**0.5


def _sru_final_gate(c, r, x):
    return c * r + x * (1 - r) * _SQRT3


def SRU(n_units, activation=None, mode="train", *, n_layers=1, dropout=0.0):
    """SRU (Simple Recurrent Unit, https://arxiv.org/abs/1709.02755) on axis 1.

    ::

        y_t = W x_t + B;  f_t = sigmoid(Wf x_t + bf);  r_t = sigmoid(Wr x_t + br)
        c_t = f_t * c_{t-1} + (1 - f_t) * y_t
        h_t = r_t * activation(c_t) + (1 - r_t) * x_t * sqrt(3)

    The input depth must equal `n_units` (the highway term adds `x`). Built
    as Trax builds it. `n_layers` stacks that many SRU layers, with
    `Dropout(dropout, mode=mode)` between consecutive ones.
    """
    n_units = _check_units(n_units, "SRU")
    n_layers = _check_units(n_layers, "SRU (n_layers)")

    def one():
        return Serial(
            Branch(Dense(3 * n_units), []),
            Split(n_items=3),
            Parallel(Sigmoid(), Sigmoid()),
            Fn("", _sru_prepare, n_out=3),
            Parallel([], [], Branch(MakeZeroState(), [])),
            Scan(InnerSRUCell(), axis=1, mode=mode),
            Select([0], n_in=2),
            activation if activation is not None else [],
            Fn("FinalSRUGate", _sru_final_gate),
            name=f"SRU_{n_units}",
            sublayers_to_print=[],
        )

    if n_layers == 1:
        return one()
    layers = []
    for i in range(n_layers):
        if i and dropout > 0.0:
            layers.append(Dropout(rate=dropout, mode=mode))
        layers.append(one())
    return Serial(layers, name=f"SRU_{n_units}x{n_layers}")


# ---------------------------------------------------------------------------
# PAX cells


class VanillaRNNState(NamedTuple):
    """State of `VanillaRNN`."""

    hidden: jnp.ndarray


class LSTMState(NamedTuple):
    """State of `PaxLSTM`."""

    hidden: jnp.ndarray
    cell: jnp.ndarray


class GRUState(NamedTuple):
    """State of `PaxGRU`."""

    hidden: jnp.ndarray


class _PaxRNN(Module):
    """Shared parts of the PAX cells: sizes, `initial_state`, init from a key."""

    _pt_multi_arg_call = True
    _state_type = None
    _display = "RNN"
    input_dim = static()
    hidden_dim = static()

    def _missing_params(self):
        return [f"{m.name}.weight" for m in self.sublayers if m.weight is None]

    def init_weights_and_state(self, input_signature, key):
        _, x_sig = _check_pair(input_signature, self.name)
        if x_sig.shape[-1:] != (self.input_dim,):
            raise ValueError(
                f"{self.name} was built for input_dim={self.input_dim}, got an input of shape "
                f"{x_sig.shape}."
            )
        return self._create(key)

    def initial_state(self, batch_size):
        """An all-zeros state for `batch_size` sequences."""
        zeros = jnp.zeros((batch_size, self.hidden_dim), jnp.float32)
        return self._state_type(*([zeros] * len(self._state_type._fields)))

    def _coerce(self, state, x):
        if not isinstance(state, self._state_type):
            if not isinstance(state, (tuple, list)) or len(state) != len(self._state_type._fields):
                raise TypeError(
                    f"expected a {self._state_type.__name__} as the state (first argument), "
                    f"got {type(state).__name__}."
                )
            state = self._state_type(*state)
        x = jnp.asarray(x)
        if x.shape[-1:] != (self.input_dim,):
            raise ValueError(
                f"expected an input whose last axis has size input_dim={self.input_dim}, got "
                f"shape {tuple(x.shape)}."
            )
        return state, x

    def _fc(self, label, layer, x):
        return call_sublayer(f"{self.name}.{label}", layer, x)[1]

    def __repr__(self):
        return (f"{self._display}(input_dim={self.input_dim}, "
                f"hidden_dim={self.hidden_dim})")


class VanillaRNN(_PaxRNN):
    """PAX's basic RNN cell: `h = tanh(fc(concat(x, h)))`; returns `(VanillaRNNState(h), h)`.

    >>> import jax, numpy as np
    >>> rnn = VanillaRNN(3, 4, rng_key=jax.random.PRNGKey(0))
    >>> state, y = rnn(rnn.initial_state(2), np.ones((2, 3), np.float32))
    >>> y.shape
    (2, 4)
    """

    _state_type = VanillaRNNState
    _display = "VanillaRNN"
    fc = submodule()

    def __init__(self, input_dim, hidden_dim, *, rng_key=None, name=None):
        self.input_dim = int(input_dim)
        self.hidden_dim = int(hidden_dim)
        self.name = name or "VanillaRNN"
        self.fc = Linear(self.input_dim + self.hidden_dim, self.hidden_dim,
                         rng_key=rng_key, name="vanilla_rnn_fc")

    def _create(self, key):
        return self.replace(fc=Linear(self.input_dim + self.hidden_dim, self.hidden_dim,
                                      rng_key=key, name="vanilla_rnn_fc"))

    def forward(self, state, x):
        state, x = self._coerce(state, x)
        hidden = jnp.tanh(self._fc("fc", self.fc, jnp.concatenate((x, state.hidden), axis=-1)))
        return VanillaRNNState(hidden), hidden


class PaxLSTM(_PaxRNN):
    """PAX's LSTM cell (exported as `pax_trax.pax.LSTM`).

    One linear map of `concat(x, h)` gives gates in the order i, g, f, o::

        c = sigmoid(f + forget_gate_bias) * c + sigmoid(i) * tanh(g)
        h = sigmoid(o) * tanh(c)

    Returns `(LSTMState(hidden=h, cell=c), h)`.
    """

    _state_type = LSTMState
    _display = "LSTM"
    w_init = static()
    forget_gate_bias = static()
    fc = submodule()

    def __init__(self, input_dim, hidden_dim, w_init=None, forget_gate_bias=0.0, *,
                 rng_key=None, name=None):
        self.input_dim = int(input_dim)
        self.hidden_dim = int(hidden_dim)
        self.w_init = w_init
        self.forget_gate_bias = float(forget_gate_bias)
        self.name = name or "LSTM"
        self.fc = self._linear(rng_key)

    def _linear(self, key):
        return Linear(self.input_dim + self.hidden_dim, 4 * self.hidden_dim,
                      w_init=self.w_init, rng_key=key, name="lstm_fc")

    def _create(self, key):
        return self.replace(fc=self._linear(key))

    def forward(self, state, x):
        state, x = self._coerce(state, x)
        gated = self._fc("fc", self.fc, jnp.concatenate((x, state.hidden), axis=-1))
        i, g, f, o = jnp.split(gated, 4, axis=-1)
        f = jax.nn.sigmoid(f + self.forget_gate_bias)
        c = f * state.cell + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return LSTMState(h, c), h


class PaxGRU(_PaxRNN):
    """PAX's "fully gated" GRU cell (exported as `pax_trax.pax.GRU`).

    ::

        z, r = split(sigmoid(xh_zr_fc(concat(x, h))))
        h_hat = tanh(xh_h_fc(concat(x, r * h)))
        h = (1 - z) * h + z * h_hat

    Returns `(GRUState(h), h)`.
    """

    _state_type = GRUState
    _display = "GRU"
    xh_zr_fc = submodule()
    xh_h_fc = submodule()

    def __init__(self, input_dim, hidden_dim, *, rng_key=None, name=None):
        self.input_dim = int(input_dim)
        self.hidden_dim = int(hidden_dim)
        self.name = name or "GRU"
        self.xh_zr_fc, self.xh_h_fc = self._linears(rng_key)

    def _linears(self, key):
        k1 = k2 = None
        if key is not None:
            k1, k2 = jax.random.split(key)
        d = self.input_dim + self.hidden_dim
        return (Linear(d, 2 * self.hidden_dim, rng_key=k1, name="xh_to_zr"),
                Linear(d, self.hidden_dim, rng_key=k2, name="xh_to_h"))

    def _create(self, key):
        zr, h = self._linears(key)
        return self.replace(xh_zr_fc=zr, xh_h_fc=h)

    def forward(self, state, x):
        state, x = self._coerce(state, x)
        hidden = state.hidden
        zr = jax.nn.sigmoid(self._fc("xh_zr_fc", self.xh_zr_fc,
                                     jnp.concatenate((x, hidden), axis=-1)))
        z, r = jnp.split(zr, 2, axis=-1)
        h_hat = jnp.tanh(self._fc("xh_h_fc", self.xh_h_fc,
                                  jnp.concatenate((x, r * hidden), axis=-1)))
        h = (1 - z) * hidden + z * h_hat
        return GRUState(h), h

