"""Progress of long operations: the bar of to_zarr, its callback, the task bar of reads."""

from __future__ import annotations

import dask
import dask.array as da
import pytest

import auroradask
from auroradask.distributed._progress import WriteBar, compute_progress
from auroradask.store import WriteSummary
from tests.support.utils import classify_sample


def test_to_zarr_shows_a_bar_of_slots_with_time_left_and_frames(tmp_path, capsys):
    auroradask.to_zarr(classify_sample(chunk_minutes=2), tmp_path / "a.zarr")
    err = capsys.readouterr().err
    assert "a.zarr: 100%" in err and "120/120 slots" in err
    assert "<00:00, 120 frames, " in err and " frames/s]" in err  # elapsed<remaining, frames


def test_progress_false_is_silent(tmp_path, capsys):
    auroradask.to_zarr(classify_sample(), tmp_path / "a.zarr", progress=False)
    assert capsys.readouterr().err == ""


def test_tqdm_disable_silences_the_bar(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    auroradask.to_zarr(classify_sample(), tmp_path / "a.zarr")
    assert "frames" not in capsys.readouterr().err


def test_a_write_with_nothing_to_do_shows_no_bar(tmp_path, capsys):
    auroradask.to_zarr(classify_sample(), tmp_path / "a.zarr", progress=False)
    summary = auroradask.to_zarr(classify_sample(), tmp_path / "a.zarr")
    assert (summary.written, summary.skipped, summary.total) == (0, 120, 120)
    assert capsys.readouterr().err == ""


def test_the_callback_sees_each_chunk_per_site(tmp_path):
    seen: list[tuple[int, dict]] = []
    frames = classify_sample(chunk_minutes=2)
    summary = auroradask.to_zarr(
        frames, tmp_path / "a.zarr", progress=lambda s: seen.append((s.done, dict(s.site_done)))
    )
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == 120 and len(set(done)) >= 2
    assert seen[-1][1] == {"gill": 120}
    assert summary.total == 120 and summary.site_total == {"gill": 120}


def test_a_resumed_write_starts_the_bar_at_what_the_store_holds(tmp_path):
    auroradask.to_zarr(classify_sample(end="2014-03-10T06:03"), tmp_path / "a.zarr", progress=False)
    firsts: list[int] = []
    summary = auroradask.to_zarr(
        classify_sample(), tmp_path / "a.zarr", progress=lambda s: firsts.append(s.done)
    )
    assert (summary.skipped, summary.written) == (60, 60)
    assert firsts[0] == 60 and firsts[-1] == 120


def test_write_bar_rate_counts_only_frames_computed_now():
    bar = WriteBar("store")
    bar(WriteSummary(skipped=60, total=100))
    assert (bar.bar.initial, bar.bar.n) == (60, 60)
    bar(WriteSummary(written=30, skipped=60, total=100))
    assert bar.bar.n == 90
    bar.close()


def test_a_bad_progress_is_an_argument_error(tmp_path):
    with pytest.raises(auroradask.ArgumentError, match="progress"):
        auroradask.to_zarr(classify_sample(), tmp_path / "a.zarr", progress="yes")


def test_compute_progress_counts_the_tasks(capsys, monkeypatch):
    monkeypatch.setattr(
        "auroradask.distributed._progress.TASK_BAR_DELAY_S", 0
    )  # show even a short one
    x = da.ones((100,), chunks=10).sum()
    with dask.config.set(scheduler="threads"), compute_progress(True, "reading"):
        assert x.compute() == 100
    err = capsys.readouterr().err
    assert "reading: 100%" in err
    with compute_progress(False, "reading"):
        x.compute()
    assert capsys.readouterr().err == ""
