"""Preprocessing on the real sample: the published sequence exactly, field of view, presets."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import xarray as xr

import auroradask
from auroradask.errors import ArgumentError
from auroradask.preprocessing import _preprocess
from auroradask.preprocessing._preprocess import (
    _preprocess_frames_reference,
    bounding_box,
    clahe_to_uint8,
    field_of_view,
    get_preset,
    preprocess_frames,
    published_sequence,
)
from tests.support.utils import HOUR_DIR, SKYMAP, open_sample


def reference_sequence(raw: np.ndarray, elevation: np.ndarray, clip=3.0, grid=(8, 8)):
    """The published sequence, frame by frame; NaN elevation (no sky) is outside the view."""
    fov = field_of_view(elevation, 15)
    return np.stack([published_sequence(v, fov, clip, grid) for v in raw])


@pytest.fixture(scope="module")
def raw():
    return open_sample().images.values[0]


@pytest.fixture(scope="module")
def first_frames():
    """The first 6 frames: the quick checks read these, not all 120 (seconds a run)."""
    return open_sample().images.isel(time=slice(0, 6)).values[0]


@pytest.fixture(scope="module")
def elevation():
    return auroradask.read_skymap(SKYMAP)["elevation"].values


# ------------- presets, field of view, inputs refused (quick: first, so that a mutant fails fast)


@pytest.mark.parametrize(
    "params",
    [
        {"clip_limit": 0},
        {"tile_grid": (8, 8, 8)},
        {"tile_grid": (0, 8)},
        {"size": (224,)},
        {"size": (224, 0)},
        {"channels": 2},
        {"dtype": "float64"},
    ],
)
def test_a_bad_preset_parameter_is_named(params):
    name = next(iter(params))
    with pytest.raises(ArgumentError, match=f"^preset: {name} must be"):
        get_preset("themis-pa", **params)
    with pytest.raises(ArgumentError, match=f"^preset: {name} must be"):
        get_preset({**get_preset().to_dict(), **params})


def test_presets_at_the_limits_and_from_their_json():
    smallest = get_preset(clip_limit=0.01, tile_grid=[1, 1], size=[1, 1], channels=1)
    assert (smallest.tile_grid, smallest.size, smallest.channels) == ((1, 1), (1, 1), 1)
    pfrr = get_preset("pfrr-pa", crop=True)
    assert get_preset(json.loads(pfrr.to_json())) == pfrr
    with pytest.raises(ArgumentError, match=r"^preset: unknown parameters \['clip'\]"):
        get_preset({"clip": 3})
    with pytest.raises(ArgumentError, match=r"^preset: unknown parameters \['clip'\]"):
        get_preset("themis-pa", clip=3)


def test_field_of_view_keeps_a_pixel_on_the_threshold_and_drops_no_sky():
    elevation = np.array([[14.99, 15.0, 15.01, np.nan]], dtype=np.float32)
    np.testing.assert_array_equal(field_of_view(elevation, 15), [[False, True, True, False]])


def test_bounding_box_of_the_real_field_of_view_and_of_none(elevation):
    assert bounding_box(field_of_view(elevation, 15)) == (slice(20, 235), slice(21, 228))
    with pytest.raises(ArgumentError, match="^field of view: no pixel"):
        bounding_box(np.zeros((4, 4), dtype=bool))


@pytest.mark.parametrize("frames", [np.zeros((2, 8, 8), np.uint8), np.zeros((8, 8), np.uint16)])
def test_frames_that_are_not_a_uint16_stack_are_refused(frames):
    with pytest.raises(ArgumentError, match="^frames: expected"):
        clahe_to_uint8(frames)
    with pytest.raises(ArgumentError, match="^frames: expected"):
        preprocess_frames(frames, np.ones((8, 8), dtype=bool), get_preset())


def test_non_square_tile_grids_equal_the_published_sequence(first_frames, elevation):
    # OpenCV's tileGridSize is (cols, rows); (3, 8) and (8, 3) do not divide 256 one way
    fov = field_of_view(elevation, 15)
    for grid in ((2, 8), (3, 8), (8, 3)):
        got = preprocess_frames(first_frames[:2], fov, get_preset(tile_grid=grid))
        expected = np.stack([published_sequence(v, fov, 3.0, grid) for v in first_frames[:2]])
        np.testing.assert_array_equal(got, expected, err_msg=str(grid))


def test_a_single_valid_frame_is_preprocessed(first_frames, elevation):
    fov = field_of_view(elevation, 15)
    valid = np.arange(6) == 4
    got = preprocess_frames(first_frames, fov, get_preset(), valid)
    np.testing.assert_array_equal(got[4], published_sequence(first_frames[4], fov))
    assert got[4].max() > 0 and not got[~valid].any()


# ------------------------------------------------- the published sequence, lazily


def test_themis_pa_equals_the_published_sequence(raw, elevation):
    got = auroradask.preprocess(open_sample(chunk_minutes=2), "themis-pa", elevation=SKYMAP)
    assert got.dims == ("site", "time", "row", "col", "channel")
    assert got.shape == (1, 120, 224, 224, 3) and got.dtype == np.float32
    expected = reference_sequence(raw, elevation)
    np.testing.assert_array_equal(got.values[0], expected)  # exactly, as the README promises
    assert 0 < expected.max() <= 255


def test_crop_takes_the_field_of_view_box(raw, elevation):
    fov = elevation >= 15
    rows, cols = np.flatnonzero(fov.any(axis=1)), np.flatnonzero(fov.any(axis=0))
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (20, 234, 21, 227)
    got = auroradask.preprocess(open_sample(), elevation=SKYMAP, crop=True).values[0]
    u8 = clahe_to_uint8(raw[:3])
    for i in range(3):
        box = (u8[i].astype(np.float32) * fov)[20:235, 21:228]
        np.testing.assert_array_equal(got[i, ..., 0], cv2.resize(box, (224, 224)))


def test_invalid_frames_stay_zero_and_get_no_clahe(sample_copy, monkeypatch):
    (sample_copy / HOUR_DIR / "20140310_0603_gill_themis19_full.pgm.gz").write_bytes(b"junk")
    frames = open_sample(sample_copy)
    applied = []
    kernel = _preprocess._clahe_u8_masked

    def counting(frames, which, *args):
        applied.extend(which)
        return kernel(frames, which, *args)

    monkeypatch.setattr(_preprocess, "_clahe_u8_masked", counting)
    out = auroradask.preprocess(frames, elevation="circle").compute(scheduler="sync").values[0]
    assert len(applied) == 100
    assert (out[60:80] == 0).all()
    assert (out[:60].reshape(60, -1).max(axis=1) > 0).all()


def test_chunk_sizes_do_not_change_the_output():
    outputs = [auroradask.preprocess(open_sample(chunk_minutes=c)).values for c in (1, 3, 10)]
    np.testing.assert_array_equal(outputs[0], outputs[1])
    np.testing.assert_array_equal(outputs[0], outputs[2])


def test_presets_and_overrides_are_recorded(raw, elevation):
    frames = open_sample()
    pfrr = auroradask.preprocess(frames, "pfrr-pa", elevation=SKYMAP)
    assert get_preset("pfrr-pa").clip_limit == 300
    expected = reference_sequence(raw[:5], elevation, clip=300)
    np.testing.assert_array_equal(pfrr.values[0, :5], expected)
    grid = auroradask.preprocess(frames, elevation=SKYMAP, tile_grid=(4, 4), min_elevation=20)
    assert '"tile_grid": [4, 4]' in grid.attrs["preset"]
    assert '"min_elevation": 20' in grid.attrs["preset"]
    np.testing.assert_array_equal(
        grid.values[0, :2],
        reference_sequence(raw[:2], np.where(elevation >= 20, 90, 0), grid=(4, 4)),
    )
    small = auroradask.preprocess(frames, size=(64, 96), channels=1, dtype="uint8")
    assert small.shape == (1, 120, 64, 96, 1) and small.dtype == np.uint8


def test_per_site_elevation_maps(elevation):
    one = open_sample()
    two = xr.concat([one, one.assign_coords(site=["copy"])], dim="site")
    out = auroradask.preprocess(two, elevation={"gill": SKYMAP, "copy": "circle"})
    np.testing.assert_array_equal(
        out.values[0], auroradask.preprocess(one, elevation=SKYMAP).values[0]
    )
    np.testing.assert_array_equal(out.values[1], auroradask.preprocess(one).values[0])
    with pytest.raises(ValueError, match="^elevation: no map given for sites \\['copy'\\]"):
        auroradask.preprocess(two, elevation={"gill": SKYMAP})


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"preset": "nope"}, ValueError, "^preset: unknown preset"),
        ({"clip_limit": -1}, ValueError, "^preset: clip_limit"),
        ({"elevation": np.zeros((10, 10))}, ValueError, "^elevation"),
        ({"elevation": "/no/such/skymap.sav"}, FileNotFoundError, "^skymap"),
        ({"elevation": "/no/such/map.npy"}, FileNotFoundError, "^elevation"),
        ({"elevation": "map.txt"}, ValueError, "^elevation"),
        ({"min_elevation": 95}, ValueError, "^field of view"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        auroradask.preprocess(open_sample(), **kwargs).compute()


# ------------------------------------------------- the compiled kernel against the numpy one


@pytest.mark.parametrize(
    "params",
    [
        {},  # themis-pa: clip 3 on 32x32 tiles clips at 1, the residual bins carry the excess
        {"clip_limit": 300.0},  # pfrr-pa: counts clipped at 4
        {"clip_limit": 1e6},  # nothing clipped: no redistribution at all
        {"clip_limit": 40.0, "tile_grid": (2, 8)},
        {"tile_grid": (1, 1)},  # one tile: every pixel between the same table
        {"crop": True, "size": (100, 150)},
        {"channels": 1, "dtype": "uint8"},
        {"tile_grid": (3, 5)},  # does not divide 256: padded, through the numpy kernel
    ],
)
def test_compiled_kernel_equals_the_numpy_kernel_on_every_real_frame(raw, elevation, params):
    preset = get_preset("themis-pa", **params)
    fov = field_of_view(elevation, preset.min_elevation)
    valid = np.ones(len(raw), dtype=bool)
    valid[[3, 50, 51]] = False
    got = preprocess_frames(raw, fov, preset, valid)
    np.testing.assert_array_equal(got, _preprocess_frames_reference(raw, fov, preset, valid))
    assert (got[[3, 50, 51]] == 0).all() and got.max() > 0


def test_compiled_kernel_equals_the_numpy_kernel_on_synthetic_frames():
    rng = np.random.default_rng(20141205)
    frames = {
        "noise": rng.integers(0, 65536, (3, 256, 256)),
        "four levels": rng.integers(0, 4, (2, 256, 256)) * 1000,
        "saturated and zero": np.stack([np.full((256, 256), 65535), np.zeros((256, 256))]),
        # a 512x512 tile clips more than 65,536 counts: whole batches added to every value
        "three levels, big tile": rng.integers(0, 3, (2, 512, 512)) * 7,
        "three levels far apart, big tile": rng.integers(0, 3, (2, 512, 512)) * 30000,
        # not square: 8 tiles divide 240 columns (compiled), not 250 rows (padded, numpy)
        "240 columns": rng.integers(0, 65536, (2, 256, 240)),
        "250 rows": rng.integers(0, 65536, (2, 250, 256)),
    }
    for name, stack in frames.items():
        stack = stack.astype(np.uint16)
        size = stack.shape[1:]
        fov = np.hypot(*np.mgrid[: size[0], : size[1]] - size[0] / 2) < size[0] * 0.45
        for params in ({}, {"clip_limit": 40.0, "tile_grid": (1, 1)}, {"clip_limit": 300.0}):
            preset = get_preset("themis-pa", size=(224, 224), **params)
            got = preprocess_frames(stack, fov, preset)
            expected = _preprocess_frames_reference(stack, fov, preset)
            np.testing.assert_array_equal(got, expected, err_msg=f"{name} {params}")


def test_one_channel_is_the_three_channel_output_s_first(raw, elevation):
    fov = field_of_view(elevation, 15)
    three = preprocess_frames(raw[:4], fov, get_preset("themis-pa"))
    one = preprocess_frames(raw[:4], fov, get_preset("themis-pa"), channels=1)
    assert one.shape == (4, 224, 224, 1)
    np.testing.assert_array_equal(three, np.broadcast_to(one, three.shape))


def test_lazy_frames_in_memory_split_or_two_sites_a_chunk_give_the_same_output():
    one = open_sample().isel(time=slice(0, 6))
    expected = auroradask.preprocess(one).values
    two = xr.concat([one, one.assign_coords(site=["copy"])], dim="site")
    variants = {
        "in memory": one.load(),
        "frames split in four": one.chunk({"y": 128, "x": 128}),
        "one chunk of three slots": one.chunk({"time": 3}),
    }
    for name, frames in variants.items():
        got = auroradask.preprocess(frames).values
        np.testing.assert_array_equal(got, expected, err_msg=name)
    # two sites a chunk, one slot a chunk: each slot gets its own site's mask
    both = auroradask.preprocess(
        two.chunk({"site": 2, "time": 1}), elevation={"gill": SKYMAP, "copy": "circle"}
    )
    np.testing.assert_array_equal(both.values[1], expected[0])
    pair = two.isel(time=slice(0, 2)).chunk({"site": 2, "time": 1})  # as many slots as sites
    got = auroradask.preprocess(pair, elevation={"gill": SKYMAP, "copy": "circle"}).values
    np.testing.assert_array_equal(got, both.values[:, :2])
    np.testing.assert_array_equal(
        both.values[0], auroradask.preprocess(one, elevation=SKYMAP).values[0]
    )


def test_an_empty_selection_of_time_gives_no_frames_not_an_error():
    # a chunk of no slots once failed in _per_fov ("need at least one array to concatenate")
    empty = open_sample().isel(time=slice(0, 0))
    assert auroradask.preprocess(empty).compute().shape == (1, 0, 224, 224, 3)
