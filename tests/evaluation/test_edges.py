"""evaluate at its edges: tables built by pd.concat, days with transport failures, and
confidences exactly on the minimum.

Every expected figure is counted by hand from the data each test builds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import auroradask
from auroradask._schema import DAY_SLOTS, FILE_UNREACHABLE, NO_FILE, OK, SLOT
from auroradask.evaluation import _metrics, _truth
from tests.support.textfiles import hand_archive, write_sheet

DAY = np.datetime64("2014-03-10T00:00", "ns")


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    """The hand example of test_evaluate as a store (see its docstring for the frames)."""
    root = tmp_path_factory.mktemp("hand")
    hand_archive(root / "txt")
    store = root / "hand.zarr"
    auroradask.to_zarr(auroradask.import_text(root / "txt"), store)
    return store


# ------------------------------------------------------------------- tables from pd.concat


def test_a_frame_table_whose_index_repeats(hand):
    """pd.concat keeps both tables' indexes: 0, 1, 0, 1, 2. The rows are matched in order
    and reported by position, as if the index were fresh."""
    first = pd.DataFrame(
        [
            ("gill", "2014-03-10T06:00:01", "no_aurora"),  # slot 06:00:00: no_aurora
            ("gill", "2014-03-10T06:00:05", "pulsating"),  # slot 06:00:03: pulsating
        ],
        columns=["site", "time", "label"],
    )
    second = pd.DataFrame(
        [
            ("gill", "2014-03-10T06:00:07", "pulsating"),  # slot 06:00:06: other_aurora
            ("gill", "not a time", "pulsating"),  # unreadable: row 3 of the whole table
            ("gill", "2014-03-10T06:30:00", "pulsating"),  # no frame classified
        ],
        columns=["site", "time", "label"],
    )
    table = pd.concat([first, second])
    assert table.index.tolist() == [0, 1, 0, 1, 2]
    result = auroradask.evaluate(hand, table)
    np.testing.assert_array_equal(
        result.confusion.to_numpy(), [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    )
    skipped = result.skipped.set_index("reason")
    assert skipped.loc[_truth.BAD_ROW, "row"] == 3  # its position, not its index 1
    assert skipped["frames"].to_dict() == {_truth.NOT_CLASSIFIED: 1, _truth.BAD_ROW: 1}
    fresh = auroradask.evaluate(hand, table.reset_index(drop=True))
    pd.testing.assert_frame_equal(result.frames, fresh.frames)
    pd.testing.assert_frame_equal(result.skipped, fresh.skipped)


def test_an_interval_table_whose_index_repeats_or_is_not_numbers(hand):
    one = pd.DataFrame(
        [("gill", "2014-03-10 06:00:00", "2014-03-10 06:00:05", "no_aurora")],
        columns=["site", "start", "end", "label"],
    )
    table = pd.concat([one, one.assign(site="fsmi"), one.assign(site="x y")])
    result = auroradask.evaluate(hand, table)
    # gill 06:00:00 (no_aurora) and 06:00:04 (pulsating) lie in the interval; fsmi has no
    # frame then (its frames start at 07:00); "x y" is no site code
    assert result.frames_compared == 2
    np.testing.assert_array_equal(result.confusion.loc["no_aurora"], [1, 1, 0, 0])
    assert result.skipped[["site", "reason", "row"]].values.tolist() == [
        ["fsmi", _truth.EMPTY_INTERVAL, 1],
        ["x y", _truth.BAD_ROW, 2],
    ]
    # an index of labels is no row number either: rows are reported by position
    named = auroradask.evaluate(hand, table.set_axis(["a", "b", "c"]))
    assert named.skipped["row"].tolist() == [1, 2]


# ----------------------------------------------------------------- transport failures (4)


def day_results(status: dict[str, np.ndarray]) -> xr.Dataset:
    """A whole UT day (2014-03-10) of results for each site: ``status`` per slot; where it is
    ok the label alternates no_aurora, pulsating (slot i: i % 2) with confidence 0.9."""
    time = DAY + np.arange(DAY_SLOTS) * SLOT
    codes = np.stack([status[s] for s in status]).astype(np.int8)
    ok = codes == OK
    label = np.where(ok, np.arange(DAY_SLOTS) % 2, -1).astype(np.int8)
    return xr.Dataset(
        {
            "label": (("site", "time"), label),
            "confidence": (("site", "time"), np.where(ok, 0.9, np.nan).astype(np.float32)),
            "timestamp": (("site", "time"), np.where(ok, time, np.datetime64("NaT"))),
            "frame_status": (("site", "time"), codes),
        },
        coords={"site": list(status), "time": time, "class": ["no_aurora", "pulsating"]},
    )


def gill_status(failed: int) -> np.ndarray:
    """Frames in slots 0-19 (00:00:00-00:00:57), except slots 10 and 11 whose file status is
    ``failed``; no file for the rest of the day."""
    status = np.full(DAY_SLOTS, NO_FILE, dtype=np.int8)
    status[:20] = OK
    status[10:12] = failed
    return status


@pytest.fixture(scope="module")
def failed_day():
    """gill: two slots not fetched (status 4); fsmi: nothing fetched all day."""
    return day_results(
        {
            "gill": gill_status(FILE_UNREACHABLE),
            "fsmi": np.full(DAY_SLOTS, FILE_UNREACHABLE, dtype=np.int8),
        }
    )


def test_sheet_numbers_wait_for_a_day_with_transport_failures(failed_day, tmp_path):
    """A later run fetches slots 10-11 and adds frames there, shifting every sheet frame
    number after them: the day is not compared yet. The same day with the two slots known to
    have no file is complete, and is compared."""
    sheet = write_sheet(
        tmp_path / "s.csv", [("gill", 20140310, 0, 5, "cs"), ("fsmi", 20140310, 0, 3, "cs")]
    )
    result = auroradask.evaluate(failed_day, sheet, mapping="themis-pa")
    assert result.frames_compared == 0
    assert result.skipped[["site", "reason", "frames"]].values.tolist() == [
        ["fsmi", _truth.NOT_IN_RESULTS, 4],
        ["gill", _truth.PARTIAL_DAY, 6],
    ]
    settled = failed_day.copy(deep=True)
    settled["frame_status"][0] = gill_status(NO_FILE)
    result = auroradask.evaluate(settled, sheet, mapping="themis-pa")
    # frames 0-5 are slots 0-5, predicted no, pa, no, pa, no, pa; all truly clear sky
    np.testing.assert_array_equal(result.confusion.to_numpy(), [[3, 3], [0, 0]])
    assert result.skipped[["site", "reason"]].values.tolist() == [["fsmi", _truth.NOT_IN_RESULTS]]


def test_frame_and_interval_tables_on_a_day_with_transport_failures(failed_day):
    """The frames fetched are compared; labels on slots not fetched are reported as such,
    not as frames the model left unclassified; a site-day with nothing fetched is not in
    the results."""
    frames = pd.DataFrame(
        [
            ("gill", "2014-03-10T00:00:15", "pulsating"),  # slot 5: pulsating
            ("gill", "2014-03-10T00:00:30", "pulsating"),  # slot 10: not fetched
            ("gill", "2014-03-10T00:00:34", "pulsating"),  # slot 11: not fetched
            ("gill", "2014-03-10T00:00:45", "no_aurora"),  # slot 15: pulsating
            ("gill", "2014-03-10T00:01:30", "no_aurora"),  # slot 30: no file
            ("fsmi", "2014-03-10T00:00:00", "no_aurora"),  # nothing fetched that day
        ],
        columns=["site", "time", "label"],
    )
    result = auroradask.evaluate(failed_day, frames)
    np.testing.assert_array_equal(result.confusion.to_numpy(), [[0, 1], [0, 1]])
    assert result.skipped[["site", "reason", "frames"]].values.tolist() == [
        ["fsmi", _truth.NOT_IN_RESULTS, 1],
        ["gill", _truth.NOT_FETCHED, 2],
        ["gill", _truth.NOT_CLASSIFIED, 1],
    ]
    intervals = pd.DataFrame(
        [
            # slots 0-19: 18 frames fetched, 2 slots not
            ("gill", "2014-03-10 00:00:00", "2014-03-10 00:00:59", "pulsating"),
            # 00:00:32 lies in slot 10, not fetched: it may hold a frame of the interval
            ("gill", "2014-03-10 00:00:32", "2014-03-10 00:00:32", "pulsating"),
            ("gill", "2014-03-10 00:10:00", "2014-03-10 00:20:00", "pulsating"),  # no file
        ],
        columns=["site", "start", "end", "label"],
    )
    result = auroradask.evaluate(failed_day, intervals)
    np.testing.assert_array_equal(result.confusion.to_numpy(), [[0, 0], [9, 9]])
    assert result.skipped[["reason", "row"]].values.tolist() == [
        [_truth.NOT_FETCHED, 0],
        [_truth.NOT_FETCHED, 1],
        [_truth.EMPTY_INTERVAL, 2],
    ]
    assert result.skipped["frames"].fillna(0).tolist() == [2, 1, 0]  # slots not fetched


# --------------------------------------------------------------- exactly on the threshold


def test_a_confidence_exactly_on_the_minimum_is_kept():
    """Results keep confidences in float32: a model's 0.7 is stored as 0.699999988. The
    minimum 0.7 keeps it (``>=``, in float32); the float32 number just below 0.7 is left out,
    and so is everything once the minimum is just above."""
    on = np.float32(0.7)
    below = np.nextafter(on, np.float32(0))
    confidence = np.array([below, on, on, np.float32(0.95)], dtype=np.float32)
    # float64 copies, as Evaluation.frames holds them: 0.699999988 < 0.7 in float64
    as_read = confidence.astype(np.float64)
    assert as_read[1] < 0.7
    np.testing.assert_array_equal(_metrics.at_least(as_read, 0.7), [False, True, True, True])
    frames = pd.DataFrame(
        {
            "site": "gill",
            "time": DAY + np.arange(4) * SLOT,
            "truth": [0, 0, 1, 1],
            "predicted": [1, 0, 0, 1],
            "confidence": as_read,
        }
    )
    skipped = pd.DataFrame(columns=list(_truth.SKIPPED_COLUMNS))
    result = auroradask.Evaluation(["a", "b"], frames, skipped, min_confidence=0.7)
    assert (result.frames_compared, result.below_confidence) == (3, 1)
    np.testing.assert_array_equal(result.confusion.to_numpy(), [[1, 0], [1, 1]])
    sweep = result.sweep([float(below), 0.7, float(np.nextafter(on, np.float32(1)))])
    assert sweep["frames"].tolist() == [4, 3, 1]


def test_the_default_sweep_is_every_0_05_from_0_to_0_95():
    """The sweep's default minimums are 0, 0.05, ... 0.95, written as typed (0.15, not
    0.15000000000000002), so that a frame at 0.95 is kept by the last one."""
    confidence = np.array([0.1, 0.5, 0.96, 0.95], dtype=np.float32)
    table = _metrics.sweep_table([0, 1, 1, 0], [0, 1, 0, 0], confidence, 2)
    assert table["min_confidence"].tolist() == [i / 20 for i in range(20)]
    last = table.iloc[-1]
    assert (last["frames"], last["kept"], last["agreement"]) == (2, 0.5, 0.5)


def test_evaluate_keeps_the_stored_confidence_equal_to_the_minimum(failed_day, tmp_path):
    """End to end: every frame of the day has confidence 0.9 (float32 in the results);
    min_confidence=0.9 compares them all, the next float32 above none."""
    sheet = write_sheet(tmp_path / "s.csv", [("gill", 20140310, 0, 5, "cs")])
    settled = failed_day.sel(site=["gill"]).copy(deep=True)
    settled["frame_status"][0] = gill_status(NO_FILE)
    kept = auroradask.evaluate(settled, sheet, mapping="themis-pa", min_confidence=0.9)
    assert (kept.frames_compared, kept.below_confidence) == (6, 0)
    above = float(np.nextafter(np.float32(0.9), np.float32(1)))
    dropped = auroradask.evaluate(settled, sheet, mapping="themis-pa", min_confidence=above)
    assert (dropped.frames_compared, dropped.below_confidence) == (0, 6)
