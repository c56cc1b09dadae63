"""Reading stores back: a missing store is named, describe counts, first-release stores open
and upgrade, CF attributes survive the round trip."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import auroradask
from auroradask.cli.main import main
from tests.support.utils import (
    CLASSES,
    HOSTILE_SITES,
    cf_check,
    classify_sample,
    set_site_names,
)

FIRST_RELEASE = Path(__file__).parents[1] / "data" / "first-release-store.zarr"


def test_open_results_names_a_missing_store(tmp_path):
    with pytest.raises(auroradask.SourceNotFoundError, match="^store: no results store"):
        auroradask.open_results(tmp_path / "nothing.zarr")


def test_describe_counts_written_slots_only(tmp_path):
    store = tmp_path / "results.zarr"
    auroradask.to_zarr(classify_sample(end="2014-03-10T06:02"), store)
    info = auroradask.describe(auroradask.open_results(store))
    assert info["slots_written"] == 40 and info["status_counts"]["ok"] == 40
    assert sum(info["label_counts"].values()) == 40  # not diluted by 28,760 padding slots
    assert info["first"] == "2014-03-10 06:00:00" and info["last"] == "2014-03-10 06:01:57"


def test_cf_attributes_keep_their_types(tmp_path):
    store = tmp_path / "results.zarr"
    auroradask.to_zarr(classify_sample(end="2014-03-10T06:01"), store)
    stored = auroradask.open_results(store)
    assert stored.attrs["Conventions"] == "CF-1.10"
    assert stored.attrs["featureType"] == "timeSeries"
    assert "NAS5-02099" in stored.attrs["acknowledgement"] and stored.attrs["history"]
    assert stored.label.attrs["flag_values"].dtype == np.int8
    assert stored.label.attrs["flag_values"].tolist() == [-1, 0, 1, 2, 3]
    assert stored.label.attrs["flag_meanings"].split() == ["not_classified", *CLASSES]
    assert stored.frame_status.attrs["flag_values"].tolist() == [-1, 0, 1, 2, 3, 4]
    assert stored.time.attrs["standard_name"] == "time" and stored.time.attrs["axis"] == "T"
    assert stored.time.encoding["units"].startswith("seconds since 1970-01-01")
    assert stored.timestamp.encoding["units"].startswith("microseconds since")
    assert stored.site.attrs["cf_role"] == "timeseries_id"
    assert stored.latitude.attrs["standard_name"] == "latitude"


def test_a_first_release_store_opens_is_refused_for_writing_and_upgrades(tmp_path, capsys):
    store = tmp_path / "old.zarr"
    shutil.copytree(FIRST_RELEASE, store)
    old = auroradask.open_results(store).load()
    assert "write_complete" in old and old.label.encoding["chunks"][1] == 40
    assert auroradask.describe(old)["slots_written"] == 80
    with pytest.raises(auroradask.StoreError, match="auroradask upgrade"):
        auroradask.to_zarr(classify_sample(), store)

    assert main(["upgrade", str(store)]) == 0
    assert "80 slots" in capsys.readouterr().out
    new = auroradask.open_results(store)
    assert new.label.encoding["chunks"][1] == 28_800 and "write_complete" not in new
    written = old.write_complete.values == 1
    for name in ("label", "confidence", "probability", "timestamp", "frame_status"):
        np.testing.assert_array_equal(new[name].values[written], old[name].values[written])
    assert (new.frame_status.values[~written] == -1).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.zarr"]
    # and now it takes new results like any store
    # the upgraded store keeps no keogram: its continuation carries none
    continued = classify_sample().drop_vars(["keogram", "keogram_row"])
    assert auroradask.to_zarr(continued, store).written == 40


def test_an_upgrade_killed_between_its_renames_is_finished(tmp_path):
    store = tmp_path / "old.zarr"
    shutil.copytree(FIRST_RELEASE, store)
    auroradask.upgrade_store(store)
    # the state after "rename old aside" and before "rename new into place"
    shutil.copytree(FIRST_RELEASE, tmp_path / "old.zarr.layout1")
    store.rename(tmp_path / "old.zarr.upgrading")
    with pytest.raises(auroradask.StoreError, match="already in today's layout"):
        auroradask.upgrade_store(store)
    assert auroradask.open_results(store).label.encoding["chunks"][1] == 28_800
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.zarr"]


def test_an_upgrade_killed_while_writing_starts_again_and_leaves_nothing(tmp_path):
    store = tmp_path / "old.zarr"
    shutil.copytree(FIRST_RELEASE, store)
    old = auroradask.open_results(store).load()
    # what a killed upgrade leaves: a half-made new store, a stale piece of another slot
    # (laid on the new store, it would invent a label) and the new store's intent
    half = tmp_path / "old.zarr.upgrading"
    half.mkdir()
    (half / "zarr.json").write_text("{}")
    stale = tmp_path / "old.zarr.upgrading.staging" / "0" / "0"
    stale.mkdir(parents=True)
    slot = int((old.write_complete.values[0] == 0).argmax())  # a slot not written
    np.savez(
        stale / f"{slot}-1-1d.npz",
        label=np.int8([0]), confidence=np.float32([1]), probability=np.ones((1, 4), "f4"),
        timestamp=np.int64([0]), frame_status=np.int8([0]),
    )  # fmt: skip
    (tmp_path / "old.zarr.upgrading.intent.json").write_text('{"step": "create"}')
    auroradask.upgrade_store(store)
    new = auroradask.open_results(store)
    assert new.frame_status.values[0, slot] == -1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.zarr"]


def test_a_written_store_passes_the_cf_checker(tmp_path):
    store = tmp_path / "results.zarr"
    auroradask.to_zarr(classify_sample(end="2014-03-10T06:01"), store)
    stored = auroradask.open_results(store)
    assert stored.attrs["Conventions"] == "CF-1.10"
    minutes = auroradask.as_cf(stored.sel(time=slice("2014-03-10T06:00", "2014-03-10T06:05")))
    # cfchecker 4.1.0, its newest release, knows the rules up to CF-1.8 and rejects a newer
    # Conventions string outright; the rules auroradask's attributes rely on are all in 1.8,
    # so the file is checked against those
    minutes.attrs["Conventions"] = "CF-1.8"
    minutes.to_netcdf(tmp_path / "results.nc")
    messages = cf_check(tmp_path / "results.nc")
    assert messages.get("FATAL", []) == [] and messages.get("ERROR", []) == [], messages
    assert "Checking against CF Version CF-1.8" in messages["VERSION"]


@pytest.mark.parametrize("name", HOSTILE_SITES, ids=["parent", "absolute", "markup", "newline"])
def test_a_store_of_names_that_are_not_site_codes_is_refused_on_read(tmp_path, name):
    """A store is data from elsewhere: its site names become file names and page text, so a
    name that is not a site code is refused by every reader and writer, in one line naming
    the store and the name."""
    store = tmp_path / "results.zarr"
    results = classify_sample(end="2014-03-10T06:01")
    auroradask.to_zarr(results, store)
    name = name.format(tmp=tmp_path)
    set_site_names(store, [name])
    for action in (
        lambda: auroradask.open_results(store),
        lambda: auroradask.to_zarr(results, store),
        lambda: auroradask.upgrade_store(store),
    ):
        with pytest.raises(auroradask.StoreError) as error:
            action()
        message = str(error.value)
        assert len(message.splitlines()) == 1 and message.startswith(f"store: {store} holds")
        assert repr(name[:40]) in message
