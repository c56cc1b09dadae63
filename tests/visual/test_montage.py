"""Montages: any grid of images, and the frames a store labelled with one class, picked at
random (the same whatever the chunking), or the most or least confident."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import auroradask
from auroradask.errors import ArgumentError
from auroradask.visual._montage import pick_slots, stretch
from tests.support.synthetic import synthetic_results
from tests.support.utils import classify_sample, open_sample


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_results(["gill", "fsmi"], "2014-03-09", days=2, chunk=2_400).compute()


def _shown(fig):
    return [ax.images[0].get_array() for ax in fig.axes if ax.images]


def test_montage_of_a_dataarray(tmp_path):
    frames = open_sample()["images"].isel(site=0, time=slice(0, 10))
    tiles = frames.rename(time="tile")
    path = tmp_path / "grid.png"
    fig = auroradask.montage(tiles, columns=4, path=path)
    assert path.stat().st_size > 10_000
    shown = _shown(fig)
    assert len(shown) == 10 and len(fig.axes) == 12  # 3 rows of 4, two empty
    for k, image in enumerate(shown):
        np.testing.assert_allclose(image, stretch(tiles.values[k]))
    assert fig.axes[0].get_title() == str(tiles["tile"].values[0])
    # each tile stretched between its own 1st and 99th percentiles of non-zero counts
    values = tiles.values[0].astype(float)
    lo, hi = np.percentile(values[values > 0], [1, 99])
    assert np.mean(shown[0] == 0) == pytest.approx(np.mean(values <= lo), abs=1e-3)
    assert np.mean(shown[0] == 1) == pytest.approx(np.mean(values >= hi), abs=1e-3)
    # zeros (outside a cropped frame, a missing frame) are left out of the percentiles
    blanked = tiles.values[0].copy()
    blanked[:100] = 0
    sky = stretch(blanked)[100:]
    assert 0.005 < np.mean(sky == 0) < 0.02 and 0.005 < np.mean(sky == 1) < 0.02


def test_montage_of_arrays_of_any_size_with_titles():
    images = [np.arange(12.0).reshape(3, 4), np.ones((5, 5)), np.eye(8)]
    fig = auroradask.montage(images, titles=["a", "b", "c"], columns=8)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]
    assert [im.shape for im in _shown(fig)] == [(3, 4), (5, 5), (8, 8)]
    with pytest.raises(ArgumentError, match="titles"):
        auroradask.montage(images, titles=["a"])
    with pytest.raises(ArgumentError, match="2-D"):
        auroradask.montage([np.zeros((2, 2, 2))])
    with pytest.raises(ArgumentError, match="tile, y, x"):
        auroradask.montage(xr.DataArray(np.zeros((2, 2))))
    with pytest.raises(ArgumentError, match="columns"):
        auroradask.montage(images, columns=0)


def test_most_and_least_confident(synthetic):
    label = synthetic["label"].values
    written = synthetic["frame_status"].values >= 0
    confidence = synthetic["confidence"].values
    mine = (label == 3) & written
    ordered = np.sort(confidence[mine])
    most = pick_slots(synthetic, "pulsating", n=7, pick="most")
    np.testing.assert_allclose(np.sort(most["confidence"])[::-1], ordered[::-1][:7])
    least = pick_slots(synthetic, "pulsating", n=7, pick="least")
    np.testing.assert_allclose(np.sort(least["confidence"]), ordered[:7])
    for table in (most, least):
        for site, time in zip(table["site"], table["time"], strict=True):
            assert int(synthetic["label"].sel(site=site, time=time)) == 3
    only = pick_slots(synthetic, "pulsating", n=5, pick="most", sites="fsmi")
    assert set(only["site"]) == {"fsmi"}


def test_random_pick_is_reproducible_whatever_the_chunking(synthetic):
    a = pick_slots(synthetic, "no_aurora", n=20, seed=3)
    b = pick_slots(synthetic.chunk({"time": 7_000}), "no_aurora", n=20, seed=3)
    pd.testing.assert_frame_equal(a, b)
    c = pick_slots(synthetic, "no_aurora", n=20, seed=4)
    assert not a.equals(c)
    assert len(a) == 20 and a["time"].is_monotonic_increasing
    assert (
        synthetic["label"].sel(site=xr.DataArray(a["site"]), time=xr.DataArray(a["time"])) == 1
    ).all()
    # spread over the store, not the first matches of the first chunk
    assert a["time"].max() - a["time"].min() > pd.Timedelta(hours=12)
    assert set(a["site"]) == {"gill", "fsmi"}


def test_class_montage_shows_the_picked_frames(tmp_path):
    results = classify_sample().compute()
    path = tmp_path / "bad.png"
    fig = auroradask.class_montage(
        results, auroradask.sample_archive(), "bad_viewing", n=6, pick="least", path=path
    )
    assert path.stat().st_size > 10_000
    confidence = results["confidence"].values[0]
    least = np.argsort(confidence, kind="stable")[:6]
    times = np.sort(results["time"].values[least])
    frames = open_sample()["images"].sel(site="gill", time=times).values
    shown = _shown(fig)
    assert len(shown) == 6
    for k in range(6):
        np.testing.assert_allclose(shown[k], stretch(frames[k]))
        assert pd.Timestamp(times[k]).strftime("%H:%M:%S") in fig.axes[k].get_title()
    assert "least confident" in fig._suptitle.get_text()
    # a frames dataset works as source too
    again = auroradask.class_montage(results, open_sample(), "bad_viewing", n=6, pick="least")
    for a, b in zip(_shown(again), shown, strict=True):
        np.testing.assert_array_equal(a, b)


def test_errors(synthetic):
    with pytest.raises(ArgumentError, match="unknown class"):
        pick_slots(synthetic, "nope")
    with pytest.raises(ArgumentError, match="pick"):
        pick_slots(synthetic, "pulsating", pick="best")
    with pytest.raises(ArgumentError, match="no written slot"):
        pick_slots(synthetic.assign(label=synthetic["label"] * 0), "pulsating")
    with pytest.raises(ArgumentError, match="unknown site"):
        pick_slots(synthetic, "pulsating", sites="zzzz")


def _boxes(fig):
    """Window extents of the tiles' titles and images, drawn."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [
        (ax.title.get_window_extent(renderer), ax.images[0].get_window_extent(renderer))
        for ax in fig.axes
        if ax.images
    ]


def test_sky_tiles_are_marked_north_and_east():
    frames = open_sample()["images"].isel(site=0, time=slice(0, 3)).values
    fig = auroradask.montage(frames, columns=3)
    for ax in fig.axes:
        marks = {t.get_text(): t.get_position() for t in ax.texts}
        assert set(marks) == {"N", "E"}
        assert marks["N"][1] > 0.9 and marks["E"][0] < 0.1  # north at the top, east left
        # outlined, so that they read on a bright sky as on a dark one
        assert all(t.get_path_effects() for t in ax.texts)
    plain = auroradask.montage([np.eye(4)], compass=False)
    assert len(plain.axes[0].texts) == 0


def test_long_titles_are_wrapped_to_their_tile_and_never_overlap():
    frames = open_sample()["images"].isel(site=0, time=slice(0, 8)).values
    titles = [f"cluster {k // 4} #{k % 4} gill 2014-03-10 06:00:{3 * k:02d} UT" for k in range(8)]
    fig = auroradask.montage(frames, titles=titles, columns=4, suptitle="a long heading " * 12)
    assert [ax.get_title().replace("\n", " ") for ax in fig.axes] == titles  # all kept
    boxes = _boxes(fig)
    for title, image in boxes:
        assert title.width <= image.width * 1.05  # within its tile
    for (a, _), (b, _) in zip(boxes, boxes[1:], strict=False):
        assert not a.overlaps(b)  # neighbours apart
    for title, _ in boxes:  # and above their own tile, not over another row's image
        assert not any(title.overlaps(other) for _, other in boxes)
    heading = fig._suptitle.get_window_extent(fig.canvas.get_renderer())
    assert heading.x0 >= 0 and heading.x1 <= fig.bbox.width


def test_class_montage_times_are_ut():
    results = classify_sample().compute()
    fig = auroradask.class_montage(results, open_sample(), "bad_viewing", n=3)
    assert all(" UT\np=" in ax.get_title() for ax in fig.axes if ax.images)
