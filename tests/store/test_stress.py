"""The writer under stress, to find its races on purpose rather than by luck (issue 30).

Many small chunks, several UT days per site, more threads than cores, several rounds, and a
fault-injecting file system (:class:`utils.SlowDirectories`) that holds back every creation of
a staging folder so that removals overtake it: the interleavings a loaded cluster shows once
in many runs show up in most rounds here. Before the fix of issue 30, a compaction removed a
site's staging folder while a piece of another day of that site was inside ``os.makedirs``,
and the write died with ``FileNotFoundError``: this test failed in 6 of 10 rounds.
"""

from __future__ import annotations

import os

import dask
import numpy as np
import pytest

import auroradask
from tests.support.utils import STORE_VARIABLES, SlowDirectories, classify_sample, tiled_results

#: Writes, each into a new store, so that every compaction races again (env: more rounds).
ROUNDS = int(os.environ.get("AURORADASK_STRESS_ROUNDS", "10"))
#: Slots per chunk on either side of each midnight: several pieces per site-day.
PIECE = 8


@pytest.fixture(scope="module")
def sample():
    return classify_sample().compute()


def stress_results(sample, n_sites: int = 6, piece: int = PIECE):
    """``n_sites`` sites over three UT days: the last 2 minutes of the first and the first 2
    minutes of the third in pieces of ``piece`` slots, the second whole (written straight
    into its chunks). Each site's first and last days are staged and compacted at the same
    time, into and out of the same site folder."""
    edge = 40
    results = tiled_results(
        sample, [f"st{i}" for i in range(n_sites)], "2014-03-10T23:58", 28_800 + 2 * edge
    )
    small = (piece,) * (edge // piece)
    return results.chunk({"site": 1, "time": small + (28_800,) + small})


def check_every_slot(store, expected) -> None:
    stored = auroradask.open_results(store)
    assert stored.site.values.tolist() == expected.site.values.tolist()
    assert stored.sizes["time"] == 3 * 28_800
    stored = stored.sel(time=expected.time)
    for name in STORE_VARIABLES:
        np.testing.assert_array_equal(stored[name].values, expected[name].values, err_msg=name)


def test_pieces_and_compactions_of_one_site_never_pull_a_folder_from_under_each_other(
    tmp_path, sample, monkeypatch
):
    """Ten writes of 6 sites x 3 days under held folder creations: 16-21 s on 2 loaded cores
    (not marked slow, so that every run of the suite looks for the race)."""
    results = stress_results(sample)
    expected = results.compute()
    threads = 4 * (os.cpu_count() or 1)  # more threads than cores: the OS interleaves them
    faults = SlowDirectories(monkeypatch, tmp_path, within=".staging", seed=30, hold=0.1)
    with dask.config.set(scheduler="threads", num_workers=threads):
        for round_ in range(ROUNDS):
            store = tmp_path / f"round-{round_}.zarr"
            summary = auroradask.to_zarr(results, store, progress=False)
            assert summary.written == expected.sizes["site"] * expected.sizes["time"]
            assert summary.days_compacted == 3 * expected.sizes["site"]
            check_every_slot(store, expected)
            staging = tmp_path / f"round-{round_}.zarr.staging"
            assert not staging.exists() or not any(staging.rglob("*")), round_
    assert faults.held >= ROUNDS * expected.sizes["site"]  # the faults met the writer's folders
