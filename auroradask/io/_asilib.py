"""The bridge to asilib: one site's frames and its skymap as an ``asilib.Imager``.

asilib (https://github.com/mshumko/asilib) draws fisheye and map plots, keograms, movies and
satellite conjunctions of any imager described by the four dictionaries of its documented
"Adding a new ASI" interface (``data``, ``skymap``, ``meta``, ``plot_settings``): the
``data`` dictionary names "files", when each starts and ends, and a loader that turns a file
into time stamps and images. :func:`to_asilib` fills them from auroradask's frames, so asilib
works on exactly the frames auroradask classifies: each chunk of the frames along ``time`` is
one of asilib's files, and the loader computes that chunk (dask reads it) when asilib asks.

Orientation. auroradask keeps pixels in the order the stream0 and CDF files store them, as
UCalgary's readers do, and a skymap's arrays in the order its ``.sav`` file stores them (the
same pixel order). asilib turns both upside down (north-south) when it loads THEMIS data
(``asilib.asi.themis``: images ``[:, ::-1, :]``, skymaps ``[::-1, :]``); the bridge does the
same, so the Imager equals the one asilib builds from the same files.

asilib is optional: :func:`to_asilib` imports it when called (asilib brings ffmpeg-python,
pymap3d, h5py and requests, which auroradask needs nowhere else).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._schema import FRAME_SHAPE, OK, SLOT, SLOT_SECONDS
from ..errors import ArgumentError

#: asilib's own colour scale for THEMIS counts (``asilib.asi.themis``), the default here too.
THEMIS_COLOR_BOUNDS = (3000, 9000)


def to_asilib(
    frames: xr.Dataset,
    skymap: xr.Dataset,
    *,
    site: str | None = None,
    alt: float = 110,
    plot_settings: Mapping[str, Any] | None = None,
) -> Any:
    """One site's frames and skymap as an ``asilib.Imager``: asilib's maps on auroradask's frames.

    The Imager covers every time slot of ``frames`` (asilib's ``time_range``); slice it by
    time as any asilib Imager (``imager["2014-03-10T06:01:03"].plot_map()``). Frames that are
    not ``ok`` (``frame_status``) are left out, as asilib leaves out frames it cannot read.

    Parameters
    ----------
    frames
        Frames as :func:`auroradask.open_themis`, :func:`auroradask.open_themis_cdf` or
        ``xr.open_dataset(..., engine="themis")`` give them (``images``, ``timestamp``,
        ``frame_status`` on ``(site, time)``), lazy or computed. Nothing is read here: the
        Imager reads one chunk (along ``time``) at a time, when asilib needs its images.
    skymap
        The site's skymap as :func:`auroradask.read_skymap` returns it (a UCalgary ``.sav``
        read into a dataset): its pixel-corner latitudes and longitudes at ``alt``, its
        elevation and azimuth maps, and the site's position become asilib's ``skymap`` and
        ``meta`` dictionaries.
    site
        Which site of ``frames``; may be left out when they hold one.
    alt
        The emission altitude (km) at which asilib maps pixels: one of the skymap's mapping
        altitudes (UCalgary's skymaps have 90, 110 and 150 km).
    plot_settings
        asilib's optional plot settings (``color_map``, ``color_norm``, ``color_bounds``);
        ``color_bounds`` defaults to asilib's own for THEMIS, ``(3000, 9000)`` counts.

    Returns
    -------
    asilib.Imager
        ``imager.data`` gives the frames' time stamps (``datetime``, from each frame's
        header) and images (north-south flipped, asilib's orientation);
        ``imager.skymap`` ``lat``/``lon`` (257×257 pixel corners at ``alt``), ``el``, ``az``;
        ``imager.meta`` array ``THEMIS``, the site code in capitals, its position, a 3 s cadence.

    Raises
    ------
    ArgumentError
        If ``frames`` have no ``images``, ``site`` is missing or unknown, ``skymap`` is not a
        skymap dataset, belongs to another site, or has no mapping at ``alt``.
    ImportError
        If asilib is not installed (``pip install asilib``).

    Examples
    --------
    >>> frames = auroradask.open_themis(archive, "gill", "2014-03-10T06:00", "2014-03-10T06:10")
    >>> imager = auroradask.to_asilib(frames, auroradask.read_skymap("themis_skymap_gill.sav"))
    >>> ax, im = imager["2014-03-10T06:05:00"].plot_map()  # doctest: +SKIP
    """
    site, one = _one_site(frames, site)
    sky = _skymap_dict(skymap, site, alt)
    meta = {
        "array": "THEMIS",
        "location": site.upper(),
        "lat": float(skymap.attrs["latitude"]),
        "lon": float(skymap.attrs["longitude"]),
        "alt": float(skymap.attrs.get("altitude", 0.0)) / 1000.0,  # the .sav gives metres
        "cadence": SLOT_SECONDS,
        "resolution": FRAME_SHAPE,
    }
    settings = {"color_bounds": THEMIS_COLOR_BOUNDS, **dict(plot_settings or {})}
    data = _data_dict(one, site)
    try:
        # deferred: asilib is an optional dependency, needed by this bridge only
        import asilib
    except ImportError:
        raise ImportError(
            "to_asilib needs asilib (the current package, not its old name aurora-asi-lib): "
            "pip install asilib"
        ) from None
    return asilib.Imager(data, meta, sky, plot_settings=settings)


def asilib_frames(
    images: np.ndarray, timestamps: np.ndarray, status: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The numpy kernel: frames as asilib's loaders return them.

    Parameters
    ----------
    images
        ``(time, y, x)`` counts in auroradask's (the files') pixel order.
    timestamps
        ``(time,)`` header times (``datetime64``; NaT where a slot holds no frame).
    status
        ``(time,)`` ``frame_status``.

    Returns
    -------
    times, images
        The ``ok`` frames only: times as an object array of ``datetime.datetime`` (asilib
        compares and subtracts them as such) and the images flipped north-south
        (``[:, ::-1, :]``), as ``asilib.asi.themis`` loads them.
    """
    keep = (np.asarray(status) == OK) & ~np.isnat(np.asarray(timestamps))
    times = pd.DatetimeIndex(np.asarray(timestamps)[keep]).to_pydatetime()
    return np.asarray(times, dtype=object), np.asarray(images)[keep][:, ::-1, :]


@dataclass(frozen=True)
class FrameChunkLoader:
    """asilib's ``loader``: the "file" named ``path`` is one chunk of one site's frames.

    Attributes
    ----------
    frames
        One site's frames (dimension ``time`` only, lazy or computed).
    slices
        Each file name's slice of ``time``.
    """

    frames: xr.Dataset
    slices: Mapping[str, slice]

    def __call__(self, path: Any) -> tuple[np.ndarray, np.ndarray]:
        block = self.frames.isel(time=self.slices[str(path)]).compute()
        return asilib_frames(
            block["images"].values, block["timestamp"].values, block["frame_status"].values
        )


def _one_site(frames: Any, site: str | None) -> tuple[str, xr.Dataset]:
    if not isinstance(frames, xr.Dataset):
        raise ArgumentError(
            f"frames: expected the dataset open_themis returns, got {type(frames).__name__}"
        )
    missing = {"images", "timestamp", "frame_status"} - set(frames.data_vars)
    if missing or "site" not in frames.dims:
        raise ArgumentError(
            "frames: expected frames as open_themis gives them (images, timestamp, "
            f"frame_status on site and time); missing {sorted(missing) or ['site']}"
        )
    sites = [str(s) for s in frames["site"].values]
    if site is None:
        if len(sites) != 1:
            raise ArgumentError(f"site: the frames hold sites {sites}; choose one with site=")
        site = sites[0]
    if site not in sites:
        raise ArgumentError(f"site: the frames have no site {site!r}; they hold {sites}")
    one = frames.isel(site=sites.index(site))
    if one.sizes["time"] == 0:
        raise ArgumentError("frames: no time slot to hand to asilib")
    return site, one


def _skymap_dict(skymap: Any, site: str, alt: float) -> dict[str, Any]:
    """asilib's ``skymap`` dictionary at ``alt`` km, in asilib's (north-south flipped) order."""
    if not isinstance(skymap, xr.Dataset) or "elevation" not in skymap:
        raise ArgumentError(
            "skymap: expected the dataset auroradask.read_skymap(path) returns, got "
            f"{type(skymap).__name__} (read the .sav file first: to_asilib(frames, "
            "read_skymap(path)))"
        )
    name = skymap.attrs.get("path", "the skymap")
    if str(skymap.attrs.get("site", site)) != site:
        raise ArgumentError(
            f"skymap: {name} is the skymap of site {skymap.attrs['site']!r}, not of {site!r}"
        )
    if "map_latitude" not in skymap:
        raise ArgumentError(f"skymap: {name} has no FULL_MAP_LATITUDE/LONGITUDE mapping grids")
    altitudes = skymap["map_altitude"].values / 1000.0
    matches = np.flatnonzero(np.isclose(altitudes, alt, atol=0.5))
    if matches.size == 0:
        raise ArgumentError(
            f"alt: {alt:g} km is not a mapping altitude of {name} "
            f"(it has {', '.join(f'{a:g}' for a in altitudes)} km)"
        )
    index = int(matches[0])

    def flipped(values: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(values[::-1, :])

    return {
        "lat": flipped(skymap["map_latitude"].values[index]),
        "lon": flipped(skymap["map_longitude"].values[index]),
        "alt": alt,
        "el": flipped(skymap["elevation"].values),
        "az": flipped(skymap["azimuth"].values),
        "path": name,
    }


def _data_dict(one: xr.Dataset, site: str) -> dict[str, Any]:
    """asilib's ``data`` dictionary: one "file" per chunk of ``time``, read by the loader."""
    slots = one["time"].values
    chunks = one.chunksizes.get("time", (len(slots),))
    stops = np.cumsum(chunks)
    starts = stops - np.asarray(chunks)
    names, slices, start_times, end_times = [], {}, [], []
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        first, last = slots[start], slots[stop - 1] + SLOT
        name = f"{site}/{np.datetime_as_string(first, unit='s')}"
        names.append(name)
        slices[name] = slice(start, stop)
        start_times.append(_datetime(first))
        end_times.append(_datetime(last))
    return {
        "time_range": [start_times[0], end_times[-1]],
        "path": names,
        "start_time": start_times,
        "end_time": end_times,
        "loader": FrameChunkLoader(one, slices),
    }


def _datetime(value: np.datetime64) -> datetime.datetime:
    return pd.Timestamp(value).to_pydatetime()
