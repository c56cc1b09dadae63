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
import tests.support.synthetic_sky as sky
from auroradask._schema import FRAME_SHAPE
from auroradask.errors import ArgumentError
from auroradask.patchtracking import PatchOptions
from auroradask.patchtracking._detect import detect_frames, running_background, threshold_mask
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


def test_a_region_of_min_area_pixels_is_kept_and_measured():
    """A 9-pixel and a 10-pixel blob: the default ``min_area`` (that of ``patches``, 10)
    keeps exactly the second; each column of its row is the blob's, pixel by pixel."""
    rows, cols, excess = _blob(100, 100, 10, 300.0)
    frames, background = _planted([_blob(40, 40, 9, 300.0), (rows, cols, excess)])
    table, counts = detect_frames(frames, background, EVERYWHERE, threshold=100.0, smooth=0)
    assert PatchOptions().min_area == 10
    assert counts.tolist() == [1]
    (row,) = table.itertuples()
    assert row.area_px == 10
    assert (row.row, row.col) == pytest.approx((rows.mean(), cols.mean()))
    assert row.mean_excess == pytest.approx(excess.mean())
    assert row.peak_excess == pytest.approx(excess.max())
    assert row.mean_counts == pytest.approx(BG + excess.mean())
    assert row.peak_counts == pytest.approx(BG + excess.max())
    assert (row.bbox_row0, row.bbox_col0, row.bbox_row1, row.bbox_col1) == (100, 100, 103, 104)
    both, counts = detect_frames(
        frames, background, EVERYWHERE, threshold=100.0, smooth=0, min_area=9
    )
    assert counts.tolist() == [2] and sorted(both["area_px"]) == [9, 10]


def test_a_pixel_exactly_on_the_threshold_is_not_patch():
    """ "Above" the threshold is strict, for a number of counts and for ``relative``; the
    relative level is ``relative`` × background (0.1 by default), never below ``floor``."""
    bg = np.full((1, 5), BG)
    fov = np.ones((1, 5), bool)
    excess = np.array([[99.0, 100.0, 101.0, 200.0, 201.0]])
    assert threshold_mask(excess, bg, fov, 100.0).tolist() == [[False, False, True, True, True]]
    assert threshold_mask(excess, bg, fov, "relative").tolist() == [
        [False, False, True, True, True]
    ]
    relative = threshold_mask(excess, bg, fov, "relative", relative=0.2)
    assert relative.tolist() == [[False, False, False, False, True]]
    floored = threshold_mask(excess, bg, fov, "relative", floor=200.0)
    assert floored.tolist() == [[False, False, False, False, True]]


def test_otsu_on_a_frame_it_cannot_split():
    """No pixel in the field of view, or every pixel the same excess: no patch (Otsu has
    no two classes), not an error; noise below ``floor`` is no patch either."""
    bg = np.full((8, 8), BG)
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 50, (8, 8))
    nothing = threshold_mask(noise, bg, np.zeros((8, 8), bool), "otsu")
    assert nothing.shape == (8, 8) and not nothing.any()
    flat = threshold_mask(np.full((8, 8), 700.0), bg, np.ones((8, 8), bool), "otsu")
    assert flat.shape == (8, 8) and not flat.any()
    assert not threshold_mask(noise, bg, np.ones((8, 8), bool), "otsu", floor=500.0).any()
    assert threshold_mask(noise, bg, np.ones((8, 8), bool), "otsu").any()  # no floor: split


@pytest.mark.parametrize("threshold", ["bogus", True, None, "Otsu"])
def test_the_kernel_refuses_a_threshold_it_does_not_know(threshold):
    excess = np.zeros((4, 4))
    with pytest.raises(ArgumentError, match="^threshold"):
        threshold_mask(excess, excess, np.ones((4, 4), bool), threshold)


def test_running_background_none_and_default_window():
    """``"none"``: zeros; the default window is ``patches``' (21 frames: ten either side)."""
    stack = np.full((30, 2, 3), 1000.0, np.float32)
    stack[0] = 10.0
    none = running_background(stack, "none")
    assert none.shape == stack.shape and not none.any()
    assert PatchOptions().window == 21
    low = running_background(stack)[:, 0, 0]
    assert low[:11].tolist() == [10.0] * 11 and low[11:].tolist() == [1000.0] * 19


@pytest.mark.parametrize("lost", [None, 7])
def test_running_median_of_every_frame(lost):
    """The running median of each frame over its window, truncated at both ends of the stack,
    with and without a NaN (lost) frame: each frame against ``np.nanmedian`` of its window."""
    rng = np.random.default_rng(2)
    stack = rng.normal(1000, 50, (12, 5, 6)).astype(np.float32)
    if lost is not None:
        stack[lost] = np.nan
    got = running_background(stack, "median", 5)
    for i in range(12):
        expected = np.nanmedian(stack[max(0, i - 2) : i + 3], axis=0)
        np.testing.assert_allclose(got[i], expected, rtol=1e-6, err_msg=f"frame {i}")


def test_table_dtypes_also_when_no_patch_is_found():
    """The compact dtypes of the table (int32 counts of pixels, int16 boxes, float64 measures),
    also for an empty table, where pandas alone would give ``object`` columns."""
    expected = {
        "frame": "int64", "patch": "int32", "row": "float64", "col": "float64",
        "area_px": "int32", "area_km2": "float64", "mean_counts": "float64",
        "peak_counts": "float64", "mean_excess": "float64", "peak_excess": "float64",
        "latitude": "float64", "longitude": "float64", "bbox_row0": "int16",
        "bbox_col0": "int16", "bbox_row1": "int16", "bbox_col1": "int16",
    }  # fmt: skip
    frames, background = _planted([_blob(100, 100, 12, 300.0)])
    for frame in (frames, background):  # a patch; none
        table, _ = detect_frames(frame, background, EVERYWHERE, threshold=100.0, smooth=0)
        assert {c: str(t) for c, t in table.dtypes.items()} == expected


def test_position_of_a_patch_of_tiny_pixels():
    """Pixels of 0.05 km (a small patch's km²-weighted vector is far shorter than 1): the
    centroid's latitude/longitude are still those of its centre pixel."""
    geometry, _ = sky.flat_geometry(km_per_px=0.05)
    rows, cols = np.indices((5, 5))
    frames, background = _planted([(rows.ravel() + 60, cols.ravel() + 80, 500.0)])
    table, _ = detect_frames(
        frames, background, EVERYWHERE, threshold=100.0, smooth=0, geometry=geometry
    )
    (row,) = table.itertuples()
    assert row.area_km2 == pytest.approx(25 * 0.05**2, rel=1e-3)
    lat, lon = lat_lon_of(geometry.xyz[:, 62, 82])
    assert (row.latitude, row.longitude) == pytest.approx((lat, lon), abs=1e-6)  # 0.1 m


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
