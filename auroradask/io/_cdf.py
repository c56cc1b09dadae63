"""Reading THEMIS ASI level-1 CDF files (NASA's form of the data, what pyspedas loads).

NASA's archive holds one file per site and UT hour::

    thg/l1/asi/<site>/YYYY/MM/thg_l1_asf_<site>_YYYYMMDDHH_vNN.cdf

with frames ``thg_asf_<site>`` (N, 256, 256) uint16 and their start of exposure
``thg_asf_<site>_epoch`` (CDF epoch, ms since year 0). :func:`open_themis_cdf` gives the same
frames dataset as :func:`auroradask.open_themis`: the same (site, time) 3-second slots,
statuses and laziness (files are read on the workers, one chunk's hour files in one task).

Orientation. A CDF frame is the stream0 frame turned by 180° (rows and columns reversed):
the lit disc of the Gakona CDF frames lies where the Gakona skymap's field of view lies only
after ``frame[::-1, ::-1]`` (see the README's "Orientation" section and
``tests/test_cdf.py``). The reader turns every CDF frame back, so ``images`` has the stream0
orientation, in which UCalgary skymaps apply as read, whatever the source.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import tempfile
from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize

from .._config import setting_or
from .._schema import (
    FILE_UNREACHABLE,
    FILE_UNREADABLE,
    FRAME_MISSING,
    FRAME_SHAPE,
    NO_FILE,
    OK,
    SLOT,
)
from ..errors import ArgumentError
from ._archive import Archive, TransportError, open_archive
from ._requests import check_chunk_minutes, check_interval, check_sites
from ._sites import THEMIS_SITES
from ._slots import place_in_slots
from ._stream0 import HEADER_FIELDS, RECORD, frames_dataset

log = logging.getLogger(__name__)

#: A full-resolution hour file. ``asf``: 256×256 frames every 3 s.
HOUR_FILE = re.compile(
    r"^thg_l1_asf_(?P<site>[a-z0-9]+)_(?P<hour>\d{10})_v(?P<version>\d+)\.cdf$", re.IGNORECASE
)
#: The thumbnail product: 32×32 frames about once a minute (keograms, overviews), not frames
#: for classification.
THUMBNAIL_FILE = re.compile(r"^thg_l1_ast_(?P<site>[a-z0-9]+)_\d{8,10}_v\d+\.cdf$", re.IGNORECASE)

#: How a CDF frame maps onto a stream0 frame: rows and columns both reversed (180°).
CDF_TO_STREAM0 = (slice(None, None, -1), slice(None, None, -1))


def thumbnail_error(name: str) -> ArgumentError:
    return ArgumentError(
        f"source: {name!r} is the THEMIS ASI thumbnail product (thg_l1_ast: 32×32 frames about "
        "once a minute, for keograms and overviews), not full-resolution frames: give "
        "thg_l1_asf_<site>_YYYYMMDDHH_vNN.cdf files (256×256, every 3 s)"
    )


def read_cdf_frames(
    path: str, window: tuple[np.datetime64, np.datetime64] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames, start-of-exposure times and exposures of one ``thg_l1_asf`` hour file.

    ``window`` (start inclusive, end exclusive): read only the records timed inside it (a
    10-minute chunk reads a sixth of its hour file's frames, not all of them).

    Returns
    -------
    images, times, exposure_ms
        ``(n, 256, 256)`` uint16 turned to the stream0 orientation, ``(n,)`` datetime64[ns]
        from ``thg_asf_<site>_epoch``, ``(n,)`` float32 ms (``tend - time``; NaN if absent).
    """
    import cdflib

    cdf = cdflib.CDF(path)
    variables = cdf.cdf_info().zVariables
    frames_var = next((v for v in variables if re.fullmatch(r"thg_as[ft]_[a-z0-9]+", v)), None)
    if frames_var is None:
        raise ValueError("no thg_asf_<site> variable")
    if frames_var.startswith("thg_ast_"):
        raise thumbnail_error(os.path.basename(path))
    shape = tuple(cdf.varinq(frames_var).Dim_Sizes)
    if shape != FRAME_SHAPE:
        raise ValueError(f"{frames_var} frames are {shape}, not (256, 256)")
    epoch = np.atleast_1d(cdf.varget(f"{frames_var}_epoch"))
    times = np.asarray(cdflib.cdfepoch.to_datetime(epoch), dtype="datetime64[ns]")
    exposure = np.full(len(times), np.nan, dtype=np.float32)
    if f"{frames_var}_tend" in variables and f"{frames_var}_time" in variables:
        begin = np.atleast_1d(cdf.varget(f"{frames_var}_time"))
        end = np.atleast_1d(cdf.varget(f"{frames_var}_tend"))
        if len(begin) == len(end) == len(times):
            exposure = ((end - begin) * 1000.0).astype(np.float32)
    first, last = 0, len(times) - 1
    if window is not None:
        inside = np.flatnonzero((times >= window[0]) & (times < window[1]))
        if inside.size == 0:
            return np.zeros((0, *FRAME_SHAPE), np.uint16), times[:0], exposure[:0]
        first, last = int(inside[0]), int(inside[-1])
    images = np.asarray(cdf.varget(frames_var, startrec=first, endrec=last))
    if images.ndim == 2:
        images = images[None]
    if len(images) != last - first + 1:
        raise ValueError(f"{len(images)} frames in records {first}..{last}")
    images = np.ascontiguousarray(images[(slice(None), *CDF_TO_STREAM0)], dtype=np.uint16)
    return images, times[first : last + 1], exposure[first : last + 1]


def _read_hour(
    archive: Archive, path: str, window: tuple[np.datetime64, np.datetime64]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if archive.is_local:
        return read_cdf_frames(path, window)
    data = archive.read_bytes(path)
    fd, tmp = tempfile.mkstemp(suffix=".cdf")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return read_cdf_frames(tmp, window)
    finally:
        os.unlink(tmp)


def read_cdf_block(
    archive: Archive, hour_paths: Sequence[tuple[np.datetime64, str | None]], first_slot, n_slots
) -> np.ndarray:
    """Read the hour files one chunk touches and place their frames in 3-second slots.

    A file fills only the slots of its own hour; a slot of an hour without a file is
    ``no_file``, of a file that cannot be read ``file_unreadable`` (``file_unreachable`` if
    fetching it failed), of a file read whole without a frame there ``frame_missing``.
    """
    slots = first_slot + SLOT * np.arange(n_slots)
    slot_hours = slots.astype("datetime64[h]")
    out = np.zeros((1, n_slots), dtype=RECORD)
    out["timestamp"] = np.datetime64("NaT")
    for key in HEADER_FIELDS:
        out[key] = np.nan
    status = out["frame_status"][0]
    status[:] = NO_FILE
    for hour, path in hour_paths:
        in_hour = slot_hours == hour
        if path is None:
            continue
        try:
            window = (np.datetime64(first_slot, "ns"), slots[-1] + SLOT)
            images, times, exposure = _read_hour(archive, path, window)
        except TransportError as error:
            log.warning("%s: unreachable (%s)", path, error)
            status[in_hour] = FILE_UNREACHABLE
            continue
        except Exception as error:  # noqa: BLE001 - a damaged file is a status, not a crash
            log.warning("%s: unreadable (%s: %s)", path, type(error).__name__, error)
            status[in_hour] = FILE_UNREADABLE
            continue
        status[in_hour] = FRAME_MISSING
        own = times.astype("datetime64[h]") == hour
        if not own.all():
            log.warning("%s: %d frames timed outside its hour; not placed", path, (~own).sum())
        rows = np.flatnonzero(own)  # a file fills only its own hour's slots
        slot, kept = place_in_slots(times[rows], first_slot, n_slots)
        for k in slot[(slot >= 0) & ~kept]:
            log.warning("%s: two frames in slot %s; kept the first", path, slots[k])
        rows, slot = rows[kept], slot[kept]
        out["images"][0, slot] = images[rows]
        out["timestamp"][0, slot] = times[rows]
        out["exposure_ms"][0, slot] = exposure[rows]
        status[slot] = OK
    return out


def _read_cdf_records_block(hours: np.ndarray, archive, times, block_info=None):
    lo, hi = block_info[None]["array-location"][1]
    return read_cdf_block(archive, hours[0, 0], times[lo], hi - lo)


#: The folders from a mirror's root down to the ASI files, in order: pyspedas keeps
#: ``<local_data_dir>/thg/l1/asi/`` (its ``local_data_dir`` is ``themis_data/``, or
#: ``$SPEDAS_DATA_DIR/themis/``), NASA's servers (themis.ssl.berkeley.edu/data/themis/,
#: spdf.gsfc.nasa.gov/pub/data/themis/, CDAWeb's) the same ``thg/l1/asi/`` below them.
MIRROR_PATH = ("themis", "thg", "l1", "asi")


def asi_folder(archive: Archive) -> str:
    """The folder of ``archive`` that holds the ``<site>/YYYY/MM/`` folders: the root itself,
    or below it along :data:`MIRROR_PATH` as far as those folders exist (a pyspedas data
    folder, a mirror of NASA's ``themis/`` or of its ``thg/``: one listing a level)."""
    folder = archive.root
    names = set(archive.list_names(folder))
    for part in MIRROR_PATH:
        if part in names:
            folder = posixpath.join(folder, part)
            names = set(archive.list_names(folder))
    return folder


def find_hour_files(archive: Archive, site: str, start, end) -> dict[np.datetime64, str]:
    """The ``thg_l1_asf`` files of ``site`` for the hours ``[start, end)`` touches: the highest
    version of each hour. Looks in ``<asi>/<site>/YYYY/MM/`` (NASA's layout), in
    ``<asi>/YYYY/MM/`` and in ``<asi>`` and the root themselves, ``<asi>`` being the root or
    its ``thg/l1/asi/`` (:func:`asi_folder`)."""
    found: dict[np.datetime64, tuple[int, str]] = {}
    months = pd.period_range(start.floor("D"), (end - pd.Timedelta(1)).floor("D"), freq="M")
    base = asi_folder(archive)
    folders = [archive.root, base] + [
        posixpath.join(base, *prefix, f"{m.year:04d}", f"{m.month:02d}")
        for m in months
        for prefix in ((site,), ())
    ]
    for folder in dict.fromkeys(folders):
        for name in archive.list_names(folder):
            match = HOUR_FILE.match(name)
            if match is None or match["site"].lower() != site:
                continue
            hour = pd.Timestamp(f"{match['hour'][:8]}T{match['hour'][8:]}")
            if not start.floor("h") <= hour < end:
                continue
            key = np.datetime64(hour.to_datetime64(), "ns")
            version = int(match["version"])
            if key not in found or version > found[key][0]:
                found[key] = (version, posixpath.join(folder, name))
    return {k: v[1] for k, v in found.items()}


def open_themis_cdf(
    source: str | os.PathLike,
    sites: str | Sequence[str],
    start: Any,
    end: Any,
    *,
    chunk_minutes: int | None = None,
    cache: str | os.PathLike | bool | None = None,
    storage_options: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Open THEMIS ASI level-1 CDF files lazily as a frames dataset.

    The same data model as :func:`auroradask.open_themis` (``images``, ``timestamp``,
    ``frame_status``, ``exposure_ms`` on (site, time) 3-second slots; coords ``site``,
    ``time``, ``imager``, ``latitude``, ``longitude``), in the stream0 orientation: CDF frames
    are turned by 180° on reading (module docstring).

    Parameters
    ----------
    source
        A local folder or fsspec URL holding ``thg_l1_asf_<site>_YYYYMMDDHH_vNN.cdf`` files:
        a mirror root that holds ``thg/l1/asi/<site>/YYYY/MM/`` (pyspedas' local data folder,
        ``themis_data/``; NASA's ``.../data/themis/`` or CDAWeb's ``.../pub/data/themis/``;
        or the folder above ``themis/``), the ``thg/l1/asi/`` folder itself
        (``<site>/YYYY/MM/``), ``YYYY/MM/`` or flat; or one such file. Remote files are
        cached as for :func:`auroradask.open_themis`.
    sites, start, end, chunk_minutes, cache, storage_options
        As for :func:`auroradask.open_themis`.

    Raises
    ------
    ArgumentError
        As :func:`auroradask.open_themis`; also for the thumbnail product (``thg_l1_ast``),
        which is not frames for classification.
    """
    site_codes = check_sites(sites)
    start_ts, end_ts = check_interval(start, end)
    chunk_minutes = check_chunk_minutes(setting_or("chunk-minutes", chunk_minutes))
    url = os.fspath(source)
    archive, single = _cdf_archive(url, cache, storage_options)
    times = np.arange(
        start_ts.ceil("3s").to_datetime64(), end_ts.to_datetime64(), SLOT, dtype="datetime64[ns]"
    )
    if times.size == 0:
        raise ArgumentError(f"start, end: [{start_ts}, {end_ts}) holds no 3-second frame slot")
    block = times.astype("datetime64[m]").astype(np.int64) // int(chunk_minutes)
    edges = np.r_[0, np.flatnonzero(np.diff(block)) + 1, times.size]
    found = _found_hour_files(archive, url, site_codes, start_ts, end_ts, single)
    records = _cdf_records(archive, url, found, times, edges)
    frames = frames_dataset(
        records,
        site_codes,
        times,
        [""] * len(site_codes),  # a CDF file does not say which imager
        {
            "source": url,
            "source_format": "THEMIS ASI L1 CDF (thg_l1_asf)",
            "orientation": "stream0 (CDF frames turned by 180 degrees on reading)",
        },
    )
    frames["timestamp"].attrs = {"long_name": "start of exposure (UT), thg_asf_<site>_epoch"}
    frames["exposure_ms"].attrs = {
        "long_name": "exposure (thg_asf_<site>_tend - _time)",
        "units": "ms",
    }
    return frames


def _cdf_archive(
    url: str, cache: str | os.PathLike | bool | None, storage_options: dict[str, Any] | None
) -> tuple[Archive, str | None]:
    """The archive to list, and the file's name where ``url`` names one hour file (its folder
    is listed then, and that file alone kept).

    Raises
    ------
    ArgumentError
        If ``url`` names a thumbnail file.
    """
    name = url.rstrip("/").rsplit("/", 1)[-1]
    if THUMBNAIL_FILE.match(name):
        raise thumbnail_error(name)
    if HOUR_FILE.match(name):
        parent = url.rstrip("/").rsplit("/", 1)[0] if "/" in url.rstrip("/") else "."
        return open_archive(parent, cache=cache, storage_options=storage_options), name
    return open_archive(url, cache=cache, storage_options=storage_options), None


def _found_hour_files(
    archive: Archive,
    url: str,
    site_codes: Sequence[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    single: str | None,
) -> list[dict[np.datetime64, str]]:
    """Each site's hour files in ``[start, end)`` (:func:`find_hour_files`; only the file
    named ``single`` where one is), checked: a request that can only give ``no_file`` is
    refused.

    Raises
    ------
    ArgumentError
        If a site is neither a THEMIS site code nor has a file, or no site has a file (the
        message says where it looked, and names a thumbnail file found instead).
    """
    found = []
    for site in site_codes:
        files = find_hour_files(archive, site, start, end)
        if single:
            files = {k: p for k, p in files.items() if posixpath.basename(p) == single}
        found.append(files)
    for site, files in zip(site_codes, found, strict=True):
        if not files and site not in THEMIS_SITES:
            raise ArgumentError(
                f"sites: {site!r} is not a THEMIS site code and {url!r} has no "
                f"thg_l1_asf_{site}_*.cdf file in [{start}, {end})"
            )
    if not any(found):
        thumbnails = [n for n in archive.list_names(archive.root) if THUMBNAIL_FILE.match(n)]
        hint = f"; {thumbnails[0]!r} there is a thumbnail file, not frames" if thumbnails else ""
        base = asi_folder(archive)
        where = "" if base == archive.root else f" ({archive.relative(base)}/<site>/YYYY/MM/)"
        raise ArgumentError(
            f"start, end: no thg_l1_asf file of {', '.join(site_codes)} in "
            f"[{start}, {end}) under {url!r}{where}{hint}"
        )
    return found


def _cdf_records(
    archive: Archive,
    url: str,
    found: Sequence[dict[np.datetime64, str]],
    times: np.ndarray,
    edges: np.ndarray,
) -> da.Array:
    """A lazy ``(site, time)`` array of :data:`~auroradask.io._stream0.RECORD`, one reading
    task per chunk (``edges``: the chunk bounds along ``times``) that reads the chunk's hours."""
    chunk_hours = np.empty((len(found), len(edges) - 1), dtype=object)
    for i, files in enumerate(found):
        for j, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            hours = np.unique(times[lo:hi].astype("datetime64[h]"))
            chunk_hours[i, j] = tuple((h, files.get(np.datetime64(h, "ns"))) for h in hours)
    hours_arr = da.from_array(
        chunk_hours, chunks=1, name="read-themis-" + tokenize(url, chunk_hours, "cdf-files")
    )
    return da.map_blocks(
        _read_cdf_records_block,
        hours_arr,
        archive=archive,
        times=times,
        chunks=((1,) * len(found), tuple(int(n) for n in np.diff(edges))),
        dtype=RECORD,
        meta=np.empty((0, 0), dtype=RECORD),
        name="read-themis-" + tokenize(url, chunk_hours, times, "cdf"),
    )
