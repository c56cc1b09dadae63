"""Batch clusters: Dask workers as SLURM or PBS jobs (dask-jobqueue), and a plan for them.

A research group's core-hours are on a university batch cluster: the THEMIS archive is about
700 M frames, hundreds to thousands of core-hours (``benchmarks/README.md``). There, each
Dask worker is a batch job that waits in the queue, runs until its wall time, and may be
cancelled or pre-empted on the way. :func:`batch_cluster` starts such a cluster with
dask-jobqueue and scales it adaptively (``cluster.adapt(minimum_jobs, maximum_jobs)``): jobs
are asked for while there is work and given back when there is none, and a job that ends
early is replaced. Workers retire by themselves a few minutes before their wall time
(``--lifetime``), so that their work moves to others instead of being killed mid-task.

Settings come, in this order, from the arguments, from the dask config's ``jobqueue:`` section
(``~/.config/dask/*.yaml``; dask-jobqueue reads ``jobqueue.slurm.cores``, ``.memory``,
``.walltime``, ``.queue``, ``.account``, ``.interface``, … itself) and from its
``auroradask.batch`` section (``cluster``, ``jobs``, ``minimum-jobs``, ``adapt``,
``no-workers-timeout``).

:func:`plan_batch` turns a request into numbers before any job is asked for: frames, core-hours
from a calibration on the first chunk that holds frames, and jobs × cores × wall time to finish
within a target time.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr
from dask.utils import parse_timedelta
from distributed import Client

from ._cluster import WORKER_ENVIRON, _with_page
from ._schema import OK, SLOT, SLOTS_PER_MINUTE
from .errors import ArgumentError

log = logging.getLogger("auroradask")

KINDS = ("slurm", "pbs")
#: Jobs at most when neither the arguments nor the config say: a small first run.
DEFAULT_JOBS = 4
#: How long a run waits with no worker at all (every job cancelled, pre-empted or at its wall
#: time, and no replacement started) before it stops; replacements wait in the queue too.
DEFAULT_NO_WORKERS_TIMEOUT = "1h"


def _config(key: str, default: Any = None) -> Any:
    return dask.config.get(f"auroradask.batch.{key}", default=default)


def batch_cluster(
    kind: str | None = None,
    *,
    jobs: int | None = None,
    minimum_jobs: int | None = None,
    adapt: bool | None = None,
    cores: int | None = None,
    memory: str | None = None,
    processes: int | None = None,
    walltime: str | None = None,
    queue: str | None = None,
    account: str | None = None,
    interface: str | None = None,
    log_directory: str | None = None,
    dashboard_address: str = ":8787",
    dashboard_page: bool = True,
    no_workers_timeout: str | float | None = None,
    **cluster_options: Any,
) -> Client:
    """A client on a new SLURM or PBS cluster of Dask workers, scaled adaptively.

    Parameters
    ----------
    kind
        ``"slurm"`` or ``"pbs"`` (default: the config's ``auroradask.batch.cluster``).
    jobs
        Jobs at most (with ``adapt``), or the fixed number of jobs (without). Default: the
        config's ``auroradask.batch.jobs``, else 4.
    minimum_jobs
        Jobs kept while idle (default, and at least, 1: a run probes a worker before it
        reads anything, see :func:`auroradask.to_zarr`, so one job must start without work).
    adapt
        Scale between ``minimum_jobs`` and ``jobs`` with the work (default True); False asks
        for ``jobs`` jobs at once and keeps them.
    cores, memory
        Per job, e.g. ``8`` and ``"16GB"`` (dask-jobqueue's ``cores`` and ``memory``);
        default: the config's ``jobqueue.<kind>.cores`` and ``.memory``.
    processes
        Dask worker processes per job, each with ``cores / processes`` threads (default:
        one per core, as a LocalCluster runs a small model; give 1 for a model of 32 MB or
        more, whose weights are then in memory once per job).
    walltime
        Per job, as the batch system writes it (``"04:00:00"``); default: the config's, else
        dask-jobqueue's 30 minutes. Workers retire a few minutes before it.
    queue, account
        Partition (SLURM) or queue (PBS), and the account to charge.
    interface
        Network interface the workers and the scheduler talk over (``ib0``, ``eth0``).
    log_directory
        Folder for the jobs' output files (default: the working directory).
    dashboard_address
        Where the scheduler, which runs in this process, serves its dashboard.
    dashboard_page
        Serve auroradask's page (``/auroradask``) beside Dask's dashboard.
    no_workers_timeout
        Stop a run that has had no worker at all for this long (``"1h"``, seconds): every job
        cancelled or pre-empted and none started again. Default: the config's
        ``auroradask.batch.no-workers-timeout``, else one hour.
    **cluster_options
        Passed to ``dask_jobqueue.SLURMCluster`` or ``PBSCluster`` (``job_extra_directives``,
        ``local_directory``, ``python``, …).

    Returns
    -------
    distributed.Client
        Closing it closes the cluster: its jobs are cancelled.

    Raises
    ------
    ArgumentError
        If ``kind`` is unknown, dask-jobqueue is not installed, the batch system's submit
        command (``sbatch``, ``qsub``) is not on the PATH, or cores or memory are given
        neither here nor in the config.
    """
    kind = kind or _config("cluster")
    if kind not in KINDS:
        raise ArgumentError(f"cluster: expected one of {KINDS}, got {kind!r}")
    try:
        import dask_jobqueue
    except ImportError:
        raise ArgumentError(
            "cluster: a batch cluster needs dask-jobqueue: pip install 'auroradask[batch]'"
        ) from None
    jobs = int(jobs if jobs is not None else _config("jobs", DEFAULT_JOBS))
    minimum_jobs = int(minimum_jobs if minimum_jobs is not None else _config("minimum-jobs", 1))
    adapt = bool(adapt if adapt is not None else _config("adapt", True))
    if jobs < 1:
        raise ArgumentError(f"jobs: expected >= 1, got {jobs}")
    if not 1 <= minimum_jobs <= jobs:
        # with none, no job starts before the run submits work, and the run waits for one
        # worker to probe before it submits any
        raise ArgumentError(f"minimum_jobs: expected 1 to jobs ({jobs}), got {minimum_jobs}")
    timeout = no_workers_timeout
    if timeout is None:
        timeout = _config("no-workers-timeout", DEFAULT_NO_WORKERS_TIMEOUT)
    timeout_s = _seconds(timeout, "no_workers_timeout")
    section = f"jobqueue.{kind}"
    cores = cores if cores is not None else dask.config.get(f"{section}.cores", None)
    memory = memory if memory is not None else dask.config.get(f"{section}.memory", None)
    missing = [n for n, v in (("cores", cores), ("memory", memory)) if v is None]
    if missing:
        raise ArgumentError(
            f"{' and '.join(missing)}: per job, give them (--cores-per-job, --memory-per-job) "
            f"or set {', '.join(f'{section}.{n}' for n in missing)} in a dask config file "
            "(~/.config/dask/auroradask.yaml)"
        )
    cores = int(cores)
    processes = int(processes if processes is not None else _processes(section, cores))
    if processes < 1 or cores % processes:
        raise ArgumentError(f"processes: expected a divisor of cores ({cores}), got {processes}")
    walltime = walltime or dask.config.get(f"{section}.walltime", None)
    options: dict[str, Any] = {
        "cores": cores,
        "memory": memory,
        "processes": processes,
        "walltime": walltime,
        "worker_extra_args": _worker_args(section, walltime),
        "job_script_prologue": _prologue(section),
        "scheduler_options": {
            **(dask.config.get(f"{section}.scheduler-options", None) or {}),
            "dashboard_address": dashboard_address,
        },
    }
    for name, value in (
        ("queue", queue),
        ("account", account),
        ("interface", interface),
        ("log_directory", log_directory),
    ):
        if value is not None:
            options[name] = value
    options.update(cluster_options)
    cls = dask_jobqueue.SLURMCluster if kind == "slurm" else dask_jobqueue.PBSCluster
    submit = cls.job_cls.submit_command
    if shutil.which(submit) is None:  # else jobs fail to start and the run waits for ever
        raise ArgumentError(
            f"cluster: no {submit} on this machine's PATH; run on the {kind.upper()} "
            "cluster's login node"
        )
    # read by the scheduler, which this process runs, when the cluster starts it
    with dask.config.set({"distributed.scheduler.no-workers-timeout": f"{timeout_s}s"}):
        try:
            cluster = cls(**options)
        except ValueError as error:
            raise ArgumentError(f"cluster: dask-jobqueue refused the settings: {error}") from None
    try:
        if adapt:
            cluster.adapt(minimum_jobs=minimum_jobs, maximum_jobs=jobs)
        else:
            cluster.scale(jobs=jobs)
        client = _BatchClient(cluster)
        host = dashboard_address.rsplit(":", 1)[0].strip("[]")
        if host in ("127.0.0.1", "localhost", "::1"):
            client.dashboard_host = "127.0.0.1" if host == "localhost" else host
    except BaseException:
        cluster.close()
        raise
    log.info("%s cluster: %s", kind, cluster.job_script().replace("\n", " | "))
    return _with_page(client, dashboard_page)


class _BatchClient(Client):
    """A client that owns its batch cluster: closing it closes the cluster (cancels jobs).

    Its dashboard link names the host the dashboard listens on: the scheduler listens where
    the jobs reach it, but a dashboard kept private to this machine (127.0.0.1) is not
    served at that address.
    """

    dashboard_host: str | None = None

    @property
    def dashboard_link(self) -> str:
        link = super().dashboard_link
        if link and self.dashboard_host and "://" in link:
            scheme, rest = link.split("://", 1)
            host = f"[{self.dashboard_host}]" if ":" in self.dashboard_host else self.dashboard_host
            return f"{scheme}://{host}:{rest.rsplit(':', 1)[1]}"
        return link

    def close(self, *args: Any, **kwargs: Any):
        cluster = self.cluster
        result = super().close(*args, **kwargs)
        if cluster is not None and not self.asynchronous:
            cluster.close()
        return result


def _processes(section: str, cores: int) -> int:
    configured = dask.config.get(f"{section}.processes", None)
    return int(configured) if configured else cores


def _worker_args(section: str, walltime: str | None) -> list[str]:
    """The config's extra worker arguments, and ``--lifetime`` before the wall time.

    A worker retires between ``walltime - margin ± stagger``: its results move to others
    and it leaves, instead of being killed with tasks in flight, and adaptive scaling asks
    for a replacement job. The margin is 10 % of the wall time, at least 3 minutes; jobs
    shorter than 10 minutes keep running to their end.
    """
    args = list(dask.config.get(f"{section}.worker-extra-args", None) or [])
    seconds = walltime_seconds(walltime) if walltime else None
    if seconds is None or seconds < 600 or any(a.startswith("--lifetime") for a in args):
        return args
    margin = max(180, int(seconds * 0.1))
    stagger = max(60, margin // 3)
    return [*args, "--lifetime", f"{seconds - margin}s", "--lifetime-stagger", f"{stagger}s"]


def _prologue(section: str) -> list[str]:
    """The config's job prologue, and the worker environment a LocalCluster gets too."""
    lines = list(dask.config.get(f"{section}.job-script-prologue", None) or [])
    exports = [f"export {k}={v}" for k, v in WORKER_ENVIRON.items()]
    # the statistical profiler costs the task threads time (see start_client)
    exports.append("export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False")
    return [*exports, *lines]


def walltime_seconds(walltime: str | int | float) -> int:
    """Seconds of a wall time as SLURM and PBS write it: ``MM``, ``HH:MM:SS``,
    ``D-HH:MM[:SS]``, or a duration such as ``"4h"``.

    Raises
    ------
    ArgumentError
        If it is none of those.
    """
    if isinstance(walltime, int | float) and not isinstance(walltime, bool):
        return int(walltime * 60)  # SLURM: a bare number is minutes
    text = str(walltime).strip()
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if match:
        days, first, second, third = match.groups()
        days = int(days or 0)
        if second is None:  # MM (or D-HH)
            value = int(first) * (3600 if match.group(1) else 60)
        elif third is None:  # HH:MM with days, MM:SS without (SLURM's reading)
            value = int(first) * 3600 + int(second) * 60 if days else int(first) * 60 + int(second)
        else:
            value = int(first) * 3600 + int(second) * 60 + int(third)
        return days * 86400 + value
    return _seconds(text, "walltime")


def format_walltime(seconds: float) -> str:
    """``HH:MM:SS`` (hours may exceed 24), as both SLURM and PBS read it."""
    seconds = int(math.ceil(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"


def _seconds(value: str | float, name: str) -> int:
    try:
        seconds = parse_timedelta(value, default="s")
    except (ValueError, KeyError, TypeError):
        seconds = None
    if seconds is None or seconds <= 0:
        raise ArgumentError(
            f"{name}: expected a duration such as 90s, 30m, 24h or 2d, got {value!r}"
        )
    return int(seconds)


# ---------------------------------------------------------------------------- the plan


@dataclass
class BatchPlan:
    """What a batch run would take: frames, core-hours, and a shape of jobs to finish in time.

    Attributes
    ----------
    frames
        Frames to classify at most: the slots to do that lie in minute files (20 per file).
    minute_files
        Minute files those frames are in.
    calibration_frames, calibration_seconds
        Frames of the chunk measured (the first chunk to do that holds frames) and how long
        one thread took to read, preprocess and classify them, model loading included.
    calibration_chunks
        Chunks computed to find it (those before it hold no frame).
    core_hours
        ``frames`` at the calibration's rate on one core.
    finish_in
        The target time (seconds) the jobs below are sized for.
    cores_per_job, jobs, walltime
        The suggested shape: ``jobs`` jobs of ``cores_per_job`` cores running at once, each
        for ``walltime`` seconds (the target, or the given wall time if shorter, when jobs
        are replaced as they end).
    job_runs
        Jobs asked for over the whole run (``jobs`` × how many wall times fit the target).
    """

    frames: int
    minute_files: int
    calibration_frames: int = 0
    calibration_seconds: float = 0.0
    calibration_chunks: int = 0
    core_hours: float | None = None
    finish_in: float | None = None
    cores_per_job: int = 1
    jobs: int | None = None
    walltime: float | None = None
    job_runs: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def seconds_per_frame(self) -> float | None:
        if not self.calibration_frames:
            return None
        return self.calibration_seconds / self.calibration_frames

    def expected_hours(self) -> float | None:
        """Hours the suggested jobs take at the measured rate."""
        if self.core_hours is None or not self.jobs:
            return None
        return self.core_hours / (self.jobs * self.cores_per_job)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["seconds_per_frame"] = self.seconds_per_frame
        return out


def plan_batch(
    results: xr.Dataset,
    store: str | os.PathLike,
    *,
    finish_in: str | float = "24h",
    cores_per_job: int = 1,
    walltime: str | float | None = None,
    group: str | None = None,
    storage_options: dict[str, Any] | None = None,
    max_calibration_chunks: int = 50,
) -> BatchPlan:
    """Frames, core-hours and a suggested jobs × cores × wall time for a batch run.

    Nothing is written. The rate comes from one chunk computed here on one thread (a task's
    work: read, preprocess, classify): the first chunk still to do that holds frames, so that
    an empty stretch of the archive (no files: nothing to read) does not pass for speed.

    Parameters
    ----------
    results
        From :func:`auroradask.classify` (lazy).
    store, group, storage_options
        As for :func:`auroradask.to_zarr`: slots the store holds are not counted.
    finish_in
        Target time for the whole run (``"24h"``, ``"3d"``, seconds).
    cores_per_job
        Cores of each job.
    walltime
        Longest wall time a job may ask for (the partition's limit); jobs then run one
        after another. Default: the target time.
    max_calibration_chunks
        Chunks to try before giving up finding one with frames.

    Returns
    -------
    BatchPlan
    """
    from ._store import plan_write

    target = _seconds(finish_in, "finish_in")
    if int(cores_per_job) < 1:
        raise ArgumentError(f"cores_per_job: expected >= 1, got {cores_per_job}")
    longest = walltime_seconds(walltime) if walltime is not None else None
    plan = plan_write(results, store, group=group, storage_options=storage_options, measure=False)
    todo = ~_held(results, plan, group, storage_options)
    files = _slots_with_files(results)
    minutes = results["time"].values.astype("datetime64[m]")
    if files is not None:
        todo &= files
        minute_files = int(sum(len(np.unique(minutes[row])) for row in todo))
    else:  # another reader than open_themis: every minute of the request may hold a file
        minute_files = plan.minute_files
    out = BatchPlan(
        frames=minute_files * SLOTS_PER_MINUTE,
        minute_files=minute_files,
        finish_in=float(target),
        cores_per_job=int(cores_per_job),
    )
    if not plan.to_do or not minute_files:
        out.notes.append("nothing to do" if not plan.to_do else "no minute file to read")
        return out
    _calibrate(results, todo, out, max_calibration_chunks)
    if out.seconds_per_frame is None:
        out.notes.append(
            f"no frame in the first {out.calibration_chunks} chunks to do: no rate measured"
        )
        return out
    out.core_hours = out.frames * out.seconds_per_frame / 3600
    run_for = min(target, longest) if longest else target
    cores = out.core_hours * 3600 / target  # busy all the target time
    out.jobs = max(1, math.ceil(cores / out.cores_per_job))
    # jobs finish sooner than the target when one job's cores are more than enough
    needed = out.core_hours * 3600 / (out.jobs * out.cores_per_job)
    out.walltime = float(min(run_for, _round_up(needed * 1.2 + 600)))
    out.job_runs = out.jobs * max(1, math.ceil(needed / out.walltime))
    return out


def _round_up(seconds: float) -> float:
    """To the next quarter of an hour: wall times are asked for in round numbers."""
    return math.ceil(seconds / 900) * 900


def _calibrate(results: xr.Dataset, todo: np.ndarray, out: BatchPlan, max_chunks: int) -> None:
    """Compute chunks to do that lie in minute files, in order, until one holds frames (a
    file may hold none: unreadable); keep its frames and time."""
    chunks = results["label"].chunks
    n = results.sizes["time"]
    edges = np.cumsum((0, *chunks[1])) if chunks is not None else np.array([0, n])
    tried = 0
    for i in range(results.sizes["site"]):
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            if not todo[i, lo:hi].any():
                continue
            if tried >= max_chunks:
                return
            tried += 1
            part = results[["label", "frame_status"]].isel(site=i, time=slice(int(lo), int(hi)))
            started = time.perf_counter()
            with dask.config.set(scheduler="synchronous"):  # one thread, as one task runs
                status, _ = dask.compute(part["frame_status"].data, part["label"].data)
            seconds = time.perf_counter() - started
            out.calibration_chunks = tried
            frames = int((status == OK).sum())
            if frames:
                out.calibration_frames, out.calibration_seconds = frames, seconds
                return


def _slots_with_files(results: xr.Dataset) -> np.ndarray | None:
    """``(site, time)`` bool: slots in a minute that has a file in the archive (listed again
    through the folder listings discovery kept); None where the archive is not known."""
    from ._workers import _ARCHIVES

    archive = _ARCHIVES.get(str(results.attrs.get("source", "")))
    if archive is None:
        return None
    times = results["time"].values
    sites = [str(s) for s in results["site"].values]
    found = archive.find_many(sites, pd.Timestamp(times[0]), pd.Timestamp(times[-1]) + SLOT)
    minutes = times.astype("datetime64[m]").astype("datetime64[ns]")
    return np.stack([np.isin(minutes, np.array(list(f), dtype="datetime64[ns]")) for f in found])


def _held(results, plan, group, storage_options) -> np.ndarray:
    """``(site, time)`` bool: slots the store holds already."""
    if not plan.in_store:
        return np.zeros((results.sizes["site"], results.sizes["time"]), dtype=bool)
    from ._store._layout import locate, quiet_zarr, read_state
    from ._store._write import _all_staged, _done_slots

    loc = locate(plan.store, group, storage_options)
    with quiet_zarr():
        state = read_state(loc)
    times = results["time"].values
    start = int((times[0] - state.times[0]) // SLOT)
    held = np.zeros((len(plan.sites), len(times)), dtype=bool)
    known = [i for i, s in enumerate(plan.sites) if s in state.sites]
    lo, hi = max(start, 0), min(start + len(times), len(state.times))
    if known and hi > lo:
        index = [state.sites.index(plan.sites[i]) for i in known]
        held[known, lo - start : hi - start] = _done_slots(loc, index, lo, hi, _all_staged(loc))
    return held
