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

import hashlib
import logging
import os
import socket
import tempfile
import time
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

import fsspec
from distributed.diagnostics.plugin import WorkerPlugin

from .errors import ClusterError, ModelError, SourceNotFoundError, StoreError

log = logging.getLogger("auroradask")

#: Archives opened in this process, by the URL their frames record as ``source``: the
#: probe lists the archive through the same filesystem object (its credentials included).
_ARCHIVES: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
#: Models loaded in this process, by sha256 (what a results dataset records).
_MODELS: dict[str, Any] = {}
#: In a worker process: model files shipped to it, sha256 → local path.
_SHIPPED: dict[str, str] = {}


def remember_archive(archive) -> None:
    """Called by :func:`auroradask.open_archive`: the probe finds the archive by its URL."""
    _ARCHIVES[archive.url] = archive


def remember_model(model) -> None:
    """Called by :func:`auroradask.load_model`: :func:`prepare_workers` finds the model of a
    results dataset by the ``model_sha256`` it records."""
    _MODELS[model.sha256] = model


# ------------------------------------------------------------------------------ URLs


def is_url(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a URL of another filesystem than this machine's."""
    text = os.fspath(path)
    if "://" not in text:
        return False
    return text.split("://", 1)[0] not in ("file", "local")


def cache_path(url: str) -> str:
    """Where a copy of the file at ``url`` is kept on this machine (the archive's cache)."""
    from ._archive import default_cache_dir

    return default_cache_dir(url)


def fetch(
    url: str,
    storage_options: dict[str, Any] | None = None,
    *,
    what: str = "file",
    sha256: str | None = None,
) -> str:
    """A local copy of the file at ``url``, fetched once into the cache; its path.

    A cached copy is used again when its size is the remote file's (and its sha256 is
    ``sha256``, when given); otherwise the file is downloaded whole, written beside the
    target and renamed, so that a copy cut short is never used.

    Raises
    ------
    SourceNotFoundError
        If ``url`` does not exist or cannot be reached.
    ModelError
        If ``sha256`` is given and the file's differs (the remote model changed).
    """
    try:
        fs, path = fsspec.url_to_fs(url, **dict(storage_options or {}))
        size = fs.info(path).get("size")
    except FileNotFoundError:
        raise SourceNotFoundError(f"{what}: {url!r} does not exist") from None
    except Exception as error:  # noqa: BLE001 - any transport error: cannot reach it
        raise SourceNotFoundError(f"{what}: cannot reach {url!r} ({error})") from None
    local = cache_path(url)
    if os.path.exists(local) and (size is None or os.path.getsize(local) == size):
        if sha256 is None or _sha256(local) == sha256:
            return local
    try:
        data = fs.cat_file(path)
    except Exception as error:  # noqa: BLE001
        raise SourceNotFoundError(f"{what}: cannot fetch {url!r} ({error})") from None
    if size is not None and len(data) != size:
        raise SourceNotFoundError(f"{what}: got {len(data)} bytes of {size} from {url!r}")
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ModelError(f"{what}: {url!r} changed since it was loaded (another sha256)")
    _write_whole(local, data)
    return local


def fetch_sidecar(url: str, storage_options: dict[str, Any] | None = None) -> None:
    """Fetch ``<model>.json`` beside a model URL into the cache, if there is one."""
    sidecar = url.rsplit(".", 1)[0] + ".json" if "." in url.rsplit("/", 1)[-1] else url + ".json"
    try:
        fs, path = fsspec.url_to_fs(sidecar, **dict(storage_options or {}))
        if not fs.exists(path):
            return
    except Exception as error:  # noqa: BLE001 - no sidecar: the card comes from elsewhere
        log.debug("no model card beside %s: %s", url, error)
        return
    fetch(sidecar, storage_options, what="model card")


def _write_whole(path: str, data: bytes) -> None:
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# ------------------------------------------------------------------- models on workers


def model_file(model) -> str:
    """The path of ``model``'s file in this process: its own path where this machine has
    it, else a copy shipped to this worker, else one fetched from its URL.

    Raises
    ------
    ModelError
        If the file at the model's path is not the one loaded, or none of the three is here.
    """
    if os.path.exists(model.path):
        if _sha256(model.path) != model.sha256:
            raise ModelError(f"model: {model.path!r} changed since it was loaded")
        return model.path
    shipped = _SHIPPED.get(model.sha256)
    if shipped is not None and os.path.exists(shipped):
        return shipped
    if model.source is not None:
        return fetch(model.source, model.storage_options, what="model", sha256=model.sha256)
    raise ModelError(
        f"model: {model.path!r} is not on {socket.gethostname()} and was not shipped to "
        "this worker; give the model as a URL (s3://…/model.onnx) or write with "
        "auroradask.to_zarr, which ships it to workers that lack it"
    )


@dataclass(frozen=True)
class _ModelBytes:
    """A model file to place on workers that do not see it."""

    path: str  # the client's path: used where the worker sees it
    sha256: str
    name: str
    data: bytes


class WorkerFiles(WorkerPlugin):
    """On every worker, now and later: probe the archive and the store, place the model.

    A worker that joins after the run started (a replacement job) gets the plugin from the
    scheduler too. If its probe fails, it could only write wrong results, so it logs why and
    closes (its batch job ends; the scheduler gives its tasks to others).
    """

    def __init__(self, name: str, store, archive, models: list[_ModelBytes]) -> None:
        self.name = name
        self.store = store
        self.archive = archive
        self.models = models

    def setup(self, worker) -> None:
        problem = _text(probe(self.store, self.archive))
        if problem is None:
            for model in self.models:
                problem = _place(model, worker.local_directory)
                if problem:
                    break
        if problem is not None:
            log.error("worker %s cannot take part in this run: %s", worker.address, problem)
            worker.loop.add_callback(worker.close, nanny=True, reason="auroradask-probe-failed")


def _place(model: _ModelBytes, folder: str) -> str | None:
    """Make the model file available in this worker process; a problem, or None."""
    try:
        if os.path.exists(model.path) and os.path.getsize(model.path) == len(model.data):
            return None  # this worker sees the client's file: nothing to copy
        target = os.path.join(folder, "auroradask-models", model.sha256, model.name)
        if not (os.path.exists(target) and os.path.getsize(target) == len(model.data)):
            _write_whole(target, model.data)
        _SHIPPED[model.sha256] = target
    except OSError as error:
        return f"cannot write the model file into {folder} ({error})"
    return None


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
        from ._store._layout import remove, write_bytes

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
    archive = _ARCHIVES.get(str(results.attrs.get("source", "")))
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
    model = _MODELS.get(str(results.attrs.get("model_sha256", "")))
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


def _model_bytes(model) -> _ModelBytes | None:
    if model is None:
        return None
    try:
        with open(model.path, "rb") as f:
            data = f.read()
    except OSError:
        return None  # the client no longer has it: workers must find it themselves
    return _ModelBytes(model.path, model.sha256, os.path.basename(model.path), data)


def _is_local_cluster(client) -> bool:
    from distributed import LocalCluster

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


def no_workers_errors() -> tuple[type[BaseException], ...]:
    """The exceptions the scheduler gives tasks that waited too long for any worker."""
    try:
        from distributed.scheduler import NoValidWorkerError, NoWorkerError
    except ImportError:  # pragma: no cover - older distributed
        return ()
    return (NoWorkerError, NoValidWorkerError)
