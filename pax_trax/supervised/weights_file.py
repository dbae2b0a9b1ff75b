"""`Module.init_from_file`: a module initialized from a weights file, whatever its format.

Formats, told apart by their first bytes (not by their names):

* a pax_trax checkpoint (a zip archive, `pax_trax.supervised.checkpoints`),
  as written by `save_module` or by `pax_trax.supervised.training.Loop`
  (whose tree keeps the model under ``'model'``);
* a Trax 1.4.1 checkpoint, ``model.pkl.gz`` as written by Trax's ``Loop``
  (weights in the ``model.weights.npy.gz`` beside it, or inside the pickle
  in older files), or a (gzipped) pickle of a Trax weights tree; pickles are
  read by `pax_trax.supervised.trax_checkpoints.safe_unpickle`, which never
  runs code from the file;
* a gzipped sequence of ``.npy`` arrays (``model.weights.npy.gz`` alone): Trax's
  flat weights.

>>> import os, tempfile, numpy as np, pax_trax.nn as nn
>>> from pax_trax.supervised.checkpoints import save_module
>>> trained = nn.Dense(2).init(np.zeros((1, 3), np.float32)).replace(b=np.ones(2, np.float32))
>>> path = os.path.join(tempfile.mkdtemp(), 'dense.ckpt')
>>> save_module(path, trained)
>>> init_from_file(nn.Dense(2), path, input_signature=np.zeros((1, 3), np.float32)).b.tolist()
[1.0, 1.0]
"""

from __future__ import annotations

import gzip
import io
import os
import warnings
import zipfile
from typing import Any, NamedTuple

import jax
import numpy as np

from pax_trax.core import shapes as shapes_lib
from pax_trax.supervised import checkpoints as ckpt_lib
from pax_trax.supervised import trax_checkpoints as trax_lib

__all__ = ["init_from_file", "file_format", "read_trax_file", "read_npy_stream", "TraxFile"]

PAX_TRAX = "pax_trax"
TRAX_PICKLE = "trax_pickle"
NPY_STREAM = "npy_stream"


def file_format(file_name) -> str:
    """``'pax_trax'``, ``'trax_pickle'`` or ``'npy_stream'``, from the file's first bytes."""
    file_name = os.fspath(file_name)
    if not os.path.isfile(file_name):
        raise FileNotFoundError(f"init_from_file: no such file: {file_name}")
    if zipfile.is_zipfile(file_name):
        return PAX_TRAX
    with open(file_name, "rb") as f:
        head = f.read(2)
    if head == b"\x1f\x8b":
        try:
            with gzip.open(file_name, "rb") as f:
                head = f.read(6)
        except (OSError, EOFError) as exc:
            raise ValueError(f"init_from_file: {file_name} is not a readable gzip file "
                             f"({exc}).") from None
    else:
        with open(file_name, "rb") as f:
            head = f.read(6)
    if head.startswith(b"\x93NUMPY"):
        return NPY_STREAM
    if head[:1] == b"\x80":  # pickle protocol 2 and up
        return TRAX_PICKLE
    raise ValueError(
        f"init_from_file: {file_name} is neither a pax_trax checkpoint (zip), a Trax "
        f"checkpoint (a gzipped pickle) nor a .npy weights file (it starts with {head!r}).")


def _read_maybe_gzip(path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as exc:
        raise trax_lib.TraxCheckpointError(f"Cannot read {path}: {exc}") from None


def read_npy_stream(path) -> list:
    """The arrays of a (gzipped) sequence of ``.npy`` files, as ``model.weights.npy.gz``.

    Read with ``allow_pickle=False``; Trax's bfloat16 weights come back as the
    uint16 bit patterns it stored.
    """
    data = _read_maybe_gzip(path)
    stream, arrays = io.BytesIO(data), []
    while stream.tell() < len(data):
        try:
            arr = np.load(stream, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise trax_lib.TraxCheckpointError(
                f"Cannot read {path}: array {len(arrays)} is not a plain numeric .npy array "
                f"({exc}).") from None
        if arr.dtype.kind not in "biufc":
            raise trax_lib.TraxCheckpointError(f"{path}: array {len(arrays)} has dtype {arr.dtype}.")
        arrays.append(arr)
    return arrays


# ---------------------------------------------------------------------------
# Trax checkpoint files


class TraxFile(NamedTuple):
    """What a Trax weights/checkpoint file holds.

    `weights` is a flat list of arrays (`flat` is True: a Loop checkpoint) or
    a nested Trax weights tree; `flat_state` is None when the file has no
    state; `input_signature` is a `pax_trax.shapes.ShapeDtype` (or tuple) or None.
    """

    weights: Any
    flat: bool
    flat_state: Any
    input_signature: Any
    step: Any


def _weights_path(file_name):
    """Where Trax's Loop put the weights of `file_name` (``model.pkl.gz``)."""
    if file_name.endswith(".pkl.gz"):
        candidate = file_name[: -len("pkl.gz")] + "weights.npy.gz"
        if os.path.exists(candidate):
            return candidate
    return file_name + ".npy"


def read_trax_file(file_name) -> TraxFile:
    """Reads a Trax ``model.pkl.gz`` (with its ``model.weights.npy.gz``) or a pickled weights tree."""
    file_name = os.fspath(file_name)
    content = trax_lib.safe_unpickle(_read_maybe_gzip(file_name), file_name)
    if isinstance(content, dict) and "flat_weights" in content:
        weights = content["flat_weights"]
        if isinstance(weights, int) and not isinstance(weights, bool):
            # Since 2021 the pickle holds the compress level; the arrays are beside it.
            path = _weights_path(file_name)
            if not os.path.exists(path):
                raise trax_lib.TraxCheckpointError(
                    f"{file_name} keeps its weights in a separate file, but neither "
                    f"{file_name[:-len('pkl.gz')]}weights.npy.gz nor {path} exists.")
            weights = read_npy_stream(path)
        if not isinstance(weights, (list, tuple)):
            raise trax_lib.TraxCheckpointError(
                f"{file_name}: 'flat_weights' must be a list of arrays, got {type(weights).__name__}.")
        return TraxFile(list(weights), True, content.get("flat_state"),
                        content.get("input_signature"), content.get("step"))
    if isinstance(content, dict):
        raise trax_lib.TraxCheckpointError(
            f"{file_name} is a dict with keys {sorted(map(str, content))[:8]}; expected a Trax "
            "checkpoint (with 'flat_weights') or a pickled weights tree.")
    return TraxFile(content, False, None, None, None)


def _is_initialized(module) -> bool:
    return not module.missing_parameters()


def _fit_signature(sig, module):
    """Trax stores a tuple of input signatures; one input is a bare ShapeDtype here."""
    if isinstance(sig, (tuple, list)) and len(sig) == 1 and module.n_in == 1:
        return sig[0]
    return tuple(sig) if isinstance(sig, list) else sig


def _initialized(module, input_signature, file_signature, file_name):
    """Initializes from `input_signature` if given (as Trax does), else only if needed."""
    if input_signature is not None:
        return module.init(_fit_signature(input_signature, module))
    if _is_initialized(module):
        return module
    if file_signature is None:
        raise ValueError(
            f"init_from_file: {module.name} is not initialized and {file_name} holds no input "
            "signature; pass input_signature=ShapeDtype(...) (or example input), or call "
            "model.init(...) first.")
    return module.init(_fit_signature(file_signature, module))


def _load_pax_trax(module, file_name, weights_only):
    if not weights_only:
        return ckpt_lib.load_module(file_name, module)
    return _load_pax_trax_parameters(module, file_name)


def _load_pax_trax_parameters(module, file_name):
    """Reads only the parameter leaves of a pax_trax checkpoint; keeps the module's state."""
    with ckpt_lib._open_zip(file_name) as zf:
        manifest = ckpt_lib._read_manifest(zf, file_name)
        nodes = dict(manifest["nodes"])
        prefix = "['model']" if nodes.get("") == "dict" and "['model']" in nodes else ""
        entries = {}
        for i, e in enumerate(manifest["leaves"]):
            rel = ckpt_lib._under(e["path"], prefix)
            if rel is not None:
                entries[rel] = (i, e)
        params = module.parameters()
        flat, treedef = jax.tree_util.tree_flatten_with_path(params)
        # Paths of every state field (set or not): the file may hold state there.
        state_fields = [jax.tree_util.keystr(p)
                        for p, _ in jax.tree_util.tree_flatten_with_path(_state_markers(module))[0]]
        leaves = []
        for path, like in flat:
            key = jax.tree_util.keystr(path)
            if key not in entries:
                raise ckpt_lib.CheckpointError(
                    f"Cannot load the weights of {file_name} into {module.name}: the checkpoint "
                    f"has no parameter {key}.")
            i, e = entries[key]
            expected = (list(np.shape(like)), np.dtype(like.dtype).name)
            if (e["shape"], e["dtype"]) != expected:
                raise ckpt_lib.CheckpointError(
                    f"Cannot load the weights of {file_name} into {module.name}: the checkpoint "
                    f"has {key} of shape {tuple(e['shape'])} {e['dtype']} but the model expects "
                    f"shape {tuple(expected[0])} {expected[1]}.")
            leaves.append(ckpt_lib._restore(ckpt_lib._read_leaf(zf, file_name, i, e), e, like))
        known = {jax.tree_util.keystr(p) for p, _ in flat}
        extra = [p for p in entries if p not in known
                 and not any(p == s or p.startswith(s + "[") or p.startswith(s + ".")
                             for s in state_fields)]
        if extra:
            raise ckpt_lib.CheckpointError(
                f"Cannot load the weights of {file_name} into {module.name}: the checkpoint has "
                f"leaves the model lacks: {', '.join(extra[:6])}.")
    return module.update_parameters(jax.tree_util.tree_unflatten(treedef, leaves))


def _state_markers(module):
    """`module` with no parameters and a marker leaf in every state field, set or not."""

    def clear(m):
        changes = {n: None for n in m._pt_params}
        changes.update({n: _StateField() for n in m._pt_states})
        return m._replace_unchecked(changes) if changes else m

    return module.map_modules(clear)


class _StateField:
    """A leaf marking where a state field is."""

    __slots__ = ()


def _load_trax(module, file_name, weights_only, input_signature):
    if file_format(file_name) == NPY_STREAM:
        content = TraxFile(read_npy_stream(file_name), True, None, None, None)
    else:
        content = read_trax_file(file_name)
    signature = content.input_signature
    module = _initialized(module, input_signature, signature, file_name)
    what = f"Cannot load the Trax weights of {file_name} into {module.name}"
    module = trax_lib.set_trax_weights(module, content.weights, flat=content.flat, what=what)
    if not weights_only and content.flat_state is not None:
        module, loaded = trax_lib.set_trax_state(module, content.flat_state)
        if not loaded:
            warnings.warn(
                f"{file_name}: the file's state ({len(content.flat_state)} arrays) does not fit "
                f"the state of {module.name}; its weights were loaded and its own state was "
                "kept.", trax_lib.StateNotLoadedWarning, stacklevel=3)
    return module


def init_from_file(module, file_name, weights_only=False, input_signature=None):
    """Returns `module` initialized from the weights (and state) in `file_name`.

    `file_name` is a pax_trax checkpoint, a Trax checkpoint (``model.pkl.gz``)
    or a pickled Trax weights tree (see the module docstring). With
    ``weights_only=True`` only the parameters are read and the module keeps
    its own state (e.g. the caches of a ``mode='predict'`` model); otherwise
    state is loaded too: for pax_trax files the whole tree must match; for
    Trax files the state is loaded where Trax's and the module's state
    agree in number and shape, and a `StateNotLoadedWarning` says when they
    do not (the weights are loaded either way).

    If `input_signature` (a ShapeDtype, a tuple of them, or example input) is
    given, the module is first initialized from it, as in Trax; an
    uninitialized module is initialized from the signature stored in a Trax
    checkpoint, or an error asks for one.
    """
    from pax_trax.core.module import Module

    if not isinstance(module, Module):
        raise TypeError(f"init_from_file expects a pax_trax Module, got {type(module).__name__}.")
    file_name = os.fspath(file_name)
    if input_signature is not None:
        input_signature = shapes_lib.signature(input_signature)
    if file_format(file_name) == PAX_TRAX:
        module = _initialized(module, input_signature, None, file_name)
        return _load_pax_trax(module, file_name, weights_only)
    return _load_trax(module, file_name, weights_only, input_signature)
