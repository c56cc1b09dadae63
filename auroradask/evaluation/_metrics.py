"""The numbers of an evaluation: confusion counts, per-class scores, Cohen's kappa, and how
they change with a minimum confidence.

Pure numpy/pandas kernels on class indices: they know nothing of xarray, stores or truth
files, so they can be checked against a hand computation or scikit-learn on any arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_THRESHOLDS = tuple(np.round(np.arange(0, 1, 0.05), 2).tolist())


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
        keep = at_least(confidence, threshold)
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


def at_least(confidence: Any, threshold: float) -> np.ndarray:
    """``confidence >= threshold`` in float32, the precision results keep: a file's ``0.9``
    is kept by a minimum of 0.9."""
    return np.asarray(confidence, dtype=np.float32) >= np.float32(threshold)
