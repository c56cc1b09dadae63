"""Archives and stores on S3, against a real S3 server (moto) the tests start on 127.0.0.1:
reading, writing, resuming after a crash at any write, extension, reading back, the lock."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import dask
import fsspec
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import auroradask
from auroradask.io._archive import open_archive
from auroradask.store import StoreLock
from tests.support.servers import upload
from tests.support.utils import (
    SAMPLE_END,
    SAMPLE_START,
    CrashAt,
    SimulatedCrash,
    assert_same_store,
    classify_sample,
    copy_as,
)


def s3_fs(options, fresh=False):
    return fsspec.filesystem("s3", skip_instance_cache=fresh, **options)


@pytest.fixture
def s3_archive(s3_bucket, tmp_path):
    """The sample tree uploaded to a bucket: (``s3://bucket/stream0``, storage_options)."""
    bucket, options = s3_bucket
    upload(auroradask.sample_archive(), f"{bucket}/stream0", options)
    return f"{bucket}/stream0", options


def open_s3(url, options, tmp_path, **kwargs):
    kwargs.setdefault("sites", "gill")
    return auroradask.open_themis(
        url,
        kwargs.pop("sites"),
        kwargs.pop("start", SAMPLE_START),
        kwargs.pop("end", SAMPLE_END),
        storage_options=options,
        cache=tmp_path / "cache",
        **kwargs,
    )


def classify_s3(url, options, tmp_path, **kwargs):
    kwargs.setdefault("chunk_minutes", 1)
    return auroradask.classify(open_s3(url, options, tmp_path, **kwargs), auroradask.demo_model())


# ------------------------------------------------------------------------ reading an archive


def test_an_archive_on_s3_reads_as_the_local_one(s3_archive, tmp_path):
    url, options = s3_archive
    local = classify_sample(chunk_minutes=2)
    frames = open_s3(url, options, tmp_path, chunk_minutes=2).compute()
    expected = auroradask.open_themis(
        auroradask.sample_archive(), "gill", SAMPLE_START, SAMPLE_END, chunk_minutes=2
    ).compute()
    for name in ("images", "timestamp", "frame_status"):
        np.testing.assert_array_equal(frames[name].values, expected[name].values, err_msg=name)
    assert (frames.frame_status == 0).all()
    assert frames.imager.values.tolist() == ["themis19"]
    # the listing gave every file's size, and the cache holds one checked copy of each
    archive = open_archive(url, storage_options=options, cache=tmp_path / "cache")
    (files,) = archive.find_many(["gill"], pd.Timestamp(SAMPLE_START), pd.Timestamp(SAMPLE_END))
    assert len(files) == 6 and all(None not in f.sizes for f in files.values())
    assert len(list((tmp_path / "cache").rglob("*.pgm*"))) == 6
    results = auroradask.classify(frames.chunk({"time": 40}), auroradask.demo_model()).compute()
    np.testing.assert_array_equal(results.label.values, local.label.values)


def test_a_missing_object_is_unreachable_and_the_others_read(s3_archive, tmp_path):
    url, options = s3_archive
    frames = open_s3(url, options, tmp_path, chunk_minutes=6)
    fs = s3_fs(options)
    (gone,) = fs.glob(f"{url}/**/20140310_0603_gill_*_full.pgm*")
    fs.rm_file(gone)  # after discovery: the minute is listed but cannot be fetched
    status = frames.frame_status.values[0].reshape(6, 20)
    assert (status[3] == 4).all(), "a file that cannot be fetched is unreachable (retried)"
    assert (np.delete(status, 3, axis=0) == 0).all()


def test_parallel_discovery_finds_what_one_by_one_listing_finds(s3_bucket, tmp_path):
    bucket, options = s3_bucket
    sites = ["gill", "fsim", "atha"]
    for site in sites:
        for day in ("10", "11"):
            upload(copy_as(tmp_path / f"{site}{day}", site=site, day=day), f"{bucket}/s0", options)
    start, end = pd.Timestamp("2014-03-10T05:30"), pd.Timestamp("2014-03-11T07:00")
    together = open_archive(f"{bucket}/s0", storage_options=options, cache=False)
    one_by_one = open_archive(f"{bucket}/s0", storage_options=options, cache=False)
    found = together.find_many(sites, start, end)
    assert found == [one_by_one.find_minute_files(s, start, end) for s in sites]
    assert [len(f) for f in found] == [12, 12, 12]


# ------------------------------------------------------------------------ writing a store


def test_a_store_on_s3_equals_the_local_store(s3_archive, tmp_path):
    url, options = s3_archive
    bucket = url.rsplit("/", 1)[0]
    local = tmp_path / "local.zarr"
    auroradask.to_zarr(classify_sample(), local)
    summary = auroradask.to_zarr(
        classify_s3(url, options, tmp_path), f"{bucket}/results.zarr", storage_options=options
    )
    assert summary.written == 120 and summary.status_counts == {"ok": 120}
    stored = auroradask.open_results(f"{bucket}/results.zarr", storage_options=options)
    assert_same_store(stored, auroradask.open_results(local))
    fs = s3_fs(options)
    assert not fs.exists(f"{bucket}/results.zarr.lock")
    assert not fs.find(f"{bucket}/results.zarr.staging"), "pieces left after compaction"
    assert not fs.exists(f"{bucket}/results.zarr.intent.json")
    about = auroradask.describe(stored)
    assert about == {
        **auroradask.describe(auroradask.open_results(local)),
        "provenance": about["provenance"],
    }
    assert about["slots_written"] == 120 and about["first"] == "2014-03-10 06:00:00"
    again = auroradask.to_zarr(
        classify_s3(url, options, tmp_path), f"{bucket}/results.zarr", storage_options=options
    )
    assert again.written == 0 and again.skipped == 120


@pytest.mark.slow
def test_extension_by_a_day_and_a_site_on_s3(s3_bucket, tmp_path):
    bucket, options = s3_bucket
    local = tmp_path / "local.zarr"
    trees = {
        "gill10": auroradask.sample_archive(),
        "gill11": copy_as(tmp_path, day="11"),
        "fake10": copy_as(tmp_path, site="fake"),
    }
    for tree in trees.values():
        upload(tree, f"{bucket}/stream0", options)
    store = f"{bucket}/results.zarr"
    steps = [
        ("gill", "2014-03-10T06:00", "2014-03-10T06:03"),
        ("gill", "2014-03-11T06:00", "2014-03-11T06:06"),  # a day
        (["gill", "fake"], "2014-03-10T06:00", "2014-03-10T06:06"),  # a site
    ]
    for sites, start, end in steps:
        remote = classify_s3(
            f"{bucket}/stream0", options, tmp_path, sites=sites, start=start, end=end
        )
        auroradask.to_zarr(remote, store, storage_options=options)
        mixed = tmp_path / "mixed"
        for tree in trees.values():  # the same files on a local disk, for the local store
            shutil.copytree(tree, mixed, dirs_exist_ok=True)
        auroradask.to_zarr(classify_sample(mixed, start, end, sites=sites), local)
        # readers see the store whole after every step
        assert_same_store(
            auroradask.open_results(store, storage_options=options), auroradask.open_results(local)
        )
    stored = auroradask.open_results(store, storage_options=options)
    assert stored.site.values.tolist() == ["gill", "fake"]
    assert stored.sizes["time"] == 2 * 28_800
    assert auroradask.describe(stored)["slots_written"] == 120 + 120 + 120


# ------------------------------------------------------------------------ every crash point


@pytest.fixture(scope="module")
def crash_steps():
    """Creation with pieces and a compaction, an extension by a day and a site, and a top-up
    of the first day that compacts into the stored day (as in test_store_write)."""
    in_memory = classify_sample().compute()
    one_day = np.timedelta64(1, "D")
    next_day = in_memory.assign_coords(time=in_memory.time + one_day)
    next_day["timestamp"] = next_day.timestamp + one_day
    two_sites = xr.concat(
        [next_day, next_day.assign_coords(site=["fake"], imager=("site", ["themis99"]))], "site"
    )
    return [in_memory.isel(time=slice(0, 60)), two_sites, in_memory.isel(time=slice(40, 120))]


def write_steps(store, options, steps, monkeypatch, crash_at=None) -> int:
    """Write the steps in order; after a simulated crash, run that step and the rest again."""
    with monkeypatch.context() as patch, dask.config.set(scheduler="synchronous"):
        import s3fs
        import zarr

        crash = CrashAt(patch, crash_at, zarr.storage.FsspecStore, s3fs.S3FileSystem)
        for i, step in enumerate(steps):
            try:
                auroradask.to_zarr(
                    step.chunk({"site": 1, "time": 20}), store, storage_options=options
                )
            except SimulatedCrash:
                crash.crash_at = None
                try:  # readers see the store as it was before the step, or no store yet
                    auroradask.open_results(store, storage_options=options)
                except (auroradask.SourceNotFoundError, auroradask.StoreError):
                    assert i == 0
                for again in steps[i:]:
                    auroradask.to_zarr(
                        again.chunk({"site": 1, "time": 20}), store, storage_options=options
                    )
                break
        return crash.count


@pytest.mark.slow
def test_a_crash_at_any_write_resumes_to_the_uninterrupted_store_on_s3(
    s3_bucket, crash_steps, monkeypatch
):
    bucket, options = s3_bucket
    writes = write_steps(f"{bucket}/reference.zarr", options, crash_steps, monkeypatch)
    assert writes > 60
    expected = auroradask.open_results(f"{bucket}/reference.zarr", storage_options=options).load()
    fs = s3_fs(options)
    # points spread over the creation, pieces, compactions and the extension (every
    # point is enumerated on a local disk by test_store_write; S3 requests are slower)
    crash_points = sorted({1, 2, *range(4, writes + 1, max(1, writes // 6)), writes})
    for crash_at in crash_points:
        store = f"{bucket}/crash-{crash_at}.zarr"
        write_steps(store, options, crash_steps, monkeypatch, crash_at)
        assert_same_store(auroradask.open_results(store, storage_options=options), expected)
        assert not fs.exists(f"{store}.intent.json"), crash_at
        assert not fs.exists(f"{store}.lock"), crash_at
        assert not fs.find(f"{store}.staging"), crash_at


# ------------------------------------------------------------------------ the lock


def test_the_lock_is_created_with_a_conditional_write(s3_bucket):
    bucket, options = s3_bucket
    path = f"{bucket}/store.zarr"
    first = StoreLock(s3_fs(options, fresh=True), path, stale_after=300)
    assert first.s3 and first._create()
    second = StoreLock(s3_fs(options, fresh=True), path, stale_after=300)
    assert not second._create(), "a second create must fail: If-None-Match: *"
    holder = json.loads(s3_fs(options).cat_file(f"{path}.lock"))
    assert holder["token"] == first.record["token"]
    with pytest.raises(auroradask.StoreLockedError, match="another writer holds"):
        second.acquire()


def test_a_stale_lock_is_swapped_only_if_unchanged_and_release_spares_a_new_holder(s3_bucket):
    bucket, options = s3_bucket
    path, fs = f"{bucket}/store.zarr", s3_fs(options)
    old = StoreLock(s3_fs(options, fresh=True), path, stale_after=300)
    old.acquire()
    old._stop.set()  # the old writer hangs: its lock goes stale
    stale = {**old.record, "host": "elsewhere", "heartbeat": 0}
    fs.pipe_file(f"{path}.lock", json.dumps(stale).encode())
    judged = StoreLock(s3_fs(options, fresh=True), path, stale_after=300)
    seen = judged._read()
    fs.pipe_file(f"{path}.lock", json.dumps({**stale, "token": "beat"}).encode())  # changed
    assert not judged._take_over(seen), "a lock that changed since it was judged is kept"
    assert json.loads(fs.cat_file(f"{path}.lock"))["token"] == "beat"
    new = StoreLock(s3_fs(options, fresh=True), path, stale_after=300)
    new.acquire()  # takes the stale lock over in one conditional overwrite
    assert json.loads(fs.cat_file(f"{path}.lock"))["token"] == new.record["token"]
    old.release()  # the old writer wakes up and leaves: it must not remove the new lock
    assert json.loads(fs.cat_file(f"{path}.lock"))["token"] == new.record["token"]
    old._stop.clear()
    assert old._beat_once() is False, "a taken-over writer's heartbeat must not write"
    assert json.loads(fs.cat_file(f"{path}.lock"))["token"] == new.record["token"]
    new.release()
    assert not fs.exists(f"{path}.lock")


def _contend(options, path, barrier, wins, errors):
    lock = StoreLock(s3_fs(options, fresh=True), path, stale_after=300)
    barrier.wait()
    try:
        lock.acquire()
    except auroradask.StoreLockedError:
        return
    except BaseException as error:  # noqa: BLE001 - reported by the test
        errors.append(error)
        return
    wins.append(lock.record["token"])
    lock._stop.set()  # leave the lock: the other contender finds it held


@pytest.mark.slow
@pytest.mark.parametrize("start", ["fresh", "stale"])
def test_two_writers_racing_for_the_lock_on_s3_exactly_one_wins(s3_bucket, start):
    bucket, options = s3_bucket
    fs = s3_fs(options)
    for trial in range(25):
        path = f"{bucket}/store-{trial}.zarr"
        if start == "stale":  # a dead writer's lock, an hour old
            fs.pipe_file(
                f"{path}.lock",
                json.dumps(
                    {"host": "elsewhere", "pid": 1, "token": "old", "heartbeat": 0}
                ).encode(),
            )
        barrier, wins, errors = threading.Barrier(2), [], []
        racers = [
            threading.Thread(target=_contend, args=(options, path, barrier, wins, errors))
            for _ in range(2)
        ]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=60)
        assert not errors, errors
        assert len(wins) == 1, f"trial {trial}: {len(wins)} writers took the lock"
        assert json.loads(fs.cat_file(f"{path}.lock"))["token"] == wins[0]


def test_a_second_writer_on_s3_is_refused_while_the_first_writes(s3_archive, tmp_path):
    url, options = s3_archive
    store = url.rsplit("/", 1)[0] + "/results.zarr"
    with StoreLock(s3_fs(options, fresh=True), store, stale_after=300):
        with pytest.raises(auroradask.StoreLockedError, match="another writer holds"):
            auroradask.to_zarr(classify_s3(url, options, tmp_path), store, storage_options=options)
    # released: the next writer goes ahead
    summary = auroradask.to_zarr(
        classify_s3(url, options, tmp_path), store, storage_options=options
    )
    assert summary.written == 120


def test_the_upload_helper_keeps_the_tree(s3_archive):
    url, options = s3_archive
    names = sorted(Path(p).name for p in s3_fs(options).find(url))
    assert names == sorted(p.name for p in Path(auroradask.sample_archive()).rglob("*.pgm*"))


def test_a_filesystem_without_atomic_steps_says_so_in_the_error():
    fs = fsspec.filesystem("memory")
    holder = StoreLock(fs, "/nonatomic/store.zarr", stale_after=300)
    holder.acquire()
    holder._stop.set()
    with pytest.raises(auroradask.StoreLockedError, match="not known to be atomic"):
        StoreLock(fs, "/nonatomic/store.zarr", stale_after=300).acquire()
    fs.rm("/nonatomic", recursive=True)
