"""Shared fixtures: the real sample as the reference reader gives it, an editable copy of the
sample tree, a local HTTP archive. Plain helpers live in ``tests/utils.py``."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from utils import sample_files

import auroradask


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
