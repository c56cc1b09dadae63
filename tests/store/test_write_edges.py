"""Writing a store at its edges: slots on either side of midnight, a request that starts on the
store's first slot, staged pieces in any order, what a killed piece writer leaves, and the
summary's counts: where a slot could go to the wrong day or be skipped with no error.
"""

from __future__ import annotations

import time
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest

import auroradask
from auroradask._schema import DAY_SLOTS, FILE_UNREACHABLE
from auroradask.errors import ArgumentError
from auroradask.store import _write
from tests.support.utils import STORE_VARIABLES, classify_sample, tiled_results


@pytest.fixture(scope="module")
def in_memory():
    return classify_sample().compute()


def _at(results, start: str):
    """``results`` moved so that their first slot is ``start``; timestamps move with them."""
    shift = np.datetime64(start, "ns") - results.time.values[0]
    out = results.assign_coords(time=results.time + shift)
    out["timestamp"] = out.timestamp + shift
    return out


def _staged_only(results, store) -> None:
    """Write ``results`` as pieces and leave them staged: a writer killed before compacting.
    (Every piece is written: the compaction that would take them in does nothing.)"""

    def no_compaction(loc, site, day, names, *pieces):
        return {"written": 0, "status_counts": {}, "label_counts": {}}

    with dask.config.set(scheduler="synchronous"), pytest.MonkeyPatch.context() as patch:
        patch.setattr(_write, "_compact_day", no_compaction)
        auroradask.to_zarr(results, store, progress=False)
    assert list(Path(f"{store}.staging").rglob("*.npz"))


def _assert_stored(store, results) -> None:
    stored = auroradask.open_results(store).sel(time=results.time)
    for name in STORE_VARIABLES:
        np.testing.assert_array_equal(stored[name].values, results[name].values, name)
    assert not Path(f"{store}.staging").exists()  # the empty folders are tidied away


def test_the_last_slot_of_a_day_and_the_first_of_the_next_go_to_their_days(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    midnight = _at(in_memory.isel(time=[0, 1]), "2014-03-10T23:59:57").chunk({"time": 1})
    _staged_only(midnight, store)  # one piece in each day
    stored = auroradask.open_results(store)
    assert stored.time.values[0] == np.datetime64("2014-03-10T00:00:00")
    assert stored.sizes["time"] == 2 * 28_800
    again = auroradask.to_zarr(midnight, store, progress=False)  # both staged pieces count
    assert again.skipped == 2 and again.written == 0 and again.days_compacted == 2
    _assert_stored(store, midnight)
    day_one = auroradask.open_results(store).frame_status.isel(time=slice(0, 28_800))
    assert (day_one.values[0, :-1] == -1).all() and day_one.values[0, -1] == 0


def test_results_may_start_on_the_stores_first_slot_but_not_one_slot_before(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    first = _at(in_memory.isel(time=slice(0, 20)), "2014-03-11T00:00:00").chunk()
    auroradask.to_zarr(first, store, progress=False)
    assert auroradask.to_zarr(first, store, progress=False).skipped == 20
    before = _at(in_memory.isel(time=slice(0, 2)), "2014-03-10T23:59:57").chunk()
    with pytest.raises(auroradask.StoreError, match="cannot be put before it"):
        auroradask.to_zarr(before, store, progress=False)
    # a day, no site: its only slot there is the first (the next day's extension)
    later = _at(in_memory.isel(time=[20, 21]), "2014-03-11T23:59:57").chunk()
    assert auroradask.to_zarr(later, store, progress=False).written == 2
    assert auroradask.open_results(store).sizes["time"] == 2 * 28_800
    _assert_stored(store, first)
    _assert_stored(store, later)


def _empty_store(store, results) -> None:
    """A store made for ``results`` that holds none: a first run that failed after creating it."""

    def fail(*args, **kwargs):
        raise RuntimeError("model failed")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_write, "_write", fail)
        with pytest.raises(RuntimeError, match="model failed"):
            auroradask.to_zarr(results.chunk(), store, progress=False)


def test_an_empty_store_of_another_model_and_preset_takes_the_identity_of_its_first_results(
    tmp_path, in_memory
):
    store = tmp_path / "results.zarr"
    other = in_memory.copy()
    other.attrs = {**in_memory.attrs, "model_sha256": "0" * 64, "preset": '{"clip_limit": 2.0}'}
    _empty_store(store, other)  # neither the model nor the preset of the results below
    assert auroradask.to_zarr(in_memory.chunk(), store, progress=False).written == 120
    stored = auroradask.open_results(store)
    assert stored.attrs["model_sha256"] == in_memory.attrs["model_sha256"]
    assert stored.attrs["preset"] == in_memory.attrs["preset"]
    _assert_stored(store, in_memory)


def test_an_empty_store_made_again_for_other_variables_starts_on_the_results_first_day(
    tmp_path, in_memory
):
    store = tmp_path / "results.zarr"
    _empty_store(store, in_memory)  # with a keogram; the results below have none
    midnight = _at(in_memory.isel(time=[0, 1]), "2014-03-10T23:59:57")
    midnight = midnight.drop_vars(["keogram", "keogram_row"]).chunk({"time": 1})
    assert auroradask.to_zarr(midnight, store, progress=False).written == 2
    stored = auroradask.open_results(store)
    assert "keogram" not in stored and stored.sizes["time"] == 2 * 28_800
    assert stored.time.values[0] == np.datetime64("2014-03-10T00:00:00")
    _assert_stored(store, midnight)


def test_results_without_a_time_slot_are_refused_naming_them(tmp_path, in_memory):
    with pytest.raises(ArgumentError, match="results: no time slots"):
        auroradask.to_zarr(in_memory.isel(time=slice(0, 0)), tmp_path / "x.zarr")
    assert not (tmp_path / "x.zarr").exists()


def test_two_slots_that_are_not_consecutive_are_refused(tmp_path, in_memory):
    with pytest.raises(auroradask.ArgumentError, match="^results: time must be consecutive"):
        auroradask.to_zarr(in_memory.isel(time=[0, 2]).chunk(), tmp_path / "x.zarr")


def test_a_done_piece_after_a_failed_one_is_skipped_and_the_failed_one_computed_again(
    tmp_path, in_memory
):
    store = tmp_path / "results.zarr"
    healthy = in_memory.isel(time=slice(0, 40))
    failed = healthy.copy(deep=True)
    failed["frame_status"][0, 0:10] = FILE_UNREACHABLE  # in the first piece, not the second
    failed["label"][0, 0:10] = -1
    with dask.config.set({"auroradask.store-piece-minutes": 1}):  # a piece per chunk
        _staged_only(failed.chunk({"time": 20}), store)
        again = auroradask.to_zarr(healthy.chunk({"time": 20}), store, progress=False)
    assert again.skipped == 20 and again.written == 20
    _assert_stored(store, healthy)


def test_a_killed_piece_writers_temporary_file_is_removed_and_foreign_files_are_left(
    tmp_path, in_memory
):
    store = tmp_path / "results.zarr"
    results = in_memory.chunk({"time": 20})
    _staged_only(results, store)
    piece = sorted(Path(f"{store}.staging").rglob("*.npz"))[0]
    data = piece.read_bytes()  # the writer's temporary name, half written when it was killed
    Path(f"{piece}.0123456789ab.partial").write_bytes(data[: len(data) // 2])
    # files whose names are not a piece's (offset-count-time, then d or r) are not pieces
    foreign = ["notes.txt", "x-20-1d.npz", "7200-x-1d.npz", "7200-20-1xd.npz", "7200-20.npz"]
    for name in foreign:
        (piece.parent / name).write_bytes(data)
    again = auroradask.to_zarr(results, store, progress=False)
    assert again.skipped == 120 and again.written == 0
    stored = auroradask.open_results(store).sel(time=in_memory.time)
    for name in STORE_VARIABLES:
        np.testing.assert_array_equal(stored[name].values, in_memory[name].values, name)
    left = sorted(p.name for p in Path(f"{store}.staging").rglob("*") if p.is_file())
    assert left == sorted(foreign)  # the temporary file is gone, no one else's file is


def test_the_summary_counts_each_site_and_the_time_taken(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    seen = []
    began = time.perf_counter()
    summary = auroradask.to_zarr(
        in_memory.chunk({"time": 20}), store, progress=lambda s: seen.append((s.done, s.total))
    )
    took = time.perf_counter() - began
    assert summary.total == 120 and summary.written == 120
    assert summary.site_total == {"gill": 120} and summary.site_done == {"gill": 120}
    assert 0 < summary.seconds <= took
    assert seen == [(0, 120), (120, 120)]  # before the first batch of site-days, after each
    _assert_stored(store, in_memory)
    seen.clear()
    again = auroradask.to_zarr(
        in_memory.chunk({"time": 20}), store, progress=lambda s: seen.append((s.done, s.total))
    )
    assert again.site_done == {"gill": 120} and again.skipped == 120
    assert seen == [(120, 120)]  # nothing to write: the progress is still told, once


def _pieces(store) -> list[tuple[int, int]]:
    """(offset, slots) of each staged piece, in time order."""
    names = [p.name.split("-") for p in Path(f"{store}.staging").rglob("*.npz")]
    return sorted((int(offset), int(n)) for offset, n, _ in names)


def test_consecutive_chunks_of_a_day_are_staged_as_one_piece_up_to_the_setting(tmp_path, in_memory):
    first = 6 * 1200  # 06:00 UT in 3-s slots
    _staged_only(in_memory.chunk({"time": 20}), tmp_path / "default.zarr")
    assert _pieces(tmp_path / "default.zarr") == [(first, 120)]  # up to 120 minutes by default
    with dask.config.set({"auroradask.store-piece-minutes": 2}):
        _staged_only(in_memory.chunk({"time": 20}), tmp_path / "two.zarr")
        auroradask.to_zarr(in_memory.chunk({"time": 20}), tmp_path / "two.zarr", progress=False)
    assert _pieces(tmp_path / "two.zarr") == []  # compacted
    _assert_stored(tmp_path / "two.zarr", in_memory)
    with dask.config.set({"auroradask.store-piece-minutes": 3}):  # never split a chunk
        _staged_only(in_memory.chunk({"time": 40}), tmp_path / "three.zarr")
    assert _pieces(tmp_path / "three.zarr") == [(first, 40), (first + 40, 40), (first + 80, 40)]


def test_chunks_are_joined_within_a_day_where_every_site_has_the_same_of_them_done():
    none_done = np.zeros((1, 80), dtype=bool)
    # the last two chunks of a day and the first two of the next
    assert _write._piece_chunks((20,) * 4, none_done, DAY_SLOTS - 40, 1200) == (40, 40)
    one_done = np.zeros((2, 120), dtype=bool)
    one_done[0, :20] = True  # the first chunk is done for the first site only
    assert _write._piece_chunks((20,) * 6, one_done, 0, 1200) == (20, 100)
    assert _write._piece_chunks((20, 20, 20), np.zeros((1, 60), bool), 0, 40) == (40, 20)
    assert _write._piece_chunks((60, 60), np.zeros((1, 120), bool), 0, 40) == (60, 60)


def test_a_chunk_done_for_the_second_site_only_is_not_joined_and_is_skipped(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    both = tiled_results(in_memory, ["gill", "kuuj"], "2014-03-10T06:00", 120)
    # the second site of the request has its first chunk done and the second one in part
    auroradask.to_zarr(
        both.sel(site=["kuuj"]).isel(time=slice(0, 30)).chunk(), store, progress=False
    )
    again = auroradask.to_zarr(both.chunk({"time": 20}), store, progress=False)
    # pieces (20, 100): the first is skipped for kuuj; a piece of the first 40 slots, or a
    # piece of all 120 (if only the first site's done chunks counted), would be computed
    assert again.site_done == {"gill": 120, "kuuj": 120}
    assert again.skipped == 20 and again.written == 220
    _assert_stored(store, both.sel(site=["kuuj", "gill"]))  # the store's order of sites


@pytest.mark.parametrize("minutes", [0, -5, "60", True, 1.5])
def test_a_store_piece_minutes_setting_that_is_no_whole_number_of_minutes_is_refused(
    tmp_path, in_memory, minutes
):
    with dask.config.set({"auroradask.store-piece-minutes": minutes}):
        with pytest.raises(ArgumentError, match="auroradask.store-piece-minutes"):
            auroradask.to_zarr(in_memory.chunk({"time": 20}), tmp_path / "x.zarr")


@pytest.mark.parametrize(
    ("minutes", "chunk"),
    [(1440, 1200), (120, DAY_SLOTS)],  # hour chunks joined into a day; results in day chunks
)
def test_a_whole_day_written_straight_in_is_not_overlaid_by_older_staged_pieces(
    tmp_path, in_memory, minutes, chunk
):
    store = tmp_path / "results.zarr"
    day = tiled_results(in_memory, ["gill"], "2014-03-10T00:00", DAY_SLOTS)
    failed = day.isel(time=slice(0, 1200)).copy(deep=True)
    failed["frame_status"][0, 100:110] = FILE_UNREACHABLE
    failed["label"][0, 100:110] = -1
    _staged_only(failed.chunk({"time": 600}), store)  # a killed run's pieces, one of them failed
    # the next run computes the day again and writes it whole, straight into its chunks:
    # the older pieces are superseded, not laid on it (their failed slots came back as 4)
    with dask.config.set({"auroradask.store-piece-minutes": minutes}):
        again = auroradask.to_zarr(day.chunk({"time": chunk}), store, progress=False)
    assert again.written == DAY_SLOTS and again.status_counts == {"ok": DAY_SLOTS}
    _assert_stored(store, day)


def test_a_day_whose_staged_pieces_cover_it_keeps_every_variable_of_each_slot(tmp_path, in_memory):
    store = tmp_path / "results.zarr"
    day = in_memory.reindex(
        time=pd.date_range("2014-03-10", periods=DAY_SLOTS, freq="3s"),
        fill_value={"label": -1, "frame_status": 1, "keogram": 0},
    )
    summary = auroradask.to_zarr(day.chunk({"time": 1200}), store, progress=False)
    assert summary.written == DAY_SLOTS  # twelve pieces of two hours, staged, then compacted
    stored = auroradask.open_results(store)
    for name in [*STORE_VARIABLES, "keogram"]:  # the keogram has a dimension of its own
        np.testing.assert_array_equal(stored[name].values, day[name].values, name)
