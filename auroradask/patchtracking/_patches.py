"""Auroral patches: detected per frame, georeferenced with the skymap, tracked across frames.

Three layers, each usable alone:

- numpy kernels on a stack of frames of one site: :func:`running_background` (a running
  minimum or median over time), :func:`detect_frames` (threshold within the field of view,
  ``skimage.measure.label`` + ``regionprops``, one table row per patch);
- a thin lazy wrapper, :func:`patch_blocks`: the background needs neighbouring frames, so
  it runs through ``dask.array.map_overlap`` along time (``depth`` = half the window, no
  padding at the ends of the series); a chunk's result is then exactly what the whole
  series would give. Detection runs per chunk through ``map_blocks`` and gives one
  DataFrame per (site, time) chunk;
- :func:`link_patches`, our own linker (see its docstring for why not trackpy), and
  :func:`patches`, which computes everything and returns a :class:`PatchResult`.

Geometry (pixel areas in km², pixel-centre positions) comes from the skymap:
:func:`auroradask.read_patch_geometry` in ``_skymap.py``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize

from .._figure import new_figure
from .._schema import FRAME_SHAPE, OK, SLOT_SECONDS
from ..errors import ArgumentError
from ..preprocessing._preprocess import field_of_view
from ..skymaps._skymap import (
    EARTH_RADIUS_KM,
    ElevationSource,
    PatchGeometry,
    elevation_map,
    lat_lon_of,
    read_patch_geometry,
)

BACKGROUNDS = ("min", "median", "none")
#: Columns of the per-frame patch table, in order (``track`` is added by the linker).
PATCH_COLUMNS = [
    "site",
    "time",
    "patch",
    "row",
    "col",
    "area_px",
    "area_km2",
    "mean_counts",
    "peak_counts",
    "mean_excess",
    "peak_excess",
    "latitude",
    "longitude",
    "bbox_row0",
    "bbox_col0",
    "bbox_row1",
    "bbox_col1",
]


def _resolve_geometry(skymap: Any, altitude_km: float) -> PatchGeometry | None:
    if skymap is None or isinstance(skymap, PatchGeometry):
        return skymap
    if isinstance(skymap, str | os.PathLike):
        return read_patch_geometry(skymap, altitude_km)
    raise ArgumentError(
        f"skymap: expected a skymap .sav path or a PatchGeometry, got {type(skymap).__name__}"
    )


# ---------------------------------------------------------------------------- kernels


def running_background(stack: np.ndarray, method: str = "min", window: int = 21) -> np.ndarray:
    """Running background over time of ``(n, y, x)`` frames, NaN for frames to ignore.

    ``method`` is ``"min"`` (running minimum: good for pulsating aurora, whose patches are
    off part of the time) or ``"median"`` over a centred window of ``window`` frames
    (truncated at the ends of ``stack``; NaN frames are left out), or ``"none"`` (zero).
    A pixel whose window holds no valid frame gets NaN.
    """
    stack = np.asarray(stack, dtype=np.float32)
    if method == "none":
        return np.zeros_like(stack)
    half = window // 2
    n = stack.shape[0]
    out = np.empty_like(stack)
    if method == "min":
        from scipy.ndimage import minimum_filter1d

        filled = np.where(np.isnan(stack), np.inf, stack)
        # mode="nearest" repeats the end frame: for a minimum, the same as truncating
        out = minimum_filter1d(filled, size=2 * half + 1, axis=0, mode="nearest")
        out[np.isinf(out)] = np.nan
        return out
    if method == "median":
        has_nan = bool(np.isnan(stack).any())
        for i in range(n):
            window_frames = stack[max(0, i - half) : i + half + 1]
            if has_nan:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
                    out[i] = np.nanmedian(window_frames, axis=0)
            else:
                out[i] = np.median(window_frames, axis=0)
        return out
    raise ArgumentError(f"background: expected one of {BACKGROUNDS}, got {method!r}")


def threshold_mask(
    excess: np.ndarray,
    background: np.ndarray,
    fov: np.ndarray,
    threshold: str | float = "otsu",
    *,
    relative: float | None = None,
    floor: float = 0.0,
) -> np.ndarray:
    """Pixels of one frame that belong to patches, within ``fov`` only.

    ``excess`` is the frame minus its background. ``threshold``: a number of counts above
    the background (absolute), ``"relative"`` (excess above ``relative`` × background), or
    ``"otsu"`` (Otsu's threshold of the excess inside the field of view, never below
    ``floor`` counts, so that a frame with no patch does not split its noise in two).
    """
    inside = fov & np.isfinite(excess)
    if isinstance(threshold, str) and threshold == "otsu":
        from skimage.filters import threshold_otsu

        values = excess[inside]
        if values.size == 0 or values.max() == values.min():
            return np.zeros_like(inside)
        level = max(float(threshold_otsu(values)), floor)
    elif isinstance(threshold, str) and threshold == "relative":
        level = np.maximum((relative if relative is not None else 0.1) * background, floor)
    elif isinstance(threshold, int | float | np.integer | np.floating) and not isinstance(
        threshold, bool
    ):
        level = float(threshold)
    else:
        raise ArgumentError(
            f"threshold: expected 'otsu', 'relative' or a number of counts, got {threshold!r}"
        )
    with np.errstate(invalid="ignore"):
        return inside & (excess > level)


def detect_frames(
    frames: np.ndarray,
    background: np.ndarray,
    fov: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    threshold: str | float = "otsu",
    relative: float | None = None,
    floor: float = 0.0,
    min_area: int = 10,
    smooth: float = 1.0,
    geometry: PatchGeometry | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Patches of each frame of ``(n, y, x)`` frames; numpy in, a table out.

    Returns
    -------
    table, counts
        One row per patch per frame (``frame`` is the index in ``frames``; columns as
        :data:`PATCH_COLUMNS` less ``site``/``time``) and the number of patches per frame
        (``-1`` where ``valid`` is False).
    """
    from scipy.ndimage import gaussian_filter
    from skimage.measure import label, regionprops

    n = frames.shape[0]
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    counts = np.full(n, -1, dtype=np.int32)
    rows: list[tuple] = []
    for i in range(n):
        if not valid[i]:
            continue
        frame = np.asarray(frames[i], dtype=np.float32)
        bg = background[i]
        excess = frame - bg
        if smooth:
            excess = gaussian_filter(np.nan_to_num(excess), smooth)
        mask = threshold_mask(excess, bg, fov, threshold, relative=relative, floor=floor)
        labels = label(mask, connectivity=2)
        k = 0
        for region in regionprops(labels, intensity_image=frame):
            if region.area < min_area:
                continue
            k += 1
            rr, cc = region.coords[:, 0], region.coords[:, 1]
            counts_px = frame[rr, cc]
            excess_px = frame[rr, cc] - bg[rr, cc]
            if geometry is not None:
                km2 = geometry.pixel_km2[rr, cc]
                area_km2 = float(np.nansum(km2)) if np.isfinite(km2).any() else np.nan
                weights = np.nan_to_num(km2)
                vector = (geometry.xyz[:, rr, cc] * weights).sum(axis=1)
                if np.linalg.norm(vector) > 0:
                    lat, lon = lat_lon_of(vector / np.linalg.norm(vector))
                    lat, lon = float(lat), float(lon)
                else:
                    lat = lon = np.nan
            else:
                area_km2 = lat = lon = np.nan
            r0, c0, r1, c1 = region.bbox
            cy, cx = region.centroid
            rows.append(
                (i, k, cy, cx, int(region.area), area_km2, float(counts_px.mean()),
                 float(counts_px.max()), float(np.nanmean(excess_px)),
                 float(np.nanmax(excess_px)), lat, lon, r0, c0, r1, c1)
            )  # fmt: skip
        counts[i] = k
    table = pd.DataFrame(rows, columns=["frame", *PATCH_COLUMNS[2:]])
    table["frame"] = table["frame"].astype(np.int64)
    return _typed(table), counts


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    ints = {"patch": "int32", "area_px": "int32"}
    ints.update({c: "int16" for c in ("bbox_row0", "bbox_col0", "bbox_row1", "bbox_col1")})
    floats = [c for c in PATCH_COLUMNS if c not in ints and c not in ("site", "time")]
    for c in ints:
        if c in table:
            table[c] = table[c].astype(ints[c])
    for c in floats:
        if c in table:
            table[c] = table[c].astype("float64")
    return table


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
        if not (isinstance(self.window, int) and self.window >= 1):
            raise ArgumentError(
                f"window: expected a positive number of frames, got {self.window!r}"
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
    if options.background == "none" or half == 0:
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


# ---------------------------------------------------------------------------- tracking


def link_patches(
    table: pd.DataFrame,
    *,
    max_distance: float = 6.0,
    max_gap: int = 3,
    slot_seconds: float = SLOT_SECONDS,
) -> pd.Series:
    """Track ids for a patch table: patches of nearby frames linked by nearest centroid.

    Our own linker rather than trackpy: a frame-to-frame optimal assignment (Hungarian,
    ``scipy.optimize.linear_sum_assignment``, already a dependency) of patch centroids to
    the last position of open tracks, in pixels, gated by ``max_distance`` pixels per frame
    step and allowing ``max_gap`` missing frames (pulsating patches switch off). trackpy's
    linker does the same but adds a dependency and its own frame model; here the table is
    small (tens of rows per frame) and the gap/chunk rules are ours to state.

    The linker runs per site over the whole time series (tables are small next to frames),
    so tracks that cross chunk boundaries come out whole: there is no seam to stitch.

    Returns
    -------
    pandas.Series
        ``int64`` track id per row of ``table`` (aligned on its index), unique across sites.
    """
    from scipy.optimize import linear_sum_assignment

    if max_gap < 0 or max_distance <= 0:
        raise ArgumentError("max_gap: must be >= 0 and max_distance > 0")
    track = pd.Series(-1, index=table.index, dtype="int64")
    next_id = 0
    for _site, group in table.groupby("site", sort=True):
        steps = (
            ((group["time"] - group["time"].min()) / pd.Timedelta(seconds=slot_seconds))
            .round()
            .astype(np.int64)
            .to_numpy()
        )
        yx = group[["row", "col"]].to_numpy()
        index = group.index.to_numpy()
        order = np.argsort(steps, kind="stable")
        # open tracks: id, last step, last position
        open_ids: list[int] = []
        open_step: list[int] = []
        open_pos: list[np.ndarray] = []
        boundaries = np.flatnonzero(np.diff(steps[order])) + 1
        for rows in np.split(order, boundaries):
            if rows.size == 0:
                continue
            step = steps[rows[0]]
            keep = [k for k in range(len(open_ids)) if step - open_step[k] <= max_gap + 1]
            open_ids = [open_ids[k] for k in keep]
            open_step = [open_step[k] for k in keep]
            open_pos = [open_pos[k] for k in keep]
            assigned = np.full(rows.size, -1)
            if open_ids:
                last = np.array(open_pos)
                gaps = step - np.array(open_step)
                distance = np.linalg.norm(yx[rows][:, None, :] - last[None, :, :], axis=2)
                allowed = distance <= max_distance * gaps[None, :]
                cost = np.where(allowed, distance, 1e9)
                r, c = linear_sum_assignment(cost)
                ok = allowed[r, c]
                assigned[r[ok]] = c[ok]
            for j, row in enumerate(rows):
                if assigned[j] >= 0:
                    k = assigned[j]
                    track[index[row]] = open_ids[k]
                    open_step[k] = step
                    open_pos[k] = yx[row]
                else:
                    track[index[row]] = next_id
                    open_ids.append(next_id)
                    open_step.append(step)
                    open_pos.append(yx[row])
                    next_id += 1
    return track


def summarize_tracks(
    table: pd.DataFrame, *, altitude_km: float = 110.0, min_frames: int = 1
) -> pd.DataFrame:
    """One row per track: site, start, end, lifetime, frames, drift velocity, brightness.

    The drift velocity is the least-squares slope of the centroid's position against time,
    in a local east/north frame (km, on the sphere at ``altitude_km``) about the track's
    mean position: ``v_east``, ``v_north`` and ``speed`` in m/s (NaN without geographic
    positions or with one frame); ``v_row``/``v_col`` in pixels per second always. The
    brightness series of a track is its rows in the patch table (``table[table.track == id]``).
    Vectorised over tracks (group sums), so a night of dense tracks costs little.
    """
    columns = [
        "track", "site", "start", "end", "lifetime_s", "frames", "v_east", "v_north", "speed",
        "v_row", "v_col", "mean_area_px", "mean_area_km2", "mean_excess", "peak_excess",
        "latitude", "longitude",
    ]  # fmt: skip
    if len(table) == 0:
        return pd.DataFrame(columns=columns)
    radius = EARTH_RADIUS_KM + altitude_km
    track = table["track"].to_numpy()
    groups = table.groupby("track", sort=True)
    seconds = (table["time"] - table["time"].min()).dt.total_seconds()
    t = (seconds - seconds.groupby(track).transform("mean")).to_numpy()
    lat = table["latitude"].astype(float)
    lon = np.radians(table["longitude"].astype(float))
    lat0 = lat.groupby(track).transform("mean")
    lon0 = np.arctan2(
        np.sin(lon).groupby(track).transform("mean"), np.cos(lon).groupby(track).transform("mean")
    )
    dlon = (lon - lon0 + np.pi) % (2 * np.pi) - np.pi
    series = {
        "v_row": table["row"].astype(float),
        "v_col": table["col"].astype(float),
        "v_east": 1000.0 * dlon * radius * np.cos(np.radians(lat0)),
        "v_north": 1000.0 * np.radians(lat - lat0) * radius,
    }
    sums = {}
    for name, y in series.items():
        w = np.isfinite(y.to_numpy()).astype(float)
        yy = np.nan_to_num(y.to_numpy())
        frame = (
            pd.DataFrame({"n": w, "t": w * t, "y": w * yy, "tt": w * t * t, "ty": w * t * yy})
            .groupby(track, sort=True)
            .sum()
        )
        denominator = frame["n"] * frame["tt"] - frame["t"] ** 2
        slope = (frame["n"] * frame["ty"] - frame["t"] * frame["y"]) / denominator
        sums[name] = slope.where((frame["n"] >= 2) & (denominator > 1e-9 * frame["n"] ** 2))
    out = groups.agg(
        site=("site", "first"),
        start=("time", "min"),
        end=("time", "max"),
        frames=("time", "size"),
        mean_area_px=("area_px", "mean"),
        mean_area_km2=("area_km2", "mean"),
        mean_excess=("mean_excess", "mean"),
        peak_excess=("peak_excess", "max"),
        latitude=("latitude", "mean"),
    )
    out["longitude"] = np.degrees(lon0.groupby(track).first()).to_numpy()
    out["lifetime_s"] = (out["end"] - out["start"]).dt.total_seconds() + SLOT_SECONDS
    for name, slope in sums.items():
        out[name] = slope.to_numpy()
    out["speed"] = np.hypot(out["v_east"], out["v_north"])
    out = out[out["frames"] >= min_frames].reset_index(names="track")
    out = out.astype({"frames": "int64", "mean_area_px": "float64", "peak_excess": "float64"})
    return out[columns]


# ---------------------------------------------------------------------------- public


@dataclass
class PatchResult:
    """What :func:`patches` found.

    ``table``: one row per patch per frame (:data:`PATCH_COLUMNS` + ``track``);
    ``counts``: patches per (site, time), ``-1`` where the frame is not ok; ``tracks``: one
    row per track (:func:`summarize_tracks`); ``attrs``: the options, for provenance.
    """

    table: pd.DataFrame
    counts: xr.DataArray
    tracks: pd.DataFrame
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_parquet(self, path: str | os.PathLike, tracks_path: str | os.PathLike | None = None):
        """Write the patch table (and optionally the track table) as parquet (pyarrow)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(self.table, preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"auroradask": repr(self.attrs).encode()}
        )
        pq.write_table(table, path)
        if tracks_path is not None:
            pq.write_table(pa.Table.from_pandas(self.tracks, preserve_index=False), tracks_path)

    def plot_tracks(
        self,
        path: str | os.PathLike,
        frame: np.ndarray | Mapping[str, np.ndarray] | None = None,
        site: str | Sequence[str] | None = None,
    ):
        """Draw the tracks of each site on a frame of it, one panel a site; save to ``path``.

        Parameters
        ----------
        path
            The figure file.
        frame
            The frame under the tracks: one array (for one site), a mapping site → frame, or
            None (tracks on an empty frame-sized panel).
        site
            A site, several, or None (default): every site of the result.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib import colormaps  # deferred: matplotlib is slow to import

        all_sites = [str(s) for s in self.counts["site"].values]
        sites = all_sites if site is None else [site] if isinstance(site, str) else list(site)
        unknown = [s for s in sites if s not in all_sites]
        if unknown:
            raise ArgumentError(f"site: no site {unknown} in the result; it has {all_sites}")
        if isinstance(frame, np.ndarray) and len(sites) > 1:
            raise ArgumentError(
                f"frame: one frame for {len(sites)} sites; give a mapping site -> frame"
            )
        frames = frame if isinstance(frame, Mapping) else {sites[0]: frame}
        fig = new_figure(5 * len(sites), 5.4)
        cmap = colormaps["tab20"]
        for ax, name in zip(np.atleast_1d(fig.subplots(1, len(sites))), sites, strict=True):
            table = self.table[self.table["site"] == name]
            under = frames.get(name)
            if under is not None:
                lo, hi = np.nanpercentile(under, [1, 99.5])
                ax.imshow(under, cmap="gray", vmin=lo, vmax=hi, origin="upper")
            else:
                ax.set_xlim(0, FRAME_SHAPE[1])
                ax.set_ylim(FRAME_SHAPE[0], 0)
            for k, (_tid, group) in enumerate(table.groupby("track")):
                ax.plot(group["col"], group["row"], "-", color=cmap(k % 20), lw=1.2)
                ax.plot(group["col"].iloc[-1], group["row"].iloc[-1], "o", color=cmap(k % 20), ms=3)
            ax.set_title(f"{name}: {table['track'].nunique()} tracks, {len(table)} patches")
            ax.set_xlabel("column (px)")
            ax.set_ylabel("row (px)")
            for x, y, mark in ((0.5, 0.98, "N"), (0.02, 0.5, "E")):  # the stream0 orientation
                ax.text(
                    x,
                    y,
                    mark,
                    transform=ax.transAxes,
                    ha="center",
                    va="top" if mark == "N" else "center",
                    color="#ffd200",
                    weight="bold",
                )
        fig.savefig(path, dpi=100)
        return fig


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
        ``"min"`` (running minimum), ``"median"`` over ``window`` frames centred on each
        frame, or ``"none"`` (raw counts).
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
