"""Writing stores: round trip, layout, resume after SIGKILL and at every crash point, extension,
refusal, retries."""

from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

import auroradask
from auroradask._schema import FILE_UNREACHABLE
from auroradask.store import _write
from tests.support.utils import (
    CLASSES,
    STORE_VARIABLES,
    CrashAt,
    SimulatedCrash,
    assert_same_store,
    classify_sample,
    copy_as,
    open_sample,
    tiled_results,
    tiny_model,
    with_extras,
)

WRITER = Path(__file__).parents[1] / "support" / "store_writer.py"


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
    before = stored.sel(time=slice(None, "2014-03-10T05:59:57"))
    assert (before.label == -1).all() and (before.frame_status == -1).all()
    assert np.isnat(before.timestamp.values).all() and np.isnan(before.confidence).all()
    assert stored.attrs["model_sha256"] == in_memory.attrs["model_sha256"]
    assert json.loads(stored.attrs["preset"])["tile_grid"] == [8, 8]
    assert stored.label.attrs["flag_meanings"] == "not_classified " + " ".join(CLASSES)
    plain = xr.open_zarr(store)  # plain xarray reads it too
    np.testing.assert_array_equal(
        plain.label.sel(time=in_memory.time).values, in_memory.label.values
    )
    assert not Path(f"{store}.lock").exists()


def test_one_chunk_per_site_day_and_no_staging_left(tmp_path):
    store = tmp_path / "results.zarr"
    auroradask.to_zarr(classify_sample(chunk_minutes=1), store)  # six pieces of a minute
    stored = auroradask.open_results(store)
    for name in ("label", "confidence", "probability", "timestamp", "frame_status"):
        assert stored[name].encoding["chunks"][:2] == (1, 28_800)
        chunk_files = [p for p in (store / name / "c").rglob("*") if p.is_file()]
        assert len(chunk_files) == 1, name  # one site-day: one file per variable
    assert not any(Path(f"{store}.staging").rglob("*.npz"))


def test_rerun_skips_complete_chunks(tmp_path):
    store = tmp_path / "results.zarr"
    auroradask.to_zarr(classify_sample(), store)
    again = auroradask.to_zarr(classify_sample(chunk_minutes=2), store)
    assert again.written == 0 and again.skipped == 120


def test_whole_day_chunks_are_written_without_staging(tmp_path, in_memory, monkeypatch):
    day = in_memory.reindex(
        time=pd.date_range("2014-03-10", periods=28_800, freq="3s"),
        fill_value={"label": -1, "frame_status": 1, "keogram": 0},
    )
    staged = []
    monkeypatch.setattr(_write, "write_bytes", lambda *a: staged.append(a))
    summary = auroradask.to_zarr(day.chunk({"time": 28_800}), tmp_path / "day.zarr")
    assert staged == [] and summary.written == 28_800
    stored = auroradask.open_results(tmp_path / "day.zarr")
    np.testing.assert_array_equal(stored.label.values, day.label.values)
    assert summary.status_counts == {"ok": 120, "no_file": 28_680}


def test_transport_failures_are_retried_by_the_next_run(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    failed = in_memory.copy(deep=True)
    failed["frame_status"][0, 40:60] = FILE_UNREACHABLE
    failed["label"][0, 40:60] = -1
    first = auroradask.to_zarr(failed.chunk({"time": 20}), store)
    assert first.status_counts == {"ok": 100, "file_unreachable": 20}
    again = auroradask.to_zarr(in_memory.chunk({"time": 20}), store)
    assert again.skipped == 100 and again.written == 20
    stored = auroradask.open_results(store).sel(time=in_memory.time)
    np.testing.assert_array_equal(stored.label.values, in_memory.label.values)
    assert (stored.frame_status == 0).all()


def test_results_must_be_consecutive_slots(tmp_path, in_memory):
    gappy = in_memory.isel(time=[0, 1, 5]).chunk()
    with pytest.raises(auroradask.ArgumentError, match="^results: time must be consecutive"):
        auroradask.to_zarr(gappy, tmp_path / "x.zarr")


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
    assert (stored.sel(site="fake", time=slice("2014-03-11", None)).frame_status == -1).all()
    assert stored.imager.values.tolist() == ["themis19", "themis19"]


def test_a_different_model_is_refused_but_an_empty_store_belongs_to_no_model(tmp_path):
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

    # a run that failed before writing anything leaves a store that any model may take
    empty = tmp_path / "empty.zarr"
    broken = classify_sample(model=model)
    with dask.config.set(scheduler="synchronous"), pytest.MonkeyPatch.context() as patch:
        patch.setattr(_write, "_write_piece", _fail)
        with pytest.raises(RuntimeError, match="model failed"):
            auroradask.to_zarr(broken, empty)
    assert auroradask.to_zarr(classify_sample(), empty).written == 120
    assert auroradask.open_results(empty).attrs["model_sha256"] == (
        auroradask.load_model(auroradask.demo_model()).sha256
    )


def _fail(*args, **kwargs):
    raise RuntimeError("model failed")


def test_results_before_the_store_start_are_refused(tmp_path):
    store = tmp_path / "results.zarr"
    auroradask.to_zarr(
        classify_sample(copy_as(tmp_path, day="11"), "2014-03-11T06:00", "2014-03-11T06:01"), store
    )
    with pytest.raises(auroradask.StoreError, match="cannot be put before it"):
        auroradask.to_zarr(classify_sample(), store)


# ------------------------------------------------------------------ every crash point


@pytest.fixture(scope="module")
def crash_steps(in_memory):
    """Three writes: creation with pieces and a compaction, an extension by a day and a site,
    and a top-up of the first day that compacts into the stored day; with extra variables."""
    in_memory = with_extras(in_memory, open_sample()).compute()
    one_day = np.timedelta64(1, "D")
    next_day = in_memory.assign_coords(time=in_memory.time + one_day)
    next_day["timestamp"] = next_day.timestamp + one_day
    two_sites = xr.concat(
        [next_day, next_day.assign_coords(site=["fake"], imager=("site", ["themis99"]))], "site"
    )
    whole_day = in_memory.reindex(  # written straight into its chunks, without staging
        time=pd.date_range("2014-03-12", periods=28_800, freq="3s"),
        fill_value={"label": -1, "frame_status": 1, "keogram": 0},
    )
    whole_day["frame_status"][0, 100:200] = 0
    return [
        in_memory.isel(time=slice(0, 60)),
        two_sites,
        in_memory.isel(time=slice(40, 120)),
        whole_day,
    ]


def write_steps(store, steps, monkeypatch, crash_at=None) -> int:
    """Write the steps in order; after a simulated crash, run that step and the rest again.
    Returns the number of store writes of an uninterrupted run when ``crash_at`` is None."""
    with monkeypatch.context() as patch, dask.config.set(scheduler="synchronous"):
        crash = CrashAt(patch, crash_at)
        for i, step in enumerate(steps):
            try:
                auroradask.to_zarr(_chunked(step), store)
            except SimulatedCrash:
                crash.crash_at = None
                try:  # readers see the store as it was before the step, or no store yet
                    auroradask.open_results(store)
                except (auroradask.SourceNotFoundError, auroradask.StoreError):
                    assert i == 0
                for again in steps[i:]:
                    auroradask.to_zarr(_chunked(again), store)
                break
        return crash.count


def _chunked(step: xr.Dataset) -> xr.Dataset:
    """Pieces of a minute, or a whole site-day as one chunk when the step is a whole day."""
    whole_day = step.sizes["time"] == 28_800
    return step.chunk({"site": 1, "time": 28_800 if whole_day else 20})


@pytest.mark.slow
def test_every_crash_point_resumes_to_the_uninterrupted_store(tmp_path, crash_steps, monkeypatch):
    reference = tmp_path / "reference.zarr"
    writes = write_steps(reference, crash_steps, monkeypatch)
    assert writes > 60  # creation, pieces, compactions, extension: each step is reached
    expected = auroradask.open_results(reference).load()
    for crash_at in range(1, writes + 1):
        store = tmp_path / f"crash-{crash_at}.zarr"
        write_steps(store, crash_steps, monkeypatch, crash_at)
        assert_same_store(auroradask.open_results(store), expected)
        assert not Path(f"{store}.intent.json").exists()
        assert not any(Path(f"{store}.staging").rglob("*.npz")), crash_at
        shutil.rmtree(store)


def test_a_staged_piece_with_transport_failures_is_computed_again(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    failed = in_memory.isel(time=slice(0, 40)).copy(deep=True)
    failed["frame_status"][0, 20:30] = FILE_UNREACHABLE
    failed["label"][0, 20:30] = -1
    one_minute_pieces = dask.config.set({"auroradask.store-piece-minutes": 1})
    with (
        one_minute_pieces,
        dask.config.set(scheduler="synchronous"),
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setattr(_write, "_compact_day", _fail)  # killed after staging, before compaction
        with pytest.raises(RuntimeError, match="model failed"):
            auroradask.to_zarr(failed.chunk({"time": 20}), store)
    with one_minute_pieces:
        healthy = auroradask.to_zarr(in_memory.isel(time=slice(0, 40)).chunk({"time": 20}), store)
    assert healthy.skipped == 20 and healthy.written == 20
    stored = auroradask.open_results(store).sel(time=in_memory.time[:40])
    assert (stored.frame_status == 0).all()
    np.testing.assert_array_equal(stored.label.values, in_memory.label.values[:, :40])


def test_other_class_names_are_refused(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    auroradask.to_zarr(in_memory.chunk({"time": 20}), store)
    renamed = in_memory.assign_coords({"class": ["a", "b", "c", "d"]})
    with pytest.raises(auroradask.StoreError, match="has classes"):
        auroradask.to_zarr(renamed.chunk({"time": 20}), store)
    # a store that holds nothing yet is made again for them
    empty = tmp_path / "empty.zarr"
    with dask.config.set(scheduler="synchronous"), pytest.MonkeyPatch.context() as patch:
        patch.setattr(_write, "_write_piece", _fail)
        with pytest.raises(RuntimeError):
            auroradask.to_zarr(in_memory.chunk({"time": 20}), empty)
    assert auroradask.to_zarr(renamed.chunk({"time": 20}), empty).written == 120
    assert auroradask.open_results(empty)["class"].values.tolist() == ["a", "b", "c", "d"]


def test_a_damaged_intent_is_refused_and_deletes_nothing(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    auroradask.to_zarr(in_memory.chunk({"time": 20}), store)
    Path(f"{store}.intent.json").write_text('{"step": "ext')
    with pytest.raises(auroradask.StoreError, match="intent.json is not readable"):
        auroradask.to_zarr(in_memory.chunk({"time": 20}), store)
    Path(f"{store}.intent.json").write_text('{"step": "create"}')
    with pytest.raises(auroradask.StoreError, match="holds results"):
        auroradask.to_zarr(in_memory.chunk({"time": 20}), store)
    stored = auroradask.open_results(store).sel(time=in_memory.time)
    np.testing.assert_array_equal(stored.label.values, in_memory.label.values)


def test_a_relative_store_path_is_the_clients_even_for_workers_elsewhere(tmp_path, monkeypatch):
    from distributed import Client, LocalCluster

    (tmp_path / "workers").mkdir()
    (tmp_path / "client").mkdir()
    monkeypatch.chdir(tmp_path / "workers")  # the workers start here ...
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster):
            monkeypatch.chdir(tmp_path / "client")  # ... the client writes from here
            summary = auroradask.to_zarr(classify_sample(end="2014-03-10T06:01"), "rel.zarr")
    assert summary.written == 20
    assert (tmp_path / "client" / "rel.zarr").is_dir()
    assert not (tmp_path / "workers" / "rel.zarr").exists()


def test_later_writes_add_their_provenance_and_keep_a_sites_field_of_view(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    first = in_memory.isel(time=slice(0, 40))
    auroradask.to_zarr(first.chunk({"time": 20}), store)
    other_site = in_memory.assign_coords(site=["fake"])
    other_site.attrs["elevation_source"] = json.dumps({"fake": "skymap fake.sav"})
    auroradask.to_zarr(other_site.chunk({"time": 20}), store)
    stored = auroradask.open_results(store)
    assert json.loads(stored.attrs["elevation_source"]) == {
        **json.loads(in_memory.attrs["elevation_source"]),
        "fake": "skymap fake.sav",
    }
    assert "extended by auroradask" in stored.attrs["history"]
    other_map = in_memory.copy()
    other_map.attrs["elevation_source"] = json.dumps({"gill": "skymap other.sav"})
    with pytest.raises(auroradask.StoreError, match="site 'gill' classified with the elevation"):
        auroradask.to_zarr(other_map.chunk({"time": 20}), store)


def test_extra_variables_are_kept_like_the_labels(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    lazy = with_extras(classify_sample(end="2014-03-10T06:03"), open_sample())
    first = auroradask.to_zarr(lazy, store)  # pieces of a minute, compacted
    assert first.written == 60
    later = with_extras(
        classify_sample(copy_as(tmp_path, day="11"), "2014-03-11T06:00", "2014-03-11T06:06"),
        open_sample(copy_as(tmp_path, day="11"), "2014-03-11T06:00", "2014-03-11T06:06"),
    )
    auroradask.to_zarr(later, store)  # an extension by a day grows them too
    again = auroradask.to_zarr(lazy, store)
    assert again.skipped == 60 and again.written == 0

    stored = auroradask.open_results(store)
    assert stored.sizes["time"] == 2 * 28_800
    frames = open_sample().images.values
    expected = with_extras(in_memory, open_sample()).compute()
    day_one = stored.sel(time=in_memory.time[:60])
    assert day_one.keogram.dtype == np.uint16 and day_one.embedding.dtype == np.float16
    np.testing.assert_array_equal(day_one.keogram.values, frames[:, :60, :, 128])
    np.testing.assert_array_equal(day_one.embedding.values, expected.embedding.values[:, :60])
    day_two = stored.sel(time=slice("2014-03-11T06:00", "2014-03-11T06:05:57"))
    np.testing.assert_array_equal(day_two.keogram.values, frames[:, :, :, 128])
    unwritten = stored.sel(time=in_memory.time[60:])
    assert (unwritten.keogram == 0).all() and unwritten.embedding.isnull().all()
    assert stored.keogram.attrs["long_name"] == "zenith column"
    np.testing.assert_array_equal(stored.keogram_row.values, np.arange(256))
    assert stored.keogram.encoding["chunks"] == (1, 28_800, 256)


def test_results_with_other_extra_variables_are_refused(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    extras = with_extras(in_memory.isel(time=slice(0, 20)), open_sample()).compute()
    auroradask.to_zarr(extras, store)
    with pytest.raises(auroradask.StoreError, match=r"\['embedding', 'keogram'\].*\[\]"):
        # results without extras (classify adds a keogram by default): a store whose
        # keogram stops would look whole
        auroradask.to_zarr(in_memory.drop_vars(["keogram", "keogram_row"]), store)
    wider = extras.assign(embedding=extras.embedding.astype(np.float32))
    with pytest.raises(auroradask.StoreError, match="'embedding' as float16"):
        auroradask.to_zarr(wider, store)
    stored = auroradask.open_results(store)
    assert (stored.frame_status.sel(time=in_memory.time[20:]) == -1).all()  # nothing written


def test_an_empty_store_is_made_again_for_other_extra_variables(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    with dask.config.set(scheduler="synchronous"), pytest.MonkeyPatch.context() as patch:
        patch.setattr(_write, "_write", _fail)  # created, nothing written
        with pytest.raises(RuntimeError, match="model failed"):
            auroradask.to_zarr(in_memory, store)
    extras = with_extras(in_memory, open_sample()).compute()
    auroradask.to_zarr(extras, store)
    stored = auroradask.open_results(store).sel(time=in_memory.time)
    np.testing.assert_array_equal(stored.keogram.values, extras.keogram.values)


def test_a_write_of_many_site_days_in_several_batches_puts_every_slot_in_place(tmp_path, in_memory):
    """3 sites x 5 UT days (two of them partial) in one call: 15 compactions, run 4 at a time
    (the local scheduler's batch is 2 per thread), in chunks of 7,000 slots that the writer
    cuts at each midnight; every slot of every site-day is read back and compared."""
    sites = ["gill", "fsmi", "rank"]
    results = tiled_results(in_memory, sites, "2014-03-10T20:00", 96_000)  # to 03-14T04:00
    with dask.config.set(scheduler="threads", num_workers=2):
        summary = auroradask.to_zarr(results.chunk({"site": 1, "time": 7_000}), tmp_path / "s")
        assert summary.days_compacted == 15 > 2 * 2  # more site-days than one batch
        assert summary.written == 3 * 96_000 and summary.skipped == 0
        stored = auroradask.open_results(tmp_path / "s")
        assert stored.sizes["time"] == 5 * 28_800
        assert stored.site.values.tolist() == sites
        written = stored.sel(time=results.time)
        for name in STORE_VARIABLES:
            np.testing.assert_array_equal(written[name].values, results[name].values, name)
        outside = stored.drop_sel(time=results.time)
        assert (outside.frame_status == -1).all() and (outside.label == -1).all()
        again = auroradask.to_zarr(results.chunk({"site": 1, "time": 9_000}), tmp_path / "s")
        assert again.written == 0 and again.skipped == 3 * 96_000


# ------------------------------------------------------------- what a store may remove


def _users_folder(folder: Path) -> dict[str, str]:
    """A folder of a user's files, as they might name a store after it; returns its files."""
    files = {"notes.txt": "field notes", "sub/data.csv": "1,2\n", "zarr.json": "{}"}
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return files


@pytest.mark.parametrize(
    "intent",
    ['{"step": "create"}', '{"step": "create", "token": "0123456789abcdef"}'],
    ids=["intent-of-an-older-release", "intent-of-another-creation"],
)
def test_a_users_folder_beside_a_stray_creation_intent_is_never_removed(
    tmp_path, in_memory, intent
):
    folder = tmp_path / "mine"
    files = _users_folder(folder)
    Path(f"{folder}.intent.json").write_text(intent)
    with pytest.raises(auroradask.StoreError, match="^store: .*nothing was removed") as error:
        auroradask.to_zarr(in_memory.chunk({"time": 20}), folder)
    assert len(str(error.value).splitlines()) == 1 and str(folder) in str(error.value)
    assert {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} == set(files)
    assert all((folder / name).read_text() == text for name, text in files.items())
    assert Path(f"{folder}.intent.json").read_text() == intent  # left for the user to judge


def test_classify_out_a_users_folder_beside_a_stray_intent_keeps_it(tmp_path, capsys):
    from auroradask.cli.main import main

    folder = tmp_path / "mine"
    files = _users_folder(folder)
    Path(f"{folder}.intent.json").write_text('{"step": "create"}')
    code = main(
        ["classify", "--out", str(folder), "--workers", "1", "--dashboard-address", "127.0.0.1:0"]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("auroradask: store: ") and "nothing was removed" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} == set(files)


def _store_id(store: Path) -> str | None:
    return json.loads((store / "zarr.json").read_text())["attributes"].get("auroradask_store_id")


def test_a_killed_creation_is_removed_by_its_identity_and_an_empty_folder_is_kept(
    tmp_path, in_memory, monkeypatch
):
    store = tmp_path / "results.zarr"
    with monkeypatch.context() as patch, dask.config.set(scheduler="synchronous"):
        CrashAt(patch, 5)  # intent, the group with its identity, some metadata: then killed
        with pytest.raises(SimulatedCrash):
            auroradask.to_zarr(in_memory.chunk({"time": 20}), store)
    token = json.loads(Path(f"{store}.intent.json").read_text())["token"]
    assert _store_id(store) == token and len(list(store.rglob("zarr.json"))) > 1
    auroradask.to_zarr(in_memory.chunk({"time": 20}), store)  # removed, made again
    assert _store_id(store) not in (token, None)
    assert auroradask.open_results(store).attrs["auroradask_store_id"] == _store_id(store)
    stored = auroradask.open_results(store).sel(time=in_memory.time)
    np.testing.assert_array_equal(stored.label.values, in_memory.label.values)
    # an empty folder (made by the user for the store) beside a stray intent is kept and used
    empty = tmp_path / "empty.zarr"
    empty.mkdir()
    Path(f"{empty}.intent.json").write_text('{"step": "create", "token": "feedc0ffee"}')
    assert auroradask.to_zarr(in_memory.chunk({"time": 20}), empty).written == 120
    assert not Path(f"{empty}.intent.json").exists()


# ------------------------------------------------ every crash point of attribute updates


def _attribute_updates(in_memory):
    """An empty store's first results, of another model than the store was made for (it
    adopts their identity), then an extension by a day and a new site whose elevation map
    the store did not know (its attributes are rewritten after the extension)."""
    other_model = in_memory.isel(time=slice(0, 20)).copy()
    other_model.attrs = {**in_memory.attrs, "model_sha256": "0" * 64}
    one_day = np.timedelta64(1, "D")
    next_day = in_memory.assign_coords(time=in_memory.time + one_day)
    next_day["timestamp"] = next_day.timestamp + one_day
    fake = next_day.assign_coords(site=["fake"], imager=("site", ["themis99"]))
    grown = xr.concat([next_day, fake], "site")
    grown.attrs["elevation_source"] = json.dumps(
        {**json.loads(in_memory.attrs["elevation_source"]), "fake": "skymap fake.sav"}
    )
    return other_model, [in_memory.isel(time=slice(0, 60)), grown]


def _empty_store(store, results) -> None:
    """A store made for ``results`` that holds none: a first run that failed after creating it."""
    with dask.config.set(scheduler="synchronous"), pytest.MonkeyPatch.context() as patch:
        patch.setattr(_write, "_write", _fail)
        with pytest.raises(RuntimeError, match="model failed"):
            auroradask.to_zarr(results.chunk({"time": 20}), store)


def _update_steps(store, steps, monkeypatch, crash_at=None, spans=None) -> None:
    """Write the steps into the empty store; after a simulated crash, open the store (a
    reader always can), then run that step and the rest again. ``spans`` collects the
    crash points inside each attribute update of an uninterrupted run."""
    with monkeypatch.context() as patch, dask.config.set(scheduler="synchronous"):
        crash = CrashAt(patch, crash_at)
        for name in ("adopt_identity", "write_attrs"):
            real = getattr(_write, name)

            def counted(*args, real=real, **kwargs):
                before = crash.count
                result = real(*args, **kwargs)
                if spans is not None:  # each write inside, and the first one after it
                    spans.extend(range(before + 1, crash.count + 2))
                return result

            patch.setattr(_write, name, counted)
        for i, step in enumerate(steps):
            try:
                auroradask.to_zarr(step.chunk({"time": 20}), store)
            except SimulatedCrash:
                crash.crash_at = None
                opened = auroradask.open_results(store)  # never "consolidated metadata not found"
                assert opened.attrs["model_sha256"] in ("0" * 64, steps[0].attrs["model_sha256"])
                for again in steps[i:]:
                    auroradask.to_zarr(again.chunk({"time": 20}), store)
                break


def test_every_crash_point_of_an_attribute_update_opens_and_resumes(
    tmp_path, in_memory, monkeypatch
):
    in_memory = in_memory.drop_vars(["keogram", "keogram_row"])
    other_model, steps = _attribute_updates(in_memory)
    reference, spans = tmp_path / "reference.zarr", []
    _empty_store(reference, other_model)
    _update_steps(reference, steps, monkeypatch, spans=spans)
    assert len(spans) >= 4  # both updates were reached: adopt_identity and write_attrs
    expected = auroradask.open_results(reference)
    assert json.loads(expected.attrs["elevation_source"])["fake"] == "skymap fake.sav"
    for crash_at in sorted(set(spans)):
        store = tmp_path / f"crash-{crash_at}.zarr"
        _empty_store(store, other_model)
        _update_steps(store, steps, monkeypatch, crash_at)
        stored = auroradask.open_results(store)
        assert_same_store(stored, expected)
        for key in ("model_sha256", "elevation_source", "preset"):
            assert stored.attrs[key] == expected.attrs[key], (crash_at, key)
        assert not Path(f"{store}.intent.json").exists()


def test_a_store_left_without_consolidated_metadata_by_an_older_release_opens_and_is_repaired(
    tmp_path, in_memory
):
    store = tmp_path / "results.zarr"
    auroradask.to_zarr(in_memory.chunk({"time": 20}), store)
    # what the earlier attributes update left when killed before its consolidation
    attrs = dict(auroradask.open_results(store).attrs)
    zarr.open_group(store, mode="r+", use_consolidated=False).attrs.put(attrs)
    assert not json.loads((store / "zarr.json").read_text()).get("consolidated_metadata")
    stored = auroradask.open_results(store).sel(time=in_memory.time)
    np.testing.assert_array_equal(stored.label.values, in_memory.label.values)
    assert auroradask.to_zarr(in_memory.chunk({"time": 20}), store).skipped == 120
    assert json.loads((store / "zarr.json").read_text())["consolidated_metadata"]


def test_a_store_in_a_group_is_extended_and_its_attributes_updated(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    first, (_, (_, grown)) = in_memory.isel(time=slice(0, 40)), _attribute_updates(in_memory)
    auroradask.to_zarr(first.chunk({"time": 20}), store, group="demo")
    summary = auroradask.to_zarr(grown.chunk({"time": 20}), store, group="demo")
    assert summary.written == 240
    stored = auroradask.open_results(store, group="demo")
    assert stored.site.values.tolist() == ["gill", "fake"] and stored.sizes["time"] == 2 * 28_800
    assert json.loads(stored.attrs["elevation_source"])["fake"] == "skymap fake.sav"
    day_two = stored.sel(time=grown.time)
    np.testing.assert_array_equal(day_two.label.values, grown.label.values)


# ------------------------------------------------------- full disks and read-only places


class _FillsUp:
    """A file on a disk that fills up while it is written: half of the first write lands,
    then ENOSPC, at once or after ``slow`` seconds (a slower disk for the other threads)."""

    def __init__(self, file, path, slow: float = 0.0) -> None:
        self.file, self.path, self.slow = file, str(path), slow

    def write(self, data) -> int:
        self.file.write(bytes(memoryview(data)[: len(data) // 2]))
        self.file.flush()
        time.sleep(self.slow)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def close(self) -> None:
        self.file.close()


def _fail_writes(monkeypatch, where: str) -> None:
    """Make the store's place fail: a full disk while staged pieces (``piece``) or Zarr's
    chunks (``chunk``) are written, or a read-only filesystem from the lock on (``lock``)."""
    import pathlib

    from auroradask.store import _layout

    if where == "chunk":
        real_path_open = pathlib.Path.open

        def path_open(self, mode="r", *args, **kwargs):
            f = real_path_open(self, mode, *args, **kwargs)
            return _FillsUp(f, self) if "w" in mode and "/label/c/" in str(self) else f

        monkeypatch.setattr(pathlib.Path, "open", path_open)
        return

    pieces = itertools.count()

    def layout_open(path, mode="r", *args, **kwargs):
        if where == "lock" and "w" in mode:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        f = open(path, mode, *args, **kwargs)
        if "w" not in mode or ".staging" not in str(path):
            return f
        # the first piece fails at once, the others later: their threads are still writing
        # when the first error reaches to_zarr, which must wait for them before it returns
        return _FillsUp(f, path, slow=0.0 if next(pieces) == 0 else 0.5)

    monkeypatch.setattr(_layout, "open", layout_open, raising=False)


@pytest.mark.parametrize(
    ("where", "says"),
    [("piece", "No space left"), ("chunk", "No space left"), ("lock", "Read-only file system")],
)
def test_a_full_disk_or_a_read_only_place_is_one_line_and_leaves_no_partial_file(
    tmp_path, in_memory, monkeypatch, where, says
):
    store = tmp_path / "results.zarr"
    with monkeypatch.context() as patch:
        _fail_writes(patch, where)
        patch.setitem(dask.config.config, "num_workers", 4)  # pieces written side by side
        with pytest.raises(auroradask.StoreError, match=f"^store: cannot write {store}: {says}"):
            try:
                auroradask.to_zarr(in_memory.chunk({"time": 20}), store, progress=False)
            except auroradask.StoreError as error:
                assert len(str(error).splitlines()) == 1 and error.__cause__ is None
                raise
    assert not list(tmp_path.rglob("*.partial")), where
    assert not Path(f"{store}.lock").exists()
    # room again: the same write resumes to the whole results
    auroradask.to_zarr(in_memory.chunk({"time": 20}), store, progress=False)
    stored = auroradask.open_results(store).sel(time=in_memory.time)
    for name in STORE_VARIABLES:
        np.testing.assert_array_equal(stored[name].values, in_memory[name].values, name)
