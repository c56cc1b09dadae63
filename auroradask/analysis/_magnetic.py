"""Magnetic coordinates: AACGM-v2 latitude and longitude of sites, magnetic local time of slots.

The aurora is organised by magnetic, not geographic, coordinates, and AACGM-v2 (``aacgmv2``)
is the field's standard. Its C library keeps global state, so every conversion of the
package goes through :data:`AACGM_LOCK` and :func:`reset_aacgm` (the keogram's magnetic
meridian in ``auroradask.visual`` too): a result then never depends on what was converted
before it, nor on the thread or the chunking. Per-slot MLT is interpolated between exact
values at a coarse cadence (:func:`mlt_kernel`), so a site-decade costs seconds, and stays
within 0.01 s of AACGM-v2 called for the slot itself: an occurrence by MLT hour counts a slot
in the hour that AACGM-v2 gives it, as a per-slot computation would.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .._results import results_arrays, site_coord
from ..errors import ArgumentError
from ._usable import Duration, _duration

#: Altitude (km) of the aurora's emission, where magnetic coordinates are taken by default.
DEFAULT_ALTITUDE_KM = 110.0
#: Cadence of the exact AACGM-v2 magnetic local times that the per-slot values interpolate.
DEFAULT_MLT_CADENCE = "10min"


# The AACGM-v2 C library keeps the date and its time-interpolated coefficients in global
# state, and reuses them for a nearby date: a conversion then depends (by up to ~0.3 s of
# MLT) on what was converted before it, and two threads could use each other's date. Every
# call goes through this lock and first moves the state far away, so that each result is
# the one a fresh process would give, whatever ran before and however the work is chunked.
AACGM_LOCK = threading.Lock()
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


def reset_aacgm(year: int) -> None:
    from aacgmv2 import _aacgmv2

    far = 1950 if year > 1975 else 2000  # another 5-year coefficient epoch: forces a reload
    _aacgmv2.set_datetime(far, 1, 1, 0, 0, 0)


def _datetimes(ns: np.ndarray) -> list[dt.datetime]:
    return [pd.Timestamp(int(t)).to_pydatetime() for t in np.atleast_1d(ns)]


#: Knots before a UT day's 00:00 and after its end, so that the spline of the day has no
#: free end inside the day (a natural or not-a-knot end is where a cubic spline errs most).
_MARGIN_KNOTS = 2


@functools.lru_cache(maxsize=4096)
def _day_spline(day_ns: int, step_ns: int):
    """A cubic spline of the MLT (hours, unwrapped) of AACGM longitude 0 through the UT day
    that starts at ``day_ns``, in ns after its 00:00, from exact values every ``step_ns``.

    AACGM-v2 MLT is linear in magnetic longitude: ``MLT(mlon, t) = MLT(0, t) + mlon / 15``
    (mod 24), so one series per time serves every site. One call per UT day, always from a
    reset state, so every slot of the day gets the same value whatever its chunk.

    Why a cubic spline and not straight lines: MLT does not advance at one hour per hour of
    UT (its rate goes from about 0.84 to 1.10 over a day as the dipole turns under the Sun),
    and between knots 10 min apart the chord misses the curve by up to 2.5 s (June); the
    cubic misses it by under 0.005 s, at the same cost in AACGM-v2 calls. An MLT 2 s late
    moves the slots of the last 2 s of each MLT hour into the next one.
    """
    from aacgmv2 import _aacgmv2
    from scipy.interpolate import CubicSpline

    n = -(-_DAY_NS // step_ns) + 1
    steps = np.arange(-_MARGIN_KNOTS, n + _MARGIN_KNOTS, dtype=np.int64)
    times = _datetimes(day_ns + step_ns * steps)
    mlt = np.empty(len(times))
    with AACGM_LOCK:
        reset_aacgm(times[_MARGIN_KNOTS].year)
        for k, when in enumerate(times):
            # each knot with the coefficients of its own time, as get_aacgm_coord gives
            # them: the C library's MLT keeps those of the last date set for 30 days, and
            # they drift by about 0.14 s of MLT a day (0.05 s by a day's end, at 6 ms a day)
            ymdhms = (when.year, when.month, when.day, when.hour, when.minute, when.second)
            _aacgmv2.set_datetime(*ymdhms)
            mlt[k] = _aacgmv2.mlt_convert(*ymdhms, 0.0)
    # unwrapped within the day (so that the spline crosses midnight the short way); a
    # function of the day alone, so every slot gets the same value whatever its chunk
    return CubicSpline((steps * step_ns).astype(np.float64), np.unwrap(mlt, period=24.0))


@functools.lru_cache(maxsize=65536)
def aacgm_site(lat: float, lon: float, altitude_km: float, when_ns: int) -> tuple[float, float]:
    """AACGM-v2 (magnetic latitude, longitude) of a geodetic point at one time."""
    if not (np.isfinite(lat) and np.isfinite(lon)):
        return (np.nan, np.nan)
    import aacgmv2

    (when,) = _datetimes(np.array([when_ns]))
    with AACGM_LOCK:
        reset_aacgm(when.year)
        mlat, mlon, _ = aacgmv2.get_aacgm_coord(lat, lon, altitude_km, when)
    return (float(mlat), float(mlon))


def _mid_month_ns(months: np.ndarray) -> np.ndarray:
    """The 15th, 00:00 UT, of each month (datetime64[M]), as int64 ns."""
    return (
        (months.astype("datetime64[D]") + np.timedelta64(14, "D"))
        .astype("datetime64[ns]")
        .view(np.int64)
    )


def _month_starts_ns(months: np.ndarray) -> np.ndarray:
    """00:00 UT of the first day of each month (datetime64[M]), as int64 ns."""
    return months.astype("datetime64[ns]").view(np.int64)


def _site_mlon(
    lat: float, lon: float, altitude_km: float, t: np.ndarray, days: np.ndarray, which
) -> np.ndarray:
    """AACGM-v2 magnetic longitude of a site at int64 ns times ``t`` (on UT ``days``, as
    :func:`_days` gives them): exact at the start of each month, straight between (AACGM-v2
    interpolates its coefficients linearly in time, and the line misses the exact value by
    under 0.001 s of MLT within a month).

    Not one value per month: the secular drift moves a THEMIS site's magnetic longitude by
    about 0.0006 degree a day, 4 s of MLT a month, so a month's middle value is up to 2 s
    of MLT off at the month's ends.
    """
    months = days.astype("datetime64[D]").astype("datetime64[M]")  # per day: few
    unique, month_of_day = np.unique(months, return_inverse=True)
    starts = _month_starts_ns(unique)
    ends = _month_starts_ns(unique + np.timedelta64(1, "M"))
    first = np.array([aacgm_site(lat, lon, altitude_km, int(m))[1] for m in starts])
    last = np.array([aacgm_site(lat, lon, altitude_km, int(m))[1] for m in ends])
    slope = (last - first) / (ends - starts).astype(np.float64)  # degrees per ns
    # per day: the value at the day's 00:00 and the slope; per slot: one multiply-add
    k = month_of_day
    at_midnight = first[k] + slope[k] * (days * _DAY_NS - starts[k]).astype(np.float64)
    if len(days) == 1:
        return at_midnight[0] + slope[k][0] * (t - days[0] * _DAY_NS).astype(np.float64)
    return at_midnight[which] + slope[k][which] * (t - days[which] * _DAY_NS).astype(np.float64)


def mlt_kernel(
    times: np.ndarray,
    latitude: np.ndarray,
    longitude: np.ndarray,
    *,
    altitude_km: float = DEFAULT_ALTITUDE_KM,
    cadence_ns: int = int(pd.Timedelta(DEFAULT_MLT_CADENCE).value),
) -> np.ndarray:
    """AACGM-v2 magnetic local time (hours, 0..24) of sites at times, shape ``(site, time)``.

    Exact AACGM-v2 values of magnetic longitude 0 are computed at a coarse cadence (default
    10 min) and joined by a cubic spline per UT day (see :func:`_day_spline`); each site adds
    its magnetic longitude / 15 h, exact at the start of each month and interpolated in
    time between (see :func:`_site_mlon`). Within 0.01 s of MLT of AACGM-v2 called for each
    time, float64. A site without coordinates gets NaN.
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
        spline = _day_spline(int(d) * _DAY_NS, cadence_ns)
        mlt0[mine] = spline((t[mine] - int(d) * _DAY_NS).astype(np.float64))
    for i in range(lat.size):
        if not (np.isfinite(lat[i]) and np.isfinite(lon[i])):
            continue
        mlon = _site_mlon(lat[i], lon[i], float(altitude_km), t, days, which)
        out[i] = mlt0 + mlon / 15.0
        np.mod(out[i], 24.0, out=out[i])
    return out


def mlat_kernel(
    times: np.ndarray,
    latitude: np.ndarray,
    longitude: np.ndarray,
    *,
    altitude_km: float = DEFAULT_ALTITUDE_KM,
) -> np.ndarray:
    """AACGM-v2 magnetic latitude (degrees) of sites at times, shape ``(site, time)``.

    The point is the site's geodetic position raised to ``altitude_km``: the zenith of an
    all-sky imager, the centre of its field of view at the emission altitude. It is taken at
    the middle of each slot's month (UT): the secular drift moves a THEMIS site by up to 0.1
    degree a year (a degree over a decade), far more than over half a month, so one epoch
    for a long store would put a site's later years in the wrong degree, while half a
    month's drift (0.004 degree) does not matter to a bin of a degree. (The magnetic
    longitude of :func:`mlt_kernel` is interpolated between month starts instead: half a
    month's drift is 2 s of MLT, which moves slots across an MLT hour's edge.) A site
    without coordinates gets NaN.
    """
    times = np.asarray(times, dtype="datetime64[ns]").ravel()
    lat = np.atleast_1d(np.asarray(latitude, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(longitude, dtype=np.float64))
    out = np.full((lat.size, times.size), np.nan)
    if times.size == 0:
        return out
    days, which = _days(times.view(np.int64))
    months = days.astype("datetime64[D]").astype("datetime64[M]")
    unique_months, month_of_day = np.unique(months, return_inverse=True)
    slot_month = month_of_day[which]
    mid = _mid_month_ns(unique_months)
    for i in range(lat.size):
        mlat = np.array([aacgm_site(lat[i], lon[i], float(altitude_km), int(m))[0] for m in mid])
        out[i] = mlat[slot_month]
    return out


def _mlt_block(rows, times, *, latitude, longitude, altitude_km, cadence_ns, out_dtype):
    rows = rows.ravel()
    return mlt_kernel(
        times.ravel(),
        latitude[rows],
        longitude[rows],
        altitude_km=altitude_km,
        cadence_ns=cadence_ns,
    ).astype(out_dtype, copy=False)


def _mlt_dask(
    results, like: da.Array, times: da.Array, altitude_km, cadence_ns, dtype=np.float32
) -> da.Array:
    """Per-slot MLT ``(site, time)``, chunked like ``like`` (nothing of it is read).

    float32 (7 ms of MLT near 24 h) to hand to a user; float64 where a slot is placed in
    an MLT hour, so that rounding to float32 never moves a slot across an hour's edge.
    """
    rows = da.arange(like.shape[0], chunks=(like.chunks[0],))
    return da.map_blocks(
        _mlt_block,
        rows[:, None],
        times[None, :],
        latitude=site_coord(results, "latitude"),
        longitude=site_coord(results, "longitude"),
        altitude_km=float(altitude_km),
        cadence_ns=cadence_ns,
        out_dtype=dtype,
        dtype=dtype,
        chunks=like.chunks,
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
    if not 0 < cadence_ns <= _DAY_NS or cadence_ns % 10**9:
        raise ArgumentError(
            f"cadence: whole seconds (AACGM-v2 takes times to the second), more than 0 and at"
            f" most a day, got {cadence!r}"
        )
    if not np.isfinite(altitude_km) or not 0 <= altitude_km <= 2000:
        raise ArgumentError(
            f"altitude_km: must be 0..2000 km (AACGM-v2's range), got {altitude_km}"
        )
    times = results["time"].values
    when = (pd.Timestamp(times[len(times) // 2]) if epoch is None else pd.Timestamp(epoch)).value
    lat, lon = site_coord(results, "latitude"), site_coord(results, "longitude")
    coords = np.array(
        [aacgm_site(a, o, float(altitude_km), int(when)) for a, o in zip(lat, lon, strict=True)]
    )
    arrays, time_array = results_arrays(results, ["label"])
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
