"""Lazy imports of the optional dependencies of `pax_trax.data` (the ``data`` extra).

``import pax_trax`` and ``import pax_trax.data`` never import TensorFlow,
TensorFlow Datasets, tensorflow-text or sentencepiece: importing TensorFlow
alone takes seconds. The functions that need one of them call `tensorflow()`,
`tensorflow_datasets()`, ... at run time; when the package is missing, the
ImportError names the function that needed it and the extra to install::

    ImportError: pax_trax.data.TFDS needs TensorFlow Datasets:
    pip install 'pax_trax[data]' (No module named 'tensorflow_datasets')

>>> import sys
>>> _ = import_optional("sys", "pax_trax.data.example", "the Python standard library")
>>> has_module("a_module_that_does_not_exist_anywhere")
False
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings

__all__ = [
    "EXTRA_HINT",
    "has_module",
    "import_optional",
    "tensorflow",
    "tensorflow_datasets",
    "tensorflow_text",
    "sentencepiece",
    "array_record",
]

EXTRA_HINT = "pip install 'pax_trax[data]'"


def import_optional(module_name, needed_by, what):
    """Imports `module_name`, or raises an ImportError naming `needed_by` and the extra.

    Args:
      module_name: the module to import, e.g. ``"tensorflow_datasets"``.
      needed_by: the public function that needs it, e.g. ``"pax_trax.data.TFDS"``.
      what: the package's human name, e.g. ``"TensorFlow Datasets"``.
    """
    if module_name in sys.modules and sys.modules[module_name] is not None:
        return sys.modules[module_name]
    try:
        # TensorFlow and friends emit deprecation warnings of their own on
        # import; they are not the caller's to fix.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            return importlib.import_module(module_name)
    except ImportError as err:
        raise ImportError(f"{needed_by} needs {what}: {EXTRA_HINT} ({err})") from err


def has_module(module_name):
    """Whether `module_name` can be imported, without importing it (TF takes seconds)."""
    if sys.modules.get(module_name) is not None:
        return True
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        # A finder may refuse the name outright (e.g. one that blocks it).
        return False


def tensorflow(needed_by):
    """``import tensorflow`` for `needed_by`."""
    return import_optional("tensorflow", needed_by, "TensorFlow")


def tensorflow_datasets(needed_by):
    """``import tensorflow_datasets`` for `needed_by` (does not import TensorFlow)."""
    # tensorflow-datasets 4.9.x imports importlib_resources without declaring it.
    import_optional("importlib_resources", needed_by, "importlib_resources")
    return import_optional("tensorflow_datasets", needed_by, "TensorFlow Datasets")


def tensorflow_text(needed_by):
    """``import tensorflow_text`` for `needed_by` (imports TensorFlow)."""
    return import_optional("tensorflow_text", needed_by, "tensorflow-text")


def sentencepiece(needed_by):
    """``import sentencepiece`` for `needed_by`."""
    return import_optional("sentencepiece", needed_by, "sentencepiece")


def array_record(needed_by):
    """``import array_record`` for `needed_by` (TFDS's random-access file format)."""
    return import_optional("array_record", needed_by, "array_record")
