"""`pax_trax.data`: input pipelines as in `trax.data` (NumPy only; no TensorFlow here).

Stream functions and combinators (`Serial`, `Shuffle`, `Batch`,
`BucketByLength`, `AddLossWeights`, ...), span corruption (`MLM`), resumable
positions (`CountAndSkip` with `save_data_counters` / `load_data_counters`),
a background `Prefetch`, the `Inputs` bundle and `batcher`, and synthetic
inputs. See `pax_trax.data.inputs` for the overview.

>>> from pax_trax import data
>>> batches = data.Serial(lambda _: ((i, i + 1) for i in range(4)), data.Batch(2))()
>>> [b[1].tolist() for b in batches]
[[1, 2], [3, 4]]
"""

from pax_trax.data import inputs
from pax_trax.data.inputs import *  # noqa: F403  (the curated list is inputs.__all__)
from pax_trax.data.inputs import __all__ as _inputs_all

__all__ = ["inputs", *_inputs_all]
