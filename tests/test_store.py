"""Zarr results stores: round trip, resume after SIGKILL, extension, refusal, locking."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import SAMPLE_END, SAMPLE_START, tiny_model

import auroradask
from auroradask._store import StoreLock

VARIABLES = ["label", "confidence", "probability", "timestamp", "frame_status", "write_complete"]
WRITER = Path(__file__).parent / "store_writer.py"


def classify_sample(
    root=None, start=SAMPLE_START, end=SAMPLE_END, chunks=1, sites="gill", model=None
):
    root = root or auroradask.sample_archive()
    frames = auroradask.open_themis(root, sites, start, end, chunks=chunks)
    return auroradask.classify(frames, model or auroradask.demo_model())


@pytest.fixture(scope="module")
def in_memory():
    return classify_sample().compute()


def assert_same_store(a: xr.Dataset, b: xr.Dataset) -> None:
    assert a.sizes == b.sizes
    for name in ("site", "time", "class"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    for name in VARIABLES:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_store_reads_back_equal_to_the_in_memory_results(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    summary = auroradask.to_zarr(classify_sample(), store)
    assert summary.written == 120 and summary.skipped == 0
    assert summary.status_counts == {"ok": 120}
    assert sum(summary.label_counts.values()) == 120
    stored = auroradask.open_results(store)
    assert stored.sizes["time"] == 28_800  # the store's time axis covers whole UT days
    sample = stored.sel(time=in_memory.time)
    for name in ("label", "confidence", "probability", "timestamp", "frame_status"):
        assert sample[name].dtype == in_memory[name].dtype
        np.testing.assert_array_equal(sample[name].values, in_memory[name].values, err_msg=name)
    assert (sample.write_complete == 1).all()
    before = stored.sel(time=slice(None, "2014-03-10T05:59:57"))
    assert (before.label == -1).all() and (before.frame_status == -1).all()
    assert np.isnat(before.timestamp.values).all() and (before.write_complete == 0).all()
    assert stored.attrs["model_sha256"] == in_memory.attrs["model_sha256"]
    assert json.loads(stored.attrs["preset"])["tile_grid"] == [8, 8]
    assert stored.label.attrs["flag_meanings"] == "bad_viewing no_aurora other_aurora pulsating"
    plain = xr.open_zarr(store)  # plain xarray reads it too
    np.testing.assert_array_equal(
        plain.label.sel(time=in_memory.time).values, in_memory.label.values
    )
    assert not Path(f"{store}.lock").exists()


def test_rerun_skips_complete_chunks(tmp_path):
    store = tmp_path / "results.zarr"
    auroradask.to_zarr(classify_sample(), store)
    again = auroradask.to_zarr(classify_sample(chunks=2), store)
    assert again.written == 0 and again.skipped == 120


def run_writer(store, env, stop_after=None, delay=None):
    process = subprocess.Popen(
        [sys.executable, str(WRITER), str(store)], stdout=subprocess.PIPE, text=True, env=env
    )
    if stop_after is None and delay is None:
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0 and out.strip().endswith("done")
        return
    for line in process.stdout:
        if line.startswith(stop_after or "start"):
            if delay:
                time.sleep(delay)
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop_after", "delay"), [("start", None), ("start", 1.5), ("chunk", None)]
)
def test_a_killed_writer_rerun_gives_the_uninterrupted_store(tmp_path, stop_after, delay):
    env = {**os.environ, "PYTHONPATH": str(Path(auroradask.__file__).parent.parent)}
    reference = tmp_path / "reference.zarr"
    auroradask.to_zarr(classify_sample(), reference)
    store = tmp_path / "killed.zarr"
    run_writer(store, env, stop_after=stop_after, delay=delay)
    run_writer(store, env)  # the stale lock of the killed writer does not block the rerun
    assert_same_store(auroradask.open_results(store), auroradask.open_results(reference))
    times = auroradask.open_results(store).time.values
    assert len(np.unique(times)) == len(times)


def copy_as(tmp_path: Path, site: str = "gill", day: str = "10") -> Path:
    """A copy of the sample tree as another site and/or day, names and headers rewritten."""
    root = tmp_path / f"stream0-{site}-{day}"
    source = Path(auroradask.sample_archive())
    for path in source.rglob("*.pgm*"):
        relative = str(path.relative_to(source)).replace("gill", site).replace("/10/", f"/{day}/")
        target = root / relative.replace("20140310", f"201403{day}")
        target.parent.mkdir(parents=True, exist_ok=True)
        raw = path.read_bytes()
        data = gzip.decompress(raw) if path.suffix == ".gz" else raw
        data = data.replace(b'"Site unique ID" gill', f'"Site unique ID" {site}'.encode())
        data = data.replace(b"2014-03-10 ", f"2014-03-{day} ".encode())
        target.write_bytes(gzip.compress(data, compresslevel=1) if path.suffix == ".gz" else data)
    return root


def test_extension_by_time_and_by_site(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    auroradask.to_zarr(classify_sample(end="2014-03-10T06:03"), store)
    later = auroradask.to_zarr(classify_sample(start="2014-03-10T06:02"), store)
    assert later.written == 60 and later.skipped == 20
    next_day = copy_as(tmp_path, day="11")
    auroradask.to_zarr(classify_sample(next_day, "2014-03-11T06:00", "2014-03-11T06:06"), store)
    fake = copy_as(tmp_path, site="fake")
    both = fake / "2014"
    shutil.copytree(Path(auroradask.sample_archive()) / "2014", both, dirs_exist_ok=True)
    grown = auroradask.to_zarr(classify_sample(fake, sites=["gill", "fake"]), store)
    assert grown.written == 120 and grown.skipped == 120

    stored = auroradask.open_results(store)
    assert stored.site.values.tolist() == ["gill", "fake"]
    assert stored.sizes["time"] == 2 * 28_800
    for site in ("gill", "fake"):
        got = stored.sel(site=site, time=in_memory.time)
        np.testing.assert_array_equal(got.label.values, in_memory.label.values[0])
        np.testing.assert_array_equal(got.probability.values, in_memory.probability.values[0])
    day_two = stored.sel(site="gill", time=slice("2014-03-11T06:00", "2014-03-11T06:05:57"))
    np.testing.assert_array_equal(day_two.label.values, in_memory.label.values[0])
    assert (stored.sel(site="fake", time=slice("2014-03-11", None)).write_complete == 0).all()
    assert stored.imager.values.tolist() == ["themis19", "themis19"]


def test_a_different_model_is_refused(tmp_path):
    store = tmp_path / "results.zarr"
    auroradask.to_zarr(classify_sample(), store)
    other = tmp_path / "other.onnx"
    tiny_model(other, logits=False)
    model = auroradask.load_model(
        other, classes=["bad_viewing", "no_aurora", "other_aurora", "pulsating"], preset="themis-pa"
    )
    with pytest.raises(auroradask.StoreError, match="another model"):
        auroradask.to_zarr(classify_sample(model=model), store)
    frames = auroradask.open_themis(auroradask.sample_archive(), "gill", SAMPLE_START, SAMPLE_END)
    other_preset = auroradask.classify(
        frames, auroradask.load_model(auroradask.demo_model(), preset={"clip_limit": 2.0})
    )
    with pytest.raises(auroradask.StoreError, match="another preset"):
        auroradask.to_zarr(other_preset, store)


def test_results_before_the_store_start_are_refused(tmp_path):
    store = tmp_path / "results.zarr"
    auroradask.to_zarr(
        classify_sample(copy_as(tmp_path, day="11"), "2014-03-11T06:00", "2014-03-11T06:01"), store
    )
    with pytest.raises(auroradask.StoreError, match="cannot be put before it"):
        auroradask.to_zarr(classify_sample(), store)


def test_a_second_writer_is_refused_and_a_dead_ones_lock_is_stale(tmp_path):
    import fsspec

    store = tmp_path / "results.zarr"
    fs = fsspec.filesystem("file")
    with StoreLock(fs, str(store), stale_after=300):
        with pytest.raises(auroradask.StoreLockedError, match="another writer holds"):
            auroradask.to_zarr(classify_sample(), store)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    lock = {
        "host": os.uname().nodename,
        "pid": int(dead.stdout),
        "token": "x",
        "heartbeat": time.time(),
    }
    Path(f"{store}.lock").write_text(json.dumps(lock))
    assert auroradask.to_zarr(classify_sample(), store).written == 120
    old = {**lock, "host": "elsewhere", "heartbeat": time.time() - 3600}
    Path(f"{store}.lock").write_text(json.dumps(old))
    assert auroradask.to_zarr(classify_sample(), store).skipped == 120


def test_open_results_names_a_missing_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="^store: no results store"):
        auroradask.open_results(tmp_path / "nothing.zarr")
