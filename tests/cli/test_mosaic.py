"""``auroradask mosaic``: two sites (real sample minutes as atha and gako) through the real
skymaps of a tree, as a figure with the store's labels and as a movie; bad arguments are
refused (exit 2) before any frame is read."""

from __future__ import annotations

import shutil

import imageio_ffmpeg
import pytest

import auroradask
from auroradask.cli.main import main
from tests.support.archive import make_archive
from tests.support.utils import GAKO_SKYMAP, SKYMAP

TIME = "2023-02-02T06:00:30"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mosaic")
    make_archive(
        root / "archive", ["atha", "gako"], "2023-02-02T06:00", hours=1, minutes_per_hour=1
    )
    for site, date, path in (("atha", "20230115", SKYMAP), ("gako", "20110305", GAKO_SKYMAP)):
        (root / "skymaps" / site / f"{site}_{date}").mkdir(parents=True)
        shutil.copy(path, root / "skymaps" / site / f"{site}_{date}")
    frames = auroradask.open_themis(
        root / "archive", ["atha", "gako"], "2023-02-02T06:00", "2023-02-02T06:01"
    )
    auroradask.to_zarr(auroradask.classify(frames, auroradask.demo_model()), root / "r.zarr")
    return {
        "args": ["mosaic", "--source", str(root / "archive"), "--site", "atha,gako"]
        + ["--skymaps", str(root / "skymaps")],
        "store": str(root / "r.zarr"),
    }


def test_a_figure_with_the_labels_of_the_store(data, tmp_path, capsys):
    png = tmp_path / "mosaic.png"
    args = [*data["args"], "--time", TIME, "--store", data["store"], "-o", str(png)]
    assert main(args) == 0
    assert png.stat().st_size > 20_000
    assert f"mosaic of atha, gako at {TIME} UT -> {png}" in capsys.readouterr().out


def test_a_movie_between_start_and_end(data, tmp_path, capsys):
    mp4 = tmp_path / "mosaic.mp4"
    args = [*data["args"], "--start", "2023-02-02T06:00", "--end", "2023-02-02T06:00:30"]
    assert main([*args, "--height", "256", "--altitude", "150", "-o", str(mp4)]) == 0
    assert "10 slots as 10 video frames" in capsys.readouterr().out
    assert imageio_ffmpeg.count_frames_and_secs(str(mp4))[0] == 10


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--time", TIME, "--altitude", "100", "-o", "m.png"], "(it has 90, 110, 150 km)"),
        (["--time", TIME, "-o", "no/such/folder/m.png"], "does not exist"),
        (["--time", TIME, "-o", "m.gif"], "m.gif"),
        (["--time", TIME, "-o", "m.mp4"], "a movie (-o .mp4) needs both"),
        (["--start", TIME, "-o", "m.png"], "a figure shows one time"),
        (["--time", TIME, "--min-elevation", "95", "-o", "m.png"], "'95'"),
        (["--time", "06:00", "-o", "m.png"], "'06:00' is not an ISO UT date"),
        (["--time", "2014-03-10T06:00", "-o", "m.png"], "no minute file of atha, gako"),
    ],
)
def test_bad_arguments_exit_2_naming_what_was_wrong(
    data, extra, said, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert main([*data["args"], *extra]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written
