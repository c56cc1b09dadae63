"""Preprocessing on the real sample: the published sequence exactly, field of view, presets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import xarray as xr

import auroradask
from auroradask.preprocessing import _preprocess
from auroradask.preprocessing._preprocess import (
    _preprocess_frames_reference,
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
def elevation():
    return auroradask.read_skymap(SKYMAP)["elevation"].values


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


def test_an_empty_selection_of_time_gives_no_frames_not_an_error():
    # a chunk of no slots once failed in _per_fov ("need at least one array to concatenate")
    empty = open_sample().isel(time=slice(0, 0))
    assert auroradask.preprocess(empty).compute().shape == (1, 0, 224, 224, 3)
