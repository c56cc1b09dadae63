"""Smoothing labels: the most common label in a centred window (a mode filter).

A classifier's labels flicker from frame to frame. :func:`mode_filter` is the numpy kernel
(cumulative counts per class, so the cost does not grow with the window) and
:func:`smooth_labels` maps it over the chunks with ``map_overlap``: a window needs its
neighbours across chunk edges, and the overlap makes the result independent of the chunking.
"""

from __future__ import annotations

from collections.abc import Iterable

import dask.array as da
import numpy as np
import xarray as xr

from .._results import check_min_confidence, class_indices, class_names, results_arrays
from .._schema import NOT_CLASSIFIED, label_attrs
from ._usable import Duration, Window, _names, _usable_dask, _window_half


def mode_filter(label: np.ndarray, n_classes: int, half: int) -> np.ndarray:
    """The most common label in a centred window of ``2 * half + 1`` slots, along the last axis.

    Only labelled slots (``>= 0``) vote; a slot without a label keeps -1, so smoothing never
    invents a label where there was no usable frame. Because the window is fixed in time, a
    gap longer than the window is never bridged: labels on its far side cannot reach into
    the window. A tie keeps the slot's own label when it is among the most common, else the
    lowest class index.

    Parameters
    ----------
    label
        Integer labels ``(..., time)``, -1 where not usable.
    n_classes
        Number of classes (labels are 0..n_classes-1).
    half
        Slots on each side of the centre.

    Returns
    -------
    numpy.ndarray
        int8 smoothed labels, same shape.
    """
    n = label.shape[-1]
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    counts = np.empty((n_classes, *label.shape), dtype=np.int32)
    for k in range(n_classes):
        cumulative = np.zeros((*label.shape[:-1], n + 1), dtype=np.int32)
        np.cumsum(label == k, axis=-1, out=cumulative[..., 1:])
        counts[k] = cumulative[..., hi] - cumulative[..., lo]
    best = counts.max(axis=0)
    own = np.take_along_axis(counts, np.clip(label, 0, None)[None].astype(np.intp), axis=0)[0]
    out = np.where(own == best, label, counts.argmax(axis=0))
    return np.where(label >= 0, out, NOT_CLASSIFIED).astype(np.int8)


def _smoothed_dask(
    arrays: dict[str, da.Array], n_classes: int, half: int, min_confidence, exclude
) -> da.Array:
    """Labels of the usable slots (-1 elsewhere), mode-filtered with overlap between chunks."""
    ok = _usable_dask(arrays, min_confidence, exclude)
    masked = da.where(ok, arrays["label"], np.int8(NOT_CLASSIFIED)).astype(np.int8)
    if half == 0:
        return masked
    return da.map_overlap(
        mode_filter,
        masked,
        depth={0: 0, 1: half},
        boundary=NOT_CLASSIFIED,  # beyond the ends of the axis: no data
        dtype=np.int8,
        n_classes=n_classes,
        half=half,
    )


def smooth_labels(
    results: xr.Dataset,
    window: int | Duration,
    *,
    min_confidence: float | None = None,
    exclude: str | Iterable[str] | None = None,
) -> xr.DataArray:
    """Labels smoothed by the most common label in a centred window, lazily.

    A classifier's labels flicker from frame to frame; the mode over a short window (a few
    slots or e.g. ``"30s"``) removes single-frame flickers without moving the edges of long
    intervals. Only usable slots (see :func:`usable`) vote and get a label; every other slot
    is -1, so no label is invented across a gap, and a gap longer than the window is never
    bridged. Chunks are computed with an overlap of half a window, so results do not depend
    on the chunking. Ties keep the slot's own label.

    Parameters
    ----------
    results
        A results dataset or store.
    window
        A number of slots (an even number is widened by one to be centred) or a duration.
    min_confidence, exclude
        As for :func:`usable`.

    Returns
    -------
    xarray.DataArray
        int8 ``label(site, time)``, dask-backed, -1 where not usable.
    """
    half = _window_half(window, "window")
    min_confidence = check_min_confidence(min_confidence)
    excluded = class_indices(results, exclude, "exclude")
    arrays, _ = results_arrays(results, _names(min_confidence))
    smoothed = _smoothed_dask(arrays, len(class_names(results)), half, min_confidence, excluded)
    attrs = label_attrs(class_names(results))
    attrs["comment"] = (
        f"-1: not usable; smoothed: most common label in a centred window of {2 * half + 1} slots"
    )
    return xr.DataArray(
        smoothed,
        dims=("site", "time"),
        coords={"site": results["site"], "time": results["time"]},
        name="label",
        attrs=attrs,
    )


def _labels(results, arrays, smooth: Window, min_confidence, excluded) -> da.Array:
    """Labels of the usable slots (-1 elsewhere), smoothed when ``smooth`` is given."""
    half = 0 if smooth is None else _window_half(smooth, "smooth")
    return _smoothed_dask(arrays, len(class_names(results)), half, min_confidence, excluded)
