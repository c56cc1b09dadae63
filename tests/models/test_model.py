"""Model cards, validation against the graph, layouts, logits, one session per process."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import onnxruntime as ort
import pytest

import auroradask
from auroradask.models import _model
from tests.support.utils import CLASSES, open_sample, tiny_model


@pytest.fixture(scope="module")
def model_input():
    return auroradask.preprocess(open_sample(chunk_minutes=2), "themis-pa").values[0]


def test_demo_model_card_is_honest_and_small():
    model = auroradask.load_model(auroradask.demo_model())
    assert model.classes == CLASSES
    assert model.preset == auroradask.get_preset("themis-pa")
    assert "NOT TRAINED ON REAL DATA" in model.card.description
    assert os.path.getsize(auroradask.demo_model()) < 5_000_000


def test_card_from_json_sidecar(tmp_path, model_input):
    path = tmp_path / "tiny.onnx"
    expected = tiny_model(path, logits=False)
    card = {"classes": ["arc", "diffuse", "discrete", "clear"], "preset": "themis-pa"}
    (tmp_path / "tiny.json").write_text(json.dumps(card))
    results = auroradask.classify(open_sample(), path).compute()
    assert results["class"].values.tolist() == card["classes"]
    np.testing.assert_allclose(results.probability.values[0], expected(model_input), rtol=1e-4)


def test_card_in_the_onnx_file_wins_over_the_sidecar(tmp_path):
    path = tmp_path / "carded.onnx"
    tiny_model(path, logits=False)
    (tmp_path / "carded.json").write_text(json.dumps({"classes": list("abcd"), "preset": "x"}))
    auroradask.write_model_card(path, {"classes": CLASSES, "preset": "pfrr-pa"})
    model = auroradask.load_model(path)
    assert model.classes == CLASSES and model.preset.name == "pfrr-pa"


def test_logits_become_probabilities(tmp_path, model_input):
    path = tmp_path / "logits.onnx"
    expected = tiny_model(path, logits=True)
    results = auroradask.classify(
        open_sample(), path, classes=CLASSES, preset="themis-pa", outputs="logits"
    ).compute()
    probability = results.probability.values[0]
    np.testing.assert_allclose(probability.sum(axis=1), 1.0, rtol=1e-5)
    scores = expected(model_input)
    softmax = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probability, softmax, rtol=1e-4)
    # the same logits declared as probabilities are refused, not passed on
    wrong = auroradask.classify(open_sample(), path, classes=CLASSES, preset="themis-pa")
    with pytest.raises(auroradask.ModelError, match="do not sum to 1"):
        wrong.compute()


def test_nchw_model_gets_channels_first(tmp_path, model_input):
    path = tmp_path / "nchw.onnx"
    expected = tiny_model(path, logits=False, layout="NCHW")
    results = auroradask.classify(open_sample(), path, classes=CLASSES, preset="themis-pa")
    np.testing.assert_allclose(results.probability.values[0], expected(model_input), rtol=1e-4)
    assert auroradask.load_model(path, classes=CLASSES, preset="themis-pa").layout == "NCHW"


@pytest.mark.parametrize(
    ("build", "kwargs", "message"),
    [
        ({"size": (128, 128)}, {"classes": CLASSES, "preset": "themis-pa"}, "input size"),
        ({"n_out": 6}, {"classes": CLASSES, "preset": "themis-pa"}, "4 class names"),
        ({"channels": 1}, {"classes": CLASSES, "preset": "themis-pa"}, "channels"),
        ({}, {"preset": "themis-pa"}, "no class names"),
        ({}, {"classes": CLASSES}, "no preprocessing preset"),
        ({}, {"classes": CLASSES, "preset": "nope"}, "unknown preset"),
        ({}, {"classes": CLASSES, "preset": "themis-pa", "outputs": "votes"}, "outputs must"),
    ],
)
def test_mismatches_fail_clearly_before_any_data_is_read(tmp_path, build, kwargs, message):
    path = tmp_path / "model.onnx"
    tiny_model(path, **build)
    with pytest.raises(auroradask.ModelError, match=message):
        auroradask.load_model(path, **kwargs)


def test_missing_model_file_is_named():
    with pytest.raises(
        auroradask.SourceNotFoundError, match="^model: '.*no-such.onnx' does not exist"
    ):
        auroradask.load_model("no-such.onnx")


def test_threads_of_a_process_share_one_session(model_input, monkeypatch):
    import dask

    loaded = auroradask.load_model(auroradask.demo_model())
    _model._SESSIONS.pop(loaded.session_key(), None)
    created = []
    real = _model._new_session
    monkeypatch.setattr(_model, "_new_session", lambda *args: created.append(args) or real(*args))
    with dask.config.set(scheduler="threads", num_workers=3):
        results = auroradask.classify(open_sample(chunk_minutes=1), loaded).compute()
    assert len(created) == 1  # 6 chunks on 3 threads, one session
    session = ort.InferenceSession(auroradask.demo_model(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"image": model_input})[0]
    np.testing.assert_allclose(results.probability.values[0], expected, rtol=1e-5, atol=1e-6)


def test_a_one_channel_model_gets_the_preset_s_one_channel(tmp_path, model_input):
    path = tmp_path / "gray.onnx"
    expected = tiny_model(path, logits=False, channels=1)
    results = auroradask.classify(
        open_sample(), path, classes=CLASSES, preset={"name": "themis-pa", "channels": 1}
    )
    probability = results.probability.values[0]
    np.testing.assert_allclose(probability, expected(model_input[..., :1]), rtol=1e-4)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("fixed", [False, True])
def test_one_channel_is_broadcast_only_in_the_model_s_tensor(tmp_path, layout, fixed):
    path = tmp_path / "model.onnx"
    tiny_model(path, layout=layout, size=(32, 48), logits=False)
    model = auroradask.load_model(path, classes=CLASSES, preset={"size": (32, 48)})
    if fixed:
        model = dataclasses.replace(model, fixed_batch=True, batch_size=8)
    one = np.random.default_rng(0).uniform(0, 255, (5, 32, 48, 1)).astype(np.float32)
    three = np.repeat(one, 3, axis=3)
    for given in (one, three):
        tensor = _model.model_tensor(model, given)
        want = three if layout == "NHWC" else three.transpose(0, 3, 1, 2)
        assert tensor.shape == ((8 if fixed else 5), *want.shape[1:])
        assert tensor.flags.c_contiguous
        np.testing.assert_array_equal(tensor[:5], want)
        assert (tensor[5:] == 0).all()
    np.testing.assert_array_equal(_model.predict(model, one), _model.predict(model, three))
    # a chunk's last, partial mini-batch reuses the thread's buffer instead of making its own
    whole = _model.model_tensor(model, np.repeat(one, 2, axis=0)[: model.batch_size])
    part = _model.model_tensor(model, one[:3])
    assert np.shares_memory(whole, part) and part.shape[0] == (8 if fixed else 3)
    np.testing.assert_array_equal(part[:3], want[:3])


def test_batch_size_is_chosen_from_the_model_s_activations(tmp_path, monkeypatch):
    path = tmp_path / "tiny.onnx"
    tiny_model(path, logits=False)
    # the graph's only big activation: the weighted 224x224x3 float32 image of one frame
    per_frame = _model.activation_bytes_per_frame(
        str(path), "image", "NHWC", (224, 224, 3), auroradask.get_preset(), "float32"
    )
    assert 224 * 224 * 3 * 4 <= per_frame < 224 * 224 * 3 * 4 + 1000
    kwargs = {"classes": CLASSES, "preset": "themis-pa"}
    assert auroradask.load_model(path, **kwargs).batch_size == 32  # 600 kB a frame: the cap
    monkeypatch.setattr(_model, "BATCH_ACTIVATION_BYTES", 3 * per_frame + 1)
    _model._ACTIVATIONS.clear()
    assert auroradask.load_model(path, **kwargs).batch_size == 3
    assert auroradask.load_model(path, batch_size=7, **kwargs).batch_size == 7
    with pytest.raises(ValueError, match="batch_size: expected a number >= 1 or 'auto'"):
        auroradask.load_model(path, batch_size="big", **kwargs)
