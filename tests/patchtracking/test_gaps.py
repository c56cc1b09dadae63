"""Tracks across gaps: a patch that goes missing for 1 … max_gap frames is one track; for
max_gap + 1 frames it is two, split exactly at the gap.

A frame goes missing two ways: the frame itself is lost (``frame_status`` not ok: it is not
searched), or the frame is there and the patch is not (a pulsating patch switched off). The
planted patch is always on otherwise, and moves 1.5 px a frame, so that the running-minimum
background never absorbs it and the linker's distance gate (``max_distance`` pixels per
frame step) is not what splits it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import auroradask
from auroradask.patchtracking._tracks import link_patches
from tests.support import synthetic_sky as sky

N_FRAMES = 36
GAP_START = 15  # the first missing frame
DEFAULT_MAX_GAP = 3  # link_patches' and patches' default
PATCH = sky.Patch(90, 60, 0.9, 1.2, 7, birth=0, death=N_FRAMES, period=1, on=1)
START = np.datetime64("2020-01-01T06:00", "ns")


@pytest.fixture(scope="module")
def frames():
    """The patch in every frame, and the same sky (same noise) without it."""
    return sky.render([PATCH], N_FRAMES), sky.render([], N_FRAMES)


@pytest.fixture(scope="module")
def detected(frames):
    """Every frame's detections, with no gap: one patch per frame."""
    table = auroradask.patches(sky.dataset(frames[0], chunk=12)).table
    assert len(table) == N_FRAMES and table["track"].nunique() == 1
    return table


def _frame(table: pd.DataFrame) -> np.ndarray:
    return ((table["time"] - START) // pd.Timedelta(seconds=3)).to_numpy()


def _assert_split(table: pd.DataFrame, gap: range, max_gap: int) -> None:
    """One track if the gap is at most ``max_gap`` frames, else two: every frame before the
    gap in the first, every frame after it in the second. No row in the gap."""
    frame = _frame(table)
    assert not np.isin(frame, list(gap)).any()
    assert sorted(frame) == [i for i in range(N_FRAMES) if i not in gap]  # all detected
    tracks = table.groupby("track")["time"].agg(["min", "max", "size"]).sort_values("min")
    if len(gap) <= max_gap:
        assert len(tracks) == 1, f"a gap of {len(gap)} <= max_gap={max_gap} split the track"
    else:
        assert len(tracks) == 2, f"a gap of {len(gap)} > max_gap={max_gap} was bridged"
        before, after = tracks.iloc[0], tracks.iloc[1]
        assert (before["size"], after["size"]) == (gap.start, N_FRAMES - gap.stop)
        assert before["max"] == START + (gap.start - 1) * pd.Timedelta(seconds=3)
        assert after["min"] == START + gap.stop * pd.Timedelta(seconds=3)


@pytest.mark.parametrize("how", ["lost frames", "patch switched off"])
@pytest.mark.parametrize("length", range(1, DEFAULT_MAX_GAP + 2))
def test_patches_relinks_across_a_gap_up_to_max_gap(frames, how, length):
    """The whole pipeline (detection, background over NaN frames, linking) with the default
    ``max_gap``: gaps of 1, 2, 3 frames are bridged, 4 splits the track."""
    with_patch, without = frames
    gap = range(GAP_START, GAP_START + length)
    if how == "lost frames":
        ds = sky.dataset(with_patch, chunk=12, bad=tuple(gap))
    else:
        images = with_patch.copy()
        images[list(gap)] = without[list(gap)]
        ds = sky.dataset(images, chunk=12)
    result = auroradask.patches(ds)
    assert result.attrs["max_gap"] == DEFAULT_MAX_GAP
    _assert_split(result.table, gap, DEFAULT_MAX_GAP)
    counts = result.counts.values[0]
    expected = -1 if how == "lost frames" else 0
    assert (counts[list(gap)] == expected).all()  # lost: not searched; switched off: none
    assert result.tracks["frames"].sum() == N_FRAMES - length


@pytest.mark.parametrize("max_gap", [0, 1, 2, 5])
def test_link_patches_relinks_across_a_gap_up_to_max_gap(detected, max_gap):
    """The linker alone, for other ``max_gap``: the detections of the gap's frames removed
    from the table, gaps of 1 … max_gap + 1 frames."""
    for length in range(1, max_gap + 2):
        gap = range(GAP_START, GAP_START + length)
        table = detected[~np.isin(_frame(detected), list(gap))].drop(columns="track")
        table = table.assign(track=link_patches(table, max_gap=max_gap))
        _assert_split(table, gap, max_gap)
