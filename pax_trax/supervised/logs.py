r"""Training logs a person can use: TensorBoard files, Trax log lines, a progress
bar and a plot of the training curves.

Everything here is pure Python (``matplotlib`` is imported only inside
:func:`plot_history`), so importing this module costs nothing.

* :class:`SummaryWriter` writes TensorBoard event files without TensorFlow
  (the TFRecord framing and the ``Event`` protobuf are encoded by hand), as
  ``trax.jaxboard.SummaryWriter`` does with TensorFlow. A training loop writes
  train metrics to ``output_dir/train`` and eval metrics to
  ``output_dir/eval`` (:func:`summary_log_dir`, :func:`open_summary_writers`).
  :func:`read_scalars` and :func:`load_history` read them back.
* :func:`format_step_line` and :func:`format_metric_line` give Trax's log
  lines exactly::

      Step      1: Ran 1 train steps in 1.15 secs
      Step      1: train WeightedCategoryCrossEntropy |  0.69192106
      Step      1: eval      WeightedCategoryAccuracy |  0.50312500

* :class:`ProgressBar` is a dependency-free text progress bar.
* :class:`History` records ``(step, value)`` series per ``(mode, metric)``, as
  Trax's ``trax.supervised.history.History``; :func:`plot_history` draws it
  to a PNG file.

    >>> format_step_line(500, format_train_steps_text(499, 10.62))
    'Step    500: Ran 499 train steps in 10.62 secs'
    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
"""

import contextlib
import json
import math
import os
import socket
import struct
import sys
import time

__all__ = [
    "crc32c",
    "masked_crc32c",
    "SummaryWriter",
    "summary_log_dir",
    "open_summary_writers",
    "train_eval_writers",
    "read_events",
    "read_scalars",
    "load_history",
    "format_step_line",
    "format_metric_line",
    "format_metric",
    "format_metric_lines",
    "format_train_steps_text",
    "metric_name_width",
    "ProgressBar",
    "History",
    "plot_history",
]

# ----------------------------------------------------------------------------
# CRC32C (Castagnoli), as used by the TFRecord format.

_CRC32C_POLY = 0x82F63B78  # reflected 0x1EDC6F41


def _make_crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _CRC32C_POLY if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data, crc=0):
    """Returns the CRC32C (Castagnoli) checksum of ``data`` as an unsigned int.

    ``crc`` continues a checksum computed on preceding data.

        >>> crc32c(b"") == 0 and crc32c(b"a" * 32) == crc32c(b"a" * 32, 0)
        True
        >>> crc32c(b"6789", crc32c(b"12345")) == crc32c(b"123456789")
        True
    """
    table = _CRC32C_TABLE
    c = crc ^ 0xFFFFFFFF
    for b in bytes(data):
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc32c(data):
    """Returns the masked CRC32C that TFRecord files store after each field."""
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _tfrecord(data):
    """Frames ``data`` as one TFRecord: length, CRC of length, data, CRC."""
    header = struct.pack("<Q", len(data))
    return b"".join([
        header, struct.pack("<I", masked_crc32c(header)),
        data, struct.pack("<I", masked_crc32c(data)),
    ])


# ----------------------------------------------------------------------------
# Protobuf wire format, for the few messages that event files need:
#   Event {double wall_time = 1; int64 step = 2; string file_version = 3;
#          Summary summary = 5;}
#   Summary {repeated Value value = 1;}
#   Summary.Value {string tag = 1; float simple_value = 2;
#                  TensorProto tensor = 8; SummaryMetadata metadata = 9;}
#   SummaryMetadata {PluginData plugin_data = 1;}
#   PluginData {string plugin_name = 1; bytes content = 2;}
#   TensorProto {DataType dtype = 1; TensorShapeProto tensor_shape = 2;
#                repeated bytes string_val = 8;}
#   TensorShapeProto {repeated Dim dim = 2;}  Dim {int64 size = 1;}

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
_DT_STRING = 7
_FLOAT32_MAX = 3.4028234663852886e38


def _varint(n):
    n &= 0xFFFFFFFFFFFFFFFF  # negative int64: ten-byte two's complement
    out = bytearray()
    while True:
        bits = n & 0x7F
        n >>= 7
        if n:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _key(field, wire_type):
    return _varint((field << 3) | wire_type)


def _len_field(field, payload):
    return _key(field, _BYTES) + _varint(len(payload)) + payload


def _float32_bytes(value):
    if math.isfinite(value) and abs(value) > _FLOAT32_MAX:
        value = math.copysign(math.inf, value)  # what a float32 cast gives
    return struct.pack("<f", value)


def _event(wall_time, step=None, file_version=None, summary=None):
    out = _key(1, _FIXED64) + struct.pack("<d", wall_time)
    if step:
        out += _key(2, _VARINT) + _varint(int(step))
    if file_version is not None:
        out += _len_field(3, file_version.encode("utf-8"))
    if summary is not None:
        out += _len_field(5, summary)
    return out


def _scalar_summary(tag, value):
    v = _len_field(1, tag.encode("utf-8")) + _key(2, _FIXED32) + _float32_bytes(value)
    return _len_field(1, v)


def _text_summary(tag, strings, shape):
    plugin_data = _len_field(1, b"text")  # TextPluginData content is empty
    metadata = _len_field(1, plugin_data)
    dims = b"".join(_len_field(2, _key(1, _VARINT) + _varint(d)) for d in shape)
    tensor = _key(1, _VARINT) + _varint(_DT_STRING) + _len_field(2, dims)
    tensor += b"".join(_len_field(8, s) for s in strings)
    v = _len_field(1, tag.encode("utf-8")) + _len_field(8, tensor) + _len_field(9, metadata)
    return _len_field(1, v)


def _read_varint(buf, pos):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated protobuf varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf):
    """Yields ``(field_number, wire_type, value)`` of a serialized message."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire_type == _FIXED64:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire_type == _BYTES:
            n, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire_type == _FIXED32:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        if pos > len(buf):
            raise ValueError("truncated protobuf message")
        yield field, wire_type, value


def _decode_event(buf):
    event = {"wall_time": 0.0, "step": 0, "file_version": None, "values": []}
    for field, wire_type, value in _fields(buf):
        if field == 1 and wire_type == _FIXED64:
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif field == 2 and wire_type == _VARINT:
            event["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif field == 3 and wire_type == _BYTES:
            event["file_version"] = bytes(value).decode("utf-8")
        elif field == 5 and wire_type == _BYTES:
            for f, wt, v in _fields(value):
                if f == 1 and wt == _BYTES:
                    event["values"].append(_decode_value(v))
    return event


def _decode_value(buf):
    value = {"tag": "", "simple_value": None, "strings": None}
    for field, wire_type, v in _fields(buf):
        if field == 1 and wire_type == _BYTES:
            value["tag"] = bytes(v).decode("utf-8")
        elif field == 2 and wire_type == _FIXED32:
            value["simple_value"] = struct.unpack("<f", v)[0]
        elif field == 8 and wire_type == _BYTES:
            strings = [bytes(s) for f, wt, s in _fields(v) if f == 8 and wt == _BYTES]
            value["strings"] = [s.decode("utf-8", "replace") for s in strings]
    return value


# ----------------------------------------------------------------------------
# Writing event files.

def _to_float(value):
    """A Python float from a number or a one-element (NumPy / JAX) array."""
    size = getattr(value, "size", 1)
    if size != 1:
        raise ValueError(
            f"A scalar summary needs one number; got an array of shape "
            f"{tuple(getattr(value, 'shape', ()))}.")
    if hasattr(value, "item"):
        value = value.item()
    return float(value)


class SummaryWriter:
    """Writes TensorBoard event files with no TensorFlow, as Trax's jaxboard.

    The file ``log_dir/events.out.tfevents.<unix time>.<hostname>`` is created
    at construction; ``tensorboard --logdir <dir>`` shows it.

        >>> import tempfile
        >>> with SummaryWriter(tempfile.mkdtemp()) as w:
        ...     w.scalar("metrics/loss", 0.5, step=1)
        ...     w.scalar("metrics/loss", 0.25, step=2)
        >>> read_scalars(w.log_dir)
        {'metrics/loss': [(1, 0.5), (2, 0.25)]}

    Args:
      log_dir: directory of the event file; created if missing.
      enable: if False nothing is written (used on non-chief hosts).
      flush_secs: data is flushed to disk at least this often (and on
        :meth:`flush` / :meth:`close`).
    """

    def __init__(self, log_dir, enable=True, flush_secs=120):
        self.log_dir = os.fspath(log_dir)
        self._enabled = bool(enable)
        self._flush_secs = flush_secs
        self._step = 0
        self._file = None
        self._closed = False
        self.path = None
        if self._enabled:
            os.makedirs(self.log_dir, exist_ok=True)
            self._file, self.path = _create_event_file(self.log_dir)
            self._last_flush = time.monotonic()
            self._file.write(_tfrecord(_event(time.time(), file_version="brain.Event:2")))
            self.flush()

    def _write_summary(self, summary, step):
        if self._closed:
            raise ValueError(f"SummaryWriter for {self.log_dir!r} is closed.")
        if step is None:
            step = self._step
        else:
            self._step = step = int(step)
        if not self._enabled:
            return
        self._file.write(_tfrecord(_event(time.time(), step=step, summary=summary)))
        if time.monotonic() - self._last_flush > self._flush_secs:
            self.flush()

    def scalar(self, tag, value, step=None):
        """Saves a scalar (a number or one-element array) under ``tag``.

        ``step`` defaults to the last step given. Values are stored as float32.
        """
        self._write_summary(_scalar_summary(str(tag), _to_float(value)), step)

    def scalars(self, values, step=None, prefix=""):
        """Saves each ``name: value`` of a dict as ``scalar(prefix + name, ...)``."""
        for name, value in values.items():
            self.scalar(prefix + name, value, step)

    def text(self, tag, textdata, step=None):
        """Saves a string, or a 1-D / 2-D list of strings, for TensorBoard's
        Text dashboard (which renders markdown)."""
        if isinstance(textdata, (str, bytes)):
            rows, shape = [textdata], (1,)
        else:
            rows = [list(r) if not isinstance(r, (str, bytes)) else r for r in textdata]
            if rows and all(isinstance(r, list) for r in rows):
                shape = (len(rows), len(rows[0]))
                if any(len(r) != shape[1] for r in rows):
                    raise ValueError("text(): rows of a 2-D text table must have equal lengths.")
                rows = [s for r in rows for s in r]
            else:
                shape = (len(rows),)
        strings = [s if isinstance(s, bytes) else str(s).encode("utf-8") for s in rows]
        self._write_summary(_text_summary(str(tag), strings, shape), step)

    def flush(self):
        """Writes buffered events to disk."""
        if self._file is not None and not self._file.closed:
            self._file.flush()
            self._last_flush = time.monotonic()

    def close(self):
        """Flushes and closes the file; later writes raise ``ValueError``."""
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __repr__(self):
        return f"SummaryWriter({self.log_dir!r})"


def _create_event_file(log_dir):
    base = os.path.join(
        log_dir, f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}")
    path, n = base, 0
    while True:
        try:
            return open(path, "xb"), path  # noqa: SIM115 - closed by the writer
        except FileExistsError:
            n += 1
            path = f"{base}.{os.getpid()}.{n}"


def summary_log_dir(output_dir, mode, task_index=0, n_tasks=1):
    """Where Trax's ``Loop`` writes a task's summaries.

    ``output_dir/mode`` for a single task, ``output_dir/<task_index>/mode``
    when there are several (``mode`` is ``'train'`` or ``'eval'``).

        >>> summary_log_dir("out", "eval").replace(os.sep, "/")
        'out/eval'
        >>> summary_log_dir("out", "train", 1, n_tasks=2).replace(os.sep, "/")
        'out/1/train'
    """
    output_dir = os.fspath(output_dir)
    if n_tasks < 2:
        return os.path.join(output_dir, mode)
    return os.path.join(output_dir, str(task_index), mode)


def train_eval_writers(output_dir, enable=True):
    """``{'train': SummaryWriter(output_dir/train), 'eval':
    SummaryWriter(output_dir/eval)}``: the single-task layout of Trax's
    ``Loop``. The caller closes them (or lets them be garbage collected)."""
    return {mode: SummaryWriter(summary_log_dir(output_dir, mode), enable)
            for mode in ("train", "eval")}


@contextlib.contextmanager
def open_summary_writers(output_dir, n_train_tasks=1, n_eval_tasks=1, enable=True):
    """Opens the train and eval writers of a training run, as Trax's ``Loop``.

    Yields ``(train_writers, eval_writers)``, lists with one
    :class:`SummaryWriter` per task, all closed on exit. With
    ``output_dir=None`` the lists hold ``None``\\ s.
    """
    if output_dir is None:
        yield [None] * n_train_tasks, [None] * n_eval_tasks
        return
    train = [SummaryWriter(summary_log_dir(output_dir, "train", i, n_train_tasks), enable)
             for i in range(n_train_tasks)]
    evals = [SummaryWriter(summary_log_dir(output_dir, "eval", i, n_eval_tasks), enable)
             for i in range(n_eval_tasks)]
    try:
        yield train, evals
    finally:
        for w in train + evals:
            w.close()


# ----------------------------------------------------------------------------
# Reading event files.

def _event_files(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such event file or directory: {path!r}")
    if os.path.isfile(path):
        return [path]
    files = sorted(os.path.join(path, f) for f in os.listdir(path)
                   if "tfevents" in f and os.path.isfile(os.path.join(path, f)))
    if not files:
        raise FileNotFoundError(
            f"No event files (names containing 'tfevents') in {path!r}. For a "
            f"training output_dir read its 'train' or 'eval' subdirectory, or use "
            f"load_history(output_dir).")
    return files


def read_events(path):
    """Yields the events of one event file as dicts.

    Each dict has ``wall_time``, ``step``, ``file_version`` (``None`` except in
    the first event) and ``values``: a list of ``{'tag', 'simple_value',
    'strings'}`` dicts (``simple_value`` for scalars, ``strings`` for text).
    CRCs are checked (``ValueError`` when corrupt); a record cut short at the
    end of the file, as when a writer is still writing, ends the iteration.
    """
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if header_crc != masked_crc32c(header):
            raise ValueError(f"{path}: corrupt record length at byte {pos}")
        end = pos + 12 + length + 4
        if end > len(data):
            return  # partially written last record
        record = data[pos + 12:pos + 12 + length]
        (data_crc,) = struct.unpack("<I", data[end - 4:end])
        if data_crc != masked_crc32c(record):
            raise ValueError(f"{path}: corrupt record data at byte {pos}")
        yield _decode_event(memoryview(record))
        pos = end


def read_scalars(path_or_dir):
    """Reads the scalar summaries of an event file, or of all event files in a
    directory (in file name order, i.e. by creation time).

    Returns ``{tag: [(step, value), ...]}`` with values in written order.
    """
    scalars = {}
    for path in _event_files(path_or_dir):
        for event in read_events(path):
            for v in event["values"]:
                if v["simple_value"] is not None:
                    scalars.setdefault(v["tag"], []).append((event["step"], v["simple_value"]))
    return scalars


def load_history(output_dir):
    """Reads the summaries under a training ``output_dir`` into a :class:`History`.

    Each directory under ``output_dir`` holding event files becomes a mode
    named by its relative path (``'train'``, ``'eval'``, ``'1/eval'``); tags
    become the metric names (``'metrics/WeightedCategoryAccuracy'``).
    """
    output_dir = os.fspath(output_dir)
    history = History()
    for root, _, files in sorted(os.walk(output_dir)):
        if not any("tfevents" in f for f in files):
            continue
        mode = os.path.relpath(root, output_dir).replace(os.sep, "/")
        for tag, series in read_scalars(root).items():
            for step, value in series:
                history.append(mode, tag, step, value)
    return history


# ----------------------------------------------------------------------------
# Trax's log lines.

def format_step_line(step, text):
    """Trax's log line for ``step``: ``'Step {step:6d}: {text}'``.

        >>> format_step_line(1, "Total number of trainable weights: 2097666")
        'Step      1: Total number of trainable weights: 2097666'
    """
    return "Step % 6d: %s" % (step, text)


def format_train_steps_text(n_steps, elapsed_secs):
    """``'Ran {n} train steps in {secs:.2f} secs'``, as Trax."""
    return "Ran %d train steps in %0.2f secs" % (n_steps, elapsed_secs)


def metric_name_width(names):
    """The width Trax right-aligns metric names to: the longest of ``names``
    (Trax's ``Loop`` uses all train loss names and eval metric names)."""
    return max((len(n) for n in names), default=0)


def format_metric_line(mode, name, value, width=0):
    """Trax's metric text: mode left-aligned in 5 columns, the name
    right-aligned in ``width`` columns, and the value with 8 decimals.

        >>> format_metric_line("eval", "WeightedCategoryAccuracy", 0.503125, 28)
        'eval      WeightedCategoryAccuracy |  0.50312500'
    """
    return "%s %s | % .8f" % (mode.ljust(5), name.rjust(width), _to_float(value))


format_metric = format_metric_line


def format_metric_lines(step, mode, metrics, width=None):
    """Full lines ``format_step_line(step, format_metric_line(...))`` for each
    ``name: value`` of ``metrics``; ``width`` defaults to the longest name."""
    if width is None:
        width = metric_name_width(metrics)
    return [format_step_line(step, format_metric_line(mode, name, value, width))
            for name, value in metrics.items()]


# ----------------------------------------------------------------------------
# Progress bar.

def _format_secs(secs):
    if secs is None or not math.isfinite(secs):
        return "?"
    secs = int(secs)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _format_postfix_value(value):
    if isinstance(value, str):
        return value
    try:
        v = _to_float(value)
    except (TypeError, ValueError):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{v:.4g}"


class ProgressBar:
    """A dependency-free text progress bar: steps done/total, steps/s, ETA.

    On a terminal (``stream.isatty()``) the line is redrawn in place with
    ``'\\r'`` at most every ``min_interval`` seconds. On anything else (CI logs,
    files) it prints a plain line only when another ``1/max_lines`` of the
    total is done, so a run prints at most ``max_lines`` lines (one at
    :meth:`close` when the total is unknown).

        >>> import io
        >>> out = io.StringIO()
        >>> with ProgressBar(4, stream=out, desc="train", max_lines=2) as bar:
        ...     for _ in range(4):
        ...         bar.update(loss=0.5)
        >>> len(out.getvalue().splitlines())
        2

    Postfix values (``update(loss=x)``) are converted to text only when a line
    is drawn, so passing a JAX array does not wait for it every step.

    Args:
      total: number of steps expected (``None`` if unknown).
      stream: text stream to write to; ``sys.stderr`` when ``None``.
      desc: label at the start of the line.
      unit: name of a step in the rate (``'steps'``).
      max_lines: the most lines written to a non-terminal stream.
      min_interval: the least seconds between redraws on a terminal.
      width: characters of the bar itself.
      clock: a ``time.monotonic``-like function (for tests).
    """

    def __init__(self, total, stream=None, desc=None, unit="steps", max_lines=4,
                 min_interval=0.1, width=20, clock=time.monotonic):
        if total is not None and total < 0:
            raise ValueError(f"ProgressBar total must be >= 0 or None; got {total}.")
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        self.desc = desc
        self.unit = unit
        self.max_lines = max(1, int(max_lines))
        self.min_interval = min_interval
        self.width = width
        self._clock = clock
        self.n = 0
        self.postfix = {}
        self._start = clock()
        self._last_draw = None
        self._last_len = 0
        self._lines_written = 0
        self._drawn_n = None
        self._closed = False
        try:
            self._tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self._tty = False

    def format_line(self):
        """The progress text for the current state (without ``'\\r'``)."""
        elapsed = max(self._clock() - self._start, 0.0)
        rate = self.n / elapsed if elapsed > 0 else None
        parts = [f"{self.desc}: " if self.desc else ""]
        if self.total:
            frac = min(self.n / self.total, 1.0)
            filled = int(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            parts.append(f"{100 * frac:3.0f}%|{bar}| {self.n}/{self.total}")
            eta = (self.total - self.n) / rate if rate else None
            if self.n >= self.total:
                eta = 0.0
            times = f"{_format_secs(elapsed)}<{_format_secs(eta)}"
        else:
            parts.append(f"{self.n}" + (f"/{self.total}" if self.total is not None else ""))
            times = _format_secs(elapsed)
        rate_text = f"{rate:.2f} {self.unit}/s" if rate else f"? {self.unit}/s"
        extra = [times, rate_text]
        extra += [f"{k}={_format_postfix_value(v)}" for k, v in self.postfix.items()]
        parts.append(" [" + ", ".join(extra) + "]")
        return "".join(parts)

    def _draw(self):
        line = self.format_line()
        if self._tty:
            pad = " " * max(self._last_len - len(line), 0)
            self.stream.write("\r" + line + pad)
            self._last_len = len(line)
        else:
            self.stream.write(line + "\n")
            self._lines_written += 1
        self.stream.flush()
        self._last_draw = self._clock()
        self._drawn_n = self.n

    def _milestone(self, n):
        """Which of the ``max_lines`` equal parts of the total ``n`` completes."""
        return (n * self.max_lines) // self.total if self.total else 0

    def update(self, n=1, **postfix):
        """Advances by ``n`` steps and sets postfix values (``loss=...``)."""
        if self._closed:
            return
        prev = self.n
        self.n += n
        self.postfix.update(postfix)
        if self._tty:
            done = self.total is not None and self.n >= self.total
            if (self._last_draw is None or done
                    or self._clock() - self._last_draw >= self.min_interval):
                self._draw()
        elif self.total and self._milestone(self.n) > self._milestone(prev):
            if self._lines_written < self.max_lines:
                self._draw()

    def set_postfix(self, **postfix):
        """Sets values shown after the rate (drawn at the next update)."""
        self.postfix.update(postfix)

    def close(self):
        """Draws the final state and ends the line; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._tty:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
        elif self._drawn_n != self.n and (self._lines_written < self.max_lines or not self.total):
            self._draw()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


# ----------------------------------------------------------------------------
# History of metrics, and its plot.

class History:
    """History of metrics, as ``trax.supervised.history.History``.

    Maps ``(mode, metric)`` to a list of ``(step, value)`` pairs (and reads
    like a dict of them: ``keys()``, ``items()``, ``h[mode, metric]``); ``mode`` is
    ``'train'`` or ``'eval'`` and metric names are the summary tags
    (``'metrics/WeightedCategoryCrossEntropy'``, ``'training/learning_rate'``).

        >>> h = History()
        >>> h.append("train", "metrics/accuracy", 1, 0.04)
        >>> h.append("train", "metrics/accuracy", 1000, 0.31)
        >>> h.get("train", "metrics/accuracy")
        [(1, 0.04), (1000, 0.31)]
        >>> h.modes, h.metrics("train")
        (['train'], ['metrics/accuracy'])
        >>> History.from_json(h.to_json()).get("train", "metrics/accuracy")
        [(1, 0.04), (1000, 0.31)]
    """

    def __init__(self):
        self._values = {}

    def append(self, mode, metric, step, value):
        """Appends ``(step, value)`` to the series of ``mode`` and ``metric``."""
        self._values.setdefault(mode, {}).setdefault(metric, []).append(
            (int(step), _to_float(value)))

    def get(self, mode, metric):
        """The ``(step, value)`` list of ``mode`` and ``metric`` (``[]`` if none)."""
        return list(self._values.get(mode, {}).get(metric, []))

    @property
    def modes(self):
        """Sorted list of recorded modes (a property, as in Trax)."""
        return sorted(self._values)

    def metrics_for_mode(self, mode):
        """Sorted list of the metrics recorded for ``mode`` (Trax's name)."""
        return sorted(self._values.get(mode, {}))

    metrics = metrics_for_mode

    # A read-only mapping {(mode, metric): [(step, value), ...]}, the same
    # structure that plot_history takes as a plain dict.

    def keys(self):
        """Sorted list of the recorded ``(mode, metric)`` pairs."""
        return [(m, k) for m in self.modes for k in self.metrics(m)]

    def items(self):
        """``((mode, metric), [(step, value), ...])`` pairs, sorted by key."""
        return [(key, self.get(*key)) for key in self.keys()]

    def __getitem__(self, key):
        mode, metric = key
        if metric not in self._values.get(mode, {}):
            raise KeyError(key)
        return self.get(mode, metric)

    def __contains__(self, key):
        return isinstance(key, tuple) and len(key) == 2 and key[1] in self._values.get(key[0], {})

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.keys())

    def to_dict(self):
        """``{mode: {metric: [[step, value], ...]}}``, JSON-compatible."""
        return {m: {k: [[s, v] for s, v in series] for k, series in d.items()}
                for m, d in self._values.items()}

    @classmethod
    def from_dict(cls, d):
        """Inverse of :meth:`to_dict`; also takes Trax's ``{'_values': ...}``."""
        if set(d) == {"_values"}:
            d = d["_values"]
        history = cls()
        for mode, metrics in d.items():
            for metric, series in metrics.items():
                for step, value in series:
                    history.append(mode, metric, step, value)
        return history

    def to_json(self):
        """A JSON string (for checkpoint metadata)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def __eq__(self, other):
        return isinstance(other, History) and self.to_dict() == other.to_dict()

    def __repr__(self):
        n = sum(len(s) for _, s in self.items())
        return f"History(modes={self.modes}, {n} values)"


def _as_series_dict(history):
    if isinstance(history, History):
        return dict(history.items())
    out = {}
    for key, series in history.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise TypeError(
                f"plot_history expects a History or a dict keyed by (mode, metric) "
                f"tuples; got key {key!r}.")
        out[key] = [(int(s), _to_float(v)) for s, v in series]
    return out


def plot_history(history, path, metrics=None, title=None):
    """Writes a PNG of the training curves in ``history`` to ``path``.

    ``history`` is a :class:`History` or a dict ``{(mode, metric): [(step,
    value), ...]}``, e.g. ``{('train', 'loss'): [...], ('eval',
    'WeightedCategoryAccuracy'): [...]}``. Each metric gets a panel with one
    curve per mode (train and eval of the same loss share a panel); a
    ``'metrics/'`` prefix is left out of panel titles. ``metrics`` limits the
    panels to those names. Needs ``matplotlib`` (imported here, Agg backend,
    no pyplot state touched). Returns ``path``.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(
            "plot_history needs matplotlib: pip install 'matplotlib>=3.5'") from e
    series = _as_series_dict(history)
    names = []
    for _, metric in series:
        if metric not in names and (metrics is None or metric in metrics):
            names.append(metric)
    n = len(names)
    ncols = 1 if n <= 1 else 2
    nrows = max(1, math.ceil(n / ncols))
    fig = Figure(figsize=(6 * ncols, 3.6 * nrows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    if not names:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no metrics recorded", ha="center", va="center")
        ax.set_axis_off()
    for i, metric in enumerate(names):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        for (mode, m), points in sorted(series.items()):
            if m != metric or not points:
                continue
            points = sorted(points)
            steps = [p[0] for p in points]
            values = [p[1] for p in points]
            ax.plot(steps, values, marker="o" if len(points) < 30 else None,
                    markersize=3, label=mode)
        ax.set_title(metric[len("metrics/"):] if metric.startswith("metrics/") else metric)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    fig.savefig(path, format="png")
    return path
