"""Mosaics: frames on the map through the real Athabasca and Gakona skymaps. The mesh drawn
is the skymap's own FULL_MAP_LATITUDE/LONGITUDE at the chosen altitude, each cell holds the
frame's own pixel, the real Gakona frames sit the right way round (the twilight glow towards
the Sun), and outlines take the palette colour of the label."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.path import Path as PolygonPath
from scipy.io import readsav

import auroradask
from auroradask._figure import new_figure
from auroradask._palette import UNUSABLE, class_color
from auroradask.errors import ArgumentError
from auroradask.skymaps import map_mesh
from auroradask.skymaps._projection import mesh_lookup
from tests.support.archive import make_archive
from tests.support.utils import GAKO_SKYMAP, SKYMAP, classify_sample, open_sample

DATA = Path(__file__).parents[1] / "data"
CDF = DATA / "thg_l1_asf_gako_2011010617_v01.cdf"
SKYMAPS = {"atha": SKYMAP, "gako": GAKO_SKYMAP}
#: A slot of the Gakona CDF hour (17:00:09 UT) and of the sample (06:01:30 UT).
CDF_TIME, SAMPLE_TIME = "2011-01-06T17:00:10", "2014-03-10T06:01:31"


def _raw(path: str) -> dict[str, np.ndarray]:
    """The skymap file's own arrays, read here with scipy (not through auroradask)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        record = readsav(path, python_dict=True)["skymap"]
    return {
        name: np.asarray(record[name][0], dtype=np.float64)
        for name in (
            "FULL_MAP_LATITUDE",
            "FULL_MAP_LONGITUDE",
            "FULL_MAP_ALTITUDE",
            "FULL_ELEVATION",
        )
    }


@pytest.fixture(scope="module")
def cdf_frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("cdf") / "asi"
    (root / "gako/2011/01").mkdir(parents=True)
    shutil.copy(CDF, root / "gako/2011/01" / CDF.name)
    return auroradask.open_themis_cdf(root, "gako", "2011-01-06T17:00", "2011-01-06T17:01")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The two real skymaps laid out as UCalgary publishes them."""
    root = tmp_path_factory.mktemp("skymaps")
    for site, date in (("atha", "20230115"), ("gako", "20110305")):
        (root / site / f"{site}_{date}").mkdir(parents=True)
        shutil.copy(SKYMAPS[site], root / site / f"{site}_{date}")
    return root


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory):
    """One real sample minute as atha and as gako, in a time both skymaps are valid."""
    root = tmp_path_factory.mktemp("archive")
    make_archive(root, ["atha", "gako"], "2023-02-02T06:00", hours=1, minutes_per_hour=1)
    return auroradask.open_themis(root, ["atha", "gako"], "2023-02-02T06:00", "2023-02-02T06:01")


def _quadmesh(ax, site):
    return next(c for c in ax.collections if c.get_gid() == f"{site} frame")


def _outline(ax, site):
    return next(line for line in ax.lines if line.get_label() == f"{site} field of view")


def _text(ax, site):
    return next(t for t in ax.texts if t.get_gid() == f"{site} label")


@pytest.mark.parametrize("site", ["atha", "gako"])
def test_the_mesh_is_the_skymaps_own_corners_at_the_altitude_chosen(site):
    raw = _raw(SKYMAPS[site])
    assert list(raw["FULL_MAP_ALTITUDE"]) == [90_000, 110_000, 150_000]
    lat, lon = raw["FULL_MAP_LATITUDE"], raw["FULL_MAP_LONGITUDE"]
    for altitude, index in ((90, 0), (110, 1), (150, 2)):
        mesh = map_mesh(SKYMAPS[site], altitude)
        assert (mesh.index, mesh.altitude) == (index, altitude)
        mapped = np.isfinite(lat[index])
        assert mapped.sum() > 45_000
        np.testing.assert_array_equal(mesh.latitude[mapped], lat[index][mapped])
        # the file's longitudes are 0..360 east: the same meridians
        turn = (mesh.longitude - lon[index] + 180.0) % 360.0 - 180.0
        np.testing.assert_allclose(turn[mapped], 0.0, atol=1e-4)
        # pixels without a mapped corner, or below 10 degrees, are left out
        elevation = raw["FULL_ELEVATION"]
        whole = mapped[:-1, :-1] & mapped[1:, :-1] & mapped[:-1, 1:] & mapped[1:, 1:]
        np.testing.assert_array_equal(mesh.visible, whole & (elevation >= 10))
    # the altitudes differ off the zenith: the index chosen matters
    assert abs(lat[0, 30, 128] - lat[2, 30, 128]) > 0.5


@pytest.mark.parametrize("site", ["atha", "gako"])
def test_the_zenith_pixel_is_over_the_site_and_north_is_row_0(site):
    mesh = map_mesh(SKYMAPS[site])
    raw = _raw(SKYMAPS[site])
    row, col = np.unravel_index(np.nanargmax(raw["FULL_ELEVATION"]), (256, 256))
    # the cell of the zenith pixel holds the site (its four corners around it)
    cell = np.column_stack(
        [
            mesh.longitude[[row, row, row + 1, row + 1], [col, col + 1, col + 1, col]],
            mesh.latitude[[row, row, row + 1, row + 1], [col, col + 1, col + 1, col]],
        ]
    )
    assert PolygonPath(cell).contains_point((mesh.site_longitude, mesh.site_latitude))
    assert mesh.centre_latitude[row, col] == pytest.approx(mesh.site_latitude, abs=0.03)
    # stream0 orientation: north near row 0, east near column 0 (the sky seen from below)
    assert mesh.centre_latitude[40, col] > mesh.site_latitude + 1
    assert mesh.centre_latitude[215, col] < mesh.site_latitude - 1
    assert mesh.centre_longitude[row, 40] > mesh.site_longitude + 2
    assert mesh.centre_longitude[row, 215] < mesh.site_longitude - 2


def test_each_cell_of_the_drawn_mesh_holds_the_frames_own_pixel(cdf_frames):
    fig = new_figure(6, 6)
    ax = fig.subplots()
    out = auroradask.mosaic(cdf_frames, CDF_TIME, skymaps={"gako": GAKO_SKYMAP}, ax=ax)
    assert out is ax
    quad = _quadmesh(ax, "gako")
    raw = _raw(GAKO_SKYMAP)
    corners = quad.get_coordinates()  # (257, 257, 2): longitude, latitude
    mapped = np.isfinite(raw["FULL_MAP_LATITUDE"][1])
    np.testing.assert_array_equal(corners[..., 1][mapped], raw["FULL_MAP_LATITUDE"][1][mapped])
    turn = (corners[..., 0] - raw["FULL_MAP_LONGITUDE"][1] + 180.0) % 360.0 - 180.0
    np.testing.assert_allclose(turn[mapped], 0.0, atol=1e-4)
    # pixel (row, col) of the frame, as the reader gives it, in the cell [row:row+2, col:col+2]
    slot = cdf_frames.sel(time="2011-01-06T17:00:09")
    image = slot["images"].values[0].astype(np.float32)
    drawn = quad.get_array()
    assert drawn.shape == (256, 256)
    visible = ~np.ma.getmaskarray(drawn)
    np.testing.assert_array_equal(visible, map_mesh(GAKO_SKYMAP).visible)
    np.testing.assert_array_equal(drawn[visible], image[visible])


def _sun_azimuth(when: str, lat: float, lon: float) -> float:
    """The Sun's azimuth (degrees east of north), from its declination and hour angle (NOAA's
    low-precision formulas: a degree or so, plenty here)."""
    import pandas as pd

    t = pd.Timestamp(when)
    gamma = 2 * np.pi / 365 * (t.day_of_year - 1 + (t.hour - 12) / 24)
    eot = 229.18 * (
        0.000075
        + 0.001868 * np.cos(gamma)
        - 0.032077 * np.sin(gamma)
        - 0.014615 * np.cos(2 * gamma)
        - 0.040849 * np.sin(2 * gamma)
    )
    decl = 0.006918 - 0.399912 * np.cos(gamma) + 0.070257 * np.sin(gamma)
    solar_minutes = t.hour * 60 + t.minute + eot + 4 * lon
    hour_angle = np.radians(solar_minutes / 4 - 180)
    phi = np.radians(lat)
    north = np.sin(decl) * np.cos(phi) - np.cos(decl) * np.sin(phi) * np.cos(hour_angle)
    east = -np.cos(decl) * np.sin(hour_angle)
    return float(np.degrees(np.arctan2(east, north)) % 360)


def test_the_real_gakona_frame_lies_the_right_way_round_on_the_map(cdf_frames):
    """At 17:00 UT on 2011-01-06 the Sun is 12 degrees below Gakona's horizon, to the
    east-southeast: the twilight glow of the real frame must lie that way on the map (a
    frame turned, mirrored or transposed against its skymap puts it elsewhere)."""
    fig = auroradask.mosaic(cdf_frames, CDF_TIME, skymaps={"gako": GAKO_SKYMAP})
    drawn = _quadmesh(fig.axes[0], "gako").get_array()
    mesh = map_mesh(GAKO_SKYMAP)
    bright = ~np.ma.getmaskarray(drawn) & (drawn >= np.percentile(drawn.compressed(), 98))
    north = mesh.centre_latitude[bright].mean() - mesh.site_latitude
    east = (mesh.centre_longitude[bright].mean() - mesh.site_longitude) * np.cos(
        np.radians(mesh.site_latitude)
    )
    glow = np.degrees(np.arctan2(east, north)) % 360
    sun = _sun_azimuth("2011-01-06T17:00", mesh.site_latitude, mesh.site_longitude)
    assert 110 < sun < 125
    assert abs(glow - sun) < 15, (glow, sun)


def test_the_outline_is_the_elevation_cut():
    mesh = map_mesh(SKYMAP, 110, min_elevation=10)
    ring = PolygonPath(mesh.outline)
    assert np.array_equal(mesh.outline[0], mesh.outline[-1]) and len(mesh.outline) > 200
    elevation = auroradask.read_skymap(SKYMAP)["elevation"].values
    centres = np.column_stack([mesh.centre_longitude.ravel(), mesh.centre_latitude.ravel()])
    inside = ring.contains_points(np.nan_to_num(centres)).reshape(256, 256)
    assert inside[elevation >= 10.5].mean() > 0.999
    assert inside[(elevation < 9.5) & np.isfinite(mesh.centre_latitude)].mean() < 0.001
    assert np.array_equal(mesh.visible, map_mesh(SKYMAP, 110, 10).visible)
    assert map_mesh(SKYMAP, 110, 30).visible.sum() < mesh.visible.sum()


def test_altitude_picks_the_skymaps_grid_and_others_are_refused(cdf_frames):
    raw = _raw(GAKO_SKYMAP)
    for altitude, index in ((90, 0), (150, 2)):
        fig = auroradask.mosaic(
            cdf_frames, CDF_TIME, skymaps={"gako": GAKO_SKYMAP}, altitude=altitude
        )
        corners = _quadmesh(fig.axes[0], "gako").get_coordinates()
        mapped = np.isfinite(raw["FULL_MAP_LATITUDE"][index])
        np.testing.assert_array_equal(
            corners[..., 1][mapped], raw["FULL_MAP_LATITUDE"][index][mapped]
        )
        assert f"mapped at {altitude} km" in fig.axes[0].get_title()
    with pytest.raises(ArgumentError, match=r"altitude: 100 km .* \(it has 90, 110, 150 km\)"):
        auroradask.mosaic(cdf_frames, CDF_TIME, skymaps={"gako": GAKO_SKYMAP}, altitude=100)


@pytest.fixture(scope="module")
def sample_results():
    return classify_sample().compute()


def test_outlines_take_the_colour_of_the_label_with_its_confidence(sample_results):
    frames = open_sample()
    results = sample_results.copy(deep=True)
    k = int(np.flatnonzero(results["time"].values == np.datetime64("2014-03-10T06:01:30"))[0])
    results["label"][0, k] = 3  # plant "pulsating", 0.87
    results["confidence"][0, k] = 0.87
    ax = auroradask.mosaic(
        frames,
        SAMPLE_TIME,
        skymaps={"gill": SKYMAP},
        results=results,
        ax=new_figure(5, 5).subplots(),
    )
    assert to_hex(_outline(ax, "gill").get_color()) == class_color("pulsating") == "#d62728"
    text = _text(ax, "gill")
    assert text.get_text() == "gill: pulsating 0.87"
    assert to_hex(text.get_color()) == class_color("pulsating")
    # the slot before: the demo model's own label
    before = auroradask.mosaic(
        frames, "2014-03-10T06:01:28", skymaps={"gill": SKYMAP}, results=results
    )
    confidence = float(results["confidence"][0, k - 1])
    assert _text(before.axes[0], "gill").get_text() == f"gill: bad_viewing {confidence:.2f}"
    assert to_hex(_outline(before.axes[0], "gill").get_color()) == class_color("bad_viewing")
    # a slot the results say has no frame: grey, said so
    results["frame_status"][0, k] = 1
    fig = auroradask.mosaic(frames, SAMPLE_TIME, skymaps={"gill": SKYMAP}, results=results)
    assert _text(fig.axes[0], "gill").get_text() == "gill: no frame"
    assert to_hex(_outline(fig.axes[0], "gill").get_color()) == UNUSABLE


def test_two_sites_from_a_skymap_tree_each_with_its_label(two_sites, tree, tmp_path):
    results = auroradask.classify(two_sites, auroradask.demo_model()).compute()
    results["label"][:, 10] = [3, 2]  # atha pulsating, gako other_aurora
    when = results["time"].values[10]
    path = tmp_path / "mosaic.png"
    fig = auroradask.mosaic(two_sites, when, skymaps=tree, results=results, path=path, dpi=50)
    assert path.stat().st_size > 10_000
    ax = fig.axes[0]
    assert to_hex(_outline(ax, "atha").get_color()) == class_color("pulsating")
    assert to_hex(_outline(ax, "gako").get_color()) == class_color("other_aurora")
    for site in ("atha", "gako"):  # the tree's skymap of each site: its own corners
        corners = _quadmesh(ax, site).get_coordinates()
        raw = _raw(SKYMAPS[site])["FULL_MAP_LATITUDE"][1]
        np.testing.assert_array_equal(corners[..., 1][np.isfinite(raw)], raw[np.isfinite(raw)])
    # the same with the skymaps given per site
    ax = auroradask.mosaic(two_sites, when, skymaps=SKYMAPS, ax=new_figure(6, 4).subplots())
    for site in ("atha", "gako"):
        corners = _quadmesh(ax, site).get_coordinates()
        raw = _raw(SKYMAPS[site])["FULL_MAP_LATITUDE"][1]
        np.testing.assert_array_equal(corners[..., 1][np.isfinite(raw)], raw[np.isfinite(raw)])
    west, east = ax.get_xlim()
    assert west < -145.2 - 8 and east > -113.6 + 6  # both fields of view in the axes
    # the tree gives no skymap of atha before 2023-01-15
    with pytest.raises(ArgumentError, match="no skymap of site 'atha' valid at 2014-03-10"):
        auroradask.mosaic(open_sample().assign_coords(site=["atha"]), SAMPLE_TIME, skymaps=tree)


def test_bad_arguments(cdf_frames):
    gako = {"gako": GAKO_SKYMAP}
    with pytest.raises(ArgumentError, match="time: 2011-01-06 18:00:00 is not a slot"):
        auroradask.mosaic(cdf_frames, "2011-01-06T18:00", skymaps=gako)
    with pytest.raises(ArgumentError, match="time: 'soon' is not a time"):
        auroradask.mosaic(cdf_frames, "soon", skymaps=gako)
    with pytest.raises(ArgumentError, match=r"no skymap given for sites \['gako'\]"):
        auroradask.mosaic(cdf_frames, CDF_TIME, skymaps={"atha": SKYMAP})
    with pytest.raises(ArgumentError, match="sites: the frames have no site"):
        auroradask.mosaic(cdf_frames, CDF_TIME, skymaps=gako, sites=["gill"])
    with pytest.raises(ArgumentError, match="min_elevation: expected degrees"):
        auroradask.mosaic(cdf_frames, CDF_TIME, skymaps=gako, min_elevation=95)
    with pytest.raises(ArgumentError, match="ax: expected an Axes"):
        auroradask.mosaic(cdf_frames, CDF_TIME, skymaps=gako, ax=new_figure(4, 4).subplots(1, 2))


def test_lookup_finds_the_pixel_whose_cell_holds_a_point():
    meshes = [map_mesh(GAKO_SKYMAP), map_mesh(SKYMAP)]
    rows, cols = np.nonzero(meshes[0].visible)
    pick = np.arange(0, rows.size, 97)
    lon = meshes[0].centre_longitude[rows[pick], cols[pick]]
    lat = meshes[0].centre_latitude[rows[pick], cols[pick]]
    site, pixel = mesh_lookup(meshes, np.r_[lon, -130.0], np.r_[lat, 60.0])
    assert (site[:-1] == 0).all() and site[-1] == -1  # between the two: no site
    np.testing.assert_array_equal(pixel[:-1], rows[pick] * 256 + cols[pick])
    # just outside the field of view (pixels seeing 8 to 10 degrees): no site, though a
    # visible pixel's centre is one pixel away
    elevation = auroradask.read_skymap(GAKO_SKYMAP)["elevation"].values
    edge = (elevation >= 8) & (elevation < 9.5) & np.isfinite(meshes[0].centre_latitude)
    site, _ = mesh_lookup(meshes, meshes[0].centre_longitude[edge], meshes[0].centre_latitude[edge])
    assert edge.sum() > 500 and (site == -1).all()


def test_mosaic_movie_draws_each_slot_on_the_workers(two_sites, tree, tmp_path):
    results = auroradask.classify(two_sites, auroradask.demo_model()).compute()
    results["label"][0, :] = 3  # atha: pulsating all along
    path = tmp_path / "mosaic.mp4"
    info = auroradask.mosaic_movie(
        two_sites, path, skymaps=tree, results=results, speedup=60, height=256, frames_per_task=7
    )
    assert (info.frames, info.fps, info.size[1], info.step, info.repeat) == (20, 20, 256, 1, 1)
    assert imageio_ffmpeg.count_frames_and_secs(str(path))[0] == 20
    reader = imageio_ffmpeg.read_frames(str(path))
    width, height = next(reader)["size"]
    video = np.stack([np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader])
    # the outline of atha in the colour of pulsating (tab10 red) in every frame
    red = (video[..., 0] > 180) & (video[..., 1] < 90) & (video[..., 2] < 90)
    assert (red.reshape(20, -1).sum(axis=1) > 200).all()
    with pytest.raises(ArgumentError, match="height"):
        auroradask.mosaic_movie(two_sites, path, skymaps=tree, height=100)


def test_mosaic_movie_frames_show_each_sites_pixels_where_the_map_puts_them(
    two_sites, tree, tmp_path, monkeypatch
):
    """The workers' drawing, before encoding (lossless): each sky pixel of the video is the
    stretched count of the frame pixel looked up for it, and the zenith pixel of each site
    lies at the middle of its outline."""
    import auroradask.visual._mosaic_movie as mm

    calls = []
    real = mm.draw_mosaic_frames
    monkeypatch.setattr(
        mm,
        "draw_mosaic_frames",
        lambda *a, **k: calls.append((a, k, real(*a, **k))) or calls[-1][2],
    )
    auroradask.mosaic_movie(two_sites, tmp_path / "m.mp4", skymaps=tree, height=256, speedup=600)
    drawn = [c for c in calls if c[0][0].size]  # not dask's call on empty arrays (its meta)
    (images, status, _, _, _, _, site_index, pixel_index), options, video = drawn[0]
    assert (status == 0).all()
    rows, cols = np.indices(site_index.shape)
    for s, site in enumerate(["atha", "gako"]):
        ring = options["outlines"][s]
        middle = ring.mean(axis=0)
        # the sky inside the outline, 4 pixels clear of it (the outline is drawn over it)
        clear = (
            np.hypot(cols - middle[0], rows - middle[1]) < np.hypot(*(ring - middle).T).min() - 4
        )
        shown = (site_index == s) & clear
        assert shown.sum() > 3000
        lo, hi = options["stretch"][s]
        expect = np.clip((images[s, 0].ravel()[pixel_index[shown]] - lo) / (hi - lo), 0, 1) * 255
        grey = video[0][shown].astype(int)
        assert (grey == grey[:, :1]).all()  # grey: r = g = b
        np.testing.assert_array_equal(grey[:, 0], expect.astype(np.uint8))
        elevation = _raw(SKYMAPS[site])["FULL_ELEVATION"]
        zr, zc = np.unravel_index(np.nanargmax(elevation), (256, 256))
        near = (abs(pixel_index // 256 - zr) <= 4) & (abs(pixel_index % 256 - zc) <= 4)
        y, x = np.nonzero((site_index == s) & near)  # video pixels showing the zenith's sky
        assert 0 < len(y) < 10
        assert abs(x.mean() - middle[0]) < 4 and abs(y.mean() - middle[1]) < 4
