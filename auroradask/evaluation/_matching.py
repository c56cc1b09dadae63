"""Truth matched with the frames of a results dataset, site-day by site-day.

:class:`ResultsReader` reads a results dataset (or an embedding dataset: anything with
``label`` and ``confidence`` on ``(site, time)``) one site-day at a time and only the
site-days a truth names. One matcher per form of truth (:func:`match_sheet`,
:func:`match_frame_table`, :func:`match_interval_table`, :func:`match_results`) puts the
matched frames and what it skipped, with the reason, into a :class:`Collector`;
:func:`match_truth` picks the matcher. :func:`auroradask.evaluate` and
:func:`auroradask.fit_head` both match their truth here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._schema import DAY_SLOTS, FILE_UNREACHABLE, NO_FILE, SLOT, SLOT_SECONDS
from ..errors import ArgumentError
from ._truth import (
    BAD_ROW,
    CONFLICT,
    CUT,
    EMPTY_INTERVAL,
    NOT_CLASSIFIED,
    NOT_FETCHED,
    NOT_IN_RESULTS,
    PARTIAL_DAY,
    SKIPPED_COLUMNS,
    START_AFTER_END,
    days_between,
    frame_number,
    map_codes,
    row_numbers,
    sheet_date,
    sheet_frames,
    site_code,
    ut_times,
)

_DAY = np.timedelta64(1, "D").astype("timedelta64[ns]")


@dataclass
class SiteDay:
    """One site-day of the results: slot times, and the per-slot variables.

    ``unreachable`` marks the slots whose file could not be fetched (``frame_status`` 4, a
    transport failure): they may hold a frame that a later run adds, so a truth label there
    is reported as not fetched rather than as a frame the results did not classify.
    """

    time: np.ndarray
    label: np.ndarray
    confidence: np.ndarray
    timestamp: np.ndarray
    complete: bool
    unreachable: np.ndarray

    @property
    def classified(self) -> np.ndarray:
        """Slot indices of the classified frames, in time order."""
        return np.flatnonzero(self.label >= 0)


class ResultsReader:
    """A results dataset read one site-day at a time, each site-day once."""

    def __init__(self, results: xr.Dataset) -> None:
        missing = [v for v in ("label", "confidence") if v not in results]
        if missing or "class" not in results.coords:
            raise ArgumentError(f"results: not a results dataset (no {missing or 'class'})")
        self.ds = results
        self.sites = {str(s): i for i, s in enumerate(results["site"].values)}
        self.time = results["time"].values
        self.classes = [str(c) for c in results["class"].values]
        self._cache: dict[tuple[str, str], SiteDay | str] = {}

    def day(self, site: str, date: str) -> SiteDay | str:
        """The site-day, or the reason it cannot be used."""
        key = (site, date)
        if key not in self._cache:
            if len(self._cache) > 64:  # callers go site-day by site-day: keep a few
                self._cache.clear()
            self._cache[key] = self._read(site, date)
        return self._cache[key]

    def _read(self, site: str, date: str) -> SiteDay | str:
        if site not in self.sites:
            return NOT_IN_RESULTS
        start = np.datetime64(pd.Timestamp(date).to_datetime64(), "ns")
        a, b = np.searchsorted(self.time, [start, start + _DAY])
        if a == b:
            return NOT_IN_RESULTS
        names = ["label", "confidence"]
        names += [v for v in ("timestamp", "frame_status") if v in self.ds]
        part = self.ds[names].isel(site=self.sites[site], time=slice(int(a), int(b))).compute()
        label = part["label"].to_numpy()
        if "frame_status" in part:
            status = part["frame_status"].to_numpy()
            # a transport failure (4) is retried by a later run, which would add frames and
            # shift every sheet frame number after it: such a day is not complete yet
            unreachable = status == FILE_UNREACHABLE
            written = (status >= 0) & ~unreachable
            # a site-day never written, or without a single source file, is not in the results
            if not (written & (status != NO_FILE)).any():
                return NOT_IN_RESULTS
        else:
            written = np.ones(label.shape, dtype=bool)
            unreachable = np.zeros(label.shape, dtype=bool)
        return SiteDay(
            time=self.time[a:b],
            label=label.astype(np.int64),
            confidence=part["confidence"].to_numpy().astype(np.float64),
            timestamp=(
                part["timestamp"].to_numpy() if "timestamp" in part else self.time[a:b]
            ).astype("datetime64[ns]"),
            complete=bool(b - a == DAY_SLOTS and written.all()),
            unreachable=unreachable,
        )


class Collector:
    """Matched frames and skipped items, gathered site-day by site-day."""

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []
        self.skipped: list[dict[str, Any]] = []

    def skip(self, reason: str, **fields: Any) -> None:
        self.skipped.append({**dict.fromkeys(SKIPPED_COLUMNS), **fields, "reason": reason})

    def add(self, site: str, day: SiteDay, slots: np.ndarray, truth: np.ndarray) -> None:
        self.frames.append(
            pd.DataFrame(
                {
                    "site": site,
                    "time": day.time[slots],
                    "truth": truth,
                    "predicted": day.label[slots],
                    "confidence": day.confidence[slots],
                }
            )
        )

    def result(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        frames = (
            pd.concat(self.frames, ignore_index=True)
            if self.frames
            else pd.DataFrame(
                {
                    "site": pd.Series(dtype=object),
                    "time": pd.Series(dtype="datetime64[ns]"),
                    "truth": pd.Series(dtype=np.int64),
                    "predicted": pd.Series(dtype=np.int64),
                    "confidence": pd.Series(dtype=np.float64),
                }
            )
        )
        # a frame labelled twice: once if the labels agree, not at all if they differ
        frames = frames.drop_duplicates(["site", "time", "truth"])
        twice = frames.duplicated(["site", "time"], keep=False)
        if twice.any():
            conflicts = frames[twice].drop_duplicates(["site", "time"])
            for (site, date), part in conflicts.groupby(
                [conflicts["site"], conflicts["time"].dt.strftime("%Y%m%d")]
            ):
                self.skip(
                    CONFLICT,
                    site=site,
                    date=date,
                    start=part["time"].min(),
                    end=part["time"].max(),
                    frames=len(part),
                )
            frames = frames[~twice]
        frames = frames.sort_values(["site", "time"], kind="stable").reset_index(drop=True)
        skipped = pd.DataFrame(self.skipped, columns=list(SKIPPED_COLUMNS))
        order = pd.DataFrame(
            {
                "site": skipped["site"].astype(str),
                "date": skipped["date"].astype(str),
                "row": pd.to_numeric(skipped["row"], errors="coerce"),
            }
        )
        skipped = skipped.loc[order.sort_values(["site", "date", "row"], kind="stable").index]
        skipped = skipped.reset_index(drop=True)
        return frames, skipped


def match_sheet(table, results: ResultsReader, mapping, source: str, out: Collector) -> None:
    lines = row_numbers(table, source)
    truth, reasons = map_codes(table["Classification"].astype(str), mapping, results.classes)
    parsed = []
    for i, row in enumerate(table.itertuples(index=False)):
        site, date = site_code(row[0]), sheet_date(row[1])
        start, end = frame_number(row[2]), frame_number(row[3])
        code = None if pd.isna(row[4]) else str(row[4]).strip()
        item = {
            "site": site or str(row[0]),
            "date": date or str(row[1]),
            "start": start,
            "end": end,
            "truth": code,
            "row": int(lines[i]),
        }
        if None in (site, date, start, end) or not code:
            out.skip(BAD_ROW, **item)
        elif reasons[i] is not None:
            out.skip(reasons[i], **item, frames=end - start + 1 if end >= start else None)
        else:
            parsed.append((site, date, start, end, int(truth[i]), item))
    parsed.sort(key=lambda p: (p[0], p[1]))
    for site, date, start, end, label, item in parsed:
        day = results.day(site, date)
        if isinstance(day, str) or not day.complete:
            reason = day if isinstance(day, str) else PARTIAL_DAY
            out.skip(reason, **item, frames=end - start + 1 if end >= start else None)
            continue
        classified = day.classified
        frames, reason = sheet_frames(len(classified), start, end)
        if frames is None:
            out.skip(reason, **item, frames=end - start + 1 if end >= start else None)
            continue
        if reason == CUT:
            out.skip(CUT, **item, frames=end - len(classified) + 1)
        slots = classified[frames]
        out.add(site, day, slots, np.full(len(slots), label))


def match_frame_table(table, results: ResultsReader, mapping, source: str, out: Collector) -> None:
    lines = row_numbers(table, source)
    sites = table["site"].map(site_code)
    times = ut_times(table["time"])
    truth, reasons = map_codes(table["label"].astype(str), mapping, results.classes)
    frame = pd.DataFrame(
        {
            "site": sites,
            "time": times,
            "truth": truth,
            "reason": pd.Series(reasons, index=table.index, dtype=object),
            "row": lines,
        }
    )
    bad = frame["site"].isna() | frame["time"].isna()
    for i in np.flatnonzero(bad.to_numpy()):
        out.skip(
            BAD_ROW,
            site=str(table["site"].iloc[i]),
            truth=str(table["label"].iloc[i]),
            row=int(lines[i]),
            frames=1,
        )
    frame = frame[~bad]
    frame["slot"] = frame["time"].dt.floor(f"{SLOT_SECONDS}s")
    frame["date"] = frame["time"].dt.strftime("%Y%m%d")
    frame["truth_code"] = table["label"].loc[frame.index].astype(str).str.strip()
    for (site, date), part in frame.groupby(["site", "date"], sort=True):
        unmapped = part["reason"].notna()
        for (reason, code), group in part[unmapped].groupby(["reason", "truth_code"]):
            out.skip(
                reason,
                site=site,
                date=date,
                start=group["time"].min(),
                end=group["time"].max(),
                truth=code,
                frames=len(group),
            )
        part = part[~unmapped]
        if part.empty:
            continue
        day = results.day(site, date)
        if isinstance(day, str):
            out.skip(
                day,
                site=site,
                date=date,
                start=part["time"].min(),
                end=part["time"].max(),
                frames=len(part),
            )
            continue
        slots = ((part["slot"].to_numpy() - day.time[0]) // SLOT).astype(np.int64)
        slots = np.clip(slots, 0, len(day.time) - 1)
        inside = (part["slot"].to_numpy() >= day.time[0]) & (
            part["slot"].to_numpy() <= day.time[-1]
        )
        classified = inside & (day.label[slots] >= 0)
        not_fetched = inside & day.unreachable[slots]
        for reason, lost in (
            (NOT_FETCHED, not_fetched),
            (NOT_CLASSIFIED, ~classified & ~not_fetched),
        ):
            if lost.any():
                out.skip(
                    reason,
                    site=site,
                    date=date,
                    start=part["time"][lost].min(),
                    end=part["time"][lost].max(),
                    frames=int(lost.sum()),
                )
        out.add(site, day, slots[classified], part["truth"].to_numpy()[classified])


def match_interval_table(
    table, results: ResultsReader, mapping, source: str, out: Collector
) -> None:
    lines = row_numbers(table, source)
    sites = table["site"].map(site_code)
    starts, ends = ut_times(table["start"]), ut_times(table["end"])
    truth, reasons = map_codes(table["label"].astype(str), mapping, results.classes)
    for i in range(len(table)):
        site, start, end = sites.iloc[i], starts.iloc[i], ends.iloc[i]
        site = None if pd.isna(site) else site  # Series.map gives NaN for a bad code
        item = {
            "site": site or str(table["site"].iloc[i]),
            "start": start,
            "end": end,
            "truth": str(table["label"].iloc[i]).strip(),
            "row": int(lines[i]),
        }
        if site is None or pd.isna(start) or pd.isna(end):
            out.skip(BAD_ROW, **item)
            continue
        item["date"] = start.strftime("%Y%m%d")
        if reasons[i] is not None:
            out.skip(reasons[i], **item)
            continue
        if start > end:
            out.skip(START_AFTER_END, **item)
            continue
        found, not_fetched, any_day = 0, 0, False
        for date in days_between(start, end):
            day = results.day(site, date)
            if isinstance(day, str):
                continue
            any_day = True
            slots, lost = _in_interval(day, start.to_datetime64(), end.to_datetime64())
            not_fetched += lost
            if len(slots):
                found += len(slots)
                out.add(site, day, slots, np.full(len(slots), truth[i]))
        if not_fetched:
            out.skip(NOT_FETCHED, **item, frames=not_fetched)
        elif not found:
            out.skip(EMPTY_INTERVAL if any_day else NOT_IN_RESULTS, **item)


def _in_interval(day: SiteDay, start: np.datetime64, end: np.datetime64) -> tuple[np.ndarray, int]:
    """The classified slots whose frame time lies in ``[start, end]``, and how many slots
    that overlap it were not fetched (a slot holds the frames of its 3 s)."""
    slots = day.classified  # the frame's own time decides
    stamps = day.timestamp[slots]
    inside = (stamps >= start) & (stamps <= end)
    overlapping = (day.time + SLOT > start) & (day.time <= end)
    return slots[inside], int((overlapping & day.unreachable).sum())


def match_results(truth_ds: xr.Dataset, results: ResultsReader, mapping, out: Collector) -> None:
    other = ResultsReader(truth_ds)
    mapped_class, why = map_codes(other.classes, mapping, results.classes)
    table = np.append(mapped_class, -1)  # index -1: not classified in the truth
    if other.time.size == 0:
        return
    dates = days_between(other.time[0], other.time[-1])
    for site in other.sites:
        for date in dates:
            theirs = other.day(site, date)
            if isinstance(theirs, str) or not (theirs.label >= 0).any():
                continue
            labelled = theirs.label >= 0
            mapped = table[np.where(labelled, theirs.label, -1)]
            unmapped = labelled & (mapped < 0)
            for k in np.unique(theirs.label[unmapped]):
                count = int((theirs.label[unmapped] == k).sum())
                out.skip(why[k], site=site, date=date, truth=other.classes[k], frames=count)
            wanted = labelled & ~unmapped
            ours = results.day(site, date)
            if isinstance(ours, str):
                out.skip(ours, site=site, date=date, frames=int(wanted.sum()))
                continue
            # the two time axes are the same 3-s grid: match slots by time
            index = np.searchsorted(ours.time, theirs.time)
            index = np.clip(index, 0, len(ours.time) - 1)
            same = ours.time[index] == theirs.time
            both = wanted & same
            both[both] &= ours.label[index[both]] >= 0
            lost = int((wanted & ~both).sum())
            if lost:
                out.skip(NOT_CLASSIFIED, site=site, date=date, frames=lost)
            out.add(site, ours, index[both], mapped[both])


def match_truth(
    kind: str,
    table: Any,
    results: ResultsReader,
    mapping: dict[str, str | None] | None,
    source: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Match a truth of any form (as :func:`truth_form` gives it) with the results.

    Returns
    -------
    (frames, skipped)
        As :attr:`auroradask.Evaluation.frames` and :attr:`auroradask.Evaluation.skipped`.
    """
    out = Collector()
    if kind == "results":
        match_results(table, results, mapping, out)
    elif kind == "sheet":
        match_sheet(table, results, mapping, source, out)
    elif kind == "frames":
        match_frame_table(table, results, mapping, source, out)
    else:
        match_interval_table(table, results, mapping, source, out)
    return out.result()
