"""Skymap trees: the skymap valid per site and time, from the real .sav files; provenance;
per-slot fields of view inside one chunk; a clear error before the first skymap."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import auroradask
from auroradask.errors import ArgumentError
from tests.support.utils import GAKO_SKYMAP

DATA = Path(__file__).parents[1] / "data"
GAKO = Path(GAKO_SKYMAP)
ATHA = DATA / "themis_skymap_atha_20230115-+_v02.sav"


def put(root: Path, source: Path, site: str, date: str, version: str) -> str:
    relative = f"{site}/{site}_{date}/themis_skymap_{site}_{date}-+_v{version}.sav"
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, root / relative)
    return relative


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "skymaps"
    put(root, GAKO, "gako", "20100101", "01")
    put(root, GAKO, "gako", "20110305", "XX")
    put(root, GAKO, "gako", "20110305", "01")
    put(root, GAKO, "gako", "20110305", "02")
    put(root, GAKO, "gako", "20120101", "05")
    put(root, ATHA, "atha", "20230115", "02")
    return root


def test_selection_latest_date_not_after_then_highest_version(tree):
    skymaps = auroradask.open_skymaps(tree)
    times = np.array(
        ["2010-06-01", "2011-03-04T23:59:57", "2011-03-05T00:00", "2011-12-31", "2013-01-01"],
        dtype="datetime64[ns]",
    )
    chosen = [e.relative for e in skymaps.select("gako", times)]
    assert chosen == [
        "gako/gako_20100101/themis_skymap_gako_20100101-+_v01.sav",
        "gako/gako_20100101/themis_skymap_gako_20100101-+_v01.sav",
        "gako/gako_20110305/themis_skymap_gako_20110305-+_v02.sav",
        "gako/gako_20110305/themis_skymap_gako_20110305-+_v02.sav",
        "gako/gako_20120101/themis_skymap_gako_20120101-+_v05.sav",
    ]
    assert skymaps.select("atha", np.array(["2023-01-14"], dtype="datetime64[ns]")) == [None]


def _image_folder(tmp_path, names) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    import cdflib

    images = cdflib.CDF(str(DATA / "thg_l1_asf_gako_2011010617_v01.cdf")).varget("thg_asf_gako")
    for k, name in enumerate(names):
        cv2.imwrite(str(folder / name), images[k][::-1, ::-1])
    return folder


def test_skymap_changes_inside_one_chunk_and_provenance_names_each_file(tmp_path, tree):
    # two frames the day before gako's 2011-03-05 skymap, two on the day: one chunk
    names = [
        "gako_20110304_235954.png",
        "gako_20110304_235957.png",
        "gako_20110305_000000.png",
        "gako_20110305_000003.png",
    ]
    frames = auroradask.open_images(_image_folder(tmp_path, names), "*.png", times="name")
    assert frames.sizes == {"site": 1, "time": 4, "y": 256, "x": 256}
    skymaps = auroradask.open_skymaps(tree)
    got = auroradask.preprocess(frames, skymaps=skymaps)
    provenance = json.loads(got.attrs["elevation_source"])["gako"]
    assert [p["skymap"] for p in provenance] == [
        "gako/gako_20100101/themis_skymap_gako_20100101-+_v01.sav",
        "gako/gako_20110305/themis_skymap_gako_20110305-+_v02.sav",
    ]
    assert provenance[0]["end"] == "2011-03-04 23:59:57"
    assert provenance[1]["start"] == "2011-03-05 00:00:00"
    # per-slot fields of view: with a fallback circle before the first skymap, the two
    # halves of the one chunk are preprocessed with different masks
    only_new = tmp_path / "only-new"
    put(only_new, GAKO, "gako", "20110305", "01")
    with pytest.raises(ArgumentError, match=r"^skymaps: no skymap of site 'gako' at 2011-03-04"):
        auroradask.preprocess(frames, skymaps=str(only_new))
    mixed = auroradask.preprocess(
        frames, skymaps=auroradask.open_skymaps(only_new, fallback="circle")
    ).values
    circle = auroradask.preprocess(frames, elevation="circle").values
    skymap = auroradask.preprocess(frames, elevation=str(GAKO)).values
    np.testing.assert_array_equal(mixed[:, :2], circle[:, :2])
    np.testing.assert_array_equal(mixed[:, 2:], skymap[:, 2:])
    assert not np.array_equal(circle[:, 2:], skymap[:, 2:])


def test_skymaps_over_http_are_cached(tmp_path, tree, http_archive):
    # serve the tree beside the sample stream0 tree
    url, requests = http_archive
    served = tmp_path / "www" / "skymaps"
    shutil.copytree(tree, served)
    cache = tmp_path / "cache"
    base = url.rsplit("/", 1)[0] + "/skymaps"
    skymaps = auroradask.open_skymaps(base, cache=cache)
    (entry,) = skymaps.select("atha", np.array(["2024-01-01"], dtype="datetime64[ns]"))
    elevation = skymaps.elevation(entry)
    np.testing.assert_array_equal(elevation, auroradask.read_skymap(ATHA)["elevation"].values)
    assert list(cache.rglob("*.sav"))


def test_elevation_archive_needs_skymaps():
    frames = auroradask.open_themis(
        auroradask.sample_archive(), "gill", "2014-03-10T06:00", "2014-03-10T06:01"
    )
    with pytest.raises(ArgumentError, match="^skymaps: elevation='archive' needs"):
        auroradask.preprocess(frames, elevation="archive")


def test_read_skymap_gives_map_latitude_longitude():
    skymap = auroradask.read_skymap(GAKO)
    assert skymap["map_latitude"].shape == (3, 257, 257)
    np.testing.assert_array_equal(skymap["map_altitude"].values, [90e3, 110e3, 150e3])
    lat = skymap["map_latitude"].sel(map_altitude=110e3).values
    lon = skymap["map_longitude"].sel(map_altitude=110e3).values
    assert abs(np.nanmedian(lat) - 62.4) < 1.5 and abs(np.nanmedian(lon) + 145.2) < 3


def test_cli_skymaps_option(tmp_path, tree):
    from auroradask.cli.main import main

    out = tmp_path / "out.zarr"
    # Gillam has no skymap in the tree: a clear argument error, exit 2
    code = main(["classify", "--skymaps", str(tree), "--out", str(out), "--workers", "1"])
    assert code == 2


@pytest.mark.slow  # starts a local cluster in a subprocess: about 30 s on 2 shared cores
def test_cli_reports_a_skymap_that_does_not_line_up(tmp_path):
    """Athabasca's skymap on Gillam frames: another imager's, so the check reports it."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(auroradask.__file__).parent.parent)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "auroradask.cli.main",
            "classify",
            "--skymap",
            str(ATHA),
            "--workers",
            "1",
            "--dashboard-address",
            "127.0.0.1:0",
            "--out",
            str(tmp_path / "o.zarr"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "does not line up with the frames' dark corners" in done.stderr
