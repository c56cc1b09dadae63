"""Occurrence: counts and rates of each class over usable slots, by site, calendar, MLT or MLAT.

Each ``(site, time)`` chunk gives a small table of counts per group and class
(:func:`count_kernel` over the group codes of :func:`flat_codes`); the tables are summed in
a tree on the cluster, so a store of any size is never loaded whole. ``usable`` is returned
beside every rate, so that groups combine by summing counts, never by averaging rates.

Grouped by ``mlat`` and ``mlt`` (and not by ``site``), the sites are pooled: every slot
falls in the cell of its site's magnetic latitude bin and its MLT hour, and the counts and
usable slots of all sites in a cell are summed before the rate is taken, the occurrence
dial of the survey papers (:func:`auroradask.plot_occurrence_dial`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .._results import (
    check_min_confidence,
    class_indices,
    class_names,
    results_arrays,
    site_coord,
    site_names,
)
from .._schema import SLOT
from ..distributed._progress import compute_progress
from ..errors import ArgumentError
from ._magnetic import (
    _DAY_NS,
    _HOUR_NS,
    DEFAULT_ALTITUDE_KM,
    DEFAULT_MLT_CADENCE,
    _days,
    _mlt_dask,
    mlat_kernel,
)
from ._smoothing import _labels
from ._usable import Window, _names, _site_slice

#: What :func:`occurrence` can group by.
GROUPINGS = ("site", "year", "month", "doy", "ut_hour", "mlt_hour", "mlat", "season")
#: Other names of groupings: ``mlt`` is ``mlt_hour`` (so ``by=("mlat", "mlt")`` reads as said).
ALIASES = {"mlt": "mlt_hour"}
#: Width (degrees) of the magnetic latitude bins of the ``mlat`` grouping, by default.
DEFAULT_MLAT_BIN = 1.0
#: Meteorological seasons, the values of the ``season`` grouping (December counts to DJF).
SEASONS = ("DJF", "MAM", "JJA", "SON")


def _calendar(t: np.ndarray, key: str) -> np.ndarray:
    """One calendar field of int64 ns times: year, month 1-12, doy 1-366, ut_hour 0-23 or
    season 0-3 (DJF, MAM, JJA, SON), computed once per UT day and spread to the slots."""
    if key == "ut_hour":
        return (t % _DAY_NS) // _HOUR_NS
    days, which = _days(t)
    d = days.astype("datetime64[D]")
    years = d.astype("datetime64[Y]")
    month = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    field = {
        "year": lambda: years.astype(np.int64) + 1970,
        "month": lambda: month,
        "doy": lambda: (d - years.astype("datetime64[D]")).astype(np.int64) + 1,
        "season": lambda: (month % 12) // 3,  # Dec, Jan, Feb -> 0 (DJF) ... Sep-Nov -> 3
    }[key]()
    return field[which]


def _group_size(key, *, first_year, n_sites, edges, last_year=None, n_mlat=0) -> int | None:
    sizes = {"month": 12, "doy": 366, "ut_hour": 24, "mlt_hour": 24, "season": 4}
    if key in sizes:
        return sizes[key]
    if key == "mlat":
        return n_mlat
    if key == "time":
        return len(edges) - 1
    if key == "year":
        return None if last_year is None else last_year - first_year + 1
    return n_sites


def count_kernel(
    label: np.ndarray, flat: np.ndarray, valid: np.ndarray, n_groups: int, n_classes: int
) -> np.ndarray:
    """Slots of each class in each group, ``(group, class)`` int64; ``label < 0`` not counted."""
    keep = valid & (label >= 0)
    index = flat[keep] * n_classes + label[keep].astype(np.int64)
    return np.bincount(index, minlength=n_groups * n_classes).reshape(n_groups, n_classes)


def _resample_edges(times: np.ndarray, freq: str) -> np.ndarray:
    """Left edges (and the final right edge) of ``freq`` bins covering ``times``, as int64 ns.

    Bins are closed on the left and labelled by their start, as for ``"1D"`` and ``"MS"``.
    """
    first, last = pd.Timestamp(times[0]), pd.Timestamp(times[-1])
    try:
        probe = pd.Series([0, 0], index=pd.DatetimeIndex([first, last]))
        starts = probe.resample(freq, closed="left", label="left").size().index
    except (ValueError, TypeError) as error:
        raise ArgumentError(f"freq: cannot resample to {freq!r} ({error})") from None
    if len(starts) > 1:
        step = starts[-1] - starts[-2]
    else:
        step = pd.tseries.frequencies.to_offset(freq)
    end = starts[-1] + step
    while end <= last:
        end = end + step
    edges = [*starts.as_unit("ns").asi8.tolist(), pd.Timestamp(end).as_unit("ns").value]
    return np.asarray(edges, dtype=np.int64)


def occurrence(
    results: xr.Dataset,
    by: str | Sequence[str] = ("mlt_hour",),
    *,
    freq: str | None = None,
    classes: str | Iterable[str] | None = None,
    min_confidence: float | None = None,
    exclude: str | Iterable[str] | None = None,
    smooth: Window = None,
    altitude_km: float = DEFAULT_ALTITUDE_KM,
    mlat_bin: float = DEFAULT_MLAT_BIN,
    compute: bool = True,
    progress: bool | Callable[[int, int], None] = True,
) -> xr.Dataset:
    """Counts and rates of each class over usable slots, grouped, chunk by chunk.

    The rate of a class in a group is its slots over the group's usable slots (see
    :func:`usable`); ``usable`` is returned beside it, so that rates of groups combine
    correctly (sum ``count`` and ``usable``, then divide), never by averaging rates.

    Parameters
    ----------
    results
        A results dataset or store.
    by
        Any of ``site``, ``year``, ``month``, ``doy`` (1-366), ``ut_hour``, ``mlt_hour``
        (or ``mlt``: the AACGM-v2 MLT hour, see :func:`magnetic_coordinates`), ``mlat``
        (the site's AACGM-v2 latitude in bins of ``mlat_bin`` degrees) and ``season`` (DJF,
        MAM, JJA, SON), as a list or a comma-separated string; empty for one group.
        Groupings left out are summed over: ``by=("mlat", "mlt")`` pools the sites, adding
        the counts and usable slots of every site in a cell before dividing.
    freq
        Also bin time at this pandas frequency (``"1D"``, ``"MS"``, ``"1h"``): a ``time``
        dimension labelled by each bin's start, bins closed on the left.
    classes
        Classes to report (default: all not excluded).
    min_confidence, exclude
        Which slots are usable (see :func:`usable`). Excluded classes are not reported.
    smooth
        Smooth the labels first (see :func:`smooth_labels`): slots or a duration.
    altitude_km
        Altitude of the magnetic coordinates (``mlt_hour``, ``mlat``). A site's ``mlat`` is
        the AACGM-v2 latitude of the point ``altitude_km`` above it: the centre of its field
        of view at the emission altitude (110 km, the green line, by default), taken at the
        middle of each slot's UT month, so that years of data follow the drift of up to 0.1
        degree a year.
    mlat_bin
        Width of the ``mlat`` bins in degrees (default 1), each labelled by its lower edge
        (``65.0``: 65 <= MLAT < 66), from the lowest site's to the highest, empty ones too.
    compute
        Compute now (default) or return a dask-backed dataset.
    progress
        While computing: a bar of the tasks done (True), none (False), or a function called
        with (tasks done, tasks in all). Local schedulers only; on a distributed client the
        Dask dashboard shows the tasks.

    Returns
    -------
    xarray.Dataset
        ``count(class, *by[, time])`` int64, ``usable(*by[, time])`` int64 and
        ``rate(class, *by[, time])`` float64 (NaN where no slot is usable); ``mlt`` gives
        ``mlt_hour``. Attributes: the options, and ``time_span`` (UT) of the time axis.
    """
    by = _check_by(by)
    min_confidence = check_min_confidence(min_confidence)
    mlat_bin = _check_mlat_bin(mlat_bin)
    all_classes = class_names(results)
    excluded = class_indices(results, exclude, "exclude")
    wanted = _wanted_classes(results, classes, excluded)
    grid = _grid(results, by, freq, altitude_km, mlat_bin)
    arrays, time_array = results_arrays(results, _names(min_confidence))
    label = _labels(results, arrays, smooth, min_confidence, excluded)
    counts = _count_dask(results, label, time_array, grid, len(all_classes), altitude_km)
    count = xr.DataArray(counts, dims=(*grid.keys, "class"), coords=_group_coords(results, grid))
    count = count.assign_coords({"class": all_classes})
    usable_count = count.sum("class")  # excluded classes were masked out: they count 0
    count = count.isel({"class": wanted}).transpose("class", *grid.keys)
    rate = count / usable_count.where(usable_count > 0)  # NaN, not a warning, where none
    out = xr.Dataset(
        {
            "count": count.assign_attrs(long_name="usable slots of the class"),
            "usable": usable_count.assign_attrs(long_name="usable slots"),
            "rate": rate.assign_attrs(long_name="fraction of usable slots in the class"),
        },
        attrs={
            "by": ",".join(by),
            "freq": str(freq),
            "min_confidence": str(min_confidence),
            "exclude": ",".join(all_classes[k] for k in excluded),
            "smooth": str(smooth),
            "altitude_km": float(altitude_km),
            "mlat_bin": float(mlat_bin),
            "slot_seconds": int(pd.Timedelta(SLOT).total_seconds()),
            "time_span": _time_span(results),
        },
    )
    if not compute:
        return out
    with compute_progress(progress, "occurrence"):
        return out.compute()


def _wanted_classes(
    results: xr.Dataset, classes: str | Iterable[str] | None, excluded: list[int]
) -> list[int]:
    """Indices of the classes to report: those asked for, else all not excluded."""
    all_classes = class_names(results)
    if classes is None:
        return [k for k in range(len(all_classes)) if k not in excluded]
    wanted = class_indices(results, classes, "classes")
    clash = [all_classes[k] for k in wanted if k in excluded]
    if clash:
        raise ArgumentError(f"classes: {clash} are also excluded; there is nothing to count")
    return wanted


def _time_span(results: xr.Dataset) -> str:
    """``first/last`` slot of the time axis, ISO 8601 UT (the span a table was taken over)."""
    times = results["time"].values
    first, last = pd.Timestamp(times[0]), pd.Timestamp(times[-1])
    return f"{first.isoformat()}/{last.isoformat()}"


def _check_mlat_bin(width: float) -> float:
    try:
        width = float(width)
    except (TypeError, ValueError):
        raise ArgumentError(f"mlat_bin: expected degrees, got {width!r}") from None
    if not np.isfinite(width) or not 0 < width <= 90:
        raise ArgumentError(f"mlat_bin: must be more than 0 and at most 90 degrees, got {width}")
    return width


@dataclass(frozen=True)
class _Grid:
    """The groups of an occurrence table: one key and size per axis, and what places a slot."""

    keys: tuple[str, ...]
    sizes: tuple[int, ...]
    first_year: int
    last_year: int
    edges: np.ndarray | None  # time bins (int64 ns) with ``freq``
    mlat_bin: float = DEFAULT_MLAT_BIN  # degrees
    mlat_first: int = 0  # bin number (floor(mlat / mlat_bin)) of the first ``mlat`` row

    @property
    def n_groups(self) -> int:
        return int(np.prod(self.sizes)) if self.sizes else 1


def _grid(
    results: xr.Dataset, by: list[str], freq: str | None, altitude_km: float, mlat_bin: float
) -> _Grid:
    times = np.asarray(results["time"].values, dtype="datetime64[ns]")
    if times.size == 0:
        raise ArgumentError("results: the time axis is empty")
    edges = _resample_edges(times, freq) if freq is not None else None
    first_year = int(times[0].astype("datetime64[Y]").astype(np.int64)) + 1970
    last_year = int(times[-1].astype("datetime64[Y]").astype(np.int64)) + 1970
    n_sites = results.sizes["site"]
    mlat_first, n_mlat = _mlat_rows(results, altitude_km, mlat_bin) if "mlat" in by else (0, 0)
    keys = (*by, *(["time"] if freq is not None else []))
    sizes = tuple(
        _group_size(
            k,
            first_year=first_year,
            n_sites=n_sites,
            edges=edges,
            last_year=last_year,
            n_mlat=n_mlat,
        )
        for k in keys
    )
    return _Grid(keys, sizes, first_year, last_year, edges, mlat_bin, mlat_first)


def _mlat_rows(results: xr.Dataset, altitude_km: float, mlat_bin: float) -> tuple[int, int]:
    """The first ``mlat`` bin number and the number of rows: every bin from the lowest to
    the highest that a site is in, in any month of the time axis (the rows must be known
    before the chunks are counted; the chunks compute the same values, cached)."""
    times = results["time"].values
    months = np.arange(np.datetime64(times[0], "M"), np.datetime64(times[-1], "M") + 1).astype(
        "datetime64[D]"
    )
    mlat = mlat_kernel(
        months,
        site_coord(results, "latitude"),
        site_coord(results, "longitude"),
        altitude_km=altitude_km,
    )
    if not np.isfinite(mlat).any():
        raise ArgumentError(
            "by: 'mlat' needs the sites' latitude and longitude, and the results have none"
        )
    bins = np.floor(mlat[np.isfinite(mlat)] / mlat_bin)
    return int(bins.min()), int(bins.max() - bins.min()) + 1


def _count_dask(
    results: xr.Dataset,
    label: da.Array,
    time_array: da.Array,
    grid: _Grid,
    n_classes: int,
    altitude_km: float,
) -> da.Array:
    """Counts ``(*sizes, class)`` of the usable slots: one small table per chunk, summed in
    a tree (MLT is computed per chunk when a grouping needs it, nothing of it stored)."""
    extra = []
    if "mlt_hour" in grid.keys:
        # float64: the hour of a slot is the floor of its MLT, and float32 rounds an MLT
        # within 3.4 ms below an hour up into the next one
        mlt = _mlt_dask(results, label, time_array, altitude_km, _default_cadence(), np.float64)
        extra = [mlt]
    mlat = None
    if "mlat" in grid.keys:  # computed per block from its months, as MLT's longitude is
        mlat = {
            "latitude": site_coord(results, "latitude"),
            "longitude": site_coord(results, "longitude"),
            "altitude_km": float(altitude_km),
            "bin": grid.mlat_bin,
            "first": grid.mlat_first,
        }
    blocks = da.map_blocks(
        _count_block,
        label,
        time_array[None, :],
        *extra,
        group_keys=grid.keys,
        sizes=grid.sizes,
        first_year=grid.first_year,
        edges=grid.edges,
        mlat=mlat,
        n_classes=n_classes,
        new_axis=[2, 3],
        chunks=(
            (1,) * label.numblocks[0],
            (1,) * label.numblocks[1],
            (grid.n_groups,),
            (n_classes,),
        ),
        dtype=np.int64,
    )
    counts = blocks.sum(axis=(0, 1), dtype=np.int64)  # (group, class), a tree reduction
    return counts.reshape(*grid.sizes, n_classes) if grid.sizes else counts.reshape(n_classes)


def _default_cadence() -> int:
    return int(pd.Timedelta(DEFAULT_MLT_CADENCE).value)


def _count_block(
    label, times, *mlt, group_keys, sizes, first_year, edges, mlat, n_classes, block_info=None
):
    """Counts ``(1, 1, group, class)`` of one ``(site, time)`` block."""
    rows = _site_slice(block_info, 0)
    mlat_code = None
    if mlat is not None:
        degrees = mlat_kernel(
            times.ravel(),
            mlat["latitude"][rows],
            mlat["longitude"][rows],
            altitude_km=mlat["altitude_km"],
        )
        mlat_code = mlat_codes(degrees, mlat["bin"], mlat["first"])
    flat, valid = flat_codes(
        group_keys,
        sizes,
        times.ravel(),
        np.arange(rows.start, rows.stop),
        mlt[0] if mlt else None,
        first_year=first_year,
        edges=edges,
        mlat_code=mlat_code,
    )
    n_groups = int(np.prod(sizes)) if sizes else 1
    return count_kernel(label, flat, valid, n_groups, n_classes)[None, None]


def mlat_codes(mlat: np.ndarray, width: float, first: int) -> np.ndarray:
    """The ``mlat`` row of magnetic latitudes: ``floor(mlat / width) - first``, -1 for NaN."""
    finite = np.isfinite(mlat)
    code = np.floor(np.where(finite, mlat, 0) / width).astype(np.int64) - first
    return np.where(finite, code, -1)


def flat_codes(
    keys: Sequence[str],
    sizes: Sequence[int],
    times: np.ndarray,
    site_rows: np.ndarray,
    mlt: np.ndarray | None,
    *,
    first_year: int,
    edges: np.ndarray | None,
    mlat_code: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Group number of each slot of a ``(site, time)`` block in the grid ``keys × sizes``,
    and whether the slot falls in the grid.

    Keys: ``site`` (row number), ``year`` (counted from ``first_year``), ``month`` 1-12,
    ``doy`` 1-366, ``ut_hour`` and ``mlt_hour`` 0-23 (floor of the hour), ``mlat`` (the row
    given by ``mlat_code``, see :func:`mlat_codes`), ``season`` (DJF, MAM, JJA, SON),
    ``time`` (bin ``i`` is ``[edges[i], edges[i + 1])``).
    """
    times = np.asarray(times, dtype="datetime64[ns]").ravel()
    t = times.view(np.int64)
    shape = (len(site_rows), len(times))
    flat = np.zeros(shape, dtype=np.int64)
    valid = np.ones(shape, dtype=bool)
    for key, size in zip(keys, sizes, strict=True):
        if key == "site":
            code = np.asarray(site_rows, dtype=np.int64)[:, None]
        elif key == "mlt_hour":
            finite = np.isfinite(mlt)
            code = np.where(finite, np.floor(np.where(finite, mlt, 0) % 24), -1).astype(np.int64)
        elif key == "mlat":
            code = mlat_code
            if (code >= size).any():  # the rows were laid out to hold every site's latitude:
                # masking such slots would drop them from the counts and the usable alike
                raise RuntimeError(f"occurrence: an mlat row past the {size} laid out (a bug)")
        elif key == "time":
            code = np.searchsorted(edges, t, side="right") - 1
            code = np.where(code >= len(edges) - 1, -1, code)[None, :]
        elif key == "year":
            code = (_calendar(t, "year") - first_year)[None, :]
        elif key in ("month", "doy"):
            code = (_calendar(t, key) - 1)[None, :]
        else:  # ut_hour, season
            code = _calendar(t, key)[None, :]
        code = np.broadcast_to(code, shape)
        inside = (code >= 0) & (code < size)
        valid &= inside
        flat = flat * size + np.where(inside, code, 0)
    return flat, valid


def _check_by(by: str | Sequence[str]) -> list[str]:
    if isinstance(by, str):
        by = [b.strip() for b in by.split(",") if b.strip()]
    by = list(by)
    unknown = [b for b in by if b not in GROUPINGS and b not in ALIASES]
    if unknown:
        choices = [*GROUPINGS, *ALIASES]
        raise ArgumentError(f"by: unknown grouping {unknown}; choose from {choices}")
    by = [ALIASES.get(b, b) for b in by]
    if len(set(by)) != len(by):
        raise ArgumentError(f"by: a grouping is repeated in {by}")
    return by


def _group_coords(results: xr.Dataset, grid: _Grid) -> dict[str, Any]:
    coords: dict[str, Any] = {}
    edges = grid.edges
    for key, size in zip(grid.keys, grid.sizes, strict=True):
        if key == "site":
            coords[key] = site_names(results)
        elif key == "year":
            coords[key] = np.arange(grid.first_year, grid.last_year + 1)
        elif key == "mlat":
            lower = np.round((grid.mlat_first + np.arange(size)) * grid.mlat_bin, 9)
            attrs = {
                "units": "degrees",
                "long_name": "AACGM-v2 latitude, lower edge of the bin",
                "bin_width": grid.mlat_bin,
            }
            coords[key] = xr.Variable(key, lower, attrs)
        elif key == "month":
            coords[key] = np.arange(1, 13)
        elif key == "doy":
            coords[key] = np.arange(1, 367)
        elif key in ("ut_hour", "mlt_hour"):
            coords[key] = np.arange(24)
        elif key == "season":
            coords[key] = list(SEASONS)
        elif key == "time":
            coords[key] = edges[:-1].astype("datetime64[ns]")
    return coords
