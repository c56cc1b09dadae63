"""Local servers that stand in for a remote archive: a plain HTTP server and an S3 server
(moto), both on 127.0.0.1 only, optionally with a fixed delay added to every request.

A remote archive is slow mostly because of the round trip, not the bandwidth, so a local
server with, say, 20 ms added per request is what the benchmarks and tests measure against.
Shared by ``benchmarks/remote.py`` and the test suite (``tests/conftest.py``).
"""

from __future__ import annotations

import functools
import logging
import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Credentials moto accepts (any); never real ones.
S3_KEY, S3_SECRET = "testing", "testing"


class _SlowHandler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, latency: float, counter: list[str] | None, **kwargs):
        self.latency, self.counter = latency, counter
        super().__init__(*args, **kwargs)

    def send_head(self):
        if self.counter is not None:
            self.counter.append(self.path)
        if self.latency:
            time.sleep(self.latency)
        return super().send_head()

    def log_message(self, *args):
        pass


@contextmanager
def http_server(
    directory: str | Path, latency: float = 0.0, counter: list[str] | None = None
) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1; yields the base URL (no trailing slash).

    Every request waits ``latency`` seconds first; its path is appended to ``counter``.
    """
    handler = functools.partial(
        _SlowHandler, directory=str(directory), latency=latency, counter=counter
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Delay:
    """WSGI middleware: wait, then let moto answer."""

    def __init__(self, app, latency: float) -> None:
        self.app, self.latency = app, latency

    def __call__(self, environ, start_response):
        time.sleep(self.latency)
        return self.app(environ, start_response)


@contextmanager
def s3_server(latency: float = 0.0) -> Iterator[dict[str, Any]]:
    """An S3 server (moto) on 127.0.0.1 in this process; yields s3fs ``storage_options``.

    Moto keeps its buckets in memory: they vanish when the server stops. The server is a
    threaded werkzeug server, as moto's ``ThreadedMotoServer``, with ``latency`` seconds
    added to every request.
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    app: Any = DomainDispatcherApplication(create_backend_app)
    if latency:
        app = _Delay(app, latency)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield s3_options(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def s3_options(endpoint: str) -> dict[str, Any]:
    """s3fs ``storage_options`` for a local S3 server at ``endpoint``."""
    return {
        "key": S3_KEY,
        "secret": S3_SECRET,
        "anon": False,
        "endpoint_url": endpoint,
        # a fresh listing every time: another process (a killed writer) may have written
        "use_listings_cache": False,
    }


def upload(local: str | Path, url: str, storage_options: dict[str, Any]) -> None:
    """Copy a local folder tree to ``url`` (an S3 bucket and prefix), creating the bucket."""
    import fsspec

    fs, path = fsspec.url_to_fs(url, **storage_options)
    bucket = path.split("/", 1)[0]
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    files = [f for f in sorted(Path(local).rglob("*")) if f.is_file()]
    targets = [f"{path.rstrip('/')}/{f.relative_to(local).as_posix()}" for f in files]
    fs.put([str(f) for f in files], targets)  # file by file: the same keys whether or not
    # the prefix exists already (a folder put copies *into* an existing one)
