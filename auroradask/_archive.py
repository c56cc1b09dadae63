"""Finding minute files in a stream0 tree on any fsspec filesystem.

The University of Calgary archive lays raw THEMIS files out as::

    stream0/YYYY/MM/DD/<site>_<imager>/utHH/YYYYMMDD_HHMM_<site>_<imager>_full.pgm[.gz|.bz2]

Discovery lists only the day folders and the hour folders that a request touches, and
never opens a file. Reading happens later, on the workers, through :class:`Archive`, which
keeps a local copy of every remote file it reads so that a second pass downloads nothing.
"""

from __future__ import annotations

import os
import posixpath
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import platformdirs

from .errors import ArgumentError, SourceNotFoundError

#: File name of a raw minute file. Other modes (``_wide_``, ``_partial_`` …) do not match.
MINUTE_FILE = re.compile(
    r"^(?P<date>\d{8})_(?P<hhmm>\d{4})_(?P<site>[a-z0-9]+)_(?P<imager>[a-z0-9]+)_full"
    r"\.pgm(?P<suffix>\.gz|\.bz2)?$"
)

#: When the same minute exists in several forms, the order in which they are tried.
#: A plain ``.pgm`` is the cheapest to read; if it is unreadable the next form is read.
SUFFIX_PREFERENCE = {"": 0, ".gz": 1, ".bz2": 2}

LOCAL_PROTOCOLS = {"file", "local"}


@dataclass(frozen=True)
class MinuteFile:
    """One minute of one site: its imager and the candidate files, in the order to try them."""

    imager: str
    paths: tuple[str, ...]


@dataclass
class Archive:
    """A stream0 tree on some filesystem, and where remote files are cached locally.

    Parameters
    ----------
    fs
        The fsspec filesystem holding the tree.
    root
        The root of the stream0 tree on ``fs`` (a path for ``fs``, no protocol).
    url
        The source as the user gave it, kept for provenance.
    cache_dir
        Local directory for copies of remote files, or None to read remote files every time.
        Local sources are never copied.
    """

    fs: fsspec.AbstractFileSystem
    root: str
    url: str
    cache_dir: str | None = None
    _listing_cache: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        # the folder listings are for discovery on the client: tasks never need them
        return {**self.__dict__, "_listing_cache": {}}

    @property
    def is_local(self) -> bool:
        protocol = self.fs.protocol
        protocols = {protocol} if isinstance(protocol, str) else set(protocol)
        return bool(protocols & LOCAL_PROTOCOLS)

    def relative(self, path: str) -> str:
        """Path of ``path`` relative to the root of the tree."""
        return path[len(self.root) :].lstrip("/")

    def read_bytes(self, path: str) -> bytes:
        """Return the bytes of one file, from the local cache when it has them."""
        if self.is_local or self.cache_dir is None:
            return self.fs.cat_file(path)
        local = os.path.join(self.cache_dir, self.relative(path))
        if os.path.exists(local):
            with open(local, "rb") as f:
                return f.read()
        data = self.fs.cat_file(path)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        # Write beside the target and rename: a worker killed mid-download never leaves a
        # partial file that a later run would take for the whole one.
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(local), prefix=".part-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, local)
        return data

    def list_names(self, directory: str) -> list[str]:
        """Names (not paths) in one folder of the tree; empty if the folder does not exist."""
        if directory not in self._listing_cache:
            try:
                entries = self.fs.ls(directory, detail=False)
            except (FileNotFoundError, NotADirectoryError):
                entries = []
            self._listing_cache[directory] = sorted(
                posixpath.basename(str(e).rstrip("/")) for e in entries
            )
        return self._listing_cache[directory]

    def find_minute_files(
        self, site: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> dict[np.datetime64, MinuteFile]:
        """Minute files of ``site`` whose minute overlaps ``[start, end)``.

        Lists each day folder the request touches once, and the ``utHH`` folders of the
        hours it touches; opens no file.
        """
        first_minute = start.floor("min")
        found: dict[np.datetime64, MinuteFile] = {}
        for day in pd.date_range(start.floor("D"), (end - pd.Timedelta(1)).floor("D"), freq="D"):
            day_dir = posixpath.join(self.root, day.strftime("%Y/%m/%d"))
            prefix = f"{site}_"
            site_dirs = [n for n in self.list_names(day_dir) if n.startswith(prefix)]
            if not site_dirs:
                continue
            hours = pd.date_range(
                max(day, start.floor("h")),
                min(day + pd.Timedelta(days=1), end) - pd.Timedelta(1),
                freq="h",
            )
            for site_dir in site_dirs:
                for hour in hours:
                    hour_dir = posixpath.join(day_dir, site_dir, hour.strftime("ut%H"))
                    for name in self.list_names(hour_dir):
                        match = MINUTE_FILE.match(name)
                        if match is None or match["site"] != site:
                            continue
                        minute = pd.Timestamp(
                            f"{match['date']}T{match['hhmm'][:2]}:{match['hhmm'][2:]}"
                        )
                        if not first_minute <= minute < end:
                            continue
                        key = np.datetime64(minute.to_datetime64(), "ns")
                        path = posixpath.join(hour_dir, name)
                        previous = found.get(key)
                        paths = (path,) if previous is None else (*previous.paths, path)
                        found[key] = MinuteFile(
                            imager=match["imager"] if previous is None else previous.imager,
                            paths=tuple(sorted(paths, key=_preference)),
                        )
        return found


def _preference(path: str) -> tuple[int, str]:
    # only names that MINUTE_FILE matched are ever candidates
    return (SUFFIX_PREFERENCE[MINUTE_FILE.match(posixpath.basename(path))["suffix"] or ""], path)


def default_cache_dir(url: str) -> str:
    """The default local cache folder for a remote source.

    ``$AURORADASK_CACHE`` if set, else the user cache folder that ``platformdirs`` finds (as
    pooch does: ``~/.cache/auroradask`` on Linux, ``~/Library/Caches/auroradask`` on macOS),
    followed by the host and path of the source, so that two archives never share files.
    """
    base = os.environ.get("AURORADASK_CACHE") or platformdirs.user_cache_dir("auroradask")
    tail = re.sub(r"^[a-z0-9+.-]+://", "", url.strip()).strip("/")
    tail = re.sub(r"[^A-Za-z0-9._/-]", "_", tail)
    return os.path.join(base, *[p for p in tail.split("/") if p not in ("", "..", ".")])


def open_archive(
    source: str | os.PathLike,
    *,
    cache: str | os.PathLike | bool | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Archive:
    """Open the root of a stream0 tree.

    Parameters
    ----------
    source
        A local path or any fsspec URL of the root of a stream0 tree.
    cache
        Where remote files are kept once read: a directory, ``None`` or ``True`` for the
        default (:func:`default_cache_dir`), ``False`` to read them anew on every compute.
        Ignored for local sources.
    storage_options
        Passed to the fsspec filesystem (credentials, headers, …).

    Raises
    ------
    ArgumentError
        If ``source`` is not a path or URL fsspec can open.
    SourceNotFoundError
        If ``source`` does not exist.
    """
    url = os.fspath(source)
    if not url:
        raise ArgumentError("source: an empty string is not a path or URL")
    try:
        fs, root = fsspec.url_to_fs(url, **dict(storage_options or {}))
    except (ValueError, ImportError) as error:
        raise ArgumentError(f"source: cannot open {url!r}: {error}") from None
    root = root.rstrip("/") or "/"
    try:
        exists = fs.exists(root) or fs.isdir(root)
    except Exception as error:  # noqa: BLE001 - any transport error means we cannot read it
        raise SourceNotFoundError(f"source: cannot reach {url!r}: {error}") from None
    if not exists:
        raise SourceNotFoundError(f"source: {url!r} does not exist")
    archive = Archive(fs=fs, root=root, url=url)
    if not archive.is_local and cache is not False:
        if cache is None or cache is True:
            archive.cache_dir = default_cache_dir(url)
        else:
            archive.cache_dir = os.fspath(cache)
    return archive
