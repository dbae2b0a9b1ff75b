"""Tests for pax_trax.supervised.logs: event files, Trax log lines, progress
bar, History and the training-curve plot."""

import io
import math
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pax_trax.supervised import logs
from pax_trax.supervised.logs import (
    History,
    ProgressBar,
    SummaryWriter,
    crc32c,
    format_metric_line,
    format_metric_lines,
    format_step_line,
    format_train_steps_text,
    load_history,
    masked_crc32c,
    metric_name_width,
    open_summary_writers,
    plot_history,
    read_events,
    read_scalars,
    summary_log_dir,
)

# ---------------------------------------------------------------------------
# CRC32C


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"", 0x00000000),
        (b"123456789", 0xE3069283),
        # RFC 3720 (iSCSI) appendix B.4 test vectors.
        (bytes(32), 0x8A9136AA),
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
    ],
)
def test_crc32c_known_vectors(data, expected):
    assert crc32c(data) == expected


def test_crc32c_is_incremental_and_masked_matches_tensorboard():
    data = bytes(range(256)) * 3
    assert crc32c(data[100:], crc32c(data[:100])) == crc32c(data)
    stub = pytest.importorskip("tensorboard.compat.tensorflow_stub.pywrap_tensorflow")
    for chunk in (b"", b"abc", data, struct.pack("<Q", 12345)):
        assert masked_crc32c(chunk) == stub.masked_crc32c(chunk)


# ---------------------------------------------------------------------------
# SummaryWriter and readers

_SCALARS = {
    "metrics/WeightedCategoryCrossEntropy": [(1, 0.69192106), (500, 0.50712883), (1000, 0.35916388)],
    "training/learning_rate": [(1, 1e-3), (500, 5e-4), (1000, 2.5e-4)],
}


def _write(log_dir, scalars=_SCALARS):
    with SummaryWriter(log_dir) as w:
        steps = sorted({s for series in scalars.values() for s, _ in series})
        for step in steps:
            for tag, series in scalars.items():
                for s, v in series:
                    if s == step:
                        w.scalar(tag, v, step)
    return w


def _f32(x):
    return float(np.float32(x))


def test_event_file_name_and_first_record(tmp_path):
    w = _write(tmp_path)
    name = os.path.basename(w.path)
    stamp = name.split(".")[3]
    assert name == f"events.out.tfevents.{stamp}.{socket.gethostname()}"
    assert len(stamp) == 10 and stamp.isdigit()
    assert abs(int(stamp) - time.time()) < 600
    events = list(read_events(w.path))
    assert events[0]["file_version"] == "brain.Event:2"
    assert events[0]["values"] == []
    assert all(e["file_version"] is None for e in events[1:])
    assert len(events) == 1 + 6


def test_read_scalars_round_trip(tmp_path):
    w = _write(tmp_path)
    expected = {t: [(s, _f32(v)) for s, v in series] for t, series in _SCALARS.items()}
    assert read_scalars(tmp_path) == expected
    assert read_scalars(w.path) == expected


def test_tensorboard_event_accumulator_reads_our_files(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    w = _write(tmp_path)
    with SummaryWriter(tmp_path / "text") as tw:
        tw.text("gin_config", "# Parameters\n    lr = 0.1", step=3)
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == sorted(_SCALARS)
    for tag, series in _SCALARS.items():
        got = acc.Scalars(tag)
        assert [e.step for e in got] == [s for s, _ in series]
        assert [e.value for e in got] == [_f32(v) for _, v in series]
        assert all(abs(e.wall_time - os.path.getmtime(w.path)) < 600 for e in got)
    assert acc.file_version == 2.0

    text_acc = EventAccumulator(str(tmp_path / "text"), size_guidance={"tensors": 0})
    text_acc.Reload()
    (tensor_event,) = text_acc.Tensors("gin_config")
    assert tensor_event.step == 3
    assert tensor_event.tensor_proto.string_val == [b"# Parameters\n    lr = 0.1"]
    assert [d.size for d in tensor_event.tensor_proto.tensor_shape.dim] == [1]
    meta = text_acc.SummaryMetadata("gin_config")
    assert meta.plugin_data.plugin_name == "text"


def test_tensorboard_protobuf_parses_our_records_exactly(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.compat.proto import event_pb2

    with SummaryWriter(tmp_path) as w:
        w.scalar("neg", -2.5, step=-3)
        w.scalar("big", 1e39, step=2**40)
        w.scalar("nan", float("nan"), step=7)
        w.text("table", [["a", "b"], ["c", "d"]], step=8)
    raw = Path(w.path).read_bytes()
    records, pos = [], 0
    while pos < len(raw):
        (n,) = struct.unpack("<Q", raw[pos:pos + 8])
        records.append(raw[pos + 12:pos + 12 + n])
        pos += 12 + n + 4
    events = [event_pb2.Event.FromString(r) for r in records]
    assert events[0].file_version == "brain.Event:2"
    assert [e.step for e in events[1:]] == [-3, 2**40, 7, 8]
    assert events[1].summary.value[0].tag == "neg"
    assert events[1].summary.value[0].simple_value == -2.5
    assert events[2].summary.value[0].simple_value == math.inf
    assert math.isnan(events[3].summary.value[0].simple_value)
    t = events[4].summary.value[0].tensor
    assert list(t.string_val) == [b"a", b"b", b"c", b"d"]
    assert [d.size for d in t.tensor_shape.dim] == [2, 2]
    # Our reader agrees on the same file.
    ours = read_scalars(w.path)
    assert ours["neg"] == [(-3, -2.5)] and ours["big"] == [(2**40, math.inf)]
    assert math.isnan(ours["nan"][0][1])


def test_scalar_accepts_numpy_and_jax_scalars_and_rejects_arrays(tmp_path):
    import jax.numpy as jnp

    with SummaryWriter(tmp_path) as w:
        w.scalar("a", np.float32(0.25), 1)
        w.scalar("a", jnp.asarray(0.5), 2)
        w.scalar("a", np.array([0.75]), 3)
        w.scalar("a", 1)  # step defaults to the last one given, as Trax
        w.scalars({"x": 1.0, "y": 2.0}, step=4, prefix="metrics/")
        with pytest.raises(ValueError, match="shape \\(2,\\)"):
            w.scalar("a", np.zeros(2), 5)
    assert read_scalars(tmp_path) == {
        "a": [(1, 0.25), (2, 0.5), (3, 0.75), (3, 1.0)],
        "metrics/x": [(4, 1.0)],
        "metrics/y": [(4, 2.0)],
    }


def test_closed_and_disabled_writers(tmp_path):
    w = SummaryWriter(tmp_path / "a")
    w.close()
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.scalar("x", 1.0, 1)
    off = SummaryWriter(tmp_path / "off", enable=False)
    off.scalar("x", 1.0, 1)
    off.flush()
    off.close()
    assert not (tmp_path / "off").exists()


def test_flush_makes_data_visible_while_open(tmp_path):
    w = SummaryWriter(tmp_path)
    w.scalar("x", 1.0, 1)
    w.flush()
    assert read_scalars(tmp_path) == {"x": [(1, 1.0)]}
    w.scalar("x", 2.0, 2)
    w.close()
    assert read_scalars(tmp_path) == {"x": [(1, 1.0), (2, 2.0)]}


def test_two_writers_in_one_dir_get_distinct_files(tmp_path):
    with SummaryWriter(tmp_path) as a, SummaryWriter(tmp_path) as b:
        a.scalar("x", 1.0, 1)
        b.scalar("x", 2.0, 2)
    assert a.path != b.path
    assert sorted(v for _, v in read_scalars(tmp_path)["x"]) == [1.0, 2.0]


def test_truncated_and_corrupt_files(tmp_path):
    w = _write(tmp_path / "run")
    raw = Path(w.path).read_bytes()
    cut = tmp_path / "events.out.tfevents.cut"
    cut.write_bytes(raw[:-7])  # a record still being written
    full = read_scalars(w.path)
    got = read_scalars(cut)
    assert got["training/learning_rate"] == full["training/learning_rate"][:-1]
    bad = bytearray(raw)
    bad[-6] ^= 0xFF  # flip a byte inside the last record's data
    (tmp_path / "events.out.tfevents.bad").write_bytes(bytes(bad))
    with pytest.raises(ValueError, match="corrupt record data"):
        read_scalars(tmp_path / "events.out.tfevents.bad")


def test_missing_paths_raise_helpful_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such"):
        read_scalars(tmp_path / "nope")
    with open_summary_writers(tmp_path) as (train, evals):
        train[0].scalar("metrics/loss", 1.0, 1)
    with pytest.raises(FileNotFoundError, match="'train' or 'eval'"):
        read_scalars(tmp_path)


def test_trax_output_dir_layout_and_load_history(tmp_path):
    assert summary_log_dir(tmp_path, "train") == os.path.join(tmp_path, "train")
    assert summary_log_dir(tmp_path, "eval", 1, 2) == os.path.join(tmp_path, "1", "eval")
    with open_summary_writers(tmp_path) as (train, evals):
        assert len(train) == 1 and len(evals) == 1
        assert train[0].log_dir == os.path.join(tmp_path, "train")
        assert evals[0].log_dir == os.path.join(tmp_path, "eval")
        for step in (1, 500):
            train[0].scalar("metrics/CrossEntropy", 1.0 / step, step)
            evals[0].scalar("metrics/Accuracy", 0.5, step)
    with pytest.raises(ValueError, match="closed"):
        train[0].scalar("x", 1.0)
    assert read_scalars(tmp_path / "train") == {"metrics/CrossEntropy": [(1, 1.0), (500, _f32(1 / 500))]}
    h = load_history(tmp_path)
    assert h.modes == ["eval", "train"]
    assert h.get("eval", "metrics/Accuracy") == [(1, 0.5), (500, 0.5)]

    with open_summary_writers(tmp_path / "multi", n_train_tasks=2, n_eval_tasks=1) as (train, evals):
        train[1].scalar("loss", 1.0, 1)
    assert read_scalars(tmp_path / "multi" / "1" / "train") == {"loss": [(1, 1.0)]}
    assert (tmp_path / "multi" / "0" / "train").is_dir()
    assert (tmp_path / "multi" / "eval").is_dir()
    assert load_history(tmp_path / "multi").modes == ["1/train"]  # dirs without scalars add no mode

    writers = logs.train_eval_writers(tmp_path / "single")
    assert sorted(writers) == ["eval", "train"]
    writers["eval"].scalar("metrics/Accuracy", 0.25, 3)
    for w in writers.values():
        w.close()
    assert load_history(tmp_path / "single").get("eval", "metrics/Accuracy") == [(3, 0.25)]

    with open_summary_writers(None, 2, 3) as (train, evals):
        assert train == [None, None] and evals == [None] * 3


# ---------------------------------------------------------------------------
# Trax's log lines

SEED_LINES = """\
Step      1: Total number of trainable weights: 2097666
Step      1: Ran 1 train steps in 1.15 secs
Step      1: train WeightedCategoryCrossEntropy |  0.69192106
Step      1: eval  WeightedCategoryCrossEntropy |  0.69349981
Step      1: eval      WeightedCategoryAccuracy |  0.50312500
Step    500: Ran 499 train steps in 10.62 secs
Step    500: train WeightedCategoryCrossEntropy |  0.50712883
Step   2000: eval      WeightedCategoryAccuracy |  0.84062500""".splitlines()


def test_exact_trax_seed_lines():
    names = ["WeightedCategoryCrossEntropy", "WeightedCategoryCrossEntropy", "WeightedCategoryAccuracy"]
    width = metric_name_width(names)
    assert width == 28
    got = [
        format_step_line(1, "Total number of trainable weights: %d" % 2097666),
        format_step_line(1, format_train_steps_text(1, 1.1499)),
        format_step_line(1, format_metric_line("train", "WeightedCategoryCrossEntropy", 0.69192106, width)),
        format_step_line(1, format_metric_line("eval", "WeightedCategoryCrossEntropy", np.float64(0.69349981), width)),
        format_step_line(1, format_metric_line("eval", "WeightedCategoryAccuracy", 0.503125, width)),
        format_step_line(500, format_train_steps_text(499, 10.62)),
        *format_metric_lines(500, "train", {"WeightedCategoryCrossEntropy": 0.50712883}),
        *format_metric_lines(2000, "eval", {"WeightedCategoryAccuracy": 0.840625}, width=width),
    ]
    assert got == SEED_LINES


def test_log_line_edge_cases():
    assert format_step_line(1234567, "x") == "Step  1234567: x"  # Trax's "% 6d"
    assert format_metric_line("eval", "Acc", np.float32(0.5), 3) == "eval  Acc |  0.50000000"
    assert format_metric_line("eval", "Loss", -1.5, 6) == "eval    Loss | -1.50000000"
    lines = format_metric_lines(3, "eval", {"A": 1.0, "Longer": 2.0})
    assert lines == ["Step      3: eval       A |  1.00000000", "Step      3: eval  Longer |  2.00000000"]
    assert metric_name_width([]) == 0
    assert logs.format_metric("train", "Loss", 0.5, width=5) == format_metric_line("train", "Loss", 0.5, 5)


# ---------------------------------------------------------------------------
# ProgressBar


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_non_tty_prints_a_few_plain_lines():
    out = io.StringIO()
    clock = FakeClock()
    bar = ProgressBar(1000, stream=out, desc="Training", clock=clock)
    for _ in range(1000):
        clock.t += 0.01
        bar.update(loss=np.float32(0.123456))
    bar.close()
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[-1].startswith("Training: 100%|####################| 1000/1000 [00:10<00:00, 100.00 steps/s")
    assert lines[-1].endswith("loss=0.1235]")
    assert lines[0].startswith("Training:  25%|#####---------------| 250/1000 [00:02<00:07, 100.00 steps/s")


def test_progress_bar_non_tty_interrupted_and_unknown_total():
    out = io.StringIO()
    with ProgressBar(100, stream=out, max_lines=2) as bar:
        bar.update(10)
    assert out.getvalue().splitlines() == [out.getvalue().rstrip("\n")]
    assert " 10/100 " in out.getvalue()
    out = io.StringIO()
    with ProgressBar(None, stream=out) as bar:
        for _ in range(50):
            bar.update()
        assert out.getvalue() == ""
    (line,) = out.getvalue().splitlines()
    assert line.startswith("50 [")
    with pytest.raises(ValueError, match=">= 0"):
        ProgressBar(-1, stream=out)


def test_progress_bar_tty_redraws_in_place():
    out = FakeTTY()
    clock = FakeClock()
    bar = ProgressBar(10, stream=out, unit="it", clock=clock, min_interval=0.1)
    for i in range(10):
        clock.t += 0.5
        bar.update(1, loss=1.0 / (i + 1))
    bar.close()
    text = out.getvalue()
    assert text.count("\r") == 11  # every update (0.5 s apart) plus the close
    assert text.endswith("\n") and text.count("\n") == 1
    last = text.rstrip("\n").split("\r")[-1]
    assert last == "100%|####################| 10/10 [00:05<00:00, 2.00 it/s, loss=0.1]"
    # Throttling: updates closer than min_interval are not drawn.
    out = FakeTTY()
    bar = ProgressBar(1000, stream=out, clock=clock)
    for _ in range(999):
        clock.t += 0.001
        bar.update()
    assert out.getvalue().count("\r") < 15
    bar.close()
    assert " 999/1000 " in out.getvalue().split("\r")[-1]
    bar.update()  # no-op after close
    assert out.getvalue().endswith("\n")


def test_progress_bar_default_stream_is_stderr(capsys):
    with ProgressBar(2) as bar:
        bar.update(2)
    captured = capsys.readouterr()
    assert captured.out == "" and "2/2" in captured.err


# ---------------------------------------------------------------------------
# History


def test_history_api_and_json_round_trip():
    h = History()
    assert h.modes == [] and h.get("train", "loss") == []
    h.append("train", "metrics/loss", 1, 0.7)
    h.append("train", "metrics/loss", 2, np.float32(0.5))
    h.append("eval", "metrics/accuracy", 2, 0.75)
    h.append("train", "training/learning_rate", 1, 1e-3)
    assert h.modes == ["eval", "train"]
    assert h.metrics("train") == ["metrics/loss", "training/learning_rate"]
    assert h.metrics_for_mode("nope") == []
    assert h.get("train", "metrics/loss") == [(1, 0.7), (2, 0.5)]
    assert h.get("eval", "metrics/loss") == []
    assert h.metrics("eval") == ["metrics/accuracy"]  # get() added nothing
    h.get("train", "metrics/loss").append((9, 9.0))  # a copy
    assert len(h.get("train", "metrics/loss")) == 2
    assert h.keys() == [("eval", "metrics/accuracy"), ("train", "metrics/loss"),
                        ("train", "training/learning_rate")]
    assert list(h) == h.keys() and len(h) == 3 and len(History()) == 0
    assert h["train", "metrics/loss"] == [(1, 0.7), (2, 0.5)]
    assert ("eval", "metrics/accuracy") in h and ("eval", "metrics/loss") not in h
    with pytest.raises(KeyError):
        h["eval", "metrics/loss"]
    assert dict(h.items())[("eval", "metrics/accuracy")] == [(2, 0.75)]
    back = History.from_json(h.to_json())
    assert back == h and back.get("eval", "metrics/accuracy") == [(2, 0.75)]
    assert isinstance(h.to_json(), str)
    trax_style = {"_values": {"train": {"metrics/loss": [(1, 0.7), (2, 0.5)]}}}
    assert History.from_dict(trax_style).get("train", "metrics/loss") == [(1, 0.7), (2, 0.5)]
    assert repr(h) == "History(modes=['eval', 'train'], 4 values)"


# ---------------------------------------------------------------------------
# plot_history

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24]), len(data)


def test_plot_history_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    h = History()
    for step in range(1, 2001, 100):
        h.append("train", "metrics/WeightedCategoryCrossEntropy", step, 1.0 / step)
        h.append("eval", "metrics/WeightedCategoryCrossEntropy", step, 1.2 / step)
        h.append("eval", "metrics/WeightedCategoryAccuracy", step, 1 - 1.0 / step)
    path = plot_history(h, tmp_path / "sub" / "curves.png", title="run")
    (w, hgt), size = _png_size(path)
    assert (w, hgt) == (1200, 360) and size > 10_000
    # The plain-dict form, one panel.
    path2 = plot_history({("train", "loss"): [(1, 2.0), (2, 1.0)]}, tmp_path / "one.png")
    (w, hgt), size = _png_size(path2)
    assert (w, hgt) == (600, 360) and size > 5_000
    # Empty history still writes a (placeholder) image; bad keys are rejected.
    _png_size(plot_history(History(), tmp_path / "empty.png"))
    with pytest.raises(TypeError, match="\\(mode, metric\\)"):
        plot_history({"loss": [(1, 1.0)]}, tmp_path / "bad.png")


def test_plot_history_without_matplotlib_names_the_requirement(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="pip install 'matplotlib"):
        plot_history(History(), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_import_is_light():
    code = ("import sys, pax_trax.supervised.logs; "
            "print(sorted(m for m in ('matplotlib', 'tensorboard', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert logs.__all__ and all(hasattr(logs, n) for n in logs.__all__)
