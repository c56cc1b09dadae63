"""What the visual functions take in: a results store or dataset, frames from an archive or a
dataset, and a contrast stretch; read and checked the same way by every figure and movie."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import xarray as xr

from .._schema import SLOT
from ..errors import ArgumentError
from ..io._stream0 import open_themis
from ..store import open_results


def results_of(store: Any, group: str | None) -> xr.Dataset:
    """A results dataset from a store path or URL (opened lazily), or the dataset itself."""
    if isinstance(store, xr.Dataset):
        return store
    if isinstance(store, str | os.PathLike):
        return open_results(store, group=group)
    raise ArgumentError(
        f"store: expected a results store (path or URL) or dataset, got {type(store).__name__}"
    )


def frames_of(source: Any, site: str, start: pd.Timestamp, end: pd.Timestamp) -> xr.Dataset:
    """Frames of one site over [start, end) from an archive path/URL or a frames dataset."""
    if isinstance(source, xr.Dataset):
        if site not in [str(s) for s in source["site"].values]:
            raise ArgumentError(f"source: the frames have no site {site!r}")
        return source.sel(site=[site]).sel(time=slice(start, end - pd.Timedelta(SLOT)))

    return open_themis(source, site, start, end)


def check_contrast(contrast: Any) -> tuple[float, float]:
    """Two percentiles ``(low, high)``, ``0 <= low < high <= 100``, for a contrast stretch."""
    try:
        lo, hi = (float(v) for v in contrast)
    except (TypeError, ValueError):
        raise ArgumentError(
            f"contrast: expected two percentiles (1, 99), got {contrast!r}"
        ) from None
    if not 0 <= lo < hi <= 100:
        raise ArgumentError(f"contrast: expected 0 <= low < high <= 100, got {contrast!r}")
    return lo, hi
