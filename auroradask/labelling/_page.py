"""Human labels made where the model's are shown: a labelling page, and merging labellers.

:func:`label_page` writes one self-contained HTML page for a site's night (no server, no
network: the keogram and the frames are ``data:`` images inside it). The page shows the
night's keogram, the labeller's strip, the model's label strip and confidence, and the frame
at the cursor; the labeller drags on the keogram and presses ``1``–``9`` to label an
interval, steps with the arrow keys, undoes, edits and deletes, and saves

- an **interval sheet** in the form :func:`auroradask.evaluate` reads: ``Station``,
  ``Date``, ``Start frame``, ``End frame`` (numbers of the site-day's classified frames in the
  store, from 0, both ends included), ``Start UT``, ``End UT`` (the ends' 3-s slots),
  ``Classification``, ``Labeller``. An interval across 00 UT is two rows, one per UT day;
- a **per-frame table** (``site``, ``time``, ``label``, ``date``, ``frame``, ``labeller``),
  which :func:`auroradask.evaluate` and :func:`auroradask.fit_head` read too, also where the
  store holds a UT day only in part (sheet frame numbers need whole days).

The labels live in the browser's local storage under the store, site and night, so a page
closed by mistake (or regenerated with more thumbnails) keeps its work. :func:`label_sheet`
writes the same sheet from intervals given in Python (scripts, other tools' labels).

:func:`merge_labels` combines several people's sheets frame by frame (majority of those who
labelled a frame) and measures their agreement: Cohen's kappa for each pair of labellers,
over all classes and for each class against the rest. The kernels (:func:`sheet_frames_table`,
:func:`pair_agreement`, :func:`vote`) are numpy/pandas and know nothing of stores.
"""

from __future__ import annotations

import base64
import itertools
import math
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._html import script_json
from .._palette import class_colors
from .._results import check_site, class_names, site_coord
from .._schema import SLOT, SLOT_SECONDS
from ..errors import ArgumentError
from ..evaluation._matching import ResultsReader
from ..evaluation._metrics import confusion_matrix, scores
from ..evaluation._truth import (
    SHEET_COLUMNS,
    days_between,
    find_columns,
    frame_number,
    read_truth_table,
    sheet_date,
    site_code,
)
from ..io._stream0 import open_themis
from ..visual._inputs import frames_of, results_of
from ..visual._keogram import KEOGRAM, keogram_axis
from ..visual._keogram_plot import keogram_image
from ..visual._montage import stretch
from ..visual._plots import night_window
from ..visual._quicklook import night_keogram

#: The page's interval sheet: :data:`auroradask.evaluation._truth.SHEET_COLUMNS` (what evaluate
#: reads), the ends' UT times, and who labelled.
SHEET = (*SHEET_COLUMNS[:4], "Start UT", "End UT", SHEET_COLUMNS[4], "Labeller")
#: The page's per-frame table: evaluate's frame form (site, time, label) and the sheet's numbers.
FRAME_TABLE = ("site", "time", "label", "date", "frame", "labeller")
#: Class keys on the page.
MAX_CLASSES = 9
#: Thumbnails by default: as many as 20 MB of the page holds (about 2,200 frames).
DEFAULT_THUMBNAILS = "20MB"
#: JPEG quality of the thumbnails (256 x 256, about 6.5 kB a frame of the sample) and keogram.
THUMBNAIL_QUALITY = 80
KEOGRAM_QUALITY = 88
#: Widest keogram image stored (slots): a longer span is averaged over neighbouring slots.
KEOGRAM_MAX_COLUMNS = 14_400
#: Colour of keogram slots without a frame (as in the quicklooks).
NO_FRAME_RGB = (243, 230, 208)
#: Frames read from the archive per step when making thumbnails (8 MB of raw counts).
_READ_BATCH = 64
_MARKER = "__AURORADASK_LABEL_DATA__"
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_SLOT_MS = SLOT_SECONDS * 1000


# ============================================================================ the page


@dataclass
class LabelPageInfo:
    """What :func:`label_page` wrote.

    Attributes
    ----------
    path
        The HTML page.
    bytes
        Its size; ``thumbnail_bytes`` and ``keogram_bytes`` of it are images.
    start, end
        The time span the page shows (UT, end exclusive).
    frames
        Classified frames in the span (what can be labelled).
    thumbnails
        Frames with a thumbnail in the page.
    keogram
        Where the keogram came from: ``"store"``, ``"archive"``, or None (no keogram).
    partial_days
        UT days (``YYYYMMDD``) the store holds only in part: :func:`auroradask.evaluate`
        refuses sheet frame numbers there, and reads the per-frame table instead.
    """

    path: str
    bytes: int
    start: pd.Timestamp
    end: pd.Timestamp
    frames: int
    thumbnails: int
    thumbnail_bytes: int
    keogram_bytes: int
    keogram: str | None
    partial_days: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        every = f", 1 in {self.frames / self.thumbnails:.3g} frames" if self.thumbnails else ""
        return (
            f"{self.path}: {self.bytes / 1e6:.2f} MB, {self.frames} frames "
            f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UT; "
            f"{self.thumbnails} thumbnails ({self.thumbnail_bytes / 1e6:.2f} MB{every}); "
            f"keogram {self.keogram or 'none'} ({self.keogram_bytes / 1e6:.2f} MB)"
        )


def thumbnail_budget(value: int | str | None) -> tuple[str, int]:
    """``("count", n)`` for a number of frames, ``("bytes", n)`` for a size such as ``"20MB"``.

    Sizes are decimal (``kB``, ``MB``, ``GB``) or binary (``KiB``, ``MiB``, ``GiB``); None or
    0 means no thumbnails.
    """
    if value is None:
        return "count", 0
    if isinstance(value, bool):
        raise ArgumentError(f"thumbnails: expected a count or a size such as '20MB', got {value!r}")
    if isinstance(value, int | np.integer):
        if value < 0:
            raise ArgumentError(f"thumbnails: expected a count >= 0, got {value}")
        return "count", int(value)
    text = str(value).strip()
    if text.isdigit():
        return "count", int(text)
    match = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([A-Za-z]+)", text)
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if unit is None:
        raise ArgumentError(
            f"thumbnails: expected a count (500) or a size with a unit (20MB, 500kB, 1GiB), "
            f"got {value!r}"
        )
    return "bytes", int(float(match.group(1)) * unit)


def _legend(classes: Sequence[str] | None, model_classes: list[str]) -> list[str]:
    legend = list(model_classes) if classes is None else [str(c).strip() for c in classes]
    if isinstance(classes, str):
        raise ArgumentError("classes: expected a list of class names, not one string")
    if not legend or any(not c for c in legend):
        raise ArgumentError(f"classes: expected 1 to {MAX_CLASSES} non-empty names, got {legend}")
    if len(legend) > MAX_CLASSES:
        where = "the store has" if classes is None else "got"
        raise ArgumentError(
            f"classes: keys 1-{MAX_CLASSES} label, so at most {MAX_CLASSES} classes; {where} "
            f"{len(legend)}: give classes= (--classes) with the ones to label"
        )
    if len({c.lower() for c in legend}) != len(legend):
        raise ArgumentError(f"classes: names repeat (compared without case): {legend}")
    return legend


def _hex(rgba: Any) -> str:
    return "#" + "".join(f"{round(float(v) * 255):02x}" for v in rgba[:3])


def _colors(legend: list[str], model_classes: list[str]) -> tuple[list[str], list[str]]:
    """Colours of the model's classes (the one palette the figures and the dashboard use) and
    of the legend's: a legend class the model also has takes the model's colour."""
    model = class_colors(model_classes)
    lower = [c.lower() for c in model_classes]
    spare = iter(
        class_colors([*model_classes, *(c for c in legend if c.lower() not in lower)])[
            len(model_classes) :
        ]
    )
    mine = [model[lower.index(c.lower())] if c.lower() in lower else next(spare) for c in legend]
    return model, mine


def _store_key(store: Any, results: xr.Dataset) -> str:
    """What the page's local storage is keyed by, with the site and night."""
    if isinstance(store, str | os.PathLike):
        text = os.fspath(store)
        return text if "://" in text else os.path.abspath(text)
    return "dataset:" + str(results.attrs.get("model_sha256", ""))[:16]


def _data_uri(kind: str, data: bytes) -> str:
    return f"data:image/{kind};base64," + base64.b64encode(data).decode("ascii")


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    import cv2

    if image.ndim == 3:
        image = image[..., ::-1]  # OpenCV writes BGR
    ok, encoded = cv2.imencode(
        ".jpg", np.ascontiguousarray(image), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise RuntimeError("OpenCV could not encode a JPEG")
    return encoded.tobytes()


def keogram_rgb(image: np.ndarray, contrast: tuple[float, float] = (1, 99)) -> np.ndarray:
    """``(rows, columns)`` counts (NaN: no frame) → ``(rows, columns, 3)`` uint8 grey levels
    between two percentiles of the finite counts, slots without a frame in :data:`NO_FRAME_RGB`.

    Columns beyond :data:`KEOGRAM_MAX_COLUMNS` are averaged in groups (NaN ignored).
    """
    columns = image.shape[1]
    step = max(1, math.ceil(columns / KEOGRAM_MAX_COLUMNS))
    if step > 1:
        pad = (-columns) % step
        padded = np.pad(image, ((0, 0), (0, pad)), constant_values=np.nan)
        groups = padded.reshape(image.shape[0], -1, step)
        with warnings.catch_warnings():  # a group of slots without a frame stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            image = np.nanmean(groups, axis=2)
    finite = image[np.isfinite(image)]
    lo, hi = np.percentile(finite, contrast) if finite.size else (0.0, 1.0)
    grey = np.clip((image - lo) / max(hi - lo, 1.0), 0, 1) * 255
    out = np.repeat(np.nan_to_num(grey).round().astype(np.uint8)[..., None], 3, axis=2)
    out[~np.isfinite(image)] = NO_FRAME_RGB
    return out


def thumbnail(frame: np.ndarray, quality: int = THUMBNAIL_QUALITY) -> bytes | None:
    """A frame as a JPEG, stretched between percentiles 1 and 99.5 of its own counts (a
    bright frame would darken a shared scale); None for a frame of zeros (missing)."""
    if not np.asarray(frame).any():
        return None
    grey = (stretch(frame, (1, 99.5)) * 255).round().astype(np.uint8)
    return _jpeg(grey, quality)


def _evenly(n: int, k: int) -> np.ndarray:
    """``k`` indices spread evenly over ``range(n)`` (the first and last included)."""
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.round(np.linspace(0, n - 1, min(k, n))).astype(np.int64))


class _Thumbnails:
    """Thumbnails of chosen grid slots, read from the archive a batch at a time."""

    def __init__(self, source: Any, site: str, grid: np.ndarray) -> None:
        if isinstance(source, xr.Dataset):
            frames = frames_of(source, site, pd.Timestamp(grid[0]), pd.Timestamp(grid[-1]) + SLOT)
        else:
            frames = open_themis(
                source, site, pd.Timestamp(grid[0]), pd.Timestamp(grid[-1]) + SLOT, chunk_minutes=1
            )
        self.images = frames["images"].isel(site=0)
        self.time = frames["time"].values
        self.grid = grid
        self.done: dict[int, str | None] = {}

    def encode(self, slots: np.ndarray) -> dict[int, str]:
        """Data URIs of the slots (those with a frame), reading only the ones not read yet."""
        todo = [int(s) for s in slots if int(s) not in self.done]
        for k in range(0, len(todo), _READ_BATCH):
            batch = np.array(todo[k : k + _READ_BATCH])
            where = np.searchsorted(self.time, self.grid[batch])
            found = (where < len(self.time)) & (
                self.time[np.minimum(where, len(self.time) - 1)] == self.grid[batch]
            )
            for slot in batch[~found]:
                self.done[int(slot)] = None
            if found.any():
                stack = np.asarray(self.images.isel(time=where[found]).values)
                for slot, frame in zip(batch[found], stack, strict=True):
                    jpeg = thumbnail(frame)
                    self.done[int(slot)] = None if jpeg is None else _data_uri("jpeg", jpeg)
        return {int(s): self.done[int(s)] for s in slots if self.done.get(int(s))}


def _item_bytes(slot: int, uri: str) -> int:
    """What one thumbnail adds to the page's data: its URI, its slot number, JSON quoting."""
    return len(uri) + len(str(slot)) + 4


def choose_thumbnails(candidates: np.ndarray, budget: tuple[str, int], encode) -> dict[int, str]:
    """Thumbnails of frames spread evenly over ``candidates`` (slot numbers), as many as the
    budget allows: ``("count", n)`` frames, or ``("bytes", n)`` of page.

    For a size, a probe of 12 frames gives the mean size, which gives how many fit; if the
    chosen ones still exceed the budget, every other one is dropped until they fit.
    ``encode(slots) -> {slot: data URI}`` reads and encodes (and may cache).
    """
    kind, amount = budget
    if amount <= 0 or len(candidates) == 0:
        return {}
    if kind == "count":
        return encode(candidates[_evenly(len(candidates), amount)])
    probe = encode(candidates[_evenly(len(candidates), 12)])
    if not probe:
        return {}
    mean = np.mean([_item_bytes(s, u) for s, u in probe.items()])
    fit = int(amount // (mean * 1.03))
    chosen = encode(candidates[_evenly(len(candidates), fit)])
    slots = sorted(chosen)
    while slots and sum(_item_bytes(s, chosen[s]) for s in slots) > amount:
        slots = slots[::2]
    return {s: chosen[s] for s in slots}


def _span(
    times: np.ndarray, classified: np.ndarray, start, end
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The night's classified frames rounded out to a minute (under 2 h) or 10 minutes."""
    first, last = pd.Timestamp(times[classified][0]), pd.Timestamp(times[classified][-1])
    unit = "1min" if last - first < pd.Timedelta(hours=2) else "10min"
    t0 = max(first.floor(unit), start)
    t1 = min((last + pd.Timedelta(SLOT)).ceil(unit), end)
    return t0, max(t1, last + pd.Timedelta(SLOT))


def label_page(
    store: str | os.PathLike | xr.Dataset,
    site: str,
    night: Any,
    *,
    out: str | os.PathLike,
    classes: Sequence[str] | None = None,
    archive: Any = None,
    thumbnails: int | str | None = DEFAULT_THUMBNAILS,
    group: str | None = None,
    contrast: tuple[float, float] = (1, 99),
    **keogram_options: Any,
) -> LabelPageInfo:
    """Write a self-contained HTML page to label a site's night by hand, beside the model.

    The page needs no server and no network: open it from disk in any browser. It shows the
    night's keogram, the labeller's label strip, the model's label strip and confidence, and
    the frame at the cursor (the nearest one with a thumbnail). Drag on the keogram to select
    an interval and press ``1``–``9`` to label it (or label the frame at the cursor);
    ``←``/``→`` step frame by frame (with Shift a minute); ``[``/``]`` move the chosen
    interval's start or end to the cursor; Delete removes it; Ctrl+Z / Ctrl+Y undo and
    redo; the mouse wheel zooms. Labels are kept in the browser's local storage (keyed by
    store, site and night) and saved with the page's buttons as an interval sheet and a
    per-frame table (see the module's documentation), which :func:`auroradask.evaluate` and
    :func:`auroradask.fit_head` read.

    Size: about 0.1 MB of page and per-slot data, the keogram (a JPEG: about 1.5 MB for a
    10-hour night at one column per frame, 0.01 MB for the 6-minute sample), and the thumbnails
    (256 x 256 JPEGs, about 8.8 kB each as base64), which fill at most the ``thumbnails``
    budget. Measured: the sample's night with all 120 frames, 1.1 MB; an hour with all
    1,200 frames, 10.7 MB; a 10-hour night (12,000 frames) with the default 20 MB budget,
    21 MB (2,204 thumbnails, one every 16 s), 1.6 MB without thumbnails (those two with
    the sample's frames cycled and noise added to the keogram).

    Parameters
    ----------
    store
        A results store (path or URL) or results dataset: the labels, confidence and
        (if stored) keogram. Sheet frame numbers count this store's classified frames.
    site
        Site code.
    night
        The date the night starts (``"2014-03-09"``): the 24 h UT centred on local
        midnight, as the quicklooks; the page spans its classified frames.
    out
        The HTML file to write.
    classes
        The classes to label with (keys 1–9, in order): default the store's. Names other
        than the store's classes need a mapping when evaluated (``evaluate(mapping=...)``).
    archive
        A stream0 archive (path or URL) or frames dataset: the thumbnails, and the keogram
        when the store holds none. Without it the page has no thumbnails.
    thumbnails
        How many frames get a thumbnail: a count (``500``), or a size of page they may
        fill (``"20MB"``, default; ``"500kB"``); 0 or None: none. The frames are spread
        evenly over the night; they are read from ``archive`` (about one read of the
        night's files when more than one frame in 20 gets one).
    group
        Group inside the store.
    contrast
        Percentiles of the keogram's counts mapped to black and white.
    **keogram_options
        Passed to :func:`auroradask.keogram` when the keogram is computed from ``archive``
        (``skymap=``, ``direction=``); given, they also override a stored keogram.

    Returns
    -------
    LabelPageInfo

    Raises
    ------
    ArgumentError
        For an unknown site, an unreadable night or one without a classified frame, more
        than nine classes, a bad ``thumbnails``, keogram options without ``archive``, or a
        folder of ``out`` that does not exist.
    """
    budget = thumbnail_budget(thumbnails)
    if keogram_options and archive is None:
        raise ArgumentError(
            f"archive: keogram options ({', '.join(keogram_options)}) compute the keogram "
            "from the frames; give the archive"
        )
    out_path = Path(out)
    if not out_path.parent.exists():
        raise ArgumentError(f"out: folder {str(out_path.parent)!r} does not exist")
    results = results_of(store, group)
    row = check_site(results, site)
    model_classes = class_names(results)
    legend = _legend(classes, model_classes)
    start, end = night_window(night, site_coord(results, "longitude")[row])
    names = ["label", "confidence"] + [v for v in ("frame_status",) if v in results]
    one = results[names].isel(site=row).sel(time=slice(start, end - pd.Timedelta(SLOT))).compute()
    times = one["time"].values
    label = one["label"].values.astype(np.int64)
    classified = label >= 0
    if not classified.any():
        raise ArgumentError(
            f"night: no classified frame of site {site!r} in {start} to {end} UT (night of "
            f"{pd.Timestamp(night).date()})"
        )
    t0, t1 = _span(times, classified, start, end)
    grid = np.arange(t0.to_datetime64(), t1.to_datetime64(), SLOT).astype("datetime64[ns]")
    where = np.searchsorted(grid, times)
    inside = (times >= grid[0]) & (times <= grid[-1])
    inside[inside] &= grid[where[inside]] == times[inside]
    n = len(grid)
    grid_label = np.full(n, -1, dtype=np.int64)
    grid_status = np.full(n, -2, dtype=np.int64)  # -2: the store has no such slot
    grid_conf = np.full(n, -1, dtype=np.int64)
    grid_label[where[inside]] = label[inside]
    status = (
        one["frame_status"].values.astype(np.int64)
        if "frame_status" in one
        else np.where(classified, 0, -1)
    )
    grid_status[where[inside]] = status[inside]
    confidence = np.nan_to_num(one["confidence"].values.astype(np.float64), nan=-0.01)
    grid_conf[where[inside]] = np.round(confidence[inside] * 100).astype(np.int64)
    grid_conf[grid_label < 0] = -1

    # sheet frame numbers: the UT day's classified frames before the span, as evaluate counts
    days, partial = {}, []
    data = ResultsReader(results)
    for date in days_between(grid[0], grid[-1]):
        day = data.day(str(site), date)
        if isinstance(day, str):
            days[date] = {"offset": 0, "complete": False}
        else:
            before = int(np.searchsorted(day.time[day.classified], grid[0]))
            days[date] = {"offset": before, "complete": bool(day.complete)}
        in_span = (grid.astype("datetime64[D]") == np.datetime64(pd.Timestamp(date).date())) & (
            grid_label >= 0
        )
        if in_span.any() and not days[date]["complete"]:
            partial.append(date)

    keo = night_keogram(results, str(site), t0, t1, archive, **keogram_options)
    keogram_source = None
    keogram_data: dict[str, Any] = {"src": None}
    if keo is not None:
        keogram_source = "store" if KEOGRAM in results and not keogram_options else "archive"
        status_da = xr.DataArray(status, dims="time", coords={"time": times})
        image = keogram_image(keo, grid, status_da)
        rgb = keogram_rgb(image, contrast)
        axis = keogram_axis(keo)
        keogram_data = {
            "src": _data_uri("jpeg", _jpeg(rgb, KEOGRAM_QUALITY)),
            "columns": int(rgb.shape[1]),
            "rows": int(rgb.shape[0]),
            "ends": list(axis["ends"]),
            "axis": str(axis["label"]),
        }

    thumbs: dict[int, str] = {}
    if archive is not None and budget[1] > 0:
        reader = _Thumbnails(archive, str(site), grid)
        thumbs = choose_thumbnails(np.flatnonzero(grid_label >= 0), budget, reader.encode)
    thumb_slots = sorted(thumbs)

    model_colors, colors = _colors(legend, model_classes)
    notes = []
    if partial:
        notes.append(
            f"The store holds UT day(s) {', '.join(partial)} only in part: evaluate counts "
            "sheet frame numbers only over whole days, so evaluate with the per-frame table."
        )
    if archive is None:
        notes.append("No thumbnails: the page was made without the archive (archive=).")
    page_data = {
        "version": 1,
        "site": str(site),
        "night": str(pd.Timestamp(night).date()),
        "store": _store_key(store, results),
        "model": str(results.attrs.get("model_file", "")),
        "t0": int(grid[0].astype("datetime64[ms]").astype(np.int64)),
        "slot_ms": _SLOT_MS,
        "n": n,
        "classes": legend,
        "colors": colors,
        "model_classes": model_classes,
        "model_colors": model_colors,
        "label": grid_label.tolist(),
        "status": grid_status.tolist(),
        "confidence": grid_conf.tolist(),
        "days": days,
        "keogram": keogram_data,
        "thumbs": {"slots": thumb_slots, "src": [thumbs[s] for s in thumb_slots]},
        "notes": notes,
    }
    text = (
        resources.files("auroradask")
        .joinpath("data/label.html")
        .read_text(encoding="utf-8")
        .replace(_MARKER, script_json(page_data), 1)
    )
    out_path.write_text(text, encoding="utf-8")
    return LabelPageInfo(
        path=str(out_path),
        bytes=out_path.stat().st_size,
        start=t0,
        end=t1,
        frames=int((grid_label >= 0).sum()),
        thumbnails=len(thumbs),
        thumbnail_bytes=sum(_item_bytes(s, u) for s, u in thumbs.items()),
        keogram_bytes=len(keogram_data["src"] or ""),
        keogram=keogram_source,
        partial_days=partial,
    )


# ============================================================================ sheets


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


# ============================================================================ merging


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
    spelling: dict[str, str] = {}
    for frames in tables:
        for code in frames["code"]:
            spelling.setdefault(code.lower(), code)
    classes = [spelling[k] for k in sorted(spelling)]
    index = {c.lower(): i for i, c in enumerate(classes)}
    keys = ["site", "date", "frame"]
    merged = None
    known_times = []
    for name, frames in zip(names, tables, strict=True):
        part = frames[keys].assign(**{name: frames["code"].str.lower().map(index)})
        merged = part if merged is None else merged.merge(part, on=keys, how="outer")
        known_times.append(frames[[*keys, "time"]].dropna(subset=["time"]))
    merged = merged.sort_values(keys, ignore_index=True)
    codes = merged[names].fillna(-1).to_numpy(dtype=np.int64)
    consensus, votes = vote(codes, min_votes)
    table = merged[keys].copy()
    lookup = np.array([*classes, None], dtype=object)
    for j, name in enumerate(names):
        table[name] = lookup[codes[:, j]]
    table["merged"] = lookup[consensus]
    table["votes"] = votes

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
    pairs = pd.DataFrame(rows, columns=pair_columns)

    times = pd.concat(known_times, ignore_index=True).drop_duplicates(keys)
    if store is not None:
        times = _store_times(results_of(store, group), table)
    sheet = _runs(table, consensus, classes, times, labeller="+".join(names))
    return LabelMerge(
        labellers=names,
        classes=classes,
        frames=table,
        sheet=sheet,
        pairs=pairs,
        skipped=pd.concat(skipped, ignore_index=True)[["labeller", "row", "reason", "frames"]],
        min_votes=min_votes,
    )


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


__all__ = [
    "FRAME_TABLE",
    "LabelMerge",
    "LabelPageInfo",
    "SHEET",
    "choose_thumbnails",
    "keogram_rgb",
    "label_page",
    "label_sheet",
    "merge_labels",
    "pair_agreement",
    "sheet_frames_table",
    "thumbnail",
    "thumbnail_budget",
    "vote",
]
