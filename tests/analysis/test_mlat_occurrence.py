"""Occurrence by magnetic latitude and MLT, sites pooled, on labels planted at known MLT.

Gillam (MLAT 65.7 at 110 km in March 2014) is ``pulsating`` from 02 to 05 MLT; Fort Smith
(67.1) from 20 to 23 MLT and Fort Simpson (67.2, the same 1-degree row) from 21 to 23 MLT
with every third frame missing; every other usable slot is ``no_aurora``. The planted MLT is
AACGM-v2's own, slot by slot (``tests.support.synthetic.exact_mlt``); the expected counts
are a brute-force sum over the slots, with each site's MLAT from ``aacgmv2`` directly.
"""

from __future__ import annotations

import datetime as dt

import aacgmv2
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import auroradask
from auroradask.analysis import _magnetic
from auroradask.errors import ArgumentError
from auroradask.io._sites import THEMIS_SITES
from tests.support.synthetic import CLASSES, make_results, planted_mlt_results

WINDOWS = {"gill": (2, 5), "fsmi": (20, 23), "fsim": (21, 23)}
PULSATING = CLASSES.index("pulsating")


@pytest.fixture(scope="module")
def planted():
    return planted_mlt_results(WINDOWS, no_frame_every={"fsim": 3})


def aacgm_mlat(site: str, when: dt.datetime = dt.datetime(2014, 3, 15)) -> float:
    info = THEMIS_SITES[site]
    return float(aacgmv2.get_aacgm_coord(info.latitude, info.longitude, 110, when)[0])


def brute_force(results: xr.Dataset, mlt: np.ndarray, width: float = 1.0):
    """Counts ``(class, mlat row, mlt hour)`` and usable ``(mlat row, mlt hour)``, slot by
    slot, every site's slots added into its row; the rows' lower edges."""
    label = results["label"].values
    sites = [str(s) for s in results["site"].values]
    bins = np.array([np.floor(aacgm_mlat(s) / width) for s in sites], dtype=int)
    rows = bins - bins.min()
    count = np.zeros((len(CLASSES), rows.max() + 1, 24), dtype=np.int64)
    s, t = np.nonzero(label >= 0)
    np.add.at(count, (label[s, t], rows[s], np.floor(mlt[s, t]).astype(int)), 1)
    return count, count.sum(0), (bins.min() + np.arange(rows.max() + 1)) * width


def test_sites_fall_in_the_rows_of_their_aacgm_latitude():
    # the premise of the tests below: two rows apart, and two sites sharing one
    assert [np.floor(aacgm_mlat(s)) for s in WINDOWS] == [65, 67, 67]


def test_planted_mlt_windows_give_rate_one_inside_and_zero_outside(planted):
    results, mlt = planted
    got = auroradask.occurrence(results, by=("mlat", "mlt"), progress=False)
    count, usable, lower = brute_force(results, mlt)
    assert got["count"].dims == ("class", "mlat", "mlt_hour")
    np.testing.assert_array_equal(got["mlat"].values, lower)  # 65, 66, 67
    np.testing.assert_array_equal(got["usable"].values, usable)
    np.testing.assert_array_equal(got["count"].values, count)
    rate = got["rate"].sel({"class": "pulsating"})
    gill = rate.sel(mlat=65).values
    np.testing.assert_array_equal(gill, np.isin(np.arange(24), [2, 3, 4]).astype(float))
    assert got["usable"].sel(mlat=66).sum() == 0 and rate.sel(mlat=66).isnull().all()
    # row 67 pools Fort Smith and Fort Simpson: 1 where both are pulsating, 0 where neither
    north = rate.sel(mlat=67).values
    np.testing.assert_array_equal(north[[21, 22]], [1.0, 1.0])
    assert (north[np.setdiff1d(np.arange(24), [20, 21, 22])] == 0).all()
    assert got.attrs["by"] == "mlat,mlt_hour" and got.attrs["mlat_bin"] == 1.0


def test_pooling_sums_counts_before_dividing(planted):
    results, mlt = planted
    pooled = auroradask.occurrence(results, by="mlat,mlt", classes="pulsating", progress=False)
    per_site = auroradask.occurrence(
        results, by=("site", "mlat", "mlt"), classes="pulsating", progress=False
    )
    for name in ("count", "usable"):
        xr.testing.assert_equal(per_site[name].sum("site"), pooled[name])
    # 20 MLT at row 67: Fort Smith all pulsating, Fort Simpson none, with fewer usable slots
    cell = per_site.sel(mlat=67, mlt_hour=20)
    smith, simpson = (int(cell["usable"].sel(site=s)) for s in ("fsmi", "fsim"))
    assert 0 < simpson < smith
    assert float(
        pooled["rate"].sel({"class": "pulsating", "mlat": 67, "mlt_hour": 20})
    ) == pytest.approx(smith / (smith + simpson))  # not the mean of the two rates (0.5)
    assert int(per_site["usable"].sel(site="gill", mlat=67).sum()) == 0  # one row per site


def test_wider_bins_and_a_site_without_coordinates(planted):
    results, mlt = planted
    got = auroradask.occurrence(results, by=("mlat", "mlt"), mlat_bin=2, progress=False)
    count, usable, lower = brute_force(results, mlt, width=2)
    np.testing.assert_array_equal(got["mlat"].values, lower)  # 64 (gill), 66 (fsmi, fsim)
    np.testing.assert_array_equal(got["usable"].values, usable)
    np.testing.assert_array_equal(got["count"].values, count)
    # a site with no latitude/longitude has no MLAT: its slots fall in no row
    unknown = make_results(np.zeros((2, 600)), sites=("gill", "nowhere"))
    table = auroradask.occurrence(unknown, by="mlat", progress=False)
    assert int(table["usable"].sum()) == 600
    with pytest.raises(ArgumentError, match=r"^by: 'mlat' needs the sites' latitude"):
        auroradask.occurrence(unknown.isel(site=[1]), by="mlat", progress=False)


def test_mlat_arguments_are_checked(planted):
    results, _ = planted
    for bad in (0, -1, float("nan"), "wide"):
        with pytest.raises(ArgumentError, match=r"^mlat_bin:"):
            auroradask.occurrence(results, by="mlat", mlat_bin=bad)
    with pytest.raises(ArgumentError, match=r"^by: a grouping is repeated"):
        auroradask.occurrence(results, by="mlt,mlt_hour")


def test_mlat_kernel_takes_each_month_from_aacgmv2():
    # a decade apart: the site's MLAT drifts by a degree, and each month gets its own
    times = pd.to_datetime(["2008-01-03T05:00", "2008-01-29T00:00", "2018-07-02T00:00"]).to_numpy()
    info = THEMIS_SITES["chbg"]
    got = _magnetic.mlat_kernel(times, [info.latitude, np.nan], [info.longitude, np.nan])
    expected = [
        aacgm_mlat("chbg", dt.datetime(y, m, 15)) for y, m in ((2008, 1), (2008, 1), (2018, 7))
    ]
    np.testing.assert_allclose(got[0], expected, atol=1e-9)
    assert abs(expected[2] - expected[0]) > 0.5 and np.isnan(got[1]).all()


def test_a_site_that_drifts_across_bins_over_the_years_keeps_every_slot():
    """The rows are known before the chunks are counted, from every month of the time axis:
    a site whose magnetic latitude drifts across bins over the years (Rankin Inlet, about
    1.2 degrees from 2008 to 2023) has its later slots in their own row, none dropped."""
    early = make_results(np.zeros(100, dtype=np.int8), start="2008-01-01", sites=("rank",))
    late = make_results(np.zeros(100, dtype=np.int8), start="2023-12-01", sites=("rank",))
    results = xr.concat([early, late], dim="time")
    occ = auroradask.occurrence(results, by="mlat", mlat_bin=0.25, progress=False)
    usable = occ["usable"].values
    assert usable.sum() == 200  # every usable slot counted
    assert usable[0] == 100 and usable[-1] == 100 and len(usable) > 2  # two different rows
