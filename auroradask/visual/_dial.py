"""The occurrence dial: rates on a magnetic latitude × MLT polar grid, usable hours beside.

The survey figure of auroral occurrence (for pulsating aurora, Grono & Donovan's from the
THEMIS imagers) is a dial in magnetic coordinates: the magnetic pole at the centre, magnetic
latitude falling outward, magnetic midnight at the bottom and noon at the top, dawn (06 MLT)
on the right. A rate means little without the amount of data under it, and the imagers see
only the night side, so the dial of the usable hours is drawn beside the rates, and a cell
without usable slots is drawn as no data, never as a rate of 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from .._figure import returned, target_axes
from .._palette import NO_DATA
from .._schema import SLOT
from ..errors import ArgumentError
from ._plots import _occurrence_axes, _rate_max

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: MLT hours labelled around the dial.
DIAL_HOURS = (0, 3, 6, 9, 12, 15, 18, 21)


def dial_theta(mlt_hours: np.ndarray) -> np.ndarray:
    """Angle (radians) of MLT hours on a dial whose zero is at the bottom (matplotlib's
    ``theta_zero_location("S")``) and which turns anticlockwise: 00 MLT at the bottom, 06 on
    the right (dawn), 12 at the top, 18 on the left (dusk), as the view down on the northern
    polar cap with the Sun at the top."""
    return 2 * np.pi * np.asarray(mlt_hours, dtype=float) / 24


def _mlat_edges(occurrence: xr.Dataset) -> np.ndarray:
    """Edges (degrees) of the ``mlat`` bins, labelled by their lower edges, width from the
    table's ``mlat_bin`` attribute (the spacing of the labels where it is missing)."""
    lower = np.asarray(occurrence["mlat"].values, dtype=float)
    width = occurrence.attrs.get("mlat_bin", occurrence["mlat"].attrs.get("bin_width"))
    if width is None:
        width = float(np.diff(lower).min()) if lower.size > 1 else 1.0
    if lower.size and lower.min() < 0 < lower.max() + float(width):
        raise ArgumentError(
            "occurrence: the mlat rows span both hemispheres; draw one at a time, e.g. "
            "occ.sel(mlat=slice(0, None))"
        )
    return np.r_[lower, lower[-1] + float(width)] if lower.size else lower


def plot_occurrence_dial(
    occurrence: xr.Dataset,
    cls: str | None = None,
    *,
    min_usable: int = 1,
    ax: Any = None,
) -> Figure | Axes | tuple[Axes, Axes]:
    """Occurrence rate of a class on a magnetic latitude × MLT dial, usable hours beside it.

    Takes the table of ``auroradask.occurrence(results, by=("mlat", "mlt"))``: the sites are
    pooled there (counts and usable slots summed per cell); other groupings of the table
    (``site``, ``month``, ``time``...) are summed here the same way before dividing. The
    magnetic pole is at the centre and magnetic latitude (AACGM-v2, ``|MLAT|`` in the
    southern hemisphere) falls outward; 00 MLT is at the bottom, 12 at the top, 06 on the
    right. Cells with fewer than ``min_usable`` usable slots are drawn grey as no data,
    never as a rate; rates are coloured from 0.

    Parameters
    ----------
    occurrence
        From :func:`auroradask.occurrence` with the groupings ``mlat`` and ``mlt`` (``mlt_hour``).
    cls
        Class to show (default: the only class, or ``pulsating`` if present).
    min_usable
        Fewest usable slots (3 s each) that make a cell's rate worth drawing (default 1: any).
    ax
        Where to draw: one polar matplotlib Axes (the rate dial alone) or two (the rates and
        the usable hours); a new figure of both otherwise. Make them with
        ``projection="polar"``.

    Returns
    -------
    matplotlib.figure.Figure, Axes or (Axes, Axes)
        A new figure of the two dials; or the axes given as ``ax``.

    Raises
    ------
    ArgumentError
        For a table without the ``mlat`` and ``mlt_hour`` groupings, an unknown class, rows
        of both hemispheres, or axes that are not polar.
    """
    if not {"mlat", "mlt_hour"} <= set(occurrence.dims):
        raise ArgumentError(
            "occurrence: the dial needs the groupings mlat and mlt; got by="
            f"{occurrence.attrs.get('by', '?')!r} (use auroradask.occurrence(..., by='mlat,mlt'))"
        )
    if int(min_usable) < 1:
        raise ArgumentError(f"min_usable: must be at least 1 slot, got {min_usable}")
    cls, _, _ = _occurrence_axes(occurrence, cls, "mlt_hour", "mlat")
    dims = [d for d in occurrence["usable"].dims if d not in ("mlat", "mlt_hour")]
    count = occurrence["count"].sel({"class": cls}).sum(dims).transpose("mlat", "mlt_hour")
    total = occurrence["usable"].sum(dims).transpose("mlat", "mlt_hour")
    enough = total.values >= int(min_usable)
    rate = np.where(enough, count.values / np.maximum(total.values, 1), np.nan)
    hours = total.values * pd.Timedelta(SLOT).total_seconds() / 3600
    theta = dial_theta(np.arange(25))
    radius = 90 - np.abs(_mlat_edges(occurrence))

    count_axes = 1 if ax is not None and not isinstance(ax, list | tuple | np.ndarray) else 2
    fig, axes, given = target_axes(
        ax, count_axes, (11, 5.4), ncols=2, subplot_kw={"projection": "polar"}
    )
    if not all(a.name == "polar" for a in axes):
        raise ArgumentError("ax: the dial needs polar Axes (projection='polar')")
    bar = _draw_cells(fig, axes[0], theta, radius, rate, ~enough, "viridis", _rate_max(rate))
    bar.set_label(f"rate of {cls} (of usable slots)")
    axes[0].set_title(f"Occurrence of {cls}", fontsize="medium")
    if len(axes) == 2:
        shown = np.where(total.values > 0, hours, np.nan)
        bar = _draw_cells(fig, axes[1], theta, radius, shown, total.values == 0, "Blues", None)
        bar.set_label("hours of usable frames")
        axes[1].set_title(f"Usable frames, {hours.sum():,.1f} h in all", fontsize="medium")
    for dial in axes:
        _dial_axes(dial, occurrence["mlat"].values, radius)
    about = _about(occurrence)
    if given:
        axes[0].set_title(f"Occurrence of {cls}\n{about}", fontsize="medium")
    else:
        fig.suptitle(about, fontsize="medium")
    return returned(fig, axes, given)


def _draw_cells(fig, ax, theta, radius, values, no_data, cmap: str, top: float | None):
    """The cells of one dial: values coloured from 0 (masked where NaN), and the cells
    flagged ``no_data`` in the no-data grey beneath them; the colour bar beside the dial."""
    ax.pcolormesh(
        theta,
        radius,
        np.ma.masked_where(~no_data, np.ones_like(values)),
        cmap=_one_colour(NO_DATA),
        shading="flat",
    )
    mesh = ax.pcolormesh(
        theta,
        radius,
        np.ma.masked_invalid(values),
        cmap=cmap,
        vmin=0,
        vmax=top if top is not None else max(float(np.nanmax(values, initial=0)), 1e-9),
        shading="flat",
    )
    return fig.colorbar(mesh, ax=ax, shrink=0.75, pad=0.1)


def _one_colour(color: str):
    from matplotlib.colors import ListedColormap  # deferred: matplotlib is slow to import

    return ListedColormap([color])


def _dial_axes(ax, mlat_lower: np.ndarray, radius: np.ndarray) -> None:
    """Midnight down, dawn right; MLT hours around, MLAT rings every 5 or 10 degrees."""
    ax.set_theta_zero_location("S")
    ax.set_theta_direction(1)
    ax.set_xticks(dial_theta(np.array(DIAL_HOURS)))
    ax.set_xticklabels([f"{h:02d}" for h in DIAL_HOURS])
    colat = float(radius.max()) if radius.size else 30.0
    step = 10 if colat > 20 else 5
    outer = step * np.ceil(colat / step - 1e-9)  # out to a labelled ring (60°, not 61°)
    ax.set_ylim(0, outer)
    rings = np.arange(step, outer + 1e-9, step)
    ax.set_yticks(rings)
    sign = -1 if mlat_lower.size and mlat_lower.max() < 0 else 1
    labels = ax.set_yticklabels([f"{sign * (90 - r):.0f}°" for r in rings], fontsize=7)
    for label in labels:  # readable over the cells
        label.set_bbox({"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1})
    ax.set_rlabel_position(112.5)  # 07:30 MLT: between two hour labels, off the night side
    ax.grid(True, color="#666666", alpha=0.35, linewidth=0.6)
    ax.set_axisbelow(False)  # the rings and hour lines over the cells
    ax.set_xlabel("MLT (hours)", fontsize="small")


def _about(occurrence: xr.Dataset) -> str:
    """One line on where the table's numbers come from: AACGM-v2, altitude, UT span."""
    altitude = occurrence.attrs.get("altitude_km")
    line = "AACGM-v2 MLAT and MLT" + (f" at {float(altitude):g} km" if altitude else "")
    span = str(occurrence.attrs.get("time_span", ""))
    if "/" in span:
        first, last = (pd.Timestamp(t) for t in span.split("/"))
        line += f", {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UT"
    return line
