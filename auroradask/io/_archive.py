"""Finding minute files in a stream0 tree on any fsspec filesystem.

The University of Calgary archive lays raw THEMIS files out as::

    stream0/YYYY/MM/DD/<site>_<imager>/utHH/YYYYMMDD_HHMM_<site>_<imager>_full.pgm[.gz|.bz2]

Discovery lists only the day folders and the hour folders that a request touches, and
never opens a file. Reading happens later, on the workers, through :class:`Archive`, which
keeps a local copy of every remote file it reads so that a second pass downloads nothing.
"""

from __future__ import annotations

import base64
import bz2
import hashlib
import logging
import os
import posixpath
import re
import tempfile
import weakref
import zlib
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import fsspec
import numpy as np
import pandas as pd
from isal import isal_zlib

from .._config import cache_root, storage_options_for
from ..errors import ArgumentError, InputDataError, SourceNotFoundError

log = logging.getLogger(__name__)

#: File name of a raw minute file. Other modes (``_wide_``, ``_partial_`` …) do not match.
MINUTE_FILE = re.compile(
    r"^(?P<date>\d{8})_(?P<hhmm>\d{4})_(?P<site>[a-z0-9]+)_(?P<imager>[a-z0-9]+)_full"
    r"\.pgm(?P<suffix>\.gz|\.bz2)?$"
)

#: When the same minute exists in several forms, the order in which they are tried.
#: A plain ``.pgm`` is the cheapest to read; if it is unreadable the next form is read.
SUFFIX_PREFERENCE = {"": 0, ".gz": 1, ".bz2": 2}

LOCAL_PROTOCOLS = {"file", "local"}

#: Requests in flight at once when listing a remote tree or fetching a chunk's files: both are
#: small and bound by the round trip, not by bandwidth, so a few dozen overlap well while
#: staying polite to one server.
REMOTE_CONCURRENCY = 16

#: Archives opened in this process, by the URL their frames record as ``source``.
_OPENED: weakref.WeakValueDictionary[str, Archive] = weakref.WeakValueDictionary()


class TransportError(OSError):
    """Fetching a remote file failed on the way: an HTTP error status (404 included), a lost
    connection, or a body whose size or checksum is not the remote file's.

    Unlike an unreadable file it is not a fact about the archive, so the reader gives its
    slots ``file_unreachable`` (4), which a store never marks complete: the next run retries.
    """


class Candidate(NamedTuple):
    """One file that may hold a minute, and its size when the folder listing gave it."""

    path: str
    size: int | None = None


@dataclass(frozen=True)
class MinuteFile:
    """One minute of one site: its imager and the candidate files, in the order to try them."""

    imager: str
    paths: tuple[str, ...]
    #: Sizes of ``paths`` as the folder listing gave them (None where it gave none).
    sizes: tuple[int | None, ...] = ()

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        sizes = self.sizes or (None,) * len(self.paths)
        return tuple(Candidate(p, s) for p, s in zip(self.paths, sizes, strict=True))


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
    _sizes: dict[str, int] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        # the folder listings are for discovery on the client: tasks get the sizes they need
        # with their file names
        return {**self.__dict__, "_listing_cache": {}, "_sizes": {}}

    @property
    def is_local(self) -> bool:
        protocol = self.fs.protocol
        protocols = {protocol} if isinstance(protocol, str) else set(protocol)
        return bool(protocols & LOCAL_PROTOCOLS)

    def relative(self, path: str) -> str:
        """Path of ``path`` relative to the root of the tree."""
        return path[len(self.root) :].lstrip("/")

    def read_bytes(self, path: str, size: int | None = None) -> bytes:
        """Return the bytes of one file, from the local cache when it holds a whole copy.

        Parameters
        ----------
        path
            The file on :attr:`fs`.
        size
            Its size as the folder listing gave it, if it did: a cached copy of another size
            is fetched again, and a download of another size is refused.

        Raises
        ------
        OSError
            A local file cannot be read (missing, a symlink loop, no permission, I/O error).
        TransportError
            A remote file cannot be fetched whole. Nothing is cached then, so that a later
            run fetches it again instead of trusting a short copy.
        """
        if self.is_local:
            return self.fs.cat_file(path)
        local = None
        if self.cache_dir is not None:
            local = os.path.join(self.cache_dir, self.relative(path))
            cached = _read_cached(local, size)
            if cached is not None:
                return cached
        data = self._fetch(path, size)
        if local is not None:
            _write_cached(local, data)
        return data

    def _fetch(self, path: str, size: int | None) -> bytes:
        """Download one remote file and check it against the size (and checksum) the remote
        side announces, so that a body cut short is never taken for the file."""
        try:
            data = self.fs.cat_file(path)
        except Exception as error:  # noqa: BLE001 - every failure in transit is a transport one
            raise TransportError(f"cannot fetch {path}: {_describe(error)}") from error
        info: Mapping[str, Any] = {}
        if size is None:
            try:  # one HEAD request on HTTP: cheap beside the download it checks
                info = self.fs.info(path)
            except Exception as error:  # noqa: BLE001 - no size known: nothing to check
                log.debug("no size for %s: %s", path, _describe(error))
            size = info.get("size") if isinstance(info.get("size"), int) else None
        if size is not None and len(data) != size:
            raise TransportError(
                f"cannot fetch {path}: got {len(data)} bytes of {size}; not cached"
            )
        mismatch = _checksum_mismatch(data, info)
        if mismatch:
            raise TransportError(f"cannot fetch {path}: {mismatch}; not cached")
        if _cut_short(path, data):
            # a server may send part of a file with a Content-Length (and a HEAD) to match:
            # the sizes agree, but a compressed stream that stops before its end says so
            raise TransportError(
                f"cannot fetch {path}: the compressed stream stops before its end "
                f"({len(data)} bytes); not cached"
            )
        return data

    def list_names(self, directory: str) -> list[str]:
        """Names (not paths) in one folder of the tree; empty if the folder does not exist."""
        if directory not in self._listing_cache:
            self._keep_listing(directory, self._list(directory))
        return self._listing_cache[directory]

    def list_many(self, directories: Iterable[str]) -> None:
        """List folders ahead of :meth:`list_names`, several at once on a remote tree.

        A listing over HTTP or S3 costs one round trip and almost no bandwidth, so
        discovery of many sites and nights is bound by latency: listing the folders in a
        bounded thread pool (fsspec's async filesystems serve the threads from their one
        event loop) makes it as fast as the slowest of a few round trips instead of their
        sum. The listings kept are the same as one-by-one listing gives; errors surface when
        :meth:`list_names` is called for that folder, as before.
        """
        todo = list(dict.fromkeys(d for d in directories if d not in self._listing_cache))
        if self.is_local or len(todo) < 2:
            return
        workers = min(REMOTE_CONCURRENCY, len(todo))
        with ThreadPoolExecutor(workers, thread_name_prefix="auroradask-list") as pool:
            listings = list(pool.map(self._list_or_error, todo))
        for directory, listing in zip(todo, listings, strict=True):
            if not isinstance(listing, InputDataError):
                self._keep_listing(directory, listing)

    def _list_or_error(self, directory: str):
        try:
            return self._list(directory)
        except InputDataError as error:
            return error  # raised again by list_names, in order, on the caller's thread

    def _list(self, directory: str) -> list[tuple[str, int | None]]:
        """(name, size or None) of the entries of one folder; no state is changed, so that
        threads may list at once."""
        # remote listings carry sizes for free (object stores; not HTTP): keep them, to
        # check downloads and cached copies against them
        detail = not self.is_local
        try:
            entries = self.fs.ls(directory, detail=detail)
        except (FileNotFoundError, NotADirectoryError):
            entries = []
        except Exception as error:  # noqa: BLE001 - a folder we cannot list hides files
            raise InputDataError(
                f"cannot list folder {directory} of {self.url}: {_describe(error)}"
            ) from error
        listing = []
        for entry in entries:
            name = posixpath.basename(str(entry["name"] if detail else entry).rstrip("/"))
            size = entry.get("size") if detail else None
            is_file = isinstance(size, int) and entry.get("type", "file") == "file"
            listing.append((name, size if is_file else None))
        return listing

    def _keep_listing(self, directory: str, listing: list[tuple[str, int | None]]) -> None:
        for name, size in listing:
            if size is not None:
                self._sizes[posixpath.join(directory, name)] = size
        self._listing_cache[directory] = sorted(name for name, _ in listing)

    def fetch_many(self, candidates: Iterable[Candidate]) -> dict[str, bytes | OSError]:
        """:meth:`read_bytes` of several remote files at once: path to bytes or to the error.

        Minute files are small (about 1 MB) and a remote read of one is bound by the round
        trip, so a chunk's files are fetched a few at a time in a bounded thread pool. Each
        goes through :meth:`read_bytes`, so the local cache and the size checks are exactly
        those of one-by-one reading. Local trees are not read ahead (returns ``{}``).
        """
        todo = list(dict.fromkeys(candidates))
        if self.is_local or len(todo) < 2:
            return {}
        workers = min(REMOTE_CONCURRENCY, len(todo))
        with ThreadPoolExecutor(workers, thread_name_prefix="auroradask-fetch") as pool:
            fetched = pool.map(self._read_or_error, todo)
            return {c.path: result for c, result in zip(todo, fetched, strict=True)}

    def _read_or_error(self, candidate: Candidate) -> bytes | OSError:
        try:
            return self.read_bytes(candidate.path, candidate.size)
        except OSError as error:  # TransportError included: judged by the reader as before
            return error

    def site_folders(self, site: str, start: pd.Timestamp, end: pd.Timestamp) -> list[str]:
        """Folders ``YYYY/MM/DD/<site>_<imager>`` of the UT days that ``[start, end)`` touches."""
        folders = []
        for day in request_days(start, end):
            day_dir = self._day_dir(day)
            prefix = f"{site}_"
            folders += [
                posixpath.join(day_dir, n) for n in self.list_names(day_dir) if n.startswith(prefix)
            ]
        return folders

    def _day_dir(self, day: pd.Timestamp) -> str:
        return posixpath.join(self.root, day.strftime("%Y/%m/%d"))

    def sites_present(self, start: pd.Timestamp, end: pd.Timestamp) -> list[str]:
        """Site codes with a folder on the UT days that ``[start, end)`` touches."""
        codes = set()
        for day in request_days(start, end):
            names = self.list_names(self._day_dir(day))
            codes.update(n.split("_", 1)[0] for n in names if "_" in n)
        return sorted(codes)

    def _hour_folders(self, site_dir: str, start: pd.Timestamp, end: pd.Timestamp) -> list[str]:
        """The ``utHH`` folders of one site-day folder that ``[start, end)`` touches."""
        day = pd.Timestamp(self.relative(site_dir)[:10].replace("/", "-"))
        hours = pd.date_range(
            max(day, start.floor("h")),
            min(day + pd.Timedelta(days=1), end) - pd.Timedelta(1),
            freq="h",
        )
        return [posixpath.join(site_dir, hour.strftime("ut%H")) for hour in hours]

    def find_many(
        self, sites: Iterable[str], start: pd.Timestamp, end: pd.Timestamp
    ) -> list[dict[np.datetime64, MinuteFile]]:
        """:meth:`find_minute_files` of several sites, the folders listed in two rounds.

        The day folders of the request are listed at once, then the hour folders of every
        site at once (:meth:`list_many`); the files found are those of one-by-one discovery.
        """
        sites = list(sites)
        self.list_many(self._day_dir(day) for day in request_days(start, end))
        hours = {
            site_dir: self._hour_folders(site_dir, start, end)
            for site in sites
            for site_dir in self.site_folders(site, start, end)
        }
        if self._flat:
            self._list_trees(hours)
        self.list_many(hour_dir for folders in hours.values() for hour_dir in folders)
        return [self.find_minute_files(site, start, end) for site in sites]

    @property
    def _flat(self) -> bool:
        """Whether folders are only key prefixes (S3): one listing gives a whole subtree."""
        protocol = self.fs.protocol
        protocols = {protocol} if isinstance(protocol, str) else set(protocol)
        return bool(protocols & {"s3", "s3a"})

    def _list_trees(self, hours: dict[str, list[str]]) -> None:
        """On S3, list each site-day folder's whole subtree in one request (up to 1,000 keys
        a page) instead of its hour folders one by one, and keep the hour folders' listings
        from it (an hour folder absent from it is empty). Subtrees that cannot be listed are
        left to :meth:`list_many`."""

        def tree(site_dir: str):
            try:
                return self.fs.find(site_dir, detail=True)
            except Exception as error:  # noqa: BLE001 - listed folder by folder instead
                log.debug("cannot list %s whole: %s", site_dir, _describe(error))
                return None

        todo = [
            d for d, folders in hours.items() if any(h not in self._listing_cache for h in folders)
        ]
        with ThreadPoolExecutor(max(1, min(REMOTE_CONCURRENCY, len(todo)))) as pool:
            found = list(pool.map(tree, todo))
        for site_dir, entries in zip(todo, found, strict=True):
            if entries is None:
                continue
            by_folder: dict[str, list[tuple[str, int | None]]] = {}
            for path, info in entries.items():
                folder, _, name = path.rstrip("/").rpartition("/")
                size = info.get("size")
                is_file = isinstance(size, int) and info.get("type", "file") == "file"
                by_folder.setdefault(folder, []).append((name, size if is_file else None))
            for hour_dir in hours[site_dir]:
                self._keep_listing(hour_dir, by_folder.get(hour_dir, []))

    def find_minute_files(
        self, site: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> dict[np.datetime64, MinuteFile]:
        """Minute files of ``site`` whose minute overlaps ``[start, end)``.

        Lists each day folder the request touches once, and the ``utHH`` folders of the
        hours it touches; opens no file.
        """
        # compared as datetime64 strings' values: a pandas Timestamp per file costs seconds
        # over a few sites and nights
        first_minute = np.datetime64(start.floor("min").to_datetime64(), "m")
        stop = np.datetime64(end.to_datetime64(), "ns")
        found: dict[np.datetime64, list[tuple[str, str]]] = {}
        for site_dir in self.site_folders(site, start, end):
            for hour_dir in self._hour_folders(site_dir, start, end):
                for name in self.list_names(hour_dir):
                    match = MINUTE_FILE.match(name)
                    if match is None or match["site"] != site:
                        continue
                    date, hhmm = match["date"], match["hhmm"]
                    try:
                        minute = np.datetime64(
                            f"{date[:4]}-{date[4:6]}-{date[6:]}T{hhmm[:2]}:{hhmm[2:]}", "m"
                        )
                    except ValueError:
                        continue  # not a date (20141399_...): not a minute file
                    if not first_minute <= minute or not minute < stop:
                        continue
                    key = minute.astype("datetime64[ns]")
                    found.setdefault(key, []).append(
                        (match["imager"], posixpath.join(hour_dir, name))
                    )
        minutes = {}
        for key, entries in found.items():
            paths = tuple(sorted((p for _, p in entries), key=_preference))
            minutes[key] = MinuteFile(
                imager=entries[0][0], paths=paths, sizes=tuple(self._sizes.get(p) for p in paths)
            )
        return minutes


def request_days(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """The UT days that ``[start, end)`` touches."""
    return pd.date_range(start.floor("D"), (end - pd.Timedelta(1)).floor("D"), freq="D")


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _cut_short(path: str, data: bytes) -> bool:
    """Whether a .gz or .bz2 file's bytes end before its compressed stream does.

    Only a stream cut short counts: damaged data inside a whole stream is a fact about the
    file, which the reader reports as unreadable. One inflate through ISA-L (a few ms for a
    minute file, beside a download's round trip); zlib classifies what ISA-L refuses. An empty
    file is no stream at all: unreadable, not cut short.
    """
    if not data:
        return False
    if path.endswith(".gz"):
        try:
            isal_zlib.decompress(data, wbits=31)
            return False
        except (isal_zlib.error, OSError, ValueError):
            decoder = zlib.decompressobj(wbits=31)
    elif path.endswith(".bz2"):
        decoder = bz2.BZ2Decompressor()
    else:
        return False
    try:
        decoder.decompress(data)
    except (zlib.error, OSError, EOFError, ValueError):
        return False  # corrupt, not short
    return not decoder.eof


def _read_cached(local: str, size: int | None) -> bytes | None:
    """A cached copy's bytes, or None if there is none, it cannot be read, or its size is not
    the remote size (a copy left by an older version or a damaged disk: fetched again)."""
    try:
        with open(local, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        log.warning("cached copy %s cannot be read (%s): fetched again", local, _describe(error))
        return None
    if size is not None and len(data) != size:
        log.warning(
            "cached copy %s has %d bytes, the remote file %d: fetched again", local, len(data), size
        )
        return None
    return data


def _write_cached(local: str, data: bytes) -> None:
    """Keep a copy; a cache that cannot be written costs a download next time, nothing more."""
    tmp = None
    try:
        os.makedirs(os.path.dirname(local), exist_ok=True)
        # Write beside the target and rename: a worker killed mid-download never leaves a
        # partial file that a later run would take for the whole one.
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(local), prefix=".part-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, local)
    except OSError as error:
        log.warning("cannot keep a copy at %s: %s", local, _describe(error))
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


_DIGEST = re.compile(r"\s*([A-Za-z0-9-]+)=:?([A-Za-z0-9+/=]+):?\s*")
_DIGEST_ALGORITHMS = {"md5": hashlib.md5, "sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


def _checksum_mismatch(data: bytes, info: Mapping[str, Any]) -> str | None:
    """Check ``data`` against a ``Content-MD5`` or ``Digest`` the server sent (fsspec's HTTP
    ``info`` keeps them); None if they agree or none was sent. An ``ETag`` is opaque and is
    not used."""
    claims = []
    if info.get("Content-MD5"):
        claims.append(("md5", str(info["Content-MD5"])))
    for part in str(info.get("Digest") or "").split(","):
        match = _DIGEST.fullmatch(part)
        if match:
            claims.append((match[1].lower(), match[2]))
    for algorithm, value in claims:
        if algorithm not in _DIGEST_ALGORITHMS:
            continue
        digest = _DIGEST_ALGORITHMS[algorithm](data).digest()
        if base64.b64encode(digest).decode() != value.strip():
            return f"{algorithm} checksum differs from the server's"
    return None


def _preference(path: str) -> tuple[int, str]:
    # only names that MINUTE_FILE matched are ever candidates
    return (SUFFIX_PREFERENCE[MINUTE_FILE.match(posixpath.basename(path))["suffix"] or ""], path)


def default_cache_dir(url: str) -> str:
    """The default local cache folder for a remote source.

    The ``auroradask.cache`` setting, else ``$AURORADASK_CACHE`` if set, else the user cache
    folder that ``platformdirs`` finds (as pooch does: ``~/.cache/auroradask`` on Linux,
    ``~/Library/Caches/auroradask`` on macOS),
    followed by the host and path of the source, so that two archives never share files.
    """
    base = cache_root()
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
        Passed to the fsspec filesystem (credentials, headers, …), over the
        ``auroradask.storage-options`` setting for the URL's protocol.

    Raises
    ------
    ArgumentError
        If ``source`` is not a path or URL fsspec can open, or is a file rather than a folder.
    SourceNotFoundError
        If ``source`` does not exist.
    """
    url = os.fspath(source)
    if not url:
        raise ArgumentError("source: an empty string is not a path or URL")
    try:
        fs, root = fsspec.url_to_fs(url, **storage_options_for(url, storage_options))
    except (ValueError, ImportError) as error:
        raise ArgumentError(f"source: cannot open {url!r}: {error}") from None
    root = root.rstrip("/") or "/"
    try:
        is_folder = fs.isdir(root)
        exists = is_folder or fs.exists(root)
    except Exception as error:  # noqa: BLE001 - any transport error means we cannot read it
        raise SourceNotFoundError(f"source: cannot reach {url!r}: {error}") from None
    if not exists:
        raise SourceNotFoundError(f"source: {url!r} does not exist")
    if not is_folder:
        raise ArgumentError(
            f"source: {url!r} is a file, not a folder: give the root of a stream0 tree "
            "(the folder holding YYYY/MM/DD/<site>_<imager>/utHH/)"
        )
    archive = Archive(fs=fs, root=root, url=url)
    if archive.is_local and "://" not in url:
        # provenance must say where, from anywhere: "archive" alone says nothing elsewhere
        archive.url = os.path.abspath(url)
    if not archive.is_local and cache is not False:
        if cache is None or cache is True:
            archive.cache_dir = default_cache_dir(url)
        else:
            archive.cache_dir = os.fspath(cache)
    _OPENED[archive.url] = archive  # to_zarr probes that each worker sees it
    return archive


def opened_archive(url: str) -> Archive | None:
    """The archive this process opened for ``url`` (what frames record as ``source``), so
    that workers are probed through the same filesystem object, credentials included."""
    return _OPENED.get(url)
