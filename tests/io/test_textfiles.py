"""Text export: one file per site-day, and names from a store never escape the folder."""

from __future__ import annotations

import numpy as np
import pytest

import auroradask
from tests.support.utils import classify_sample


@pytest.fixture(scope="module")
def results():
    return classify_sample(end="2014-03-10T06:01").compute()


def test_one_file_per_site_and_day_with_the_classified_frames(results, tmp_path):
    (path,) = auroradask.export_text(results, tmp_path)
    assert path == str(tmp_path / "2014/03/10/20140310_gill_classifications.txt")
    lines = open(path).read().splitlines()
    assert lines[0].startswith("# ") and lines[1].startswith("# model ") and lines[2] == ""
    assert lines[3] == "date,time,prediction,prediction_str,confidence"
    assert len(lines) == 4 + 20
    assert lines[4].startswith("20140310,06:00:00,")


def test_a_site_name_that_is_a_path_is_refused(results, tmp_path):
    hostile = results.assign_coords(site=["../../escape"])
    with pytest.raises(auroradask.InputDataError, match="not a site code"):
        auroradask.export_text(hostile, tmp_path / "out")
    assert not (tmp_path / "escape").exists() and not list(tmp_path.rglob("*.txt"))
    with pytest.raises(auroradask.ArgumentError, match="not site codes"):
        auroradask.to_zarr(hostile.chunk(), tmp_path / "x.zarr")


def test_line_breaks_in_names_do_not_inject_header_lines(results, tmp_path):
    injected = results.copy()
    injected.attrs["model_file"] = "model.onnx\n20140310,06:00:00,0,bad_viewing,1.0"
    (path,) = auroradask.export_text(injected, tmp_path)
    lines = open(path).read().splitlines()
    assert sum(not line.startswith("#") and line.startswith("2014") for line in lines) == 20
    assert lines[1].startswith("# model model.onnx 20140310")
    np.testing.assert_array_equal(len(lines), 24)
