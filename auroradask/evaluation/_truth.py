"""Human truth as tables: reading interval sheets, frame tables and interval tables, and
mapping their codes to the classes of the results.

The forms are described in :mod:`auroradask.evaluation._evaluation`. This module reads them
(``.xlsx``/``.csv`` files or DataFrames), tells which form a table is by its columns, parses
the fields one value at a time (a bad value is a skipped row, never an exception), and holds
the reasons :attr:`auroradask.Evaluation.skipped` gives. Matching the truth with frames of
the results is :mod:`._matching`'s work.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._schema import SITE_CODE
from ..errors import ArgumentError, SourceNotFoundError
from ..store import open_results

#: Named mappings from truth codes to model classes. ``themis-pa``: the interval sheets of the
#: published pulsating-aurora classifier (pulsating aurora; discrete/sub-visual and diffuse
#: aurora; clear sky; cloudy and bad viewing).
MAPPINGS: dict[str, dict[str, str]] = {
    "themis-pa": {
        "pa": "pulsating",
        "dis-sub": "other_aurora",
        "diff": "other_aurora",
        "cs": "no_aurora",
        "cl": "bad_viewing",
        "bv": "bad_viewing",
    }
}

#: Columns of an interval sheet (``Comment`` may follow; it is ignored).
SHEET_COLUMNS = ("Station", "Date", "Start frame", "End frame", "Classification")
FRAME_COLUMNS = ("site", "time", "label")
INTERVAL_COLUMNS = ("site", "start", "end", "label")

# Reasons in Evaluation.skipped.
# Reasons in Evaluation.skipped.
NOT_IN_RESULTS = "site-day not in the results"
NO_FRAMES = "site-day has no classified frames"
PARTIAL_DAY = "site-day only partly in the results (frame numbers need the whole day)"
PAST_END = "interval starts past the day's last frame"
CUT = "interval cut at the day's last frame"
START_AFTER_END = "start after end"
UNKNOWN_CODE = "code not in the mapping"
NOT_A_CLASS = "label not a class of the results"
MAPPED_TO_NOTHING = "code mapped to no class"
CLASS_ABSENT = "code maps to a class the results lack"
BAD_ROW = "unreadable row"
NOT_CLASSIFIED = "frame not classified in the results"
EMPTY_INTERVAL = "no classified frame in the interval"
CONFLICT = "frame has two different truth labels"
NOT_FETCHED = "frame not fetched (transport failure; a later run retries it)"

SKIPPED_COLUMNS = ("site", "date", "start", "end", "truth", "reason", "frames", "row")
FRAME_TABLE_COLUMNS = ("site", "time", "truth", "predicted", "confidence")


def open_dataset(results: xr.Dataset | str | os.PathLike, name: str) -> xr.Dataset:
    if isinstance(results, xr.Dataset):
        return results
    if isinstance(results, (str, os.PathLike)):
        try:
            return open_results(results)
        except FileNotFoundError:
            raise SourceNotFoundError(
                f"{name}: no results store at {os.fspath(results)!r}"
            ) from None
    raise ArgumentError(f"{name}: expected a results dataset or a store path, got {type(results)}")


def read_truth_table(path: str | os.PathLike, sheet: str | int | None = None) -> pd.DataFrame:
    """A truth table from ``.xlsx`` (the first sheet unless ``sheet``) or ``.csv``, as text."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SourceNotFoundError(f"truth: {path!r} does not exist")
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".xlsx", ".xlsm"):
        try:
            return pd.read_excel(path, sheet_name=0 if sheet is None else sheet, engine="openpyxl")
        except ValueError as error:  # pandas: "Worksheet named 'x' not found"
            raise ArgumentError(f"sheet: {error}") from None
    if sheet is not None:
        raise ArgumentError(f"sheet: {path} is not a workbook (.xlsx); leave --sheet out")
    if suffix in (".csv", ".txt"):
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    raise ArgumentError(f"truth: {path} is neither a store, an .xlsx workbook nor a .csv table")


def find_columns(table: pd.DataFrame, wanted: Sequence[str]) -> dict[str, str] | None:
    """The table's column for each wanted name (compared without spaces and case), or None."""
    have = {str(c).strip().lower(): c for c in table.columns}
    if all(w.lower() in have for w in wanted):
        return {w: have[w.lower()] for w in wanted}
    return None


def truth_form(truth: Any, sheet: str | int | None) -> tuple[str, Any, dict[str, Any]]:
    """("sheet" | "frames" | "intervals" | "results", the data, a description)."""
    if isinstance(truth, xr.Dataset):
        return "results", truth, {"kind": "results", "source": "dataset"}
    if isinstance(truth, (str, os.PathLike)):
        path = os.fspath(truth)
        if os.path.isdir(path) or path.rstrip("/").endswith(".zarr"):
            return "results", open_dataset(path, "truth"), {"kind": "results", "source": path}
        table, source = read_truth_table(path, sheet), path
    elif isinstance(truth, pd.DataFrame):
        table, source = numbered_rows(truth), "table"
    else:
        raise ArgumentError(
            f"truth: expected a sheet or table path, a DataFrame, or results, got {type(truth)}"
        )
    table = table.dropna(how="all")
    for kind, wanted in (
        ("sheet", SHEET_COLUMNS),
        ("intervals", INTERVAL_COLUMNS),
        ("frames", FRAME_COLUMNS),
    ):
        columns = find_columns(table, wanted)
        if columns is not None:
            renamed = table.rename(columns={v: k for k, v in columns.items()})[list(wanted)]
            return kind, renamed, {"kind": kind, "source": source, "rows": int(len(table))}
    raise ArgumentError(
        f"truth: columns {list(map(str, table.columns))} are none of: an interval sheet "
        f"{list(SHEET_COLUMNS)}, a frame table {list(FRAME_COLUMNS)}, an interval table "
        f"{list(INTERVAL_COLUMNS)}"
    )


def sheet_frames(n_frames: int, start: int, end: int) -> tuple[slice | None, str | None]:
    """Which of a day's ``n_frames`` classified frames an interval ``[start, end]`` covers.

    Returns
    -------
    (slice or None, reason or None)
        The slice of frame numbers (None if the interval is skipped) and the reason it is
        skipped or cut (:data:`CUT` when the end is past the last frame).
    """
    if start > end:
        return None, START_AFTER_END
    if n_frames == 0:
        return None, NO_FRAMES
    if start >= n_frames:
        return None, PAST_END
    if end >= n_frames:
        return slice(start, n_frames), CUT
    return slice(start, end + 1), None


def resolve_mapping(
    mapping: str | os.PathLike | Mapping[str, str | None] | None, classes: Sequence[str]
) -> dict[str, str | None] | None:
    """The mapping as a dict with normalised codes (stripped, lower case), checked against
    ``classes`` (a preset's targets that are not classes are kept, and reported as skipped by
    :func:`map_codes`); None for "truth labels are class names"."""
    if mapping is None:
        return None
    if isinstance(mapping, (str, os.PathLike)):
        key = os.fspath(mapping)
        if key in MAPPINGS:
            mapping = MAPPINGS[key]
        elif os.path.isfile(key):
            try:
                with open(key) as f:
                    mapping = json.load(f)
            except (OSError, ValueError) as error:
                raise ArgumentError(f"mapping: cannot read {key} as JSON: {error}") from None
            if not isinstance(mapping, dict):
                raise ArgumentError(f"mapping: {key} holds no JSON object (code: class)")
        else:
            raise ArgumentError(
                f"mapping: {key!r} is neither a preset ({', '.join(MAPPINGS)}) nor a JSON file"
            )
        preset = key in MAPPINGS
    else:
        preset = False
    out: dict[str, str | None] = {}
    for code, target in mapping.items():
        # a preset may name classes a model lacks: those codes are reported as skipped; in a
        # mapping of the user's, an unknown class is a typo
        if target is not None and str(target) not in classes and not preset:
            raise ArgumentError(
                f"mapping: {code!r} maps to {target!r}, not a class of the results {list(classes)}"
            )
        out[_code(code)] = None if target is None else str(target)
    return out


def map_codes(
    codes: Iterable[Any], mapping: dict[str, str | None] | None, classes: Sequence[str]
) -> tuple[np.ndarray, list[str | None]]:
    """Class indices of truth codes (-1 where not mapped) and the reason where not mapped."""
    if mapping is None:
        lookup: dict[str, int] = {c.lower(): i for i, c in enumerate(classes)}
        missing = NOT_A_CLASS
    else:
        lookup = {
            k: -2 if v is None else classes.index(v) if v in classes else -4
            for k, v in mapping.items()
        }
        missing = UNKNOWN_CODE
    index = np.array([lookup.get(_code(c), -3) for c in codes], dtype=np.int64)
    why = {-2: MAPPED_TO_NOTHING, -3: missing, -4: CLASS_ABSENT}
    reasons = [why.get(i) for i in index.tolist()]
    index[index < 0] = -1
    return index, reasons


def _code(value: Any) -> str:
    return str(value).strip().lower()


def numbered_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The table as it is where its index numbers the rows (unique whole numbers); otherwise
    the same rows, in order, numbered 0, 1, ...

    The matchers align a table's columns by its index and report a skipped row by it. An
    index that repeats (``pd.concat`` of two tables) would make pandas' alignment fail, and
    one of labels (times, names) is no row number.
    """
    index = table.index
    if index.is_unique and pd.api.types.is_integer_dtype(index.dtype):
        return table
    return table.reset_index(drop=True)


def row_numbers(table: pd.DataFrame, source: str) -> np.ndarray:
    """Spreadsheet/CSV line numbers of the rows (the header is line 1), or the index."""
    index = table.index.to_numpy()
    return index + 2 if source != "table" else index


def site_code(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    site = str(value).strip().lower()
    return site if SITE_CODE.fullmatch(site) else None


def sheet_date(value: Any) -> str | None:
    if isinstance(value, (pd.Timestamp, np.datetime64)) or hasattr(value, "strftime"):
        return None if pd.isna(value) else pd.Timestamp(value).strftime("%Y%m%d")
    text = str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    try:
        return dt.datetime.strptime(text, "%Y%m%d").strftime("%Y%m%d") if len(text) == 8 else None
    except ValueError:
        return None


def frame_number(value: Any) -> int | None:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if pd.isna(number) or number < 0 or number != int(number):
        return None
    return int(number)


def ut_times(values: pd.Series) -> pd.Series:
    """UT times as naive datetime64[ns]; NaT where unreadable."""
    times = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return times.dt.tz_localize(None).astype("datetime64[ns]")


def days_between(start: np.datetime64, end: np.datetime64) -> list[str]:
    first, last = pd.Timestamp(start).floor("D"), pd.Timestamp(end).floor("D")
    return [d.strftime("%Y%m%d") for d in pd.date_range(first, last, freq="D")]
