"""Analysis of stored labels, each function against a plain numpy/pandas computation.

The store has small chunks (600 slots) so that every computation crosses chunk edges, a run
that crosses midnight, and a whole UT day never written between its two parts.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import aacgmv2
import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import auroradask
from auroradask._schema import DAY_SLOTS, FRAME_MISSING, OK, SLOT
from auroradask.analysis import _magnetic, _smoothing, _usable
from auroradask.errors import ArgumentError
from tests.support.synthetic import CLASSES, make_results, write_store

SITES = ("gill", "fsmi")
PULSATING = CLASSES.index("pulsating")
#: How far the interpolated MLT may be from AACGM-v2 called for the slot itself: 0.02 s.
#: The kernel is within 0.005 s and float32 rounds by 0.0035 s; a slot is 3 s, so an error
#: of a second (the old straight lines between 10-min knots, one longitude a month) moved a
#: third of the slots next to each MLT hour's edge into the wrong hour.
MLT_TOLERANCE_H = 0.02 / 3600


def random_labels(rng: np.random.Generator, n: int, n_sites: int):
    """Runs of classes (mean 40 slots), single-slot flickers, missing frames, confidences."""
    label = np.empty((n_sites, n), dtype=np.int8)
    for s in range(n_sites):
        t = 0
        while t < n:
            length = int(rng.geometric(1 / 40))
            label[s, t : t + length] = rng.integers(0, len(CLASSES))
            t += length
    flicker = rng.random(label.shape) < 0.03
    label[flicker] = rng.integers(0, len(CLASSES), flicker.sum())
    status = np.where(rng.random(label.shape) < 0.03, FRAME_MISSING, OK).astype(np.int8)
    label[status != OK] = -1
    confidence = rng.uniform(0.3, 1.0, label.shape).astype(np.float32)
    return label, status, confidence


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two parts: 2014-03-09 21:00 to 2014-03-10 03:00 UT, and 2014-03-12 02:00 to 04:00;
    2014-03-11 is never written. Read in dask chunks of 600 slots (30 min), so that every
    computation crosses chunk edges as well as day edges."""
    rng = np.random.default_rng(14)
    path = tmp_path_factory.mktemp("analysis") / "store.zarr"
    parts = [("2014-03-09T21:00", 7200), ("2014-03-12T02:00", 2400)]
    for start, n in parts:
        label, status, confidence = random_labels(rng, n, len(SITES))
        results = make_results(label, status, confidence, start=start, sites=SITES, chunk=600)
        auroradask.to_zarr(results, path)
    return auroradask.open_results(path).chunk({"time": 600})


@pytest.fixture(scope="module")
def loaded(store):
    """The store's small variables in memory: the reference side of every comparison."""
    return {
        "label": store["label"].values,
        "status": store["frame_status"].values,
        "confidence": store["confidence"].values.astype(np.float64),
        "time": store["time"].values,
    }


def test_the_store_has_padding_a_gap_day_and_small_chunks(store, loaded):
    assert store.sizes["time"] == 4 * DAY_SLOTS
    assert store["label"].data.chunksize[1] == 600
    written = loaded["status"] >= 0
    assert written.sum() == 2 * (7200 + 2400)
    day = loaded["time"].astype("datetime64[D]")
    assert not written[:, day == np.datetime64("2014-03-11")].any()


# -------------------------------------------------------------------- usable


def test_usable_is_written_classified_confident_and_not_excluded(store, loaded):
    got = auroradask.usable(store, min_confidence=0.5, exclude="bad_viewing")
    assert isinstance(got.data, da.Array)
    expected = (
        (loaded["status"] >= 0)
        & (loaded["label"] >= 0)
        & (loaded["confidence"] >= 0.5)
        & (loaded["label"] != CLASSES.index("bad_viewing"))
    )
    np.testing.assert_array_equal(got.values, expected)
    plain = auroradask.usable(store).values
    np.testing.assert_array_equal(plain, (loaded["status"] >= 0) & (loaded["label"] >= 0))


def test_unknown_class_names_the_argument():
    results = make_results(np.zeros(10))
    with pytest.raises(ArgumentError, match=r"^exclude: unknown class 'cloudy'; the store has"):
        auroradask.usable(results, exclude="cloudy")
    with pytest.raises(ArgumentError, match=r"^class: unknown class 'pa'"):
        auroradask.events(results, "pa")
    with pytest.raises(ArgumentError, match=r"^min_confidence:"):
        auroradask.usable(results, min_confidence=2)


# ------------------------------------------------------------------ smoother


def reference_mode(label: np.ndarray, half: int) -> np.ndarray:
    """Slot by slot: the most common label among labelled slots within ``half`` slots."""
    out = np.full_like(label, -1)
    for t in range(len(label)):
        if label[t] < 0:
            continue
        window = label[max(0, t - half) : t + half + 1]
        counts = Counter(int(v) for v in window if v >= 0)
        best = max(counts.values())
        out[t] = (
            label[t]
            if counts[int(label[t])] == best
            else min(k for k in counts if counts[k] == best)
        )
    return out


def test_mode_filter_against_a_slot_by_slot_loop():
    rng = np.random.default_rng(1)
    label, _, _ = random_labels(rng, 2000, 1)
    for half in (0, 1, 2, 5):
        np.testing.assert_array_equal(
            _smoothing.mode_filter(label, 4, half)[0], reference_mode(label[0], half)
        )


def test_smoothing_removes_flickers_and_never_crosses_a_long_gap():
    label = np.array([1] * 10 + [2] + [1] * 10 + [-1] * 6 + [3] * 3 + [0] * 10)
    got = auroradask.smooth_labels(make_results(label, chunk=7), 5).values[0]
    # the flicker is gone; the gap stays a gap; the slots past the gap (longer than the
    # 2 slots of half a window) see only 3s and 0s, never the 1s across it
    np.testing.assert_array_equal(got, reference_mode(label, 2))
    assert (got[:21] == 1).all() and (got[21:27] == -1).all()
    assert 1 not in got[27:] and list(got[27:31]) == [3, 3, 3, 0]


def test_smoothing_reaches_across_chunk_edges():
    label = np.random.default_rng(5).integers(-1, 4, (2, 400)).astype(np.int8)  # no runs
    got = auroradask.smooth_labels(make_results(label, sites=("gill", "fsmi"), chunk=7), 7)
    np.testing.assert_array_equal(got.values, _smoothing.mode_filter(label, 4, 3))


def test_smoothing_a_store_does_not_depend_on_chunks(store, loaded):
    got = auroradask.smooth_labels(store, "15s", min_confidence=0.4).values  # 5 slots
    masked = np.where((loaded["confidence"] >= 0.4) & (loaded["status"] >= 0), loaded["label"], -1)
    expected = _smoothing.mode_filter(masked, 4, 2)  # the whole axis in one piece
    np.testing.assert_array_equal(got, expected)
    assert (got != masked).sum() > 100  # it did smooth


# -------------------------------------------------------- magnetic coordinates


def test_mlt_against_aacgmv2_called_directly(store):
    coords = auroradask.magnetic_coordinates(store)
    assert isinstance(coords["mlt"].data, da.Array)
    rng = np.random.default_rng(3)
    picks = rng.integers(0, store.sizes["time"], 25)
    mlt = coords["mlt"].isel(time=picks).values
    for s, site in enumerate(SITES):
        lat, lon = float(store.latitude[s]), float(store.longitude[s])
        for j, i in enumerate(picks):
            when = pd.Timestamp(store.time.values[i]).to_pydatetime()
            exact = aacgmv2.get_aacgm_coord(lat, lon, 110, when)[2]
            assert abs((mlt[s, j] - exact + 12) % 24 - 12) < MLT_TOLERANCE_H, (site, when)
        epoch = pd.Timestamp(coords.attrs["epoch"]).to_pydatetime()
        mlat, mlon, _ = aacgmv2.get_aacgm_coord(lat, lon, 110, epoch)
        assert coords["mlat"].values[s] == pytest.approx(mlat, abs=1e-6)
        assert coords["mlon"].values[s] == pytest.approx(mlon, abs=1e-6)


def test_mlt_kernel_altitude_and_unknown_site():
    times = np.array(["2015-06-01T00:00", "2015-12-24T13:31:03"], dtype="datetime64[ns]")
    got = _magnetic.mlt_kernel(times, [62.5, np.nan], [-114.3, np.nan], altitude_km=300)
    for t, value in zip(times, got[0], strict=True):
        exact = aacgmv2.get_aacgm_coord(62.5, -114.3, 300, pd.Timestamp(t).to_pydatetime())[2]
        assert abs((value - exact + 12) % 24 - 12) < MLT_TOLERANCE_H
    assert np.isnan(got[1]).all()


# ------------------------------------------------------------------ occurrence


def usable_frame(store, loaded, **kwargs) -> pd.DataFrame:
    """One row per usable slot: site, time, label, and the store's MLT (checked above)."""
    ok = auroradask.usable(store, **kwargs).values
    s, t = np.nonzero(ok)
    frame = pd.DataFrame(
        {
            "site": np.array(SITES)[s],
            "time": pd.DatetimeIndex(loaded["time"][t]),
            "label": loaded["label"][s, t],
        }
    )
    mlt = auroradask.magnetic_coordinates(store)["mlt"].values
    frame["mlt_hour"] = np.floor(mlt[s, t]).astype(int)
    return frame


def expected_counts(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    table = frame.groupby([*keys, "label"]).size().unstack("label", fill_value=0)
    return table.reindex(columns=range(len(CLASSES)), fill_value=0)


def test_occurrence_by_site_month_ut_hour_against_pandas(store, loaded):
    got = auroradask.occurrence(store, by=["site", "ut_hour"])
    frame = usable_frame(store, loaded)
    frame["ut_hour"] = frame.time.dt.hour
    table = expected_counts(frame, ["site", "ut_hour"])
    assert int(got["usable"].sum()) == len(frame) == (loaded["label"] >= 0).sum()
    for (site, hour), row in table.iterrows():
        cell = got.sel(site=site, ut_hour=hour)
        assert int(cell["usable"]) == row.sum()
        np.testing.assert_array_equal(cell["count"].values, row.values)
        np.testing.assert_allclose(cell["rate"].values, row.values / row.sum())
    # hours with nothing usable: counts 0 and rate NaN, never 0
    empty = got["usable"].sel(site="gill", ut_hour=12)
    assert int(empty) == 0 and got["rate"].sel(site="gill", ut_hour=12).isnull().all()


def test_rates_are_over_usable_slots_not_the_padded_time_axis(store, loaded):
    got = auroradask.occurrence(store, by="site", classes="pulsating")
    naive = (store["label"] == PULSATING).mean("time").values
    truth = ((loaded["label"] == PULSATING).sum(1)) / (loaded["label"] >= 0).sum(1)
    np.testing.assert_allclose(got["rate"].sel({"class": "pulsating"}).values, truth)
    assert (naive < truth / 5).all()  # what a naive mean over the time axis gets


@pytest.mark.parametrize(
    "by", [["mlt_hour"], ["year", "month", "doy"], ["season", "site"], []], ids=str
)
def test_occurrence_groupings_against_pandas(store, loaded, by):
    got = auroradask.occurrence(store, by=by, min_confidence=0.5, exclude="bad_viewing")
    frame = usable_frame(store, loaded, min_confidence=0.5, exclude="bad_viewing")
    frame["year"], frame["month"] = frame.time.dt.year, frame.time.dt.month
    frame["doy"] = frame.time.dt.day_of_year
    frame["season"] = np.array(["DJF", "MAM", "JJA", "SON"])[(frame.time.dt.month % 12) // 3]
    assert list(got["class"].values) == ["no_aurora", "other_aurora", "pulsating"]
    if not by:
        counts = frame.label.value_counts()
        assert int(got["usable"]) == len(frame)
        assert int(got["count"].sel({"class": "pulsating"})) == counts[PULSATING]
        return
    table = expected_counts(frame, by)
    assert int(got["usable"].sum()) == len(frame)
    for key, row in table.iterrows():
        cell = got.sel(dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)))
        np.testing.assert_array_equal(cell["count"].values, row.values[1:])
        assert int(cell["usable"]) == row.values[1:].sum()


@pytest.mark.parametrize("freq", ["1D", "MS", "7h"])
def test_occurrence_resampled_against_pandas_resample(store, loaded, freq):
    got = auroradask.occurrence(store, by=[], freq=freq, classes=["pulsating"])
    frame = usable_frame(store, loaded).set_index("time")
    usable_count = frame.label.resample(freq).size()  # origin: the first day, 00:00 UT
    pulsating = (frame.label == PULSATING).resample(freq).sum()
    nonzero = got["usable"].to_series()
    nonzero = nonzero[nonzero > 0]
    expected = usable_count[usable_count > 0]
    pd.testing.assert_series_equal(
        nonzero, expected, check_names=False, check_index_type=False, check_freq=False
    )
    p = got["count"].sel({"class": "pulsating"}).to_series()
    np.testing.assert_array_equal(p[expected.index].values, pulsating[expected.index].values)


def test_occurrence_bad_arguments(store):
    with pytest.raises(ArgumentError, match=r"^by: unknown grouping \['hour'\]"):
        auroradask.occurrence(store, by="hour")
    with pytest.raises(ArgumentError, match=r"^freq:"):
        auroradask.occurrence(store, freq="fortnightly")
    with pytest.raises(ArgumentError, match=r"^classes:"):
        auroradask.occurrence(store, classes="bad_viewing", exclude="bad_viewing")


def test_occurrence_is_lazy_until_asked(store):
    lazy = auroradask.occurrence(store, by="site", compute=False)
    assert isinstance(lazy["count"].data, da.Array)
    xr.testing.assert_identical(lazy.compute(), auroradask.occurrence(store, by="site"))


# ---------------------------------------------------------------------- events


def reference_events(label, confidence, times, k, max_gap_slots, min_slots):
    """Slot by slot: runs of k; runs with at most max_gap_slots other slots between join."""
    rows = []
    for s in range(label.shape[0]):
        run = None
        for i in range(label.shape[1]):
            if label[s, i] != k:
                continue
            if run is not None and i - run["last"] - 1 <= max_gap_slots:
                run["last"] = i
                run["conf"].append(confidence[s, i])
                continue
            if run is not None:
                rows.append(run)
            run = {"s": s, "first": i, "last": i, "conf": [confidence[s, i]]}
        if run is not None:
            rows.append(run)
    out = pd.DataFrame(
        {
            "site": [SITES[r["s"]] for r in rows],
            "start": [times[r["first"]] for r in rows],
            "end": [times[r["last"]] + SLOT for r in rows],
            "frames": [len(r["conf"]) for r in rows],
            "mean_confidence": [np.mean(r["conf"]) for r in rows],
            "max_confidence": [np.max(r["conf"]) for r in rows],
            "slots": [r["last"] - r["first"] + 1 for r in rows],
        }
    )
    out = out[out.slots >= min_slots].drop(columns="slots")
    return out.sort_values(["start", "site"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize(
    ("max_gap", "min_duration", "min_confidence"),
    [("0s", "0s", None), ("30s", "5min", None), ("9s", "1min", 0.5), ("2h", "0s", None)],
)
def test_events_against_a_slot_by_slot_loop(store, loaded, max_gap, min_duration, min_confidence):
    got = auroradask.events(
        store,
        "pulsating",
        max_gap=max_gap,
        min_duration=min_duration,
        min_confidence=min_confidence,
    )
    label = loaded["label"].copy()
    if min_confidence is not None:
        label[~(loaded["confidence"] >= min_confidence)] = -1
    expected = reference_events(
        label,
        loaded["confidence"],
        loaded["time"],
        PULSATING,
        pd.Timedelta(max_gap) // pd.Timedelta(SLOT),
        pd.Timedelta(min_duration) / pd.Timedelta(SLOT),
    )
    assert len(expected) > 3
    pd.testing.assert_frame_equal(
        got[list(expected.columns)], expected, check_dtype=False, check_exact=False, rtol=1e-6
    )
    assert (got["duration"] == got["end"] - got["start"]).all()
    assert (got["class"] == "pulsating").all()


def test_events_cross_chunks_and_midnight_whole_and_stop_at_unwritten_days(tmp_path):
    n = 2 * DAY_SLOTS
    label = np.full((1, n), 1, dtype=np.int8)
    midnight = DAY_SLOTS
    label[0, midnight - 100 : midnight + 50] = PULSATING  # 23:55 to 00:02:30, over 1 chunk edge
    label[0, 1000:1100] = PULSATING  # 10 slots of flicker inside: bridged by a 30-s gap
    label[0, 1040:1050] = 2
    label[0, 2000:2100] = PULSATING  # 11 other slots inside: not bridged
    label[0, 2040:2051] = 2
    results = make_results(label, start="2014-03-09", chunk=288)
    got = auroradask.events(results, "pulsating", max_gap="30s")
    t0 = pd.Timestamp("2014-03-09")
    expected_starts = [1000, 2000, 2051, midnight - 100]
    assert list(got.start) == [t0 + pd.Timedelta(seconds=3 * i) for i in expected_starts]
    assert list(got.frames) == [90, 40, 49, 150]
    assert got.end.iloc[-1] == pd.Timestamp("2014-03-10T00:02:30")
    assert got.duration.iloc[-1] == pd.Timedelta("7.5min")
    # the same in a store where the day between two written pulsating intervals is unwritten
    path = tmp_path / "s.zarr"
    day1 = make_results(np.full(600, PULSATING), start="2014-03-09T23:30", chunk=300)
    day3 = make_results(np.full(600, PULSATING), start="2014-03-11T00:00", chunk=300)
    auroradask.to_zarr(day1, path)
    stored = write_store(day3, path)
    got = auroradask.events(stored, "pulsating", max_gap="1min")
    assert list(got.start) == [pd.Timestamp("2014-03-09T23:30"), pd.Timestamp("2014-03-11")]
    assert list(got.frames) == [600, 600]
    bridged = auroradask.events(stored, "pulsating", max_gap="2D")
    assert len(bridged) == 1 and bridged.frames[0] == 1200


def test_events_do_not_depend_on_chunks(store):
    part = store.isel(time=slice(DAY_SLOTS - 4000, DAY_SLOTS + 4000))  # over midnight
    full = part.chunk({"time": 8000})
    odd = part.chunk({"time": 97})
    a = auroradask.events(full, "other_aurora", max_gap="12s", min_duration="30s")
    b = auroradask.events(odd, "other_aurora", max_gap="12s", min_duration="30s")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) > 10


def test_event_mlt_against_aacgmv2(store):
    got = auroradask.events(store, "pulsating", min_duration="2min").head(6)
    for _, event in got.iterrows():
        s = SITES.index(event.site)
        lat, lon = float(store.latitude[s]), float(store.longitude[s])
        for column, when in (("mlt_start", event.start), ("mlt_end", event.end - SLOT)):
            exact = aacgmv2.get_aacgm_coord(lat, lon, 110, when.to_pydatetime())[2]
            assert abs((event[column] - exact + 12) % 24 - 12) < MLT_TOLERANCE_H


def test_events_with_smoothing_are_fewer_and_longer(store):
    raw = auroradask.events(store, "pulsating")
    smooth = auroradask.events(store, "pulsating", smooth=5)
    assert len(smooth) < len(raw)
    assert smooth.frames.mean() > raw.frames.mean()


def test_events_empty_and_bad_durations(store):
    none = auroradask.events(store, "pulsating", min_duration="10D")
    assert len(none) == 0 and "mlt_start" in none.columns
    with pytest.raises(ArgumentError, match=r"^max_gap: cannot read 'soon'"):
        auroradask.events(store, "pulsating", max_gap="soon")
    with pytest.raises(ArgumentError, match=r"^min_duration: give a duration"):
        auroradask.events(store, "pulsating", min_duration=5)


# ----------------------------------------------------------------- coincidence


def test_coincidence_against_numpy(store, loaded):
    got = auroradask.coincidence(store, ["pulsating", "no_aurora"], min_confidence=0.6)
    assert isinstance(got["observing"].data, da.Array)
    ok = (loaded["status"] >= 0) & (loaded["label"] >= 0) & (loaded["confidence"] >= 0.6)
    np.testing.assert_array_equal(got["observing"].values, ok.sum(0))
    for name in ("pulsating", "no_aurora"):
        k = CLASSES.index(name)
        np.testing.assert_array_equal(
            got["showing"].sel({"class": name}).values, (ok & (loaded["label"] == k)).sum(0)
        )
    assert got["observing"].max() == 2


# ----------------------------------------------------------------------- joins


@pytest.fixture
def ae_index():
    """A 1-minute index with a hole, over the store's first part."""
    times = pd.date_range("2014-03-09T20:00", "2014-03-10T04:00", freq="1min").as_unit("ns")
    values = np.arange(len(times), dtype=float)
    series = pd.Series(values, index=times, name="ae")
    return series.drop(series.index[(times >= "2014-03-10T00:10") & (times < "2014-03-10T00:40")])


def test_join_nearest_to_events_against_merge_asof(store, ae_index):
    events = auroradask.events(store, "pulsating", min_duration="1min")
    got = auroradask.join_nearest(events, ae_index, tolerance="40s")
    expected = pd.merge_asof(
        events.sort_values("start"),
        ae_index.to_frame(),
        left_on="start",
        right_index=True,
        direction="nearest",
        tolerance=pd.Timedelta("40s"),
    )
    np.testing.assert_array_equal(got["ae"].values, expected.sort_index()["ae"].values)
    assert got["ae"].isna().any() and got["ae"].notna().any()
    ends = auroradask.join_nearest(events, ae_index.to_frame(), tolerance="40s", on="end")
    assert not np.array_equal(ends["ae"].values, got["ae"].values, equal_nan=True)


def test_join_nearest_to_slots_is_lazy_and_matches_reindex(store, ae_index):
    got = auroradask.join_nearest(store, xr.DataArray(ae_index, dims="time"), tolerance="20s")
    assert isinstance(got["ae"].data, da.Array)
    expected = ae_index.reindex(
        pd.DatetimeIndex(store.time.values), method="nearest", tolerance=pd.Timedelta("20s")
    )
    np.testing.assert_array_equal(got["ae"].values, expected.values)


def test_join_over_events_against_boolean_masks(store, ae_index):
    events = auroradask.events(store, "pulsating", min_duration="1min")
    got = auroradask.join_over_events(events, ae_index, agg=["mean", "max", "count"])
    for _, event in got.iterrows():
        inside = ae_index[(ae_index.index >= event.start) & (ae_index.index < event.end)]
        assert event.ae_count == len(inside)
        if len(inside):
            assert event.ae_mean == pytest.approx(inside.mean())
            assert event.ae_max == inside.max()
        else:
            assert np.isnan(event.ae_mean)
    with pytest.raises(ArgumentError, match=r"^agg:"):
        auroradask.join_over_events(events, ae_index, agg="mode")
    with pytest.raises(ArgumentError, match=r"^other:"):
        auroradask.join_over_events(events, [1, 2, 3])


def test_join_accepts_tz_aware_tables_and_time_columns(store, ae_index):
    events = auroradask.events(store, "pulsating", min_duration="1min")
    table = ae_index.tz_localize("UTC").rename_axis("time").reset_index()
    got = auroradask.join_nearest(events, table, tolerance="40s")
    same = auroradask.join_nearest(events, ae_index, tolerance="40s")
    np.testing.assert_array_equal(got["ae"].values, same["ae"].values)
    again = auroradask.join_nearest(events, ae_index, tolerance=dt.timedelta(seconds=40))
    np.testing.assert_array_equal(again["ae"].values, same["ae"].values)


def test_a_dataset_in_memory_gives_the_same_answers(store):
    part = store.isel(time=slice(DAY_SLOTS - 3000, DAY_SLOTS + 2000))
    in_memory = part.compute()  # numpy-backed: chunked by the functions themselves
    assert not isinstance(in_memory["label"].data, da.Array)
    pd.testing.assert_frame_equal(
        auroradask.events(in_memory, "pulsating", max_gap="6s"),
        auroradask.events(part, "pulsating", max_gap="6s"),
    )
    xr.testing.assert_identical(
        auroradask.occurrence(in_memory, by="mlt_hour"), auroradask.occurrence(part, by="mlt_hour")
    )
    one = auroradask.magnetic_coordinates(in_memory.isel(time=slice(0, 1)))
    assert one["mlt"].shape == (2, 1)


def test_occurrence_and_events_computed_together(store):
    import dask

    occ = auroradask.occurrence(store, by="mlt_hour", compute=False)
    ev = auroradask.events(store, "pulsating", max_gap="9s", compute=False)
    # one pass over the chunks; dask 2026.8 loses a key when it optimises an xarray Dataset
    # and a Delayed together ("Missing dependency ... transpose"), hence optimize_graph=False
    together_occ, together_ev = dask.compute(occ, ev, optimize_graph=False)
    xr.testing.assert_identical(together_occ, auroradask.occurrence(store, by="mlt_hour"))
    pd.testing.assert_frame_equal(together_ev, auroradask.events(store, "pulsating", max_gap="9s"))


def test_usable_kernel_needs_written_and_classified():
    label = np.array([0, 0, -1, 2, 3], dtype=np.int8)
    status = np.array([0, -1, 0, 0, 0], dtype=np.int8)  # slot 1: label, yet never written
    confidence = np.array([0.9, 0.9, np.nan, 0.2, 0.7])
    got = _usable.usable_kernel(label, status, confidence, min_confidence=0.5, exclude=[3])
    np.testing.assert_array_equal(got, [True, False, False, False, False])


def test_occurrence_and_events_show_their_progress(store, capsys, monkeypatch):
    """A bar by default, a function called with (done, total) when given, silence when off."""
    monkeypatch.setattr(
        "auroradask.distributed._progress.TASK_BAR_DELAY_S", 0
    )  # show even a short one
    calls = []
    with dask.config.set(scheduler="threads"):
        auroradask.occurrence(store, by="site", progress=lambda *done: calls.append(done))
        assert calls and calls[-1][0] == calls[-1][1] > 1
        assert calls[0][1] == calls[-1][1]  # the total is known from the first task on
        assert all(0 < done <= total for done, total in calls)
        assert [done for done, _ in calls] == list(range(1, len(calls) + 1))
        capsys.readouterr()
        auroradask.occurrence(store, by="site")
        auroradask.events(store, "pulsating")
        err = capsys.readouterr().err
        assert "occurrence: 100%" in err and "events of pulsating: 100%" in err
        auroradask.events(store, "pulsating", progress=False)
        auroradask.occurrence(store, by="site", progress=False)
        assert capsys.readouterr().err == ""
    with pytest.raises(ArgumentError, match="progress"):
        auroradask.occurrence(store, by="site", progress="yes")
