"""Finding minute files in a stream0 tree: modes, compressed pairs, HTTP, listing cost."""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import http.server
import logging
import shutil
import threading
from pathlib import Path

import aiohttp
import fsspec
import numpy as np
import pytest

import auroradask
from auroradask._schema import FILE_UNREACHABLE, NO_FILE, OK
from auroradask.io._archive import default_cache_dir
from tests.support.utils import HOUR_DIR, open_sample


def test_wide_files_are_ignored_and_a_pgm_gz_pair_is_read_once(sample_copy, reference):
    images, _ = reference
    hour = sample_copy / HOUR_DIR
    (hour / "20140310_0606_gill_themis19_wide.pgm.gz").write_bytes(b"wide mode frames")
    (hour / "20140310_0606_gill_themis19_partial.pgm").write_bytes(b"other mode")
    plain = hour / "20140310_0605_gill_themis19_full.pgm"
    (hour / (plain.name + ".gz")).write_bytes(gzip.compress(plain.read_bytes()))
    frames = open_sample(sample_copy, end="2014-03-10T06:07").compute()
    status = frames.frame_status.values[0]
    assert (status[:120] == OK).all() and (status[120:] == NO_FILE).all()
    np.testing.assert_array_equal(frames.images.values[0][:120], images)

    # when the preferred form of a pair is damaged, the other one is read
    plain.write_bytes(b"P5\ngarbage")
    again = open_sample(sample_copy).compute()
    assert (again.frame_status.values[0] == OK).all()
    np.testing.assert_array_equal(again.images.values[0], images)


def test_http_archive_gives_the_same_arrays_and_caches(http_archive, tmp_path):
    url, requests = http_archive
    local = open_sample().compute()
    remote = open_sample(url, cache=tmp_path / "cache")
    listed = len(requests)
    assert not any(r.endswith((".pgm", ".gz")) for r in requests), "opening read a file"
    first = remote.compute()
    downloaded = len(requests) - listed
    assert downloaded >= 6
    second = remote.compute()
    assert len(requests) == listed + downloaded, "a second compute made new requests"
    for result in (first, second):
        np.testing.assert_array_equal(result.images.values, local.images.values)
        np.testing.assert_array_equal(result.timestamp.values, local.timestamp.values)
        np.testing.assert_array_equal(result.frame_status.values, local.frame_status.values)
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*.pgm*"))
    assert len(cached) == 6


def test_opening_ten_sites_two_nights_reads_no_file_and_every_minute_is_read(monkeypatch, tmp_path):
    fs = fsspec.filesystem("memory")
    root = "/big-stream0"
    sites = [f"s{i:03d}" for i in range(10)]
    for day in ("10", "11"):
        for site in sites:
            for hour in range(14):  # 00-14 UT: a night over North America
                folder = f"{root}/2014/03/{day}/{site}_themis{site[1:]}/ut{hour:02d}"
                for minute in range(60):
                    name = f"201403{day}_{hour:02d}{minute:02d}_{site}_themis{site[1:]}_full.pgm.gz"
                    fs.store[f"{folder}/{name}"] = fsspec.implementations.memory.MemoryFile(
                        fs, f"{folder}/{name}", b""
                    )
    opened = []
    real_cat = type(fs).cat_file
    try:
        monkeypatch.setattr(
            type(fs), "cat_file", lambda self, path, *a, **k: opened.append(path) or b""
        )
        monkeypatch.setattr(type(fs), "_open", lambda self, path, *a, **k: opened.append(path))
        frames = auroradask.open_themis(
            f"memory://{root}", sites, "2014-03-10", "2014-03-11", cache=tmp_path / "cache"
        )
        assert opened == []
        assert frames.sizes["site"] == 10 and frames.sizes["time"] == 2 * 28800
        assert frames.imager.values.tolist() == [f"themis{s[1:]}" for s in sites]
        # every listed minute is read by its chunk: one site's night, file by file
        status = frames.frame_status.sel(
            site="s003", time=slice("2014-03-11T13", "2014-03-11T14:30")
        )
        values = status.values  # empty files: unreadable (2) where a file is, 1 where none
        assert (values[: 60 * 20] == 2).all() and (values[60 * 20 :] == 1).all()
        assert sorted(p.rsplit("/", 1)[1][:13] for p in opened) == [
            f"20140311_13{m:02d}" for m in range(60)
        ]
    finally:
        monkeypatch.setattr(type(fs), "cat_file", real_cat)
        for key in [k for k in fs.store if k.startswith(root)]:
            del fs.store[key]


def test_default_cache_folder_is_per_user_and_per_source(monkeypatch, tmp_path):
    monkeypatch.delenv("AURORADASK_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = default_cache_dir("https://data.example.org/THEMIS/asi/stream0/")
    assert folder == str(tmp_path / "xdg" / "auroradask" / "data.example.org/THEMIS/asi/stream0")
    monkeypatch.setenv("AURORADASK_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir("s3://bucket/../stream0").startswith(str(tmp_path / "mine"))
    assert ".." not in default_cache_dir("s3://bucket/../stream0")


# --- transport failures are status 4 and never cached (issue 13) ------------------------


class _FaultyHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; ``faults`` maps a file name to how it fails on GET (HEAD is honest,
    as a server's metadata usually is when a transfer breaks)."""

    def __init__(self, *args, faults, **kwargs):
        self.faults = faults
        super().__init__(*args, **kwargs)

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        fault = self.faults.get(name)
        if fault is None:
            return super().do_GET()
        if isinstance(fault, int):
            return self.send_error(fault)
        body = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
        short = body[: len(body) // 3]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if fault == "cut, both lengths say so":  # a server serving a cut copy as the file
            self.send_header("Content-Length", str(len(short)))
        elif fault == "cut, full length announced":
            self.send_header("Content-Length", str(len(body)))
        elif fault == "cut, short length announced":
            self.send_header("Content-Length", str(len(short)))
        elif fault == "bad checksum":
            self.send_header("Content-Length", str(len(body)))
            short = body[:-1] + bytes([body[-1] ^ 1])  # one bit flipped on the way
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(short)
        self.close_connection = True

    def do_HEAD(self):
        name = self.path.rsplit("/", 1)[-1]
        if self.faults.get(name) == "cut, both lengths say so":
            body = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) // 3))
            self.end_headers()
            return None
        if self.faults.get(name) == "bad checksum":
            body = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-MD5", base64.b64encode(hashlib.md5(body).digest()).decode())
            self.end_headers()
            return None
        return super().do_HEAD()

    def log_message(self, *args):
        pass


@pytest.fixture
def faulty_http_archive(tmp_path):
    """The sample on 127.0.0.1 with a dict of faults to set; yields (URL, faults)."""
    served = tmp_path / "www"
    shutil.copytree(Path(auroradask.sample_archive()).parent, served)
    faults: dict = {}
    handler = functools.partial(_FaultyHandler, directory=str(served), faults=faults)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/stream0", faults
    finally:
        server.shutdown()
        server.server_close()


#: Every HTTP request of these tests gives up after 20 s: a hang is a failure, not a wait.
BOUNDED = {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=20)}}

FAULTS = {
    "0601": "cut, full length announced",
    "0602": "cut, short length announced",
    "0603": 404,
    "0604": 500,
    "0605": "bad checksum",
}


def test_transport_failures_are_status_4_never_cached_and_retried(
    faulty_http_archive, tmp_path, reference, caplog
):
    url, faults = faulty_http_archive
    images, _ = reference
    for hhmm, fault in FAULTS.items():
        suffix = "" if hhmm == "0605" else ".gz"
        faults[f"20140310_{hhmm}_gill_themis19_full.pgm{suffix}"] = fault
    cache = tmp_path / "cache"
    with caplog.at_level(logging.WARNING, logger="auroradask"):
        first = open_sample(url, cache=cache, storage_options=BOUNDED).compute()
    status = first.frame_status.values[0]
    assert (status[:20] == OK).all()
    for m in range(1, 6):
        assert (status[20 * m : 20 * m + 20] == FILE_UNREACHABLE).all(), FAULTS[f"060{m}"]
    assert (first.images.values[0][20:] == 0).all()
    assert sorted(p.name for p in cache.rglob("*.pgm*")) == [
        "20140310_0600_gill_themis19_full.pgm.gz"
    ]
    assert not list(cache.rglob(".part-*"))
    for name in faults:
        assert name in caplog.text

    # the server heals: the next run reads everything, from the network, whole
    faults.clear()
    again = open_sample(url, cache=cache, storage_options=BOUNDED).compute()
    assert (again.frame_status.values[0] == OK).all()
    np.testing.assert_array_equal(again.images.values[0], images)
    assert len(list(cache.rglob("*.pgm*"))) == 6


def test_a_gzip_cut_short_with_matching_lengths_is_status_4_never_cached_and_retried(
    faulty_http_archive, tmp_path, reference
):
    """The server sends a third of the file and says that is all of it (Content-Length and
    HEAD agree): the sizes match, but the gzip stream stops before its end."""
    url, faults = faulty_http_archive
    images, _ = reference
    faults["20140310_0602_gill_themis19_full.pgm.gz"] = "cut, both lengths say so"
    cache = tmp_path / "cache"
    first = open_sample(url, cache=cache, storage_options=BOUNDED).compute()
    status = first.frame_status.values[0]
    assert (status[40:60] == FILE_UNREACHABLE).all()  # retried by the next run, not "done"
    assert (np.delete(status, np.s_[40:60]) == OK).all()
    assert not list(cache.rglob("20140310_0602_*"))
    faults.clear()
    again = open_sample(url, cache=cache, storage_options=BOUNDED).compute()
    assert (again.frame_status.values[0] == OK).all()
    np.testing.assert_array_equal(again.images.values[0], images)


def test_a_cached_copy_of_another_size_than_the_remote_file_is_fetched_again(tmp_path, reference):
    """Where the listing gives sizes (object stores, here fsspec's memory filesystem), a
    cached copy that is not the remote file's size is replaced, at no extra request."""
    images, _ = reference
    fs = fsspec.filesystem("memory")
    root = "/sized-stream0"
    sample = Path(auroradask.sample_archive())
    try:
        for path in sample.rglob("*.pgm*"):
            fs.pipe_file(f"{root}/{path.relative_to(sample)}", path.read_bytes())
        cache = tmp_path / "cache"
        name = HOUR_DIR / "20140310_0602_gill_themis19_full.pgm.gz"
        (cache / name).parent.mkdir(parents=True)
        (cache / name).write_bytes((sample / name).read_bytes()[:500_000])  # a short copy
        frames = open_sample(f"memory://{root}", cache=cache).compute()
        assert (frames.frame_status.values[0] == OK).all()
        np.testing.assert_array_equal(frames.images.values[0], images)
        assert (cache / name).read_bytes() == (sample / name).read_bytes()
    finally:
        fs.rm(root, recursive=True)


def test_a_listed_file_that_vanished_from_a_remote_archive_is_status_4(tmp_path):
    fs = fsspec.filesystem("memory")
    root = "/vanishing-stream0"
    sample = Path(auroradask.sample_archive())
    try:
        for path in sample.rglob("*.pgm*"):
            fs.pipe_file(f"{root}/{path.relative_to(sample)}", path.read_bytes())
        frames = open_sample(f"memory://{root}", cache=False)
        fs.rm(f"{root}/{HOUR_DIR}/20140310_0604_gill_themis19_full.pgm.gz")
        status = frames.frame_status.values[0]
        assert (status[80:100] == FILE_UNREACHABLE).all()
        assert (status[np.r_[0:80, 100:120]] == OK).all()
    finally:
        fs.rm(root, recursive=True)
