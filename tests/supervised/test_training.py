"""TrainTask, EvalTask and Loop: training, evals, checkpoints, restarts, logs."""

import io
import itertools
import os

import jax
import numpy as np
import optax
import pytest

from pax_trax import nn
from pax_trax.supervised import checkpoints, logs, lr_schedules, training


def blob_batches(seed, batch_size=32):
    """An endless, deterministic stream of (x, y, weights) for 2-class blobs."""
    rng = np.random.default_rng(seed)
    while True:
        y = rng.integers(0, 2, size=batch_size)
        x = (rng.normal(size=(batch_size, 4)) + 1.5 * (2 * y[:, None] - 1)).astype(np.float32)
        yield x, y.astype(np.int32), np.ones(batch_size, np.float32)


def classifier():
    return nn.Serial(nn.Dense(16), nn.Relu(), nn.Dropout(0.1), nn.Dense(2))


def make_loop(output_dir=None, seed=0, n_steps_per_checkpoint=5, eval_tasks=True, **kwargs):
    task = training.TrainTask(
        blob_batches(seed), nn.WeightedCategoryCrossEntropy(), optax.adam(0.02),
        n_steps_per_checkpoint=n_steps_per_checkpoint)
    evals = training.EvalTask(
        blob_batches(seed + 100), [nn.WeightedCategoryCrossEntropy(), nn.WeightedCategoryAccuracy()],
        n_eval_batches=2) if eval_tasks else None
    return training.Loop(classifier(), task, eval_tasks=evals, output_dir=output_dir,
                         random_seed=42, stdout=io.StringIO(), **kwargs)


def test_loop_trains_logs_and_evaluates():
    loop = make_loop()
    loop.run(30)
    assert loop.step == 30
    losses = [v for _, v in loop.history.get("train", "WeightedCategoryCrossEntropy")]
    assert losses[-1] < 0.5 * losses[0]
    steps = [s for s, _ in loop.history.get("eval", "WeightedCategoryAccuracy")]
    assert steps == [1, 5, 10, 15, 20, 25, 30]
    assert loop.history.get("eval", "WeightedCategoryAccuracy")[-1][1] > 0.9
    out = loop._stdout.getvalue().splitlines()
    assert out[0] == f"Step      1: Total number of trainable weights: {4 * 16 + 16 + 16 * 2 + 2}"
    assert "Step      5: Ran 4 train steps in" in "\n".join(out)
    assert any(line.startswith("Step     30: eval      WeightedCategoryAccuracy |  ") for line in out)


def test_uninitialized_model_is_initialized_from_the_first_batch_which_is_trained_on():
    loop = make_loop(eval_tasks=False)
    assert loop.model.layers[0].w.shape == (4, 16)
    initialized = classifier().init(np.zeros((1, 4), np.float32), jax.random.PRNGKey(3))
    task = training.TrainTask(blob_batches(0), nn.WeightedCategoryCrossEntropy(), optax.sgd(0.0))
    kept = training.Loop(initialized, task, stdout=io.StringIO())
    np.testing.assert_array_equal(kept.model.layers[0].w, initialized.layers[0].w)


def test_restart_from_checkpoint_gives_the_same_losses(tmp_path):
    straight = make_loop()
    straight.run(12)
    reference = straight.history.get("train", "WeightedCategoryCrossEntropy")

    first = make_loop(output_dir=str(tmp_path))
    first.run(5)  # checkpoint at step 5
    del first
    # A new Loop on the same output_dir, with fresh data iterators, continues.
    resumed = make_loop(output_dir=str(tmp_path))
    assert resumed.step == 5
    resumed.run(7)
    got = resumed.history.get("train", "WeightedCategoryCrossEntropy")
    assert [s for s, _ in got] == [s for s, _ in reference]
    np.testing.assert_allclose([v for _, v in got], [v for _, v in reference], rtol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(resumed.model), jax.tree_util.tree_leaves(straight.model)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_checkpoint_files_tensorboard_and_plot(tmp_path):
    loop = make_loop(output_dir=str(tmp_path), permanent_checkpoint_at=lambda s: s == 10,
                     checkpoint_low_metric="WeightedCategoryCrossEntropy",
                     checkpoint_high_metric="WeightedCategoryAccuracy")
    loop.run(10)
    files = set(os.listdir(tmp_path))
    assert {"model.ckpt", "model_10.ckpt", "model_lowest_WeightedCategoryCrossEntropy.ckpt",
            "model_highest_WeightedCategoryAccuracy.ckpt", "training_curves.png"} <= files
    assert checkpoints.read_metadata(str(tmp_path / "model_10.ckpt"))["step"] == 10
    train = logs.read_scalars(str(tmp_path / "train"))
    evals = logs.read_scalars(str(tmp_path / "eval"))
    assert [s for s, _ in train["metrics/WeightedCategoryCrossEntropy"]] == [1, 5, 10]
    assert [s for s, _ in evals["metrics/WeightedCategoryAccuracy"]] == [1, 5, 10]
    with open(tmp_path / "training_curves.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    def poisoned():
        clean = blob_batches(0)
        for i in range(100):
            x, y, w = next(clean)
            if i == 7:
                x = x * np.float32("nan")
            yield x, y, w

    task = training.TrainTask(poisoned(), nn.WeightedCategoryCrossEntropy(), optax.adam(0.01),
                              n_steps_per_checkpoint=5)
    loop = training.Loop(classifier(), task, output_dir=str(tmp_path), random_seed=0,
                         stdout=io.StringIO())
    with pytest.raises(FloatingPointError, match="stopped at step 8.*nan.*last good checkpoint"):
        loop.run(20)
    assert loop.step == 7
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(loop.model))
    assert checkpoints.read_metadata(str(tmp_path / "model.ckpt"))["step"] == 5


def regression_batches(seed):
    rng = np.random.default_rng(seed)
    while True:
        x = rng.normal(size=(8, 4)).astype(np.float32)
        yield x, x[:, :2] * 3.0, np.ones((8, 2), np.float32)


def test_lr_schedule_replaces_the_learning_rate_each_step():
    schedule = lr_schedules.warmup(4, 0.1)  # Trax's: 0.1 * step / 5 until 0.1: 0.02, 0.04, ...
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=123.0)
    task = training.TrainTask(regression_batches(0), nn.L2Loss(), opt, lr_schedule=schedule)
    model = nn.Dense(2).init(np.zeros((1, 4), np.float32), jax.random.PRNGKey(0))
    loop = training.Loop(model, task, stdout=io.StringIO(), random_seed=0)
    w0 = np.asarray(model.w)
    loop.run(1)
    assert float(loop.optimizer_states[0].hyperparams["learning_rate"]) == pytest.approx(0.02)
    # The update used that rate: w1 = w0 - 0.02 * dL/dw on the first batch.
    x, y, w = next(regression_batches(0))
    grad = jax.grad(lambda m: nn.Serial(m, nn.L2Loss())((x, y, w)))(model).w
    np.testing.assert_allclose(loop.model.w, w0 - 0.02 * np.asarray(grad), rtol=1e-5, atol=1e-7)
    loop.run(1)
    assert float(loop.optimizer_states[0].hyperparams["learning_rate"]) == pytest.approx(0.04)
    plain = training.TrainTask(regression_batches(0), nn.L2Loss(), optax.sgd(0.1),
                               lr_schedule=schedule)
    with pytest.raises(ValueError, match="inject_hyperparams"):
        training.Loop(model, plain, stdout=io.StringIO())


def test_several_tasks_alternate_and_callbacks_run():
    calls = []

    class Recorder(training.StepCallback):
        def call_at(self, step):
            return step % 2 == 0

        def on_step_end(self, step):
            calls.append((step, self._loop.step))

    tasks = [training.TrainTask(blob_batches(s), nn.WeightedCategoryCrossEntropy(), optax.adam(0.01),
                                loss_name=f"loss{s}") for s in (0, 1)]
    loop = training.Loop(classifier(), tasks, stdout=io.StringIO(), random_seed=0,
                         callbacks=[Recorder])
    loop.run(6)
    assert calls == [(2, 2), (4, 4), (6, 6)]
    assert loop._data_positions == [3, 3]
    assert {name for _, name in loop.history.keys()} >= {"loss0", "loss1"}


def test_bad_arguments_are_explained():
    task = training.TrainTask(blob_batches(0), nn.L2Loss(), optax.sgd(0.1))
    with pytest.raises(ValueError, match="n_devices=3, but this process has only 2"):
        training.Loop(classifier(), task, n_devices=3)
    with pytest.raises(TypeError, match="iterator of batches"):
        training.TrainTask([1, 2], nn.L2Loss(), optax.sgd(0.1))
    with pytest.raises(ValueError, match="checkpoint_low_metric='Nope' is not one of"):
        training.Loop(classifier(), task, eval_tasks=training.EvalTask(
            blob_batches(1), [nn.WeightedCategoryAccuracy()]), checkpoint_low_metric="Nope",
            output_dir="/tmp/unused")
    with pytest.raises(TypeError, match="optax GradientTransformation"):
        training.TrainTask(blob_batches(0), nn.L2Loss(), "adam")


def test_restart_with_a_count_and_skip_pipeline_replays_exactly_once(tmp_path):
    from pax_trax import data

    def examples(_=None):  # a deterministic source of single examples
        rng = np.random.default_rng(7)
        while True:
            y = int(rng.integers(0, 2))
            x = (rng.normal(size=4) + 1.5 * (2 * y - 1)).astype(np.float32)
            yield x, np.int32(y), np.float32(1.0)

    def loop(output_dir):
        stream = data.Serial(examples, data.CountAndSkip("train_examples"), data.Batch(8))()
        task = training.TrainTask(stream, nn.WeightedCategoryCrossEntropy(), optax.adam(0.02),
                                  n_steps_per_checkpoint=3)
        return training.Loop(classifier(), task, output_dir=output_dir, random_seed=1,
                             stdout=io.StringIO())

    data.data_counters.pop("train_examples", None)
    straight = loop(None)
    straight.run(6)
    reference = [v for _, v in straight.history.get("train", "WeightedCategoryCrossEntropy")]

    data.data_counters.pop("train_examples", None)
    first = loop(str(tmp_path))
    first.run(3)
    metadata = checkpoints.read_metadata(str(tmp_path / training.CHECKPOINT_NAME))
    assert metadata["data_counters"]["train_examples"] == 3 * 8
    del first
    data.data_counters.pop("train_examples", None)  # a same-process restart (see Loop docs)
    resumed = loop(str(tmp_path))
    assert resumed.step == 3
    resumed.run(3)
    got = [v for _, v in resumed.history.get("train", "WeightedCategoryCrossEntropy")]
    np.testing.assert_allclose(got, reference, rtol=1e-6)
    assert data.data_counters["train_examples"] == 6 * 8


def test_exhausted_data_is_a_clear_error():
    def three_batches():
        for _ in range(3):
            x = np.ones((4, 2), np.float32)
            yield x, np.zeros(4, np.int32), np.ones(4, np.float32)

    model = nn.Serial(nn.Dense(2))
    task = training.TrainTask(three_batches(), nn.WeightedCategoryCrossEntropy(),
                              optax.sgd(0.1))
    loop = training.Loop(model, task, random_seed=0, stdout=io.StringIO())
    with pytest.raises(RuntimeError, match="TrainTask: labeled_data ran out after 3 batches"):
        loop.run(5)
    assert loop.step == 3
    eval_task = training.EvalTask(three_batches(), [nn.WeightedCategoryCrossEntropy()],
                                  n_eval_batches=4)
    loop = training.Loop(model, training.TrainTask(
        itertools.repeat(next(three_batches())), nn.WeightedCategoryCrossEntropy(),
        optax.sgd(0.1)), eval_tasks=[eval_task], random_seed=0, stdout=io.StringIO())
    with pytest.raises(RuntimeError, match="EvalTask: labeled_data ran out after 3 batches"):
        loop.run(1)
