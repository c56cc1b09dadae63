"""Elevation maps: UCalgary skymap ``.sav`` files, ``.npy`` files, arrays, or a computed circle.

An elevation map gives, for every pixel of a 256×256 THEMIS frame, the elevation angle in
degrees of the sky it sees; NaN where the pixel sees no sky (outside the lens).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from .._schema import FRAME_SHAPE
from ..errors import ArgumentError, SourceNotFoundError
from ..io._remote import fetch, is_url

#: Mean Earth radius (km) for the mapped sphere: the mapping altitude is added to it.
EARTH_RADIUS_KM = 6371.0
#: An elevation map can be given as any of these; see :func:`elevation_map`.
ElevationSource = str | os.PathLike | np.ndarray | xr.DataArray | xr.Dataset | float


def read_skymap(path: str | os.PathLike) -> xr.Dataset:
    """Read a University of Calgary THEMIS skymap (IDL ``.sav``).

    Parameters
    ----------
    path
        A ``themis_skymap_<site>_<date>-+_vNN.sav`` file, as published beside the raw archive
        under ``THEMIS/asi/skymaps/<site>/<site>_YYYYMMDD/``.

    Returns
    -------
    xarray.Dataset
        ``elevation(y, x)`` and ``azimuth(y, x)`` in degrees (NaN outside the field of
        view); where the file has them (``FULL_MAP_*``), ``map_latitude`` and
        ``map_longitude`` (map_altitude, y_corner, x_corner): the pixel corners' geodetic
        latitude and longitude (degrees east, -180..180) at each mapping altitude
        (``map_altitude``, m). Attributes ``site``, ``imager``, ``latitude``, ``longitude`` (degrees
        east, -180..180), ``altitude`` and ``path``.

    Raises
    ------
    SourceNotFoundError
        If ``path`` does not exist.
    ArgumentError
        If the file is not an IDL save file holding a skymap record.
    """
    from scipy.io import readsav

    path = os.fspath(path)
    if not os.path.exists(path):
        raise SourceNotFoundError(f"skymap: {path!r} does not exist")
    try:
        with warnings.catch_warnings():  # "Not able to verify number of bytes": harmless
            warnings.simplefilter("ignore", UserWarning)
            record = readsav(path, python_dict=True)["skymap"]
        elevation = np.asarray(record["FULL_ELEVATION"][0], dtype=np.float32)
        azimuth = np.asarray(record["FULL_AZIMUTH"][0], dtype=np.float32)
        attrs = {
            "site": _text(record["SITE_UID"][0]),
            "imager": _text(record["IMAGER_UID"][0]),
            "latitude": float(record["SITE_MAP_LATITUDE"][0]),
            "longitude": (float(record["SITE_MAP_LONGITUDE"][0]) + 180.0) % 360.0 - 180.0,
            "altitude": float(record["SITE_MAP_ALTITUDE"][0]),
            "path": os.path.basename(path),
        }
    except Exception as error:  # noqa: BLE001 - readsav raises many kinds on a bad file
        raise ArgumentError(
            f"skymap: {path!r} is not a THEMIS skymap .sav file ({error})"
        ) from None
    _check_shape(elevation, f"skymap {path!r}")
    dims = ("y", "x")
    variables = {
        "elevation": (dims, elevation, {"units": "degrees", "long_name": "elevation"}),
        "azimuth": (dims, azimuth, {"units": "degrees", "long_name": "azimuth"}),
    }
    coords = {}
    names = record.dtype.names
    if {"FULL_MAP_LATITUDE", "FULL_MAP_LONGITUDE", "FULL_MAP_ALTITUDE"} <= set(names):
        # (altitude, y + 1, x + 1): the latitude and longitude of every pixel's corners at
        # each mapping altitude (UCalgary's convention), for georeferencing
        latitude = np.asarray(record["FULL_MAP_LATITUDE"][0], dtype=np.float32)
        longitude = np.asarray(record["FULL_MAP_LONGITUDE"][0], dtype=np.float32)
        longitude = (longitude + 180.0) % 360.0 - 180.0
        altitude = np.atleast_1d(np.asarray(record["FULL_MAP_ALTITUDE"][0], dtype=np.float64))
        corner = ("map_altitude", "y_corner", "x_corner")
        if latitude.ndim == 3 and latitude.shape[0] == altitude.size:
            coords["map_altitude"] = (
                "map_altitude",
                altitude,
                {"units": "m", "long_name": "mapping altitude"},
            )
            variables["map_latitude"] = (
                corner,
                latitude,
                {"units": "degrees_north", "long_name": "latitude of pixel corners"},
            )
            variables["map_longitude"] = (
                corner,
                longitude,
                {"units": "degrees_east", "long_name": "longitude of pixel corners"},
            )
    return xr.Dataset(variables, coords=coords, attrs=attrs)


# --------------------------------------------------------------- georeferencing: pixel areas


@dataclass(frozen=True)
class PatchGeometry:
    """Per-pixel geometry of a camera at one emission altitude.

    ``pixel_km2`` is the area each pixel sees on the sphere at ``altitude_km`` (NaN where the
    skymap maps nothing); ``xyz`` the unit vector of each pixel's centre, ``(3, y, x)``;
    ``elevation`` the skymap's elevation map (degrees, NaN outside the lens).
    """

    pixel_km2: np.ndarray
    xyz: np.ndarray
    elevation: np.ndarray
    altitude_km: float
    source: str = ""


def read_patch_geometry(path: str | os.PathLike, altitude_km: float = 110.0) -> PatchGeometry:
    """The geometry of a UCalgary THEMIS skymap ``.sav`` at one of its mapping altitudes.

    ``FULL_MAP_LATITUDE``/``FULL_MAP_LONGITUDE`` (:func:`read_skymap`'s ``map_latitude`` /
    ``map_longitude``) are 257×257 grids of pixel corners, one per mapping altitude (90, 110,
    150 km). A pixel's area is that of its corner quadrilateral (two triangles, on the sphere
    of radius Earth + altitude; the triangles are small enough to be flat); its centre is the
    normalised mean of its corners' unit vectors.

    Raises
    ------
    SourceNotFoundError
        If ``path`` does not exist.
    ArgumentError
        If it is not a skymap, has no mapping grids, or ``altitude_km`` is not one of its
        mapping altitudes.
    """
    skymap = read_skymap(path)
    name = os.path.basename(os.fspath(path))
    if "map_latitude" not in skymap:
        raise ArgumentError(f"skymap: {name} has no FULL_MAP_LATITUDE/LONGITUDE mapping grids")
    altitudes = skymap["map_altitude"].values / 1000.0
    matches = np.flatnonzero(np.isclose(altitudes, altitude_km, atol=0.5))
    if matches.size == 0:
        raise ArgumentError(
            f"altitude_km: {altitude_km:g} km is not a mapping altitude of {name} "
            f"(it has {', '.join(f'{a:g}' for a in altitudes)} km)"
        )
    index = int(matches[0])
    return geometry_from_corners(
        skymap["map_latitude"].values[index],
        skymap["map_longitude"].values[index],
        altitude_km,
        elevation=skymap["elevation"].values,
        source=name,
    )


def geometry_from_corners(
    corner_lat: np.ndarray,
    corner_lon: np.ndarray,
    altitude_km: float,
    *,
    elevation: np.ndarray | None = None,
    source: str = "corners",
) -> PatchGeometry:
    """A :class:`PatchGeometry` from ``(257, 257)`` pixel-corner latitudes/longitudes (deg)."""
    corner_lat = np.asarray(corner_lat, dtype=float)
    corner_lon = np.asarray(corner_lon, dtype=float)
    expected = (FRAME_SHAPE[0] + 1, FRAME_SHAPE[1] + 1)
    if corner_lat.shape != expected or corner_lon.shape != expected:
        raise ArgumentError(f"corner_lat: corner grids must be {expected}, got {corner_lat.shape}")
    corners = _unit_vectors(corner_lat, corner_lon)  # (3, 257, 257)
    radius = EARTH_RADIUS_KM + altitude_km
    p00, p01 = corners[:, :-1, :-1], corners[:, :-1, 1:]
    p10, p11 = corners[:, 1:, :-1], corners[:, 1:, 1:]
    tri1 = np.linalg.norm(np.cross(p01 - p00, p10 - p00, axis=0), axis=0)
    tri2 = np.linalg.norm(np.cross(p01 - p11, p10 - p11, axis=0), axis=0)
    pixel_km2 = 0.5 * (tri1 + tri2) * radius**2
    centre = p00 + p01 + p10 + p11
    centre = centre / np.linalg.norm(centre, axis=0)
    if elevation is None:
        elevation = np.where(np.isfinite(pixel_km2), 90.0, np.nan).astype(np.float32)
    return PatchGeometry(pixel_km2, centre, np.asarray(elevation, np.float32), altitude_km, source)


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def lat_lon_of(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y, z = xyz
    lat = np.degrees(np.arctan2(z, np.hypot(x, y)))
    lon = (np.degrees(np.arctan2(y, x)) + 180.0) % 360.0 - 180.0
    return lat, lon


def circle_elevation(horizon_radius: float = 128.0, center: tuple[float, float] | None = None):
    """Elevation of an ideal equidistant fisheye: 90° at the centre, 0° at ``horizon_radius``.

    A stand-in where no skymap is at hand. THEMIS lenses put the horizon close to the edge of
    the 256×256 frame, so the default (radius 128 px, centred) blanks nearly the same pixels at
    15° as a real skymap; pass a skymap for the exact field of view.

    Returns
    -------
    numpy.ndarray
        ``(256, 256)`` float32 degrees, NaN beyond the horizon.
    """
    rows, cols = np.indices(FRAME_SHAPE, dtype=np.float32)
    cy, cx = center if center is not None else ((FRAME_SHAPE[0] - 1) / 2, (FRAME_SHAPE[1] - 1) / 2)
    radius = np.hypot(rows - cy, cols - cx)
    elevation = 90.0 * (1.0 - radius / float(horizon_radius))
    elevation[radius > horizon_radius] = np.nan
    return elevation.astype(np.float32)


def elevation_map(source: ElevationSource) -> tuple[np.ndarray, str]:
    """Resolve an elevation map from any of the accepted forms.

    Parameters
    ----------
    source
        A skymap ``.sav`` or ``.npy`` path or fsspec URL (fetched into the local cache), a
        ``(256, 256)`` array or DataArray, a
        Dataset from :func:`read_skymap`, ``"circle"`` for :func:`circle_elevation`'s default,
        or a number: the horizon radius in pixels of a centred circle.

    Returns
    -------
    elevation, description
        The ``(256, 256)`` float32 map and a short text saying where it came from, for
        provenance.
    """
    if isinstance(source, bool):
        raise ArgumentError(f"elevation: expected a map, a path or 'circle', got {source!r}")
    if isinstance(source, int | float | np.integer | np.floating):
        radius = float(source)
        if not radius > 0:
            raise ArgumentError(f"elevation: a circle needs a positive radius, got {source!r}")
        return circle_elevation(radius), f"circle(horizon_radius={radius:g})"
    if isinstance(source, str) and source == "circle":
        return circle_elevation(), "circle(horizon_radius=128)"
    if isinstance(source, xr.Dataset):
        elevation = np.asarray(source["elevation"].values, dtype=np.float32)
        _check_shape(elevation, "elevation")
        return elevation, f"skymap {source.attrs.get('path', '(dataset)')}"
    if isinstance(source, xr.DataArray | np.ndarray):
        elevation = np.asarray(source, dtype=np.float32)
        _check_shape(elevation, "elevation")
        return elevation, "array"
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if is_url(path) and path.lower().endswith((".sav", ".npy")):
            path = fetch(path, what="elevation")  # read here; workers get the map in the graph
        if path.lower().endswith(".sav"):
            skymap = read_skymap(path)
            return skymap["elevation"].values, f"skymap {os.path.basename(path)}"
        if path.lower().endswith(".npy"):
            if not os.path.exists(path):
                raise SourceNotFoundError(f"elevation: {path!r} does not exist")
            try:
                elevation = np.load(path, allow_pickle=False).astype(np.float32)
            except ValueError as error:
                raise ArgumentError(f"elevation: cannot read {path!r} as .npy ({error})") from None
            _check_shape(elevation, f"elevation {path!r}")
            return elevation, f"npy {os.path.basename(path)}"
        raise ArgumentError(
            f"elevation: {path!r} is neither a skymap .sav nor a .npy file nor 'circle'"
        )
    raise ArgumentError(f"elevation: cannot use {type(source).__name__} as an elevation map")


def site_elevations(
    sites: list[str], elevation: ElevationSource | Mapping[str, ElevationSource]
) -> tuple[list[np.ndarray], dict[str, str]]:
    """One elevation map per site: the same map for all, or a mapping site → map."""
    if isinstance(elevation, Mapping):
        missing = [s for s in sites if s not in elevation]
        if missing:
            raise ArgumentError(f"elevation: no map given for sites {missing!r}")
        resolved = {s: elevation_map(elevation[s]) for s in sites}
    else:
        shared = elevation_map(elevation)
        resolved = dict.fromkeys(sites, shared)
    return [resolved[s][0] for s in sites], {s: resolved[s][1] for s in sites}


def _check_shape(elevation: np.ndarray, what: str) -> None:
    if elevation.shape != FRAME_SHAPE:
        raise ArgumentError(f"{what}: elevation map is {elevation.shape}, frames are {FRAME_SHAPE}")


def _text(value: Any) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
