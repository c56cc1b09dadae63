"""Folders of PNG/JPEG/TIFF images as a frames dataset (labelled training sets, exports).

Example: the OATH set (Clausen & Nickisch 2018) is laid out as::

    oath/images/cropped_scaled/<id>.png        # 128×128 8-bit frames
    oath/classifications.csv                   # picture id, class columns

and opens with ``open_images("oath/images/cropped_scaled", "*.png", labels="oath/classifications.csv")``:
the images are placed on an index (no times), the CSV's columns are joined by file stem.
"""

from __future__ import annotations

import glob
import os
import re

import cv2
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize

from .._schema import FILE_UNREADABLE, FRAME_SHAPE, NO_FILE, OK, frame_status_attrs
from ..errors import ArgumentError, SourceNotFoundError
from ._stream0 import RECORD, _field

#: A time in a file name: YYYYMMDD_HHMMSS (optionally with a fraction) or YYYYMMDD_HHMM.
_NAME_TIME = re.compile(r"(\d{8})[_T-]?(\d{4})(\d{2})?")
_NAME_SITE = re.compile(r"(?:^|_)([a-z]{4})(?:_|$)")


def _read_image(path: str) -> np.ndarray:
    """One image as (256, 256) uint16: 8-bit images scaled by 257 (0..255 → 0..65535),
    colour images converted to grey, other sizes resized (bilinear)."""
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if image is None:
        raise OSError(f"cannot decode {path}")
    if image.ndim == 3:
        image = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY)
    if image.dtype == np.uint8:
        image = image.astype(np.uint16) * 257
    elif image.dtype != np.uint16:
        image = np.clip(image, 0, 65535).astype(np.uint16)
    if image.shape != FRAME_SHAPE:
        image = cv2.resize(image, FRAME_SHAPE[::-1], interpolation=cv2.INTER_LINEAR)
    return image


def _read_images_block(paths: np.ndarray) -> np.ndarray:
    out = np.zeros((1, paths.shape[1]), dtype=RECORD)
    out["timestamp"] = np.datetime64("NaT")
    for key in RECORD.names[3:]:
        out[key] = np.nan
    for k, path in enumerate(paths[0]):
        try:
            out["images"][0, k] = _read_image(path)
            out["frame_status"][0, k] = OK
        except OSError:
            out["frame_status"][0, k] = FILE_UNREADABLE
    return out


def open_images(
    folder: str | os.PathLike,
    pattern: str = "*.png",
    *,
    times: str | pd.DataFrame | None = None,
    labels: str | os.PathLike | pd.DataFrame | None = None,
    site: str | None = None,
    id_column: str | None = None,
    chunk_size: int = 200,
) -> xr.Dataset:
    """Open a folder of PNG/JPEG/TIFF images lazily as a frames dataset.

    The dataset has the model of :func:`auroradask.open_themis` (``images(site, time, y, x)``
    uint16 256×256, ``timestamp``, ``frame_status``), so :func:`auroradask.preprocess` and
    :func:`auroradask.classify` take it; images are read on the workers, ``chunk_size`` per
    task. 8-bit images are scaled to 16 bits (× 257), colour is turned grey, other sizes are
    resized to 256×256.

    Parameters
    ----------
    folder, pattern
        Where the images are and which names to take (glob, e.g. ``"*.png"``, ``"*.jp*g"``).
    times
        Where each image's time and site come from: ``"name"`` (the file name holds
        ``YYYYMMDD_HHMM[SS]`` and optionally a four-letter site code between underscores),
        a CSV path or DataFrame with columns ``file`` (name or stem) and ``time`` (and
        optionally ``site``), or None (default): no times; the images are placed on an index
        ``time`` = 0, 1, 2 … in name order and ``site`` = ``site`` or ``"images"``.
    labels
        A CSV path or DataFrame joined to the images by file stem (``id_column``, default its
        first column): its other columns become variables on (site, time) (e.g. OATH's
        ``classifications.csv``).
    site
        The site code for every image (where the names or the CSV give none).
    id_column
        The column of ``labels`` that names the images (file name or stem); default its first.
    chunk_size
        Images per chunk along ``time``: one task reads a chunk.

    Returns
    -------
    xarray.Dataset
        ``images(site, time, y, x)`` uint16, ``timestamp`` (NaT without times),
        ``frame_status`` (``no_file`` for a slot without an image, ``file_unreadable`` for an
        image that cannot be decoded), ``file(site, time)`` (the image's path, "" for none),
        and a variable per other column of ``labels``.

    Raises
    ------
    SourceNotFoundError
        If ``folder`` is not a folder.
    ArgumentError
        If no file matches ``pattern``, a name holds no time (``times="name"``), the times
        table lacks a column or names none of the images, two images share a site and time,
        or ``id_column`` is not a column of ``labels``.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise SourceNotFoundError(f"folder: {folder!r} is not a folder")
    paths = sorted(glob.glob(os.path.join(folder, pattern)))
    if not paths:
        raise ArgumentError(f"pattern: no file matches {pattern!r} in {folder!r}")
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    table = pd.DataFrame({"path": paths, "stem": stems})
    if times is None:
        table["site"] = site or "images"
        table["time"] = np.arange(len(table))
    elif isinstance(times, str) and times == "name":
        table = _times_from_names(table, site)
    else:
        table = _times_from_table(table, times, site)
    if table.duplicated(["site", "time"]).any():
        raise ArgumentError("times: two images share a site and time")

    site_codes = sorted(table["site"].astype(str).unique())
    time_values = np.sort(table["time"].unique())
    grid = np.full((len(site_codes), len(time_values)), "", dtype=object)
    si = pd.Index(site_codes).get_indexer(table["site"].astype(str))
    ti = pd.Index(time_values).get_indexer(table["time"])
    grid[si, ti] = table["path"].to_numpy()
    frames = _frames_of_grid(grid, site_codes, time_values, folder, pattern, chunk_size)
    if labels is not None:
        frames = _join_labels(frames, table, labels, id_column, si, ti)
    return frames


def _times_from_names(table: pd.DataFrame, site: str | None) -> pd.DataFrame:
    """``table`` (``path``, ``stem``) with the ``time`` and ``site`` its names give: a
    ``YYYYMMDD_HHMM[SS]`` time, and a four-letter site between underscores (else ``site``).

    Raises
    ------
    ArgumentError
        If a name holds no time.
    """
    parsed = []
    for stem in table["stem"]:
        match = _NAME_TIME.search(stem)
        if match is None:
            raise ArgumentError(f"times: no YYYYMMDD_HHMM[SS] time in the name {stem!r}")
        date, hhmm, ss = match.groups()
        parsed.append(pd.Timestamp(f"{date}T{hhmm[:2]}:{hhmm[2:]}:{ss or '00'}"))
        found = _NAME_SITE.search(stem[: match.start()] + "_" + stem[match.end() :])
        table.loc[len(parsed) - 1, "site"] = found.group(1) if found else (site or "images")
    table["time"] = pd.DatetimeIndex(parsed).as_unit("ns")
    return table


def _times_from_table(
    table: pd.DataFrame, times: str | os.PathLike | pd.DataFrame, site: str | None
) -> pd.DataFrame:
    """``table`` (``path``, ``stem``) joined by file stem to the ``times`` table (``file``,
    ``time``, optionally ``site``); images it does not name are left out.

    Raises
    ------
    ArgumentError
        If the times table lacks ``file`` or ``time``, or names none of the images.
    """
    csv = times if isinstance(times, pd.DataFrame) else pd.read_csv(times)
    missing = {"file", "time"} - set(csv.columns)
    if missing:
        raise ArgumentError(f"times: the table has no column {sorted(missing)}")
    csv = csv.assign(stem=[os.path.splitext(os.path.basename(str(f)))[0] for f in csv["file"]])
    table = table.merge(csv.drop(columns="file"), on="stem", how="inner")
    if table.empty:
        raise ArgumentError("times: no row of the table names one of the images")
    table["time"] = pd.to_datetime(table["time"]).astype("datetime64[ns]")
    if "site" not in table:
        table["site"] = site or "images"
    return table


def _frames_of_grid(
    grid: np.ndarray,
    site_codes: list[str],
    time_values: np.ndarray,
    folder: str,
    pattern: str,
    chunk_size: int,
) -> xr.Dataset:
    """The lazy frames dataset of ``grid`` (site, time) of image paths ("" for none):
    ``chunk_size`` images a reading task."""
    # slots without an image (a site missing at a time) read nothing: status no_file
    chunk = max(1, int(chunk_size))
    files = da.from_array(
        grid, chunks=(1, chunk), name="read-images-" + tokenize(folder, pattern, grid)
    )
    records = files.map_blocks(
        _read_slots,
        dtype=_record(),
        meta=np.empty((0, 0), dtype=_record()),
        name="read-images-" + tokenize(folder, pattern, grid, "records"),
    )

    timestamp = time_values if np.issubdtype(time_values.dtype, np.datetime64) else None
    frames = xr.Dataset(
        {
            "images": (("site", "time", "y", "x"), _field(records, "images")),
            "timestamp": (("site", "time"), _field(records, "timestamp")),
            "frame_status": (("site", "time"), _field(records, "frame_status")),
            "file": (("site", "time"), grid),
        },
        coords={"site": np.array(site_codes, dtype=object), "time": time_values},
        attrs={"source": folder, "source_format": f"image folder ({pattern})"},
    )
    if timestamp is not None:
        frames["timestamp"] = (("site", "time"), np.broadcast_to(timestamp, grid.shape).copy())
        frames["timestamp"] = frames["timestamp"].where(grid != "")
    frames["frame_status"].attrs = frame_status_attrs()
    frames["images"].attrs = {"long_name": "image counts (8-bit images × 257)", "units": "1"}
    return frames


def _record():
    return RECORD


def _read_slots(paths: np.ndarray) -> np.ndarray:
    out = _read_images_block(np.where(paths == "", "", paths))
    out["frame_status"][paths == ""] = NO_FILE
    return out


def _join_labels(frames, table, labels, id_column, si, ti) -> xr.Dataset:
    csv = labels if isinstance(labels, pd.DataFrame) else pd.read_csv(labels)
    key = id_column or csv.columns[0]
    if key not in csv:
        raise ArgumentError(f"id_column: {key!r} is not a column of the labels table")
    csv = csv.assign(**{key: csv[key].astype(str).map(lambda s: os.path.splitext(s)[0])})
    joined = table[["stem"]].merge(csv, left_on="stem", right_on=key, how="left")
    for column in csv.columns:
        if column == key:
            continue
        values = joined[column].to_numpy()
        if np.issubdtype(values.dtype, np.number):
            grid = np.full(frames["frame_status"].shape, np.nan)
        else:
            grid = np.full(frames["frame_status"].shape, None, dtype=object)
        grid[si, ti] = values
        frames[str(column)] = (("site", "time"), grid)
    return frames
