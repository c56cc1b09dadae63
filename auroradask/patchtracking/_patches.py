"""Auroral patches, lazily over a frames dataset: :func:`patches` and :func:`patch_counts`.

The kernels (``_detect``: background, threshold, regions, georeferencing) run on numpy
stacks of one site's frames; this module wraps them for dask. The background needs
neighbouring frames, so it runs through ``dask.array.map_overlap`` along time (``depth`` =
half the window, no padding at the ends of the series); a chunk's result is then exactly
what the whole series would give. Detection runs per chunk through ``map_blocks`` and gives
one ``(table, counts)`` per (site, time) chunk (:func:`patch_blocks`). :func:`patches`
computes them, links the patches into tracks (``_tracks``) and returns a
:class:`PatchResult` (``_result``); :func:`patch_counts` keeps the counts lazy, for a
results store.

Geometry (pixel areas in km², pixel-centre positions) comes from the skymap:
:func:`auroradask.read_patch_geometry` in ``_skymap.py``; each site's geometry and field of
view are resolved here, once, before the blocks are built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize

from .._schema import OK
from ..errors import ArgumentError
from ..preprocessing._preprocess import field_of_view
from ..skymaps._skymap import ElevationSource, PatchGeometry, elevation_map, read_patch_geometry
from ._detect import BACKGROUNDS, PATCH_COLUMNS, detect_frames, running_background
from ._result import PatchResult
from ._tracks import link_patches, summarize_tracks


def _resolve_geometry(skymap: Any, altitude_km: float) -> PatchGeometry | None:
    if skymap is None or isinstance(skymap, PatchGeometry):
        return skymap
    if isinstance(skymap, str | os.PathLike):
        return read_patch_geometry(skymap, altitude_km)
    raise ArgumentError(
        f"skymap: expected a skymap .sav path or a PatchGeometry, got {type(skymap).__name__}"
    )


# ---------------------------------------------------------------------------- lazy layer


@dataclass(frozen=True)
class PatchOptions:
    """What :func:`patches` does; see its docstring for each field."""

    background: str = "min"
    window: int = 21
    threshold: str | float = "otsu"
    relative: float | None = None
    floor: float = 500.0
    min_area: int = 10
    smooth: float = 1.0
    min_elevation: float = 15.0

    def check(self) -> PatchOptions:
        if self.background not in BACKGROUNDS:
            raise ArgumentError(
                f"background: expected one of {BACKGROUNDS}, got {self.background!r}"
            )
        if not (isinstance(self.window, int) and self.window >= 2):
            raise ArgumentError(
                "window: expected at least 2 frames (a background of one frame is the frame "
                "itself and leaves no excess; background='none' uses none), "
                f"got {self.window!r}"
            )
        if isinstance(self.threshold, str) and self.threshold not in ("otsu", "relative"):
            raise ArgumentError(
                f"threshold: expected 'otsu', 'relative' or a number, got {self.threshold!r}"
            )
        if not isinstance(self.min_area, int) or self.min_area < 1:
            raise ArgumentError(f"min_area: expected a positive integer, got {self.min_area!r}")
        return self


def _background_block(block: np.ndarray, method: str, window: int) -> np.ndarray:
    # block: (sites, time, y, x) float32 with NaN frames
    return np.stack([running_background(b, method, window) for b in block])


def _detect_block(
    images: np.ndarray,
    background: np.ndarray,
    status: np.ndarray,
    *,
    times: np.ndarray,
    sites: np.ndarray,
    fovs: list[np.ndarray],
    geometries: list[PatchGeometry | None],
    options: PatchOptions,
    block_info=None,
) -> np.ndarray:
    (s0, _), (t0, t1) = block_info[0]["array-location"][:2]
    out = np.empty((1, 1), dtype=object)
    tables, counts = [], []
    for j in range(images.shape[0]):
        site = s0 + j
        table, c = detect_frames(
            images[j],
            background[j],
            fovs[site],
            valid=status[j, :, 0, 0] == OK,
            threshold=options.threshold,
            relative=options.relative,
            floor=options.floor,
            min_area=options.min_area,
            smooth=options.smooth,
            geometry=geometries[site],
        )
        table.insert(0, "time", times[t0:t1][table.pop("frame").to_numpy()])
        table.insert(0, "site", str(sites[site]))
        tables.append(table)
        counts.append(c)
    out[0, 0] = (pd.concat(tables, ignore_index=True), np.stack(counts))
    return out


def patch_blocks(
    frames: xr.Dataset,
    *,
    elevation: ElevationSource | None = None,
    skymap: Any = None,
    altitude_km: float = 110.0,
    options: PatchOptions | None = None,
) -> da.Array:
    """Lazy detection: a dask array of objects, one ``(table, counts)`` per chunk.

    Shape ``(site chunks, time chunks)``; computing block ``(i, j)`` reads and processes
    only chunk ``(i, j)`` of ``frames.images`` and half a background window of frames on
    either side of it (``map_overlap``). :func:`patches` computes and assembles them.
    """
    options = (options or PatchOptions()).check()
    sites = frames["site"].values
    geometries, fovs = _site_geometry(sites, elevation, skymap, altitude_km, options)
    images = _images(frames)
    status = frames["frame_status"].data
    if not isinstance(status, da.Array):
        status = da.from_array(status, chunks=images.chunks[:2])
    status = status.rechunk(images.chunks[:2])
    valid = (status == OK)[:, :, None, None]
    stack = da.where(valid, images.astype(np.float32), np.float32(np.nan))
    half = options.window // 2
    # a series shorter than half a window: its one chunk is the whole series (dask refuses
    # an overlap deeper than the array)
    half = min(half, len(frames["time"]))
    if options.background == "none":
        background = da.zeros_like(stack)
    else:
        if min(images.chunks[1]) < half:
            stack = stack.rechunk({1: max(half, max(images.chunks[1]))})
        background = stack.map_overlap(
            _background_block,
            depth={0: 0, 1: half, 2: 0, 3: 0},
            boundary="none",
            dtype=np.float32,
            method=options.background,
            window=options.window,
        ).rechunk(images.chunks)
    return da.map_blocks(
        _detect_block,
        images,
        background,
        status[:, :, None, None],  # 4-d, so that blockwise aligns it on (site, time)
        drop_axis=[2, 3],
        chunks=((1,) * len(images.chunks[0]), (1,) * len(images.chunks[1])),
        dtype=object,
        meta=np.empty((0, 0), dtype=object),
        times=frames["time"].values,
        sites=sites,
        fovs=fovs,
        geometries=geometries,
        options=options,
        name="detect-patches-"
        + tokenize(images, background, status, sites, fovs, geometries, options, frames["time"]),
    )


def _images(frames: xr.Dataset) -> da.Array:
    """The frames as a dask array (numpy-backed frames: one chunk per site)."""
    images = frames["images"].data
    if not isinstance(images, da.Array):
        images = da.from_array(images, chunks=(1, -1, -1, -1))
    return images


def _site_geometry(sites, elevation, skymap, altitude_km, options):
    from collections.abc import Mapping

    def one(value):
        return _resolve_geometry(value, altitude_km)

    if isinstance(skymap, Mapping):
        missing = [s for s in sites if s not in skymap]
        if missing:
            raise ArgumentError(f"skymap: no skymap given for sites {missing!r}")
        geometries = [one(skymap[s]) for s in sites]
    else:
        shared = one(skymap)
        geometries = [shared] * len(sites)
    fovs = []
    for site, geometry in zip(sites, geometries, strict=True):
        source = elevation.get(site) if isinstance(elevation, Mapping) else elevation
        if source is None:
            source = geometry.elevation if geometry is not None else "circle"
        fovs.append(field_of_view(elevation_map(source)[0], options.min_elevation))
    return geometries, fovs


# ---------------------------------------------------------------------------- public


def patches(
    frames: xr.Dataset,
    *,
    elevation: ElevationSource | None = None,
    skymap: Any = None,
    altitude_km: float = 110.0,
    background: str = "min",
    window: int = 21,
    threshold: str | float = "otsu",
    relative: float | None = None,
    floor: float = 500.0,
    min_area: int = 10,
    smooth: float = 1.0,
    min_elevation: float = 15.0,
    max_distance: float = 6.0,
    max_gap: int = 3,
) -> PatchResult:
    """Detect auroral patches in every frame, georeference them and link them into tracks.

    Per frame: subtract a running background over time, smooth, threshold within the field
    of view, label connected regions (8-connectivity) and keep those of ``min_area`` pixels
    or more. Computes with the current dask scheduler (a ``distributed.Client`` if one is
    active); the lazy form is :func:`patch_blocks`.

    Parameters
    ----------
    frames
        From :func:`auroradask.open_themis`: ``images(site, time, y, x)``, ``frame_status``.
    elevation
        Field-of-view source (as for :func:`auroradask.classify`); default: the skymap's
        elevation when ``skymap`` is given, else the ideal fisheye ``"circle"``.
    skymap
        A skymap ``.sav`` path, a :class:`PatchGeometry`, or a mapping site → either; gives
        the areas in km² and the centroids' latitude/longitude. Without it those are NaN.
    altitude_km
        Emission altitude: one of the skymap's mapping altitudes (90, 110, 150 km).
    background, window
        ``"min"`` (running minimum), ``"median"`` over ``window`` frames (at least 2)
        centred on each frame, or ``"none"`` (raw counts).
    threshold, relative, floor
        ``"otsu"`` (per frame, never below ``floor`` counts of excess), ``"relative"``
        (excess above ``relative`` × background, default 0.1) or a number: counts of excess.
    min_area, smooth, min_elevation
        Smallest patch in pixels; Gaussian smoothing (pixels) of the excess before the
        threshold (0: none); field-of-view elevation limit in degrees (a pixel exactly on
        it is in the field of view).
    max_distance, max_gap
        Linking: largest centroid step in pixels per frame; frames a track may miss.

    Returns
    -------
    PatchResult
    """
    options = PatchOptions(
        background, window, threshold, relative, floor, min_area, smooth, min_elevation
    ).check()
    blocks = patch_blocks(
        frames, elevation=elevation, skymap=skymap, altitude_km=altitude_km, options=options
    )
    computed = blocks.compute()
    sites = frames["site"].values
    times = frames["time"].values
    counts = np.full((len(sites), len(times)), -1, dtype=np.int32)
    tables = []
    chunks = _images(frames).chunks
    s_edges = np.concatenate([[0], np.cumsum(chunks[0])])
    t_edges = np.concatenate([[0], np.cumsum(chunks[1])])
    for i in range(computed.shape[0]):
        for j in range(computed.shape[1]):
            table, c = computed[i, j]
            counts[s_edges[i] : s_edges[i + 1], t_edges[j] : t_edges[j + 1]] = c
            tables.append(table)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=PATCH_COLUMNS)
    table = table.sort_values(["site", "time", "patch"], ignore_index=True)
    table["track"] = link_patches(table, max_distance=max_distance, max_gap=max_gap)
    tracks = summarize_tracks(table, altitude_km=altitude_km)
    attrs = {
        **{k: v for k, v in options.__dict__.items()},
        "altitude_km": altitude_km,
        "max_distance": max_distance,
        "max_gap": max_gap,
    }
    count_da = xr.DataArray(
        counts,
        dims=("site", "time"),
        coords={"site": frames["site"], "time": frames["time"]},
        name="patch_count",
        attrs={"long_name": "auroral patches in the frame (-1: frame not ok)"},
    )
    return PatchResult(table, count_da, tracks, attrs)


def patch_counts(
    frames: xr.Dataset,
    *,
    elevation: ElevationSource | None = None,
    skymap: Any = None,
    altitude_km: float = 110.0,
    options: PatchOptions | None = None,
) -> xr.DataArray:
    """Patches per frame, lazily: ``patch_count(site, time)`` int16, -1 where the frame is not ok.

    The count :func:`patches` gives, in the frames' chunks, so it can go into a results store
    with the labels: ``auroradask.to_zarr(classify(frames, model).assign(patch_count=
    patch_counts(frames)), store)`` reads each chunk of frames once for both, and the count is
    written, resumed and extended like the labels (an extra variable of the store).

    Parameters
    ----------
    frames, elevation, skymap, altitude_km
        As for :func:`patches`.
    options
        Detection options (:class:`PatchOptions`: background, window, threshold, relative,
        floor, min_area, smooth, min_elevation); default: those of :func:`patches`.

    Returns
    -------
    xarray.DataArray
        dask-backed, chunked like ``frames.images`` along site and time; attributes record
        the detection options.
    """
    options = (options or PatchOptions()).check()
    blocks = patch_blocks(
        frames, elevation=elevation, skymap=skymap, altitude_km=altitude_km, options=options
    )
    counts = da.map_blocks(
        _block_counts,
        blocks,
        chunks=_images(frames).chunks[:2],
        dtype=np.int16,
        meta=np.empty((0, 0), dtype=np.int16),
        name="count-patches-" + tokenize(blocks),
    )
    attrs = {
        "long_name": "auroral patches in the frame",
        "comment": "-1: frame not ok (not searched); detection options in patch_*",
        **{f"patch_{k}": _attr(v) for k, v in options.__dict__.items()},
        "patch_altitude_km": altitude_km,
    }
    return xr.DataArray(
        counts,
        dims=("site", "time"),
        coords={"site": frames["site"], "time": frames["time"]},
        name="patch_count",
        attrs=attrs,
    )


def _block_counts(block: np.ndarray) -> np.ndarray:
    return block[0, 0][1].astype(np.int16)


def _attr(value: Any) -> Any:
    """A netCDF/Zarr-friendly attribute value (None has no netCDF form)."""
    return "none" if value is None else value
