"""Rewriting a store of the first release (chunks of 10 minutes) in today's layout, in place."""

from __future__ import annotations

import os
import time
from typing import Any

import xarray as xr

from .._config import setting
from .._schema import DAY_SLOTS, NOT_CLASSIFIED, NOT_WRITTEN, RESULT_VARIABLES
from ..errors import SourceNotFoundError, StoreError
from ._layout import INTENT_SUFFIX, LAYOUT, locate, quiet_zarr, read_state
from ._lock import StoreLock
from ._write import WriteSummary, to_zarr

UPGRADING_SUFFIX = ".upgrading"
OLD_SUFFIX = ".layout1"


def upgrade_store(
    store: str | os.PathLike,
    *,
    group: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> WriteSummary:
    """Rewrite a first-release store in today's layout (one chunk per site-day), in place.

    The new store is written beside the old one (``<store>.upgrading``) and swapped in by two
    renames; the old one is removed last. Killed at any point, the old store is still there
    or the swap is finished by running the upgrade again. Slots whose chunk the first
    release had not marked complete become "not written", so a later run computes them.

    Parameters
    ----------
    store, group, storage_options
        As given to :func:`auroradask.to_zarr`. Local stores only: the swap needs rename.

    Returns
    -------
    WriteSummary
        What was written into the new layout (``written`` counts every slot of the store).

    Raises
    ------
    StoreError
        If the store is already in today's layout or is not on a local filesystem.
    """
    loc = locate(store, group, storage_options)
    if not loc.is_local:
        raise StoreError(
            f"store: upgrading in place needs a local filesystem (rename); {loc.url} is not: "
            "open it with open_results and write it to a new store with to_zarr"
        )
    new, old = loc.root + UPGRADING_SUFFIX, loc.root + OLD_SUFFIX
    with StoreLock(loc.fs, loc.root, setting("lock-stale-after")):
        if not os.path.exists(loc.root) and os.path.exists(new) and os.path.exists(old):
            os.rename(new, loc.root)  # a killed upgrade between its two renames
        state = read_state(loc)
        if state is None:
            raise SourceNotFoundError(f"store: no results store at {loc.url!r}")
        if state.layout == LAYOUT:
            if os.path.exists(old):
                loc.fs.rm(old, recursive=True)
            raise StoreError(f"store: {loc.url} is already in today's layout")
        _remove_new(loc, new)  # an upgrade killed while writing: start again from nothing
        started = time.perf_counter()
        summary = to_zarr(_first_release_results(loc), new)
        os.rename(loc.root, old)
        os.rename(new, loc.root)
        loc.fs.rm(old, recursive=True)
        _remove_new(loc, new)  # what the new store's writer left beside it (empty folders)
    summary.seconds = time.perf_counter() - started
    return summary


def _remove_new(loc, new: str) -> None:
    """The new store of an upgrade and its writer's companions (staged pieces, intent)."""
    for path in (new, new + ".staging", new + INTENT_SUFFIX):
        if os.path.exists(path):
            loc.fs.rm(path, recursive=True)


def _first_release_results(loc) -> xr.Dataset:
    """The old store's results, lazily, with slots not marked complete as never written."""
    with quiet_zarr():
        ds = xr.open_zarr(loc.url, consolidated=True, **loc.zarr_kwargs())
    written = ds["write_complete"] == 1
    fills = {
        "label": NOT_CLASSIFIED,
        "frame_status": NOT_WRITTEN,
    }
    results = ds[list(RESULT_VARIABLES)]
    for name in RESULT_VARIABLES:
        fill = fills.get(name)
        kept = (
            results[name].where(written, fill) if fill is not None else results[name].where(written)
        )
        results[name] = kept.astype(ds[name].dtype) if fill is not None else kept
    return results.chunk({"site": 1, "time": DAY_SLOTS})
