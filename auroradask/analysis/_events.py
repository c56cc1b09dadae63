"""Events: intervals of a class at each site, whole across chunk and day boundaries.

Each chunk gives its runs of the class (:func:`run_table`, a numpy kernel), computed in
parallel; the per-chunk tables are then merged in a tree by the same rule
(:func:`merge_runs`, associative), so the events do not depend on the chunking and the
store is never loaded whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.delayed import Delayed

from .._results import (
    check_min_confidence,
    class_indices,
    results_arrays,
    site_coord,
    site_names,
)
from .._schema import SLOT
from ..distributed._progress import compute_progress
from ..errors import ArgumentError
from ._magnetic import DEFAULT_ALTITUDE_KM, mlt_kernel
from ._smoothing import _labels
from ._usable import Duration, Window, _duration, _site_slice

_RUN_FIELDS = ("row", "start", "last", "frames", "conf_sum", "conf_max")


def run_table(
    hit: np.ndarray, confidence: np.ndarray, times: np.ndarray, max_gap_ns: int
) -> dict[str, np.ndarray]:
    """Runs of ``True`` along the last axis of ``hit (site, time)``, merged across gaps.

    Two runs of a row are merged when the time between the last slot of one and the first
    of the next, less one slot, is at most ``max_gap_ns``: i.e. when at most
    ``max_gap / 3 s`` slots between them are not ``hit`` (whether of another class,
    unusable, or never written). Time is what counts, not positions in the array: where
    ``times`` jumps (a dataset cut to night hours, nights concatenated), the missing slots
    are a gap like any other, so the answer does not depend on where chunks end either.

    Returns
    -------
    dict of numpy.ndarray
        ``row`` (site row in the block), ``start`` and ``last`` (int64 ns of the first and
        last hit slot), ``frames`` (hit slots), ``conf_sum`` and ``conf_max`` (of the hit
        slots' confidence), one entry per merged run, ordered by row then time.
    """
    hit = np.atleast_2d(np.asarray(hit, dtype=bool))
    confidence = np.atleast_2d(confidence).astype(np.float64)
    t = np.asarray(times, dtype="datetime64[ns]").ravel().view(np.int64)
    # a slot continues the run of the one before it when both are hit and the time axis
    # does not jump between them; merge_runs then bridges gaps by time alone
    contiguous = np.diff(t) == np.int64(pd.Timedelta(SLOT).value)
    joined = hit[:, 1:] & hit[:, :-1] & contiguous
    first = hit.copy()
    first[:, 1:] &= ~joined
    last = hit.copy()
    last[:, :-1] &= ~joined
    rows, starts = np.nonzero(first)
    _, stops = np.nonzero(last)  # each run's last slot, in the same (row, time) order
    stops = stops + 1  # exclusive ends
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
        Slots of ``cls`` below this confidence do not count (they are gap); a slot exactly
        on it counts.
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
        of the first and last slot, hours). ``attrs["class"]`` names the class, also when
        there is no event.
    """
    (k,) = class_indices(results, [cls], "class")
    min_duration = _duration(min_duration, "min_duration")
    max_gap_ns = int(_duration(max_gap, "max_gap").value)
    min_confidence = check_min_confidence(min_confidence)
    excluded = class_indices(results, exclude, "exclude")
    if k in excluded:
        raise ArgumentError(f"class: {cls!r} is also excluded")
    arrays, time_array = results_arrays(results, ["label", "frame_status", "confidence"])
    label = _labels(results, arrays, smooth, min_confidence, excluded)
    runs = _merged_runs(label, arrays["confidence"], time_array, k, max_gap_ns)
    sites = (
        site_names(results),
        site_coord(results, "latitude"),
        site_coord(results, "longitude"),
    )
    table = dask.delayed(_finish_events)(runs, sites, cls, min_duration, altitude_km)
    if not compute:
        return table
    with compute_progress(progress, f"events of {cls}"):
        return table.compute()


_FAN_IN = 8


def _merged_runs(
    label: da.Array, confidence: da.Array, time_array: da.Array, cls: int, max_gap_ns: int
) -> Delayed:
    """The runs of class index ``cls`` of every site, merged across chunk edges: one run
    table per chunk, computed in parallel, then merged in a tree of :data:`_FAN_IN`."""
    blocks = da.map_blocks(
        _run_block,
        label,
        confidence,
        time_array[None, :],
        cls=cls,
        max_gap_ns=max_gap_ns,
        dtype=object,
        chunks=((1,) * label.numblocks[0], (1,) * label.numblocks[1]),
        meta=np.empty((0, 0), dtype=object),
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
    return level[0]


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
    frame = frame.sort_values(["start", "site"], kind="stable").reset_index(drop=True)
    frame.attrs["class"] = cls  # the class of a table without rows, for plot_events
    return frame
