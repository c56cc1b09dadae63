"""What a write would do, without writing: the slots to compute, and how long at a measured rate.

A run over a season takes hours; before starting one, a user wants to know what it would
read and write (a mistyped date or a store that already holds most of it show up here) and
roughly how long it would take. The rate is measured, not guessed: one short stretch of the
request is computed here, on one thread, with the model and preprocessing of the run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from .._schema import OK, SLOT
from ..errors import ArgumentError
from ._layout import LAYOUT, locate, quiet_zarr, read_state
from ._write import _all_staged, _done_slots


@dataclass
class WritePlan:
    """What :func:`auroradask.to_zarr` would do with these results and this store.

    Attributes
    ----------
    store
        The store's URL (a local path made absolute).
    exists
        Whether the store holds results already.
    sites
        The request's sites.
    first, last
        The request's first and last 3-second slot (UT).
    total, in_store, to_do
        Slots in the request, slots the store holds already (skipped by a write), and slots
        a write would compute and write.
    site_to_do
        ``to_do`` per site.
    minute_files
        Minute files (one per site and minute) the slots to do lie in: at most this many
        files are read.
    chunks_to_do
        Chunks of the results (one task each) that hold slots to do.
    measured_chunks, measured_slots, measured_frames, measured_seconds
        What was computed here to measure the rate: a few chunks spread over the chunks to
        do (a task's work each), their slots, the frames among them (slots with a frame: an
        archive with gaps has many chunks without one), and how long they took on one
        thread, loading the model included.
    """

    store: str
    exists: bool
    sites: list[str]
    first: pd.Timestamp
    last: pd.Timestamp
    total: int
    in_store: int
    to_do: int
    site_to_do: dict[str, int] = field(default_factory=dict)
    minute_files: int = 0
    chunks_to_do: int = 0
    measured_chunks: int = 0
    measured_slots: int = 0
    measured_frames: int = 0
    measured_seconds: float = 0.0

    @property
    def frames_per_second(self) -> float | None:
        """Frames (slots with a frame) per second on one thread, over the measured chunks;
        None if they held no frame."""
        if not self.measured_frames or self.measured_seconds <= 0:
            return None
        return self.measured_frames / self.measured_seconds

    def estimate_seconds(self, threads: int = 1) -> float | None:
        """Seconds for the chunks to do on ``threads`` threads: the measured chunks' mean
        time, times the chunks to do.

        The measured chunks are spread over the request, so chunks without frames (cheap:
        nothing to read) and full ones count in their proportions. A rough figure: it assumes
        the threads scale linearly, as they do on a machine's cores for this work, and leaves
        out starting the cluster.
        """
        if not self.to_do:
            return 0.0
        if not self.measured_chunks:
            return None
        per_chunk = self.measured_seconds / self.measured_chunks
        return per_chunk * self.chunks_to_do / max(int(threads), 1)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["first"], out["last"] = str(self.first), str(self.last)
        out["frames_per_second"] = self.frames_per_second
        return out


def plan_write(
    results: xr.Dataset,
    store: str | os.PathLike,
    *,
    group: str | None = None,
    storage_options: dict[str, Any] | None = None,
    measure: bool = True,
    sample_chunks: int = 4,
) -> WritePlan:
    """What :func:`auroradask.to_zarr` would read and write, and how fast; writes nothing.

    Parameters
    ----------
    results
        From :func:`auroradask.classify` (lazy).
    store, group, storage_options
        As for :func:`auroradask.to_zarr`.
    measure
        Compute a few chunks of the slots to do on one thread (what one task does: read,
        preprocess, classify) to measure the rate; False skips it.
    sample_chunks
        How many chunks to compute, spread evenly over the chunks to do (the first and the
        last included).

    Returns
    -------
    WritePlan
    """
    if "time" not in results.dims or "site" not in results.dims:
        raise ArgumentError("results: expected (site, time) results from auroradask.classify")
    loc = locate(store, group, storage_options)
    sites = [str(s) for s in results["site"].values]
    times = results["time"].values
    done = np.zeros((len(sites), len(times)), dtype=bool)
    with quiet_zarr():
        state = read_state(loc)
    exists = state is not None
    if exists and state.layout == LAYOUT:
        start = int((times[0] - state.times[0]) // SLOT)
        stop = start + len(times)
        known = [i for i, s in enumerate(sites) if s in state.sites]
        lo, hi = max(start, 0), min(stop, len(state.times))
        if known and hi > lo:
            index = [state.sites.index(sites[i]) for i in known]
            held = _done_slots(loc, index, lo, hi, _all_staged(loc))
            done[known, lo - start : hi - start] = held
    todo = ~done
    minutes = times.astype("datetime64[m]")
    plan = WritePlan(
        store=loc.url,
        exists=exists,
        sites=sites,
        first=pd.Timestamp(times[0]),
        last=pd.Timestamp(times[-1]),
        total=int(done.size),
        in_store=int(done.sum()),
        to_do=int(todo.sum()),
        site_to_do={s: int(todo[i].sum()) for i, s in enumerate(sites)},
        minute_files=int(sum(len(np.unique(minutes[todo[i]])) for i in range(len(sites)))),
    )
    chunks = results["label"].chunks
    edges = np.cumsum((0, *chunks[1])) if chunks is not None else np.array([0, len(times)])
    blocks = [
        (s, lo, hi)
        for s in range(len(sites))
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        if todo[s, lo:hi].any()
    ]
    plan.chunks_to_do = len(blocks)
    if measure and blocks:
        names = [n for n in ("label", "frame_status") if n in results]
        picks = np.unique(np.linspace(0, len(blocks) - 1, max(int(sample_chunks), 1)).round())
        started = time.perf_counter()
        for s, lo, hi in (blocks[int(i)] for i in picks):
            with dask.config.set(scheduler="synchronous"):  # one thread, as one task runs
                part = results[names].isel(site=s, time=slice(lo, hi)).compute()
            plan.measured_slots += int(hi - lo)
            plan.measured_frames += int(_frames_in(part))
        plan.measured_seconds = time.perf_counter() - started
        plan.measured_chunks = len(picks)
    return plan


def _frames_in(part: xr.Dataset) -> int:
    """Slots with a frame: status ok, or, for results without a status, a label."""
    if "frame_status" in part:
        return int((part["frame_status"].values == OK).sum())
    return int((part["label"].values >= 0).sum())


__all__ = ["WritePlan", "plan_write"]
