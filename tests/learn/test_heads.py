"""Linear heads on embeddings: night-wise cross-validation, one composed ONNX model."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pandas as pd
import pytest
from scipy.special import softmax
from sklearn.base import clone

import auroradask
from auroradask.learn._heads import gather
from tests.support.utils import sky_nights

PENULTIMATE = "/Concat_output_0"
CLASSES = ["bad_viewing", "no_aurora", "other_aurora", "pulsating"]
NIGHTS = 6


@pytest.fixture(scope="module")
def labelled():
    """Six labelled synthetic nights (12 frames of each class a night), embedded."""
    frames, truth = sky_nights(NIGHTS, 12, seed=1)
    embeddings = auroradask.embed(
        frames, auroradask.demo_model(), output=PENULTIMATE, dtype="float32"
    ).compute()
    return frames, truth, embeddings


@pytest.fixture(scope="module")
def ridge(labelled, tmp_path_factory):
    _, truth, embeddings = labelled
    path = tmp_path_factory.mktemp("head") / "head.onnx"
    return auroradask.fit_head(embeddings, truth, kind="ridge", path=path, folds=NIGHTS)


def accuracy(results, truth) -> float:
    names = np.asarray(results["class"].values)[results["label"].values[0]]
    return float((names == truth["label"].to_numpy()).mean())


def test_ridge_head_through_classify_reaches_its_cross_validated_accuracy(ridge):
    assert ridge.classes == CLASSES  # the truth's labels, sorted
    assert len(ridge.frames) == NIGHTS * 48 and ridge.nights == NIGHTS
    assert ridge.confusion.to_numpy().sum() == len(ridge.frames)
    assert ridge.accuracy == pytest.approx(np.trace(ridge.confusion) / len(ridge.frames))
    assert ridge.accuracy > 0.8
    # other nights, never seen: the composed model runs through classify like any model
    frames, truth = sky_nights(3, 16, seed=7, first_night="2020-03-01")
    results = auroradask.classify(frames, ridge.path).compute()
    assert results["class"].values.tolist() == CLASSES
    assert results.attrs["model_file"] == "head.onnx"
    reached = accuracy(results, truth)
    print(f"ridge: cross-validated {ridge.accuracy:.3f}, on 3 new nights {reached:.3f}")
    assert reached == pytest.approx(ridge.accuracy, abs=0.08)


def test_composed_model_computes_the_fitted_head(labelled, ridge):
    frames, _, embeddings = labelled
    results = auroradask.classify(frames, ridge.path).compute()
    scores = ridge.estimator.decision_function(gather(embeddings, ridge.frames))
    np.testing.assert_allclose(
        results["probability"].values[0], softmax(scores, axis=1), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_equal(results["label"].values[0], scores.argmax(axis=1))
    card = auroradask.load_model(ridge.path).card
    base = auroradask.load_model(auroradask.demo_model()).card
    assert card.preset == base.preset and card.input_name == "image"
    assert card.outputs == "logits"  # ridge scores, not probabilities
    assert PENULTIMATE in card.description and f"{ridge.accuracy:.3f}" in card.description
    # the extractor is cut at the layer: the base model's own classifier is gone
    ops = [n.op_type for n in onnx.load(ridge.path).graph.node]
    assert "Softmax" not in ops and "Gemm" not in ops


def test_folds_hold_out_whole_nights(labelled, ridge):
    """Leave-one-night-out: each frame's prediction comes from a head that never saw its night."""
    _, _, embeddings = labelled
    frames = ridge.frames
    x = gather(embeddings, frames)
    y = frames["truth"].to_numpy()
    assert len(ridge.folds) == NIGHTS and (ridge.folds["nights"] == 1).all()
    for night in frames["night"].unique():
        held = (frames["night"] == night).to_numpy()
        head = clone(ridge.estimator).fit(x[~held], y[~held])
        np.testing.assert_array_equal(frames["predicted"].to_numpy()[held], head.predict(x[held]))
    assert sorted(frames["night"].unique()) == [f"synt-2020-01-0{d}" for d in range(1, 7)]


def test_truth_in_other_forms_gives_the_same_head(labelled, ridge):
    _, truth, embeddings = labelled
    # interval table: one interval per frame, around its own time (1 s after its slot)
    one_s = np.timedelta64(1, "s")
    intervals = pd.DataFrame(
        {
            "site": truth["site"],
            "start": truth["time"],
            "end": truth["time"] + 2 * one_s,
            "label": truth["label"],
        }
    )
    fit = auroradask.fit_head(embeddings, intervals, folds=NIGHTS)
    assert fit.accuracy == ridge.accuracy
    # codes through a mapping
    codes = {"bv": "bad_viewing", "cs": "no_aurora", "dis": "other_aurora", "pa": "pulsating"}
    back = {v: k for k, v in codes.items()}
    coded = truth.assign(label=truth["label"].map(back).str.upper())
    fit = auroradask.fit_head(embeddings, coded, mapping=codes, folds=NIGHTS)
    assert fit.classes == CLASSES and fit.accuracy == ridge.accuracy
    # a results dataset as the truth: distil the base model's own labels
    fit = auroradask.fit_head(embeddings, embeddings, folds=NIGHTS)
    assert fit.classes == CLASSES
    assert len(fit.frames) == NIGHTS * 48
    np.testing.assert_array_equal(fit.frames["truth"], embeddings["label"].values[0])


def test_logistic_and_svm_heads_export_too(labelled, tmp_path):
    frames, truth, embeddings = labelled
    for kind, outputs in (("logistic", "probabilities"), ("svm", "logits")):
        fit = auroradask.fit_head(embeddings, truth, kind=kind, path=tmp_path / f"{kind}.onnx")
        assert fit.accuracy > 0.8
        assert auroradask.load_model(fit.path).card.outputs == outputs
        results = auroradask.classify(frames.isel(time=slice(0, 40)), fit.path).compute()
        expected = fit.estimator.predict(gather(embeddings, fit.frames.iloc[:40]))
        np.testing.assert_array_equal(results["label"].values[0], expected)


def test_bad_requests(labelled, tmp_path):
    _, truth, embeddings = labelled
    with pytest.raises(auroradask.ArgumentError, match="kind"):
        auroradask.fit_head(embeddings, truth, kind="tree")
    one_night = truth[truth["time"] < np.datetime64("2020-01-02")]
    with pytest.raises(auroradask.ArgumentError, match="two"):
        auroradask.fit_head(embeddings, one_night)
    with pytest.raises(auroradask.ArgumentError, match="no labelled frame of class"):
        auroradask.fit_head(embeddings, truth, classes=[*CLASSES, "clouds"])
    other = tmp_path / "other.onnx"
    proto = onnx.load(auroradask.demo_model())
    proto.doc_string = "changed"
    onnx.save(proto, other)
    with pytest.raises(auroradask.ModelError, match="not the model"):
        auroradask.fit_head(embeddings, truth, model=other, path=tmp_path / "h.onnx")
    with pytest.raises(auroradask.ArgumentError, match="embedding"):
        auroradask.fit_head(embeddings.drop_vars("embedding"), truth)
    assert json.loads(auroradask.load_model(auroradask.demo_model()).card.to_json())


def test_a_head_with_classes_the_base_model_lacks(labelled, tmp_path):
    """Two new classes from the generator's four (binary heads export with two scores)."""
    frames, truth, embeddings = labelled
    mapping = {
        "bad_viewing": "quiet",
        "no_aurora": "quiet",
        "other_aurora": "aurora",
        "pulsating": "aurora",
    }
    for kind in ("ridge", "logistic"):
        fit = auroradask.fit_head(
            embeddings, truth, kind=kind, mapping=mapping, path=tmp_path / f"{kind}.onnx"
        )
        assert fit.classes == ["aurora", "quiet"]
        assert fit.accuracy > 0.85
        results = auroradask.classify(frames.isel(time=slice(0, 48)), fit.path).compute()
        assert results["class"].values.tolist() == ["aurora", "quiet"]
        assert results["probability"].shape == (1, 48, 2)
        expected = fit.estimator.predict(gather(embeddings, fit.frames.iloc[:48]))
        np.testing.assert_array_equal(results["label"].values[0], expected)
        want = truth["label"].iloc[:48].map(mapping).to_numpy()
        assert (np.asarray(fit.classes)[expected] == want).mean() > 0.8
