"""What a `pax_trax.data.TFDS` stream reads: the split, the host's slice, the keys, and
examples as NumPy values. Pure helpers (no TensorFlow, no TFDS), shared by the
two backends (`pax_trax.data.tfds` and `pax_trax.data.tf_datasets`).

>>> _holdout_count(0.1, 1000), _holdout_count(25, 1000)
(100, 25)
>>> [_host_range(10, host_id, 3) for host_id in range(3)]
[(0, 3), (3, 6), (6, 10)]
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

_TFDS = "pax_trax.data.TFDS"  # who raises, in error messages


# ---------------------------------------------------------- splits and hosts


def _holdout_count(eval_holdout_size, n_train, who=_TFDS):
    """How many examples `eval_holdout_size` takes from the end of a train split of `n_train`.

    A float in [0, 1) is a fraction (rounded down, as Trax); an int >= 0 is a count.

    >>> _holdout_count(0.25, 10), _holdout_count(0, 10), _holdout_count(3, 10)
    (2, 0, 3)
    >>> _holdout_count(1.0, 10)
    Traceback (most recent call last):
    ...
    ValueError: pax_trax.data.TFDS: eval_holdout_size must be a fraction in [0, 1) or an int count in [0, 10), got 1.0.
    """
    expected = f"a fraction in [0, 1) or an int count in [0, {n_train})"
    if isinstance(eval_holdout_size, bool) or not isinstance(eval_holdout_size, numbers.Real):
        raise TypeError(f"{who}: eval_holdout_size must be {expected}, got {eval_holdout_size!r}.")
    if isinstance(eval_holdout_size, numbers.Integral):
        count = int(eval_holdout_size)
    elif 0 <= eval_holdout_size < 1:
        count = int(n_train * float(eval_holdout_size))
    else:
        count = -1
    if not 0 <= count < max(n_train, 1):
        raise ValueError(f"{who}: eval_holdout_size must be {expected}, got {eval_holdout_size!r}.")
    return count


def _host_range(n, host_id, n_hosts):
    """The slice ``[start, end)`` of `n` examples that host `host_id` of `n_hosts` reads.

    As Trax's subsplit ``(host_id / n_hosts, (host_id + 1) / n_hosts)``, in
    integer arithmetic: the hosts' ranges are disjoint and cover all `n`.

    >>> _host_range(7, 0, 2), _host_range(7, 1, 2)
    ((0, 3), (3, 7))
    """
    return n * host_id // n_hosts, n * (host_id + 1) // n_hosts


def _check_hosts(host_id, n_hosts, who=_TFDS):
    """Validated ``(host_id, n_hosts)``; None: this JAX process's index and the process count."""
    if host_id is None or n_hosts is None:
        import jax  # a core dependency; imported here so `import pax_trax.data` stays light

        host_id = jax.process_index() if host_id is None else host_id
        n_hosts = n_hosts or jax.process_count()
    for name, value in (("host_id", host_id), ("n_hosts", n_hosts)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{who}: {name} must be an int, got {value!r}.")
    if not 0 <= host_id < n_hosts:
        raise ValueError(
            f"{who}: expected 0 <= host_id < n_hosts, got host_id={host_id}, n_hosts={n_hosts}."
        )
    return int(host_id), int(n_hosts)


def _eval_split_name(dataset_name, split_names, use_alt_eval, who=_TFDS):
    """The eval split as Trax picks it: ``glue/mnli``'s (mis)matched validation,
    else ``'validation'``, else ``'test'``.

    >>> _eval_split_name("glue/mnli", ["train", "validation_matched"], use_alt_eval=True)
    'validation_mismatched'
    >>> _eval_split_name("x", ["train", "test"], use_alt_eval=False)
    'test'
    """
    if dataset_name.split(":")[0] == "glue/mnli":
        return "validation_mismatched" if use_alt_eval else "validation_matched"
    for name in ("validation", "test"):
        if name in split_names:
            return name
    raise ValueError(
        f"{who}: dataset {dataset_name!r} has no 'validation' or 'test' split to evaluate "
        f"on (its splits: {sorted(split_names)}); pass eval_holdout_size > 0 to hold out "
        "part of the train split instead."
    )


def _split_for(dataset_name, split_sizes, train, eval_holdout_size=0, host_id=0, n_hosts=1,
               use_alt_eval=False, who=_TFDS):
    """``(split, n_examples)`` to read, as Trax's ``_train_and_eval_dataset``.

    `split_sizes` maps split names to example counts. The eval holdout comes
    from the end of ``'train'``; the rest of ``'train'`` is sharded by host.
    The eval split is not sharded (every host evaluates on all of it).

    >>> sizes = {"train": 100, "test": 30}
    >>> _split_for("x", sizes, train=True, eval_holdout_size=0.2, host_id=1, n_hosts=2)
    ('train[40:80]', 40)
    >>> _split_for("x", sizes, train=False, eval_holdout_size=0.2)
    ('train[-20:]', 20)
    >>> _split_for("x", sizes, train=False)
    ('test', 30)
    """
    holdout = 0
    if train or eval_holdout_size:
        if "train" not in split_sizes:
            raise ValueError(
                f"{who}: dataset {dataset_name!r} has no 'train' split (its splits: "
                f"{sorted(split_sizes)}); it is needed for training and for eval_holdout_size."
            )
        holdout = _holdout_count(eval_holdout_size, split_sizes["train"], who)
    if not train:
        if holdout:
            return f"train[-{holdout}:]", holdout
        name = _eval_split_name(dataset_name, list(split_sizes), use_alt_eval, who)
        if name not in split_sizes:
            raise ValueError(
                f"{who}: dataset {dataset_name!r} has no split {name!r} "
                f"(its splits: {sorted(split_sizes)})."
            )
        return name, split_sizes[name]
    n_train = split_sizes["train"] - holdout
    if holdout == 0 and n_hosts == 1:
        return "train", n_train
    start, end = _host_range(n_train, host_id, n_hosts)
    if end <= start:
        raise ValueError(
            f"{who}: host {host_id} of {n_hosts} gets no training examples "
            f"({n_train} in the train split after the eval holdout of {holdout})."
        )
    return f"train[{start}:{end}]", end - start


# ------------------------------------------------------------------ keys


def _key_tuple(keys, who=_TFDS):
    """`keys` as a tuple (None stays None); a bare string is refused, not split into letters.

    >>> _key_tuple(["text", "label"])
    ('text', 'label')
    """
    if keys is None:
        return None
    if isinstance(keys, (str, bytes)):
        raise TypeError(
            f"{who}: keys must be a tuple of feature names, got the string {keys!r}; "
            f"write keys=({keys!r},) for one feature."
        )
    return tuple(keys)


def _check_keys(keys, available, where, who=_TFDS):
    """`keys` as a tuple, every one of them in `available` (the feature names).

    >>> _check_keys(("txt",), ["label", "text"], "dataset 'x'")
    Traceback (most recent call last):
    ...
    KeyError: "pax_trax.data.TFDS: key 'txt' is not a feature of dataset 'x'; its features are ['label', 'text']."
    """
    keys = _key_tuple(keys, who)
    for key in keys or ():
        if key not in available:
            raise KeyError(
                f"{who}: key {key!r} is not a feature of {where}; its features are "
                f"{sorted(available)}."
            )
    return keys


# ------------------------------------------------------------ autocaching

# Datasets of up to this size are cached in memory by tfds.load
# (``DatasetBuilder._should_cache_ds``); both backends keep them so.
_AUTOCACHE_BYTES = 250 << 20


def _small_enough_to_cache(info):
    """Whether `info`'s dataset has a known size of at most `_AUTOCACHE_BYTES`."""
    try:
        size = int(info.dataset_size or 0)
    except (TypeError, ValueError):
        return False
    return 0 < size <= _AUTOCACHE_BYTES


# ------------------------------------------------------ plain scalar features


# NumPy dtype kinds of the values TFDS stores as one-value tf.train.Feature lists:
# ints and bools as int64_list, floats as float_list, text as bytes_list.
_PLAIN_SCALAR_KINDS = frozenset("iubfOSU")


def _plain_scalar_features(tfds, features, names=None):
    """`names` (None: all of `features`, a TFDS ``FeaturesDict``) as a list when each is
    a plain scalar feature, else None.

    Plain: a ``Scalar``, ``ClassLabel``, ``Text`` or ``Tensor(shape=())``
    (exactly these classes) stored plainly: not encoded to bytes, not
    optional, no text encoder, a dtype of kind int, uint, bool, float, bytes
    or str, not uint64. TFDS stores each as a one-value ``tf.train.Feature``
    list under its name, so both backends can decode them without TFDS's
    per-example code. `tfds` is the ``tensorflow_datasets`` module (passed in:
    this module imports neither TFDS nor TensorFlow). A name that is not a
    feature gives None.
    """
    try:
        scalar_types = (tfds.features.Scalar, tfds.features.ClassLabel,
                        tfds.features.Text, tfds.features.Tensor)
        available = list(features.keys())
    except AttributeError:
        return None
    names = available if names is None else list(names)
    for name in names:
        feature = features[name] if name in available else None
        if (type(feature) not in scalar_types or tuple(feature.shape) != ()
                or getattr(feature, "_encoded_to_bytes", True)
                or getattr(feature, "_optional", True)
                or getattr(feature, "encoder", None) is not None
                or np.dtype(feature.np_dtype).kind not in _PLAIN_SCALAR_KINDS
                or np.dtype(feature.np_dtype) == np.uint64):
            return None
    return names


# ------------------------------------------------------- example values


def _decode_text(value):
    """``bytes`` -> ``str`` (UTF-8), also inside tuples, dicts and object arrays.

    >>> _decode_text((b'caf\\xc3\\xa9', 'tea', np.int64(1), np.array([b'a', b'b'], object)))
    ('café', 'tea', np.int64(1), array(['a', 'b'], dtype=object))
    """
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    if isinstance(value, tuple):
        return tuple(_decode_text(v) for v in value)
    if isinstance(value, dict):
        return {k: _decode_text(v) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.dtype == object:
        decoded = np.empty(value.shape, dtype=object)
        for index, item in np.ndenumerate(value):
            decoded[index] = _decode_text(item)
        return decoded
    return value


def _as_feature_dtype(value, feature):
    """A decoded data-source value with the NumPy types ``tfds.as_numpy`` gives.

    ``tfds.data_source`` returns Python ints and floats for scalars; this
    makes them NumPy scalars of the feature's dtype (``np.int64(1)``), so the
    two backends give equal examples. Text stays ``bytes``.
    """
    if isinstance(value, dict):
        inner = getattr(feature, "feature", feature)  # Sequence(FeaturesDict) holds dicts too
        return {k: _as_feature_dtype(v, _sub_feature(inner, k)) for k, v in value.items()}
    dtype = getattr(feature, "np_dtype", None)  # (`.dtype` would import TensorFlow)
    if dtype is None or np.dtype(dtype) == object:
        return value
    array = np.asarray(value, dtype=dtype)
    return array[()] if array.ndim == 0 else array


def _sub_feature(feature, key):
    try:
        return feature[key]
    except (KeyError, TypeError, IndexError):
        return None


def _select(example, keys, decode_text):
    """A TFDS example dict -> the stream's example (tuple in `keys` order, or the dict)."""
    if keys is not None:
        try:
            example = tuple(example[k] for k in keys)
        except KeyError as err:
            raise KeyError(
                f"{_TFDS}: key {err.args[0]!r} is not in the examples made by "
                f"tfds_preprocess_fn; their keys are {sorted(example)}."
            ) from None
    return _decode_text(example) if decode_text else example


@dataclasses.dataclass(frozen=True)
class _Read:
    """What a `TFDS` stream reads, and how."""

    dataset_name: str
    data_dir: str
    split: str
    shuffle: bool
    seed: object
    shuffle_buffer_size: int
    preprocess_fn: object
    keys: object
    repeat: bool
    decode_text: bool
