"""The metric kernels against scikit-learn, and the confidence minimum, on any data hypothesis
draws: a confusion count or a kappa that drifts from the reference, or a frame on the minimum
that is left out, is found here whatever the example.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from auroradask.evaluation import _metrics

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@st.composite
def two_raters(draw, least: int = 1):
    """(n_classes, truth, predicted): class indices of the same frames by two raters."""
    n_classes = draw(st.integers(1, 6))
    n = draw(st.integers(least, 120))
    labels = st.integers(0, n_classes - 1)
    truth = draw(arrays(np.int64, n, elements=labels))
    # agreement is common in real data: copy a drawn share of the truth
    predicted = draw(arrays(np.int64, n, elements=labels))
    same = draw(arrays(np.bool_, n))
    return n_classes, truth, np.where(same, truth, predicted)


@given(two_raters())
@settings(deadline=None)  # a loaded machine is no bug
def test_confusion_matrix_is_sklearns(data):
    n_classes, truth, predicted = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns of one class only, labels given
        reference = sklearn_metrics.confusion_matrix(truth, predicted, labels=range(n_classes))
    np.testing.assert_array_equal(_metrics.confusion_matrix(truth, predicted, n_classes), reference)


@given(two_raters(least=0))
@settings(deadline=None)  # a loaded machine is no bug
def test_confusion_matrix_counts_every_frame_once(data):
    n_classes, truth, predicted = data
    cm = _metrics.confusion_matrix(truth, predicted, n_classes)
    assert cm.shape == (n_classes, n_classes) and cm.sum() == len(truth)
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(truth, minlength=n_classes))
    np.testing.assert_array_equal(cm.sum(axis=0), np.bincount(predicted, minlength=n_classes))


@given(two_raters())
@settings(deadline=None)  # a loaded machine is no bug
def test_kappa_and_agreement_are_sklearns(data):
    n_classes, truth, predicted = data
    figures = _metrics.scores(_metrics.confusion_matrix(truth, predicted, n_classes))
    assert figures["agreement"] == pytest.approx(
        sklearn_metrics.accuracy_score(truth, predicted), abs=1e-12
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns where kappa is undefined
        reference = sklearn_metrics.cohen_kappa_score(truth, predicted, labels=range(n_classes))
    if np.isnan(reference):
        # one class only in both: p_e is 1. scores() documents kappa 1 for full agreement
        assert figures["agreement"] == 1.0 and figures["kappa"] == 1.0
    else:
        assert figures["kappa"] == pytest.approx(reference, abs=1e-9)


@given(two_raters())
@settings(deadline=None)  # a loaded machine is no bug
def test_precision_recall_f1_are_sklearns(data):
    """NaN where undefined, as scikit-learn's ``zero_division=np.nan``; scores() gives F1
    only where precision and recall are both defined (scikit-learn gives 0 where one is not)."""
    n_classes, truth, predicted = data
    figures = _metrics.scores(_metrics.confusion_matrix(truth, predicted, n_classes))
    precision, recall, f1, support = sklearn_metrics.precision_recall_fscore_support(
        truth, predicted, labels=range(n_classes), zero_division=np.nan
    )
    np.testing.assert_allclose(figures["precision"], precision, equal_nan=True, atol=1e-12)
    np.testing.assert_allclose(figures["recall"], recall, equal_nan=True, atol=1e-12)
    defined = ~np.isnan(figures["precision"]) & ~np.isnan(figures["recall"])
    np.testing.assert_allclose(figures["f1"][defined], f1[defined], atol=1e-12)
    assert np.isnan(figures["f1"][~defined]).all()
    np.testing.assert_array_equal(figures["truth"], support)


# ----------------------------------------------------------------- the confidence minimum

# a model's probability, as results keep it (float32)
confidences = arrays(np.float32, st.integers(1, 60), elements=st.floats(0, 1, width=32))


@given(confidences, st.data())
@settings(deadline=None)  # a loaded machine is no bug
def test_a_frame_exactly_on_the_minimum_is_kept(confidence, data):
    """``sweep_table`` and ``Evaluation.min_confidence`` keep ``confidence >= minimum``:
    a minimum equal to a stored confidence keeps that frame, read as float64 or float32."""
    minimum = float(data.draw(st.sampled_from(confidence.tolist())))
    for stored in (confidence, confidence.astype(np.float64)):
        kept = _metrics.at_least(stored, minimum)
        np.testing.assert_array_equal(kept, confidence >= np.float32(minimum))
        assert kept[confidence == np.float32(minimum)].all()
    n = len(confidence)
    zeros = np.zeros(n, dtype=np.int64)
    table = _metrics.sweep_table(zeros, zeros, confidence, 1, [minimum])
    assert table["frames"].tolist() == [int((confidence >= np.float32(minimum)).sum())]


@given(st.floats(0, 1))
@settings(max_examples=300, deadline=None)
def test_a_minimum_typed_by_hand_keeps_the_model_s_same_number(value):
    """A model's ``value`` stored in float32 and read back as float64 (0.9 becomes
    0.899999976) is at least a minimum of ``value``; the float32 number below it is not."""
    stored = np.float32(value)
    assert _metrics.at_least(np.array([float(stored)]), value).all()
    below = np.nextafter(stored, np.float32(-1))
    if below >= 0:
        assert not _metrics.at_least(np.array([float(below)]), value).any()
