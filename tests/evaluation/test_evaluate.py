"""evaluate: every figure against a hand computation, then the realistic files against pandas.

The hand example (``tests.support.textfiles.HAND_FILES`` and ``HAND_SHEET``), classes in the files'
order no_aurora, pulsating, other_aurora, bad_viewing. Frames of gill 2014-03-10 in time
order: 0 no (0.8), 1 pulsating (0.6), 2 other (0.55), 3 pulsating (0.9), 4 pulsating (0.95),
5 bad_viewing (0.7); fsmi 2014-03-10: 0 no (0.85), 1 no (0.99), 2 pulsating (0.4). The sheet
(themis-pa codes) labels gill 0 cs, 1-3 pa, 4-9 pa (cut at 5: 4 frames cut), 2 "aur?"
(unknown), gill 2014-03-11 0-10 pa (empty file), fsmi 0-1 cs, 2 dis-sub, fsmi 2014-03-11
(no file), fsmi 5-7 cl (starts past the end).

Compared (truth, predicted): gill (no,no) (pa,pa) (pa,other) (pa,pa) (pa,pa) (pa,bad);
fsmi (no,no) (no,no) (other,pa): 9 frames, 6 agree.
"""

from __future__ import annotations

import copy
import json
from fractions import Fraction as F

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import auroradask
from auroradask.errors import ArgumentError, SourceNotFoundError
from auroradask.evaluation import _metrics, _truth
from tests.support.textfiles import (
    HAND_CLASSES,
    HAND_SHEET,
    hand_archive,
    realistic_archive,
    realistic_sheet,
    write_classifications,
    write_sheet,
)

NO, PA, OTHER, BAD = range(4)


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    """(store path, sheet .csv path, folder) of the hand example."""
    root = tmp_path_factory.mktemp("hand")
    hand_archive(root / "txt")
    store = root / "hand.zarr"
    auroradask.to_zarr(auroradask.import_text(root / "txt"), store)
    sheet = write_sheet(root / "sheet.csv", HAND_SHEET)
    return store, sheet, root


def figures(value) -> float:
    return pytest.approx(float(value), abs=1e-12)


def test_interval_sheet_every_figure_by_hand(hand):
    store, sheet, _ = hand
    result = auroradask.evaluate(store, sheet, mapping="themis-pa")
    assert result.classes == list(HAND_CLASSES)
    expected = np.array([[3, 0, 0, 0], [0, 3, 1, 1], [0, 1, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(result.confusion.to_numpy(), expected)
    assert list(result.confusion.index) == list(HAND_CLASSES)
    assert result.confusion.index.name == "truth" and result.confusion.columns.name == "predicted"
    assert result.frames_compared == 9 and result.below_confidence == 0
    assert result.agreement == figures(F(6, 9))
    # p_e = (3*3 + 5*4 + 1*1 + 0*1) / 81 = 30/81; kappa = (6/9 - 30/81) / (1 - 30/81) = 8/17
    assert result.kappa == figures(F(8, 17))
    per_class = result.per_class
    assert per_class["precision"].tolist() == [1.0, 0.75, 0.0, 0.0]
    np.testing.assert_allclose(per_class["recall"].to_numpy(), [1.0, 0.6, 0.0, np.nan])
    np.testing.assert_allclose(per_class["f1"].to_numpy(), [1.0, 2 / 3, 0.0, np.nan])
    assert per_class["truth"].tolist() == [3, 5, 1, 0]
    assert per_class["predicted"].tolist() == [3, 4, 1, 1]

    # per site: gill 4/6 agree, p_e = (1*1 + 5*3)/36 -> kappa 2/5; fsmi 2/3, p_e 4/9 -> 2/5
    per_site = result.per_site
    assert per_site.loc["gill", "frames"] == 6 and per_site.loc["fsmi", "frames"] == 3
    assert per_site.loc["gill", "agreement"] == figures(F(2, 3))
    assert per_site.loc["gill", "kappa"] == figures(F(2, 5))
    assert per_site.loc["fsmi", "agreement"] == figures(F(2, 3))
    assert per_site.loc["fsmi", "kappa"] == figures(F(2, 5))
    np.testing.assert_array_equal(
        result.site("fsmi").confusion.to_numpy(),
        [[2, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]],
    )
    nights = result.per_site_day
    assert nights[["site", "date", "frames"]].values.tolist() == [
        ["fsmi", "20140310", 3],
        ["gill", "20140310", 6],
    ]

    skipped = result.skipped
    assert skipped[
        ["site", "date", "start", "end", "truth", "reason", "frames", "row"]
    ].values.tolist() == [
        ["fsmi", "20140310", 5, 7, "cl", _truth.PAST_END, 3, 10],
        ["fsmi", "20140311", 0, 5, "cs", _truth.NOT_IN_RESULTS, 6, 9],
        ["gill", "20140310", 4, 9, "PA", _truth.CUT, 4, 4],
        ["gill", "20140310", 2, 2, "aur?", _truth.UNKNOWN_CODE, 1, 5],
        ["gill", "20140311", 0, 10, "pa", _truth.NO_FRAMES, 11, 6],
    ]


def test_which_frames_were_compared(hand):
    store, sheet, _ = hand
    frames = auroradask.evaluate(store, sheet, mapping="themis-pa").frames
    gill = frames[frames["site"] == "gill"]
    assert gill["time"].dt.strftime("%H:%M:%S").tolist() == [
        "06:00:00",
        "06:00:03",
        "06:00:06",
        "06:00:09",
        "06:00:12",
        "06:00:15",
    ]
    assert gill["truth"].tolist() == [NO, PA, PA, PA, PA, PA]
    assert gill["predicted"].tolist() == [NO, PA, OTHER, PA, PA, BAD]
    np.testing.assert_allclose(gill["confidence"], [0.8, 0.6, 0.55, 0.9, 0.95, 0.7], rtol=1e-6)


def test_min_confidence_and_the_sweep(hand):
    store, sheet, _ = hand
    result = auroradask.evaluate(store, sheet, mapping="themis-pa", min_confidence=0.6)
    # dropped: gill frame 2 (0.55), fsmi frame 2 (0.4); 0.6 itself is kept
    assert result.frames_compared == 7 and result.below_confidence == 2
    np.testing.assert_array_equal(
        result.confusion.to_numpy(), [[3, 0, 0, 0], [0, 3, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]
    )
    assert result.agreement == figures(F(6, 7))
    assert result.kappa == figures(F(3, 4))  # p_e = (3*3 + 4*3)/49 = 3/7
    sweep = result.sweep([0.0, 0.6, 0.9, 0.96, 1.0])
    assert sweep["frames"].tolist() == [9, 7, 3, 1, 0]  # 0.9 keeps the file's 0.9 (float32)
    np.testing.assert_allclose(sweep["kept"], [1, 7 / 9, 3 / 9, 1 / 9, 0])
    np.testing.assert_allclose(sweep["agreement"], [6 / 9, 6 / 7, 1, 1, np.nan])
    np.testing.assert_allclose(sweep["kappa"], [8 / 17, 3 / 4, 1, 1, np.nan])


def test_a_store_against_itself(hand):
    store, _, _ = hand
    result = auroradask.evaluate(store, store)
    assert result.frames_compared == 9
    assert result.agreement == 1.0 and result.kappa == 1.0
    assert result.skipped.empty
    assert (np.diag(result.confusion) == [3, 4, 1, 1]).all()


def test_a_store_against_another_models(hand, tmp_path):
    store, _, _ = hand
    rows = [
        ("06:00:00", 0, "no_aurora", 0.5),
        ("06:00:04", 2, "other_aurora", 0.5),
        ("06:00:06", 2, "other_aurora", 0.5),
        ("06:00:09", 1, "pulsating", 0.5),
        ("06:00:12", 1, "pulsating", 0.5),
        ("06:00:15", 3, "bad_viewing", 0.5),
        ("06:00:30", 1, "pulsating", 0.5),  # not classified in the results
    ]
    write_classifications(tmp_path / "b", "gill", "20140310", rows, producer="model B")
    other = auroradask.import_text(tmp_path / "b")
    result = auroradask.evaluate(store, other)
    np.testing.assert_array_equal(
        result.confusion.to_numpy(), [[1, 0, 0, 0], [0, 2, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]]
    )
    assert result.agreement == figures(F(5, 6))
    assert result.kappa == figures(F(10, 13))  # p_e = (1 + 6 + 2 + 1)/36
    assert result.skipped[["site", "date", "reason", "frames"]].values.tolist() == [
        ["gill", "20140310", _truth.NOT_CLASSIFIED, 1]
    ]
    # the other way round: fsmi is in the truth, not in B's results
    back = auroradask.evaluate(other, store)
    assert back.frames_compared == 6
    assert ["fsmi", "20140310", _truth.NOT_IN_RESULTS, 3] in back.skipped[
        ["site", "date", "reason", "frames"]
    ].values.tolist()


def test_a_per_frame_table(hand):
    store, _, _ = hand
    table = pd.DataFrame(
        [
            ("gill", "2014-03-10T06:00:01", "no_aurora"),  # slot 06:00:00
            ("gill", "2014-03-10T06:00:05", "pulsating"),  # slot 06:00:03, the 06:00:04 frame
            ("gill", "2014-03-10T06:00:07", "Pulsating"),  # slot 06:00:06: other_aurora
            ("gill", "2014-03-10T06:30:00", "pulsating"),  # no frame classified
            ("fsmi", "2014-03-11T07:00:00", "no_aurora"),  # no file that day
            ("gill", "2014-03-10T06:00:09", "aurora"),  # not a class
            ("rank", "2014-03-10T06:00:00", "no_aurora"),  # site not in the results
        ],
        columns=["Site", "time", "label"],
    )
    result = auroradask.evaluate(store, table)
    np.testing.assert_array_equal(
        result.confusion.to_numpy(), [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    )
    assert result.agreement == figures(F(2, 3))
    assert result.kappa == figures(F(1, 2))  # p_e = (1*1 + 2*1)/9
    assert result.skipped[["site", "date", "reason", "frames"]].values.tolist() == [
        ["fsmi", "20140311", _truth.NOT_IN_RESULTS, 1],
        ["gill", "20140310", _truth.NOT_A_CLASS, 1],
        ["gill", "20140310", _truth.NOT_CLASSIFIED, 1],
        ["rank", "20140310", _truth.NOT_IN_RESULTS, 1],
    ]


def test_an_interval_table_with_times(hand, tmp_path):
    store, _, _ = hand
    path = tmp_path / "intervals.csv"
    pd.DataFrame(
        [
            ("gill", "2014-03-10 06:00:04", "2014-03-10 06:00:12", "pulsating"),  # both ends in
            ("fsmi", "2014-03-10 06:59:00", "2014-03-10 07:00:03", "no_aurora"),
            ("fsmi", "2014-03-11 00:00:00", "2014-03-11 23:59:59", "no_aurora"),
            ("gill", "2014-03-10 08:00:00", "2014-03-10 09:00:00", "no_aurora"),
        ],
        columns=["site", "start", "end", "label"],
    ).to_csv(path, index=False)
    result = auroradask.evaluate(store, path)
    np.testing.assert_array_equal(
        result.confusion.to_numpy(), [[2, 0, 0, 0], [0, 3, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    )
    assert result.agreement == figures(F(5, 6))
    assert result.kappa == figures(F(7, 10))  # p_e = (2*2 + 4*3)/36
    assert result.skipped[["site", "reason", "row"]].values.tolist() == [
        ["fsmi", _truth.NOT_IN_RESULTS, 4],
        ["gill", _truth.EMPTY_INTERVAL, 5],
    ]


def test_xlsx_sheet_by_name_gives_what_the_csv_gives(hand, tmp_path):
    store, sheet, _ = hand
    book = write_sheet(tmp_path / "labels.xlsx", HAND_SHEET, sheet="March")
    from_csv = auroradask.evaluate(store, sheet, mapping="themis-pa")
    from_xlsx = auroradask.evaluate(store, book, mapping="themis-pa", sheet="March")
    pd.testing.assert_frame_equal(from_xlsx.confusion, from_csv.confusion)
    pd.testing.assert_frame_equal(from_xlsx.skipped, from_csv.skipped)
    with pytest.raises(ArgumentError, match="^sheet:"):
        auroradask.evaluate(store, book, mapping="themis-pa", sheet="April")
    with pytest.raises(ArgumentError, match="^truth: columns"):  # the README sheet
        auroradask.evaluate(store, book, mapping="themis-pa")


def test_overlapping_intervals(hand, tmp_path):
    store, _, _ = hand
    rows = [
        ("gill", 20140310, 0, 2, "pa", ""),
        ("gill", 20140310, 1, 1, "pa", "the same label again: counted once"),
        ("gill", 20140310, 2, 3, "cs", "frame 2 twice, differently: not compared"),
    ]
    result = auroradask.evaluate(store, write_sheet(tmp_path / "s.csv", rows), mapping="themis-pa")
    # frames 0, 1 (pa), 3 (cs); frame 2 has two labels
    assert result.frames_compared == 3
    assert result.frames["truth"].tolist() == [PA, PA, NO]
    assert result.skipped[["reason", "frames"]].values.tolist() == [[_truth.CONFLICT, 1]]


def test_mappings(hand, tmp_path):
    store, _, _ = hand
    rows = [("gill", 20140310, 0, 0, "clear", ""), ("gill", 20140310, 1, 1, "skip-me", "")]
    sheet = write_sheet(tmp_path / "s.csv", rows)
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"Clear ": "no_aurora", "skip-me": None}))
    result = auroradask.evaluate(store, sheet, mapping=path)
    assert result.frames_compared == 1 and result.agreement == 1.0
    assert result.skipped["reason"].tolist() == [_truth.MAPPED_TO_NOTHING]
    assert auroradask.evaluate(store, sheet).skipped["reason"].tolist() == [_truth.NOT_A_CLASS] * 2
    with pytest.raises(ArgumentError, match="^mapping: 'nope'"):
        auroradask.evaluate(store, sheet, mapping="nope")
    with pytest.raises(ArgumentError, match="^mapping: 'clear' maps to 'clear_sky'"):
        auroradask.evaluate(store, sheet, mapping={"clear": "clear_sky"})
    assert auroradask.MAPPINGS["themis-pa"] == {
        "pa": "pulsating",
        "dis-sub": "other_aurora",
        "diff": "other_aurora",
        "cs": "no_aurora",
        "cl": "bad_viewing",
        "bv": "bad_viewing",
    }


def test_a_preset_naming_a_class_the_model_lacks_skips_those_codes(tmp_path):
    write_classifications(tmp_path / "t", "gill", "20140310", [("06:00:00", 0, "no_aurora", 0.9)])
    sheet = write_sheet(
        tmp_path / "s.csv", [("gill", 20140310, 0, 0, "bv"), ("gill", 20140310, 0, 0, "cs")]
    )
    result = auroradask.evaluate(auroradask.import_text(tmp_path / "t"), sheet, mapping="themis-pa")
    assert result.frames_compared == 1
    assert result.skipped["reason"].tolist() == [_truth.CLASS_ABSENT]


def test_sheet_numbers_need_whole_days(tmp_path):
    """A classify-like dataset covering part of a day: sheet frame numbers cannot be counted."""
    start = np.datetime64("2014-03-10T06:00", "ns")
    time = np.arange(start, start + np.timedelta64(60, "s"), np.timedelta64(3, "s"))
    label = np.zeros((1, len(time)), dtype=np.int8)
    results = xr.Dataset(
        {
            "label": (("site", "time"), label),
            "confidence": (("site", "time"), np.ones(label.shape, np.float32)),
            "timestamp": (("site", "time"), time[None]),
            "frame_status": (("site", "time"), np.zeros(label.shape, np.int8)),
        },
        coords={"site": ["gill"], "time": time, "class": ["no_aurora", "pulsating"]},
    )
    sheet = write_sheet(tmp_path / "s.csv", [("gill", 20140310, 0, 3, "cs")])
    result = auroradask.evaluate(results, sheet, mapping="themis-pa")
    assert result.frames_compared == 0
    assert result.skipped["reason"].tolist() == [_truth.PARTIAL_DAY]
    frames = pd.DataFrame(
        {"site": ["gill"], "time": ["2014-03-10T06:00:30"], "label": ["no_aurora"]}
    )
    assert auroradask.evaluate(results, frames).agreement == 1.0


def test_only_the_named_site_days_are_read(tmp_path):
    """Computing any other site-day of this lazy import fails: the evaluation must not."""
    for day in ("20140310", "20140311", "20140312"):
        for site in ("fsmi", "gill"):
            write_classifications(tmp_path, site, day, [("06:00:00", 0, "no_aurora", 0.9)])
    results = auroradask.import_text(tmp_path)
    for path in tmp_path.glob("**/*_classifications.txt"):
        if "20140311_gill" not in path.name:
            path.unlink()
    with pytest.raises(FileNotFoundError):
        results["label"].compute()
    sheet = write_sheet(tmp_path / "s.csv", [("gill", 20140311, 0, 0, "cs")])
    result = auroradask.evaluate(results, sheet, mapping="themis-pa")
    assert result.frames_compared == 1 and result.agreement == 1.0


def test_json_text_and_plots(hand, tmp_path):
    store, sheet, _ = hand
    result = auroradask.evaluate(store, sheet, mapping="themis-pa")
    path = tmp_path / "report.json"
    result.to_json(path)
    report = json.loads(path.read_text())
    assert report["frames_compared"] == 9
    assert report["agreement"] == pytest.approx(6 / 9) and report["kappa"] == pytest.approx(8 / 17)
    assert report["confusion"]["counts"] == result.confusion.to_numpy().tolist()
    assert report["per_class"]["bad_viewing"] == {
        "precision": 0.0,
        "recall": None,
        "f1": None,
        "truth": 0,
        "predicted": 1,
    }
    assert report["per_site"]["gill"]["kappa"] == pytest.approx(0.4)
    assert [s["reason"] for s in report["skipped"]] == result.skipped["reason"].tolist()
    assert report["truth"]["kind"] == "sheet" and report["truth"]["mapping"] == "themis-pa"
    assert report["results"]["model_sha256"].startswith("imported-text:")
    assert report["sweep"][0]["frames"] == 9

    text = result.to_text()
    assert "frames compared: 9; agreement 0.667; Cohen's kappa 0.471" in text
    assert "interval cut at the day's last frame: 1, 4 frames" in text
    assert "code not in the mapping: 1, 1 frames" in text
    lines = text.splitlines()
    assert lines[0].split() == [*HAND_CLASSES, "recall"]
    assert lines[3].split() == ["pulsating", "0", "3", "1", "1", "0.6"]
    big = copy.copy(result)  # archive scale: counts print as whole numbers, never 1e+06
    big._confusion = result._confusion + 1_234_567
    assert big.to_text().splitlines()[3].split()[:3] == ["pulsating", "1234567", "1234570"]

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = result.plot_confusion(tmp_path / "confusion.png")
    assert isinstance(fig, Figure)  # a new figure, as every plot function returns one
    assert (tmp_path / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    counts = [int(t.get_text()) for t in fig.axes[0].texts]
    assert counts == result.confusion.to_numpy().ravel().tolist()
    fig = result.plot_sweep(tmp_path / "sweep.png")
    assert isinstance(fig, Figure)
    assert (tmp_path / "sweep.png").stat().st_size > 1000
    lines = [line.get_label() for line in fig.axes[0].lines]
    assert lines == ["agreement", "kappa", "share of frames kept"]
    assert fig.axes[0].get_ylabel() and "9 matched frames" in fig.axes[0].get_title()
    # into the caller's axes: those are returned, and nothing else is drawn on
    given = Figure().subplots()
    assert result.plot_sweep(ax=given) is given and len(given.lines) == 3


def test_kernels():
    # a textbook example: 50 frames, two raters
    cm = np.array([[20, 5], [10, 15]])
    s = _metrics.scores(cm)
    assert s["agreement"] == pytest.approx(0.7)
    assert s["kappa"] == pytest.approx((0.7 - 0.5) / 0.5)
    assert np.isnan(_metrics.scores(np.zeros((2, 2)))["kappa"])
    assert _metrics.scores(np.array([[4, 0], [0, 0]]))["kappa"] == 1.0  # one class, full agreement
    np.testing.assert_array_equal(
        _metrics.confusion_matrix([0, 1, 1], [1, 1, 0], 3), [[0, 1, 0], [1, 1, 0], [0, 0, 0]]
    )
    assert _truth.sheet_frames(5, 1, 3) == (slice(1, 4), None)
    assert _truth.sheet_frames(5, 4, 4) == (slice(4, 5), None)
    assert _truth.sheet_frames(5, 3, 9) == (slice(3, 5), _truth.CUT)
    assert _truth.sheet_frames(5, 3, 5) == (slice(3, 5), _truth.CUT)  # one past the last frame
    assert _truth.sheet_frames(5, 3, 4) == (slice(3, 5), None)  # the last frame itself
    assert _truth.sheet_frames(5, 5, 9) == (None, _truth.PAST_END)
    assert _truth.sheet_frames(0, 0, 9) == (None, _truth.NO_FRAMES)
    assert _truth.sheet_frames(5, 3, 2) == (None, _truth.START_AFTER_END)


def test_bad_arguments(hand, tmp_path):
    store, sheet, _ = hand
    with pytest.raises(ArgumentError, match="^min_confidence:"):
        auroradask.evaluate(store, sheet, min_confidence=1.5)
    with pytest.raises(SourceNotFoundError, match="^truth:"):
        auroradask.evaluate(store, tmp_path / "none.xlsx")
    with pytest.raises(SourceNotFoundError, match="^results:"):
        auroradask.evaluate(tmp_path / "none.zarr", sheet)
    with pytest.raises(ArgumentError, match="^truth: columns"):
        auroradask.evaluate(store, pd.DataFrame({"a": [1]}))
    with pytest.raises(ArgumentError, match="^sheet:"):
        auroradask.evaluate(store, sheet, sheet="x")


# --------------------------------------------------------------------- realistic files


def reference_confusion(folder, sheet_path, sheet_name, mapping) -> tuple[pd.DataFrame, int, int]:
    """The confusion table computed directly with pandas from the text files and the sheet,
    following the conventions: frames are a site-day's rows in time order numbered from 0;
    intervals include both ends and are cut at the last frame; codes are compared stripped
    and in lower case; codes outside the mapping are left out.

    Returns the table (truth x predicted class names), and the numbers of intervals with an
    unknown code and of intervals ending past their night's last frame.
    """
    tables = []
    for path in sorted(folder.glob("**/*_classifications.txt")):
        if not any(line[:1].isdigit() for line in path.read_text().splitlines()):
            continue  # comments only
        table = pd.read_csv(path, comment="#")
        table["site"] = path.name.split("_")[1]
        tables.append(table)
    frames = pd.concat(tables, ignore_index=True)
    frames["stamp"] = pd.to_datetime(frames["date"].astype(str) + " " + frames["time"])
    frames = frames.sort_values(["site", "date", "stamp"])
    frames["n"] = frames.groupby(["site", "date"]).cumcount()
    last = frames.groupby(["site", "date"])["n"].max()

    sheet = pd.read_excel(sheet_path, sheet_name=sheet_name)
    sheet["code"] = sheet["Classification"].str.strip().str.lower()
    unknown = int((~sheet["code"].isin(list(mapping))).sum())
    sheet = sheet[sheet["code"].isin(list(mapping))]
    past = 0
    labelled = []
    for row in sheet.itertuples():
        key = (row.Station, row.Date)
        if key in last.index and row._4 > last[key] >= row._3:
            past += 1
        labelled.append(
            pd.DataFrame(
                {
                    "site": row.Station,
                    "date": row.Date,
                    "n": range(row._3, row._4 + 1),
                    "truth": mapping[row.code],
                }
            )
        )
    truth = pd.concat(labelled, ignore_index=True)
    matched = truth.merge(frames, on=["site", "date", "n"], how="inner")
    table = pd.crosstab(matched["truth"], matched["prediction_str"])
    return table, unknown, past


@pytest.fixture(scope="module")
def realistic(tmp_path_factory):
    root = tmp_path_factory.mktemp("realistic")
    written = realistic_archive(root / "txt")
    sheet = realistic_sheet(root / "labels.xlsx", written, sheet="Feb 2017")
    store = root / "published.zarr"
    auroradask.to_zarr(auroradask.import_text(root / "txt"), store)
    return root, sheet, store


def test_realistic_files_reproduce_the_direct_pandas_table(realistic):
    root, sheet, store = realistic
    mapping = auroradask.MAPPINGS["themis-pa"]
    result = auroradask.evaluate(store, sheet, mapping="themis-pa", sheet="Feb 2017")
    expected, unknown, past = reference_confusion(root / "txt", sheet, "Feb 2017", mapping)
    got = result.confusion.rename_axis(index="truth", columns="prediction_str")
    expected = expected.reindex(index=got.index, columns=got.columns, fill_value=0)
    pd.testing.assert_frame_equal(got, expected, check_names=False, check_dtype=False)
    assert result.frames_compared == int(expected.to_numpy().sum()) > 50_000

    n = expected.to_numpy().sum()
    diagonal = np.trace(expected.to_numpy())
    p_e = (expected.sum(axis=1) * expected.sum(axis=0)).sum() / n**2
    assert result.agreement == pytest.approx(diagonal / n)
    assert result.kappa == pytest.approx((diagonal / n - p_e) / (1 - p_e))
    np.testing.assert_allclose(
        result.per_class["recall"], np.diag(expected) / expected.sum(axis=1).to_numpy()
    )
    np.testing.assert_allclose(
        result.per_class["precision"], np.diag(expected) / expected.sum(axis=0).to_numpy()
    )
    reasons = result.skipped["reason"].value_counts()
    assert reasons[_truth.UNKNOWN_CODE] == unknown >= 1
    assert reasons[_truth.CUT] == past >= 1
    assert reasons[_truth.NOT_IN_RESULTS] == 1  # atha's third night has no file
    assert reasons[_truth.NO_FRAMES] == 1  # rank's second night is an empty file
    assert set(result.per_site.index) == {"atha", "fsmi", "gill", "rank"}
    assert result.per_site["frames"].sum() == result.frames_compared
