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

:func:`auroradask.plan_batch` (``auroradask.store``) turns a request into numbers before any
job is asked for.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
from typing import Any

import dask
from dask.utils import parse_timedelta
from distributed import Client

from ..errors import ArgumentError, ClusterError
from ._client import WORKER_ENVIRON, _with_page

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
    jobs, minimum_jobs, adapt = _job_counts(jobs, minimum_jobs, adapt)
    timeout = no_workers_timeout
    if timeout is None:
        timeout = _config("no-workers-timeout", DEFAULT_NO_WORKERS_TIMEOUT)
    timeout_s = duration_seconds(timeout, "no_workers_timeout")
    section = f"jobqueue.{kind}"
    size = _job_size(section, cores, memory, processes)
    named = dict(queue=queue, account=account, interface=interface, log_directory=log_directory)
    options = _cluster_options(section, size, walltime, dashboard_address, named, cluster_options)
    cls = dask_jobqueue.SLURMCluster if kind == "slurm" else dask_jobqueue.PBSCluster
    cluster = _start_cluster(cls, kind, options, timeout_s)
    client = _scaled_client(cluster, adapt, minimum_jobs, jobs, dashboard_address)
    log.info("%s cluster: %s", kind, cluster.job_script().replace("\n", " | "))
    return _with_page(client, dashboard_page)


def _job_counts(
    jobs: int | None, minimum_jobs: int | None, adapt: bool | None
) -> tuple[int, int, bool]:
    """``jobs``, ``minimum_jobs`` and ``adapt`` from the arguments, else the config, checked.

    Raises
    ------
    ArgumentError
        If ``jobs`` is below 1 or ``minimum_jobs`` is not between 1 and ``jobs``.
    """
    jobs = int(jobs if jobs is not None else _config("jobs", DEFAULT_JOBS))
    minimum_jobs = int(minimum_jobs if minimum_jobs is not None else _config("minimum-jobs", 1))
    adapt = bool(adapt if adapt is not None else _config("adapt", True))
    if jobs < 1:
        raise ArgumentError(f"jobs: expected >= 1, got {jobs}")
    if not 1 <= minimum_jobs <= jobs:
        # with none, no job starts before the run submits work, and the run waits for one
        # worker to probe before it submits any
        raise ArgumentError(f"minimum_jobs: expected 1 to jobs ({jobs}), got {minimum_jobs}")
    return jobs, minimum_jobs, adapt


def _job_size(
    section: str, cores: int | None, memory: str | None, processes: int | None
) -> dict[str, Any]:
    """A job's ``cores``, ``memory`` and worker ``processes`` from the arguments, else the
    config ``section`` (``jobqueue.<kind>``), checked.

    Raises
    ------
    ArgumentError
        If cores or memory are given neither here nor in the config, or ``processes`` does not
        divide ``cores``.
    """
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
    return {"cores": cores, "memory": memory, "processes": processes}


def _cluster_options(
    section: str,
    size: dict[str, Any],
    walltime: str | None,
    dashboard_address: str,
    named: dict[str, Any],
    cluster_options: dict[str, Any],
) -> dict[str, Any]:
    """The keyword arguments of the dask-jobqueue cluster: the job's ``size`` (cores, memory,
    processes) and wall time (else the config ``section``'s), the workers' retirement before
    it, the config's prologue and scheduler options, the ``named`` settings that are not
    None, then ``cluster_options``."""
    walltime = walltime or dask.config.get(f"{section}.walltime", None)
    options: dict[str, Any] = {
        **size,
        "walltime": walltime,
        "worker_extra_args": _worker_args(section, walltime),
        "job_script_prologue": _prologue(section),
        "scheduler_options": {
            **(dask.config.get(f"{section}.scheduler-options", None) or {}),
            "dashboard_address": dashboard_address,
        },
    }
    for name, value in named.items():
        if value is not None:
            options[name] = value
    options.update(cluster_options)
    return options


def _start_cluster(cls: type, kind: str, options: dict[str, Any], timeout_s: float) -> Any:
    """A started ``cls`` (dask-jobqueue's SLURMCluster or PBSCluster) of ``options``, whose
    scheduler stops a run after ``timeout_s`` seconds without a worker.

    Raises
    ------
    ArgumentError
        If the batch system's submit command is not on the PATH, or dask-jobqueue refuses
        the settings.
    """
    submit = cls.job_cls.submit_command
    if shutil.which(submit) is None:  # else jobs fail to start and the run waits for ever
        raise ArgumentError(
            f"cluster: no {submit} on this machine's PATH; run on the {kind.upper()} "
            "cluster's login node"
        )
    # read by the scheduler, which this process runs, when the cluster starts it
    with dask.config.set({"distributed.scheduler.no-workers-timeout": f"{timeout_s}s"}):
        try:
            return cls(**options)
        except ValueError as error:
            raise ArgumentError(f"cluster: dask-jobqueue refused the settings: {error}") from None


def _scaled_client(
    cluster: Any, adapt: bool, minimum_jobs: int, jobs: int, dashboard_address: str
) -> Client:
    """A client that owns ``cluster``, once the cluster is told to adapt between
    ``minimum_jobs`` and ``jobs`` (or to ask for ``jobs`` at once); the cluster is closed if
    that fails."""
    try:
        _submit(cluster, minimum_jobs if adapt else jobs)
        if adapt:
            cluster.adapt(minimum_jobs=minimum_jobs, maximum_jobs=jobs)
        client = _BatchClient(cluster)
        host = dashboard_address.rsplit(":", 1)[0].strip("[]")
        if host in ("127.0.0.1", "localhost", "::1"):
            client.dashboard_host = "127.0.0.1" if host == "localhost" else host
    except BaseException:
        cluster.close()
        raise
    return client


def _submit(cluster: Any, jobs: int) -> None:
    """Ask for ``jobs`` jobs and wait until they are submitted; raise if the batch system
    refused them.

    ``cluster.scale`` leaves the submission to the cluster's event loop, and dask-jobqueue
    only logs a refusal (a partition or account that does not exist, a wall time over the
    limit): the run then waited for workers that never came until the no-workers timeout,
    an hour by default. Here the scaling runs on the loop and its state correction (a
    private method of distributed's SpecCluster, the one ``scale`` schedules) is awaited,
    so the ``sbatch``/``qsub`` error comes back to the caller. Jobs submitted later by
    adapting are not checked: those refusals are only logged.

    Raises
    ------
    ClusterError
        With the batch system's own message.
    """

    async def scale_and_wait() -> None:
        cluster.scale(jobs=jobs)
        await cluster._correct_state()  # started before the one scale scheduled: ours

    try:
        cluster.sync(scale_and_wait)
    except RuntimeError as error:
        for name, job in list(cluster.workers.items()):
            if getattr(job, "job_id", "") is None:  # never submitted: nothing to cancel,
                cluster.workers.pop(name)  # and distributed's close asserts every job it
                cluster.worker_spec.pop(name, None)  # made was closed
                cluster._created.discard(job)
        said = [line for line in str(error).splitlines() if "error" in line.lower()]
        raise ClusterError(
            f"cluster: the batch system refused the jobs: {'; '.join(said) or error}"
        ) from None


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
    return duration_seconds(text, "walltime")


def format_walltime(seconds: float) -> str:
    """``HH:MM:SS`` (hours may exceed 24), as both SLURM and PBS read it."""
    seconds = int(math.ceil(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"


def duration_seconds(value: str | float, name: str) -> int:
    """Whole seconds of a duration (``"90s"``, ``"24h"``, seconds); ArgumentError naming ``name``."""
    try:
        seconds = parse_timedelta(value, default="s")
    except (ValueError, KeyError, TypeError):
        seconds = None
    if seconds is None or seconds <= 0:
        raise ArgumentError(
            f"{name}: expected a duration such as 90s, 30m, 24h or 2d, got {value!r}"
        )
    return int(seconds)
