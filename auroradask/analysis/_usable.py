"""Which slots can enter a statistic, and the arguments every analysis shares.

A store's time axis covers whole UT days, most of it never written (``frame_status == -1``),
so no statistic may use the time axis as its denominator: every rate of this package is over
*usable* slots (written, classified, optionally confident enough and not of an excluded
class). :func:`usable_kernel` is the numpy rule, :func:`usable` its lazy wrapper; the
duration and window arguments of the other analyses are read here too, so that they are
refused with the same words everywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .._results import check_min_confidence, class_indices, results_arrays
from .._schema import NOT_WRITTEN, SLOT
from ..errors import ArgumentError

#: A smoothing window: a number of slots, a duration, or None (no smoothing).
Window = int | str | pd.Timedelta | dt.timedelta | np.timedelta64 | None
#: A duration: ``"5min"``, a timedelta or a numpy timedelta64 (never a bare number).
Duration = str | pd.Timedelta | dt.timedelta | np.timedelta64


def _duration(value: Duration, arg: str) -> pd.Timedelta:
    """A non-negative duration from ``"5min"``, a timedelta or a numpy timedelta64."""
    if isinstance(value, bool) or isinstance(value, int | float | np.integer | np.floating):
        raise ArgumentError(f"{arg}: give a duration such as '30s' or '5min', not {value!r}")
    try:
        duration = pd.Timedelta(value)
    except (ValueError, TypeError):
        raise ArgumentError(f"{arg}: cannot read {value!r} as a duration ('30s', '5min')") from None
    if pd.isna(duration) or duration < pd.Timedelta(0):
        raise ArgumentError(f"{arg}: must be a duration >= 0, got {value!r}")
    return duration


def _window_half(window: Window, arg: str = "smooth") -> int:
    """Half-width in slots of a centred window of N slots (int) or of a duration.

    A window of N slots covers ``N // 2`` slots on each side; an even N is widened by one,
    since only an odd window is centred.
    """
    if isinstance(window, bool):
        raise ArgumentError(f"{arg}: expected a number of slots or a duration, got {window!r}")
    if isinstance(window, int | np.integer):
        if window < 1:
            raise ArgumentError(f"{arg}: a window of at least 1 slot, got {window}")
        return int(window) // 2
    slots = _duration(window, arg) / pd.Timedelta(SLOT)
    if slots < 1:
        raise ArgumentError(f"{arg}: a window of at least one 3-s slot, got {window!r}")
    return int(round(slots)) // 2


def _site_slice(block_info: dict | None, position: int = 0) -> slice:
    """The site rows of the block being computed (from dask's ``block_info``)."""
    lo, hi = block_info[position]["array-location"][0]
    return slice(lo, hi)


# --------------------------------------------------------------------- usable mask


def usable_kernel(
    label: np.ndarray,
    frame_status: np.ndarray,
    confidence: np.ndarray | None = None,
    *,
    min_confidence: float | None = None,
    exclude: Sequence[int] = (),
) -> np.ndarray:
    """True where a slot can enter a statistic: written, classified, confident, not excluded.

    ``frame_status < 0`` marks a slot of a store that was never written (padding of the UT
    days), ``label < 0`` a slot without a frame to classify; neither says anything about the
    sky, so both are left out of every denominator. A slot passes ``min_confidence`` when
    ``confidence >= min_confidence``, compared at the precision the confidence is stored in
    (float32 in a store: a minimum of 0.9 keeps a stored 0.9, which is 0.899999976 as a
    float64). A confidence of NaN never passes.
    """
    ok = (frame_status > NOT_WRITTEN) & (label >= 0)
    if len(exclude):
        ok &= ~np.isin(label, np.asarray(exclude, dtype=label.dtype))
    if min_confidence is not None:
        confidence = np.asarray(confidence)
        stored = confidence.dtype if np.issubdtype(confidence.dtype, np.floating) else np.float64
        ok &= confidence >= np.asarray(min_confidence, dtype=stored)
    return ok


def _usable_dask(arrays: dict[str, da.Array], min_confidence, exclude) -> da.Array:
    extra = [arrays["confidence"]] if min_confidence is not None else []
    return da.map_blocks(
        usable_kernel,
        arrays["label"],
        arrays["frame_status"],
        *extra,
        min_confidence=min_confidence,
        exclude=tuple(exclude),
        dtype=bool,
    )


def _names(min_confidence: float | None) -> list[str]:
    return ["label", "frame_status"] + (["confidence"] if min_confidence is not None else [])


def usable(
    results: xr.Dataset,
    *,
    min_confidence: float | None = None,
    exclude: str | Iterable[str] | None = None,
) -> xr.DataArray:
    """Which slots are usable for statistics, lazily.

    A slot is usable when it was written (``frame_status >= 0``: a store pads whole UT days
    with unwritten slots), classified (``label >= 0``), its confidence is at least
    ``min_confidence`` (a slot exactly on it is usable, as stored in float32), and its
    class is not in ``exclude`` (e.g. ``"bad_viewing"``, where
    the sky cannot be seen, so the slot says nothing about aurora).

    Parameters
    ----------
    results
        A results dataset or store.
    min_confidence
        Lowest probability of the chosen class that counts, 0..1 (default: any).
    exclude
        Class name(s) whose slots are not usable.

    Returns
    -------
    xarray.DataArray
        Boolean ``(site, time)``, dask-backed, chunked like the store.
    """
    min_confidence = check_min_confidence(min_confidence)
    excluded = class_indices(results, exclude, "exclude")
    arrays, _ = results_arrays(results, _names(min_confidence))
    mask = _usable_dask(arrays, min_confidence, excluded)
    return xr.DataArray(
        mask,
        dims=("site", "time"),
        coords={"site": results["site"], "time": results["time"]},
        name="usable",
        attrs={"long_name": "slot usable for statistics", "min_confidence": str(min_confidence)},
    )
