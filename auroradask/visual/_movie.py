"""Movies of frames with the classifier's label and confidence drawn on each, beside the
keogram of the whole interval with a cursor at the frame's time.

Watching the frames with the labels beside them is how a classifier is checked. The video
frames are drawn in parallel on the cluster: one task per piece of a frames chunk reads its
frames (the reading tasks are the frames' own) and draws them with numpy and OpenCV on a
background drawn once with matplotlib (keogram, label strip, UT axis). The client takes the
drawn pieces window by window, in time order, and feeds them to ffmpeg (``imageio-ffmpeg``
ships the binary), so memory stays bounded by a window, whatever the movie's length.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .._figure import new_figure
from .._palette import NO_FRAME, UNWRITTEN, class_colors, rgb
from .._results import class_names
from .._schema import OK, SLOT
from ..errors import ArgumentError
from ._inputs import check_contrast, results_of
from ._keogram import KEOGRAM, keogram
from ._keogram_plot import keogram_image

#: Frames per second of the video are kept in this range: faster data is subsampled, slower
#: data is shown by repeating frames (players handle a video of 0.3 fps badly).
MAX_FPS, MIN_FPS = 30.0, 10.0


@dataclass(frozen=True)
class MovieInfo:
    """What :func:`movie` wrote: the file, its frame count and rate, and the data it shows."""

    path: Path
    frames: int  #: video frames written
    fps: float
    size: tuple[int, int]  #: (width, height) in pixels
    data_frames: int  #: data slots drawn (before repeating)
    step: int  #: every ``step``-th slot is drawn
    repeat: int  #: each drawn slot is shown this many video frames


def frame_plan(speedup: float, n_slots: int) -> tuple[int, int, float]:
    """``(step, repeat, fps)`` for showing 3-second slots ``speedup`` times faster than real
    time: every ``step``-th slot, each ``repeat`` times, at ``fps`` frames per second."""
    if isinstance(speedup, bool) or not isinstance(speedup, int | float) or not speedup > 0:
        raise ArgumentError(f"speedup: expected a positive number, got {speedup!r}")
    rate = float(speedup) / pd.Timedelta(SLOT).total_seconds()  # slots per video second
    step, repeat = 1, 1
    if rate > MAX_FPS:
        step = math.ceil(rate / MAX_FPS)
    elif rate < MIN_FPS:
        repeat = math.ceil(MIN_FPS / rate)
    return step, repeat, rate / step * repeat


def _one_site(frames: xr.Dataset, site: str | None) -> tuple[str, xr.Dataset]:
    """The site to show and its frames; an error without images, site or time slot."""
    if "images" not in frames:
        raise ArgumentError("frames: no 'images' variable; open frames with open_themis")
    sites = [str(s) for s in frames["site"].values]
    if site is None:
        if len(sites) != 1:
            raise ArgumentError(f"site: the frames hold sites {sites}; choose one with site=")
        site = sites[0]
    if site not in sites:
        raise ArgumentError(f"site: the frames have no site {site!r}; they hold {sites}")
    if frames.sizes["time"] == 0:
        raise ArgumentError("frames: no time slot to show")
    return site, frames.sel(site=[site])


def _labels(results: Any, site: str, times: np.ndarray, group: str | None):
    """Label, confidence (per slot of ``times``), class names and the stored keogram."""
    if results is None:
        return np.full(len(times), -1), np.full(len(times), np.nan), [], None
    results = results_of(results, group)
    if site not in [str(s) for s in results["site"].values]:
        raise ArgumentError(f"results: no site {site!r} in the results")
    one = results.sel(site=site).reindex(time=times)
    label = one["label"].fillna(-1).values.astype(int)
    status = one["frame_status"].fillna(-1).values
    label = np.where(status >= 0, label, -1)
    keo = None
    if KEOGRAM in one:
        written = status >= 0
        keo = one[KEOGRAM].isel(time=np.flatnonzero(written)).compute() if written.any() else None
    return label, one["confidence"].values, class_names(results), keo


def _background(
    keo_image: np.ndarray,
    label: np.ndarray,
    classes: list[str],
    times: np.ndarray,
    size: tuple[int, int],
    title: str,
    ends: tuple[str, str],
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The keogram panel drawn once: ``(height, width, 3)`` uint8 and the pixel box
    ``(left, right, top, bottom)`` of the time axis where the cursor runs."""
    import matplotlib.dates as mdates
    from matplotlib.colors import ListedColormap

    width, height = size
    fig = new_figure(width / 100, height / 100, layout=None, dpi=100)
    keo_ax = fig.add_axes((0.1, 0.3, 0.84, 0.6))
    strip = fig.add_axes((0.1, 0.2, 0.84, 0.05), sharex=keo_ax)
    t0 = mdates.date2num(times[0])
    t1 = mdates.date2num(times[-1] + SLOT)
    from matplotlib import colormaps

    keo_ax.imshow(
        np.ma.masked_invalid(keo_image),
        aspect="auto",
        cmap=colormaps["gray"].with_extremes(bad=NO_FRAME),
        vmin=0,
        vmax=1,
        extent=(t0, t1, keo_image.shape[0] - 0.5, -0.5),
        interpolation="antialiased",
    )
    keo_ax.set_yticks([])
    keo_ax.set_ylabel("keogram", fontsize=9)
    for y, text, va in ((1.0, ends[0], "top"), (0.0, ends[1], "bottom")):
        keo_ax.text(-0.01, y, text, transform=keo_ax.transAxes, ha="right", va=va, weight="bold")
    keo_ax.set_title(title, fontsize=10)
    keo_ax.tick_params(labelbottom=False)
    n = len(classes)
    colors = class_colors(classes)
    code = np.where(label >= 0, label, n)
    strip.imshow(
        code[None, :],
        aspect="auto",
        interpolation="nearest",
        cmap=ListedColormap([*colors, UNWRITTEN]),
        vmin=-0.5,
        vmax=n + 0.5,
        extent=(t0, t1, 0, 1),
    )
    strip.set_yticks([])
    strip.set_ylabel("label", rotation=0, ha="right", va="center", fontsize=8)
    strip.set_xlim(t0, t1)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    strip.xaxis.set_major_locator(locator)
    strip.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    strip.tick_params(labelsize=8)
    strip.set_xlabel("UT", fontsize=9)
    for k, name in enumerate(classes):
        fig.text(0.1 + 0.84 * k / max(n, 1), 0.04, f"■ {name}", color=colors[k], fontsize=8)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    (x0, y0), (x1, _) = keo_ax.get_window_extent().get_points()
    _, (_, y1) = keo_ax.get_window_extent().get_points()
    (_, ys0), _ = strip.get_window_extent().get_points()
    box = (int(round(x0)), int(round(x1)), int(round(height - y1)), int(round(height - ys0)))
    return image, box


def draw_frames(
    images: np.ndarray,
    status: np.ndarray,
    times: np.ndarray,
    label: np.ndarray,
    confidence: np.ndarray,
    *,
    background: np.ndarray,
    box: tuple[int, int, int, int],
    span: tuple[np.datetime64, np.datetime64],
    classes: list[str],
    site: str,
    stretch: tuple[float, float],
    panel: int,
) -> np.ndarray:
    """``(n, height, width, 3)`` uint8 video frames: each sky frame (north up, east left),
    its time, label and confidence, beside ``background`` with a cursor at its time."""
    import cv2

    n = len(images)
    height = background.shape[0]
    out = np.empty((n, height, panel + background.shape[1], 3), dtype=np.uint8)
    lo, hi = stretch
    colors = [tuple(int(round(255 * v)) for v in rgb(c)) for c in class_colors(classes)]
    t0, t1 = (np.int64(t.astype("datetime64[ns]").astype(np.int64)) for t in span)
    left, right, top, bottom = box
    font = cv2.FONT_HERSHEY_SIMPLEX
    for k in range(n):
        frame = out[k]
        frame[:, panel:] = background
        sky = np.clip((images[k].astype(np.float32) - lo) / max(hi - lo, 1.0), 0, 1)
        sky = cv2.resize((sky * 255).astype(np.uint8), (panel, panel), interpolation=cv2.INTER_AREA)
        frame[:panel, :panel] = sky[..., None]
        if panel < height:
            frame[panel:, :panel] = 0
        when = pd.Timestamp(times[k])
        cv2.putText(
            frame,
            f"{site} {when:%Y-%m-%d %H:%M:%S} UT",
            (8, 22),
            font,
            0.55,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
        cv2.putText(frame, "N", (panel // 2 - 6, 44), font, 0.6, (255, 210, 0), 2, cv2.LINE_AA)
        cv2.putText(frame, "E", (6, panel // 2 + 6), font, 0.6, (255, 210, 0), 2, cv2.LINE_AA)
        if status[k] != OK:
            text, color = "no frame", (200, 200, 200)
        elif label[k] >= 0:
            text, color = f"{classes[label[k]]}  {confidence[k]:.2f}", colors[label[k]]
        elif classes:
            text, color = "not classified", (200, 200, 200)
        else:
            text, color = "", (0, 0, 0)
        if text:
            (w, h), _ = cv2.getTextSize(text, font, 0.8, 2)
            cv2.rectangle(frame, (4, panel - h - 22), (16 + w, panel - 6), (0, 0, 0), -1)
            cv2.rectangle(frame, (4, panel - h - 22), (12, panel - 6), color, -1)
            cv2.putText(frame, text, (14, panel - 14), font, 0.8, color, 2, cv2.LINE_AA)
        now = np.int64(np.datetime64(times[k], "ns").astype(np.int64))
        x = panel + left + int(round((now - t0) / max(t1 - t0, 1) * (right - left)))
        frame[top:bottom, max(x - 1, panel) : x + 1] = (230, 30, 30)
    return out


def _draw_block(images, status, times, label, confidence, background, **options):
    return draw_frames(images, status, times, label, confidence, background=background, **options)


def movie(
    frames: xr.Dataset,
    path: str | os.PathLike,
    *,
    results: Any = None,
    site: str | None = None,
    speedup: float = 60.0,
    height: int = 512,
    contrast: tuple[float, float] = (1, 99.5),
    frames_per_task: int = 20,
    window: int | None = None,
    group: str | None = None,
    codec: str = "libx264",
    quality: float | None = 7,
    progress: Any = None,
    **keogram_options: Any,
) -> MovieInfo:
    """Write a movie of one site's frames, with labels, beside its keogram.

    Parameters
    ----------
    frames
        A frames dataset (any source); one site, or name it with ``site``. Its chunks along
        time are the reading tasks; each is drawn in pieces of ``frames_per_task``.
    path
        The video file (``.mp4``; any container ffmpeg knows).
    results
        A results store or dataset: the label and confidence drawn on each frame, the label
        strip under the keogram and, if it holds one, the stored keogram (else the keogram is
        computed from ``frames``: a first, cheap pass over them).
    site
        The site to show when ``frames`` holds several.
    speedup
        Times faster than real time (default 60: an hour of frames in a minute of video).
        Above 90 (30 frames a second) every n-th frame is shown; below 30 frames are
        repeated, so the video plays at 10 to 30 frames a second.
    height
        Video height in pixels (a multiple of 16; the width follows: sky panel plus keogram).
    contrast
        Percentiles of the keogram's counts mapped to black and white, for every frame alike
        (a per-frame stretch would flicker).
    frames_per_task
        Frames drawn per task.
    window
        Pieces drawn at once (default: enough for every thread of the cluster or machine,
        rounded up to whole frames chunks, so that no chunk is read twice). Memory on the
        client is about ``window × frames_per_task`` video frames (2 MB each at 512 px).
    group
        Group inside the results store.
    codec, quality
        ffmpeg's codec and imageio-ffmpeg's quality (0-10) for it.
    progress
        Called with the number of video frames written so far, after each window.
    **keogram_options
        Passed to :func:`auroradask.keogram` when it is computed from ``frames``.

    Returns
    -------
    MovieInfo
    """
    _check_sizes(height, frames_per_task)
    contrast = check_contrast(contrast)
    site, one = _one_site(frames, site)
    times = one["time"].values
    step, repeat, fps = frame_plan(speedup, len(times))
    label, confidence, classes, keo = _labels(results, site, times, group)
    if keo is None or keogram_options:
        keo = keogram(one, **keogram_options).isel(site=0).compute()
    keo_unit, stretch = _keogram_unit(keo, times, contrast)

    panel = height
    keo_width = int(16 * round(height * 1.5 / 16))
    title = f"{site}: {pd.Timestamp(times[0]):%Y-%m-%d %H:%M:%S} to {pd.Timestamp(times[-1] + SLOT):%H:%M:%S} UT, ×{speedup:g}"
    ends = (keo.attrs.get("first_end", "N"), keo.attrs.get("last_end", "S"))
    background, box = _background(keo_unit, label, classes, times, (keo_width, height), title, ends)
    keep = np.arange(0, len(times), step)
    drawn, source_chunks, pieces = _drawn_pieces(
        one,
        keep,
        frames_per_task,
        (times, label, np.nan_to_num(confidence, nan=-1.0)),
        background,
        box=box,
        span=(times[0], times[-1] + SLOT),
        classes=classes,
        site=site,
        stretch=stretch,
        panel=panel,
    )
    groups = _windows(source_chunks, pieces, window or _threads())
    size = (panel + keo_width, height)
    path = Path(path)
    written = _write_video(
        path, drawn, groups, size, fps, repeat, codec=codec, quality=quality, progress=progress
    )
    return MovieInfo(path, written, fps, size, len(keep), step, repeat)


def _check_sizes(height: Any, frames_per_task: Any) -> None:
    if isinstance(height, bool) or not isinstance(height, int) or height < 128 or height % 16:
        raise ArgumentError(f"height: expected a multiple of 16 of at least 128, got {height!r}")
    if (
        isinstance(frames_per_task, bool)
        or not isinstance(frames_per_task, int)
        or frames_per_task < 1
    ):
        raise ArgumentError(
            f"frames_per_task: expected a whole number >= 1, got {frames_per_task!r}"
        )


def _keogram_unit(
    keo: xr.DataArray, times: np.ndarray, contrast: tuple[float, float]
) -> tuple[np.ndarray, tuple[float, float]]:
    """The keogram on the slots ``times`` scaled to 0..1 between two percentiles of its
    counts (NaN where no frame), and those counts ``(lo, hi)``: the stretch of every frame."""
    keo_counts = keogram_image(keo, times)
    finite = keo_counts[np.isfinite(keo_counts)]
    lo, hi = np.percentile(finite, contrast) if finite.size else (0.0, 1.0)
    keo_unit = np.clip((keo_counts - lo) / max(hi - lo, 1.0), 0, 1)
    keo_unit[~np.isfinite(keo_counts)] = np.nan
    return keo_unit, (float(lo), float(hi))


def _drawn_pieces(
    one: xr.Dataset,
    keep: np.ndarray,
    frames_per_task: int,
    per_slot: tuple[np.ndarray, ...],
    background: np.ndarray,
    **options: Any,
) -> tuple[da.Array, tuple[int, ...], tuple[int, ...]]:
    """The video frames of the slots ``keep``, lazily, in pieces of at most
    ``frames_per_task`` that never straddle a reading chunk; with the reading chunks and the
    pieces (after subsampling), for :func:`_windows`."""
    images = one["images"].data[0]
    status = one["frame_status"].data[0]
    if not isinstance(images, da.Array):
        images = da.from_array(np.asarray(images), chunks=(frames_per_task, -1, -1))
        status = da.from_array(np.asarray(status), chunks=(frames_per_task,))
    if images.numblocks[1:] != (1, 1):
        images = images.rechunk({1: -1, 2: -1})
    images, status = images[keep], status.rechunk(images.chunks[0])[keep]
    source_chunks = images.chunks[0]
    pieces = split_chunks(source_chunks, frames_per_task)
    images = images.rechunk({0: pieces})
    status = status.rechunk((pieces,))
    meta = [da.from_array(values[keep], chunks=(pieces,)) for values in per_slot]
    height, width = background.shape[:2]
    drawn = da.blockwise(
        _draw_block,
        "tHWc",
        images,
        "tyx",
        status,
        "t",
        *[x for m in meta for x in (m, "t")],
        da.from_array(background, chunks=-1),
        "Hwc",
        new_axes={"W": options["panel"] + width},
        concatenate=True,
        dtype=np.uint8,
        adjust_chunks={"H": height},
        **options,
    )
    return drawn, source_chunks, pieces


def split_chunks(source_chunks: tuple[int, ...], frames_per_task: int) -> tuple[int, ...]:
    """Each reading chunk's frames in pieces of at most ``frames_per_task``, never one
    straddling two chunks (a piece's frames come from one read)."""
    return tuple(
        size
        for chunk in source_chunks
        for size in [frames_per_task] * (chunk // frames_per_task)
        + ([chunk % frames_per_task] if chunk % frames_per_task else [])
    )


def _write_video(
    path: Path,
    drawn: da.Array,
    groups: list[tuple[int, int]],
    size: tuple[int, int],
    fps: float,
    repeat: int,
    *,
    codec: str,
    quality: float | None,
    progress: Any,
) -> int:
    """Compute the pieces window by window, in time order, and feed them to ffmpeg; the
    number of video frames written."""
    import imageio_ffmpeg  # deferred: only movies need ffmpeg

    writer = imageio_ffmpeg.write_frames(
        str(path),
        size,
        fps=fps,
        codec=codec,
        quality=quality,
        macro_block_size=16,
        ffmpeg_log_level="error",
    )
    writer.send(None)
    written = 0
    try:
        for first, stop in groups:
            blocks = dask.compute(*[drawn.blocks[i] for i in range(first, stop)])
            for block in blocks:
                for frame in block:
                    for _ in range(repeat):
                        writer.send(np.ascontiguousarray(frame))
                        written += 1
            if progress is not None:
                progress(written)
    finally:
        writer.close()
    return written


def _threads() -> int:
    try:
        from distributed import get_client

        client = get_client()
        return max(1, sum(client.nthreads().values()))
    except (ImportError, ValueError):
        return max(1, os.cpu_count() or 1)


def _windows(
    source_chunks: tuple[int, ...], pieces: tuple[int, ...], threads: int
) -> list[tuple[int, int]]:
    """Ranges of pieces drawn at once: whole source chunks (a chunk read once), at least
    ``threads`` pieces when chunks are small."""
    bounds, at, total = [], 0, 0
    piece_ends = np.cumsum(pieces)
    chunk_ends = np.cumsum(source_chunks)
    first = 0
    for end in chunk_ends:
        stop = int(np.searchsorted(piece_ends, end, side="right"))
        total = stop - first
        if total >= threads or end == chunk_ends[-1]:
            bounds.append((first, stop))
            first = stop
        at = stop
    del at
    return bounds
