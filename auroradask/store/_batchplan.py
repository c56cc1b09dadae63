"""A plan for a batch run, before any job is asked for: frames, core-hours from a calibration
on the first chunk that holds frames, and jobs × cores × wall time to finish within a target
time (``auroradask classify --cluster slurm --dry-run``)."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from .._schema import OK, SLOT, SLOTS_PER_MINUTE
from ..distributed._batch import duration_seconds, walltime_seconds
from ..errors import ArgumentError
from ..io._archive import opened_archive
from ._layout import locate, quiet_zarr, read_state
from ._plan import plan_write
from ._write import _all_staged, _done_slots


@dataclass
class BatchPlan:
    """What a batch run would take: frames, core-hours, and a shape of jobs to finish in time.

    Attributes
    ----------
    frames
        Frames to classify at most: the slots to do that lie in minute files (20 per file).
    minute_files
        Minute files those frames are in.
    calibration_frames, calibration_seconds
        Frames of the chunk measured (the first chunk to do that holds frames) and how long
        one thread took to read, preprocess and classify them, model loading included.
    calibration_chunks
        Chunks computed to find it (those before it hold no frame).
    core_hours
        ``frames`` at the calibration's rate on one core.
    finish_in
        The target time (seconds) the jobs below are sized for.
    cores_per_job, jobs, walltime
        The suggested shape: ``jobs`` jobs of ``cores_per_job`` cores running at once, each
        for ``walltime`` seconds (the target, or the given wall time if shorter, when jobs
        are replaced as they end).
    job_runs
        Jobs asked for over the whole run (``jobs`` × how many wall times fit the target).
    """

    frames: int
    minute_files: int
    calibration_frames: int = 0
    calibration_seconds: float = 0.0
    calibration_chunks: int = 0
    core_hours: float | None = None
    finish_in: float | None = None
    cores_per_job: int = 1
    jobs: int | None = None
    walltime: float | None = None
    job_runs: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def seconds_per_frame(self) -> float | None:
        if not self.calibration_frames:
            return None
        return self.calibration_seconds / self.calibration_frames

    def expected_hours(self) -> float | None:
        """Hours the suggested jobs take at the measured rate."""
        if self.core_hours is None or not self.jobs:
            return None
        return self.core_hours / (self.jobs * self.cores_per_job)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["seconds_per_frame"] = self.seconds_per_frame
        return out


def plan_batch(
    results: xr.Dataset,
    store: str | os.PathLike,
    *,
    finish_in: str | float = "24h",
    cores_per_job: int = 1,
    walltime: str | float | None = None,
    group: str | None = None,
    storage_options: dict[str, Any] | None = None,
    max_calibration_chunks: int = 50,
) -> BatchPlan:
    """Frames, core-hours and a suggested jobs × cores × wall time for a batch run.

    Nothing is written. The rate comes from one chunk computed here on one thread (a task's
    work: read, preprocess, classify): the first chunk still to do that holds frames, so that
    an empty stretch of the archive (no files: nothing to read) does not pass for speed.

    Parameters
    ----------
    results
        From :func:`auroradask.classify` (lazy).
    store, group, storage_options
        As for :func:`auroradask.to_zarr`: slots the store holds are not counted.
    finish_in
        Target time for the whole run (``"24h"``, ``"3d"``, seconds).
    cores_per_job
        Cores of each job.
    walltime
        Longest wall time a job may ask for (the partition's limit); jobs then run one
        after another. Default: the target time.
    max_calibration_chunks
        Chunks to try before giving up finding one with frames.

    Returns
    -------
    BatchPlan
    """
    target = duration_seconds(finish_in, "finish_in")
    if int(cores_per_job) < 1:
        raise ArgumentError(f"cores_per_job: expected >= 1, got {cores_per_job}")
    longest = walltime_seconds(walltime) if walltime is not None else None
    plan = plan_write(results, store, group=group, storage_options=storage_options, measure=False)
    todo = ~_held(results, plan, group, storage_options)
    files = _slots_with_files(results)
    minutes = results["time"].values.astype("datetime64[m]")
    if files is not None:
        todo &= files
        minute_files = int(sum(len(np.unique(minutes[row])) for row in todo))
    else:  # another reader than open_themis: every minute of the request may hold a file
        minute_files = plan.minute_files
    out = BatchPlan(
        frames=minute_files * SLOTS_PER_MINUTE,
        minute_files=minute_files,
        finish_in=float(target),
        cores_per_job=int(cores_per_job),
    )
    if not plan.to_do or not minute_files:
        out.notes.append("nothing to do" if not plan.to_do else "no minute file to read")
        return out
    _calibrate(results, todo, out, max_calibration_chunks)
    if out.seconds_per_frame is None:
        out.notes.append(
            f"no frame in the first {out.calibration_chunks} chunks to do: no rate measured"
        )
        return out
    out.core_hours = out.frames * out.seconds_per_frame / 3600
    run_for = min(target, longest) if longest else target
    cores = out.core_hours * 3600 / target  # busy all the target time
    out.jobs = max(1, math.ceil(cores / out.cores_per_job))
    # jobs finish sooner than the target when one job's cores are more than enough
    needed = out.core_hours * 3600 / (out.jobs * out.cores_per_job)
    out.walltime = float(min(run_for, _round_up(needed * 1.2 + 600)))
    out.job_runs = out.jobs * max(1, math.ceil(needed / out.walltime))
    return out


def _round_up(seconds: float) -> float:
    """To the next quarter of an hour: wall times are asked for in round numbers."""
    return math.ceil(seconds / 900) * 900


def _calibrate(results: xr.Dataset, todo: np.ndarray, out: BatchPlan, max_chunks: int) -> None:
    """Compute chunks to do that lie in minute files, in order, until one holds frames (a
    file may hold none: unreadable); keep its frames and time."""
    chunks = results["label"].chunks
    n = results.sizes["time"]
    edges = np.cumsum((0, *chunks[1])) if chunks is not None else np.array([0, n])
    tried = 0
    for i in range(results.sizes["site"]):
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            if not todo[i, lo:hi].any():
                continue
            if tried >= max_chunks:
                return
            tried += 1
            part = results[["label", "frame_status"]].isel(site=i, time=slice(int(lo), int(hi)))
            started = time.perf_counter()
            with dask.config.set(scheduler="synchronous"):  # one thread, as one task runs
                status, _ = dask.compute(part["frame_status"].data, part["label"].data)
            seconds = time.perf_counter() - started
            out.calibration_chunks = tried
            frames = int((status == OK).sum())
            if frames:
                out.calibration_frames, out.calibration_seconds = frames, seconds
                return


def _slots_with_files(results: xr.Dataset) -> np.ndarray | None:
    """``(site, time)`` bool: slots in a minute that has a file in the archive (listed again
    through the folder listings discovery kept); None where the archive is not known."""
    archive = opened_archive(str(results.attrs.get("source", "")))
    if archive is None:
        return None
    times = results["time"].values
    sites = [str(s) for s in results["site"].values]
    found = archive.find_many(sites, pd.Timestamp(times[0]), pd.Timestamp(times[-1]) + SLOT)
    minutes = times.astype("datetime64[m]").astype("datetime64[ns]")
    return np.stack([np.isin(minutes, np.array(list(f), dtype="datetime64[ns]")) for f in found])


def _held(results, plan, group, storage_options) -> np.ndarray:
    """``(site, time)`` bool: slots the store holds already."""
    if not plan.in_store:
        return np.zeros((results.sizes["site"], results.sizes["time"]), dtype=bool)
    loc = locate(plan.store, group, storage_options)
    with quiet_zarr():
        state = read_state(loc)
    times = results["time"].values
    start = int((times[0] - state.times[0]) // SLOT)
    held = np.zeros((len(plan.sites), len(times)), dtype=bool)
    known = [i for i, s in enumerate(plan.sites) if s in state.sites]
    lo, hi = max(start, 0), min(start + len(times), len(state.times))
    if known and hi > lo:
        index = [state.sites.index(plan.sites[i]) for i in known]
        held[known, lo - start : hi - start] = _done_slots(loc, index, lo, hi, _all_staged(loc))
    return held
