"""Frames onto the 3-second slot grid: the one rule both readers (stream0 minute files, L1
CDF hour files) place their frames by.

A slot ``k`` of a chunk is the interval ``[first_slot + 3 s k, first_slot + 3 s (k + 1))``;
a frame goes in the slot that holds its time. Two frames of one file in one slot (a camera
that fired twice, a clock that jumped) cannot both be stored: the first in the file is kept
and the reader logs the other, so that nothing is dropped silently.
"""

from __future__ import annotations

import numpy as np

from .._schema import SLOT


def place_in_slots(
    times: np.ndarray, first_slot: np.datetime64, n_slots: int
) -> tuple[np.ndarray, np.ndarray]:
    """The slot of each frame, and which frames are kept; a numpy kernel.

    Parameters
    ----------
    times
        Frame times (datetime64), in file order.
    first_slot
        Start of slot 0 (on the 3-s grid).
    n_slots
        Slots in the chunk.

    Returns
    -------
    slot, kept
        ``slot``: int64 index of the slot holding each frame's time (``floor((time -
        first_slot) / 3 s)``), ``-1`` for a frame outside the chunk's slots or without a
        time (NaT). ``kept``: True
        for the first frame (in file order) of each slot; a frame in a slot already taken
        has its slot but is not kept (the caller logs it); a frame outside is not kept.
    """
    times = np.asarray(times, dtype="datetime64[ns]")
    first = np.datetime64(first_slot, "ns")
    timed = ~np.isnat(times)
    slot = np.full(len(times), -1, dtype=np.int64)
    slot[timed] = (times[timed] - first) // SLOT
    slot[(slot < 0) | (slot >= n_slots)] = -1
    kept = np.zeros(len(slot), dtype=bool)
    inside = np.flatnonzero(slot >= 0)
    _, first_of_slot = np.unique(slot[inside], return_index=True)  # first occurrence
    kept[inside[first_of_slot]] = True
    return slot, kept
