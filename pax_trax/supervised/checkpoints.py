"""Checkpoints: one file of plain arrays plus a JSON manifest; nothing is executed on load.

Trax checkpoints are pickles (``model.pkl.gz``): loading one runs arbitrary
code. A pax_trax checkpoint is a zip file that holds only

* ``manifest.json``: the format name and version, every leaf's key path
  (``jax.tree_util.keystr``), logical shape and dtype, the class name of every
  pytree node, a structure fingerprint, and the caller's JSON ``metadata``
  (step, data position, history, ...);
* ``leaves/<i>.npy``: leaf ``i`` as a ``.npy`` array written with
  ``allow_pickle=False``. bfloat16 and the other ``ml_dtypes`` types are stored
  as unsigned integers of the same width (their dtype is in the manifest);
  typed PRNG keys (``jax.random.key``) are stored as ``jax.random.key_data``
  with the key implementation recorded.

Loading reads the manifest with ``json`` and the arrays with
``np.load(allow_pickle=False)``; a file with any other entry, an unexpected
manifest field, or an object (pickled) array is refused with `CheckpointError`.
Nothing from the file is ever used to build a Python object: the structure
of the result comes from the template ``like`` the caller builds (a freshly
initialized model and optimizer state), and the file must match it leaf by
leaf, or the error names the first differing path.

Files are written atomically: to a temporary file in the same directory,
flushed and ``fsync``-ed, then ``os.replace``-d onto the final name (and the
directory ``fsync``-ed). A crash at any moment leaves either the previous
checkpoint or the new one, never a torn file. A killed writer may leave a
``.<name>.tmp-*`` file behind, which the readers here ignore.

>>> import os, tempfile, numpy as np
>>> import pax_trax.nn as nn, optax
>>> model = nn.Serial(nn.Dense(3), nn.Relu()).init(np.zeros((1, 2), np.float32))
>>> opt_state = optax.adam(1e-3).init(model.parameters())
>>> d = tempfile.mkdtemp()
>>> save_checkpoint(checkpoint_path(d), {'model': model, 'opt_state': opt_state},
...                 metadata={'step': 10})
>>> tree, meta = load_checkpoint(latest_checkpoint(d),
...                              {'model': model, 'opt_state': opt_state})
>>> meta['step'], tree['model'].sublayers[0].w.shape
(10, (2, 3))

Naming follows Trax's ``model.pkl.gz`` / ``model_{step}.pkl.gz``: the
rolling checkpoint is ``model.ckpt`` (`checkpoint_path(dir)`), permanent ones
``model_{step}.ckpt`` (`checkpoint_path(dir, step)`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import zipfile
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "read_metadata",
    "save_module",
    "load_module",
    "structure_fingerprint",
    "checkpoint_path",
    "list_checkpoints",
    "latest_checkpoint",
    "FORMAT",
    "VERSION",
    "SUFFIX",
]

FORMAT = "pax_trax.checkpoint"
VERSION = 1
SUFFIX = ".ckpt"

_MANIFEST = "manifest.json"
_MANIFEST_KEYS = {"format", "version", "fingerprint", "nodes", "leaves", "metadata"}
_LEAF_KEYS = {"path", "kind", "dtype", "shape", "stored_dtype", "stored_shape"}
_KEY_LEAF_KEYS = _LEAF_KEYS | {"key_impl"}
_KINDS = ("array", "key", "python")
_PYTHON_TYPES = {"bool": (bool, np.bool_), "int": (int, np.int64),
                 "float": (float, np.float64), "complex": (complex, np.complex128)}
_MAX_MANIFEST_BYTES = 1 << 28
_NPY_HEADER_SLACK = 1 << 16
# Extended float/int types (bfloat16, float8_*, int4, ...) that .npy cannot
# describe: stored as unsigned integers of the same width.
_ML_DTYPES = {
    np.dtype(t).name: np.dtype(t)
    for t in (getattr(ml_dtypes, n) for n in dir(ml_dtypes) if not n.startswith("_"))
    if isinstance(t, type) and issubclass(t, np.generic)
}
_UINT_OF_SIZE = {1: np.dtype(np.uint8), 2: np.dtype(np.uint16), 4: np.dtype(np.uint32),
                 8: np.dtype(np.uint64)}


class CheckpointError(ValueError):
    """A checkpoint file that is not readable, not safe, or does not fit the template."""


# ---------------------------------------------------------------------------
# Leaves and structure


def _is_key(dtype) -> bool:
    return jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _plain_dtype(dtype, where) -> np.dtype:
    """Checks that `dtype` is a numeric dtype a checkpoint can hold."""
    dtype = np.dtype(dtype)
    if dtype.name in _ML_DTYPES:
        if dtype.itemsize not in _UINT_OF_SIZE:
            raise TypeError(f"{where}: dtype {dtype.name} cannot be stored.")
        return dtype
    if dtype.kind not in "biufc" or dtype.type.__module__ != "numpy":
        raise TypeError(
            f"{where}: a checkpoint holds numeric arrays only, got dtype {dtype}. Put "
            "strings and other Python values in `metadata`."
        )
    return dtype


def _stored_dtype(dtype: np.dtype) -> np.dtype:
    return _UINT_OF_SIZE[dtype.itemsize] if dtype.name in _ML_DTYPES else dtype


def _describe(x, where) -> dict:
    """The manifest entry (without `path`) of a leaf, or of a template leaf."""
    if isinstance(x, jax.core.Tracer):
        raise TypeError(f"{where}: cannot save a traced value; save outside jax.jit/grad.")
    if isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic):
        tname = type(x).__name__ if type(x) in (bool, int, float, complex) else None
        if tname is None:  # a subclass, e.g. an IntEnum
            tname = next(n for n, (t, _) in _PYTHON_TYPES.items() if isinstance(x, t))
        stored = np.dtype(_PYTHON_TYPES[tname][1])
        return {"kind": "python", "dtype": tname, "shape": [],
                "stored_dtype": stored.name, "stored_shape": []}
    dtype = getattr(x, "dtype", None)
    shape = getattr(x, "shape", None)
    if dtype is None or shape is None or not isinstance(
            x, (np.ndarray, np.generic, jax.Array, jax.ShapeDtypeStruct)):
        raise TypeError(
            f"{where}: a checkpoint leaf must be an array or a Python number, got "
            f"{type(x).__name__}. Put other values in `metadata`."
        )
    shape = [int(d) for d in shape]
    if _is_key(dtype):
        if isinstance(x, jax.ShapeDtypeStruct):
            data_shape = None  # known once the file says which implementation
            impl = None
        else:
            impl = str(jax.random.key_impl(x))
            data_shape = list(jax.random.key_data(x).shape)
        return {"kind": "key", "dtype": str(dtype), "shape": shape, "key_impl": impl,
                "stored_dtype": "uint32", "stored_shape": data_shape}
    dtype = _plain_dtype(dtype, where)
    return {"kind": "array", "dtype": dtype.name, "shape": shape,
            "stored_dtype": _stored_dtype(dtype).name, "stored_shape": shape}


def _to_numpy(x, entry) -> np.ndarray:
    """The array written for a leaf (host copy, ml_dtypes viewed as uints)."""
    if entry["kind"] == "python":
        return np.asarray(x, dtype=entry["stored_dtype"])
    if entry["kind"] == "key":
        x = jax.random.key_data(x)
    arr = np.asarray(x)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype.name in _ML_DTYPES:
        arr = arr.view(_UINT_OF_SIZE[arr.dtype.itemsize])
    if arr.dtype.name != entry["stored_dtype"] or list(arr.shape) != entry["stored_shape"]:
        raise TypeError(f"{entry['path']}: the leaf changed while it was being saved.")
    return arr


def _path_str(path) -> str:
    return jax.tree_util.keystr(tuple(path))


def _show(path: str) -> str:
    return path or "<root>"


def _walk(tree):
    """Returns `(leaves, nodes)`: `[(path, leaf)]` and `[[path, class name]]`, pre-order."""
    leaves_with_paths = jax.tree_util.tree_flatten_with_path(tree)[0]
    leaf_paths = {tuple(p) for p, _ in leaves_with_paths}
    nodes = []

    def visit(x, path):
        if path in leaf_paths:
            return
        nodes.append([_path_str(path), "None" if x is None else type(x).__qualname__])
        if x is None:
            return
        children = jax.tree_util.tree_flatten_with_path(x, is_leaf=lambda c: c is not x)[0]
        for key, child in children:
            visit(child, path + tuple(key))

    visit(tree, ())
    leaves = [(_path_str(p), leaf) for p, leaf in leaves_with_paths]
    seen = set()
    for p, _ in leaves:
        if p in seen:
            raise TypeError(f"Two leaves of the tree have the same key path {_show(p)}.")
        seen.add(p)
    return leaves, nodes


def _fingerprint(nodes, entries) -> str:
    """sha256 of the node class names, leaf paths, kinds, shapes and dtypes."""
    summary = [nodes, [[e["path"], e["kind"], e["dtype"], e["shape"]] for e in entries]]
    text = json.dumps(summary, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def structure_fingerprint(tree) -> str:
    """A short hash of `tree`'s structure: node classes, leaf paths, shapes and dtypes.

    Static fields (hyperparameters, initializers, mode, names) are not part of
    it: a checkpoint of a model in `'train'` mode loads into the same model in
    `'eval'` mode. Two trees with equal fingerprints can be loaded into each
    other.

    >>> import numpy as np
    >>> structure_fingerprint({'w': np.zeros(3)}) == structure_fingerprint({'w': np.ones(3)})
    True
    >>> structure_fingerprint({'w': np.zeros(3)}) == structure_fingerprint({'w': np.zeros(4)})
    False
    """
    leaves, nodes = _walk(tree)
    entries = [dict(_describe(x, _show(p)), path=p) for p, x in leaves]
    return _fingerprint(nodes, entries)


# ---------------------------------------------------------------------------
# Writing


def _json_default(x):
    """Lets metadata hold numpy/JAX scalars (e.g. a loss), converted to Python numbers."""
    if isinstance(x, (np.generic, np.ndarray, jax.Array)) and np.ndim(x) == 0:
        if isinstance(x, jax.core.Tracer):
            raise TypeError("metadata holds a traced value; use concrete values.")
        arr = np.asarray(x)
        if arr.dtype.kind == "b":
            return bool(arr)
        if arr.dtype.kind in "iu":
            return int(arr)
        if arr.dtype.kind == "c":
            raise TypeError("metadata cannot hold complex numbers.")
        return float(arr.astype(np.float64))
    raise TypeError(
        f"metadata must be JSON-serializable; got {type(x).__name__}: {x!r:.80}. "
        "Save arrays in the tree instead."
    )


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _open_temp(path):
    directory, base = os.path.split(path)
    while True:
        tmp = os.path.join(directory, f".{base}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:  # mode 0o666 & ~umask, like any file the user creates
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
        except FileExistsError:
            continue
        return tmp, os.fdopen(fd, "wb")


def _zip_info(name):
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    return info


def save_checkpoint(path, tree, metadata: Any = None) -> None:
    """Writes `tree` (any pytree of arrays and Python numbers) and `metadata` to `path`.

    `tree` is typically `{'model': model, 'opt_state': opt_state, 'rng': key}`:
    modules, optax states, tuples, lists, dicts and None are structure; numpy
    and JAX arrays (any numeric dtype, bfloat16 included, typed or raw PRNG
    keys) and Python numbers are leaves. `metadata` is anything `json` can
    write (numpy/JAX scalars are converted to Python numbers); tuples come
    back as lists.

    The write is atomic: a crash or an exception at any point leaves the
    previous file at `path` untouched and loadable, and an exception removes
    the temporary file. Missing parent directories are created.
    """
    path = os.fspath(path)
    leaves, nodes = _walk(tree)
    for p, x in leaves:
        if isinstance(x, jax.ShapeDtypeStruct):
            raise TypeError(f"{_show(p)}: cannot save a ShapeDtypeStruct; it holds no values.")
    entries = [dict(_describe(x, _show(p)), path=p) for p, x in leaves]
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "fingerprint": _fingerprint(nodes, entries),
        "nodes": nodes,
        "leaves": entries,
        "metadata": metadata,
    }
    manifest_bytes = json.dumps(manifest, default=_json_default).encode()

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp, f = _open_temp(os.path.abspath(path))
    try:
        with f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                zf.writestr(_zip_info(_MANIFEST), manifest_bytes)
                for i, ((_, leaf), entry) in enumerate(zip(leaves, entries)):
                    arr = _to_numpy(leaf, entry)
                    big = arr.nbytes > (1 << 31) - _NPY_HEADER_SLACK
                    with zf.open(_zip_info(f"leaves/{i}.npy"), "w", force_zip64=big) as out:
                        np.save(out, arr, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


# ---------------------------------------------------------------------------
# Reading


def _bad(path, why):
    return CheckpointError(f"{path} is not a valid pax_trax checkpoint: {why}")


def _check_leaf_entry(path, i, e):
    if not isinstance(e, dict):
        raise _bad(path, f"leaf entry {i} is not an object.")
    kind = e.get("kind")
    allowed = _KEY_LEAF_KEYS if kind == "key" else _LEAF_KEYS
    if set(e) != allowed:
        raise _bad(path, f"leaf entry {i} has fields {sorted(e)}, expected {sorted(allowed)}.")
    if kind not in _KINDS:
        raise _bad(path, f"leaf entry {i} has unknown kind {kind!r}.")
    if not isinstance(e["path"], str):
        raise _bad(path, f"leaf entry {i} has a non-string path.")
    for f in ("shape", "stored_shape"):
        s = e[f]
        if not (isinstance(s, list) and all(type(d) is int and d >= 0 for d in s)):
            raise _bad(path, f"leaf {_show(e['path'])} has an invalid {f} {s!r:.80}.")
    if not isinstance(e["dtype"], str) or not isinstance(e["stored_dtype"], str):
        raise _bad(path, f"leaf {_show(e['path'])} has a non-string dtype.")
    stored = _dtype_from_name(path, e["stored_dtype"])
    if kind == "python":
        if e["dtype"] not in _PYTHON_TYPES or e["shape"] or e["stored_shape"] or \
                stored != np.dtype(_PYTHON_TYPES[e["dtype"]][1]):
            raise _bad(path, f"leaf {_show(e['path'])} is an invalid Python number entry.")
    elif kind == "key":
        if not isinstance(e["key_impl"], str) or stored != np.uint32 or \
                e["stored_shape"][:len(e["shape"])] != e["shape"]:
            raise _bad(path, f"leaf {_show(e['path'])} is an invalid PRNG key entry.")
    else:
        logical = _dtype_from_name(path, e["dtype"])
        if e["shape"] != e["stored_shape"] or _stored_dtype(logical) != stored:
            raise _bad(path, f"leaf {_show(e['path'])} has inconsistent stored shape/dtype.")


def _dtype_from_name(path, name) -> np.dtype:
    if name in _ML_DTYPES:
        return _ML_DTYPES[name]
    try:
        dtype = np.dtype(name) if re.fullmatch(r"[a-z]+[0-9]*", name) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.name != name or dtype.kind not in "biufc":
        raise _bad(path, f"unsupported dtype {name!r:.40}.")
    return dtype


def _read_manifest(zf, path) -> dict:
    names = zf.namelist()
    if _MANIFEST not in names:
        raise _bad(path, "it has no manifest.json.")
    info = zf.getinfo(_MANIFEST)
    if info.file_size > _MAX_MANIFEST_BYTES:
        raise _bad(path, "manifest.json is too large.")
    try:
        manifest = json.loads(zf.read(_MANIFEST).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(path, f"manifest.json is not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict) or set(manifest) != _MANIFEST_KEYS:
        got = sorted(manifest) if isinstance(manifest, dict) else type(manifest).__name__
        raise _bad(path, f"the manifest has fields {got}, expected {sorted(_MANIFEST_KEYS)}.")
    if manifest["format"] != FORMAT:
        raise _bad(path, f"format {manifest['format']!r:.60}, expected {FORMAT!r}.")
    if manifest["version"] != VERSION or type(manifest["version"]) is not int:
        raise CheckpointError(
            f"{path} has checkpoint format version {manifest['version']!r:.20}; this "
            f"pax_trax reads version {VERSION}."
        )
    nodes, leaves = manifest["nodes"], manifest["leaves"]
    if not isinstance(nodes, list) or not all(
            isinstance(n, list) and len(n) == 2 and all(isinstance(s, str) for s in n)
            for n in nodes):
        raise _bad(path, "the manifest's node list is malformed.")
    if not isinstance(leaves, list):
        raise _bad(path, "the manifest's leaf list is malformed.")
    for i, e in enumerate(leaves):
        _check_leaf_entry(path, i, e)
    if len({e["path"] for e in leaves}) != len(leaves):
        raise _bad(path, "two leaves have the same path.")
    expected = {_MANIFEST} | {f"leaves/{i}.npy" for i in range(len(leaves))}
    if len(names) != len(set(names)) or set(names) != expected:
        odd = sorted(set(names) - expected) or sorted(expected - set(names))
        raise _bad(path, f"unexpected or missing entries {odd[:5]} (or duplicated names).")
    if _fingerprint(nodes, leaves) != manifest["fingerprint"]:
        raise _bad(path, "the structure fingerprint does not match the manifest.")
    return manifest


def _open_zip(path):
    try:
        return zipfile.ZipFile(path, "r")
    except zipfile.BadZipFile as exc:
        raise _bad(path, f"not a zip archive ({exc}).") from None


def read_metadata(path) -> Any:
    """The `metadata` saved with a checkpoint, without loading any array."""
    path = os.fspath(path)
    with _open_zip(path) as zf:
        return _read_manifest(zf, path)["metadata"]


def _under(path: str, prefix: str):
    """`path` relative to `prefix`, or None if it is not below it."""
    if not prefix:
        return path
    if path == prefix or (path.startswith(prefix) and path[len(prefix)] in ".["):
        return path[len(prefix):]
    return None


def _fmt(e) -> str:
    dtype = f"Python {e['dtype']}" if e["kind"] == "python" else e["dtype"]
    return f"shape {tuple(e['shape'])} {dtype}"


def _compare(path, manifest, prefix, like_nodes, like_entries):
    """Returns `{template path: file entry index}` or raises naming the first difference."""
    file_index = {}
    for i, e in enumerate(manifest["leaves"]):
        rel = _under(e["path"], prefix)
        if rel is not None:
            file_index[rel] = i
    file_nodes = {}
    for p, cls in manifest["nodes"]:
        rel = _under(p, prefix)
        if rel is not None:
            file_nodes[rel] = cls
    where = f" (under {prefix})" if prefix else ""
    problems = []
    for p, cls in like_nodes:
        if p in file_nodes and file_nodes[p] != cls:
            problems.append(
                f"at {_show(p)}{where} the checkpoint has a {file_nodes[p]} but the template "
                f"has a {cls}")
    for e in like_entries:
        i = file_index.get(e["path"])
        if i is None:
            continue
        fe = manifest["leaves"][i]
        same = fe["kind"] == e["kind"] and fe["dtype"] == e["dtype"] and \
            fe["shape"] == e["shape"]
        if not same:
            problems.append(f"the checkpoint has {_show(e['path'])}{where} of {_fmt(fe)} but "
                            f"the template expects {_fmt(e)}")
    missing = [e["path"] for e in like_entries if e["path"] not in file_index]
    like_paths = {e["path"] for e in like_entries}
    extra = [p for p in file_index if p not in like_paths]
    if not (problems or missing or extra):
        return {e["path"]: file_index[e["path"]] for e in like_entries}

    def listing(paths):
        shown = ", ".join(_show(p) for p in paths[:8])
        return shown + (f", ... ({len(paths)} in all)" if len(paths) > 8 else "")

    lines = []
    if problems:
        lines.append(problems[0] + ".")
    if missing:
        lines.append(f"The template has leaves the checkpoint lacks: {listing(missing)}.")
    if extra:
        lines.append(f"The checkpoint has leaves the template lacks: {listing(extra)} (a "
                     "template must be initialized, e.g. model.init(...), and hold the "
                     "same parts as the saved tree).")
    if len(problems) > 1:
        lines.append(f"{len(problems) - 1} more node/leaf mismatch(es) follow the first.")
    raise CheckpointError(
        f"Cannot load {path} into this structure: " + " ".join(lines))


def _read_leaf(zf, path, i, e) -> np.ndarray:
    name = f"leaves/{i}.npy"
    info = zf.getinfo(name)
    nbytes = math.prod(e["stored_shape"]) * np.dtype(e["stored_dtype"]).itemsize
    if info.file_size > nbytes + _NPY_HEADER_SLACK:
        raise _bad(path, f"entry {name} ({_show(e['path'])}) is larger than its array.")
    try:
        with zf.open(name) as f:
            arr = np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"Refusing to load {path}: entry {name} ({_show(e['path'])}) is not a plain "
            f"numeric .npy array ({exc}). Checkpoints never hold pickled objects."
        ) from None
    if not isinstance(arr, np.ndarray):
        if hasattr(arr, "close"):
            arr.close()
        raise _bad(path, f"entry {name} is not a .npy array.")
    if arr.dtype != np.dtype(e["stored_dtype"]) or list(arr.shape) != e["stored_shape"]:
        raise _bad(path, f"entry {name} ({_show(e['path'])}) holds {arr.dtype}{arr.shape}, "
                         f"the manifest says {e['stored_dtype']}{tuple(e['stored_shape'])}.")
    return arr


def _restore(arr, e, like_leaf):
    """Turns a stored array into a leaf of the template's kind."""
    if e["kind"] == "python":
        return _PYTHON_TYPES[e["dtype"]][0](arr.item())
    if e["kind"] == "key":
        return jax.random.wrap_key_data(jnp.asarray(arr), impl=e["key_impl"])
    if e["dtype"] in _ML_DTYPES:
        arr = arr.view(_ML_DTYPES[e["dtype"]])
    if isinstance(like_leaf, np.generic):
        return arr[()]
    if isinstance(like_leaf, np.ndarray):
        return arr
    return jnp.asarray(arr)


def _load(path, like, prefix=""):
    path = os.fspath(path)
    like_leaves, like_nodes = _walk(like)
    like_entries = [dict(_describe(x, _show(p)), path=p) for p, x in like_leaves]
    with _open_zip(path) as zf:
        manifest = _read_manifest(zf, path)
        index = _compare(path, manifest, prefix, like_nodes, like_entries)
        out = []
        for (p, like_leaf), e in zip(like_leaves, like_entries):
            i = index[p]
            fe = manifest["leaves"][i]
            if e["kind"] == "key" and e["key_impl"] not in (None, fe["key_impl"]):
                raise CheckpointError(
                    f"Cannot load {path}: {_show(p)} is a {fe['key_impl']} PRNG key in the "
                    f"checkpoint but a {e['key_impl']} key in the template.")
            out.append(_restore(_read_leaf(zf, path, i, fe), fe, like_leaf))
    treedef = jax.tree_util.tree_structure(like)
    return jax.tree_util.tree_unflatten(treedef, out), manifest["metadata"]


def load_checkpoint(path, like):
    """Reads a checkpoint into the structure of `like`; returns `(tree, metadata)`.

    `like` is a template with the saved tree's structure: typically the
    freshly built and initialized model and optimizer state (leaves may also
    be `jax.ShapeDtypeStruct`s, e.g. from `jax.eval_shape`). Its node classes,
    leaf key paths, shapes and dtypes must equal the file's; otherwise a
    `CheckpointError` (a `ValueError`) names the first differing path and
    lists missing and extra leaves. Static fields (hyperparameters, mode)
    come from `like`, so a checkpoint saved in training loads into an
    `.eval()` model.

    Leaves come back as JAX arrays of the saved dtypes (typed PRNG keys as
    typed keys), except where the template holds a numpy array or scalar
    (returned as numpy, e.g. float64 data positions) or a Python number
    (returned as that Python type).
    """
    return _load(path, like)


# ---------------------------------------------------------------------------
# Modules


def save_module(path, module, metadata: Any = None) -> None:
    """Saves a module's weights and state (`save_checkpoint(path, module, metadata)`)."""
    from pax_trax.core.module import Module

    if not isinstance(module, Module):
        raise TypeError(f"save_module expects a pax_trax Module, got {type(module).__name__}.")
    save_checkpoint(path, module, metadata)


def load_module(path, like_module):
    """Returns `like_module` with the weights and state stored at `path`.

    `path` is a file from `save_module`, or a training checkpoint whose tree
    is a dict with a `'model'` entry (as `{'model': ..., 'opt_state': ...}`),
    from which only the model is read. `like_module` must be initialized and
    have the saved model's structure; its static fields (mode, ...) are kept.
    """
    from pax_trax.core.module import Module

    if not isinstance(like_module, Module):
        raise TypeError(
            f"load_module expects a pax_trax Module template, got {type(like_module).__name__}.")
    path = os.fspath(path)
    with _open_zip(path) as zf:
        nodes = _read_manifest(zf, path)["nodes"]
    root = dict(nodes).get("")
    prefix = ""
    if root == "dict" and "['model']" in dict(nodes):
        prefix = "['model']"
    return _load(path, like_module, prefix)[0]


# ---------------------------------------------------------------------------
# Names in an output directory


def checkpoint_path(directory, step: int | None = None, prefix: str = "model") -> str:
    """`directory/model.ckpt` (the rolling checkpoint) or `directory/model_{step}.ckpt`.

    >>> checkpoint_path('out'), checkpoint_path('out', 1000)
    ('out/model.ckpt', 'out/model_1000.ckpt')
    """
    directory = os.fspath(directory)
    if step is None:
        return os.path.join(directory, f"{prefix}{SUFFIX}")
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"checkpoint_path: step must be a non-negative int, got {step!r}.")
    return os.path.join(directory, f"{prefix}_{int(step)}{SUFFIX}")


def list_checkpoints(directory, prefix: str = "model"):
    """The permanent checkpoints `[(step, path)]` in `directory`, by increasing step."""
    directory = os.fspath(directory)
    pattern = re.compile(re.escape(prefix) + r"_(\d+)" + re.escape(SUFFIX))
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = [(int(m.group(1)), os.path.join(directory, n))
             for n in names if (m := pattern.fullmatch(n))]
    return sorted(found)


def latest_checkpoint(directory, prefix: str = "model") -> str | None:
    """The checkpoint a restarted run should continue from, or None if there is none.

    Candidates are the rolling `model.ckpt` and the permanent `model_{step}.ckpt`
    files; the one with the highest step wins (the rolling file's step is
    `metadata['step']` when its metadata is a dict with an int `step`, else it
    counts as the newest), the rolling file on ties. Temporary files left by a
    killed writer are ignored.
    """
    candidates = [(step, 0, p) for step, p in list_checkpoints(directory, prefix)]
    rolling = checkpoint_path(directory, prefix=prefix)
    if os.path.isfile(rolling):
        meta = read_metadata(rolling)
        step = meta.get("step") if isinstance(meta, dict) else None
        if not isinstance(step, int) or isinstance(step, bool):
            step = math.inf
        candidates.append((step, 1, rolling))
    if not candidates:
        return None
    return max(candidates)[2]
