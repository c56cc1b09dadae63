"""occurrence()'s wrapper around the counting kernel: what it returns, lazily or not, its
attributes, the first and last slot of the time axis, and the arguments it refuses."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import auroradask
from auroradask.analysis._magnetic import mlat_kernel
from auroradask.analysis._occurrence import flat_codes
from auroradask.errors import ArgumentError
from auroradask.io._sites import THEMIS_SITES
from tests.support.synthetic import CLASSES, make_results


def _labels(n: int, seed: int = 7, sites: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1, len(CLASSES), (sites, n)).astype(np.int8)


def test_a_table_not_computed_is_lazy_and_the_same_once_computed():
    results = make_results(_labels(600, sites=2), sites=("gill", "fsmi"), chunk=250)
    lazy = auroradask.occurrence(results, by="site", compute=False, progress=False)
    assert all(isinstance(lazy[v].data, da.Array) for v in ("count", "usable", "rate"))
    now = auroradask.occurrence(results, by="site", progress=False)
    assert all(isinstance(now[v].data, np.ndarray) for v in ("count", "usable", "rate"))
    xr.testing.assert_identical(lazy.compute(), now)
    # the span of the time axis, first and last slot (600 slots of 3 s from midnight)
    assert now.attrs["time_span"] == "2014-03-10T00:00:00/2014-03-10T00:29:57"


# 3 s slots: from 23:59:57, the first of three alone in 2014; from 23:59:51, the last of four
# alone in 2015
ALONE = {"first": ("2014-12-31T23:59:57", 3, [1, 2]), "last": ("2014-12-31T23:59:51", 4, [3, 1])}


@pytest.mark.parametrize("alone", list(ALONE))
def test_the_first_or_last_slot_alone_in_its_year_has_its_row(alone):
    start, n, usable = ALONE[alone]
    results = make_results(np.zeros(n, dtype=np.int8), start=start)
    got = auroradask.occurrence(results, by="year", progress=False)
    assert got["year"].values.tolist() == [2014, 2015]
    assert got["usable"].values.tolist() == usable


@pytest.mark.parametrize("alone", list(ALONE))
def test_the_first_or_last_slot_alone_in_its_month_has_its_mlat_row(alone):
    # bins of 0.001 degree: Rankin Inlet's magnetic latitude moves by several from one
    # month to the next, so December's and January's slots fall in rows bins apart, and
    # the rows are laid out from both months
    start, n, usable = ALONE[alone]
    results = make_results(np.zeros(n, dtype=np.int8), start=start, sites=("rank",))
    got = auroradask.occurrence(results, by="mlat", mlat_bin=0.001, progress=False)
    info = THEMIS_SITES["rank"]
    months = np.array(["2014-12-01", "2015-01-01"], dtype="datetime64[ns]")
    mlat = mlat_kernel(months, [info.latitude], [info.longitude])[0]
    rows = np.floor(mlat / 0.001).astype(int)
    assert abs(rows[1] - rows[0]) > 1
    assert got["mlat"].values.tolist() == [
        round(b * 0.001, 9) for b in range(rows.min(), rows.max() + 1)
    ]
    expected = np.zeros(rows.max() - rows.min() + 1, dtype=int)
    np.add.at(expected, rows - rows.min(), usable)
    assert got["usable"].values.tolist() == expected.tolist()


def test_a_group_with_one_usable_slot_has_its_rate():
    label = np.full(2400, -1, dtype=np.int8)  # two hours of 3 s slots
    label[5] = 3  # one usable slot in the first hour, pulsating
    label[-1] = 1  # and one in the second, no aurora
    with warnings.catch_warnings():  # NaN where nothing is usable, not a warning
        warnings.simplefilter("error")
        got = auroradask.occurrence(make_results(label), by="ut_hour", progress=False)
    rate = got["rate"].sel(ut_hour=[0, 1]).transpose("ut_hour", "class").values
    np.testing.assert_array_equal(rate, [[0, 0, 0, 1], [0, 1, 0, 0]])
    assert np.isnan(got["rate"].sel(ut_hour=2).values).all()


def test_mlat_bins_up_to_90_degrees_and_an_empty_time_axis():
    results = make_results(np.zeros(10, dtype=np.int8))
    wide = auroradask.occurrence(results, by="mlat", mlat_bin=90, progress=False)
    assert wide["mlat"].values.tolist() == [0.0] and int(wide["usable"].sum()) == 10
    with pytest.raises(ArgumentError, match=r"^mlat_bin: must be more than 0 and at most 90"):
        auroradask.occurrence(results, by="mlat", mlat_bin=90.5, progress=False)
    one = auroradask.occurrence(results.isel(time=[4]), by="ut_hour", progress=False)
    assert int(one["usable"].sum()) == 1
    with pytest.raises(ArgumentError, match=r"^results: the time axis is empty"):
        auroradask.occurrence(results.isel(time=slice(0, 0)), progress=False)


def test_an_mlat_row_past_the_laid_out_rows_is_a_bug_raised():
    times = np.array(["2014-03-10"], dtype="datetime64[ns]")
    kwargs = {"first_year": 2014, "edges": None}
    flat, valid = flat_codes(["mlat"], [2], times, np.arange(2), None,
                             mlat_code=np.array([[1], [-1]]), **kwargs)  # fmt: skip
    assert flat.tolist() == [[1], [0]] and valid.tolist() == [[True], [False]]
    with pytest.raises(RuntimeError, match=r"^occurrence: an mlat row past the 2 laid out"):
        flat_codes(["mlat"], [2], times, np.arange(1), None, mlat_code=np.array([[2]]), **kwargs)
