"""The xarray backend: ``xr.open_dataset(file, engine="themis")`` on one stream0 minute file
or one THEMIS L1 CDF hour file, and so ``xr.open_mfdataset(files, engine="themis",
combine="by_coords")`` over many, as cfgrib and rioxarray give their users.

Each file opens as the frames data model of :func:`auroradask.open_themis` (``images``,
``timestamp``, ``frame_status`` and the header variables on ``(site, time)`` 3-second slots;
coords ``site``, ``time``, ``imager``, ``latitude``, ``longitude``), restricted to the slots of
the file's own minute (stream0) or hour (CDF), lazily: the file is read when the values are.
The same reading kernels as the archive openers are used, so the frames are identical.

A file does not need to sit in a stream0 tree: its name says its site and minute
(``YYYYMMDD_HHMM_<site>_<imager>_full.pgm[.gz|.bz2]``) or site and hour
(``thg_l1_asf_<site>_YYYYMMDDHH_vNN.cdf``), as the archives name them. A file named otherwise
is refused with the name it should have.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xarray.backends import BackendEntrypoint

from .._schema import SLOT
from ..errors import ArgumentError, SourceNotFoundError
from ._archive import MINUTE_FILE, Candidate, open_archive
from ._cdf import HOUR_FILE, THUMBNAIL_FILE, open_themis_cdf, thumbnail_error
from ._stream0 import frames_dataset, read_records


def _path(filename_or_obj: Any) -> str:
    if not isinstance(filename_or_obj, str | os.PathLike):
        raise ArgumentError(
            "filename_or_obj: the themis engine opens a file path (a stream0 minute file or "
            f"an L1 CDF hour file), not {type(filename_or_obj).__name__}"
        )
    return os.fspath(filename_or_obj)


def open_minute_file(path: str) -> xr.Dataset:
    """The frames of one stream0 minute file: 20 slots of its site, lazily read.

    Parameters
    ----------
    path
        A local file named ``YYYYMMDD_HHMM_<site>_<imager>_full.pgm`` (or ``.pgm.gz``,
        ``.pgm.bz2``), anywhere on disk.

    Returns
    -------
    xarray.Dataset
        The frames data model over the minute's 3-second slots (one site).
    """
    name = os.path.basename(path)
    match = MINUTE_FILE.match(name)
    if match is None:
        raise ArgumentError(
            f"filename_or_obj: {name!r} is not named as a stream0 minute file "
            "(YYYYMMDD_HHMM_<site>_<imager>_full.pgm[.gz|.bz2]): the name gives its site and "
            "minute"
        )
    if not os.path.isfile(path):
        raise SourceNotFoundError(f"filename_or_obj: {path!r} does not exist")
    minute = pd.Timestamp(f"{match['date']}T{match['hhmm']}").to_datetime64()
    times = np.arange(minute, minute + np.timedelta64(1, "m"), SLOT, dtype="datetime64[ns]")
    archive = open_archive(os.path.dirname(os.path.abspath(path)), cache=False)
    files = np.empty((1, 1), dtype=object)
    files[0, 0] = ((Candidate(os.path.abspath(path)),),)
    records = read_records(archive, files, times, (times.size,))
    frames = frames_dataset(records, [match["site"]], times, [match["imager"]], {"source": path})
    frames["timestamp"].attrs = {"long_name": "Image request start (UT)"}
    return frames


def open_hour_file(path: str) -> xr.Dataset:
    """The frames of one THEMIS L1 CDF hour file (``thg_l1_asf``): 1,200 slots, lazily read."""
    name = os.path.basename(path)
    if THUMBNAIL_FILE.match(name):
        raise thumbnail_error(name)
    match = HOUR_FILE.match(name)
    if match is None:
        raise ArgumentError(
            f"filename_or_obj: {name!r} is not named as an L1 CDF hour file "
            "(thg_l1_asf_<site>_YYYYMMDDHH_vNN.cdf)"
        )
    hour = pd.Timestamp(f"{match['hour'][:8]}T{match['hour'][8:]}")
    return open_themis_cdf(path, match["site"].lower(), hour, hour + pd.Timedelta(hours=1))


class ThemisBackendEntrypoint(BackendEntrypoint):
    """``engine="themis"``: THEMIS ASI stream0 minute files and L1 CDF hour files."""

    description = "THEMIS all-sky imager frames: stream0 minute files (.pgm[.gz]), L1 CDF hours"
    url = "https://github.com/auroradask/auroradask"
    open_dataset_parameters = ("filename_or_obj", "drop_variables")

    def open_dataset(self, filename_or_obj: Any, *, drop_variables: Any = None) -> xr.Dataset:
        """Open one file as the frames data model (see the module docstring)."""
        path = _path(filename_or_obj)
        name = os.path.basename(path)
        if name.lower().endswith(".cdf"):
            frames = open_hour_file(path)
        else:
            frames = open_minute_file(path)
        if drop_variables is not None:
            names = [drop_variables] if isinstance(drop_variables, str) else list(drop_variables)
            frames = frames.drop_vars(names, errors="ignore")
        return frames

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """True for file names the archives give these files."""
        try:
            name = os.path.basename(os.fspath(filename_or_obj))
        except TypeError:
            return False
        return bool(MINUTE_FILE.match(name) or HOUR_FILE.match(name))
