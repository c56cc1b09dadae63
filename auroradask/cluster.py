"""Start or connect to a Dask cluster, and find its dashboard."""

from __future__ import annotations

import os

import dask
from distributed import Client, LocalCluster

#: Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536 to hand freed memory back to
#: the system. That also switches off glibc's adaptive mmap threshold, so OpenCV's CLAHE, which
#: allocates ~8 MB of 16-bit histograms per frame, pays for fresh pages on every call and runs
#: at half speed. 128 MiB keeps the memory release for large arrays and the speed of CLAHE.
WORKER_MALLOC_TRIM_THRESHOLD = 128 * 2**20


def start_client(
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    threads_per_worker: int = 1,
    memory_limit: str | None = "auto",
    dashboard_address: str = "127.0.0.1:8787",
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

    Notes
    -----
    LocalCluster workers start with ``MALLOC_TRIM_THRESHOLD_`` at 128 MiB instead of dask's
    64 KiB, which halves the cost of CLAHE (see ``WORKER_MALLOC_TRIM_THRESHOLD``).
    """
    if scheduler:
        if os.path.exists(scheduler):
            return Client(scheduler_file=scheduler)
        return Client(scheduler)
    if threads_per_worker < 1:
        raise ValueError(f"threads_per_worker: expected >= 1, got {threads_per_worker}")
    if workers is None:
        workers = max(1, (os.cpu_count() or 1) // threads_per_worker)
    if workers < 1:
        raise ValueError(f"workers: expected >= 1, got {workers}")
    environ = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
    with dask.config.set({environ: WORKER_MALLOC_TRIM_THRESHOLD}):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            memory_limit=memory_limit,
            dashboard_address=dashboard_address,
            host="127.0.0.1",
        )
    return Client(cluster)


def dashboard_link(client: Client) -> str | None:
    """The URL of the cluster's dashboard, if it has one."""
    try:
        return client.dashboard_link
    except (AttributeError, KeyError):
        return None
