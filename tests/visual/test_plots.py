"""The figures are drawn: files exist, axes carry the expected labels, data and titles."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import auroradask
from auroradask._palette import class_color, class_colors
from auroradask.errors import ArgumentError
from auroradask.visual._plots import night_window
from tests.support.synthetic import CLASSES, make_results, synthetic_results


@pytest.fixture(scope="module")
def night():
    """Gillam, 2014-03-09 12:00 to 2014-03-10 12:00 UT, chunks of 900 slots."""
    results = synthetic_results(["gill", "fsmi"], "2014-03-09", days=2, chunk=900)
    return results.isel(time=slice(14_400, 14_400 + 28_800))


def test_night_window_is_centred_on_local_midnight():
    start, end = night_window("2014-03-09", -94.64)  # Gillam: midnight at 06:18 UT
    assert start == pd.Timestamp("2014-03-09T18:00") and end == pd.Timestamp("2014-03-10T18:00")
    assert night_window("2014-03-09", np.nan)[0] == pd.Timestamp("2014-03-09T12:00")


def test_timeline_has_a_label_strip_and_confidence_in_ut(night, tmp_path):
    before = plt.get_fignums()
    fig = auroradask.plot_timeline(night, "gill", "2014-03-09")
    strip, conf = fig.axes
    assert strip.get_ylabel() == "label" and conf.get_ylabel() == "confidence"
    assert conf.get_xlabel().startswith("UT, 2014-03-09 18:00 to 2014-03-10 18:00")
    assert "gill: night of 2014-03-09, MLAT 65.7" in strip.get_title()
    image = np.asarray(strip.get_images()[0].get_array())
    assert image.shape == (1, 28_800)  # the whole window, 3-s slots
    n = len(CLASSES)
    # the window runs 6 h past the dataset's end at 12:00: 7,200 slots "not written"
    assert (image[0, -7_200:] == n + 1).all() and (image[0, :-7_200] != n + 1).any()
    gill = night.sel(site="gill", time=slice("2014-03-09T18:00", None))
    np.testing.assert_array_equal(
        image[0, : gill.sizes["time"]], np.where(gill.label >= 0, gill.label, n)
    )
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [*CLASSES, "not usable", "not written"]
    points = sum(len(line.get_xdata()) for line in conf.get_lines())
    assert points == int((gill.label >= 0).sum())
    path = tmp_path / "timeline.png"
    fig.savefig(path)
    assert path.stat().st_size > 10_000
    assert plt.get_fignums() == before  # no pyplot figure left behind


def test_timeline_of_a_night_without_data_is_an_argument_error(night):
    with pytest.raises(ArgumentError, match=r"^night: nothing of site 'gill' was written"):
        auroradask.plot_timeline(night, "gill", "2014-06-01")
    with pytest.raises(ArgumentError, match=r"^site: unknown site 'atha'"):
        auroradask.plot_timeline(night, "atha", "2014-03-09")
    with pytest.raises(ArgumentError, match=r"^night: cannot read"):
        auroradask.plot_timeline(night, "gill", "yesterday")


def test_timeline_smoothed_shows_fewer_changes(night):
    raw = auroradask.plot_timeline(night, "gill", "2014-03-09").axes[0].get_images()[0]
    smooth = auroradask.plot_timeline(night, "gill", "2014-03-09", smooth="30s")
    changes = [
        np.count_nonzero(np.diff(np.asarray(im.get_array())[0]))
        for im in (raw, smooth.axes[0].get_images()[0])
    ]
    assert changes[1] < changes[0]


def test_occurrence_heatmap_axes_and_cells(night, tmp_path):
    occ = auroradask.occurrence(night, by=["mlt_hour", "site"], exclude="bad_viewing")
    fig = auroradask.plot_occurrence(occ, "pulsating", x="mlt_hour", y="site")
    ax, colorbar = fig.axes
    assert ax.get_xlabel() == "MLT hour (AACGM-v2)" and ax.get_ylabel() == "site"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["gill", "fsmi"]
    assert colorbar.get_ylabel() == "rate of pulsating (of usable slots)"
    mesh = ax.collections[0].get_array()
    expected = (occ["count"].sel({"class": "pulsating"}) / occ["usable"]).transpose(
        "site", "mlt_hour"
    )
    np.testing.assert_allclose(np.ma.filled(mesh, np.nan).ravel(), expected.values.ravel())
    assert np.ma.getmaskarray(mesh).sum() == int((occ["usable"] == 0).sum())  # no data: masked
    path = tmp_path / "occ.png"
    fig.savefig(path)
    assert path.exists()


def test_occurrence_one_grouping_is_a_bar_chart_and_other_groupings_are_summed(night):
    occ = auroradask.occurrence(night, by=["site", "ut_hour"])
    fig = auroradask.plot_occurrence(occ, "pulsating", x="ut_hour", y=None)
    bars = fig.axes[0].patches[:24]
    total = occ.sum("site")
    expected = (total["count"].sel({"class": "pulsating"}) / total["usable"]).fillna(0).values
    np.testing.assert_allclose([b.get_height() for b in bars], expected)
    with pytest.raises(ArgumentError, match=r"^cls: unknown class"):
        auroradask.plot_occurrence(occ, "pa")
    with pytest.raises(ArgumentError, match=r"^x: 'month' is not a grouping"):
        auroradask.plot_occurrence(occ, "pulsating", x="month")


def test_events_per_site(night, tmp_path):
    events = auroradask.events(night, "pulsating", min_duration="2min", max_gap="15s")
    fig = auroradask.plot_events(events)
    raster, bars = fig.axes
    assert raster.get_xlabel() == "UT" and raster.get_ylabel() == "site"
    assert [t.get_text() for t in raster.get_yticklabels()] == ["fsmi", "gill"]
    assert [b.get_width() for b in bars.patches] == [
        int((events.site == "fsmi").sum()),
        int((events.site == "gill").sum()),
    ]
    assert sum(len(c.get_paths()) for c in raster.collections) == len(events)
    assert raster.get_title() == f"{len(events)} events of pulsating"
    fig.savefig(tmp_path / "events.png")
    empty = auroradask.plot_events(events.iloc[:0], sites=["gill"])
    assert empty.axes[0].texts[0].get_text() == "no events"


def test_plot_of_a_small_made_up_store(tmp_path):
    results = make_results(np.r_[np.full(100, 3), np.full(50, 1)], start="2014-03-10T05:00")
    fig = auroradask.plot_timeline(results, "gill", "2014-03-09")
    fig.savefig(tmp_path / "t.png")
    assert (tmp_path / "t.png").exists()


# ------------------------------------------------------------ figures fit for a talk (issue 31)


def _bars(ax):
    """The bars of a rate bar chart (not the no-data shading)."""
    return [p for p in ax.patches if p.get_width() == pytest.approx(0.8)]


def test_occurrence_bars_draw_no_data_as_no_data_and_zero_as_zero(night):
    occ = auroradask.occurrence(night, by="mlt_hour", exclude="bad_viewing", progress=False)
    rate = (occ["count"].sel({"class": "pulsating"}) / occ["usable"]).values
    empty = occ["usable"].values == 0
    assert empty.any() and (~empty).any()  # the night has hours without data
    fig = auroradask.plot_occurrence(occ, "pulsating")
    (ax,) = fig.axes
    bars = _bars(ax)
    # no bar stands for "no data": every bar is a rate, none is hatched or 1.0 by default
    np.testing.assert_allclose([b.get_height() for b in bars], np.nan_to_num(rate))
    assert not any(p.get_hatch() for p in ax.patches)
    shaded = [p for p in ax.patches if p not in bars]
    assert len(shaded) == int(empty.sum())  # one grey span per bin without data
    centres = sorted(p.get_x() + p.get_width() / 2 for p in shaded)
    np.testing.assert_allclose(centres, np.flatnonzero(empty))
    texts = {round(t.get_position()[0]): t.get_text() for t in ax.texts}
    assert sorted(texts) == list(np.flatnonzero(~empty))  # each rate written, no data blank
    assert all(texts[k] == f"{rate[k]:.2f}" for k in texts)
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= np.nanmax(rate)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["no data"]


def test_rate_axes_start_at_zero_and_a_zero_rate_is_visible():
    results = make_results(np.r_[np.full(100, 1), np.full(50, 0)], start="2014-03-10T05:00")
    by_site = auroradask.occurrence(results, by="site", progress=False)
    (ax,) = auroradask.plot_occurrence(by_site, "pulsating").axes
    assert ax.get_ylim() == (0.0, 1.0)  # not -0.05..0.05 around an invisible bar
    assert [t.get_text() for t in ax.texts] == ["0.00"]  # the zero is written
    heat = auroradask.occurrence(results, by=["mlt_hour", "site"], progress=False)
    ax, colorbar = auroradask.plot_occurrence(heat, "pulsating", x="mlt_hour", y="site").axes
    assert colorbar.get_ylim() == (0.0, 1.0)  # not -0.1..0.1
    mesh = ax.collections[0]
    assert mesh.norm.vmin == 0 and mesh.norm.vmax == 1


def test_bars_and_events_take_the_colour_of_their_class(night):
    from matplotlib.colors import to_hex

    occ = auroradask.occurrence(night, by="ut_hour", progress=False)
    for cls in ("no_aurora", "pulsating"):
        (ax,) = auroradask.plot_occurrence(occ, cls).axes
        assert {to_hex(b.get_facecolor()) for b in _bars(ax)} == {class_color(cls)}
    events = auroradask.events(night, "no_aurora", min_duration="1min", progress=False)
    raster, bars = auroradask.plot_events(events).axes
    assert {to_hex(c.get_facecolor()[0]) for c in raster.collections} == {class_color("no_aurora")}
    assert raster.get_title() == f"{len(events)} events of no_aurora"


def test_label_strips_use_the_palette(night):
    from matplotlib.colors import to_hex

    strip = auroradask.plot_timeline(night, "gill", "2014-03-09").axes[0]
    cmap = strip.get_images()[0].get_cmap()
    assert [to_hex(cmap(k)) for k in range(len(CLASSES))] == class_colors(CLASSES)


def test_no_events_is_an_empty_labelled_figure_without_a_made_up_date(night):
    events = auroradask.events(night, "pulsating", min_duration="100h", progress=False)
    assert len(events) == 0 and events.attrs["class"] == "pulsating"
    fig = auroradask.plot_events(events, sites=["gill", "fsmi"])
    raster, bars = fig.axes
    fig.canvas.draw()
    assert raster.get_title() == "no events of pulsating"
    assert raster.get_xlabel() == "UT" and len(raster.get_xticks()) == 0
    assert raster.xaxis.get_offset_text().get_text() == ""  # no 1970
    assert [t.get_text() for t in raster.texts] == ["no events"]
    assert [t.get_text() for t in raster.get_yticklabels()] == ["gill", "fsmi"]


def test_event_dates_are_marked_ut(night):
    events = auroradask.events(night, "pulsating", min_duration="2min", progress=False)
    fig = auroradask.plot_events(events)
    fig.canvas.draw()
    raster = fig.axes[0]
    assert raster.xaxis.get_offset_text().get_text() == "2014-Mar-10 UT"


# ------------------------------------------------------------ ax=, as matplotlib users expect


def _caller_figure(rows, cols):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4 * cols, 3 * rows), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def test_plots_draw_into_the_callers_axes_and_return_them(night):
    before = plt.get_fignums()
    fig, axes = _caller_figure(2, 3)
    occ = auroradask.occurrence(night, by=["mlt_hour", "site"], progress=False)
    one = occ.sum("site")
    assert auroradask.plot_occurrence(one, "pulsating", ax=axes[0, 0]) is axes[0, 0]
    assert len(_bars(axes[0, 0])) == 24
    alone = auroradask.plot_occurrence(one, "pulsating").axes[0]
    assert [b.get_height() for b in _bars(axes[0, 0])] == [b.get_height() for b in _bars(alone)]
    heat = auroradask.plot_occurrence(occ, "pulsating", x="mlt_hour", y="site", ax=axes[0, 1])
    assert heat is axes[0, 1] and len(heat.collections) == 1
    assert len(fig.axes) == 7  # the six given and the heatmap's colour bar
    pair = auroradask.plot_timeline(night, "gill", "2014-03-09", ax=axes[1, :2])
    assert pair == (axes[1, 0], axes[1, 1])
    standalone = auroradask.plot_timeline(night, "gill", "2014-03-09").axes[0]
    np.testing.assert_array_equal(
        pair[0].get_images()[0].get_array(), standalone.get_images()[0].get_array()
    )
    assert pair[0].get_legend() is not None and not fig.legends  # in the caller's axes
    events = auroradask.events(night, "pulsating", min_duration="2min", progress=False)
    raster = auroradask.plot_events(events, ax=axes[0, 2])
    assert raster is axes[0, 2] and raster.get_title() == f"{len(events)} events of pulsating"
    assert sum(len(c.get_paths()) for c in raster.collections) == len(events)
    _, more = _caller_figure(1, 2)
    both = auroradask.plot_events(events, ax=more[0])
    assert both == (more[0, 0], more[0, 1]) and both[1].get_title() == "per site"
    assert [p.get_width() for p in both[1].patches] == [
        int((events.site == s).sum()) for s in ("fsmi", "gill")
    ]
    assert plt.get_fignums() == before  # no pyplot figure made


def test_ax_of_the_wrong_kind_is_an_argument_error(night):
    _, axes = _caller_figure(1, 2)
    occ = auroradask.occurrence(night, by="mlt_hour", progress=False)
    with pytest.raises(ArgumentError, match=r"^ax: expected an Axes"):
        auroradask.plot_occurrence(occ, "pulsating", ax=axes[0])
    with pytest.raises(ArgumentError, match=r"^ax: expected a sequence of 2 Axes"):
        auroradask.plot_timeline(night, "gill", "2014-03-09", ax=axes[0, 0])
    with pytest.raises(ArgumentError, match=r"^ax: expected an Axes"):
        auroradask.plot_occurrence(occ, "pulsating", ax="left")
