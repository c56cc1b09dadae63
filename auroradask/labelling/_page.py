"""The labelling page: a self-contained HTML page to label a site's night beside the model.

:func:`label_page` writes one HTML page for a site's night (no server, no network: the
keogram and the frames are ``data:`` images inside it, made by ``_images``). The page shows
the night's keogram, the labeller's strip, the model's label strip and confidence, and the
frame at the cursor; the labeller drags on the keogram and presses ``1``–``9`` to label an
interval, steps with the arrow keys, undoes, edits and deletes, and saves an interval sheet
and a per-frame table (the forms of ``_sheets``).

The labels live in the browser's local storage under the store, site and night, so a page
closed by mistake (or regenerated with more thumbnails) keeps its work. Making the page is
three readings of the store, each a helper here: the night's labels, status and confidence
laid on a grid of every slot (:class:`_Night`), the sheet frame numbers of each UT day the
night touches (:func:`_sheet_days`), and the keogram (:func:`_keogram_data`); then the data
go into ``data/label.html`` as JSON.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
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
from ..evaluation._truth import days_between
from ..visual._inputs import results_of
from ..visual._keogram import KEOGRAM, keogram_axis
from ..visual._keogram_plot import keogram_image
from ..visual._plots import night_window
from ..visual._quicklook import night_keogram
from ._images import (
    DEFAULT_THUMBNAILS,
    KEOGRAM_QUALITY,
    _data_uri,
    _item_bytes,
    _jpeg,
    _Thumbnails,
    choose_thumbnails,
    keogram_rgb,
    thumbnail_budget,
)

#: Class keys on the page.
MAX_CLASSES = 9
_MARKER = "__AURORADASK_LABEL_DATA__"
_SLOT_MS = SLOT_SECONDS * 1000


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
    out_path = _check_out(out, archive, keogram_options)
    results = results_of(store, group)
    row = check_site(results, site)
    model_classes = class_names(results)
    legend = _legend(classes, model_classes)
    one = _Night.read(results, row, str(site), night)
    days, partial = _sheet_days(results, str(site), one)
    source, keogram = _keogram_data(results, str(site), one, archive, contrast, keogram_options)
    thumbs = _night_thumbnails(archive, str(site), one, budget)
    page_data = {
        **_header(store, results, str(site), night),
        **one.slots(),
        **_class_data(legend, model_classes),
        **one.strips(),
        **{"days": days, "keogram": keogram, "thumbs": _thumb_data(thumbs)},
        "notes": _notes(partial, archive),
    }
    _write_page(out_path, page_data)
    return _page_info(out_path, one, thumbs, keogram, source, partial)


def _check_out(out: str | os.PathLike, archive: Any, keogram_options: dict[str, Any]) -> Path:
    """The page's path, once the arguments that need no store are checked."""
    if keogram_options and archive is None:
        raise ArgumentError(
            f"archive: keogram options ({', '.join(keogram_options)}) compute the keogram "
            "from the frames; give the archive"
        )
    out_path = Path(out)
    if not out_path.parent.exists():
        raise ArgumentError(f"out: folder {str(out_path.parent)!r} does not exist")
    return out_path


@dataclass
class _Night:
    """A site's night as the store has it, laid on a grid of every slot of the page's span.

    The page shows every 3-s slot between ``start`` and ``end``, whether the store has a
    frame there or not; ``label``, ``status`` and ``confidence`` are per slot of ``grid``
    (``-1`` for no label or confidence, status ``-2`` where the store has no such slot).
    ``stored_status`` is the store's status per stored time, which the keogram image reads.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    grid: np.ndarray
    label: np.ndarray
    status: np.ndarray
    confidence: np.ndarray
    stored_status: xr.DataArray

    @classmethod
    def read(cls, results: xr.Dataset, row: int, site: str, night: Any) -> _Night:
        """Read the night's labels, status and confidence of ``site`` (row ``row`` of the
        store) and lay them on the grid."""
        start, end = night_window(night, site_coord(results, "longitude")[row])
        names = ["label", "confidence"] + [v for v in ("frame_status",) if v in results]
        one = results[names].isel(site=row)
        one = one.sel(time=slice(start, end - pd.Timedelta(SLOT))).compute()
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
        stored_status = xr.DataArray(status, dims="time", coords={"time": times})
        return cls(t0, t1, grid, grid_label, grid_status, grid_conf, stored_status)

    def slots(self) -> dict[str, int]:
        """Where the page's slots start (ms since 1970), their length, and how many."""
        return {
            "t0": int(self.grid[0].astype("datetime64[ms]").astype(np.int64)),
            "slot_ms": _SLOT_MS,
            "n": len(self.grid),
        }

    def strips(self) -> dict[str, list[int]]:
        """The page's strips, one value per slot: the model's label, status, confidence (%)."""
        return {
            "label": self.label.tolist(),
            "status": self.status.tolist(),
            "confidence": self.confidence.tolist(),
        }


def _sheet_days(
    results: xr.Dataset, site: str, one: _Night
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Per UT day of the span, where its sheet frame numbers start and whether it is whole.

    Sheet frame numbers count the UT day's classified frames, as evaluate counts them, so
    the page needs those before the span (``offset``); the days the store holds only in
    part (``partial``, where the span has a frame) can be evaluated only per frame.
    """
    days, partial = {}, []
    data = ResultsReader(results)
    for date in days_between(one.grid[0], one.grid[-1]):
        day = data.day(site, date)
        if isinstance(day, str):
            days[date] = {"offset": 0, "complete": False}
        else:
            before = int(np.searchsorted(day.time[day.classified], one.grid[0]))
            days[date] = {"offset": before, "complete": bool(day.complete)}
        on_day = one.grid.astype("datetime64[D]") == np.datetime64(pd.Timestamp(date).date())
        if (on_day & (one.label >= 0)).any() and not days[date]["complete"]:
            partial.append(date)
    return days, partial


def _keogram_data(
    results: xr.Dataset,
    site: str,
    one: _Night,
    archive: Any,
    contrast: tuple[float, float],
    keogram_options: dict[str, Any],
) -> tuple[str | None, dict[str, Any]]:
    """Where the keogram came from (``"store"``, ``"archive"``, None) and the page's keogram:
    a JPEG data URI, its size, and the ends and label of its axis."""
    keo = night_keogram(results, site, one.start, one.end, archive, **keogram_options)
    if keo is None:
        return None, {"src": None}
    source = "store" if KEOGRAM in results and not keogram_options else "archive"
    rgb = keogram_rgb(keogram_image(keo, one.grid, one.stored_status), contrast)
    axis = keogram_axis(keo)
    return source, {
        "src": _data_uri("jpeg", _jpeg(rgb, KEOGRAM_QUALITY)),
        "columns": int(rgb.shape[1]),
        "rows": int(rgb.shape[0]),
        "ends": list(axis["ends"]),
        "axis": str(axis["label"]),
    }


def _night_thumbnails(
    archive: Any, site: str, one: _Night, budget: tuple[str, int]
) -> dict[int, str]:
    """Thumbnails of classified slots, spread over the night within the budget ({} without
    an archive): ``{slot: data URI}``."""
    if archive is None or budget[1] <= 0:
        return {}
    reader = _Thumbnails(archive, site, one.grid)
    return choose_thumbnails(np.flatnonzero(one.label >= 0), budget, reader.encode)


def _header(store: Any, results: xr.Dataset, site: str, night: Any) -> dict[str, Any]:
    """What the page is of: the site, night, store (its local-storage key) and model."""
    return {
        "version": 1,
        "site": site,
        "night": str(pd.Timestamp(night).date()),
        "store": _store_key(store, results),
        "model": str(results.attrs.get("model_file", "")),
    }


def _class_data(legend: list[str], model_classes: list[str]) -> dict[str, list[str]]:
    """The classes to label with and the model's, each with its colours."""
    model_colors, colors = _colors(legend, model_classes)
    return {
        "classes": legend,
        "colors": colors,
        "model_classes": model_classes,
        "model_colors": model_colors,
    }


def _thumb_data(thumbs: dict[int, str]) -> dict[str, list]:
    """The thumbnails as the page reads them: slot numbers, and their data URIs in order."""
    slots = sorted(thumbs)
    return {"slots": slots, "src": [thumbs[s] for s in slots]}


def _notes(partial: list[str], archive: Any) -> list[str]:
    """Lines the page shows above the keogram: what the labeller should know of it."""
    notes = []
    if partial:
        notes.append(
            f"The store holds UT day(s) {', '.join(partial)} only in part: evaluate counts "
            "sheet frame numbers only over whole days, so evaluate with the per-frame table."
        )
    if archive is None:
        notes.append("No thumbnails: the page was made without the archive (archive=).")
    return notes


def _write_page(out_path: Path, page_data: dict[str, Any]) -> None:
    """The page template (``data/label.html``) with the page's data in it, as safe JSON."""
    text = (
        resources.files("auroradask")
        .joinpath("data/label.html")
        .read_text(encoding="utf-8")
        .replace(_MARKER, script_json(page_data), 1)
    )
    out_path.write_text(text, encoding="utf-8")


def _page_info(
    out_path: Path,
    one: _Night,
    thumbs: dict[int, str],
    keogram: dict[str, Any],
    source: str | None,
    partial: list[str],
) -> LabelPageInfo:
    """What the written page holds and weighs."""
    return LabelPageInfo(
        path=str(out_path),
        bytes=out_path.stat().st_size,
        start=one.start,
        end=one.end,
        frames=int((one.label >= 0).sum()),
        thumbnails=len(thumbs),
        thumbnail_bytes=sum(_item_bytes(s, u) for s, u in thumbs.items()),
        keogram_bytes=len(keogram["src"] or ""),
        keogram=source,
        partial_days=partial,
    )


__all__ = ["LabelPageInfo", "label_page"]
