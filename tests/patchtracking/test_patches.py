"""Auroral patches: synthetic frames with known moving patches recovered within stated
tolerances (also across chunk boundaries and bad frames); the real sample gives a sane
table; the geometry, the kernels, parquet, the plot and the CLI.

Tolerances on the synthetic sky (1 km per pixel, discs of radius 6-9 px moving 0.3-0.8 px
per frame, on 4 frames out of 5, noise 60 counts, amplitudes 2000-4000 counts):

- every visible (patch, frame) is detected, nothing else is (exact);
- each true patch is one track: first and last frames exact (births and deaths);
- pixel centroid within 0.5 px of the true centre; area within 25 % of pi r² (one Otsu
  level per frame sits below half the brightest patches' amplitude, and their edges, blurred
  by the 1 px smoothing, rise above it: +21 % at worst here, the dimmest within 6 %);
- area in km² equal to the pixel area (1 km² pixels) within 1 %;
- drift speed within 3 % and direction within 3° of the truth (m/s from latitude/longitude).
"""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import auroradask
import tests.support.synthetic_sky as sky
from auroradask.errors import ArgumentError
from auroradask.patchtracking._detect import running_background, threshold_mask
from auroradask.preprocessing._preprocess import field_of_view
from auroradask.skymaps._skymap import lat_lon_of
from tests.support.utils import GAKO_SKYMAP, SKYMAP, classify_sample, copy_as, open_sample

N_FRAMES = 100
GAKO = GAKO_SKYMAP


@pytest.fixture(scope="module")
def truth():
    patches = sky.default_patches()
    return patches, sky.render(patches, N_FRAMES)


@pytest.fixture(scope="module")
def geometry():
    return sky.flat_geometry(km_per_px=1.0)


@pytest.fixture(scope="module")
def result(truth, geometry):
    _, frames = truth
    return auroradask.patches(sky.dataset(frames, chunk=20), skymap=geometry[0])


def _match(table: pd.DataFrame, patches: list[sky.Patch]) -> dict[int, int]:
    """True patch index -> track id, by the track nearest the patch at its birth."""
    matched = {}
    for k, p in enumerate(patches):
        first = next(i for i in range(p.birth, p.death) if p.visible(i))
        rows = table[table["frame"] == first]
        d = np.hypot(rows["row"] - p.position(first)[0], rows["col"] - p.position(first)[1])
        matched[k] = int(rows["track"].iloc[int(np.argmin(d.to_numpy()))])
    return matched


def _with_frame(table: pd.DataFrame) -> pd.DataFrame:
    start = np.datetime64("2020-01-01T06:00", "ns")
    return table.assign(frame=((table["time"] - start) // pd.Timedelta(seconds=3)).astype(int))


def test_synthetic_patches_recovered(result, truth):
    patches, _ = truth
    table = _with_frame(result.table)
    matched = _match(table, patches)
    assert sorted(matched.values()) == sorted(table["track"].unique())  # no extra track
    for k, p in enumerate(patches):
        rows = table[table["track"] == matched[k]]
        visible = [i for i in range(N_FRAMES) if p.visible(i)]
        assert rows["frame"].tolist() == visible, f"patch {k}: frames"  # births, deaths, gaps
        true_pos = np.array([p.position(i) for i in visible])
        error = np.hypot(rows["row"] - true_pos[:, 0], rows["col"] - true_pos[:, 1])
        assert error.max() < 0.5, f"patch {k}: centroid off by {error.max():.2f} px"
        np.testing.assert_allclose(rows["area_px"], np.pi * p.radius**2, rtol=0.25)
        np.testing.assert_allclose(rows["area_km2"], rows["area_px"], rtol=0.01)
    counts = result.counts.sel(site="synt").values
    expected = [sum(p.visible(i) for p in patches) for i in range(N_FRAMES)]
    np.testing.assert_array_equal(counts, expected)


def test_synthetic_drift_velocity(result, truth, geometry):
    patches, _ = truth
    _, to_m_s = geometry
    matched = _match(_with_frame(result.table), patches)
    tracks = result.tracks.set_index("track")
    for k, p in enumerate(patches):
        track = tracks.loc[matched[k]]
        east, north = to_m_s(p.v_row, p.v_col)
        speed = np.hypot(east, north)
        assert track["speed"] == pytest.approx(speed, rel=0.03), f"patch {k}"
        angle = np.degrees(np.arctan2(track["v_north"], track["v_east"]) - np.arctan2(north, east))
        assert abs((angle + 180) % 360 - 180) < 3.0, f"patch {k}: direction off by {angle:.1f}°"
        assert track["v_row"] * 3 == pytest.approx(p.v_row, abs=0.02)
        assert track["v_col"] * 3 == pytest.approx(p.v_col, abs=0.02)
        visible = [i for i in range(N_FRAMES) if p.visible(i)]
        assert track["lifetime_s"] == pytest.approx(3.0 * (visible[-1] - visible[0] + 1))


@pytest.mark.parametrize("chunk", [7, 33, N_FRAMES])
def test_chunks_give_the_same_tracks(truth, geometry, result, chunk):
    """Chunks of 7 (smaller than half the background window), 33 and one: same table."""
    _, frames = truth
    other = auroradask.patches(sky.dataset(frames, chunk=chunk), skymap=geometry[0])
    pd.testing.assert_frame_equal(other.table, result.table)
    pd.testing.assert_frame_equal(other.tracks, result.tracks)


def test_short_last_chunk_and_numpy_frames(truth, geometry, result):
    """A last chunk shorter than half the window, and frames in memory (no dask)."""
    _, frames = truth
    short = auroradask.patches(sky.dataset(frames[:95], chunk=30), skymap=geometry[0])
    whole = auroradask.patches(sky.dataset(frames[:95], chunk=95).compute(), skymap=geometry[0])
    pd.testing.assert_frame_equal(short.table, whole.table)
    xr_counts = whole.counts.values[0]
    np.testing.assert_array_equal(xr_counts, result.counts.values[0, :95])


def test_bad_frames_are_skipped_and_bridged(truth, geometry, result):
    _, frames = truth
    bad = (21, 22, 60)
    other = auroradask.patches(sky.dataset(frames, chunk=20, bad=bad), skymap=geometry[0])
    counts = other.counts.values[0]
    assert (counts[list(bad)] == -1).all()
    assert (counts[np.setdiff1d(np.arange(N_FRAMES), bad)] >= 0).all()
    table = _with_frame(other.table)
    assert not table["frame"].isin(bad).any()
    # a gap of two bad frames next to an "off" frame is still within max_gap: same tracks
    assert other.table["track"].nunique() == result.table["track"].nunique()


@pytest.mark.parametrize(
    "options",
    [
        {"threshold": 1000.0},
        {"threshold": "relative", "relative": 0.2},
        # the window must be longer than twice the time a patch stays on a pixel (~25 s)
        pytest.param({"background": "median", "window": 101}, marks=pytest.mark.slow),
    ],
)
def test_other_backgrounds_and_thresholds(truth, geometry, result, options):
    patches, frames = truth
    other = auroradask.patches(sky.dataset(frames, chunk=25), skymap=geometry[0], **options)
    assert other.table["track"].nunique() == len(patches)
    np.testing.assert_array_equal(other.counts.values, result.counts.values)


def test_running_background_kernel():
    rng = np.random.default_rng(1)
    stack = rng.normal(1000, 50, (30, 4, 5)).astype(np.float32)
    stack[7] = np.nan
    got = running_background(stack, "min", 5)
    for i in range(30):
        expected = np.nanmin(stack[max(0, i - 2) : i + 3], axis=0)
        np.testing.assert_array_equal(got[i], expected)
    med = running_background(stack, "median", 5)
    np.testing.assert_allclose(med[10], np.nanmedian(stack[8:13], axis=0))
    np.testing.assert_allclose(med[7], np.nanmedian(stack[5:10], axis=0))


def test_threshold_stays_in_the_field_of_view():
    excess = np.full((256, 256), 5000.0, dtype=np.float32)
    fov = field_of_view(auroradask.circle_elevation(), 15.0)
    for threshold in (100.0, "relative"):
        mask = threshold_mask(excess, np.full_like(excess, 1000.0), fov, threshold)
        assert mask.sum() == fov.sum()
        assert not (mask & ~fov).any()


def test_geometry_of_real_skymaps():
    for path in (SKYMAP, GAKO):
        g = auroradask.read_patch_geometry(path, 110.0)
        skymap = auroradask.read_skymap(path)
        fov = field_of_view(g.elevation, 15.0)
        assert np.isfinite(g.pixel_km2[fov]).all()
        zenith = np.unravel_index(np.nanargmax(g.elevation), g.elevation.shape)
        # a THEMIS pixel near the zenith sees about 1 km at 110 km
        assert 0.3 < g.pixel_km2[zenith] < 4.0
        # off-zenith pixels see more sky
        assert np.nanmax(g.pixel_km2[fov]) > 20 * g.pixel_km2[zenith]
        lat, lon = lat_lon_of(g.xyz[:, zenith[0], zenith[1]])
        assert lat == pytest.approx(skymap.attrs["latitude"], abs=0.2)
        assert lon == pytest.approx(skymap.attrs["longitude"], abs=0.4)
    with pytest.raises(ArgumentError, match="^altitude_km"):
        auroradask.read_patch_geometry(SKYMAP, 100.0)


def test_real_sample_is_sane(tmp_path):
    frames = open_sample(chunk_minutes=1)
    result = auroradask.patches(frames, skymap=SKYMAP)
    table = result.table
    assert result.counts.shape == (1, 120)
    assert (result.counts.values >= 0).all()
    assert len(table) > 0
    geometry = auroradask.read_patch_geometry(SKYMAP)
    fov = field_of_view(geometry.elevation, 15.0)
    rows, cols = np.round(table["row"]).astype(int), np.round(table["col"]).astype(int)
    assert fov[rows, cols].all()  # no patch in the masked corners
    assert (table["area_px"] >= 10).all() and (table["area_px"] < fov.sum()).all()
    assert (table["area_km2"] > 0).all()
    assert (table["area_km2"] < np.nansum(geometry.pixel_km2[fov])).all()
    assert table["latitude"].between(50, 60).all()
    assert table["longitude"].between(-125, -105).all()
    per_frame = table.groupby("time").size()
    counts = result.counts.to_series().droplevel("site")
    np.testing.assert_array_equal(counts[per_frame.index].values, per_frame.values)
    assert counts.sum() == len(table)

    path = tmp_path / "patches.parquet"
    result.to_parquet(path, tmp_path / "tracks.parquet")
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert len(pd.read_parquet(tmp_path / "tracks.parquet")) == len(result.tracks)


def test_lazy_blocks_one_per_chunk(truth):
    _, frames = truth
    blocks = auroradask.patch_blocks(sky.dataset(frames, chunk=20))
    assert blocks.numblocks == (1, 5)
    table, counts = blocks.blocks[0, 2].compute()[0, 0]
    assert counts.shape == (1, 20)
    assert (
        table["time"]
        .between(np.datetime64("2020-01-01T06:02:00"), np.datetime64("2020-01-01T06:02:57"))
        .all()
    )


def test_arguments_are_checked(truth):
    _, frames = truth
    ds = sky.dataset(frames[:30])
    for kwargs, name in [
        ({"threshold": "bogus"}, "threshold"),
        ({"background": "mean"}, "background"),
        ({"min_area": 0}, "min_area"),
        ({"skymap": 3}, "skymap"),
    ]:
        with pytest.raises(ArgumentError, match=f"^{name}"):
            auroradask.patches(ds, **kwargs)


def test_plot_tracks(result, truth, tmp_path):
    _, frames = truth
    path = tmp_path / "tracks.png"
    result.plot_tracks(path, frame=frames[50])
    assert path.stat().st_size > 10_000


def test_plot_tracks_draws_every_site(truth, geometry, tmp_path):
    _, frames = truth
    both = xr.concat(
        [sky.dataset(frames, site="gill"), sky.dataset(frames[:, ::-1], site="atha")], "site"
    )
    result = auroradask.patches(both, skymap={"gill": geometry[0], "atha": geometry[0]})
    under = {"gill": frames[50], "atha": frames[50, ::-1]}
    fig = result.plot_tracks(tmp_path / "both.png", frame=under)
    assert (tmp_path / "both.png").stat().st_size > 10_000
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["gill", "atha"]
    for ax, site in zip(fig.axes, ["gill", "atha"], strict=True):
        tracks = result.table.loc[result.table["site"] == site, "track"].nunique()
        assert tracks > 0 and len(ax.lines) == 2 * tracks  # a path and an end per track
        assert {t.get_text() for t in ax.texts} == {"N", "E"}
    one = result.plot_tracks(tmp_path / "atha.png", site="atha")
    assert [ax.get_title().split(":")[0] for ax in one.axes] == ["atha"]
    with pytest.raises(ArgumentError, match="^frame: one frame for 2 sites"):
        result.plot_tracks(tmp_path / "x.png", frame=frames[50])
    with pytest.raises(ArgumentError, match="^site: no site"):
        result.plot_tracks(tmp_path / "x.png", site="fsmi")


def test_cli_patches(tmp_path):
    from auroradask.cli.main import main

    out = tmp_path / "p.parquet"
    code = main(
        ["patches", "--source", auroradask.sample_archive(), "--site", "gill",
         "--start", "2014-03-10T06:00", "--end", "2014-03-10T06:02", "--chunk-minutes", "1",
         "--skymap", SKYMAP, "-o", str(out), "--plot", str(tmp_path / "t.png")]
    )  # fmt: skip
    assert code == 0
    table = pd.read_parquet(out)
    assert set(table["site"]) <= {"gill"}
    assert (tmp_path / "p-tracks.parquet").exists()
    assert (tmp_path / "t.png").exists()
    assert main(["patches", "--source", "x", "--site", "gill", "--start", "2014-03-10"]) == 2


def test_cli_plot_draws_every_site(tmp_path, monkeypatch):
    import shutil

    from auroradask.cli.main import main
    from auroradask.patchtracking._result import PatchResult

    root = copy_as(tmp_path, site="atha")
    shutil.copytree(auroradask.sample_archive(), root, dirs_exist_ok=True)
    drawn = []
    real = PatchResult.plot_tracks
    monkeypatch.setattr(
        PatchResult, "plot_tracks", lambda self, *a, **k: drawn.append(real(self, *a, **k))
    )
    code = main(
        ["patches", "--source", str(root), "--site", "gill,atha",
         "--start", "2014-03-10T06:00", "--end", "2014-03-10T06:01", "--chunk-minutes", "1",
         "--skymap", SKYMAP, "-o", str(tmp_path / "p.parquet"), "--plot", str(tmp_path / "t.png")]
    )  # fmt: skip
    assert code == 0 and (tmp_path / "t.png").exists()
    (fig,) = drawn
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["gill", "atha"]
    assert all(ax.images for ax in fig.axes)  # each site's tracks on a frame of its own


def test_patch_counts_are_stored_with_the_labels(tmp_path):
    # a corrupt minute among good ones: its frames are not searched (-1) and the rest are
    root = copy_as(tmp_path)
    (bad,) = root.rglob("20140310_0602_*")
    bad.write_bytes(b"not a pgm")
    frames = open_sample(root, chunk_minutes=1)
    expected = auroradask.patches(frames, skymap=SKYMAP).counts
    counts = auroradask.patch_counts(frames, skymap=SKYMAP)
    assert counts.chunks == frames.images.chunks[:2] and counts.dtype == np.int16
    assert (expected.values[:, 40:60] == -1).all() and (expected.values[:, :40] >= 0).all()
    assert expected.values.max() > 0
    np.testing.assert_array_equal(counts.values, expected.values)

    store = tmp_path / "results.zarr"
    results = classify_sample(root).assign(patch_count=counts)
    auroradask.to_zarr(results, store)
    stored = auroradask.open_results(store)
    np.testing.assert_array_equal(stored.patch_count.sel(time=frames.time).values, expected.values)
    assert (stored.patch_count.sel(time="2014-03-10T05").values == -1).all()  # unwritten
    assert stored.patch_count.attrs["patch_threshold"] == "otsu"


def test_cli_classify_stores_patch_counts(tmp_path):
    from auroradask.cli.main import main

    store = tmp_path / "results.zarr"
    code = main(["classify", "--source", auroradask.sample_archive(), "--site", "gill",
                 "--start", "2014-03-10T06:00", "--end", "2014-03-10T06:02",
                 "--out", str(store), "--skymap", SKYMAP, "--patch-counts",
                 "--workers", "1"])  # fmt: skip
    assert code == 0
    frames = open_sample(end="2014-03-10T06:02", chunk_minutes=1)
    expected = auroradask.patches(frames, skymap=SKYMAP, elevation=SKYMAP).counts
    stored = auroradask.open_results(store).patch_count.sel(time=frames.time)
    np.testing.assert_array_equal(stored.values, expected.values)


def test_two_count_arrays_in_one_graph_keep_their_own_values(truth):
    _, frames = truth
    bright = sky.dataset(frames, chunk=20)
    dark = sky.dataset(np.zeros_like(frames), chunk=20)
    a, b = dask.compute(auroradask.patch_counts(bright), auroradask.patch_counts(dark))
    assert a.max() > 0 and b.max() == 0
