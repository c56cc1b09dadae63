"""The linker and the track summary on hand-made patch tables, where every number is known:
the distance gate exactly at ``max_distance`` pixels per frame step (also across a gap),
the default ``max_gap``, the arguments, the track ids, and each column of a track's row
(drift velocities on the sphere, across the antimeridian too, lifetime, one-frame tracks,
an empty table).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from auroradask.errors import ArgumentError
from auroradask.patchtracking._tracks import link_patches, summarize_tracks
from auroradask.skymaps._skymap import EARTH_RADIUS_KM

START = pd.Timestamp("2020-01-01T06:00")
SLOT = pd.Timedelta(seconds=3)


def _table(rows: list[tuple[str, int, float, float]]) -> pd.DataFrame:
    """A patch table from (site, frame, row, col) tuples: the columns the linker reads."""
    site, frame, row, col = zip(*rows, strict=True)
    return pd.DataFrame(
        {"site": site, "time": START + np.array(frame) * SLOT, "row": row, "col": col}
    )


def _moving(step: float, frames: list[int], site: str = "gill", row0: float = 50.0):
    """One patch moving ``step`` px a frame along columns, seen at ``frames``."""
    return [(site, f, row0, 20.0 + step * f) for f in frames]


def test_the_gate_is_max_distance_pixels_per_frame_step():
    """A patch moving exactly ``max_distance`` px a frame is one track, a hair more is one
    track per frame; across a gap of g frames the gate is g × ``max_distance``."""
    for step, tracks in [(6.0, 1), (6.01, 4)]:
        table = _table(_moving(step, [0, 1, 2, 3]))
        assert link_patches(table, max_distance=6.0).nunique() == tracks, step
    for step, tracks in [(6.0, 1), (6.01, 3)]:  # frames 0, 3, 4: a gap of two frames
        table = _table(_moving(step, [0, 3, 4]))
        assert link_patches(table, max_distance=6.0).nunique() == tracks, step
    table = _table(_moving(3.0, [0, 1, 2, 3]))
    assert link_patches(table, max_distance=2.9).nunique() == 4  # a gate below one step


def test_default_max_gap_is_three_frames():
    """Without ``max_gap``: three missing frames are bridged, four are not."""
    bridged = _table(_moving(1.0, [0, 1, 5, 6]))
    assert link_patches(bridged).tolist() == [0, 0, 0, 0]
    split = _table(_moving(1.0, [0, 1, 6, 7]))
    assert link_patches(split).tolist() == [0, 0, 1, 1]


def test_track_ids_count_from_zero_in_order_of_birth_across_sites():
    """Ids 0, 1, 2, ... in order of each track's first frame, a site after the other (sorted
    by name), aligned on the table's index whatever its order."""
    rows = (
        _moving(1.0, [2, 3], site="gill", row0=10.0)  # born second at gill
        + _moving(1.0, [0, 1, 2], site="gill", row0=90.0)  # born first at gill
        + _moving(1.0, [0, 1], site="atha", row0=10.0)  # atha sorts first
    )
    table = _table(rows)
    table.index = [7, 3, 5, 1, 8, 2, 0]
    got = link_patches(table)
    assert got.index.tolist() == table.index.tolist()
    assert got.tolist() == [2, 2, 1, 1, 1, 0, 0]


def test_two_crossing_patches_keep_their_tracks():
    """Two patches passing each other 4 px apart: the assignment keeps each on its own line
    (a nearest-first assignment would too; the point is that neither starts a new track)."""
    rows = [("gill", f, 50.0, 20.0 + 2.0 * f) for f in range(6)]
    rows += [("gill", f, 54.0, 30.0 - 2.0 * f) for f in range(6)]
    table = _table(rows)
    got = link_patches(table, max_distance=3.0)
    assert got.tolist() == [0] * 6 + [1] * 6


@pytest.mark.parametrize(
    "kwargs, ok",
    [
        ({"max_gap": -1}, False),
        ({"max_distance": 0.0}, False),
        ({"max_distance": -1.0}, False),
        ({"max_gap": 0}, True),
        ({"max_distance": 0.5}, True),
    ],
)
def test_link_arguments(kwargs, ok):
    table = _table(_moving(0.4, [0, 1]))
    if ok:
        assert link_patches(table, **kwargs).tolist() == [0, 0]
    else:
        with pytest.raises(ArgumentError, match="^max_gap"):
            link_patches(table, **kwargs)


def _summary_table(lat, lon, *, frames=None, track=0, site="gill"):
    n = len(lat)
    frames = list(range(n)) if frames is None else frames
    return pd.DataFrame(
        {
            "site": site,
            "time": START + np.array(frames) * SLOT,
            "track": track,
            "row": 100.0 + 0.5 * np.arange(n),
            "col": 40.0 - 0.25 * np.arange(n),
            "area_px": np.arange(10, 10 + n, dtype="int32"),
            "area_km2": np.arange(20, 20 + n, dtype=float),
            "mean_excess": np.arange(n, dtype=float) * 10,
            "peak_excess": np.arange(n, dtype=float) * 20,
            "latitude": np.asarray(lat, float),
            "longitude": np.asarray(lon, float),
        }
    )


@pytest.mark.parametrize("altitude_km", [110.0, 150.0])
def test_summary_of_a_track_drifting_north_east(altitude_km):
    """Latitude and longitude linear in time: the velocities are their slopes on the sphere
    at ``altitude_km`` (east: on the circle of the track's mean latitude), in m/s; pixel
    velocities in px/s; lifetime from the first frame's start to the last frame's end."""
    n = 5
    lat = 60.0 + 0.01 * np.arange(n)
    lon = -100.0 + 0.02 * np.arange(n)
    (row,) = summarize_tracks(_summary_table(lat, lon), altitude_km=altitude_km).itertuples()
    radius_m = (EARTH_RADIUS_KM + altitude_km) * 1000.0
    north = np.radians(0.01) * radius_m / 3.0
    east = np.radians(0.02) * radius_m * np.cos(np.radians(lat.mean())) / 3.0
    assert row.v_north == pytest.approx(north, rel=1e-9)
    assert row.v_east == pytest.approx(east, rel=1e-9)
    assert row.speed == pytest.approx(np.hypot(east, north), rel=1e-9)
    assert (row.v_row, row.v_col) == pytest.approx((0.5 / 3.0, -0.25 / 3.0), rel=1e-9)
    assert row.lifetime_s == 15.0 and row.frames == n
    assert (row.start, row.end) == (START, START + (n - 1) * SLOT)
    assert (row.latitude, row.longitude) == pytest.approx((lat.mean(), lon.mean()))
    assert (row.mean_area_px, row.mean_area_km2) == (12.0, 22.0)
    assert (row.mean_excess, row.peak_excess) == (20.0, 80.0)


def test_summary_across_the_antimeridian():
    """Longitudes 179.98, 179.99, -180.0, -179.99: the track drifts east by 0.01° a frame
    and sits at 179.995°, not at 0° or drifting west at 119° a frame."""
    lon = np.array([179.98, 179.99, -180.0, -179.99])
    lat = np.full(4, 65.0)
    (row,) = summarize_tracks(_summary_table(lat, lon)).itertuples()
    east = np.radians(0.01) * (EARTH_RADIUS_KM + 110.0) * 1000.0 * np.cos(np.radians(65.0)) / 3
    assert row.v_east == pytest.approx(east, rel=1e-6)
    assert row.v_north == pytest.approx(0.0, abs=1e-9)
    assert abs(row.longitude) == pytest.approx(179.995, abs=1e-9)
    # and across 90 W (Gillam's sky): the same drift
    gillam = np.array([-90.02, -90.01, -90.0, -89.99])
    (row,) = summarize_tracks(_summary_table(lat, gillam)).itertuples()
    assert row.longitude == pytest.approx(-90.005, abs=1e-9)
    assert row.v_east == pytest.approx(east, rel=1e-6)


def test_summary_of_one_frame_tracks_and_of_gaps():
    """A one-frame track is kept (``min_frames`` is 1 by default) with NaN velocities and a
    lifetime of one slot; a track seen at frames 0, 1, 4 lives 15 s and its slopes weigh
    the time of each row; a NaN longitude leaves that row out of ``v_east`` only (its slope
    is then that of the two other rows)."""
    one = _summary_table([61.0], [-99.0], track=4)
    gappy = _summary_table([60.0, 60.01, 60.04], [-100.0, np.nan, -99.92], frames=[0, 1, 4])
    gappy["track"] = 2
    tracks = summarize_tracks(pd.concat([one, gappy], ignore_index=True))
    assert tracks["track"].tolist() == [2, 4]
    two, four = tracks.itertuples()
    assert four.frames == 1 and four.lifetime_s == 3.0
    assert np.isnan([four.v_east, four.v_north, four.speed, four.v_row, four.v_col]).all()
    assert two.lifetime_s == 15.0 and two.frames == 3
    radius_m = (EARTH_RADIUS_KM + 110.0) * 1000.0
    assert two.v_north == pytest.approx(np.radians(0.01) * radius_m / 3.0, rel=1e-9)
    east = np.radians(0.08) / 12.0 * radius_m * np.cos(np.radians(np.mean([60.0, 60.01, 60.04])))
    assert two.v_east == pytest.approx(east, rel=1e-9)
    # rows 100, 100.5, 101 px at 0, 3, 12 s: the least-squares slope
    t = np.array([0.0, 3.0, 12.0])
    assert two.v_row == pytest.approx(np.polyfit(t, [100.0, 100.5, 101.0], 1)[0], rel=1e-9)
    assert len(summarize_tracks(pd.concat([one, gappy]), min_frames=2)) == 1
    alone = summarize_tracks(one)  # a table of one row: one track
    assert alone["track"].tolist() == [4] and alone["frames"].tolist() == [1]
    # two rows, one of them with no position: no geographic velocity, the pixel one stays
    half = _summary_table([60.0, np.nan], [-100.0, np.nan])
    (row,) = summarize_tracks(half).itertuples()
    assert np.isnan([row.v_east, row.v_north]).all() and row.v_row == pytest.approx(0.5 / 3)


def test_summary_of_a_track_years_into_the_table():
    """Times are centred on each track's mean before the sums: a two-frame track ten years
    after the table's first row keeps its velocity to 1e-9 (squares of 3e8 s would not)."""
    early = _summary_table([50.0], [-100.0], track=0)
    later = [105_120_000, 105_120_001]  # ten years of 3 s frames on
    late = _summary_table([60.0, 60.01], [-100.0, -100.0], frames=later, track=1)
    tracks = summarize_tracks(pd.concat([early, late], ignore_index=True)).set_index("track")
    north = np.radians(0.01) * (EARTH_RADIUS_KM + 110.0) * 1000.0 / 3.0
    assert tracks.loc[1, "v_north"] == pytest.approx(north, rel=1e-9)
    assert tracks.loc[1, "v_row"] == pytest.approx(0.5 / 3.0, rel=1e-9)


def test_summary_of_a_wide_track_with_an_unmapped_row():
    """A track across 40 degrees of longitude at 70 N (a camera's whole field of view there),
    one row without a position: ``v_east`` is the least-squares slope of the three others'
    eastward positions, whatever the time of the unmapped row."""
    lon = np.array([-125.0, np.nan, -100.0, -85.0])
    frames = [0, 1, 2, 4]
    table = _summary_table(np.full(4, 70.0), lon, frames=frames)
    (row,) = summarize_tracks(table).itertuples()
    ok = np.isfinite(lon)
    slope = np.polyfit(3.0 * np.array(frames)[ok], np.radians(lon[ok]), 1)[0]
    radius_m = (EARTH_RADIUS_KM + 110.0) * 1000.0
    assert row.v_east == pytest.approx(slope * radius_m * np.cos(np.radians(70.0)), rel=1e-9)


def test_summary_of_an_empty_table():
    empty = _summary_table([], [])
    tracks = summarize_tracks(empty)
    assert len(tracks) == 0
    assert (
        tracks.columns.tolist() == summarize_tracks(_summary_table([60.0], [0.0])).columns.tolist()
    )
