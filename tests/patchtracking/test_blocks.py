"""The lazy layer of ``patches``: a series shorter than half the background window."""

from __future__ import annotations

import numpy as np

import auroradask
import tests.support.synthetic_sky as sky

N_FRAMES = 24
SITES = ["atha", "fsmi", "gill"]


def test_a_series_shorter_than_half_a_window():
    """Six frames (18 s) and the default window of 21: the background is that of the six,
    as the kernels give it, whatever the chunks (dask refused the overlap of 10 frames)."""
    from auroradask.patchtracking._detect import detect_frames, running_background
    from auroradask.preprocessing._preprocess import field_of_view
    from auroradask.skymaps._skymap import circle_elevation

    frames = sky.render(sky.default_patches(), 6)
    stack = frames.astype(np.float32)
    fov = field_of_view(circle_elevation(), 15.0)
    _, expected = detect_frames(stack, running_background(stack, "min", 21), fov, floor=500.0)
    assert expected.max() > 0
    for chunk in (3, 6):
        result = auroradask.patches(sky.dataset(frames, chunk=chunk))
        np.testing.assert_array_equal(result.counts.values[0], expected, err_msg=str(chunk))
