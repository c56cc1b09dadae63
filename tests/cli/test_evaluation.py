"""The import-text and evaluate commands: output, files written, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import auroradask
from auroradask.cli.main import main
from tests.support.textfiles import (
    HAND_SHEET,
    PUBLISHED_LINE,
    hand_archive,
    write_classifications,
    write_published,
    write_sheet,
)

ENV = {
    **os.environ,
    "PYTHONPATH": str(Path(auroradask.__file__).parent.parent),
    "MPLBACKEND": "Agg",
}


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    hand_archive(root / "txt")
    write_sheet(root / "labels.xlsx", HAND_SHEET, sheet="March")
    done = subprocess.run(
        [sys.executable, "-m", "auroradask.cli.main", "import-text", "txt", "--out", "s.zarr"],
        cwd=root,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return root, done


def test_import_text_writes_a_store(imported):
    root, done = imported
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "3 files, 9 rows: sites fsmi, gill; 2 UT days, 2014-03-10 to 2014-03-11",
        "producer: Pulsating aurora classification of THEMIS ASI images",
        "classes: 0=no_aurora, 1=pulsating, 2=other_aurora, 3=bad_viewing",
        f"wrote {3 * 28800} slots into s.zarr",  # the site-day with no file stays unwritten
        "per class: no_aurora 3, pulsating 4, other_aurora 1, bad_viewing 1",
    ]
    info = auroradask.describe(auroradask.open_results(root / "s.zarr"))
    assert info["label_counts"] == {
        "no_aurora": 3,
        "pulsating": 4,
        "other_aurora": 1,
        "bad_viewing": 1,
    }


def test_import_text_again_skips_what_is_there(imported, capsys):
    root, _ = imported
    assert main(["import-text", str(root / "txt"), "--out", str(root / "s.zarr")]) == 0
    assert (
        f"wrote 0 slots into {root / 's.zarr'} ({3 * 28800} already there)"
        in capsys.readouterr().out
    )


def test_evaluate_prints_the_table_and_writes_report_and_plots(imported, capsys, tmp_path):
    root, _ = imported
    args = [
        "evaluate",
        str(root / "s.zarr"),
        str(root / "labels.xlsx"),
        "--sheet",
        "March",
        "--mapping",
        "themis-pa",
        "--min-confidence",
        "0.6",
        "-o",
        str(tmp_path / "report.json"),
        "--plot",
        str(tmp_path / "confusion.png"),
        "--sweep",
        "--sweep-plot",
        str(tmp_path / "sweep.png"),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert (
        "frames compared: 7 (confidence >= 0.6; 2 below); agreement 0.857; Cohen's kappa 0.750"
        in out
    )
    assert "site-day not in the results: 1, 6 frames" in out
    assert "min_confidence  frames  kept  agreement  kappa" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["frames_compared"] == 7 and report["min_confidence"] == 0.6
    assert report["results"]["source"] == str(root / "s.zarr")
    assert (tmp_path / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_a_store_against_itself(imported, capsys):
    root, _ = imported
    store = str(root / "s.zarr")
    assert main(["evaluate", store, store]) == 0
    assert "frames compared: 9; agreement 1.000; Cohen's kappa 1.000" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["import-text", "evaluate"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: auroradask {command}" in text
    options = (
        ["--out", "--classes", "--producer"]
        if command == "import-text"
        else ["--mapping", "--sheet", "--min-confidence", "--out", "--plot", "--sweep"]
    )
    for option in options:
        assert option in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import-text", "txt"], "--out"),
        (["import-text", "/no/such/folder", "--out", "x.zarr"], "paths:"),
        (["evaluate", "s.zarr", "labels.xlsx", "--mapping", "nope"], "mapping: 'nope'"),
        (["evaluate", "s.zarr", "labels.xlsx", "--min-confidence", "2"], "--min-confidence"),
        (
            ["evaluate", "s.zarr", "labels.xlsx", "--min-confidence", "high"],
            "expected a number >= 0, got 'high'",
        ),
        (["evaluate", "s.zarr", "labels.xlsx", "--sheet", "April"], "sheet:"),
        (["evaluate", "no.zarr", "labels.xlsx"], "store"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(imported, args, message, capsys, monkeypatch):
    root, _ = imported
    monkeypatch.chdir(root)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err and "Traceback" not in err


def test_a_malformed_file_fails_with_exit_1(tmp_path, capsys):
    write_classifications(tmp_path, "gill", "20140310", [("6:00", 0, "a", 0.5)])
    assert main(["import-text", str(tmp_path), "--out", str(tmp_path / "s.zarr")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("auroradask: failed:") and ":6: cannot read" in err


def test_import_text_takes_the_published_files_as_one_producer(tmp_path, capsys):
    """Files of the published classifier, written on different days, in one import."""
    for day, created in (("20140310", "2023-07-04 15:06:24"), ("20140311", "2023-07-05 09:00:00")):
        write_published(
            tmp_path / "txt", "gill", day, [("06:00:03", 0, "no_aurora", 0.9)], created=created
        )
    write_published(
        tmp_path / "other",
        "gill",
        "20140312",
        [("06:00:03", 0, "no_aurora", 0.9)],
        second_line="Predictions of model v2.",
    )
    out = str(tmp_path / "s.zarr")
    assert main(["import-text", str(tmp_path / "txt"), "--out", out, "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == [
        "2 files, 2 rows: sites gill; 2 UT days, 2014-03-10 to 2014-03-11",
        f"producer: {PUBLISHED_LINE}",
        "files created 2023-07-04 15:06:24 to 2023-07-05 09:00:00",
        "classes: 0=no_aurora",
    ]
    assert main(["import-text", str(tmp_path), "--out", str(tmp_path / "t.zarr")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "2 producers" in err and "'Predictions of model v2.' (1 file," in err
