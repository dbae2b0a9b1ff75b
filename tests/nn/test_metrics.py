"""Tests for pax_trax.nn.metrics (Trax 1.4.1's trax.layers.metrics)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pax_trax.core.errors import LayerError
from pax_trax.nn.core import ThresholdToBinary
from pax_trax.nn.metrics import (
    Accuracy,
    BinaryCrossEntropy,
    BinaryCrossEntropyLoss,
    BinaryCrossEntropySum,
    CategoryAccuracy,
    CategoryCrossEntropy,
    CrossEntropyLoss,
    CrossEntropyLossWithLogSoftmax,
    CrossEntropySum,
    L2Loss,
    MacroAveragedFScore,
    MaskedSequenceAccuracy,
    SequenceAccuracy,
    SmoothL1Loss,
    WeightedCategoryAccuracy,
    WeightedCategoryCrossEntropy,
    WeightedFScore,
    WeightedSum,
)

LN2, LN3, LN4 = np.log(2.0), np.log(3.0), np.log(4.0)
CE_075 = -np.log(0.75)  # cross-entropy when the target gets probability 0.75

OUTPUTS = np.array([[0.1, 0.9, 0.2, 0.8], [0.22, 0.88, 0.11, 0.99], [0.6, 0.1, 0.2, 0.1]],
                   np.float32)  # argmax: 1, 3, 0
TARGETS = np.array([1, 3, 2])


def f32(x):
    return np.asarray(x, np.float32)


def test_n_in_and_display():
    two = (CategoryAccuracy(), CategoryCrossEntropy(), BinaryCrossEntropy(),
           MacroAveragedFScore(), WeightedFScore(), WeightedSum())
    three = (WeightedCategoryAccuracy(), WeightedCategoryCrossEntropy(),
             MaskedSequenceAccuracy(), Accuracy(), SequenceAccuracy(), CrossEntropyLoss(),
             CrossEntropyLossWithLogSoftmax(), BinaryCrossEntropyLoss(), L2Loss(),
             SmoothL1Loss(), CrossEntropySum(), BinaryCrossEntropySum())
    assert all((m.n_in, m.n_out) == (2, 1) for m in two)
    assert all((m.n_in, m.n_out) == (3, 1) for m in three)
    assert repr(CrossEntropyLoss()) == "CrossEntropyLoss_in3"
    assert repr(Accuracy()) == "Accuracy_in3"
    assert repr(CategoryAccuracy()) == "CategoryAccuracy_in2"


def test_category_accuracy():
    assert float(CategoryAccuracy()((OUTPUTS, TARGETS))) == pytest.approx(2 / 3)
    # Sequences: the mean runs over every position.
    seq = np.stack([OUTPUTS, OUTPUTS[::-1]])  # argmax [[1, 3, 0], [0, 3, 1]]
    assert float(CategoryAccuracy()((seq, np.array([[1, 3, 0], [1, 1, 1]])))) == \
        pytest.approx(4 / 6)


def test_category_accuracy_shape_mismatch():
    with pytest.raises(LayerError, match=r"targets of shape \(3,\)") as excinfo:
        CategoryAccuracy()((OUTPUTS, np.array([[1, 3, 2]])))
    assert isinstance(excinfo.value.__cause__, ValueError)


def test_weighted_category_accuracy():
    weights = f32([1, 0, 3])
    assert float(WeightedCategoryAccuracy()((OUTPUTS, TARGETS, weights))) == 0.25
    assert float(WeightedCategoryAccuracy()((OUTPUTS, TARGETS, f32([1, 1, 1])))) == \
        pytest.approx(2 / 3)


def test_category_cross_entropy():
    uniform = np.full((4, 4), 9.0, np.float32)
    loss = CategoryCrossEntropy()((uniform, np.array([0, 1, 2, 3])))
    assert float(loss) == pytest.approx(LN4, rel=1e-6)
    logits = f32([[0.0, LN3], [0.0, LN3]])  # softmax [0.25, 0.75]
    loss = CategoryCrossEntropy()((logits, np.array([1, 0])))
    assert float(loss) == pytest.approx((CE_075 + LN4) / 2, rel=1e-6)


def test_category_cross_entropy_label_smoothing():
    logits = f32([[0.0, LN3]])
    # Smoothed target for class 1 with e = 0.5, N = 2: [0.25, 0.75].
    expected = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))
    loss = CategoryCrossEntropy(label_smoothing=0.5)((logits, np.array([1])))
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(CategoryCrossEntropy(0.0)((logits, np.array([1])))) == \
        pytest.approx(CE_075, rel=1e-6)
    with pytest.raises(ValueError, match="between 0 and 1"):
        CategoryCrossEntropy(label_smoothing=1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        WeightedCategoryCrossEntropy(label_smoothing=-0.1)


def test_weighted_category_cross_entropy_takes_logits():
    logits = f32([[0.0, LN3], [0.0, LN3], [5.0, 5.0]])
    targets = np.array([1, 0, 0])
    weights = f32([3, 1, 0])
    loss = WeightedCategoryCrossEntropy()((logits, targets, weights))
    assert float(loss) == pytest.approx((3 * CE_075 + LN4) / 4, rel=1e-6)
    smoothed = WeightedCategoryCrossEntropy(0.5)((logits[:1], targets[:1], weights[:1]))
    assert float(smoothed) == pytest.approx(-(0.25 * np.log(0.25) + 0.75 * np.log(0.75)))
    with pytest.raises(LayerError, match="targets of shape"):
        WeightedCategoryCrossEntropy()((logits, np.array([[1, 0, 0]]), weights))


def test_category_cross_entropy_gradient():
    logits = jnp.array([[0.0, LN3]], jnp.float32)
    grad = jax.grad(lambda z: CategoryCrossEntropy()((z, np.array([1]))))(logits)
    np.testing.assert_allclose(grad, [[0.25, -0.25]], atol=1e-6)  # softmax - one_hot


def test_binary_cross_entropy():
    logits = f32([0.0, LN3, -LN3])  # probabilities 0.5, 0.75, 0.25
    targets = np.array([1, 1, 0])
    expected = (LN2 + 2 * CE_075) / 3
    assert float(BinaryCrossEntropy()((logits, targets))) == pytest.approx(expected, rel=1e-6)


def test_masked_sequence_accuracy():
    # Predictions: sequence 0 -> [0, 1, 1], sequence 1 -> [1, 1, 0].
    outputs = f32([[[1, 0], [0, 1], [0, 1]], [[0, 1], [0, 1], [1, 0]]])
    targets = np.array([[0, 1, 0], [1, 1, 0]])
    masked = f32([[1, 1, 0], [1, 1, 1]])
    assert float(MaskedSequenceAccuracy()((outputs, targets, masked))) == 1.0
    assert float(MaskedSequenceAccuracy()((outputs, targets, np.ones((2, 3))))) == 0.5
    # Only zero vs. non-zero weights matter.
    assert float(MaskedSequenceAccuracy()((outputs, targets, 7 * masked))) == 1.0
    # The deprecated SequenceAccuracy agrees for 0/1 weights.
    assert float(SequenceAccuracy()((outputs, targets, masked))) == 1.0
    assert float(SequenceAccuracy()((outputs, targets, np.ones((2, 3), np.float32)))) == 0.5


def test_accuracy_with_classifier():
    assert float(Accuracy()((OUTPUTS, TARGETS, f32([1, 0, 3])))) == 0.25
    probs = f32([0.2, 0.7, 0.9, 0.4])  # -> 0, 1, 1, 0
    layer = Accuracy(classifier=ThresholdToBinary())
    assert float(layer((probs, np.array([0, 1, 0, 1]), f32([1, 1, 1, 1])))) == 0.5
    assert float(layer((probs, np.array([0, 1, 0, 1]), f32([1, 1, 0, 0])))) == 1.0


def test_cross_entropy_loss_takes_log_probabilities():
    log_probs = np.log(f32([[0.25, 0.75], [0.5, 0.5]]))
    targets = np.array([1, 0])
    ones = f32([1, 1])
    expected = (CE_075 + LN2) / 2
    assert float(CrossEntropyLoss()((log_probs, targets, ones))) == pytest.approx(expected)
    logits = f32([[0.0, LN3], [5.0, 5.0]])
    loss = CrossEntropyLossWithLogSoftmax()((logits, targets, ones))
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    weighted = CrossEntropyLoss()((log_probs, targets, f32([3, 1])))
    assert float(weighted) == pytest.approx((3 * CE_075 + LN2) / 4, rel=1e-6)


def test_binary_cross_entropy_loss_takes_probabilities():
    probs = f32([0.5, 0.75, 0.25])
    targets = f32([1, 1, 0])
    expected = (LN2 + 2 * CE_075) / 3
    loss = BinaryCrossEntropyLoss()((probs, targets, f32([1, 5, 2])))
    assert float(loss) == pytest.approx(expected, rel=1e-6)  # weights cancel, as Trax
    col = BinaryCrossEntropyLoss()((probs[:, None], targets[:, None], f32([[1], [1], [1]])))
    assert float(col) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(LayerError, match="targets"):
        BinaryCrossEntropyLoss()((probs, targets[:2], f32([1, 1])))


def test_l2_loss():
    outputs = f32([[1, 2], [3, 4]])
    targets = f32([[1, 1], [1, 1]])
    weights = f32([[1, 1], [0, 2]])
    assert float(L2Loss()((outputs, targets, weights))) == 19 / 4
    with pytest.raises(LayerError, match="weights"):
        L2Loss()((outputs, targets, f32([1, 1])))


def test_smooth_l1_loss():
    outputs = f32([0.0, 0.5, 2.0, -3.0])
    targets = np.zeros(4, np.float32)
    assert float(SmoothL1Loss()((outputs, targets, np.ones(4, np.float32)))) == 1.03125
    assert float(SmoothL1Loss()((outputs, targets, f32([0, 2, 1, 1])))) == 1.0625
    grad = jax.grad(lambda o: SmoothL1Loss()((o, targets, np.ones(4, np.float32))))(outputs)
    np.testing.assert_allclose(grad, [0.0, 0.125, 0.25, -0.25])


F_OUTPUTS = f32([[0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 1, 0, 0]])
F_TARGETS = np.array([1, 2, 2, 3, 1])  # predictions [1, 1, 2, 1, 1]


def test_macro_averaged_f_score():
    # F1 per category: 0 -> 0 (absent), 1 -> 2/3, 2 -> 2/3, 3 -> 0.
    assert float(MacroAveragedFScore()((F_OUTPUTS, F_TARGETS))) == pytest.approx(1 / 3)
    layer = MacroAveragedFScore(initial_category_index=1)
    assert float(layer((F_OUTPUTS, F_TARGETS))) == pytest.approx(4 / 9)
    # F2: category 1 -> 10/12, category 2 -> 5/9, category 3 -> 0.
    layer = MacroAveragedFScore(beta=2.0, initial_category_index=1)
    assert float(layer((F_OUTPUTS, F_TARGETS))) == pytest.approx((10 / 12 + 5 / 9) / 3)


def test_weighted_f_score():
    # Weighted by target counts 0, 2, 2, 1: (2 * 2/3 + 2 * 2/3) / 5.
    assert float(WeightedFScore()((F_OUTPUTS, F_TARGETS))) == pytest.approx(8 / 15)
    layer = WeightedFScore(initial_category_index=1)
    assert float(layer((F_OUTPUTS, F_TARGETS))) == pytest.approx(8 / 15)
    perfect = WeightedFScore()((F_OUTPUTS, np.array([1, 1, 2, 1, 1])))
    assert float(perfect) == 1.0


def test_sums():
    assert float(WeightedSum()((f32([1, 2, 3]), f32([1, 0, 2])))) == 7.0
    log_probs = np.log(f32([[0.25, 0.75], [0.5, 0.5]]))
    loss = CrossEntropySum()((log_probs, np.array([1, 0]), f32([2, 1])))
    assert float(loss) == pytest.approx(2 * CE_075 + LN2, rel=1e-6)
    probs = f32([0.5, 0.75, 0.25])
    loss = BinaryCrossEntropySum()((probs, f32([1, 1, 0]), f32([1, 1, 1])))
    assert float(loss) == pytest.approx(LN2 + 2 * CE_075, rel=1e-6)


def test_metrics_under_jit():
    layer = WeightedCategoryCrossEntropy(label_smoothing=0.1)
    logits = f32([[0.0, LN3], [2.0, -1.0]])
    args = (logits, np.array([1, 0]), f32([1, 2]))
    eager = layer(args)
    jitted = jax.jit(lambda m, a: m(a))(layer, args)
    np.testing.assert_allclose(jitted, eager, rtol=1e-6)
    fscore = jax.jit(lambda a: MacroAveragedFScore()(a))((F_OUTPUTS, F_TARGETS))
    assert float(fscore) == pytest.approx(1 / 3)
