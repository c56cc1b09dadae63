"""What every ``auroradask`` subcommand shares: site lists, and logging set up once.

Logging: one handler on stderr (on the root logger), ``auroradask: LEVEL: message``, for
auroradask, Dask and Python warnings alike, in this process and (through a worker plugin) in the LocalCluster's
worker processes, whose warnings would otherwise print raw with their own format.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

from distributed.diagnostics.plugin import WorkerPlugin

import auroradask

FORMAT = "auroradask: %(levelname)s: %(message)s"
#: loggers whose level -v/-q set; distributed's own default shows INFO lines on every start
LOGGERS = ("auroradask", "distributed", "py.warnings")


#: What a command that reads frames reads when given no data option: the bundled sample.
SAMPLE = {"site": ["gill"], "start": "2014-03-10T06:00", "end": "2014-03-10T06:06"}


def frames_request(args: argparse.Namespace, command: str) -> dict:
    """``source``, ``site``, ``start``, ``end`` of a command's frames.

    No data option at all: the bundled sample (gill, 2014-03-10 06:00-06:06 UT), as every
    command that reads frames does. Otherwise ``--source``, ``--site`` and ``--start`` are
    needed; ``--end`` defaults to the end of the start's day (the API reads a date alone as
    the end as including that day).

    Raises
    ------
    ArgumentError
        Naming the missing options (exit code 2).
    """
    names = ("source", "site", "start", "end")
    if all(getattr(args, n, None) is None for n in names):
        return {"source": auroradask.sample_archive(), **SAMPLE}
    missing = [f"--{n}" for n in names[:3] if getattr(args, n, None) is None]
    if missing:
        raise auroradask.ArgumentError(
            f"{command}: {' '.join(missing)} required when data options are given "
            "(none: the bundled sample)"
        )
    return {
        "source": args.source,
        "site": args.site,
        "start": args.start,
        "end": args.end or args.start[:10],
    }


def batch_size(value: str) -> int | str:
    """An argparse type: ``auto`` or a whole number >= 1 (frames per onnxruntime call)."""
    return value if value == "auto" else positive_int(value)


BATCH_HELP = (
    "frames per onnxruntime call (default auto: from the model's activation size, at most 32)"
)


def site_list(value: str) -> list[str]:
    """``--site gill,fsmi`` and ``--site gill --site fsmi`` both give ``["gill", "fsmi"]``."""
    return [s.strip() for s in value.split(",") if s.strip()]


def threads_for(model, args) -> int:
    """--threads-per-worker's default: see auroradask.threads_for_model (said when not 1).

    Only for a LocalCluster shaped by auroradask: with --scheduler, --workers or an explicit
    --memory-limit (which is per worker) the user has chosen the shape, and it stays one
    thread per worker.
    """
    if args.scheduler or args.workers or args.memory_limit not in (None, "auto"):
        return 1
    threads = auroradask.threads_for_model(model)
    if threads > 1 and not getattr(args, "quiet", False):
        print(
            f"model {model.name} is {os.path.getsize(model.path) / 2**20:.0f} MB: one worker "
            f"with {threads} threads, so that its weights are in memory once "
            "(--threads-per-worker to choose)"
        )
    return threads


def positive_int(value: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}")
    return number


def level_of(verbose: int, quiet: bool) -> int:
    if quiet:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


class _Stderr(logging.StreamHandler):
    """A handler on whatever ``sys.stderr`` is when a record comes (not when it was made)."""

    _auroradask = True

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _route(level: int) -> None:
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_auroradask", False)]:
        root.removeHandler(old)
    handler = _Stderr()
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        # distributed installs its own stderr handler and stops propagation: its records
        # go through the root's handler instead, so that every line looks alike
        for old in [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]:
            logger.removeHandler(old)
        logger.setLevel(level)
        logger.propagate = True
    logging.captureWarnings(True)
    if level > logging.WARNING:
        warnings.simplefilter("ignore")


def configure_logging(verbose: int = 0, quiet: bool = False) -> int:
    """Set up logging once for the command; returns the level."""
    level = level_of(verbose, quiet)
    _route(level)
    return level


class WorkerLogging(WorkerPlugin):
    """The same logging set-up in each worker process (warnings of tasks included)."""

    name = "auroradask-logging"

    def __init__(self, level: int) -> None:
        self.level = level

    def setup(self, worker) -> None:
        _route(self.level)


def worker_logging(client, level: int) -> None:
    """Route the workers' logging and warnings through the command's format."""
    try:
        client.register_plugin(WorkerLogging(level))
    except Exception as error:  # a remote cluster that cannot take it keeps its own logging
        logging.getLogger("auroradask").debug("worker logging not set up: %s", error)


class UsageError(Exception):
    """Bad arguments found by the parser: reported in one line, exit code 2."""


def add_cluster_options(cluster) -> None:
    """The options that shape the Dask cluster, the same for every command that starts one."""
    cluster.add_argument(
        "--scheduler",
        help="address (tcp://host:8786) or scheduler file of a running Dask scheduler",
    )
    cluster.add_argument(
        "--workers",
        type=positive_int,
        help="LocalCluster worker processes (default: cores / threads)",
    )
    cluster.add_argument(
        "--threads-per-worker",
        type=positive_int,
        help="threads per LocalCluster worker (default 1; for a model file of 32 MB or more, "
        "one worker with a thread per core, so that its weights are in memory once)",
    )
    cluster.add_argument(
        "--memory-limit",
        default="auto",
        help="memory per LocalCluster worker, e.g. 4GB (default auto)",
    )
    cluster.add_argument(
        "--dashboard-address",
        default="127.0.0.1:8787",
        help="LocalCluster dashboard address (default 127.0.0.1:8787)",
    )
    cluster.add_argument(
        "--performance-report", metavar="FILE.html", help="write a Dask performance report"
    )


def print_summary(summary: auroradask.WriteSummary, out: str) -> None:
    """What a write did, for commands that classify or embed into a store."""
    if summary.written == 0:
        # a run with nothing to do reports no rate: there was none to measure
        print(f"nothing to do: all {summary.skipped} slots are in {out} already")
        return
    ok = summary.status_counts.get("ok", 0)
    print(f"classified {ok} frames into {out}")
    skipped = {k: v for k, v in summary.status_counts.items() if k != "ok"}
    print("skipped: " + (", ".join(f"{k} {v}" for k, v in skipped.items()) or "none"))
    if summary.skipped:
        print(f"already in the store: {summary.skipped} slots")
    print(
        "per class: " + (", ".join(f"{k} {v}" for k, v in summary.label_counts.items()) or "none")
    )
    slots = summary.written / summary.seconds if summary.seconds else 0.0
    print(
        f"wall time {summary.seconds:.1f} s, {summary.frames_per_second:.1f} frames/s "
        f"({summary.written} slots written, {slots:.1f} slots/s)"
    )
