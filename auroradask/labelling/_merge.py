"""Several labellers' interval sheets merged frame by frame, and how much they agree.

:func:`merge_labels` combines several people's sheets frame by frame (majority of those who
labelled a frame) and measures their agreement: Cohen's kappa for each pair of labellers,
over all classes and for each class against the rest, the figure labelling campaigns check
each other with. The kernels (:func:`sheet_frames_table`, :func:`pair_agreement`,
:func:`vote`) are numpy/pandas and know nothing of stores; a store is read only to give the
merged intervals' UT times. Apart from the page (``_page``): merging reads sheets, wherever
they were made, and shares only the sheet's columns (``_sheets``) with it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import ArgumentError
from ..evaluation._matching import ResultsReader
from ..evaluation._metrics import confusion_matrix, scores
from ..evaluation._truth import (
    SHEET_COLUMNS,
    find_columns,
    frame_number,
    read_truth_table,
    sheet_date,
    site_code,
)
from ..visual._inputs import results_of
from ._sheets import SHEET, _slot_text


def sheet_frames_table(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An interval sheet expanded to one row per frame; the rows that could not be read.

    Parameters
    ----------
    table
        A sheet with :data:`auroradask.evaluation._truth.SHEET_COLUMNS` (names compared without
        spaces and case); ``Start UT``, ``End UT`` are used where present.

    Returns
    -------
    (frames, skipped)
        ``frames``: ``site``, ``date``, ``frame``, ``code`` (as written, stripped) and
        ``time`` (the UT slot where the sheet gives it: interval ends; else NaT), with a frame
        labelled twice with different codes dropped (a conflict), once if the same;
        ``skipped``: ``row`` (line, the header is 1), ``reason``, ``frames``.
    """
    columns = find_columns(table, SHEET_COLUMNS)
    if columns is None:
        raise ArgumentError(
            f"sheet: columns {list(map(str, table.columns))} are not an interval sheet "
            f"{list(SHEET_COLUMNS)}"
        )
    extra = find_columns(table, ("Start UT", "End UT"))
    starts, ends, codes, sites, dates, lines, start_t, end_t = [], [], [], [], [], [], [], []
    skipped = []
    for i, (_, row) in enumerate(table.iterrows()):
        site, date = site_code(row[columns["Station"]]), sheet_date(row[columns["Date"]])
        first = frame_number(row[columns["Start frame"]])
        last = frame_number(row[columns["End frame"]])
        raw = row[columns["Classification"]]
        code = "" if pd.isna(raw) else str(raw).strip()
        if None in (site, date, first, last) or not code:
            skipped.append({"row": i + 2, "reason": "unreadable row", "frames": None})
            continue
        if first > last:
            skipped.append({"row": i + 2, "reason": "start after end", "frames": None})
            continue
        sites.append(site)
        dates.append(date)
        starts.append(first)
        ends.append(last)
        codes.append(code)
        lines.append(i + 2)
        start_t.append(row[extra["Start UT"]] if extra else None)
        end_t.append(row[extra["End UT"]] if extra else None)
    count = np.array(ends, dtype=np.int64) - np.array(starts, dtype=np.int64) + 1
    index = np.repeat(np.arange(len(starts)), count)
    offset = np.arange(index.size) - np.repeat(np.cumsum(count) - count, count)
    frame = np.array(starts, dtype=np.int64)[index] + offset
    times = np.full(index.size, np.datetime64("NaT"), dtype="datetime64[ns]")
    if extra and index.size:  # the sheet names the UT slots of each interval's two ends
        first_time = _naive(start_t)[index]
        last_time = _naive(end_t)[index]
        is_first, is_last = offset == 0, offset == count[index] - 1
        times[is_last] = last_time[is_last]
        times[is_first] = first_time[is_first]
        times[is_last & np.isnat(times)] = last_time[is_last & np.isnat(times)]
    frames = pd.DataFrame(
        {
            "site": np.array(sites, dtype=object)[index],
            "date": np.array(dates, dtype=object)[index],
            "frame": frame,
            "code": np.array(codes, dtype=object)[index],
            "time": times,
            "row": np.array(lines, dtype=np.int64)[index],
        }
    )
    frames["key"] = frames["code"].str.lower()
    frames = frames.drop_duplicates(["site", "date", "frame", "key"])
    twice = frames.duplicated(["site", "date", "frame"], keep=False)
    if twice.any():
        for row, part in frames[twice].groupby("row"):
            skipped.append(
                {
                    "row": int(row),
                    "reason": "frames labelled twice, differently",
                    "frames": len(part),
                }
            )
        frames = frames[~twice]
    frames = frames.drop(columns=["key", "row"]).sort_values(["site", "date", "frame"])
    skipped_table = pd.DataFrame(skipped, columns=["row", "reason", "frames"])
    return frames.reset_index(drop=True), skipped_table


def _naive(values: list[Any]) -> np.ndarray:
    """UT times as naive datetime64[ns]; NaT where empty or unreadable."""
    text = pd.Series([None if v is None or pd.isna(v) else str(v) for v in values], dtype=object)
    times = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    return times.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def pair_agreement(a: np.ndarray, b: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Agreement of two labellers' class indices over the same frames.

    Returns
    -------
    dict
        ``frames``, ``agreement``, ``kappa`` (Cohen's, over all classes: (p_o - p_e) /
        (1 - p_e), 1 where the agreement is perfect, as :func:`auroradask.evaluate`), and
        ``per_class``: for each class, Cohen's kappa of "this class" against "another
        class" between the two (NaN where neither labeller gave the class, or where one
        side is all of it and the other too: nothing to measure agreement on).
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    figures = scores(confusion_matrix(a, b, n_classes))
    per_class = np.full(n_classes, np.nan)
    for k in range(n_classes):
        mine, theirs = a == k, b == k
        expected = (
            (mine.mean() * theirs.mean() + (~mine).mean() * (~theirs).mean()) if len(a) else 1
        )
        if not (mine.any() or theirs.any()) or expected >= 1:
            continue
        binary = scores(confusion_matrix(mine.astype(np.int64), theirs.astype(np.int64), 2))
        per_class[k] = binary["kappa"]
    return {
        "frames": int(len(a)),
        "agreement": figures["agreement"],
        "kappa": figures["kappa"],
        "per_class": per_class,
    }


def vote(codes: np.ndarray, min_votes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The consensus of each row of ``(frames, labellers)`` class indices (-1: not labelled).

    A frame's class is the one given by a strict majority of those who labelled it, and by
    at least ``min_votes`` of them; otherwise -1.

    Returns
    -------
    (merged, votes)
        The class index (-1: no consensus) and how many labellers gave it.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.size == 0:
        return np.full(codes.shape[0], -1), np.zeros(codes.shape[0], dtype=np.int64)
    n_classes = int(codes.max()) + 1 if codes.max() >= 0 else 1
    counts = np.zeros((codes.shape[0], n_classes), dtype=np.int64)
    rows, cols = np.nonzero(codes >= 0)
    np.add.at(counts, (rows, codes[rows, cols]), 1)
    labelled = (codes >= 0).sum(axis=1)
    best = counts.argmax(axis=1)
    top = counts.max(axis=1)
    ok = (2 * top > labelled) & (top >= max(1, int(min_votes)))
    return np.where(ok, best, -1), np.where(ok, top, 0)


@dataclass
class LabelMerge:
    """Several labellers' sheets, merged frame by frame, and their agreement.

    Attributes
    ----------
    labellers
        Their names (the sheets' ``Labeller`` column, else the file names).
    classes
        Every code given, in sorted order (compared without case; the first spelling kept).
    frames
        One row per frame anyone labelled: ``site``, ``date``, ``frame``, a column per
        labeller (code, or None), ``merged`` (None without a consensus), ``votes``.
    sheet
        The merged interval sheet (columns :data:`SHEET`): runs of frames with the same
        consensus. Its ``Start UT``/``End UT`` are the sheets' where they name those frames,
        the store's with ``store=``, else empty.
    pairs
        Per pair of labellers: ``a``, ``b``, ``frames`` both labelled, ``agreement``,
        ``kappa`` (Cohen's), then a ``kappa <class>`` column per class (that class against
        the rest).
    skipped
        Rows not used: ``labeller``, ``row``, ``reason``, ``frames``.
    """

    labellers: list[str]
    classes: list[str]
    frames: pd.DataFrame
    sheet: pd.DataFrame
    pairs: pd.DataFrame
    skipped: pd.DataFrame
    min_votes: int = 1

    @property
    def kappa(self) -> float:
        """Mean Cohen's kappa over the pairs of labellers (NaN for one labeller)."""
        return float(self.pairs["kappa"].mean()) if len(self.pairs) else float("nan")

    @property
    def per_class(self) -> pd.DataFrame:
        """Cohen's kappa of each class (against the rest), per pair; rows are pairs."""
        table = self.pairs.set_index(["a", "b"])
        return table[[f"kappa {c}" for c in self.classes]].rename(
            columns=lambda c: c.removeprefix("kappa ")
        )

    @property
    def disagreements(self) -> int:
        """Frames labelled by several people without a consensus."""
        several = self.frames[self.labellers].notna().sum(axis=1) > 1
        return int((several & self.frames["merged"].isna()).sum())

    def to_text(self) -> str:
        """Labellers, frames, the merged sheet's size, and the kappa table."""
        lines = [
            f"labellers: {', '.join(self.labellers)}; classes: {', '.join(self.classes)}",
            f"frames labelled: {len(self.frames)}; merged: {int(self.frames['merged'].notna().sum())} "
            f"in {len(self.sheet)} intervals; without a consensus: "
            f"{int(self.frames['merged'].isna().sum())} ({self.disagreements} where labellers "
            f"disagree)",
        ]
        if len(self.pairs):
            table = self.pairs.rename(
                columns=lambda c: c.removeprefix("kappa ") if c != "kappa" else c
            )
            lines += [
                "",
                "Cohen's kappa between labellers (over all classes, then each class against the rest):",
                table.round(3).to_string(index=False, na_rep="-"),
            ]
            if len(self.pairs) > 1:
                lines.append(f"mean kappa over pairs: {self.kappa:.3f}")
        if len(self.skipped):
            lines += ["", f"rows not used: {len(self.skipped)}"]
            for _, row in self.skipped.iterrows():
                lines.append(f"  {row['labeller']} line {row['row']}: {row['reason']}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def to_dict(self) -> dict[str, Any]:
        """Labellers, classes, counts and the pairs, in plain types (NaN as None)."""

        def plain(v):
            if isinstance(v, float | np.floating):
                return None if np.isnan(v) else float(v)
            if isinstance(v, np.integer):
                return int(v)
            return v

        return {
            "labellers": self.labellers,
            "classes": self.classes,
            "frames": len(self.frames),
            "merged_frames": int(self.frames["merged"].notna().sum()),
            "intervals": len(self.sheet),
            "disagreements": self.disagreements,
            "mean_kappa": plain(self.kappa),
            "pairs": [{k: plain(v) for k, v in r.items()} for r in self.pairs.to_dict("records")],
            "skipped": [
                {k: plain(v) for k, v in r.items()} for r in self.skipped.to_dict("records")
            ],
        }


def _sheet_table(sheet: Any, k: int) -> tuple[pd.DataFrame, str]:
    if isinstance(sheet, pd.DataFrame):
        return sheet.astype(object), f"sheet{k + 1}"
    if isinstance(sheet, str | os.PathLike):
        table = read_truth_table(sheet)
        return table, Path(sheet).stem
    raise ArgumentError(
        f"sheets: item {k} is neither a path nor a DataFrame ({type(sheet).__name__})"
    )


def merge_labels(
    sheets: Sequence[str | os.PathLike | pd.DataFrame],
    *,
    labellers: Sequence[str] | None = None,
    min_votes: int = 1,
    store: str | os.PathLike | xr.Dataset | None = None,
    group: str | None = None,
) -> LabelMerge:
    """Merge several people's interval sheets into one and measure how much they agree.

    Every sheet is expanded to frames (site, UT day, frame number); a frame's merged class is
    the one a strict majority of those who labelled it gave (and at least ``min_votes``
    people); frames without one are left out of the merged sheet and counted. Agreement is
    Cohen's kappa for each pair of labellers over the frames both labelled, over all classes
    and for each class against the rest, the figure labelling campaigns check each other
    with. Codes are compared without surrounding spaces and case.

    Parameters
    ----------
    sheets
        Interval sheets (``.csv``/``.xlsx`` paths or DataFrames) in the form
        :func:`auroradask.evaluate` reads, such as the labelling page saves.
    labellers
        Their names; default: each sheet's ``Labeller`` column where it holds one name,
        else the file name.
    min_votes
        Fewest labellers that must give a frame's class for it to be merged.
    store
        A results store (or dataset): gives every merged interval's UT times (without it,
        only those the sheets name).
    group
        Group inside the store.

    Returns
    -------
    LabelMerge

    Raises
    ------
    ArgumentError
        For fewer than one sheet, a table that is not an interval sheet, names that repeat,
        or ``min_votes`` below 1.
    """
    if isinstance(sheets, str | os.PathLike | pd.DataFrame) or not len(sheets):
        raise ArgumentError("sheets: expected a list of one or more sheets")
    if isinstance(min_votes, bool) or not isinstance(min_votes, int) or min_votes < 1:
        raise ArgumentError(f"min_votes: expected a whole number >= 1, got {min_votes!r}")
    if labellers is not None and len(labellers) != len(sheets):
        raise ArgumentError(f"labellers: {len(labellers)} names for {len(sheets)} sheets")
    tables, names, skipped = _read_sheets(sheets, labellers)
    classes = _classes(tables)
    keys = ["site", "date", "frame"]
    merged, times = _side_by_side(tables, names, classes, keys)
    codes = merged[names].fillna(-1).to_numpy(dtype=np.int64)
    consensus, votes = vote(codes, min_votes)
    table = merged[keys].copy()
    lookup = np.array([*classes, None], dtype=object)
    for j, name in enumerate(names):
        table[name] = lookup[codes[:, j]]
    table["merged"] = lookup[consensus]
    table["votes"] = votes
    if store is not None:
        times = _store_times(results_of(store, group), table)
    sheet = _runs(table, consensus, classes, times, labeller="+".join(names))
    return LabelMerge(
        labellers=names,
        classes=classes,
        frames=table,
        sheet=sheet,
        pairs=_pairs(codes, names, classes),
        skipped=pd.concat(skipped, ignore_index=True)[["labeller", "row", "reason", "frames"]],
        min_votes=min_votes,
    )


def _read_sheets(
    sheets: Sequence[str | os.PathLike | pd.DataFrame], labellers: Sequence[str] | None
) -> tuple[list[pd.DataFrame], list[str], list[pd.DataFrame]]:
    """Each sheet expanded to frames, its labeller's name, and its rows not used.

    A sheet's name is the one given, else its ``Labeller`` column where that holds one name,
    else the file's stem; names must not repeat, since they become the frames' columns.
    """
    tables, names, skipped = [], [], []
    for k, sheet in enumerate(sheets):
        table, stem = _sheet_table(sheet, k)
        try:
            frames, bad = sheet_frames_table(table.dropna(how="all"))
        except ArgumentError as error:
            raise ArgumentError(f"sheets: {stem}: {str(error).removeprefix('sheet: ')}") from None
        column = find_columns(table, ("Labeller",))
        given = (
            {str(v).strip() for v in table[column["Labeller"]].dropna() if str(v).strip()}
            if column
            else set()
        )
        name = (
            str(labellers[k])
            if labellers is not None
            else (given.pop() if len(given) == 1 else stem)
        )
        tables.append(frames)
        names.append(name)
        skipped.append(bad.assign(labeller=name))
    if len(set(names)) != len(names):
        raise ArgumentError(
            f"labellers: names repeat ({names}); give labellers= (--labellers) to tell them apart"
        )
    return tables, names, skipped


def _classes(tables: list[pd.DataFrame]) -> list[str]:
    """Every code given, sorted without case; a code's first spelling names it."""
    spelling: dict[str, str] = {}
    for frames in tables:
        for code in frames["code"]:
            spelling.setdefault(code.lower(), code)
    return [spelling[k] for k in sorted(spelling)]


def _side_by_side(
    tables: list[pd.DataFrame], names: list[str], classes: list[str], keys: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per frame anyone labelled, a column of class indices per labeller (NaN where
    they did not label it); and the UT times the sheets give for frames."""
    index = {c.lower(): i for i, c in enumerate(classes)}
    merged = None
    known_times = []
    for name, frames in zip(names, tables, strict=True):
        part = frames[keys].assign(**{name: frames["code"].str.lower().map(index)})
        merged = part if merged is None else merged.merge(part, on=keys, how="outer")
        known_times.append(frames[[*keys, "time"]].dropna(subset=["time"]))
    merged = merged.sort_values(keys, ignore_index=True)
    return merged, pd.concat(known_times, ignore_index=True).drop_duplicates(keys)


def _pairs(codes: np.ndarray, names: list[str], classes: list[str]) -> pd.DataFrame:
    """:func:`pair_agreement` of each pair of labellers over the frames both labelled."""
    rows = []
    for a, b in itertools.combinations(range(len(names)), 2):
        both = (codes[:, a] >= 0) & (codes[:, b] >= 0)
        figures = pair_agreement(codes[both, a], codes[both, b], len(classes))
        row = {
            "a": names[a],
            "b": names[b],
            "frames": figures["frames"],
            "agreement": figures["agreement"],
            "kappa": figures["kappa"],
        }
        row.update({f"kappa {c}": figures["per_class"][i] for i, c in enumerate(classes)})
        rows.append(row)
    pair_columns = ["a", "b", "frames", "agreement", "kappa", *[f"kappa {c}" for c in classes]]
    return pd.DataFrame(rows, columns=pair_columns)


def _store_times(results: xr.Dataset, table: pd.DataFrame) -> pd.DataFrame:
    """The UT slot of every (site, date, frame) of ``table`` that the store has."""
    data = ResultsReader(results)
    parts = []
    for (site, date), part in table.groupby(["site", "date"]):
        day = data.day(site, date)
        if isinstance(day, str):
            continue
        slots = day.classified
        frame = part["frame"].to_numpy()
        ok = frame < len(slots)
        parts.append(
            pd.DataFrame(
                {"site": site, "date": date, "frame": frame[ok], "time": day.time[slots[frame[ok]]]}
            )
        )
    if not parts:
        return pd.DataFrame(columns=["site", "date", "frame", "time"])
    return pd.concat(parts, ignore_index=True)


def _runs(
    table: pd.DataFrame,
    consensus: np.ndarray,
    classes: list[str],
    times: pd.DataFrame,
    labeller: str,
) -> pd.DataFrame:
    """Runs of consecutive frame numbers with one consensus class, as sheet rows."""
    keep = consensus >= 0
    frames = table.loc[keep, ["site", "date", "frame"]].reset_index(drop=True)
    code = consensus[keep]
    if not len(frames):
        return pd.DataFrame(columns=list(SHEET))
    frame = frames["frame"].to_numpy()
    same_day = (frames["site"].to_numpy()[1:] == frames["site"].to_numpy()[:-1]) & (
        frames["date"].to_numpy()[1:] == frames["date"].to_numpy()[:-1]
    )
    new = np.ones(len(frames), dtype=bool)
    new[1:] = ~(same_day & (frame[1:] == frame[:-1] + 1) & (code[1:] == code[:-1]))
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:] - 1, len(frames) - 1)
    when = {
        (s, d, int(f)): t
        for s, d, f, t in times[["site", "date", "frame", "time"]].itertuples(index=False)
    }

    def text(i: int) -> str:
        t = when.get((frames["site"].iat[i], frames["date"].iat[i], int(frame[i])))
        return "" if t is None or pd.isna(t) else _slot_text(t)

    return pd.DataFrame(
        {
            "Station": frames["site"].to_numpy()[starts],
            "Date": frames["date"].to_numpy()[starts],
            "Start frame": frame[starts],
            "End frame": frame[ends],
            "Start UT": [text(i) for i in starts],
            "End UT": [text(i) for i in ends],
            "Classification": [classes[c] for c in code[starts]],
            "Labeller": labeller,
        },
        columns=list(SHEET),
    )


__all__ = ["LabelMerge", "merge_labels", "pair_agreement", "sheet_frames_table", "vote"]
