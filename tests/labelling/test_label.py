"""Labelling by hand: the page (in headless Chromium), its sheets read by evaluate, merging.

The browser tests drive Debian's Chromium (``/usr/bin/chromium``, or ``AURORADASK_CHROMIUM``)
with Playwright, as tests/test_dashboard.py; they are skipped where either is missing, unless
``AURORADASK_REQUIRE_BROWSER=1`` makes that a failure. Every request the page makes other
than its own file is refused and recorded: the page must work with no network.
``AURORADASK_SCREENSHOT=PATH`` saves the labelled sample page as a PNG (the README's figure:
``docs/_static/gallery/label-page.png``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import auroradask
from auroradask.cli.main import main
from auroradask.errors import ArgumentError
from auroradask.labelling import _images, _merge, _sheets
from tests.support.browser import launch, sync_playwright_or_skip
from tests.support.utils import set_site_names

SOURCE = auroradask.sample_archive()
CLASSES = ["bad_viewing", "no_aurora", "other_aurora", "pulsating"]
T = "2014-03-10T"  # the sample: gill, one frame every 3 s from 06:00:00 to 06:05:57


def frame_time(k: int) -> str:
    """UT slot of the sample day's frame number k (06:00:00 is frame 0)."""
    return str(pd.Timestamp(T + "06:00:00") + pd.Timedelta(seconds=3 * k))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The sample classified by the demo model over its whole UT day, keogram stored: the
    day is complete (every other slot written as 'no file'), so sheet frame numbers count."""
    path = tmp_path_factory.mktemp("label") / "day.zarr"
    frames = auroradask.open_themis(SOURCE, "gill", "2014-03-10", "2014-03-10", chunk_minutes=60)
    auroradask.to_zarr(auroradask.classify(frames, auroradask.demo_model()), path, progress=False)
    return str(path)


def page_data(path) -> dict:
    text = open(path, encoding="utf-8").read()
    block = re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)
    return json.loads(block.group(1))


# ------------------------------------------------------------------------- the page file


def test_page_holds_the_night_and_every_frame(store, tmp_path):
    info = auroradask.label_page(
        store, "gill", "2014-03-09", out=tmp_path / "p.html", archive=SOURCE
    )
    assert (info.frames, info.thumbnails, info.keogram) == (120, 120, "store")
    assert info.start == pd.Timestamp(T + "06:00") and info.end == pd.Timestamp(T + "06:06")
    assert info.partial_days == []
    assert info.bytes == os.path.getsize(info.path)
    # the sample's night, every frame a thumbnail: about 1.1 MB (the docstring says so)
    assert 0.8e6 < info.bytes < 1.5e6 and info.thumbnail_bytes > 0.85 * info.bytes
    data = page_data(info.path)
    results = auroradask.open_results(store)
    one = results.isel(site=0).sel(time=slice(T + "06:00", T + "06:05:57"))
    assert data["n"] == 120 and data["classes"] == CLASSES == data["model_classes"]
    assert data["label"] == one["label"].values.tolist()
    assert data["confidence"] == np.round(one["confidence"].values * 100).astype(int).tolist()
    assert data["days"] == {"20140310": {"offset": 0, "complete": True}}
    assert data["thumbs"]["slots"] == list(range(120))
    assert all(s.startswith("data:image/jpeg;base64,") for s in data["thumbs"]["src"])
    assert data["keogram"]["columns"] == 120 and data["keogram"]["ends"] == ["N", "S"]
    assert data["t0"] == pd.Timestamp(T + "06:00").value // 10**6
    html = open(info.path, encoding="utf-8").read()
    # nothing from elsewhere: no URL but the data: images, a CSP that allows nothing else
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html)
    assert "http://" not in html and "https://" not in html
    assert "default-src 'none'" in html


def test_thumbnails_fit_the_budget(store, tmp_path):
    def make(value, **kw):
        return auroradask.label_page(
            store, "gill", "2014-03-09", out=tmp_path / "p.html", thumbnails=value, **kw
        )

    seven = make(7, archive=SOURCE)
    slots = page_data(seven.path)["thumbs"]["slots"]
    assert seven.thumbnails == 7 and slots == [0, 20, 40, 60, 79, 99, 119]  # evenly, both ends
    small = make("120kB", archive=SOURCE)
    assert 0 < small.thumbnail_bytes <= 120_000 and 8 <= small.thumbnails < 120
    assert small.bytes < make(0, archive=SOURCE).bytes + 120_000
    assert make("1GB", archive=SOURCE).thumbnails == 120
    none = make("20MB")  # no archive: no thumbnails, and the page says why
    assert none.thumbnails == 0 and "without the archive" in page_data(none.path)["notes"][0]
    for bad in ("lots", "-3", -3, "12 parsecs", True):
        with pytest.raises(ArgumentError, match="thumbnails"):
            make(bad, archive=SOURCE)


def test_keogram_from_the_archive_when_the_store_has_none(tmp_path):
    path = tmp_path / "nokeo.zarr"
    frames = auroradask.open_themis(SOURCE, "gill", T + "06:00", T + "06:06", chunk_minutes=1)
    auroradask.to_zarr(
        auroradask.classify(frames, auroradask.demo_model(), keogram=False), path, progress=False
    )
    out = tmp_path / "p.html"
    info = auroradask.label_page(path, "gill", "2014-03-09", out=out, archive=SOURCE, thumbnails=0)
    assert info.keogram == "archive" and info.keogram_bytes > 1000
    # the 6-minute store is part of a UT day: frame numbers will not do, the page says so
    assert info.partial_days == ["20140310"]
    assert "per-frame table" in page_data(out)["notes"][0]
    east = auroradask.label_page(
        path, "gill", "2014-03-09", out=out, archive=SOURCE, thumbnails=0, direction="east-west"
    )
    assert east.keogram == "archive" and page_data(out)["keogram"]["ends"] == ["E", "W"]
    bare = auroradask.label_page(path, "gill", "2014-03-09", out=out)
    assert bare.keogram is None and page_data(out)["keogram"] == {"src": None}


def test_bad_arguments(store, tmp_path):
    out = tmp_path / "p.html"
    with pytest.raises(ArgumentError, match="unknown site 'fsmi'"):
        auroradask.label_page(store, "fsmi", "2014-03-09", out=out)
    with pytest.raises(ArgumentError, match="no classified frame"):
        auroradask.label_page(store, "gill", "2014-03-12", out=out)
    with pytest.raises(ArgumentError, match="night: cannot read"):
        auroradask.label_page(store, "gill", "someday", out=out)
    with pytest.raises(ArgumentError, match="at most 9 classes"):
        auroradask.label_page(store, "gill", "2014-03-09", out=out, classes=list("abcdefghij"))
    with pytest.raises(ArgumentError, match="repeat"):
        auroradask.label_page(store, "gill", "2014-03-09", out=out, classes=["pa", "PA"])
    with pytest.raises(ArgumentError, match="give the archive"):
        auroradask.label_page(store, "gill", "2014-03-09", out=out, direction="east-west")
    with pytest.raises(ArgumentError, match="out: folder"):
        auroradask.label_page(store, "gill", "2014-03-09", out=tmp_path / "no" / "p.html")
    assert not out.exists()


def test_given_classes_take_the_models_colours_where_they_share_a_name(store, tmp_path):
    out = tmp_path / "p.html"
    auroradask.label_page(store, "gill", "2014-03-09", out=out, classes=["pa", "Pulsating", "cs"])
    data = page_data(out)
    assert data["classes"] == ["pa", "Pulsating", "cs"]
    assert data["colors"][1] == data["model_colors"][3]
    assert len(set(data["colors"]) | set(data["model_colors"])) == 6


HOSTILE = [
    "</script><script>window.owned=1</script>",
    '<img src=x onerror="window.owned=2">',
    'a,b "quoted"\nline',
    "\u2028&amp;",
]


def hostile_results(store) -> xr.Dataset:
    ds = auroradask.open_results(store).assign_coords({"class": HOSTILE, "site": HOSTILE[:1]})
    ds.attrs["model_file"] = "<b onmouseover=alert(1)>model</b>"
    return ds


def test_names_from_a_store_stay_text(store, tmp_path):
    out = tmp_path / "p.html"
    auroradask.label_page(hostile_results(store), HOSTILE[0], "2014-03-09", out=out)
    html = out.read_text(encoding="utf-8")
    template = (resources.files("auroradask") / "data/label.html").read_text(encoding="utf-8")
    # the data block holds no '<' at all: no tag of the store's can close the script
    block = html[html.index('type="application/json">') :]
    block = block[len('type="application/json">') : block.index("</script>")]
    assert "<" not in block and ">" not in block and "&" not in block
    assert html.count("</script>") == template.count("</script>")
    data = page_data(out)
    assert data["classes"] == HOSTILE and data["model"].startswith("<b onmouseover")
    assert data["site"] == HOSTILE[0]


def test_a_store_of_hostile_site_names_is_refused(store, tmp_path, capsys):
    """A store's site names are refused when it is read (they would be page text), in one
    line naming the store; no page is written."""
    altered = tmp_path / "altered.zarr"
    shutil.copytree(store, altered)
    set_site_names(altered, [HOSTILE[0]])
    out = tmp_path / "p.html"
    args = ["label", str(altered), "--site", "gill", "--night", "2014-03-09", "-o", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"auroradask: store: {altered} holds site names")
    assert "not site codes" in err[0] and not out.exists()


# ------------------------------------------------------------------------- sheets


def test_label_sheet_counts_frames_as_evaluate_does(store, tmp_path):
    sheet = auroradask.label_sheet(
        store,
        "gill",
        [
            (T + "06:01:00", T + "06:02:28", "other_aurora"),
            (T + "06:02:57", T + "06:02:57", "pulsating"),
        ],
        labeller="ann",
    )
    assert list(sheet.columns) == list(_sheets.SHEET)
    assert sheet[["Date", "Start frame", "End frame", "Classification"]].values.tolist() == [
        ["20140310", 20, 49, "other_aurora"],
        ["20140310", 59, 59, "pulsating"],
    ]
    assert sheet["Start UT"].tolist() == ["2014-03-10 06:01:00", "2014-03-10 06:02:57"]
    assert sheet["End UT"].tolist() == ["2014-03-10 06:02:27", "2014-03-10 06:02:57"]
    path = tmp_path / "s.csv"
    sheet.to_csv(path, index=False)
    result = auroradask.evaluate(store, path)
    assert result.skipped.empty and result.frames_compared == 31
    expected = pd.DatetimeIndex([frame_time(k) for k in [*range(20, 50), 59]])
    assert pd.DatetimeIndex(result.frames["time"]).equals(expected)
    assert result.frames["truth"].tolist() == [2] * 30 + [3]
    with pytest.raises(ArgumentError, match="no classified frame"):
        auroradask.label_sheet(store, "gill", [(T + "07:00", T + "07:10", "pulsating")])
    with pytest.raises(ArgumentError, match="starts after it ends"):
        auroradask.label_sheet(store, "gill", [(T + "06:03", T + "06:02", "pulsating")])


def midnight_results() -> xr.Dataset:
    """Two whole UT days of gill, frames 10:00-10:01 on the first day (before the night:
    they shift its frame numbers) and 23:58-00:02 but for a gap of four at 00:01:30."""
    time = np.arange(
        np.datetime64("2014-03-09T00:00", "ns"), np.datetime64("2014-03-11T00:00", "ns"), 3 * 10**9
    ).astype("datetime64[ns]")
    label = np.full(time.size, -1, np.int8)
    for a, b in (
        ("2014-03-09T10:00", "2014-03-09T10:01"),
        ("2014-03-09T23:58", "2014-03-10T00:02"),
    ):
        label[(time >= np.datetime64(a)) & (time < np.datetime64(b))] = 1
    label[(time >= np.datetime64("2014-03-10T00:01")) & (label >= 0)] = 3
    label[
        (time >= np.datetime64("2014-03-10T00:01:30"))
        & (time < np.datetime64("2014-03-10T00:01:40"))
    ] = -1
    status = np.where(label >= 0, 0, 1).astype(np.int8)
    return xr.Dataset(
        {
            "label": (("site", "time"), label[None]),
            "confidence": (
                ("site", "time"),
                np.where(label >= 0, 0.8, np.nan)[None].astype(np.float32),
            ),
            "timestamp": (("site", "time"), time[None]),
            "frame_status": (("site", "time"), status[None]),
        },
        coords={"site": ["gill"], "time": time, "class": CLASSES, "longitude": ("site", [-94.6])},
        attrs={"model_file": "synthetic"},
    )


def test_an_interval_across_midnight_is_a_row_per_ut_day(tmp_path):
    results = midnight_results()
    sheet = auroradask.label_sheet(
        results, "gill", [("2014-03-09T23:59", "2014-03-10T00:00:57", "pulsating")]
    )
    # day 1: 20 frames at 10:00, 40 at 23:58-23:59:57; day 2: 40 at 00:00-00:01:57
    assert sheet[["Date", "Start frame", "End frame"]].values.tolist() == [
        ["20140309", 40, 59],
        ["20140310", 0, 19],
    ]
    assert sheet["End UT"].tolist() == ["2014-03-09 23:59:57", "2014-03-10 00:00:57"]
    path = tmp_path / "s.csv"
    sheet.to_csv(path, index=False)
    result = auroradask.evaluate(results, path)
    assert result.skipped.empty and result.frames_compared == 40
    assert result.frames["time"].min() == pd.Timestamp("2014-03-09T23:59")
    info = auroradask.label_page(results, "gill", "2014-03-09", out=tmp_path / "p.html")
    data = page_data(info.path)
    assert data["days"] == {
        "20140309": {"offset": 20, "complete": True},
        "20140310": {"offset": 0, "complete": True},
    }
    assert info.start == pd.Timestamp("2014-03-09T23:58") and info.frames == 76


# ------------------------------------------------------------------------- merging


def sheet_of(rows, labeller):
    """A page-style sheet of the sample day: (start frame, end frame, class) rows."""
    return pd.DataFrame(
        [
            {
                "Station": "gill",
                "Date": "20140310",
                "Start frame": a,
                "End frame": b,
                "Start UT": frame_time(a),
                "End UT": frame_time(b),
                "Classification": c,
                "Labeller": labeller,
            }
            for a, b, c in rows
        ]
    )


A = [(0, 39, "pulsating"), (40, 79, "no_aurora"), (80, 119, "other_aurora")]
B = [
    (0, 29, "pulsating"),
    (30, 79, "No_Aurora "),
    (80, 99, "other_aurora"),
    (100, 119, "bad_viewing"),
]
C = [(0, 29, "pulsating"), (30, 79, "no_aurora"), (80, 119, "other_aurora")]


@pytest.fixture()
def sheets(tmp_path):
    paths = []
    for name, rows in (("A", A), ("B", B), ("C", C)):
        path = tmp_path / f"{name.lower()}.csv"
        sheet_of(rows, name).to_csv(path, index=False)
        paths.append(str(path))
    return paths


def per_frame(rows):
    out = [None] * 120
    for a, b, c in rows:
        out[a : b + 1] = [c.strip().lower()] * (b - a + 1)
    return out


def test_kappa_between_two_labellers_by_hand_and_by_sklearn(sheets):
    from sklearn.metrics import cohen_kappa_score

    merged = auroradask.merge_labels(sheets[:2])
    assert merged.labellers == ["A", "B"]
    assert [c.lower() for c in merged.classes] == CLASSES
    (pair,) = merged.pairs.to_dict("records")
    # 120 frames: both agree on 90 (0-29, 40-79, 80-99); A's margins 0/40/40/40, B's
    # 20/50/20/30 (bad_viewing, no_aurora, other_aurora, pulsating): p_e = 4000 / 14400
    p_e = (40 * 50 + 40 * 20 + 40 * 30) / 120**2
    assert pair["frames"] == 120 and pair["agreement"] == pytest.approx(0.75)
    assert (
        pair["kappa"]
        == pytest.approx((0.75 - p_e) / (1 - p_e))
        == pytest.approx(0.653846, abs=1e-6)
    )
    a, b = per_frame(A), per_frame(B)
    assert pair["kappa"] == pytest.approx(cohen_kappa_score(a, b))
    # each class against the rest: pulsating by hand, 110 of 120 agree, p_e = 8400/14400
    assert pair["kappa pulsating"] == pytest.approx((110 / 120 - 8400 / 14400) / (1 - 8400 / 14400))
    assert pair["kappa pulsating"] == pytest.approx(0.8)
    assert pair["kappa other_aurora"] == pytest.approx(4 / 7)
    assert pair["kappa bad_viewing"] == pytest.approx(0.0)  # B alone used it
    for c in CLASSES:
        want = cohen_kappa_score([x == c for x in a], [x == c for x in b])
        assert merged.per_class.loc[("A", "B"), merged.classes[CLASSES.index(c)]] == pytest.approx(
            want
        )
    # the merged sheet: frames both gave one class; 30 frames without a consensus
    assert merged.sheet[["Start frame", "End frame", "Classification"]].values.tolist() == [
        [0, 29, "pulsating"],
        [40, 79, "no_aurora"],
        [80, 99, "other_aurora"],
    ]
    assert merged.disagreements == 30 and merged.frames["merged"].isna().sum() == 30
    # every end is one the sheets name, so every UT time is known
    assert merged.sheet["Start UT"].tolist() == [frame_time(0), frame_time(40), frame_time(80)]
    assert merged.sheet["End UT"].tolist() == [frame_time(29), frame_time(79), frame_time(99)]
    assert "0.654" in merged.to_text()


def test_three_labellers_majority_and_the_merged_sheet_evaluates(store, sheets, tmp_path):
    from sklearn.metrics import cohen_kappa_score

    merged = auroradask.merge_labels(sheets)
    assert merged.sheet[["Start frame", "End frame", "Classification"]].values.tolist() == [
        [0, 29, "pulsating"],
        [30, 79, "no_aurora"],  # B and C against A
        [80, 119, "other_aurora"],  # A and C against B
    ]
    assert merged.disagreements == 0 and merged.frames["votes"].min() == 2
    kappas = {(r["a"], r["b"]): r["kappa"] for r in merged.pairs.to_dict("records")}
    rows = {"A": A, "B": B, "C": C}
    for (x, y), k in kappas.items():
        assert k == pytest.approx(cohen_kappa_score(per_frame(rows[x]), per_frame(rows[y])))
    assert merged.kappa == pytest.approx(np.mean(list(kappas.values())))
    path = tmp_path / "merged.csv"
    merged.sheet.to_csv(path, index=False)
    result = auroradask.evaluate(store, path)
    assert result.skipped.empty and result.frames_compared == 120
    assert result.frames["truth"].tolist() == [3] * 30 + [1] * 50 + [2] * 40


def test_merge_fills_unknown_times_from_the_store_and_reports_conflicts(store, tmp_path):
    a = sheet_of([(0, 10, "pulsating")], "ann")
    b = sheet_of([(0, 5, "no_aurora"), (20, 24, "pulsating"), (22, 30, "no_aurora")], "bob")
    merged = auroradask.merge_labels([a, b])
    # 0-5 a tie; 6-10 ann alone; bob's 22-24 are his conflict: 20-21 pulsating, 25-30 no
    assert merged.sheet[["Start frame", "End frame", "Classification"]].values.tolist() == [
        [6, 10, "pulsating"],
        [20, 21, "pulsating"],
        [25, 30, "no_aurora"],
    ]
    # frame 6 and frame 21 end no sheet's interval: their times are unknown without the store
    assert merged.sheet["Start UT"].tolist() == ["", frame_time(20), ""]
    assert merged.sheet["End UT"].tolist() == [frame_time(10), "", frame_time(30)]
    assert merged.skipped[["labeller", "reason", "frames"]].values.tolist() == [
        ["bob", "frames labelled twice, differently", 3],
        ["bob", "frames labelled twice, differently", 3],
    ]
    with_store = auroradask.merge_labels([a, b], store=store)
    assert with_store.sheet["Start UT"].tolist() == [frame_time(k) for k in (6, 20, 25)]
    assert with_store.sheet["End UT"].tolist() == [frame_time(k) for k in (10, 21, 30)]
    # ann and bob share 0-10 and ...: only 0-5 where they disagree, 6-10 bob did not label
    (pair,) = merged.pairs.to_dict("records")
    assert pair["frames"] == 6 and pair["agreement"] == 0.0
    strict = auroradask.merge_labels([a, b], min_votes=2)
    assert strict.sheet.empty


def test_a_thumbnail_budget_holds_when_the_probe_underestimates():
    """The probe's frames are small, the others ten times bigger: thumbnails are dropped
    (evenly) until they fit."""
    candidates = np.arange(1000)
    probe = set(candidates[_images._evenly(1000, 12)].tolist())

    def encode(slots):
        return {int(s): "x" * (100 if int(s) in probe else 1000) for s in slots}

    chosen = _images.choose_thumbnails(candidates, ("bytes", 20_000), encode)
    assert 10 <= len(chosen) and sum(_images._item_bytes(s, u) for s, u in chosen.items()) <= 20_000
    assert _images.choose_thumbnails(candidates, ("count", 5), encode).keys() == {
        0,
        250,
        500,
        749,
        999,
    }


def test_vote_kernel():
    codes = np.array([[0, 0, -1], [0, 1, -1], [0, 1, 1], [-1, -1, 2], [-1, -1, -1], [2, 2, 1]])
    merged, votes = _merge.vote(codes)
    assert merged.tolist() == [0, -1, 1, 2, -1, 2] and votes.tolist() == [2, 0, 2, 1, 0, 2]
    merged, _ = _merge.vote(codes, min_votes=2)
    assert merged.tolist() == [0, -1, 1, -1, -1, 2]


def test_merge_bad_input(sheets, tmp_path):
    with pytest.raises(ArgumentError, match="names repeat"):
        auroradask.merge_labels([sheets[0], sheets[0]])
    assert auroradask.merge_labels([sheets[0], sheets[0]], labellers=["x", "y"]).kappa == 1.0
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"site": ["gill"], "time": [T + "06:00"], "label": ["pa"]}).to_csv(
        bad, index=False
    )
    with pytest.raises(ArgumentError, match="bad: columns"):
        auroradask.merge_labels([sheets[0], bad])
    with pytest.raises(ArgumentError, match="min_votes"):
        auroradask.merge_labels(sheets, min_votes=0)
    with pytest.raises(ArgumentError, match="list of one or more"):
        auroradask.merge_labels(sheets[0])
    with pytest.raises(auroradask.SourceNotFoundError):
        auroradask.merge_labels([sheets[0], tmp_path / "none.csv"])


# ------------------------------------------------------------------------- the command


def test_cli_page_and_merge(store, sheets, tmp_path, capsys):
    out = tmp_path / "page.html"
    args = ["label", store, "--site", "gill", "--night", "2014-03-09", "-o", str(out)]
    assert main([*args, "--source", SOURCE, "--thumbnails", "10"]) == 0
    text = capsys.readouterr().out
    assert "120 frames" in text and "10 thumbnails" in text and out.exists()
    assert main(["label", store, "--site", "gill", "-o", str(out)]) == 2
    assert "--night required" in capsys.readouterr().err
    assert main([*args, "--thumbnails", "many"]) == 2
    merged, report = tmp_path / "m.csv", tmp_path / "r.json"
    assert main(["label", "--merge", *sheets[:2], "-o", str(merged), "--report", str(report)]) == 0
    text = capsys.readouterr().out
    assert "Cohen's kappa" in text and "0.654" in text and "3 intervals" in text
    assert len(pd.read_csv(merged)) == 3
    assert json.loads(report.read_text())["pairs"][0]["kappa"] == pytest.approx(0.653846, abs=1e-6)
    assert main(["label", "--merge", *sheets, "--site", "gill", "-o", str(merged)]) == 2
    assert "not with --merge" in capsys.readouterr().err
    assert main(["label", "--merge", *sheets, "-o", str(tmp_path / "m.xlsx")]) == 2


# ------------------------------------------------------------------------- in a browser


class Offline:
    """A browser context in which every request but the page's own file is refused, and
    every request and console problem is recorded."""

    def __init__(self, browser, page_path) -> None:
        self.url = page_path.resolve().as_uri()
        self.context = browser.new_context(
            viewport={"width": 1280, "height": 800}, accept_downloads=True
        )
        self.refused: list[str] = []
        self.requests: list[str] = []
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.context.route("**/*", self._route)
        # the net catches what leaves: a request from a blank page is refused and recorded
        probe = self.context.new_page()
        probe.evaluate("fetch('http://127.0.0.1:9/probe').catch(() => 0)")
        probe.close()
        assert self.refused == ["http://127.0.0.1:9/probe"]
        self.refused.clear()
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on(
            "console",
            lambda m: self.problems.append(m.text) if m.type in ("error", "warning") else None,
        )
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def _route(self, route) -> None:
        if route.request.url == self.url:
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def open(self) -> None:
        self.page.goto(self.url)  # the page's script has run by its load event
        assert self.page.evaluate("!!(window.auroradaskLabel && window.auroradaskLabel.ready)")

    def api(self, call: str):
        return self.page.evaluate(f"window.auroradaskLabel.{call}")

    def point(self, hms: str, panel: str = "keo", day: str = T) -> dict:
        return self.api(f"point(window.auroradaskLabel.slotOf('{day}{hms}'), '{panel}')")

    def drag(self, start: str, end: str, day: str = T) -> None:
        a, b = self.point(start, day=day), self.point(end, day=day)
        self.page.mouse.move(a["x"], a["y"])
        self.page.mouse.down()
        self.page.mouse.move(b["x"], b["y"], steps=6)
        self.page.mouse.up()

    def click(self, hms: str, panel: str = "keo", day: str = T) -> None:
        p = self.point(hms, panel, day)
        self.page.mouse.click(p["x"], p["y"])

    def intervals(self) -> list[tuple[str, str, str]]:
        return [(i["start"][11:], i["end"][11:], i["code"]) for i in self.api("intervals()")]

    def save(self, button: str, folder) -> str:
        with self.page.expect_download() as download:
            self.page.click(button)
        path = folder / download.value.suggested_filename
        download.value.save_as(path)
        return str(path)

    def offline_checks(self) -> None:
        assert self.refused == []
        assert {u for u in self.requests if not u.startswith(("data:", "blob:"))} <= {self.url}
        assert self.problems == [] and self.dialogs == []


@contextlib.contextmanager
def chromium():
    sync_playwright = sync_playwright_or_skip()
    with sync_playwright() as p:
        browser = launch(p)
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.browser
def test_label_a_night_in_the_browser(store, tmp_path):
    page_path = tmp_path / "gill.html"
    info = auroradask.label_page(store, "gill", "2014-03-09", out=page_path, archive=SOURCE)
    with chromium() as browser:
        s = Offline(browser, page_path)
        s.open()
        assert s.page.inner_text("#legend").split() == [
            w for k, c in enumerate(CLASSES) for w in (str(k + 1), c)
        ]
        s.page.fill("#labeller", "ann")
        s.page.press("#labeller", "Enter")
        # drag over 06:01:00-06:02:27 on the keogram, label it 3 (other_aurora)
        s.drag("06:01:00", "06:02:27")
        assert "30 frames" in s.page.text_content("#message")
        s.page.keyboard.press("3")
        assert s.intervals() == [("06:01:00", "06:02:27", "other_aurora")]
        # step ten frames with the arrow: the frame view follows, thumbnail and all
        for _ in range(10):
            s.page.keyboard.press("ArrowRight")
        assert s.api("cursor()") == 59
        assert s.page.get_attribute("#thumb", "data-slot") == "59"
        assert s.page.text_content("#f-time") == "2014-03-10 06:02:57 UT"
        assert s.page.text_content("#f-number") == "20140310 #59"
        s.page.keyboard.press("4")  # the frame at the cursor: pulsating
        for _ in range(3):
            s.page.keyboard.press("ArrowRight")
        s.page.keyboard.press("2")
        assert s.intervals()[-1] == ("06:03:06", "06:03:06", "no_aurora")
        s.page.keyboard.press("Control+z")  # undo the last label
        labelled = [("06:01:00", "06:02:27", "other_aurora"), ("06:02:57", "06:02:57", "pulsating")]
        assert s.intervals() == labelled
        assert s.page.locator("#intervals tr").count() == 2
        sheet_path = s.save("#save-sheet", tmp_path)
        frames_path = s.save("#save-frames", tmp_path)
        assert os.path.basename(sheet_path) == "gill_2014-03-09_ann_labels.csv"
        if os.environ.get("AURORADASK_SCREENSHOT"):
            s.drag("06:03:30", "06:04:30")
            s.page.keyboard.press("2")
            s.drag("06:04:36", "06:05:20")
            s.page.wait_for_timeout(200)
            s.page.screenshot(path=os.environ["AURORADASK_SCREENSHOT"], full_page=True)
            s.page.keyboard.press("Escape")
            s.page.keyboard.press("Control+z")
        # reloaded (a page closed by mistake): the labels are still there
        s.page.reload()
        assert s.api("ready")
        assert s.intervals() == labelled
        assert s.page.input_value("#labeller") == "ann"
        assert "restored" in s.page.text_content("#message")
        s.offline_checks()
        s.context.close()

    # the saved sheet is what label_sheet makes, and evaluate reads it frame for frame
    sheet = pd.read_csv(sheet_path, dtype=str, keep_default_na=False)
    expected = auroradask.label_sheet(
        store, "gill", [(T + a, T + b, c) for a, b, c in labelled], labeller="ann"
    ).astype(str)
    pd.testing.assert_frame_equal(sheet, expected)
    want_times = pd.DatetimeIndex([frame_time(k) for k in [*range(20, 50), 59]])
    want_truth = [2] * 30 + [3]
    for truth in (sheet_path, frames_path):
        result = auroradask.evaluate(store, truth)
        assert result.skipped.empty and result.frames_compared == 31
        assert pd.DatetimeIndex(result.frames["time"]).equals(want_times)
        assert result.frames["truth"].tolist() == want_truth
    table = pd.read_csv(frames_path, dtype=str)
    assert list(table.columns) == list(_sheets.FRAME_TABLE)
    assert table["frame"].astype(int).tolist() == [*range(20, 50), 59]
    # and fit_head matches the same frames from it (its loader is evaluate's)
    from auroradask.learn._heads import labelled_frames

    matched, skipped, head_classes = labelled_frames(auroradask.open_results(store), frames_path)
    assert skipped.empty and head_classes == ["other_aurora", "pulsating"]
    assert pd.DatetimeIndex(matched["time"]).equals(want_times)
    assert matched["truth"].tolist() == [0] * 30 + [1]
    assert info.thumbnails == 120


@pytest.mark.browser
def test_edit_delete_redo_and_painting_over(store, tmp_path):
    page_path = tmp_path / "gill.html"
    auroradask.label_page(store, "gill", "2014-03-09", out=page_path, thumbnails=0)
    with chromium() as browser:
        s = Offline(browser, page_path)
        s.open()
        s.drag("06:00:30", "06:01:30")
        s.page.keyboard.press("1")
        s.drag("06:03:00", "06:04:00")
        s.page.keyboard.press("2")
        s.page.keyboard.press("Control+z")
        assert s.intervals() == [("06:00:30", "06:01:30", "bad_viewing")]
        s.page.keyboard.press("Control+y")
        two = [("06:00:30", "06:01:30", "bad_viewing"), ("06:03:00", "06:04:00", "no_aurora")]
        assert s.intervals() == two
        # edit an end in the list
        end = s.page.locator("#intervals tr").nth(0).locator("input.end")
        end.fill("06:01:45")
        end.press("Enter")
        assert s.intervals()[0] == ("06:00:30", "06:01:45", "bad_viewing")
        # choose the second in the strip, then ']' moves its end to the cursor (a click)
        s.click("06:03:30", "mine")
        s.click("06:04:30")
        s.page.keyboard.press("]")
        assert s.intervals()[1] == ("06:03:00", "06:04:30", "no_aurora")
        # a label inside another cuts it in two; the same class beside it joins it
        s.drag("06:03:39", "06:03:45")
        s.page.keyboard.press("4")
        assert s.intervals()[1:] == [
            ("06:03:00", "06:03:36", "no_aurora"),
            ("06:03:39", "06:03:45", "pulsating"),
            ("06:03:48", "06:04:30", "no_aurora"),
        ]
        s.page.keyboard.press("ArrowRight")
        s.page.keyboard.press("4")
        assert s.intervals()[2] == ("06:03:39", "06:03:48", "pulsating")
        # delete: the list's button, and Del on the chosen one
        s.page.locator("#intervals tr").nth(0).locator("button.delete").click()
        assert [i[0] for i in s.intervals()] == ["06:03:00", "06:03:39", "06:03:51"]
        s.click("06:03:42", "mine")
        s.page.keyboard.press("Delete")
        assert s.intervals() == [
            ("06:03:00", "06:03:36", "no_aurora"),
            ("06:03:51", "06:04:30", "no_aurora"),
        ]
        # a class the legend lacks does nothing
        s.page.keyboard.press("7")
        assert len(s.intervals()) == 2 and "no class 7" in s.page.text_content("#message")
        s.offline_checks()
        s.context.close()


@pytest.mark.browser
def test_across_midnight_and_hostile_names_in_the_browser(store, tmp_path):
    results = midnight_results()
    midnight = tmp_path / "midnight.html"
    auroradask.label_page(results, "gill", "2014-03-09", out=midnight)
    hostile = tmp_path / "hostile.html"
    auroradask.label_page(hostile_results(store), HOSTILE[0], "2014-03-09", out=hostile)
    with chromium() as browser:
        s = Offline(browser, midnight)
        s.open()
        a = s.point("23:59:00", day="2014-03-09T")
        b = s.point("00:00:57", day="2014-03-10T")
        s.page.mouse.move(a["x"], a["y"])
        s.page.mouse.down()
        s.page.mouse.move(b["x"], b["y"], steps=6)
        s.page.mouse.up()
        s.page.keyboard.press("4")
        sheet = pd.read_csv(s.save("#save-sheet", tmp_path), dtype=str, keep_default_na=False)
        expected = auroradask.label_sheet(
            results, "gill", [("2014-03-09T23:59", "2014-03-10T00:00:57", "pulsating")]
        ).astype(str)
        pd.testing.assert_frame_equal(sheet, expected)
        # the arrows step from frame to frame, over the slots without one
        s.click("00:01:33", day="2014-03-10T")
        s.page.keyboard.press("ArrowRight")
        assert s.page.text_content("#f-time") == "2014-03-10 00:01:42 UT"
        s.click("00:01:36", day="2014-03-10T")
        assert s.page.text_content("#f-number") == "no classified frame"
        s.page.keyboard.press("ArrowLeft")
        assert s.page.text_content("#f-time") == "2014-03-10 00:01:27 UT"
        s.offline_checks()
        s.context.close()

        s = Offline(browser, hostile)
        s.open()
        names = s.page.locator("#legend .name").all_text_contents()
        assert names == HOSTILE
        assert s.page.evaluate("window.owned") is None
        assert "<b onmouseover=alert(1)>model</b>" in s.page.text_content("#what")
        s.page.keyboard.press("1")  # a name with a comma, quotes and a line break: CSV quoting
        sheet = pd.read_csv(s.save("#save-sheet", tmp_path), dtype=str, keep_default_na=False)
        assert sheet["Classification"].tolist() == [HOSTILE[0]]
        s.drag("06:01:00", "06:01:30")
        s.page.keyboard.press("3")
        table = pd.read_csv(s.save("#save-frames", tmp_path), dtype=str, keep_default_na=False)
        assert set(table["label"]) == {HOSTILE[0], HOSTILE[2]}
        s.offline_checks()
        s.context.close()
