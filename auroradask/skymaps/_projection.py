"""Frames on the map: a skymap's pixel corners as a mesh at one mapping altitude (numpy only).

A UCalgary skymap gives, at each mapping altitude (90, 110 and 150 km), the geodetic
latitude and longitude of the **corners** of every pixel: ``FULL_MAP_LATITUDE`` and
``FULL_MAP_LONGITUDE``, ``(altitude, 257, 257)`` (:func:`read_skymap`'s ``map_latitude`` and
``map_longitude``). Pixel ``(row, col)`` of a frame in the stream0 orientation (every
reader's, see ``docs/orientation.md``) is the cell whose corners are
``[row:row + 2, col:col + 2]``: exactly the grid matplotlib's ``pcolormesh(X, Y, C)`` takes
(``X``, ``Y`` one larger than ``C`` in each direction), so a frame goes on a map without
resampling. Pixels that see no sky (no mapped corners), and those below a minimum elevation
(stretched far and seen through the most air), are masked.

:func:`map_mesh` computes the mesh once per skymap and altitude; :func:`mesh_values` masks a
frame with it. The drawing (``auroradask.mosaic``) is in the visual room.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._schema import FRAME_SHAPE
from ..errors import ArgumentError
from ._skymap import _unit_vectors, lat_lon_of, read_skymap
from ._tree import SkymapTree, open_skymaps


@dataclass(frozen=True)
class MapMesh:
    """One skymap's pixels on the map at one mapping altitude, from :func:`map_mesh`.

    Attributes
    ----------
    latitude, longitude
        ``(257, 257)`` degrees: the pixel corners, as the skymap gives them where it maps
        them; longitudes unwrapped to within 180° of the site's (so that a field of view
        across the antimeridian stays in one piece). Corners the skymap leaves unmapped
        (NaN) are set to the site's position: matplotlib's ``pcolormesh`` takes no NaN
        coordinates, and the cells they bound are masked.
    visible
        ``(256, 256)`` bool: pixels drawn (all four corners mapped, elevation at least
        ``min_elevation``).
    centre_latitude, centre_longitude
        ``(256, 256)`` degrees: the centre of each pixel (NaN where a corner is unmapped).
    outline
        ``(n, 2)`` longitude and latitude of the field of view's edge (a closed ring): the
        line where the skymap's elevation is ``min_elevation``, through the pixel centres.
    site, altitude, min_elevation
        The skymap's site, the mapping altitude (km) and the elevation cut (degrees).
    index
        Position of ``altitude`` among the skymap's mapping altitudes.
    site_latitude, site_longitude
        The imager's position (the skymap's ``latitude``, ``longitude`` attributes).
    """

    latitude: np.ndarray
    longitude: np.ndarray
    visible: np.ndarray
    centre_latitude: np.ndarray
    centre_longitude: np.ndarray
    outline: np.ndarray
    site: str
    altitude: float
    min_elevation: float
    index: int
    site_latitude: float
    site_longitude: float

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """``(west, east, south, north)`` degrees of the visible pixels' corners."""
        cells = _cell_corners(self.visible)
        if not cells.any():  # nothing above min_elevation: the site itself
            lon, lat = np.array([self.site_longitude]), np.array([self.site_latitude])
        else:
            lon, lat = self.longitude[cells], self.latitude[cells]
        return float(lon.min()), float(lon.max()), float(lat.min()), float(lat.max())


def altitude_index(skymap: xr.Dataset, altitude: float, arg: str = "altitude") -> int:
    """The position of ``altitude`` (km) among a skymap's mapping altitudes.

    Raises
    ------
    ArgumentError
        If the skymap has no mapping grids, or ``altitude`` is not one of its altitudes
        (the message names those it has).
    """
    name = skymap.attrs.get("path", "the skymap")
    if "map_latitude" not in skymap:
        raise ArgumentError(f"skymap: {name} has no FULL_MAP_LATITUDE/LONGITUDE mapping grids")
    if isinstance(altitude, bool) or not isinstance(altitude, int | float | np.number):
        raise ArgumentError(f"{arg}: expected a number of km, got {altitude!r}")
    altitudes = skymap["map_altitude"].values / 1000.0
    matches = np.flatnonzero(np.isclose(altitudes, float(altitude), atol=0.5))
    if matches.size == 0:
        raise ArgumentError(
            f"{arg}: {float(altitude):g} km is not a mapping altitude of {name} "
            f"(it has {', '.join(f'{a:g}' for a in altitudes)} km)"
        )
    return int(matches[0])


def map_mesh(
    skymap: xr.Dataset | str | os.PathLike, altitude: float = 110, min_elevation: float = 10
) -> MapMesh:
    """A skymap's pixel corners at one mapping altitude, as a mesh to draw frames on.

    Parameters
    ----------
    skymap
        A skymap ``.sav`` path or the dataset :func:`read_skymap` returns (with its
        ``map_latitude``/``map_longitude`` grids).
    altitude
        Mapping altitude in km: one of the skymap's (90, 110 or 150 for THEMIS).
    min_elevation
        Pixels that see the sky below this elevation (degrees) are masked: near the horizon
        a pixel covers hundreds of km and looks through the most air (10° is the usual cut
        of mosaics, as in pyaurorax and asilib).

    Returns
    -------
    MapMesh

    Raises
    ------
    ArgumentError
        If ``altitude`` is not one of the skymap's mapping altitudes, the skymap has none,
        or ``min_elevation`` is not within 0..90.
    """
    if not isinstance(skymap, xr.Dataset):
        skymap = read_skymap(skymap)
    if (
        isinstance(min_elevation, bool)
        or not isinstance(min_elevation, int | float | np.number)
        or not 0 <= min_elevation < 90
    ):
        raise ArgumentError(f"min_elevation: expected degrees from 0 to 90, got {min_elevation!r}")
    index = altitude_index(skymap, altitude)
    lat = np.asarray(skymap["map_latitude"].values[index], dtype=np.float64)
    lon = np.asarray(skymap["map_longitude"].values[index], dtype=np.float64)
    if lat.shape != (FRAME_SHAPE[0] + 1, FRAME_SHAPE[1] + 1):
        raise ArgumentError(f"skymap: mapping grids are {lat.shape}, not one larger than frames")
    site_lat = float(skymap.attrs.get("latitude", np.nanmean(lat)))
    site_lon = float(skymap.attrs.get("longitude", np.nanmean(lon)))
    lon = site_lon + (lon - site_lon + 180.0) % 360.0 - 180.0  # one piece across ±180°
    mapped = np.isfinite(lat) & np.isfinite(lon)
    whole = _cell_all(mapped)
    elevation = np.asarray(skymap["elevation"].values, dtype=np.float64)
    visible = whole & (elevation >= min_elevation)  # NaN elevation: not visible
    centre_lat, centre_lon = _centres(lat, lon, whole, site_lon)
    outline = _outline(centre_lat, centre_lon, elevation, visible, float(min_elevation))
    return MapMesh(
        latitude=np.where(mapped, lat, site_lat),
        longitude=np.where(mapped, lon, site_lon),
        visible=visible,
        centre_latitude=centre_lat,
        centre_longitude=centre_lon,
        outline=outline,
        site=str(skymap.attrs.get("site", "")),
        altitude=float(skymap["map_altitude"].values[index]) / 1000.0,
        min_elevation=float(min_elevation),
        index=index,
        site_latitude=site_lat,
        site_longitude=site_lon,
    )


def mesh_values(image: np.ndarray, mesh: MapMesh) -> np.ma.MaskedArray:
    """A ``(256, 256)`` frame (stream0 orientation) as float values masked outside
    ``mesh.visible``: the ``C`` of ``pcolormesh(mesh.longitude, mesh.latitude, C)``."""
    image = np.asarray(image)
    if image.shape != FRAME_SHAPE:
        raise ArgumentError(f"image: expected a {FRAME_SHAPE} frame, got {image.shape}")
    return np.ma.masked_array(image.astype(np.float32), mask=~mesh.visible)


#: Nearest pixel centres tried for each point: its cell is among them (cells near the horizon
#: are long and narrow, so the nearest centre is not always the holding cell's).
CANDIDATES = 6


def mesh_lookup(
    meshes: list[MapMesh], longitude: np.ndarray, latitude: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Which site and frame pixel shows each of the points ``(longitude, latitude)``.

    For each point, the visible pixel whose cell (the quadrilateral of its four corners, on
    the sphere) holds it, found among the nearest pixel centres: what ``pcolormesh`` draws
    there. Where meshes overlap the later wins, as the later is drawn on top.

    Returns
    -------
    site, pixel
        Per point: the mesh's position in ``meshes`` (int8, -1 where none shows it) and
        the flat index ``row * 256 + col`` of its frame pixel (int32).
    """
    from scipy.spatial import cKDTree  # deferred: only mosaic movies need it

    points = _unit_vectors(np.asarray(latitude, float), np.asarray(longitude, float))
    site = np.full(points.shape[1], -1, dtype=np.int8)
    pixel = np.zeros(points.shape[1], dtype=np.int32)
    for s, mesh in enumerate(meshes):
        rows, cols = np.nonzero(mesh.visible)
        if rows.size == 0:
            continue
        centres = _unit_vectors(mesh.centre_latitude[rows, cols], mesh.centre_longitude[rows, cols])
        corners = _unit_vectors(mesh.latitude, mesh.longitude)
        reach = np.max(np.linalg.norm(corners[:, rows, cols] - centres, axis=0))
        k = min(CANDIDATES, rows.size)
        distance, nearest = cKDTree(centres.T).query(points.T, k=k, distance_upper_bound=2 * reach)
        distance, nearest = distance.reshape(-1, k), nearest.reshape(-1, k)
        found = np.zeros(points.shape[1], dtype=bool)
        for j in range(k):
            at = np.flatnonzero(~found & np.isfinite(distance[:, j]))
            r, c = rows[nearest[at, j]], cols[nearest[at, j]]
            quad = [corners[:, r, c], corners[:, r, c + 1], corners[:, r + 1, c + 1]]
            quad.append(corners[:, r + 1, c])
            side = np.stack(
                [
                    np.einsum("ij,ij->j", points[:, at], np.cross(quad[i - 1], quad[i], axis=0))
                    for i in range(4)
                ]
            )
            inside = (side >= 0).all(axis=0) | (side <= 0).all(axis=0)
            found[at[inside]] = True
            site[at[inside]] = s
            pixel[at[inside]] = r[inside] * mesh.visible.shape[1] + c[inside]
    return site, pixel


def _cell_all(corner: np.ndarray) -> np.ndarray:
    """Per pixel: all four of its corners true."""
    return corner[:-1, :-1] & corner[:-1, 1:] & corner[1:, :-1] & corner[1:, 1:]


def _cell_corners(cells: np.ndarray) -> np.ndarray:
    """Per corner: a corner of at least one of ``cells``."""
    out = np.zeros((cells.shape[0] + 1, cells.shape[1] + 1), dtype=bool)
    out[:-1, :-1] |= cells
    out[:-1, 1:] |= cells
    out[1:, :-1] |= cells
    out[1:, 1:] |= cells
    return out


def _centres(
    lat: np.ndarray, lon: np.ndarray, whole: np.ndarray, site_lon: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres: the normalised mean of the corners' unit vectors (NaN where a corner
    is unmapped), longitudes unwrapped as the corners'."""
    xyz = _unit_vectors(np.nan_to_num(lat), np.nan_to_num(lon))
    centre = xyz[:, :-1, :-1] + xyz[:, :-1, 1:] + xyz[:, 1:, :-1] + xyz[:, 1:, 1:]
    centre_lat, centre_lon = lat_lon_of(centre / np.linalg.norm(centre, axis=0))
    centre_lon = site_lon + (centre_lon - site_lon + 180.0) % 360.0 - 180.0
    return np.where(whole, centre_lat, np.nan), np.where(whole, centre_lon, np.nan)


def _outline(
    lat: np.ndarray, lon: np.ndarray, elevation: np.ndarray, visible: np.ndarray, level: float
) -> np.ndarray:
    """The field of view's edge, ``(n, 2)`` lon/lat, closed: the contour of the elevation
    map at ``level`` degrees (through the pixel centres, between pixels interpolated; the
    longest one, the horizon ring), carried onto the map by the pixel centres."""
    from scipy.ndimage import map_coordinates  # deferred: scipy.ndimage is a slow import
    from skimage.measure import find_contours

    if not visible.any():
        return np.empty((0, 2))
    seen = np.where(np.isfinite(lat), elevation, np.nan)
    if level <= np.nanmin(seen):  # the whole disc is visible: its edge is the lens's
        level = float(np.nanmin(seen)) + 1e-3
    rings = find_contours(np.nan_to_num(seen, nan=-90.0), level)
    ring = max(rings, key=len)
    # contour points lie between mapped pixel centres: interpolate there (linear, as the
    # contour itself), the unmapped ones filled by their nearest, never reached
    filled = [np.where(np.isfinite(a), a, np.nanmean(a)) for a in (lon, lat)]
    points = [map_coordinates(a, ring.T, order=1, mode="nearest") for a in filled]
    ring = np.column_stack(points)
    return ring if np.array_equal(ring[0], ring[-1]) else np.vstack([ring, ring[:1]])


# ------------------------------------------------------------------ the skymap of each site


def skymaps_at(skymaps: Any, sites: list[str], time: Any) -> dict[str, xr.Dataset]:
    """The skymap of each of ``sites`` valid at ``time``, read (mapping grids included).

    Parameters
    ----------
    skymaps
        A skymap tree (:func:`open_skymaps`, or its folder or URL): each site's skymap
        valid at ``time``; or a mapping site → skymap (``.sav`` path or
        :func:`read_skymap` dataset), used whatever the time (the caller chose them); or
        one skymap (path or dataset) when there is one site.

    Raises
    ------
    ArgumentError
        If a site has no skymap (none in the mapping, or none valid at ``time`` in the
        tree), or ``skymaps`` is none of these.
    """
    when = pd.Timestamp(time)
    if isinstance(skymaps, Mapping):
        missing = [s for s in sites if s not in skymaps]
        if missing:
            raise ArgumentError(f"skymaps: no skymap given for sites {missing}")
        return {s: _read(skymaps[s]) for s in sites}
    one = isinstance(skymaps, xr.Dataset) or (
        isinstance(skymaps, str | os.PathLike) and os.fspath(skymaps).lower().endswith(".sav")
    )
    if one:
        if len(sites) != 1:
            raise ArgumentError(
                f"skymaps: one skymap for {len(sites)} sites; give a skymap tree or a mapping "
                "site -> skymap"
            )
        return {sites[0]: _read(skymaps)}
    if isinstance(skymaps, str | os.PathLike):
        skymaps = open_skymaps(skymaps)
    if not isinstance(skymaps, SkymapTree):
        raise ArgumentError(
            "skymaps: expected a skymap tree (open_skymaps, or its folder or URL), a mapping "
            f"site -> skymap, or one skymap; got {type(skymaps).__name__}"
        )
    out = {}
    for site in sites:
        entry = skymaps.select(site, np.array([when.to_datetime64()]))[0]
        if entry is None:
            entries = skymaps.entries(site)
            have = (
                f"its first is valid from {entries[0].valid_from:%Y-%m-%d}"
                if entries
                else f"none in {site}/{site}_YYYYMMDD/"
            )
            raise ArgumentError(
                f"skymaps: no skymap of site {site!r} valid at {when} in {skymaps.url!r} "
                f"({have}); pass skymaps={{site: path}} to choose one"
            )
        out[site] = skymaps.skymap(entry)
    return out


def _read(skymap: Any) -> xr.Dataset:
    if isinstance(skymap, xr.Dataset):
        return skymap
    if isinstance(skymap, str | os.PathLike):
        return read_skymap(skymap)
    raise ArgumentError(
        f"skymaps: expected a skymap .sav path or read_skymap dataset, got {type(skymap).__name__}"
    )
