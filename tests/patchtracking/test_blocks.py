"""The lazy layer of ``patches`` (``_patches``): several sites in one chunk of frames, each
with its own field of view and geometry, give each site exactly what it gives alone, in
``patches`` and in ``patch_counts``; the options (bounds, defaults, attributes); a series
shorter than half the background window.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import auroradask
import tests.support.synthetic_sky as sky
from auroradask.errors import ArgumentError
from auroradask.patchtracking import PatchOptions
from auroradask.patchtracking._detect import PATCH_COLUMNS, detect_frames, running_background
from auroradask.preprocessing._preprocess import field_of_view
from auroradask.skymaps._skymap import circle_elevation

N_FRAMES = 24
SITES = ["atha", "fsmi", "gill"]


def _site_frames(frames: np.ndarray) -> dict[str, np.ndarray]:
    """The same sky seen three ways: as is, upside down, mirrored (other patch positions)."""
    return {"atha": frames, "fsmi": frames[:, ::-1], "gill": frames[:, :, ::-1]}


@pytest.mark.parametrize("site_chunk", [3, 1])
def test_sites_in_one_chunk_each_get_their_own_patches(site_chunk):
    """Three sites in one chunk, or a chunk each: each gets what it gets alone."""
    frames = _site_frames(sky.render(sky.default_patches(), N_FRAMES, seed=4))
    geometry, _ = sky.flat_geometry(km_per_px=2.0)
    elevation = {"atha": 110.0, "fsmi": "circle", "gill": 95.0}  # three fields of view
    skymap = {"atha": geometry, "fsmi": None, "gill": geometry}
    bad = {"atha": (), "fsmi": (5, 6), "gill": (17,)}
    alone = {s: sky.dataset(frames[s], site=s, chunk=8, bad=bad[s]) for s in SITES}  # one site each
    together = xr.concat(list(alone.values()), "site").chunk({"site": site_chunk, "time": 8})
    assert together.images.data.numblocks[:2] == (3 // site_chunk, 3)
    result = auroradask.patches(together, elevation=elevation, skymap=skymap)
    counts = auroradask.patch_counts(together, elevation=elevation, skymap=skymap).values
    np.testing.assert_array_equal(counts, result.counts.values)
    for k, s in enumerate(SITES):
        one = auroradask.patches(alone[s], elevation=elevation[s], skymap=skymap[s])
        np.testing.assert_array_equal(result.counts.values[k], one.counts.values[0], err_msg=s)
        assert (one.counts.values[0, list(bad[s])] == -1).all()
        assert one.counts.values[0].max() > 0
        got = result.table[result.table["site"] == s].drop(columns="track")
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True), one.table.drop(columns="track"), obj=s
        )
    assert result.table.columns.tolist() == [*PATCH_COLUMNS, "track"]  # the documented order
    assert result.table[result.table["site"] == "fsmi"]["latitude"].isna().all()
    assert result.table[result.table["site"] != "fsmi"]["latitude"].notna().all()


def test_patch_counts_defaults_are_those_of_patches():
    """``patch_counts`` without options detects as ``patches`` does by default (its
    docstring says so): every field of ``PatchOptions`` defaults to ``patches``' default."""
    defaults = inspect.signature(auroradask.patches).parameters
    options = PatchOptions()
    for name, value in options.__dict__.items():
        assert value == defaults[name].default, name
    assert defaults["max_gap"].default == 3 and defaults["max_distance"].default == 6.0


def test_patch_counts_record_their_options():
    frames = sky.dataset(sky.render(sky.default_patches(), 6), chunk=3)
    counts = auroradask.patch_counts(frames)
    assert counts.attrs["patch_relative"] == "none"  # None has no netCDF form
    assert counts.attrs["patch_threshold"] == "otsu" and counts.attrs["patch_window"] == 21
    assert counts.attrs["patch_altitude_km"] == 110.0
    assert counts.dtype == np.int16 and counts.chunks == ((1,), (3, 3))


def test_a_series_shorter_than_half_a_window():
    """Six frames (18 s) and the default window of 21: the background is that of the six,
    as the kernels give it, whatever the chunks (dask refused the overlap of 10 frames)."""
    frames = sky.render(sky.default_patches(), 6)
    stack = frames.astype(np.float32)
    fov = field_of_view(circle_elevation(), 15.0)
    _, expected = detect_frames(stack, running_background(stack, "min", 21), fov, floor=500.0)
    assert expected.max() > 0
    for chunk in (3, 6):
        result = auroradask.patches(sky.dataset(frames, chunk=chunk))
        np.testing.assert_array_equal(result.counts.values[0], expected, err_msg=str(chunk))


def test_options_at_their_bounds():
    """A window of two frames and patches of one pixel are allowed; a window of one frame (the
    frame itself as its background: never a patch) and zero are not."""
    assert PatchOptions(window=2, min_area=1).check() == PatchOptions(window=2, min_area=1)
    for kwargs, name in [
        ({"window": 1}, "window"),
        ({"window": 0}, "window"),
        ({"min_area": 0}, "min_area"),
    ]:
        with pytest.raises(ArgumentError, match=f"^{name}"):
            PatchOptions(**kwargs).check()
    for kwargs, name in [
        ({"window": 5.0}, "window"),
        ({"min_area": 2.0}, "min_area"),
        ({"background": "mean"}, "background"),
        ({"threshold": "Otsu"}, "threshold"),
    ]:
        with pytest.raises(ArgumentError, match=f"^{name}"):
            PatchOptions(**kwargs).check()
    assert PatchOptions(threshold=250.0).check().threshold == 250.0


@pytest.mark.parametrize("window", [3, 5])
def test_short_windows_are_the_kernels_running_minimum(window):
    """A window of 3 or 5 frames (one or two either side) over chunks of 4: the counts the
    kernels give with that running minimum."""
    frames = sky.render(sky.default_patches(), 12)
    stack = frames.astype(np.float32)
    fov = field_of_view(circle_elevation(), 15.0)
    background = running_background(stack, "min", window)
    _, expected = detect_frames(stack, background, fov, threshold=1000.0)
    result = auroradask.patches(sky.dataset(frames, chunk=4), window=window, threshold=1000.0)
    assert expected.max() > 0
    np.testing.assert_array_equal(result.counts.values[0], expected)
