"""The occurrence dial draws the planted MLT occurrence: its cells hold the table's rates and
usable hours, no-data cells are masked (and grey beneath), midnight is down and dawn right."""

from __future__ import annotations

import numpy as np
import pytest

import auroradask
from auroradask._figure import new_figure
from auroradask.errors import ArgumentError
from auroradask.visual._dial import dial_theta
from tests.support.synthetic import planted_mlt_results


@pytest.fixture(scope="module")
def occ():
    """Gillam pulsating 02-05 MLT (row 65), Fort Smith 20-23 and Fort Simpson 21-23 (row
    67, pooled; Fort Simpson with fewer usable slots); row 66 has no site: no data."""
    windows = {"gill": (2, 5), "fsmi": (20, 23), "fsim": (21, 23)}
    results, _ = planted_mlt_results(windows, no_frame_every={"fsim": 3})
    return auroradask.occurrence(results, by=("mlat", "mlt"), progress=False)


def meshes(ax):
    """The no-data mesh (drawn first, beneath) and the value mesh of a dial."""
    grey, values = ax.collections[:2]
    return np.ma.asarray(grey.get_array()), np.ma.asarray(values.get_array())


def test_dial_cells_are_the_rates_and_the_usable_hours(occ, tmp_path):
    fig = auroradask.plot_occurrence_dial(occ, "pulsating")
    rates, hours, *bars = fig.axes
    assert rates.name == hours.name == "polar" and len(bars) == 2
    rate = occ["rate"].sel({"class": "pulsating"}).transpose("mlat", "mlt_hour").values
    no_data = occ["usable"].transpose("mlat", "mlt_hour").values == 0
    assert no_data[1].all() and not no_data[[0, 2]].any()  # row 66 only
    grey, mesh = meshes(rates)
    assert mesh.shape == (3, 24)
    np.testing.assert_array_equal(np.ma.getmaskarray(mesh), no_data)
    np.testing.assert_array_equal(mesh.filled(np.nan), rate)  # NaN exactly where no data
    np.testing.assert_array_equal(~np.ma.getmaskarray(grey), no_data)  # grey only there
    assert mesh[0, 2:5].tolist() == [1, 1, 1] and mesh[0, 5:].max() == 0
    assert 0 < mesh[2, 20] < 1  # Fort Smith 1 and Fort Simpson 0, pooled by counts
    assert rates.collections[1].norm.vmin == 0 and hours.collections[1].norm.vmin == 0
    _, usable = meshes(hours)
    expected = occ["usable"].transpose("mlat", "mlt_hour").values * 3 / 3600
    np.testing.assert_allclose(usable.filled(np.nan), np.where(no_data, np.nan, expected))
    assert bars[0].get_ylabel() == "rate of pulsating (of usable slots)"
    assert bars[1].get_ylabel() == "hours of usable frames"
    assert "2014-03-10 00:00 to 2014-03-10 23:59 UT" in fig._suptitle.get_text()
    assert "AACGM-v2 MLAT and MLT at 110 km" in fig._suptitle.get_text()
    labels = [t.get_text() for t in rates.get_xticklabels()]
    assert labels == ["00", "03", "06", "09", "12", "15", "18", "21"]
    assert [t.get_text() for t in rates.get_yticklabels()] == ["80°", "70°", "60°"]
    path = tmp_path / "dial.png"
    fig.savefig(path, dpi=80)
    assert path.stat().st_size > 20_000


def test_dial_has_midnight_down_dawn_right_and_the_pole_at_the_centre(occ):
    ax = auroradask.plot_occurrence_dial(occ).axes[0]
    centre = ax.transData.transform((0, 0))
    for hour, direction in ((0, (0, -1)), (6, (1, 0)), (12, (0, 1)), (18, (-1, 0))):
        point = ax.transData.transform((dial_theta(hour), 20)) - centre
        np.testing.assert_allclose(point / np.hypot(*point), direction, atol=1e-9)
    # higher latitude is nearer the pole: row 67's cells lie inside row 65's
    radius = ax.collections[1].get_coordinates()[:, 0, 1]  # the rows' edges, colatitude
    np.testing.assert_allclose(radius, [25, 24, 23, 22])


def test_dial_into_given_axes_and_its_checks(occ):
    fig = new_figure(10, 5)
    one = fig.add_subplot(1, 2, 1, projection="polar")
    assert auroradask.plot_occurrence_dial(occ, ax=one) is one
    assert "Occurrence of pulsating" in one.get_title() and "UT" in one.get_title()
    two = fig.subplots(1, 2, subplot_kw={"projection": "polar"})
    assert auroradask.plot_occurrence_dial(occ, ax=two) == tuple(two)
    with pytest.raises(ArgumentError, match=r"^ax: the dial needs polar Axes"):
        auroradask.plot_occurrence_dial(occ, ax=fig.add_subplot(2, 2, 4))
    with pytest.raises(ArgumentError, match=r"^occurrence: the dial needs the groupings"):
        auroradask.plot_occurrence_dial(occ.sum("mlat"))
    with pytest.raises(ArgumentError, match=r"^cls: unknown class"):
        auroradask.plot_occurrence_dial(occ, "pa")


def test_cells_with_too_few_usable_slots_are_no_data(occ):
    few = int(occ["usable"].sel(mlat=67, mlt_hour=20))  # the pooled cell
    usable = occ["usable"].transpose("mlat", "mlt_hour").values
    thin = (usable > 0) & (usable <= few)
    assert 0 < thin.sum() < (usable > 0).sum()  # some cells with data fall under, not all
    fig = auroradask.plot_occurrence_dial(occ, min_usable=few + 1)
    grey, mesh = meshes(fig.axes[0])
    np.testing.assert_array_equal(np.ma.getmaskarray(mesh), usable <= few)
    np.testing.assert_array_equal(~np.ma.getmaskarray(grey), usable <= few)
    # the usable hours are still drawn for every cell with data
    _, hours = meshes(fig.axes[1])
    np.testing.assert_array_equal(np.ma.getmaskarray(hours), usable == 0)


def test_a_table_also_by_site_is_pooled_by_counts_as_the_pooled_table(occ):
    """Other groupings of the table are summed before dividing: the dial of a table by
    ("mlat", "mlt", "site") is the dial of the table by ("mlat", "mlt")."""
    windows = {"gill": (2, 5), "fsmi": (20, 23), "fsim": (21, 23)}
    results, _ = planted_mlt_results(windows, no_frame_every={"fsim": 3})
    by_site = auroradask.occurrence(results, by=("mlat", "mlt", "site"), progress=False)
    pooled = meshes(auroradask.plot_occurrence_dial(occ, "pulsating").axes[0])[1]
    got = meshes(auroradask.plot_occurrence_dial(by_site, "pulsating").axes[0])[1]
    np.testing.assert_array_equal(got.filled(np.nan), pooled.filled(np.nan))
    assert 0 < got[2, 20] < 1  # two sites in one cell: pooled, not one site's rate
