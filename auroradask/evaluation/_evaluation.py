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

The evaluation is built in three steps, each in its own module: the truth is read and its
codes mapped (:mod:`._truth`), matched with the frames of the results, which are read one
site-day at a time and only the site-days the truth names (:mod:`._matching`), and counted by
numpy/pandas kernels that know nothing of xarray (:mod:`._metrics`: confusion, scores,
kappa, the confidence sweep). This module holds the :class:`Evaluation` and
:func:`evaluate`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._figure import returned, target_axes
from ..errors import ArgumentError
from ._matching import ResultsReader, match_truth
from ._metrics import DEFAULT_THRESHOLDS, at_least, confusion_matrix, scores, sweep_table
from ._truth import open_dataset, resolve_mapping, truth_form


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
        Frames with a lower confidence are not compared (None: all are); a frame exactly on
        it is (``confidence >= min_confidence``, in float32).
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
            keep = at_least(self.frames["confidence"], self.min_confidence)
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
        # counts as whole numbers and rates to 3 places, as text: one float format for both
        # printed a million frames as 1e+06
        table = self.confusion.map(lambda n: f"{int(n)}").astype(object)
        table["recall"] = [_rate(v) for v in self.per_class["recall"]]
        table.loc["precision"] = [*(_rate(v) for v in self.per_class["precision"]), ""]
        table.index.name, table.columns.name = "truth \\ predicted", None
        text = table.to_string()
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
        matplotlib.figure.Figure or matplotlib.axes.Axes
            A new figure; or the Axes given as ``ax``.
        """
        n = len(self.classes)
        fig, axes, given = target_axes(ax, 1, (1.6 + 1.1 * n, 1.2 + 1.0 * n))
        ax = axes[0]
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
        fig.colorbar(image, ax=ax, label="share of truth row" if normalize else "frames")
        _save(fig, path)
        return returned(fig, axes, given)

    def plot_sweep(
        self,
        path: str | os.PathLike | None = None,
        *,
        ax=None,
        thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
    ):
        """Agreement, kappa and share of frames kept against the minimum confidence.

        Parameters
        ----------
        path
            Save the figure there (any format matplotlib writes, from the suffix).
        ax
            A matplotlib Axes to draw into; a new figure otherwise.
        thresholds
            The minimum confidences to try.

        Returns
        -------
        matplotlib.figure.Figure or matplotlib.axes.Axes
            A new figure; or the Axes given as ``ax``.
        """
        fig, axes, given = target_axes(ax, 1, (6, 4))
        ax = axes[0]
        table = self.sweep(thresholds)
        for column, style in (("agreement", "o-"), ("kappa", "s-"), ("kept", "^--")):
            label = "share of frames kept" if column == "kept" else column
            ax.plot(table["min_confidence"], table[column], style, label=label)
        ax.set_xlabel("minimum confidence")
        ax.set_ylabel("agreement, kappa, share kept")
        ax.set_title(
            f"Keeping only confident frames: {len(self.frames):,} matched frames",
            fontsize="medium",
        )
        ax.set_ylim(min(0.0, float(np.nanmin(table["kappa"].to_numpy(), initial=0))), 1.02)
        ax.grid(alpha=0.3)
        ax.legend()
        _save(fig, path)
        return returned(fig, axes, given)


def _fmt(value: float) -> str:
    return "-" if value is None or np.isnan(value) else f"{value:.3f}"


def _save(fig, path) -> None:
    if path is not None:
        fig.savefig(os.fspath(path), dpi=120)


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
        Compare only frames whose results confidence is at least this (0..1): a frame
        exactly on it is compared (``>=``). Compared in float32, the precision results keep
        confidences in, so a model's 0.9 (stored as 0.899999976) passes a minimum of 0.9.
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
    data = ResultsReader(open_dataset(results, "results"))
    mapping_table = resolve_mapping(mapping, data.classes)
    kind, table, described = truth_form(truth, sheet)
    if mapping is not None:
        described["mapping"] = mapping if isinstance(mapping, str) else mapping_table
    frames, skipped = match_truth(kind, table, data, mapping_table, described.get("source", ""))
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


def _rate(value: float) -> str:
    """A precision or recall in the text table: 3 places, blank where undefined."""
    return "" if np.isnan(value) else f"{round(float(value), 3):g}"
