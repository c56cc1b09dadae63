"""Reading results stores: open lazily in chunks of a site-day, describe what they hold."""

from __future__ import annotations

import os
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .._schema import DAY_SLOTS, FILE_UNREACHABLE, FRAME_STATUS_MEANINGS, NOT_WRITTEN
from ..errors import ArgumentError, SourceNotFoundError, StoreError, StoreLockedError
from ._layout import (
    LAYOUT,
    LAYOUT_ATTR,
    apply_cf,
    check_store_sites,
    extra_fill,
    has_intent,
    locate,
    lost_consolidation,
    quiet_zarr,
)
from ._lock import StoreLock

#: Days of one site per dask chunk when a store is opened: 32 Zarr chunks read by one task
#: (zarr reads them concurrently), so a site-year is 12 tasks per variable, not 365.
READ_CHUNK_DAYS = 32


def open_results(
    store: str | os.PathLike,
    *,
    group: str | None = None,
    storage_options: dict[str, Any] | None = None,
    chunk_days: int = READ_CHUNK_DAYS,
) -> xr.Dataset:
    """Open a results store lazily, in dask chunks of one site and ``chunk_days`` days.

    Parameters
    ----------
    store
        A path or fsspec URL written by :func:`auroradask.to_zarr`.
    group, storage_options
        As given to :func:`auroradask.to_zarr`.
    chunk_days
        UT days of one site per dask chunk (the store holds one Zarr chunk per site-day;
        a dask chunk of several is read by one task, which costs far less per day).

    Returns
    -------
    xarray.Dataset
        ``label``, ``confidence``, ``probability``, ``timestamp``, ``frame_status`` (-1 where
        nothing was written) on the store's whole-day time axis, with CF attributes and the
        store's provenance. Stores of the first release open too (they also hold
        ``write_complete``; ``auroradask upgrade`` rewrites them in today's layout).

    Raises
    ------
    SourceNotFoundError
        If there is no store at ``store``.
    StoreError
        If the store's creation was interrupted (run the writer again to finish it), or if
        it holds a site name that is not a site code (a store altered or made elsewhere:
        its names would become file names and page text).
    StoreLockedError
        If the store is being created by a writer running now (open it in a moment).
    """
    loc = locate(store, group, storage_options)
    if isinstance(chunk_days, bool) or not isinstance(chunk_days, int) or chunk_days < 1:
        raise ArgumentError(f"chunk_days: expected a whole number of days >= 1, got {chunk_days!r}")
    try:
        ds = _open(loc, consolidated=True)
    except (FileNotFoundError, KeyError, ValueError) as error:  # zarr: no (consolidated) group
        intent = has_intent(loc)
        if intent is None and lost_consolidation(loc):
            # an attributes update of an earlier release killed before its consolidation:
            # every array is whole, only the consolidated copy is gone (the next write
            # restores it); read the metadata object by object meanwhile
            ds = _open(loc, consolidated=False)
        elif intent is not None:
            holder = StoreLock(loc.fs, loc.root, 300.0).holder()
            if holder is not None:  # not interrupted: a live writer is creating it now
                raise StoreLockedError(
                    f"store: {loc.url} is being created by a writer running now (host "
                    f"{holder.get('host', '?')}, pid {holder.get('pid', '?')}); open it again "
                    "in a moment"
                ) from None
            raise StoreError(
                f"store: the creation of {loc.url} was interrupted; run the same write again"
            ) from None
        else:
            raise SourceNotFoundError(f"store: no results store at {loc.url!r} ({error})") from None
    if "label" not in ds:
        raise SourceNotFoundError(f"store: {loc.url!r} holds no results (no 'label' variable)")
    check_store_sites(ds, loc.url)
    attrs = {k: v for k, v in ds["time"].attrs.items() if k not in ("units", "calendar")}
    ds = ds.assign_coords(time=("time", _decode_slots(ds["time"]), attrs))
    ds["time"].encoding = {"units": _TIME_UNITS_DECODED, "dtype": "int64"}
    # one task per site and chunk_days days (sites as stored: one per Zarr chunk); a token
    # of its own per opening: the store changes under the same names
    chunked = ds.chunk({"site": 1, "time": chunk_days * DAY_SLOTS}, token=os.urandom(8).hex())
    if int(ds.attrs.get(LAYOUT_ATTR, 1)) != LAYOUT:
        return chunked
    chunked = _read_after_status(ds, chunked)
    apply_cf(chunked, [str(c) for c in chunked["class"].values])  # flag dtypes lost in JSON
    return chunked


def _read_after_status(lazy: xr.Dataset, chunked: xr.Dataset) -> xr.Dataset:
    """Each per-slot variable read after ``frame_status``, in the same task, and set to
    its fill value where that status says the slot was not written.

    A writer writes a site-day's values first and its ``frame_status`` last (a status
    vouches for the values), one object each: a reader of both could see the values of a
    compaction half done with its status still -1 (issue 30), or, reading the values first,
    a status without its values. Here each block of values is read by a task that depends
    on the block of ``frame_status`` it returns, so it is read after it, and holds at
    least what that status vouches for; slots the status calls unwritten read as never
    written, whatever the values say by then.
    """
    status = chunked["frame_status"].data
    for name, variable in lazy.data_vars.items():
        if variable.dims[:2] != ("site", "time") or name == "frame_status":
            continue
        values = da.map_blocks(
            _read_where_written,
            status,
            source=_BlockSource(variable.variable),
            fill=_fill_value(variable.dtype),
            new_axis=list(range(2, variable.ndim)) or None,
            chunks=chunked[name].chunks,
            dtype=variable.dtype,
            name=f"read-{name}-{status.name}",
            meta=np.empty((0,) * variable.ndim, dtype=variable.dtype),
        )
        chunked[name] = chunked[name].copy(data=values)
    return chunked


class _BlockSource:
    """A store variable, lazily indexed (xarray decodes what is read): what a reading task
    takes, named by its store rather than tokenized by its values."""

    def __init__(self, variable: xr.Variable) -> None:
        self.variable = variable

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self.variable[key].values)

    def __dask_tokenize__(self) -> tuple:
        return (type(self).__name__, id(self.variable))


def _read_where_written(status: np.ndarray, source, fill, block_info=None) -> np.ndarray:
    """Runs in a task, after ``status`` (its input) was read: the values of its block."""
    (s0, s1), (t0, t1) = block_info[0]["array-location"]
    return mask_unwritten(np.array(source[s0:s1, t0:t1]), status, fill)


def mask_unwritten(values: np.ndarray, status: np.ndarray, fill) -> np.ndarray:
    """``values`` (site, time, ...) set to ``fill`` where ``status`` (site, time) is -1 (not
    written), in place."""
    values[status == NOT_WRITTEN] = fill
    return values


def _fill_value(dtype: np.dtype):
    """What a never-written slot of a variable of ``dtype`` reads as (see ``_layout.FILL``)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "M":
        return np.datetime64("NaT")
    return extra_fill(dtype)


_TIME_UNITS_DECODED = "seconds since 1970-01-01 00:00:00"


def _open(loc, consolidated: bool) -> xr.Dataset:
    """The store lazily (not chunked yet: its variables are read by the tasks open_results
    makes)."""
    with quiet_zarr():
        return xr.open_zarr(
            loc.url,
            consolidated=consolidated,
            chunks=None,
            # the time index is decoded below: xarray's CF decoding of 10 M values per
            # site-year costs most of the opening
            decode_times={"time": False, "timestamp": True},
            **loc.zarr_kwargs(),
        )


def _decode_slots(time: xr.DataArray) -> np.ndarray:
    """The slot times as datetime64[ns], from the stored integers and their CF units."""
    units = time.attrs.get("units", "")
    if time.dtype.kind == "M":
        return time.values
    if units.startswith("seconds since 1970-01-01"):
        return (time.values.astype(np.int64) * 1_000_000_000).astype("datetime64[ns]")
    return xr.coding.times.decode_cf_datetime(  # the first release's nanoseconds
        time.values, units, time.attrs.get("calendar", "proleptic_gregorian")
    ).astype("datetime64[ns]")


def describe(results: xr.Dataset) -> dict[str, Any]:
    """Sites, time span of written slots, counts per class and status, and provenance.

    Computed chunk by chunk from ``label`` and ``frame_status`` only, so a store of any size
    is described in bounded memory.
    """
    classes = [str(c) for c in results["class"].values]
    label = _dask(results["label"])
    status = _dask(results["frame_status"])
    if "write_complete" in results:  # the first release's layout
        status = da.where(_dask(results["write_complete"]).astype(bool), status, -1)
    n_status, n_classes = len(FRAME_STATUS_MEANINGS), len(classes)
    counts = da.map_blocks(
        _block_counts,
        label,
        status,
        n_status=n_status,
        n_classes=n_classes,
        new_axis=2,
        chunks=((1,) * label.numblocks[0], (1,) * label.numblocks[1], (n_status + n_classes,)),
        dtype=np.int64,
    ).sum(axis=(0, 1))
    written_any = (status >= 0).any(axis=0)
    first = da.argmax(written_any)
    last = written_any.shape[0] - 1 - da.argmax(written_any[::-1])
    counts, first, last, anything = da.compute(counts, first, last, written_any.any())
    times = results["time"].values
    status_counts = dict(zip(FRAME_STATUS_MEANINGS, map(int, counts[:n_status]), strict=True))
    return {
        "sites": [str(s) for s in results["site"].values],
        "first": str(pd.Timestamp(times[first])) if anything else None,
        "last": str(pd.Timestamp(times[last])) if anything else None,
        "slots_written": int(counts[:n_status].sum()),
        "slots_to_retry": status_counts.get(FRAME_STATUS_MEANINGS[FILE_UNREACHABLE], 0),
        "label_counts": dict(zip(classes, map(int, counts[n_status:]), strict=True)),
        "status_counts": status_counts,
        "provenance": {k: str(v) for k, v in results.attrs.items()},
    }


def _dask(variable: xr.DataArray) -> da.Array:
    data = variable.data
    return data if isinstance(data, da.Array) else da.from_array(data, chunks=(1, -1))


def _block_counts(label: np.ndarray, status: np.ndarray, n_status: int, n_classes: int):
    written = status >= 0
    by_status = np.bincount(status[written].astype(np.int64), minlength=n_status)[:n_status]
    classified = written & (label >= 0)
    by_class = np.bincount(label[classified].astype(np.int64), minlength=n_classes)[:n_classes]
    return np.r_[by_status, by_class][None, None, :]


def as_cf(results: xr.Dataset) -> xr.Dataset:
    """The results as a netCDF file that CF tools accept: ``as_cf(ds).to_netcdf(path)``.

    xarray indexes sites and classes by their names, but CF wants coordinate variables to
    be numeric: here the names become auxiliary variables ``site_code`` (with
    ``cf_role = timeseries_id``) and ``class_name``, and strings are written as characters
    (CF tools do not read netCDF-4 variable-length strings). Nothing else changes.
    """
    cf = results.drop_vars(["write_complete"], errors="ignore")
    cf = cf.reset_index(["site", "class"]).rename_vars({"site": "site_code", "class": "class_name"})
    cf = cf.set_coords(["site_code", "class_name"])
    for name, variable in cf.variables.items():
        # object, fixed-width and numpy 2's variable-width StringDType (kind "T", what zarr
        # 3 gives back for strings with numpy 2) alike
        if variable.dtype == object or variable.dtype.kind in "UST":
            cf[name] = cf[name].astype(object) if variable.dtype.kind == "T" else cf[name]
            cf[name].encoding["dtype"] = "S1"
    return cf
