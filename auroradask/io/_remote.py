"""Files that reach workers by themselves: fsspec URLs fetched into the local cache, and
model files shipped to workers that share no disk with the client.

On a LocalCluster every worker sees the client's files. On a batch cluster without a shared
home, or in the cloud, a worker sees none of them. A model given as a URL
(``s3://…/model.onnx``, ``https://…``) is fetched by each worker into its own cache; a local
model's bytes are shipped once per worker by the store's worker plugin
(``auroradask.store._workers``), and :func:`model_file` finds whichever this process has.
Skymaps and elevation maps given as URLs are fetched on the client and travel in the graph.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import tempfile
from dataclasses import dataclass
from typing import Any

import fsspec

from ..errors import ModelError, SourceNotFoundError
from ._archive import default_cache_dir

log = logging.getLogger("auroradask")

#: Models loaded in this process, by sha256 (what a results dataset records).
MODELS: dict[str, Any] = {}
#: In a worker process: model files shipped to it, sha256 → local path.
SHIPPED: dict[str, str] = {}


def remember_model(model) -> None:
    """Called by :func:`auroradask.load_model`: the store's worker preparation finds the
    model of a results dataset by the ``model_sha256`` it records."""
    MODELS[model.sha256] = model


# ------------------------------------------------------------------------------ URLs


def is_url(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a URL of another filesystem than this machine's."""
    text = os.fspath(path)
    if "://" not in text:
        return False
    return text.split("://", 1)[0] not in ("file", "local")


def cache_path(url: str) -> str:
    """Where a copy of the file at ``url`` is kept on this machine (the archive's cache)."""
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
        if sha256 is None or file_sha256(local) == sha256:
            return local
    try:
        data = fs.cat_file(path)
    except Exception as error:  # noqa: BLE001
        raise SourceNotFoundError(f"{what}: cannot fetch {url!r} ({error})") from None
    if size is not None and len(data) != size:
        raise SourceNotFoundError(f"{what}: got {len(data)} bytes of {size} from {url!r}")
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ModelError(f"{what}: {url!r} changed since it was loaded (another sha256)")
    write_whole(local, data)
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


def write_whole(path: str, data: bytes) -> None:
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


def file_sha256(path: str) -> str:
    """The sha256 of a file: a cached or shipped copy is checked by it, and a model file
    that changed after it was loaded is noticed by it (provenance in the store)."""
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
        if file_sha256(model.path) != model.sha256:
            raise ModelError(f"model: {model.path!r} changed since it was loaded")
        return model.path
    shipped = SHIPPED.get(model.sha256)
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
class ModelBytes:
    """A model file to place on workers that do not see it."""

    path: str  # the client's path: used where the worker sees it
    sha256: str
    name: str
    data: bytes


def place_model(model: ModelBytes, folder: str) -> str | None:
    """Make the model file available in this worker process; a problem, or None."""
    try:
        if os.path.exists(model.path) and os.path.getsize(model.path) == len(model.data):
            return None  # this worker sees the client's file: nothing to copy
        target = os.path.join(folder, "auroradask-models", model.sha256, model.name)
        if not (os.path.exists(target) and os.path.getsize(target) == len(model.data)):
            write_whole(target, model.data)
        SHIPPED[model.sha256] = target
    except OSError as error:
        return f"cannot write the model file into {folder} ({error})"
    return None
