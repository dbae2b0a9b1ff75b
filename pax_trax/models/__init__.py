"""Models with Trax's names and signatures, built from `pax_trax.nn` layers.

As in Trax, each family lives in its own module (``pax_trax.models.transformer``,
``.rnn``, ``.resnet``, ...) and the models are re-exported here:

>>> from pax_trax import models
>>> models.TransformerLM(100, d_model=8, d_ff=16, n_layers=1, n_heads=2).n_in
1
"""

from pax_trax.models import atari_cnn, bert, mlp, neural_gpu, resnet, rnn, transformer
from pax_trax.models.atari_cnn import AtariCnn, AtariCnnBody, FrameStackMLP
from pax_trax.models.bert import (
    BERT,
    BERTClassifierHead,
    BERTMLMHead,
    BERTPretrainingHead,
    BERTPretrainingLoss,
    BERTRegressionHead,
    PretrainedBERT,
)
from pax_trax.models.mlp import MLP
from pax_trax.models.neural_gpu import NeuralGPU
from pax_trax.models.resnet import Resnet50, WideResnet
from pax_trax.models.rnn import GRULM, RNNLM, LSTMSeq2SeqAttn
from pax_trax.models.transformer import (
    Transformer,
    TransformerDecoder,
    TransformerEncoder,
    TransformerLM,
)

__all__ = [
    # modules
    "atari_cnn", "bert", "mlp", "neural_gpu", "resnet", "rnn", "transformer",
    # models
    "AtariCnn", "AtariCnnBody", "FrameStackMLP",
    "BERT", "BERTClassifierHead", "BERTMLMHead", "BERTPretrainingHead", "BERTPretrainingLoss",
    "BERTRegressionHead", "PretrainedBERT",
    "MLP",
    "NeuralGPU",
    "Resnet50", "WideResnet",
    "RNNLM", "GRULM", "LSTMSeq2SeqAttn",
    "TransformerEncoder", "TransformerDecoder", "TransformerLM", "Transformer",
]
