"""Preprocessing: numpy kernels on ``(n, y, x)`` stacks of frames, and the dask/xarray wrapper.

The ``themis-pa`` preset is the sequence the published THEMIS pulsating-aurora CNN was trained
with, per frame on the raw uint16 image::

    c = cv2.createCLAHE(clipLimit=3, tileGridSize=(8, 8)).apply(v)     # on 16 bits
    u8 = cv2.convertScaleAbs(c, alpha=255 / 65535)                       # to 8 bits, rounded
    f = cv2.cvtColor(u8, cv2.COLOR_GRAY2BGR).astype(np.float32)          # 3 channels
    f[elevation < 15] = 0                                                # field of view
    x = cv2.resize(f, (224, 224))                                        # bilinear, 0..255

The kernels compute the same numbers on one channel and replicate it at the end, which gives
identical values for a third of the work. Pixels whose elevation is NaN (the skymap's "no sky",
outside the lens) count as outside the field of view and are blanked too.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from .._results import frame_coords
from .._schema import OK
from ..errors import ArgumentError
from ..skymaps._skymap import ElevationSource, site_elevations
from ..skymaps._tree import SkymapTree, resolve_per_slot, resolve_tree
from ._clahe import HIST_SIZE, _axis, clahe_uint16


@dataclass(frozen=True)
class Preset:
    """Every parameter of the preprocessing, so that a result store can record it.

    Attributes
    ----------
    name
        Name of the preset this derives from.
    clip_limit, tile_grid
        CLAHE parameters (OpenCV's ``clipLimit`` and ``tileGridSize`` as (rows, cols)),
        applied to the raw 16-bit frame before scaling to 8 bits.
    min_elevation
        Pixels below this elevation (degrees) are set to 0; a pixel exactly on it is kept
        (:func:`field_of_view`: ``elevation >= min_elevation``).
    crop
        Crop to the bounding box of the field of view before resizing.
    size
        Output (rows, cols), reached by bilinear resizing (``cv2.resize`` default).
    channels
        Number of identical channels (3 for models trained on BGR/RGB images).
    dtype
        ``"float32"`` (values 0..255, no normalisation) or ``"uint8"`` (rounded).
    """

    name: str = "themis-pa"
    clip_limit: float = 3.0
    tile_grid: tuple[int, int] = (8, 8)
    min_elevation: float = 15.0
    crop: bool = False
    size: tuple[int, int] = (224, 224)
    channels: int = 3
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "tile_grid", tuple(int(v) for v in self.tile_grid))
        object.__setattr__(self, "size", tuple(int(v) for v in self.size))
        problems = []
        if not self.clip_limit > 0:
            problems.append(f"clip_limit must be > 0, got {self.clip_limit!r}")
        if len(self.tile_grid) != 2 or min(self.tile_grid) < 1:
            problems.append(f"tile_grid must be two numbers >= 1, got {self.tile_grid!r}")
        if len(self.size) != 2 or min(self.size) < 1:
            problems.append(f"size must be (rows, cols) >= 1, got {self.size!r}")
        if self.channels not in (1, 3):
            problems.append(f"channels must be 1 or 3, got {self.channels!r}")
        if self.dtype not in ("float32", "uint8"):
            problems.append(f"dtype must be 'float32' or 'uint8', got {self.dtype!r}")
        if problems:
            raise ArgumentError("preset: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible parameters."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


PRESETS: dict[str, Preset] = {
    # The published THEMIS pulsating-aurora CNN's input, exactly.
    "themis-pa": Preset("themis-pa"),
    # The same authors' Poker Flat (PFRR) camera used a clip limit of 300.
    "pfrr-pa": Preset("pfrr-pa", clip_limit=300.0),
}


def get_preset(preset: str | Preset | Mapping[str, Any] = "themis-pa", **overrides: Any) -> Preset:
    """A :class:`Preset` from a name, a preset or a dict of parameters, with overrides.

    Examples
    --------
    >>> get_preset("themis-pa", tile_grid=(4, 4)).tile_grid
    (4, 4)
    """
    if isinstance(preset, Preset):
        base = preset
    elif isinstance(preset, str):
        if preset not in PRESETS:
            raise ArgumentError(f"preset: unknown preset {preset!r}; known: {sorted(PRESETS)}")
        base = PRESETS[preset]
    elif isinstance(preset, Mapping):
        fields = {f.name for f in dataclasses.fields(Preset)}
        unknown = set(preset) - fields
        if unknown:
            raise ArgumentError(f"preset: unknown parameters {sorted(unknown)}")
        base = Preset(**preset)
    else:
        raise ArgumentError(f"preset: expected a name, a Preset or a dict, got {preset!r}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - {f.name for f in dataclasses.fields(Preset)}
    if unknown:
        raise ArgumentError(f"preset: unknown parameters {sorted(unknown)}")
    return dataclasses.replace(base, **overrides) if overrides else base


# --------------------------------------------------------------------------- numpy kernels


def clahe_to_uint8(
    frames: np.ndarray,
    clip_limit: float = PRESETS["themis-pa"].clip_limit,
    tile_grid: tuple[int, int] = PRESETS["themis-pa"].tile_grid,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """CLAHE on raw 16-bit frames, then scaling to 8 bits with rounding.

    The CLAHE is :func:`auroradask.clahe.clahe_uint16`: OpenCV's, bit for bit, about 3×
    faster on THEMIS frames.

    Parameters
    ----------
    frames
        ``(n, y, x)`` uint16.
    clip_limit, tile_grid
        OpenCV CLAHE parameters; ``tile_grid`` is (rows, cols) of tiles.
    valid
        ``(n,)`` bool; frames that are not valid are left 0 and cost nothing.

    Returns
    -------
    numpy.ndarray
        ``(n, y, x)`` uint8.
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.dtype != np.uint16:
        raise ArgumentError(f"frames: expected (n, y, x) uint16, got {frames.shape} {frames.dtype}")
    out = np.zeros(frames.shape, dtype=np.uint8)
    for i in np.flatnonzero(valid) if valid is not None else range(len(frames)):
        equalised = clahe_uint16(frames[i], clip_limit, tile_grid)
        cv2.convertScaleAbs(equalised, out[i], alpha=255.0 / 65535.0)
    return out


def published_sequence(
    frame: np.ndarray,
    fov: np.ndarray,
    clip_limit: float = PRESETS["themis-pa"].clip_limit,
    tile_grid: tuple[int, int] = PRESETS["themis-pa"].tile_grid,
) -> np.ndarray:
    """The published classifier's preprocessing of one frame, written out with OpenCV.

    The reference the fast kernels are held to (the tests compare every value) and the
    per-frame work of the one-off scripts the benchmarks measure against: CLAHE on 16 bits,
    8-bit scaling, three channels, blanking outside ``fov``, bilinear resize to 224×224.

    Parameters
    ----------
    frame
        ``(256, 256)`` uint16 raw counts.
    fov
        ``(256, 256)`` bool, True inside the field of view (:func:`field_of_view`).

    Returns
    -------
    numpy.ndarray
        ``(224, 224, 3)`` float32, values 0..255.
    """
    grid = (int(tile_grid[1]), int(tile_grid[0]))  # OpenCV's tileGridSize is (cols, rows)
    c = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=grid).apply(frame)
    u8 = cv2.convertScaleAbs(c, alpha=255 / 65535)
    rgb = cv2.cvtColor(u8, cv2.COLOR_GRAY2BGR)
    f = cv2.resize(rgb, (256, 256)).astype(np.float32)
    f[~fov] = 0
    return cv2.resize(f, (224, 224)).astype(np.float32)


def field_of_view(elevation: np.ndarray, min_elevation: float = 15.0) -> np.ndarray:
    """Pixels at or above ``min_elevation`` degrees (``elevation >= min_elevation``: a pixel
    exactly on it is inside); NaN (no sky) is outside. A skymap's map is float32, so a pixel
    is compared as stored."""
    with np.errstate(invalid="ignore"):
        return np.asarray(elevation) >= min_elevation


def bounding_box(mask: np.ndarray) -> tuple[slice, slice]:
    """Row and column slices of the smallest box holding every True pixel of ``mask``."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ArgumentError("field of view: no pixel is above the elevation threshold")
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def to_model_input(
    frames_u8: np.ndarray,
    fov: np.ndarray,
    *,
    crop: bool = False,
    size: tuple[int, int] = (224, 224),
    channels: int = 3,
    dtype: str = "float32",
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Blank outside the field of view, optionally crop to it, resize, replicate channels.

    Parameters
    ----------
    frames_u8
        ``(n, y, x)`` uint8 from :func:`clahe_to_uint8`.
    fov
        ``(y, x)`` bool from :func:`field_of_view`.

    Returns
    -------
    numpy.ndarray
        ``(n, rows, cols, channels)`` channels-last, float32 0..255 or uint8.
    """
    rows, cols = size
    box = bounding_box(fov) if crop else (slice(None), slice(None))
    keep = fov[box].astype(np.float32)
    out = np.zeros((len(frames_u8), rows, cols, channels), dtype=np.dtype(dtype))
    for i in np.flatnonzero(valid) if valid is not None else range(len(frames_u8)):
        masked = frames_u8[i][box].astype(np.float32) * keep
        resized = cv2.resize(masked, (cols, rows), interpolation=cv2.INTER_LINEAR)
        if out.dtype == np.uint8:
            resized = np.clip(np.rint(resized), 0, 255)
        out[i] = resized[..., None]
    return out


def preprocess_frames(
    frames: np.ndarray,
    fov: np.ndarray,
    preset: Preset,
    valid: np.ndarray | None = None,
    channels: int | None = None,
) -> np.ndarray:
    """The whole preset on an ``(n, y, x)`` uint16 stack → ``(n, rows, cols, channels)``.

    CLAHE, 8-bit scaling and the field-of-view mask run as one compiled kernel per frame
    (:mod:`auroradask.preprocessing._clahe_numba`, numba), then OpenCV's resize; the output equals the numpy
    kernel's (:func:`_preprocess_frames_reference`) and the published OpenCV sequence bit for
    bit. ``channels`` (default: the preset's) lets the model stage ask for one channel and
    broadcast it to three only at the model's input.
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.dtype != np.uint16:
        raise ArgumentError(f"frames: expected (n, y, x) uint16, got {frames.shape} {frames.dtype}")
    channels = preset.channels if channels is None else channels
    rows, cols = preset.size
    out = np.zeros((len(frames), rows, cols, channels), dtype=np.dtype(preset.dtype))
    which = np.flatnonzero(valid) if valid is not None else np.arange(len(frames))
    preprocess_into(frames, which, fov, preset, out, which)
    return out


def preprocess_into(
    frames: np.ndarray,
    which: np.ndarray,
    fov: np.ndarray,
    preset: Preset,
    out: np.ndarray,
    at: np.ndarray,
) -> None:
    """Preprocess ``frames[which[j]]`` into ``out[at[j]]`` (``(m, rows, cols, 1 or 3)``).

    Writing into the caller's array spares the model stage a copy of its mini-batch and a
    fancy-indexed copy of the raw frames; ``out``'s last axis says how many (identical)
    channels to write.
    """
    if len(which) == 0:
        return
    grid = tuple(int(v) for v in preset.tile_grid)
    shape = frames.shape[1:]
    if shape[0] % grid[0] or shape[1] % grid[1]:
        # a grid that does not divide the frame pads it, as OpenCV does: the numpy kernel
        valid = np.zeros(len(frames), dtype=bool)
        valid[which] = True
        reference = _preprocess_frames_reference(frames, fov, preset, valid, out.shape[-1])
        out[at] = reference[which]
        return
    masked = _clahe_u8_masked(frames, np.asarray(which, np.int64), fov, preset.clip_limit, grid)
    rows, cols = out.shape[1:3]
    box = bounding_box(fov) if preset.crop else (slice(None), slice(None))
    as_float = out.dtype == np.float32
    for j, f in enumerate(at):
        if as_float and out.shape[-1] == 1:
            cv2.resize(
                masked[j][box], (cols, rows), out[f, :, :, 0], interpolation=cv2.INTER_LINEAR
            )
            continue
        resized = cv2.resize(masked[j][box], (cols, rows), interpolation=cv2.INTER_LINEAR)
        if not as_float:
            resized = np.clip(np.rint(resized), 0, 255).astype(out.dtype)
        if out.shape[-1] == 1:
            out[f, :, :, 0] = resized
        else:  # the same values in three channels, as cv2.cvtColor(GRAY2BGR) writes them
            cv2.cvtColor(resized, cv2.COLOR_GRAY2BGR, out[f])


def _clahe_u8_masked(
    frames: np.ndarray, which: np.ndarray, fov: np.ndarray, clip_limit: float, grid
) -> np.ndarray:
    """``(len(which), y, x)`` float32: frames ``which`` through CLAHE, 8 bits and the mask."""
    from ._clahe_numba import clahe_u8_masked_stack  # numba: imported, and compiled, on first use

    rows, cols = frames.shape[1:]
    tile_h, tile_w = rows // grid[0], cols // grid[1]
    area = tile_h * tile_w
    _, _, ya, ya1 = _axis(rows, tile_h, grid[0])
    _, _, xa, xa1 = _axis(cols, tile_w, grid[1])
    out = np.empty((len(which), rows, cols), dtype=np.float32)
    clahe_u8_masked_stack(
        frames,
        which,
        max(int(clip_limit * area / HIST_SIZE), 1),
        grid[0],
        grid[1],
        _cells(rows, tile_h),
        ya,
        ya1,
        _cells(cols, tile_w),
        xa,
        xa1,
        np.float32(HIST_SIZE - 1) / np.float32(area),
        _to_uint8_table(),
        np.ascontiguousarray(fov, dtype=bool),
        out,
    )
    return out


def _cells(n: int, size: int) -> np.ndarray:
    """The interpolation cell of each pixel along one axis, 0 .. tiles: ``floor(f) + 1`` for
    OpenCV's ``f = x / size - 0.5`` (float32), the runs of pixels between the same two tile
    centres (cell 0 and the last lie before the first and after the last centre)."""
    f = np.arange(n, dtype=np.float32) * (np.float32(1.0) / np.float32(size)) - np.float32(0.5)
    return np.floor(f).astype(np.int64) + 1


@functools.cache
def _to_uint8_table() -> np.ndarray:
    """``cv2.convertScaleAbs(v, alpha=255/65535)`` for every 16-bit value ``v``."""
    values = np.arange(HIST_SIZE, dtype=np.uint16).reshape(256, 256)
    return cv2.convertScaleAbs(values, alpha=255.0 / 65535.0).ravel()


def _preprocess_frames_reference(
    frames: np.ndarray,
    fov: np.ndarray,
    preset: Preset,
    valid: np.ndarray | None = None,
    channels: int | None = None,
) -> np.ndarray:
    """The numpy kernel that :func:`preprocess_frames` replaced, kept as the reference the
    tests hold the compiled one to (and for tile grids that do not divide the frame)."""
    u8 = clahe_to_uint8(frames, preset.clip_limit, preset.tile_grid, valid)
    return to_model_input(
        u8,
        fov,
        crop=preset.crop,
        size=preset.size,
        channels=preset.channels if channels is None else channels,
        dtype=preset.dtype,
        valid=valid,
    )


# --------------------------------------------------------------------------- dask / xarray


def _preprocess_chunk(
    images: np.ndarray, status: np.ndarray, fov: np.ndarray, preset: Preset
) -> np.ndarray:
    cv2.setNumThreads(1)  # parallelism comes from dask; OpenCV's own threads would oversubscribe
    return preprocess_frames(images[0], fov[0], preset, valid=status[0] == OK)[None]


def _per_fov(images, status, fov_index, fovs, kernel, **kwargs):
    """Run ``kernel`` on each run of slots of a chunk that share a field of view."""
    index = fov_index[0]
    if len(index) == 0:  # no slot (an empty selection of time): zero frames, any mask
        return kernel(images, status, fovs[:1], **kwargs)
    edges = np.r_[0, np.flatnonzero(np.diff(index)) + 1, len(index)]
    parts = [
        kernel(images[:, lo:hi], status[:, lo:hi], fovs[index[lo]][None], **kwargs)
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def _site_position(status: np.ndarray, block_info=None) -> np.ndarray:
    return np.full(status.shape, block_info[0]["chunk-location"][0], dtype=np.int16)


@dataclass
class FrameBlocks:
    """Raw frames as dask arrays ready for a per-chunk kernel, with the field of view of
    every slot: a stack of distinct fields of view and a (site, time) index into it (one per
    site for a single elevation map; per skymap period for a skymap tree)."""

    images: da.Array  # (site, time, y, x), one site and whole frames per chunk
    status: da.Array  # (site, time), chunked like images
    fovs: np.ndarray  # (k, y, x) bool: the distinct fields of view
    #: (site, time) int16 into fovs; None: each site's own (fovs[i] for site i)
    fov_index: np.ndarray | None
    elevation_sources: dict[str, Any]

    def map_chunks(
        self, stage: str, kernel: Callable, new_axes: dict[str, int], dtype: Any, **kwargs: Any
    ) -> da.Array:
        """``kernel(images, status, fov, **kwargs)`` on every chunk of whole frames.

        The kernel gets ``(1, n, y, x)`` frames, ``(1, n)`` statuses and the ``(1, y, x)``
        field of view of those slots, and returns ``(1, n, *new_axes)``; a chunk whose slots
        use several fields of view (a skymap change inside it) is given to the kernel in runs
        of one field of view each. Every task is named ``<stage>-<token>``, so the dashboard
        shows the pipeline's stages.
        """
        out = "st" + "".join(new_axes)
        name = f"{stage}-" + tokenize(
            kernel, self.images, self.status, self.fovs, self.fov_index, kwargs
        )
        # the whole stack is one key that every task shares
        fovs = da.from_array(self.fovs, chunks=-1, name=f"{stage}-" + tokenize(name, "fovs"))
        if self.fov_index is None:  # one chunk per site along "site": its position is its map
            fov_index = self.status.map_blocks(
                _site_position, dtype=np.int16, name=f"{stage}-" + tokenize(name, "index")
            )
        else:
            fov_index = da.from_array(
                self.fov_index, chunks=self.status.chunks, name=f"{stage}-" + tokenize(name, "i")
            )
        return da.blockwise(
            _per_fov,
            out,
            self.images,
            "styx",
            self.status,
            "st",
            fov_index,
            "st",
            fovs,
            "kyx",
            new_axes=new_axes,
            concatenate=True,
            dtype=dtype,
            meta=np.empty((0,) * len(out), dtype=dtype),
            name=name,
            kernel=kernel,
            **kwargs,
        )


def frame_blocks(
    frames: xr.Dataset,
    preset: Preset,
    elevation: ElevationSource | Mapping[str, ElevationSource] | SkymapTree,
    skymaps: str | SkymapTree | None = None,
) -> FrameBlocks:
    """Line up ``images`` and ``frame_status`` for per-chunk kernels and resolve the elevation
    maps into the field of view of every slot (see :func:`preprocess` for the arguments)."""
    for var in ("images", "frame_status"):
        if var not in frames:
            raise ArgumentError(f"frames: no {var!r} variable; open frames with open_themis")
    images, status = frames["images"].data, frames["frame_status"].data
    if not isinstance(images, da.Array):
        images, status = da.from_array(images, chunks=(1, -1, -1, -1)), da.from_array(status)
    if images.numblocks[2:] != (1, 1):
        images = images.rechunk({2: -1, 3: -1})  # CLAHE over a split frame would show seams
    if images.chunks[0] != (1,) * images.shape[0]:
        images = images.rechunk({0: 1})
    status = status.rechunk(images.chunks[:2])
    sites = [str(s) for s in frames["site"].values]
    tree = resolve_tree(elevation, skymaps)
    if tree is not None:
        elevations, fov_index, sources = resolve_per_slot(tree, sites, frames["time"].values)
        owners = {k: s for i, s in enumerate(sites) for k in np.unique(fov_index[i])}
    else:
        elevations, sources = site_elevations(sites, elevation)
        fov_index = None
        owners = dict(enumerate(sites))
    fovs = np.stack([field_of_view(e, preset.min_elevation) for e in elevations])
    for k, fov in enumerate(fovs):
        if not fov.any():
            raise ArgumentError(
                f"field of view: no pixel of the elevation map for site {owners.get(k)!r} is "
                f"at or above min_elevation={preset.min_elevation}"
            )
    return FrameBlocks(images, status, fovs, fov_index, sources)


def preprocess(
    frames: xr.Dataset,
    preset: str | Preset | Mapping[str, Any] = "themis-pa",
    elevation: ElevationSource | Mapping[str, ElevationSource] | SkymapTree = "circle",
    *,
    skymaps: str | SkymapTree | None = None,
    **overrides: Any,
) -> xr.DataArray:
    """Prepare frames as a model's input, lazily, one task per chunk of whole frames.

    Parameters
    ----------
    frames
        A frames dataset from :func:`auroradask.open_themis` (``images`` and
        ``frame_status``), chunked along ``time`` only.
    preset
        ``"themis-pa"`` (default), ``"pfrr-pa"``, a :class:`Preset` or a dict of parameters.
    elevation
        The elevation map for the field of view: a skymap ``.sav`` path, a ``.npy`` path, an
        array, ``"circle"`` (an ideal fisheye, the default), a horizon radius in pixels, or a
        mapping ``site → any of those`` for multi-site datasets; or ``"archive"`` with
        ``skymaps=``, or a :class:`SkymapTree` from :func:`auroradask.open_skymaps`.
    skymaps
        A skymap tree (path, URL or :func:`auroradask.open_skymaps`): every frame gets the
        skymap of its site valid at its time (latest valid-from date not after it, highest
        version of that date). Frames before a site's first skymap are an error unless the
        tree was opened with a ``fallback``.
    **overrides
        Preset parameters to change, e.g. ``tile_grid=(4, 4)``, ``min_elevation=10``.

    Returns
    -------
    xarray.DataArray
        ``(site, time, row, col, channel)``, float32 0..255 or uint8. Frames whose
        ``frame_status`` is not 0 are all zeros and cost no work. Attributes record the preset
        (``preset``, JSON) and the elevation map of each site (``elevation_source``, JSON:
        site → description; with a skymap tree, site → list of ``{"skymap", "start", "end"}``
        periods naming each file, relative to the tree, and the slots it served).
    """
    params = get_preset(preset, **overrides)
    blocks = frame_blocks(frames, params, elevation, skymaps)
    rows, cols = params.size
    data = blocks.map_chunks(
        "preprocess",
        _preprocess_chunk,
        {"r": rows, "k": cols, "c": params.channels},
        np.dtype(params.dtype),
        preset=params,
    )
    return xr.DataArray(
        data,
        dims=("site", "time", "row", "col", "channel"),
        coords=frame_coords(frames),
        name="model_input",
        attrs={
            "preset": params.to_json(),
            "elevation_source": json.dumps(blocks.elevation_sources),
        },
    )
