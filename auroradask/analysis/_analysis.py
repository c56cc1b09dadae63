"""Time-series analysis of stored labels: usable slots, smoothing, magnetic coordinates,
occurrence, events, network coincidence and joins with other time series.

Everything here works on a results dataset (:func:`auroradask.classify`) or a store
(:func:`auroradask.open_results`), lazily and one chunk at a time, so a store of any size is
never loaded whole. Each step is a numpy *kernel* (a plain function of arrays, tested
against a direct computation) and a thin dask/xarray *wrapper* that maps it over the
chunks: ``map_blocks`` for per-slot work, ``map_overlap`` for the smoother (a window needs
its neighbours across chunk edges), and small per-chunk tables merged on the client for
occurrence counts and events.

A store's time axis covers whole UT days, most of it never written (``frame_status == -1``),
so no statistic may use the time axis as its denominator: every rate here is over *usable*
slots (written, classified, optionally confident enough and not of an excluded class), and
the number of usable slots is returned beside it so that rates can be combined.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.delayed import Delayed

from .._schema import DAY_SLOTS, NOT_CLASSIFIED, NOT_WRITTEN, SLOT, label_attrs
from ..distributed._progress import compute_progress
from ..errors import ArgumentError

#: Altitude (km) of the aurora's emission, where magnetic coordinates are taken by default.
DEFAULT_ALTITUDE_KM = 110.0
#: Cadence of the exact AACGM-v2 magnetic local times that the per-slot values interpolate.
DEFAULT_MLT_CADENCE = "10min"
#: UT days per task for variables that are not dask arrays yet (see :func:`_arrays`).
CHUNK_DAYS = 8
#: What :func:`occurrence` can group by.
GROUPINGS = ("site", "year", "month", "doy", "ut_hour", "mlt_hour", "season")
#: Meteorological seasons, the values of the ``season`` grouping (December counts to DJF).
SEASONS = ("DJF", "MAM", "JJA", "SON")

Window = int | str | pd.Timedelta | dt.timedelta | np.timedelta64 | None
Duration = str | pd.Timedelta | dt.timedelta | np.timedelta64

# ------------------------------------------------------------------------- arguments


def _classes(results: xr.Dataset) -> list[str]:
    return [str(c) for c in results["class"].values]


def _class_indices(results: xr.Dataset, names: str | Iterable[str] | None, arg: str) -> list[int]:
    """Indices of class names; an unknown name is an :class:`ArgumentError` naming ``arg``."""
    classes = _classes(results)
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    indices = []
    for name in names:
        if str(name) not in classes:
            raise ArgumentError(f"{arg}: unknown class {str(name)!r}; the store has {classes}")
        indices.append(classes.index(str(name)))
    return indices


def _site_names(results: xr.Dataset) -> list[str]:
    return [str(s) for s in results["site"].values]


def _check_site(results: xr.Dataset, site: str, arg: str = "site") -> int:
    sites = _site_names(results)
    if str(site) not in sites:
        raise ArgumentError(f"{arg}: unknown site {str(site)!r}; the store has {sites}")
    return sites.index(str(site))


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


def _min_confidence(value: float | None) -> float | None:
    if value is None:
        return None
    if not 0 <= float(value) <= 1:
        raise ArgumentError(f"min_confidence: must be between 0 and 1, got {value!r}")
    return float(value)


# ------------------------------------------------------------------- dask access


def _is_dask(var: xr.DataArray) -> bool:
    return isinstance(var.data, da.Array)


def _arrays(results: xr.Dataset, names: Sequence[str]) -> tuple[dict[str, da.Array], tuple]:
    """The named (site, time) variables as dask arrays with one chunking, and the time
    coordinate as a dask array with the same time chunks.

    Variables that are not dask arrays (a dataset in memory, or a store opened with
    ``chunks=None``) are chunked by site and :data:`CHUNK_DAYS` UT days: one task per
    store chunk costs more in scheduling and in zarr's per-call overhead than the work.
    """
    missing = [n for n in names if n not in results.variables]
    if missing:
        raise ArgumentError(
            f"results: missing {missing}; pass a results dataset (auroradask.classify) or a "
            "store (auroradask.open_results)"
        )
    sub = results[list(names)].transpose("site", "time", ...)
    if not all(_is_dask(sub[n]) for n in names):
        dasked = [sub[n] for n in names if _is_dask(sub[n])]
        time_chunks = dasked[0].chunks[1] if dasked else CHUNK_DAYS * DAY_SLOTS
        sub = sub.chunk({"site": 1, "time": time_chunks})
    sub = sub.unify_chunks()
    arrays = {n: sub[n].data for n in names}
    time_chunks = next(iter(arrays.values())).chunks[1]
    times = da.from_array(np.asarray(results["time"].values, dtype="datetime64[ns]"), time_chunks)
    return arrays, times


def _site_coord(results: xr.Dataset, name: str) -> np.ndarray:
    if name not in results.coords and name not in results.variables:
        return np.full(results.sizes["site"], np.nan)
    return np.asarray(results[name].values, dtype=np.float64)


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
    sky, so both are left out of every denominator. A confidence of NaN never passes a
    ``min_confidence``.
    """
    ok = (frame_status > NOT_WRITTEN) & (label >= 0)
    if len(exclude):
        ok &= ~np.isin(label, np.asarray(exclude, dtype=label.dtype))
    if min_confidence is not None:
        ok &= confidence >= min_confidence
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
    ``min_confidence``, and its class is not in ``exclude`` (e.g. ``"bad_viewing"``, where
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
    min_confidence = _min_confidence(min_confidence)
    excluded = _class_indices(results, exclude, "exclude")
    arrays, _ = _arrays(results, _names(min_confidence))
    mask = _usable_dask(arrays, min_confidence, excluded)
    return xr.DataArray(
        mask,
        dims=("site", "time"),
        coords={"site": results["site"], "time": results["time"]},
        name="usable",
        attrs={"long_name": "slot usable for statistics", "min_confidence": str(min_confidence)},
    )


# ----------------------------------------------------------------------- smoother


def mode_filter(label: np.ndarray, n_classes: int, half: int) -> np.ndarray:
    """The most common label in a centred window of ``2 * half + 1`` slots, along the last axis.

    Only labelled slots (``>= 0``) vote; a slot without a label keeps -1, so smoothing never
    invents a label where there was no usable frame. Because the window is fixed in time, a
    gap longer than the window is never bridged: labels on its far side cannot reach into
    the window. A tie keeps the slot's own label when it is among the most common, else the
    lowest class index.

    Parameters
    ----------
    label
        Integer labels ``(..., time)``, -1 where not usable.
    n_classes
        Number of classes (labels are 0..n_classes-1).
    half
        Slots on each side of the centre.

    Returns
    -------
    numpy.ndarray
        int8 smoothed labels, same shape.
    """
    n = label.shape[-1]
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    counts = np.empty((n_classes, *label.shape), dtype=np.int32)
    for k in range(n_classes):
        cumulative = np.zeros((*label.shape[:-1], n + 1), dtype=np.int32)
        np.cumsum(label == k, axis=-1, out=cumulative[..., 1:])
        counts[k] = cumulative[..., hi] - cumulative[..., lo]
    best = counts.max(axis=0)
    own = np.take_along_axis(counts, np.clip(label, 0, None)[None].astype(np.intp), axis=0)[0]
    out = np.where(own == best, label, counts.argmax(axis=0))
    return np.where(label >= 0, out, NOT_CLASSIFIED).astype(np.int8)


def _smoothed_dask(
    arrays: dict[str, da.Array], n_classes: int, half: int, min_confidence, exclude
) -> da.Array:
    """Labels of the usable slots (-1 elsewhere), mode-filtered with overlap between chunks."""
    ok = _usable_dask(arrays, min_confidence, exclude)
    masked = da.where(ok, arrays["label"], np.int8(NOT_CLASSIFIED)).astype(np.int8)
    if half == 0:
        return masked
    return da.map_overlap(
        mode_filter,
        masked,
        depth={0: 0, 1: half},
        boundary=NOT_CLASSIFIED,  # beyond the ends of the axis: no data
        dtype=np.int8,
        n_classes=n_classes,
        half=half,
    )


def smooth_labels(
    results: xr.Dataset,
    window: int | Duration,
    *,
    min_confidence: float | None = None,
    exclude: str | Iterable[str] | None = None,
) -> xr.DataArray:
    """Labels smoothed by the most common label in a centred window, lazily.

    A classifier's labels flicker from frame to frame; the mode over a short window (a few
    slots or e.g. ``"30s"``) removes single-frame flickers without moving the edges of long
    intervals. Only usable slots (see :func:`usable`) vote and get a label; every other slot
    is -1, so no label is invented across a gap, and a gap longer than the window is never
    bridged. Chunks are computed with an overlap of half a window, so results do not depend
    on the chunking. Ties keep the slot's own label.

    Parameters
    ----------
    results
        A results dataset or store.
    window
        A number of slots (an even number is widened by one to be centred) or a duration.
    min_confidence, exclude
        As for :func:`usable`.

    Returns
    -------
    xarray.DataArray
        int8 ``label(site, time)``, dask-backed, -1 where not usable.
    """
    half = _window_half(window, "window")
    min_confidence = _min_confidence(min_confidence)
    excluded = _class_indices(results, exclude, "exclude")
    arrays, _ = _arrays(results, _names(min_confidence))
    smoothed = _smoothed_dask(arrays, len(_classes(results)), half, min_confidence, excluded)
    attrs = label_attrs(_classes(results))
    attrs["comment"] = (
        f"-1: not usable; smoothed: most common label in a centred window of {2 * half + 1} slots"
    )
    return xr.DataArray(
        smoothed,
        dims=("site", "time"),
        coords={"site": results["site"], "time": results["time"]},
        name="label",
        attrs=attrs,
    )


def _labels(results, arrays, smooth: Window, min_confidence, excluded) -> da.Array:
    """Labels of the usable slots (-1 elsewhere), smoothed when ``smooth`` is given."""
    half = 0 if smooth is None else _window_half(smooth, "smooth")
    return _smoothed_dask(arrays, len(_classes(results)), half, min_confidence, excluded)


# ---------------------------------------------------------- magnetic coordinates

# The AACGM-v2 C library keeps the date and its time-interpolated coefficients in global
# state, and reuses them for a nearby date: a conversion then depends (by up to ~0.3 s of
# MLT) on what was converted before it, and two threads could use each other's date. Every
# call goes through this lock and first moves the state far away, so that each result is
# the one a fresh process would give, whatever ran before and however the work is chunked.
_AACGM_LOCK = threading.Lock()
_DAY_NS = 86_400 * 10**9
_HOUR_NS = 3_600 * 10**9


def _days(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UT day numbers (days since 1970) present in int64 ns times, and each time's index
    into them. Converting every slot's datetime64 to months or years is the slow part of
    numpy's calendar, so fields are computed per day; times in order (a store's axis) take
    a fast path without sorting."""
    day = t // _DAY_NS
    if day.size == 0:
        return day, np.zeros(0, dtype=np.intp)
    if day[0] == day[-1] and day.min() == day.max():
        return day[:1], np.zeros(day.size, dtype=np.intp)
    step = np.diff(day)
    if (step >= 0).all():
        which = np.r_[0, np.cumsum(step > 0)].astype(np.intp)
        return day[np.r_[0, np.flatnonzero(step) + 1]], which
    return np.unique(day, return_inverse=True)


def _reset_aacgm(year: int) -> None:
    from aacgmv2 import _aacgmv2

    far = 1950 if year > 1975 else 2000  # another 5-year coefficient epoch: forces a reload
    _aacgmv2.set_datetime(far, 1, 1, 0, 0, 0)


def _datetimes(ns: np.ndarray) -> list[dt.datetime]:
    return [pd.Timestamp(int(t)).to_pydatetime() for t in np.atleast_1d(ns)]


@functools.lru_cache(maxsize=4096)
def _day_knots(day_ns: int, step_ns: int) -> np.ndarray:
    """MLT (hours, unwrapped) of AACGM longitude 0 every ``step_ns`` from the UT day's 00:00
    through its end (the last knot at or after the next 00:00).

    AACGM-v2 MLT is linear in magnetic longitude: ``MLT(mlon, t) = MLT(0, t) + mlon / 15``
    (mod 24), so one series per time serves every site. One call per UT day, always from a
    reset state, so every slot of the day gets the same knots whatever its chunk.
    """
    import aacgmv2

    n = -(-_DAY_NS // step_ns) + 1
    times = _datetimes(day_ns + step_ns * np.arange(n, dtype=np.int64))
    with _AACGM_LOCK:
        _reset_aacgm(times[0].year)
        mlt = np.asarray(aacgmv2.convert_mlt(np.zeros(n), times), dtype=np.float64)
    # unwrapped within the day (so that interpolation crosses midnight the short way); a
    # function of the day alone, so every slot gets the same value whatever its chunk
    return np.unwrap(mlt, period=24.0)


@functools.lru_cache(maxsize=65536)
def _aacgm_site(lat: float, lon: float, altitude_km: float, when_ns: int) -> tuple[float, float]:
    """AACGM-v2 (magnetic latitude, longitude) of a geodetic point at one time."""
    if not (np.isfinite(lat) and np.isfinite(lon)):
        return (np.nan, np.nan)
    import aacgmv2

    (when,) = _datetimes(np.array([when_ns]))
    with _AACGM_LOCK:
        _reset_aacgm(when.year)
        mlat, mlon, _ = aacgmv2.get_aacgm_coord(lat, lon, altitude_km, when)
    return (float(mlat), float(mlon))


def _mid_month_ns(months: np.ndarray) -> np.ndarray:
    """The 15th, 00:00 UT, of each month (datetime64[M]), as int64 ns."""
    return (
        (months.astype("datetime64[D]") + np.timedelta64(14, "D"))
        .astype("datetime64[ns]")
        .view(np.int64)
    )


def mlt_kernel(
    times: np.ndarray,
    latitude: np.ndarray,
    longitude: np.ndarray,
    *,
    altitude_km: float = DEFAULT_ALTITUDE_KM,
    cadence_ns: int = int(pd.Timedelta(DEFAULT_MLT_CADENCE).value),
) -> np.ndarray:
    """AACGM-v2 magnetic local time (hours, 0..24) of sites at times, shape ``(site, time)``.

    Exact AACGM-v2 values are computed at a coarse cadence (default 10 min) and linearly
    interpolated (the short way round midnight): the MLT of longitude 0 is
    one series for every site, and each site adds its magnetic longitude / 15 h, taken at
    the middle of each month (the secular drift over half a month is far below a second
    of MLT). A site without coordinates gets NaN.
    """
    times = np.asarray(times, dtype="datetime64[ns]").ravel()
    lat = np.atleast_1d(np.asarray(latitude, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(longitude, dtype=np.float64))
    out = np.full((lat.size, times.size), np.nan)
    if times.size == 0:
        return out
    t = times.view(np.int64)
    days, which = _days(t)
    mlt0 = np.empty(t.size)
    ordered = len(days) == 1 or bool((np.diff(which) >= 0).all())
    bounds = np.searchsorted(which, np.arange(len(days) + 1)) if ordered else None
    for i, d in enumerate(days):  # one day per chunk of a store, a few per larger task
        mine = slice(bounds[i], bounds[i + 1]) if ordered else which == i
        knots = _day_knots(int(d) * _DAY_NS, cadence_ns)
        grid = np.arange(len(knots), dtype=np.float64) * cadence_ns
        mlt0[mine] = np.interp((t[mine] - int(d) * _DAY_NS).astype(np.float64), grid, knots)
    # the site's magnetic longitude at the middle of each slot's month (month of its day)
    months = days.astype("datetime64[D]").astype("datetime64[M]")
    unique_months, month_of_day = np.unique(months, return_inverse=True)
    mid = _mid_month_ns(unique_months)
    for i in range(lat.size):
        mlon = np.array([_aacgm_site(lat[i], lon[i], float(altitude_km), int(m))[1] for m in mid])
        shift = mlon[month_of_day] / 15.0
        out[i] = mlt0 + (shift[0] if len(shift) == 1 else shift[which])
        np.mod(out[i], 24.0, out=out[i])
    return out


def _mlt_block(rows, times, *, latitude, longitude, altitude_km, cadence_ns):
    rows = rows.ravel()
    return mlt_kernel(
        times.ravel(),
        latitude[rows],
        longitude[rows],
        altitude_km=altitude_km,
        cadence_ns=cadence_ns,
    ).astype(np.float32)


def _mlt_dask(results, like: da.Array, times: da.Array, altitude_km, cadence_ns) -> da.Array:
    """Per-slot MLT ``(site, time)`` float32, chunked like ``like`` (nothing of it is read)."""
    rows = da.arange(like.shape[0], chunks=(like.chunks[0],))
    return da.map_blocks(
        _mlt_block,
        rows[:, None],
        times[None, :],
        latitude=_site_coord(results, "latitude"),
        longitude=_site_coord(results, "longitude"),
        altitude_km=float(altitude_km),
        cadence_ns=cadence_ns,
        chunks=like.chunks,
        dtype=np.float32,
    )


def magnetic_coordinates(
    results: xr.Dataset,
    *,
    altitude_km: float = DEFAULT_ALTITUDE_KM,
    cadence: Duration = DEFAULT_MLT_CADENCE,
    epoch: Any = None,
) -> xr.Dataset:
    """AACGM-v2 magnetic latitude and longitude of each site, magnetic local time of each slot.

    The aurora is organised by magnetic, not geographic, coordinates; AACGM-v2 (``aacgmv2``)
    is the field's standard. Per-slot MLT is interpolated between exact values at
    ``cadence`` (see :func:`mlt_kernel`), so a site-decade costs seconds, not the hours of
    one conversion per slot; it is computed lazily, chunk by chunk.

    Parameters
    ----------
    results
        A results dataset or store with ``latitude`` and ``longitude`` (geodetic) per site.
    altitude_km
        Altitude of the mapped point (default 110 km, the aurora's green line).
    cadence
        Spacing of the exact MLT values that are interpolated.
    epoch
        Time of the per-site magnetic latitude and longitude (default: the middle of the time
        axis); they drift by about 0.1 degree a year.

    Returns
    -------
    xarray.Dataset
        ``mlat(site)``, ``mlon(site)`` (degrees), ``mlt(site, time)`` (hours, float32, lazy).
    """
    cadence_ns = int(_duration(cadence, "cadence").value)
    if not 0 < cadence_ns <= _DAY_NS:
        raise ArgumentError(f"cadence: must be longer than 0 and at most a day, got {cadence!r}")
    if not np.isfinite(altitude_km) or not 0 <= altitude_km <= 2000:
        raise ArgumentError(
            f"altitude_km: must be 0..2000 km (AACGM-v2's range), got {altitude_km}"
        )
    times = results["time"].values
    when = (pd.Timestamp(times[len(times) // 2]) if epoch is None else pd.Timestamp(epoch)).value
    lat, lon = _site_coord(results, "latitude"), _site_coord(results, "longitude")
    coords = np.array(
        [_aacgm_site(a, o, float(altitude_km), int(when)) for a, o in zip(lat, lon, strict=True)]
    )
    arrays, time_array = _arrays(results, ["label"])
    mlt = _mlt_dask(results, arrays["label"], time_array, altitude_km, cadence_ns)
    site = {"site": results["site"]}
    return xr.Dataset(
        {
            "mlat": ("site", coords[:, 0], {"units": "degrees", "long_name": "AACGM-v2 latitude"}),
            "mlon": ("site", coords[:, 1], {"units": "degrees", "long_name": "AACGM-v2 longitude"}),
            "mlt": (
                ("site", "time"),
                mlt,
                {"units": "hours", "long_name": "AACGM-v2 magnetic local time"},
            ),
        },
        coords={**site, "time": results["time"]},
        attrs={"altitude_km": float(altitude_km), "epoch": str(pd.Timestamp(when))},
    )


# ----------------------------------------------------------------------- occurrence


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


def _group_size(key, *, first_year, n_sites, edges, last_year=None) -> int | None:
    sizes = {"month": 12, "doy": 366, "ut_hour": 24, "mlt_hour": 24, "season": 4}
    if key in sizes:
        return sizes[key]
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
        (AACGM-v2, see :func:`magnetic_coordinates`) and ``season`` (DJF, MAM, JJA, SON),
        as a list or a comma-separated string; empty for one group.
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
        Altitude of the magnetic coordinates, for ``mlt_hour``.
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
        ``rate(class, *by[, time])`` float64 (NaN where no slot is usable).
    """
    by = _check_by(by)
    min_confidence = _min_confidence(min_confidence)
    all_classes = _classes(results)
    excluded = _class_indices(results, exclude, "exclude")
    wanted = _class_indices(results, classes, "classes") if classes is not None else None
    if wanted is None:
        wanted = [k for k in range(len(all_classes)) if k not in excluded]
    clash = [all_classes[k] for k in wanted if k in excluded]
    if clash:
        raise ArgumentError(f"classes: {clash} are also excluded; there is nothing to count")
    times = np.asarray(results["time"].values, dtype="datetime64[ns]")
    if times.size == 0:
        raise ArgumentError("results: the time axis is empty")
    edges = _resample_edges(times, freq) if freq is not None else None
    first_year = int(times[0].astype("datetime64[Y]").astype(np.int64)) + 1970
    last_year = int(times[-1].astype("datetime64[Y]").astype(np.int64)) + 1970
    n_sites = results.sizes["site"]
    keys = [*by, *(["time"] if freq is not None else [])]
    sizes = [
        _group_size(k, first_year=first_year, n_sites=n_sites, edges=edges, last_year=last_year)
        for k in keys
    ]

    arrays, time_array = _arrays(results, _names(min_confidence))
    label = _labels(results, arrays, smooth, min_confidence, excluded)
    extra = []
    if "mlt_hour" in by:
        extra = [_mlt_dask(results, label, time_array, altitude_km, _default_cadence())]
    n_classes = len(all_classes)
    n_groups = int(np.prod(sizes)) if sizes else 1
    blocks = da.map_blocks(
        _count_block,
        label,
        time_array[None, :],
        *extra,
        group_keys=tuple(keys),
        sizes=tuple(sizes),
        first_year=first_year,
        edges=edges,
        n_classes=n_classes,
        new_axis=[2, 3],
        chunks=((1,) * label.numblocks[0], (1,) * label.numblocks[1], (n_groups,), (n_classes,)),
        dtype=np.int64,
    )
    counts = blocks.sum(axis=(0, 1), dtype=np.int64)  # (group, class), a tree reduction
    counts = counts.reshape(*sizes, n_classes) if sizes else counts.reshape(n_classes)
    dims = (*keys, "class")
    count = xr.DataArray(
        counts, dims=dims, coords=_group_coords(results, keys, first_year, last_year, edges)
    )
    count = count.assign_coords({"class": all_classes})
    usable_count = count.sum("class")  # excluded classes were masked out: they count 0
    count = count.isel({"class": wanted}).transpose("class", *keys)
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
            "slot_seconds": int(pd.Timedelta(SLOT).total_seconds()),
        },
    )
    if not compute:
        return out
    with compute_progress(progress, "occurrence"):
        return out.compute()


def _default_cadence() -> int:
    return int(pd.Timedelta(DEFAULT_MLT_CADENCE).value)


def _count_block(
    label, times, *mlt, group_keys, sizes, first_year, edges, n_classes, block_info=None
):
    """Counts ``(1, 1, group, class)`` of one ``(site, time)`` block."""
    rows = _site_slice(block_info, 0)
    flat, valid = flat_codes(
        group_keys,
        sizes,
        times.ravel(),
        np.arange(rows.start, rows.stop),
        mlt[0] if mlt else None,
        first_year=first_year,
        edges=edges,
    )
    n_groups = int(np.prod(sizes)) if sizes else 1
    return count_kernel(label, flat, valid, n_groups, n_classes)[None, None]


def flat_codes(
    keys: Sequence[str],
    sizes: Sequence[int],
    times: np.ndarray,
    site_rows: np.ndarray,
    mlt: np.ndarray | None,
    *,
    first_year: int,
    edges: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Group number of each slot of a ``(site, time)`` block in the grid ``keys × sizes``,
    and whether the slot falls in the grid.

    Keys: ``site`` (row number), ``year`` (counted from ``first_year``), ``month`` 1-12,
    ``doy`` 1-366, ``ut_hour`` and ``mlt_hour`` 0-23 (floor of the hour), ``season`` (DJF,
    MAM, JJA, SON), ``time`` (bin ``i`` is ``[edges[i], edges[i + 1])``).
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
    unknown = [b for b in by if b not in GROUPINGS]
    if unknown:
        raise ArgumentError(f"by: unknown grouping {unknown}; choose from {list(GROUPINGS)}")
    if len(set(by)) != len(by):
        raise ArgumentError(f"by: a grouping is repeated in {by}")
    return by


def _group_coords(results, keys, first_year, last_year, edges) -> dict[str, Any]:
    coords: dict[str, Any] = {}
    for key in keys:
        if key == "site":
            coords[key] = _site_names(results)
        elif key == "year":
            coords[key] = np.arange(first_year, last_year + 1)
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


# --------------------------------------------------------------------------- events

_RUN_FIELDS = ("row", "start", "last", "frames", "conf_sum", "conf_max")


def run_table(
    hit: np.ndarray, confidence: np.ndarray, times: np.ndarray, max_gap_ns: int
) -> dict[str, np.ndarray]:
    """Runs of ``True`` along the last axis of ``hit (site, time)``, merged across gaps.

    Two runs of a row are merged when the time between the last slot of one and the first
    of the next, less one slot, is at most ``max_gap_ns``: i.e. when at most
    ``max_gap / 3 s`` slots between them are not ``hit`` (whether of another class,
    unusable, or never written).

    Returns
    -------
    dict of numpy.ndarray
        ``row`` (site row in the block), ``start`` and ``last`` (int64 ns of the first and
        last hit slot), ``frames`` (hit slots), ``conf_sum`` and ``conf_max`` (of the hit
        slots' confidence), one entry per merged run, ordered by row then time.
    """
    hit = np.atleast_2d(hit)
    confidence = np.atleast_2d(confidence).astype(np.float64)
    t = np.asarray(times, dtype="datetime64[ns]").ravel().view(np.int64)
    padded = np.zeros((hit.shape[0], hit.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = hit
    step = np.diff(padded, axis=1)
    rows, starts = np.nonzero(step == 1)
    _, stops = np.nonzero(step == -1)  # exclusive ends, in the same (row, time) order
    conf = np.where(hit, np.nan_to_num(confidence), 0.0)
    cumulative = np.zeros((hit.shape[0], hit.shape[1] + 1))
    np.cumsum(conf, axis=1, out=cumulative[:, 1:])
    table = {
        "row": rows.astype(np.int64),
        "start": t[starts],
        "last": t[stops - 1],
        "frames": (stops - starts).astype(np.int64),
        "conf_sum": cumulative[rows, stops] - cumulative[rows, starts],
        "conf_max": _segment_max(np.where(hit, confidence, -np.inf), rows, starts),
    }
    return merge_runs(table, max_gap_ns)


def _segment_max(values: np.ndarray, rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    if len(starts) == 0:
        return np.zeros(0)
    # runs are in row-major order and every slot between two runs is -inf, so the maximum
    # from one run's first slot up to the next run's first slot is the run's maximum
    return np.maximum.reduceat(values.ravel(), rows * values.shape[1] + starts)


def merge_runs(table: dict[str, np.ndarray], max_gap_ns: int) -> dict[str, np.ndarray]:
    """Merge consecutive runs of the same row whose gap is at most ``max_gap_ns``.

    The table must be ordered by row, then time. Merging is associative, so runs merged
    within chunks and then across them give the runs of the whole series.
    """
    n = len(table["start"])
    if n == 0:
        return {k: np.asarray(v)[:0] for k, v in table.items()}
    slot = np.int64(pd.Timedelta(SLOT).value)
    gap = table["start"][1:] - table["last"][:-1] - slot
    new = np.r_[True, (table["row"][1:] != table["row"][:-1]) | (gap > max_gap_ns)]
    heads = np.flatnonzero(new)
    tails = np.r_[heads[1:], n] - 1
    merged = {
        "row": table["row"][heads],
        "start": table["start"][heads],
        "last": table["last"][tails],
        "frames": np.add.reduceat(table["frames"], heads),
        "conf_sum": np.add.reduceat(table["conf_sum"], heads),
        "conf_max": np.maximum.reduceat(table["conf_max"], heads),
    }
    return merged


def _run_block(label, confidence, times, *, cls, max_gap_ns, block_info=None):
    """One ``(site, time)`` block's runs of ``cls``, rows made global: an object ``(1, 1)``."""
    rows = _site_slice(block_info, 0)
    table = run_table(label == cls, confidence, times.ravel(), max_gap_ns)
    table["row"] = table["row"] + rows.start
    out = np.empty((1, 1), dtype=object)
    out[0, 0] = table
    return out


def events(
    results: xr.Dataset,
    cls: str,
    *,
    min_duration: Duration = "0s",
    max_gap: Duration = "0s",
    min_confidence: float | None = None,
    exclude: str | Iterable[str] | None = None,
    smooth: Window = None,
    altitude_km: float = DEFAULT_ALTITUDE_KM,
    compute: bool = True,
    progress: bool | Callable[[int, int], None] = True,
) -> pd.DataFrame | Delayed:
    """Intervals of a class at each site, whole across chunk and day boundaries.

    An event is a run of usable slots of class ``cls`` (see :func:`usable`), where runs
    separated by at most ``max_gap`` of other slots (another class, not usable, not written)
    are one event; events shorter than ``min_duration`` are dropped. Each chunk gives its
    runs, computed in parallel; runs are then merged across chunk edges by the same rule, so
    the result does not depend on the chunking and the store is never loaded whole.

    Parameters
    ----------
    results
        A results dataset or store.
    cls
        Class name.
    min_duration
        Shortest event kept, from its first slot to the end of its last (``"5min"``).
    max_gap
        Longest gap bridged (``"30s"``: up to ten slots of something else).
    min_confidence
        Slots of ``cls`` below this confidence do not count (they are gap).
    exclude
        Classes whose slots are not usable (they are gap).
    smooth
        Smooth the labels first (see :func:`smooth_labels`).
    altitude_km
        Altitude of the magnetic local times.
    compute
        Compute now (default), or return a :class:`dask.delayed.Delayed` of the table, to
        compute together with other work on the same store so that each chunk is read
        once: ``dask.compute(occurrence(..., compute=False), events(..., compute=False),
        optimize_graph=False)`` (dask 2026.8 loses a key when it optimises an xarray
        Dataset and a Delayed together).
    progress
        As for :func:`occurrence`.

    Returns
    -------
    pandas.DataFrame
        One row per event, by start time then site: ``site``, ``class``, ``start``, ``end``
        (end of the last slot: last slot + 3 s), ``duration``, ``frames`` (slots of ``cls``),
        ``mean_confidence``, ``max_confidence``, ``mlt_start`` and ``mlt_end`` (AACGM-v2 MLT
        of the first and last slot, hours).
    """
    (k,) = _class_indices(results, [cls], "class")
    min_duration = _duration(min_duration, "min_duration")
    max_gap_ns = int(_duration(max_gap, "max_gap").value)
    min_confidence = _min_confidence(min_confidence)
    excluded = _class_indices(results, exclude, "exclude")
    if k in excluded:
        raise ArgumentError(f"class: {cls!r} is also excluded")
    arrays, time_array = _arrays(results, ["label", "frame_status", "confidence"])
    label = _labels(results, arrays, smooth, min_confidence, excluded)
    blocks = da.map_blocks(
        _run_block,
        label,
        arrays["confidence"],
        time_array[None, :],
        cls=k,
        max_gap_ns=max_gap_ns,
        dtype=object,
        chunks=((1,) * label.numblocks[0], (1,) * label.numblocks[1]),
        meta=np.empty((0, 0), dtype=object),
    )
    sites = (
        _site_names(results),
        _site_coord(results, "latitude"),
        _site_coord(results, "longitude"),
    )
    # merge the per-chunk tables in a tree (merging is associative), so that dask can
    # release each chunk's data as soon as its runs are found: one final merge of all the
    # tables made the scheduler hold every chunk's arrays until the end
    level = blocks.to_delayed(optimize_graph=False).ravel().tolist()
    while len(level) > 1:
        level = [
            dask.delayed(_combine_runs)(level[i : i + _FAN_IN], max_gap_ns)
            for i in range(0, len(level), _FAN_IN)
        ]
    sites = (
        _site_names(results),
        _site_coord(results, "latitude"),
        _site_coord(results, "longitude"),
    )
    table = dask.delayed(_finish_events)(level[0], sites, cls, min_duration, altitude_km)
    if not compute:
        return table
    with compute_progress(progress, f"events of {cls}"):
        return table.compute()


_FAN_IN = 8


def _combine_runs(parts: list, max_gap_ns: int) -> dict[str, np.ndarray]:
    """Concatenate run tables (object blocks of ``_run_block`` or merged tables), order them
    by site row then time, and merge runs across the edges between them."""
    tables = [p[0, 0] if isinstance(p, np.ndarray) else p for p in parts]
    table = {f: np.concatenate([np.asarray(t[f]) for t in tables]) for f in _RUN_FIELDS}
    order = np.lexsort((table["start"], table["row"]))
    return merge_runs({f: v[order] for f, v in table.items()}, max_gap_ns)


def _finish_events(table, sites, cls, min_duration, altitude_km) -> pd.DataFrame:
    table = table[0, 0] if isinstance(table, np.ndarray) else table  # a single chunk
    return _event_frame(sites, table, cls, min_duration, altitude_km)


def _event_frame(sites, table, cls, min_duration, altitude_km) -> pd.DataFrame:
    slot = np.int64(pd.Timedelta(SLOT).value)
    end = table["last"] + slot
    keep = (end - table["start"]) >= min_duration.value
    table = {f: v[keep] for f, v in table.items()}
    end = end[keep]
    names, lat, lon = sites
    names = np.array(names, dtype=object)
    mlt_start = np.full(len(end), np.nan)
    mlt_end = np.full(len(end), np.nan)
    for row in np.unique(table["row"]):
        mine = table["row"] == row
        for field, out in (("start", mlt_start), ("last", mlt_end)):
            out[mine] = mlt_kernel(
                table[field][mine].astype("datetime64[ns]"),
                lat[row : row + 1],
                lon[row : row + 1],
                altitude_km=altitude_km,
            )[0]
    frame = pd.DataFrame(
        {
            "site": pd.Series(names[table["row"]], dtype=object),
            "class": cls,
            "start": table["start"].astype("datetime64[ns]"),
            "end": end.astype("datetime64[ns]"),
            "duration": (end - table["start"]).astype("timedelta64[ns]"),
            "frames": table["frames"],
            "mean_confidence": table["conf_sum"] / np.maximum(table["frames"], 1),
            "max_confidence": table["conf_max"],
            "mlt_start": mlt_start,
            "mlt_end": mlt_end,
        }
    )
    return frame.sort_values(["start", "site"], kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------ coincidence


def coincidence(
    results: xr.Dataset,
    classes: str | Iterable[str] | None = None,
    *,
    min_confidence: float | None = None,
    exclude: str | Iterable[str] | None = None,
    smooth: Window = None,
) -> xr.Dataset:
    """For each slot, how many sites observe (are usable) and how many show each class.

    Lazy: a time series as long as the store's time axis, computed chunk by chunk.

    Parameters
    ----------
    results
        A results dataset or store (select sites first with ``.sel(site=...)``).
    classes
        Classes to count (default: all not excluded).
    min_confidence, exclude, smooth
        As for :func:`occurrence`.

    Returns
    -------
    xarray.Dataset
        ``observing(time)`` and ``showing(class, time)``, int16, dask-backed.
    """
    min_confidence = _min_confidence(min_confidence)
    excluded = _class_indices(results, exclude, "exclude")
    all_classes = _classes(results)
    wanted = (
        _class_indices(results, classes, "classes")
        if classes is not None
        else [k for k in range(len(all_classes)) if k not in excluded]
    )
    arrays, _ = _arrays(results, _names(min_confidence))
    label = _labels(results, arrays, smooth, min_confidence, excluded)
    observing = (label >= 0).sum(axis=0, dtype=np.int16)
    showing = da.stack([(label == k).sum(axis=0, dtype=np.int16) for k in wanted])
    return xr.Dataset(
        {
            "observing": ("time", observing, {"long_name": "sites with a usable slot"}),
            "showing": (("class", "time"), showing, {"long_name": "sites showing the class"}),
        },
        coords={"time": results["time"], "class": [all_classes[k] for k in wanted]},
    )


# ----------------------------------------------------------------------------- joins


def _as_frame(other: Any, arg: str = "other") -> pd.DataFrame:
    """A time-indexed DataFrame (sorted, naive UTC) from a Series, DataFrame or xarray."""
    if isinstance(other, xr.DataArray):
        other = other.to_dataset(name=other.name or "value")
    if isinstance(other, xr.Dataset):
        if "time" not in other.dims:
            raise ArgumentError(f"{arg}: an xarray object needs a 'time' dimension")
        other = other.to_dataframe()
        if isinstance(other.index, pd.MultiIndex):
            raise ArgumentError(f"{arg}: only variables of 'time' alone can be joined")
    if isinstance(other, pd.Series):
        other = other.to_frame(name=other.name if other.name is not None else "value")
    if not isinstance(other, pd.DataFrame):
        raise ArgumentError(
            f"{arg}: expected a pandas Series/DataFrame or an xarray object, got {type(other).__name__}"
        )
    if not isinstance(other.index, pd.DatetimeIndex):
        if "time" in other.columns:
            other = other.set_index("time")
        try:
            other.index = pd.DatetimeIndex(other.index)
        except (TypeError, ValueError):
            raise ArgumentError(f"{arg}: needs a datetime index or a 'time' column") from None
    if other.index.tz is not None:
        other.index = other.index.tz_convert("UTC").tz_localize(None)
    other = other[~other.index.isna()].sort_index()
    other.index = other.index.as_unit("ns")
    return other


def _nearest_positions(
    sorted_ns: np.ndarray, query_ns: np.ndarray, tolerance_ns: int
) -> np.ndarray:
    """Index into ``sorted_ns`` of the nearest time to each query (ties: the earlier), or -1."""
    if len(sorted_ns) == 0:
        return np.full(len(query_ns), -1)
    right = np.clip(np.searchsorted(sorted_ns, query_ns, side="left"), 0, len(sorted_ns) - 1)
    left = np.clip(right - 1, 0, len(sorted_ns) - 1)
    d_left = np.abs(query_ns - sorted_ns[left])
    d_right = np.abs(sorted_ns[right] - query_ns)
    best = np.where(d_left <= d_right, left, right)
    distance = np.minimum(d_left, d_right)
    return np.where(distance <= tolerance_ns, best, -1)


def _take(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        values = values.astype(np.float64)
    out = (
        values[np.clip(positions, 0, None)]
        if len(values)
        else np.empty(len(positions), values.dtype)
    )
    missing = positions < 0
    if missing.any():
        out = out.copy()
        if out.dtype.kind == "f":
            out[missing] = np.nan
        elif out.dtype.kind in "mM":
            out[missing] = np.array("NaT", dtype=out.dtype)
        else:
            out = out.astype(object)
            out[missing] = None
    return out


def _join_block(times, *, index_ns, values, tolerance_ns):
    positions = _nearest_positions(index_ns, times.ravel().view(np.int64), tolerance_ns)
    return _take(values, positions)


def join_nearest(
    target: pd.DataFrame | xr.Dataset | xr.DataArray,
    other: Any,
    *,
    tolerance: Duration,
    on: str = "start",
) -> pd.DataFrame | xr.Dataset:
    """Attach another time series by the nearest time within a tolerance.

    For events (a DataFrame from :func:`events`), each event gets the values of ``other``
    nearest to its ``on`` time (``start``, ``end``, or ``mid``); for slots (a results
    dataset, store or anything with a ``time`` axis) each slot gets them, lazily, chunked
    like the target. Nothing within ``tolerance``: NaN (NaT for times).

    Parameters
    ----------
    target
        Events, or a results dataset / DataArray with a ``time`` coordinate.
    other
        A pandas Series or DataFrame with a datetime index (or a ``time`` column), or an
        xarray object with a ``time`` dimension: e.g. the AE index or a solar-wind table.
    tolerance
        Largest time difference accepted (``"1min"``).
    on
        For events: which time of the event is matched.

    Returns
    -------
    pandas.DataFrame or xarray.Dataset
        The events with one column per column of ``other``; or a Dataset of ``other``'s
        columns on the target's time axis.
    """
    frame = _as_frame(other)
    tolerance_ns = int(_duration(tolerance, "tolerance").value)
    index_ns = frame.index.asi8
    if isinstance(target, pd.DataFrame):
        query = _event_times(target, on)
        positions = _nearest_positions(index_ns, query, tolerance_ns)
        out = target.copy()
        for column in frame.columns:
            name = column if column not in out.columns else f"{column}_other"
            out[name] = _take(frame[column].to_numpy(), positions)
        return out
    if not isinstance(target, xr.Dataset | xr.DataArray) or "time" not in target.coords:
        raise ArgumentError("target: expected events (a DataFrame) or an object with a time axis")
    times = np.asarray(target["time"].values, dtype="datetime64[ns]")
    chunks = _time_chunks(target)
    time_array = da.from_array(times, chunks=chunks)
    variables = {}
    for column in frame.columns:
        values = frame[column].to_numpy()
        probe = _take(values[:1], np.array([-1]))
        variables[str(column)] = (
            "time",
            da.map_blocks(
                _join_block,
                time_array,
                index_ns=index_ns,
                values=values,
                tolerance_ns=tolerance_ns,
                dtype=probe.dtype,
            ),
        )
    return xr.Dataset(
        variables,
        coords={"time": target["time"]},
        attrs={"tolerance": str(pd.Timedelta(tolerance_ns))},
    )


def _time_chunks(target: xr.Dataset | xr.DataArray) -> tuple[int, ...] | int:
    """The time chunks of the first dask variable along ``time`` (else a UT day)."""
    variables = target.variables.values() if isinstance(target, xr.Dataset) else [target.variable]
    for var in variables:
        if "time" in var.dims and var.chunks is not None:
            return var.chunks[var.dims.index("time")]
    return DAY_SLOTS


def _event_times(events: pd.DataFrame, on: str) -> np.ndarray:
    if on not in ("start", "end", "mid"):
        raise ArgumentError(f"on: expected 'start', 'end' or 'mid', got {on!r}")
    missing = [c for c in ("start", "end") if c not in events.columns]
    if missing:
        raise ArgumentError(f"events: missing columns {missing}; pass the output of events()")
    start = pd.DatetimeIndex(events["start"]).as_unit("ns").asi8
    end = pd.DatetimeIndex(events["end"]).as_unit("ns").asi8
    return {"start": start, "end": end, "mid": start + (end - start) // 2}[on]


_AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "mean": np.nanmean,
    "median": np.nanmedian,
    "min": np.nanmin,
    "max": np.nanmax,
    "sum": np.nansum,
    "std": np.nanstd,
    "count": lambda v: float(np.count_nonzero(~np.isnan(v))),
    "first": lambda v: v[0],
    "last": lambda v: v[-1],
}


def join_over_events(
    events: pd.DataFrame, other: Any, *, agg: str | Sequence[str] = "mean"
) -> pd.DataFrame:
    """Aggregate another time series over each event's interval ``[start, end)``.

    E.g. the mean and maximum AE index during each pulsating-aurora event. Samples of
    ``other`` whose time falls in the interval are aggregated, NaNs ignored; an event with
    no sample gets NaN (``count`` 0).

    Parameters
    ----------
    events
        From :func:`events` (columns ``start`` and ``end``).
    other
        As for :func:`join_nearest`; numeric columns.
    agg
        One or more of ``mean``, ``median``, ``min``, ``max``, ``sum``, ``std``, ``count``,
        ``first``, ``last``.

    Returns
    -------
    pandas.DataFrame
        The events with columns ``<column>_<agg>``.
    """
    frame = _as_frame(other)
    aggs = [agg] if isinstance(agg, str) else list(agg)
    unknown = [a for a in aggs if a not in _AGGREGATES]
    if unknown:
        raise ArgumentError(f"agg: unknown {unknown}; choose from {list(_AGGREGATES)}")
    start, end = _event_times(events, "start"), _event_times(events, "end")
    index_ns = frame.index.asi8
    lo = np.searchsorted(index_ns, start, side="left")
    hi = np.searchsorted(index_ns, end, side="left")
    out = events.copy()
    for column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        for name in aggs:
            function = _AGGREGATES[name]
            result = np.full(len(events), 0.0 if name == "count" else np.nan)
            for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
                piece = values[a:b]
                if name == "count":
                    result[i] = function(piece)
                elif len(piece) and not (name not in ("first", "last") and np.isnan(piece).all()):
                    result[i] = function(piece)
            out[f"{column}_{name}"] = result
    return out
