"""Batch clusters: classify on a real one-node SLURM through ``--cluster slurm``, jobs that are
cancelled mid-run, and the dry-run plan (frames, core-hours, jobs × cores × wall time).

The SLURM tests (marked ``slurm``) start SLURM on this machine (``tests/slurm.py``): they need
root and Debian's ``slurmctld``, ``slurmd`` and ``munge`` (``.ci/run`` installs them), and
dask-jobqueue. Where any is missing they are skipped, unless ``AURORADASK_REQUIRE_SLURM=1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import auroradask
from auroradask.distributed._batch import format_walltime, walltime_seconds
from auroradask.store import _batchplan
from tests.support.archive import make_archive
from tests.support.slurm import LocalSlurm, missing_programs
from tests.support.utils import assert_same_store

SITES = ["gill", "fsmi"]
START, END = "2014-03-10T06:00", "2014-03-10T06:30"
# the checkout first; whatever else the caller's PYTHONPATH holds stays after it
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(
        [str(Path(auroradask.__file__).parent.parent), os.environ.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep),
}
COMMAND = [sys.executable, "-m", "auroradask.cli.main"]


def _slurm_missing() -> str | None:
    """Why SLURM cannot run here, or None."""
    if os.geteuid() != 0:
        return "the one-node SLURM runs its daemons as root"
    missing = missing_programs()
    if missing:
        return f"no {', '.join(missing)} (apt-get install slurmctld slurmd munge)"
    try:
        import dask_jobqueue  # noqa: F401
    except ImportError:
        return "no dask-jobqueue (pip install 'auroradask[batch]')"
    return None


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A one-node SLURM cluster for this module's tests; stopped by PID at the end."""
    reason = _slurm_missing()
    if reason:
        if os.environ.get("AURORADASK_REQUIRE_SLURM") == "1":
            pytest.fail(f"AURORADASK_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    with LocalSlurm(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """Two sites, 30 minutes each (1,200 frames), generated from the real sample frames."""
    root = tmp_path_factory.mktemp("archive") / "stream0"
    make_archive(root, SITES, START, hours=1, minutes_per_hour=30)
    return root


@pytest.fixture(scope="module")
def local_store(archive, tmp_path_factory) -> Path:
    """The store of the same request on this machine (dask's threads, no cluster)."""
    out = tmp_path_factory.mktemp("local") / "local.zarr"
    frames = auroradask.open_themis(archive, SITES, START, END, chunk_minutes=1)
    auroradask.to_zarr(auroradask.classify(frames, auroradask.demo_model()), out, progress=False)
    return out


def classify_args(archive: Path, out: Path, *extra: str) -> list[str]:
    return [
        *COMMAND,
        "classify",
        "--source",
        str(archive),
        "--site",
        ",".join(SITES),
        "--start",
        START,
        "--end",
        END,
        "--chunk-minutes",
        "1",
        "--out",
        str(out),
        *extra,
    ]


def slurm_env(slurm: LocalSlurm) -> dict[str, str]:
    """The command's environment: this SLURM, and a job whose worker is lost replaced after
    2 s instead of dask's 15 s (``distributed.deploy.lost-worker-timeout``), so that the
    replacement comes while the short test run still has work."""
    return {**ENV, **slurm.environ(), "DASK_DISTRIBUTED__DEPLOY__LOST_WORKER_TIMEOUT": "2s"}


def slurm_args(logs: Path, *extra: str) -> list[str]:
    """Two one-core jobs on the debug partition; a private dashboard port."""
    return [
        "--cluster",
        "slurm",
        "--jobs",
        "2",
        "--minimum-jobs",
        "2",
        "--cores-per-job",
        "1",
        "--memory-per-job",
        "2GB",
        "--walltime",
        "00:20:00",
        "--partition",
        "debug",
        "--job-log-directory",
        str(logs),
        "--dashboard-address",
        "127.0.0.1:0",
        *extra,
    ]


def wait_for(condition, timeout: float, what: str, process=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the run ended before {what}:\n{out}\n{err}")
        time.sleep(0.2)
    raise AssertionError(f"no {what} after {timeout} s")


def pieces(out: Path) -> int:
    """Results chunks staged so far: the run is under way and not done."""
    staging = Path(f"{out}.staging")
    return sum(1 for p in staging.rglob("*.npz")) if staging.exists() else 0


def workers_started(logs: Path) -> set[str]:
    """IDs of the jobs whose dask worker started, from their ``dask-worker-<id>.err`` logs."""
    return {
        p.stem.removeprefix("dask-worker-")
        for p in logs.glob("dask-worker-*.err")
        if "Start worker" in p.read_text(errors="replace")
    }


CONFIG = """\
jobqueue:
  slurm:
    cores: 1
    memory: 2GB
    walltime: "00:20:00"
    queue: {partition}
    log-directory: {logs}
auroradask:
  batch:
    jobs: 2
    minimum-jobs: 2
"""


@pytest.mark.slurm
@pytest.mark.slow
def test_two_jobs_on_slurm_write_the_local_runs_store(slurm, archive, local_store, tmp_path):
    # the shape of the jobs from a dask config file, as docs/guide/batch-cluster.md shows it
    logs = tmp_path / "logs"
    config = tmp_path / "dask-config"
    config.mkdir()
    (config / "auroradask.yaml").write_text(CONFIG.format(partition=slurm.partition, logs=logs))
    out = tmp_path / "slurm.zarr"
    env = {**slurm_env(slurm), "DASK_CONFIG": str(config)}
    process = subprocess.Popen(
        classify_args(archive, out, "--cluster", "slurm", "--dashboard-address", "127.0.0.1:0"),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # while it runs: both jobs run on the node, and auroradask's page answers
        wait_for(lambda: len(slurm.jobs("RUNNING")) == 2, 120, "two running jobs", process)
        wait_for(lambda: pieces(out) > 0, 120, "a first results chunk", process)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "classified 1200 frames" in stdout
    page = next(line for line in stdout.splitlines() if line.startswith("auroradask page: "))
    assert page.split(": ", 1)[1].endswith("/auroradask")
    # each job ran a worker: their output files say so
    assert len(workers_started(logs)) == 2, [p.read_text()[-500:] for p in logs.glob("*.err")]
    assert_same_store(auroradask.open_results(out), auroradask.open_results(local_store))
    wait_for(lambda: not slurm.jobs(), 60, "the jobs to end with the client")


@pytest.mark.slurm
@pytest.mark.slow
def test_a_job_cancelled_mid_run_is_replaced_and_the_store_is_the_same(
    slurm, archive, local_store, tmp_path
):
    out = tmp_path / "slurm.zarr"
    env = slurm_env(slurm)
    process = subprocess.Popen(
        classify_args(archive, out, *slurm_args(tmp_path / "logs")),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(slurm.jobs("RUNNING")) == 2, 120, "two running jobs", process)
        wait_for(lambda: pieces(out) >= 3, 120, "three results chunks", process)
        cancelled, held = sorted(slurm.jobs("RUNNING"))
        # the other job is suspended until the replacement runs: one worker finishes the
        # demo model's 1,200 frames in seconds, sooner than a replacement can start, and
        # without the hold the run could end before adaptive scaling had to replace anything
        slurm.run("scontrol", "suspend", held)
        slurm.run("scancel", cancelled)  # as a pre-emption: the job and its worker die
        try:
            # adaptive scaling asks for a job in place of the cancelled one: its worker starts
            def replaced() -> bool:
                started = workers_started(tmp_path / "logs")
                return bool(started - {cancelled, held})

            wait_for(replaced, 120, "a worker in a job in place of the cancelled one", process)
        finally:
            slurm.run("scontrol", "resume", held, check=False)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "classified 1200 frames" in stdout  # every frame once: none lost, none twice
    assert_same_store(auroradask.open_results(out), auroradask.open_results(local_store))
    assert {cancelled, held} < workers_started(tmp_path / "logs")


@pytest.mark.slurm
@pytest.mark.slow
def test_a_run_whose_every_job_is_cancelled_stops_and_a_rerun_resumes(
    slurm, archive, local_store, tmp_path
):
    out = tmp_path / "slurm.zarr"
    env = slurm_env(slurm)
    args = classify_args(
        archive, out, *slurm_args(tmp_path / "logs", "--no-workers-timeout", "10s")
    )
    process = subprocess.Popen(
        args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: len(slurm.jobs("RUNNING")) == 2, 120, "two running jobs", process)
        wait_for(lambda: pieces(out) >= 3, 120, "three results chunks", process)
        slurm.set_node("drain")  # the replacements stay in the queue
        slurm.run("scancel", *slurm.jobs())
        stdout, stderr = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
        slurm.set_node("resume")
    assert process.returncode == 1, (stdout, stderr)
    assert "every worker is gone" in stderr and "run the same command again" in stderr
    assert "Traceback" not in stderr
    partial = auroradask.open_results(out)
    assert 0 < int((partial.frame_status >= 0).sum()) < 1200 or pieces(out) > 0

    wait_for(lambda: not slurm.jobs(), 60, "the pending jobs to be cancelled with the client")
    again = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    written = int(again.stdout.split("classified ", 1)[1].split(" ", 1)[0])
    assert 0 < written < 1200  # it resumed: what the first run wrote was not done again
    assert_same_store(auroradask.open_results(out), auroradask.open_results(local_store))


# ------------------------------------------------------------------ without a batch system


def test_the_dry_run_plans_jobs_from_a_chunk_that_holds_frames(archive, tmp_path):
    # the request starts 20 minutes before the archive's first file: the first 20 chunks hold
    # no frame, and reading nothing must not pass for speed
    done = subprocess.run(
        [
            *COMMAND,
            "classify",
            "--source",
            str(archive),
            "--site",
            "gill",
            "--start",
            "2014-03-10T05:40",
            "--end",
            "2014-03-10T06:10",
            "--chunk-minutes",
            "1",
            "--out",
            str(tmp_path / "plan.zarr"),
            "--dry-run",
            "--cluster",
            "slurm",
            "--cores-per-job",
            "4",
            "--walltime",
            "00:30:00",
            "--finish-in",
            "2h",
        ],
        env=ENV,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "frames: at most 200 in 10 minute files" in out
    # not the first chunk to do (no file, nothing read): the first that holds frames
    assert "calibration: 20 frames of the first chunk that holds frames in " in out
    rate = float(out.split(" s on one thread (", 1)[1].split(" s a frame", 1)[0])
    core_hours = float(out.split("core-hours: ", 1)[1].split()[0])
    assert core_hours == pytest.approx(200 * rate / 3600, rel=0.05, abs=1e-4)
    assert "--cluster slurm --jobs 1 --cores-per-job 4 --walltime " in out
    assert not (tmp_path / "plan.zarr").exists()  # nothing written


def test_the_plan_sizes_jobs_for_the_target_time(archive, monkeypatch):
    frames = auroradask.open_themis(archive, SITES, START, END, chunk_minutes=1)
    results = auroradask.classify(frames, auroradask.demo_model())
    plan = auroradask.plan_batch(results, "never-written.zarr", finish_in="1h", cores_per_job=2)
    assert plan.frames == 1200 and plan.minute_files == 60
    assert plan.calibration_frames == 20 and plan.calibration_chunks == 1
    expected = plan.frames * plan.seconds_per_frame / 3600
    assert plan.core_hours == pytest.approx(expected)
    # a made-up rate of 1 core-hour per 100 frames: 12 core-hours, in 1 h on 2-core jobs
    monkeypatch.setattr(_batchplan, "_calibrate", lambda r, todo, out, n: _fixed(out, 20, 720.0))
    plan = auroradask.plan_batch(results, "never-written.zarr", finish_in="1h", cores_per_job=2)
    assert plan.core_hours == pytest.approx(12.0)
    assert plan.jobs == 6 and plan.walltime == 3600 and plan.job_runs == 6
    assert plan.expected_hours() == pytest.approx(1.0)
    # a partition that allows 15 minutes: the same jobs, four times over
    plan = auroradask.plan_batch(
        results, "never-written.zarr", finish_in="1h", cores_per_job=2, walltime="15"
    )
    assert plan.jobs == 6 and plan.walltime == 900 and plan.job_runs == 24


def _fixed(out, frames, seconds):
    out.calibration_frames, out.calibration_seconds, out.calibration_chunks = frames, seconds, 1


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 1800), ("04:00:00", 14400), ("1-12:00", 129600), ("2-00:00:00", 172800), ("90m", 5400)],
)
def test_wall_times_read_as_slurm_writes_them(text, seconds):
    assert walltime_seconds(text) == seconds
    assert walltime_seconds(format_walltime(seconds)) == seconds


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--cluster", "slurm", "--workers", "2"], "--workers shape a LocalCluster"),
        (["--cluster", "pbs", "--scheduler", "tcp://x:1"], "leave out --scheduler"),
        (["--cluster", "slurm", "--finish-in", "soon", "--dry-run"], "finish_in: expected"),
    ],
)
def test_options_that_do_not_fit_a_batch_cluster_are_named(extra, message, tmp_path):
    done = subprocess.run(
        [*COMMAND, "classify", "--out", str(tmp_path / "x.zarr"), *extra],
        env=ENV,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_cores_and_memory_come_from_the_arguments_or_the_config(monkeypatch):
    pytest.importorskip("dask_jobqueue")
    import dask

    with dask.config.set({"jobqueue.slurm.cores": None, "jobqueue.slurm.memory": None}):
        with pytest.raises(auroradask.ArgumentError, match="jobqueue.slurm.memory"):
            auroradask.batch_cluster("slurm", cores=2)
    with pytest.raises(auroradask.ArgumentError, match="cluster: expected one of"):
        auroradask.batch_cluster("lsf", cores=1, memory="1GB")
    with pytest.raises(auroradask.ArgumentError, match="minimum_jobs: expected 1 to jobs"):
        auroradask.batch_cluster("slurm", cores=1, memory="1GB", minimum_jobs=0)


def test_the_job_script_carries_the_settings_and_retires_before_the_wall_time(monkeypatch):
    pytest.importorskip("dask_jobqueue")
    import dask

    started = {}

    class Recorder:  # stands in for SLURMCluster: the options it would be given
        class job_cls:  # noqa: N801 - as dask-jobqueue names it
            submit_command = "sh"  # on every PATH

        def __init__(self, **options):
            started.update(options)
            raise ValueError("stop here")

    import dask_jobqueue

    monkeypatch.setattr(dask_jobqueue, "SLURMCluster", Recorder)
    config = {
        "jobqueue.slurm.cores": 8,
        "jobqueue.slurm.memory": "16GB",
        "jobqueue.slurm.worker-extra-args": ["--resources", "io=1"],
    }
    with dask.config.set(config), pytest.raises(auroradask.ArgumentError, match="stop here"):
        auroradask.batch_cluster("slurm", walltime="04:00:00", queue="short", account="aurora")
    assert started["cores"] == 8 and started["memory"] == "16GB"
    assert started["processes"] == 8  # a worker process per core
    assert started["queue"] == "short" and started["account"] == "aurora"
    args = started["worker_extra_args"]
    assert args[:2] == ["--resources", "io=1"]  # the config's arguments are kept
    lifetime = walltime_seconds(args[args.index("--lifetime") + 1].rstrip("s") + "s")
    stagger = int(args[args.index("--lifetime-stagger") + 1].rstrip("s"))
    assert lifetime + stagger < 4 * 3600
    assert "export MALLOC_MMAP_THRESHOLD_=16777216" in started["job_script_prologue"]
    np.testing.assert_equal(started["walltime"], "04:00:00")


@pytest.mark.slurm
def test_the_dashboard_page_of_a_batch_scheduler_answers(slurm, tmp_path, monkeypatch):
    """The dashboard link and auroradask's page work as they do locally."""
    for name, value in slurm.environ().items():  # sbatch finds this SLURM
        monkeypatch.setenv(name, value)
    client = auroradask.batch_cluster(
        "slurm",
        jobs=1,
        minimum_jobs=1,
        cores=1,
        memory="1GB",
        queue=slurm.partition,
        dashboard_address="127.0.0.1:0",
        log_directory=str(tmp_path),
    )
    try:
        link = auroradask.dashboard_link(client)
        page = auroradask.dashboard_page(client)
        for url in (link, page):
            with urllib.request.urlopen(url, timeout=30) as response:
                assert response.status == 200
    finally:
        client.close()


@pytest.mark.slurm
@pytest.mark.parametrize("adapt", [False, True])
def test_jobs_the_batch_system_refuses_are_an_error_at_once(slurm, tmp_path, monkeypatch, adapt):
    """A partition that does not exist: sbatch's own message, not an hour's wait."""
    for name, value in slurm.environ().items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    with pytest.raises(auroradask.ClusterError, match="refused the jobs: .*invalid partition"):
        auroradask.batch_cluster(
            "slurm",
            jobs=2,
            minimum_jobs=1,
            adapt=adapt,
            cores=1,
            memory="1GB",
            queue="no-such-partition",
            dashboard_address="127.0.0.1:0",
            log_directory=str(tmp_path),
        )
    assert time.monotonic() - started < 60
    assert not slurm.jobs()


def test_a_pbs_job_script_has_the_queue_account_and_wall_time(tmp_path, monkeypatch):
    """No PBS here: a qsub that takes the job and does nothing; the script is what it gets."""
    pytest.importorskip("dask_jobqueue")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(auroradask.ArgumentError, match="no qsub on this machine's PATH"):
        auroradask.batch_cluster("pbs", cores=1, memory="1GB")
    for name, text in (("qsub", "echo 1.fake"), ("qdel", "exit 0")):
        (tmp_path / name).write_text(f"#!/bin/sh\n{text}\n")
        (tmp_path / name).chmod(0o755)
    client = auroradask.batch_cluster(
        "pbs",
        jobs=3,
        minimum_jobs=1,
        cores=4,
        memory="8GB",
        walltime="04:00:00",
        queue="short",
        account="aurora",
        dashboard_address="127.0.0.1:0",
        log_directory=str(tmp_path),
    )
    try:
        script = client.cluster.job_script()
    finally:
        client.close()
    for line in ("#PBS -q short", "#PBS -A aurora", "#PBS -l walltime=04:00:00"):
        assert line in script
    assert "--nthreads 1 " in script and "--nworkers 4 " in script  # a process per core
    lifetime = int(script.split("--lifetime ", 1)[1].split("s", 1)[0])
    stagger = int(script.split("--lifetime-stagger ", 1)[1].split("s", 1)[0])
    assert lifetime + stagger < 4 * 3600
