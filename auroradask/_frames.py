"""Reading raw THEMIS minute files and building the lazy frames dataset.

A minute file is a run of 16-bit PGM frames, each a ``P5`` line, ``#"key" value`` header
lines, ``256 256``, ``65535`` and 256×256 big-endian pixels. The kernels here read one file
from its bytes and keep every frame that is whole, so a truncated or damaged file still gives
the frames before the damage. ``themis_imager_readfile.read`` is the reference the tests hold
this reader to, frame for frame; it is not used here because it needs a local path and drops
every frame of a truncated gzip file.
"""

from __future__ import annotations

import bz2
import logging
import os
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from ._archive import Archive, open_archive
from ._sites import THEMIS_SITES

log = logging.getLogger(__name__)

FRAME_SHAPE = (256, 256)
FRAME_BYTES = FRAME_SHAPE[0] * FRAME_SHAPE[1] * 2
SLOT = np.timedelta64(3, "s").astype("timedelta64[ns]")

#: Values of ``frame_status`` (CF ``flag_values`` / ``flag_meanings``).
OK, NO_FILE, FILE_UNREADABLE, FRAME_MISSING = 0, 1, 2, 3
FRAME_STATUS_MEANINGS = ("ok", "no_file", "file_unreadable", "frame_missing")

_REQUEST_START = re.compile(rb'#"Image request start"\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)')
_HEADER_END = b"\n65535\n"
_DECOMPRESS_STEP = 1 << 16


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
        None if the file was read to its end, else what stopped the reading; the frames before
        the problem are kept.
    """

    images: np.ndarray
    request_start: np.ndarray
    problem: str | None = None


def decompress(raw: bytes, name: str) -> tuple[bytes, str | None]:
    """Decompress a file's bytes according to its suffix, keeping all that decodes.

    Returns the decompressed bytes and None, or the bytes up to the damage and a description
    of it (truncated stream, corrupt data).
    """
    if name.endswith(".gz"):
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
    except (zlib.error, OSError, EOFError) as error:
        return b"".join(out), f"corrupt compressed data: {error}"
    if not decoder.eof:
        return b"".join(out), "compressed stream is truncated"
    return b"".join(out), None


def parse_frames(data: bytes) -> MinuteFrames:
    """Split decompressed minute-file bytes into frames.

    Every whole frame is kept; reading stops at the first frame whose header or pixels are
    cut off or malformed, and ``problem`` says why.
    """
    images: list[np.ndarray] = []
    times: list[np.datetime64] = []
    problem = None
    pos, size = 0, len(data)
    while pos < size:
        if not data.startswith(b"P5", pos):
            problem = f"no PGM frame header at byte {pos}"
            break
        header_end = data.find(_HEADER_END, pos)
        if header_end < 0:
            problem = f"frame header at byte {pos} is cut off"
            break
        header = data[pos:header_end]
        if not header.endswith(b"%d %d" % FRAME_SHAPE[::-1]):
            problem = f"frame at byte {pos} is not {FRAME_SHAPE[1]}x{FRAME_SHAPE[0]}"
            break
        pixels = header_end + len(_HEADER_END)
        if pixels + FRAME_BYTES > size:
            problem = f"frame at byte {pos} is cut off"
            break
        match = _REQUEST_START.search(header)
        if match is None:
            problem = f"frame at byte {pos} has no 'Image request start'"
            break
        stamp = match.group(1).decode("ascii").replace(" ", "T")
        times.append(np.datetime64(stamp, "ns"))
        images.append(np.frombuffer(data, dtype=">u2", count=FRAME_BYTES // 2, offset=pixels))
        pos = pixels + FRAME_BYTES
    if images:
        stack = np.stack(images).astype(np.uint16).reshape(-1, *FRAME_SHAPE)
    else:
        stack = np.zeros((0, *FRAME_SHAPE), dtype=np.uint16)
        problem = problem or "no frame in file"
    return MinuteFrames(stack, np.array(times, dtype="datetime64[ns]"), problem)


def read_minute_file(raw: bytes, name: str) -> MinuteFrames:
    """Read one minute file from its bytes (``name`` gives the compression by its suffix)."""
    data, damage = decompress(raw, name)
    frames = parse_frames(data)
    if damage is not None:
        frames.problem = damage
    return frames


def read_block(
    archive: Archive,
    minute_paths: Sequence[tuple[str, ...]],
    first_slot: np.datetime64,
    n_slots: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read the minute files of one chunk and place their frames in 3-second slots.

    Parameters
    ----------
    archive
        Where the files are.
    minute_paths
        For each minute the chunk touches, in time order, the candidate files (empty: no file).
    first_slot, n_slots
        The chunk's slots: ``first_slot + 3 s * arange(n_slots)``.

    Returns
    -------
    images, timestamp, frame_status
        Shaped ``(1, n_slots, 256, 256)``, ``(1, n_slots)``, ``(1, n_slots)``: one site.
    """
    slots = first_slot + SLOT * np.arange(n_slots)
    slot_minutes = slots.astype("datetime64[m]")
    images = np.zeros((n_slots, *FRAME_SHAPE), dtype=np.uint16)
    timestamp = np.full(n_slots, np.datetime64("NaT"), dtype="datetime64[ns]")
    status = np.full(n_slots, NO_FILE, dtype=np.int8)
    for minute, paths in zip(np.unique(slot_minutes), minute_paths, strict=True):
        if not paths:
            continue
        best, problems = _read_first_good(archive, paths)
        in_minute = (slot_minutes == minute) & (status != OK)
        status[in_minute] = FILE_UNREADABLE if best is None or best.problem else FRAME_MISSING
        if problems:
            log.warning("%s", "; ".join(problems))
        if best is None:
            continue
        index = (best.request_start - first_slot) // SLOT
        for i, k in enumerate(index):
            if 0 <= k < n_slots and status[k] != OK:
                images[k] = best.images[i]
                timestamp[k] = best.request_start[i]
                status[k] = OK
    return images[None], timestamp[None], status[None]


def _read_first_good(
    archive: Archive, paths: Iterable[str]
) -> tuple[MinuteFrames | None, list[str]]:
    """Read the candidates of one minute in turn until one reads whole; keep the fullest."""
    best, problems = None, []
    for path in paths:
        try:
            raw = archive.read_bytes(path)
        except (FileNotFoundError, PermissionError, IsADirectoryError) as error:
            problems.append(f"{path}: unreadable ({error})")
            continue
        frames = read_minute_file(raw, path)
        if frames.problem is not None:
            problems.append(f"{path}: {frames.problem} (kept {len(frames.images)} frames)")
        if best is None or len(frames.images) > len(best.images) or frames.problem is None:
            best = frames
        if frames.problem is None:
            break
    return best, problems


def open_themis(
    source: str | os.PathLike,
    sites: str | Sequence[str],
    start: Any,
    end: Any,
    *,
    chunks: int = 10,
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
        UT interval, ``start`` inclusive and ``end`` exclusive: anything
        :class:`pandas.Timestamp` reads. A date alone means 00:00 UT of that day.
    chunks
        Minute files per chunk along ``time`` (10 minutes = 200 frames, 26 MB of raw
        counts). Must divide 1440: chunk edges fall on multiples of ``chunks`` minutes of
        every UT day.
    cache
        Local folder for copies of remote files (default: see
        :func:`auroradask.archive.default_cache_dir`); False to keep none.
    storage_options
        Passed to fsspec.

    Returns
    -------
    xarray.Dataset
        ``images(site, time, y, x)`` uint16, ``timestamp(site, time)``,
        ``frame_status(site, time)``; coords ``site``, ``time`` (3-second slots), ``imager``,
        ``latitude``, ``longitude``.

    Raises
    ------
    ValueError
        For an empty site list, ``end <= start``, or a bad ``chunks``.
    FileNotFoundError
        If ``source`` does not exist.
    """
    site_codes = check_sites(sites)
    start_ts, end_ts = check_interval(start, end)
    if isinstance(chunks, bool) or not isinstance(chunks, int | np.integer) or chunks < 1:
        raise ValueError(f"chunks: expected a whole number of minutes >= 1, got {chunks!r}")
    if 1440 % chunks:
        # chunk edges then fall at the same minutes every day, so that stores line up
        raise ValueError(f"chunks: {chunks} minutes does not divide a day (1440 minutes)")
    archive = open_archive(source, cache=cache, storage_options=storage_options)

    times = np.arange(
        start_ts.ceil("3s").to_datetime64(), end_ts.to_datetime64(), SLOT, dtype="datetime64[ns]"
    )
    if times.size == 0:
        raise ValueError(f"start, end: [{start_ts}, {end_ts}) holds no 3-second frame slot")
    minutes = times.astype("datetime64[m]")
    block_of_slot = minutes.astype(np.int64) // int(chunks)
    edges = np.r_[0, np.flatnonzero(np.diff(block_of_slot)) + 1, times.size]

    token = tokenize(archive.url, site_codes, times[0], times.size, chunks)
    read_name = f"read-themis-{token}"
    tasks: dict[tuple, Any] = {}
    imagers = []
    for i, site in enumerate(site_codes):
        files = archive.find_minute_files(site, start_ts, end_ts)
        imagers.append(_most_common(f.imager for f in files.values()))
        for j, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            block_minutes = np.unique(minutes[lo:hi]).astype("datetime64[ns]")
            paths = tuple(files[m].paths if m in files else () for m in block_minutes)
            tasks[(read_name, i, j)] = (read_block, archive, paths, times[lo], int(hi - lo))

    time_chunks = tuple(int(n) for n in np.diff(edges))
    site_chunks = (1,) * len(site_codes)
    parts = {
        "images": (0, np.uint16, (FRAME_SHAPE[0],), (FRAME_SHAPE[1],)),
        "timestamp": (1, np.dtype("datetime64[ns]")),
        "frame_status": (2, np.int8),
    }
    arrays = {}
    for var, (position, dtype, *frame_chunks) in parts.items():
        name = f"{var}-themis-{token}"
        extra = (0,) * len(frame_chunks)
        layer = {
            (name, i, j, *extra): (_item, (read_name, i, j), position)
            for i in range(len(site_codes))
            for j in range(len(time_chunks))
        }
        graph = HighLevelGraph(
            {read_name: tasks, name: layer}, {read_name: set(), name: {read_name}}
        )
        arrays[var] = da.Array(graph, name, (site_chunks, time_chunks, *frame_chunks), dtype)

    info = [THEMIS_SITES.get(s) for s in site_codes]
    frames = xr.Dataset(
        {
            "images": (("site", "time", "y", "x"), arrays["images"]),
            "timestamp": (("site", "time"), arrays["timestamp"]),
            "frame_status": (("site", "time"), arrays["frame_status"]),
        },
        coords={
            "site": np.array(site_codes, dtype=object),
            "time": times,
            "imager": ("site", np.array(imagers, dtype=object)),
            "latitude": ("site", [s.latitude if s else np.nan for s in info]),
            "longitude": ("site", [s.longitude if s else np.nan for s in info]),
        },
        attrs={"source": archive.url, "title": "THEMIS ASI raw frames"},
    )
    frames["images"].attrs = {"long_name": "raw counts", "units": "1"}
    frames["timestamp"].attrs = {"long_name": "Image request start (UT)"}
    frames["frame_status"].attrs = frame_status_attrs()
    frames["time"].attrs = {"long_name": "nominal 3-second frame slot (UT)"}
    frames["latitude"].attrs = {"units": "degrees_north", "long_name": "geodetic latitude"}
    frames["longitude"].attrs = {"units": "degrees_east", "long_name": "geodetic longitude"}
    return frames


def frame_status_attrs() -> dict[str, Any]:
    """CF flag attributes of ``frame_status``."""
    return {
        "long_name": "frame status",
        "flag_values": np.arange(len(FRAME_STATUS_MEANINGS), dtype=np.int8),
        "flag_meanings": " ".join(FRAME_STATUS_MEANINGS),
    }


def check_sites(sites: str | Sequence[str]) -> list[str]:
    """Validate and normalise the ``sites`` argument to a list of lower-case codes."""
    if isinstance(sites, str):
        sites = [sites]
    try:
        codes = [str(s).strip().lower() for s in sites]
    except TypeError:
        raise ValueError(f"sites: expected a site code or a list of them, got {sites!r}") from None
    if not codes:
        raise ValueError("sites: the list of sites is empty; name at least one, e.g. 'gill'")
    bad = [c for c in codes if not re.fullmatch(r"[a-z0-9]+", c)]
    if bad:
        raise ValueError(f"sites: {bad!r} are not site codes (letters and digits, e.g. 'gill')")
    if len(set(codes)) != len(codes):
        raise ValueError(f"sites: {codes!r} names a site twice")
    return codes


def check_interval(start: Any, end: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Parse ``start`` and ``end`` as naive UT timestamps and check ``start < end``."""
    parsed = []
    for name, value in (("start", start), ("end", end)):
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{name}: cannot read {value!r} as a UT time ({error})") from None
        if ts is pd.NaT:
            raise ValueError(f"{name}: {value!r} is not a time")
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        parsed.append(ts.as_unit("ns"))
    if parsed[1] <= parsed[0]:
        raise ValueError(f"end: {parsed[1]} is not after start {parsed[0]}")
    return parsed[0], parsed[1]


def _item(values: tuple, position: int) -> np.ndarray:
    return values[position]


def _most_common(values: Iterable[str]) -> str:
    counts = Counter(values)
    return counts.most_common(1)[0][0] if counts else ""
