"""Zarr results stores: round trip, resume after SIGKILL, extension, refusal, locking."""

from __future__ import annotations

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
from utils import (
    CLASSES,
    assert_same_store,
    classify_sample,
    copy_as,
    open_sample,
    tiny_model,
)

import auroradask

WRITER = Path(__file__).parent / "store_writer.py"


@pytest.fixture(scope="module")
def in_memory():
    return classify_sample().compute()


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
    again = auroradask.to_zarr(classify_sample(chunk_minutes=2), store)
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
    model = auroradask.load_model(other, classes=CLASSES, preset="themis-pa")
    with pytest.raises(auroradask.StoreError, match="another model"):
        auroradask.to_zarr(classify_sample(model=model), store)
    other_preset = auroradask.classify(
        open_sample(), auroradask.load_model(auroradask.demo_model(), preset={"clip_limit": 2.0})
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
