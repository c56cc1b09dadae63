"""Results against human labels (or another model): confusion table, precision, recall, kappa.

The truth can be

1. an interval sheet (``.xlsx`` or ``.csv``): columns ``Station``, ``Date`` (YYYYMMDD),
   ``Start frame``, ``End frame``, ``Classification`` (a ``Comment`` may follow). Frame numbers
   count that site-day's *classified* frames of the results in time order, from 0, and include
   both ends; an interval whose end is past the day's last frame is cut there and reported;
2. a per-frame table: ``site``, ``time``, ``label`` (the frame's 3-s slot is compared);
3. an interval table with times: ``site``, ``start``, ``end``, ``label`` (frames whose time
   lies in ``[start, end]``);
4. another results dataset or store: agreement between two models.

Truth codes become classes of the results through a mapping (a dict, a JSON file or the name
of a preset in :data:`MAPPINGS`); without one, truth labels must be class names. Codes are
compared without surrounding spaces and case. Whatever cannot be compared is not dropped
silently: it is listed in :attr:`Evaluation.skipped` with the reason.

The numpy/pandas kernels (:func:`confusion_matrix`, :func:`scores`, :func:`sweep_table`) know
nothing of xarray; the loaders read the results one site-day at a time, only the site-days
the truth names.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._schema import DAY_SLOTS, FILE_UNREACHABLE, NO_FILE, SITE_CODE, SLOT, SLOT_SECONDS
from ..errors import ArgumentError, SourceNotFoundError
from ..store import open_results
from ..visual._figure import new_figure

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

SKIPPED_COLUMNS = ("site", "date", "start", "end", "truth", "reason", "frames", "row")
FRAME_TABLE_COLUMNS = ("site", "time", "truth", "predicted", "confidence")
DEFAULT_THRESHOLDS = tuple(np.round(np.arange(0, 1, 0.05), 2).tolist())
_DAY = np.timedelta64(1, "D").astype("timedelta64[ns]")


# ------------------------------------------------------------------------------- kernels


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[t, p]`` of frames with truth class ``t`` and predicted class ``p``."""
    truth = np.asarray(truth, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    flat = np.bincount(truth * n_classes + predicted, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def scores(confusion: np.ndarray) -> dict[str, Any]:
    """Per-class precision, recall, F1 and the overall agreement and Cohen's kappa.

    Parameters
    ----------
    confusion
        Square counts, truth along rows, predicted along columns.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1``, ``truth`` (row sums), ``predicted`` (column sums)
        as arrays; ``agreement`` (trace / total) and ``kappa`` ((p_o - p_e) / (1 - p_e), p_e
        from the margins). Undefined figures are NaN: precision of a class never predicted,
        recall of a class absent from the truth, F1 where either is NaN (0 where both are 0),
        everything when no frame is compared. Kappa is 1 when the agreement is perfect, even
        where p_e is 1 (one class only).
    """
    cm = np.asarray(confusion, dtype=np.float64)
    total = cm.sum()
    diagonal = np.diag(cm)
    truth, predicted = cm.sum(axis=1), cm.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, diagonal / predicted, np.nan)
        recall = np.where(truth > 0, diagonal / truth, np.nan)
        both = precision + recall
        f1 = np.where(both > 0, 2 * precision * recall / both, np.where(both == 0, 0.0, np.nan))
    if total == 0:
        agreement = kappa = np.nan
    else:
        agreement = diagonal.sum() / total
        expected = float((truth * predicted).sum() / total**2)
        kappa = 1.0 if agreement == 1 else (agreement - expected) / (1 - expected)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "truth": truth.astype(np.int64),
        "predicted": predicted.astype(np.int64),
        "agreement": float(agreement),
        "kappa": float(kappa),
    }


def sweep_table(
    truth: np.ndarray,
    predicted: np.ndarray,
    confidence: np.ndarray,
    n_classes: int,
    thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
) -> pd.DataFrame:
    """Agreement, kappa and the share of frames kept for each minimum confidence.

    A frame is kept where ``confidence >= threshold`` (compared in float32, as results store
    it); ``kept`` is the share of all the frames given.
    """
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    rows = []
    for threshold in thresholds:
        keep = _at_least(confidence, threshold)
        figures = scores(confusion_matrix(truth[keep], predicted[keep], n_classes))
        rows.append(
            {
                "min_confidence": float(threshold),
                "frames": int(keep.sum()),
                "kept": float(keep.mean()) if len(keep) else np.nan,
                "agreement": figures["agreement"],
                "kappa": figures["kappa"],
            }
        )
    return pd.DataFrame(rows, columns=["min_confidence", "frames", "kept", "agreement", "kappa"])


def _at_least(confidence: Any, threshold: float) -> np.ndarray:
    """``confidence >= threshold`` in float32, the precision results keep: a file's ``0.9``
    is kept by a minimum of 0.9."""
    return np.asarray(confidence, dtype=np.float32) >= np.float32(threshold)


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


# ------------------------------------------------------------------------------- the object


@dataclass
class Evaluation:
    """Results against a truth: what was compared, the figures, and what was skipped.

    Attributes
    ----------
    classes
        The results' classes: rows (truth) and columns (predicted) of the confusion table.
    frames
        Every frame matched with a truth label, before ``min_confidence``: ``site``, ``time``
        (3-s slot), ``truth`` and ``predicted`` (class indices), ``confidence``.
    skipped
        What was not compared, one row per interval, or per site-day and reason for frames:
        ``site``, ``date``, ``start``, ``end``, ``truth``, ``reason``, ``frames`` (how many
        frames it held, where known), ``row`` (line of the sheet or table, where there is one).
        Intervals cut at the day's last frame are listed too (``frames``: those cut off).
    min_confidence
        Frames with a lower confidence are not compared (None: all are).
    truth, results
        What was compared: descriptions for the report.
    """

    classes: list[str]
    frames: pd.DataFrame
    skipped: pd.DataFrame
    min_confidence: float | None = None
    truth: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keep = np.ones(len(self.frames), dtype=bool)
        if self.min_confidence is not None:
            keep = _at_least(self.frames["confidence"], self.min_confidence)
        self.compared = self.frames[keep]
        self._confusion = confusion_matrix(
            self.compared["truth"], self.compared["predicted"], len(self.classes)
        )
        self._scores = scores(self._confusion)

    # -- headline figures
    @property
    def frames_compared(self) -> int:
        """Frames in the confusion table."""
        return int(len(self.compared))

    @property
    def below_confidence(self) -> int:
        """Matched frames left out by ``min_confidence``."""
        return int(len(self.frames) - len(self.compared))

    @property
    def agreement(self) -> float:
        """Share of compared frames where truth and prediction agree (NaN if none compared)."""
        return self._scores["agreement"]

    @property
    def kappa(self) -> float:
        """Cohen's kappa of the confusion table."""
        return self._scores["kappa"]

    @property
    def confusion(self) -> pd.DataFrame:
        """Counts: truth classes along the rows, predicted classes along the columns."""
        return pd.DataFrame(
            self._confusion,
            index=pd.Index(self.classes, name="truth"),
            columns=pd.Index(self.classes, name="predicted"),
        )

    @property
    def per_class(self) -> pd.DataFrame:
        """``precision``, ``recall``, ``f1``, ``truth`` and ``predicted`` frame counts."""
        s = self._scores
        return pd.DataFrame(
            {k: s[k] for k in ("precision", "recall", "f1", "truth", "predicted")},
            index=pd.Index(self.classes, name="class"),
        )

    # -- by site and night
    def site(self, name: str) -> Evaluation:
        """The evaluation of one site's frames (and its skipped items)."""
        return Evaluation(
            self.classes,
            self.frames[self.frames["site"] == name].reset_index(drop=True),
            self.skipped[self.skipped["site"] == name].reset_index(drop=True),
            self.min_confidence,
            self.truth,
            self.results,
        )

    @property
    def sites(self) -> list[str]:
        """Sites with frames compared or items skipped."""
        return sorted(set(self.frames["site"]) | set(self.skipped["site"].dropna()))

    @property
    def per_site(self) -> pd.DataFrame:
        """``frames``, ``agreement`` and ``kappa`` of each site."""
        rows = [
            {"site": s, "frames": e.frames_compared, "agreement": e.agreement, "kappa": e.kappa}
            for s in self.sites
            for e in [self.site(s)]
        ]
        return pd.DataFrame(rows, columns=["site", "frames", "agreement", "kappa"]).set_index(
            "site"
        )

    @property
    def per_site_day(self) -> pd.DataFrame:
        """``frames``, ``agreement`` and ``kappa`` of each site and UT day (night)."""
        rows = []
        table = self.compared.assign(date=self.compared["time"].dt.strftime("%Y%m%d"))
        for (site, date), part in table.groupby(["site", "date"], sort=True):
            figures = scores(confusion_matrix(part["truth"], part["predicted"], len(self.classes)))
            rows.append(
                {
                    "site": site,
                    "date": date,
                    "frames": len(part),
                    "agreement": figures["agreement"],
                    "kappa": figures["kappa"],
                }
            )
        return pd.DataFrame(rows, columns=["site", "date", "frames", "agreement", "kappa"])

    # -- threshold
    def sweep(self, thresholds: Iterable[float] = DEFAULT_THRESHOLDS) -> pd.DataFrame:
        """Agreement, kappa and share of matched frames kept as the minimum confidence rises.

        Starts from all matched frames, whatever ``min_confidence`` this evaluation used.
        """
        return sweep_table(
            self.frames["truth"],
            self.frames["predicted"],
            self.frames["confidence"],
            len(self.classes),
            thresholds,
        )

    # -- reports
    def skipped_summary(self) -> pd.DataFrame:
        """Skipped items and their frames, by reason."""
        grouped = self.skipped.groupby("reason", sort=True)
        return pd.DataFrame(
            {"items": grouped.size(), "frames": grouped["frames"].sum(min_count=1)}
        ).astype({"items": int})

    def to_dict(self) -> dict[str, Any]:
        """Everything in plain types (NaN as None), for JSON."""

        def figures(e: Evaluation) -> dict[str, Any]:
            return {
                "frames_compared": e.frames_compared,
                "below_confidence": e.below_confidence,
                "agreement": e.agreement,
                "kappa": e.kappa,
                "confusion": {
                    "truth": list(e.classes),
                    "predicted": list(e.classes),
                    "counts": e._confusion.tolist(),
                },
                "per_class": {
                    c: {
                        k: e._scores[k][i]
                        for k in ("precision", "recall", "f1", "truth", "predicted")
                    }
                    for i, c in enumerate(e.classes)
                },
            }

        out = {
            "classes": list(self.classes),
            "min_confidence": self.min_confidence,
            "truth": self.truth,
            "results": self.results,
            **figures(self),
            "per_site": {s: figures(self.site(s)) for s in self.sites},
            "per_site_day": self.per_site_day.to_dict(orient="records"),
            "skipped": self.skipped.to_dict(orient="records"),
            "sweep": self.sweep().to_dict(orient="records"),
        }
        return _plain(out)

    def to_json(self, path: str | os.PathLike | None = None, indent: int = 2) -> str:
        """:meth:`to_dict` as JSON; written to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            with open(path, "w") as f:
                f.write(text + "\n")
        return text

    def to_text(self) -> str:
        """The confusion table, per-class figures, headline figures, sites and skipped items."""
        table = self.confusion.copy()
        table["recall"] = self.per_class["recall"].round(3)
        table.loc["precision"] = [*self.per_class["precision"].round(3), np.nan]
        table.index.name, table.columns.name = "truth \\ predicted", None
        text = table.to_string(na_rep="", float_format=lambda v: f"{v:g}")
        lines = [text, ""]
        threshold = (
            f" (confidence >= {self.min_confidence:g}; {self.below_confidence} below)"
            if self.min_confidence is not None
            else ""
        )
        lines.append(
            f"frames compared: {self.frames_compared}{threshold}; agreement {_fmt(self.agreement)}; "
            f"Cohen's kappa {_fmt(self.kappa)}"
        )
        lines += ["", self.per_class.round(3).to_string(na_rep="-")]
        if self.sites:
            lines += ["", self.per_site.round(3).to_string(na_rep="-")]
        if len(self.skipped):
            lines += ["", f"skipped or cut: {len(self.skipped)} items"]
            summary = self.skipped_summary()
            for reason, row in summary.iterrows():
                frames = "" if pd.isna(row["frames"]) else f", {int(row['frames'])} frames"
                lines.append(f"  {reason}: {row['items']}{frames}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def plot_confusion(self, path: str | os.PathLike | None = None, *, ax=None, normalize=True):
        """The confusion table as an image: colour the share of each truth row, text the counts.

        Parameters
        ----------
        path
            Save the figure there (any format matplotlib writes, from the suffix).
        ax
            A matplotlib Axes to draw into; a new figure otherwise.
        normalize
            Colour by the share of each truth row (recall on the diagonal); counts otherwise.

        Returns
        -------
        matplotlib.axes.Axes
        """
        if ax is None:
            n = len(self.classes)
            ax = new_figure(1.6 + 1.1 * n, 1.2 + 1.0 * n).subplots()
        counts = self._confusion
        with np.errstate(invalid="ignore"):
            shade = counts / counts.sum(axis=1, keepdims=True) if normalize else counts
        image = ax.imshow(np.nan_to_num(shade), cmap="Blues", vmin=0, vmax=1 if normalize else None)
        top = np.nanmax(np.nan_to_num(shade)) if counts.size else 0
        for (t, p), count in np.ndenumerate(counts):
            dark = np.nan_to_num(shade[t, p]) > 0.6 * (top or 1)
            ax.text(p, t, str(count), ha="center", va="center", color="white" if dark else "black")
        ax.set_xticks(range(len(self.classes)), self.classes, rotation=30, ha="right")
        ax.set_yticks(range(len(self.classes)), self.classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("truth")
        ax.set_title(
            f"{self.frames_compared} frames, agreement {_fmt(self.agreement)}, "
            f"kappa {_fmt(self.kappa)}",
            fontsize="medium",
        )
        ax.figure.colorbar(image, ax=ax, label="share of truth row" if normalize else "frames")
        _save(ax, path)
        return ax

    def plot_sweep(
        self,
        path: str | os.PathLike | None = None,
        *,
        ax=None,
        thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
    ):
        """Agreement, kappa and share of frames kept against the minimum confidence.

        Returns
        -------
        matplotlib.axes.Axes
        """
        if ax is None:
            ax = new_figure(6, 4).subplots()
        table = self.sweep(thresholds)
        for column, style in (("agreement", "o-"), ("kappa", "s-"), ("kept", "^--")):
            label = "share of frames kept" if column == "kept" else column
            ax.plot(table["min_confidence"], table[column], style, label=label)
        ax.set_xlabel("minimum confidence")
        ax.set_ylim(min(0.0, float(np.nanmin(table["kappa"].to_numpy(), initial=0))), 1.02)
        ax.grid(alpha=0.3)
        ax.legend()
        _save(ax, path)
        return ax


def _fmt(value: float) -> str:
    return "-" if value is None or np.isnan(value) else f"{value:.3f}"


def _save(ax, path) -> None:
    if path is not None:
        ax.figure.savefig(os.fspath(path), dpi=120)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return None if pd.isna(value) else str(pd.Timestamp(value))
    if value is pd.NA or value is pd.NaT:
        return None
    return value


# ------------------------------------------------------------------------------- reading


@dataclass
class _SiteDay:
    """One site-day of the results: slot times, and the per-slot variables."""

    time: np.ndarray
    label: np.ndarray
    confidence: np.ndarray
    timestamp: np.ndarray
    complete: bool

    @property
    def classified(self) -> np.ndarray:
        """Slot indices of the classified frames, in time order."""
        return np.flatnonzero(self.label >= 0)


class _Results:
    """A results dataset read one site-day at a time, each site-day once."""

    def __init__(self, results: xr.Dataset) -> None:
        missing = [v for v in ("label", "confidence") if v not in results]
        if missing or "class" not in results.coords:
            raise ArgumentError(f"results: not a results dataset (no {missing or 'class'})")
        self.ds = results
        self.sites = {str(s): i for i, s in enumerate(results["site"].values)}
        self.time = results["time"].values
        self.classes = [str(c) for c in results["class"].values]
        self._cache: dict[tuple[str, str], _SiteDay | str] = {}

    def day(self, site: str, date: str) -> _SiteDay | str:
        """The site-day, or the reason it cannot be used."""
        key = (site, date)
        if key not in self._cache:
            if len(self._cache) > 64:  # callers go site-day by site-day: keep a few
                self._cache.clear()
            self._cache[key] = self._read(site, date)
        return self._cache[key]

    def _read(self, site: str, date: str) -> _SiteDay | str:
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
            written = (status >= 0) & (status != FILE_UNREACHABLE)
            # a site-day never written, or without a single source file, is not in the results
            if not (written & (status != NO_FILE)).any():
                return NOT_IN_RESULTS
        else:
            written = np.ones(label.shape, dtype=bool)
        return _SiteDay(
            time=self.time[a:b],
            label=label.astype(np.int64),
            confidence=part["confidence"].to_numpy().astype(np.float64),
            timestamp=(
                part["timestamp"].to_numpy() if "timestamp" in part else self.time[a:b]
            ).astype("datetime64[ns]"),
            complete=bool(b - a == DAY_SLOTS and written.all()),
        )


def _open(results: xr.Dataset | str | os.PathLike, name: str) -> xr.Dataset:
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


def _columns(table: pd.DataFrame, wanted: Sequence[str]) -> dict[str, str] | None:
    """The table's column for each wanted name (compared without spaces and case), or None."""
    have = {str(c).strip().lower(): c for c in table.columns}
    if all(w.lower() in have for w in wanted):
        return {w: have[w.lower()] for w in wanted}
    return None


def _truth_form(truth: Any, sheet: str | int | None) -> tuple[str, Any, dict[str, Any]]:
    """("sheet" | "frames" | "intervals" | "results", the data, a description)."""
    if isinstance(truth, xr.Dataset):
        return "results", truth, {"kind": "results", "source": "dataset"}
    if isinstance(truth, (str, os.PathLike)):
        path = os.fspath(truth)
        if os.path.isdir(path) or path.rstrip("/").endswith(".zarr"):
            return "results", _open(path, "truth"), {"kind": "results", "source": path}
        table, source = read_truth_table(path, sheet), path
    elif isinstance(truth, pd.DataFrame):
        table, source = truth, "table"
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
        columns = _columns(table, wanted)
        if columns is not None:
            renamed = table.rename(columns={v: k for k, v in columns.items()})[list(wanted)]
            return kind, renamed, {"kind": kind, "source": source, "rows": int(len(table))}
    raise ArgumentError(
        f"truth: columns {list(map(str, table.columns))} are none of: an interval sheet "
        f"{list(SHEET_COLUMNS)}, a frame table {list(FRAME_COLUMNS)}, an interval table "
        f"{list(INTERVAL_COLUMNS)}"
    )


def _row_numbers(table: pd.DataFrame, source: str) -> np.ndarray:
    """Spreadsheet/CSV line numbers of the rows (the header is line 1), or the index."""
    index = table.index.to_numpy()
    return index + 2 if source != "table" else index


def _site_code(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    site = str(value).strip().lower()
    return site if SITE_CODE.fullmatch(site) else None


def _sheet_date(value: Any) -> str | None:
    if isinstance(value, (pd.Timestamp, np.datetime64)) or hasattr(value, "strftime"):
        return None if pd.isna(value) else pd.Timestamp(value).strftime("%Y%m%d")
    text = str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    try:
        return dt.datetime.strptime(text, "%Y%m%d").strftime("%Y%m%d") if len(text) == 8 else None
    except ValueError:
        return None


def _frame_number(value: Any) -> int | None:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if pd.isna(number) or number < 0 or number != int(number):
        return None
    return int(number)


def _times(values: pd.Series) -> pd.Series:
    """UT times as naive datetime64[ns]; NaT where unreadable."""
    times = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return times.dt.tz_localize(None).astype("datetime64[ns]")


class _Collector:
    """Matched frames and skipped items, gathered site-day by site-day."""

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []
        self.skipped: list[dict[str, Any]] = []

    def skip(self, reason: str, **fields: Any) -> None:
        self.skipped.append({**dict.fromkeys(SKIPPED_COLUMNS), **fields, "reason": reason})

    def add(self, site: str, day: _SiteDay, slots: np.ndarray, truth: np.ndarray) -> None:
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


def _sheet(table, results: _Results, mapping, source: str, out: _Collector) -> None:
    lines = _row_numbers(table, source)
    truth, reasons = map_codes(table["Classification"].astype(str), mapping, results.classes)
    parsed = []
    for i, row in enumerate(table.itertuples(index=False)):
        site, date = _site_code(row[0]), _sheet_date(row[1])
        start, end = _frame_number(row[2]), _frame_number(row[3])
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


def _days(start: np.datetime64, end: np.datetime64) -> list[str]:
    first, last = pd.Timestamp(start).floor("D"), pd.Timestamp(end).floor("D")
    return [d.strftime("%Y%m%d") for d in pd.date_range(first, last, freq="D")]


def _frame_table(table, results: _Results, mapping, source: str, out: _Collector) -> None:
    lines = _row_numbers(table, source)
    sites = table["site"].map(_site_code)
    times = _times(table["time"])
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
        if (~classified).any():
            lost = part[~classified]
            out.skip(
                NOT_CLASSIFIED,
                site=site,
                date=date,
                start=lost["time"].min(),
                end=lost["time"].max(),
                frames=len(lost),
            )
        out.add(site, day, slots[classified], part["truth"].to_numpy()[classified])


def _interval_table(table, results: _Results, mapping, source: str, out: _Collector) -> None:
    lines = _row_numbers(table, source)
    sites = table["site"].map(_site_code)
    starts, ends = _times(table["start"]), _times(table["end"])
    truth, reasons = map_codes(table["label"].astype(str), mapping, results.classes)
    for i in range(len(table)):
        site, start, end = sites.iloc[i], starts.iloc[i], ends.iloc[i]
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
        found, any_day = 0, False
        for date in _days(start, end):
            day = results.day(site, date)
            if isinstance(day, str):
                continue
            any_day = True
            slots = day.classified  # the frame's own time decides
            stamps = day.timestamp[slots]
            inside = (stamps >= start.to_datetime64()) & (stamps <= end.to_datetime64())
            if inside.any():
                found += int(inside.sum())
                out.add(site, day, slots[inside], np.full(int(inside.sum()), truth[i]))
        if not found:
            out.skip(EMPTY_INTERVAL if any_day else NOT_IN_RESULTS, **item)


def _results_truth(truth_ds: xr.Dataset, results: _Results, mapping, out: _Collector) -> None:
    other = _Results(truth_ds)
    mapped_class, why = map_codes(other.classes, mapping, results.classes)
    table = np.append(mapped_class, -1)  # index -1: not classified in the truth
    if other.time.size == 0:
        return
    dates = _days(other.time[0], other.time[-1])
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


def evaluate(
    results: xr.Dataset | str | os.PathLike,
    truth: str | os.PathLike | pd.DataFrame | xr.Dataset,
    *,
    mapping: str | os.PathLike | Mapping[str, str | None] | None = None,
    min_confidence: float | None = None,
    sheet: str | int | None = None,
) -> Evaluation:
    """Compare results with a truth: human labels, or another model's results.

    Reads the results one site-day at a time, and only the site-days the truth names (all the
    truth's written site-days when the truth is another store).

    Parameters
    ----------
    results
        A results dataset (:func:`auroradask.classify`, :func:`auroradask.import_text`) or
        a store path.
    truth
        An interval sheet (``.xlsx``/``.csv`` path or DataFrame with ``Station``, ``Date``,
        ``Start frame``, ``End frame``, ``Classification``), a per-frame table (``site``,
        ``time``, ``label``), an interval table with times (``site``, ``start``, ``end``,
        ``label``, both ends included), or another results dataset or store. Column names
        are matched without surrounding spaces and case.
    mapping
        Truth code → results class: a dict, a JSON file, or a preset name
        (``"themis-pa"``: the published classifier's sheet codes). A code mapped to None is
        skipped on purpose. Without a mapping, truth labels must be class names of the
        results. Codes are matched without surrounding spaces and case; codes not in the
        mapping are skipped and reported.
    min_confidence
        Compare only frames whose results confidence is at least this (0..1).
    sheet
        Worksheet name or index of an ``.xlsx`` truth (default: the first).

    Returns
    -------
    Evaluation

    Raises
    ------
    ArgumentError
        If an argument is malformed: an unknown mapping name, a mapping to a class the results
        lack, a table of none of the forms, ``min_confidence`` outside 0..1.
    SourceNotFoundError
        If the results store or the truth file does not exist.
    """
    if min_confidence is not None:
        try:
            min_confidence = float(min_confidence)
        except (TypeError, ValueError):
            raise ArgumentError(f"min_confidence: {min_confidence!r} is not a number") from None
        if not 0 <= min_confidence <= 1:
            raise ArgumentError(f"min_confidence: {min_confidence} is not within 0..1")
    data = _Results(_open(results, "results"))
    mapping_table = resolve_mapping(mapping, data.classes)
    kind, table, described = _truth_form(truth, sheet)
    if mapping is not None:
        described["mapping"] = mapping if isinstance(mapping, str) else mapping_table
    out = _Collector()
    if kind == "results":
        _results_truth(table, data, mapping_table, out)
    elif kind == "sheet":
        _sheet(table, data, mapping_table, described["source"], out)
    elif kind == "frames":
        _frame_table(table, data, mapping_table, described["source"], out)
    else:
        _interval_table(table, data, mapping_table, described["source"], out)
    frames, skipped = out.result()
    attrs = data.ds.attrs
    return Evaluation(
        classes=data.classes,
        frames=frames,
        skipped=skipped,
        min_confidence=min_confidence,
        truth=described,
        results={
            "source": os.fspath(results) if isinstance(results, (str, os.PathLike)) else "dataset",
            **{k: str(attrs[k]) for k in ("model_file", "model_sha256") if k in attrs},
        },
    )
