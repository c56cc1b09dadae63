"""The right skymap per site and time, from a skymap tree (local or any fsspec URL).

UCalgary publishes skymaps beside the raw archive as::

    skymaps/<site>/<site>_YYYYMMDD/themis_skymap_<site>_YYYYMMDD-+_vNN.sav

where ``YYYYMMDD`` is the date from which the skymap is valid (until the next one). For a
frame at time t the right skymap is the one with the latest valid-from date not after t
(the date counts from 00:00 UT), and of those the highest version (a version that is not a
number, as ``vXX``, ranks below every numbered one).
"""

from __future__ import annotations

import os
import posixpath
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd

from .._schema import OK
from ..errors import ArgumentError, InputDataError
from ..io._archive import Archive, open_archive
from ._skymap import elevation_map, read_skymap, site_elevations

SKYMAP_FILE = re.compile(
    r"^themis_skymap_(?P<site>[a-z0-9]+)_(?P<date>\d{8})-(?P<until>\+|\d{8})"
    r"_v(?P<version>[0-9A-Za-z]+)\.sav$"
)


@dataclass(frozen=True)
class SkymapEntry:
    """One skymap file of a tree."""

    site: str
    valid_from: pd.Timestamp
    version: int  # -1 where the name's version is not a number
    path: str  # on the tree's filesystem
    relative: str  # relative to the tree's root: what provenance names


@dataclass
class SkymapTree:
    """A skymap tree, opened by :func:`open_skymaps`: finds the skymap valid at a time.

    Attributes
    ----------
    archive
        The tree's filesystem and cache (as for raw frames).
    fallback
        Elevation source for frames before a site's first skymap (None: an error).
    """

    archive: Archive
    fallback: Any = None
    _entries: dict[str, list[SkymapEntry]] = field(default_factory=dict, repr=False)
    _skymaps: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        return self.archive.url

    def entries(self, site: str) -> list[SkymapEntry]:
        """Every skymap of ``site`` in the tree, by valid-from date then version."""
        if site not in self._entries:
            found = []
            site_dir = posixpath.join(self.archive.root, site)
            for folder in self.archive.list_names(site_dir):
                if not re.fullmatch(rf"{re.escape(site)}_\d{{8}}", folder):
                    continue
                for listed in self.archive.list_names(posixpath.join(site_dir, folder)):
                    name = unquote(listed)  # HTTP listings give "-%2B_v02.sav" for "-+_v02"
                    match = SKYMAP_FILE.match(name)
                    if match is None or match["site"] != site:
                        continue
                    version = int(match["version"]) if match["version"].isdigit() else -1
                    path = posixpath.join(site_dir, folder, listed)
                    found.append(
                        SkymapEntry(
                            site,
                            pd.Timestamp(match["date"]),
                            version,
                            path,
                            self.archive.relative(path),
                        )
                    )
            self._entries[site] = sorted(found, key=lambda e: (e.valid_from, e.version))
        return self._entries[site]

    def select_index(
        self, site: str, times: np.ndarray
    ) -> tuple[list[SkymapEntry | None], np.ndarray]:
        """The candidates (``None`` first: before the first skymap) and, for each of
        ``times``, the position of the one valid then: vectorised, for a site-year of slots."""
        best: dict[pd.Timestamp, SkymapEntry] = {}
        for entry in self.entries(site):  # sorted: the highest version of a date wins
            best[entry.valid_from] = entry
        dates = sorted(best)
        starts = np.array([d.to_datetime64() for d in dates], dtype="datetime64[ns]")
        index = np.searchsorted(starts, np.asarray(times, dtype="datetime64[ns]"), side="right")
        return [None] + [best[d] for d in dates], index

    def select(self, site: str, times: np.ndarray) -> list[SkymapEntry | None]:
        """For each of ``times``, the skymap valid then (None before the first one)."""
        candidates, index = self.select_index(site, times)
        return [candidates[i] for i in index]

    def skymap(self, entry: SkymapEntry) -> Any:
        """One skymap of the tree as :func:`read_skymap` reads it (read once, cached like raw
        files): elevation, azimuth and, where the file has them, the mapping grids."""
        if entry.path not in self._skymaps:
            try:
                if self.archive.is_local:
                    skymap = read_skymap(entry.path)
                else:
                    data = self.archive.read_bytes(entry.path)
                    fd, tmp = tempfile.mkstemp(suffix=".sav")
                    try:
                        with os.fdopen(fd, "wb") as f:
                            f.write(data)
                        skymap = read_skymap(tmp)
                    finally:
                        os.unlink(tmp)
            except OSError as error:
                raise InputDataError(f"skymaps: cannot read {entry.relative}: {error}") from None
            if skymap.attrs["site"] and skymap.attrs["site"] != entry.site:
                raise InputDataError(
                    f"skymaps: {entry.relative} holds the skymap of site "
                    f"{skymap.attrs['site']!r}, not {entry.site!r}"
                )
            skymap.attrs["path"] = entry.relative
            self._skymaps[entry.path] = skymap
        return self._skymaps[entry.path]

    def elevation(self, entry: SkymapEntry) -> np.ndarray:
        """The elevation map of one skymap of the tree (read once, cached like raw files)."""
        return self.skymap(entry)["elevation"].values


def open_skymaps(
    source: str | os.PathLike,
    *,
    fallback: Any = None,
    cache: str | os.PathLike | bool | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> SkymapTree:
    """Open a skymap tree: ``<site>/<site>_YYYYMMDD/themis_skymap_<site>_YYYYMMDD-+_vNN.sav``.

    Pass the result (or the path or URL itself, as ``skymaps=``) to
    :func:`auroradask.preprocess` or :func:`auroradask.classify`: every frame then gets the
    skymap of its site valid at its time.

    Parameters
    ----------
    source
        Local folder or fsspec URL of the tree's root (the folder holding ``<site>/``), e.g.
        ``https://data.phys.ucalgary.ca/sort_by_project/THEMIS/asi/skymaps/``.
    fallback
        Elevation source (anything ``elevation=`` takes, e.g. ``"circle"``) for frames before
        a site's first skymap. Default None: such frames are an error.
    cache, storage_options
        As for :func:`auroradask.open_archive`: remote skymaps are kept locally once read.
    """
    try:
        archive = open_archive(source, cache=cache, storage_options=storage_options)
    except ArgumentError as error:
        raise type(error)(str(error).replace("source:", "skymaps:", 1)) from None
    return SkymapTree(archive, fallback)


def resolve_per_slot(
    tree: SkymapTree, sites: list[str], times: np.ndarray, valid: np.ndarray | None = None
) -> tuple[list[np.ndarray], np.ndarray, dict[str, Any]]:
    """Elevation maps for every (site, time) slot from a tree.

    Returns
    -------
    elevations, index, provenance
        The distinct elevation maps (a stack), ``index(site, time)`` int16 into it, and per
        site the list of ``{"skymap", "start", "end"}`` periods (the file relative to the
        tree, first and last slot it serves).

    Raises
    ------
    ArgumentError
        If a slot lies before the site's first skymap and the tree has no fallback.
    """

    stack: list[np.ndarray] = []
    keys: dict[str, int] = {}
    index = np.zeros((len(sites), len(times)), dtype=np.int16)
    provenance: dict[str, Any] = {}
    for i, site in enumerate(sites):
        candidates, chosen = tree.select_index(site, times)
        periods = []
        if (chosen == 0).any() and tree.fallback is None:
            first = times[np.argmax(chosen == 0)]
            entries = tree.entries(site)
            have = (
                f"its first skymap is valid from {entries[0].valid_from:%Y-%m-%d}"
                if entries
                else f"the tree has no skymap of {site} (looked in {site}/{site}_YYYYMMDD/)"
            )
            raise ArgumentError(
                f"skymaps: no skymap of site {site!r} at {pd.Timestamp(first)} in "
                f"{tree.url!r}: {have}; pass a fallback (open_skymaps(..., fallback='circle')) "
                "to use another elevation map before it"
            )
        change = np.r_[0, np.flatnonzero(np.diff(chosen)) + 1, len(times)]
        for lo, hi in zip(change[:-1], change[1:], strict=True):
            entry = candidates[chosen[lo]]
            if entry is None:
                elevation, description = elevation_map(tree.fallback)
                key = f"fallback {description}"
            else:
                elevation, key = tree.elevation(entry), entry.relative
            if key not in keys:
                keys[key] = len(stack)
                stack.append(elevation)
            index[i, lo:hi] = keys[key]
            periods.append(
                {
                    "skymap": key,
                    "start": str(pd.Timestamp(times[lo])),
                    "end": str(pd.Timestamp(times[hi - 1])),
                }
            )
        provenance[site] = periods
    return stack, index, provenance


#: The ways a skymap can be misplaced against frames: each maps an array as it would be seen
#: if the skymap (or the frames) had been stored that way.
SYMMETRIES = {
    "turned 180 degrees": lambda a: a[::-1, ::-1],
    "flipped up-down": lambda a: a[::-1],
    "flipped left-right": lambda a: a[:, ::-1],
    "transposed": lambda a: a.T,
    "rotated 90 degrees": lambda a: np.rot90(a, 1),
    "rotated 270 degrees": lambda a: np.rot90(a, 3),
    "anti-transposed": lambda a: np.rot90(a, 2).T,
}


def lens_mismatch(frame: np.ndarray, elevation: np.ndarray) -> int:
    """Pixels where the frame's dark area (outside the lens) and the skymap's "no sky" (NaN)
    disagree. ``frame`` is the median of a few frames: dark below half way between its 5th
    and 60th percentiles (the lens edge is a sharp step)."""
    frame = np.asarray(frame, dtype=np.float64)
    low, high = np.percentile(frame, [5, 60])
    dark = frame < (low + high) / 2
    return int(np.sum(np.isnan(elevation) != dark))


def alignment(frame: np.ndarray, elevation: np.ndarray, tolerance: float = 0.95) -> dict[str, Any]:
    """How well an elevation map lines up with frames, against its 7 flips and rotations.

    Returns ``{"mismatch", "best_other", "best_other_mismatch", "ok"}``: not ok when a flip or
    rotation of the map fits the frames' dark corners clearly better (its mismatch below
    ``tolerance`` × the map's own): the map is flipped, turned, or not this imager's.
    """
    own = lens_mismatch(frame, elevation)
    others = {name: lens_mismatch(frame, f(elevation)) for name, f in SYMMETRIES.items()}
    best = min(others, key=others.get)
    return {
        "mismatch": own,
        "best_other": best,
        "best_other_mismatch": others[best],
        "ok": not others[best] < tolerance * own,
    }


def resolve_tree(elevation: Any, skymaps: str | SkymapTree | None) -> SkymapTree | None:
    """The skymap tree that ``elevation``/``skymaps`` name, or None for a single map."""
    if isinstance(elevation, SkymapTree):
        if skymaps is not None:
            raise ArgumentError("skymaps: give the skymap tree as elevation= or skymaps=, not both")
        return elevation
    if skymaps is None:
        if isinstance(elevation, str) and elevation == "archive":
            raise ArgumentError(
                "skymaps: elevation='archive' needs skymaps=PATH|URL (a skymap tree)"
            )
        return None
    if not (isinstance(elevation, str) and elevation in ("archive", "circle")):
        raise ArgumentError(
            "elevation: with skymaps= the skymap tree gives the elevation maps; pass "
            "elevation='archive' (or leave it out), or a fallback via open_skymaps(fallback=)"
        )
    return skymaps if isinstance(skymaps, SkymapTree) else open_skymaps(skymaps)


def check_skymap(
    frames,
    elevation: Any = "circle",
    skymaps: str | SkymapTree | None = None,
    *,
    max_frames: int = 20,
    tolerance: float = 0.95,
    raise_error: bool = True,
) -> dict[str, dict[str, Any]]:
    """Check per site that the elevation map and the frames line up.

    Reads up to ``max_frames`` valid frames of each site (from its first chunk holding any)
    and compares their dark corners (outside the lens) with the map's field of view, and
    with the map flipped and turned every way (:func:`alignment`). A map that some flip fits
    better is flipped, turned or another imager's. Only meaningful for real skymaps (an ideal
    circle has every symmetry).

    Returns
    -------
    dict
        site → :func:`alignment`'s result plus ``"skymap"`` (what was checked) and
        ``"frames"`` (how many frames were used); sites without valid frames are left out.

    Raises
    ------
    InputDataError
        If ``raise_error`` and a site's map does not line up; the message names the site, the
        map, and the flip that fits better.
    """

    tree = resolve_tree(elevation, skymaps)
    sites = [str(s) for s in frames["site"].values]
    images, status = frames["images"], frames["frame_status"]
    chunks = images.chunks[1] if images.chunks else (images.sizes["time"],)
    edges = np.cumsum((0, *chunks))
    report: dict[str, dict[str, Any]] = {}
    for i, site in enumerate(sites):
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            ok = np.flatnonzero(np.asarray(status[i, lo:hi].values) == OK)[:max_frames]
            if ok.size:
                break
        else:
            continue
        stack = np.asarray(images[i, lo:hi].values)[ok]
        median = np.median(stack, axis=0)
        when = frames["time"].values[lo + ok[0]]
        if tree is not None:
            entry = tree.select(site, np.array([when]))[0]
            if entry is None:
                continue
            elevation_i, what = tree.elevation(entry), entry.relative
        else:
            maps, sources = site_elevations([site], elevation)
            elevation_i, what = maps[0], sources[site]
        result = alignment(median, elevation_i, tolerance)
        report[site] = {**result, "skymap": what, "frames": int(ok.size)}
    bad = {s: r for s, r in report.items() if not r["ok"]}
    if bad and raise_error:
        raise InputDataError(
            "skymap: the field of view does not line up with the frames' dark corners for "
            + "; ".join(
                f"site {s!r} ({r['skymap']}: {r['mismatch']} pixels disagree; "
                f"{r['best_other']} it would be {r['best_other_mismatch']})"
                for s, r in bad.items()
            )
            + ": the skymap is flipped, turned, or not this imager's"
        )
    return report
