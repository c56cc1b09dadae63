"""Quicklooks: the keogram (stored, or computed from the archive) over the label strip and the
confidence, unwritten and unusable time marked; a folder of them with an index linking all."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import auroradask
from auroradask.errors import ArgumentError
from auroradask.visual._quicklook import index_html, nights_written
from tests.support.synthetic import synthetic_results
from tests.support.utils import HOSTILE_SITES, SKYMAP, classify_sample, set_site_names


@pytest.fixture(scope="module")
def results():
    """The demo model's results on the real sample, in memory, keogram included."""
    return classify_sample().compute()


@pytest.fixture(scope="module")
def labels_only(results):
    """Results without a keogram, as a store written before keograms or with keogram=False."""
    return results.drop_vars(["keogram", "keogram_row"])


@pytest.fixture(scope="module")
def keo():
    return auroradask.keogram(
        auroradask.open_themis(
            auroradask.sample_archive(), "gill", "2014-03-10T06:00", "2014-03-10T06:06"
        )
    ).compute()


def _image(ax) -> np.ndarray:
    return np.ma.filled(np.ma.asarray(ax.images[0].get_array(), dtype=float), np.nan)


def test_quicklook_from_the_archive(labels_only, keo, tmp_path):
    results = labels_only
    before = plt.get_fignums()
    path = tmp_path / "night.png"
    fig = auroradask.quicklook(
        results, site="gill", night="2014-03-09", source=auroradask.sample_archive(), path=path
    )
    assert plt.get_fignums() == before  # no pyplot state
    assert path.stat().st_size > 20_000
    keo_ax, strip, conf_ax = fig.axes[:3]
    # the keogram drawn is the archive's: one column per 3-s slot, north (row 0) on top
    image = _image(keo_ax)
    assert image.shape == (256, 120)
    np.testing.assert_array_equal(image, keo.values[0].T.astype(float))
    extent = keo_ax.images[0].get_extent()
    assert extent[2] > extent[3]  # y runs downwards: row 0 at the top
    assert "pixel row" in keo_ax.get_ylabel()
    assert {t.get_text() for t in keo_ax.texts} >= {"N", "S"}
    # UT on the x axis over the written span; labels and confidence under it
    assert conf_ax.get_xlabel().startswith("UT, 2014-03-10 06:00 to 2014-03-10 06:06")
    codes = _image(strip)[0]
    label = results["label"].values[0]
    np.testing.assert_array_equal(codes, label)
    assert keo_ax.get_title().startswith("gill: night of 2014-03-09, 0.10 h of frames;")


def test_stored_keogram_is_used_without_the_archive(results, keo, tmp_path):
    # the source is never opened: it does not exist
    nowhere = tmp_path / "no-archive"
    fig = auroradask.quicklook(results, site="gill", night="2014-03-09", source=nowhere)
    np.testing.assert_array_equal(_image(fig.axes[0]), keo.values[0].T.astype(float))


def test_skymap_keogram_has_an_elevation_axis(results):
    fig = auroradask.quicklook(
        results,
        site="gill",
        night="2014-03-09",
        source=auroradask.sample_archive(),
        skymap=SKYMAP,
    )
    ax = fig.axes[0]
    assert ax.get_ylabel() == "elevation"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "10° N" and labels[-1] == "10° S" and "90°" in labels


def test_unwritten_unusable_and_missing_frames_are_marked(results, keo):
    n = len(results["class"])
    edited = results.assign(keogram=keo).copy(deep=True)
    status = edited["frame_status"].values
    status[0, 10:20] = -1  # never written
    status[0, 40:45] = 3  # written, no frame
    edited["label"].values[0, 40:45] = -1
    fig = auroradask.quicklook(
        edited, site="gill", night="2014-03-09", exclude="bad_viewing", span="night"
    )
    keo_ax, strip = fig.axes[:2]
    start = pd.Timestamp("2014-03-09T18:00")  # Gillam's night: 18 to 18 UT
    assert keo_ax.get_xlim()[0] == pytest.approx(plt.matplotlib.dates.date2num(start))
    codes = _image(strip)[0]
    assert len(codes) == 28_800
    first = int((pd.Timestamp("2014-03-10T06:00") - start) / pd.Timedelta("3s"))
    mine = codes[first : first + 120]
    assert (mine[10:20] == n + 1).all()  # not written: white
    assert (mine[40:45] == n).all()  # written, not usable: grey
    assert (mine[:10] == n).all()  # bad_viewing excluded: grey
    assert ", 0.09 h of frames;" in keo_ax.get_title()  # 105 frames of 3 s
    assert (codes[:first] == n + 1).all() and (codes[first + 120 :] == n + 1).all()
    image = _image(keo_ax)
    assert np.isnan(image[:, first + 10 : first + 20]).all()  # no frame drawn there
    assert np.isnan(image[:, first + 40 : first + 45]).all()
    assert np.isfinite(image[:, first : first + 10]).all()


def test_without_keogram_or_source_the_labels_are_drawn_alone(labels_only):
    fig = auroradask.quicklook(labels_only, site="gill", night="2014-03-09")
    assert not fig.axes[0].images
    assert "no keogram" in fig.axes[0].texts[0].get_text()


def test_errors(results):
    with pytest.raises(ArgumentError, match="nothing of site"):
        auroradask.quicklook(results, site="gill", night="2014-03-12")
    with pytest.raises(ArgumentError, match="unknown site"):
        auroradask.quicklook(results, site="fsmi", night="2014-03-09")
    with pytest.raises(ArgumentError, match="contrast"):
        auroradask.quicklook(results, site="gill", night="2014-03-09", contrast=(99, 1))
    with pytest.raises(ArgumentError, match="span"):
        auroradask.quicklook(results, site="gill", night="2014-03-09", span="day")


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == "a" and dict(attrs).get("href"):
            self.links.append(dict(attrs)["href"])


def test_quicklooks_folder_and_index_link_every_figure(tmp_path):
    """Two sites, two days of a synthetic store: every night with frames gets a figure."""
    results = synthetic_results(["gill", "fsmi"], "2014-03-09", days=2, chunk=2_400)
    expected = {s: nights_written(results, s) for s in ("gill", "fsmi")}
    # whole UT days written: the nights reaching into them at each site's longitude
    assert expected["gill"] == ["2014-03-08", "2014-03-09", "2014-03-10"]
    # but fsmi's night of the 10th (19 UT on) is only its afternoon, daylight: no frame
    assert expected["fsmi"][-1] == "2014-03-10"
    expected["fsmi"].pop()
    seen, skipped = [], []
    index = auroradask.quicklooks(
        results,
        tmp_path / "looks",
        progress=lambda *a: seen.append(a),
        skipped=lambda site, night, why: skipped.append((site, night)),
        dpi=40,
    )
    assert skipped == [("fsmi", "2014-03-10")]
    assert index == tmp_path / "looks" / "index.html"
    pngs = sorted(p.relative_to(index.parent).as_posix() for p in index.parent.rglob("*.png"))
    wanted = sorted(f"{s}/{s}_{n}.png" for s, nights in expected.items() for n in nights)
    assert pngs == wanted and len(seen) == len(wanted)
    text = index.read_text()
    parser = _Links()
    parser.feed(text)
    assert sorted(parser.links) == wanted  # the table links every figure, once
    assert all((index.parent / link).exists() for link in parser.links)
    data = re.search(r"const figures = (\[.*?\]);", text).group(1)
    assert all(f'"{p}"' in data for p in wanted)  # the viewer pages through them all
    assert "ArrowLeft" in text and "<script" in text and "http" not in text  # static, offline


def test_quicklooks_of_chosen_sites_and_nights(results, tmp_path):
    index = auroradask.quicklooks(
        results, tmp_path, sites="gill", nights=["2014-03-09", "2014-03-11"], dpi=40
    )
    assert [p.name for p in index.parent.rglob("*.png")] == ["gill_2014-03-09.png"]
    with pytest.raises(ArgumentError, match="unknown site"):
        auroradask.quicklooks(results, tmp_path, sites=["zzzz"])


# ------------------------------------------------------- names from a store are data


@pytest.fixture(scope="module")
def stored(labels_only, tmp_path_factory):
    """The sample's results as a store on disk (copied by each test that alters it)."""
    store = tmp_path_factory.mktemp("stored") / "results.zarr"
    auroradask.to_zarr(labels_only, store)
    return store


def _files(root) -> set:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("name", HOSTILE_SITES, ids=["parent", "absolute", "markup", "newline"])
def test_a_store_of_hostile_site_names_writes_nothing_anywhere(stored, tmp_path, name, capsys):
    """A site name from a store never becomes a path or markup: the store is refused when it
    is read, in one line naming it and the name, and nothing is written, in the folder given
    or outside it (``../escaped`` and an absolute name made ``quicklook -o`` write there)."""
    from auroradask.cli.main import main

    store = tmp_path / "results.zarr"
    shutil.copytree(stored, store)
    name = name.format(tmp=tmp_path)
    set_site_names(store, [name])
    out = tmp_path / "looks"
    before = _files(tmp_path)
    assert main(["quicklook", str(store), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"auroradask: store: {store} holds site names")
    assert repr(name[:40]) in err[0] and "not site codes" in err[0]
    assert _files(tmp_path) - before <= {out} and not any(out.rglob("*"))
    with pytest.raises(auroradask.StoreError, match="not site codes"):
        auroradask.quicklooks(store, out)
    # the same names in a dataset in memory (read from elsewhere): refused before any file
    in_memory = auroradask.open_results(stored).assign_coords(site=[name])
    with pytest.raises(ArgumentError, match="^store: sites .* are not site codes"):
        auroradask.quicklooks(in_memory, out)
    assert _files(tmp_path) - before <= {out} and not any(out.rglob("*"))


def test_a_figure_path_never_leaves_the_folder(tmp_path):
    """The second guard, behind the site-code check: a path built from names stays inside."""
    from auroradask.visual._quicklook import _inside

    assert _inside(tmp_path, "gill/gill_2014-03-09.png") == tmp_path / "gill/gill_2014-03-09.png"
    for relative in ("../x/../x_2014-03-09.png", f"{tmp_path.parent}/x.png", "a/../../x.png"):
        with pytest.raises(ArgumentError, match="would be written outside"):
            _inside(tmp_path / "looks", relative)


def test_the_index_keeps_names_as_text():
    """Markup in a name or a title stays text in the table and data in the script: no tag
    of a store's can close the viewer's script, and the script reads the names back."""
    markup = HOSTILE_SITES[2]
    figures = [{"site": markup, "night": "2014-03-09", "file": "a/b.png"}]
    page = index_html(figures, title="<b onmouseover=alert(1)>model</b>")
    assert page.count("</script>") == page.count("<script>") == 1
    assert "<img src=x" not in page and "<b " not in page
    data = re.search(r"const figures = (\[.*?\]);", page).group(1)
    assert "<" not in data and ">" not in data and "&" not in data
    assert json.loads(data) == figures


def test_quicklooks_skip_a_night_without_frames_and_say_so(tmp_path):
    """Issue 31: a run over a whole UT day writes Gillam's evening (18-24 UT, the night of
    the 10th) as slots without files; that night gets no figure of "0.00 h of frames" but is
    reported, with what its slots hold."""
    results = synthetic_results(["gill"], "2014-03-10", days=1, chunk=2_400).compute()
    evening = results["time"].dt.hour >= 18
    results["frame_status"] = results["frame_status"].where(~evening, 1)  # no_file
    results["label"] = results["label"].where(~evening, -1)
    assert nights_written(results, "gill") == ["2014-03-09", "2014-03-10"]
    drawn, skipped = [], []
    index = auroradask.quicklooks(
        results,
        tmp_path,
        progress=lambda site, night, path: drawn.append(night),
        skipped=lambda *a: skipped.append(a),
        dpi=40,
    )
    assert drawn == ["2014-03-09"]
    assert [p.name for p in tmp_path.rglob("*.png")] == ["gill_2014-03-09.png"]
    assert skipped == [("gill", "2014-03-10", "no frame: 7,200 slots written, no_file 7,200")]
    assert "2014-03-10" not in index.read_text()
    # a night asked for by name with nothing written is named too
    skipped.clear()
    auroradask.quicklooks(
        results, tmp_path, nights=["2014-03-12"], skipped=lambda *a: skipped.append(a)
    )
    assert skipped == [("gill", "2014-03-12", "nothing written")]


def test_nights_follow_local_midnight():
    """At Gillam (94.6 W) the night of a date runs 18 to 18 UT: data from 17:00 to 19:00 UT
    on the 10th belongs to the nights of the 9th and of the 10th."""
    results = synthetic_results(["gill"], "2014-03-10", days=1, chunk=2_400).compute()
    hours = results["time"].dt.hour
    results["frame_status"] = results["frame_status"].where((hours >= 17) & (hours < 19), -1)
    assert nights_written(results, "gill") == ["2014-03-09", "2014-03-10"]
    results["frame_status"] = results["frame_status"].where(hours < 18, -1)
    assert nights_written(results, "gill") == ["2014-03-09"]


VIEWER_HARNESS = """
const els = {};
function el(id) {
  if (!els[id]) els[id] = {id, hidden: true, options: [], value: null, textContent: "",
                           add(o) { this.options.push(o); }};
  return els[id];
}
global.document = {getElementById: el, onkeydown: null};
global.location = {hash: "#fsmi/2014-03-09"};
global.Option = function (text, value) { this.text = text; this.value = value; };
%s
const keys = %s;
console.log(el("image").src);
for (const key of keys) {
  document.onkeydown({key, preventDefault() {}});
  console.log(el("image").src);
}
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")
def test_index_viewer_pages_through_nights_and_sites(tmp_path):
    """The page's own script, run by node with a minimal DOM: the arrows page through the
    nights of a site and across sites, starting at the figure named in the URL."""
    figures = [
        {"site": s, "night": n, "file": f"{s}/{s}_{n}.png"}
        for s in ("fsmi", "gill")
        for n in ("2014-03-08", "2014-03-09", "2014-03-10")
        if (s, n) != ("fsmi", "2014-03-08")
    ]
    page = index_html(figures)
    script = re.search(r"<script>(.*)</script>", page, re.S).group(1)
    keys = ["ArrowRight", "ArrowRight", "ArrowDown", "ArrowLeft", "ArrowLeft", "ArrowLeft"]
    harness = tmp_path / "viewer.js"
    harness.write_text(VIEWER_HARNESS % (script, json.dumps(keys)))
    shown = subprocess.run(
        ["node", str(harness)], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert shown == [
        "fsmi/fsmi_2014-03-09.png",  # from the URL's #fsmi/2014-03-09
        "fsmi/fsmi_2014-03-10.png",
        "fsmi/fsmi_2014-03-10.png",  # the last night: stays
        "gill/gill_2014-03-10.png",  # next site, same night
        "gill/gill_2014-03-09.png",
        "gill/gill_2014-03-08.png",
        "gill/gill_2014-03-08.png",
    ]


def test_an_empty_night_names_the_neighbouring_night_with_data(labels_only):
    """The sample is 2014-03-10 06:00-06:06 UT: at Gillam that is the night of the 9th
    (18:00 to 18:00 UT); asking for the night of the 10th names it."""
    written = int((labels_only["frame_status"].values >= 0).sum())
    assert written == 120
    with pytest.raises(ArgumentError) as error:
        auroradask.quicklook(labels_only, site="gill", night="2014-03-10")
    assert str(error.value) == (
        "night: nothing of site 'gill' was written in 2014-03-10 18:00:00 to 2014-03-11 "
        "18:00:00 UT (night of 2014-03-10); the night of 2014-03-09 (2014-03-09 18:00:00 to "
        "2014-03-10 18:00:00 UT) has 120 written slots"
    )
    with pytest.raises(ArgumentError, match=r"\(night of 2014-03-08\); the night of 2014-03-09 "):
        auroradask.plot_timeline(labels_only, "gill", "2014-03-08")
    with pytest.raises(ArgumentError, match=r"\(night of 2014-03-12\)$"):  # no neighbour has
        auroradask.quicklook(labels_only, site="gill", night="2014-03-12")


def test_a_ut_time_inside_the_night_selects_it(labels_only, tmp_path):
    fig = auroradask.quicklook(labels_only, site="gill", night="2014-03-10T06:00")
    assert fig.axes[0].get_title().startswith("gill: night of 2014-03-09,")
    fig = auroradask.plot_timeline(labels_only, "gill", pd.Timestamp("2014-03-10 06:03"))
    assert "night of 2014-03-09" in fig.axes[0].get_title()
    index = auroradask.quicklooks(
        labels_only, tmp_path, sites="gill", nights=["2014-03-10T06:00"], dpi=40
    )
    assert [p.name for p in index.parent.rglob("*.png")] == ["gill_2014-03-09.png"]


@pytest.mark.parametrize(
    ("night", "longitude", "start"),
    [
        ("2014-03-09", -94.6, "2014-03-09"),  # a date: the night starting on it
        ("2014-03-10T06:00", -94.6, "2014-03-09"),  # Gillam's night runs 18 to 18 UT
        ("2014-03-10 17:59", -94.6, "2014-03-09"),
        ("2014-03-10T18:00", -94.6, "2014-03-10"),
        ("2014-03-10T00:00", -94.6, "2014-03-09"),  # written with a time: an instant
        (pd.Timestamp("2014-03-10"), -94.6, "2014-03-10"),  # 00:00 sharp: the date
        (pd.Timestamp("2014-03-10 06:00"), -94.6, "2014-03-09"),
        (np.datetime64("2014-03-10T06:00"), -94.6, "2014-03-09"),
        (pd.Timestamp("2014-03-10 01:00", tz="America/Winnipeg"), -94.6, "2014-03-09"),
        ("2014-03-10T06:00", 25.0, "2014-03-09"),  # Finland: 22 to 22 UT
        ("2014-03-10T23:00", 25.0, "2014-03-10"),
        ("2014-03-10T11:59", np.nan, "2014-03-09"),  # no longitude: 12 to 12 UT
        ("2014-03-10T12:00", np.nan, "2014-03-10"),
    ],
)
def test_night_start(night, longitude, start):
    from auroradask.visual._plots import night_start, night_window

    assert night_start(night, longitude) == pd.Timestamp(start)
    lo, hi = night_window(night, longitude)
    assert (lo, hi) == night_window(start, longitude) and hi - lo == pd.Timedelta(hours=24)
    if isinstance(night, str) and ("T" in night or " " in night):
        assert lo <= pd.Timestamp(night) < hi  # the night holds the time given


def test_a_night_that_is_not_a_date_or_time_is_refused(labels_only):
    with pytest.raises(ArgumentError, match=r"^night: cannot read 'last night' as YYYY-MM-DD"):
        auroradask.quicklook(labels_only, site="gill", night="last night")


def test_quicklook_into_the_callers_axes(results, keo):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 8), layout="constrained")
    column = fig.subplots(3, 1)
    drawn = auroradask.quicklook(results, site="gill", night="2014-03-09", ax=column)
    assert drawn == tuple(column)
    np.testing.assert_array_equal(_image(column[0]), keo.values[0].T.astype(float))
    assert column[2].get_xlabel().startswith("UT, 2014-03-10 06:00")
    with pytest.raises(ArgumentError, match=r"^ax: expected a sequence of 3 Axes"):
        auroradask.quicklook(results, site="gill", night="2014-03-09", ax=column[:2])
