"""The command line on requests that can only find nothing, and on an archive with an
unreadable file (issue 13): one line and exit 2 for the first, exit 0 and status 2 for the
second, never "classified 0 frames"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import auroradask
from auroradask._schema import FILE_UNREADABLE, OK
from auroradask.cli.main import main
from tests.support.utils import HOUR_DIR, SAMPLE_END, SAMPLE_START

SAMPLE = auroradask.sample_archive()
ENV = {**os.environ, "PYTHONPATH": str(Path(auroradask.__file__).parent.parent)}


def _file(sample_copy: Path) -> str:
    return str(sample_copy / HOUR_DIR / "20140310_0600_gill_themis19_full.pgm.gz")


@pytest.mark.parametrize(
    ("request_args", "message"),
    [
        (["--source", SAMPLE, "--site", "zzzz"], "auroradask: sites: 'zzzz' is not a THEMIS site"),
        (["--source", "FILE", "--site", "gill"], "auroradask: source: "),
        (
            ["--source", SAMPLE, "--site", "gill", "--start", "2014-03-11"],
            "auroradask: start, end: no minute file of gill",
        ),
    ],
    ids=["unknown-site", "source-is-a-file", "no-file-that-day"],
)
def test_a_request_that_finds_nothing_exits_2_with_one_line(
    request_args, message, sample_copy, tmp_path, capsys
):
    request_args = [_file(sample_copy) if a == "FILE" else a for a in request_args]
    if "--start" not in request_args:
        request_args += ["--start", SAMPLE_START, "--end", SAMPLE_END]
    out = tmp_path / "results.zarr"
    code = main(["classify", *request_args, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith(message)
    assert len(captured.err.strip().splitlines()) == 1
    assert "classified" not in captured.out
    assert not out.exists()


def test_the_exit_code_is_2_from_the_shell(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "auroradask.cli.main", "classify", "--source", SAMPLE]
        + ["--site", "zzzz", "--start", SAMPLE_START, "--end", SAMPLE_END],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("auroradask: sites: 'zzzz'")
    assert not (tmp_path / "auroradask-results.zarr").exists()


def test_a_symlink_loop_in_place_of_a_file_is_status_2_and_the_run_succeeds(
    sample_copy, tmp_path, capsys
):
    loop = Path(_file(sample_copy).replace("0600", "0603"))
    loop.unlink()
    loop.symlink_to(loop.name)
    out = tmp_path / "results.zarr"
    args = ["classify", "--source", str(sample_copy), "--site", "gill"]
    args += ["--start", SAMPLE_START, "--end", SAMPLE_END, "--chunk-minutes", "1"]
    args += ["--workers", "1", "--dashboard-address", "127.0.0.1:0", "--out", str(out)]
    assert main(args) == 0
    assert "classified 100 frames" in capsys.readouterr().out
    stored = auroradask.open_results(out)
    status = stored.frame_status.sel(time=slice(SAMPLE_START, "2014-03-10T06:05:59")).values[0]
    assert status.size == 120
    assert (status[60:80] == FILE_UNREADABLE).all()
    assert (status[np.r_[0:60, 80:120]] == OK).all()


# --------------------------------------- every command that reads frames: the same defaults


def test_patches_runs_on_the_sample_with_no_data_options(tmp_path, capsys):
    out = tmp_path / "p.parquet"
    assert main(["patches", "--chunk-minutes", "1", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("120 frames: ")  # the sample's 120 frames, 06:00-06:06 UT
    assert main(["patches", "--site", "gill", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "patches: --source --start required when data options are given" in err


@pytest.mark.parametrize("command", ["classify", "embed", "patches", "movie"])
def test_partial_data_options_name_what_is_missing(command, capsys):
    extra = {"embed": ["--output", "/Concat_output_0", "-o", "x.zarr"]}.get(command, [])
    extra += {"patches": ["-o", "p.parquet"], "movie": ["-o", "m.mp4"]}.get(command, [])
    assert main([command, "--start", "2014-03-10", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        f"{command}: --source --site required when data options are given "
        "(none: the bundled sample)"
    )
