"""`pax_trax.data`: input pipelines as in `trax.data` (no TensorFlow imported here).

Stream functions and combinators (`Serial`, `Shuffle`, `Batch`,
`BucketByLength`, `AddLossWeights`, ...), span corruption (`MLM`), resumable
positions (`CountAndSkip` with `save_data_counters` / `load_data_counters`),
a background `Prefetch`, the `Inputs` bundle and `batcher`, synthetic
inputs (`pax_trax.data.inputs`); from Trax's ``tf_inputs``, TFDS datasets
read with or without TensorFlow (`TFDS`, `data_streams`;
`pax_trax.data.tfds`) and tokenizers (`Tokenize`, `detokenize`,
`vocab_size`, `SentencePieceTokenize`, with vocabulary builders;
`pax_trax.data.tokenizers`). TensorFlow, TFDS, tensorflow-text and
sentencepiece are imported only by the functions that need them.

>>> from pax_trax import data
>>> batches = data.Serial(lambda _: ((i, i + 1) for i in range(4)), data.Batch(2))()
>>> [b[1].tolist() for b in batches]
[[1, 2], [3, 4]]
"""

from pax_trax.data import inputs, tfds, tokenizers, vocabularies
from pax_trax.data.inputs import *  # noqa: F403  (the curated list is inputs.__all__)
from pax_trax.data.inputs import __all__ as _inputs_all
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
    *_inputs_all,
    "TFDS", "data_streams", "dataset_to_stream", "download_and_prepare", "no_preprocess",
    "tokenize", "Tokenize", "detokenize", "vocab_size", "ConvertToUnicode",
    "sentencepiece_tokenize", "SentencePieceTokenize",
    "build_subword_vocab", "train_sentencepiece", "learn_wordpiece_vocab", "load_vocabulary",
]
