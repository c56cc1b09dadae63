"""Elevation maps: a real skymap .sav, .npy files, arrays, circles, per-site maps."""

from __future__ import annotations

import numpy as np
import pytest

import auroradask
from auroradask.preprocessing._preprocess import field_of_view
from tests.support.utils import SKYMAP, open_sample


@pytest.fixture(scope="module")
def elevation():
    return auroradask.read_skymap(SKYMAP)["elevation"].values


def test_read_skymap_gives_elevation_azimuth_and_site():
    skymap = auroradask.read_skymap(SKYMAP)
    assert skymap["elevation"].shape == (256, 256) and skymap["azimuth"].shape == (256, 256)
    assert skymap.attrs["site"] == "atha" and skymap.attrs["imager"] == "themis02"
    assert skymap.attrs["latitude"] == pytest.approx(54.60, abs=0.01)
    assert skymap.attrs["longitude"] == pytest.approx(-113.64, abs=0.01)
    assert np.nanmax(skymap["elevation"].values) == pytest.approx(89.7, abs=0.1)


def test_sav_and_npy_give_the_same_mask(tmp_path, elevation):
    npy = tmp_path / "atha_elevation.npy"
    np.save(npy, elevation)
    frames = open_sample()
    from_sav = auroradask.preprocess(frames, elevation=SKYMAP).values
    from_npy = auroradask.preprocess(frames, elevation=str(npy)).values
    from_array = auroradask.preprocess(frames, elevation=elevation).values
    np.testing.assert_array_equal(from_sav, from_npy)
    np.testing.assert_array_equal(from_sav, from_array)
    fov = field_of_view(elevation, 15)
    assert fov.sum() == np.sum(elevation >= 15)
    assert not fov[np.isnan(elevation)].any()
