"""ONNX classification per chunk: cards, validation, workers, invalid frames."""

from __future__ import annotations

import json
import os

import numpy as np
import onnxruntime as ort
import pytest
from distributed import Client, LocalCluster

import auroradask
from auroradask.models._classify import confidence_of_label, label_from_probability
from tests.support.utils import CLASSES, HOUR_DIR, SAMPLE_END, classify_sample, open_sample


@pytest.fixture(scope="module")
def model_input():
    return auroradask.preprocess(open_sample(chunk_minutes=2), "themis-pa").values[0]


def test_demo_model_on_two_workers_equals_plain_onnxruntime(model_input):
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            results = auroradask.classify(
                open_sample(chunk_minutes=2), auroradask.demo_model()
            ).compute()
            workers = {w for w in client.run(os.getpid).values()}
    assert len(workers) == 2
    session = ort.InferenceSession(auroradask.demo_model(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"image": model_input})[0]
    np.testing.assert_allclose(results.probability.values[0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(results.label.values[0], expected.argmax(axis=1))
    np.testing.assert_allclose(results.confidence.values[0], expected.max(axis=1), rtol=1e-6)
    assert results.label.dtype == np.int8
    assert results["class"].values.tolist() == CLASSES
    assert results.label.attrs["flag_meanings"] == " ".join(["not_classified", *CLASSES])
    assert results.attrs["model_file"] == "demo-themis-pa.onnx"
    assert len(results.attrs["model_sha256"]) == 64
    assert json.loads(results.attrs["preset"])["clip_limit"] == 3.0


def test_invalid_frames_are_not_classified(sample_copy):
    (sample_copy / HOUR_DIR / "20140310_0602_gill_themis19_full.pgm.gz").write_bytes(b"junk")
    frames = open_sample(sample_copy, "2014-03-10T05:59", SAMPLE_END)
    results = auroradask.classify(frames, auroradask.demo_model()).compute()
    status = results.frame_status.values[0]
    assert (status != 0).sum() == 40  # 05:59 has no file, 06:02 is unreadable
    assert (results.label.values[0][status != 0] == -1).all()
    assert np.isnan(results.confidence.values[0][status != 0]).all()
    assert np.isnan(results.probability.values[0][status != 0]).all()
    assert (results.label.values[0][status == 0] >= 0).all()
    assert np.isfinite(results.confidence.values[0][status == 0]).all()


def test_an_empty_selection_of_time_gives_empty_results():
    """A time window with no frame (an empty chunk reaches the kernel) is no error: the results
    have the sites and classes and no slot."""
    frames = open_sample().isel(time=slice(0, 0))
    results = auroradask.classify(frames, auroradask.demo_model()).compute()
    assert results.sizes["time"] == 0 and results.sizes["site"] == frames.sizes["site"]
    assert results["label"].shape == (frames.sizes["site"], 0)


def test_label_and_confidence_from_probability():
    probability = np.array([[0.1, 0.7, 0.2], [np.nan] * 3, [0.5, 0.2, 0.3]], dtype=np.float32)
    label = label_from_probability(probability)
    assert label.tolist() == [1, -1, 0] and label.dtype == np.int8
    confidence = confidence_of_label(probability, label)
    np.testing.assert_array_equal(confidence, np.array([0.7, np.nan, 0.5], dtype=np.float32))


def test_a_model_giving_nan_is_a_model_error(tmp_path):
    from onnx import TensorProto, helper, save

    path = tmp_path / "nan.onnx"
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2], keepdims=0),
        helper.make_node("Div", ["mean", "zero"], ["ratio"]),  # 0/0 for black frames, x/0 else
        helper.make_node("Sub", ["ratio", "ratio"], ["nan"]),  # NaN - NaN, inf - inf: NaN
        helper.make_node("MatMul", ["nan", "weights"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "nan",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 224, 224, 3])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 4])],
        initializer=[
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("weights", TensorProto.FLOAT, [3, 4], [1.0] * 12),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))
    results = auroradask.classify(open_sample(), path, classes=CLASSES, preset="themis-pa")
    with pytest.raises(auroradask.ModelError, match="NaN or infinite outputs"):
        results.compute()


def test_the_dashboard_shows_the_pipeline_stages_only(tmp_path):
    with LocalCluster(n_workers=1, threads_per_worker=2, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            auroradask.to_zarr(classify_sample(chunk_minutes=2), tmp_path / "x.zarr")
            prefixes = client.run_on_scheduler(
                lambda dask_scheduler: sorted(dask_scheduler.task_prefixes)
            )
    assert prefixes == ["classify", "keogram", "read-themis", "write-results"]
