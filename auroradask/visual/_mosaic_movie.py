"""Mosaic movies: :func:`auroradask.mosaic` over a time range, drawn on the workers.

The machinery is :func:`auroradask.movie`'s: the map (axes, graticule, title) is drawn once
with matplotlib as a background; the frames are drawn onto it with numpy and OpenCV, one
task per piece of a frames chunk (``_movie.split_chunks``: the reading tasks are the
frames' own, a piece never straddles two reads), and the client feeds the pieces window by
window, in time order, to ffmpeg (``_movie._write_video``), so memory stays bounded.

What differs is the sky: each video pixel inside a field of view shows the frame pixel whose
cell holds it (the mosaic's ``pcolormesh`` cells, looked up once on the client by
``skymaps.mesh_lookup``), so a worker only gathers ``frame.ravel()[index]``. Outlines and labels change colour with the
label of each slot, drawn by OpenCV as the movie's label box is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .._figure import new_figure
from .._palette import UNUSABLE, class_colors, rgb
from .._results import class_names
from .._schema import OK, SLOT
from ..errors import ArgumentError
from ..skymaps._projection import MapMesh, map_mesh, mesh_lookup, skymaps_at
from ._inputs import check_contrast, results_of
from ._mosaic import NO_RESULTS, check_sites, map_aspect, map_limits, stretch_of
from ._movie import (
    MovieInfo,
    _check_sizes,
    _threads,
    _windows,
    _write_video,
    frame_plan,
    split_chunks,
)

#: Slots sampled (evenly over the range) for each site's contrast stretch, one for the whole
#: movie so that nothing flickers.
STRETCH_SLOTS = 5


def mosaic_movie(
    frames: xr.Dataset,
    path: str | os.PathLike,
    *,
    skymaps: Any,
    altitude: float = 110,
    results: Any = None,
    sites: Any = None,
    min_elevation: float = 10,
    contrast: tuple[float, float] = (1, 99.5),
    speedup: float = 60.0,
    height: int = 512,
    frames_per_task: int = 20,
    window: int | None = None,
    group: str | None = None,
    codec: str = "libx264",
    quality: float | None = 7,
    progress: Any = None,
) -> MovieInfo:
    """Write a movie of a mosaic: every slot of ``frames`` on the map, with its labels.

    Each video frame is what :func:`auroradask.mosaic` draws at that slot: the sites'
    frames on a longitude–latitude map at ``altitude`` km, each field of view outlined in
    the colour of its label with the label and confidence, and the UT time.

    Parameters
    ----------
    frames
        A frames dataset of one or more sites; its chunks along time are the reading tasks.
    path
        The video file (``.mp4``).
    skymaps, altitude, results, sites, min_elevation, group
        As for :func:`auroradask.mosaic`. The skymap of each site is the one valid at the
        first slot; a range over which a site's skymap changes is refused (make two movies).
    contrast
        Percentiles of each site's visible counts, over a few slots spread over the range,
        mapped to black and white: one stretch per site for the whole movie.
    speedup, height, frames_per_task, window, codec, quality, progress
        As for :func:`auroradask.movie` (``height`` in pixels, a multiple of 16; the width
        follows the map's shape).

    Returns
    -------
    MovieInfo
    """
    _check_sizes(height, frames_per_task)
    contrast = check_contrast(contrast)
    sites = check_sites(frames, sites)
    frames = frames.sel(site=sites)
    times = frames["time"].values
    if len(times) == 0:
        raise ArgumentError("frames: no time slot to show")
    step, repeat, fps = frame_plan(speedup, len(times))
    maps = _skymaps_over(skymaps, sites, times)
    meshes = [map_mesh(maps[s], altitude, min_elevation) for s in sites]
    label, confidence, classes = _labels_over(results, sites, times, group)
    stretch = _stretches(frames, meshes, contrast)
    title = (
        f"{pd.Timestamp(times[0]):%Y-%m-%d %H:%M:%S} to "
        f"{pd.Timestamp(times[-1] + SLOT):%H:%M:%S} UT, {meshes[0].altitude:g} km, ×{speedup:g}"
    )
    background, to_pixel, (lonlat, flat) = _background(meshes, height, title)
    site_index = np.full(background.shape[:2], -1, dtype=np.int8)
    pixel_index = np.zeros(background.shape[:2], dtype=np.int32)
    site_index.flat[flat], pixel_index.flat[flat] = mesh_lookup(meshes, *lonlat.T)
    outlines = [np.round(to_pixel(m.outline)).astype(np.int32) for m in meshes]
    keep = np.arange(0, len(times), step)
    drawn, source_chunks, pieces = _drawn(
        frames,
        keep,
        frames_per_task,
        (times, label, confidence),
        background,
        site_index,
        pixel_index,
        outlines=outlines,
        stretch=stretch,
        classes=classes,
        sites=sites,
    )
    size = (background.shape[1], background.shape[0])
    groups = _windows(source_chunks, pieces, window or _threads())
    written = _write_video(
        Path(path), drawn, groups, size, fps, repeat, codec=codec, quality=quality,
        progress=progress,
    )  # fmt: skip
    return MovieInfo(Path(path), written, fps, size, len(keep), step, repeat)


def _skymaps_over(skymaps: Any, sites: list[str], times: np.ndarray) -> dict[str, xr.Dataset]:
    """The skymaps at the first slot, refused if one differs at the last."""
    first = skymaps_at(skymaps, sites, times[0])
    last = skymaps_at(skymaps, sites, times[-1])
    changed = [s for s in sites if first[s].attrs.get("path") != last[s].attrs.get("path")]
    if changed:
        raise ArgumentError(
            f"skymaps: the skymap of {changed} changes within {pd.Timestamp(times[0])} to "
            f"{pd.Timestamp(times[-1])}; make one movie on each side of the change"
        )
    return first


def _labels_over(results: Any, sites: list[str], times: np.ndarray, group: str | None):
    """``(site, time)`` label (-1: none) and confidence, and the class names."""
    label = np.full((len(sites), len(times)), -1, dtype=np.int16)
    confidence = np.zeros((len(sites), len(times)), dtype=np.float32)
    if results is None:
        return label, confidence, None
    results = results_of(results, group)
    have = [str(s) for s in results["site"].values]
    for i, site in enumerate(sites):
        if site not in have:
            continue
        one = results.sel(site=site)[["label", "confidence", "frame_status"]]
        one = one.reindex(time=times).compute()
        written = one["frame_status"].fillna(-1).values == OK
        label[i] = np.where(written, one["label"].fillna(-1).values, -1)
        confidence[i] = np.nan_to_num(one["confidence"].values)
    return label, confidence, class_names(results)


def _stretches(frames: xr.Dataset, meshes: list[MapMesh], contrast) -> np.ndarray:
    """``(site, 2)`` counts mapped to black and white, from a few valid slots per site."""
    n = frames.sizes["time"]
    sample = np.unique(np.linspace(0, n - 1, min(STRETCH_SLOTS, n)).round().astype(int))
    picked = frames[["images", "frame_status"]].isel(time=sample).compute()
    out = np.empty((len(meshes), 2))
    for i, mesh in enumerate(meshes):
        ok = picked["frame_status"].values[i] == OK
        images = picked["images"].values[i][ok]
        out[i] = stretch_of(images[:, mesh.visible], contrast)
    return out


def _background(meshes: list[MapMesh], height: int, title: str):
    """The map drawn once: ``(height, width, 3)`` uint8 (width a multiple of 16), lon/lat →
    pixel (x right, y down), and the lon/lat of every pixel inside the axes with its flat
    index."""
    limits = map_limits(meshes)
    west, east, south, north = limits
    shape = (north - south) * map_aspect(limits) / (east - west)  # height / width of the map
    width = int(16 * max(8, round(height / (0.85 * shape) / 16)))
    fig = new_figure(width / 100, height / 100, layout=None, dpi=100)
    ax = fig.add_axes((0.08, 0.1, 0.9, 0.8))
    ax.set_facecolor("#20242c")
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect(map_aspect(limits))
    ax.set_xlabel("geographic longitude (°E)", fontsize=8)
    ax.set_ylabel("geographic latitude (°N)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(color="#888888", linewidth=0.4, alpha=0.6)
    ax.set_title(title, fontsize=9)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    forward = ax.transData

    def to_pixel(lonlat: np.ndarray) -> np.ndarray:
        xy = forward.transform(np.asarray(lonlat, dtype=float))
        return np.column_stack([xy[:, 0], height - xy[:, 1]])

    (x0, y0), (x1, y1) = ax.get_window_extent().get_points()
    cols = np.arange(int(np.ceil(x0)), int(np.floor(x1)))
    rows = np.arange(int(np.ceil(height - y1)), int(np.floor(height - y0)))
    cc, rr = np.meshgrid(cols, rows)
    centres = np.column_stack([cc.ravel() + 0.5, height - rr.ravel() - 0.5])
    lonlat = forward.inverted().transform(centres)
    return image, to_pixel, (lonlat, rr.ravel() * width + cc.ravel())


def draw_mosaic_frames(
    images: np.ndarray,
    status: np.ndarray,
    times: np.ndarray,
    label: np.ndarray,
    confidence: np.ndarray,
    background: np.ndarray,
    site_index: np.ndarray,
    pixel_index: np.ndarray,
    *,
    outlines: list[np.ndarray],
    stretch: np.ndarray,
    classes: list[str] | None,
    sites: list[str],
) -> np.ndarray:
    """``(n, height, width, 3)`` uint8 video frames of the mosaic at each of ``times``:
    the sites' frames (``images`` ``(site, n, y, x)``) gathered into the map, outlines and
    labels in the label's colour (no frame: only the outline, grey)."""
    import cv2

    n = images.shape[1]
    out = np.empty((n, *background.shape), dtype=np.uint8)
    colors = [_bgr(c) for c in class_colors(classes or [])]
    where = [np.flatnonzero(site_index.ravel() == s) for s in range(len(sites))]
    source = [pixel_index.ravel()[w] for w in where]
    font = cv2.FONT_HERSHEY_SIMPLEX
    for k in range(n):
        frame = out[k]
        frame[:] = background
        flat = frame.reshape(-1, 3)
        for s, site in enumerate(sites):
            lo, hi = stretch[s]
            if status[s, k] == OK:
                values = images[s, k].ravel()[source[s]].astype(np.float32)
                flat[where[s]] = (np.clip((values - lo) / (hi - lo), 0, 1) * 255)[:, None]
            text, color = _site_text(site, status[s, k], label[s, k], confidence[s, k], classes)
            color = colors[label[s, k]] if color is None else color
            ring = outlines[s]
            cv2.polylines(frame, [ring], True, color, 2, cv2.LINE_AA)
            top = ring[np.argmin(ring[:, 1])]
            (w, h), _ = cv2.getTextSize(text, font, 0.45, 1)
            x, y = int(top[0] - w // 2), int(top[1] - 8)
            cv2.rectangle(frame, (x - 3, y - h - 4), (x + w + 3, y + 4), (0, 0, 0), -1)
            cv2.putText(frame, text, (x, y), font, 0.45, color, 1, cv2.LINE_AA)
        stamp = f"{pd.Timestamp(times[k]):%Y-%m-%d %H:%M:%S} UT"
        cv2.putText(frame, stamp, (8, 20), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)  # on white
    return out


def _bgr(color: str) -> tuple[int, int, int]:
    """``#rrggbb`` as the 0..255 triple OpenCV draws into an RGB frame (as the movie's)."""
    return tuple(int(round(255 * v)) for v in rgb(color))  # type: ignore[return-value]


def _site_text(site, status, label, confidence, classes) -> tuple[str, Any]:
    """A site's words and colour in one slot (colour None: the label's)."""
    if classes is None:
        return site, _bgr(NO_RESULTS)
    if status != OK:
        return f"{site}: no frame", _bgr(UNUSABLE)
    if label < 0:
        return f"{site}: not classified", _bgr(UNUSABLE)
    return f"{site}: {classes[label]} {confidence:.2f}", None


def _draw_block(images, status, times, label, confidence, background, sites_i, pixels, **kw):
    return draw_mosaic_frames(
        images, status, times, label, confidence, background, sites_i, pixels, **kw
    )


def _drawn(
    frames: xr.Dataset,
    keep: np.ndarray,
    frames_per_task: int,
    per_slot: tuple[np.ndarray, np.ndarray, np.ndarray],
    background: np.ndarray,
    site_index: np.ndarray,
    pixel_index: np.ndarray,
    **options: Any,
) -> tuple[da.Array, tuple[int, ...], tuple[int, ...]]:
    """The video frames of the slots ``keep``, lazily, in pieces of at most
    ``frames_per_task`` within one reading chunk (as the movie's)."""
    images = frames["images"].data
    status = frames["frame_status"].data
    if not isinstance(images, da.Array):
        images = da.from_array(np.asarray(images), chunks=(1, frames_per_task, -1, -1))
        status = da.from_array(np.asarray(status), chunks=(1, frames_per_task))
    images = images.rechunk({2: -1, 3: -1})
    images, status = images[:, keep], status.rechunk(images.chunks[:2])[:, keep]
    source_chunks = images.chunks[1]
    pieces = split_chunks(source_chunks, frames_per_task)
    images = images.rechunk({1: pieces})
    status = status.rechunk({1: pieces})
    times, label, confidence = per_slot
    whole = {"chunks": -1}
    drawn = da.blockwise(
        _draw_block,
        "tHWc",
        images,
        "styx",
        status,
        "st",
        da.from_array(times[keep], chunks=(pieces,)),
        "t",
        da.from_array(label[:, keep], chunks=(-1, pieces)),
        "st",
        da.from_array(confidence[:, keep], chunks=(-1, pieces)),
        "st",
        da.from_array(background, **whole),
        "HWc",
        da.from_array(site_index, **whole),
        "HW",
        da.from_array(pixel_index, **whole),
        "HW",
        concatenate=True,
        dtype=np.uint8,
        **options,
    )
    return drawn, source_chunks, pieces
