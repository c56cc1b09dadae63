"""Text files: the export (one file per site-day, names from a store never escape the folder)
and the reading of one file at the edges of the format, by the bulk reader and the line reader."""

from __future__ import annotations

import numpy as np
import pytest

import auroradask
from auroradask.io._textfiles import _read_bulk, read_text
from tests.support.textfiles import PUBLISHED_LINE
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


# ------------------------------------------------------------------------------- reading
HEAD = f"# File created on 2023-07-04 15:06:24\n# {PUBLISHED_LINE}\n\n"
COLUMNS = "date,time,prediction,prediction_str,confidence"


def write(tmp_path, text: str, day: str = "20140310"):
    path = tmp_path / f"{day}_gill_themis19_classifications.txt"
    path.write_text(text)
    return path


GOOD = "20140310,06:00:00,0,no_aurora,0.5"


@pytest.mark.parametrize(
    "row",
    [
        "20140310,24:00:00,0,no_aurora,0.5",  # hour 24
        "20140310,06:60:00,0,no_aurora,0.5",  # minute 60
        "20140310,06:00:60,0,no_aurora,0.5",  # second 60: was read as 06:01:00
        "20140310,23:59:60,0,no_aurora,0.5",  # was second 86400, a slot past the day
        "20140310,06-00-03,0,no_aurora,0.5",  # not colons
        "20140310,06:0::03,0,no_aurora,0.5",  # a colon for a digit
        "20140310,6:00:03,0,no_aurora,0.5",  # one digit for the hour
        "2014031,06:00:03,0,no_aurora,0.5",  # seven digits for the date
        "20140231,06:00:03,0,no_aurora,0.5",  # no such date
        "20140310,06:00:03,-1,no_aurora,0.5",  # negative class
        "20140310,06:00:03,2.5,pulsating,0.5",  # not a whole class index
        "20140310,06:00:03,x,pulsating,0.5",  # not a number
        "20140310,06:00:03,2,,0.5",  # no name
        "20140310,06:00:03,2,pulsating,1.5",  # confidence over 1
        "20140310,06:00:03,2,pulsating,-0.1",  # confidence under 0
    ],
)
def test_a_row_outside_the_format_is_refused_naming_its_line(tmp_path, row):
    """Each row is wrong in one respect only: the bulk reader passes the file over, and the
    line reader refuses it naming its line (the 6th: after two comments, a blank line, the
    header and a good row)."""
    path = write(tmp_path, HEAD + "\n".join([COLUMNS, GOOD, row]) + "\n")
    assert _read_bulk(path.read_bytes(), "20140310") is None
    with pytest.raises(auroradask.InputDataError, match=f"^{path}:6: cannot read"):
        read_text(path)


def test_a_leap_second_row_is_refused_when_imported_not_when_computed(tmp_path):
    """``23:59:60`` was read as second 86400 of the day, and ``compute`` then failed with an
    IndexError (a slot past the day's last): the import now refuses the file naming the line."""
    path = write(tmp_path, HEAD + "\n".join([COLUMNS, GOOD, GOOD.replace("06:00:00", "23:59:60")]))
    with pytest.raises(
        auroradask.InputDataError, match=f"^{path}:6: cannot read '20140310,23:59:60"
    ):
        auroradask.import_text(path)
