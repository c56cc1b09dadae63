"""The labelling page's pictures: the night's keogram and thumbnails of its frames.

The page is one self-contained HTML file, so every image is a ``data:`` URI inside it and
its size is what the images weigh. This module makes them: :func:`keogram_rgb` (the
keogram's counts as grey levels, averaged down to at most :data:`KEOGRAM_MAX_COLUMNS`),
:func:`thumbnail` (one frame as a JPEG), and :func:`choose_thumbnails`, which spreads
thumbnails evenly over the night within a budget (a count, or a size of page:
:func:`thumbnail_budget`), reading the frames from the archive a batch at a time.
"""

from __future__ import annotations

import base64
import math
import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._schema import SLOT
from ..errors import ArgumentError
from ..io._stream0 import open_themis
from ..visual._inputs import frames_of
from ..visual._montage import stretch

#: Thumbnails by default: as many as 20 MB of the page holds (about 2,200 frames).
DEFAULT_THUMBNAILS = "20MB"
#: JPEG quality of the thumbnails (256 x 256, about 6.5 kB a frame of the sample) and keogram.
THUMBNAIL_QUALITY = 80
KEOGRAM_QUALITY = 88
#: Widest keogram image stored (slots): a longer span is averaged over neighbouring slots.
KEOGRAM_MAX_COLUMNS = 14_400
#: Colour of keogram slots without a frame (as in the quicklooks).
NO_FRAME_RGB = (243, 230, 208)
#: Frames read from the archive per step when making thumbnails (8 MB of raw counts).
_READ_BATCH = 64
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def thumbnail_budget(value: int | str | None) -> tuple[str, int]:
    """``("count", n)`` for a number of frames, ``("bytes", n)`` for a size such as ``"20MB"``.

    Sizes are decimal (``kB``, ``MB``, ``GB``) or binary (``KiB``, ``MiB``, ``GiB``); None or
    0 means no thumbnails.
    """
    if value is None:
        return "count", 0
    if isinstance(value, bool):
        raise ArgumentError(f"thumbnails: expected a count or a size such as '20MB', got {value!r}")
    if isinstance(value, int | np.integer):
        if value < 0:
            raise ArgumentError(f"thumbnails: expected a count >= 0, got {value}")
        return "count", int(value)
    text = str(value).strip()
    if text.isdigit():
        return "count", int(text)
    match = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([A-Za-z]+)", text)
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if unit is None:
        raise ArgumentError(
            f"thumbnails: expected a count (500) or a size with a unit (20MB, 500kB, 1GiB), "
            f"got {value!r}"
        )
    return "bytes", int(float(match.group(1)) * unit)


def _data_uri(kind: str, data: bytes) -> str:
    return f"data:image/{kind};base64," + base64.b64encode(data).decode("ascii")


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    import cv2

    if image.ndim == 3:
        image = image[..., ::-1]  # OpenCV writes BGR
    ok, encoded = cv2.imencode(
        ".jpg", np.ascontiguousarray(image), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise RuntimeError("OpenCV could not encode a JPEG")
    return encoded.tobytes()


def keogram_rgb(image: np.ndarray, contrast: tuple[float, float] = (1, 99)) -> np.ndarray:
    """``(rows, columns)`` counts (NaN: no frame) → ``(rows, columns, 3)`` uint8 grey levels
    between two percentiles of the finite counts, slots without a frame in :data:`NO_FRAME_RGB`.

    Columns beyond :data:`KEOGRAM_MAX_COLUMNS` are averaged in groups (NaN ignored).
    """
    columns = image.shape[1]
    step = max(1, math.ceil(columns / KEOGRAM_MAX_COLUMNS))
    if step > 1:
        pad = (-columns) % step
        padded = np.pad(image, ((0, 0), (0, pad)), constant_values=np.nan)
        groups = padded.reshape(image.shape[0], -1, step)
        with warnings.catch_warnings():  # a group of slots without a frame stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            image = np.nanmean(groups, axis=2)
    finite = image[np.isfinite(image)]
    lo, hi = np.percentile(finite, contrast) if finite.size else (0.0, 1.0)
    grey = np.clip((image - lo) / max(hi - lo, 1.0), 0, 1) * 255
    out = np.repeat(np.nan_to_num(grey).round().astype(np.uint8)[..., None], 3, axis=2)
    out[~np.isfinite(image)] = NO_FRAME_RGB
    return out


def thumbnail(frame: np.ndarray, quality: int = THUMBNAIL_QUALITY) -> bytes | None:
    """A frame as a JPEG, stretched between percentiles 1 and 99.5 of its own counts (a
    bright frame would darken a shared scale); None for a frame of zeros (missing)."""
    if not np.asarray(frame).any():
        return None
    grey = (stretch(frame, (1, 99.5)) * 255).round().astype(np.uint8)
    return _jpeg(grey, quality)


def _evenly(n: int, k: int) -> np.ndarray:
    """``k`` indices spread evenly over ``range(n)`` (the first and last included)."""
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.round(np.linspace(0, n - 1, min(k, n))).astype(np.int64))


class _Thumbnails:
    """Thumbnails of chosen grid slots, read from the archive a batch at a time."""

    def __init__(self, source: Any, site: str, grid: np.ndarray) -> None:
        if isinstance(source, xr.Dataset):
            frames = frames_of(source, site, pd.Timestamp(grid[0]), pd.Timestamp(grid[-1]) + SLOT)
        else:
            frames = open_themis(
                source, site, pd.Timestamp(grid[0]), pd.Timestamp(grid[-1]) + SLOT, chunk_minutes=1
            )
        self.images = frames["images"].isel(site=0)
        self.time = frames["time"].values
        self.grid = grid
        self.done: dict[int, str | None] = {}

    def encode(self, slots: np.ndarray) -> dict[int, str]:
        """Data URIs of the slots (those with a frame), reading only the ones not read yet."""
        todo = [int(s) for s in slots if int(s) not in self.done]
        for k in range(0, len(todo), _READ_BATCH):
            batch = np.array(todo[k : k + _READ_BATCH])
            where = np.searchsorted(self.time, self.grid[batch])
            found = (where < len(self.time)) & (
                self.time[np.minimum(where, len(self.time) - 1)] == self.grid[batch]
            )
            for slot in batch[~found]:
                self.done[int(slot)] = None
            if found.any():
                stack = np.asarray(self.images.isel(time=where[found]).values)
                for slot, frame in zip(batch[found], stack, strict=True):
                    jpeg = thumbnail(frame)
                    self.done[int(slot)] = None if jpeg is None else _data_uri("jpeg", jpeg)
        return {int(s): self.done[int(s)] for s in slots if self.done.get(int(s))}


def _item_bytes(slot: int, uri: str) -> int:
    """What one thumbnail adds to the page's data: its URI, its slot number, JSON quoting."""
    return len(uri) + len(str(slot)) + 4


def choose_thumbnails(candidates: np.ndarray, budget: tuple[str, int], encode) -> dict[int, str]:
    """Thumbnails of frames spread evenly over ``candidates`` (slot numbers), as many as the
    budget allows: ``("count", n)`` frames, or ``("bytes", n)`` of page.

    For a size, a probe of 12 frames gives the mean size, which gives how many fit; if the
    chosen ones still exceed the budget, every other one is dropped until they fit.
    ``encode(slots) -> {slot: data URI}`` reads and encodes (and may cache).
    """
    kind, amount = budget
    if amount <= 0 or len(candidates) == 0:
        return {}
    if kind == "count":
        return encode(candidates[_evenly(len(candidates), amount)])
    probe = encode(candidates[_evenly(len(candidates), 12)])
    if not probe:
        return {}
    mean = np.mean([_item_bytes(s, u) for s, u in probe.items()])
    fit = int(amount // (mean * 1.03))
    chosen = encode(candidates[_evenly(len(candidates), fit)])
    slots = sorted(chosen)
    while slots and sum(_item_bytes(s, chosen[s]) for s in slots) > amount:
        slots = slots[::2]
    return {s: chosen[s] for s in slots}


__all__ = ["choose_thumbnails", "keogram_rgb", "thumbnail", "thumbnail_budget"]
