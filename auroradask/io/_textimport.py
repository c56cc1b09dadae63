"""Importing the published classifier's text files into a results dataset: every file read
and checked once (:func:`~auroradask.io._textfiles.read_text`), the class table and the
producer learnt from them, then lazy results with one chunk per site and UT day that reads its
file again when computed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .._schema import (
    DAY_SLOTS,
    FRAME_MISSING,
    NOT_CLASSIFIED,
    NOT_WRITTEN,
    OK,
    SLOT,
    SLOT_SECONDS,
    frame_status_attrs,
    label_attrs,
)
from ..errors import ArgumentError, InputDataError
from ._sites import THEMIS_SITES
from ._textfiles import (
    FILE_SUFFIX,
    FileInfo,
    find_text_files,
    parse_name,
    read_bytes,
    read_text,
)

#: ``model_sha256`` of an imported store starts with this; ``preset`` is exactly it.
IMPORTED = "imported-text"


def _scan(paths: Sequence[str]) -> list[FileInfo]:
    """Every file read once and checked, on a thread per core; only the :class:`FileInfo`
    is kept (a file's rows are dropped as soon as it is checked)."""
    workers = int(dask.config.get("num_workers", None) or os.cpu_count() or 1)
    if workers == 1 or len(paths) < 2:
        return [read_text(p).info for p in paths]
    with ThreadPoolExecutor(max_workers=min(workers, len(paths))) as pool:
        return list(pool.map(lambda p: read_text(p).info, paths))


_DECLARED = re.compile(r"(?:^|; )classes (\d+=[^,;]+(?:, \d+=[^,;]+)*)\s*$")


def declared_classes(comments: Sequence[str]) -> list[tuple[int, str]]:
    """The class table a header line declares (``classes 0=bad_viewing, 1=no_aurora``, as
    :func:`~auroradask.io._textfiles.export_text` writes it), as (index, name) pairs; none if
    no line does."""
    for line in comments:
        match = _DECLARED.search(line)
        if match:
            pairs = (item.split("=", 1) for item in match[1].split(", "))
            return [(int(index), name.strip()) for index, name in pairs]
    return []


def _class_table(files: Sequence[FileInfo], classes: Sequence[str] | None) -> list[str]:
    """Class names by index from the (prediction, prediction_str) pairs seen, checked against
    ``classes`` where given."""
    seen: dict[int, set[str]] = {}
    where: dict[tuple[int, str], list[str]] = {}
    for f in files:
        # the rows' pairs, and the whole table where a header gives it (export_text writes
        # "classes 0=a, 1=b, ..."): a class no row of the night has is still a class
        for index, name in (*f.pairs, *declared_classes(f.comments)):
            seen.setdefault(index, set()).add(name)
            where.setdefault((index, name), []).append(f.path)

    def files_of(index: int, name: str) -> str:
        paths = where[(index, name)]
        n = len(paths) - 1
        more = f" and {n} more file{'s' if n > 1 else ''}" if n else ""
        return f"{paths[0]}{more}"

    for index, names in sorted(seen.items()):
        if len(names) > 1:
            examples = "; ".join(f"{n!r} in {files_of(index, n)}" for n in sorted(names))
            raise InputDataError(
                f"class index {index} has several names: {examples}. Files whose classes "
                "disagree come from different models: import each model's files into its "
                "own store"
            )
    by_index = {index: names.pop() for index, names in seen.items()}
    too_large = [index for index in by_index if not 0 <= index <= 127]
    if too_large:  # a label is int8: a larger index would wrap around without a word
        index = too_large[0]
        raise InputDataError(
            f"class index {index} in {where[(index, by_index[index])][0]} is outside 0-127"
        )
    names = list(by_index.values())
    if len(set(names)) < len(names):
        raise InputDataError(f"one class name has several indices: {sorted(by_index.items())}")
    if classes is not None:
        classes = [str(c) for c in classes]
        for index, name in sorted(by_index.items()):
            if index >= len(classes) or classes[index] != name:
                raise ArgumentError(
                    f"classes: the files give class {index} as {name!r} "
                    f"({where[(index, name)][0]}), classes= says {classes[index] if index < len(classes) else 'nothing'!r}"
                )
        return classes
    if not by_index:
        raise InputDataError("no file has a classified frame: pass classes= to name the classes")
    absent = sorted(set(range(max(by_index) + 1)) - set(by_index))
    if absent:
        raise InputDataError(
            f"class indices {absent} never occur in the files, so their names are unknown: "
            "pass classes= (all class names in index order)"
        )
    return [by_index[i] for i in range(len(by_index))]


def _producers_message(groups: dict[tuple[str, ...], list[FileInfo]]) -> str:
    """Names each producer the files give, with how many files and one of them."""
    firsts = {files[0].producer for files in groups.values()}
    parts = []
    for identity, files in sorted(groups.items()):
        label = files[0].producer if len(firsts) == len(groups) else " / ".join(identity)
        count = f"{len(files)} files, e.g." if len(files) > 1 else "1 file,"
        parts.append(f"{label!r} ({count} {files[0].path})")
    return (
        f"the files name {len(groups)} producers: {'; '.join(parts)}. Import each producer's "
        "files into its own store, or pass producer= if they are one"
    )


def import_text(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    classes: Sequence[str] | None = None,
    producer: str | None = None,
) -> xr.Dataset:
    """Results from classifications text files, on whole UT days of 3-s slots, lazily.

    Every file is read once here (to check it and learn the classes, the days and its
    sha256) and again when a chunk is computed; a chunk is one site and one UT day, so
    :func:`auroradask.to_zarr` writes an import of years of files without holding it.

    Parameters
    ----------
    paths
        A folder (searched recursively for ``*_classifications.txt``), a file, or several.
    classes
        All class names in index order. By default the (prediction, prediction_str) pairs the
        files contain; give them when a class never occurs in these files, or to be sure that
        later imports into the same store have the same classes.
    producer
        What made the files. By default the producer line of their comments: the first
        ``#`` line that is not provenance (provenance: a line holding a date and a time of
        day, such as the published classifier's ``File created on 2023-07-04 15:06:24``, or
        naming the file's site or day). The comment lines other than provenance must be the
        same in all files, so files of one model made on different days are one producer and
        a file whose lines name another model is refused; passing ``producer`` says they
        are one. It becomes the store's ``model_file``, and its sha256 the ``model_sha256``
        (prefixed ``imported-text:``), so that only files of the same producer go into one
        store.

    Returns
    -------
    xarray.Dataset
        As :func:`auroradask.classify` makes them: ``label``, ``confidence`` (the files'),
        ``probability`` (NaN: the files do not have it), ``timestamp`` (the row's time, to the
        second), ``frame_status`` (0 for a row, 3 ``frame_missing`` for a slot without a row
        on a day with a file, -1 "not written" on a day without a file for the site); dims
        (site, time[, class]) with time
        covering whole UT days from the first file's to the last one's; coords ``latitude``,
        ``longitude`` where the site is a known THEMIS site. Attributes: ``model_file``,
        ``model_sha256``, ``preset`` (``imported-text``), ``import_files`` (JSON: each file's
        path, site, day, sha256, rows, producer (or ``"empty": true``), and where the file
        has them its ``created`` stamp and its ``provenance`` lines), ``import_producers``.

    Notes
    -----
    A site-day without a file between the first and last day is left "not written" (-1):
    written to a store it stays empty, and a file for it imported later fills it. So is the
    day of an *empty* file (0 bytes, or white space only: its writer died; a night without
    frames has its comment lines and header): it is listed in ``import_files`` as empty and
    names no producer.

    A store keeps the first import of each site-day: another file for a day the store
    lists already (a corrected file) is refused by :func:`auroradask.to_zarr`, naming both
    files, rather than listed but not written; import the corrected files into a new store.

    Files are read in bulk by Arrow's CSV reader (see :func:`read_text`), here on a thread
    per core; memory holds one file per thread, here and when chunks are computed.

    Raises
    ------
    ArgumentError
        If ``paths`` names nothing, no classifications file is found, or ``classes`` contradicts
        the files.
    InputDataError
        If a file does not follow the format (the message names the file and line), is
        larger than a day's file can be (refused by its size, before it is read), every file
        is empty (and ``producer`` is not given), two files give the same site and day, the
        files' classes disagree (files of different models; the message names a file of each), or
        the files name several producers and ``producer`` is not given (the message names
        each producer and a file of it).
    """
    paths = _as_list(paths)
    files = _scan(_check_files(paths))
    said = [f for f in files if not f.empty]  # an empty file says nothing, not even its producer
    if not said and producer is None:
        every = f" (and every other file given, {len(files)} in all)" if len(files) > 1 else ""
        raise InputDataError(
            f"{files[0].path}: empty, no comment line nor header{every}: nothing to import "
            "(a night without frames has its comment lines and header)"
        )
    class_names = _class_table(files, classes)
    producers = sorted({f.producer for f in said})
    if producer is None:
        producer = _one_producer(said)
    sites = sorted({f.site for f in files})
    days = sorted({f.day for f in files})
    day_starts, time = _day_axis(days)
    plan = _plan(files, sites, days)
    fields = _lazy_fields(plan, len(sites), len(class_names), day_starts)
    results = _results_dataset(fields, sites, time, class_names)
    results.attrs = _results_attrs(paths, files, producer, producers)
    return results


def _check_files(paths: list) -> list[str]:
    """The classifications files among ``paths``, checked from their names alone (before any
    file is read): at least one, and one file per site and day.

    Raises
    ------
    ArgumentError
        If no classifications file is found.
    InputDataError
        If two files give the same site and day.
    """
    found = find_text_files(paths)
    if not found:
        raise ArgumentError(f"paths: no *{FILE_SUFFIX} file in {paths!r}")
    by_site_day: dict[tuple[str, str], str] = {}
    for path in found:
        other = by_site_day.setdefault(parse_name(path), path)
        if other != path:
            site, day = parse_name(path)
            raise InputDataError(f"two files for site {site} on {day}: {other} and {path}")
    return found


def _one_producer(files: Sequence[FileInfo]) -> str:
    """The producer all ``files`` name (their comment lines other than provenance agree).

    Raises
    ------
    InputDataError
        If the files name several producers (the message names each and a file of it).
    """
    groups: dict[tuple[str, ...], list[FileInfo]] = {}
    for f in files:
        groups.setdefault(f.identity, []).append(f)
    if len(groups) > 1:
        raise InputDataError(_producers_message(groups))
    return files[0].producer


def _day_axis(days: Sequence[str]) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """The start of every UT day from the first of ``days`` to the last (datetime64[ns]), and
    the time axis of 3-s slots covering them."""
    first = np.datetime64(pd.Timestamp(days[0]).to_datetime64(), "ns")
    n_days = int((pd.Timestamp(days[-1]) - pd.Timestamp(days[0])).days) + 1
    day_starts = first + np.arange(n_days) * np.timedelta64(1, "D").astype("timedelta64[ns]")
    # an index built once: xarray keeps it as the coordinate's index without a copy (the
    # time axis is the only part of an import that grows with its span, 8 bytes a slot)
    time = pd.DatetimeIndex(
        np.arange(first, day_starts[-1] + DAY_SLOTS * SLOT, SLOT, dtype="datetime64[ns]"),
        copy=False,
    )
    return day_starts, time


def _plan(
    files: Sequence[FileInfo], sites: Sequence[str], days: Sequence[str]
) -> dict[tuple[int, int], tuple[str, str]]:
    """(site index, day index) -> (path, sha256) of the file that fills that chunk."""
    plan = {}
    for f in files:
        if f.empty:  # its day stays not written: a later import of the real file fills it
            continue
        plan[(sites.index(f.site), int((pd.Timestamp(f.day) - pd.Timestamp(days[0])).days))] = (
            f.path,
            f.sha256,
        )
    return plan


def _lazy_fields(
    plan: dict[tuple[int, int], tuple[str, str]],
    n_sites: int,
    n_classes: int,
    day_starts: np.ndarray,
) -> dict[str, da.Array]:
    """``label``, ``confidence``, ``timestamp`` and ``frame_status`` as dask arrays (site,
    time): one packed block per site-day (:func:`_packed_block`) that reads its file, and one
    cheap view of it per variable."""
    packed = da.map_blocks(
        _packed_block,
        dtype=np.float64,
        chunks=((1,) * n_sites, (DAY_SLOTS,) * len(day_starts), (_PACKED,)),
        plan=plan,
        n_classes=n_classes,
        day_seconds=(day_starts.astype("datetime64[s]").astype(np.int64)),
        name="import-text-" + hashlib.sha256(repr(sorted(plan.items())).encode()).hexdigest(),
        meta=np.empty((0, 0, 0), dtype=np.float64),
    )
    # one task per variable and site-day, each a cheap view of the packed block
    return {
        "label": packed.map_blocks(_field, 0, np.int8, drop_axis=2, dtype=np.int8),
        "confidence": packed.map_blocks(_field, 1, np.float32, drop_axis=2, dtype=np.float32),
        "timestamp": packed.map_blocks(_timestamps, drop_axis=2, dtype="datetime64[ns]"),
        "frame_status": packed.map_blocks(_field, 3, np.int8, drop_axis=2, dtype=np.int8),
    }


def _results_dataset(
    fields: dict[str, da.Array],
    sites: Sequence[str],
    time: pd.DatetimeIndex,
    class_names: Sequence[str],
) -> xr.Dataset:
    """The results dataset of the lazy ``fields``, with ``probability`` all NaN (the files do
    not have it), the coordinates and the variables' attributes; no dataset attributes."""
    results = xr.Dataset(
        {
            "label": (("site", "time"), fields["label"], label_attrs(class_names)),
            "confidence": (
                ("site", "time"),
                fields["confidence"],
                {"long_name": "probability of the chosen class", "units": "1"},
            ),
            "probability": (
                ("site", "time", "class"),
                da.full(
                    (len(sites), len(time), len(class_names)),
                    np.nan,
                    dtype=np.float32,
                    chunks=(1, DAY_SLOTS, -1),
                ),
                {
                    "long_name": "class probabilities",
                    "units": "1",
                    "comment": "unknown: imported text files give the chosen class's only",
                },
            ),
            "timestamp": (("site", "time"), fields["timestamp"]),
            "frame_status": (
                ("site", "time"),
                fields["frame_status"],
                frame_status_attrs(),
            ),
        },
        coords={
            "site": ("site", np.array(sites, dtype=object)),
            "time": time,
            "class": ("class", np.array(class_names, dtype=object)),
            "latitude": ("site", [_site_info(s, "latitude") for s in sites]),
            "longitude": ("site", [_site_info(s, "longitude") for s in sites]),
        },
    )
    results["timestamp"].attrs = {"long_name": "frame time (from the text file, to the second)"}
    results["frame_status"].attrs["comment"] = (
        f"{FRAME_MISSING}: no row for the slot in the day's file; "
        f"{NOT_WRITTEN}: no text file for the site and day (not written)"
    )
    results["latitude"].attrs = {"units": "degrees_north", "long_name": "geodetic latitude"}
    results["longitude"].attrs = {"units": "degrees_east", "long_name": "geodetic longitude"}
    return results


def _results_attrs(
    paths: list, files: Sequence[FileInfo], producer: str, producers: list[str]
) -> dict[str, str]:
    """The dataset attributes of an import: the producer as ``model_file`` (and its sha256,
    prefixed, as ``model_sha256``), and what was read, file by file."""
    return {
        "title": "THEMIS ASI frame classification (imported from text files)",
        "model_file": producer,
        "model_sha256": f"{IMPORTED}:{hashlib.sha256(producer.encode()).hexdigest()}",
        "preset": IMPORTED,
        "source": json.dumps([os.fspath(p) for p in paths]),
        "import_files": json.dumps(
            [
                {
                    "file": f.path,
                    "site": f.site,
                    "day": f.day,
                    "sha256": f.sha256,
                    "rows": f.rows,
                    **({"empty": True} if f.empty else {"producer": f.producer}),
                    **({"created": f.created} if f.created else {}),
                    **({"provenance": list(f.provenance)} if f.provenance else {}),
                }
                for f in files
            ]
        ),
        "import_producers": json.dumps(producers),
        "version_auroradask": _version(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


#: Fields of a packed block: label, confidence, the row's time (seconds since 1970, exact in
#: float64), frame_status.
_PACKED = 4


def _packed_block(plan, n_classes, day_seconds, block_info=None) -> np.ndarray:
    """One site-day as ``(1, DAY_SLOTS, 4)`` float64: label, confidence, time, status."""
    site, day = block_info[None]["chunk-location"][:2]
    out = np.empty((1, DAY_SLOTS, _PACKED), dtype=np.float64)
    out[..., 0], out[..., 1], out[..., 2] = NOT_CLASSIFIED, np.nan, np.nan
    if (site, day) not in plan:  # nothing known: a later import of that day fills it
        out[..., 3] = NOT_WRITTEN
        return out
    path, sha256 = plan[(site, day)]
    data = read_bytes(path)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InputDataError(f"{path}: changed since import_text read it; import again")
    parsed = read_text(path, data)
    out[..., 3] = FRAME_MISSING
    if parsed.info.rows and parsed.prediction.max() >= n_classes:  # pragma: no cover
        raise InputDataError(f"{path}: class index beyond the classes")
    slot = parsed.seconds // SLOT_SECONDS
    out[0, slot, 0] = parsed.prediction
    out[0, slot, 1] = parsed.confidence
    out[0, slot, 2] = day_seconds[day] + parsed.seconds
    out[0, slot, 3] = OK
    return out


def _field(block: np.ndarray, index: int, dtype) -> np.ndarray:
    """One field of packed blocks, as ``dtype``."""
    return block[..., index].astype(dtype)


def _timestamps(block: np.ndarray) -> np.ndarray:
    """The time field of packed blocks as datetime64[ns], NaT where there is no row."""
    seconds = block[..., 2]
    known = ~np.isnan(seconds)
    out = np.full(seconds.shape, np.datetime64("NaT", "ns"))
    out[known] = (seconds[known].astype(np.int64) * 1_000_000_000).astype("datetime64[ns]")
    return out


def _site_info(site: str, field: str) -> float:
    known = THEMIS_SITES.get(site)
    return float(getattr(known, field)) if known else np.nan


def _as_list(paths) -> list:
    return [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)


def _version() -> str:
    try:
        return version("auroradask")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"
