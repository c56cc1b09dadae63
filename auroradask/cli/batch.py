"""``auroradask classify --cluster slurm|pbs``: the options, the cluster, the dry-run plan.

Every option maps to an argument of :func:`auroradask.batch_cluster` or
:func:`auroradask.plan_batch`; what an option leaves out comes from the dask config's
``jobqueue.<kind>`` section (``~/.config/dask/auroradask.yaml``), which dask-jobqueue reads.
"""

from __future__ import annotations

import argparse

import dask

import auroradask

from ..distributed._batch import format_walltime
from .options import positive_int

#: LocalCluster options that a batch cluster does not take (its jobs have their own shape)
LOCAL_ONLY = ("workers", "threads_per_worker")


def add_options(cluster) -> None:
    """The batch options, in the classify command's "cluster" group."""
    cluster.add_argument(
        "--cluster",
        choices=("local", "slurm", "pbs"),
        default="local",
        help="where the workers run: a LocalCluster on this machine (default), or SLURM or "
        "PBS batch jobs through dask-jobqueue (pip install 'auroradask[batch]')",
    )
    cluster.add_argument(
        "--jobs",
        type=positive_int,
        help="batch: jobs at most, scaled with the work (default: the config's "
        "auroradask.batch.jobs, else 4)",
    )
    cluster.add_argument(
        "--minimum-jobs",
        type=int,
        help="batch: jobs kept while idle (default 1)",
    )
    cluster.add_argument(
        "--no-adapt",
        action="store_true",
        help="batch: ask for --jobs jobs at once and keep them, instead of adaptive scaling",
    )
    cluster.add_argument(
        "--cores-per-job", type=positive_int, help="batch: cores per job (or jobqueue.<kind>.cores)"
    )
    cluster.add_argument(
        "--memory-per-job", help="batch: memory per job, e.g. 16GB (or jobqueue.<kind>.memory)"
    )
    cluster.add_argument(
        "--walltime",
        help="batch: wall time per job, e.g. 04:00:00 (workers retire a few minutes before it)",
    )
    cluster.add_argument(
        "--queue", "--partition", dest="queue", help="batch: SLURM partition or PBS queue"
    )
    cluster.add_argument("--account", help="batch: account to charge")
    cluster.add_argument(
        "--interface", help="batch: network interface between scheduler and workers (ib0, eth0)"
    )
    cluster.add_argument("--job-log-directory", help="batch: folder for the jobs' output files")
    cluster.add_argument(
        "--no-workers-timeout",
        metavar="DURATION",
        help="batch: stop when no worker has been left for this long, e.g. 30m (default 1h)",
    )
    cluster.add_argument(
        "--finish-in",
        metavar="DURATION",
        default="24h",
        help="batch, with --dry-run: size the jobs to finish within this time (default 24h)",
    )


def chosen(args: argparse.Namespace) -> bool:
    """Whether the command asks for a batch cluster; refuses options that do not fit it."""
    if args.cluster == "local":
        return False
    if args.scheduler:
        raise auroradask.ArgumentError(
            f"cluster: --cluster {args.cluster} starts its own scheduler; leave out --scheduler"
        )
    given = [f"--{n.replace('_', '-')}" for n in LOCAL_ONLY if getattr(args, n) is not None]
    if args.memory_limit not in (None, "auto"):
        given.append("--memory-limit")
    if given:
        raise auroradask.ArgumentError(
            f"cluster: {', '.join(given)} shape a LocalCluster; a batch job's shape is "
            "--cores-per-job and --memory-per-job"
        )
    return True


def processes_for(model, kind: str, cores: int | None) -> int | None:
    """Worker processes per job: the config's ``jobqueue.<kind>.processes`` if it sets them
    (None), else one per core, or one with a thread per core for a model of 32 MB or more
    (see auroradask.threads_for_model)."""
    if cores is None or dask.config.get(f"jobqueue.{kind}.processes", None):
        return None
    return 1 if auroradask.threads_for_model(model, cores) > 1 else cores


def start_client(args: argparse.Namespace, model):
    """A client on the batch cluster the options describe."""
    cores = args.cores_per_job or dask.config.get(f"jobqueue.{args.cluster}.cores", None)
    return auroradask.batch_cluster(
        args.cluster,
        jobs=args.jobs,
        minimum_jobs=args.minimum_jobs,
        adapt=False if args.no_adapt else None,
        cores=args.cores_per_job,
        memory=args.memory_per_job,
        processes=processes_for(model, args.cluster, int(cores) if cores else None),
        walltime=args.walltime,
        queue=args.queue,
        account=args.account,
        interface=args.interface,
        log_directory=args.job_log_directory,
        dashboard_address=args.dashboard_address,
        no_workers_timeout=args.no_workers_timeout,
    )


def dry_run(results, args: argparse.Namespace) -> int:
    """Print the frames, the core-hours and a job shape for --finish-in; write nothing."""
    cores = args.cores_per_job or dask.config.get(f"jobqueue.{args.cluster}.cores", None) or 1
    plan = auroradask.plan_batch(
        results,
        args.out,
        group=args.group,
        finish_in=args.finish_in,
        cores_per_job=int(cores),
        walltime=args.walltime,
    )
    print("dry run: chunks are computed here to measure the rate, nothing is written")
    print(f"frames: at most {plan.frames} in {plan.minute_files} minute files")
    for note in plan.notes:
        print(note)
    if plan.core_hours is None:
        return 0
    print(
        f"calibration: {plan.calibration_frames} frames of the first chunk that holds frames "
        f"in {plan.calibration_seconds:.1f} s on one thread ({plan.seconds_per_frame:.3f} s a "
        "frame, model loading included)"
    )
    print(f"core-hours: {plan.core_hours:.3g}")
    runs = (
        f"; {plan.job_runs} jobs in all, as jobs reach their wall time"
        if plan.job_runs and plan.job_runs > plan.jobs
        else ""
    )
    print(
        f"suggested to finish in {args.finish_in}: --cluster {args.cluster} --jobs {plan.jobs} "
        f"--cores-per-job {plan.cores_per_job} --walltime {format_walltime(plan.walltime)} "
        f"({plan.jobs} x {plan.cores_per_job} cores busy for about "
        f"{_hours(plan.expected_hours())}{runs})"
    )
    return 0


def _hours(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 1 else f"{max(1, round(hours * 60))} min"
