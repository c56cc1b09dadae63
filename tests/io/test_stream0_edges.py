"""The stream0 reader at its edges: the bounds of the damage heuristics (pixels that follow a
frame, garbage in a frame's last counts, a header that lost its ``P5`` line), files cut right
after a frame start, a duplicate in a chunk's first slot, files timed in another minute, a
one-slot request, and what the reader asks an archive for. Found by the mutation check of
``io/_stream0.py`` (docs/development.md): each test fails on a one-token change there."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import auroradask
from auroradask._schema import FILE_UNREADABLE, FRAME_BYTES, FRAME_MISSING, OK
from auroradask.io import _stream0 as reader
from auroradask.io._archive import Candidate, open_archive
from auroradask.io._stream0 import parse_frames, read_block
from tests.support.archive import relabel_minute
from tests.support.damage import frame_starts
from tests.support.utils import HOUR_DIR, minute_bytes, open_sample

SAMPLE = Path(auroradask.sample_archive())
T0 = np.datetime64("2014-03-10T06:00", "ns")
MINUTE = np.timedelta64(60, "s")


def _name(hhmm: str) -> str:
    return f"20140310_{hhmm}_gill_themis19_full.pgm.gz"


@pytest.fixture(scope="module")
def minute() -> bytes:
    return minute_bytes(SAMPLE, "0602")


def _frame(counts: np.ndarray) -> bytes:
    """A frame's pixel bytes (big-endian) from ``FRAME_BYTES // 2`` counts."""
    assert counts.size == FRAME_BYTES // 2
    return counts.astype(">u2").tobytes()


def _sky() -> np.ndarray:
    """Counts whose 1st and 99th percentiles are exactly 1000 and 3000: 2 % at each."""
    counts = np.full(FRAME_BYTES // 2, 2000, dtype=np.uint16)
    n = counts.size // 50
    counts[:n], counts[-n:] = 1000, 3000
    return counts


def test_extra_bytes_look_like_pixels_by_the_frame_s_own_range():
    frame = _frame(_sky())
    assert np.percentile(_sky(), [1, 99]).tolist() == [1000.0, 3000.0]

    def looks(extra: bytes) -> bool:
        return reader._looks_like_pixels(frame + extra, FRAME_BYTES, FRAME_BYTES + len(extra), 0)

    def be(counts: list[int]) -> bytes:
        return np.array(counts, dtype=">u2").tobytes()

    # the range's own ends are inside it
    assert looks(be([1000] * 8)) and looks(be([3000] * 8))
    assert not looks(be([999] * 8)) and not looks(be([3001] * 8))
    # eight counts are enough to judge, seven are not
    assert not looks(be([2000] * 7))
    # half in range is not "mostly" (and 0x07D0 0x0000 shifted by a byte is all out of range)
    assert not looks(be([2000, 0] * 8))
    assert looks(be([2000, 2000, 0] * 8))
    # pixels that start one byte late are found too
    assert looks(b"\x00" + be([2000] * 8))
    # ... read from that byte on: 5 of 8 in range (a count earlier, 4 of 8 would not do)
    assert looks(b"\x00" + be([0, 0, 0] + [2000] * 5))
    # only the first 64 KiB are looked at: garbage there, pixels after it
    assert not looks(be([0] * (60 * 512)) + be([2000] * (68 * 512)))


def test_a_frame_s_last_counts_fit_by_its_darkest_and_its_bright_one_percent():
    def fits(tail: list[int], before: int = 2000) -> bool:
        counts = _sky()
        counts[100] = 60_000  # a star: above the bright 1 %, the edge's counts must not reach it
        counts[-17] = before
        counts[-16:] = tail
        return reader._tail_fits(_frame(counts), 0)

    assert fits([1000] * 16) and fits([3000] * 16)  # the ends of the range fit
    assert not fits([999] * 16) and not fits([3001] * 16)
    # half out of range does not fit; 16 counts are judged, not 17
    assert not fits([2000] * 8 + [0] * 8, before=2000)
    assert fits([2000] * 9 + [0] * 7)


def test_a_header_that_lost_its_p5_line_keeps_the_frame_before_it(minute, reference):
    images, _ = reference
    s = frame_starts(minute)
    for lost, kept in ((b"Q5\n", True), (b"", True), (b"P5\r\n", False)):
        # frame 5's "P5" line lost or overwritten: a header line within 3 bytes after frame 4
        frames = parse_frames(minute[: s[5]] + lost + minute[s[5] + 3 :])
        seconds = frames.request_start.astype("datetime64[s]")
        assert np.datetime64("2014-03-10T06:02:15") not in seconds  # frame 5
        assert (np.datetime64("2014-03-10T06:02:12") in seconds) == kept  # frame 4
        if kept:
            np.testing.assert_array_equal(frames.images[4], images[44])


def test_a_cut_frame_filled_up_with_garbage_is_dropped(minute, reference):
    images, _ = reference
    s = frame_starts(minute)
    # frame 5 loses its last 20 bytes, 100 bytes of 0xFF follow: its last counts are 65535
    data = minute[: s[6] - 20] + b"\xff" * 100 + minute[s[6] :]
    frames = parse_frames(data)
    assert len(frames.images) == 19
    np.testing.assert_array_equal(frames.images, images[40:60][np.arange(20) != 5])
    assert frames.problem == (
        f"frame at byte {s[5]}: followed by 80 bytes that look like pixels (its own may be "
        "cut short and the next header lost); skipped"
    )


def test_a_file_cut_right_after_a_frame_start_reports_that_frame(minute):
    s = frame_starts(minute)
    assert s[4] % 2 == 0 and s[5] % 2 == 1
    for k in (4, 5):  # the start's '#"' at an odd and at an even offset, as the last bytes
        frames = parse_frames(minute[: s[k] + 5])
        assert len(frames.images) == k
        assert frames.problem == f"frame at byte {s[k]}: header is cut off; skipped"
    assert parse_frames(b"x" + minute[: s[1]]).problem == "1 bytes before the first frame header"


def test_a_duplicate_in_a_chunk_s_first_slot_is_logged_and_none_otherwise(
    sample_copy, minute, caplog
):
    archive = open_archive(sample_copy, cache=False)
    path = sample_copy / HOUR_DIR / _name("0602")
    first = T0 + 2 * MINUTE
    with caplog.at_level(logging.WARNING, logger="auroradask"):
        _, _, status, _ = read_block(archive, [[str(path)]], first + np.timedelta64(9, "s"), 5)
    assert (status == OK).all() and caplog.text == ""  # frames outside the chunk: no warning
    moved = b'"Image request start" 2014-03-10 06:02:03.027943 UTC'
    assert minute.count(moved) == 1
    data = minute.replace(moved, b'"Image request start" 2014-03-10 06:02:01.000000 UTC')
    path.write_bytes(gzip.compress(data, compresslevel=1))
    with caplog.at_level(logging.WARNING, logger="auroradask"):
        _, stamp, status, _ = read_block(archive, [[str(path)]], first, 20)
    assert status[0, 0] == OK and status[0, 1] == FRAME_MISSING
    assert stamp[0, 0] == np.datetime64("2014-03-10T06:02:00.048845")
    assert caplog.text.count("two frames in slot") == 1
    assert "two frames in slot 2014-03-10T06:02:00.000000000; kept the first" in caplog.text


def test_frames_of_another_minute_are_counted_and_named_by_minute(sample_copy, minute, caplog):
    hour = sample_copy / HOUR_DIR
    s = frame_starts(minute)
    later = relabel_minute(minute[s[12] :], "gill", pd.Timestamp("2014-03-10 06:03"))
    (hour / _name("0602")).write_bytes(gzip.compress(minute[: s[12]] + later, compresslevel=1))
    archive = open_archive(sample_copy, cache=False)
    with caplog.at_level(logging.WARNING, logger="auroradask"):
        _, _, status, _ = read_block(archive, [[str(hour / _name("0602"))]], T0 + 2 * MINUTE, 20)
    assert (status[0, :12] == OK).all() and (status[0, 12:] == FILE_UNREADABLE).all()
    assert "holds 8 frames timed 2014-03-10T06:03" in caplog.text
    assert "timed 2014-03-10T06:02" not in caplog.text  # its own minute is no conflict
    # a file of one frame, of another minute
    (hour / _name("0602")).write_bytes(gzip.compress(later[: s[13] - s[12]]))
    _, _, status, _ = read_block(archive, [[str(hour / _name("0602"))]], T0 + 2 * MINUTE, 20)
    assert (status == FILE_UNREADABLE).all()


def test_the_reader_prefetches_each_minute_s_first_candidate(sample_copy, caplog):
    archive = open_archive(sample_copy, cache=False)
    hour = sample_copy / HOUR_DIR
    asked = []
    archive.fetch_many = lambda candidates: asked.extend(candidates) or {}
    first = str(hour / (_name("0603") + ".first"))
    Path(first).write_bytes(minute_bytes(sample_copy, "0603")[:200_000])  # one whole frame
    second = Candidate(str(hour / _name("0603")), 9)
    paths = [[str(hour / _name("0601"))], [], [first, second]]
    with caplog.at_level(logging.WARNING, logger="auroradask"):
        _, _, status, _ = read_block(archive, paths, T0 + MINUTE, 60)
    assert asked == [Candidate(str(hour / _name("0601"))), Candidate(first)]
    assert (status[0, :20] == OK).all() and (status[0, 40:] == OK).all()
    # a damaged candidate's problem is logged with the frames it kept; a whole one's is not
    assert f"{first}: frame at byte " in caplog.text and "(kept 1 frames)" in caplog.text
    assert _name("0601") not in caplog.text


def test_one_slot_is_a_request_and_none_is_an_argument_error(reference):
    images, times = reference
    one = open_sample(start="2014-03-10T06:00:02", end="2014-03-10T06:00:04").compute()
    np.testing.assert_array_equal(one.time.values, [np.datetime64("2014-03-10T06:00:03", "ns")])
    np.testing.assert_array_equal(one.images.values[0], images[1:2])
    with pytest.raises(auroradask.ArgumentError, match="holds no 3-second frame slot"):
        open_sample(start="2014-03-10T06:00:01", end="2014-03-10T06:00:03")


@pytest.mark.parametrize(
    ("end", "where"),
    [
        ("2014-03-12T06:00", "2014/03/10, 2014/03/11, 2014/03/12"),
        ("2014-03-13T06:00", "2014/03/10 to 2014/03/13 (4 days)"),
    ],
)
def test_an_unknown_site_s_error_names_the_days_looked_in(end, where):
    with pytest.raises(auroradask.ArgumentError, match="^sites: 'zzzz'") as error:
        open_sample(sites=["gill", "zzzz"], end=end)
    assert f"zzzz_<imager> in {where}; sites there: gill" in str(error.value)


def test_a_header_is_read_up_to_16_kib_and_no_further(minute, reference):
    images, _ = reference
    header = minute[: minute.index(b"\n65535\n") + 7]
    for length, whole in ((16384, True), (16385, False)):
        # a comment line that makes frame 0's header exactly `length` bytes long
        pad = b'#"Comment" ' + b"x" * (length - len(header) - 12) + b"\n"
        data = minute[:3] + pad + minute[3:]
        assert data.index(b"\n65535\n") + 7 == length
        frames = parse_frames(data)
        assert len(frames.images) == (20 if whole else 19)
        np.testing.assert_array_equal(frames.images[-19:], images[41:60])
        if not whole:  # its last line, "65535", lies past the 16 KiB read
            assert frames.problem == "frame at byte 0: maximum value line is not '65535'; skipped"


def test_a_file_without_frames_leaves_its_minute_unreadable(sample_copy):
    archive = open_archive(sample_copy, cache=False)
    hour = sample_copy / HOUR_DIR
    (hour / _name("0601")).write_bytes(b"")
    (hour / _name("0602")).write_bytes(gzip.compress(b"not a THEMIS file" * 99))
    paths = [[str(hour / _name(f"06{m:02d}"))] for m in range(4)]
    _, _, status, _ = read_block(archive, paths, T0, 80)
    assert (status[0, 20:60] == FILE_UNREADABLE).all()
    assert (status[0, :20] == OK).all() and (status[0, 60:] == OK).all()


def test_selecting_frames_keeps_their_sites_and_header_values(minute):
    frames = parse_frames(minute)
    keep = np.arange(20) % 3 == 0
    some = frames.select(keep, "chosen")
    assert some.problem == "chosen" and len(some.images) == 7
    np.testing.assert_array_equal(some.images, frames.images[keep])
    np.testing.assert_array_equal(some.request_start, frames.request_start[keep])
    assert some.sites.tolist() == ["gill"] + [""] * 6
    assert some.meta["header_latitude"][0] == np.float32(56.3539)
    assert all(len(v) == 7 for v in some.meta.values())
