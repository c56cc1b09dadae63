"""Finding minute files in a stream0 tree: modes, compressed pairs, HTTP, listing cost."""

from __future__ import annotations

import gzip

import fsspec
import numpy as np
from utils import HOUR_DIR, open_sample

import auroradask
from auroradask._archive import default_cache_dir
from auroradask._schema import NO_FILE, OK


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
