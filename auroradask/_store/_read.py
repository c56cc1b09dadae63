"""Reading results stores: open lazily, describe what they hold."""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._schema import FRAME_STATUS_MEANINGS
from ..errors import SourceNotFoundError


@contextmanager
def quiet_zarr():
    """Hide zarr's notice that consolidated metadata is not in the v3 spec: we rely on it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        yield


def open_existing(url: str, group: str | None, storage_options) -> xr.Dataset | None:
    """The store at ``url`` read eagerly-chunked, or None if there is none (zarr's not-found
    errors are FileNotFoundErrors)."""
    try:
        with quiet_zarr():
            return xr.open_zarr(url, group=group, storage_options=storage_options, chunks=None)
    except (FileNotFoundError, KeyError):
        return None


def open_results(
    store: str | os.PathLike,
    *,
    group: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Open a results store lazily.

    Parameters
    ----------
    store
        A path or fsspec URL written by :func:`to_zarr`.
    group, storage_options
        As given to :func:`to_zarr`.

    Returns
    -------
    xarray.Dataset
        The results variables, ``write_complete``, and the store's provenance attributes.

    Raises
    ------
    FileNotFoundError
        If there is no store at ``store``.
    """
    url = os.fspath(store)
    existing = open_existing(url, group, storage_options)
    if existing is None:
        raise SourceNotFoundError(f"store: no results store at {url!r}")
    with quiet_zarr():
        return xr.open_zarr(url, group=group, storage_options=storage_options)


def describe(results: xr.Dataset) -> dict[str, Any]:
    """Sites, time span of written slots, counts per class and status, and provenance.

    Reads only the small per-slot variables (``label``, ``frame_status``, ``write_complete``).
    """
    written = results["write_complete"].values.astype(bool) if "write_complete" in results else None
    label = results["label"].values
    status = results["frame_status"].values
    if written is None:
        written = status >= 0
    times = results["time"].values[written.any(axis=0)]
    classes = [str(c) for c in results["class"].values]
    label_counts = np.bincount(
        label[written & (label >= 0)].astype(np.int64), minlength=len(classes)
    )
    status_counts = np.bincount(
        status[written].astype(np.int64), minlength=len(FRAME_STATUS_MEANINGS)
    )
    return {
        "sites": [str(s) for s in results["site"].values],
        "first": str(pd.Timestamp(times[0])) if len(times) else None,
        "last": str(pd.Timestamp(times[-1])) if len(times) else None,
        "slots_written": int(written.sum()),
        "label_counts": dict(zip(classes, map(int, label_counts), strict=True)),
        "status_counts": dict(zip(FRAME_STATUS_MEANINGS, map(int, status_counts), strict=True)),
        "provenance": {k: str(v) for k, v in results.attrs.items()},
    }
