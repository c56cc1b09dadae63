"""The analysis kernels against brute force, on any data hypothesis draws.

- events: runs of a class, merged when the gap between them is at most ``max_gap``, kept
  when at least ``min_duration`` long, the same whatever the chunking; the reference walks
  the slots one by one in time;
- occurrence: every usable slot counted once, in the group that holds it (slots on both
  sides of an hour's, a UT day's and a month's edge), never a slot that is not usable; counts sum to the usable slots, rates are in [0, 1] (NaN where nothing is
  usable). The reference loops over slots and groups with a dict.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

import auroradask
from auroradask._schema import SLOT
from auroradask.analysis import _events
from tests.support.synthetic import CLASSES, make_results

SLOT_NS = int(pd.Timedelta(SLOT).value)
T0 = int(pd.Timestamp("2014-03-10T22:58").value)
#: An hour's edge that is also a UT day's and a month's: stores start a few slots before it
EDGE = pd.Timestamp("2014-04-01T00:00")
FAST = settings(max_examples=60, deadline=None)  # a loaded machine is no bug


# ---------------------------------------------------------------------- events


@st.composite
def hits(draw):
    """(hit, confidence, times): ``(site, time)`` booleans, confidences, and a time axis of
    3-s slots that may jump (a dataset cut to night hours, concatenated nights)."""
    n_sites = draw(st.integers(1, 3))
    n = draw(st.integers(0, 80))
    # runs, not noise: a hit slot repeats its neighbour's state with a drawn probability
    hit = draw(arrays(np.bool_, (n_sites, n)))
    sticky = draw(st.floats(0, 0.9))
    keep = draw(arrays(np.float64, (n_sites, n), elements=st.floats(0, 1)))
    for t in range(1, n):
        hit[:, t] = np.where(keep[:, t] < sticky, hit[:, t - 1], hit[:, t])
    confidence = draw(arrays(np.float32, (n_sites, n), elements=st.floats(0, 1, width=32)))
    steps = draw(arrays(np.int64, n, elements=st.sampled_from([1, 1, 1, 1, 2, 5, 400])))
    times = T0 + SLOT_NS * np.cumsum(steps)
    return hit, confidence, times


def reference_events(hit, confidence, times, max_gap_ns, min_duration_ns=0):
    """Slot by slot in time: a hit slot joins the open event when the time from the end of
    the event's last slot to its own start is at most ``max_gap_ns``."""
    events = []
    for row in range(hit.shape[0]):
        open_event = None
        for i in range(hit.shape[1]):
            if not hit[row, i]:
                continue
            c = float(confidence[row, i])
            if open_event is not None and times[i] - (open_event["last"] + SLOT_NS) <= max_gap_ns:
                open_event["last"] = times[i]
                open_event["frames"] += 1
                open_event["conf_sum"] += c
                open_event["conf_max"] = max(open_event["conf_max"], c)
                continue
            if open_event is not None:
                events.append(open_event)
            open_event = {"row": row, "start": times[i], "last": times[i], "frames": 1,
                          "conf_sum": c, "conf_max": c}  # fmt: skip
        if open_event is not None:
            events.append(open_event)
    return [e for e in events if e["last"] + SLOT_NS - e["start"] >= min_duration_ns]


def _as_list(table: dict) -> list[dict]:
    return [
        {k: (float(v[i]) if k.startswith("conf") else int(v[i])) for k, v in table.items()}
        for i in range(len(table["start"]))
    ]


def _assert_same_runs(got: dict, expected: list[dict]) -> None:
    got = _as_list(got)
    assert [{k: e[k] for k in ("row", "start", "last", "frames")} for e in got] == [
        {k: e[k] for k in ("row", "start", "last", "frames")} for e in expected
    ]
    for g, e in zip(got, expected, strict=True):
        assert g["conf_sum"] == pytest.approx(e["conf_sum"], rel=1e-9, abs=1e-9)
        assert g["conf_max"] == e["conf_max"]


@given(hits(), st.sampled_from([0, 1, 2, 3, 10, 400]))
@FAST
def test_runs_merge_and_bridge_as_slot_by_slot(data, gap_slots):
    """``run_table``: adjacent hit slots are one run, runs at most ``max_gap`` apart are one,
    a jump of the time axis is a gap like any other."""
    hit, confidence, times = data
    max_gap_ns = gap_slots * SLOT_NS
    got = _events.run_table(hit, confidence, times, max_gap_ns)
    _assert_same_runs(got, reference_events(hit, confidence, times, max_gap_ns))


@given(hits(), st.sampled_from([0, 1, 3]), st.data())
@FAST
def test_runs_do_not_depend_on_the_chunking(data, gap_slots, draw):
    """Runs of chunks merged by ``_combine_runs`` (in a drawn grouping, as the tree of
    ``events`` does) are the runs of the whole axis."""
    hit, confidence, times = data
    max_gap_ns = gap_slots * SLOT_NS
    n = hit.shape[1]
    cuts = sorted(draw.draw(st.sets(st.integers(1, max(n - 1, 1)), max_size=6)))
    edges = [0, *[c for c in cuts if c < n], n]
    parts = [
        _events.run_table(hit[:, a:b], confidence[:, a:b], times[a:b], max_gap_ns)
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    split = draw.draw(st.integers(1, max(len(parts), 1)))  # two levels of the tree
    level = [
        _events._combine_runs(parts[i : i + split], max_gap_ns) for i in range(0, len(parts), split)
    ]
    merged = _events._combine_runs(level, max_gap_ns)
    _assert_same_runs(merged, reference_events(hit, confidence, times, max_gap_ns))


@given(hits(), st.sampled_from([0, 2]), st.sampled_from([0, 3, 4, 6, 30, 1200]))
@FAST
def test_min_duration_keeps_events_at_least_that_long(data, gap_slots, min_s):
    """``min_duration`` is from the first slot's start to the last slot's end: an event of
    exactly that length is kept, one slot shorter is not."""
    hit, confidence, times = data
    max_gap_ns, min_ns = gap_slots * SLOT_NS, min_s * 10**9
    runs = _events.run_table(hit, confidence, times, max_gap_ns)
    sites = (np.array([f"s{i}" for i in range(hit.shape[0])]), *[np.full(hit.shape[0], np.nan)] * 2)
    frame = _events._event_frame(sites, runs, "pulsating", pd.Timedelta(min_ns), 110.0)
    expected = reference_events(hit, confidence, times, max_gap_ns, min_ns)
    expected.sort(key=lambda e: (e["start"], e["row"]))
    assert frame["start"].astype("int64").tolist() == [e["start"] for e in expected]
    assert frame["site"].tolist() == [f"s{e['row']}" for e in expected]
    assert frame["frames"].tolist() == [e["frames"] for e in expected]
    assert (frame["end"] - frame["start"] >= pd.Timedelta(min_ns)).all()
    assert (frame["duration"] == frame["end"] - frame["start"]).all()


# ------------------------------------------------------------------ occurrence


@st.composite
def stores(draw):
    """A small results dataset: any mix of written/unwritten, classified/not, confidences;
    starting near an hour's (and a UT day's, a month's) edge, in drawn chunks."""
    sites = ("gill", "fsmi")[: draw(st.integers(1, 2))]
    n = draw(st.integers(1, 80))
    shape = (len(sites), n)
    label = draw(arrays(np.int8, shape, elements=st.integers(-1, len(CLASSES) - 1)))
    status = draw(arrays(np.int8, shape, elements=st.sampled_from([-1, 0, 0, 0, 1, 3])))
    confidence = draw(arrays(np.float32, shape, elements=st.floats(0, 1, width=32)))
    # a few slots before an hour's edge: 00:00 of a new UT day and month, or 23:00
    start = EDGE - pd.Timedelta(hours=draw(st.sampled_from([0, 1])))
    start = start + pd.Timedelta(seconds=3 * draw(st.integers(-min(n, 20), 2)))
    chunk = draw(st.integers(1, n))
    results = make_results(label, status, confidence, start=str(start), sites=sites, chunk=chunk)
    return results, label, status, confidence


def reference_occurrence(results, label, status, confidence, by, min_confidence, excluded):
    """``{group: {class index: slots}}`` of the usable slots, by a loop over slots."""
    times = pd.DatetimeIndex(results["time"].values)
    sites = list(results["site"].values)
    counts: dict[tuple, dict[int, int]] = {}
    for s in range(label.shape[0]):
        for t in range(label.shape[1]):
            k = int(label[s, t])
            if status[s, t] < 0 or k < 0 or k in excluded:
                continue
            if min_confidence is not None and not confidence[s, t] >= np.float32(min_confidence):
                continue
            key = tuple({"site": sites[s], "ut_hour": times[t].hour,
                         "month": times[t].month}[b] for b in by)  # fmt: skip
            counts.setdefault(key, {}).setdefault(k, 0)
            counts[key][k] += 1
    return counts


@given(
    stores(),
    st.sampled_from([[], ["site"], ["ut_hour"], ["site", "ut_hour"], ["month", "site"]]),
    st.one_of(st.none(), st.floats(0, 1, width=32)),
    st.booleans(),
)
@settings(max_examples=30, deadline=None)  # dask per example: a few seconds in all
def test_occurrence_counts_each_usable_slot_once(data, by, min_confidence, exclude):
    results, label, status, confidence = data
    excluded = {0} if exclude else set()
    got = auroradask.occurrence(
        results,
        by=by,
        min_confidence=min_confidence,
        exclude="bad_viewing" if exclude else None,
        progress=False,
    )
    expected = reference_occurrence(
        results, label, status, confidence, by, min_confidence, excluded
    )
    reported = [CLASSES.index(c) for c in got["class"].values]
    assert reported == [k for k in range(len(CLASSES)) if k not in excluded]
    # every usable slot once: the total, and each group's count of each class
    assert int(got["usable"].sum()) == sum(sum(c.values()) for c in expected.values())
    for key, per_class in expected.items():
        cell = got.sel(dict(zip(by, key, strict=True))) if by else got
        assert int(cell["usable"]) == sum(per_class.values())
        for j, k in enumerate(reported):
            assert int(cell["count"].isel({"class": j})) == per_class.get(k, 0)
    # counts sum to the usable slots; rates in [0, 1], NaN exactly where nothing is usable
    np.testing.assert_array_equal(got["count"].sum("class").values, got["usable"].values)
    rate, usable = (a.values for a in xr.broadcast(got["rate"], got["usable"]))
    assert np.isnan(rate[usable == 0]).all()
    assert ((rate[usable > 0] >= 0) & (rate[usable > 0] <= 1)).all()
