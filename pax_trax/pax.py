"""PAX's names with PAX's semantics: `import pax_trax.pax as pax`.

Code written for PAX (seed 004) reads the same here, with one difference
that follows from immutability: a call that changes state returns the new
module, `module, y = pax.purecall(module, x)`, instead of mutating it.

    >>> import jax, numpy as np
    >>> import pax_trax.pax as pax
    >>> k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    >>> net = pax.Sequential(pax.Linear(2, 32, rng_key=k1), jax.nn.relu, pax.Linear(32, 3, rng_key=k2))
    >>> net(np.zeros((3, 2), np.float32)).shape
    (3, 3)
    >>> cell = pax.LSTM(3, 4, rng_key=k1)
    >>> state = cell.initial_state(2)
    >>> state, y = cell(state, np.ones((2, 3), np.float32))
    >>> y.shape
    (2, 4)
"""

from pax_trax.core.module import Module, purecall
from pax_trax.nn.convolution import Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose
from pax_trax.nn.linear import Linear
from pax_trax.nn.multi_head_attention import MultiHeadAttention
from pax_trax.nn.normalization import BatchNorm1D, BatchNorm2D, GroupNorm
from pax_trax.nn.normalization import PaxLayerNorm as LayerNorm
from pax_trax.nn.pax_modules import EMA, Embed
from pax_trax.nn.pooling import avg_pool, max_pool
from pax_trax.nn.rnn import GRUState, LSTMState, VanillaRNN, VanillaRNNState
from pax_trax.nn.rnn import PaxGRU as GRU
from pax_trax.nn.rnn import PaxLSTM as LSTM
from pax_trax.nn.utility import Identity, Lambda, RngSeq, Sequential
from pax_trax.nn.utility import PaxDropout as Dropout

__all__ = [
    "Module",
    "purecall",
    "Linear",
    "Dropout",
    "Embed",
    "Conv1D",
    "Conv2D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "BatchNorm1D",
    "BatchNorm2D",
    "LayerNorm",
    "GroupNorm",
    "Sequential",
    "VanillaRNN",
    "VanillaRNNState",
    "LSTM",
    "LSTMState",
    "GRU",
    "GRUState",
    "MultiHeadAttention",
    "Identity",
    "avg_pool",
    "max_pool",
    "RngSeq",
    "Lambda",
    "EMA",
]
