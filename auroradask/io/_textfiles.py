"""Text files in the format users of the published pulsating-aurora classifier already read.

One file per site and UT day, ``YYYY/MM/DD/YYYYMMDD_<site>_..._classifications.txt`` (the site
is the second ``_`` field of the name; producers put different things between the site and
``classifications``): ``#`` comment lines, a blank line, then CSV rows
``date,time,prediction,prediction_str,confidence`` with ``date`` an integer YYYYMMDD, ``time``
HH:MM:SS of the frame, the class index and name and the chosen class's probability.
:func:`export_text` writes them; :func:`import_text` reads them back into a results dataset.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

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
    SITE_CODE,
    SLOT,
    SLOT_SECONDS,
    frame_status_attrs,
    label_attrs,
)
from ..errors import ArgumentError, InputDataError, SourceNotFoundError
from ._sites import THEMIS_SITES

#: The CSV columns, in order.
COLUMNS = ("date", "time", "prediction", "prediction_str", "confidence")
HEADER = ",".join(COLUMNS)
DATE_FORMAT, TIME_FORMAT = "%Y%m%d", "%H:%M:%S"
FILE_SUFFIX = "_classifications.txt"
#: ``YYYYMMDD_<site>_..._classifications.txt``: the date and the site are the first two fields.
FILE_NAME = re.compile(r"(?P<date>\d{8})_(?P<site>[^_]+)_(?:.*_)?classifications\.txt")
#: Decimals of ``confidence`` in exported files.
CONFIDENCE_DECIMALS = 4
#: ``model_sha256`` of an imported store starts with this; ``preset`` is exactly it.
IMPORTED = "imported-text"


def text_path(outdir: str | os.PathLike, day: str, site: str) -> str:
    """Where :func:`export_text` puts the file of ``site`` on ``day`` (YYYYMMDD)."""
    folder = os.path.join(os.fspath(outdir), day[:4], day[4:6], day[6:])
    return os.path.join(folder, f"{day}_{site}{FILE_SUFFIX}")


def export_text(results: xr.Dataset, outdir: str | os.PathLike) -> list[str]:
    """Write one CSV file per site and UT day of classified frames.

    Files are ``OUTDIR/YYYY/MM/DD/YYYYMMDD_<site>_classifications.txt``: two ``#`` lines, a blank
    line, then ``date,time,prediction,prediction_str,confidence`` rows (``date`` YYYYMMDD,
    ``time`` HH:MM:SS of the frame, the class index and name, the chosen class's probability),
    classified frames only, in time order.

    Parameters
    ----------
    results
        A results dataset or store (:func:`auroradask.open_results`).
    outdir
        Folder to write into.

    Returns
    -------
    list of str
        The files written.
    """
    classes = [str(c) for c in results["class"].values]
    header_model = _one_line(
        f"{results.attrs.get('model_file', '?')} "
        f"(sha256 {str(results.attrs.get('model_sha256', '?'))[:12]})"
    )
    header_classes = _one_line(", ".join(f"{i}={c}" for i, c in enumerate(classes)))
    times = results["time"].values
    days = times.astype("datetime64[D]")
    edges = np.r_[0, np.flatnonzero(np.diff(days.astype(np.int64))) + 1, len(times)]
    written = []
    for site in results["site"].values:
        site = str(site)
        if not SITE_CODE.fullmatch(site):  # it becomes part of a path and a header line
            raise InputDataError(
                f"results: site {site!r} is not a site code (lower-case letters and digits); "
                "refusing to build a file name from it"
            )
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):  # one UT day in memory at a time
            one = results.isel(time=slice(int(lo), int(hi))).sel(site=site)
            label = one["label"].values
            keep = label >= 0
            if not keep.any():
                continue
            stamps = pd.DatetimeIndex(one["timestamp"].values[keep])
            rows = pd.DataFrame(
                {
                    "date": stamps.strftime(DATE_FORMAT),
                    "time": stamps.strftime(TIME_FORMAT),
                    "prediction": label[keep].astype(int),
                    "prediction_str": np.array(classes, dtype=object)[label[keep]],
                    "confidence": np.round(
                        one["confidence"].values[keep].astype(float), CONFIDENCE_DECIMALS
                    ),
                }
            )
            day = pd.Timestamp(days[lo]).strftime(DATE_FORMAT)
            path = text_path(outdir, day, site)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(
                    f"# auroradask classifications of THEMIS ASI site {site}, UT day {day}\n"
                    f"# model {header_model}; classes {header_classes}\n\n"
                )
                rows.to_csv(f, index=False, lineterminator="\n")
            written.append(path)
    return written


def _one_line(text: str) -> str:
    """Text for a header line: line breaks and other control characters become spaces."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


# ------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class TextFile:
    """One classifications file as parsed: its rows and what the import records about it.

    Attributes
    ----------
    path
        The file.
    site, day
        From the name: site code and UT day (YYYYMMDD).
    sha256
        Of the file's bytes.
    comments
        The ``#`` lines, without the ``#`` and surrounding spaces.
    rows
        ``time`` (datetime64[s]), ``prediction`` (int), ``prediction_str``, ``confidence``,
        ``line`` (1-based line number in the file), in file order.
    """

    path: str
    site: str
    day: str
    sha256: str
    comments: tuple[str, ...]
    rows: pd.DataFrame

    @property
    def producer(self) -> str:
        """The comment line that says what made the file: the first one that names neither
        the file's site nor its day (the first comment line if all do; "" if none)."""
        date = f"{self.day[:4]}-{self.day[4:6]}-{self.day[6:]}"
        site = re.compile(rf"\b{re.escape(self.site)}\b", re.IGNORECASE)
        for line in self.comments:
            if self.day not in line and date not in line and not site.search(line):
                return line
        return self.comments[0] if self.comments else ""


def parse_name(path: str | os.PathLike) -> tuple[str, str]:
    """The (site, YYYYMMDD day) that a classifications file's name gives.

    Raises
    ------
    InputDataError
        If the name is not ``YYYYMMDD_<site>_..._classifications.txt``, the date is not a date
        or the site is not a site code.
    """
    name = os.path.basename(os.fspath(path))
    match = FILE_NAME.fullmatch(name)
    if match is None:
        raise InputDataError(f"{path}: not a YYYYMMDD_<site>_..._classifications.txt file name")
    site, day = match["site"], match["date"]
    if not SITE_CODE.fullmatch(site):
        raise InputDataError(f"{path}: site {site!r} in the name is not a site code ([a-z0-9]+)")
    try:
        dt.datetime.strptime(day, DATE_FORMAT)
    except ValueError:
        raise InputDataError(f"{path}: {day!r} in the name is not a YYYYMMDD date") from None
    return site, day


def read_text(path: str | os.PathLike, data: bytes | None = None) -> TextFile:
    """Parse one classifications file (``data``: its bytes, if already read).

    Raises
    ------
    InputDataError
        If the name, the header or a row does not follow the format, a row's date is not the
        file's day, or two rows fall in the same 3-s slot.
    """
    path = os.fspath(path)
    site, day = parse_name(path)
    if data is None:
        with open(path, "rb") as f:
            data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputDataError(f"{path}: not UTF-8 text ({error})") from None
    comments, body, header_line = [], [], None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            comments.append(stripped.lstrip("#").strip())
        elif not stripped:
            continue
        elif header_line is None:
            if stripped.replace(" ", "") != HEADER:
                raise InputDataError(f"{path}:{number}: expected the header {HEADER!r}")
            header_line = number
        else:
            body.append((number, stripped))
    rows = _parse_rows(path, day, body)
    return TextFile(
        path=path,
        site=site,
        day=day,
        sha256=hashlib.sha256(data).hexdigest(),
        comments=tuple(comments),
        rows=rows,
    )


def _parse_rows(path: str, day: str, body: list[tuple[int, str]]) -> pd.DataFrame:
    lines = np.array([n for n, _ in body], dtype=np.int64)
    table = pd.read_csv(
        io.StringIO("\n".join(text for _, text in body)),
        names=list(COLUMNS),
        header=None,
        dtype=str,
        skipinitialspace=True,
        keep_default_na=False,
    )
    if len(table) != len(body):  # pragma: no cover - read_csv keeps one row a line
        raise InputDataError(f"{path}: could not read its rows")
    prediction = pd.to_numeric(table["prediction"], errors="coerce")
    confidence = pd.to_numeric(table["confidence"], errors="coerce")
    time = pd.to_datetime(
        table["date"] + " " + table["time"], format=f"{DATE_FORMAT} {TIME_FORMAT}", errors="coerce"
    )
    bad = (
        ~table["date"].str.fullmatch(r"\d{8}")
        | ~table["time"].str.fullmatch(r"\d{2}:\d{2}:\d{2}")
        | time.isna()
        | prediction.isna()
        | (prediction < 0)
        | (prediction != prediction.round())
        | (table["prediction_str"] == "")
        | ~confidence.between(0, 1)
    )
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputDataError(
            f"{path}:{lines[first]}: cannot read {body[first][1]!r} as "
            "date (YYYYMMDD), time (HH:MM:SS), class index, class name, confidence (0..1)"
        )
    other_day = table["date"] != day
    if other_day.any():
        first = int(np.flatnonzero(other_day.to_numpy())[0])
        raise InputDataError(
            f"{path}:{lines[first]}: date {table['date'][first]} is not the file's day {day}"
        )
    rows = pd.DataFrame(
        {
            "time": time.to_numpy().astype("datetime64[s]"),
            "prediction": prediction.to_numpy().astype(np.int64),
            "prediction_str": table["prediction_str"].to_numpy(dtype=object),
            "confidence": confidence.to_numpy().astype(np.float64),
            "line": lines,
        }
    )
    slots = rows["time"].dt.floor(f"{SLOT_SECONDS}s")
    twice = slots.duplicated(keep=False)
    if twice.any():
        where = rows.loc[twice, "line"].tolist()[:2]
        raise InputDataError(f"{path}: lines {where[0]} and {where[1]} fall in the same 3-s slot")
    return rows


def find_text_files(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """The classifications files among ``paths`` (files, or folders searched recursively)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found = []
    for item in paths:
        item = os.fspath(item)
        if os.path.isdir(item):
            for folder, _, names in os.walk(item):
                found += [os.path.join(folder, n) for n in names if n.endswith(FILE_SUFFIX)]
        elif os.path.isfile(item):
            found.append(item)
        else:
            raise SourceNotFoundError(f"paths: {item!r} does not exist")
    return sorted(found)


def _class_table(files: Sequence[TextFile], classes: Sequence[str] | None) -> list[str]:
    """Class names by index from the (prediction, prediction_str) pairs seen, checked against
    ``classes`` where given."""
    seen: dict[int, set[str]] = {}
    where: dict[tuple[int, str], str] = {}
    for f in files:
        pairs = f.rows[["prediction", "prediction_str"]].drop_duplicates()
        for index, name in pairs.itertuples(index=False):
            seen.setdefault(int(index), set()).add(name)
            where.setdefault((int(index), name), f.path)
    for index, names in seen.items():
        if len(names) > 1:
            examples = "; ".join(f"{n!r} in {where[(index, n)]}" for n in sorted(names))
            raise InputDataError(f"class index {index} has several names: {examples}")
    by_index = {index: names.pop() for index, names in seen.items()}
    too_large = [index for index in by_index if not 0 <= index <= 127]
    if too_large:  # a label is int8: a larger index would wrap around without a word
        index = too_large[0]
        raise InputDataError(
            f"class index {index} in {where[(index, by_index[index])]} is outside 0-127"
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
                    f"({where[(index, name)]}), classes= says {classes[index] if index < len(classes) else 'nothing'!r}"
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
        What made the files. By default the producer line of their comments (the first
        ``#`` line that names neither the file's site nor its day), which must be the same in
        all files. It becomes the store's ``model_file``, and its sha256 the ``model_sha256``
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
        path, sha256, rows and producer), ``import_producers``.

    Notes
    -----
    A site-day without a file between the first and last day is left "not written" (-1):
    written to a store it stays empty, and a file for it imported later fills it.

    Raises
    ------
    ArgumentError
        If ``paths`` names nothing, no classifications file is found, or ``classes`` contradicts
        the files.
    InputDataError
        If a file does not follow the format, two files give the same site and day, the files'
        classes disagree, or the files name several producers and ``producer`` is not given.
    """
    paths = _as_list(paths)
    found = find_text_files(paths)
    if not found:
        raise ArgumentError(f"paths: no *{FILE_SUFFIX} file in {paths!r}")
    files = [read_text(p) for p in found]
    by_site_day: dict[tuple[str, str], TextFile] = {}
    for f in files:
        other = by_site_day.setdefault((f.site, f.day), f)
        if other is not f:
            raise InputDataError(
                f"two files for site {f.site} on {f.day}: {other.path} and {f.path}"
            )
    class_names = _class_table(files, classes)
    producers = sorted({f.producer for f in files})
    if producer is None:
        if len(producers) > 1:
            raise InputDataError(
                f"the files name {len(producers)} producers ({producers[:3]}...): import each "
                "producer's files into its own store, or pass producer= if they are one"
            )
        producer = producers[0]

    sites = sorted({f.site for f in files})
    days = sorted({f.day for f in files})
    first = np.datetime64(pd.Timestamp(days[0]).to_datetime64(), "ns")
    n_days = int((pd.Timestamp(days[-1]) - pd.Timestamp(days[0])).days) + 1
    day_starts = first + np.arange(n_days) * np.timedelta64(1, "D").astype("timedelta64[ns]")
    plan = {}
    for f in files:
        plan[(sites.index(f.site), int((pd.Timestamp(f.day) - pd.Timestamp(days[0])).days))] = (
            f.path,
            f.sha256,
        )
    time = np.arange(first, day_starts[-1] + DAY_SLOTS * SLOT, SLOT, dtype="datetime64[ns]")
    packed = da.map_blocks(
        _packed_block,
        dtype=np.float64,
        chunks=((1,) * len(sites), (DAY_SLOTS,) * n_days, (_PACKED,)),
        plan=plan,
        n_classes=len(class_names),
        name="import-text-" + hashlib.sha256(repr(sorted(plan.items())).encode()).hexdigest(),
        meta=np.empty((0, 0, 0), dtype=np.float64),
    )
    times = da.from_array(time, chunks=DAY_SLOTS)
    offset = packed[..., 2]
    timestamp = da.where(
        da.isnan(offset),
        np.datetime64("NaT", "ns"),
        times[None, :] + (da.nan_to_num(offset) * 1e9).astype("timedelta64[ns]"),
    )
    results = xr.Dataset(
        {
            "label": (("site", "time"), packed[..., 0].astype(np.int8), label_attrs(class_names)),
            "confidence": (
                ("site", "time"),
                packed[..., 1].astype(np.float32),
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
            "timestamp": (("site", "time"), timestamp.astype("datetime64[ns]")),
            "frame_status": (
                ("site", "time"),
                packed[..., 3].astype(np.int8),
                frame_status_attrs(),
            ),
        },
        coords={
            "site": ("site", np.array(sites, dtype=object)),
            "time": ("time", time),
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
    results.attrs = {
        "title": "THEMIS ASI frame classification (imported from text files)",
        "model_file": producer,
        "model_sha256": f"{IMPORTED}:{hashlib.sha256(producer.encode()).hexdigest()}",
        "preset": IMPORTED,
        "source": json.dumps([os.fspath(p) for p in paths]),
        "import_files": json.dumps(
            [
                {"file": f.path, "sha256": f.sha256, "rows": len(f.rows), "producer": f.producer}
                for f in files
            ]
        ),
        "import_producers": json.dumps(producers),
        "version_auroradask": _version(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return results


#: Fields of a packed block: label, confidence, seconds after the slot start, frame_status.
_PACKED = 4


def _packed_block(plan, n_classes, block_info=None) -> np.ndarray:
    """One site-day as ``(1, DAY_SLOTS, 4)`` float64: label, confidence, offset, status."""
    site, day = block_info[None]["chunk-location"][:2]
    out = np.empty((1, DAY_SLOTS, _PACKED), dtype=np.float64)
    out[..., 0], out[..., 1], out[..., 2] = NOT_CLASSIFIED, np.nan, np.nan
    if (site, day) not in plan:  # nothing known: a later import of that day fills it
        out[..., 3] = NOT_WRITTEN
        return out
    path, sha256 = plan[(site, day)]
    with open(path, "rb") as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InputDataError(f"{path}: changed since import_text read it; import again")
    parsed = read_text(path, data)
    out[..., 3] = FRAME_MISSING
    if len(parsed.rows) and parsed.rows["prediction"].max() >= n_classes:  # pragma: no cover
        raise InputDataError(f"{path}: class index beyond the classes")
    seconds = (parsed.rows["time"] - pd.Timestamp(parsed.day)).dt.total_seconds().to_numpy()
    slot = (seconds // SLOT_SECONDS).astype(np.int64)
    out[0, slot, 0] = parsed.rows["prediction"].to_numpy()
    out[0, slot, 1] = parsed.rows["confidence"].to_numpy()
    out[0, slot, 2] = seconds - slot * SLOT_SECONDS
    out[0, slot, 3] = OK
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
