"""Workers that share no disk with the client: the model reaches them, and they are probed.

On a LocalCluster every worker sees the client's files. On a batch cluster without a shared
home, or in the cloud, a worker sees none of them, and two things would go wrong:

- the model: each worker opens its own onnxruntime session from ``Model.path``, the client's
  path. Here it reaches the workers by itself: a model given as a URL (``s3://…/model.onnx``,
  ``https://…``) is fetched by each worker into its own cache, and a local model's bytes are
  shipped once per worker by a worker plugin (:class:`WorkerFiles`), which the scheduler also
  gives every worker that joins later (a replacement batch job). The card, the skymaps and
  the elevation maps are read on the client and travel in the task graph: workers never open
  them.
- the archive and the store: a worker that cannot see a local archive would read every
  frame as ``no_file`` and write that into the store, where it counts as done. So before any
  data is read each worker is *probed*: it lists the archive's root and writes and removes a
  small object beside the store, itself (:func:`probe`), not the client on its behalf.

The probe and the shipping run in :func:`auroradask.to_zarr`, after the store is created or
extended and before the first frame is read (:func:`prepare_workers`).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

import fsspec
from distributed import LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.scheduler import NoValidWorkerError, NoWorkerError

from ..errors import ClusterError, StoreError
from ..io._archive import opened_archive
from ..io._remote import MODELS, ModelBytes, place_model
from ._layout import remove, write_bytes

log = logging.getLogger("auroradask")

#: The exceptions the scheduler gives tasks that waited too long for any worker.
NO_WORKERS_ERRORS = (NoWorkerError, NoValidWorkerError)


class WorkerFiles(WorkerPlugin):
    """On every worker, now and later: probe the archive and the store, place the model.

    A worker that joins after the run started (a replacement job) gets the plugin from the
    scheduler too. If its probe fails, it could only write wrong results, so it logs why and
    closes (its batch job ends; the scheduler gives its tasks to others).
    """

    def __init__(self, name: str, store, archive, models: list[ModelBytes]) -> None:
        self.name = name
        self.store = store
        self.archive = archive
        self.models = models

    def setup(self, worker) -> None:
        problem = _text(probe(self.store, self.archive))
        if problem is None:
            for model in self.models:
                problem = place_model(model, worker.local_directory)
                if problem:
                    break
        if problem is not None:
            log.error("worker %s cannot take part in this run: %s", worker.address, problem)
            worker.loop.add_callback(worker.close, nanny=True, reason="auroradask-probe-failed")


def probe(store, archive) -> tuple[str, str] | None:
    """Run on a worker: whether it lists the archive's root, sees the store's group (made by
    the client) and writes beside it.

    Returns
    -------
    tuple or None
        ``("archive" or "store", what this worker cannot do)``, or None if it can do both.
    """
    if archive is not None:
        try:
            seen = archive.fs.isdir(archive.root)
        except Exception as error:  # noqa: BLE001 - whatever stops a listing
            return "archive", f"cannot reach {archive.url} ({type(error).__name__}: {error})"
        if not seen:
            return "archive", f"cannot see {archive.url} (no folder {archive.root} there)"
    if store is not None:
        # the group the client made must be there: a worker with a folder of the same name
        # on its own disk would write there without a complaint, and nobody would read it
        try:
            seen = store.fs.exists(f"{store.root}/zarr.json")
        except Exception as error:  # noqa: BLE001 - whatever stops a read
            return "store", f"cannot reach {store.url} ({type(error).__name__}: {error})"
        if not seen:
            return "store", f"cannot see {store.url} (no {store.root}/zarr.json there)"
        # beside the group, in the folder that holds it: no folder is made or removed, so
        # that workers probing at once never remove each other's folder
        path = f"{store.root}.probe-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}"
        try:
            write_bytes(store.fs, path, b"auroradask worker probe")
            remove(store.fs, path)
        except Exception as error:  # noqa: BLE001 - whatever stops a write
            return "store", f"cannot write into {store.url} ({type(error).__name__}: {error})"
    return None


def _text(problem: tuple[str, str] | None) -> str | None:
    return None if problem is None else f"the {problem[0]}: {problem[1]}"


def _sees_model(path: str, size: int, url: str | None, options) -> bool:
    """Run on a worker: whether it has the model file at the client's path or its URL."""
    if os.path.exists(path):
        return os.path.getsize(path) == size
    if url is not None:
        try:
            fs, path = fsspec.url_to_fs(url, **dict(options or {}))
            return bool(fs.exists(path))
        except Exception:  # noqa: BLE001 - cannot reach the URL: the bytes are shipped
            return False
    return False


# ------------------------------------------------------------------------ from to_zarr


def prepare_workers(client, loc, results) -> None:
    """Before any data is read: wait for a first worker, probe every worker, and make the
    model reach them (see the module's docstring).

    Raises
    ------
    StoreError
        If a worker cannot write beside the store.
    ClusterError
        If a worker cannot see the archive.
    """
    _wait_for_a_worker(client)
    archive = opened_archive(str(results.attrs.get("source", "")))
    workers = client.run(probe, loc, archive)
    blind = {w: p for w, p in workers.items() if p is not None}
    if blind:
        # the store first: it is what the StoreError of a LocalCluster always named
        what = "store" if any(p[0] == "store" for p in blind.values()) else "archive"
        listed = "; ".join(f"{w} {p[1]}" for w, p in sorted(blind.items()) if p[0] == what)
        error = StoreError if what == "store" else ClusterError
        raise error(
            f"{what}: workers cannot use it: {listed}. Put it where the workers reach it "
            "too (a filesystem they share with this machine, or a URL: s3://…, https://…)"
        )
    model = MODELS.get(str(results.attrs.get("model_sha256", "")))
    shipped = _model_bytes(model)
    url = getattr(model, "source", None)
    options = getattr(model, "storage_options", None)
    if shipped is not None:
        sees = client.run(_sees_model, shipped.path, len(shipped.data), url, options)
        local_cluster = _is_local_cluster(client)
        if all(sees.values()) and (local_cluster or url is not None):
            shipped = None  # they all have it, and a new worker will too
        elif not all(sees.values()):
            lacking = sorted(w for w, ok in sees.items() if not ok)
            log.info("shipping model %s to workers that lack it: %s", model.name, lacking)
    # one name: the run's plugin replaces the previous run's on the scheduler and workers
    plugin = WorkerFiles(PLUGIN, loc, archive, [shipped] if shipped is not None else [])
    client.register_plugin(plugin, name=PLUGIN)


#: the name of the worker plugin of the current run
PLUGIN = "auroradask-workers"


def _model_bytes(model) -> ModelBytes | None:
    if model is None:
        return None
    try:
        with open(model.path, "rb") as f:
            data = f.read()
    except OSError:
        return None  # the client no longer has it: workers must find it themselves
    return ModelBytes(model.path, model.sha256, os.path.basename(model.path), data)


def _is_local_cluster(client) -> bool:
    return isinstance(getattr(client, "cluster", None), LocalCluster)


def _wait_for_a_worker(client) -> None:
    """A batch cluster starts with its jobs in the queue: wait for the first worker."""
    if client.nthreads():
        return
    log.warning(
        "waiting for the first worker to start (batch jobs may wait in the queue; an "
        "adaptive cluster must keep at least one job, or it starts none before work comes)"
    )
    started = time.monotonic()
    client.wait_for_workers(1)
    log.info("first worker after %.0f s", time.monotonic() - started)


def no_workers_error(error: BaseException) -> ClusterError:
    """The error to raise when the scheduler gave up waiting for any worker."""
    timeout = getattr(error, "timeout", None)
    after = f" within {timeout:.0f} s" if isinstance(timeout, int | float) else ""
    return ClusterError(
        f"every worker is gone (batch jobs cancelled, pre-empted or at their wall time) and "
        f"none came back{after}; the store keeps what was written: run the same command "
        "again to resume"
    )
