"""Supervised learning, as in ``trax.supervised``.

* `lr_schedules`: learning-rate schedules (functions of the step).
* `train_step`: the pure, jittable training step and the eval step.
* `training`: TrainTask, EvalTask and the Loop.
* `checkpoints`: safe, atomic checkpoint files (never executes code on load).
* `logs`: TensorBoard event files, Trax's log lines, progress bar, curve plots.
* `distributed`: multi-process set-up (`jax.distributed` with gloo on CPU).
"""

from pax_trax.supervised import (
    checkpoints,
    distributed,
    logs,
    lr_schedules,
    train_step,
    training,
)
from pax_trax.supervised.train_step import (
    LossScaleState,
    init_optimizer_state,
    make_eval_step,
    make_train_step,
)
from pax_trax.supervised.training import EvalTask, Loop, StepCallback, TrainTask

__all__ = [
    "checkpoints",
    "distributed",
    "logs",
    "lr_schedules",
    "train_step",
    "training",
    "make_train_step",
    "make_eval_step",
    "init_optimizer_state",
    "LossScaleState",
    "TrainTask",
    "EvalTask",
    "Loop",
    "StepCallback",
]
