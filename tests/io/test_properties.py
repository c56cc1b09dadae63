"""The reading kernels against brute force, on any data hypothesis draws.

- slotting: each frame goes in the 3-s slot that holds its time (its start included, its
  end not), the first frame of a file in a slot is kept and any later one is not;
- text files: ``export_text`` then ``import_text`` gives the results back, whole UT days of
  them: every label, status, confidence (to the files' 4 decimals) and time (to the second).
"""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
from hypothesis import given, settings, strategies as st

import auroradask
from auroradask._schema import DAY_SLOTS, FRAME_MISSING, NOT_WRITTEN, OK
from auroradask.io._slots import place_in_slots
from tests.support.synthetic import CLASSES, make_results

SLOT_NS = 3 * 10**9
FIRST_SLOT = np.datetime64("2014-03-10T06:00:00", "ns")

# ---------------------------------------------------------------------- slotting


def reference_slots(offsets_ns: list[int], n_slots: int) -> tuple[list[int], list[bool]]:
    """Frame by frame in file order: the slot whose interval holds the time, kept if free."""
    slots, kept, taken = [], [], set()
    for offset in offsets_ns:
        k = next((j for j in range(n_slots) if j * SLOT_NS <= offset < (j + 1) * SLOT_NS), -1)
        slots.append(k)
        kept.append(k >= 0 and k not in taken)
        if k >= 0:
            taken.add(k)
    return slots, kept


# frame times near and on slot edges (exactly on, one ns either side), and anywhere
near_edges = st.builds(
    lambda k, d: k * SLOT_NS + d, st.integers(-2, 12), st.sampled_from([-1, 0, 1])
)
offsets = st.lists(st.one_of(near_edges, st.integers(-10 * SLOT_NS, 14 * SLOT_NS)), max_size=30)


@given(offsets, st.integers(0, 10))
@settings(max_examples=100, deadline=None)  # a loaded machine is no bug
def test_each_frame_goes_in_the_slot_that_holds_its_time(frame_offsets, n_slots):
    times = FIRST_SLOT + np.array(frame_offsets, dtype="timedelta64[ns]")
    slot, kept = place_in_slots(times, FIRST_SLOT, n_slots)
    expected_slots, expected_kept = reference_slots(frame_offsets, n_slots)
    assert slot.tolist() == expected_slots
    assert kept.tolist() == expected_kept
    # each slot holds at most one kept frame, and every slot that a frame falls in has one
    assert len(set(slot[kept].tolist())) == int(kept.sum())
    assert set(slot[kept].tolist()) == set(slot[slot >= 0].tolist())


def test_a_frame_without_a_time_goes_nowhere():
    times = np.array(["NaT", "2014-03-10T06:00:01"], dtype="datetime64[ns]")
    slot, kept = place_in_slots(times, FIRST_SLOT, 4)
    assert slot.tolist() == [-1, 0] and kept.tolist() == [False, True]


# --------------------------------------------------------------- text round trip


@st.composite
def classified(draw):
    """Results of 1-2 sites over 1-3 UT days, few classified frames (the rest unwritten or
    without a frame), each frame timed anywhere inside its slot."""
    sites = draw(st.sampled_from([("gill",), ("gill", "fsmi"), ("fsmi", "atha")]))
    start = draw(st.integers(0, DAY_SLOTS - 1))
    n = draw(st.integers(1, 2 * DAY_SLOTS))
    label = np.full((len(sites), n), -1, dtype=np.int8)
    status = np.full((len(sites), n), NOT_WRITTEN, dtype=np.int8)
    frames = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(sites) - 1),
                st.integers(0, n - 1),
                st.integers(0, len(CLASSES) - 1),
                st.floats(0, 1, width=32),  # 0.99995 and 0.00005 round to 1 and 0.0001
                st.integers(0, SLOT_NS - 1),  # where in its slot the frame was taken
            ),
            min_size=1,
            max_size=25,
            unique_by=lambda f: f[:2],
        )
    )
    # the other slots: written without a frame, or not written (a seed: the axis is long)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    status[rng.random(label.shape) < 0.5] = FRAME_MISSING
    confidence = np.full(label.shape, np.nan, dtype=np.float32)
    within = np.zeros(label.shape, dtype=np.int64)
    for s, t, k, c, w in frames:
        label[s, t], status[s, t], confidence[s, t], within[s, t] = k, OK, c, w
    t0 = pd.Timestamp("2014-03-10") + pd.Timedelta(seconds=3 * start)
    results = make_results(label, status, confidence, start=str(t0), sites=sites, chunk=n)
    stamps = results["time"].values[None, :] + within.astype("timedelta64[ns]")
    results["timestamp"] = (("site", "time"), np.where(status == OK, stamps, np.datetime64("NaT")))
    return results


def expected_import(results) -> dict[str, np.ndarray]:
    """What the files say, slot by slot, on whole UT days from the first file's day to the
    last's: a row's slot ``OK`` with its label, its confidence rounded to 4 decimals and its
    time to the second; the other slots of a site-day with a file ``frame_missing``; a
    site-day without a file not written."""
    label = results["label"].values
    times = results["time"].values
    days = times.astype("datetime64[D]")
    file_days = {(s, d) for s, t in zip(*np.nonzero(label >= 0), strict=True) for d in [days[t]]}
    first = min(d for _, d in file_days)
    last = max(d for _, d in file_days)
    axis = first.astype("datetime64[ns]") + np.arange(
        int((last - first).astype(int) + 1) * DAY_SLOTS
    ) * np.timedelta64(SLOT_NS, "ns")
    n_sites = label.shape[0]
    out = {
        "time": axis,
        "label": np.full((n_sites, len(axis)), -1, dtype=np.int8),
        "frame_status": np.full((n_sites, len(axis)), NOT_WRITTEN, dtype=np.int8),
        "confidence": np.full((n_sites, len(axis)), np.nan, dtype=np.float32),
        "timestamp": np.full((n_sites, len(axis)), np.datetime64("NaT"), dtype="datetime64[ns]"),
    }
    axis_days = axis.astype("datetime64[D]")
    for s, d in file_days:
        out["frame_status"][s, axis_days == d] = FRAME_MISSING
    where = np.searchsorted(axis, times)
    for s, t in zip(*np.nonzero(label >= 0), strict=True):
        i = where[t]
        out["label"][s, i] = label[s, t]
        out["frame_status"][s, i] = OK
        conf = float(results["confidence"].values[s, t])
        out["confidence"][s, i] = np.float32(np.round(conf, 4))  # as the file has it
        out["timestamp"][s, i] = results["timestamp"].values[s, t].astype("datetime64[s]")
    return out


@given(classified())
@settings(max_examples=40, deadline=None)  # files and dask per example: a few seconds
def test_export_then_import_gives_the_results_back(results):
    results = results.compute()
    with tempfile.TemporaryDirectory() as folder:
        auroradask.export_text(results, folder)
        imported = auroradask.import_text(folder).compute(scheduler="sync")
    # a site without a classified frame has no file, so it is not in the import
    results = results.isel(site=(results["label"] >= 0).any("time").values)
    expected = expected_import(results)
    sites = list(results["site"].values)
    assert sorted(imported["site"].values) == sorted(sites)
    assert list(imported["class"].values) == list(CLASSES)
    np.testing.assert_array_equal(imported["time"].values, expected["time"])
    imported = imported.sel(site=sites)
    for name in ("label", "frame_status", "confidence", "timestamp"):
        np.testing.assert_array_equal(imported[name].values, expected[name], err_msg=name)
    assert imported["probability"].isnull().all()
    np.testing.assert_array_equal(imported["latitude"].values, results["latitude"].values)
