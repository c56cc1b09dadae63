"""Reading stores back: a missing store is named, describe counts, first-release stores open
and upgrade, CF attributes survive the round trip."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import dask
import numpy as np
import pytest

import auroradask
from auroradask.cli.main import main
from auroradask.store._upgrade import UPGRADE_ATTR
from tests.support.utils import (
    CLASSES,
    HOSTILE_SITES,
    CrashAt,
    SimulatedCrash,
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


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_an_upgrade_killed_between_its_renames_is_finished(tmp_path, monkeypatch):
    store = tmp_path / "old.zarr"
    shutil.copytree(FIRST_RELEASE, store)
    renames, real_rename = [], os.rename

    def rename(a, b):  # killed after "rename old aside", before "rename new into place"
        renames.append((a, b))
        if len(renames) == 2:
            raise SimulatedCrash(2)
        real_rename(a, b)

    with monkeypatch.context() as patch:
        patch.setattr(os, "rename", rename)
        with pytest.raises(SimulatedCrash):
            auroradask.upgrade_store(store)
    assert _listing(tmp_path) == ["old.zarr.layout1", "old.zarr.upgrade.json", "old.zarr.upgrading"]
    with pytest.raises(auroradask.StoreError, match="already in today's layout"):
        auroradask.upgrade_store(store)
    assert auroradask.open_results(store).label.encoding["chunks"][1] == 28_800
    assert _listing(tmp_path) == ["old.zarr"]


def test_an_upgrade_killed_while_writing_starts_again_and_leaves_nothing(tmp_path, monkeypatch):
    store = tmp_path / "old.zarr"
    shutil.copytree(FIRST_RELEASE, store)
    old = auroradask.open_results(store).load()
    with monkeypatch.context() as patch, dask.config.set(scheduler="synchronous"):
        CrashAt(patch, 30)  # of 39 writes: the new store made, some of its pieces written
        with pytest.raises(SimulatedCrash):
            auroradask.upgrade_store(store)
    half = tmp_path / "old.zarr.upgrading"
    token = json.loads((tmp_path / "old.zarr.upgrade.json").read_text())["token"]
    assert json.loads((half / "zarr.json").read_text())["attributes"][UPGRADE_ATTR] == token
    # and a stale piece of another slot: laid on the new store, it would invent a label
    stale = tmp_path / "old.zarr.upgrading.staging" / "0" / "0"
    stale.mkdir(parents=True, exist_ok=True)
    slot = int((old.write_complete.values[0] == 0).argmax())  # a slot not written
    np.savez(
        stale / f"{slot}-1-1d.npz",
        label=np.int8([0]), confidence=np.float32([1]), probability=np.ones((1, 4), "f4"),
        timestamp=np.int64([0]), frame_status=np.int8([0]),
    )  # fmt: skip
    auroradask.upgrade_store(store)
    new = auroradask.open_results(store)
    assert new.frame_status.values[0, slot] == -1
    written = old.write_complete.values == 1
    np.testing.assert_array_equal(new.label.values[written], old.label.values[written])
    assert _listing(tmp_path) == ["old.zarr"]


def _users_folder(folder: Path) -> dict[str, str]:
    files = {"notes.txt": "field notes", "zarr.json": "{}", "sub/data.csv": "1,2\n"}
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return files


@pytest.mark.parametrize(
    ("folder", "beside"),
    [
        ("old.zarr.upgrading", {}),
        ("old.zarr.upgrading", {"old.zarr.upgrading.intent.json": '{"step": "create"}'}),
        ("old.zarr.upgrading", {"old.zarr.upgrade.json": '{"token": "0123456789abcdef"}'}),
        (
            "old.zarr.upgrading",
            {
                "old.zarr.upgrade.json": '{"token": "0123456789abcdef"}',
                "old.zarr.upgrading.intent.json": '{"step": "create", "token": "feedc0ffee"}',
            },
        ),
        ("old.zarr.upgrading.staging", {}),
        ("old.zarr.layout1", {}),
    ],
    ids=["upgrading", "with-intent", "with-record", "with-record-and-intent", "staging", "layout1"],
)
def test_a_users_folder_named_like_an_upgrades_is_never_removed(tmp_path, capsys, folder, beside):
    """Only what this store's upgrade made (it carries the token of the upgrade's record)
    is removed; a user's folder of the same name stops the upgrade, untouched."""
    store = tmp_path / "old.zarr"
    shutil.copytree(FIRST_RELEASE, store)
    files = _users_folder(tmp_path / folder)
    for name, text in beside.items():
        (tmp_path / name).write_text(text)
    before = _listing(tmp_path)
    with pytest.raises(auroradask.StoreError) as error:
        auroradask.upgrade_store(store)
    message = str(error.value)
    assert len(message.splitlines()) == 1 and str(tmp_path / folder) in message
    assert "nothing was removed" in message
    got = {str(p.relative_to(tmp_path / folder)) for p in (tmp_path / folder).rglob("*")}
    assert {f for f in got if (tmp_path / folder / f).is_file()} == set(files)
    assert all((tmp_path / folder / n).read_text() == t for n, t in files.items())
    assert all((tmp_path / n).read_text() == t for n, t in beside.items())
    assert _listing(tmp_path) == before
    assert "write_complete" in auroradask.open_results(store)  # still the first release's
    assert main(["upgrade", str(store)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing was removed" in err[0] and "Traceback" not in err[0]
    assert _listing(tmp_path) == before


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


def test_an_upgrade_killed_while_removing_its_leftover_finishes_the_removal(tmp_path, monkeypatch):
    """The leftover is renamed to a name holding the record's token before it is removed:
    a removal killed half way leaves nothing unmarked that the next run would refuse."""
    store = tmp_path / "old.zarr"
    shutil.copytree(FIRST_RELEASE, store)
    with monkeypatch.context() as patch, dask.config.set(scheduler="synchronous"):
        CrashAt(patch, 30)
        with pytest.raises(SimulatedCrash):
            auroradask.upgrade_store(store)
    token = json.loads((tmp_path / "old.zarr.upgrade.json").read_text())["token"]
    trash = tmp_path / f"old.zarr.upgrading.{token}.removing"
    (tmp_path / "old.zarr.upgrading").rename(trash)
    (trash / "zarr.json").unlink()  # removed first, the rest not yet
    auroradask.upgrade_store(store)
    assert "write_complete" not in auroradask.open_results(store)
    assert _listing(tmp_path) == ["old.zarr"]


def test_a_record_without_its_store_never_removes_a_folder_beside_a_current_store(tmp_path):
    """A store already in today's layout, with an upgrade record whose token it does not
    carry (left by an upgrade killed before its swap, the store then made another way): the
    folder named like the old layout beside it is a user's, and stays."""
    store = tmp_path / "old.zarr"
    shutil.copytree(FIRST_RELEASE, store)
    auroradask.upgrade_store(store)
    (tmp_path / "old.zarr.upgrade.json").write_text('{"token": "0123456789abcdef"}')
    files = _users_folder(tmp_path / "old.zarr.layout1")
    before = _listing(tmp_path)
    with pytest.raises(auroradask.StoreError, match="already in today's layout"):
        auroradask.upgrade_store(store)
    assert _listing(tmp_path) == before
    assert all((tmp_path / "old.zarr.layout1" / n).read_text() == t for n, t in files.items())
