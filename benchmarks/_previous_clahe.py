"""The compiled preprocessing kernel as it was before issue 32 (main at b6098e7), kept so that
``python -m benchmarks.kernels`` measures the kernel before and after in the same run.

Not used by the package; ``tests/preprocessing`` holds the current kernel to OpenCV and to the
numpy kernel, and ``benchmarks.kernels`` checks that this one gives the same output.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: 1.5 * 2**23: adding and subtracting it rounds a float32 in [0, 2**22) to an integer, half to
#: even (IEEE round-to-nearest), as ``cvRound`` and ``np.rint`` do, without a call
_ROUND = np.float32(12582912.0)


@njit(nogil=True, boundscheck=False)
def clahe_u8_masked_stack(
    frames,  # (n, rows, cols) uint16
    which,  # (m,) int64: the frames to process
    clip,  # int: a tile's histogram is clipped at this count
    tiles_y,
    tiles_x,
    ycell,  # (rows,) int64: interpolation cell of each pixel row, 0 .. tiles_y
    ya,  # (rows,) float32: weight of the lower of the two tile rows
    ya1,  # (rows,) float32: 1 - ya
    xcell,  # (cols,) int64, and so on along columns
    xa,
    xa1,
    lut_scale,  # float32: 65535 / tile area, as OpenCV computes it
    to_u8,  # (65536,) uint8: cv2.convertScaleAbs(arange(65536), alpha=255/65535)
    keep,  # (rows, cols) bool: the field of view
    out,  # (m, rows, cols) float32: 8-bit values inside the field of view, 0 outside
):
    """CLAHE → 8 bits → field-of-view mask of frame ``which[j]``, as float32 into ``out[j]``.

    Only for frames that the tile grid divides (no padding); the caller falls back to the
    numpy kernel otherwise. An interpolation cell is a block of pixels between the same four
    tile centres (OpenCV's ``y1, y2, x1, x2``): cell ``cy`` lies between tile rows
    ``max(cy - 1, 0)`` and ``min(cy, tiles_y - 1)``.
    """
    n_frames, rows, cols = frames.shape
    tile_h = rows // tiles_y
    tile_w = cols // tiles_x
    area = tile_h * tile_w
    n_tiles = tiles_y * tiles_x
    hist_size = 65536
    rank_of = np.empty(hist_size, np.int32)
    values = np.empty(hist_size, np.int32)
    idx = np.empty((rows, cols), np.int32)
    lut = np.empty(n_tiles * min(hist_size, rows * cols), np.float32)
    hist = np.zeros(min(hist_size, rows * cols), np.int32)
    cells_y, cells_x = tiles_y + 1, tiles_x + 1
    cell_lo = np.empty((cells_y, cells_x), np.int64)
    cell_hi = np.empty((cells_y, cells_x), np.int64)
    # rows and columns where each cell starts (cells are runs of equal ycell / xcell)
    row_start = np.full(cells_y + 1, rows, np.int64)
    for r in range(rows - 1, -1, -1):
        row_start[ycell[r]] = r
    for cy in range(cells_y - 1, -1, -1):
        if row_start[cy] > row_start[cy + 1]:
            row_start[cy] = row_start[cy + 1]
    col_start = np.full(cells_x + 1, cols, np.int64)
    for c in range(cols - 1, -1, -1):
        col_start[xcell[c]] = c
    for cx in range(cells_x - 1, -1, -1):
        if col_start[cx] > col_start[cx + 1]:
            col_start[cx] = col_start[cx + 1]
    for j in range(which.shape[0]):
        frame = frames[which[j]]
        # 1. ranks of the frame's distinct values
        rank_of[:] = 0
        for r in range(rows):
            for c in range(cols):
                rank_of[frame[r, c]] = 1
        n_values = 0
        for v in range(hist_size):
            if rank_of[v]:
                values[n_values] = v
                rank_of[v] = n_values
                n_values += 1
        # the ranks each cell interpolates at: those of its pixels in the field of view
        cell_lo[:, :] = n_values
        cell_hi[:, :] = -1
        for r in range(rows):
            cy = ycell[r]
            for c in range(cols):
                k = rank_of[frame[r, c]]
                idx[r, c] = k
                if keep[r, c]:
                    cx = xcell[c]
                    if k < cell_lo[cy, cx]:
                        cell_lo[cy, cx] = k
                    if k > cell_hi[cy, cx]:
                        cell_hi[cy, cx] = k
        # 2.-3. per tile: clipped histogram over ranks, redistribution, look-up table at the
        # ranks its four cells read (a third of the frame's ranks, on THEMIS frames)
        for ty in range(tiles_y):
            for tx in range(tiles_x):
                lo = n_values
                hi = -1
                for cy in range(ty, ty + 2):
                    for cx in range(tx, tx + 2):
                        if cell_lo[cy, cx] < lo:
                            lo = cell_lo[cy, cx]
                        if cell_hi[cy, cx] > hi:
                            hi = cell_hi[cy, cx]
                if hi < lo:
                    continue  # no pixel in the field of view reads this table
                r0, r1 = ty * tile_h, (ty + 1) * tile_h
                c0, c1 = tx * tile_w, (tx + 1) * tile_w
                # clipped counts, one pixel at a time: -hist[k] = min(count of k, clip)
                total = 0
                below = 0
                for r in range(r0, r1):
                    for c in range(c0, c1):
                        k = idx[r, c]
                        counted = np.int32(-hist[k] < clip)  # no branch: half mispredict
                        hist[k] -= counted
                        total += counted
                        below += counted * (k < lo)
                clipped = area - total
                batch = clipped // hist_size
                residual = clipped - batch * hist_size
                step = hist_size // residual if residual > 0 else hist_size
                if step < 1:
                    step = 1
                # residual bins at values 0, step, 2 step, ... (residual of them) at or below
                # each present value: counted as the values rise, no division per value
                n_res = 0
                if residual > 0:
                    n_res = values[lo] // step + 1
                    if n_res > residual:
                        n_res = residual
                next_bin = n_res * step
                running = below
                base = (ty * tiles_x + tx) * n_values
                for k in range(lo, hi + 1):
                    value = values[k]
                    running -= hist[k]
                    while n_res < residual and next_bin <= value:
                        n_res += 1
                        next_bin += step
                    s = np.float32(running + batch * (value + 1) + n_res)
                    lut[base + k] = (s * lut_scale + _ROUND) - _ROUND
                for r in range(r0, r1):
                    for c in range(c0, c1):
                        hist[idx[r, c]] = 0
        # 4. bilinear interpolation between the four tables of each cell, 8 bits, mask
        dest = out[j]
        for cy in range(cells_y):
            t1 = max(cy - 1, 0) * tiles_x
            t2 = min(cy, tiles_y - 1) * tiles_x
            for cx in range(cells_x):
                u1 = max(cx - 1, 0)
                u2 = min(cx, tiles_x - 1)
                b11 = (t1 + u1) * n_values
                b12 = (t1 + u2) * n_values
                b21 = (t2 + u1) * n_values
                b22 = (t2 + u2) * n_values
                for r in range(row_start[cy], row_start[cy + 1]):
                    wa = ya[r]
                    wa1 = ya1[r]
                    for c in range(col_start[cx], col_start[cx + 1]):
                        if not keep[r, c]:
                            dest[r, c] = 0.0
                            continue
                        k = idx[r, c]
                        top = lut[b11 + k] * xa1[c]
                        top = top + lut[b12 + k] * xa[c]
                        top = top * wa1
                        bottom = lut[b21 + k] * xa1[c]
                        bottom = bottom + lut[b22 + k] * xa[c]
                        bottom = bottom * wa
                        rounded = ((top + bottom) + _ROUND) - _ROUND
                        dest[r, c] = np.float32(to_u8[np.int64(rounded)])
