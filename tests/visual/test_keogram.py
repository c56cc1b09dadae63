"""Keograms: the zenith column of every real frame, north at row 0 for stream0 and CDF frames
alike, and along the meridian of a real skymap at the right elevations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cdflib
import dask.array as da
import numpy as np
import pytest
import xarray as xr

import auroradask
from auroradask.errors import ArgumentError
from auroradask.visual._keogram import keogram_axis, magnetic_azimuth
from tests.support.utils import GAKO_SKYMAP, SKYMAP, open_sample

DATA = Path(__file__).parents[1] / "data"
CDF = DATA / "thg_l1_asf_gako_2011010617_v01.cdf"


@pytest.fixture(scope="module")
def frames():
    return open_sample(chunk_minutes=2)


@pytest.fixture(scope="module")
def images(frames):
    return frames["images"].values


@pytest.fixture(scope="module")
def cdf_frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("cdf") / "asi"
    (root / "gako/2011/01").mkdir(parents=True)
    shutil.copy(CDF, root / "gako/2011/01" / CDF.name)
    return auroradask.open_themis_cdf(root, "gako", "2011-01-06T17:00", "2011-01-06T17:02")


def test_keogram_is_the_zenith_column_of_each_frame(frames, images):
    keo = auroradask.keogram(frames)
    assert isinstance(keo.data, da.Array)  # lazy
    assert keo.dims == ("site", "time", "keogram_row") and keo.dtype == np.uint16
    assert keo.chunks[1] == frames["images"].chunks[1]  # one task per frames chunk
    values = keo.values
    assert values.shape == (1, 120, 256)
    # every frame of the real sample: the centre column, row 0 (north) first
    np.testing.assert_array_equal(values, images[:, :, :, 128])
    assert keo.attrs["direction"] == "north-south" and keo.attrs["first_end"] == "N"
    np.testing.assert_array_equal(keo["pixel_row"].values[0], np.arange(256))


def test_east_west_keogram_is_the_centre_row(frames, images):
    keo = auroradask.keogram(frames, direction="east-west")
    np.testing.assert_array_equal(keo.values, images[:, :, 128, :])
    assert (keo.attrs["first_end"], keo.attrs["last_end"]) == ("E", "W")


def test_cdf_keogram_has_north_first_as_stream0(cdf_frames):
    """CDF frames are stored turned by 180°; the keogram's row 0 is north for them too."""
    raw = cdflib.CDF(str(CDF)).varget("thg_asf_gako")
    keo = auroradask.keogram(cdf_frames).isel(site=0)
    ok = cdf_frames["frame_status"].values[0] == 0
    assert ok.sum() == 23
    # the raw CDF frame turned back: the column at x=128 is the raw column 127, bottom first
    np.testing.assert_array_equal(keo.values[ok], raw[:, ::-1, 127])
    # and its first rows look north on the real Gakona skymap (the camera is turned ~20°)
    skymap = auroradask.read_skymap(GAKO_SKYMAP)
    azimuth = skymap["azimuth"].values[keo["pixel_row"].values, keo["pixel_col"].values]
    first = azimuth[5:60]
    assert np.all((first < 45) | (first > 315)), first
    last = azimuth[-60:-5]
    assert np.all(np.abs(last - 180) < 45), last


def test_skymap_keogram_samples_the_meridian_at_the_right_elevations(cdf_frames):
    skymap = auroradask.read_skymap(GAKO_SKYMAP)
    keo = auroradask.keogram(cdf_frames, skymap=skymap, min_elevation=15, rows=201)
    elevation, azimuth = skymap["elevation"].values, skymap["azimuth"].values
    rows, cols = keo["pixel_row"].values[0], keo["pixel_col"].values[0]
    np.testing.assert_allclose(keo["elevation"].values[[0, 100, 200]], [15, 90, 15], atol=1e-5)
    # each sample is the pixel nearest its direction: within a pixel's size (< 1.5°)
    np.testing.assert_allclose(elevation[rows, cols], keo["elevation"].values, atol=1.5)
    north, south = slice(0, 90), slice(111, 201)
    az_north = (azimuth[rows[north], cols[north]] + 180) % 360 - 180
    assert np.abs(az_north).max() < 2.0, az_north
    assert np.abs(azimuth[rows[south], cols[south]] - 180).max() < 2.0
    # the values are the frames' pixels there
    images = cdf_frames["images"].values[0]
    np.testing.assert_array_equal(keo.values[0], images[:, rows, cols])
    assert keo.attrs["keogram_line"] == "skymap"
    assert json.loads(keo.attrs["azimuth"]) == {"gako": 0.0}


def test_skymap_keogram_on_synthetic_frames_of_known_elevation(frames):
    """Frames whose counts are 100 × the pixel's elevation: the keogram gives the elevation
    profile back, rising to 90° at the zenith and falling on the other side."""
    skymap = auroradask.read_skymap(SKYMAP)
    counts = np.nan_to_num(skymap["elevation"].values * 100).astype(np.uint16)
    synthetic = frames.isel(time=slice(0, 4)).copy()
    synthetic["images"] = (
        ("site", "time", "y", "x"),
        da.broadcast_to(counts, (1, 4, 256, 256), chunks=(1, 2, 256, 256)),
    )
    keo = auroradask.keogram(synthetic, skymap=SKYMAP, azimuth=30, direction="east-west")
    profile = keo.values[0, 0] / 100.0
    np.testing.assert_allclose(profile, keo["elevation"].values, atol=1.2)
    sky_az = skymap["azimuth"].values[keo["pixel_row"].values[0], keo["pixel_col"].values[0]]
    assert np.abs(sky_az[10:100] - 30).max() < 3  # azimuth given: the first end is at 30°
    assert np.abs(sky_az[-100:-10] - 210).max() < 3


def test_magnetic_meridian(cdf_frames):
    gako = auroradask.read_skymap(GAKO_SKYMAP)
    lat, lon = gako.attrs["latitude"], gako.attrs["longitude"]
    when = cdf_frames["time"].values[0]
    north = magnetic_azimuth(lat, lon, when)
    # at Gakona (62.4 N, 145 W) AACGM-v2 magnetic north lies east of geographic north
    assert 5 < north < 40, north
    keo = auroradask.keogram(cdf_frames, skymap=gako, azimuth="magnetic")
    assert json.loads(keo.attrs["azimuth"])["gako"] == pytest.approx(north, abs=1e-3)
    ew = auroradask.keogram(cdf_frames, skymap=gako, azimuth="magnetic", direction="east-west")
    assert json.loads(ew.attrs["azimuth"])["gako"] == pytest.approx((north + 90) % 360, abs=1e-3)


def test_axis_labels_from_attributes_alone(frames):
    keo = auroradask.keogram(frames, skymap=SKYMAP, min_elevation=20)
    bare = xr.DataArray(np.zeros((1, 1, 256)), dims=keo.dims, attrs=keo.attrs)
    axis = keogram_axis(bare)  # what a stored keogram has: its attributes
    assert axis["label"] == "elevation" and axis["ends"] == ("N", "S")
    labels = dict(zip(axis["ticklabels"], axis["ticks"], strict=True))
    assert labels["90°"] == pytest.approx(127.5) and labels["20° N"] == pytest.approx(0)
    assert labels["20° S"] == pytest.approx(255)
    pixel = keogram_axis(auroradask.keogram(frames))
    assert pixel["label"] == "pixel row (at column 128)" and pixel["ticks"][0] == 0


def test_bad_arguments(frames):
    with pytest.raises(ArgumentError, match="direction"):
        auroradask.keogram(frames, direction="up-down")
    with pytest.raises(ArgumentError, match="needs a skymap"):
        auroradask.keogram(frames, azimuth=20)
    with pytest.raises(ArgumentError, match="needs a skymap"):
        auroradask.keogram(frames, azimuth="magnetic")
    with pytest.raises(ArgumentError, match="azimuth"):
        auroradask.keogram(frames, skymap=SKYMAP, azimuth="geomagnetic")
    with pytest.raises(ArgumentError, match="rows"):
        auroradask.keogram(frames, rows=1)
    with pytest.raises(ArgumentError, match="images"):
        auroradask.keogram(frames.drop_vars("images"))
    with pytest.raises(ArgumentError, match="no skymap given"):
        auroradask.keogram(frames, skymap={"fsmi": SKYMAP})


def test_classify_adds_the_keogram_from_the_same_read(frames, images):
    results = auroradask.classify(frames, auroradask.demo_model())
    keo = results["keogram"]
    assert keo.dims == ("site", "time", "keogram_row") and keo.dtype == np.uint16
    assert keo.chunks[:2] == results["label"].chunks  # written chunk by chunk with the labels
    assert set(keo.coords) == {"site", "time", "keogram_row", "imager", "latitude", "longitude"}
    # the keogram's reading tasks are the classification's: one read of each chunk
    layers = results["label"].data.dask.layers
    reads = {k for k in keo.data.dask.layers if k.startswith("read-themis-")}
    assert reads and reads <= set(layers)
    np.testing.assert_array_equal(keo.values, images[:, :, :, 128])
    assert "keogram" not in auroradask.classify(frames, auroradask.demo_model(), keogram=False)
    ew = auroradask.classify(frames, auroradask.demo_model(), keogram={"direction": "east-west"})
    np.testing.assert_array_equal(ew["keogram"].values, images[:, :, 128, :])


def test_stored_keogram_equals_the_keogram_of_the_archive(tmp_path):
    """classify → to_zarr → open_results: the stored keogram is the archive's, slot for slot,
    with its attributes (which draw its axis) and zeros where nothing was written."""
    path = tmp_path / "store.zarr"
    auroradask.to_zarr(
        auroradask.classify(open_sample(chunk_minutes=1), auroradask.demo_model()), path
    )
    stored = auroradask.open_results(path)
    assert stored["keogram"].dims == ("site", "time", "keogram_row")
    assert stored["keogram"].dtype == np.uint16
    computed = auroradask.keogram(open_sample())
    np.testing.assert_array_equal(
        stored["keogram"].sel(time=computed["time"]).values, computed.values
    )
    np.testing.assert_array_equal(stored["keogram_row"].values, np.arange(256))
    for key in ("direction", "first_end", "last_end", "keogram_line"):
        assert stored["keogram"].attrs[key] == computed.attrs[key]
    unwritten = stored["frame_status"].values[0] < 0
    assert unwritten.sum() == 28_800 - 120 and (stored["keogram"].values[0, unwritten] == 0).all()


def test_plot_keogram_draws_north_up_on_a_ut_axis(frames, images):
    from matplotlib.figure import Figure

    keo = auroradask.keogram(frames)
    fig = auroradask.plot_keogram(keo)
    (ax, colorbar) = fig.axes
    shown = np.ma.filled(np.ma.asarray(ax.images[0].get_array(), dtype=float), np.nan)
    np.testing.assert_array_equal(shown, images[0, :, :, 128].T.astype(float))  # row 0 first
    extent = ax.images[0].get_extent()
    assert extent[2] > extent[3]  # row 0 (north) at the top
    assert {t.get_text() for t in ax.texts} == {"N", "S"}
    assert ax.get_xlabel() == "UT, 2014-03-10 06:00:00 to 2014-03-10 06:06:00"
    assert ax.get_title() == "gill: keogram (north-south)"
    mine = Figure().subplots(1, 2)
    assert auroradask.plot_keogram(keo.isel(site=0), ax=mine[1]) is mine[1]
    assert len(mine[1].images) == 1 and len(mine[0].images) == 0
    with pytest.raises(ArgumentError, match=r"^keo: expected a keogram"):
        auroradask.plot_keogram(frames["images"])
    two = xr.concat([keo, keo.assign_coords(site=["atha"])], "site")
    with pytest.raises(ArgumentError, match=r"^site: the keogram holds sites"):
        auroradask.plot_keogram(two)
    assert auroradask.plot_keogram(two, site="atha").axes[0].get_title().startswith("atha")
