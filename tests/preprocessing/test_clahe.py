"""The fast CLAHE kernel against OpenCV itself, pixel for pixel."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from auroradask.preprocessing._clahe import clahe_uint16


def opencv(frame, clip_limit, tile_grid):
    return cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=tile_grid[::-1]).apply(frame)


@pytest.fixture(scope="module")
def real_frames(reference):
    """The 120 real Gillam frames of the sample, read by UCalgary's reader (pyucalgarysrs)."""
    return reference[0]


def test_equals_opencv_on_every_real_frame_with_the_themis_preset(real_frames):
    # clip 3 on 32x32 tiles clips every count at 1: the residual bins carry the excess
    for frame in real_frames:
        np.testing.assert_array_equal(clahe_uint16(frame, 3.0, (8, 8)), opencv(frame, 3.0, (8, 8)))


@pytest.mark.parametrize(
    "clip_limit, tile_grid",
    [(300.0, (8, 8)), (40.0, (8, 8)), (1e6, (8, 8)), (3.0, (4, 4)), (3.0, (2, 8)), (2.0, (1, 1))],
)
def test_equals_opencv_on_real_frames_for_other_parameters(real_frames, clip_limit, tile_grid):
    for frame in real_frames[::15]:
        got = clahe_uint16(frame, clip_limit, tile_grid)
        np.testing.assert_array_equal(got, opencv(frame, clip_limit, tile_grid))


def synthetic_frames():
    rng = np.random.default_rng(20141205)
    return {
        "uniform noise": rng.integers(0, 65536, (256, 256)),
        "constant 0": np.zeros((256, 256)),
        "saturated": np.full((256, 256), 65535),
        "four levels": rng.integers(0, 4, (256, 256)) * 1000,
        # one 512x512 tile holds 262144 pixels: the excess exceeds 65536 and is spread in
        # whole batches over every bin as well as in residual bins
        "three levels, big tile": rng.integers(0, 3, (512, 512)) * 7,
        "wide": rng.integers(0, 65536, (64, 96)),
    }


@pytest.mark.parametrize("name", list(synthetic_frames()))
@pytest.mark.parametrize("clip_limit, tile_grid", [(3.0, (8, 8)), (40.0, (1, 1)), (300.0, (4, 2))])
def test_equals_opencv_on_synthetic_frames(name, clip_limit, tile_grid):
    frame = synthetic_frames()[name].astype(np.uint16)
    got = clahe_uint16(frame, clip_limit, tile_grid)
    np.testing.assert_array_equal(got, opencv(frame, clip_limit, tile_grid))


@pytest.mark.parametrize("rows, cols", [(250, 237), (253, 256), (256, 251), (13, 200), (5, 7)])
def test_equals_opencv_when_the_grid_does_not_divide_the_frame(real_frames, rows, cols):
    # OpenCV pads with a mirror border to whole tiles (the last one through OpenCV itself)
    frame = np.ascontiguousarray(real_frames[7][:rows, :cols])
    for clip_limit, tile_grid in [(3.0, (8, 8)), (40.0, (3, 5))]:
        got = clahe_uint16(frame, clip_limit, tile_grid)
        np.testing.assert_array_equal(got, opencv(frame, clip_limit, tile_grid))


def test_rejects_what_opencv_would_not_take():
    with pytest.raises(ValueError, match=r"frame: expected \(rows, cols\) uint16"):
        clahe_uint16(np.zeros((4, 4), np.float32), 3.0, (8, 8))
    with pytest.raises(ValueError, match="frame: expected"):
        clahe_uint16(np.zeros((2, 4, 4), np.uint16), 3.0, (8, 8))
    with pytest.raises(ValueError, match="clip_limit must be > 0"):
        clahe_uint16(np.zeros((4, 4), np.uint16), 0, (8, 8))
