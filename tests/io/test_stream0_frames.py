"""The stream0 reader's kernels on the real sample, without dask: frames and header values
read from a minute file's bytes, damage kept to the damaged frame, a chunk's slots and their
statuses (``read_block``), the choice between a minute's candidate files. Quick enough to be
the mutation check's first test file for ``io/_stream0.py`` (docs/development.md)."""

from __future__ import annotations

import bz2
import gzip
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import auroradask
from auroradask._schema import FILE_UNREACHABLE, FILE_UNREADABLE, FRAME_MISSING, NO_FILE, OK
from auroradask.io._archive import Candidate, TransportError, open_archive
from auroradask.io._stream0 import (
    HEADER_FIELDS,
    decompress,
    parse_frames,
    read_block,
    read_minute_file,
)
from tests.support.archive import relabel_minute
from tests.support.damage import DAMAGE_KINDS, damage_minute, frame_starts
from tests.support.utils import HOUR_DIR, minute_bytes, open_sample

T0 = np.datetime64("2014-03-10T06:00", "ns")
MINUTE = np.timedelta64(60, "s")


def _name(hhmm: str, suffix: str = ".gz") -> str:
    return f"20140310_{hhmm}_gill_themis19_full.pgm{suffix}"


def _paths(root, suffixes=(".gz",) * 5 + ("",)) -> list[list[str]]:
    """Each sample minute's file, as one candidate."""
    return [[str(root / HOUR_DIR / _name(f"06{m:02d}", s))] for m, s in enumerate(suffixes)]


SAMPLE = Path(auroradask.sample_archive())


@pytest.fixture(scope="module")
def minutes() -> list[bytes]:
    return [minute_bytes(SAMPLE, f"06{m:02d}") for m in range(6)]


def test_every_sample_minute_reads_as_the_reference(minutes, reference):
    images, times = reference
    for m, data in enumerate(minutes):
        frames = parse_frames(data)
        assert frames.problem is None
        assert frames.images.dtype == np.uint16 and frames.images.shape == (20, 256, 256)
        np.testing.assert_array_equal(frames.images, images[20 * m : 20 * m + 20])
        np.testing.assert_array_equal(frames.request_start, times[20 * m : 20 * m + 20])
        # the first frame of a file has the long header: site and position
        assert frames.sites.tolist() == ["gill"] + [""] * 19
        np.testing.assert_array_equal(frames.meta["exposure_ms"], np.full(20, 999.0))
        assert frames.meta["header_latitude"][0] == np.float32(56.3539)
        assert frames.meta["header_longitude"][0] == np.float32(-94.6557)
        assert np.isnan(frames.meta["header_latitude"][1:]).all()
        assert np.isnan(frames.meta["ccd_temperature"]).all()  # not in these headers
        assert set(frames.meta) == set(HEADER_FIELDS)


def test_header_values_are_read_from_their_own_lines_only(minutes):
    data = minutes[2]
    first = data[: frame_starts(data)[1]]
    again = b'#"Image request start" 2014-03-10 06:02:09\n#"Image readout start"'
    edited = (
        first.replace(b'#"Geodetic latitude" 56.3539', b'#"Geodetic latitude" -12.5')
        .replace(b"MSEC=999", b"MSEC=1500")
        .replace(b'#"Ccd type" Sony', b'#"CCD temperature" -20.25\n#"Ccd type" Sony')
        # a third site line naming the same site and a second request time: the first counts
        .replace(b'#"Site name" Gillam\n', b'#"Site name" Gillam\n#"Site unique ID" gill\n')
        .replace(b'#"Image readout start"', again)
    )
    frames = parse_frames(edited + data[len(first) :])
    assert frames.problem is None and len(frames.images) == 20
    assert frames.meta["header_latitude"][0] == np.float32(-12.5)
    assert frames.meta["exposure_ms"][0] == 1500.0 and frames.meta["exposure_ms"][1] == 999.0
    assert frames.meta["ccd_temperature"][0] == np.float32(-20.25)
    assert frames.sites[0] == "gill"
    assert frames.request_start[0] == np.datetime64("2014-03-10T06:02:00.048845")
    two = parse_frames(first.replace(b'#"Site name" Gillam\n', b'#"Site unique ID" fsmi\n'))
    assert two.sites.tolist() == ["gill,fsmi"]


@pytest.mark.parametrize("kind", DAMAGE_KINDS)
def test_a_damaged_frame_loses_only_itself(kind, minutes, reference):
    images, times = reference
    data, lost = damage_minute(minutes[2], kind)
    frames = parse_frames(data)
    keep = np.setdiff1d(np.arange(20), lost)
    np.testing.assert_array_equal(frames.images, images[40:60][keep])
    np.testing.assert_array_equal(frames.request_start, times[40:60][keep])
    assert frames.sites.tolist() == ["gill"] + [""] * (len(keep) - 1)
    assert len(frames.meta["exposure_ms"]) == len(keep)
    assert frames.problem is not None


def test_each_kind_of_damage_is_reported_as_what_it_is(minutes):
    data = minutes[2]
    s = frame_starts(data)
    problem = {
        kind: parse_frames(damage_minute(data, kind)[0]).problem
        for kind in ("bad_size_line", "end_of_header_deleted")
    }
    assert "size line b'256 2x6' is not '256 256'" in problem["bad_size_line"]
    assert "maximum value line is not '65535'" in problem["end_of_header_deleted"]
    month_13 = data[: s[1]].replace(b'start" 2014-03-10', b'start" 2014-13-10')
    assert parse_frames(month_13).problem == (
        "frame at byte 0: 'Image request start' b'2014-13-10 06:02:00.048845' is not a time; "
        "skipped"
    )
    cut_header = parse_frames(data[: s[3] + 20])
    assert cut_header.problem == f"frame at byte {s[3]}: header is cut off; skipped"
    assert len(cut_header.images) == 3
    no_end = parse_frames(data[: s[3] + 20] + data[s[4] :]).problem
    assert no_end == f"frame at byte {s[3]}: header has no end; skipped"
    cut = parse_frames(data[: s[4] - 10])
    assert cut.problem == (
        f"frame at byte {s[3]}: pixels cut short by the end of the file "
        "(131062 of 131072 bytes); skipped"
    )
    assert len(cut.images) == 3
    short = parse_frames(damage_minute(data, "pixels_cut_short")[0]).problem
    assert short == (
        f"frame at byte {s[5]}: pixels cut short by the next frame header "
        "(126072 of 131072 bytes); skipped"
    )
    fused = parse_frames(damage_minute(data, "two_frames_fused")[0]).problem
    assert fused == (
        f"frame at byte {s[5]}: followed by 90809 bytes that look like pixels (its own may be "
        "cut short and the next header lost); skipped"
    )
    no_request = data[: s[1]].replace(b'#"Image request start"', b'#"Image request stamp"')
    assert parse_frames(no_request).problem.endswith("no readable 'Image request start'; skipped")
    assert (
        parse_frames(b"x" * 10 + data[: s[1]]).problem == "10 bytes before the first frame header"
    )
    garbage = parse_frames(data[: s[1]] + b"\x00" * 20 + data[s[1] : s[2]])
    assert garbage.problem == f"20 unexpected bytes after the frame at byte {s[0]}"
    assert len(garbage.images) == 2


def test_files_without_frames_say_so(minutes):
    assert parse_frames(b"").problem == "file is empty"
    assert parse_frames(b"not a THEMIS file" * 9).problem == "no PGM frame header"
    assert parse_frames(b"P5\n#").problem == "no PGM frame header"
    header_only = minutes[0][: minutes[0].index(b"65535\n") + 6]
    empty = parse_frames(header_only)
    assert empty.images.shape == (0, 256, 256) and empty.images.dtype == np.uint16
    assert empty.request_start.dtype == np.dtype("datetime64[ns]")
    assert empty.problem == (
        "frame at byte 0: pixels cut short by the end of the file (0 of 131072 bytes); skipped"
    )


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ""])
def test_a_minute_file_reads_whole_or_up_to_its_damage(suffix, minutes, reference):
    images, _ = reference
    data = minutes[1][: frame_starts(minutes[1])[6]]  # six whole frames
    # bz2 in 100 kB blocks: half a stream holds whole blocks, so frames
    pack = {".gz": gzip.compress, ".bz2": lambda d: bz2.compress(d, 1), "": bytes}[suffix]
    whole = read_minute_file(pack(data), _name("0601", suffix))
    assert whole.problem is None
    np.testing.assert_array_equal(whole.images, images[20:26])
    raw = pack(data)
    cut = read_minute_file(raw[: len(raw) // 2], _name("0601", suffix))
    assert 0 < len(cut.images) < 6
    np.testing.assert_array_equal(cut.images, images[20 : 20 + len(cut.images)])
    if suffix:
        assert cut.problem.startswith("compressed stream is truncated; ")
        assert decompress(raw[: len(raw) // 2], "x.pgm" + suffix)[1] == (
            "compressed stream is truncated"
        )


def test_a_bz2_stream_is_decoded_step_by_step_to_its_end(minutes):
    # more than one 64 KiB step of compressed bytes, and trailing bytes after the stream
    raw = bz2.compress(minutes[0][:400_000])
    assert len(raw) > 1 << 16
    assert decompress(raw, "a.pgm.bz2") == (minutes[0][:400_000], None)
    corrupt = raw[:1000] + bytes(1000) + raw[2000:]
    data, problem = decompress(corrupt, "a.pgm.bz2")
    assert problem.startswith("corrupt compressed data")
    assert decompress(b"plain", "a.pgm") == (b"plain", None)


def test_a_chunk_s_slots_hold_the_reference_frames(reference):
    images, times = reference
    archive = open_archive(SAMPLE, cache=False)
    got, stamp, status, meta = read_block(archive, _paths(SAMPLE), T0, 120)
    assert got.shape == (1, 120, 256, 256) and status.dtype == np.int8
    assert (status == OK).all()
    np.testing.assert_array_equal(got[0], images)
    np.testing.assert_array_equal(stamp[0], times)
    np.testing.assert_array_equal(meta["exposure_ms"][0], np.full(120, 999.0, np.float32))
    assert meta["header_latitude"][0, 20] == np.float32(56.3539)
    assert np.isnan(meta["header_latitude"][0, 21])
    # a chunk that starts and ends inside minutes: slots 11 to 70 of the sample
    paths = _paths(SAMPLE)[:4]
    got, stamp, status, _ = read_block(archive, paths, T0 + np.timedelta64(33, "s"), 60)
    assert (status == OK).all()
    np.testing.assert_array_equal(got[0], images[11:71])
    np.testing.assert_array_equal(stamp[0], times[11:71])


def test_slots_without_a_frame_get_their_minute_s_status(sample_copy, reference, monkeypatch):
    images, times = reference
    hour = sample_copy / HOUR_DIR
    data = minute_bytes(sample_copy, "0602")
    s = frame_starts(data)
    (hour / _name("0602")).write_bytes(gzip.compress(data[: s[7]] + data[s[8] :]))
    raw = (hour / _name("0603")).read_bytes()
    (hour / _name("0603")).write_bytes(raw[: len(raw) // 2])
    archive = open_archive(sample_copy, cache=False)
    paths = _paths(sample_copy)
    paths[1] = []  # no file for 06:01
    paths[4] = [str(hour / "nowhere.pgm.gz")]  # a file that cannot be read
    real = type(archive).read_bytes

    def failing(self, path, size=None):
        if path.endswith("0605_gill_themis19_full.pgm"):
            raise TransportError("connection reset")
        return real(self, path, size)

    monkeypatch.setattr(type(archive), "read_bytes", failing)
    got, stamp, status, meta = read_block(archive, paths, T0, 120)
    status, got, stamp = status[0], got[0], stamp[0]
    assert (status[:20] == OK).all()
    assert (status[20:40] == NO_FILE).all()
    assert np.flatnonzero(status[40:60] != OK).tolist() == [7]
    assert status[47] == FRAME_MISSING
    kept = int((status[60:80] == OK).sum())
    assert 0 < kept < 20 and (status[60 + kept : 80] == FILE_UNREADABLE).all()
    assert (status[80:100] == FILE_UNREADABLE).all()
    assert (status[100:] == FILE_UNREACHABLE).all()
    ok = status == OK
    np.testing.assert_array_equal(got[ok], images[ok])
    np.testing.assert_array_equal(stamp[ok], times[ok])
    assert (got[~ok] == 0).all() and np.isnat(stamp[~ok]).all()
    assert np.isnan(meta["exposure_ms"][0][~ok]).all()
    assert (meta["exposure_ms"][0][ok] == 999.0).all()


def test_a_minute_s_candidates_are_tried_until_one_reads_whole(sample_copy, reference, caplog):
    images, times = reference
    hour = sample_copy / HOUR_DIR
    data = minute_bytes(sample_copy, "0602")
    s = frame_starts(data)
    # damaged copies (plain files): the frames they keep
    first5 = hour / (_name("0602", "") + ".first5")
    first5.write_bytes(data[: s[5] + 100])
    last6 = hour / (_name("0602", "") + ".last6")
    last6.write_bytes(b"junk" + data[s[14] :])
    last5 = hour / (_name("0602", "") + ".last5")
    last5.write_bytes(data[s[15] :] + b"junk")
    archive = open_archive(sample_copy, cache=False)
    whole = str(hour / _name("0602"))
    missing = str(hour / _name("0602", ".xz"))
    slots = slice(40, 60)

    def read(*candidates, fetched=None):
        archive.fetch_many = lambda _: dict(fetched or {})
        return read_block(archive, [list(candidates)], T0 + 2 * MINUTE, 20)

    # the first that reads whole is used, whatever comes before or after it
    for candidates in ([missing, str(first5), whole, str(last6)], [Candidate(whole, 1)]):
        got, stamp, status, _ = read(*candidates)
        assert (status == OK).all()
        np.testing.assert_array_equal(got[0], images[slots])
    # none whole: the fullest is kept, the rest of the minute is unreadable
    for candidates, keep in (
        ([str(first5), str(last6)], np.r_[14:20]),
        ([str(last6), str(first5)], np.r_[14:20]),
        ([str(first5), missing], np.r_[0:5]),
        ([str(first5), str(last5)], np.r_[0:5]),  # as full: the first
        ([str(last5), str(first5)], np.r_[15:20]),
    ):
        got, stamp, status, _ = read(*candidates)
        assert np.flatnonzero(status[0] == OK).tolist() == keep.tolist()
        assert (status[0][np.setdiff1d(np.arange(20), keep)] == FILE_UNREADABLE).all()
        np.testing.assert_array_equal(got[0][keep], images[slots][keep])
        np.testing.assert_array_equal(stamp[0][keep], times[slots][keep])
    # what fetch_many read already is used, an error it met counts as the file's
    got, _, status, _ = read(whole, fetched={whole: gzip.compress(data[: s[5]])})
    assert np.flatnonzero(status[0] == OK).tolist() == [0, 1, 2, 3, 4]
    with caplog.at_level(logging.WARNING, logger="auroradask"):
        got, _, status, _ = read(whole, fetched={whole: OSError(5, "Input/output error")})
    assert (status == FILE_UNREADABLE).all()
    assert f"{whole}: unreadable (OSError: Input/output error)" in caplog.text


def test_frames_of_another_minute_or_site_are_not_placed(sample_copy, caplog):
    hour = sample_copy / HOUR_DIR
    data = minute_bytes(sample_copy, "0602")
    s = frame_starts(data)
    later = relabel_minute(data[s[10] :], "gill", pd.Timestamp("2014-03-10 06:03"))
    (hour / _name("0602")).write_bytes(gzip.compress(data[: s[10]] + later))
    archive = open_archive(sample_copy, cache=False)
    paths = _paths(sample_copy)[2:4]
    with caplog.at_level(logging.WARNING, logger="auroradask"):
        _, stamp, status, _ = read_block(archive, paths, T0 + 2 * MINUTE, 40)
    status = status[0]
    assert (status[:10] == OK).all() and (status[10:20] == FILE_UNREADABLE).all()
    assert (status[20:] == OK).all()  # 06:03's own file keeps its slots
    assert "holds 10 frames timed 2014-03-10T06:03" in caplog.text
    assert "the minute of " + paths[1][0] in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="auroradask"):
        _, _, status, _ = read_block(archive, paths[:1], T0 + 2 * MINUTE, 20)
    assert "a minute whose file (if any) is not in this chunk" in caplog.text
    assert (status[0][:10] == OK).all() and (status[0][10:] == FILE_UNREADABLE).all()
    other = relabel_minute(data, "fsmi", pd.Timestamp("2014-03-10 06:02"))
    (hour / _name("0602")).write_bytes(gzip.compress(other))
    _, _, status, _ = read_block(archive, paths[:1], T0 + 2 * MINUTE, 20)
    assert (status == FILE_UNREADABLE).all()


def test_the_lazy_dataset_holds_the_chunk_s_frames_in_their_slots(reference):
    images, times = reference
    frames = open_sample(start="2014-03-10T06:00:31", end="2014-03-10T06:05:10", chunk_minutes=2)
    # slots on the 3-s grid from the first at or after the start; chunk edges on even minutes
    assert frames.images.chunks[1] == (29, 40, 24)
    assert frames.images.chunks[2:] == ((256,), (256,))
    assert frames.timestamp.chunks == ((1,), (29, 40, 24))
    frames = frames.compute()
    slots = T0 + np.timedelta64(3, "s") * np.arange(11, 104)
    np.testing.assert_array_equal(frames.time.values, slots)
    np.testing.assert_array_equal(frames.images.values[0], images[11:104])
    np.testing.assert_array_equal(frames.timestamp.values[0], times[11:104])
    assert (frames.frame_status.values == OK).all()
    assert frames.frame_status.dtype == np.int8 and frames.images.dtype == np.uint16
    assert (frames.exposure_ms.values == 999.0).all() and frames.exposure_ms.dtype == np.float32
    assert frames.header_latitude.values[0, 9] == np.float32(56.3539)  # 06:01:00
    assert np.isnan(frames.header_latitude.values[0, 10])
    assert frames.imager.values.tolist() == ["themis19"]
    assert frames.site.values.tolist() == ["gill"]
