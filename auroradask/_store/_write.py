"""Zarr results stores: written chunk by chunk from the workers, resumable, extendable, locked.

Layout of a store (one Zarr group, Zarr format 3; nothing is stored for slots never written):

- the results variables of :func:`auroradask.classify` on a time axis of whole UT days
  (28,800 3-second slots a day) and the sites written so far;
- ``write_complete(site, time)`` uint8, set to 1 for a chunk's slots *after* the chunk's
  results are written: resume skips chunks whose slots are all 1;
- ``frame_status`` is -1 where nothing was written yet;
- attributes: the provenance of :func:`auroradask.classify` (model, sha256, card, preset, …).

A run writes a lock file ``<store>.lock`` beside the store; a second writer is refused
while it is fresh. A lock whose process is gone (same host) or whose heartbeat is older than
``stale_after`` seconds is stale and is taken over.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import fsspec
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize

from .._schema import FRAME_STATUS_MEANINGS, NOT_WRITTEN, RESULT_VARIABLES, SLOT
from ..errors import ArgumentError, StoreError
from ._lock import StoreLock
from ._read import open_existing, quiet_zarr

#: Attributes that must agree between a store and new results written into it.
IDENTITY_ATTRS = ("model_sha256", "preset")


@dataclass
class WriteSummary:
    """What one :func:`to_zarr` call did.

    Attributes
    ----------
    frames
        Slots in the request (sites × times).
    written, skipped
        Slots written now, and slots skipped because a previous run completed them.
    status_counts
        Written slots by ``frame_status`` meaning.
    label_counts
        Written slots by class name.
    seconds
        Wall time of the writing.
    """

    frames: int = 0
    written: int = 0
    skipped: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    label_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, part: dict[str, Any]) -> None:
        self.written += part["written"]
        for key in ("status_counts", "label_counts"):
            target = getattr(self, key)
            for name, count in part[key].items():
                target[name] = target.get(name, 0) + count


# ------------------------------------------------------------------------------- writing


def to_zarr(
    results: xr.Dataset,
    store: str | os.PathLike,
    *,
    group: str | None = None,
    storage_options: dict[str, Any] | None = None,
    progress: Callable[[WriteSummary], None] | None = None,
    stale_after: float = 300.0,
) -> WriteSummary:
    """Compute results and write them into a Zarr store, chunk by chunk, from the workers.

    Creates the store, or extends it with new days and new sites, then writes every chunk of
    ``results`` that the store does not hold complete yet. The client never holds more than a
    per-chunk summary.

    Parameters
    ----------
    results
        From :func:`auroradask.classify` (lazy).
    store
        A local path or any fsspec URL. Workers must be able to reach it.
    group
        Zarr group inside the store (several models can share a store in separate groups).
    storage_options
        Passed to fsspec.
    progress
        Called with the running :class:`WriteSummary` after each chunk (with a distributed
        client) or after each batch of chunks (local scheduler).
    stale_after
        Seconds after which a lock whose heartbeat stopped counts as abandoned.

    Returns
    -------
    WriteSummary

    Raises
    ------
    StoreError
        If the store holds results of another model or preset, or starts after ``results``.
    StoreLockedError
        If another writer is running.
    """
    missing = [v for v in RESULT_VARIABLES if v not in results]
    if missing:
        raise ArgumentError(f"results: missing {missing}; pass the output of auroradask.classify")
    url = os.fspath(store)
    fs, root = fsspec.url_to_fs(url, **dict(storage_options or {}))
    group_root = f"{root.rstrip('/')}/{group}" if group else root
    kwargs = {"group": group, "storage_options": storage_options, "zarr_format": 3}
    start_time = time.perf_counter()
    with StoreLock(fs, group_root, stale_after), quiet_zarr():
        existing = open_existing(url, group, storage_options)
        if existing is not None and "write_complete" not in existing:
            # a run killed while creating the store: no chunk was written yet, start again
            existing, kwargs["mode"] = None, "w"
        elif existing is not None:
            _check_identity(existing, results, url)
        elif fs.exists(group_root) and fs.ls(group_root, detail=False):
            raise StoreError(f"store: {url} holds files but no results store; choose another path")
        store_sites, store_times, chunk = _prepare(url, existing, results, kwargs)
        summary = _write_chunks(url, results, store_sites, store_times, chunk, kwargs, progress)
    summary.seconds = time.perf_counter() - start_time
    return summary


def _check_identity(existing: xr.Dataset, results: xr.Dataset, url: str) -> None:
    for key in IDENTITY_ATTRS:
        have, new = existing.attrs.get(key), results.attrs.get(key)
        if have != new:
            what = "model" if key == "model_sha256" else key
            raise StoreError(
                f"store: {url} holds results of another {what} ({key} {have!r} there, "
                f"{new!r} now); write to a new store or another group"
            )
    if list(existing["class"].values) != list(results["class"].values):
        raise StoreError(f"store: {url} has classes {list(existing['class'].values)}")


def _day_axis(first: np.datetime64, last: np.datetime64) -> np.ndarray:
    start = pd.Timestamp(first).floor("D")
    stop = pd.Timestamp(last).floor("D") + pd.Timedelta(days=1)
    return np.arange(start.to_datetime64(), stop.to_datetime64(), SLOT, dtype="datetime64[ns]")


def _template(results: xr.Dataset, sites: list[str], times: np.ndarray) -> xr.Dataset:
    n_classes = results.sizes["class"]
    shape = (len(sites), len(times))

    def full(value, dtype, extra=()):
        # one dask chunk: the template is never computed (only its metadata is written), and
        # a graph with one task per store chunk would cost more than the writing of a short run
        return da.full(shape + extra, value, dtype=dtype, chunks=-1)

    coords = {
        "site": ("site", np.array(sites, dtype=object)),
        "time": ("time", times, results["time"].attrs),
        "class": ("class", results["class"].values.astype(object)),
    }
    for name in ("imager", "latitude", "longitude"):
        if name in results.coords:
            known = dict(zip(map(str, results["site"].values), results[name].values, strict=True))
            values = [known.get(s) for s in sites]
            coords[name] = (
                "site",
                np.array(values, dtype=results[name].dtype),
                results[name].attrs,
            )
    template = xr.Dataset(
        {
            "label": (("site", "time"), full(-1, np.int8)),
            "confidence": (("site", "time"), full(np.nan, np.float32)),
            "probability": (("site", "time", "class"), full(np.nan, np.float32, (n_classes,))),
            "timestamp": (("site", "time"), full(np.datetime64("NaT", "ns"), "datetime64[ns]")),
            "frame_status": (("site", "time"), full(NOT_WRITTEN, np.int8)),
            "write_complete": (("site", "time"), full(0, np.uint8)),
        },
        coords=coords,
    )
    for name in RESULT_VARIABLES:
        template[name].attrs = dict(results[name].attrs)
    template["frame_status"].attrs["comment"] = "-1: not written to this store yet"
    template["write_complete"].attrs = {
        "long_name": "1 where the results of the slot are completely written",
        "flag_values": np.array([0, 1], dtype=np.uint8),
        "flag_meanings": "pending complete",
    }
    template.attrs = dict(results.attrs)
    return template


#: What a slot that was never written reads as (Zarr fill values: nothing is stored for it).
_FILL = {"label": -1, "frame_status": NOT_WRITTEN, "write_complete": 0}
_NAT = np.iinfo(np.int64).min


def _encoding(template: xr.Dataset, chunk: int) -> dict[str, dict[str, Any]]:
    encoding = {}
    for name, var in template.data_vars.items():
        encoding[name] = {"chunks": (1, chunk, *var.shape[2:])}
        if name in _FILL:
            encoding[name]["fill_value"] = _FILL[name]
    encoding["timestamp"].update(
        units="nanoseconds since 1970-01-01", dtype="int64", _FillValue=_NAT, fill_value=_NAT
    )
    return encoding


def _prepare(url, existing, results, kwargs) -> tuple[list[str], np.ndarray, int]:
    """Create or extend the store so that it covers the results' sites and days."""
    request_sites = [str(s) for s in results["site"].values]
    request_times = results["time"].values
    chunk = int(max(results["label"].chunks[1]))
    if existing is None:
        times = _day_axis(request_times[0], request_times[-1])
        template = _template(results, request_sites, times)
        template.to_zarr(
            url,
            encoding=_encoding(template, chunk),
            consolidated=True,
            compute=False,
            **{"mode": "a", **kwargs},
        )
        return request_sites, times, chunk

    sites = [str(s) for s in existing["site"].values]
    times = existing["time"].values
    chunk = int(existing["label"].encoding.get("chunks", (1, chunk))[1])
    if request_times[0] < times[0]:
        raise StoreError(
            f"store: {url} starts at {pd.Timestamp(times[0])}; results from "
            f"{pd.Timestamp(request_times[0])} cannot be put before it: use a new store"
        )
    if request_times[-1] > times[-1]:  # new days, for the sites already there
        new_times = _day_axis(times[-1] + SLOT, request_times[-1])
        template = _template(results, sites, new_times)
        template.attrs = dict(existing.attrs)  # an append rewrites the group's attributes
        template.to_zarr(
            url, append_dim="time", consolidated=True, compute=False, **_append(kwargs)
        )
        times = np.concatenate([times, new_times])
    new_sites = [s for s in request_sites if s not in sites]
    if new_sites:
        template = _template(results, new_sites, times)
        template.attrs = dict(existing.attrs)  # an append rewrites the group's attributes
        template.to_zarr(
            url, append_dim="site", consolidated=True, compute=False, **_append(kwargs)
        )
        sites = sites + new_sites
    return sites, times, chunk


def _append(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k not in ("zarr_format", "mode")}


def _aligned_chunks(offset: int, n: int, chunk: int) -> tuple[int, ...]:
    """Sizes of ``n`` slots starting at store index ``offset``, cut at the store's chunk edges."""
    first_edge = (offset // chunk + 1) * chunk
    bounds = [offset, *range(first_edge, offset + n, chunk), offset + n]
    return tuple(int(size) for size in np.diff(bounds))


def _write_chunks(url, results, store_sites, store_times, chunk, kwargs, progress) -> WriteSummary:
    request_times = results["time"].values
    time_index = int((request_times[0] - store_times[0]) // SLOT)
    site_index = [store_sites.index(str(s)) for s in results["site"].values]
    time_chunks = _aligned_chunks(time_index, len(request_times), chunk)
    aligned = results.chunk({"site": 1, "time": time_chunks})

    stored = open_existing(url, kwargs["group"], kwargs["storage_options"])
    region = (
        stored["write_complete"]
        .isel(site=site_index, time=slice(time_index, time_index + len(request_times)))
        .values.astype(bool)
    )

    classes = [str(c) for c in results["class"].values]
    writer = _ChunkWriter(url, kwargs["group"], kwargs["storage_options"], classes)
    pieces = [aligned[v].data for v in RESULT_VARIABLES]
    pieces = [p if p.ndim == 3 else p[:, :, None] for p in pieces]
    written = da.map_blocks(
        writer,
        *pieces,
        site_index=site_index,
        time_index=time_index,
        chunks=((1,) * len(site_index), (1,) * len(aligned.chunks["time"]), (1,)),
        dtype=object,
        meta=np.empty((0, 0, 0), dtype=object),
        name="write-results-" + tokenize(url, kwargs["group"], *pieces, site_index, time_index),
    )
    delayed = written.to_delayed()
    edges = np.r_[0, np.cumsum(time_chunks)]
    summary = WriteSummary(frames=int(region.size))
    todo = []
    for i in range(len(site_index)):
        for j in range(len(time_chunks)):
            if region[i, edges[j] : edges[j + 1]].all():
                summary.skipped += int(edges[j + 1] - edges[j])
            else:
                todo.append(delayed[i, j, 0])
    client = _client()
    if client is not None and todo:
        from distributed import as_completed

        for future in as_completed(client.compute(todo)):
            summary.add(future.result().item())
            future.release()
            if progress:
                progress(summary)
    else:  # local scheduler: a few chunks per thread at a time, so progress can be reported
        step = 2 * int(dask.config.get("num_workers", None) or os.cpu_count() or 1)
        for first in range(0, len(todo), step):
            for part in dask.compute(*todo[first : first + step]):
                summary.add(part.item())
            if progress:
                progress(summary)
    return summary


def _client():
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


class _ChunkWriter:
    """Runs on a worker: writes one chunk's results to its region, then marks it complete."""

    def __init__(self, url: str, group: str | None, storage_options, classes: list[str]) -> None:
        self.url, self.group, self.storage_options, self.classes = (
            url,
            group,
            storage_options,
            classes,
        )

    def __call__(
        self,
        label,
        confidence,
        probability,
        timestamp,
        status,
        site_index,
        time_index,
        block_info=None,
    ):
        i, j = block_info[0]["chunk-location"][:2]
        lo, hi = block_info[0]["array-location"][1]
        site = site_index[i]
        region = {"site": slice(site, site + 1), "time": slice(time_index + lo, time_index + hi)}
        dims = ("site", "time")
        data = xr.Dataset(
            {
                "label": (dims, label[..., 0]),
                "confidence": (dims, confidence[..., 0]),
                "probability": (("site", "time", "class"), probability),
                "timestamp": (dims, timestamp[..., 0]),
                "frame_status": (dims, status[..., 0]),
            }
        )
        options = {"group": self.group, "storage_options": self.storage_options}
        options = {k: v for k, v in options.items() if v is not None}
        data.to_zarr(self.url, region=region, mode="r+", consolidated=False, **options)
        done = xr.Dataset({"write_complete": (dims, np.ones(label.shape[:2], dtype=np.uint8))})
        done.to_zarr(self.url, region=region, mode="r+", consolidated=False, **options)
        status_counts = np.bincount(
            status.ravel().astype(np.int64), minlength=len(FRAME_STATUS_MEANINGS)
        )
        labels = label.ravel()
        label_counts = np.bincount(
            labels[labels >= 0].astype(np.int64), minlength=len(self.classes)
        )
        part = {
            "written": int(label.shape[1]),
            "status_counts": {
                m: int(c) for m, c in zip(FRAME_STATUS_MEANINGS, status_counts, strict=False) if c
            },
            "label_counts": {
                n: int(c) for n, c in zip(self.classes, label_counts, strict=False) if c
            },
        }
        out = np.empty((1, 1, 1), dtype=object)
        out[0, 0, 0] = part
        return out
