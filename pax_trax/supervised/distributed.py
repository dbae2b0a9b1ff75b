"""Data-parallel training over several devices and several processes.

The `Loop` (``pax_trax.supervised.training``) uses these helpers when it
trains on more than one device. The scheme is the one of Trax's Loop, written
with plain `jax.jit` and `jax.sharding.NamedSharding` (no ``pmap``):

* a 1-D mesh named ``'batch'`` over the devices (`data_parallel_mesh`);
* the model and the optimizer state replicated on every device (`replicate`);
* every batch split along axis 0 over the devices (`shard_batch`);
* one jitted step on the *global* batch. Because the step computes the loss
  of the whole global batch, XLA averages the gradients across devices
  itself (an all-reduce), and the result equals the single-device step on
  the same global batch up to float summation order: mean losses, weighted
  means (the global weighted mean, not a mean of per-device means),
  BatchNorm statistics (over the global batch) and dropout masks (JAX's
  partitionable threefry gives the same random bits however they are
  sharded) are all the single-device values.

Several processes (one machine or several) run the same program under
`jax.distributed`: call `initialize` first in each process, before any other
JAX call. The mesh then spans every process's devices, ordered by process,
and each process feeds its *own* shard of every global batch: process ``i``
of ``P`` provides rows ``i*b:(i+1)*b`` of a global batch of ``P*b`` rows,
assembled with `jax.make_array_from_process_local_data`.

>>> import numpy as np
>>> mesh = data_parallel_mesh(1)
>>> mesh.axis_names, mesh.size
(('batch',), 1)
>>> x = shard_batch((np.ones((4, 3), np.float32),), mesh)[0]
>>> x.shape, x.sharding.spec == PartitionSpec(BATCH_AXIS)
((4, 3), True)
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

__all__ = [
    "initialize",
    "shutdown",
    "is_chief",
    "data_parallel_mesh",
    "replicated_sharding",
    "batch_sharding",
    "replicate",
    "shard_batch",
    "BATCH_AXIS",
]

BATCH_AXIS = "batch"


def initialize(coordinator_address, num_processes, process_id, *, local_device_ids=None,
               initialization_timeout=300, collectives="gloo"):
    """Starts multi-process JAX in this process: call it first, before any JAX computation.

    Sets CPU collectives to `collectives` (``'gloo'``: all-reduces between
    processes over TCP, which works on one machine over loopback) and calls
    ``jax.distributed.initialize(coordinator_address, num_processes,
    process_id)``. Process 0 runs the coordinator at `coordinator_address`
    (``'host:port'``, e.g. ``'127.0.0.1:12345'``); every process passes the
    same address. Afterwards ``jax.devices()`` lists the devices of all
    processes and ``jax.local_devices()`` this process's own.
    """
    if not isinstance(coordinator_address, str) or ":" not in coordinator_address:
        raise ValueError(
            "initialize: coordinator_address must be 'host:port' (e.g. '127.0.0.1:12345'), "
            f"got {coordinator_address!r}."
        )
    if not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"initialize: num_processes must be a positive int, got {num_processes!r}.")
    if not isinstance(process_id, int) or not 0 <= process_id < num_processes:
        raise ValueError(
            f"initialize: process_id must be an int in [0, {num_processes}), got {process_id!r}."
        )
    if collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", collectives)
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               local_device_ids=local_device_ids,
                               initialization_timeout=initialization_timeout)


def shutdown():
    """Leaves the multi-process group (``jax.distributed.shutdown``)."""
    jax.distributed.shutdown()


def is_chief():
    """Whether this is process 0, the one that writes checkpoints and logs."""
    return jax.process_index() == 0


def data_parallel_mesh(n_devices=None):
    """A 1-D ``'batch'`` mesh over the first `n_devices` local devices of every process.

    `n_devices` counts devices per process (default 1, as the `Loop`'s
    default); the mesh has ``n_devices * jax.process_count()`` devices,
    ordered by process index, so process ``i`` holds the ``i``-th block of
    every batch.
    """
    n = _check_n_devices(n_devices)
    per_process = {}
    for device in jax.devices():
        per_process.setdefault(device.process_index, []).append(device)
    devices = []
    for index in sorted(per_process):
        local = sorted(per_process[index], key=lambda d: d.id)
        if len(local) < n:
            raise ValueError(
                f"n_devices={n}, but process {index} has only {len(local)} device(s) "
                f"({', '.join(str(d) for d in local)}). On CPU, XLA_FLAGS="
                f"--xla_force_host_platform_device_count={n} (set before JAX starts) "
                "gives more."
            )
        devices.extend(local[:n])
    return Mesh(np.asarray(devices), (BATCH_AXIS,), axis_types=(AxisType.Auto,))


def _check_n_devices(n_devices):
    if n_devices is None:
        return 1
    if isinstance(n_devices, bool) or not isinstance(n_devices, (int, np.integer)) or n_devices < 1:
        raise ValueError(f"n_devices must be a positive int or None, got {n_devices!r}.")
    return int(n_devices)


def replicated_sharding(mesh):
    """Every device holds the whole array."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh):
    """Axis 0 is split over the mesh's ``'batch'`` axis; other axes are whole."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXIS))


def replicate(tree, mesh):
    """Places every array of `tree` (a module, an optimizer state...) on every mesh device.

    Under several processes every process must pass the same values (the
    same seed gives the same initialization everywhere).
    """
    sharding = replicated_sharding(mesh)
    multi = jax.process_count() > 1

    def put(x):
        if isinstance(x, jax.Array) and x.sharding == sharding:
            return x
        if not multi:
            return jax.device_put(x, sharding)
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = put(jax.random.key_data(x))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        arr = np.asarray(x)
        return jax.make_array_from_process_local_data(sharding, arr, arr.shape)

    return jax.tree_util.tree_map(put, tree)


def shard_batch(batch, mesh, what="batch"):
    """Splits every array of `batch` along axis 0 over the mesh: a global array per item.

    `batch` holds this process's rows (all rows in a single process). Each
    item's leading dimension must be divisible by the number of this
    process's mesh devices.
    """
    sharding = batch_sharding(mesh)
    n_local = len(mesh.local_devices)
    leaves, treedef = jax.tree_util.tree_flatten(batch)
    out = []
    for i, x in enumerate(leaves):
        if isinstance(x, jax.Array) and x.sharding == sharding:
            out.append(x)
            continue
        arr = np.asarray(x)
        if arr.ndim == 0 or arr.shape[0] % n_local:
            shape = tuple(arr.shape)
            raise ValueError(
                f"data-parallel training over {n_local} device(s) per process splits every "
                f"{what} item along axis 0, so its leading dimension must be divisible by "
                f"{n_local}; item {i} has shape {shape}. Use a batch size that is a multiple "
                f"of n_devices={n_local}."
            )
        out.append(jax.make_array_from_process_local_data(sharding, arr))
    return jax.tree_util.tree_unflatten(treedef, out)
