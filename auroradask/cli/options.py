"""What every ``auroradask`` subcommand shares: site lists, and logging set up once.

Logging: one handler on stderr (on the root logger), ``auroradask: LEVEL: message``, for
auroradask, Dask and Python warnings alike, in this process and (through a worker plugin) in the LocalCluster's
worker processes, whose warnings would otherwise print raw with their own format.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import warnings

import pandas as pd
from dask.utils import parse_bytes
from distributed.diagnostics.plugin import WorkerPlugin

import auroradask

from .._schema import DEFAULT_CHUNK_MINUTES

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


# ----------------------------------------------------------------- one grammar of values
# Every value is checked where it is parsed, so that a bad one is an argument error (exit 2)
# before any cluster starts or any file is read, naming the option and what was typed.

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)?Z?")
_UNIT = re.compile(r"\s*\d+(?:\.\d+)?\s*[a-zA-Z]+\s*")


def ut_time(value: str) -> str:
    """An argparse type: an ISO UT date or time (``2014-03-10``, ``2014-03-10T06:00[:SS]``).

    Anything else is refused, naming what was typed: ``10/03/2014`` is March to some and
    October to others, and pandas would silently read it as October 3rd.
    """
    text = value.strip()
    if not _ISO.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO UT date or time: write YYYY-MM-DD or "
            "YYYY-MM-DDTHH:MM[:SS] (other forms are ambiguous)"
        )
    try:
        pd.Timestamp(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date: {error}") from None
    return text


def duration(value: str) -> str:
    """An argparse type: a duration with its unit (``30s``, ``5min``, ``2h``).

    A bare number is refused: pandas reads ``5`` as five nanoseconds.
    """
    if not _UNIT.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r}: give a number and a unit, e.g. 30s, 5min, 2h (a bare number has none)"
        )
    try:
        seconds = pd.Timedelta(value.strip()).total_seconds()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration (30s, 5min, 2h)") from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"expected a duration >= 0, got {value!r}")
    return value.strip()


def slots_or_duration(value: str) -> int | str:
    """An argparse type: a whole number of slots >= 1 (``5``) or a duration (``30s``)."""
    if value.strip().isdigit():
        return positive_int(value)
    return duration(value)


def positive_float(value: str) -> float:
    """An argparse type: a number > 0."""
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value!r}")
    return number


def non_negative_float(value: str) -> float:
    """An argparse type: a number >= 0 (``inf`` allowed)."""
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value!r}")
    return number


def fraction(value: str) -> float:
    """An argparse type: a number from 0 to 1 (a confidence)."""
    number = non_negative_float(value)
    if number > 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {value!r}")
    return number


def memory_limit(value: str) -> str:
    """An argparse type: ``auto`` or a size dask reads (``4GB``, ``512MiB``)."""
    if value == "auto":
        return value
    try:
        if parse_bytes(value) > 0:
            return value
    except (ValueError, TypeError):
        pass
    raise argparse.ArgumentTypeError(f"expected auto or a size such as 4GB, got {value!r}")


def _is_url(value: str) -> bool:
    return "://" in value and not value.startswith("file://")


def existing_file(value: str) -> str:
    """An argparse type: a local file that exists, or a URL (checked where it is read)."""
    if not _is_url(value) and not os.path.isfile(value):
        what = "a folder" if os.path.isdir(value) else "no such file"
        raise argparse.ArgumentTypeError(f"{value!r}: {what}")
    return value


def output_file(*suffixes: str):
    """An argparse type: a file to write, in a folder that exists, ending in ``suffixes``."""

    def check(value: str) -> str:
        if suffixes and not value.lower().endswith(suffixes):
            raise argparse.ArgumentTypeError(f"{value!r} must end in {' or '.join(suffixes)}")
        return _writable(value, folder=False)

    check.__name__ = "output_file"
    return check


#: a figure file: the suffixes matplotlib writes here
FIGURE = output_file(".png", ".pdf", ".svg")


def output_folder(value: str) -> str:
    """An argparse type: a folder to write into (made if missing), inside one that exists."""
    return _writable(value, folder=True)


def output_store(value: str) -> str:
    """An argparse type: a Zarr store, a local folder (not a file) or a URL."""
    if _is_url(value):
        return value
    return _writable(value, folder=True)


def _writable(value: str, folder: bool) -> str:
    if _is_url(value):
        return value
    path = os.path.abspath(value)
    if folder and os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"{value!r} is a file, not a folder")
    if not folder and os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{value!r} is a folder, not a file")
    parent = os.path.dirname(path.rstrip(os.sep)) or os.sep
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"{value!r}: the folder {parent} does not exist")
    return value


class _Deprecated(argparse.Action):
    """An old spelling, kept for one release: works, and says which one to use."""

    def __init__(self, option_strings, dest, use: str = "", **kwargs) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.use = use

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(
            f"auroradask: {option_string} is deprecated and goes in the next release; "
            f"use {self.use}",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def add_out(
    parser,
    help: str,
    *,
    type=None,
    metavar: str | None = None,
    required: bool = True,
    old: tuple[str, ...] = ("--output",),
    **kwargs,
) -> None:
    """``-o/--out``, every command's output, with the old spellings as deprecated aliases.

    ``required`` is checked after parsing (:func:`check_required`), so that an old spelling
    fills it too.
    """
    parser.add_argument("-o", "--out", dest="out", type=type, metavar=metavar, help=help, **kwargs)
    for flag in old:
        deprecated(parser, flag, "-o/--out", dest="out", type=type)
    if required:
        parser.set_defaults(_required=(*(parser.get_default("_required") or ()), "out"))


def deprecated(parser, flag: str, use: str, **kwargs) -> None:
    """Add ``flag`` as a hidden, deprecated spelling of the option ``use``."""
    parser.add_argument(flag, action=_Deprecated, use=use, help=argparse.SUPPRESS, **kwargs)


def check_required(args: argparse.Namespace) -> None:
    """Options required whatever their spelling (see :func:`add_out`)."""
    missing = [name for name in getattr(args, "_required", ()) if getattr(args, name) is None]
    if missing:
        flags = ", ".join("-o/--out" if m == "out" else f"--{m.replace('_', '-')}" for m in missing)
        raise UsageError(
            f"auroradask {args.command}: the following arguments are required: {flags}"
        )


def add_frames_options(
    group,
    *,
    source_help: str = "stream0 root: local path or fsspec URL (default: the bundled sample)",
    chunk_minutes: bool = False,
) -> None:
    """The frames a command reads: ``--source``, ``--site`` (comma-separated or repeated),
    ``--start``, ``--end`` (ISO UT), ``--cache``; the same rules in every command.

    With ``chunk_minutes``, also ``--chunk-minutes`` (minute files per task), whose default
    is left to ``open_themis``: the ``auroradask.chunk-minutes`` setting.
    """
    group.add_argument("--source", help=source_help)
    group.add_argument(
        "--site",
        action="extend",
        type=site_list,
        help="site codes, comma-separated or repeated (--site gill,fsmi or --site gill --site fsmi)",
    )
    group.add_argument(
        "--start",
        type=ut_time,
        help="UT start, YYYY-MM-DD (00:00) or YYYY-MM-DDTHH:MM[:SS], inclusive",
    )
    group.add_argument(
        "--end",
        type=ut_time,
        help="UT end: a date YYYY-MM-DD includes that day, a time is exclusive (default: the "
        "end of the start day)",
    )
    group.add_argument(
        "--cache", help="local folder for copies of remote files (default: ~/.cache/auroradask)"
    )
    if chunk_minutes:
        group.add_argument(
            "--chunk-minutes",
            type=positive_int,
            default=None,  # open_themis reads the auroradask.chunk-minutes setting
            help="minute files per task (divides a day; default: the auroradask.chunk-minutes "
            f"setting, {DEFAULT_CHUNK_MINUTES} unless configured)",
        )


def one_site(args: argparse.Namespace, command: str) -> str:
    """The one site a command draws (``--site`` may list several elsewhere)."""
    sites = args.site or []
    if len(sites) != 1:
        raise UsageError(
            f"auroradask {command}: --site: give one site, got {', '.join(sites) or 'none'}"
        )
    return sites[0]


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


def _not_advice_for_another_tool(record: logging.LogRecord) -> bool:
    """Drop distributed's advice to install jupyter-server-proxy: with -v every run printed
    it, and auroradask's dashboard link needs no proxy."""
    return "jupyter-server-proxy" not in record.getMessage()


def _route(level: int) -> None:
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_auroradask", False)]:
        root.removeHandler(old)
    handler = _Stderr()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_not_advice_for_another_tool)
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
        type=memory_limit,
        help="memory per LocalCluster worker, e.g. 4GB (default auto)",
    )
    cluster.add_argument(
        "--dashboard-address",
        default="127.0.0.1:8787",
        help="LocalCluster dashboard address (default 127.0.0.1:8787)",
    )
    cluster.add_argument(
        "--performance-report",
        metavar="FILE.html",
        type=output_file(".html"),
        help="write a Dask performance report",
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
