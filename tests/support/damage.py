"""Ways to damage one real minute file's (decompressed) bytes, shared by the reader's tests:
each damages frame 5 (and maybe its neighbour) and says which frames can no longer be read."""

from __future__ import annotations

import re

import numpy as np

DAMAGE_KINDS = [
    "bad_size_line",
    "size_line_deleted",
    "end_of_header_deleted",
    "request_start_garbled",
    "garbage_between_frames",
    "noise_between_frames",
    "two_frames_fused_odd",
    "pixels_cut_short",
    "magic_deleted",
    "pixels_cut_and_magic_deleted_20",
    "pixels_cut_and_magic_deleted_2000",
    "two_frames_fused",
]


def frame_starts(data: bytes) -> list[int]:
    """Where each of a whole minute's 20 frames starts (``P5\\n#"``), by a plain search."""
    starts = [m.start() for m in re.finditer(re.escape(b'P5\n#"'), data)]  # cannot overlap
    assert len(starts) == 20
    return starts


def damage_minute(data: bytes, kind: str) -> tuple[bytes, list[int]]:
    """Damage frame 5 (and maybe its neighbour) of a minute; returns the bytes and the frames
    that can no longer be read whole."""
    s = frame_starts(data)
    header_5 = data[s[5] : data.index(b"\n65535\n", s[5]) + 7]
    if kind == "bad_size_line":
        bad = header_5.replace(b"\n256 256\n", b"\n256 2x6\n")
        return data[: s[5]] + bad + data[s[5] + len(header_5) :], [5]
    if kind == "size_line_deleted":  # bytes deleted inside a header
        bad = header_5.replace(b"\n256 256\n", b"\n")
        return data[: s[5]] + bad + data[s[5] + len(header_5) :], [5]
    if kind == "end_of_header_deleted":  # the old reader took frame 6's pixels for frame 5's
        bad = header_5[: -len(b"65535\n")]
        return data[: s[5]] + bad + data[s[5] + len(header_5) :], [5]
    if kind == "request_start_garbled":
        bad = header_5.replace(b'#"Image request start" 2014', b'#"Image request start" 2x14')
        return data[: s[5]] + bad + data[s[5] + len(header_5) :], [5]
    if kind == "garbage_between_frames":  # frame 5 itself is whole: all 20 are kept
        return data[: s[6]] + b"\x00garbage\nP5\n" * 300 + data[s[6] :], []
    if kind == "noise_between_frames":
        noise = np.random.default_rng(5).integers(0, 256, 5000, dtype=np.uint8).tobytes()
        return data[: s[6]] + noise + data[s[6] :], []
    if kind == "pixels_cut_short":  # 5,000 bytes of frame 5's pixels lost mid-file
        return data[: s[6] - 5000] + data[s[6] :], [5]
    if kind == "magic_deleted":  # frame 5's "P5" line lost: frame 4 is still whole
        return data[: s[5]] + data[s[5] + 3 :], [5]
    if kind.startswith("pixels_cut_and_magic_deleted"):  # frame 4 short, then no "P5" line
        cut = int(kind.rsplit("_", 1)[1])
        return data[: s[5] - cut] + data[s[5] + 3 :], [4, 5]
    if kind == "two_frames_fused":  # frame 5 loses its end and frame 6 its whole header
        return data[: s[6] - 40_000] + data[s[6] + 600 :], [5, 6]
    if kind == "two_frames_fused_odd":  # the same, an odd number of bytes
        return data[: s[6] - 40_001] + data[s[6] + 600 :], [5, 6]
    raise AssertionError(kind)
