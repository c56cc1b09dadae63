"""Keograms: one line of sky through the zenith per frame, stacked over time.

A keogram is how an auroral physicist reads a night at a glance: the north–south line of
pixels through the zenith of every frame, one column per frame along a time axis. Here it is
a lazy ``keogram(site, time, keogram_row)`` uint16 DataArray built by one cheap task per
frames chunk (a fancy index into the frames), so it costs nothing beyond reading the frames
and can be computed in the same pass as a classification (``classify(..., keogram=True)``)
and stored beside the labels (~0.5 kB a frame against 128 kB for the frame).

Orientation. Frames are in the stream0 orientation whatever their source
(:func:`auroradask.open_themis_cdf` turns CDF frames back by 180°), and in it UCalgary
skymaps put geographic north near row 0 and east near column 0 (the sky seen from below;
the real cameras are turned by up to ~20°, see the skymaps' ``azimuth``). So
``keogram_row`` 0 is always the **northern** end of a north–south keogram and the
**eastern** end of an east–west one: drawn with row 0 at the top, north (or east) is up.

Geometry. Without a skymap the line is the frame's centre column (north–south) or centre
row (east–west), in pixel rows. With a skymap (its ``elevation`` and ``azimuth`` per
pixel) the line follows a great circle through the zenith at a chosen azimuth (geographic
north by default, any azimuth, or the local magnetic meridian from AACGM-v2), sampled at
``rows`` zenith angles evenly spaced from ``90 - min_elevation`` degrees on one side to the
same on the other, each taking the pixel nearest to that direction on the sky.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize

from .._results import frame_coords
from .._schema import FRAME_SHAPE
from ..analysis._magnetic import AACGM_LOCK, reset_aacgm
from ..errors import ArgumentError
from ..skymaps._skymap import read_skymap

#: The name of the keogram variable in a results dataset or store, and of its trailing dim.
KEOGRAM = "keogram"
KEOGRAM_ROW = "keogram_row"
DIRECTIONS = ("north-south", "east-west")
#: Ends of the line for each direction: keogram_row 0 is the first, the last row the second.
ENDS = {"north-south": ("N", "S"), "east-west": ("E", "W")}
#: Default lowest elevation of a skymap keogram: the horizon rows are trees and haze.
DEFAULT_MIN_ELEVATION = 10.0


def keogram_pixels(
    direction: str = "north-south",
    *,
    skymap: xr.Dataset | None = None,
    azimuth: float | None = None,
    rows: int | None = None,
    min_elevation: float = DEFAULT_MIN_ELEVATION,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The pixels a keogram takes from each frame, in ``keogram_row`` order.

    Parameters
    ----------
    direction
        ``"north-south"`` or ``"east-west"``.
    skymap
        A dataset from :func:`auroradask.read_skymap` (``elevation``, ``azimuth``); None: the
        frame's centre column (north–south) or row (east–west).
    azimuth
        With a skymap, the azimuth (degrees east of geographic north) of the first end of the
        line; default 0 (north–south) or 90 (east–west).
    rows
        Samples along the line (default: 256).
    min_elevation
        With a skymap, the elevation (degrees) of the two ends of the line.

    Returns
    -------
    pixel_row, pixel_col, zenith_angle
        ``(rows,)`` int pixel indices, and the signed zenith angle (degrees, positive toward
        the first end) of each sample; None without a skymap.
    """
    direction = check_direction(direction)
    if skymap is None:
        if azimuth is not None:
            raise ArgumentError(
                "azimuth: a keogram along an azimuth needs a skymap (skymap=...) for the "
                "geometry; without one the keogram is the frame's centre column or row"
            )
        n = FRAME_SHAPE[0] if direction == "north-south" else FRAME_SHAPE[1]
        line = np.arange(n)
        if rows is not None and rows != n:
            line = np.round(np.linspace(0, n - 1, _check_rows(rows))).astype(int)
        if direction == "north-south":  # row 0 is north: the centre column from the top
            return line, np.full(len(line), FRAME_SHAPE[1] // 2), None
        return np.full(len(line), FRAME_SHAPE[0] // 2), line, None  # column 0 is east
    for name in ("elevation", "azimuth"):
        if name not in skymap:
            raise ArgumentError(f"skymap: no {name!r}; pass a skymap from auroradask.read_skymap")
    elevation = np.asarray(skymap["elevation"].values, dtype=np.float64)
    pixel_azimuth = np.asarray(skymap["azimuth"].values, dtype=np.float64)
    if elevation.shape != FRAME_SHAPE or pixel_azimuth.shape != FRAME_SHAPE:
        raise ArgumentError(f"skymap: elevation and azimuth must be {FRAME_SHAPE}")
    if azimuth is None:
        azimuth = 0.0 if direction == "north-south" else 90.0
    if not 0 <= float(min_elevation) < 90:
        raise ArgumentError(f"min_elevation: must be in [0, 90), got {min_elevation!r}")
    n = _check_rows(rows if rows is not None else FRAME_SHAPE[0])
    sky = np.isfinite(elevation) & np.isfinite(pixel_azimuth) & (elevation >= 0)
    if not sky.any():
        raise ArgumentError("skymap: no pixel sees the sky (elevation all NaN or negative)")
    from scipy.spatial import cKDTree

    pix_r, pix_c = np.nonzero(sky)
    tree = cKDTree(_unit(elevation[sky], pixel_azimuth[sky]))
    zmax = 90.0 - float(min_elevation)
    zenith_angle = np.linspace(zmax, -zmax, n)
    target_az = np.where(zenith_angle >= 0, float(azimuth), float(azimuth) + 180.0)
    _, nearest = tree.query(_unit(90.0 - np.abs(zenith_angle), target_az))
    return pix_r[nearest], pix_c[nearest], zenith_angle


def _unit(elevation: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
    """East, north, up unit vectors of sky directions (degrees)."""
    el, az = np.radians(elevation), np.radians(azimuth)
    return np.stack([np.cos(el) * np.sin(az), np.cos(el) * np.cos(az), np.sin(el)], axis=-1)


def _check_rows(rows: Any) -> int:
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 2:
        raise ArgumentError(f"rows: expected a whole number of samples >= 2, got {rows!r}")
    return int(rows)


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ArgumentError(f"direction: expected one of {DIRECTIONS}, got {direction!r}")
    return direction


def magnetic_azimuth(
    latitude: float, longitude: float, when: Any, altitude_km: float = 110.0
) -> float:
    """Azimuth (degrees east of geographic north) of AACGM-v2 magnetic north at a site.

    The bearing from the site to the point half a degree of magnetic latitude poleward of it
    along its magnetic meridian, at ``altitude_km`` and time ``when``: the direction a
    keogram along the magnetic meridian runs in.
    """
    import aacgmv2

    if not (np.isfinite(latitude) and np.isfinite(longitude)):
        raise ArgumentError("azimuth: 'magnetic' needs the site's latitude and longitude")
    moment = pd.Timestamp(when).to_pydatetime()
    with AACGM_LOCK:
        reset_aacgm(moment.year)
        mlat, mlon, _ = aacgmv2.convert_latlon(latitude, longitude, altitude_km, moment, "G2A")
        lat2, lon2, _ = aacgmv2.convert_latlon(mlat + 0.5, mlon, altitude_km, moment, "A2G")
    if not (np.isfinite(lat2) and np.isfinite(lon2)):
        raise ArgumentError(f"azimuth: no AACGM-v2 magnetic meridian at {latitude}, {longitude}")
    phi1, phi2 = np.radians(latitude), np.radians(lat2)
    dlon = np.radians(lon2 - longitude)
    bearing = np.degrees(
        np.arctan2(
            np.sin(dlon) * np.cos(phi2),
            np.cos(phi1) * np.sin(phi2) - np.sin(phi1) * np.cos(phi2) * np.cos(dlon),
        )
    )
    return float(bearing % 360.0)


def _site_skymaps(sites: list[str], skymap: Any) -> list[xr.Dataset | None]:
    """One skymap dataset (or None) per site from a path, a dataset or a mapping of them."""

    def one(value: Any) -> xr.Dataset | None:
        if value is None:
            return None
        if isinstance(value, xr.Dataset):
            return value
        if isinstance(value, str | os.PathLike):
            return read_skymap(value)
        raise ArgumentError(
            f"skymap: expected a .sav path or a dataset from read_skymap, got "
            f"{type(value).__name__}"
        )

    if isinstance(skymap, Mapping) and not isinstance(skymap, xr.Dataset):
        missing = [s for s in sites if s not in skymap]
        if missing:
            raise ArgumentError(f"skymap: no skymap given for sites {missing!r}")
        return [one(skymap[s]) for s in sites]
    shared = one(skymap)
    return [shared] * len(sites)


def keogram(
    frames: xr.Dataset,
    *,
    direction: str = "north-south",
    skymap: str | os.PathLike | xr.Dataset | Mapping[str, Any] | None = None,
    azimuth: float | str | None = None,
    rows: int | None = None,
    min_elevation: float = DEFAULT_MIN_ELEVATION,
    altitude_km: float = 110.0,
) -> xr.DataArray:
    """The keogram of frames, lazily: one line of pixels through the zenith per frame.

    One task per frames chunk takes the line's pixels from every frame of the chunk (a fancy
    index: no copy of the frames), so the keogram of a night costs one read of its frames,
    and none more when it is computed with the classification (``classify(keogram=True)``).

    Parameters
    ----------
    frames
        A frames dataset (:func:`auroradask.open_themis`, :func:`auroradask.open_themis_cdf`,
        :func:`auroradask.open_images`); all sources share the stream0 orientation, so north
        is north for each.
    direction
        ``"north-south"`` (default; ``keogram_row`` 0 is the northern end) or ``"east-west"``
        (row 0 the eastern end).
    skymap
        None (default): the frame's centre column (or row), in pixel rows: the zenith line of
        an ideal, north-aligned camera. A skymap (``.sav`` path, :func:`auroradask.read_skymap`
        dataset, or a mapping site → either): the line through the real zenith along
        ``azimuth``, sampled evenly in zenith angle.
    azimuth
        With a skymap: degrees east of geographic north of the line's first end (default 0
        for north–south, 90 for east–west), or ``"magnetic"``: the AACGM-v2 magnetic meridian
        at each site (at ``altitude_km``, at the middle of the frames' time span; east–west
        then means magnetic east).
    rows
        Samples along the line (default 256: every pixel row of the centre column).
    min_elevation
        With a skymap: elevation in degrees of the line's two ends (default 10).
    altitude_km
        For ``azimuth="magnetic"``.

    Returns
    -------
    xarray.DataArray
        ``keogram(site, time, keogram_row)`` uint16 raw counts (0 where the slot has no
        frame, as in ``images``), chunked like the frames along time; coordinates of the
        frames along site and time, ``keogram_row`` (0..rows-1), ``pixel_row`` and
        ``pixel_col`` (site, keogram_row): the pixel each sample takes, and with a skymap
        ``zenith_angle`` (keogram_row, degrees, positive toward the first end) and
        ``elevation``. Attributes say the direction, its ends, the geometry and, with a
        skymap, ``min_elevation``, so that a stored keogram can be drawn on an elevation axis.

    Raises
    ------
    ArgumentError
        For a bad direction or rows, an azimuth without a skymap, or frames without
        ``images``.
    """
    if "images" not in frames:
        raise ArgumentError("frames: no 'images' variable; open frames with open_themis")
    direction = check_direction(direction)
    sites = [str(s) for s in frames["site"].values]
    skymaps = _site_skymaps(sites, skymap)
    if isinstance(azimuth, str) and azimuth != "magnetic":
        raise ArgumentError(f"azimuth: expected degrees or 'magnetic', got {azimuth!r}")
    line = _keogram_lines(frames, skymaps, direction, azimuth, rows, min_elevation, altitude_km)
    data = _keogram_dask(frames["images"].data, line.pixel_row, line.pixel_col)
    coords, attrs = _keogram_labels(frames, line, direction, skymaps, min_elevation)
    return xr.DataArray(
        data, dims=("site", "time", KEOGRAM_ROW), coords=coords, name=KEOGRAM, attrs=attrs
    )


def _keogram_labels(
    frames: xr.Dataset,
    line: _Lines,
    direction: str,
    skymaps: list[xr.Dataset | None],
    min_elevation: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keogram's coordinates and attributes: what a store keeps so that a keogram can
    be drawn later with its ends, its geometry and (with skymaps) an elevation axis."""
    n = line.pixel_row.shape[1]
    coords: dict[str, Any] = frame_coords(frames)
    coords[KEOGRAM_ROW] = (
        KEOGRAM_ROW,
        np.arange(n),
        {"long_name": f"sample along the keogram line, from {ENDS[direction][0]}"},
    )
    coords["pixel_row"] = (("site", KEOGRAM_ROW), line.pixel_row)
    coords["pixel_col"] = (("site", KEOGRAM_ROW), line.pixel_col)
    first, last = ENDS[direction]
    attrs: dict[str, Any] = {
        "long_name": f"keogram ({direction}), raw counts",
        "units": "1",
        "direction": direction,
        "first_end": first,
        "last_end": last,
    }
    if line.zenith_angle is None:
        along = "column" if direction == "north-south" else "row"
        attrs["keogram_line"] = f"pixel {along} {FRAME_SHAPE[1 if along == 'column' else 0] // 2}"
        return coords, attrs
    sites = [str(s) for s in frames["site"].values]
    zenith_angle = line.zenith_angle
    coords["zenith_angle"] = (KEOGRAM_ROW, zenith_angle.astype(np.float32))
    coords["elevation"] = (KEOGRAM_ROW, (90.0 - np.abs(zenith_angle)).astype(np.float32))
    attrs["keogram_line"] = "skymap"
    attrs["min_elevation"] = float(min_elevation)
    attrs["azimuth"] = json.dumps(dict(zip(sites, line.azimuths, strict=True)))
    attrs["skymap"] = json.dumps(
        {s: str(k.attrs.get("path", "")) for s, k in zip(sites, skymaps, strict=True)}
    )
    return coords, attrs


@dataclass(frozen=True)
class _Lines:
    """The keogram line of every site: the pixels it takes, in ``keogram_row`` order."""

    pixel_row: np.ndarray  # (site, keogram_row) int16
    pixel_col: np.ndarray  # (site, keogram_row) int16
    azimuths: list[float | None]  # of each site's line's first end (None: no skymap)
    zenith_angle: np.ndarray | None  # (keogram_row,) degrees, with skymaps


def _keogram_lines(
    frames: xr.Dataset,
    skymaps: list[xr.Dataset | None],
    direction: str,
    azimuth: float | str | None,
    rows: int | None,
    min_elevation: float,
    altitude_km: float,
) -> _Lines:
    pixel_rows, pixel_cols, azimuths, zenith_angle = [], [], [], None
    for i, sky in enumerate(skymaps):
        site_azimuth = azimuth
        if azimuth == "magnetic":
            if sky is None:
                raise ArgumentError("azimuth: 'magnetic' needs a skymap (skymap=...)")
            site_azimuth = _site_magnetic_azimuth(frames, i, sky, altitude_km)
            if direction == "east-west":
                site_azimuth = (site_azimuth + 90.0) % 360.0
        r, c, z = keogram_pixels(
            direction, skymap=sky, azimuth=site_azimuth, rows=rows, min_elevation=min_elevation
        )
        pixel_rows.append(r)
        pixel_cols.append(c)
        if sky is not None and site_azimuth is None:
            site_azimuth = 0.0 if direction == "north-south" else 90.0
        azimuths.append(None if site_azimuth is None else round(float(site_azimuth), 3))
        if zenith_angle is None:
            zenith_angle = z
    lengths = {len(r) for r in pixel_rows}
    if len(lengths) > 1 or (zenith_angle is not None and any(s is None for s in skymaps)):
        raise ArgumentError("skymap: give a skymap for every site or for none")
    return _Lines(
        np.stack(pixel_rows).astype(np.int16),
        np.stack(pixel_cols).astype(np.int16),
        azimuths,
        zenith_angle,
    )


def _keogram_dask(images: Any, pixel_row: np.ndarray, pixel_col: np.ndarray) -> da.Array:
    """``(site, time, keogram_row)`` uint16: one task per frames chunk (one site per chunk,
    whole frames), a fancy index into its frames."""
    if not isinstance(images, da.Array):
        images = da.from_array(images, chunks=(1, -1, -1, -1))
    if images.numblocks[2:] != (1, 1):
        images = images.rechunk({2: -1, 3: -1})
    if images.chunks[0] != (1,) * images.shape[0]:
        images = images.rechunk({0: 1})  # one site per chunk, as the classification's
    n = pixel_row.shape[1]
    return da.map_blocks(
        _keogram_block,
        images,
        pixel_row=pixel_row,
        pixel_col=pixel_col,
        drop_axis=3,
        chunks=(images.chunks[0], images.chunks[1], (n,)),
        dtype=np.uint16,
        meta=np.empty((0, 0, 0), dtype=np.uint16),
        name="keogram-" + tokenize(images, pixel_row, pixel_col),
    )


def _site_magnetic_azimuth(frames: xr.Dataset, i: int, sky: xr.Dataset, altitude_km) -> float:
    lat = float(sky.attrs.get("latitude", np.nan))
    lon = float(sky.attrs.get("longitude", np.nan))
    if not (np.isfinite(lat) and np.isfinite(lon)) and "latitude" in frames.coords:
        lat = float(frames["latitude"].values[i])
        lon = float(frames["longitude"].values[i])
    times = frames["time"].values
    middle = times[len(times) // 2] if len(times) else np.datetime64("2000-01-01")
    return magnetic_azimuth(lat, lon, middle, altitude_km)


def keogram_kernel(images: np.ndarray, pixel_row: np.ndarray, pixel_col: np.ndarray):
    """``(..., y, x)`` frames → ``(..., rows)``: the line's pixels of each frame."""
    return images[..., pixel_row, pixel_col]


def _keogram_block(images: np.ndarray, pixel_row, pixel_col, block_info=None) -> np.ndarray:
    lo, hi = block_info[0]["array-location"][0]
    out = np.empty((*images.shape[:2], pixel_row.shape[1]), dtype=np.uint16)
    for k, site in enumerate(range(lo, hi)):
        out[k] = keogram_kernel(images[k], pixel_row[site], pixel_col[site])
    return out


def keogram_axis(keo: xr.DataArray) -> dict[str, Any]:
    """How to label a keogram's ``keogram_row`` axis, from its attributes (kept in a store).

    Returns ``{"label", "ends", "ticks", "ticklabels"}``: elevation ticks for a skymap
    keogram, pixel rows otherwise; ``ends`` names the first and last rows' directions.
    """
    n = keo.sizes[KEOGRAM_ROW]
    attrs = keo.attrs
    ends = (attrs.get("first_end", "N"), attrs.get("last_end", "S"))
    if attrs.get("keogram_line") == "skymap":
        zmax = 90.0 - float(attrs.get("min_elevation", DEFAULT_MIN_ELEVATION))
        zenith = np.linspace(zmax, -zmax, n)
        ticks, labels = [], []
        for side, sign in ((ends[0], 1), (ends[1], -1)):
            for el in (90 - zmax, 30, 60):
                z = sign * (90.0 - el)
                if abs(z) <= zmax + 1e-9:
                    ticks.append(float(np.interp(-z, -zenith, np.arange(n))))
                    labels.append(f"{el:g}° {side}")
        ticks.append(float(np.interp(0.0, -zenith, np.arange(n))))
        labels.append("90°")
        order = np.argsort(ticks)
        return {
            "label": "elevation",
            "ends": ends,
            "ticks": [ticks[k] for k in order],
            "ticklabels": [labels[k] for k in order],
        }
    line = str(attrs.get("keogram_line", "pixel column 128")).removeprefix("pixel ")
    along = "row" if line.startswith("column") else "column"
    step = max(1, n // 4)
    ticks = list(range(0, n, step))
    return {
        "label": f"pixel {along} (at {line})",
        "ends": ends,
        "ticks": ticks,
        "ticklabels": [str(t) for t in ticks],
    }
