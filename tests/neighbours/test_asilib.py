"""The bridge to asilib (``auroradask.to_asilib``): the Imager it builds is the one asilib
builds from the same files, its pixels map where the skymaps say, and asilib's own map and
conjunction tools see auroradask's frames. The tests that need asilib are skipped without it
(``conftest.py``); the argument checks and the missing-asilib message run everywhere."""

from __future__ import annotations

import sys
from pathlib import Path

import dask
import matplotlib
import numpy as np
import pandas as pd
import pytest

import auroradask
from auroradask.errors import ArgumentError
from tests.support.utils import GAKO_SKYMAP, SKYMAP, open_sample

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

pytestmark = pytest.mark.neighbours

CDF = Path(__file__).parents[1] / "data" / "thg_l1_asf_gako_2011010617_v01.cdf"


@pytest.fixture(scope="module")
def atha_for_gill():
    # the real Athabasca skymap standing in for Gillam's (the sample's site), as elsewhere
    return auroradask.read_skymap(SKYMAP).assign_attrs(site="gill")


@pytest.fixture(scope="module")
def gako():
    """Gakona's frames (the L1 CDF test file) and Gakona's own skymap: a real pair."""
    frames = auroradask.open_themis_cdf(CDF, "gako", "2011-01-06T17:00", "2011-01-06T17:02")
    return frames, auroradask.read_skymap(GAKO_SKYMAP)


def _times(imager_times) -> np.ndarray:
    return np.array([np.datetime64(t, "ns") for t in imager_times])


def test_imager_equals_the_one_asilib_builds_from_the_same_files(
    asilib_themis_imager, atha_for_gill
):
    ours = auroradask.to_asilib(open_sample(chunk_minutes=2), atha_for_gill)
    theirs = asilib_themis_imager
    assert isinstance(ours, type(theirs))
    times, images = ours.data
    their_times, their_images = theirs.data
    np.testing.assert_array_equal(_times(times), _times(their_times))
    np.testing.assert_array_equal(images, their_images)
    for key in ("lat", "lon", "el", "az"):
        np.testing.assert_allclose(ours.skymap[key], theirs.skymap[key], atol=1e-4, err_msg=key)
    assert ours.skymap["alt"] == theirs.skymap["alt"] == 110
    for key in ("array", "location", "cadence", "resolution", "alt"):
        assert ours.meta[key] == theirs.meta[key], key
    assert ours.meta["lat"] == pytest.approx(theirs.meta["lat"])
    assert ours.meta["lon"] == pytest.approx(theirs.meta["lon"], abs=1e-4)


@pytest.mark.usefixtures("asilib")  # skipped where asilib is missing
def test_images_are_the_frames_flipped_north_south():
    frames = open_sample(chunk_minutes=2)
    sky = auroradask.read_skymap(SKYMAP).assign_attrs(site="gill")
    times, images = auroradask.to_asilib(frames, sky).data
    expected = frames.isel(site=0).compute()
    np.testing.assert_array_equal(images, expected["images"].values[:, ::-1, :])
    np.testing.assert_array_equal(_times(times), expected["timestamp"].values)


@pytest.mark.usefixtures("asilib")  # skipped where asilib is missing
@pytest.mark.parametrize("alt", [90, 110, 150])
@pytest.mark.parametrize("which", ["atha", "gako"])
def test_a_pixels_lat_lon_is_the_skymaps(which, alt, atha_for_gill, gako):
    frames, sky = (open_sample(), atha_for_gill) if which == "atha" else gako
    imager = auroradask.to_asilib(frames, sky, alt=alt)
    level = list(sky["map_altitude"].values).index(alt * 1000)
    corner_lat = sky["map_latitude"].values[level]
    corner_lon = sky["map_longitude"].values[level]
    elevation = sky["elevation"].values
    in_view = np.argwhere(elevation > 15)
    assert len(in_view) > 10_000
    one = imager[pd.Timestamp(frames["time"].values[3]).to_pydatetime()]
    _, image = one.data
    frame = frames["images"].isel(site=0, time=3).values
    for y, x in in_view[:: len(in_view) // 50]:
        row = 255 - y  # asilib's row of auroradask's row y (north-south flipped)
        # a pixel's four corners; asilib's corner rows run the other way round
        lat = imager.skymap["lat"][row : row + 2, x : x + 2][::-1]
        lon = imager.skymap["lon"][row : row + 2, x : x + 2][::-1]
        np.testing.assert_array_equal(lat, corner_lat[y : y + 2, x : x + 2])
        np.testing.assert_array_equal(lon, corner_lon[y : y + 2, x : x + 2])
        assert imager.skymap["el"][row, x] == elevation[y, x]
        assert image[row, x] == frame[y, x]
    assert -180 <= np.nanmin(imager.skymap["lon"]) and np.nanmax(imager.skymap["lon"]) <= 180


def test_asilibs_conjunction_finds_the_pixel_under_a_footprint(asilib, gako):
    # a footprint at 110 km above the centre of a pixel at ~50 degrees elevation: asilib maps
    # it to (azimuth, elevation) from the site's position and finds the nearest pixel by the
    # skymap's az/el; the intensity it reads there must be auroradask's count at that pixel
    frames, sky = gako
    imager = auroradask.to_asilib(frames, sky)
    y, x = np.argwhere(np.abs(sky["elevation"].values - 50) < 0.3)[0]
    level = list(sky["map_altitude"].values).index(110_000)
    lat = float(np.mean(sky["map_latitude"].values[level, y : y + 2, x : x + 2]))
    lon = float(np.mean(sky["map_longitude"].values[level, y : y + 2, x : x + 2]))
    times, _ = imager.data
    track = (np.asarray(times), np.tile([lat, lon, 110.0], (len(times), 1)))
    conjunction = asilib.Conjunction(imager, track)
    _, pixels = conjunction.map_azel()
    col, row = pixels[0].astype(int)  # asilib gives (x, y) in its own orientation
    assert abs(row - (255 - y)) <= 1 and abs(col - x) <= 1
    intensity = conjunction.intensity()
    ok = frames["frame_status"].isel(site=0).values == 0  # the frames the Imager has
    counts = frames["images"].isel(site=0).values[ok, 255 - row, col]
    assert len(counts) == len(times) > 10
    np.testing.assert_array_equal(intensity, counts)


@pytest.mark.usefixtures("asilib")  # skipped where asilib is missing
def test_asilibs_map_draws_the_frame_on_the_skymaps_grid(gako):
    frames, sky = gako
    imager = auroradask.to_asilib(frames, sky)
    ok = np.flatnonzero(frames["frame_status"].isel(site=0).values == 0)
    index = int(ok[len(ok) // 2])
    time = pd.Timestamp(frames["timestamp"].values[0, index]).to_pydatetime()
    fig, ax = plt.subplots()
    try:
        ax, mesh = imager[time].plot_map(ax=ax, min_elevation=10)
        drawn = np.asarray(mesh.get_array()).reshape(256, 256)
        vertices = mesh.get_coordinates()  # (257, 257, [lon, lat])
    finally:
        plt.close(fig)
    # the frame drawn is auroradask's, north-south flipped
    np.testing.assert_array_equal(drawn, frames["images"].isel(site=0, time=index).values[::-1])
    # on the skymap's own pixel corners at 110 km where the sky is above 10 degrees (asilib
    # moves the corners below it onto the edge of the field of view)
    level = list(sky["map_altitude"].values).index(110_000)
    corner_lat = sky["map_latitude"].values[level][::-1]
    corner_lon = sky["map_longitude"].values[level][::-1]
    high = np.zeros((257, 257), bool)
    high[:256, :256] = sky["elevation"].values[::-1] >= 10
    assert high.sum() > 10_000
    np.testing.assert_array_equal(vertices[..., 0][high], corner_lon[high])
    np.testing.assert_array_equal(vertices[..., 1][high], corner_lat[high])


@pytest.mark.usefixtures("asilib")  # skipped where asilib is missing
def test_nothing_is_read_until_asilib_asks_and_then_one_chunk(atha_for_gill):
    frames = open_sample(chunk_minutes=2)

    def refuse(*args, **kwargs):
        raise AssertionError("to_asilib computed something")

    with dask.config.set(scheduler=refuse):
        imager = auroradask.to_asilib(frames, atha_for_gill)
    assert list(imager.file_info["path"]) == [
        "gill/2014-03-10T06:00:00",
        "gill/2014-03-10T06:02:00",
        "gill/2014-03-10T06:04:00",
    ]
    times, images = imager.file_info["loader"]("gill/2014-03-10T06:02:00")
    assert len(times) == len(images) == 40
    assert times[0].minute == 2 and times[-1].minute == 3


@pytest.mark.usefixtures("asilib")  # skipped where asilib is missing
def test_frames_that_are_not_ok_are_left_out(atha_for_gill):
    frames = open_sample().compute()
    status = frames["frame_status"].values.copy()
    status[0, [4, 5]] = 3  # frame_missing
    frames["frame_status"] = (frames["frame_status"].dims, status)
    times, images = auroradask.to_asilib(frames, atha_for_gill).data
    assert len(times) == len(images) == 118
    keep = np.r_[0:4, 6:120]
    np.testing.assert_array_equal(_times(times), frames["timestamp"].values[0, keep])


def test_bad_arguments_are_named(atha_for_gill):
    # checked before asilib is imported: runs without it too
    frames = open_sample()
    with pytest.raises(ArgumentError, match=r"alt: 120 km .* 90, 110, 150 km"):
        auroradask.to_asilib(frames, atha_for_gill, alt=120)
    with pytest.raises(ArgumentError, match="skymap: .*of site 'atha', not of 'gill'"):
        auroradask.to_asilib(frames, auroradask.read_skymap(SKYMAP))
    with pytest.raises(ArgumentError, match=r"skymap: expected .*read_skymap"):
        auroradask.to_asilib(frames, SKYMAP)
    with pytest.raises(ArgumentError, match="site: the frames have no site 'atha'"):
        auroradask.to_asilib(frames, atha_for_gill, site="atha")
    with pytest.raises(ArgumentError, match="frames: .*missing \\['images'\\]"):
        auroradask.to_asilib(frames.drop_vars("images"), atha_for_gill)
    two = frames.reindex(site=["gill", "fsmi"])
    with pytest.raises(ArgumentError, match="site: the frames hold sites"):
        auroradask.to_asilib(two, atha_for_gill)


def test_without_asilib_the_error_says_how_to_install_it(atha_for_gill, monkeypatch):
    monkeypatch.setitem(sys.modules, "asilib", None)  # as if it were not installed
    with pytest.raises(ImportError, match="pip install asilib"):
        auroradask.to_asilib(open_sample(), atha_for_gill)
