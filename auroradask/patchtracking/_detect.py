"""Patches in each frame: the numpy kernels that find them and georeference them.

Numpy in, a table out, with no dask and no store: :func:`running_background` (a running
minimum or median over time), :func:`threshold_mask` (which pixels of one frame are patch)
and :func:`detect_frames` (connected regions of the mask, ``skimage.measure.label`` +
``regionprops``, one table row per patch, with its area in km² and its centroid's latitude
and longitude where a skymap's geometry is given). Kept apart from the lazy layer in
``_patches`` so that the kernels can be read, tested and benchmarked on a plain stack of
frames.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import ArgumentError
from ..skymaps._skymap import PatchGeometry, lat_lon_of

BACKGROUNDS = ("min", "median", "none")
#: Columns of the per-frame patch table, in order (``track`` is added by the linker).
PATCH_COLUMNS = [
    "site",
    "time",
    "patch",
    "row",
    "col",
    "area_px",
    "area_km2",
    "mean_counts",
    "peak_counts",
    "mean_excess",
    "peak_excess",
    "latitude",
    "longitude",
    "bbox_row0",
    "bbox_col0",
    "bbox_row1",
    "bbox_col1",
]


def running_background(stack: np.ndarray, method: str = "min", window: int = 21) -> np.ndarray:
    """Running background over time of ``(n, y, x)`` frames, NaN for frames to ignore.

    ``method`` is ``"min"`` (running minimum: good for pulsating aurora, whose patches are
    off part of the time) or ``"median"`` over a centred window of ``window`` frames
    (truncated at the ends of ``stack``; NaN frames are left out), or ``"none"`` (zero).
    A pixel whose window holds no valid frame gets NaN.
    """
    stack = np.asarray(stack, dtype=np.float32)
    if method == "none":
        return np.zeros_like(stack)
    half = window // 2
    n = stack.shape[0]
    out = np.empty_like(stack)
    if method == "min":
        from scipy.ndimage import minimum_filter1d

        filled = np.where(np.isnan(stack), np.inf, stack)
        # mode="nearest" repeats the end frame: for a minimum, the same as truncating
        out = minimum_filter1d(filled, size=2 * half + 1, axis=0, mode="nearest")
        out[np.isinf(out)] = np.nan
        return out
    if method == "median":
        has_nan = bool(np.isnan(stack).any())
        for i in range(n):
            window_frames = stack[max(0, i - half) : i + half + 1]
            if has_nan:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
                    out[i] = np.nanmedian(window_frames, axis=0)
            else:
                out[i] = np.median(window_frames, axis=0)
        return out
    raise ArgumentError(f"background: expected one of {BACKGROUNDS}, got {method!r}")


def threshold_mask(
    excess: np.ndarray,
    background: np.ndarray,
    fov: np.ndarray,
    threshold: str | float = "otsu",
    *,
    relative: float | None = None,
    floor: float = 0.0,
) -> np.ndarray:
    """Pixels of one frame that belong to patches, within ``fov`` only.

    ``excess`` is the frame minus its background. ``threshold``: a number of counts above
    the background (absolute), ``"relative"`` (excess above ``relative`` × background), or
    ``"otsu"`` (Otsu's threshold of the excess inside the field of view, never below
    ``floor`` counts, so that a frame with no patch does not split its noise in two).
    """
    inside = fov & np.isfinite(excess)
    if isinstance(threshold, str) and threshold == "otsu":
        from skimage.filters import threshold_otsu

        values = excess[inside]
        if values.size == 0 or values.max() == values.min():
            return np.zeros_like(inside)
        level = max(float(threshold_otsu(values)), floor)
    elif isinstance(threshold, str) and threshold == "relative":
        level = np.maximum((relative if relative is not None else 0.1) * background, floor)
    elif isinstance(threshold, int | float | np.integer | np.floating) and not isinstance(
        threshold, bool
    ):
        level = float(threshold)
    else:
        raise ArgumentError(
            f"threshold: expected 'otsu', 'relative' or a number of counts, got {threshold!r}"
        )
    with np.errstate(invalid="ignore"):
        return inside & (excess > level)


def detect_frames(
    frames: np.ndarray,
    background: np.ndarray,
    fov: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    threshold: str | float = "otsu",
    relative: float | None = None,
    floor: float = 0.0,
    min_area: int = 10,
    smooth: float = 1.0,
    geometry: PatchGeometry | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Patches of each frame of ``(n, y, x)`` frames; numpy in, a table out.

    Returns
    -------
    table, counts
        One row per patch per frame (``frame`` is the index in ``frames``; columns as
        :data:`PATCH_COLUMNS` less ``site``/``time``) and the number of patches per frame
        (``-1`` where ``valid`` is False).
    """
    from scipy.ndimage import gaussian_filter
    from skimage.measure import label, regionprops

    n = frames.shape[0]
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    counts = np.full(n, -1, dtype=np.int32)
    rows: list[tuple] = []
    for i in range(n):
        if not valid[i]:
            continue
        frame = np.asarray(frames[i], dtype=np.float32)
        bg = background[i]
        excess = frame - bg
        if smooth:
            excess = gaussian_filter(np.nan_to_num(excess), smooth)
        mask = threshold_mask(excess, bg, fov, threshold, relative=relative, floor=floor)
        labels = label(mask, connectivity=2)
        k = 0
        for region in regionprops(labels, intensity_image=frame):
            if region.area < min_area:
                continue
            k += 1
            rr, cc = region.coords[:, 0], region.coords[:, 1]
            counts_px = frame[rr, cc]
            excess_px = frame[rr, cc] - bg[rr, cc]
            if geometry is not None:
                km2 = geometry.pixel_km2[rr, cc]
                area_km2 = float(np.nansum(km2)) if np.isfinite(km2).any() else np.nan
                # unmapped pixels (NaN km² and NaN centre) weigh nothing, as in the area
                weights = np.nan_to_num(km2)
                vector = (np.nan_to_num(geometry.xyz[:, rr, cc]) * weights).sum(axis=1)
                if np.linalg.norm(vector) > 0:
                    lat, lon = lat_lon_of(vector / np.linalg.norm(vector))
                    lat, lon = float(lat), float(lon)
                else:
                    lat = lon = np.nan
            else:
                area_km2 = lat = lon = np.nan
            r0, c0, r1, c1 = region.bbox
            cy, cx = region.centroid
            rows.append(
                (i, k, cy, cx, int(region.area), area_km2, float(counts_px.mean()),
                 float(counts_px.max()), float(np.nanmean(excess_px)),
                 float(np.nanmax(excess_px)), lat, lon, r0, c0, r1, c1)
            )  # fmt: skip
        counts[i] = k
    table = pd.DataFrame(rows, columns=["frame", *PATCH_COLUMNS[2:]])
    table["frame"] = table["frame"].astype(np.int64)
    return _typed(table), counts


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    ints = {"patch": "int32", "area_px": "int32"}
    ints.update({c: "int16" for c in ("bbox_row0", "bbox_col0", "bbox_row1", "bbox_col1")})
    floats = [c for c in PATCH_COLUMNS if c not in ints and c not in ("site", "time")]
    for c in ints:
        if c in table:
            table[c] = table[c].astype(ints[c])
    for c in floats:
        if c in table:
            table[c] = table[c].astype("float64")
    return table
