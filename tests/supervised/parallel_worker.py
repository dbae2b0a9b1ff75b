"""One process of the two-process Loop test (tests/supervised/test_training_parallel.py).

Run as ``python parallel_worker.py COORDINATOR NUM_PROCESSES PROCESS_ID OUT_DIR N_STEPS``
with ``JAX_PLATFORMS=cpu`` and one host device. It joins the process group,
trains the shared test model on its shard of every global batch, and process
0 writes the losses, eval metrics and final leaves to ``OUT_DIR/result.npz``
(and, as the chief, checkpoints to ``OUT_DIR/ckpt``).

The data and model definitions are also imported by the test for its
single-process reference run.
"""

import io
import os
import sys

import numpy as np

GLOBAL_BATCH = 16


def global_batches(seed, batch_size=GLOBAL_BATCH):
    """An endless stream of global (x, y, weights) batches, weights not all equal."""
    rng = np.random.default_rng(seed)
    while True:
        y = rng.integers(0, 2, size=batch_size)
        x = (rng.normal(size=(batch_size, 4)) + 1.5 * (2 * y[:, None] - 1)).astype(np.float32)
        w = rng.uniform(0.2, 2.0, size=batch_size).astype(np.float32)
        yield x, y.astype(np.int32), w


def process_shard(stream, index, count):
    """Process `index`'s rows of every batch of `stream` (rows index*b:(index+1)*b)."""
    for batch in stream:
        b = batch[0].shape[0] // count
        yield tuple(item[index * b:(index + 1) * b] for item in batch)


def make_model():
    from pax_trax import nn
    # BatchNorm after the Relu: a bias right before BatchNorm gets a zero gradient, which
    # Adam would turn into +-lr steps decided by float noise.
    return nn.Serial(nn.Dense(16), nn.Relu(), nn.BatchNorm(axis=(0,)), nn.Dropout(0.2),
                     nn.Dense(2))


def make_loop(train_stream, eval_stream, output_dir=None, **kwargs):
    import optax

    from pax_trax import nn
    from pax_trax.supervised import training
    task = training.TrainTask(train_stream, nn.WeightedCategoryCrossEntropy(), optax.adam(0.02),
                              n_steps_per_checkpoint=5)
    evals = training.EvalTask(eval_stream, [nn.WeightedCategoryCrossEntropy(),
                                            nn.WeightedCategoryAccuracy()])
    return training.Loop(make_model(), task, eval_tasks=evals, output_dir=output_dir,
                         random_seed=7, stdout=io.StringIO(), **kwargs)


def summarize(loop):
    """Losses, eval metrics and final leaves of a Loop, as host arrays."""
    import jax
    losses = [v for _, v in loop.history.get("train", "WeightedCategoryCrossEntropy")]
    evals = [v for _, v in loop.history.get("eval", "WeightedCategoryCrossEntropy")]
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(loop.model)]
    return {"losses": np.asarray(losses), "evals": np.asarray(evals),
            **{f"leaf_{i}": x for i, x in enumerate(leaves)}}


def main(argv):
    coordinator, num_processes, process_id, out_dir, n_steps = argv
    num_processes, process_id, n_steps = int(num_processes), int(process_id), int(n_steps)

    from pax_trax.supervised import distributed
    distributed.initialize(coordinator, num_processes, process_id)
    import jax
    assert jax.process_count() == num_processes, jax.process_count()
    assert jax.device_count() == num_processes, jax.devices()

    loop = make_loop(process_shard(global_batches(0), process_id, num_processes),
                     process_shard(global_batches(100), process_id, num_processes),
                     output_dir=os.path.join(out_dir, "ckpt"))
    assert loop.mesh.size == num_processes and loop.is_chief == (process_id == 0)
    loop.run(n_steps)
    summary = summarize(loop)
    if process_id == 0:
        np.savez(os.path.join(out_dir, "result.npz"), **summary)
    distributed.shutdown()
    print(f"process {process_id}: done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
