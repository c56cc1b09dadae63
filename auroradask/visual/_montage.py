"""Montages: grids of frames, to check a model (or a cluster of embeddings) at a glance.

:func:`montage` draws any stack of 2-D images in a grid, each stretched between two
percentiles of its own counts (sky frames span 3,000 to 65,535 counts, and one bright frame
would darken a shared scale). :func:`class_montage` picks frames a store labelled with one
class (at random, or the most or least confident) and reads just those frames from the
archive, so a model can be checked without reading a night.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .._figure import new_figure
from .._results import check_min_confidence, class_indices, results_arrays, site_names
from .._schema import SLOT
from ..errors import ArgumentError
from ..io._stream0 import open_themis
from ._inputs import check_contrast, frames_of, results_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PICKS = ("random", "most", "least")
#: Colour of the N and E marks on sky tiles (as on the frames of a movie).
COMPASS = "#ffd200"
#: Width (and height) of a montage tile, inches, and the font size of its title, points.
TILE_INCHES, TITLE_POINTS = 1.6, 7


def _tiles(images: Any) -> list[np.ndarray]:
    if isinstance(images, xr.DataArray):
        if images.ndim != 3:
            raise ArgumentError(f"images: expected dims (tile, y, x), got {images.dims}")
        return list(np.asarray(images.values))
    if isinstance(images, np.ndarray):
        if images.ndim != 3:
            raise ArgumentError(f"images: expected a (tile, y, x) array, got shape {images.shape}")
        return list(images)
    try:
        tiles = [np.asarray(im) for im in images]
    except TypeError:
        raise ArgumentError(
            f"images: expected a DataArray (tile, y, x) or a sequence of 2-D arrays, got "
            f"{type(images).__name__}"
        ) from None
    bad = [k for k, t in enumerate(tiles) if t.ndim != 2]
    if bad:
        raise ArgumentError(f"images: tiles {bad[:5]} are not 2-D arrays")
    return tiles


def stretch(image: np.ndarray, contrast: tuple[float, float] = (1, 99)) -> np.ndarray:
    """An image scaled to 0..1 between two percentiles of its finite, non-zero values (zeros
    are the blank outside of a frame or a missing frame); NaN stays NaN."""
    values = np.asarray(image, dtype=np.float32)
    finite = values[np.isfinite(values) & (values != 0)]
    if finite.size == 0:
        return np.zeros_like(values)
    lo, hi = np.percentile(finite, contrast)
    return np.clip((values - lo) / max(hi - lo, 1e-6), 0, 1)


def montage(
    images: xr.DataArray | Sequence[np.ndarray] | np.ndarray,
    *,
    titles: Sequence[str] | None = None,
    columns: int = 8,
    path: str | os.PathLike | None = None,
    contrast: tuple[float, float] = (1, 99),
    suptitle: str | None = None,
    dpi: int = 110,
    compass: bool = True,
) -> Figure:
    """A grid of images, each stretched between two percentiles of its own values.

    Parameters
    ----------
    images
        A DataArray with dims ``(tile, y, x)`` (its ``tile`` coordinate gives the default
        titles), a ``(tile, y, x)`` array, or a sequence of 2-D arrays (sizes may differ).
        Drawn as given: row 0 at the top (for frames in the stream0 orientation, north up and
        east left, the sky seen from below).
    titles
        One short title per tile; a long one is wrapped to the tile's width.
    columns
        Tiles per row.
    path
        Also save the figure there.
    contrast
        Percentiles mapped to black and white, per tile (zeros, the blank outside a frame,
        are left out of them).
    suptitle
        A title over the grid.
    dpi
        Resolution of the saved figure.
    compass
        Mark north (top) and east (left) on each tile, as in the stream0 orientation of
        every frames source (the cameras are turned from true north by up to ~20°). False for
        images that are not sky frames.

    Returns
    -------
    matplotlib.figure.Figure
    """
    tiles = _tiles(images)
    if not tiles:
        raise ArgumentError("images: nothing to draw")
    if isinstance(columns, bool) or not isinstance(columns, int | np.integer) or columns < 1:
        raise ArgumentError(f"columns: expected a whole number >= 1, got {columns!r}")

    contrast = check_contrast(contrast)
    if titles is None and isinstance(images, xr.DataArray) and images.dims[0] in images.coords:
        titles = [str(v) for v in images[images.dims[0]].values]
    if titles is not None and len(titles) != len(tiles):
        raise ArgumentError(f"titles: {len(titles)} titles for {len(tiles)} images")
    cols = min(int(columns), len(tiles))
    rows = -(-len(tiles) // cols)
    wrapped = _wrap(titles, TILE_INCHES, TITLE_POINTS) if titles is not None else None
    heading = _wrap([suptitle], TILE_INCHES * cols, 10)[0] if suptitle else None
    fig = new_figure(TILE_INCHES * cols, _grid_height(rows, wrapped, heading))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for k, ax in enumerate(axes):
        ax.set_axis_off()
        if k < len(tiles):
            _draw_tile(ax, tiles[k], contrast, compass)
            if wrapped is not None:
                ax.set_title(wrapped[k], fontsize=TITLE_POINTS)
    if heading:
        fig.suptitle(heading, fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig


def _wrap(titles: Sequence[str], inches: float, points: float) -> list[str]:
    """Titles wrapped at spaces to lines that fit ``inches`` at ``points`` (a character is
    about 0.6 of the font size wide), so that neighbouring titles do not overlap; a word is
    never cut (a time or a file name stays whole)."""
    width = max(8, int(inches * 72 / (points * 0.6)))
    return [
        "\n".join(
            textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False) or line
            for line in str(title).split("\n")
        )
        for title in titles
    ]


def _grid_height(rows: int, titles: list[str] | None, heading: str | None) -> float:
    """Inches of a montage: its tiles, the lines of the longest tile title on every row, and
    the heading's lines."""
    lines = max((t.count("\n") + 1 for t in titles), default=0) if titles else 0
    height = TILE_INCHES * rows + rows * lines * TITLE_POINTS * 1.4 / 72 + 0.1
    if heading:
        height += (heading.count("\n") + 1) * 10 * 1.4 / 72 + 0.1
    return height


def _draw_tile(ax, tile: np.ndarray, contrast: tuple[float, float], compass: bool) -> None:
    ax.imshow(stretch(tile, contrast), cmap="gray", vmin=0, vmax=1, interpolation="antialiased")
    if compass:
        from matplotlib import patheffects  # deferred: matplotlib is slow to import

        # outlined in black: a yellow letter alone vanishes on a bright arc or patch
        outline = [patheffects.withStroke(linewidth=1.5, foreground="black")]
        style = {
            "transform": ax.transAxes,
            "color": COMPASS,
            "fontsize": 7,
            "weight": "bold",
            "path_effects": outline,
        }
        ax.text(0.5, 0.97, "N", ha="center", va="top", **style)
        ax.text(0.03, 0.5, "E", ha="left", va="center", **style)


# ------------------------------------------------------------------------ per class


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64: a well-mixed 64-bit hash of each value (wrapping arithmetic)."""
    x = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _pick_block(
    label, status, confidence, times, *, cls, n, pick, seed, min_confidence, block_info=None
):
    """The ``n`` best candidates of one block as a structured array (site, time, confidence,
    key): ``key`` orders them (smallest first)."""
    lo = block_info[0]["array-location"][0][0]
    mine = (label == cls) & (status >= 0)
    if min_confidence is not None:
        mine &= confidence >= min_confidence
    s, t = np.nonzero(mine)
    when = times[0, t]
    conf = confidence[s, t].astype(np.float64)
    if pick == "most":
        key = -conf
    elif pick == "least":
        key = conf
    else:  # a hash of (seed, site, time): the same sample whatever the chunking
        mixed = _mix(
            when.view(np.int64).astype(np.uint64)
            ^ _mix(np.uint64(seed) + (s + lo).astype(np.uint64))
        )
        key = (mixed >> np.uint64(11)).astype(np.float64)
    order = np.argsort(key, kind="stable")[:n]
    out = np.empty(
        len(order), dtype=[("site", "i4"), ("time", "M8[ns]"), ("confidence", "f4"), ("key", "f8")]
    )
    out["site"], out["time"] = s[order] + lo, when[order]
    out["confidence"], out["key"] = conf[order], key[order]
    holder = np.empty((1, 1), dtype=object)
    holder[0, 0] = out
    return holder


def pick_slots(
    results: xr.Dataset,
    label: str,
    *,
    n: int = 32,
    pick: str = "random",
    seed: int = 0,
    sites: str | Sequence[str] | None = None,
    min_confidence: float | None = None,
) -> pd.DataFrame:
    """``n`` slots that ``results`` labelled ``label``: at random (reproducible by ``seed``,
    whatever the chunking), or the most or least confident. Chunk by chunk: each chunk keeps
    its ``n`` best candidates, so a store of any size is never loaded whole.

    Returns a table with ``site``, ``time``, ``confidence``, in time order.
    """
    if pick not in PICKS:
        raise ArgumentError(f"pick: expected one of {PICKS}, got {pick!r}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ArgumentError(f"n: expected a whole number >= 1, got {n!r}")
    min_confidence = check_min_confidence(min_confidence)
    (cls,) = class_indices(results, label, "label")
    if sites is not None:
        wanted = [sites] if isinstance(sites, str) else list(sites)
        names = site_names(results)
        for s in wanted:
            if s not in names:
                raise ArgumentError(f"sites: unknown site {s!r}; the store has {names}")
        results = results.sel(site=wanted)
    arrays, times = results_arrays(results, ["label", "frame_status", "confidence"])
    parts = da.map_blocks(
        _pick_block,
        arrays["label"],
        arrays["frame_status"],
        arrays["confidence"],
        times[None, :],
        cls=cls,
        n=int(n),
        pick=pick,
        seed=int(seed),
        min_confidence=min_confidence,
        dtype=object,
        chunks=((1,) * arrays["label"].numblocks[0], (1,) * arrays["label"].numblocks[1]),
        meta=np.empty((0, 0), dtype=object),
    )
    blocks = [b for b in parts.compute().ravel() if len(b)]
    if not blocks:
        raise ArgumentError(f"label: no written slot of class {label!r} in the store")
    table = np.concatenate(blocks)
    table = table[np.argsort(table["key"], kind="stable")[: int(n)]]
    row_names = site_names(results)
    frame = pd.DataFrame(
        {
            "site": [row_names[i] for i in table["site"]],
            "time": table["time"],
            "confidence": table["confidence"],
        }
    )
    return frame.sort_values(["time", "site"], ignore_index=True)


def read_slots(source: Any, slots: pd.DataFrame) -> list[np.ndarray]:
    """The frames of ``slots`` (``site``, ``time``) from an archive or a frames dataset, read
    in parallel: one minute file per frame (one task each)."""
    lazy = []
    for site, time in zip(slots["site"], slots["time"], strict=True):
        t = pd.Timestamp(time)
        if isinstance(source, xr.Dataset):
            frames = frames_of(source, site, t, t + pd.Timedelta(SLOT))
        else:
            frames = open_themis(source, site, t, t + pd.Timedelta(SLOT), chunk_minutes=1)
        if frames.sizes["time"] == 0:
            raise ArgumentError(f"source: no slot {t} of site {site!r} in the frames")
        lazy.append(frames["images"].isel(site=0, time=0).data)
    return list(dask.compute(*lazy))


def class_montage(
    store: str | os.PathLike | xr.Dataset,
    source: Any,
    label: str,
    *,
    n: int = 32,
    pick: str = "random",
    seed: int = 0,
    sites: str | Sequence[str] | None = None,
    min_confidence: float | None = None,
    columns: int = 8,
    path: str | os.PathLike | None = None,
    group: str | None = None,
    contrast: tuple[float, float] = (1, 99),
) -> Figure:
    """A grid of frames that a store labelled ``label``, to check a model at a glance.

    Parameters
    ----------
    store
        A results store (path or URL) or dataset.
    source
        The frames: a stream0 archive (path or URL) or a frames dataset (e.g.
        :func:`auroradask.open_themis_cdf`). Only the picked frames are read.
    label
        The class name.
    n
        Frames to show (fewer if fewer slots have the class).
    pick
        ``"random"`` (reproducible with ``seed``), ``"most"`` or ``"least"`` confident.
    sites
        Only these sites (default all).
    min_confidence
        Only slots at least this confident.
    columns, path, contrast
        As for :func:`montage`.
    group
        Group inside the store.

    Returns
    -------
    matplotlib.figure.Figure
        Tiles titled with site, UT time and confidence.
    """
    results = results_of(store, group)
    slots = pick_slots(
        results, label, n=n, pick=pick, seed=seed, sites=sites, min_confidence=min_confidence
    )
    images = read_slots(source, slots)
    titles = [
        f"{s} {pd.Timestamp(t):%Y-%m-%d %H:%M:%S} UT\np={c:.3f}"
        for s, t, c in zip(slots["site"], slots["time"], slots["confidence"], strict=True)
    ]
    what = {"random": "random", "most": "most confident", "least": "least confident"}[pick]
    return montage(
        images,
        titles=titles,
        columns=columns,
        path=path,
        contrast=contrast,
        suptitle=f"{len(images)} {what} frames labelled {label}",
    )
