"""CLAHE on 16-bit frames, bit for bit OpenCV's ``cv2.createCLAHE(...).apply``, 3× faster.

OpenCV builds, for each of the 64 tiles of a 16-bit frame, a look-up table over all 65,536
possible values (clipped histogram, redistribution, cumulative sum), then interpolates each
pixel between the tables of its four nearest tiles. A 256×256 THEMIS frame holds about
6,500 distinct values, so almost all of that work is for values that never occur. This kernel
does the same arithmetic on the frame's distinct values only:

1. rank the frame's values (``idx``: 0 .. U-1 for the U distinct values);
2. per tile, the clipped histogram over ranks, and the redistributed excess: OpenCV adds
   ``clipped // 65536`` to every bin and one more to the bins ``0, s, 2s, ...`` (``residual``
   of them, ``s = 65536 // residual``); each such bin is counted at the first present value at
   or above it, which leaves the cumulative sum at every present value unchanged;
3. the cumulative sum and ``round(float32(sum) * float32(65535 / tile_area))``, as OpenCV;
4. the same float32 bilinear interpolation between tile tables, in the same order of
   operations, rounded half to even as ``cv::saturate_cast``.

``tests/test_clahe.py`` holds it to OpenCV, pixel for pixel, on the real sample frames and on
synthetic frames that reach every branch (clip limits, grids, sizes the grid does not divide).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from ..errors import ArgumentError

HIST_SIZE = 65536  # OpenCV's histogram size for 16-bit images


def _axis(n: int, size: int, tiles: int):
    """Along one axis of ``n`` pixels in tiles of ``size``: the lower and upper interpolation
    tile of each pixel and their float32 weights, computed as OpenCV computes them."""
    f = np.arange(n, dtype=np.float32) * (np.float32(1.0) / np.float32(size)) - np.float32(0.5)
    lower = np.floor(f).astype(np.int32)
    weight = f - lower.astype(np.float32)
    return (
        np.maximum(lower, 0),
        np.minimum(lower + 1, tiles - 1),
        weight,
        np.float32(1.0) - weight,
    )


@functools.lru_cache(maxsize=16)
def _geometry(shape: tuple[int, int], tile_grid: tuple[int, int]):
    """Tile of every pixel (for the histograms) and interpolation tiles and weights."""
    rows, cols = shape
    tiles_y, tiles_x = tile_grid
    # OpenCV pads both axes when either is not divisible, by a whole number of tiles
    if rows % tiles_y or cols % tiles_x:
        pad = (tiles_y - rows % tiles_y, tiles_x - cols % tiles_x)
    else:
        pad = (0, 0)
    tile_h, tile_w = (rows + pad[0]) // tiles_y, (cols + pad[1]) // tiles_x
    ys, xs = np.arange(rows + pad[0]) // tile_h, np.arange(cols + pad[1]) // tile_w
    tile_of = (ys[:, None] * tiles_x + xs[None, :]).astype(np.int32)

    y1, y2, ya, ya1 = _axis(rows, tile_h, tiles_y)
    x1, x2, xa, xa1 = _axis(cols, tile_w, tiles_x)
    corners = tuple(
        (r[:, None] * tiles_x + c[None, :]).astype(np.int32) for r in (y1, y2) for c in (x1, x2)
    )
    weights = (xa, xa1, ya[:, None], ya1[:, None])
    return pad, tile_h * tile_w, tile_of, corners, weights


def clahe_uint16(frame: np.ndarray, clip_limit: float, tile_grid: tuple[int, int]) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of one 16-bit frame.

    The result equals ``cv2.createCLAHE(clip_limit, tile_grid[::-1]).apply(frame)`` exactly.

    Parameters
    ----------
    frame
        ``(rows, cols)`` uint16.
    clip_limit
        OpenCV's ``clipLimit`` (no default here: the presets own the defaults): a tile's histogram is clipped at
        ``max(int(clip_limit * tile_area / 65536), 1)`` counts per value.
    tile_grid
        (rows, cols) of tiles; note that OpenCV's ``tileGridSize`` is (cols, rows).

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` uint16.
    """
    frame = np.asarray(frame)
    if frame.ndim != 2 or frame.dtype != np.uint16:
        raise ArgumentError(f"frame: expected (rows, cols) uint16, got {frame.shape} {frame.dtype}")
    if not clip_limit > 0:
        raise ArgumentError(f"clip_limit must be > 0, got {clip_limit!r}")
    tiles_y, tiles_x = (int(v) for v in tile_grid)
    pad, area, tile_of, corners, (xa, xa1, ya, ya1) = _geometry(frame.shape, (tiles_y, tiles_x))
    if pad[0] >= frame.shape[0] or pad[1] >= frame.shape[1]:
        # a frame smaller than its padding: rare enough to leave to OpenCV itself
        clahe = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(tiles_x, tiles_y))
        return clahe.apply(frame)
    n_tiles = tiles_y * tiles_x
    clip = max(int(clip_limit * area / HIST_SIZE), 1)
    lut_scale = np.float32(HIST_SIZE - 1) / np.float32(area)

    # 1. ranks of the frame's distinct values
    present = np.bincount(frame.ravel(), minlength=HIST_SIZE) > 0
    at_or_below = np.cumsum(present, dtype=np.int32)  # distinct values <= v
    n_values = int(at_or_below[-1])
    idx = at_or_below[frame]
    idx -= 1

    # 2. clipped histograms over (tile, rank), computed on the padded frame as OpenCV does
    for_lut = np.pad(idx, ((0, pad[0]), (0, pad[1])), mode="reflect") if any(pad) else idx
    keys = (tile_of * n_values + for_lut).ravel()
    if clip == 1:
        hist = np.zeros(n_tiles * n_values, np.int32)
        hist[keys] = 1
    else:
        counts = np.bincount(keys, minlength=n_tiles * n_values)
        hist = np.minimum(counts, clip, out=np.empty(counts.shape, np.int32), casting="unsafe")
    hist = hist.reshape(n_tiles, n_values)
    clipped = area - hist.sum(axis=1)
    batch, residual = np.divmod(clipped, HIST_SIZE)
    if residual.any():
        _add_residual_bins(hist, residual, present, at_or_below)

    # 3. cumulative sums → look-up tables at the present values
    cum = np.cumsum(hist, axis=1, dtype=np.int64 if batch.any() else np.int32)
    if batch.any():
        cum += batch[:, None] * (np.flatnonzero(present)[None, :] + 1)
    lut = cum.astype(np.float32)
    lut *= lut_scale
    np.rint(lut, out=lut)  # in 0..65535 as saturate_cast wants: 0 <= cum <= area
    lut = lut.ravel()

    # 4. bilinear interpolation between the four nearest tiles, in OpenCV's order
    l11, l12, l21, l22 = (lut[corner * n_values + idx] for corner in corners)
    top = l11 * xa1
    top += l12 * xa
    top *= ya1
    bottom = l21 * xa1
    bottom += l22 * xa
    bottom *= ya
    top += bottom
    np.rint(top, out=top)
    return top.astype(np.uint16)


def _add_residual_bins(
    hist: np.ndarray, residual: np.ndarray, present: np.ndarray, at_or_below: np.ndarray
) -> None:
    """Add OpenCV's residual bins (values 0, s, 2s, ...) at the first present value >= each."""
    n_tiles, n_values = hist.shape
    step = np.maximum(HIST_SIZE // np.maximum(residual, 1), 1)
    tile = np.repeat(np.arange(n_tiles), residual)
    nth = np.arange(tile.size) - np.repeat(np.cumsum(residual) - residual, residual)
    value = nth * step[tile]
    rank = at_or_below[value] - present[value]  # rank of the first present value >= value
    keys = (tile * n_values + rank)[rank < n_values]  # bins above every value are never read
    if keys.size == 0:
        return
    # keys are sorted (tile, then rising values): count repeats without a scatter-add
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    repeats = np.diff(np.r_[starts, keys.size])
    hist.ravel()[keys[starts]] += repeats.astype(hist.dtype)
