"""Local servers that stand in for a remote archive: a plain HTTP server and an S3 server
(moto), both on 127.0.0.1 only, optionally with a fixed delay added to every request.

A remote archive is slow mostly because of the round trip, not the bandwidth, so a local
server with, say, 20 ms added per request is what the benchmarks and tests measure against.
Shared by ``benchmarks/remote.py`` and the test suite (``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Credentials moto accepts (any); never real ones.
S3_KEY, S3_SECRET = "testing", "testing"


class Latency:
    """Seconds added to every request of a server; may be changed while it runs (uploads
    go at full speed, measurements with the delay)."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds

    def wait(self) -> None:
        if self.seconds:
            time.sleep(self.seconds)


def _latency(latency: float | Latency) -> Latency:
    return latency if isinstance(latency, Latency) else Latency(latency)


class _SlowHandler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, latency: Latency, counter: list[str] | None, **kwargs):
        self.latency, self.counter = latency, counter
        super().__init__(*args, **kwargs)

    def send_head(self):
        if self.counter is not None:
            self.counter.append(self.path)
        self.latency.wait()
        return super().send_head()

    def log_message(self, *args):
        pass


@contextmanager
def http_server(
    directory: str | Path, latency: float | Latency = 0.0, counter: list[str] | None = None
) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1; yields the base URL (no trailing slash).

    Every request waits ``latency`` seconds first; its path is appended to ``counter``.
    """
    handler = functools.partial(
        _SlowHandler, directory=str(directory), latency=_latency(latency), counter=counter
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

    def __init__(self, app, latency: Latency, serialize: bool = False) -> None:
        self.app, self.latency = app, latency
        self.lock = threading.Lock() if serialize else contextlib.nullcontext()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/__latency__":  # set by set_latency(), not S3
            self.latency.seconds = float(environ.get("QUERY_STRING") or 0)
            start_response("204 No Content", [])
            return [b""]
        self.latency.wait()
        with self.lock:
            return self.app(environ, start_response)


@contextmanager
def s3_server(latency: float | Latency = 0.0, serialize: bool = False) -> Iterator[dict[str, Any]]:
    """An S3 server (moto) on 127.0.0.1 in this process; yields s3fs ``storage_options``.

    Moto keeps its buckets in memory: they vanish when the server stops. The server is a
    threaded werkzeug server, as moto's ``ThreadedMotoServer``, with ``latency`` seconds
    added to every request.

    ``serialize`` answers one request at a time (the delay is still waited in parallel).
    moto checks a conditional write's precondition and then writes, without a lock, so two
    racing ``If-None-Match: *`` PUTs can both succeed there; AWS S3 (and MinIO, Ceph)
    decide them atomically. The tests of the lock serialize, to test auroradask's side
    against a server that is atomic, as the real ones are.
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    app: Any = _Delay(DomainDispatcherApplication(create_backend_app), _latency(latency), serialize)
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


def set_latency(endpoint: str, seconds: float) -> None:
    """Change the added latency of an S3 server started by :func:`s3_server` (any process)."""
    import urllib.request

    urllib.request.urlopen(f"{endpoint}/__latency__?{seconds}", timeout=10).close()


@contextmanager
def in_subprocess(kind: str, *args: str) -> Iterator[str]:
    """Run a server of this module in its own process (a remote server does not share the
    client's interpreter lock); yields its base URL, stops it at the end."""
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.servers", kind, *args],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"{kind} server did not start: {url!r}")
        yield url
    finally:
        process.stdin.close()  # the server stops when its stdin closes
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _serve(argv: list[str]) -> None:
    """``python -m tests.support.servers http DIR LATENCY`` or ``... s3 LATENCY``: print the base
    URL, serve until stdin closes."""
    import sys

    kind, *rest = argv
    if kind == "http":
        server = http_server(rest[0], float(rest[1]))
    else:
        server = s3_server(float(rest[0]))
    with server as handle:
        url = handle if kind == "http" else handle["endpoint_url"]
        print(url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    import sys

    _serve(sys.argv[1:])
