"""Reading raw THEMIS minute files and building the lazy frames dataset.

A minute file is a run of 16-bit PGM frames, each a ``P5`` line, ``#"key" value`` header
lines, ``256 256``, ``65535`` and 256×256 big-endian pixels. The kernels here read one file
from its bytes and keep every frame that is whole, so a truncated or damaged file still gives
every intact frame: the reader finds each frame by its own ``P5`` header, so damage to one
frame never shifts another frame's pixels into its slot. ``themis_imager_readfile.read`` is
the reference the tests hold this reader to, frame for frame; it is not used here because it
needs a local path and drops every frame of a truncated gzip file.
"""

from __future__ import annotations

import bz2
import hashlib
import logging
import os
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize
from isal import isal_zlib

from .._config import setting_or
from .._schema import (
    FILE_UNREACHABLE,
    FILE_UNREADABLE,
    FRAME_BYTES,
    FRAME_MISSING,
    FRAME_SHAPE,
    NO_FILE,
    OK,
    SLOT,
    frame_status_attrs,
)
from ..errors import ArgumentError
from ._archive import MINUTE_FILE, Archive, Candidate, TransportError, open_archive, request_days
from ._requests import check_chunk_minutes, check_interval, check_sites
from ._sites import THEMIS_SITES
from ._slots import place_in_slots

log = logging.getLogger(__name__)

#: The start of every frame: the PGM magic number and the first ``#"key"`` header line. The
#: reader finds frames by it, so it resynchronises after any damage.
_FRAME_START = b'P5\n#"'
#: The start of a header line (``#"Revised" ``, ``#"Site unique ID" `` …). Found inside a
#: frame's pixels it means they run into the next frame, whose ``P5`` line is damaged: they
#: are not that frame's pixels. Random pixels match it about once in 10^7 frames.
_HEADER_LINE = re.compile(rb'#"[A-Za-z][A-Za-z ]{3,40}" ')
_REQUEST_START = re.compile(
    rb'#"Image request start"\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)(?:\s+UTC)?\s*$'
)
_SITE_ID = re.compile(rb'#"Site unique ID"\s+(\S+)\s*$')
#: Header values kept per frame (:data:`HEADER_FIELDS`): the line and the number in it.
_HEADER_VALUES = {
    "exposure_ms": re.compile(rb'#"Exposure options".*\bMSEC=(-?\d+(?:\.\d+)?)'),
    "ccd_temperature": re.compile(rb'#"CCD temperature"\s+(-?\d+(?:\.\d+)?)', re.IGNORECASE),
    "header_latitude": re.compile(rb'#"Geodetic latitude"\s+(-?\d+(?:\.\d+)?)', re.IGNORECASE),
    "header_longitude": re.compile(rb'#"Geodetic longitude"\s+(-?\d+(?:\.\d+)?)', re.IGNORECASE),
}
#: Per-frame header metadata in the frames dataset: name → attributes. NaN where a header
#: (or a source) has no such value.
HEADER_FIELDS = {
    "exposure_ms": {"long_name": "exposure time requested (header MSEC)", "units": "ms"},
    "ccd_temperature": {"long_name": "CCD temperature (header)", "units": "degC"},
    "header_latitude": {
        "long_name": "geodetic latitude in the frame header",
        "units": "degrees_north",
    },
    "header_longitude": {
        "long_name": "geodetic longitude in the frame header",
        "units": "degrees_east",
    },
}
#: The first letter of every header key that a pattern above reads (either case): a line whose
#: key starts otherwise is skipped without trying each pattern on it.
_WANTED_KEY_STARTS = frozenset(bytes([c]) for c in b"IiSsEeCcGg")
_SIZE_LINE = [str(n).encode() for n in FRAME_SHAPE[::-1]]  # width height: b"256 256"
_MAXVAL_LINE = b"65535"
#: Longest frame header read (a real one is about 1.2 kB): a lost end of header stops here.
_MAX_HEADER = 1 << 14
_DECOMPRESS_STEP = 1 << 16
#: The largest ISIZE believed from a gzip trailer, as a multiple of the compressed size (a
#: minute file inflates about 2x; deflate's own limit is 1032x): a damaged trailer claiming
#: more only loses the one-allocation speed-up.
_MAX_GZIP_RATIO = 16


@dataclass
class MinuteFrames:
    """The frames read from one minute file.

    Attributes
    ----------
    images
        ``(n, 256, 256)`` uint16 raw counts.
    request_start
        ``(n,)`` datetime64[ns], the ``Image request start`` of each frame (UT).
    problem
        None if every byte of the file was read as whole frames, else what was wrong (all
        problems, joined by "; "); every intact frame is kept even so.
    sites
        ``(n,)`` the ``Site unique ID`` of each frame's header ("" where it has none; several
        different ones joined by ",").
    """

    images: np.ndarray
    request_start: np.ndarray
    problem: str | None = None
    sites: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    #: ``(n,)`` float32 per header field of :data:`HEADER_FIELDS` (NaN where absent).
    meta: dict[str, np.ndarray] = field(default_factory=dict)

    def select(self, keep: np.ndarray, problem: str | None) -> MinuteFrames:
        """The frames where ``keep`` holds, with ``problem``."""
        sites = self.sites[keep] if len(self.sites) == len(keep) else self.sites
        meta = {k: v[keep] for k, v in self.meta.items() if len(v) == len(keep)}
        return MinuteFrames(self.images[keep], self.request_start[keep], problem, sites, meta)


def decompress(raw: bytes, name: str) -> tuple[bytes, str | None]:
    """Decompress a file's bytes according to its suffix, keeping all that decodes.

    Returns the decompressed bytes and None, or the bytes up to the damage and a description
    of it (truncated stream, corrupt data).
    """
    if name.endswith(".gz"):
        # the whole stream in one call through ISA-L's inflater (1.6x zlib's measured, the same
        # bytes) into one buffer sized by the gzip trailer's ISIZE (20 % less again: no growing
        # and copying; a damaged trailer costs only a resize). A damaged or truncated stream
        # raises and is decoded again by zlib step by step below, keeping all it can.
        size = int.from_bytes(raw[-4:], "little") if len(raw) >= 18 else 0
        bufsize = size + 1 if 0 < size <= _MAX_GZIP_RATIO * len(raw) else _DECOMPRESS_STEP
        try:
            return isal_zlib.decompress(raw, wbits=31, bufsize=bufsize), None
        except (isal_zlib.error, OSError, ValueError):
            decoder = zlib.decompressobj(wbits=31)
    elif name.endswith(".bz2"):
        decoder = bz2.BZ2Decompressor()
    else:
        return raw, None
    out = []
    view = memoryview(raw)
    try:
        for offset in range(0, len(raw), _DECOMPRESS_STEP):
            out.append(decoder.decompress(view[offset : offset + _DECOMPRESS_STEP]))
            if decoder.eof:
                break
    except (zlib.error, OSError, EOFError, ValueError) as error:
        return b"".join(out), f"corrupt compressed data: {error}"
    if not decoder.eof:
        return b"".join(out), "compressed stream is truncated"
    return b"".join(out), None


class _BadHeader(ValueError):
    """A frame header that cannot be read; the message says why."""


def _parse_header(
    data: bytes, start: int, stop: int
) -> tuple[int, np.datetime64, str, dict[str, float]]:
    """Read the header of the frame at ``start`` (which holds ``P5\\n#"``), not past ``stop``.

    Every line is checked: ``#`` comment lines, then exactly ``256 256`` and ``65535``.
    Returns where the pixels start, the ``Image request start``, the site IDs and the
    values of :data:`HEADER_FIELDS` found.
    """
    limit = min(stop, start + _MAX_HEADER)
    pos = start + 3  # after "P5\n"
    when, sites, meta = None, [], {}
    while True:
        eol = data.find(b"\n", pos, limit)
        if eol < 0:
            raise _BadHeader("header has no end" if limit < len(data) else "header is cut off")
        line, pos = data[pos:eol], eol + 1
        if not line.startswith(b"#"):
            break
        if line[2:3] not in _WANTED_KEY_STARTS:
            continue  # most header lines: none of the patterns below can match
        if when is None and (match := _REQUEST_START.match(line)):
            when = match.group(1)
        elif match := _SITE_ID.match(line):
            sites.append(match.group(1).decode("ascii", "replace"))
        else:
            for key, pattern in _HEADER_VALUES.items():
                if key not in meta and (match := pattern.match(line)):
                    meta[key] = float(match.group(1))
    if line.split() != _SIZE_LINE:
        raise _BadHeader(f"size line {line[:24]!r} is not '256 256'")
    eol = data.find(b"\n", pos, limit)
    if eol < 0 or data[pos:eol].strip() != _MAXVAL_LINE:
        raise _BadHeader("maximum value line is not '65535'")
    if when is None:
        raise _BadHeader("no readable 'Image request start'")
    try:
        time = np.datetime64(when.decode("ascii").replace(" ", "T"), "ns")
    except ValueError:
        raise _BadHeader(f"'Image request start' {when!r} is not a time") from None
    return eol + 1, time, ",".join(dict.fromkeys(sites)), meta


def _looks_like_pixels(data: bytes, start: int, stop: int, frame: int) -> bool:
    """Whether ``data[start:stop]`` reads (at either byte alignment) mostly as counts in the
    range of the frame whose pixels start at ``frame``: the sign of another frame's pixels."""
    counts = np.frombuffer(data, dtype=">u2", count=FRAME_BYTES // 2, offset=frame)
    low, high = np.percentile(counts, [1, 99])
    stop = min(stop, start + (1 << 16))
    for shift in (0, 1):
        n = (stop - start - shift) // 2
        if n < 8:
            return False
        extra = np.frombuffer(data, dtype=">u2", count=n, offset=start + shift)
        if np.mean((extra >= low) & (extra <= high)) > 0.5:
            return True
    return False


def _tail_fits(data: bytes, frame: int, tail: int = 16) -> bool:
    """Whether the last ``tail`` counts of the frame at ``frame`` lie mostly in the range of
    the others (an image edge is dark): if not, garbage fills the end of a frame whose own
    pixels were cut short."""
    counts = np.frombuffer(data, dtype=">u2", count=FRAME_BYTES // 2, offset=frame)
    body, end = counts[:-tail], counts[-tail:]
    # the frame's edge is sky background: at least the darkest count, below the bright 1 %
    return bool(np.mean((end >= body.min()) & (end <= np.percentile(body, 99))) > 0.5)


def _header_marks(data: bytes) -> np.ndarray:
    """Where ``#"`` occurs in ``data``: every header line and every frame start holds one.

    One vectorised pass over the bytes finds them all (parsing went from 0.14 to 0.06 ms a
    frame), where searching for frame starts and then for header lines inside each frame's
    pixels scanned the pixels twice: both searches below look only at these few positions
    (about 15 a frame).
    """
    if len(data) < 2:
        return np.zeros(0, dtype=np.intp)
    # the two bytes as one 16-bit number, at even and at odd offsets: two compares of half the
    # length, with small temporaries (three byte-sized ones cost more in page faults here)
    mark = int.from_bytes(b'#"', "little")
    even = np.frombuffer(data, dtype="<u2", count=len(data) // 2)
    odd = np.frombuffer(data, dtype="<u2", count=(len(data) - 1) // 2, offset=1)
    at = np.concatenate([np.flatnonzero(even == mark) * 2, np.flatnonzero(odd == mark) * 2 + 1])
    at.sort()
    return at


def _frame_starts(data: bytes, marks: np.ndarray) -> list[int]:
    """Every position of ``P5\\n#"`` in ``data``, from the ``#"`` marks (its last two bytes)."""
    head = len(_FRAME_START) - 2
    octets = np.frombuffer(data, dtype=np.uint8)
    marks = marks[marks >= head]
    at = np.ones(len(marks), dtype=bool)
    for k, octet in enumerate(_FRAME_START[:head]):
        at &= octets[marks - head + k] == octet
    return (marks[at] - head).tolist()


def _has_header_line(data: bytes, marks: np.ndarray, start: int, stop: int) -> bool:
    """Whether a header line (:data:`_HEADER_LINE`) lies wholly in ``data[start:stop]``: the
    same answer as ``_HEADER_LINE.search(data, start, stop)``, trying only the marks there."""
    first, last = np.searchsorted(marks, [start, stop])
    return any(_HEADER_LINE.match(data, p, stop) for p in marks[first:last].tolist())


def parse_frames(data: bytes) -> MinuteFrames:
    """Split decompressed minute-file bytes into frames, keeping every intact frame.

    Frames are found by their own header (``P5\\n#"``), never by counting bytes from the
    previous one, so the reader resynchronises after damage. A frame is kept only if its
    header reads line by line and its 131,072 pixel bytes lie wholly before the next frame
    header (and hold no header line): a frame whose pixels are cut short is dropped rather
    than completed with the next frame's bytes. Extra bytes between a frame and the next
    header are garbage (the frame is kept) unless they read as pixels, the sign of a lost
    header (the frame is dropped). Every problem is reported in ``problem``.

    Damage it cannot see: bytes overwritten or inserted inside a frame's pixels (the file
    has no checksum); a cut of fewer than about 10 bytes at the end of a frame's pixels
    together with the loss of the next frame's ``P5`` line; a cut inside a frame's pixels
    made up for by garbage inserted right after it (caught only when the garbage lands in
    the frame's last pixels and reads as out-of-range counts).
    """
    images: list[np.ndarray] = []
    times: list[np.datetime64] = []
    sites: list[str] = []
    metas: list[dict[str, float]] = []
    problems: list[str] = []
    size = len(data)
    marks = _header_marks(data)
    starts = _frame_starts(data, marks)
    if size == 0:
        problems.append("file is empty")
    elif not starts:
        problems.append("no PGM frame header")
    elif starts[0] > 0:
        problems.append(f"{starts[0]} bytes before the first frame header")
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else size
        try:
            pixels, time, site, meta = _parse_header(data, start, stop)
        except _BadHeader as damage:
            problems.append(f"frame at byte {start}: {damage}; skipped")
            continue
        end = pixels + FRAME_BYTES
        if end > stop:
            where = "the end of the file" if stop == size else "the next frame header"
            problems.append(
                f"frame at byte {start}: pixels cut short by {where} "
                f"({stop - pixels} of {FRAME_BYTES} bytes); skipped"
            )
            continue
        if _has_header_line(data, marks, pixels, end):
            problems.append(f"frame at byte {start}: pixels run into a frame header; skipped")
            continue
        if end < stop:
            # Extra bytes before the next header: garbage after a whole frame, or this frame's
            # pixels cut short and the next frame's header lost, its pixels fused on. Those
            # would put the next frame's pixels in this slot, so if the extra bytes look like
            # pixels the frame is dropped; if not (text, zeros, noise), or if they start with
            # a header line (a header that lost its "P5"), the frame is kept.
            header_next = _HEADER_LINE.search(data, end, min(stop, end + 64))
            ends_at_header = header_next is not None and header_next.start() - end <= 3
            if not ends_at_header and (
                _looks_like_pixels(data, end, stop, pixels) or not _tail_fits(data, pixels)
            ):
                problems.append(
                    f"frame at byte {start}: followed by {stop - end} bytes that look like "
                    "pixels (its own may be cut short and the next header lost); skipped"
                )
                continue
            problems.append(f"{stop - end} unexpected bytes after the frame at byte {start}")
        times.append(time)
        sites.append(site)
        metas.append(meta)
        images.append(np.frombuffer(data, dtype=">u2", count=FRAME_BYTES // 2, offset=pixels))
    if images:
        # one pass per frame: big-endian bytes straight into native uint16 (no stack, no astype)
        stack = np.empty((len(images), *FRAME_SHAPE), dtype=np.uint16)
        for i, pixels in enumerate(images):
            stack[i] = pixels.reshape(FRAME_SHAPE)
    else:
        stack = np.zeros((0, *FRAME_SHAPE), dtype=np.uint16)
        if not problems:
            problems.append("no frame in file")
    return MinuteFrames(
        stack,
        np.array(times, dtype="datetime64[ns]"),
        "; ".join(problems) or None,
        np.array(sites, dtype=object),
        {k: np.array([m.get(k, np.nan) for m in metas], dtype=np.float32) for k in HEADER_FIELDS},
    )


def read_minute_file(raw: bytes, name: str) -> MinuteFrames:
    """Read one minute file from its bytes (``name`` gives the compression by its suffix)."""
    data, damage = decompress(raw, name)
    frames = parse_frames(data)
    if damage is not None:
        frames.problem = damage if frames.problem is None else f"{damage}; {frames.problem}"
    return frames


def read_block(
    archive: Archive,
    minute_paths: Sequence[Sequence[str | Candidate]],
    first_slot: np.datetime64,
    n_slots: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read the minute files of one chunk and place their frames in 3-second slots.

    A file only fills the slots of its own minute (the minute in its name): a frame whose
    header time lies in another minute contradicts its file name, and placing it would take
    the slot of the file that owns that minute. Such frames are not placed; the conflict is
    logged as a warning naming both files. Nothing here raises for one bad file: a file that
    cannot be read is a status, and the chunk's other minutes are read as usual.

    Parameters
    ----------
    archive
        Where the files are.
    minute_paths
        For each minute the chunk touches, in time order, the candidate files (empty: no file),
        as paths or :class:`~auroradask.io._archive.Candidate` (path and listed size).
    first_slot, n_slots
        The chunk's slots: ``first_slot + 3 s * arange(n_slots)``.

    Returns
    -------
    images, timestamp, frame_status
        Shaped ``(1, n_slots, 256, 256)``, ``(1, n_slots)``, ``(1, n_slots)``: one site.
        (and a dict of ``(1, n_slots)`` header values, :data:`HEADER_FIELDS`).
        A slot without a frame gets the status of its minute's file: ``no_file`` (1) if there
        is none; ``file_unreachable`` (4) if no candidate read whole and one failed in transit
        (so a later run retries); ``file_unreadable`` (2) if the file cannot be read, is
        damaged, names another site in its headers, or holds frames of another minute (the
        file is there but gives no trustworthy frame for the slot); else ``frame_missing``
        (3): the file read whole and simply has no frame for that slot.
    """
    slots = first_slot + SLOT * np.arange(n_slots)
    slot_minutes = slots.astype("datetime64[m]")
    images = np.zeros((n_slots, *FRAME_SHAPE), dtype=np.uint16)
    timestamp = np.full(n_slots, np.datetime64("NaT"), dtype="datetime64[ns]")
    status = np.full(n_slots, NO_FILE, dtype=np.int8)
    meta = {k: np.full(n_slots, np.nan, dtype=np.float32) for k in HEADER_FIELDS}
    minutes = np.unique(slot_minutes)
    owners = {
        m: tuple(_path_of(c) for c in paths)
        for m, paths in zip(minutes, minute_paths, strict=True)
        if paths
    }
    # remote files are small and latency-bound: fetch every minute's first choice at once
    fetched = archive.fetch_many(_candidate(paths[0]) for paths in minute_paths if paths)
    for minute, paths in zip(minutes, minute_paths, strict=True):
        if not paths:
            continue
        best, problems, unfilled = _read_first_good(archive, paths, minute, owners, fetched)
        status[slot_minutes == minute] = unfilled
        if best is not None:
            # slot -1: the chunk starts or ends inside this minute
            slot, kept = place_in_slots(best.request_start, first_slot, n_slots)
            for k in slot[(slot >= 0) & ~kept]:
                problems.append(
                    f"{_path_of(paths[0])}: two frames in slot {slots[k]}; kept the first"
                )
            rows, slot = np.flatnonzero(kept), slot[kept]
            images[slot] = best.images[rows]
            timestamp[slot] = best.request_start[rows]
            status[slot] = OK
            for key, values in best.meta.items():
                meta[key][slot] = values[rows]
        if problems:
            log.warning("%s", "; ".join(problems))
    return images[None], timestamp[None], status[None], {k: v[None] for k, v in meta.items()}


def _path_of(candidate: str | Candidate) -> str:
    return candidate if isinstance(candidate, str) else candidate.path


def _candidate(candidate: str | Candidate) -> Candidate:
    return Candidate(candidate) if isinstance(candidate, str) else candidate


def _read_first_good(
    archive: Archive,
    paths: Iterable[str | Candidate],
    minute: np.datetime64 | None = None,
    owners: dict[np.datetime64, tuple[str, ...]] | None = None,
    fetched: dict[str, bytes | OSError] | None = None,
) -> tuple[MinuteFrames | None, list[str], int]:
    """Read the candidates of one minute in turn until one reads whole; keep the fullest.

    Returns the frames to place (only those of ``minute`` and of the file's own site), the
    problems met (each naming its file), and the status of the minute's slots that get no
    frame (see :func:`read_block`). No error escapes for one file: any ``OSError`` reading it
    (missing, a symlink loop, no permission, an I/O error) makes it unreadable, and a
    failure in transit makes it unreachable. ``fetched`` holds what
    :meth:`Archive.fetch_many` already read (bytes or the error reading raised), used in place
    of reading the same file again.
    """
    best, problems, unreachable = None, [], False
    for candidate in paths:
        path, size = (candidate, None) if isinstance(candidate, str) else candidate
        try:
            raw = (fetched or {}).pop(path, None)
            if isinstance(raw, OSError):
                raise raw
            if raw is None:
                raw = archive.read_bytes(path, size)
        except TransportError as error:
            unreachable = True
            problems.append(f"{path}: unreachable ({error})")
            continue
        except OSError as error:
            problems.append(f"{path}: unreadable ({_os_error(error)})")
            continue
        frames = read_minute_file(raw, path)
        if frames.problem is not None:
            problems.append(f"{path}: {frames.problem} (kept {len(frames.images)} frames)")
        frames = _own_frames(frames, path, minute, owners or {}, problems)
        if best is None or len(frames.images) > len(best.images) or frames.problem is None:
            best = frames
        if frames.problem is None:
            break
    if best is not None and best.problem is None:
        unfilled = FRAME_MISSING
    else:
        unfilled = FILE_UNREACHABLE if unreachable else FILE_UNREADABLE
    return best, problems, unfilled


def _own_frames(
    frames: MinuteFrames,
    path: str,
    minute: np.datetime64 | None,
    owners: dict[np.datetime64, tuple[str, ...]],
    problems: list[str],
) -> MinuteFrames:
    """The frames of ``path`` that belong to it: none if a header names another site than
    the file's; only those of the file's own minute. Conflicts are added to ``problems``."""
    name = MINUTE_FILE.match(path.rsplit("/", 1)[-1])
    site = name["site"] if name else None
    other_sites = sorted({s for s in frames.sites if s and s != site}) if site else []
    if other_sites:
        problems.append(
            f"{path}: headers name site {', '.join(other_sites)}, not {site} as its folder "
            f"and name; its {len(frames.images)} frames are not used"
        )
        return frames.select(np.zeros(len(frames.images), dtype=bool), "another site")
    if minute is None or len(frames.images) == 0:
        return frames
    frame_minutes = frames.request_start.astype("datetime64[m]")
    own = frame_minutes == minute
    if own.all():
        return frames
    for other in np.unique(frame_minutes[~own]):
        n = int((frame_minutes == other).sum())
        if other in owners:
            whose = f"the minute of {', '.join(owners[other])}"
        else:
            whose = "a minute whose file (if any) is not in this chunk"
        problems.append(
            f"conflict: {path} holds {n} frames timed {other} (UT), {whose}; not placed"
        )
    return frames.select(own, frames.problem or "frames of another minute")


def _os_error(error: OSError) -> str:
    return f"{type(error).__name__}: {error.strerror or error}"


def open_themis(
    source: str | os.PathLike,
    sites: str | Sequence[str],
    start: Any,
    end: Any,
    *,
    chunk_minutes: int | None = None,
    cache: str | os.PathLike | bool | None = None,
    storage_options: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Open raw THEMIS frames lazily as an xarray Dataset keyed by site and time.

    Lists the folders the request touches to find its minute files; reads no image. Every
    image is read at compute time, on the workers, one chunk's files in one task.

    Parameters
    ----------
    source
        Local path or fsspec URL of the root of a stream0 tree, e.g.
        ``https://data.phys.ucalgary.ca/sort_by_project/THEMIS/asi/stream0/``.
    sites
        One site code (``"gill"``) or several.
    start, end
        UT interval: anything :class:`pandas.Timestamp` reads. ``start`` is inclusive (a date
        alone is 00:00 UT). ``end`` is exclusive, except that a date alone (``"2014-03-11"``)
        includes that whole day, as in pandas' and xarray's date slicing.
    chunk_minutes
        Minute files per chunk along ``time`` (10 minutes = 200 frames, 26 MB of raw
        counts). Must divide 1440: chunk edges fall on multiples of ``chunk_minutes``
        minutes of every UT day, so that stores line up. Default: the
        ``auroradask.chunk-minutes`` setting, 10.
    cache
        Local folder for copies of remote files (default: a per-user cache folder, see
        :func:`auroradask.open_archive`); False to keep none.
    storage_options
        Passed to fsspec.

    Returns
    -------
    xarray.Dataset
        ``images(site, time, y, x)`` uint16, ``timestamp(site, time)``,
        ``frame_status(site, time)``, header metadata ``exposure_ms``, ``ccd_temperature``,
        ``header_latitude``, ``header_longitude`` (site, time) float32, NaN where a header has
        none; coords ``site``, ``time`` (3-second slots), ``imager``,
        ``latitude``, ``longitude``.

    Raises
    ------
    ArgumentError
        For an empty site list, ``end <= start``, a bad ``chunk_minutes``, a ``source`` that
        is a file, a site code that is neither a known THEMIS site nor has a folder in the
        archive on the requested days, or a request that finds no minute file at all. (A site
        with files on some minutes only is fine: its other slots get status ``no_file``.)
    SourceNotFoundError
        If ``source`` does not exist.
    """
    site_codes = check_sites(sites)
    start_ts, end_ts = check_interval(start, end)
    chunk_minutes = check_chunk_minutes(setting_or("chunk-minutes", chunk_minutes))
    archive = open_archive(source, cache=cache, storage_options=storage_options)

    times = np.arange(
        start_ts.ceil("3s").to_datetime64(), end_ts.to_datetime64(), SLOT, dtype="datetime64[ns]"
    )
    if times.size == 0:
        raise ArgumentError(f"start, end: [{start_ts}, {end_ts}) holds no 3-second frame slot")
    minutes = times.astype("datetime64[m]")
    block_of_slot = minutes.astype(np.int64) // int(chunk_minutes)
    edges = np.r_[0, np.flatnonzero(np.diff(block_of_slot)) + 1, times.size]

    # what each chunk reads: for every minute it touches, the candidate files (dask-image's
    # imread maps its reader over an array of file names in the same way)
    chunk_files = np.empty((len(site_codes), len(edges) - 1), dtype=object)
    imagers = []
    found = archive.find_many(site_codes, start_ts, end_ts)
    _check_found(archive, site_codes, found, start_ts, end_ts)
    for i, files in enumerate(found):
        imagers.append(_most_common(f.imager for f in files.values()))
        for j, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            block_minutes = np.unique(minutes[lo:hi]).astype("datetime64[ns]")
            chunk_files[i, j] = tuple(
                files[m].candidates if m in files else () for m in block_minutes
            )
    records = read_records(archive, chunk_files, times, tuple(int(n) for n in np.diff(edges)))
    frames = frames_dataset(records, site_codes, times, imagers, {"source": archive.url})
    frames["timestamp"].attrs = {"long_name": "Image request start (UT)"}
    return frames


def frames_dataset(
    records: da.Array,
    sites: Sequence[str],
    times: np.ndarray,
    imagers: Sequence[str],
    attrs: dict[str, Any],
) -> xr.Dataset:
    """The frames data model, whatever the source: one variable per field of the records,
    site and slot coordinates, site positions from the built-in table, CF attributes."""
    info = [THEMIS_SITES.get(s) for s in sites]
    frames = xr.Dataset(
        {
            "images": (("site", "time", "y", "x"), _field(records, "images")),
            "timestamp": (("site", "time"), _field(records, "timestamp")),
            "frame_status": (("site", "time"), _field(records, "frame_status")),
            **{k: (("site", "time"), _field(records, k), a) for k, a in HEADER_FIELDS.items()},
        },
        coords={
            "site": np.array(list(sites), dtype=object),
            "time": times,
            "imager": ("site", np.array(list(imagers), dtype=object)),
            "latitude": ("site", [s.latitude if s else np.nan for s in info]),
            "longitude": ("site", [s.longitude if s else np.nan for s in info]),
        },
        attrs={**attrs, "title": "THEMIS ASI raw frames"},
    )
    frames["images"].attrs = {"long_name": "raw counts", "units": "1"}
    frames["frame_status"].attrs = frame_status_attrs()
    frames["time"].attrs = {"long_name": "nominal 3-second frame slot (UT)"}
    frames["latitude"].attrs = {"units": "degrees_north", "long_name": "geodetic latitude"}
    frames["longitude"].attrs = {"units": "degrees_east", "long_name": "geodetic longitude"}
    return frames


def _check_found(
    archive: Archive,
    sites: Sequence[str],
    found: Sequence[dict],
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> None:
    """Refuse a request that can only give ``no_file``: a mistyped site or wrong source is an
    argument error to report, not a store full of empty slots."""
    days = request_days(start, end)
    if len(days) <= 3:
        where = ", ".join(d.strftime("%Y/%m/%d") for d in days)
    else:
        where = f"{days[0]:%Y/%m/%d} to {days[-1]:%Y/%m/%d} ({len(days)} days)"
    for site, files in zip(sites, found, strict=True):
        if files or site in THEMIS_SITES or archive.site_folders(site, start, end):
            continue
        present = archive.sites_present(start, end)
        raise ArgumentError(
            f"sites: {site!r} is not a THEMIS site code and {archive.url!r} has no folder "
            f"{site}_<imager> in {where}; sites there: {', '.join(present) or 'none'}"
        )
    if not any(found):
        raise ArgumentError(
            f"start, end: no minute file of {', '.join(sites)} in [{start}, {end}) under "
            f"{archive.url!r} (looked in {where}/<site>_<imager>/utHH/); "
            f"sites with folders there: {', '.join(archive.sites_present(start, end)) or 'none'}"
        )


#: One slot of a frames chunk as the reading task returns it: the frame and what is known of it.
RECORD = np.dtype(
    [("images", "<u2", FRAME_SHAPE), ("timestamp", "M8[ns]"), ("frame_status", "i1")]
    + [(key, "f4") for key in HEADER_FIELDS]
)


def read_records(
    archive: Archive, chunk_files: np.ndarray, times: np.ndarray, time_chunks: tuple[int, ...]
) -> da.Array:
    """A lazy ``(site, time)`` array of :data:`RECORD`, one reading task per chunk.

    ``chunk_files[i, j]`` holds, for each minute chunk ``j`` of site ``i`` touches, the
    candidate files of that minute.
    """
    # every layer of the reading stage is named read-themis-*: one stage on the dashboard.
    # The files are named by the hash of their text (paths and listed sizes): tokenizing the
    # object array itself pickles every candidate, seconds for a few sites over a few nights
    files_token = hashlib.sha256(repr(chunk_files.tolist()).encode()).hexdigest()
    files = da.from_array(
        chunk_files, chunks=1, name="read-themis-" + tokenize(archive.url, files_token, "files")
    )
    return da.map_blocks(
        _read_records_block,
        files,
        archive=archive,
        times=times,
        chunks=((1,) * chunk_files.shape[0], time_chunks),
        dtype=RECORD,
        meta=np.empty((0, 0), dtype=RECORD),
        name="read-themis-" + tokenize(archive.url, files_token, times),
    )


def _read_records_block(files: np.ndarray, archive: Archive, times: np.ndarray, block_info=None):
    lo, hi = block_info[None]["array-location"][1]
    images, timestamp, status, meta = read_block(archive, files[0, 0], times[lo], hi - lo)
    out = np.empty((1, hi - lo), dtype=RECORD)
    out["images"], out["timestamp"], out["frame_status"] = images, timestamp, status
    for key, values in meta.items():
        out[key] = values
    return out


def _field(records: da.Array, name: str) -> da.Array:
    """One field of the records as its own array; named as part of the reading stage."""
    field_dtype = RECORD[name]
    return records.map_blocks(
        _get_field,
        name,
        dtype=field_dtype.base,
        chunks=records.chunks + tuple((n,) for n in field_dtype.shape),
        new_axis=list(range(2, 2 + len(field_dtype.shape))) or None,
        meta=np.empty((0,) * (2 + len(field_dtype.shape)), dtype=field_dtype.base),
        name="read-themis-" + tokenize(records.name, name),
    )


def _get_field(block: np.ndarray, name: str) -> np.ndarray:
    return block[name]


def _most_common(values: Iterable[str]) -> str:
    counts = Counter(values)
    return counts.most_common(1)[0][0] if counts else ""
