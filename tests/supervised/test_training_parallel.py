"""Data-parallel Loop: several devices in one process, and two processes under jax.distributed.

The pytest process has 2 host devices (tests/conftest.py sets XLA_FLAGS).
"""

import importlib.util
import io
import os
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import optax
import pytest

from pax_trax import nn
from pax_trax.supervised import distributed, training

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "parallel_worker.py")

_spec = importlib.util.spec_from_file_location("parallel_worker", WORKER)
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)

RTOL, ATOL = 1e-5, 1e-6
TIMEOUT_S = 120  # for both worker processes together


def leaves(model):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(model)]


def run_loop(n_steps, **kwargs):
    loop = worker.make_loop(worker.global_batches(0), worker.global_batches(100), **kwargs)
    loop.run(n_steps)
    return loop


def assert_same_training(a, b):
    for name in ("losses", "evals"):
        np.testing.assert_allclose(a[name], b[name], rtol=RTOL, atol=ATOL, err_msg=name)
    keys = sorted(k for k in a if k.startswith("leaf_"))
    assert keys == sorted(k for k in b if k.startswith("leaf_"))
    for k in keys:
        assert a[k].dtype == b[k].dtype, k
        np.testing.assert_allclose(a[k], b[k], rtol=RTOL, atol=ATOL, err_msg=k)


@pytest.fixture(scope="module")
def single_device_run():
    """10 steps on one device: the reference (model with BatchNorm, dropout, weighted loss)."""
    loop = run_loop(10)
    assert loop.mesh is None and loop.n_devices == 1
    return worker.summarize(loop)


def test_two_devices_train_like_one_device(single_device_run):
    assert jax.local_device_count() >= 2
    loop = run_loop(10, n_devices=2)
    assert loop.n_devices == 2 and loop.mesh.size == 2
    assert_same_training(worker.summarize(loop), single_device_run)
    # Training changed the weights, so the agreement is not vacuous.
    first = worker.make_loop(worker.global_batches(0), worker.global_batches(100))
    assert not np.allclose(leaves(first.model)[0], single_device_run["leaf_0"])


def test_model_and_optimizer_state_are_replicated_and_batches_split():
    loop = run_loop(2, n_devices=2)
    devices = set(loop.mesh.devices.flat)
    assert devices == set(jax.local_devices()[:2])
    for x in jax.tree_util.tree_leaves((loop.model, loop.optimizer_states)):
        assert x.sharding.is_fully_replicated, x.sharding
        assert set(x.sharding.device_set) == devices
        shards = x.addressable_shards
        assert len(shards) == 2
        np.testing.assert_array_equal(np.asarray(shards[0].data), np.asarray(shards[1].data))
    batch = distributed.shard_batch(next(worker.global_batches(0)), loop.mesh)
    assert [s.data.shape for s in batch[0].addressable_shards] == [(8, 4), (8, 4)]
    assert batch[0].sharding.spec == jax.sharding.PartitionSpec("batch")


def test_checkpoints_move_between_device_counts(tmp_path):
    # Written by a 2-device Loop, resumed by a 1-device one and the other way round.
    two = run_loop(5, n_devices=2, output_dir=str(tmp_path / "a"))
    one = worker.make_loop(worker.global_batches(0), worker.global_batches(100),
                           output_dir=str(tmp_path / "a"))
    assert one.step == 5 and one.mesh is None
    for a, b in zip(leaves(one.model), leaves(two.model)):
        np.testing.assert_array_equal(a, b)

    run_loop(5, output_dir=str(tmp_path / "b"))
    resumed = worker.make_loop(worker.global_batches(0), worker.global_batches(100),
                               output_dir=str(tmp_path / "b"), n_devices=2)
    assert resumed.step == 5
    assert all(x.sharding.is_fully_replicated and len(x.sharding.device_set) == 2
               for x in jax.tree_util.tree_leaves(resumed.model))
    resumed.run(5)
    straight = run_loop(10)
    for a, b in zip(leaves(resumed.model), leaves(straight.model)):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def test_bad_device_counts_and_batch_sizes_are_explained():
    with pytest.raises(ValueError, match=r"n_devices=3, but this process has only 2 cpu device"):
        run_loop(0, n_devices=3)
    with pytest.raises(ValueError, match="n_devices must be a positive int"):
        run_loop(0, n_devices=0)
    task = training.TrainTask(worker.global_batches(0, batch_size=15),
                              nn.WeightedCategoryCrossEntropy(), optax.sgd(0.1))
    loop = training.Loop(worker.make_model(), task, n_devices=2, random_seed=0,
                         stdout=io.StringIO())
    with pytest.raises(ValueError, match=r"divisible by 2; item 0 has shape \(15, 4\)"):
        loop.run(1)
    assert loop.step == 0


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_like_one_process(tmp_path):
    n_steps = 5
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=1")
    coordinator = f"127.0.0.1:{_free_port()}"
    procs = []
    try:
        for rank in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, WORKER, coordinator, "2", str(rank), str(tmp_path), str(n_steps)],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        deadline = time.monotonic() + TIMEOUT_S
        outputs = []
        for p in procs:
            try:
                outputs.append(p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
            except subprocess.TimeoutExpired:
                for q in procs:
                    q.kill()
                logs = "\n".join(f"--- process {i}:\n{q.communicate()[0][-4000:]}"
                                  for i, q in enumerate(procs))
                pytest.fail(f"the two processes did not finish in {TIMEOUT_S} s:\n{logs}")
    finally:
        for p in procs:  # never leave a process behind, whatever failed
            if p.poll() is None:
                p.kill()
                p.wait()
    for rank, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"process {rank} failed:\n{out[-4000:]}"
        assert f"process {rank}: done" in out

    with np.load(tmp_path / "result.npz") as f:
        got = dict(f)
    # The reference ran 10 steps with evals at 1, 5, 10; compare the first 5 steps.
    reference = worker.summarize(run_loop(n_steps))
    assert len(got["losses"]) == 2  # recorded at steps 1 and 5
    assert_same_training(got, reference)

    # Only the chief wrote the checkpoint; a single-process Loop resumes from it.
    assert os.path.exists(tmp_path / "ckpt" / "model.ckpt")
    resumed = worker.make_loop(worker.global_batches(0), worker.global_batches(100),
                               output_dir=str(tmp_path / "ckpt"))
    assert resumed.step == n_steps
    for i, x in enumerate(leaves(resumed.model)):
        np.testing.assert_array_equal(x, got[f"leaf_{i}"])
