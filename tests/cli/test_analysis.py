"""``auroradask occurrence | events | timeline`` end to end, against the Python API."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import auroradask
from auroradask.cli.main import main
from tests.support.synthetic import synthetic_results, write_store
from tests.support.utils import COMMAND, ENV


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """gill and fsmi, 2014-03-09 and 10 (whole days), chunks of 1,800 slots."""
    path = tmp_path_factory.mktemp("cli") / "store.zarr"
    write_store(synthetic_results(["gill", "fsmi"], "2014-03-09", days=2, chunk=1800), path)
    return path


def test_occurrence_csv_netcdf_and_plot(store, tmp_path, capsys):
    csv, nc, png = tmp_path / "occ.csv", tmp_path / "occ.nc", tmp_path / "occ.png"
    args = ["occurrence", str(store), "--by", "mlt_hour,site", "--exclude", "bad_viewing"]
    assert main([*args, "-o", str(csv), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    expected = auroradask.occurrence(
        auroradask.open_results(store), by=["mlt_hour", "site"], exclude="bad_viewing"
    )
    usable = int(expected["usable"].sum())
    assert f"{usable} usable slots" in out and png.stat().st_size > 10_000
    table = pd.read_csv(csv)
    assert list(table.columns) == ["class", "mlt_hour", "site", "count", "usable", "rate"]
    got = table.set_index(["class", "mlt_hour", "site"])["count"].to_xarray()
    got = got.sel(site=["gill", "fsmi"], **{"class": expected["class"].values})
    np.testing.assert_array_equal(got.transpose("class", "mlt_hour", "site"), expected["count"])
    assert main([*args, "-o", str(nc)]) == 0
    xr.testing.assert_equal(xr.open_dataset(nc).load(), expected)


def test_occurrence_by_mlat_and_mlt_pools_sites_and_draws_the_dial(
    store, tmp_path, capsys, monkeypatch
):
    nc, png = tmp_path / "dial.nc", tmp_path / "dial.png"
    drawn = []
    dial = auroradask.plot_occurrence_dial
    monkeypatch.setattr(
        auroradask, "plot_occurrence_dial", lambda *a, **k: drawn.append(a) or dial(*a, **k)
    )
    args = ["occurrence", str(store), "--by", "mlat,mlt", "--mlat-bin", "0.5"]
    assert main([*args, "-o", str(nc), "--plot", str(png), "-q"]) == 0
    expected = auroradask.occurrence(
        auroradask.open_results(store), by=("mlat", "mlt"), mlat_bin=0.5
    )
    got = xr.open_dataset(nc).load()
    xr.testing.assert_equal(got, expected)
    assert got.sizes["mlat"] == 4  # gill 65.5-66, fsmi 67-67.5: half-degree rows
    assert len(drawn) == 1 and png.stat().st_size > 10_000
    assert "by mlat,mlt:" in capsys.readouterr().out


def test_occurrence_of_one_class_resampled(store, tmp_path, capsys):
    csv = tmp_path / "daily.csv"
    assert (
        main(
            [
                "occurrence",
                str(store),
                "--class",
                "pulsating",
                "--by",
                "site",
                "--freq",
                "1D",
                "-o",
                str(csv),
            ]
        )
        == 0
    )
    table = pd.read_csv(csv, parse_dates=["time"])
    assert set(table["class"]) == {"pulsating"} and len(table) == 4  # 2 sites x 2 days
    assert "occurrence of pulsating by site and 1D" in capsys.readouterr().out


def test_events_table_and_plot(store, tmp_path, capsys):
    csv, png = tmp_path / "events.csv", tmp_path / "events.png"
    args = ["events", str(store), "--class", "pulsating", "--min-duration", "5min"]
    assert main([*args, "--max-gap", "30s", "-o", str(csv), "--plot", str(png)]) == 0
    expected = auroradask.events(
        auroradask.open_results(store), "pulsating", min_duration="5min", max_gap="30s"
    )
    table = pd.read_csv(csv, parse_dates=["start", "end"])
    assert len(table) == len(expected) > 10
    assert (table["start"] == expected["start"]).all() and (
        table["frames"] == expected["frames"]
    ).all()
    np.testing.assert_allclose(table["duration_s"], expected["duration"].dt.total_seconds())
    assert f"{len(expected)} events of pulsating at 2 sites" in capsys.readouterr().out
    assert png.exists()


def test_timeline_figure(store, tmp_path):
    png = tmp_path / "night.png"
    assert (
        main(
            [
                "timeline",
                str(store),
                "--site",
                "gill",
                "--night",
                "2014-03-09",
                "--smooth",
                "5",
                "-o",
                str(png),
            ]
        )
        == 0
    )
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["events", "{store}", "--class", "pa", "-o", "e.csv"],
            "auroradask: class: unknown class 'pa'; the store has",
        ),
        (
            ["occurrence", "{store}", "--by", "hour", "-o", "o.csv"],
            "auroradask: by: unknown grouping ['hour']",
        ),
        (
            ["occurrence", "{store}", "--min-confidence", "1", "-o", "o.csv"],
            "auroradask: store: no usable slot",
        ),
        (
            ["occurrence", "{store}", "-o", "o.xlsx"],
            "auroradask occurrence: argument -o/--out: 'o.xlsx' must end in .csv or .nc",
        ),
        (
            ["timeline", "{store}", "--site", "atha", "--night", "2014-03-09", "-o", "t.png"],
            "auroradask: site: unknown site 'atha'",
        ),
        (
            ["timeline", "{store}", "--site", "gill", "--night", "2015-01-01", "-o", "t.png"],
            "auroradask: night: nothing of site 'gill' was written",
        ),
        (
            ["events", "{store}", "--class", "pulsating", "--max-gap", "soon", "-o", "e.csv"],
            "auroradask events: argument --max-gap: 'soon': give a number and a unit",
        ),
        (
            ["events", "nowhere.zarr", "--class", "pulsating", "-o", "e.csv"],
            "auroradask: store: no results store",
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line(store, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main([a.format(store=store) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.parametrize("command", ["occurrence", "events", "timeline"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    assert "usage: auroradask " + command in capsys.readouterr().out


def test_the_installed_command_runs(store, tmp_path):
    done = subprocess.run(
        [*COMMAND, "events", str(store), "--class", "pulsating", "-o", str(tmp_path / "e.csv")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "events of pulsating" in done.stdout
    assert sys.executable
