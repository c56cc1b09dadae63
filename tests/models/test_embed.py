"""Embeddings: any tensor of the graph, equal to a direct onnxruntime run, with classify's labels."""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from distributed import Client, LocalCluster

import auroradask
from auroradask import circle_elevation, field_of_view, get_preset, preprocess_frames
from tests.support.utils import open_sample, sky_nights

PENULTIMATE = "/Concat_output_0"  # the demo model's pooled features (96), before its Gemm
FEATURE_MAP = "/features/features.8/Relu_output_0"  # (N, 48, 7, 7)


def direct_run(model_input: np.ndarray, *names: str) -> list[np.ndarray]:
    """The demo model's tensors ``names`` for a model input, by onnx + onnxruntime alone."""
    proto = onnx.load(auroradask.demo_model())
    for name in names:
        proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(list(names), {"image": model_input})


@pytest.fixture(scope="module")
def sky():
    # two missing frames: no embedding, label -1
    frames, _ = sky_nights(2, 5, seed=11, chunk=16, bad=(3, 17))
    preset = get_preset("themis-pa")
    fov = field_of_view(circle_elevation(), preset.min_elevation)
    model_input = preprocess_frames(frames["images"].values[0], fov, preset)
    return frames, model_input


def test_penultimate_layer_equals_a_direct_onnxruntime_run(sky):
    frames, model_input = sky
    results = auroradask.embed(
        frames, auroradask.demo_model(), output=PENULTIMATE, dtype="float32"
    ).compute()
    probability, features = direct_run(model_input, "probability", PENULTIMATE)
    valid = frames["frame_status"].values[0] == 0
    embedding = results["embedding"].values[0]
    assert results["embedding"].dtype == np.float32
    assert embedding.shape == (frames.sizes["time"], 96)
    np.testing.assert_allclose(embedding[valid], features[valid], rtol=1e-5, atol=1e-5)
    assert np.isnan(embedding[~valid]).all()
    # the labels come with it, and are classify's
    classified = auroradask.classify(frames, auroradask.demo_model()).compute()
    for name in ("label", "confidence", "probability"):
        np.testing.assert_array_equal(results[name].values, classified[name].values)
    np.testing.assert_array_equal(results["label"].values[0][valid], probability[valid].argmax(1))
    assert (results["label"].values[0][~valid] == -1).all()
    attrs = results["embedding"].attrs
    assert attrs["layer"] == PENULTIMATE and attrs["pooling"] == "none"
    assert attrs["model_sha256"] == classified.attrs["model_sha256"]
    assert attrs["model_path"] == auroradask.demo_model()
    assert results["feature"].values.tolist() == list(range(96))


def test_float16_is_the_float32_embedding_rounded(sky):
    frames, _ = sky
    half = auroradask.embed(frames, auroradask.demo_model(), output=PENULTIMATE)
    assert half["embedding"].dtype == np.float16  # the default: half the storage
    full = auroradask.embed(frames, auroradask.demo_model(), output=PENULTIMATE, dtype="float32")
    np.testing.assert_array_equal(
        half["embedding"].values, full["embedding"].values.astype(np.float16)
    )


def test_a_feature_map_is_averaged_over_its_spatial_axes(sky):
    frames, model_input = sky
    results = auroradask.embed(
        frames, auroradask.demo_model(), output=FEATURE_MAP, dtype="float32"
    ).compute()
    (feature_map,) = direct_run(model_input, FEATURE_MAP)
    assert feature_map.shape[1:] == (48, 7, 7)
    valid = frames["frame_status"].values[0] == 0
    np.testing.assert_allclose(
        results["embedding"].values[0][valid],
        feature_map.mean(axis=(2, 3))[valid],
        rtol=1e-5,
        atol=1e-5,
    )
    assert results["embedding"].attrs["pooling"] == "global_average"
    assert results["embedding"].attrs["layer_shape"] == "['batch', 48, 7, 7]"


def test_real_sample_on_two_workers_equals_a_direct_run():
    """One session per worker process, as for classify: the bundled THEMIS minutes."""
    frames = open_sample(chunk_minutes=2)
    model_input = auroradask.preprocess(frames, "themis-pa").values[0]
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            results = auroradask.embed(frames, auroradask.demo_model(), output=PENULTIMATE)
            results = results.compute()
            workers = {w for w in client.run(os.getpid).values()}
    assert len(workers) == 2
    probability, features = direct_run(model_input, "probability", PENULTIMATE)
    np.testing.assert_allclose(
        results["embedding"].values[0].astype(np.float32), features, rtol=2e-3, atol=2e-3
    )
    np.testing.assert_array_equal(results["label"].values[0], probability.argmax(1))


def test_embedding_layers_lists_the_candidates():
    layers = auroradask.embedding_layers(auroradask.demo_model()).set_index("name")
    assert layers.loc[PENULTIMATE, "features"] == 96
    assert not layers.loc[PENULTIMATE, "pooled"]
    assert layers.loc[FEATURE_MAP, "pooled"]
    assert layers.loc[FEATURE_MAP, "features"] == 48
    assert layers.loc[PENULTIMATE, "op"] == "Concat"
    assert "/Constant_output_0" not in layers.index  # a scalar is no embedding


def test_bad_requests_fail_before_any_data_is_read(sky):
    frames, _ = sky
    with pytest.raises(auroradask.ModelError, match="embedding_layers"):
        auroradask.embed(frames, auroradask.demo_model(), output="/no/such/tensor")
    with pytest.raises(auroradask.ArgumentError, match="dtype"):
        auroradask.embed(frames, auroradask.demo_model(), output=PENULTIMATE, dtype="int8")
    with pytest.raises(auroradask.ModelError, match="rank"):
        auroradask.embed(frames, auroradask.demo_model(), output="/Constant_output_0")


def test_an_embedding_store_is_a_results_store_with_one_more_variable(tmp_path):
    """Written, resumed and opened like results; fit_head and cluster take the store."""
    frames, truth = sky_nights(2, 6, seed=4, chunk=12)
    results = auroradask.embed(frames, auroradask.demo_model(), output=PENULTIMATE)
    computed = results.compute()
    store = tmp_path / "embeddings.zarr"
    nights = [slice(0, 24), slice(24, 48)]  # to_zarr takes consecutive slots: a night a call
    for night in nights:
        assert auroradask.to_zarr(results.isel(time=night), store).written == 24
    again = auroradask.to_zarr(results.isel(time=nights[0]), store)  # resumed: all there
    assert again.written == 0 and again.skipped == 24
    opened = auroradask.open_results(store)
    assert opened["embedding"].dtype == np.float16
    assert opened.sizes["time"] == 2 * 28800  # whole days, as for any results
    part = opened.sel(time=frames["time"].values).compute()
    np.testing.assert_array_equal(part["embedding"].values, computed["embedding"].values)
    np.testing.assert_array_equal(part["label"].values, computed["label"].values)
    assert np.isnan(opened["embedding"].isel(site=0, time=slice(0, 100)).values).all()
    for key in ("layer", "model_sha256", "pooling"):
        assert opened["embedding"].attrs[key] == computed["embedding"].attrs[key]
    np.testing.assert_array_equal(opened["feature"].values, np.arange(96))
    # the store feeds the next steps as it is
    fit = auroradask.fit_head(store, truth, path=tmp_path / "head.onnx")
    assert len(fit.frames) == len(truth) and fit.nights == 2
    clusters = auroradask.cluster(store, 4, n_components=8, nearest=2)
    written = clusters.labels.sel(time=frames["time"].values).values[0]
    assert (written >= 0).all()
    assert int((clusters.labels.values >= 0).sum()) == len(truth)  # the rest of the days: -1
