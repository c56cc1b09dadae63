"""Rewriting a store of the first release (chunks of 10 minutes) in today's layout, in place."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import xarray as xr

from .._config import setting
from .._schema import DAY_SLOTS, NOT_CLASSIFIED, NOT_WRITTEN, RESULT_VARIABLES
from ..errors import SourceNotFoundError, StoreError
from ._layout import (
    INTENT_SUFFIX,
    LAYOUT,
    locate,
    quiet_zarr,
    read_state,
    remove,
    write_bytes,
)
from ._lock import StoreLock
from ._write import WriteSummary, to_zarr

UPGRADING_SUFFIX = ".upgrading"
OLD_SUFFIX = ".layout1"
#: ``<store>.upgrade.json``: written before the new store is begun, removed last; holds the
#: token that the new store carries as :data:`UPGRADE_ATTR`.
RECORD_SUFFIX = ".upgrade.json"
#: The attribute of the store an upgrade writes: the token of its record. It proves that a
#: ``<store>.upgrading`` folder (or the store after the swap) is this upgrade's own.
UPGRADE_ATTR = "auroradask_upgrade_of"


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

    What an upgrade leaves beside the store when it is killed is removed by the next one
    only if it is provably that upgrade's own: ``<store>.upgrade.json``, written first, holds
    a token that the new store carries (``auroradask_upgrade_of``). A folder in the way
    without it (a user's ``<store>.upgrading`` or ``<store>.layout1``) is never removed: the
    upgrade stops and names it.

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
        If the store is already in today's layout or is not on a local filesystem, or a
        folder that is not provably this upgrade's is in its way (nothing is removed).
    """
    loc = locate(store, group, storage_options)
    if not loc.is_local:
        raise StoreError(
            f"store: upgrading in place needs a local filesystem (rename); {loc.url} is not: "
            "open it with open_results and write it to a new store with to_zarr"
        )
    new, old, record = (loc.root + s for s in (UPGRADING_SUFFIX, OLD_SUFFIX, RECORD_SUFFIX))
    with StoreLock(loc.fs, loc.root, setting("lock-stale-after")):
        token = _record_token(record)
        if not os.path.exists(loc.root) and os.path.exists(new) and os.path.exists(old):
            _check_own(new, token, record, "finish the swap")
            os.rename(new, loc.root)  # a killed upgrade between its two renames
        state = read_state(loc)
        if state is None:
            raise SourceNotFoundError(f"store: no results store at {loc.url!r}")
        if state.layout == LAYOUT:
            if token is not None and _carries(loc.root, token):  # swapped in by this upgrade
                if os.path.exists(old):
                    loc.fs.rm(old, recursive=True)  # the old layout it renamed aside
                _remove_companions(loc, new)
                remove(loc.fs, record)
            raise StoreError(f"store: {loc.url} is already in today's layout")
        if os.path.exists(old):  # the swap renames the store to it: never over a folder
            raise StoreError(
                f"store: {old} is in the way of the upgrade (the old layout is renamed to it); "
                "nothing was removed: move it away and run the upgrade again"
            )
        _clear_new(loc, new, token, record)
        if token is None:
            token = os.urandom(8).hex()
            write_bytes(loc.fs, record, json.dumps({"token": token}).encode())
        started = time.perf_counter()
        results = _first_release_results(loc)
        results.attrs[UPGRADE_ATTR] = token
        summary = to_zarr(results, new)
        os.rename(loc.root, old)
        os.rename(new, loc.root)
        loc.fs.rm(old, recursive=True)
        _remove_companions(loc, new)  # what its writer left beside it (empty folders)
        remove(loc.fs, record)
    summary.seconds = time.perf_counter() - started
    return summary


def _record_token(record: str) -> str | None:
    """The token of an upgrade's record, None if there is none (or it is not one)."""
    try:
        with open(record, encoding="utf-8") as f:
            token = json.load(f).get("token")
    except (OSError, ValueError, AttributeError):
        return None
    return token if isinstance(token, str) and token else None


def _carries(folder: str, token: str) -> bool:
    """Whether the store at ``folder`` carries ``token`` as :data:`UPGRADE_ATTR`."""
    try:
        with open(os.path.join(folder, "zarr.json"), encoding="utf-8") as f:
            return json.load(f)["attributes"].get(UPGRADE_ATTR) == token
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _check_own(new: str, token: str | None, record: str, doing: str) -> None:
    if token is None or not _carries(new, token):
        raise StoreError(
            f"store: {new} is not provably made by an upgrade of this store (it carries no "
            f"{UPGRADE_ATTR} of {record}), so the upgrade did not {doing} and nothing was "
            "removed: move it away if it is yours, then run the upgrade again"
        )


def _clear_new(loc, new: str, token: str | None, record: str) -> None:
    """Make way for the new store: what a killed upgrade of this store left is removed;
    anything else in the way stops the upgrade, untouched.

    The new store of a killed upgrade carries the record's token, and its staged pieces
    and intent are removed with it (the folder last). A creation killed before the group
    had its attributes is left to :func:`to_zarr`, which finishes or removes it by its own
    intent's token. Without a record nothing beside the store is this upgrade's.
    """
    companions = [new + ".staging", new + INTENT_SUFFIX]
    trash = f"{new}.{token}.removing"  # named by the token: provably this upgrade's
    if token is not None and os.path.exists(trash):
        loc.fs.rm(trash, recursive=True)  # a removal below, killed
    if os.path.exists(new):
        if token is not None and _carries(new, token):
            _remove_companions(loc, new)
            # renamed first: a removal killed half way leaves no unmarked folder behind
            os.rename(new, trash)
            loc.fs.rm(trash, recursive=True)
        elif token is None or not os.path.exists(new + INTENT_SUFFIX):
            _check_own(new, token, record, "start")
    elif os.path.exists(companions[0]):
        if token is None:
            raise StoreError(
                f"store: {companions[0]} is in the way of the upgrade and is not provably "
                "this store's own; nothing was removed: move it away and run the upgrade again"
            )
        loc.fs.rm(companions[0], recursive=True)  # left by this upgrade's killed removal


def _remove_companions(loc, new: str) -> None:
    """What the new store's writer keeps beside it: its staging folder and its intent."""
    for path in (new + ".staging", new + INTENT_SUFFIX):
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
