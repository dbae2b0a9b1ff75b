"""CountAndSkip and the data counters: resuming a stream after save/load."""

import json
import os

import pytest

from pax_trax import data
from pax_trax.data import counters as counters_module
from pax_trax.data import inputs as di


@pytest.fixture(autouse=True)
def clean_counters():
    saved = dict(di.data_counters)
    di.data_counters.clear()
    yield
    di.data_counters.clear()
    di.data_counters.update(saved)


def test_count_and_skip_trax():
    examples = data.Serial(lambda _: ((i, i + 1) for i in range(10)), data.CountAndSkip("toy_data"))
    ex_generator = examples()
    assert next(ex_generator) == (0, 1)
    assert di.data_counters["toy_data"] == 1
    assert next(ex_generator) == (1, 2)
    assert di.data_counters["toy_data"] == 2
    assert next(examples()) == (2, 3)  # a new generator skips what was counted
    assert di.data_counters["toy_data"] == 3
    di.data_counters["toy_data"] = 0  # reset
    assert next(examples()) == (0, 1)
    assert di.data_counters["toy_data"] == 1


def test_data_counters_is_one_shared_dict():
    assert data.data_counters is di.data_counters is counters_module.data_counters


def test_count_and_skip_resumes_after_save_and_load(tmp_path):
    pipeline = data.Serial(lambda _: iter(range(100)), data.CountAndSkip("train"), data.Batch(4))
    stream = pipeline()
    seen = [next(stream).tolist() for _ in range(3)]
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    data.save_data_counters(tmp_path, host_id=0)
    # Simulate a restart: the process loses its counters, then loads them.
    di.data_counters.clear()
    assert next(pipeline()).tolist() == [0, 1, 2, 3]  # without the counters: from the start
    di.data_counters.clear()
    data.load_data_counters(tmp_path, host_id=0)
    assert di.data_counters == {"train": 12}
    assert next(pipeline()).tolist() == [12, 13, 14, 15]


def test_counters_file_is_json_per_host_and_default_host_is_process_index(tmp_path):
    di.data_counters.update({"a": 3, "b": 0})
    data.save_data_counters(tmp_path / "new_dir", host_id=2)
    with open(tmp_path / "new_dir" / "data_counters2.json") as f:
        assert json.load(f) == {"a": 3, "b": 0}
    data.save_data_counters(tmp_path)  # jax.process_index() == 0 here
    assert sorted(os.listdir(tmp_path)) == ["data_counters0.json", "new_dir"]  # no temp files left
    di.data_counters.clear()
    data.load_data_counters(tmp_path)
    assert di.data_counters == {"a": 3, "b": 0}


def test_save_replaces_atomically_and_keeps_old_file_on_failure(tmp_path, monkeypatch):
    di.data_counters["s"] = 1
    data.save_data_counters(tmp_path, host_id=0)
    di.data_counters["s"] = 2
    data.save_data_counters(tmp_path, host_id=0)
    assert json.loads((tmp_path / "data_counters0.json").read_text()) == {"s": 2}

    def failing_dump(obj, f, **kwargs):
        f.write('{"s": ')  # a partial write, then a crash
        raise OSError("disk full")

    monkeypatch.setattr(counters_module.json, "dump", failing_dump)
    di.data_counters["s"] = 3
    with pytest.raises(OSError, match="disk full"):
        data.save_data_counters(tmp_path, host_id=0)
    monkeypatch.undo()
    assert json.loads((tmp_path / "data_counters0.json").read_text()) == {"s": 2}
    assert os.listdir(tmp_path) == ["data_counters0.json"]


def test_load_missing_file_keeps_counters_and_bad_files_raise(tmp_path):
    di.data_counters["kept"] = 5
    data.load_data_counters(tmp_path, host_id=0)
    assert di.data_counters == {"kept": 5}
    (tmp_path / "data_counters0.json").write_text("[1, 2]")
    with pytest.raises(
        ValueError, match=r"load_data_counters: expected .*data_counters0.json to hold a JSON object"
    ):
        data.load_data_counters(tmp_path, host_id=0)
    (tmp_path / "data_counters0.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"load_data_counters: .*data_counters0.json is not valid JSON"):
        data.load_data_counters(tmp_path, host_id=0)
    assert di.data_counters == {"kept": 5}


def test_count_and_skip_errors_and_empty_stream():
    with pytest.raises(ValueError, match="CountAndSkip: expected a non-empty string name, got 3"):
        data.CountAndSkip(3)
    assert list(data.CountAndSkip("empty")(iter([]))) == []
    # Skipping past the end of a shorter stream ends it cleanly.
    di.data_counters["short"] = 10
    assert list(data.count_and_skip(iter(range(3)), "short")) == []
