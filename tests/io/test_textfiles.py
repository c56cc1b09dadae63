"""Text files: the export (one file per site-day, names from a store never escape the folder)
and the reading of one file at the edges of the format, by the bulk reader and the line reader."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import auroradask
from auroradask.io import _textfiles as textfiles
from auroradask.io._textfiles import _fixed_width, _read_bulk, _read_by_line, read_text
from tests.support.textfiles import PUBLISHED_LINE, data_rows
from tests.support.utils import classify_sample, tiled_results


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


def test_a_run_over_midnight_is_cut_into_the_files_of_its_two_days(results, tmp_path):
    """Six slots of the real sample from 23:59:51 UT: three in each day's file, each row
    dated its own day, with its slot's label and confidence."""
    night = tiled_results(results, ["gill"], "2014-03-10T23:59:51", 6)
    written = auroradask.export_text(night, tmp_path)
    assert written == [
        str(tmp_path / "2014/03/10/20140310_gill_classifications.txt"),
        str(tmp_path / "2014/03/11/20140311_gill_classifications.txt"),
    ]
    rows = [data_rows(path) for path in written]
    assert [[row[0] for row in file] for file in rows] == [["20140310"] * 3, ["20140311"] * 3]
    assert [row[1][:5] for row in rows[0] + rows[1]] == ["23:59"] * 3 + ["00:00"] * 3
    label, confidence = night["label"].values[0], night["confidence"].values[0]
    assert [row[2] for row in rows[0] + rows[1]] == label.tolist()
    np.testing.assert_allclose([row[4] for row in rows[0] + rows[1]], confidence, atol=5e-5)


# ------------------------------------------------------------------------------- reading
HEAD = f"# File created on 2023-07-04 15:06:24\n# {PUBLISHED_LINE}\n\n"
COLUMNS = "date,time,prediction,prediction_str,confidence"
#: Rows at the edges of the format: the day's first and last second, confidence 0 and 1 (as
#: ``0`` and ``1``), and class indices whose names come in another order (2 before 0).
EDGE_ROWS = [
    "20140310,06:00:09,2,pulsating,0.91",
    "20140310,00:00:00,0,no_aurora,0",
    "20140310,23:59:59,0,no_aurora,1",
]
EDGE_SECONDS = [6 * 3600 + 9, 0, 86399]
EDGE_PAIRS = [(2, "pulsating"), (0, "no_aurora")]


def write(tmp_path, text: str, day: str = "20140310"):
    path = tmp_path / f"{day}_gill_themis19_classifications.txt"
    path.write_text(text)
    return path


@pytest.mark.parametrize("form", ["plain", "tabs", "blank-first-line"])
def test_rows_at_the_edges_of_the_format_are_read_in_bulk_and_by_line(tmp_path, form):
    """The published form is read by the bulk reader (not passed over to the line reader),
    and both give each row's second of the day, class, confidence and (index, name) pairs
    in order of first occurrence."""
    text = HEAD + "\n".join([COLUMNS, *EDGE_ROWS]) + "\n"
    if form == "tabs":
        text = text.replace(",", "\t")
    elif form == "blank-first-line":
        text = "\n" + text
    path = write(tmp_path, text)
    data = path.read_bytes()
    bulk = _read_bulk(data, "20140310")
    assert bulk is not None, "the plain form must not need the line reader"
    for parsed in (bulk, _read_by_line(str(path), "20140310", data)):
        comments, seconds, prediction, confidence, pairs = parsed
        assert comments == ["File created on 2023-07-04 15:06:24", PUBLISHED_LINE]
        np.testing.assert_array_equal(seconds, EDGE_SECONDS)
        np.testing.assert_array_equal(prediction, [2, 0, 0])
        np.testing.assert_array_equal(confidence, [0.91, 0.0, 1.0])
        assert pairs == EDGE_PAIRS
    got = read_text(path)
    np.testing.assert_array_equal(got.seconds, EDGE_SECONDS)
    assert got.info.rows == 3 and list(got.info.pairs) == EDGE_PAIRS
    assert got.info.producer == PUBLISHED_LINE and got.info.created == "2023-07-04 15:06:24"


@pytest.mark.parametrize("header", [True, False], ids=["header-only", "comments-only"])
def test_a_night_without_frames_is_read_in_bulk_as_no_rows(tmp_path, header):
    """The published classifier writes the header and no row for a night without frames
    (older files: the comments alone): no row, and arrays of length 0, from both readers."""
    path = write(tmp_path, HEAD + (COLUMNS + "\n" if header else ""))
    data = path.read_bytes()
    bulk = _read_bulk(data, "20140310")
    assert bulk is not None
    for parsed in (bulk, _read_by_line(str(path), "20140310", data)):
        comments, seconds, prediction, confidence, pairs = parsed
        assert comments == ["File created on 2023-07-04 15:06:24", PUBLISHED_LINE]
        assert (seconds.dtype, prediction.dtype, confidence.dtype) == ("int64", "int64", "float64")
        assert (len(seconds), len(prediction), len(confidence), pairs) == (0, 0, 0, [])
    info = read_text(path).info
    assert info.rows == 0 and not info.empty and info.producer == PUBLISHED_LINE


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


def test_the_size_limit_is_64_mib_and_a_file_of_that_size_is_read_whole(tmp_path, monkeypatch):
    """A file one byte over 64 MiB is refused by its size (sparse here: no disk); a file of
    exactly the limit is read to its last byte."""
    big = write(tmp_path, "")
    with open(big, "r+b") as f:
        f.truncate(64 * 2**20 + 1)
    with pytest.raises(auroradask.InputDataError, match=r"67,108,865 bytes, .*at most 67,108,864"):
        read_text(big)
    path = write(tmp_path, HEAD + "\n".join([COLUMNS, GOOD]), day="20140311")
    path.write_text(HEAD + "\n".join([COLUMNS, GOOD.replace("0310", "0311")]))  # no final \n
    monkeypatch.setattr(textfiles, "MAX_FILE_BYTES", path.stat().st_size)
    assert textfiles.read_bytes(str(path)) == path.read_bytes()
    np.testing.assert_array_equal(read_text(path).confidence, [0.5])


def test_fixed_width_columns_as_bytes():
    """``_fixed_width``: an Arrow string column of values of one width as a (rows, width)
    byte array (one row, several chunks, none), None when a value has another width."""
    one = pa.chunked_array([pa.array(["06:00:03"])])
    assert _fixed_width(one, 8).tobytes() == b"06:00:03"
    two = pa.chunked_array([pa.array(["20140310"]), pa.array(["20140311"])])
    np.testing.assert_array_equal(
        _fixed_width(two, 8), np.frombuffer(b"2014031020140311", np.uint8).reshape(2, 8)
    )
    assert _fixed_width(pa.chunked_array([pa.array(["06:00:03", "6:00:03"])]), 8) is None
    assert _fixed_width(pa.chunked_array([], pa.string()), 8).shape == (0, 8)
