"""Synthetic all-sky frames with known moving, pulsating patches (a plain helper module).

A frame is a smooth background (dark level + a radial glow + slow drift in time), Poisson-ish
Gaussian noise, the masked corners beyond the lens at the dark level, and top-hat discs
("patches") of known radius moving at constant velocity between a birth and a death frame,
switched on and off with a duty cycle as pulsating patches are. The geometry is a flat
grid of ``km_per_px`` kilometres per pixel, rows pointing south, columns east.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from auroradask._schema import FRAME_SHAPE, SLOT
from auroradask.skymaps._skymap import EARTH_RADIUS_KM, geometry_from_corners

CENTER = ((FRAME_SHAPE[0] - 1) / 2, (FRAME_SHAPE[1] - 1) / 2)
HORIZON = 128.0


@dataclass(frozen=True)
class Patch:
    """A disc of ``radius`` px, at ``(row, col)`` at frame ``birth``, moving ``(v_row, v_col)``
    px per frame, alive for frames ``birth .. death - 1``, on for ``on`` frames out of
    every ``period`` (phase ``phase``), ``amplitude`` counts above the background."""

    row: float
    col: float
    v_row: float
    v_col: float
    radius: float
    birth: int
    death: int
    amplitude: float = 3000.0
    period: int = 5
    on: int = 4
    phase: int = 0

    def position(self, frame: int) -> tuple[float, float]:
        dt = frame - self.birth
        return self.row + self.v_row * dt, self.col + self.v_col * dt

    def visible(self, frame: int) -> bool:
        alive = self.birth <= frame < self.death
        return alive and (frame - self.birth + self.phase) % self.period < self.on


def default_patches() -> list[Patch]:
    """Four patches: births and deaths at different frames, speeds 0.3 to 0.8 px/frame."""
    return [
        Patch(80, 70, 0.2, 0.6, 7, birth=0, death=70, phase=0),
        Patch(150, 160, -0.5, 0.3, 9, birth=10, death=95, phase=2, amplitude=2500),
        Patch(120, 60, 0.0, -0.3, 6, birth=30, death=90, phase=1, amplitude=4000),
        Patch(70, 170, 0.4, 0.0, 8, birth=45, death=100, phase=3, amplitude=2000),
    ]


def render(
    patches: list[Patch], n_frames: int, *, noise: float = 60.0, seed: int = 0
) -> np.ndarray:
    """``(n, 256, 256)`` uint16 frames."""
    rng = np.random.default_rng(seed)
    rows, cols = np.indices(FRAME_SHAPE, dtype=np.float32)
    radius = np.hypot(rows - CENTER[0], cols - CENTER[1])
    lens = radius <= HORIZON
    glow = 4000.0 + 2500.0 * np.clip(1 - radius / HORIZON, 0, 1)
    out = np.empty((n_frames, *FRAME_SHAPE), dtype=np.uint16)
    for i in range(n_frames):
        frame = glow * (1 + 0.05 * np.sin(i / 40.0))
        for p in patches:
            if p.visible(i):
                r, c = p.position(i)
                frame = frame + p.amplitude * (np.hypot(rows - r, cols - c) <= p.radius)
        frame = frame + rng.normal(0, noise, FRAME_SHAPE)
        frame = np.where(lens, frame, 3500.0)
        out[i] = np.clip(frame, 0, 65535).astype(np.uint16)
    return out


def dataset(
    frames: np.ndarray,
    *,
    site: str = "synt",
    start: str = "2020-01-01T06:00",
    chunk: int = 20,
    bad: tuple[int, ...] = (),
) -> xr.Dataset:
    """Frames as :func:`auroradask.open_themis` gives them: chunks of ``chunk`` frames."""
    n = frames.shape[0]
    times = np.datetime64(pd.Timestamp(start).to_datetime64(), "ns") + np.arange(n) * SLOT
    status = np.zeros((1, n), dtype=np.int8)
    status[0, list(bad)] = 3
    return xr.Dataset(
        {
            "images": (("site", "time", "y", "x"), da.from_array(frames[None], chunks=(1, chunk, -1, -1))),
            "frame_status": (("site", "time"), da.from_array(status, chunks=(1, chunk))),
        },
        coords={"site": [site], "time": times},
    )  # fmt: skip


def flat_geometry(km_per_px: float = 1.0, lat0: float = 60.0, lon0: float = -100.0):
    """A geometry where pixels are ``km_per_px`` squares; rows go south, columns east.

    Returns the :class:`PatchGeometry` and the function converting a velocity in px/frame
    to (east, north) m/s.
    """
    radius = EARTH_RADIUS_KM + 110.0
    r, c = np.indices((FRAME_SHAPE[0] + 1, FRAME_SHAPE[1] + 1), dtype=float)
    # corner (r, c) sits at r - 128 px south, c - 128 px east of the centre
    lat = lat0 - np.degrees((r - 128) * km_per_px / radius)
    lon = lon0 + np.degrees((c - 128) * km_per_px / (radius * np.cos(np.radians(lat))))
    geometry = geometry_from_corners(lat, lon, 110.0)

    def to_m_s(v_row: float, v_col: float) -> tuple[float, float]:
        scale = km_per_px * 1000.0 / SLOT.astype("timedelta64[s]").astype(float)
        return v_col * scale, -v_row * scale

    return geometry, to_m_s
