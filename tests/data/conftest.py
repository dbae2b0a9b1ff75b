"""Shared by the tests of `pax_trax.data`: real text, and a guard against hangs.

``tests/data_cache.py`` (VADER's movie review snippets and their TFDS
builder) is loaded here by path and registered as the module
``pax_trax_tests_data_cache`` (the name examples/sentiment_walkthrough.py
uses too), so test modules import it by that name.
"""

import importlib.util
import sys
import threading
from pathlib import Path

import pytest

DATA_CACHE = "pax_trax_tests_data_cache"
N_SNIPPETS, STRIDE = 2000, 5  # every fifth snippet: as many positive as negative


def _load_data_cache():
    if DATA_CACHE not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "data_cache.py"
        spec = importlib.util.spec_from_file_location(DATA_CACHE, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[DATA_CACHE] = module
    return sys.modules[DATA_CACHE]


data_cache = _load_data_cache()


@pytest.fixture(scope="session")
def rows():
    """2,000 snippets as ``[(line, text, score)]``: every fifth line of the file."""
    try:
        return data_cache.snippet_rows(stride=STRIDE, limit=N_SNIPPETS)
    except data_cache.DownloadError as err:
        pytest.skip(f"the vaderSentiment sdist is not cached and cannot be downloaded: {err}")


def run_within(seconds, fn):
    """Runs fn() in a helper thread and returns its result; fails instead of hanging."""
    result = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as error:  # noqa: BLE001 - re-raised below
            result["error"] = error

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"hung for more than {seconds} s"
    if "error" in result:
        raise result["error"]
    return result.get("value")


@pytest.fixture
def within():
    """`run_within`: ``within(seconds, fn)``."""
    return run_within
