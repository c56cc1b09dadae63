"""Joins of labels and events with other time series (geomagnetic indices, solar wind).

:func:`join_nearest` attaches the nearest sample within a tolerance (to events, or lazily
to every slot); :func:`join_over_events` aggregates samples over each event's interval.
Both take pandas or xarray time series, made naive-UTC and sorted first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .._schema import DAY_SLOTS
from ..errors import ArgumentError
from ._usable import Duration, _duration


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
