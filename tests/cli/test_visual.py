"""``auroradask quicklook | movie | montage`` on a store of the real sample."""

from __future__ import annotations

import imageio_ffmpeg
import pytest

import auroradask
from auroradask.cli.main import main
from tests.support.synthetic import synthetic_results
from tests.support.utils import classify_sample

SOURCE = auroradask.sample_archive()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("visual") / "sample.zarr"
    auroradask.to_zarr(classify_sample(), path)
    return str(path)


def test_quicklook_figure_and_folder(store, tmp_path, capsys):
    png = tmp_path / "gill.png"
    args = ["quicklook", store, "--source", SOURCE, "--site", "gill"]
    assert main([*args, "--night", "2014-03-09", "-o", str(png)]) == 0
    assert png.stat().st_size > 20_000
    assert "night of 2014-03-09" in capsys.readouterr().out
    folder = tmp_path / "looks"
    assert main([*args, "-o", str(folder)]) == 0
    assert "1 quicklooks" in capsys.readouterr().out
    assert (folder / "gill" / "gill_2014-03-09.png").exists()
    assert 'href="gill/gill_2014-03-09.png"' in (folder / "index.html").read_text()


def test_quicklook_folder_names_the_nights_it_skips(tmp_path, capsys):
    """A night whose slots hold no frame gets no figure, and the output says which."""
    results = synthetic_results(["gill"], "2014-03-10", days=1, chunk=2_400).compute()
    evening = results["time"].dt.hour >= 18  # the night of 2014-03-10 at Gillam
    results["frame_status"] = results["frame_status"].where(~evening, 1)  # no_file
    store = tmp_path / "day.zarr"
    auroradask.to_zarr(results, store, progress=False)
    folder = tmp_path / "looks"
    assert main(["quicklook", str(store), "-o", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "gill 2014-03-10: skipped, no frame: 7,200 slots written, no_file 7,200" in (
        captured.err
    )
    assert "1 quicklooks" in captured.out and "1 without frames skipped (gill 2014-03-10)" in (
        captured.out
    )
    assert [p.name for p in folder.rglob("*.png")] == ["gill_2014-03-09.png"]


def test_quicklook_refuses_several_nights_in_one_figure(store, tmp_path, capsys):
    args = ["quicklook", store, "--site", "gill", "--night", "2014-03-09"]
    assert main([*args, "--night", "2014-03-10", "-o", str(tmp_path / "x.png")]) == 2
    assert "one site and one night" in capsys.readouterr().err
    assert main([*args, "-o", str(tmp_path / "x.gif")]) == 2


def test_montage(store, tmp_path, capsys):
    png = tmp_path / "grid.png"
    args = ["montage", store, "--source", SOURCE, "--class", "bad_viewing", "-n", "4"]
    assert main([*args, "--pick", "most", "-o", str(png)]) == 0
    assert png.stat().st_size > 10_000
    assert main(["montage", store, "--source", SOURCE, "--class", "nope", "-o", str(png)]) == 2
    assert "unknown class 'nope'" in capsys.readouterr().err


def test_movie(store, tmp_path, capsys):
    mp4 = tmp_path / "night.mp4"
    args = ["movie", "--source", SOURCE, "--site", "gill", "--start", "2014-03-10T06:00"]
    args += ["--end", "2014-03-10T06:02", "--store", store, "--speedup", "120", "-o", str(mp4)]
    assert main([*args, "--height", "256"]) == 0
    assert "20 of 40 slots as 20 video frames (640x256, 20 fps)" in capsys.readouterr().out
    assert imageio_ffmpeg.count_frames_and_secs(str(mp4)) == (20, 1.0)


def test_classify_stores_the_keogram_unless_told_not_to(tmp_path, capsys):
    with_keogram, without = tmp_path / "with.zarr", tmp_path / "without.zarr"
    assert main(["classify", "--out", str(with_keogram), "--workers", "1"]) == 0
    assert "keogram" in auroradask.open_results(with_keogram)
    assert main(["classify", "--out", str(without), "--workers", "1", "--no-keogram"]) == 0
    assert "keogram" not in auroradask.open_results(without)
    # a first run killed while creating its store: the next one finishes the creation
    killed = tmp_path / "killed.zarr"
    (tmp_path / "killed.zarr.intent.json").write_text('{"step": "create"}')
    assert main(["classify", "--out", str(killed), "--workers", "1"]) == 0
    assert "keogram" in auroradask.open_results(killed)
    # a store keeps the variables it was created with: the default continues one made
    # without a keogram (before keograms existed) without it, and says so
    capsys.readouterr()
    assert main(["classify", "--out", str(without), "--workers", "1"]) == 0
    assert "WARNING: " in (err := capsys.readouterr().err) and "keeps no keogram" in err
    assert "keogram" not in auroradask.open_results(without)
    assert main(["classify", "-q", "--out", str(without), "--workers", "1"]) == 0
    assert "keogram" not in capsys.readouterr().err  # -q: errors and results only


def test_quicklook_of_the_wrong_night_names_the_right_one(store, tmp_path, capsys):
    """The sample's 06:00 UT on 2014-03-10 is in the night of 2014-03-09 at Gillam."""
    args = ["quicklook", store, "--site", "gill", "-o", str(tmp_path / "x.png")]
    assert main([*args, "--night", "2014-03-10"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "(night of 2014-03-10); the night of 2014-03-09 (2014-03-09 18:00:00 to" in err
    assert main([*args, "--night", "2014-03-10T06:00"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("quicklook of gill, the night holding 2014-03-10T06:00 UT ->")
    assert (tmp_path / "x.png").stat().st_size > 20_000
