"""The detection kernels at their edges, where a patch can be cut, kept or measured wrongly
with no error: a pixel exactly on the threshold, a region exactly ``min_area`` pixels, the
degenerate frames Otsu cannot split, the table's columns measured pixel by pixel, its dtypes
(also when empty), and the centroid's position where the pixels are tiny or partly unmapped.

Frames here are planted by hand (a flat background, blobs of known pixels and counts), so
that every number of a row is known exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

import auroradask
from auroradask._schema import FRAME_SHAPE
from auroradask.patchtracking._detect import detect_frames
from auroradask.preprocessing._preprocess import field_of_view
from auroradask.skymaps._skymap import elevation_map, lat_lon_of
from tests.support.utils import SKYMAP

BG = 1000.0
EVERYWHERE = np.ones(FRAME_SHAPE, bool)


def _planted(blobs: list[tuple[np.ndarray, np.ndarray, np.ndarray]]):
    """One frame: a flat background ``BG`` plus, per blob, ``excess`` counts at (rows, cols)."""
    frame = np.full(FRAME_SHAPE, BG, np.float32)
    for rows, cols, excess in blobs:
        frame[rows, cols] += excess
    return frame[None], np.full_like(frame, BG)[None]


def _blob(row0: int, col0: int, n: int, first_excess: float):
    """``n`` pixels in a row-major 4-wide block from (row0, col0); excess 1, 2, ... counts more
    than ``first_excess`` pixel by pixel."""
    k = np.arange(n)
    return row0 + k // 4, col0 + k % 4, first_excess + k.astype(np.float32)


def test_position_of_a_patch_partly_outside_the_skymap():
    """The real skymap maps the sky above 0° elevation of its own lens, but the ideal circle's
    field of view at 0° reaches pixels it does not map. A patch straddling that edge has the
    km² of its mapped pixels, and its position is theirs (km²-weighted), not NaN: unmapped
    pixels weigh nothing, as in the area."""
    geometry = auroradask.read_patch_geometry(SKYMAP)
    fov = field_of_view(elevation_map("circle")[0], 0.0)
    unmapped = fov & ~np.isfinite(geometry.pixel_km2)
    mapped = fov & np.isfinite(geometry.pixel_km2)
    # a 5 x 5 block holding both: mapped and unmapped pixels of the circle's field of view
    r, c = np.argwhere(unmapped)[0]
    for dr, dc in np.ndindex(9, 9):
        block = (slice(r + dr - 4, r + dr + 1), slice(c + dc - 4, c + dc + 1))
        if fov[block].all() and mapped[block].sum() >= 10 and unmapped[block].sum() >= 3:
            break
    else:
        pytest.fail("no block across the mapping's edge")
    rows, cols = np.indices((5, 5))
    rows, cols = rows.ravel() + block[0].start, cols.ravel() + block[1].start
    frames, background = _planted([(rows, cols, 500.0)])
    table, _ = detect_frames(frames, background, fov, threshold=100.0, smooth=0, geometry=geometry)
    (row,) = table.itertuples()
    ok = np.isfinite(geometry.pixel_km2[rows, cols])
    km2 = geometry.pixel_km2[rows[ok], cols[ok]]
    assert row.area_px == 25 and row.area_km2 == pytest.approx(km2.sum())
    vector = (geometry.xyz[:, rows[ok], cols[ok]] * km2).sum(axis=1)
    lat, lon = lat_lon_of(vector / np.linalg.norm(vector))
    assert (row.latitude, row.longitude) == pytest.approx((lat, lon), abs=1e-9)
