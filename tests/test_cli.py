"""The auroradask command: default run, a real scheduler, help, bad arguments, text export."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import auroradask
from auroradask_cli.main import main

ENV = {**os.environ, "PYTHONPATH": str(Path(auroradask.__file__).parent.parent)}
COMMAND = [sys.executable, "-m", "auroradask_cli.main"]


def run(args, cwd, timeout=300):
    return subprocess.run(
        [*COMMAND, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """`auroradask classify` with no arguments, in an empty folder."""
    folder = tmp_path_factory.mktemp("default")
    done = run(["classify", "--workers", "2", "--dashboard-address", "127.0.0.1:0"], folder)
    return folder, done


def test_no_argument_run_classifies_the_sample(default_run):
    folder, done = default_run
    assert done.returncode == 0, done.stderr
    assert "dashboard: http://127.0.0.1:" in done.stdout
    assert "classified 120 frames into auroradask-results.zarr" in done.stdout
    assert "skipped: none" in done.stdout and "frames/s" in done.stdout
    assert "120/120 frames" in done.stderr
    stored = auroradask.open_results(folder / "auroradask-results.zarr")
    assert int((stored.frame_status >= 0).sum()) == 120
    counts = [line for line in done.stdout.splitlines() if line.startswith("per class:")][0]
    total = sum(int(part.rsplit(" ", 1)[1]) for part in counts[len("per class: ") :].split(", "))
    assert total == 120


def test_a_real_scheduler_gives_the_same_labels(default_run, tmp_path):
    folder, _ = default_run
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        ],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                "--scheduler-file",
                str(scheduler_file),
                "--nworkers",
                "2",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
            ],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        out = tmp_path / "remote.zarr"
        done = run(["classify", "--scheduler", str(scheduler_file), "--out", str(out)], tmp_path)
        assert done.returncode == 0, done.stderr
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
    local = auroradask.open_results(folder / "auroradask-results.zarr")
    remote = auroradask.open_results(out)
    np.testing.assert_array_equal(remote.label.values, local.label.values)
    np.testing.assert_array_equal(remote.probability.values, local.probability.values)


@pytest.mark.parametrize("command", [[], ["classify"], ["info"], ["export-text"]])
def test_help_of_each_command(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*command, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "usage: auroradask" in text
    if command == ["classify"]:
        for option in (
            "--source",
            "--site",
            "--start",
            "--end",
            "--model",
            "--out",
            "--scheduler",
            "--workers",
            "--threads-per-worker",
            "--memory-limit",
            "--dashboard-address",
            "--performance-report",
        ):
            assert option in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["classify", "--bogus"], "unrecognized arguments"),
        (["classify", "--site", "gill"], "--source --start required"),
        (
            ["classify", "--source", "/no/such/stream0", "--site", "gill", "--start", "2014-03-10"],
            "source",
        ),
        (["classify", "--source", ".", "--site", "gill", "--start", "tomorrowish"], "start:"),
        (
            [
                "classify",
                "--source",
                ".",
                "--site",
                "gill",
                "--start",
                "2014-03-10",
                "--end",
                "2014-03-09",
            ],
            "end",
        ),
        (["classify", "--model", "/no/model.onnx"], "model"),
        (["info", "/no/such/store.zarr"], "store"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err and "Traceback" not in err


def test_export_text_parses_back_to_the_store(default_run, tmp_path, capsys):
    folder, _ = default_run
    store = folder / "auroradask-results.zarr"
    assert main(["export-text", str(store), str(tmp_path / "txt")]) == 0
    path = tmp_path / "txt" / "2014" / "03" / "10" / "20140310_gill_classifications.txt"
    lines = path.read_text().splitlines()
    assert lines[0].startswith("#") and lines[1].startswith("#") and lines[2] == ""
    assert lines[3] == "date,time,prediction,prediction_str,confidence"
    rows = list(csv.DictReader(lines[3:]))
    stored = auroradask.open_results(store).sel(site="gill")
    done = stored.label.values >= 0
    assert len(rows) == int(done.sum()) == 120
    classes = stored["class"].values.tolist()
    np.testing.assert_array_equal([int(r["prediction"]) for r in rows], stored.label.values[done])
    assert [r["prediction_str"] for r in rows] == [classes[k] for k in stored.label.values[done]]
    np.testing.assert_allclose(
        [float(r["confidence"]) for r in rows], stored.confidence.values[done], atol=5e-5
    )
    stamps = stored.timestamp.values[done].astype("datetime64[s]").astype(str)
    assert [f"{r['date'][:4]}-{r['date'][4:6]}-{r['date'][6:]}T{r['time']}" for r in rows] == list(
        stamps
    )
    assert main(["info", str(store)]) == 0
    info = capsys.readouterr().out
    assert (
        "sites: gill" in info and "2014-03-10 06:00:00 to 2014-03-10 06:05:57 (120 slots)" in info
    )


def test_exit_codes_say_whose_fault_it_is(monkeypatch, capsys):
    from auroradask_cli import main as cli

    def raising(error):
        def command(args):
            raise error

        return command

    def run_with(error):
        parser = cli.build_parser()
        args = parser.parse_args(["info", "x.zarr"])
        monkeypatch.setattr(cli.argparse.ArgumentParser, "parse_args", lambda *a, **k: args)
        args.func = raising(error)
        return cli.main(["info", "x.zarr"])

    assert run_with(auroradask.StoreLockedError("store: held")) == 1  # not the request's fault
    assert run_with(auroradask.InputDataError("file: bad")) == 1
    assert run_with(auroradask.StoreError("store: other model")) == 2
    assert run_with(KeyboardInterrupt()) == 130
    with pytest.raises(ZeroDivisionError):  # a bug shows its traceback
        run_with(ZeroDivisionError("bug"))
    capsys.readouterr()
