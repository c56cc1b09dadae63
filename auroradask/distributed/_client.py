"""Start or connect to a Dask cluster, and find its dashboard."""

from __future__ import annotations

import json
import os

import dask
from distributed import Client, default_client

from ..errors import ArgumentError, ClusterError
from ._dashboard import dashboard_page

#: Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, so that freed memory goes
#: back to the system. Setting it also freezes glibc's mmap threshold at 128 KiB: every array
#: above that (a frame's CLAHE tables are ~2 MB) then costs fresh zeroed pages, which made
#: preprocessing 3× slower on the workers. Arrays below 16 MiB come from the heap again; chunks
#: (tens of MB) are still mapped and unmapped, and the trim threshold stays dask's.
WORKER_ENVIRON = {"MALLOC_TRIM_THRESHOLD_": 65536, "MALLOC_MMAP_THRESHOLD_": 16 * 2**20}
#: A model file at least this big runs best as one worker with a thread per core: each worker
#: process holds its own session (weights and onnxruntime's pre-packed copy of them, 170 MB
#: for a ResNet-50), while threads share one. The model dominates such a run, and
#: onnxruntime releases the GIL, so threads are as fast (benchmarks/README.md, throughput).
BIG_MODEL_BYTES = 32 * 2**20


def start_client(
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    threads_per_worker: int = 1,
    memory_limit: str | None = "auto",
    dashboard_address: str = "127.0.0.1:8787",
    worker_profile: bool = False,
    dashboard_page: bool = True,
) -> Client:
    """A client on a new LocalCluster, or on a running scheduler.

    Parameters
    ----------
    scheduler
        Address of a running scheduler (``tcp://host:8786``) or the path of a scheduler file
        (``dask scheduler --scheduler-file``, dask-jobqueue, …). None starts a LocalCluster.
    workers
        LocalCluster worker processes (default: one per core / ``threads_per_worker``).
    threads_per_worker
        Dask threads per worker process. Each thread runs the worker's onnxruntime session
        on its own chunk with one intra-op thread, so workers × threads = cores saturates the
        machine.
    memory_limit
        Per worker, e.g. ``"4GB"``; ``"auto"`` shares the machine's memory.
    dashboard_address
        Where the LocalCluster's dashboard listens; 127.0.0.1 keeps it private to this machine.
    worker_profile
        Run dask's statistical profiler in the LocalCluster's workers (the dashboard's
        "Profile" page). Off by default: every 10 ms it takes the GIL from the task thread,
        and on a machine whose cores other processes also use, each such hand-over can wait
        for the OS to schedule the task thread again; with it off the pipeline ran 1.3-1.6x
        faster on a shared 2-core machine (``benchmarks/README.md``, throughput).
    dashboard_page
        Serve auroradask's own page (``/auroradask``: frames per second, per site progress,
        labels so far) beside Dask's; see :func:`auroradask.dashboard_page`.

    Notes
    -----
    LocalCluster workers start with ``MALLOC_MMAP_THRESHOLD_`` at 16 MiB, which makes
    preprocessing 3× faster than under dask's malloc settings alone (see ``WORKER_ENVIRON``).
    """
    if scheduler:
        try:
            if os.path.exists(scheduler):
                client = Client(scheduler_file=_check_scheduler_file(scheduler))
            else:
                client = Client(scheduler)
        except (OSError, TimeoutError) as error:  # refused, unresolvable, timed out
            _forget_unstarted_client()
            raise ClusterError(
                f"scheduler: cannot reach {scheduler!r} ({type(error).__name__}: {error})"
            ) from None
        return _with_page(client, dashboard_page)
    if threads_per_worker < 1:
        raise ArgumentError(f"threads_per_worker: expected >= 1, got {threads_per_worker}")
    if workers is None:
        workers = max(1, (os.cpu_count() or 1) // threads_per_worker)
    if workers < 1:
        raise ArgumentError(f"workers: expected >= 1, got {workers}")
    environ = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_ENVIRON.items()}
    environ["distributed.worker.profile.enabled"] = bool(worker_profile)
    with dask.config.set(environ):
        # the client starts the LocalCluster itself (not Client(LocalCluster(...))), so it owns
        # it: client.close() also stops the scheduler and the worker processes
        try:
            client = Client(
                n_workers=workers,
                threads_per_worker=threads_per_worker,
                memory_limit=memory_limit,
                dashboard_address=dashboard_address,
                host="127.0.0.1",
            )
        except (OSError, RuntimeError) as error:  # "Cluster failed to start"
            _forget_unstarted_client()
            cause = error.__cause__ if isinstance(error, RuntimeError) else error
            if not isinstance(cause, OSError):
                raise
            error = cause  # the dashboard's address cannot be bound or resolved
            raise ArgumentError(
                f"dashboard_address: cannot serve the dashboard at {dashboard_address!r} "
                f"({type(error).__name__}: {error})"
            ) from None
    return _with_page(client, dashboard_page)


def _forget_unstarted_client() -> None:
    """A Client whose cluster failed to start stays the default client, "connecting" for
    ever: every later compute in the process would hang on it. Close it."""
    try:
        client = default_client()
    except ValueError:
        return
    if client.status != "running":
        client.close()


def threads_for_model(model, cores: int | None = None) -> int:
    """Dask threads per LocalCluster worker to classify with ``model`` on ``cores`` cores.

    1 (a worker process per core) for a small model, where reading and preprocessing
    dominate and processes keep the GIL out of the way; ``cores`` (one worker process with a
    thread per core) for a model file of :data:`BIG_MODEL_BYTES` or more, so that its weights
    are in memory once. With a ResNet-50 on 2 cores this kept a run at 1.16 GB instead of
    1.71 GB, at the same frames per second.

    Parameters
    ----------
    model
        A :class:`~auroradask.Model` or the path of an ONNX file.
    cores
        Cores to fill (default: all of this machine's).

    Notes
    -----
    The size is the ``.onnx`` file's own: a model saved with its weights in an external data
    file looks small here; pass ``threads_per_worker`` to :func:`start_client` for it.
    """
    cores = cores or os.cpu_count() or 1
    path = getattr(model, "path", model)
    try:
        size = os.path.getsize(path)
    except (OSError, TypeError):
        return 1
    return cores if size >= BIG_MODEL_BYTES else 1


def _with_page(client: Client, page: bool) -> Client:
    if page:
        dashboard_page(client)
    return client


def _check_scheduler_file(path: str) -> str:
    """A scheduler file must be JSON with an ``address``; dask would fail with a bare assert."""
    try:
        with open(path) as f:
            address = json.load(f).get("address")
    except (OSError, ValueError, AttributeError) as error:
        raise ArgumentError(f"scheduler: {path!r} is not a Dask scheduler file ({error})") from None
    if not isinstance(address, str) or not address:
        raise ArgumentError(
            f"scheduler: {path!r} is not a Dask scheduler file (no 'address'); "
            "write one with dask scheduler --scheduler-file"
        )
    return path


def dashboard_link(client: Client) -> str | None:
    """The URL of the cluster's dashboard, if it has one."""
    try:
        return client.dashboard_link
    except (AttributeError, KeyError):
        return None
