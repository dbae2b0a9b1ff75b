"""`pax_trax.data`: input pipelines as in `trax.data` (no TensorFlow imported here).

Stream functions and combinators (`Serial`, `Shuffle`, `Batch`,
`BucketByLength`, `AddLossWeights`, ...), span corruption (`MLM`), resumable
positions (`CountAndSkip` with `save_data_counters` / `load_data_counters`),
a background `Prefetch`, the `Inputs` bundle and `batcher`, synthetic
inputs (`pax_trax.data.inputs`); from Trax's ``tf_inputs``, TFDS datasets
read with or without TensorFlow (`TFDS`, `data_streams`;
`pax_trax.data.tfds`) and tokenizers (`Tokenize`, `detokenize`,
`vocab_size`, `SentencePieceTokenize`, with vocabulary builders;
`pax_trax.data.tokenizers`); and the rest of ``tf_inputs``: its ``tf.data``
preprocessing functions (`pax_trax.data.tf_preprocessing`), BERT inputs and
masking (`pax_trax.data.bert_inputs`), GLUE streams for BERT and T5
(`pax_trax.data.glue`), C4 and text-to-text preprocessing
(`pax_trax.data.c4`) and the MathQA, AQuA and DROP inputs
(`pax_trax.data.mathqa`). Not provided: ``t2t_problems`` (tensor2tensor's
problem registry) and ``get_t5_preprocessor_by_name`` (the ``t5`` library's
preprocessor registry): neither library is a dependency, nor can be one
beside ours (pip's resolver, 2026-12: tensor2tensor 1.15.7, last released in
2020, pulls TF1-era packages such as tensorflow-probability 0.7; t5 0.9.4
pulls tfds-nightly 4.9.2, which would replace the tensorflow-datasets 4.9.10
that ``pax_trax[data]`` needs). TensorFlow, TFDS, tensorflow-text and
sentencepiece are imported only by the functions that need them.

>>> from pax_trax import data
>>> batches = data.Serial(lambda _: ((i, i + 1) for i in range(4)), data.Batch(2))()
>>> [b[1].tolist() for b in batches]
[[1, 2], [3, 4]]
"""

from pax_trax.data import (
    bert_inputs,
    c4,
    glue,
    inputs,
    mathqa,
    tf_preprocessing,
    tfds,
    tokenizers,
    vocabularies,
)
from pax_trax.data.bert_inputs import *  # noqa: F403  (each module's __all__ is its list)
from pax_trax.data.bert_inputs import __all__ as _bert_inputs_all
from pax_trax.data.c4 import *  # noqa: F403
from pax_trax.data.c4 import __all__ as _c4_all
from pax_trax.data.glue import *  # noqa: F403
from pax_trax.data.glue import __all__ as _glue_all
from pax_trax.data.inputs import *  # noqa: F403  (the curated list is inputs.__all__)
from pax_trax.data.inputs import __all__ as _inputs_all
from pax_trax.data.mathqa import *  # noqa: F403
from pax_trax.data.mathqa import __all__ as _mathqa_all
from pax_trax.data.tf_preprocessing import *  # noqa: F403
from pax_trax.data.tf_preprocessing import __all__ as _tf_preprocessing_all
from pax_trax.data.tfds import (
    TFDS,
    data_streams,
    dataset_to_stream,
    download_and_prepare,
    no_preprocess,
)
from pax_trax.data.tokenizers import (
    ConvertToUnicode,
    SentencePieceTokenize,
    Tokenize,
    build_subword_vocab,
    detokenize,
    learn_wordpiece_vocab,
    sentencepiece_tokenize,
    tokenize,
    train_sentencepiece,
    vocab_size,
)
from pax_trax.data.vocabularies import load_vocabulary

__all__ = [
    "inputs", "tfds", "tokenizers", "vocabularies",
    "tf_preprocessing", "bert_inputs", "glue", "c4", "mathqa",
    *_inputs_all,
    *_tf_preprocessing_all, *_bert_inputs_all, *_glue_all, *_c4_all, *_mathqa_all,
    "TFDS", "data_streams", "dataset_to_stream", "download_and_prepare", "no_preprocess",
    "tokenize", "Tokenize", "detokenize", "vocab_size", "ConvertToUnicode",
    "sentencepiece_tokenize", "SentencePieceTokenize",
    "build_subword_vocab", "train_sentencepiece", "learn_wordpiece_vocab", "load_vocabulary",
]
