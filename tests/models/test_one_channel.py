"""A one-channel NCHW model (grey frames, channels first, as a PyTorch model takes them).

The graph convolves with ASYMMETRIC kernels (a vertical and a diagonal difference), so a frame
fed with rows and columns swapped gives other numbers: a symmetric kernel, or a model that only
averages, would hide that transpose, and on square frames nothing else would show it. The
expected numbers are computed here with numpy, in the frame's own (rows, cols) order.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper, save

import auroradask
from auroradask.models import _compare, _model
from tests.support.utils import open_sample

SIZE = (64, 64)  # square: a swap of rows and columns keeps the shape
PRESET = {"size": SIZE, "channels": 1}
CLASSES = ["a", "b"]
#: (out channel, in channel, kernel rows, kernel cols): 3 x 2, neither symmetric nor a
#: transpose of the other
KERNELS = np.array(
    [
        [[[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]],  # rows 2 apart: a vertical difference
        [[[0.0, -2.0], [1.0, 0.0], [0.0, 0.5]]],
    ],
    dtype=np.float32,
)


def write_model(path) -> None:
    """image (batch, 1, 64, 64) -> Conv (asymmetric kernels, no padding) -> Relu ->
    GlobalAveragePool -> Flatten: two logits."""
    nodes = [
        helper.make_node("Conv", ["image", "kernels"], ["conv"], kernel_shape=[3, 2]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "one-channel-nchw",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, *SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        initializer=[numpy_helper.from_array(KERNELS, "kernels")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))


def expected_logits(model_input: np.ndarray) -> np.ndarray:
    """The graph's logits for channels-last ``(n, rows, cols, 1)`` input, in numpy: the
    cross-correlation ONNX's Conv computes, over the frame's rows and columns as they are."""
    windows = sliding_window_view(model_input[..., 0].astype(np.float64), (3, 2), axis=(1, 2))
    conv = np.einsum("nrcij,kij->nkrc", windows, KERNELS[:, 0].astype(np.float64))
    return np.maximum(conv, 0).mean(axis=(2, 3))


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("nchw") / "one-channel.onnx"
    write_model(path)
    return path


@pytest.fixture(scope="module")
def sample_input():
    """The bundled sample's frames, preprocessed to one grey 64 x 64 channel."""
    return _compare.model_inputs(None, auroradask.get_preset("themis-pa", **PRESET))


def test_the_check_itself_tells_a_transpose(sample_input):
    """The expected numbers change when rows and columns are swapped: this file's tests
    would notice a model fed the transposed frame."""
    stripes = np.broadcast_to((np.arange(64) % 7 * 30.0)[None, :, None, None], (1, 64, 64, 1))
    assert not np.allclose(expected_logits(stripes), expected_logits(stripes.swapaxes(1, 2)))
    swapped = expected_logits(sample_input.swapaxes(1, 2))
    assert np.abs(expected_logits(sample_input) - swapped).max() > 0.1


def test_the_model_is_read_as_one_channel_nchw(model_path):
    model = auroradask.load_model(model_path, classes=CLASSES, preset=PRESET, outputs="logits")
    assert (model.layout, model.preset.channels, model.preset.size) == ("NCHW", 1, SIZE)


@pytest.mark.parametrize("fixed", [False, True])
def test_predict_feeds_rows_as_rows(model_path, sample_input, fixed):
    """Dynamic batches take numpy's transpose of the input; a fixed batch size copies it into
    a per-thread buffer instead: both must keep rows and columns."""
    model = auroradask.load_model(model_path, classes=CLASSES, preset=PRESET, outputs="logits")
    if fixed:
        model = dataclasses.replace(model, fixed_batch=True, batch_size=8)
    rng = np.random.default_rng(1)
    noise = rng.uniform(0, 255, (5, *SIZE, 1)).astype(np.float32)
    for inputs in (noise, sample_input[:13]):
        np.testing.assert_allclose(
            _model.predict(model, inputs), softmax(expected_logits(inputs)), rtol=1e-4, atol=1e-5
        )


def test_classify_and_embed_of_real_frames(model_path, sample_input):
    """The whole path, from raw frames: classify's probabilities, and embed's pooled
    feature map (the Relu output: (batch, 2, 62, 63), averaged as the graph does)."""
    frames = open_sample()
    kwargs = {"classes": CLASSES, "preset": PRESET, "outputs": "logits"}
    results = auroradask.classify(frames, model_path, **kwargs).compute()
    valid = results["frame_status"].values[0] == 0
    assert valid.sum() == len(sample_input)
    want = softmax(expected_logits(sample_input))
    np.testing.assert_allclose(results["probability"].values[0][valid], want, rtol=1e-4, atol=1e-5)
    embedded = auroradask.embed(frames, model_path, output="relu", dtype="float32", **kwargs)
    embedding = embedded["embedding"].values[0][valid]
    np.testing.assert_allclose(embedding, expected_logits(sample_input), rtol=1e-4, atol=1e-4)
