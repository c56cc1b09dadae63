"""Opening the archive lazily: time slots, statuses, damaged files, HTTP, discovery cost."""

from __future__ import annotations

import errno
import gzip
import logging
import os
import zlib

import numpy as np
import pandas as pd
import pytest

import auroradask
from auroradask._schema import FILE_UNREADABLE, FRAME_BYTES, FRAME_MISSING, NO_FILE, OK
from auroradask.io._archive import Archive
from auroradask.io._stream0 import decompress, parse_frames
from tests.support.archive import relabel_minute
from tests.support.damage import DAMAGE_KINDS, damage_minute
from tests.support.utils import (
    HOUR_DIR,
    SAMPLE_END,
    SAMPLE_START,
    copy_as,
    minute_bytes,
    open_sample,
)


def test_sample_is_120_good_frames_in_3s_slots():
    frames = open_sample().compute()
    assert frames.sizes == {"site": 1, "time": 120, "y": 256, "x": 256}
    assert frames.images.dtype == np.uint16
    assert (frames.frame_status == OK).all()
    assert frames.time.values[0] == np.datetime64("2014-03-10T06:00:00")
    assert frames.time.values[-1] == np.datetime64("2014-03-10T06:05:57")
    assert np.all(np.diff(frames.time.values) == np.timedelta64(3, "s"))
    assert frames.imager.values.tolist() == ["themis19"]
    assert float(frames.latitude[0]) == pytest.approx(56.376)
    assert (
        frames.frame_status.attrs["flag_meanings"]
        == "ok no_file file_unreadable frame_missing file_unreachable"
    )


def test_images_and_timestamps_equal_ucalgary_reader(reference):
    images, times = reference
    frames = open_sample().compute()
    np.testing.assert_array_equal(frames.images.values[0], images)
    np.testing.assert_array_equal(frames.timestamp.values[0], times)
    # the slot is the header time floored to 3 s, not the position in the file
    floored = times.astype("datetime64[s]").astype(np.int64) // 3 * 3
    np.testing.assert_array_equal(
        frames.time.values.astype("datetime64[s]").astype(np.int64), floored
    )


def test_minutes_without_files_are_status_1():
    frames = open_sample(
        start="2014-03-10T05:58", end="2014-03-10T06:08", chunk_minutes=3
    ).compute()
    status = frames.frame_status.values[0]
    assert frames.sizes["time"] == 200
    assert (status[:40] == NO_FILE).all() and (status[-40:] == NO_FILE).all()
    assert (status[40:160] == OK).all()
    assert (frames.images.values[0][status != OK] == 0).all()
    assert np.isnat(frames.timestamp.values[0][status != OK]).all()


def test_truncated_and_garbage_files_are_status_2_and_the_rest_loads(sample_copy, reference):
    images, _ = reference
    hour = sample_copy / HOUR_DIR
    truncated = hour / "20140310_0601_gill_themis19_full.pgm.gz"
    truncated.write_bytes(truncated.read_bytes()[:700_000])  # about a third of the file
    (hour / "20140310_0603_gill_themis19_full.pgm.gz").write_bytes(b"not a THEMIS file" * 99)
    plain = hour / "20140310_0605_gill_themis19_full.pgm"
    raw = plain.read_bytes()
    plain.write_bytes(raw[: 4 * len(raw) // 20 + FRAME_BYTES // 2])  # cut inside frame 4

    frames = open_sample(sample_copy).compute()
    status = frames.frame_status.values[0]
    minute = {m: slice(20 * m, 20 * m + 20) for m in range(6)}
    for m in (0, 2, 4):
        assert (status[minute[m]] == OK).all()
        np.testing.assert_array_equal(frames.images.values[0][minute[m]], images[minute[m]])
    assert (status[minute[3]] == FILE_UNREADABLE).all()
    assert (frames.images.values[0][minute[3]] == 0).all()
    # frames before the damage are recovered, the rest of the minute is status 2
    for m in (1, 5):
        kept = int((status[minute[m]] == OK).sum())
        assert 0 < kept < 20
        assert (status[minute[m]][:kept] == OK).all()
        assert (status[minute[m]][kept:] == FILE_UNREADABLE).all()
        got = frames.images.values[0][minute[m]][:kept]
        np.testing.assert_array_equal(got, images[minute[m]][:kept])
    assert (status[minute[5]] == OK).sum() == 4


def test_empty_file_is_status_2(sample_copy):
    (sample_copy / HOUR_DIR / "20140310_0602_gill_themis19_full.pgm.gz").write_bytes(b"")
    status = open_sample(sample_copy).frame_status.values[0]
    assert (status[40:60] == FILE_UNREADABLE).all() and (status[:40] == OK).all()


def test_frame_missing_from_a_file_is_status_3_in_its_slot(sample_copy, reference):
    images, _ = reference
    data = minute_bytes(sample_copy, "0602")
    starts = [i for i in range(len(data)) if data.startswith(b"P5\n", i)]
    assert len(starts) == 20
    without_7 = data[: starts[7]] + data[starts[8] :]
    (sample_copy / HOUR_DIR / "20140310_0602_gill_themis19_full.pgm.gz").write_bytes(
        gzip.compress(without_7)
    )
    frames = open_sample(sample_copy).compute()
    status = frames.frame_status.values[0]
    assert np.flatnonzero(status != OK).tolist() == [47]
    assert status[47] == FRAME_MISSING
    assert (frames.images.values[0, 47] == 0).all()
    keep = np.arange(120) != 47
    np.testing.assert_array_equal(frames.images.values[0][keep], images[keep])


def test_chunks_cover_whole_minutes_and_do_not_change_values():
    one = open_sample(chunk_minutes=1)
    assert one.images.chunks[1] == (20,) * 6
    assert one.images.chunks[2:] == ((256,), (256,))
    assert open_sample(chunk_minutes=4).images.chunks[1] == (80, 40)  # edges on multiples of 4 min
    odd = open_sample(start="2014-03-10T06:00:31", chunk_minutes=2).compute()
    assert odd.time.values[0] == np.datetime64("2014-03-10T06:00:33")
    reference = open_sample(chunk_minutes=10).compute()
    np.testing.assert_array_equal(one.images.values, reference.images.values)
    np.testing.assert_array_equal(odd.images.values[0], reference.images.values[0, 11:])


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"end": "2014-03-10T06:00"}, auroradask.ArgumentError, "end"),
        ({"end": "2014-03-10T05:00"}, auroradask.ArgumentError, "end"),
        ({"sites": []}, auroradask.ArgumentError, "sites"),
        ({"start": "not a time"}, auroradask.ArgumentError, "start"),
        ({"chunk_minutes": 0}, auroradask.ArgumentError, "chunk_minutes"),
        ({"chunk_minutes": 7}, auroradask.ArgumentError, "chunk_minutes"),
        ({"source": "/no/such/stream0"}, auroradask.SourceNotFoundError, "source"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, names):
    arguments = {
        "source": auroradask.sample_archive(),
        "sites": "gill",
        "start": SAMPLE_START,
        "end": SAMPLE_END,
    }
    arguments.update(kwargs)
    with pytest.raises(error, match=f"^{names}"):
        auroradask.open_themis(
            arguments.pop("source"),
            arguments.pop("sites"),
            arguments.pop("start"),
            arguments.pop("end"),
            **arguments,
        )


def test_a_date_alone_starts_at_midnight_and_ends_after_its_day():
    frames = open_sample(start="2014-03-10", end="2014-03-10")
    assert frames.time.values[0] == np.datetime64("2014-03-10T00:00")
    assert frames.sizes["time"] == 28800  # the end date is included, as in xarray's slicing
    two = open_sample(start="2014-03-10", end="2014-03-11")
    assert two.sizes["time"] == 2 * 28800
    timed = open_sample(start="2014-03-10", end="2014-03-11T00:00")
    assert timed.sizes["time"] == 28800  # a time is exclusive
    assert os.path.basename(frames.attrs["source"]) == "stream0"


# --- one bad file is a status, never a failed task (issue 13) ---------------------------


def _break_file(kind: str, path, monkeypatch) -> None:
    """Make one minute file unreadable in the way ``kind`` says."""
    if kind == "symlink_loop":
        path.unlink()
        path.symlink_to(path.name)  # a link to itself: ELOOP on open
    elif kind == "no_permission":  # EACCES, as a non-root user meets it (root reads anyway)
        real_open = open

        def refusing(file, *args, **kwargs):
            if str(file).endswith(path.name):
                raise PermissionError(errno.EACCES, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr("builtins.open", refusing)
    elif kind == "directory":
        path.unlink()
        path.mkdir()
    elif kind == "io_error":
        real = Archive.read_bytes

        def failing(self, p, *args, **kwargs):
            if p.endswith(path.name):
                raise OSError(errno.EIO, "Input/output error", p)
            return real(self, p, *args, **kwargs)

        monkeypatch.setattr(Archive, "read_bytes", failing)


@pytest.mark.parametrize("kind", ["symlink_loop", "no_permission", "directory", "io_error"])
def test_any_oserror_on_one_file_is_status_2_for_its_minute_only(
    kind, sample_copy, reference, monkeypatch, caplog
):
    images, times = reference
    broken = sample_copy / HOUR_DIR / "20140310_0602_gill_themis19_full.pgm.gz"
    _break_file(kind, broken, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="auroradask"):
        frames = open_sample(sample_copy, chunk_minutes=10).compute(scheduler="synchronous")
    status = frames.frame_status.values[0]
    assert (status[40:60] == FILE_UNREADABLE).all()
    keep = np.r_[0:40, 60:120]
    assert (status[keep] == OK).all()
    np.testing.assert_array_equal(frames.images.values[0][keep], images[keep])
    np.testing.assert_array_equal(frames.timestamp.values[0][keep], times[keep])
    assert broken.name in caplog.text


# --- damage inside a good file: resynchronise, never shift a frame (issue 13) ------------


@pytest.mark.parametrize("kind", DAMAGE_KINDS)
def test_a_damaged_frame_loses_only_itself_and_shifts_no_other(kind, sample_copy, reference):
    images, times = reference
    data, lost = damage_minute(minute_bytes(sample_copy, "0602"), kind)
    (sample_copy / HOUR_DIR / "20140310_0602_gill_themis19_full.pgm.gz").write_bytes(
        gzip.compress(data)
    )
    frames = open_sample(sample_copy).compute()
    status = frames.frame_status.values[0]
    lost_slots = [40 + k for k in lost]
    assert np.flatnonzero(status != OK).tolist() == lost_slots
    assert (status[lost_slots] == FILE_UNREADABLE).all()
    keep = np.setdiff1d(np.arange(120), lost_slots)
    np.testing.assert_array_equal(frames.images.values[0][keep], images[keep])
    np.testing.assert_array_equal(frames.timestamp.values[0][keep], times[keep])
    assert (frames.images.values[0][lost_slots] == 0).all()


def test_no_deletion_anywhere_puts_wrong_pixels_in_a_slot(sample_copy, reference):
    """Bytes deleted at random places: every frame the reader keeps is the reference frame
    of its slot, and the reader never raises."""
    images, times = reference
    data = minute_bytes(sample_copy, "0603")
    slot_of = {int(t.astype("datetime64[s]").astype(np.int64)) // 3: i for i, t in enumerate(times)}
    rng = np.random.default_rng(13)
    for _ in range(60):
        damaged = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(0, len(damaged)))
            del damaged[at : at + int(rng.choice([1, 7, 300, 20_000]))]
        frames = parse_frames(bytes(damaged))
        assert frames.problem is not None
        for image, time in zip(frames.images, frames.request_start, strict=True):
            i = slot_of[int(time.astype("datetime64[s]").astype(np.int64)) // 3]
            np.testing.assert_array_equal(image, images[i])


# --- files that claim another minute or another site (issue 13) ------------------------


@pytest.mark.parametrize("chunk_minutes", [1, 10])
def test_a_file_timed_in_another_minute_takes_no_slot_of_it(
    chunk_minutes, sample_copy, reference, caplog
):
    images, times = reference
    hour = sample_copy / HOUR_DIR
    liar = hour / "20140310_0603_gill_themis19_full.pgm.gz"
    liar.write_bytes(
        gzip.compress(
            relabel_minute(
                minute_bytes(sample_copy, "0603"), "gill", pd.Timestamp("2014-03-10 06:04")
            )
        )
    )
    with caplog.at_level(logging.WARNING, logger="auroradask"):
        frames = open_sample(sample_copy, chunk_minutes=chunk_minutes).compute()
    status = frames.frame_status.values[0]
    # the real 06:04 file keeps its slots
    np.testing.assert_array_equal(frames.images.values[0][80:100], images[80:100])
    np.testing.assert_array_equal(frames.timestamp.values[0][80:100], times[80:100])
    assert (status[80:100] == OK).all()
    # the 06:03 slots hold nothing, and say that their file is there but unusable
    assert (status[60:80] == FILE_UNREADABLE).all()
    assert (frames.images.values[0][60:80] == 0).all()
    assert (status[np.r_[0:60, 80:120]] == OK).all()
    assert "conflict" in caplog.text and liar.name in caplog.text
    if chunk_minutes == 10:  # both files are in the chunk: the warning names both
        assert "20140310_0604_gill_themis19_full.pgm.gz" in caplog.text


def test_a_file_whose_headers_name_another_site_is_not_used(sample_copy, reference, caplog):
    images, _ = reference
    other = sample_copy / HOUR_DIR / "20140310_0601_gill_themis19_full.pgm.gz"
    other.write_bytes(
        gzip.compress(
            relabel_minute(
                minute_bytes(sample_copy, "0601"), "fsmi", pd.Timestamp("2014-03-10 06:01")
            )
        )
    )
    with caplog.at_level(logging.WARNING, logger="auroradask"):
        frames = open_sample(sample_copy).compute()
    status = frames.frame_status.values[0]
    assert (status[20:40] == FILE_UNREADABLE).all()
    assert (frames.images.values[0][20:40] == 0).all()
    assert (status[np.r_[0:20, 40:120]] == OK).all()
    np.testing.assert_array_equal(frames.images.values[0][40:], images[40:])
    assert other.name in caplog.text and "fsmi" in caplog.text


# --- requests that can only find nothing are argument errors (issue 13) -----------------


def test_an_unknown_site_without_a_folder_is_an_argument_error():
    with pytest.raises(auroradask.ArgumentError, match=r"^sites: 'zzzz'.*gill") as error:
        open_sample(sites="zzzz")
    assert "2014/03/10" in str(error.value) and "stream0" in str(error.value)
    with pytest.raises(auroradask.ArgumentError, match=r"^sites: 'zzzz'"):
        open_sample(sites=["gill", "zzzz"])


def test_a_source_that_is_a_file_is_an_argument_error(sample_copy):
    (path,) = (sample_copy / HOUR_DIR).glob("20140310_0605_*")
    with pytest.raises(auroradask.ArgumentError, match="^source: .* is a file"):
        open_sample(path)


def test_a_request_that_finds_no_file_is_an_argument_error():
    with pytest.raises(
        auroradask.ArgumentError, match=r"^start, end: no minute file of gill.*2014/03/11"
    ):
        open_sample(start="2014-03-11T06:00", end="2014-03-11T07:00")
    # a known site with no files there, but another site with some: its slots are no_file
    frames = open_sample(sites=["gill", "atha"]).compute()
    assert (frames.frame_status.sel(site="atha") == NO_FILE).all()
    assert (frames.frame_status.sel(site="gill") == OK).all()


def test_an_unknown_site_with_a_folder_is_read_without_coordinates(tmp_path):
    frames = auroradask.open_themis(copy_as(tmp_path, site="zz9"), "zz9", SAMPLE_START, SAMPLE_END)
    assert (frames.frame_status.values == OK).all()
    assert np.isnan(frames.latitude.values).all()


def _zlib_step_by_step(raw: bytes) -> tuple[bytes, str | None]:
    """The reader's gzip decoding before ISA-L: zlib, 64 KiB at a time, keeping all it decodes."""
    decoder, out = zlib.decompressobj(wbits=31), []
    try:
        for offset in range(0, len(raw), 1 << 16):
            out.append(decoder.decompress(raw[offset : offset + (1 << 16)]))
            if decoder.eof:
                break
    except zlib.error as error:
        return b"".join(out), f"corrupt compressed data: {error}"
    return b"".join(out), None if decoder.eof else "compressed stream is truncated"


@pytest.mark.parametrize("kind", [*DAMAGE_KINDS, "whole", "one_byte_shifted"])
def test_frame_and_header_searches_equal_a_plain_byte_search(kind, sample_copy):
    """The reader finds frame starts and header lines from one vectorised pass; it must find
    exactly what a byte-by-byte search finds, at even and odd offsets, damaged or not."""
    from auroradask.io import _stream0 as reader

    data = minute_bytes(sample_copy, "0602")
    if kind == "one_byte_shifted":
        data = b"x" + data
    elif kind != "whole":
        data = damage_minute(data, kind)[0]
    marks = reader._header_marks(data)
    assert reader._frame_starts(data, marks) == [
        i for i in range(len(data)) if data.startswith(b'P5\n#"', i)
    ]
    edges = np.linspace(0, len(data), 200).astype(int)
    windows = list(zip(edges[:-1], edges[1:] + 7, strict=True))
    # and windows that end inside a header line: a match must end before the window does
    windows += [(int(m) - 50, int(m) + k) for m in marks[::7] for k in (2, 10, 25, 60)]
    for start, stop in windows:
        want = reader._HEADER_LINE.search(data, max(start, 0), stop) is not None
        got = reader._has_header_line(data, marks, max(start, 0), stop)
        assert got == want, (start, stop)


def test_gzip_through_isal_gives_zlib_s_bytes_whole_or_damaged(sample_copy):
    raw = (sample_copy / HOUR_DIR / "20140310_0601_gill_themis19_full.pgm.gz").read_bytes()
    middle = bytearray(raw)
    middle[len(raw) // 2 : len(raw) // 2 + 64] = bytes(64)  # corrupt deflate data
    crc = bytearray(raw)
    crc[-8] ^= 0xFF  # the trailer's CRC no longer matches
    cases = {
        "whole": raw,
        "truncated": raw[:700_000],
        "corrupt middle": bytes(middle),
        "bad crc": bytes(crc),
        "second member": raw + gzip.compress(b"more"),
        # the trailer's size is the reader's buffer hint; a wrong one also fails the stream's
        # own length check, so these take the step-by-step path (a right-sized hint with a
        # second member: "second member" above)
        "size too small": raw[:-4] + (1000).to_bytes(4, "little"),
        "size too large": raw[:-4] + (0xFFFFFFFF).to_bytes(4, "little"),
    }
    for name, data in cases.items():
        got, problem = decompress(data, "x.pgm.gz")
        want, want_problem = _zlib_step_by_step(data)
        assert got == want, name
        assert (problem is None) == (want_problem is None), (name, problem, want_problem)
    assert decompress(raw, "x.pgm.gz") == (gzip.decompress(raw), None)
