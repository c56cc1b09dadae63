"""Readers while a writer runs: they see whole compactions and are told the truth (issue 30).

A writer writes a site-day's values first and its ``frame_status`` last; the tests slow the
writing of ``frame_status`` (and of the metadata, during creation) so that readers that
loop meanwhile meet every intermediate state a loaded cluster could show them.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
import zarr

import auroradask
from tests.support.utils import classify_sample, tiled_results


@pytest.fixture(scope="module")
def sample():
    return classify_sample().compute()


def _slow_writes(monkeypatch, prefix: str, seconds: float) -> None:
    """Every Zarr object whose key starts with ``prefix`` is written ``seconds`` late."""
    real = zarr.storage.LocalStore.set

    async def set_late(self, key, value, *args, **kwargs):
        if key.startswith(prefix):
            await asyncio.sleep(seconds)
        return await real(self, key, value, *args, **kwargs)

    monkeypatch.setattr(zarr.storage.LocalStore, "set", set_late)


def _read_while(writer: threading.Thread, store, check) -> list[str]:
    """Open and read ``store`` again and again while ``writer`` runs; what each read saw."""
    seen = []
    while writer.is_alive():
        try:
            seen.append(check(auroradask.open_results(store)))
        except auroradask.StoreLockedError:
            seen.append("being created")
        except auroradask.SourceNotFoundError:
            seen.append("no store yet")
        except auroradask.StoreError as error:
            seen.append(f"error: {error}")
    return seen


def _writer(results, store, errors: list) -> threading.Thread:
    def write():
        try:
            auroradask.to_zarr(results, store, progress=False)
        except BaseException as error:  # the test reports it
            errors.append(error)

    return threading.Thread(target=write, name="writer")


def test_a_reader_never_sees_values_whose_status_is_not_written_yet(tmp_path, sample, monkeypatch):
    store = tmp_path / "results.zarr"
    sites = ["gill", "fsmi", "rank"]
    first = tiled_results(sample, sites, "2014-03-10T23:57", 240)  # two days per site
    auroradask.to_zarr(first.isel(time=slice(0, 60)).chunk({"site": 1, "time": 20}), store)
    _slow_writes(monkeypatch, "frame_status/c/", 0.05)  # each day's status lands late

    def check(opened) -> str:
        span = slice(first.time.values[0], first.time.values[-1])  # what the store has of it
        part = opened.sel(time=span)[["label", "confidence", "frame_status"]].load()
        status, label = part.frame_status.values, part.label.values
        unvouched = (status == -1) & ((label != -1) | ~np.isnan(part.confidence.values))
        without_values = (status == 0) & (label == -1)
        if unvouched.any() or without_values.any():
            return f"torn: {int(unvouched.sum())} values without status, {int(without_values.sum())} statuses without values"
        return f"whole: {int((status >= 0).sum())} slots"

    errors: list = []
    writer = _writer(first.chunk({"site": 1, "time": 20}), store, errors)
    writer.start()
    seen = _read_while(writer, store, check)
    writer.join()
    assert errors == []
    torn = [s for s in seen if s.startswith("torn")]
    assert torn == [], f"{len(torn)} of {len(seen)} reads saw half a compaction: {torn[:3]}"
    assert len({s for s in seen if s.startswith("whole")}) > 1  # reads met the write midway
    final = auroradask.open_results(store).sel(time=first.time)
    np.testing.assert_array_equal(final.label.values, first.label.values)


def test_a_reader_during_creation_is_told_it_is_being_created(tmp_path, sample, monkeypatch):
    store = tmp_path / "results.zarr"
    _slow_writes(monkeypatch, "", 0.02)  # every object: a creation of a few seconds
    results = tiled_results(sample, ["gill"], "2014-03-10T06:00", 40).chunk({"time": 20})
    errors: list = []
    writer = _writer(results, store, errors)
    writer.start()
    seen = _read_while(writer, store, lambda opened: "opened")
    writer.join()
    assert errors == []
    assert not [s for s in seen if "interrupted" in s], set(seen)
    assert "being created" in seen and "opened" in seen, set(seen)
