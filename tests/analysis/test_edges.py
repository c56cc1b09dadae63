"""Analysis at its edges: slots next to an MLT hour's edge, and values exactly on a
threshold (confidence, elevation), where a slot can land on the wrong side with no error.
"""

from __future__ import annotations

import aacgmv2
import numpy as np
import pandas as pd
import pytest

import auroradask
from auroradask._schema import OK, SLOT
from auroradask.io._sites import THEMIS_SITES
from tests.support.synthetic import CLASSES, make_results

# ------------------------------------------------------------- MLT hour edges


def _exact_mlt(lat: float, lon: float, when: pd.Timestamp) -> float:
    """AACGM-v2 for the slot itself: ``get_aacgm_coord`` sets the library's date to ``when``
    first, so the coefficients are those of that time (the reference of the docs)."""
    return float(aacgmv2.get_aacgm_coord(lat, lon, 110, when.to_pydatetime())[2])


def _slots_next_to_an_hour_edge(lat, lon, start, n, *, near_s=3.0, margin_s=0.05):
    """Slot indices within ``near_s`` seconds of an MLT hour's edge (by AACGM-v2 per slot),
    but not within ``margin_s`` of it, and their exact MLT."""
    times = pd.Timestamp(start) + pd.to_timedelta(np.arange(n) * 3, "s")
    # a first pass with one conversion for all slots (its coefficients are those of the first
    # slot: within 0.2 s over a day), to find the few slots worth an exact conversion each
    _, mlon, _ = aacgmv2.get_aacgm_coord(lat, lon, 110, times[n // 2].to_pydatetime())
    rough = aacgmv2.convert_mlt(np.full(n, mlon), times.to_pydatetime())
    to_edge = np.abs(rough - np.round(rough)) * 3600
    picks, exact = [], []
    for i in np.flatnonzero(to_edge < near_s + 1.0):
        value = _exact_mlt(lat, lon, times[i])
        seconds = abs(value - np.round(value)) * 3600
        if margin_s < seconds < near_s:
            picks.append(int(i))
            exact.append(value)
    return np.array(picks), np.array(exact)


def test_a_slot_next_to_an_mlt_hour_edge_is_counted_in_its_own_hour():
    """The cause of the analysis benchmark's MLT x month cells that differed from its pandas
    baseline: an MLT a second or two late or early (straight lines between exact values
    10 min apart; one magnetic longitude per month for a site that drifts 4 s of MLT a
    month) put the slots next to each hour's edge into the neighbouring hour.

    Here every usable slot lies 0.05 s to 3 s from an hour's edge by AACGM-v2 called for
    that slot, across a month's end (where a month's middle longitude is furthest off) and
    in June (where the straight lines missed by 2.5 s): each is counted in its own hour,
    by ``occurrence`` and by the MLT ``events`` give its first slot."""
    site = THEMIS_SITES["gill"]
    start, n = "2014-05-31T12:00", 28_800  # a day across the end of May
    picks, exact = _slots_next_to_an_hour_edge(site.latitude, site.longitude, start, n)
    below = (exact - np.floor(exact)) > 0.5  # just below the next hour
    assert len(picks) > 20 and below.sum() > 5 and (~below).sum() > 5
    label = np.full(n, -1, dtype=np.int8)
    label[picks] = CLASSES.index("pulsating")
    results = make_results(label, start=start, sites=("gill",), chunk=3600)

    got = auroradask.occurrence(results, by="mlt_hour", progress=False)
    expected = np.bincount(np.floor(exact).astype(int) % 24, minlength=24)
    np.testing.assert_array_equal(got["usable"].values, expected)

    # the same MLT in events: the MLT of each event's first and last slot (two picked slots
    # in a row, one each side of an edge, are one event)
    events = auroradask.events(results, "pulsating", progress=False)
    first = np.r_[True, np.diff(picks) > 1]
    last = np.r_[np.diff(picks) > 1, True]
    assert len(events) == first.sum()
    np.testing.assert_array_equal(np.floor(events["mlt_start"]), np.floor(exact[first]))
    np.testing.assert_array_equal(np.floor(events["mlt_end"]), np.floor(exact[last]))


def test_mlt_hours_are_placed_in_float64(monkeypatch):
    """A slot whose MLT is a hair below an hour (closer than float32 can tell from the hour)
    is counted in that hour by ``occurrence``: float32 would round 4.9999999 up to 5."""
    from auroradask.analysis import _magnetic

    mlt = np.array([4.9999999, 5.0, 23.99999999, 0.0])
    assert np.float32(mlt[0]) == 5.0 and np.float32(mlt[2]) == 24.0  # what float32 does
    monkeypatch.setattr(
        _magnetic, "mlt_kernel", lambda times, lat, lon, **_: np.tile(mlt, (len(lat), 1))
    )
    results = make_results(np.zeros(4, dtype=np.int8), chunk=4)
    got = auroradask.occurrence(results, by="mlt_hour", progress=False)["usable"]
    assert got.sel(mlt_hour=[0, 4, 5, 23]).values.tolist() == [1, 1, 1, 1]


def test_mlt_cadence_is_whole_seconds_and_does_not_move_the_mlt():
    """Knots every minute or every 10 min (the default) give the same MLT within 0.005 s;
    a cadence that is not whole seconds is refused (AACGM-v2 takes times to the second)."""
    from auroradask.errors import ArgumentError

    results = make_results(np.zeros(1200, dtype=np.int8), start="2014-06-21T05:00", chunk=600)
    coarse = auroradask.magnetic_coordinates(results)["mlt"].values.astype(np.float64)
    fine = auroradask.magnetic_coordinates(results, cadence="1min")["mlt"].values
    assert np.abs((coarse - fine + 12) % 24 - 12).max() * 3600 < 0.01  # float32: 0.0035 s
    for bad in ("1500ms", "0s", "2D"):
        with pytest.raises(ArgumentError, match="^cadence: whole seconds"):
            auroradask.magnetic_coordinates(results, cadence=bad)


# ----------------------------------------------------------- thresholds hit exactly


# confidences a model gives, in float32 as results keep them, that are not float64 numbers
# (0.9 is 0.899999976 in float32): the threshold typed by hand is the same number
ON_THE_THRESHOLD = [0.9, 0.7, 0.5, 1 / 3, 0.1]


@pytest.mark.parametrize("minimum", ON_THE_THRESHOLD)
def test_a_confidence_exactly_on_min_confidence_is_usable(minimum):
    """``min_confidence`` keeps ``confidence >= min_confidence``, as :func:`usable` says,
    with the confidence as stored (float32): a slot on the minimum counts, in ``usable``,
    ``occurrence`` and ``events``; the float32 number just below it does not."""
    on = np.float32(minimum)
    below = np.nextafter(on, np.float32(0))
    above = np.nextafter(on, np.float32(1))
    confidence = np.array([on, below, above, on, below, on], dtype=np.float32)
    label = np.full(6, CLASSES.index("pulsating"), dtype=np.int8)
    results = make_results(label, confidence=confidence, chunk=4)
    assert results["confidence"].dtype == np.float32

    kept = auroradask.usable(results, min_confidence=minimum).values[0]
    assert kept.tolist() == [True, False, True, True, False, True]

    occ = auroradask.occurrence(results, by=[], min_confidence=minimum, progress=False)
    assert int(occ["usable"]) == 4

    events = auroradask.events(results, "pulsating", min_confidence=minimum, progress=False)
    t0 = pd.Timestamp("2014-03-10")
    assert events["frames"].tolist() == [1, 2, 1]  # slot 0; slots 2 and 3; slot 5
    assert events["start"].tolist() == [t0 + k * pd.Timedelta(SLOT) for k in (0, 2, 5)]


def test_a_confidence_on_the_minimum_counts_across_runs():
    """Exactly where the events of :func:`events` begin and end: the slots on the minimum
    are part of the event, the one just below is a gap."""
    on = np.float32(0.6)
    below = np.nextafter(on, np.float32(0))
    confidence = np.array([on, on, below, on, on, on], dtype=np.float32)
    label = np.full(6, CLASSES.index("pulsating"), dtype=np.int8)
    results = make_results(label, confidence=confidence, chunk=4)
    events = auroradask.events(results, "pulsating", min_confidence=0.6, progress=False)
    assert events["frames"].tolist() == [2, 3]
    t0 = pd.Timestamp("2014-03-10")
    assert events["start"].tolist() == [t0, t0 + 3 * pd.Timedelta(SLOT)]
    bridged = auroradask.events(
        results, "pulsating", min_confidence=0.6, max_gap="3s", progress=False
    )
    assert bridged["frames"].tolist() == [5]


@pytest.mark.parametrize("min_elevation", [15.0, 20.0, 10.5])
def test_a_pixel_exactly_on_min_elevation_is_in_the_field_of_view(min_elevation):
    """``field_of_view`` keeps pixels at or above ``min_elevation`` (its docstring): a pixel
    exactly on it is in, the float just below is out, and NaN (no sky) is out. The same
    rule reaches the model's input through ``preprocess``."""
    from auroradask.preprocessing._preprocess import field_of_view

    on = min_elevation
    below = np.nextafter(on, 0.0)
    elevation = np.array([[on, below, 90.0, np.nan]])
    assert field_of_view(elevation, min_elevation).tolist() == [[True, False, True, False]]
    # an elevation map stored in float32 (a skymap's), with a threshold typed by hand
    map32 = np.array([[on, below, 90.0, np.nan]], dtype=np.float32)
    got = field_of_view(map32, min_elevation)
    assert got.tolist() == (map32 >= np.float32(min_elevation)).tolist()
    assert got[0, 0] and not got[0, 3]


def test_min_elevation_exactly_on_a_pixel_through_preprocess():
    """A synthetic elevation map whose ring of pixels lies exactly on ``min_elevation``:
    ``preprocess`` keeps the ring (non-zero after CLAHE where the sky is bright) and blanks
    the pixels just below it."""
    from tests.support import synthetic_sky as sky

    rows, cols = np.indices((256, 256))
    radius = np.hypot(rows - 127.5, cols - 127.5)
    elevation = np.clip(90.0 - radius * 0.6, 0.0, 90.0)
    elevation[radius > 128] = np.nan
    ring = (radius > 99) & (radius < 101)
    elevation[ring] = 30.0
    just_below = (radius > 101) & (radius < 103)
    # an elevation map is float32 (a skymap's): the float32 number just below the minimum
    elevation[just_below] = np.nextafter(np.float32(30.0), np.float32(0.0))
    frames = np.full((2, 256, 256), 6000, dtype=np.uint16)
    frames[:, ::7, :] = 9000  # texture, so that CLAHE gives non-zero values everywhere
    out = auroradask.preprocess(
        sky.dataset(frames), elevation=elevation, min_elevation=30.0, size=(256, 256)
    )
    values = np.asarray(out.values)[0, 0, :, :, 0]
    assert (values[ring] > 0).all()
    assert (values[just_below] == 0).all()


def test_ok_status_is_the_only_usable_written_status():
    """``usable`` keeps written slots (``frame_status >= 0``) that were classified; the
    threshold between written and not is ``frame_status > -1`` (status 0 is ok)."""
    label = np.array([0, 0, -1], dtype=np.int8)
    status = np.array([OK, -1, OK], dtype=np.int8)
    assert auroradask.usable(make_results(label, status)).values[0].tolist() == [True, False, False]


# ------------------------------------------------------------ a time axis that jumps


@pytest.mark.parametrize("chunk", [3, 5, 20])
def test_events_see_a_jump_of_the_time_axis_as_a_gap(chunk):
    """A dataset cut to some hours (or nights concatenated) has a time axis that jumps: the
    missing slots are a gap like any other, bridged only within ``max_gap``, wherever the
    chunks end. Runs used to be found by position in the array, so a jump inside a chunk
    was bridged and one on a chunk's edge was not."""
    label = np.full(20, CLASSES.index("pulsating"), dtype=np.int8)
    whole = make_results(label, chunk=20)
    cut = whole.isel(time=[*range(0, 8), *range(10, 20)]).chunk({"time": chunk})  # 2 slots out
    t0 = pd.Timestamp("2014-03-10")
    strict = auroradask.events(cut, "pulsating", progress=False)
    assert strict["start"].tolist() == [t0, t0 + 10 * pd.Timedelta(SLOT)]
    assert strict["frames"].tolist() == [8, 10]
    one_slot = auroradask.events(cut, "pulsating", max_gap="3s", progress=False)
    assert one_slot["frames"].tolist() == [8, 10]
    bridged = auroradask.events(cut, "pulsating", max_gap="6s", progress=False)
    assert bridged["frames"].tolist() == [18]
    assert bridged["duration"].tolist() == [pd.Timedelta(seconds=60)]


# ------------------------------------------------------- sites in separate chunks


def test_events_of_a_site_chunked_apart_name_that_site():
    """Each ``(site, time)`` block's runs carry rows made global by the block's first site:
    with one site per chunk, an event at the third site is that site's, not the first's."""
    sites = ("gill", "fsmi", "rank")
    label = np.full((3, 40), CLASSES.index("no_aurora"), dtype=np.int8)
    label[2, 10:25] = CLASSES.index("pulsating")
    confidence = np.full((3, 40), 0.9, dtype=np.float32)
    confidence[2, 10:25] = np.linspace(0.5, 0.99, 15, dtype=np.float32)
    label[2, 32] = CLASSES.index("pulsating")  # an event of one frame
    confidence[2, 32] = 0.7
    results = make_results(label, confidence=confidence, sites=sites, chunk=20)
    events = auroradask.events(results.chunk({"site": 1}), "pulsating", progress=False)
    assert events["site"].tolist() == ["rank", "rank"]
    assert events["frames"].tolist() == [15, 1]
    kept = confidence[2, 10:25].astype(np.float64)
    means = [kept.mean(), float(np.float32(0.7))]
    assert events["mean_confidence"].tolist() == pytest.approx(means, rel=1e-12)
    maxima = [kept.max(), float(np.float32(0.7))]
    assert events["max_confidence"].tolist() == pytest.approx(maxima, rel=1e-12)
    t0 = pd.Timestamp("2014-03-10")
    assert events["start"].tolist() == [t0 + 10 * pd.Timedelta(SLOT), t0 + 32 * pd.Timedelta(SLOT)]


def test_events_not_computed_is_a_delayed_of_the_same_table():
    """``compute=False`` hands back the work undone (for one ``dask.compute`` of several):
    computed, it is the table ``compute=True`` gives."""
    label = np.full(40, CLASSES.index("no_aurora"), dtype=np.int8)
    label[5:12] = CLASSES.index("pulsating")
    results = make_results(label, chunk=10)
    lazy = auroradask.events(results, "pulsating", compute=False, progress=False)
    assert not isinstance(lazy, pd.DataFrame)
    expected = auroradask.events(results, "pulsating", progress=False)
    pd.testing.assert_frame_equal(lazy.compute(), expected)
    assert expected["frames"].tolist() == [7]


# ------------------------------------------------------------- occurrence binned in time


@pytest.mark.parametrize("freq", ["1h", "1D", "7h"])
@pytest.mark.parametrize(
    "start, n",
    [
        ("2014-03-10T22:30", 2400),  # 2 h: three hour bins, two day bins
        ("2014-03-10T22:59:57", 1202),  # the first and the last slot alone in their hour
    ],
)
def test_occurrence_in_time_bins_is_pandas_resample(freq, start, n):
    """``freq`` bins, closed on the left and labelled by their start, across a day's end:
    every bin's usable slots and class counts are pandas' ``resample`` of the same slots,
    and the bins cover the whole span (a first or last slot alone in its bin included)."""
    rng = np.random.default_rng(3)
    label = rng.integers(0, len(CLASSES), n).astype(np.int8)
    label[1:-1:7] = -1  # not written
    results = make_results(label, start=start, chunk=700)
    got = auroradask.occurrence(results, by=[], freq=freq, progress=False)
    times = pd.Timestamp(start) + np.arange(n) * pd.Timedelta(SLOT)
    frame = pd.Series(label, index=times)
    usable = (frame >= 0).resample(freq).sum()
    assert got["usable"].to_series().tolist() == usable.tolist()
    assert list(got["time"].values) == list(usable.index.values)
    for index, name in enumerate(CLASSES):
        expected = (frame == index).resample(freq).sum()
        assert got["count"].sel({"class": name}).values.tolist() == expected.tolist()


_CALENDAR = {
    "year": lambda t: t.year,
    "month": lambda t: t.month,
    "doy": lambda t: t.day_of_year,
    "ut_hour": lambda t: t.hour,
    "season": lambda t: np.array(["DJF", "MAM", "JJA", "SON"])[(t.month % 12) // 3],
}


@pytest.mark.parametrize("by", list(_CALENDAR))
def test_occurrence_by_a_calendar_field_across_a_year_s_end(by):
    """Groups by a calendar field over slots from 23:30 UT on 31 December: each group's
    usable slots and class counts are pandas' ``groupby`` of the same slots, the other
    groups are 0, and the grouping has all its values (366 days, 4 seasons, both years)."""
    n = 2400
    rng = np.random.default_rng(5)
    label = rng.integers(-1, len(CLASSES), n).astype(np.int8)
    results = make_results(label, start="2014-12-31T23:30", chunk=700)
    got = auroradask.occurrence(results, by=by, progress=False)
    times = pd.DatetimeIndex(pd.Timestamp("2014-12-31T23:30") + np.arange(n) * pd.Timedelta(SLOT))
    key = _CALENDAR[by](times)
    values = {
        "year": [2014, 2015],
        "month": list(range(1, 13)),
        "doy": list(range(1, 367)),
        "ut_hour": list(range(24)),
        "season": ["DJF", "MAM", "JJA", "SON"],
    }[by]
    assert got[by].values.tolist() == values
    frame = pd.Series(label, index=key)
    usable = (frame >= 0).groupby(level=0).sum().reindex(values, fill_value=0)
    assert got["usable"].values.tolist() == usable.tolist()
    for index, name in enumerate(CLASSES):
        counts = (frame == index).groupby(level=0).sum().reindex(values, fill_value=0)
        assert got["count"].sel({"class": name}).values.tolist() == counts.tolist()


def test_seasons_of_each_month():
    """December counts to DJF (with the January and February after it), then MAM, JJA, SON:
    the first, middle and last slot of each month of a year."""
    from auroradask.analysis._occurrence import _calendar

    months = pd.date_range("2014-01-01", periods=12, freq="MS").as_unit("ns")
    ends = months + pd.offsets.MonthEnd(0) + pd.Timedelta(hours=23, minutes=59, seconds=57)
    t = np.concatenate(
        [months.asi8, (months + pd.Timedelta(days=14)).asi8, ends.as_unit("ns").asi8]
    )
    expected = [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0] * 3
    assert _calendar(t, "season").tolist() == expected
