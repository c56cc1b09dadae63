"""Shared fixtures: the real sample as the reference reader gives it, an editable copy of the
sample tree, a local HTTP archive, a local S3 server. Plain helpers live in ``tests/utils.py``."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

import auroradask
from tests.support.utils import sample_files


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """The sample as UCalgary's reader (``pyucalgarysrs``) reads it: (n, y, x) images, times.

    pyucalgarysrs turns THEMIS frames upside down for display (``imshow`` with the origin at the
    top); the flip is undone here, so that the reference is the frames as stored in the file,
    as ``themis_imager_readfile.read`` (its numpy<2-only predecessor) returned them.
    """
    from pyucalgarysrs import PyUCalgarySRS

    srs = PyUCalgarySRS(download_output_root_path=str(tmp_path_factory.mktemp("pyucalgarysrs")))
    data = srs.data.readers.read_themis(sample_files(), quiet=True)
    assert data.problematic_files == []
    times = np.array(
        [
            np.datetime64(m["Image request start"].replace(" UTC", "").replace(" ", "T"), "ns")
            for m in data.metadata
        ]
    )
    return np.moveaxis(data.data[::-1], 2, 0), times


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


@pytest.fixture(scope="session")
def s3_server():
    """An S3 server (moto) on 127.0.0.1 for the whole session; yields s3fs storage_options.

    Started by the tests and stopped when they end; each test takes its own bucket
    (:func:`s3_bucket`), so that tests never see each other's objects.
    """
    from tests.support.servers import s3_server

    # one request at a time: moto's conditional writes are check-then-write, racy under
    # concurrent requests, where AWS S3's are atomic (see tests.support.servers.s3_server)
    with s3_server(serialize=True) as options:
        yield options


@pytest.fixture
def s3_bucket(s3_server):
    """A new, empty bucket on the session's S3 server: yields (``s3://bucket``, options)."""
    import fsspec

    name = f"test-{uuid.uuid4().hex[:12]}"
    fs = fsspec.filesystem("s3", **s3_server)
    fs.mkdir(name)
    yield f"s3://{name}", s3_server
