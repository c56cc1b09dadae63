"""ONNX classification per chunk: cards, validation, workers, invalid frames."""

from __future__ import annotations

import json
import os

import numpy as np
import onnxruntime as ort
import pytest
from conftest import HOUR_DIR, SAMPLE_END, SAMPLE_START, tiny_model
from distributed import Client, LocalCluster

import auroradask
from auroradask._model import softmax

CLASSES = ["bad_viewing", "no_aurora", "other_aurora", "pulsating"]


def open_sample(root=None, chunks=2):
    root = root or auroradask.sample_archive()
    return auroradask.open_themis(root, "gill", SAMPLE_START, SAMPLE_END, chunks=chunks)


@pytest.fixture(scope="module")
def model_input():
    return auroradask.preprocess(open_sample(), "themis-pa").values[0]


def test_demo_model_on_two_workers_equals_plain_onnxruntime(model_input):
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            results = auroradask.classify(open_sample(), auroradask.demo_model()).compute()
            workers = {w for w in client.run(os.getpid).values()}
    assert len(workers) == 2
    session = ort.InferenceSession(auroradask.demo_model(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"image": model_input})[0]
    np.testing.assert_allclose(results.probability.values[0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(results.label.values[0], expected.argmax(axis=1))
    np.testing.assert_allclose(results.confidence.values[0], expected.max(axis=1), rtol=1e-6)
    assert results.label.dtype == np.int8
    assert results["class"].values.tolist() == CLASSES
    assert results.label.attrs["flag_meanings"] == " ".join(CLASSES)
    assert results.attrs["model_file"] == "demo-themis-pa.onnx"
    assert len(results.attrs["model_sha256"]) == 64
    assert json.loads(results.attrs["preset"])["clip_limit"] == 3.0


def test_demo_model_card_is_honest_and_small():
    model = auroradask.load_model(auroradask.demo_model())
    assert model.classes == CLASSES
    assert model.preset == auroradask.get_preset("themis-pa")
    assert "NOT TRAINED ON REAL DATA" in model.card.description
    assert os.path.getsize(auroradask.demo_model()) < 5_000_000


def test_card_from_json_sidecar(tmp_path, model_input):
    path = tmp_path / "tiny.onnx"
    weights = tiny_model(path, logits=False)
    card = {"classes": ["arc", "diffuse", "discrete", "clear"], "preset": "themis-pa"}
    (tmp_path / "tiny.json").write_text(json.dumps(card))
    results = auroradask.classify(open_sample(), path).compute()
    assert results["class"].values.tolist() == card["classes"]
    expected = softmax(model_input.mean(axis=(1, 2)) @ weights)
    np.testing.assert_allclose(results.probability.values[0], expected, rtol=1e-4)


def test_logits_become_probabilities(tmp_path, model_input):
    path = tmp_path / "logits.onnx"
    weights = tiny_model(path, logits=True)
    results = auroradask.classify(
        open_sample(), path, classes=CLASSES, preset="themis-pa", outputs="logits"
    ).compute()
    probability = results.probability.values[0]
    np.testing.assert_allclose(probability.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(
        probability, softmax(model_input.mean(axis=(1, 2)) @ weights), rtol=1e-4
    )
    # the same logits declared as probabilities are refused, not passed on
    wrong = auroradask.classify(open_sample(), path, classes=CLASSES, preset="themis-pa")
    with pytest.raises(auroradask.ModelError, match="do not sum to 1"):
        wrong.compute()


def test_nchw_model_gets_channels_first(tmp_path, model_input):
    path = tmp_path / "nchw.onnx"
    weights = tiny_model(path, logits=False, layout="NCHW")
    results = auroradask.classify(open_sample(), path, classes=CLASSES, preset="themis-pa")
    expected = softmax(model_input.mean(axis=(1, 2)) @ weights)
    np.testing.assert_allclose(results.probability.values[0], expected, rtol=1e-4)


@pytest.mark.parametrize(
    ("build", "kwargs", "message"),
    [
        ({"size": (128, 128)}, {"classes": CLASSES, "preset": "themis-pa"}, "input size"),
        ({"n_out": 6}, {"classes": CLASSES, "preset": "themis-pa"}, "4 class names"),
        ({"channels": 1}, {"classes": CLASSES, "preset": "themis-pa"}, "channels"),
        ({}, {"preset": "themis-pa"}, "no class names"),
        ({}, {"classes": CLASSES}, "no preprocessing preset"),
    ],
)
def test_mismatches_fail_clearly_at_classify_time(tmp_path, build, kwargs, message):
    path = tmp_path / "model.onnx"
    tiny_model(path, **build)
    frames = open_sample()
    with pytest.raises(auroradask.ModelError, match=message):
        auroradask.classify(frames, path, **kwargs)


def test_missing_model_file_is_named():
    with pytest.raises(FileNotFoundError, match="^model: '.*no-such.onnx' does not exist"):
        auroradask.classify(open_sample(), "no-such.onnx")


def test_invalid_frames_are_not_classified(sample_copy):
    (sample_copy / HOUR_DIR / "20140310_0602_gill_themis19_full.pgm.gz").write_bytes(b"junk")
    frames = auroradask.open_themis(sample_copy, "gill", "2014-03-10T05:59", SAMPLE_END)
    results = auroradask.classify(frames, auroradask.demo_model()).compute()
    status = results.frame_status.values[0]
    assert (status != 0).sum() == 40  # 05:59 has no file, 06:02 is unreadable
    assert (results.label.values[0][status != 0] == -1).all()
    assert np.isnan(results.confidence.values[0][status != 0]).all()
    assert np.isnan(results.probability.values[0][status != 0]).all()
    assert (results.label.values[0][status == 0] >= 0).all()
    assert np.isfinite(results.confidence.values[0][status == 0]).all()


def test_threads_of_a_process_share_one_session(model_input, monkeypatch):
    import dask

    from auroradask import _model as model_module

    loaded = auroradask.load_model(auroradask.demo_model())
    model_module._SESSIONS.pop(loaded.session_key(), None)
    created = []
    real = model_module._new_session
    monkeypatch.setattr(
        model_module, "_new_session", lambda *args: created.append(args) or real(*args)
    )
    with dask.config.set(scheduler="threads", num_workers=3):
        results = auroradask.classify(open_sample(chunks=1), loaded).compute()
    assert len(created) == 1  # 6 chunks on 3 threads, one session
    session = ort.InferenceSession(auroradask.demo_model(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"image": model_input})[0]
    np.testing.assert_allclose(results.probability.values[0], expected, rtol=1e-5, atol=1e-6)
