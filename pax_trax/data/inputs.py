"""Data sources and input processing: the `trax.data.inputs` namespace.

Input pipelines are built from layer-like stream functions and combinators.
Each stream function takes a Python iterator of examples (tuples of NumPy
arrays, or ``None`` for a source) and returns another; `Serial` composes them
and plain Python (``map``, ``filter``, lambdas) mixes in freely::

  from pax_trax import data

  inputs = data.Serial(
      lambda _: iter(my_tokenized_pairs),   # (inputs, targets) int arrays
      data.Shuffle(seed=0),
      data.FilterByLength(max_length=2048, length_keys=[0]),
      data.BucketByLength(boundaries=[32, 128, 512, 2048],
                          batch_sizes=[128, 32, 8, 2, 1],
                          length_keys=[0]),
      data.AddLossWeights(id_to_mask=0),
  )
  batches = inputs()

A runnable example:

>>> from pax_trax.data import inputs as di
>>> pipeline = di.Serial(lambda _: ((np.arange(n), np.arange(n)) for n in (3, 1, 2, 2)),
...                      di.Batch(2), di.AddLossWeights(id_to_mask=0))
>>> [w.tolist() for _, _, w in pipeline()][0]
[[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]

The implementation lives in one file per concept (`combinators`, `prefetch`,
`batching`, `preprocessing`, `noise`, `counters`, `batcher`, `synthetic`);
this module re-exports all of it under Trax's names. Differences from Trax
(documented on each function): randomness takes explicit seeds (never
NumPy's global RNG); `Prefetch` is a stoppable daemon thread; data counters
are saved as JSON, atomically; a few Trax bugs are fixed where noted
(`TruncateToLength` slices instead of ``np.resize``, `PadToLength` with
``multiple=True`` pads to the next multiple, `generate_sequential_chunks`
does not repeat short sequences, `Inputs.train_eval_stream` uses its own
stream); malformed examples raise errors that name the combinator.
"""

import numpy as np  # noqa: F401  (used by the doctest above)

from pax_trax.data.batcher import (
    Inputs,
    batch_fn,
    batcher,
    make_additional_stream,
    make_inputs,
    make_parallel_stream,
)
from pax_trax.data.batching import (
    AddLossWeights,
    Batch,
    BucketByLength,
    UnBatch,
    add_loss_weights,
    batch,
    bucket_by_length,
    pad_to_max_dims,
)
from pax_trax.data.combinators import Log, Parallel, Serial, Shuffle, UniformlySeek, shuffle
from pax_trax.data.counters import (
    CountAndSkip,
    count_and_skip,
    data_counters,
    load_data_counters,
    save_data_counters,
)
from pax_trax.data.noise import (
    MLM,
    consume_noise_mask,
    generate_random_noise_mask,
    generate_sequential_chunks,
    random_spans_noise_mask,
)
from pax_trax.data.prefetch import Prefetch
from pax_trax.data.preprocessing import (
    AppendValue,
    CastTo,
    ConcatenateToLMInput,
    FilterByLength,
    FilterEmptyExamples,
    PadToLength,
    PrefixLM,
    TruncateToLength,
)
from pax_trax.data.synthetic import (
    addition_input_stream,
    addition_inputs,
    lower_endian_to_number,
    number_to_lower_endian,
    random_inputs,
    random_number_lower_endian,
    sequence_copy_inputs,
    simple_sequence_copy_inputs,
    sine_inputs,
)

__all__ = [
    # Combinators and stream functions.
    "Serial",
    "Parallel",
    "Shuffle",
    "Batch",
    "FilterEmptyExamples",
    "FilterByLength",
    "TruncateToLength",
    "PadToLength",
    "BucketByLength",
    "MLM",
    "PrefixLM",
    "ConcatenateToLMInput",
    "CastTo",
    "AppendValue",
    "AddLossWeights",
    "UnBatch",
    "Prefetch",
    "UniformlySeek",
    "CountAndSkip",
    "Log",
    # Functions on streams and arrays.
    "shuffle",
    "batch",
    "pad_to_max_dims",
    "bucket_by_length",
    "add_loss_weights",
    "generate_random_noise_mask",
    "consume_noise_mask",
    "generate_sequential_chunks",
    "random_spans_noise_mask",
    "count_and_skip",
    "data_counters",
    "save_data_counters",
    "load_data_counters",
    # Synthetic data.
    "addition_input_stream",
    "lower_endian_to_number",
    "number_to_lower_endian",
    "random_number_lower_endian",
    "random_inputs",
    "sequence_copy_inputs",
    "simple_sequence_copy_inputs",
    "addition_inputs",
    "sine_inputs",
    # The Inputs bundle and batcher.
    "Inputs",
    "make_inputs",
    "make_additional_stream",
    "make_parallel_stream",
    "batcher",
    "batch_fn",
]
