"""Trax's ``tf.data`` preprocessing of images and video (``trax.data.tf_inputs``):
CIFAR-10 with and without augmentation, flattened CIFAR-10 and downsampled
ImageNet for pixel-by-pixel generation, and BAIR robot pushing frames.

See `pax_trax.data.tf_preprocessing` (which re-exports these) for the kinds of
elements the functions read and how they differ from Trax's.

>>> tf = _lazy.tensorflow("doctest")
>>> pairs = tf.data.Dataset.from_tensor_slices(({"image": [[[[255, 0, 51]]]]}, [3]))
>>> features, label = next(cifar10_no_augmentation_preprocess(pairs, True).as_numpy_iterator())
>>> features["image"].dtype.name, int(label)
('float32', 3)
>>> (features["image"] * 255).round().tolist()  # (the pixels divided by 255)
[[[255.0, 0.0, 51.0]]]
"""

from __future__ import annotations

import collections.abc
import numbers

from pax_trax.data import _lazy  # noqa: F401 (the doctests take TensorFlow from it)
from pax_trax.data._tf_checks import (
    _dict_spec,
    _int_arg,
    _name,
    _pair_spec,
    _same_dtype,
    _tensor_spec,
    _tf,
)

__all__ = [
    "cifar10_no_augmentation_preprocess",
    "cifar10_augmentation_preprocess",
    "cifar10_augmentation_flatten_preprocess",
    "downsampled_imagenet_flatten_bare_preprocess",
    "bair_robot_pushing_hparams",
    "bair_robot_pushing_preprocess",
]

# The CIFAR augmentation of https://arxiv.org/pdf/1608.06993v3.pdf (page 5): zero-pad
# this many pixels on each side, then crop a random window of the image's size.
_CIFAR_PAD = 4


# --------------------------------------------------------------- CIFAR-10


def _cast_image(tf):
    def cast(features, targets):
        return {**features, "image": tf.cast(features["image"], tf.float32) / 255.0}, targets
    return cast


def _augmented(tf, dataset, seed, who):
    """`dataset` with each image zero-padded by 4 pixels, randomly cropped back to its
    size and flipped left-right with probability 1/2 (stateless ops, seeded per element
    from ``tf.data.Dataset.random(seed)``, so a seed makes every pass the same)."""
    features, _ = _pair_spec(dataset, who, ["image"])
    _tensor_spec(features["image"], "features['image'] (height, width, channels)", who, rank=3)
    if seed is not None:
        _int_arg(seed, "seed", who)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)  # one stateless seed a pair

    def augment(element_seed, example):
        features, targets = example
        image = features["image"]
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(element_seed, 2))
        padded = tf.pad(image, [[_CIFAR_PAD, _CIFAR_PAD], [_CIFAR_PAD, _CIFAR_PAD], [0, 0]])
        crop = tf.image.stateless_random_crop(padded, tf.shape(image), seed=crop_seed)
        crop = tf.image.stateless_random_flip_left_right(crop, seed=flip_seed)
        crop.set_shape(image.shape)  # (the crop's size is a tensor: keep the static shape)
        return {**features, "image": crop}, targets

    return tf.data.Dataset.zip((seeds, dataset)).map(augment)


def cifar10_no_augmentation_preprocess(dataset, training):
    """Casts ``features['image']`` to float32 in [0, 1] (divides by 255); no augmentation.

    >>> tf = _lazy.tensorflow("doctest")
    >>> images = tf.data.Dataset.from_tensor_slices(({"image": [[[[0, 51, 255]]]]}, [7]))
    >>> features, label = next(cifar10_no_augmentation_preprocess(images, True).as_numpy_iterator())
    >>> features["image"].tolist(), int(label)
    ([[[0.0, 0.20000000298023224, 1.0]]], 7)
    """
    who = _name("cifar10_no_augmentation_preprocess")
    del training
    tf = _tf(who)
    _pair_spec(dataset, who, ["image"])
    return dataset.map(_cast_image(tf))


def cifar10_augmentation_preprocess(dataset, training, *, seed=None):
    """Preprocessing for cifar10 with augmentation (see below).

    In training, each ``features['image']`` (height, width, channels) is
    zero-padded by 4 pixels on each side, a random window of its own size is
    cropped from that and flipped left-right with probability 1/2 (as in
    https://arxiv.org/pdf/1608.06993v3.pdf, page 5); then (training or not)
    images are cast to float32 in [0, 1].

    Args:
      dataset: ``(features, targets)`` pairs with ``features['image']``.
      training: whether to augment.
      seed: pax_trax addition: an int makes the crops and flips reproducible
        (every pass over the returned dataset gives the same ones: repeat the
        input, as `data_streams` does, for new ones each epoch); None (Trax)
        draws them from fresh entropy.

    >>> tf = _lazy.tensorflow("doctest")
    >>> images = tf.data.Dataset.from_tensor_slices(({"image": tf.ones([2, 32, 32, 3], tf.uint8)}, [0, 1]))
    >>> out = cifar10_augmentation_preprocess(images, training=True, seed=0)
    >>> out.element_spec[0]["image"]
    TensorSpec(shape=(32, 32, 3), dtype=tf.float32, name=None)
    """
    who = _name("cifar10_augmentation_preprocess")
    tf = _tf(who)
    _pair_spec(dataset, who, ["image"])
    if training:
        dataset = _augmented(tf, dataset, seed, who)
    return dataset.map(_cast_image(tf))


def cifar10_augmentation_flatten_preprocess(dataset, training, predict_image_train_weight=0.01, *, seed=None):
    """Preprocessing for cifar10 that flattens it and appends targets.

    In training the images are augmented as in
    `cifar10_augmentation_preprocess` (with `seed`). Each example becomes
    ``({'image': seq, 'mask': mask}, seq)`` where ``seq`` is the image's
    pixels flattened (int64) followed by its label, and ``mask`` weighs the
    pixels `predict_image_train_weight` in training (0 in eval) and the
    label 1, for image-and-class language models.

    >>> tf = _lazy.tensorflow("doctest")
    >>> images = tf.data.Dataset.from_tensor_slices(({"image": [[[[1, 2], [3, 4]]]]}, [9]))
    >>> features, seq = next(cifar10_augmentation_flatten_preprocess(images, False).as_numpy_iterator())
    >>> seq.tolist(), features["mask"].tolist()
    ([1, 2, 3, 4, 9], [0.0, 0.0, 0.0, 0.0, 1.0])
    """
    who = _name("cifar10_augmentation_flatten_preprocess")
    tf = _tf(who)
    _, targets_spec = _pair_spec(dataset, who, ["image"])
    _tensor_spec(targets_spec, "the targets (a class label)", who, rank=0)
    if not isinstance(predict_image_train_weight, numbers.Real):
        raise TypeError(f"{who}: predict_image_train_weight must be a number, got "
                        f"{predict_image_train_weight!r}.")
    if training:
        dataset = _augmented(tf, dataset, seed, who)
    image_weight = float(predict_image_train_weight) if training else 0.0

    def flatten(features, targets):
        pixels = tf.cast(tf.reshape(features["image"], [-1]), tf.int64)
        label = tf.cast(tf.reshape(targets, [1]), tf.int64)
        seq = tf.concat([pixels, label], axis=0)
        mask = tf.concat([tf.fill(tf.shape(pixels), image_weight), tf.ones([1], tf.float32)], axis=0)
        return {"image": seq, "mask": mask}, seq

    return dataset.map(flatten)


def downsampled_imagenet_flatten_bare_preprocess(dataset, training):
    """Preprocessing for downsampled_imagenet.

    Replaces each example by ``{'image': pixels}``, its image flattened to
    int64 (other features are dropped), for 32x32 and 64x64 image generation
    as in http://arxiv.org/abs/1601.06759 (page 8). A bare preprocess
    function: its elements are feature dicts.

    Args:
      dataset: the dataset.
      training: unused option.

    Returns:
      Flattened dataset.

    >>> tf = _lazy.tensorflow("doctest")
    >>> images = tf.data.Dataset.from_tensor_slices({"image": [[[[1, 2], [3, 4]]]], "label": [5]})
    >>> [e["image"].tolist() for e in downsampled_imagenet_flatten_bare_preprocess(
    ...     images, True).as_numpy_iterator()]
    [[1, 2, 3, 4]]
    """
    who = _name("downsampled_imagenet_flatten_bare_preprocess")
    del training
    tf = _tf(who)
    _dict_spec(dataset, who, ["image"])
    return dataset.map(lambda example: {"image": tf.cast(tf.reshape(example["image"], [-1]), tf.int64)})


# ----------------------------------------------------------- BAIR robot pushing


def bair_robot_pushing_hparams(hparams=None, video_num_input_frames=1, video_num_target_frames=15):
    """Sets the frame counts of the BAIR robot pushing video problem.

    With `hparams` None, returns ``(video_num_input_frames,
    video_num_target_frames)``. Otherwise sets its fields
    ``video_num_input_frames`` and ``video_num_target_frames`` (attributes of
    an object such as tensor2tensor's ``HParams`` or a
    ``types.SimpleNamespace``; keys of a dict: a pax_trax addition) and
    returns None, as Trax.

    >>> bair_robot_pushing_hparams(video_num_target_frames=3)
    (1, 3)
    >>> hparams = {}
    >>> bair_robot_pushing_hparams(hparams, 2, 4); hparams
    {'video_num_input_frames': 2, 'video_num_target_frames': 4}
    """
    who = _name("bair_robot_pushing_hparams")
    inputs = _int_arg(video_num_input_frames, "video_num_input_frames", who, minimum=0)
    targets = _int_arg(video_num_target_frames, "video_num_target_frames", who, minimum=0)
    if hparams is None:
        return inputs, targets
    if isinstance(hparams, collections.abc.MutableMapping):
        hparams["video_num_input_frames"] = inputs
        hparams["video_num_target_frames"] = targets
        return None
    try:
        hparams.video_num_input_frames = inputs
        hparams.video_num_target_frames = targets
    except AttributeError as error:
        raise TypeError(f"{who}: cannot set the frame counts on hparams of type "
                        f"{type(hparams).__name__} ({error}); pass an object with settable "
                        "attributes (e.g. types.SimpleNamespace) or a dict.") from error
    return None


def bair_robot_pushing_preprocess(dataset, training):
    """Pre-processing function that concatenates input and target frames.

    Each ``(features, targets)`` pair of video frames becomes ``(features,
    seq)``: ``seq`` is the input frames followed by the target frames
    (concatenated along the first axis), flattened and cast to int32, stored
    as ``features['inputs']`` and ``features['targets']``; ``features['mask']``
    (float32) is 0 on the input frames' values and 1 on the targets'.

    >>> tf = _lazy.tensorflow("doctest")
    >>> frames = tf.data.Dataset.from_tensor_slices(({"inputs": [[[1, 2]]]}, [[[3, 4], [5, 6]]]))
    >>> features, seq = next(bair_robot_pushing_preprocess(frames, True).as_numpy_iterator())
    >>> seq.tolist(), features["mask"].tolist()
    ([1, 2, 3, 4, 5, 6], [0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    """
    who = _name("bair_robot_pushing_preprocess")
    del training
    tf = _tf(who)
    features, targets = _pair_spec(dataset, who, ["inputs"])
    inputs = _tensor_spec(features["inputs"], "features['inputs'] (frames)", who, min_rank=1)
    _tensor_spec(targets, "the targets (frames)", who, min_rank=1)
    _same_dtype(inputs, targets, "features['inputs'] and the targets", who)
    if inputs.shape.rank is not None and targets.shape.rank is not None and (
            not inputs.shape[1:].is_compatible_with(targets.shape[1:])):
        raise ValueError(f"{who}: the input and target frames must have one shape, got "
                         f"{inputs.shape[1:]} and {targets.shape[1:]}.")

    def concat(features, targets):
        inputs = features["inputs"]
        seq = tf.cast(tf.reshape(tf.concat([inputs, targets], axis=0), [-1]), tf.int32)
        mask = tf.reshape(tf.concat([tf.zeros_like(inputs), tf.ones_like(targets)], axis=0), [-1])
        return {**features, "inputs": seq, "targets": seq, "mask": tf.cast(mask, tf.float32)}, seq

    return dataset.map(concat)
