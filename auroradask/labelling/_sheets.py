"""The interval sheet: the form human labels are saved in, and how to write one from Python.

An **interval sheet** is the form :func:`auroradask.evaluate` reads: ``Station``, ``Date``,
``Start frame``, ``End frame`` (numbers of the site-day's classified frames in the store,
from 0, both ends included), ``Start UT``, ``End UT`` (the ends' 3-s slots),
``Classification``, ``Labeller``. An interval across 00 UT is two rows, one per UT day. A
**per-frame table** (``site``, ``time``, ``label``, ``date``, ``frame``, ``labeller``) is the
labelling page's other output, which :func:`auroradask.evaluate` and
:func:`auroradask.fit_head` read too, also where the store holds a UT day only in part.

Both the page (``_page``) and the merge of several labellers (``_merge``) write these
columns, so they live here, with :func:`label_sheet`, which writes the same sheet from
intervals given in Python (scripts, other tools' labels).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._results import check_site
from .._schema import SLOT_SECONDS
from ..errors import ArgumentError
from ..evaluation._matching import ResultsReader
from ..evaluation._truth import SHEET_COLUMNS, days_between
from ..visual._inputs import results_of

#: The page's interval sheet: :data:`auroradask.evaluation._truth.SHEET_COLUMNS` (what evaluate
#: reads), the ends' UT times, and who labelled.
SHEET = (*SHEET_COLUMNS[:4], "Start UT", "End UT", SHEET_COLUMNS[4], "Labeller")
#: The page's per-frame table: evaluate's frame form (site, time, label) and the sheet's numbers.
FRAME_TABLE = ("site", "time", "label", "date", "frame", "labeller")


def _slot_text(value: np.datetime64, sep: str = " ") -> str:
    return pd.Timestamp(value).strftime(f"%Y-%m-%d{sep}%H:%M:%S")


def label_sheet(
    store: str | os.PathLike | xr.Dataset,
    site: str,
    intervals: Iterable[tuple[Any, Any, str]] | pd.DataFrame,
    *,
    labeller: str = "",
    group: str | None = None,
) -> pd.DataFrame:
    """The interval sheet the labelling page saves, from intervals given in Python.

    Each interval ``(start, end, class)`` (UT times, both included) labels the store's
    classified frames of ``site`` whose slots lie in it; one row per UT day it touches, with
    the frame numbers :func:`auroradask.evaluate` counts (the site-day's classified frames,
    from 0) and the UT slots of its first and last frames.

    Parameters
    ----------
    store
        The results store (path or URL) or dataset the frame numbers refer to.
    site
        Site code.
    intervals
        ``(start, end, class)`` tuples, or a DataFrame with ``start``, ``end``, ``label``.
    labeller
        Written in the ``Labeller`` column.
    group
        Group inside the store.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SHEET`; write it with ``to_csv(path, index=False)``.

    Raises
    ------
    ArgumentError
        For an unknown site, an unreadable time, a start after the end, or an interval
        without a classified frame.
    """
    results = results_of(store, group)
    check_site(results, site)
    if isinstance(intervals, pd.DataFrame):
        missing = [c for c in ("start", "end", "label") if c not in intervals]
        if missing:
            raise ArgumentError(f"intervals: no column(s) {missing}")
        items = list(zip(intervals["start"], intervals["end"], intervals["label"], strict=True))
    else:
        items = [tuple(item) for item in intervals]
    data = ResultsReader(results)
    rows = []
    for k, item in enumerate(items):
        if len(item) != 3:
            raise ArgumentError(f"intervals: item {k} is not (start, end, class): {item!r}")
        try:
            start, end = pd.Timestamp(item[0]), pd.Timestamp(item[1])
        except (ValueError, TypeError):
            raise ArgumentError(f"intervals: item {k} has unreadable times {item[:2]!r}") from None
        if start > end:
            raise ArgumentError(f"intervals: item {k} starts after it ends ({start} > {end})")
        lo = start.floor(f"{SLOT_SECONDS}s").to_datetime64()
        found = 0
        for date in days_between(start.to_datetime64(), end.to_datetime64()):
            day = data.day(str(site), date)
            if isinstance(day, str):
                continue
            slots = day.classified
            frames = np.flatnonzero(
                (day.time[slots] >= lo) & (day.time[slots] <= end.to_datetime64())
            )
            if not len(frames):
                continue
            found += len(frames)
            first, last = frames[0], frames[-1]
            rows.append(
                {
                    "Station": str(site),
                    "Date": date,
                    "Start frame": int(first),
                    "End frame": int(last),
                    "Start UT": _slot_text(day.time[slots[first]]),
                    "End UT": _slot_text(day.time[slots[last]]),
                    "Classification": str(item[2]),
                    "Labeller": labeller,
                }
            )
        if not found:
            raise ArgumentError(
                f"intervals: item {k} ({start} to {end}) holds no classified frame of {site!r}"
            )
    table = pd.DataFrame(rows, columns=list(SHEET))
    return table.sort_values(["Date", "Start frame"], kind="stable", ignore_index=True)


__all__ = ["FRAME_TABLE", "SHEET", "label_sheet"]
