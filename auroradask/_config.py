"""auroradask's settings, a namespace of dask's config: ``auroradask.<name>``.

The defaults are ``auroradask/data/auroradask.yaml``, registered with
``dask.config.update_defaults`` when this module is imported (by the functions that read
settings; ``import auroradask`` alone stays light). Everything dask's config offers then
works: YAML files (``~/.config/dask/*.yaml``), ``DASK_AURORADASK__CHUNK_MINUTES=30``-style
environment variables, ``dask.config.set({"auroradask.chunk-minutes": 30})``. Settings are
read when a function is called, on the client; the workers get the resolved values.

Every setting is read through this module: :func:`setting` (:func:`setting_or` under a call's own argument), and
for the two that need more than a lookup, :func:`cache_root` and :func:`storage_options_for`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from typing import Any

import dask.config
import platformdirs
from fsspec.utils import get_protocol

from .errors import ArgumentError

NAMESPACE = "auroradask"
#: The shipped defaults, as dask's config holds them (``{"auroradask": {...}}``), read as
#: dask reads its own YAML files.
with resources.as_file(resources.files("auroradask") / "data" / "auroradask.yaml") as _path:
    DEFAULTS: dict[str, Any] = next(iter(dask.config.collect_yaml([os.fspath(_path)])))
dask.config.update_defaults(DEFAULTS)


def setting(name: str) -> Any:
    """The setting ``auroradask.<name>`` (``chunk-minutes`` or ``chunk_minutes`` alike).

    Falls back to the shipped default: a ``dask.config.set({"auroradask.<name>": ...})``
    entered before this module was imported removes the whole namespace when it exits,
    defaults registered meanwhile included.
    """
    defaults = DEFAULTS[NAMESPACE]
    key = name if name in defaults else name.replace("_", "-")
    if key not in defaults:  # a misspelt name is a bug, not a setting left unset
        raise KeyError(f"{NAMESPACE}.{name} is not one of auroradask's settings")
    return dask.config.get(f"{NAMESPACE}.{name}", default=defaults[key])


def setting_or(name: str, given: Any) -> Any:
    """``given`` (a call's own argument) unless it is None; then the setting ``name``."""
    return setting(name) if given is None else given


def cache_root() -> str:
    """The folder under which remote files are cached.

    ``auroradask.cache`` if set; else ``$AURORADASK_CACHE`` (the older way, still honoured);
    else the per-user cache folder that ``platformdirs`` finds, as pooch does.
    """
    folder = setting("cache") or os.environ.get("AURORADASK_CACHE")
    if folder:
        return os.path.expanduser(os.fspath(folder))
    return platformdirs.user_cache_dir("auroradask")


def storage_options_for(url: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """fsspec options for ``url``: ``auroradask.storage-options`` for its protocol, under
    ``given`` (a call's own ``storage_options``, which win key by key)."""
    per_protocol = setting("storage-options") or {}
    if not isinstance(per_protocol, Mapping):
        raise ArgumentError(
            "auroradask.storage-options: expected a mapping of protocol to fsspec options "
            f"(s3: {{anon: true}}), got {per_protocol!r}"
        )
    protocol = get_protocol(url)  # "file" for a local path
    options = per_protocol.get(protocol) or {}
    if not isinstance(options, Mapping):
        raise ArgumentError(
            f"auroradask.storage-options.{protocol}: expected a mapping of fsspec options, "
            f"got {options!r}"
        )
    return {**options, **dict(given or {})}
