"""The auroradask command: default run, a real scheduler, help, bad arguments, text export."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from distributed import Client

import auroradask
from auroradask.cli.main import build_parser, main
from tests.support.archive import make_archive
from tests.support.utils import COMMAND, ENV


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
    assert "auroradask page: http://127.0.0.1:" in done.stdout
    assert "classified 120 frames into auroradask-results.zarr" in done.stdout
    assert "skipped: none" in done.stdout and "frames/s" in done.stdout
    assert "120/120 slots" in done.stderr and "120 frames, " in done.stderr
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
    from auroradask.cli import main as cli

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


def test_version_names_the_package(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"auroradask {auroradask.__version__}"


def test_top_level_help_is_plain_text(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text
    assert "-v, --verbose" in text and "-q, --quiet" in text and "130 interrupted" in text


def test_sites_comma_separated_or_repeated():
    parser = build_parser()
    args = parser.parse_args(["classify", "--site", "gill,fsmi", "--site", "atha"])
    assert args.site == ["gill", "fsmi", "atha"]
    args = parser.parse_args(
        ["patches", "--source", "s", "--site", "gill, fsmi", "--start", "2014-03-10"]
        + ["-o", "p.parquet"]
    )
    assert args.site == ["gill", "fsmi"]


@pytest.mark.parametrize(
    ("argv", "verbose", "quiet"),
    [
        (["info", "s"], 0, False),
        (["-q", "info", "s"], 0, True),
        (["info", "s", "-q"], 0, True),
        (["info", "s", "-vv"], 2, False),
        (["-v", "info", "s"], 1, False),
    ],
)
def test_verbosity_before_or_after_the_command(argv, verbose, quiet):
    args = build_parser().parse_args(argv)
    assert (args.verbose, args.quiet) == (verbose, quiet)


def test_verbose_and_quiet_together_exit_2(capsys):
    assert main(["info", "s", "-v", "-q"]) == 2
    assert "not allowed with" in capsys.readouterr().err
    # one on each side of the command: two parsers, so the check is auroradask's own
    assert main(["-q", "info", "s", "-v"]) == 2
    assert "-q/--quiet and -v/--verbose contradict" in capsys.readouterr().err


def test_dry_run_with_keep_dashboard_is_refused(tmp_path, capsys):
    out = tmp_path / "new.zarr"
    assert main(["classify", "--dry-run", "--keep-dashboard", "--out", str(out)]) == 2
    assert "--keep-dashboard" in capsys.readouterr().err


def test_a_big_model_gets_one_worker_unless_the_cluster_is_chosen(tmp_path, capsys):
    """The command line's --threads-per-worker default (auroradask.threads_for_model), only
    where auroradask shapes the LocalCluster itself, said unless -q."""
    from types import SimpleNamespace

    from auroradask.cli.options import threads_for

    big = tmp_path / "big.onnx"
    with open(big, "wb") as f:  # sparse: only its size matters
        f.truncate(32 * 2**20)
    model = SimpleNamespace(name="big.onnx", path=str(big))
    plain = {"scheduler": None, "workers": None, "memory_limit": "auto", "quiet": False}
    cores = os.cpu_count() or 1
    assert threads_for(model, SimpleNamespace(**plain)) == cores
    if cores > 1:
        assert "one worker with" in capsys.readouterr().out
    for chosen in ({"workers": 2}, {"scheduler": "tcp://h:8786"}, {"memory_limit": "4GB"}):
        assert threads_for(model, SimpleNamespace(**{**plain, **chosen})) == 1, chosen
    assert threads_for(model, SimpleNamespace(**{**plain, "quiet": True})) == cores
    assert capsys.readouterr().out == ""
    small = SimpleNamespace(name="demo", path=auroradask.demo_model())
    assert threads_for(small, SimpleNamespace(**plain)) == 1


@pytest.mark.parametrize("option", ["--threads-per-worker", "--workers"])
def test_zero_threads_or_workers_is_an_argument_error(option, capsys):
    assert main(["classify", option, "0", "--dry-run"]) == 2
    assert option in capsys.readouterr().err


def test_info_json(default_run, capsys):
    folder, _ = default_run
    assert main(["info", str(folder / "auroradask-results.zarr"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sites"] == ["gill"] and info["slots_written"] == 120
    assert sum(info["label_counts"].values()) == 120
    assert info["provenance"]["model_file"] == "demo-themis-pa.onnx"


def test_dry_run_says_what_and_how_long_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "new.zarr"
    assert main(["classify", "--dry-run", "--out", str(out), "--workers", "2"]) == 0
    text = capsys.readouterr().out
    assert f"store: {out} (new)" in text
    assert "to do: 120 of 120 slots (gill 120), in at most 6 minute files" in text
    assert "measured 1 of 1 chunks on one thread" in text and "(120 frames in 120 slots" in text
    assert "frames/s where there are frames" in text and "on 2 threads" in text
    assert not out.exists()


def test_dry_run_of_a_written_store_has_nothing_to_do(default_run, capsys):
    folder, _ = default_run
    store = folder / "auroradask-results.zarr"
    assert main(["classify", "--dry-run", "--out", str(store)]) == 0
    text = capsys.readouterr().out
    assert "holds 120 of these slots" in text and "to do: 0 of 120 slots" in text
    assert "nothing to do" in text and "frames/s" not in text


def test_a_run_with_nothing_to_do_reports_no_rate(default_run):
    folder, _ = default_run
    done = run(["classify", "--workers", "1", "--dashboard-address", "127.0.0.1:0"], folder)
    assert done.returncode == 0, done.stderr
    assert "nothing to do: all 120 slots are in auroradask-results.zarr already" in done.stdout
    assert "frames/s" not in done.stdout + done.stderr


def test_quiet_run_shows_no_bar_and_no_warnings(tmp_path):
    done = run(["classify", "-q", "--workers", "1", "--dashboard-address", "127.0.0.1:0"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "classified 120 frames" in done.stdout
    assert done.stderr == ""


def test_logging_is_set_up_once_and_warnings_go_through_it(capsys):
    import logging
    import warnings

    from auroradask.cli.options import LOGGERS, configure_logging

    saved = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level)
        for name in LOGGERS
    }
    try:
        logging.captureWarnings(False)  # an earlier main() in this process captured them
        with warnings.catch_warnings():
            configure_logging(0, False)
            configure_logging(0, False)  # a second set-up replaces the first
            warnings.warn("a test warning", UserWarning, stacklevel=1)
            logging.getLogger("distributed.scheduler").info("not shown at the default level")
            logging.getLogger("distributed.scheduler").warning("a dask warning")
        err = capsys.readouterr().err
        assert err.count("UserWarning: a test warning") == 1
        assert "auroradask: WARNING: " in err and "a dask warning" in err
        assert "not shown" not in err
    finally:
        logging.captureWarnings(False)
        for name, (handlers, level) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.setLevel(level)


def test_worker_warnings_come_out_in_the_commands_format(capfd):
    from distributed import LocalCluster

    from auroradask.cli.options import worker_logging

    def warn():
        import warnings

        warnings.warn("raised in a task on a worker", UserWarning, stacklevel=1)

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            worker_logging(client, logging.WARNING)
            client.run(warn)
    err = capfd.readouterr().err
    assert "auroradask: WARNING: " in err and "raised in a task on a worker" in err


def _ctrl_c_as_from_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_keep_dashboard_keeps_the_page_up_until_ctrl_c(tmp_path):
    args = ["classify", "-q", "--workers", "1", "--dashboard-address", "127.0.0.1:0"]
    # Ctrl-C must reach the command as it does from a terminal: where pytest itself runs in
    # the background of a script (`cmd &`), SIGINT is ignored and a child inherits that, so
    # the command would never see it (the hang this test had in such runs). stderr goes to a
    # file, which nothing has to read while the command runs.
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "w") as err:
        process = subprocess.Popen(
            [*COMMAND, *args, "--keep-dashboard", "--out", str(tmp_path / "kept.zarr")],
            cwd=tmp_path,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            preexec_fn=_ctrl_c_as_from_a_terminal,
        )
    try:
        page = None
        for line in process.stdout:
            if line.startswith("auroradask page: "):
                page = line.split(": ", 1)[1].strip()
            if line.startswith("dashboard kept open at"):
                break
        assert page is not None, stderr.read_text()
        with urllib.request.urlopen(page + "/state.json", timeout=30) as response:
            state = json.load(response)["run"]
        assert state["status"] == "finished" and state["done"] == 120
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=180) == 0, stderr.read_text()[-4000:]
        except subprocess.TimeoutExpired:
            pytest.fail(
                "no exit 180 s after Ctrl-C; its stderr ends:\n" + stderr.read_text()[-4000:]
            )
        assert "dashboard closed" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def gappy_archive(tmp_path_factory):
    """An hour of gill with files in its first 10 minutes only: 1,200 slots, 200 frames."""
    root = tmp_path_factory.mktemp("gaps")
    make_archive(root, ["gill"], "2014-03-10T05:00", 1, 10, imager="themis19")
    return root


GAPPY = ["--site", "gill", "--start", "2014-03-10T05:00", "--end", "2014-03-10T06:00"]


def test_the_rate_counts_frames_not_empty_slots(gappy_archive, tmp_path):
    args = ["classify", "--source", str(gappy_archive), *GAPPY, "--out", "g.zarr"]
    done = run([*args, "--workers", "1", "--dashboard-address", "127.0.0.1:0"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "classified 200 frames into g.zarr" in done.stdout
    line = next(x for x in done.stdout.splitlines() if x.startswith("wall time"))
    match = re.match(r"wall time ([\d.]+) s, ([\d.]+) frames/s \(1200 slots written", line)
    assert match, line
    seconds, rate = float(match[1]), float(match[2])
    # the printed rate is frames over wall time; the printed time is rounded to 0.1 s
    assert 200 / (seconds + 0.05) - 0.1 <= rate <= 200 / max(seconds - 0.05, 1e-3) + 0.1
    assert rate < 1200 / seconds / 2  # far below what counting slots would say
    assert "1200/1200 slots" in done.stderr and "200 frames, " in done.stderr


def test_dry_run_measures_chunks_that_hold_frames(gappy_archive, tmp_path, capsys):
    out = tmp_path / "g.zarr"
    args = ["classify", "--source", str(gappy_archive), *GAPPY, "--out", str(out), "--dry-run"]
    assert main(args) == 0
    text = capsys.readouterr().out
    # six 10-minute chunks, one with files: four measured, spread from first to last
    assert "measured 4 of 6 chunks on one thread" in text
    assert "(200 frames in 800 slots" in text, text
    assert "frames/s where there are frames" in text
    assert not out.exists()


def test_verbose_runs_do_not_advise_installing_jupyter_server_proxy(capfd):
    from auroradask.cli.options import configure_logging

    configure_logging(1)
    proxy = logging.getLogger("distributed.http.proxy")
    proxy.info("To route to workers diagnostics web server please install jupyter-server-proxy")
    proxy.info("a message that is kept")
    err = capfd.readouterr().err
    assert "jupyter-server-proxy" not in err and "a message that is kept" in err
    configure_logging(0)
