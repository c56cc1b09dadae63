"""Shared fixtures: the bundled real sample, editable copies of it, a local HTTP archive."""

from __future__ import annotations

import functools
import glob
import gzip
import http.server
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import auroradask

SAMPLE_START, SAMPLE_END = "2014-03-10T06:00", "2014-03-10T06:06"
HOUR_DIR = Path("2014/03/10/gill_themis19/ut06")


def sample_files(root: str | os.PathLike | None = None) -> list[str]:
    """The minute files of the sample tree, in time order."""
    root = root or auroradask.sample_archive()
    return sorted(glob.glob(os.path.join(root, "**", "*_full.pgm*"), recursive=True))


@pytest.fixture(scope="session")
def reference():
    """The sample as ``themis_imager_readfile.read`` returns it: (n, y, x) images, times."""
    import themis_imager_readfile

    images, metadata, problems = themis_imager_readfile.read(sample_files(), quiet=True)
    assert problems == []
    times = np.array(
        [
            np.datetime64(m["Image request start"].replace(" UTC", "").replace(" ", "T"), "ns")
            for m in metadata
        ]
    )
    return np.moveaxis(images, 2, 0), times


@pytest.fixture
def sample_copy(tmp_path) -> Path:
    """A writable copy of the sample stream0 tree."""
    root = tmp_path / "stream0"
    shutil.copytree(auroradask.sample_archive(), root)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def minute_bytes(root: Path, hhmm: str) -> bytes:
    """Decompressed bytes of one sample minute file."""
    (path,) = (root / HOUR_DIR).glob(f"20140310_{hhmm}_gill_themis19_full.pgm*")
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, counter, **kwargs):
        self.counter = counter
        super().__init__(*args, **kwargs)

    def send_head(self):
        self.counter.append(self.path)
        return super().send_head()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_archive(tmp_path):
    """Serve the sample tree on 127.0.0.1; yields (URL of stream0, list of request paths)."""
    served = tmp_path / "www"
    shutil.copytree(Path(auroradask.sample_archive()).parent, served)
    requests: list[str] = []
    handler = functools.partial(_CountingHandler, directory=str(served), counter=requests)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/stream0", requests
    finally:
        server.shutdown()
        server.server_close()


def tiny_model(
    path,
    *,
    size=(224, 224),
    channels=3,
    n_out=4,
    logits=True,
    layout="NHWC",
):
    """Write a small ONNX graph: mean over each channel, then a fixed linear map to ``n_out``.

    Returns the weight matrix so that a test can compute the expected outputs by hand.
    """
    from onnx import TensorProto, helper, numpy_helper, save

    shape = ["batch", *size, channels] if layout == "NHWC" else ["batch", channels, *size]
    weights = np.linspace(-0.05, 0.08, channels * n_out, dtype=np.float32).reshape(channels, n_out)
    nodes = [
        helper.make_node(
            "ReduceMean",
            ["image"],
            ["mean"],
            axes=[1, 2] if layout == "NHWC" else [2, 3],
            keepdims=0,
        ),
        helper.make_node("MatMul", ["mean", "weights"], ["logits" if not logits else "scores"]),
    ]
    if not logits:
        nodes.append(helper.make_node("Softmax", ["logits"], ["scores"], axis=1))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", n_out])],
        initializer=[numpy_helper.from_array(weights, "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))
    return weights
