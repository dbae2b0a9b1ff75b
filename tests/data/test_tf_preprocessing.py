"""pax_trax.data.tf_preprocessing: Trax's tf.data preprocessing functions.

Small tf.data datasets are built here from tensors (random images from a
seeded NumPy generator; text from VADER's movie review snippets, the `rows`
fixture) and every output is compared with a NumPy computation of what it
should be. The last test runs a preprocessing function through
`pax_trax.data.data_streams` on a real local TFDS dataset of the snippets.
"""

import functools
import importlib
import types

import numpy as np
import pytest

from pax_trax.data import _lazy
from pax_trax.data import tf_preprocessing as tp
from pax_trax.data.tfds import data_streams

data_cache = importlib.import_module("pax_trax_tests_data_cache")  # registered by conftest.py
PAD = 4  # the CIFAR augmentation's padding


@pytest.fixture(scope="module")
def tf():
    return _lazy.tensorflow("tests")


def items(dataset):
    return list(dataset.as_numpy_iterator())


def pair_dataset(tf, pairs, inputs_dtype=np.int32, targets_dtype=np.int32, extra=None):
    """A dataset of ({'inputs': ..., **extra}, targets) from Python (inputs, targets) pairs of
    1-D sequences of any lengths."""
    extra = extra or {}

    def generate():
        for i, (inputs, targets) in enumerate(pairs):
            features = {"inputs": np.asarray(inputs, inputs_dtype)}
            features.update({key: np.int32(i) for key in extra})
            yield features, np.asarray(targets, targets_dtype)

    signature = ({"inputs": tf.TensorSpec([None], inputs_dtype),
                  **{key: tf.TensorSpec([], tf.int32) for key in extra}},
                 tf.TensorSpec([None], targets_dtype))
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def dict_dataset(tf, examples, dtype=np.int32):
    """A dataset of dicts of 1-D int sequences (any lengths) from Python dicts."""
    keys = list(examples[0])
    signature = {key: tf.TensorSpec([None], dtype) for key in keys}
    return tf.data.Dataset.from_generator(
        lambda: ({key: np.asarray(ex[key], dtype) for key in keys} for ex in examples),
        output_signature=signature)


def code_points(text):
    return [ord(c) for c in text]


# -------------------------------------------------------------------- CIFAR-10


def random_images(n, shape=(32, 32, 3), seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def image_dataset(tf, images, labels=None):
    labels = np.arange(len(images), dtype=np.int64) if labels is None else labels
    ids = np.arange(len(images), dtype=np.int32)
    return tf.data.Dataset.from_tensor_slices(({"image": images, "id": ids}, labels))


def find_window(image, crop):
    """All (dy, dx, flipped) such that `crop` is the window at (dy, dx) of `image` zero-padded
    by 4 pixels, mirrored left-right when flipped (by hand, with NumPy)."""
    height, width = image.shape[:2]
    padded = np.pad(image, [(PAD, PAD), (PAD, PAD), (0, 0)])
    found = []
    for dy in range(2 * PAD + 1):
        for dx in range(2 * PAD + 1):
            window = padded[dy:dy + height, dx:dx + width]
            for flipped in (False, True):
                if np.array_equal(window[:, ::-1] if flipped else window, crop):
                    found.append((dy, dx, flipped))
    return found


def test_cifar10_no_augmentation_scales_images(tf):
    images = random_images(5)
    for training in (True, False):
        out = items(tp.cifar10_no_augmentation_preprocess(image_dataset(tf, images), training))
        assert len(out) == 5
        for i, (features, label) in enumerate(out):
            assert features["image"].dtype == np.float32
            np.testing.assert_allclose(features["image"], images[i].astype(np.float32) / 255, rtol=1e-6)
            assert int(label) == i and int(features["id"]) == i  # other features are kept


@pytest.mark.parametrize("shape", [(32, 32, 3), (5, 7, 2)])
def test_cifar10_augmentation_crops_a_window_of_the_padded_image_and_may_mirror_it(tf, shape):
    images = random_images(60, shape, seed=1)
    out = items(tp.cifar10_augmentation_preprocess(image_dataset(tf, images), True, seed=7))
    assert len(out) == 60
    placements = []
    for i, (features, label) in enumerate(out):
        image = features["image"]
        assert image.dtype == np.float32 and image.shape == shape and int(label) == i
        assert image.min() >= 0 and image.max() <= 1
        crop = np.round(image * 255).astype(np.uint8)
        found = find_window(images[i], crop)
        assert found, f"image {i} is not a (mirrored) window of the padded image"
        placements.append(found[0])
    # Random: several offsets, both flips (P(all 60 unflipped) = 2**-60).
    assert len({(dy, dx) for dy, dx, _ in placements}) > 10
    assert {flipped for _, _, flipped in placements} == {False, True}


def test_cifar10_augmentation_is_seeded_and_only_in_training(tf):
    images = random_images(20)

    def crops(seed, training=True):
        out = tp.cifar10_augmentation_preprocess(image_dataset(tf, images), training, seed=seed)
        return np.stack([f["image"] for f, _ in items(out)])

    first = crops(3)
    np.testing.assert_array_equal(first, crops(3))
    assert not np.array_equal(first, crops(4))
    # Eval: the images, only scaled.
    np.testing.assert_allclose(crops(3, training=False), images.astype(np.float32) / 255, rtol=1e-6)
    assert tp.cifar10_augmentation_preprocess(image_dataset(tf, images), True).element_spec[0][
        "image"].shape == (32, 32, 3)


def test_cifar10_augmentation_flatten(tf):
    images = random_images(30, (6, 6, 3), seed=2)
    labels = np.arange(30, dtype=np.int64) % 10
    dataset = image_dataset(tf, images, labels)
    # Eval: pixels then the label; the mask only on the label.
    for i, (features, seq) in enumerate(items(tp.cifar10_augmentation_flatten_preprocess(dataset, False))):
        expected = np.concatenate([images[i].reshape(-1).astype(np.int64), [labels[i]]])
        assert seq.dtype == np.int64 and sorted(features) == ["image", "mask"]
        np.testing.assert_array_equal(seq, expected)
        np.testing.assert_array_equal(features["image"], expected)
        assert features["mask"].dtype == np.float32
        np.testing.assert_array_equal(features["mask"], np.r_[np.zeros(6 * 6 * 3), 1.0])
    # Training: augmented pixels weighed predict_image_train_weight.
    out = items(tp.cifar10_augmentation_flatten_preprocess(dataset, True, 0.25, seed=5))
    flips = set()
    for i, (features, seq) in enumerate(out):
        assert seq[-1] == labels[i] and seq.shape == (6 * 6 * 3 + 1,)
        np.testing.assert_array_equal(features["mask"], np.r_[np.full(6 * 6 * 3, 0.25), 1.0])
        found = find_window(images[i], seq[:-1].reshape(6, 6, 3).astype(np.uint8))
        assert found
        flips.add(found[0][2])
    assert flips == {False, True}
    # int32 labels become int64 like the pixels.
    int32 = image_dataset(tf, images[:2], labels[:2].astype(np.int32))
    _, seq = items(tp.cifar10_augmentation_flatten_preprocess(int32, False))[1]
    assert seq.dtype == np.int64 and seq[-1] == 1


def test_downsampled_imagenet_flatten_bare_preprocess(tf):
    images = random_images(4, (3, 2, 3), seed=3)
    dataset = tf.data.Dataset.from_tensor_slices({"image": images, "label": np.arange(4)})
    out = items(tp.downsampled_imagenet_flatten_bare_preprocess(dataset, True))
    assert [sorted(x) for x in out] == [["image"]] * 4
    for i, x in enumerate(out):
        assert x["image"].dtype == np.int64
        np.testing.assert_array_equal(x["image"], images[i].reshape(-1))


# ------------------------------------------------------------------------ text


def snippet_pairs(rows, n=60):
    """(inputs, targets): code points of the first and second halves of a snippet's words."""
    pairs = []
    for _, text, _ in rows[:n]:
        words = text.split()
        half = max(1, len(words) // 2)
        pairs.append((code_points(" ".join(words[:half])), code_points(" ".join(words[half:]) or ".")))
    return pairs


def test_concat_preprocess(tf, rows):
    pairs = snippet_pairs(rows)
    for pad_symbol, training in ((0, True), (7, False)):
        out = items(tp.concat_preprocess(pair_dataset(tf, pairs, extra=["id"]), training, pad_symbol))
        assert len(out) == len(pairs)
        for i, ((inputs, targets), (features, seq)) in enumerate(zip(pairs, out)):
            expected = [pad_symbol, *inputs, pad_symbol, *targets]
            assert seq.tolist() == expected and features["inputs"].tolist() == expected
            assert int(features["id"]) == i
    # Inputs of several axes: the pads are rows.
    grid = tf.data.Dataset.from_tensor_slices(({"inputs": [[[1, 2], [3, 4]]]}, [[[5, 6]]]))
    _, seq = items(tp.concat_preprocess(grid, True, pad_symbol=9))[0]
    assert seq.tolist() == [[9, 9], [1, 2], [3, 4], [9, 9], [5, 6]]


def test_squeeze_targets_preprocess(tf):
    targets = np.arange(6).reshape(3, 2, 1)
    dataset = tf.data.Dataset.from_tensor_slices(({"x": np.arange(3)}, targets))
    out = items(tp.squeeze_targets_preprocess(dataset, True))
    assert [t.tolist() for _, t in out] == targets[..., 0].tolist()
    # Last axes not of size 1, and scalars, are kept.
    wide = tf.data.Dataset.from_tensor_slices(({"x": np.arange(3)}, targets.reshape(3, 1, 2)))
    assert tp.squeeze_targets_preprocess(wide, False).element_spec[1].shape == (1, 2)
    scalars = tf.data.Dataset.from_tensor_slices(({"x": np.arange(3)}, np.arange(3)))
    assert [int(t) for _, t in items(tp.squeeze_targets_preprocess(scalars, True))] == [0, 1, 2]


def test_lm1b_preprocess_filters_long_targets_in_training_or_eval(tf, rows):
    texts = [text for _, text, _ in rows[:200]]
    pairs = [([0], code_points(text)) for text in texts]
    dataset = pair_dataset(tf, pairs, extra=["id"])

    def kept(training, **kwargs):
        return [int(f["id"]) for f, _ in items(tp.lm1b_preprocess(dataset, training, **kwargs))]

    def short(limit):
        return [i for i, text in enumerate(texts) if len(text) <= limit]

    assert 0 < len(short(80)) < 200
    assert kept(True, max_target_length=80) == short(80)
    assert kept(False, max_target_length=80) == list(range(200))  # the training limit only
    assert kept(False, max_target_length=80, max_eval_target_length=50) == short(50)
    assert kept(True, max_eval_target_length=50) == list(range(200))
    assert kept(True) == kept(True, max_target_length=0) == list(range(200))
    # The limit is inclusive.
    length = len(texts[0])
    assert 0 in kept(True, max_target_length=length) and 0 not in kept(True, max_target_length=length - 1)


def test_wmt_preprocess_filters_on_the_longer_of_inputs_and_targets(tf, rows):
    pairs = snippet_pairs(rows, 150)
    dataset = pair_dataset(tf, pairs, extra=["id"])

    def kept(training, **kwargs):
        return [int(f["id"]) for f, _ in items(tp.wmt_preprocess(dataset, training, **kwargs))]

    def short(limit):
        return [i for i, (a, b) in enumerate(pairs) if max(len(a), len(b)) <= limit]

    assert 0 < len(short(50)) < 150
    assert kept(True, max_length=50) == short(50)
    assert kept(False, max_length=50) == list(range(150))
    assert kept(False, max_length=50, max_eval_length=40) == short(40)
    assert kept(True, max_length=-1, max_eval_length=40) == list(range(150))


def test_wmt_concat_preprocess(tf, rows):
    pairs = snippet_pairs(rows, 100)
    dataset = pair_dataset(tf, pairs, extra=["id"])
    out = items(tp.wmt_concat_preprocess(dataset, True, max_length=50))
    expected_ids = [i for i, (a, b) in enumerate(pairs) if max(len(a), len(b)) <= 50]
    assert [int(f["id"]) for f, _ in out] == expected_ids and expected_ids
    for features, seq in out:
        inputs, targets = pairs[int(features["id"])]
        assert seq.tolist() == [*inputs, 0, *targets] == features["inputs"].tolist()
        assert features["mask"].tolist() == [0] * (len(inputs) + 1) + [1] * len(targets)
        assert features["mask"].dtype == np.int32  # the inputs' dtype, as Trax
    assert len(items(tp.wmt_concat_preprocess(dataset, False, max_length=50))) == 100


def test_lm_token_preprocessing(tf, rows):
    pairs = snippet_pairs(rows, 20)
    dataset = dict_dataset(tf, [{"inputs": a, "targets": b} for a, b in pairs], dtype=np.int64)
    out = items(tp.lm_token_preprocessing(dataset, False))
    for (inputs, targets), x in zip(pairs, out, strict=True):
        seq = [*inputs, 0, *targets]
        assert x["inputs"].tolist() == seq and x["targets"].tolist() == seq
        assert x["mask"].tolist() == [0] * (len(inputs) + 1) + [1] * len(targets)
        assert x["inputs"].dtype == np.int64


# ----------------------------------------------------------------- BAIR pushing


def test_bair_robot_pushing_hparams():
    assert tp.bair_robot_pushing_hparams() == (1, 15)
    assert tp.bair_robot_pushing_hparams(None, 2, 3) == (2, 3)
    hparams = types.SimpleNamespace(video_num_input_frames=0, other="kept")
    assert tp.bair_robot_pushing_hparams(hparams, video_num_target_frames=4) is None
    assert vars(hparams) == {"video_num_input_frames": 1, "other": "kept", "video_num_target_frames": 4}
    settings = {"a": 1}
    tp.bair_robot_pushing_hparams(settings, 3, 5)
    assert settings == {"a": 1, "video_num_input_frames": 3, "video_num_target_frames": 5}
    with pytest.raises(TypeError, match="bair_robot_pushing_hparams: cannot set the frame counts on hparams"):
        tp.bair_robot_pushing_hparams((1, 2))
    with pytest.raises(TypeError, match="video_num_input_frames must be an int, got '2'"):
        tp.bair_robot_pushing_hparams(None, "2")
    with pytest.raises(ValueError, match="video_num_target_frames must be at least 0, got -1"):
        tp.bair_robot_pushing_hparams(None, 1, -1)


def test_bair_robot_pushing_preprocess(tf):
    rng = np.random.default_rng(4)
    inputs = rng.integers(0, 256, size=(3, 1, 2, 2, 3), dtype=np.uint8)
    targets = rng.integers(0, 256, size=(3, 2, 2, 2, 3), dtype=np.uint8)
    dataset = tf.data.Dataset.from_tensor_slices(({"inputs": inputs, "id": np.arange(3)}, targets))
    out = items(tp.bair_robot_pushing_preprocess(dataset, True))
    for i, (features, seq) in enumerate(out):
        expected = np.concatenate([inputs[i], targets[i]]).reshape(-1).astype(np.int32)
        assert seq.dtype == np.int32
        np.testing.assert_array_equal(seq, expected)
        np.testing.assert_array_equal(features["inputs"], expected)
        np.testing.assert_array_equal(features["targets"], expected)
        assert features["mask"].dtype == np.float32
        np.testing.assert_array_equal(features["mask"], np.r_[np.zeros(12), np.ones(24)])
        assert int(features["id"]) == i


# ------------------------------------------------------- lengths of feature dicts


LENGTH_EXAMPLES = [{"inputs": list(range(n)), "targets": [5] * m} for n, m in
                   [(0, 1), (1, 2), (3, 3), (5, 1), (2, 6), (4, 4), (6, 0)]]


def test_filter_dataset_on_len(tf):
    dataset = dict_dataset(tf, LENGTH_EXAMPLES)
    len_map = {"inputs": (1, 4), "targets": (2, 5)}

    def lengths(ds):
        return [(len(x["inputs"]), len(x["targets"])) for x in items(ds)]

    every = [(len(x["inputs"]), len(x["targets"])) for x in LENGTH_EXAMPLES]
    expected = [(n, m) for n, m in every if 1 <= n <= 4 and 2 <= m <= 5]
    assert expected == [(1, 2), (3, 3), (4, 4)]
    assert lengths(tp.filter_dataset_on_len(dataset, True, len_map)) == expected
    assert lengths(tp.filter_dataset_on_len(dataset, False, len_map)) == every
    assert lengths(tp.filter_dataset_on_len(dataset, False, len_map, filter_on_eval=True)) == expected
    assert lengths(tp.filter_dataset_on_len(dataset, True, {"targets": (0, 1)})) == [(0, 1), (5, 1), (6, 0)]
    assert tp.filter_dataset_on_len(dataset, True) is dataset


def test_truncate_dataset_on_len(tf):
    dataset = dict_dataset(tf, LENGTH_EXAMPLES)
    len_map = {"inputs": 2, "targets": 3}
    out = items(tp.truncate_dataset_on_len(dataset, True, len_map))
    for original, x in zip(LENGTH_EXAMPLES, out, strict=True):
        assert x["inputs"].tolist() == original["inputs"][:2]
        assert x["targets"].tolist() == original["targets"][:3]
    untouched = items(tp.truncate_dataset_on_len(dataset, False, len_map))
    assert [x["inputs"].tolist() for x in untouched] == [x["inputs"] for x in LENGTH_EXAMPLES]
    on_eval = items(tp.truncate_dataset_on_len(dataset, False, {"inputs": 1}, truncate_on_eval=True))
    assert [x["inputs"].tolist() for x in on_eval] == [x["inputs"][:1] for x in LENGTH_EXAMPLES]
    assert [x["targets"].tolist() for x in on_eval] == [x["targets"] for x in LENGTH_EXAMPLES]
    # Along the first axis of a feature of several axes; a length of 0 empties it.
    grid = tf.data.Dataset.from_tensor_slices({"x": np.arange(24).reshape(2, 4, 3), "y": [[1], [2]]})
    out = items(tp.truncate_dataset_on_len(grid, True, {"x": 3, "y": 0}))
    np.testing.assert_array_equal(out[1]["x"], np.arange(24).reshape(2, 4, 3)[1, :3])
    assert out[0]["y"].shape == (0,)


def test_pad_dataset_to_length(tf):
    dataset = dict_dataset(tf, LENGTH_EXAMPLES, dtype=np.int64)
    for training in (True, False):  # padding does not depend on training
        out = items(tp.pad_dataset_to_length(dataset, training, {"inputs": 4}))
        for original, x in zip(LENGTH_EXAMPLES, out, strict=True):
            n = len(original["inputs"])
            assert x["inputs"].tolist() == original["inputs"] + [0] * max(0, 4 - n)
            assert x["inputs"].dtype == np.int64 and x["targets"].tolist() == original["targets"]
    # Truncate then pad: every feature exactly the length (Trax's c4_bare_preprocess_fn).
    fixed = tp.pad_dataset_to_length(tp.truncate_dataset_on_len(dataset, True, {"targets": 3}), True,
                                      {"targets": 3})
    assert [x["targets"].tolist() for x in items(fixed)] == [
        (x["targets"] + [0, 0, 0])[:3] for x in LENGTH_EXAMPLES]
    grid = tf.data.Dataset.from_tensor_slices({"x": np.ones((1, 2, 3), np.float32)})
    x = items(tp.pad_dataset_to_length(grid, True, {"x": 4}))[0]["x"]
    np.testing.assert_array_equal(x, np.r_[np.ones((2, 3)), np.zeros((2, 3))])


def test_add_eos_to_output_features(tf):
    dataset = dict_dataset(tf, LENGTH_EXAMPLES, dtype=np.int64)
    out = items(tp.add_eos_to_output_features(dataset, True))
    for original, x in zip(LENGTH_EXAMPLES, out, strict=True):
        assert x["targets"].tolist() == original["targets"] + [1] and x["targets"].dtype == np.int64
        assert x["inputs"].tolist() == original["inputs"]
    out = items(tp.add_eos_to_output_features(dataset, False, ("inputs", "targets"), eos=2))
    assert [x["inputs"].tolist() for x in out] == [x["inputs"] + [2] for x in LENGTH_EXAMPLES]
    assert [x["targets"].tolist() for x in out] == [x["targets"] + [2] for x in LENGTH_EXAMPLES]
    # eos is cast to each feature's dtype: a float 3.0 for ints, an int 3 for floats.
    out = items(tp.add_eos_to_output_features(dataset, True, eos=3.0))
    assert [x["targets"].tolist() for x in out] == [x["targets"] + [3] for x in LENGTH_EXAMPLES]
    assert out[0]["targets"].dtype == np.int64
    floats = tf.data.Dataset.from_tensor_slices({"targets": np.array([[0.5, 2.5]], np.float64)})
    x = items(tp.add_eos_to_output_features(floats, True, eos=3))[0]["targets"]
    assert x.dtype == np.float64 and x.tolist() == [0.5, 2.5, 3.0]


# ------------------------------------------------------------------ bad input


def test_bad_input_is_explained(tf):
    pairs = tf.data.Dataset.from_tensor_slices(({"inputs": [[1, 2]]}, [[3]]))
    dicts = tf.data.Dataset.from_tensor_slices({"inputs": [[1, 2]], "targets": [[3]]})
    scalars = tf.data.Dataset.from_tensor_slices({"inputs": [1], "targets": [2]})
    images = tf.data.Dataset.from_tensor_slices(({"image": np.zeros((1, 4, 4), np.uint8)}, [0]))
    with pytest.raises(TypeError, match=r"pax_trax.data.concat_preprocess: expected a tf.data.Dataset, got list"):
        tp.concat_preprocess([1, 2], True)
    with pytest.raises(ValueError, match=r"wmt_concat_preprocess: expected a dataset of \(features, targets\) "
                                         r"pairs .* got elements \{'inputs': int32 \(2,\), 'targets'"):
        tp.wmt_concat_preprocess(dicts, True)
    with pytest.raises(ValueError, match="filter_dataset_on_len: expected a dataset of feature dicts"):
        tp.filter_dataset_on_len(pairs, True, {"inputs": (1, 2)})
    with pytest.raises(KeyError, match=r"cifar10_augmentation_preprocess: the features have no feature 'image'; "
                                       r"they have \['inputs'\]"):
        tp.cifar10_augmentation_preprocess(pairs, True)
    with pytest.raises(KeyError, match="truncate_dataset_on_len: the examples have no feature 'text'"):
        tp.truncate_dataset_on_len(dicts, True, {"text": 3})
    with pytest.raises(KeyError, match="add_eos_to_output_features: the examples have no feature 'outputs'"):
        tp.add_eos_to_output_features(dicts, True, "outputs")
    with pytest.raises(KeyError, match="lm_token_preprocessing: the examples have no feature 'targets'"):
        tp.lm_token_preprocessing(dicts.map(lambda x: {"inputs": x["inputs"]}), True)
    # len_map values.
    with pytest.raises(ValueError, match=r"filter_dataset_on_len: len_map\['inputs'\] must be a pair "
                                         r"\(min_len, max_len\), got 5"):
        tp.filter_dataset_on_len(dicts, False, {"inputs": 5})  # checked even where unused
    with pytest.raises(TypeError, match=r"filter_dataset_on_len: len_map\['inputs'\]\[1\] must be an int, got '9'"):
        tp.filter_dataset_on_len(dicts, True, {"inputs": (1, "9")})
    with pytest.raises(ValueError, match=r"truncate_dataset_on_len: len_map\['inputs'\] must be at least 0, got -2"):
        tp.truncate_dataset_on_len(dicts, True, {"inputs": -2})
    with pytest.raises(TypeError, match=r"pad_dataset_to_length: len_map must be a dict of feature name -> length, "
                                        r"got \[\('inputs', 3\)\]"):
        tp.pad_dataset_to_length(dicts, True, [("inputs", 3)])
    with pytest.raises(TypeError, match="lm1b_preprocess: max_target_length must be an int, got 2.5"):
        tp.lm1b_preprocess(pairs, True, max_target_length=2.5)
    # Ranks and dtypes.
    with pytest.raises(ValueError, match=r"pad_dataset_to_length: expected feature 'inputs' of at least 1 axis "
                                         r"\(a sequence\), got int32 \(\)"):
        tp.pad_dataset_to_length(scalars, True, {"inputs": 3})
    with pytest.raises(ValueError, match=r"cifar10_augmentation_preprocess: expected features\['image'\] "
                                         r"\(height, width, channels\) of rank 3, got uint8 \(4, 4\)\.$"):
        tp.cifar10_augmentation_preprocess(images, True)
    with pytest.raises(ValueError, match=r"cifar10_augmentation_flatten_preprocess: expected the targets "
                                         r"\(a class label\) of rank 0, got int32 \(1,\)\.$"):
        tp.cifar10_augmentation_flatten_preprocess(pairs.map(lambda f, t: ({"image": f["inputs"]}, t)), False)
    with pytest.raises(ValueError, match="concat_preprocess: features\\['inputs'\\] and the targets must have one "
                                         "dtype to be concatenated, got int32 and int64"):
        tp.concat_preprocess(pairs.map(lambda f, t: (f, tf.cast(t, tf.int64))), True)
    with pytest.raises(ValueError, match="bair_robot_pushing_preprocess: the input and target frames must have "
                                         "one shape"):
        tp.bair_robot_pushing_preprocess(tf.data.Dataset.from_tensor_slices(
            ({"inputs": np.zeros((1, 1, 2))}, np.zeros((1, 1, 3)))), True)
    with pytest.raises(ValueError, match="lm1b_preprocess: expected the targets of at least 1 axis"):
        tp.lm1b_preprocess(tf.data.Dataset.from_tensor_slices(({"x": [1]}, [2])), True, max_target_length=3)
    with pytest.raises(ValueError, match="squeeze_targets_preprocess: expected the targets to be one tensor"):
        tp.squeeze_targets_preprocess(tf.data.Dataset.from_tensor_slices(({"x": [1]}, {"y": [2]})), True)
    with pytest.raises(TypeError, match="add_eos_to_output_features: eos must be a number, got '1'"):
        tp.add_eos_to_output_features(dicts, True, eos="1")
    with pytest.raises(ValueError, match="add_eos_to_output_features: eos must be an integer for the int32 "
                                         "feature 'targets', got 1.5"):
        tp.add_eos_to_output_features(dicts, True, eos=1.5)
    with pytest.raises(TypeError, match="cifar10_augmentation_preprocess: seed must be an int, got 1.5"):
        tp.cifar10_augmentation_preprocess(images.map(lambda f, t: ({"image": f["image"][..., None]}, t)),
                                           True, seed=1.5)


# ------------------------------------------------------------------ data_streams


@pytest.fixture(scope="module")
def snippets_dir(rows, tmp_path_factory):
    _lazy.tensorflow("tests")  # imported here, its import-time warnings silenced
    _lazy.tensorflow_datasets("tests")
    return data_cache.prepare_tfds(tmp_path_factory.mktemp("tf_preprocessing"), rows)


def test_wmt_concat_preprocess_through_data_streams(tf, rows, snippets_dir, within):
    """Snippets as LM sequences ``text + [0] + [label]`` (wmt_concat_preprocess as the
    preprocess_fn), their texts tokenized to code points by a bare_preprocess_fn."""
    labels = {text: int(score > 0) for _, text, score in rows}

    def tokenize(dataset, training):
        del training
        return dataset.map(lambda x: {"inputs": tf.cast(tf.strings.unicode_decode(x["text"], "UTF-8"), tf.int64),
                                      "targets": tf.reshape(x["label"], [1])})

    preprocess = functools.partial(tp.wmt_concat_preprocess, max_length=60)
    train, evaluation = data_streams(data_cache.TFDS_NAME, snippets_dir, preprocess_fn=preprocess,
                                     bare_preprocess_fn=tokenize, input_name="inputs",
                                     target_name="targets", shuffle_buffer_size=16, seed=31,
                                     download=False)

    def check(stream_fn, n):
        stream = stream_fn()
        lengths = []
        for _ in range(n):
            inputs, targets, mask = next(stream)
            np.testing.assert_array_equal(inputs, targets)
            text = "".join(map(chr, inputs[:-2]))
            assert inputs[-2] == 0 and inputs[-1] == labels[text]
            assert mask.tolist() == [0] * (len(text) + 1) + [1]
            lengths.append(len(text))
        return lengths

    train_lengths = within(120, lambda: check(train, 150))
    assert max(train_lengths) <= 60  # filtered in training
    eval_lengths = within(120, lambda: check(evaluation, 150))
    assert max(eval_lengths) > 60  # not in eval (max_eval_length=-1)
