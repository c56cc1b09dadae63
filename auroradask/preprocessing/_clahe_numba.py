"""The compiled per-frame preprocessing kernel (numba): CLAHE, 8-bit scaling and the mask, fused.

Imported on first use only (``auroradask.preprocessing._preprocess`` imports it inside its functions): numba
itself takes most of a second to import (0.8 s on the shared 2-core development machine),
which ``import auroradask`` should not pay.
The functions are compiled once per machine and cached beside this file (``cache=True``, in
``__pycache__``, or in ``NUMBA_CACHE_DIR`` where the package folder is read-only), so a worker
process loads the machine code instead of compiling it (its first call took 0.4 s against
2.6 s after an install, on the 2-core development machine: benchmarks/README.md).

The arithmetic is that of :func:`auroradask.preprocessing._clahe.clahe_uint16` (which documents the
rank-based method and why it equals OpenCV bit for bit), done frame by frame in one pass over
memory with no temporary arrays: the ranks of the frame's distinct values, each tile's clipped
cumulative histogram over those ranks with OpenCV's redistribution written in closed form
(``batch * (value + 1) + min(residual, value // step + 1)`` added at each present value), the
float32 look-up tables, and the float32 bilinear interpolation in OpenCV's order of operations,
rounded half to even. A row of interpolation cells is interpolated as soon as the two rows of
tiles it reads are done, so only two rows of tables are kept (a ring of 16 tables: about 400 kB
on THEMIS frames, which stays in a core's L2 cache, where 64 tables did not), and each table
is built in two passes: the running count (a prefix sum, sequential) and then the residual
bins and the scaling, which carry no dependency from one rank to the next (issue 32: 1.10x
the one-pass kernel, median of 3 runs of ``python -m benchmarks.kernels`` on a quiet 2-core
AMD EPYC; benchmarks/README.md). The 8-bit scaling goes through a 65,536-entry table made by
``cv2.convertScaleAbs`` itself, so it is OpenCV's rounding by construction.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: 1.5 * 2**23: adding and subtracting it rounds a float32 in [0, 2**22) to an integer, half to
#: even (IEEE round-to-nearest), as ``cvRound`` and ``np.rint`` do, without a call
_ROUND = np.float32(12582912.0)

#: OpenCV's histogram size for 16-bit images
_HIST_SIZE = 65536


@njit(cache=True, nogil=True, boundscheck=False)
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
    rows, cols = frames.shape[1:]
    tile_h = rows // tiles_y
    tile_w = cols // tiles_x
    n_max = min(_HIST_SIZE, rows * cols)  # at most this many distinct values in a frame
    rank_of = np.empty(_HIST_SIZE, np.int32)
    values = np.empty(_HIST_SIZE, np.int32)
    idx = np.empty((rows, cols), np.int32)
    lut = np.empty(2 * tiles_x * n_max, np.float32)  # two rows of tiles' tables: a ring
    hist = np.zeros(n_max, np.int32)
    running = np.empty(n_max, np.int32)
    cell_lo = np.empty((tiles_y + 1, tiles_x + 1), np.int64)
    cell_hi = np.empty((tiles_y + 1, tiles_x + 1), np.int64)
    row_start = _cell_starts(ycell, tiles_y + 1)
    col_start = _cell_starts(xcell, tiles_x + 1)
    for j in range(which.shape[0]):
        frame = frames[which[j]]
        n_values = _ranks(frame, rank_of, values)
        _cell_ranges(frame, rank_of, idx, keep, ycell, xcell, cell_lo, cell_hi, n_values)
        for ty in range(tiles_y + 1):
            if ty < tiles_y:  # 2.-3. this row's tables, into its half of the ring
                for tx in range(tiles_x):
                    lo = n_values  # the ranks its four cells read, in the field of view
                    hi = -1
                    for cy in range(ty, ty + 2):
                        for cx in range(tx, tx + 2):
                            lo = min(lo, cell_lo[cy, cx])
                            hi = max(hi, cell_hi[cy, cx])
                    if hi < lo:
                        continue  # no pixel in the field of view reads this table
                    base = ((ty % 2) * tiles_x + tx) * n_values
                    r0, c0 = ty * tile_h, tx * tile_w
                    _tile_table(
                        idx[r0 : r0 + tile_h, c0 : c0 + tile_w],
                        values,
                        hist,
                        running,
                        lo,
                        hi,
                        clip,
                        lut_scale,
                        lut[base : base + n_values],
                    )
            # 4. cell row ty reads tile rows ty - 1 and ty (clamped): both are in the ring
            top_row = (max(ty - 1, 0) % 2) * tiles_x
            bottom_row = (min(ty, tiles_y - 1) % 2) * tiles_x
            for cx in range(tiles_x + 1):
                left, right = max(cx - 1, 0), min(cx, tiles_x - 1)
                _interpolate_cell(
                    idx,
                    keep,
                    lut,
                    n_values,
                    (top_row + left) * n_values,
                    (top_row + right) * n_values,
                    (bottom_row + left) * n_values,
                    (bottom_row + right) * n_values,
                    row_start[ty],
                    row_start[ty + 1],
                    col_start[cx],
                    col_start[cx + 1],
                    ya,
                    ya1,
                    xa,
                    xa1,
                    to_u8,
                    out[j],
                )


@njit(cache=True, nogil=True, boundscheck=False)
def _cell_starts(cell, n_cells):
    """Where each interpolation cell starts along one axis (cells are runs of equal ``cell``);
    an empty cell starts where the next one does."""
    n = cell.shape[0]
    start = np.full(n_cells + 1, n, np.int64)
    for i in range(n - 1, -1, -1):
        start[cell[i]] = i
    for k in range(n_cells - 1, -1, -1):
        if start[k] > start[k + 1]:
            start[k] = start[k + 1]
    return start


@njit(cache=True, nogil=True, boundscheck=False)
def _ranks(frame, rank_of, values):
    """1. The ranks of the frame's distinct values: ``rank_of[v]`` for every value present,
    ``values[k]`` the value of rank ``k``; returns how many there are."""
    rows, cols = frame.shape
    rank_of[:] = 0
    for r in range(rows):
        for c in range(cols):
            rank_of[frame[r, c]] = 1
    n_values = 0
    for v in range(_HIST_SIZE):
        if rank_of[v]:
            values[n_values] = v
            rank_of[v] = n_values
            n_values += 1
    return n_values


@njit(cache=True, nogil=True, boundscheck=False)
def _cell_ranges(frame, rank_of, idx, keep, ycell, xcell, cell_lo, cell_hi, n_values):
    """Each pixel's rank into ``idx``, and the lowest and highest rank each interpolation cell
    reads inside the field of view (a table is built only over the ranks its cells read)."""
    rows, cols = frame.shape
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


@njit(cache=True, nogil=True, boundscheck=False)
def _tile_table(tile, values, hist, running, lo, hi, clip, lut_scale, table):
    """2.-3. One tile's look-up table at ranks ``lo .. hi``: its histogram over ranks clipped at
    ``clip``, OpenCV's redistribution of the clipped counts, the cumulative sum, scaled and
    rounded. ``hist`` is all zeros on entry and on return."""
    tile_h, tile_w = tile.shape
    total = 0
    below = 0
    for r in range(tile_h):  # clipped counts, one pixel at a time: -hist[k] = min(count, clip)
        for c in range(tile_w):
            k = tile[r, c]
            counted = np.int32(-hist[k] < clip)  # no branch: it would mispredict half the time
            hist[k] -= counted
            total += counted
            below += counted * (k < lo)
    clipped = tile_h * tile_w - total
    batch = clipped // _HIST_SIZE  # added to every one of the 65,536 bins
    residual = np.int64(clipped - batch * _HIST_SIZE)  # one more at bins 0, step, 2 step, ...
    step = max(_HIST_SIZE // residual if residual > 0 else _HIST_SIZE, 1)
    # v // step for v, step <= 65536, exactly, by a multiply and a shift (no division per rank)
    magic = np.uint64(((1 << 32) + step - 1) // step)
    count = below  # pass 1: the running clipped count at each rank, a prefix sum
    for k in range(lo, hi + 1):
        count -= hist[k]
        running[k - lo] = count
    for k in range(lo, hi + 1):  # pass 2: no dependency from one rank to the next
        value = np.int64(values[k])
        n_residual = min(residual, np.int64((np.uint64(value) * magic) >> np.uint64(32)) + 1)
        s = np.float32(np.int64(running[k - lo]) + batch * (value + 1) + n_residual)
        table[k] = (s * lut_scale + _ROUND) - _ROUND
    for r in range(tile_h):
        for c in range(tile_w):
            hist[tile[r, c]] = 0


@njit(cache=True, nogil=True, boundscheck=False)
def _interpolate_cell(
    idx, keep, lut, n_values, b11, b12, b21, b22, r0, r1, c0, c1, ya, ya1, xa, xa1, to_u8, dest
):
    """4. Bilinear interpolation between the four tables (at ``lut[b..]``) of one cell, in
    OpenCV's order of operations, then 8 bits and the mask."""
    for r in range(r0, r1):
        wa = ya[r]
        wa1 = ya1[r]
        for c in range(c0, c1):
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
