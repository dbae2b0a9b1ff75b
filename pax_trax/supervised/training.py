"""Supervised training: TrainTask, EvalTask and the Loop, as `trax.supervised.training`.

    >>> import itertools, numpy as np, optax
    >>> from pax_trax import nn
    >>> from pax_trax.supervised import training
    >>> rng = np.random.default_rng(0)
    >>> def batches():
    ...     while True:
    ...         x = rng.normal(size=(16, 3)).astype(np.float32)
    ...         yield x, (x.sum(axis=1) > 0).astype(np.int32), np.ones(16, np.float32)
    >>> task = training.TrainTask(batches(), nn.WeightedCategoryCrossEntropy(), optax.adam(0.05))
    >>> loop = training.Loop(nn.Serial(nn.Dense(8), nn.Relu(), nn.Dense(2)), task)
    >>> loop.run(20)  # doctest: +ELLIPSIS
    Step      1: Total number of trainable weights: 50
    Step      1: Ran 1 train steps in ... secs
    Step      1: train WeightedCategoryCrossEntropy |  ...
    Step     20: train WeightedCategoryCrossEntropy |  ...
    >>> loop.step
    20

The Loop keeps everything it needs as values: the model (a module holding
its weights and state), one optax state per task, the step, and the data
position of every task. Each step runs one jitted pure function
(`pax_trax.supervised.train_step`). With `output_dir` it writes
checkpoints (a format that never executes code on load), TensorBoard event
files (`output_dir/train`, `output_dir/eval`), and at the end of `run` a PNG
of the training curves; a Loop built on an `output_dir` holding a checkpoint
continues from it, consuming the same batches, so an interrupted run and an
uninterrupted one give the same losses.

Data parallelism (`pax_trax.supervised.distributed`). `n_devices=N` (per
process; None means 1, i.e. no data parallelism, unlike Trax's default of all
devices) trains on a 1-D ``'batch'`` mesh of N devices: the model and the
optimizer states are replicated on every device, every batch is split along
axis 0 (its size must be divisible by N), and each step is one jitted
function of the *global* batch, so XLA averages the gradients across devices
and the step equals the single-device step on the same batch up to float
summation order (mean and weighted-mean losses, BatchNorm statistics over the
global batch, dropout masks). Under `jax.distributed` (several processes,
started with `distributed.initialize`) the mesh spans the N first devices of
every process; each process runs the same Loop, and each process's TrainTask
(and EvalTask) yields its own shard of every global batch: process ``i`` of
``P`` gives rows ``i*b:(i+1)*b`` of a global batch of ``P*b`` rows, as in
Trax. All processes compute the same (replicated) metrics; only process 0
(`Loop.is_chief`) prints, writes TensorBoard files, plots and checkpoints.
Checkpoints hold plain host arrays and are restored onto the mesh, so they
move freely between single- and multi-device runs.
"""

from __future__ import annotations

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from pax_trax.core import shapes
from pax_trax.core.module import Module
from pax_trax.core.summary import count_parameters
from pax_trax.nn.combinators import Serial
from pax_trax.supervised import checkpoints as ckpt_lib
from pax_trax.supervised import distributed
from pax_trax.supervised import logs as logs_lib
from pax_trax.supervised.train_step import make_train_step

__all__ = ["TrainTask", "EvalTask", "Loop", "StepCallback"]

CHECKPOINT_NAME = "model.ckpt"


class TrainTask:
    """Labeled data, a loss layer and an optimizer: how to update the weights.

    `labeled_data` is an iterator of batches `(inputs, targets[, weights])`.
    `optimizer` is any optax `GradientTransformation`. `lr_schedule` (a
    function of the 1-based step) replaces the optimizer's learning rate at
    every step, as in Trax; it needs an optimizer whose learning rate is a
    hyperparameter, i.e. built with `optax.inject_hyperparams`, e.g.
    `optax.inject_hyperparams(pax_trax.optimizers.Adam)(learning_rate=0.01)`.
    """

    def __init__(self, labeled_data, loss_layer, optimizer, lr_schedule=None,
                 n_steps_per_checkpoint=100, n_steps_per_permanent_checkpoint=None,
                 loss_name=None, sample_batch=None):
        if not hasattr(labeled_data, "__next__"):
            raise TypeError(
                "TrainTask: labeled_data must be an iterator of batches (call iter() on a "
                f"list, or pass a generator), got {type(labeled_data).__name__}."
            )
        if not isinstance(loss_layer, Module):
            raise TypeError(f"TrainTask: loss_layer must be a layer, got {loss_layer!r}.")
        if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
            raise TypeError(
                f"TrainTask: optimizer must be an optax GradientTransformation, got {optimizer!r}."
            )
        if lr_schedule is not None and not callable(lr_schedule):
            raise TypeError(f"TrainTask: lr_schedule must be a function of the step, got {lr_schedule!r}.")
        for name, value in (("n_steps_per_checkpoint", n_steps_per_checkpoint),
                            ("n_steps_per_permanent_checkpoint", n_steps_per_permanent_checkpoint)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"TrainTask: {name} must be a positive int or None, got {value!r}.")
        self.labeled_data = labeled_data
        self.loss_layer = loss_layer
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.n_steps_per_checkpoint = n_steps_per_checkpoint
        self.n_steps_per_permanent_checkpoint = n_steps_per_permanent_checkpoint
        self.loss_name = loss_name or loss_layer.name
        self._sample_batch = sample_batch
        self._peeked = []
        self._n_drawn = 0

    @property
    def sample_batch(self):
        """A batch to initialize from (the first batch, which is still trained on)."""
        if self._sample_batch is None:
            self._peeked.append(self._draw())
            self._sample_batch = self._peeked[0]
        return self._sample_batch

    def next_batch(self):
        if self._peeked:
            return self._peeked.pop(0)
        return self._draw()

    def _draw(self):
        batch = next_batch(self.labeled_data, "TrainTask", self._n_drawn)
        self._n_drawn += 1
        return batch


def next_batch(labeled_data, task, n_drawn):
    """`next(labeled_data)`, with an error that explains an exhausted stream.

    A bare StopIteration would end an enclosing generator silently (or become
    an unexplained RuntimeError), so running out of data is a clear error.
    """
    try:
        return next(labeled_data)
    except StopIteration:
        raise RuntimeError(
            f"{task}: labeled_data ran out after {n_drawn} batches. The Loop draws one "
            "batch per step (and EvalTask n_eval_batches per eval), so the stream must "
            "last as long as the training: repeat it (a generator with `while True`, "
            "itertools.cycle, or a data.TFDS stream with its default repeat)."
        ) from None


class EvalTask:
    """Labeled data and metric layers: how to measure the model.

    Each metric is averaged over `n_eval_batches` batches of `labeled_data`.
    Names default to the metric layers' names (`WeightedCategoryAccuracy`).
    """

    def __init__(self, labeled_data, metrics, metric_names=None, n_eval_batches=1,
                 sample_batch=None):
        if not hasattr(labeled_data, "__next__"):
            raise TypeError(
                "EvalTask: labeled_data must be an iterator of batches, got "
                f"{type(labeled_data).__name__}."
            )
        metrics = list(metrics)
        if not metrics or not all(isinstance(m, Module) for m in metrics):
            raise TypeError("EvalTask: metrics must be a non-empty list of layers.")
        names = list(metric_names) if metric_names is not None else [m.name for m in metrics]
        if len(names) != len(metrics):
            raise ValueError(
                f"EvalTask: {len(names)} metric_names for {len(metrics)} metrics."
            )
        if len(set(names)) != len(names):
            raise ValueError(f"EvalTask: metric names must be distinct, got {names}.")
        if not isinstance(n_eval_batches, int) or n_eval_batches < 1:
            raise ValueError(f"EvalTask: n_eval_batches must be a positive int, got {n_eval_batches!r}.")
        self.labeled_data = labeled_data
        self.metrics = metrics
        self.metric_names = names
        self.n_eval_batches = n_eval_batches
        self.sample_batch = sample_batch
        self._n_drawn = 0


class StepCallback:
    """Called by the Loop around training steps; subclass and pass the class.

    The Loop instantiates each callback class with itself: `callback(loop)`.
    """

    def __init__(self, loop):
        self._loop = loop

    def call_at(self, step):
        """Whether to call this callback at `step` (default: every step)."""
        del step
        return True

    def on_step_begin(self, step):
        pass

    def on_step_end(self, step):
        pass


def _every(n):
    if n is None:
        return lambda step: False
    return lambda step: step % n == 0


class Loop:
    """Trains `model` on `tasks`, with evals, checkpoints and logs.

    Arguments follow Trax's Loop: `checkpoint_at`, `permanent_checkpoint_at`
    and `eval_at` are functions of the step (defaults from the first task's
    `n_steps_per_checkpoint` and `n_steps_per_permanent_checkpoint`; evals
    at step 1 and at every checkpoint step); `which_task(step)` picks the
    task of a step (default: round robin); `random_seed` fixes all
    randomness (default: from the clock); `loss_chunk_size` computes the loss
    in chunks (see `make_train_step`); `callbacks` are `StepCallback`
    subclasses. `checkpoint_low_metric` / `checkpoint_high_metric` name an
    eval metric; the checkpoint with the lowest/highest value is kept as
    `model_lowest_<name>.ckpt` / `model_highest_<name>.ckpt`.

    `n_devices` is the number of devices of this process to train on
    data-parallel (default None: 1). With more than one device in all (N > 1,
    or several processes under `jax.distributed`), the model and optimizer
    states live replicated on a ``'batch'`` mesh (`Loop.mesh`) and every
    batch is split over it; see the module docstring.

    An uninitialized `model` is initialized from the first batch's
    signature, as Trax does; an initialized one is trained as it is.
    """

    def __init__(self, model, tasks, eval_model=None, eval_tasks=None, output_dir=None,
                 checkpoint_at=None, checkpoint_low_metric=None, checkpoint_high_metric=None,
                 permanent_checkpoint_at=None, eval_at=None, which_task=None, n_devices=None,
                 random_seed=None, loss_chunk_size=0, callbacks=None, progress_bar=None,
                 stdout=None):
        if not isinstance(model, Module):
            raise TypeError(f"Loop: model must be a pax_trax module, got {type(model).__name__}.")
        tasks = [tasks] if isinstance(tasks, TrainTask) else list(tasks)
        if not tasks or not all(isinstance(t, TrainTask) for t in tasks):
            raise TypeError("Loop: tasks must be a TrainTask or a non-empty list of them.")
        if eval_tasks is None:
            eval_tasks = []
        elif isinstance(eval_tasks, EvalTask):
            eval_tasks = [eval_tasks]
        eval_tasks = list(eval_tasks)
        n_local = len(jax.local_devices())
        if n_devices is not None and (isinstance(n_devices, bool) or not isinstance(
                n_devices, (int, np.integer)) or n_devices < 1):
            raise ValueError(f"Loop: n_devices must be a positive int or None, got {n_devices!r}.")
        n_devices = 1 if n_devices is None else int(n_devices)
        if n_devices > n_local:
            raise ValueError(
                f"Loop: n_devices={n_devices}, but this process has only {n_local} "
                f"{jax.default_backend()} device(s). On CPU, XLA_FLAGS="
                f"--xla_force_host_platform_device_count={n_devices} (set before JAX starts) "
                "gives more."
            )
        metric_names = {name for t in eval_tasks for name in t.metric_names}
        for label, metric in (("checkpoint_low_metric", checkpoint_low_metric),
                              ("checkpoint_high_metric", checkpoint_high_metric)):
            if metric is not None and metric not in metric_names:
                raise ValueError(
                    f"Loop: {label}={metric!r} is not one of the eval metrics {sorted(metric_names)}."
                )
        if (checkpoint_low_metric or checkpoint_high_metric) and output_dir is None:
            raise ValueError("Loop: checkpoint_low/high_metric need an output_dir.")

        self._tasks = tasks
        self._eval_tasks = eval_tasks
        self._output_dir = output_dir
        first = tasks[0]
        self._checkpoint_at = checkpoint_at or _every(first.n_steps_per_checkpoint)
        self._permanent_checkpoint_at = permanent_checkpoint_at or _every(
            first.n_steps_per_permanent_checkpoint)
        self._eval_at = eval_at or (lambda step: step == 1 or self._checkpoint_at(step))
        self._which_task = which_task or (lambda step: step % len(tasks))
        self._checkpoint_low_metric = checkpoint_low_metric
        self._checkpoint_high_metric = checkpoint_high_metric
        self._random_seed = int(random_seed if random_seed is not None
                                else time.time_ns() % (2**31 - 1))
        self._base_key_cache = None
        self._stdout = stdout if stdout is not None else sys.stdout
        self._progress = progress_bar
        self._step = 0
        self._history = logs_lib.History()
        self._data_positions = [0] * len(tasks)
        self._best = {}
        self._n_devices = n_devices
        # No mesh on a single device: the Loop then runs exactly as it always has.
        self._mesh = (distributed.data_parallel_mesh(n_devices)
                      if n_devices * jax.process_count() > 1 else None)

        model = self._initialize(model, first)
        self._eval_model_template = eval_model
        opt_states = [t.optimizer.init(model.parameters()) for t in tasks]
        for i, task in enumerate(tasks):
            if task.lr_schedule is not None:
                self._check_schedulable(i, opt_states[i])
        self._model = self._replicate(model)
        self._opt_states = [self._replicate(s) for s in opt_states]
        self._train_steps = [self._make_step(t, loss_chunk_size) for t in tasks]
        self._eval_fns = [self._make_eval(t) for t in eval_tasks]
        self._callbacks = [cb(self) for cb in (callbacks or [])]
        self._writers = None
        if output_dir is not None:
            os.makedirs(output_dir, exist_ok=True)
            if os.path.exists(self._checkpoint_path()):
                self.load_checkpoint()

    # ----------------------------------------------------------- construction

    def _initialize(self, model, task):
        needs_init = bool(model.missing_parameters())
        if not needs_init:
            return model
        batch = task.sample_batch
        inputs = batch[: model.n_in] if isinstance(batch, tuple) else batch
        if isinstance(inputs, tuple) and len(inputs) == 1:
            inputs = inputs[0]
        key = jax.random.fold_in(jax.random.PRNGKey(self._random_seed), 0)
        return model.init(shapes.signature(inputs), key)

    def _check_schedulable(self, i, opt_state):
        hyperparams = getattr(opt_state, "hyperparams", None)
        if not isinstance(hyperparams, dict) or "learning_rate" not in hyperparams:
            raise ValueError(
                f"Loop: TrainTask {i} has an lr_schedule, but its optimizer's learning rate "
                "cannot be set per step. Build the optimizer with optax.inject_hyperparams, "
                "e.g. optax.inject_hyperparams(pax_trax.optimizers.Adam)(learning_rate=0.01), "
                "or give the schedule to the optimizer as its learning_rate and drop lr_schedule."
            )

    def _make_step(self, task, loss_chunk_size):
        train_step = make_train_step(task.loss_layer, task.optimizer,
                                     loss_chunk_size=loss_chunk_size)
        schedule = task.lr_schedule

        def step_fn(model, opt_state, batch, base_key, step):
            # The step key is derived inside the compiled step: an eager fold_in
            # per step costs a dispatch (~0.4 ms) on the host.
            key = jax.random.fold_in(base_key, step)
            if schedule is not None:
                hp = dict(opt_state.hyperparams)
                hp["learning_rate"] = jnp.asarray(schedule(step), jnp.asarray(
                    hp["learning_rate"]).dtype)
                opt_state = opt_state._replace(hyperparams=hp)
            return train_step(model, opt_state, batch, key)

        if self._mesh is None:
            return jax.jit(step_fn)
        rep = distributed.replicated_sharding(self._mesh)
        data = distributed.batch_sharding(self._mesh)
        return jax.jit(step_fn, in_shardings=(rep, rep, data, rep, rep),
                       out_shardings=(rep, rep, rep))

    def _make_eval(self, eval_task):
        metrics = eval_task.metrics

        def eval_fn(model, batch):
            values = []
            for metric in metrics:
                model_with_metric = Serial(model, metric)
                values.append(model_with_metric(_as_stack(batch, model_with_metric.n_in)))
            return values

        if self._mesh is None:
            return jax.jit(eval_fn)
        rep = distributed.replicated_sharding(self._mesh)
        return jax.jit(eval_fn, in_shardings=(rep, distributed.batch_sharding(self._mesh)),
                       out_shardings=rep)

    def _replicate(self, tree):
        """`tree` replicated over the mesh (unchanged without one)."""
        if self._mesh is None:
            return tree
        return distributed.replicate(tree, self._mesh)

    def _shard(self, batch, what="batch"):
        """This process's `batch` as global arrays split over the mesh (unchanged without one)."""
        if self._mesh is None:
            return batch
        return distributed.shard_batch(batch, self._mesh, what)

    # ------------------------------------------------------------ properties

    @property
    def step(self):
        """The number of training steps taken so far."""
        return self._step

    @property
    def model(self):
        """The model being trained (weights and state as of the last step)."""
        return self._model

    @property
    def eval_model(self):
        """The model used for evals: `eval_model` (or the training model in eval
        mode) with the current weights and state."""
        template = self._eval_model_template
        if template is None:
            return self._model.eval()
        if template.missing_parameters():
            return self._model.eval()
        return template.update_parameters(self._model.parameters())

    @property
    def tasks(self):
        return self._tasks

    @property
    def eval_tasks(self):
        return self._eval_tasks

    @property
    def history(self):
        """Metrics recorded so far: `history.get('train', 'loss')` etc."""
        return self._history

    @property
    def output_dir(self):
        return self._output_dir

    @property
    def n_devices(self):
        """The number of this process's devices the Loop trains on."""
        return self._n_devices

    @property
    def mesh(self):
        """The data-parallel ``'batch'`` mesh, or None when training on one device."""
        return self._mesh

    @property
    def is_chief(self):
        return jax.process_index() == 0

    @property
    def optimizer_states(self):
        return list(self._opt_states)

    def new_rng(self):
        """A fresh key derived from the seed and the step (a pure function of both)."""
        return jax.random.fold_in(jax.random.PRNGKey(self._random_seed), 1_000_003 + self._step)

    def _base_key(self):
        if self._base_key_cache is None:
            self._base_key_cache = jax.random.PRNGKey(self._random_seed)
            if self._mesh is not None:
                self._base_key_cache = self._replicate(self._base_key_cache)
        return self._base_key_cache

    # ------------------------------------------------------------------- run

    def run(self, n_steps=1):
        """Runs `n_steps` training steps, with evals and checkpoints as configured."""
        if not isinstance(n_steps, int) or n_steps < 0:
            raise ValueError(f"Loop.run: n_steps must be a non-negative int, got {n_steps!r}.")
        if self._step == 0:
            self._log(1, f"Total number of trainable weights: {count_parameters(self._model)}")
        progress = logs_lib.ProgressBar(n_steps, stream=sys.stderr) if self._show_progress() else None
        loss_sums = {}
        last_logged, start_time = self._step, time.perf_counter()
        try:
            for _ in range(n_steps):
                step = self._step + 1
                for cb in self._callbacks:
                    if cb.call_at(step):
                        cb.on_step_begin(step)
                task_index = self._which_task(step)
                loss = self._train_one_step(step, task_index)
                total, count = loss_sums.get(task_index, (0.0, 0))
                loss_sums[task_index] = (total + loss, count + 1)
                self._step = step
                for cb in self._callbacks:
                    if cb.call_at(step):
                        cb.on_step_end(step)
                if progress is not None:
                    progress.update(1)
                checkpoint = self._checkpoint_at(step)
                permanent = self._permanent_checkpoint_at(step)
                evaluate = bool(self._eval_tasks) and self._eval_at(step)
                if checkpoint or permanent or evaluate or step == 1:
                    elapsed = time.perf_counter() - start_time
                    self._log(step, f"Ran {step - last_logged} train steps in {elapsed:0.2f} secs")
                    self._record_train_losses(step, loss_sums)
                    loss_sums = {}
                    last_logged, start_time = step, time.perf_counter()
                    if evaluate:
                        self.run_evals()
                    if self._output_dir is not None:
                        if checkpoint:
                            self.save_checkpoint()
                        if permanent:
                            self.save_checkpoint(f"model_{step}.ckpt")
                        self._save_best_checkpoints()
            if loss_sums:
                self._record_train_losses(self._step, loss_sums)
        finally:
            if progress is not None:
                progress.close()
            if self._writers is not None:
                for writer in self._writers.values():
                    writer.close()
                self._writers = None  # reopened (a new event file) by the next run
        has_train_history = len(self._history.get("train", self._tasks[0].loss_name)) > 0
        if self._output_dir is not None and self.is_chief and has_train_history:
            logs_lib.plot_history(self._history, os.path.join(self._output_dir, "training_curves.png"))

    def _show_progress(self):
        if self._progress is not None:
            return bool(self._progress)
        return sys.stderr.isatty()

    def _train_one_step(self, step, task_index):
        task = self._tasks[task_index]
        batch = task.next_batch()
        self._data_positions[task_index] += 1
        step_array = np.int32(step)
        if self._mesh is not None:
            batch = self._shard(batch, f"TrainTask {task_index} batch")
            step_array = self._replicate(step_array)
        model, opt_state, metrics = self._train_steps[task_index](
            self._model, self._opt_states[task_index], batch, self._base_key(), step_array)
        loss = float(metrics["loss"])
        if not np.isfinite(loss):
            raise FloatingPointError(
                f"Loop stopped at step {step}: the {task.loss_name} loss is {loss}. The model "
                "and optimizer state of this step were discarded"
                + (f"; the last good checkpoint in {self._output_dir} is intact."
                   if self._output_dir else ".")
            )
        self._model, self._opt_states[task_index] = model, opt_state
        return loss

    def _record_train_losses(self, step, loss_sums):
        for task_index, (total, count) in sorted(loss_sums.items()):
            name = self._tasks[task_index].loss_name
            value = total / count
            self._history.append("train", name, step, value)
            self._log(step, logs_lib.format_metric("train", name, value, width=self._metric_width()))
            self._write_scalar("train", name, value, step)

    def _metric_width(self):
        names = [t.loss_name for t in self._tasks]
        names += [n for t in self._eval_tasks for n in t.metric_names]
        return max(len(n) for n in names)

    # ----------------------------------------------------------------- evals

    def run_evals(self):
        """Runs every EvalTask on the current weights and records the averages."""
        model = self._replicate(self.eval_model)
        results = {}
        for task, eval_fn in zip(self._eval_tasks, self._eval_fns):
            sums = np.zeros(len(task.metrics))
            for _ in range(task.n_eval_batches):
                batch = next_batch(task.labeled_data, "EvalTask", task._n_drawn)
                task._n_drawn += 1
                values = eval_fn(model, self._shard(batch, "EvalTask batch"))
                sums += np.asarray([float(v) for v in values])
            for name, total in zip(task.metric_names, sums):
                value = total / task.n_eval_batches
                results[name] = value
                self._history.append("eval", name, self._step, value)
                self._log(self._step, logs_lib.format_metric("eval", name, value,
                                                             width=self._metric_width()))
                self._write_scalar("eval", name, value, self._step)
        return results

    # ----------------------------------------------------------- checkpoints

    def _checkpoint_path(self, name=CHECKPOINT_NAME):
        return os.path.join(self._output_dir, name)

    def _checkpoint_tree(self):
        return {"model": self._model, "opt_states": tuple(self._opt_states)}

    def save_checkpoint(self, basename=CHECKPOINT_NAME):
        """Writes the model, optimizer states, step, seed, history and data positions."""
        if self._output_dir is None:
            raise ValueError("Loop.save_checkpoint: the Loop has no output_dir.")
        if not self.is_chief:
            return
        metadata = {
            "step": self._step,
            "random_seed": self._random_seed,
            "data_positions": list(self._data_positions),
            "history": self._history.to_json(),
            "best": self._best,
        }
        counters = sys.modules.get("pax_trax.data.counters")
        if counters is not None and counters.data_counters:
            # A record of `CountAndSkip` positions (Trax saved them beside its
            # checkpoints). They are not loaded back: see `load_checkpoint`.
            metadata["data_counters"] = dict(counters.data_counters)
        tree = self._checkpoint_tree()
        if self._mesh is not None:
            # Replicated arrays: this process's first shard is the whole value, read
            # without any cross-process computation (only the chief gets here).
            tree = jax.tree_util.tree_map(_local_copy, tree)
        ckpt_lib.save_checkpoint(self._checkpoint_path(basename), tree, metadata)

    def load_checkpoint(self, directory=None, filename=CHECKPOINT_NAME):
        """Restores the Loop from a checkpoint and fast-forwards the data streams.

        Stream positions are restored by replaying: the batches the
        checkpointed run consumed are read again and dropped. A stream that
        contains `pax_trax.data.CountAndSkip` counts them during the replay,
        so its counters come out right without `load_data_counters` (loading
        them as well would skip twice). The counters are global to the
        process: to restart a Loop in the same process, clear
        ``pax_trax.data.data_counters`` before building the new streams.
        """
        path = os.path.join(directory or self._output_dir, filename)
        tree, metadata = ckpt_lib.load_checkpoint(path, self._checkpoint_tree())
        self._model = self._replicate(tree["model"])
        self._opt_states = [self._replicate(s) for s in tree["opt_states"]]
        self._step = int(metadata["step"])
        self._random_seed = int(metadata["random_seed"])
        self._base_key_cache = None
        self._history = logs_lib.History.from_json(metadata["history"])
        self._best = dict(metadata.get("best", {}))
        positions = list(metadata["data_positions"])
        if len(positions) != len(self._tasks):
            raise ValueError(
                f"Loop.load_checkpoint: the checkpoint has {len(positions)} tasks, the Loop "
                f"{len(self._tasks)}."
            )
        # Streams are iterators: skip the batches the checkpointed run consumed,
        # so the restarted Loop sees exactly the batches an uninterrupted one would.
        for i, (task, position) in enumerate(zip(self._tasks, positions)):
            while self._data_positions[i] < position:
                task.next_batch()
                self._data_positions[i] += 1

    def _save_best_checkpoints(self):
        for metric, better, prefix in (
            (self._checkpoint_low_metric, lambda new, old: new <= old, "lowest"),
            (self._checkpoint_high_metric, lambda new, old: new >= old, "highest"),
        ):
            if metric is None:
                continue
            values = self._history.get("eval", metric)
            if not values or values[-1][0] != self._step:
                continue
            value = values[-1][1]
            key = f"{prefix}_{metric}"
            if key not in self._best or better(value, self._best[key]):
                self._best[key] = value
                self.save_checkpoint(f"model_{key}.ckpt")

    # ------------------------------------------------------------------ logs

    def _log(self, step, text):
        if self.is_chief:
            print(logs_lib.format_step_line(step, text), file=self._stdout, flush=True)

    def _write_scalar(self, mode, name, value, step):
        if self._output_dir is None or not self.is_chief:
            return
        if self._writers is None:
            self._writers = logs_lib.train_eval_writers(self._output_dir)
        self._writers[mode].scalar(f"metrics/{name}", value, step)


def _as_stack(batch, n):
    items = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
    if len(items) < n:
        raise ValueError(f"expected a batch of at least {n} items, got {len(items)}.")
    items = items[:n]
    return items[0] if n == 1 else items


def _local_copy(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return x.addressable_shards[0].data
    return x
