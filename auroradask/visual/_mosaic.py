"""Mosaics: several sites' frames at one time on a latitude–longitude map, each field of view
outlined in the colour of the classifier's label, with the label and confidence beside it.

What pyaurorax (``tools.mosaic``) and asilib (``Imagers.plot_map``) draw, with auroradask's
labels on it. Each frame goes on the map through its skymap's pixel corners at a mapping
altitude (:func:`auroradask.map_mesh`, in the skymaps room): a ``pcolormesh`` of the frame's
own pixels, no resampling. Plain longitude/latitude axes by default (degrees, the aspect
that makes a degree of latitude and one of longitude the same length at the middle
latitude); into a cartopy ``GeoAxes`` given as ``ax`` the mesh is drawn in its
``PlateCarree`` transform (cartopy is not a dependency: only used when its axes are given;
no test covers that path, cartopy not being installed where they ran).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from .._figure import returned, target_axes
from .._palette import UNUSABLE, class_colors
from .._results import class_names
from .._schema import OK, SLOT
from ..errors import ArgumentError
from ..skymaps._projection import MapMesh, map_mesh, mesh_values, skymaps_at
from ._inputs import check_contrast, results_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Outline colour of a site without results (no label to colour it with).
NO_RESULTS = "#f0f0f0"


@dataclass(frozen=True)
class SiteLabel:
    """What a site's outline says: text and colour (label and confidence, or why none)."""

    text: str
    color: str


def check_sites(frames: xr.Dataset, sites: Any) -> list[str]:
    """The sites to draw: all of the frames' by default, else those named (checked)."""
    if not isinstance(frames, xr.Dataset) or "images" not in frames:
        raise ArgumentError("frames: expected a frames dataset with 'images' (open_themis)")
    have = [str(s) for s in frames["site"].values]
    if sites is None:
        return have
    sites = [sites] if isinstance(sites, str) else [str(s) for s in sites]
    missing = [s for s in sites if s not in have]
    if missing or not sites:
        raise ArgumentError(f"sites: the frames have no site {missing or sites}; they hold {have}")
    return sites


def slot_of(frames: xr.Dataset, time: Any) -> int:
    """The index of the 3-second slot holding ``time`` (its start, up to 3 s before)."""
    try:
        when = pd.Timestamp(time)
    except (ValueError, TypeError):
        raise ArgumentError(f"time: {time!r} is not a time (write 2014-03-10T06:01:30)") from None
    if when.tzinfo is not None:
        when = when.tz_convert("UTC").tz_localize(None)
    times = frames["time"].values
    k = int(np.searchsorted(times, when.to_datetime64(), side="right")) - 1
    if k < 0 or when.to_datetime64() >= times[k] + SLOT:
        span = f"{pd.Timestamp(times[0])} to {pd.Timestamp(times[-1] + SLOT)}" if len(times) else ""
        raise ArgumentError(f"time: {when} is not a slot of the frames ({span or 'none'})")
    return k


def site_labels(results: Any, sites: list[str], when: np.datetime64, group: str | None):
    """Per site: the label's text (class and confidence) and colour at slot ``when``."""
    if results is None:
        return {s: SiteLabel(s, NO_RESULTS) for s in sites}
    results = results_of(results, group)
    classes = class_names(results)
    colors = class_colors(classes)
    have = [str(s) for s in results["site"].values]
    out = {}
    for site in sites:
        if site not in have or when not in results["time"].values:
            out[site] = SiteLabel(f"{site}: not classified", UNUSABLE)
            continue
        one = results.sel(site=site, time=when)
        status = int(one["frame_status"].values)
        label = int(one["label"].values)
        if status != OK or label < 0:
            out[site] = SiteLabel(f"{site}: no frame", UNUSABLE)
        else:
            confidence = float(one["confidence"].values)
            out[site] = SiteLabel(f"{site}: {classes[label]} {confidence:.2f}", colors[label])
    return out


def frames_at(frames: xr.Dataset, sites: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``(site, y, x)`` frames and their statuses at slot ``k`` (one read per site)."""
    one = frames[["images", "frame_status"]].isel(time=k).sel(site=sites).compute()
    return one["images"].values, one["frame_status"].values


def stretch_of(visible: np.ndarray, contrast: tuple[float, float]) -> tuple[float, float]:
    """Counts mapped to black and white: percentiles of a frame's visible pixels (imagers
    differ in gain, so each site is stretched on its own)."""
    seen = np.asarray(visible, dtype=np.float64).ravel()
    if seen.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(seen, contrast)
    return float(lo), float(max(hi, lo + 1.0))


def mosaic(
    frames: xr.Dataset,
    time: Any,
    *,
    skymaps: Any,
    altitude: float = 110,
    results: Any = None,
    sites: Any = None,
    min_elevation: float = 10,
    contrast: tuple[float, float] = (1, 99),
    group: str | None = None,
    path: Any = None,
    dpi: int = 110,
    ax: Any = None,
) -> Figure | Axes:
    """Draw several sites' frames at one time on a latitude–longitude map, with their labels.

    Parameters
    ----------
    frames
        A frames dataset (:func:`auroradask.open_themis`, ``open_themis_cdf``, ...), in the
        stream0 orientation as every reader gives it; only the slot at ``time`` is read.
    time
        A UT time: the 3-second slot holding it is drawn.
    skymaps
        A skymap tree (:func:`auroradask.open_skymaps`, or its folder or URL): each site's
        skymap valid at ``time``; or a mapping site → skymap (``.sav`` path or
        :func:`auroradask.read_skymap` dataset), used as given.
    altitude
        Mapping altitude in km: one the skymaps have (90, 110 or 150 for THEMIS).
    results
        A results store (path or URL) or dataset (:func:`auroradask.open_results`): each
        field of view is outlined in the colour of its label at ``time`` (the colour of
        the class in every figure), with the label and confidence written by it; grey with
        "no frame" or "not classified" where the slot says nothing. Without it, outlines
        are pale and name the site.
    sites
        The sites to draw (default: all of the frames'), drawn in this order: where fields
        of view overlap, the later is on top.
    min_elevation
        Pixels seeing the sky lower than this (degrees) are left out.
    contrast
        Percentiles of each frame's visible counts mapped to black and white.
    group
        Group inside the results store.
    path
        Also save the figure there (``.png``, ``.pdf``, ``.svg``), at ``dpi``.
    ax
        A matplotlib Axes (or a cartopy ``GeoAxes``) to draw into; a new figure otherwise.

    Returns
    -------
    matplotlib.figure.Figure or matplotlib.axes.Axes
        A new figure; or the Axes given as ``ax``.

    Raises
    ------
    ArgumentError
        For a time outside the frames, a site without a skymap, or an altitude the skymaps
        do not map (the message names those they have).
    """
    sites = check_sites(frames, sites)
    contrast = check_contrast(contrast)
    k = slot_of(frames, time)
    when = frames["time"].values[k]
    maps = skymaps_at(skymaps, sites, when)
    meshes = {s: map_mesh(maps[s], altitude, min_elevation) for s in sites}
    labels = site_labels(results, sites, when, group)
    images, status = frames_at(frames, sites, k)
    fig, axes, given = target_axes(ax, 1, figure_size(list(meshes.values())))
    ax = axes[0]
    for i, site in enumerate(sites):
        ok = status[i] == OK
        draw_site(ax, site, meshes[site], images[i] if ok else None, labels[site], contrast)
    _decorate(ax, list(meshes.values()), when)
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return returned(fig, axes, given)


def _transform(ax) -> dict[str, Any]:
    """``transform=`` for a cartopy GeoAxes (longitude/latitude in PlateCarree); none for
    plain axes. cartopy is imported only when its axes are given."""
    if type(ax).__module__.startswith("cartopy"):
        import cartopy.crs as ccrs

        return {"transform": ccrs.PlateCarree()}
    return {}


def draw_site(ax, site: str, mesh: MapMesh, image, label: SiteLabel, contrast) -> None:
    """One site on ``ax`` (artists named ``"<site> frame"``, ``"<site> field of view"``,
    ``"<site> label"``): its frame (None: no frame, the outline only), the outline of its
    field of view in the label's colour and the label written by its northern edge."""
    on_map = _transform(ax)
    if image is not None:
        vmin, vmax = stretch_of(np.asarray(image)[mesh.visible], contrast)
        ax.pcolormesh(
            mesh.longitude,
            mesh.latitude,
            mesh_values(image, mesh),
            cmap="gray",
            vmin=vmin,
            vmax=vmax,
            shading="flat",
            rasterized=True,
            gid=f"{site} frame",
            **on_map,
        )
    if len(mesh.outline):
        ax.plot(
            mesh.outline[:, 0],
            mesh.outline[:, 1],
            color=label.color,
            linewidth=2.5,
            label=f"{site} field of view",
            **on_map,
        )
        top = int(np.argmax(mesh.outline[:, 1]))
        ax.text(
            mesh.outline[top, 0],
            mesh.outline[top, 1] + 0.15,
            label.text,
            color=label.color,
            ha="center",
            va="bottom",
            fontsize=9,
            weight="bold",
            gid=f"{site} label",
            bbox={"facecolor": "black", "edgecolor": "none", "alpha": 0.6, "pad": 2},
            **on_map,
        )


def map_limits(meshes: list[MapMesh]) -> tuple[float, float, float, float]:
    """``(west, east, south, north)`` degrees around every field of view, with room for the
    labels above the northern edges."""
    extents = np.array([m.extent for m in meshes])
    return (
        float(extents[:, 0].min() - 1.0),
        float(extents[:, 1].max() + 1.0),
        float(extents[:, 2].min() - 0.5),
        float(extents[:, 3].max() + 1.0),
    )


def map_aspect(limits: tuple[float, float, float, float]) -> float:
    """Axes aspect (y per x unit) that makes a degree of longitude as long as it is at the
    middle latitude (a degree of latitude stays one)."""
    return 1.0 / np.cos(np.radians((limits[2] + limits[3]) / 2))


def figure_size(meshes: list[MapMesh], width: float = 8.0) -> tuple[float, float]:
    """A new figure's size: the map's shape plus room for the title and axis labels."""
    west, east, south, north = limits = map_limits(meshes)
    shape = (north - south) * map_aspect(limits) / (east - west)
    return width, float(np.clip(width * 0.85 * shape + 1.0, 3.0, 12.0))


def _decorate(ax, meshes: list[MapMesh], when) -> None:
    """Limits around the fields of view, equal-length degrees at mid latitude, labels."""
    west, east, south, north = limits = map_limits(meshes)
    when = pd.Timestamp(when)
    title = f"{when:%Y-%m-%d %H:%M:%S} UT, mapped at {meshes[0].altitude:g} km"
    if _transform(ax):
        ax.set_extent(limits, crs=_transform(ax)["transform"])
        ax.set_title(title, fontsize=10)
        return
    ax.set_facecolor("#20242c")
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect(map_aspect(limits))
    ax.set_xlabel("geographic longitude (°E)")
    ax.set_ylabel("geographic latitude (°N)")
    ax.grid(color="#888888", linewidth=0.4, alpha=0.6)
    ax.set_title(title, fontsize=10)
