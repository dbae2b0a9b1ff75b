"""Loss and metric layers, as Trax's `trax.layers.metrics` (Trax 1.4.1).

A metric layer takes two or three inputs from the data stack:

* model output: a batch of predictions (usually activation vectors);
* targets: a batch of target values (often integer categories);
* weights (3-input layers): floats that weight batch items or positions,
  broadcastable to the targets' shape;

and returns one scalar. The category cross-entropies (`CategoryCrossEntropy`,
`WeightedCategoryCrossEntropy`) take logits and apply log-softmax inside;
the older `CrossEntropyLoss`/`CrossEntropySum` take log-probabilities (put
`LogSoftmax` before them, or use `CrossEntropyLossWithLogSoftmax`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import jax
import jax.numpy as jnp

from pax_trax.core.shapes import assert_same_shape
from pax_trax.nn.base import Fn
from pax_trax.nn.combinators import Serial
from pax_trax.nn.core import ArgMax, LogSoftmax, log_softmax, one_hot

__all__ = [
    "CategoryAccuracy",
    "WeightedCategoryAccuracy",
    "CategoryCrossEntropy",
    "WeightedCategoryCrossEntropy",
    "BinaryCrossEntropy",
    "MaskedSequenceAccuracy",
    "Accuracy",
    "SequenceAccuracy",
    "CrossEntropyLoss",
    "CrossEntropyLossWithLogSoftmax",
    "BinaryCrossEntropyLoss",
    "L2Loss",
    "SmoothL1Loss",
    "MacroAveragedFScore",
    "WeightedFScore",
    "WeightedSum",
    "CrossEntropySum",
    "BinaryCrossEntropySum",
]


def _predictions(model_output, targets):
    predictions = jnp.argmax(model_output, axis=-1)
    try:
        assert_same_shape(predictions, targets)
    except AssertionError:
        raise ValueError(
            f"expected targets of shape {tuple(predictions.shape)} (the model output's shape "
            f"{tuple(model_output.shape)} without its last axis), got {tuple(targets.shape)}."
        ) from None
    return predictions


def _check_same_shape(label_a, a, label_b, b):
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"expected {label_b} of the {label_a}'s shape {tuple(a.shape)}, "
            f"got {tuple(b.shape)}."
        )


def _check_label_smoothing(label_smoothing):
    if label_smoothing is not None and not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing ({label_smoothing}) must be between 0 and 1.")
    return label_smoothing


@functools.partial(jax.jit, static_argnums=(2,))
def _category_cross_entropy(model_output, targets, label_smoothing):
    """Per-item cross-entropy of softmax(model_output) against (smoothed) one-hot targets."""
    n_categories = model_output.shape[-1]
    if tuple(targets.shape) != tuple(model_output.shape[:-1]):
        raise ValueError(
            f"expected targets of shape {tuple(model_output.shape[:-1])} (the model output's "
            f"shape {tuple(model_output.shape)} without its last axis), got "
            f"{tuple(targets.shape)}."
        )
    target_distributions = one_hot(targets, n_categories)
    if label_smoothing:
        target_distributions = (
            target_distributions * (1.0 - label_smoothing) + label_smoothing / n_categories
        )
    return -jnp.sum(target_distributions * log_softmax(model_output), axis=-1)


# ---------------------------------------------------------------------------
# Metric functions (module level, or frozen dataclasses when parametrised, so
# that equal layers compare and hash equal). They are jitted so that an eager
# call compiles one program instead of dispatching many small ops.


@jax.jit
def _category_accuracy(model_output, targets):
    predictions = _predictions(model_output, targets)
    return jnp.sum(jnp.equal(predictions, targets)) / predictions.size


@jax.jit
def _weighted_category_accuracy(model_output, targets, weights):
    predictions = _predictions(model_output, targets)
    correct = jnp.equal(predictions, targets)
    return jnp.sum(correct * weights) / jnp.sum(weights)


@dataclasses.dataclass(frozen=True)
class _CategoryCrossEntropy:
    label_smoothing: Optional[float]

    def __call__(self, model_output, targets):
        return jnp.mean(_category_cross_entropy(model_output, targets, self.label_smoothing))


@dataclasses.dataclass(frozen=True)
class _WeightedCategoryCrossEntropy:
    label_smoothing: Optional[float]

    def __call__(self, model_output, targets, weights):
        ce = _category_cross_entropy(model_output, targets, self.label_smoothing)
        return jnp.sum(ce * weights) / jnp.sum(weights)


@jax.jit
def _binary_cross_entropy(model_output, targets):
    probabilities = jax.nn.sigmoid(model_output)
    entropies = -(targets * jnp.log(probabilities)
                  + (1 - targets) * jnp.log(1 - probabilities))
    return jnp.mean(entropies)


@jax.jit
def _masked_sequence_accuracy(model_output, targets, weights):
    predictions = _predictions(model_output, targets)
    accurate = jnp.logical_or(jnp.equal(predictions, targets), jnp.equal(weights, 0))
    return jnp.mean(jnp.all(accurate, axis=-1))


@jax.jit
def _l2_loss(model_output, targets, weights):
    _check_same_shape("model output", model_output, "targets", targets)
    _check_same_shape("model output", model_output, "weights", weights)
    return jnp.sum(weights * (model_output - targets) ** 2) / jnp.sum(weights)


@jax.jit
def _smooth_l1_loss(model_output, targets, weights):
    _check_same_shape("model output", model_output, "targets", targets)
    _check_same_shape("model output", model_output, "weights", weights)
    l1 = jnp.abs(model_output - targets)
    smooth = jnp.where(l1 < 1, 0.5 * l1**2, l1 - 0.5)
    return jnp.sum(weights * smooth) / jnp.sum(weights)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _f_scores(model_output, targets, beta, initial_category_index):
    """Per-category F-beta scores (0 where a category is neither predicted nor present)
    and the categories' target counts, for categories from `initial_category_index` on."""
    predictions = _predictions(model_output, targets)
    categories = jnp.arange(initial_category_index, model_output.shape[-1])
    predicted = predictions[..., None] == categories  # (..., K)
    actual = targets[..., None] == categories
    axes = tuple(range(predicted.ndim - 1))
    n_correct = jnp.sum(predicted & actual, axis=axes)
    n_false_negative = jnp.sum(~predicted & actual, axis=axes)
    n_false_positive = jnp.sum(predicted & ~actual, axis=axes)
    beta2 = beta**2
    numerator = (1 + beta2) * n_correct
    denominator = numerator + beta2 * n_false_negative + n_false_positive
    safe = jnp.where(denominator > 0, denominator, 1)
    f_scores = jnp.where(denominator > 0, numerator / safe, 0.0)
    return f_scores, jnp.sum(actual, axis=axes)


@dataclasses.dataclass(frozen=True)
class _MacroAveragedFScore:
    beta: float
    initial_category_index: int

    def __call__(self, model_output, targets):
        f_scores, _ = _f_scores(model_output, targets, self.beta, self.initial_category_index)
        return jnp.mean(f_scores)


@dataclasses.dataclass(frozen=True)
class _WeightedFScore:
    beta: float
    initial_category_index: int

    def __call__(self, model_output, targets):
        f_scores, counts = _f_scores(model_output, targets, self.beta,
                                     self.initial_category_index)
        return jnp.sum(f_scores * counts) / jnp.sum(counts)


@jax.jit
def _weighted_sum(values, weights):
    return jnp.sum(values * weights)


@jax.jit
def _weighted_mean(values, weights):
    return jnp.sum(values * weights) / jnp.sum(weights)


@jax.jit
def _weighted_sequence_mean(values, weights):
    # Weights are taken as 0/1: a sequence is correct if no weighted position is wrong.
    not_correct = (1.0 - values) * weights
    not_correct_per_sequence = jnp.sum(not_correct, axis=tuple(range(1, not_correct.ndim)))
    return jnp.mean(1.0 - jnp.minimum(1.0, not_correct_per_sequence))


@jax.jit
def _accuracy(predicted_category, target_category):
    return jnp.equal(predicted_category, target_category).astype(jnp.float32)


@jax.jit
def _cross_entropy(model_output, target_category):
    """Per-item cross-entropy from log-probabilities and integer targets."""
    target_distribution = one_hot(target_category, model_output.shape[-1])
    return -1.0 * jnp.sum(model_output * target_distribution, axis=-1)


@jax.jit
def _binary_cross_entropy_from_probabilities(model_output, target_category):
    _check_same_shape("model output", model_output, "targets", target_category)
    batch_size = model_output.shape[0]
    total = jnp.sum(target_category * jnp.log(model_output)
                    + (1 - target_category) * jnp.log(1 - model_output))
    return -total / batch_size


class _Combined(Serial):
    """A Serial that prints as one layer, as Trax's `sublayers_to_print=[]`."""

    def _sublayers_to_print(self):
        return ()


# ---------------------------------------------------------------------------
# Layers


def CategoryAccuracy():
    """Fraction of items whose argmax (last axis) equals the integer target.

    Inputs: model output `(..., N)`, integer targets `(...)`.

    >>> import numpy as np
    >>> CategoryAccuracy()((np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([1, 1]))).item()
    0.5
    """
    return Fn("CategoryAccuracy", _category_accuracy)


def WeightedCategoryAccuracy():
    """Weighted mean of per-item argmax accuracy; inputs: output, targets, weights."""
    return Fn("WeightedCategoryAccuracy", _weighted_category_accuracy)


def CategoryCrossEntropy(label_smoothing=None):
    """Mean cross-entropy of `softmax(logits)` against one-hot integer targets.

    With `label_smoothing` = e the target distribution is
    `(1 - e) * one_hot + e / N`.
    """
    return Fn("CategoryCrossEntropy",
              _CategoryCrossEntropy(_check_label_smoothing(label_smoothing)))


def WeightedCategoryCrossEntropy(label_smoothing=None):
    """`CategoryCrossEntropy` (on logits) averaged with weights as third input."""
    return Fn("WeightedCategoryCrossEntropy",
              _WeightedCategoryCrossEntropy(_check_label_smoothing(label_smoothing)))


def BinaryCrossEntropy():
    """Mean binary cross-entropy of `sigmoid(logits)` against 0/1 targets."""
    return Fn("BinaryCrossEntropy", _binary_cross_entropy)


def MaskedSequenceAccuracy():
    """Fraction of sequences predicted right at every position of non-zero weight.

    Inputs: output `(batch, length, N)`, targets `(batch, length)`, weights
    broadcastable to the targets (only zero vs. non-zero matters).
    """
    return Fn("MaskedSequenceAccuracy", _masked_sequence_accuracy)


def Accuracy(classifier=ArgMax()):
    """Weighted mean accuracy of `classifier(output)` vs. targets (3 inputs).

    Deprecated in Trax in favour of `WeightedCategoryAccuracy`.
    """
    return _Combined(classifier, Fn("_Accuracy", _accuracy),
                     Fn("_WeightedMean", _weighted_mean), name="Accuracy")


def SequenceAccuracy(classifier=ArgMax()):
    """Fraction of sequences whose weighted positions are all right (3 inputs).

    Deprecated in Trax in favour of `MaskedSequenceAccuracy`.
    """
    return _Combined(classifier, Fn("_Accuracy", _accuracy),
                     Fn("_WeightedSequenceMean", _weighted_sequence_mean),
                     name="SequenceAccuracy")


def CrossEntropyLoss():
    """Weighted mean cross-entropy from LOG-PROBABILITIES and integer targets (3 inputs).

    Deprecated in Trax: it must follow a `LogSoftmax`. Prefer
    `WeightedCategoryCrossEntropy`, which takes logits.
    """
    return _Combined(Fn("_CrossEntropy", _cross_entropy),
                     Fn("_WeightedMean", _weighted_mean), name="CrossEntropyLoss")


def CrossEntropyLossWithLogSoftmax():
    """`LogSoftmax` then `CrossEntropyLoss`: weighted mean cross-entropy from logits."""
    return _Combined(LogSoftmax(), Fn("_CrossEntropy", _cross_entropy),
                     Fn("_WeightedMean", _weighted_mean),
                     name="CrossEntropyLossWithLogSoftmax")


def BinaryCrossEntropyLoss():
    """Binary cross-entropy from PROBABILITIES (not logits) and 0/1 targets (3 inputs).

    The weights scale the (scalar) batch mean, so they cancel out, as in
    Trax. Deprecated in Trax in favour of `BinaryCrossEntropy`.
    """
    return _Combined(Fn("_BinaryCrossEntropy", _binary_cross_entropy_from_probabilities),
                     Fn("_WeightedMean", _weighted_mean), name="BinaryCrossEntropyLoss")


def L2Loss():
    """Weighted mean of squared errors; output, targets and weights of one shape."""
    return Fn("L2Loss", _l2_loss)


def SmoothL1Loss():
    """Weighted mean Huber loss (`0.5 d^2` for `|d| < 1`, else `|d| - 0.5`)."""
    return Fn("SmoothL1Loss", _smooth_l1_loss)


def MacroAveragedFScore(beta=1.0, initial_category_index=0):
    """Unweighted mean over categories of the F-beta score of argmax predictions.

    Categories below `initial_category_index` (e.g. padding 0) are left out.
    A category neither predicted nor present scores 0, as in Trax's tests.
    """
    return Fn("MacroAveragedFScore",
              _MacroAveragedFScore(float(beta), int(initial_category_index)))


def WeightedFScore(beta=1.0, initial_category_index=0):
    """Mean over categories of the F-beta score, weighted by each category's target count."""
    return Fn("WeightedFScore", _WeightedFScore(float(beta), int(initial_category_index)))


def WeightedSum():
    """`sum(values * weights)`."""
    return Fn("WeightedSum", _weighted_sum)


def CrossEntropySum():
    """Weighted sum of cross-entropies from log-probabilities and integer targets."""
    return _Combined(Fn("_CrossEntropy", _cross_entropy), WeightedSum(),
                     name="CrossEntropySum")


def BinaryCrossEntropySum():
    """Binary cross-entropy (from probabilities) times the sum of the weights."""
    return _Combined(Fn("_BinaryCrossEntropy", _binary_cross_entropy_from_probabilities),
                     WeightedSum(), name="BinaryCrossEntropySum")

