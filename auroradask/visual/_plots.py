"""Figures of analysed labels: a site-night timeline, an occurrence heatmap, events per site.

Figures are built as :class:`matplotlib.figure.Figure` objects with an Agg canvas, never
through ``pyplot``: no global figure state is created or left behind (safe in workers,
notebooks and servers), and the caller saves with ``fig.savefig(path)``. Times are UT.
matplotlib is imported when a figure is drawn, so ``import auroradask`` stays light.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from .._figure import new_figure
from .._results import check_site, class_names, site_coord
from .._schema import SLOT
from ..analysis import magnetic_coordinates, smooth_labels, usable
from ..analysis._magnetic import DEFAULT_ALTITUDE_KM, aacgm_site
from ..analysis._usable import Window
from ..errors import ArgumentError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Axis titles of the occurrence groupings.
AXIS_LABELS = {
    "site": "site",
    "year": "year",
    "month": "month",
    "doy": "day of year",
    "ut_hour": "UT hour",
    "mlt_hour": "MLT hour (AACGM-v2)",
    "season": "season",
    "time": "UT",
}
_UNUSABLE, _UNWRITTEN = "#9e9e9e", "#ffffff"


def _class_colors(n: int) -> list:
    from matplotlib import colormaps

    return [colormaps["tab10"](i % 10) for i in range(n)]


#: A date followed by a time of day (``2014-03-10T06:00``, ``2014-03-10 06``): a UT instant.
_WITH_TIME = re.compile(r"^\s*\d{4}-?\d{2}-?\d{2}[T ]\s*\d")


def _midnight_offset(longitude: float) -> pd.Timedelta:
    """Local solar midnight after 00:00 UT, rounded to the hour (0 without a longitude)."""
    offset = 0.0 if not np.isfinite(longitude) else -float(longitude) / 15.0
    return pd.Timedelta(hours=round(offset))


def night_start(night: Any, longitude: float) -> pd.Timestamp:
    """The date (at 00:00) on which the night meant by ``night`` starts.

    ``night`` is either that date (``"2014-03-09"``, a ``datetime.date``, a timestamp at
    00:00) or a UT time inside the night (``"2014-03-10T06:00"``, a timestamp with a time of
    day): the night whose 24 h window (:func:`night_window`) holds that time. At Gillam
    (94.6 W) ``"2014-03-10T06:00"`` is in the night of 2014-03-09, which runs 18:00 to 18:00 UT.

    Raises
    ------
    ArgumentError
        If ``night`` cannot be read as a date or a time.
    """
    try:
        stamp = pd.Timestamp(night)
    except (ValueError, TypeError):
        stamp = pd.NaT
    if stamp is pd.NaT or pd.isna(stamp):
        raise ArgumentError(
            f"night: cannot read {night!r} as YYYY-MM-DD (the date the night starts) or as a "
            "UT time inside the night (YYYY-MM-DDTHH:MM)"
        )
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    if isinstance(night, str):
        instant = bool(_WITH_TIME.match(night))
    else:  # a date, or a time: 00:00 sharp reads as the date, as it always did
        instant = stamp != stamp.floor("D")
    if not instant:
        return stamp.floor("D")
    return (stamp - pd.Timedelta(hours=12) - _midnight_offset(longitude)).floor("D")


def night_window(night: Any, longitude: float) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The 24 h UT centred on local solar midnight of the night ``night`` (see
    :func:`night_start`: the date it starts on, or a UT time inside it).

    The night of 2014-03-09 at Gillam (94.6 W) is centred on 2014-03-10 06:00 UT (local
    midnight rounded to the hour), so it runs 2014-03-09 18:00 to 2014-03-10 18:00 UT. A
    site without a longitude gets 12:00 to 12:00 UT.
    """
    midnight = night_start(night, longitude) + pd.Timedelta(days=1) + _midnight_offset(longitude)
    return midnight - pd.Timedelta(hours=12), midnight + pd.Timedelta(hours=12)


def nothing_written(
    results: xr.Dataset, row: int, site: str, night: Any, longitude: float
) -> ArgumentError:
    """The error for a night in which ``site`` has nothing written; it names the night
    before or after when that one holds data (a time just past midnight UT is often meant
    for the night that started the day before)."""
    day = night_start(night, longitude)
    start, end = night_window(day, longitude)
    message = (
        f"night: nothing of site {site!r} was written in {start} to {end} UT "
        f"(night of {day.date()})"
    )
    others = []
    for step in (-1, 1):
        other = day + pd.Timedelta(days=step)
        lo, hi = night_window(other, longitude)
        status = results["frame_status"].isel(site=row).sel(time=slice(lo, hi - pd.Timedelta(SLOT)))
        written = int((status >= 0).sum())
        if written:
            others.append(f"the night of {other.date()} ({lo} to {hi} UT) has {written}")
    if others:
        message += "; " + " and ".join(others) + " written slots"
    return ArgumentError(message)


def plot_timeline(
    results: xr.Dataset,
    site: str,
    night: Any,
    *,
    smooth: Window = None,
    min_confidence: float | None = None,
    exclude: str | Iterable[str] | None = None,
    altitude_km: float = DEFAULT_ALTITUDE_KM,
) -> Figure:
    """The labels of one site through one night: label strip above, confidence below.

    Unwritten slots (never classified into the store) are white, written slots that are not
    usable (no frame, low confidence, excluded class) grey, so that "no aurora" is never
    confused with "no data".

    Parameters
    ----------
    results
        A results dataset or store.
    site
        Site code.
    night
        The date on which the night starts (``"2014-03-09"``), or a UT time inside the
        night (``"2014-03-10T06:00"``); see :func:`night_start` and :func:`night_window`.
    smooth, min_confidence, exclude
        As for :func:`auroradask.occurrence`.
    altitude_km
        Altitude of the magnetic latitude and MLT shown in the title.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes sharing a UT time axis.

    Raises
    ------
    ArgumentError
        For an unknown site, a date that cannot be read, or a night with nothing written.
    """
    import matplotlib.dates as mdates

    row = check_site(results, site)
    classes = class_names(results)
    lat = site_coord(results, "latitude")[row]
    lon = site_coord(results, "longitude")[row]
    start, end = night_window(night, lon)
    one = results.isel(site=[row]).sel(time=slice(start, end - pd.Timedelta(SLOT)))
    if one.sizes["time"] == 0 or not bool((one["frame_status"] >= 0).any()):
        raise nothing_written(results, row, site, night, lon)
    written = one["frame_status"].values[0] >= 0
    label = _shown_labels(one, smooth, min_confidence, exclude)
    confidence = one["confidence"].values[0]
    times = one["time"].values
    # the strip covers the whole window: slots outside the dataset are "not written" too
    window = np.arange(start.to_datetime64(), end.to_datetime64(), SLOT).astype("datetime64[ns]")
    code = strip_codes(window, times, label, written, len(classes))
    colors = _class_colors(len(classes))

    fig = new_figure(11, 4.2)
    strip, conf_ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, 2])
    x0, x1 = mdates.date2num(start), mdates.date2num(end)
    draw_label_strip(strip, code, colors, (x0, x1))
    strip.set_ylabel("label")
    label_legend(fig, classes, colors)
    for k in range(len(classes)):
        mine = label == k
        conf_ax.plot(
            mdates.date2num(times[mine]),
            confidence[mine],
            ".",
            ms=1.5,
            color=colors[k],
            label=classes[k],
        )
    conf_ax.set_ylim(0, 1.02)
    conf_ax.set_ylabel("confidence")
    conf_ax.set_xlim(mdates.date2num(start), mdates.date2num(end))
    conf_ax.xaxis.set_major_locator(mdates.HourLocator(interval=2))
    conf_ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    conf_ax.set_xlabel(f"UT, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}")
    conf_ax.grid(alpha=0.3)
    strip.set_title(
        _timeline_title(one, site, night, (lat, lon), altitude_km, start + (end - start) / 2)
    )
    return fig


def _shown_labels(one: xr.Dataset, smooth: Window, min_confidence, exclude) -> np.ndarray:
    """The labels of a one-site dataset's usable slots (smoothed if asked), -1 elsewhere."""
    if smooth is not None:
        label = smooth_labels(one, smooth, min_confidence=min_confidence, exclude=exclude)
        return label.values[0]
    ok = usable(one, min_confidence=min_confidence, exclude=exclude).values[0]
    return np.where(ok, one["label"].values[0], -1)


def _timeline_title(one, site, night, lat_lon, altitude_km, mid: pd.Timestamp) -> str:
    """``site: night of DATE, MLAT x°, MLT ≈ UT ±h h`` (no magnetic part without coordinates)."""
    lat, lon = lat_lon
    mlat = aacgm_site(float(lat), float(lon), float(altitude_km), int(mid.value))[0]
    mlt = magnetic_coordinates(one, altitude_km=altitude_km)["mlt"].sel(time=mid, method="nearest")
    offset = (float(mlt.values[0]) - (mid.hour + mid.minute / 60) + 12) % 24 - 12
    title = f"{site}: night of {night_start(night, lon).date()}"
    if np.isfinite(mlat):
        title += f", MLAT {mlat:.1f}°, MLT ≈ UT {offset:+.1f} h"
    return title


def strip_codes(
    grid: np.ndarray, times: np.ndarray, label: np.ndarray, written: np.ndarray, n: int
) -> np.ndarray:
    """One code per slot of ``grid``: the label (0..n-1), ``n`` for a written slot that is
    not usable, ``n + 1`` for a slot not written (or outside ``times``)."""
    code = np.full(len(grid), n + 1, dtype=np.int64)
    where = np.searchsorted(grid, times)
    code[where] = np.where(label >= 0, label, np.where(written, n, n + 1))
    return code


def draw_label_strip(ax, code: np.ndarray, colors: list, xlim: tuple[float, float]) -> None:
    """The label strip: one coloured cell per slot (classes, then not usable, not written)."""
    from matplotlib.colors import ListedColormap

    n = len(colors)
    ax.imshow(
        code[None, :],
        aspect="auto",
        interpolation="nearest",
        cmap=ListedColormap([*colors, _UNUSABLE, _UNWRITTEN]),
        vmin=-0.5,
        vmax=n + 1.5,
        extent=(xlim[0], xlim[1], 0, 1),
    )
    ax.set_yticks([])


def label_legend(fig, classes: list[str], colors: list, extra: Sequence = ()) -> None:
    """The legend of a label strip, outside the axes at the upper right."""
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=name) for c, name in zip(colors, classes, strict=True)]
    handles += [
        Patch(facecolor=_UNUSABLE, label="not usable"),
        Patch(facecolor=_UNWRITTEN, edgecolor="black", label="not written"),
        *extra,
    ]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8)


def plot_occurrence(
    occurrence: xr.Dataset,
    cls: str | None = None,
    *,
    x: str | None = None,
    y: str | None = None,
) -> Figure:
    """Occurrence rate of a class as a heatmap over two groupings (or a bar chart over one).

    Groupings not on an axis are combined the right way, by summing counts and usable slots
    before dividing. Cells without usable slots are hatched, not coloured as a zero rate.

    Parameters
    ----------
    occurrence
        From :func:`auroradask.occurrence`.
    cls
        Class to show (default: the only class, or ``pulsating`` if present).
    x, y
        Groupings on the axes (default: the first two dimensions after ``class``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not {"count", "usable"} <= set(occurrence.data_vars):
        raise ArgumentError("occurrence: expected the output of auroradask.occurrence")
    names = [str(c) for c in occurrence["class"].values]
    if cls is None:
        cls = names[0] if len(names) == 1 else ("pulsating" if "pulsating" in names else None)
        if cls is None:
            raise ArgumentError(f"cls: choose one of {names}")
    if cls not in names:
        raise ArgumentError(f"cls: unknown class {cls!r}; the table has {names}")
    dims = [d for d in occurrence["count"].dims if d != "class"]
    x = x or (dims[0] if dims else None)
    y = y if y is not None else (dims[1] if len(dims) > 1 and dims[1] != x else None)
    for arg, value in (("x", x), ("y", y)):
        if value is not None and value not in dims:
            raise ArgumentError(f"{arg}: {value!r} is not a grouping of the table; it has {dims}")
    if x is None:
        raise ArgumentError("occurrence: the table has no grouping to plot")
    keep = [d for d in (y, x) if d is not None]
    count = occurrence["count"].sel({"class": cls}).sum([d for d in dims if d not in keep])
    total = occurrence["usable"].sum([d for d in dims if d not in keep])
    rate = (count / total.where(total > 0)).transpose(*keep)
    hours = float(total.sum()) * pd.Timedelta(SLOT).total_seconds() / 3600

    fig = new_figure(8, 4.8)
    ax = fig.subplots()
    xs = _positions(rate[x].values)
    if y is None:
        ax.bar(xs, np.nan_to_num(rate.values), color=_class_colors(1)[0], width=0.8)
        ax.set_ylabel(f"rate of {cls}")
        empty = np.flatnonzero(total.values == 0)
        ax.bar(xs[empty], np.ones(len(empty)), width=0.8, fill=False, hatch="//", label="no data")
        if len(empty):
            ax.legend()
    else:
        ys = _positions(rate[y].values)
        masked = np.ma.masked_invalid(rate.values)
        ax.set_facecolor("#dddddd")
        mesh = ax.pcolormesh(_edges(xs), _edges(ys), masked, cmap="viridis", vmin=0, shading="flat")
        colorbar = fig.colorbar(mesh, ax=ax)
        colorbar.set_label(f"rate of {cls} (of usable slots)")
        ax.set_ylabel(AXIS_LABELS.get(y, y))
        _ticks(ax.yaxis, rate[y].values, ys)
    ax.set_xlabel(AXIS_LABELS.get(x, x))
    _ticks(ax.xaxis, rate[x].values, xs)
    ax.set_title(f"Occurrence of {cls} over {hours:,.1f} h of usable frames (grey: no data)")
    return fig


def _positions(values: np.ndarray) -> np.ndarray:
    if np.issubdtype(np.asarray(values).dtype, np.number):
        return np.asarray(values, dtype=float)
    return np.arange(len(values), dtype=float)


def _edges(centres: np.ndarray) -> np.ndarray:
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mid = (centres[1:] + centres[:-1]) / 2
    return np.r_[centres[0] - (mid[0] - centres[0]), mid, centres[-1] + (centres[-1] - mid[-1])]


def _ticks(axis, values: np.ndarray, positions: np.ndarray) -> None:
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.datetime64):
        labels = [pd.Timestamp(v).strftime("%Y-%m-%d") for v in values]
    elif np.issubdtype(values.dtype, np.number):
        return
    else:
        labels = [str(v) for v in values]
    step = max(1, len(labels) // 12)
    axis.set_ticks(positions[::step])
    axis.set_ticklabels(labels[::step])


def plot_events(events: pd.DataFrame, *, sites: Sequence[str] | None = None) -> Figure:
    """Events per site: each event as a bar on its site's row in UT, and counts per site.

    Parameters
    ----------
    events
        From :func:`auroradask.events` (columns ``site``, ``start``, ``end``).
    sites
        Rows to show, in order (default: the sites with events, sorted).

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the event raster (UT) and the number of events and hours per site.
    """
    import matplotlib.dates as mdates

    missing = [c for c in ("site", "start", "end") if c not in events.columns]
    if missing:
        raise ArgumentError(f"events: missing columns {missing}; pass auroradask.events output")
    sites = list(sites) if sites is not None else sorted(map(str, events["site"].unique()))
    cls = str(events["class"].iloc[0]) if "class" in events.columns and len(events) else "class"
    fig = new_figure(11, 1.2 + 0.35 * max(len(sites), 2))
    raster, bars = fig.subplots(1, 2, sharey=True, width_ratios=[4, 1])
    counts, hours = [], []
    color = _class_colors(4)[3]
    for i, site in enumerate(sites):
        mine = events[events["site"] == site]
        start = mdates.date2num(pd.DatetimeIndex(mine["start"]).to_numpy())
        width = mdates.date2num(pd.DatetimeIndex(mine["end"]).to_numpy()) - start
        raster.broken_barh(
            list(zip(start, width, strict=True)),
            (i - 0.35, 0.7),
            facecolor=color,
            edgecolor=color,
            linewidth=0.6,  # an event of seconds stays visible on a year's axis
        )
        counts.append(len(mine))
        hours.append(
            (mine["end"] - mine["start"]).sum() / pd.Timedelta(hours=1) if len(mine) else 0
        )
    raster.set_yticks(range(len(sites)))
    raster.set_yticklabels(sites)
    raster.set_ylim(-0.6, len(sites) - 0.4)
    raster.set_ylabel("site")
    raster.set_xlabel("UT")
    locator = mdates.AutoDateLocator()
    raster.xaxis.set_major_locator(locator)
    raster.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if len(events):
        first, last = pd.Timestamp(events["start"].min()), pd.Timestamp(events["end"].max())
        pad = (last - first) * 0.02 + pd.Timedelta(minutes=1)
        raster.set_xlim(mdates.date2num(first - pad), mdates.date2num(last + pad))
    else:
        raster.text(0.5, 0.5, "no events", transform=raster.transAxes, ha="center")
    raster.grid(axis="x", alpha=0.3)
    raster.set_title(f"{len(events)} events of {cls}")
    bars.barh(range(len(sites)), counts, color=color)
    for i, (c, h) in enumerate(zip(counts, hours, strict=True)):
        bars.text(c, i, f" {h:.1f} h", va="center", fontsize=8)
    bars.set_xlabel("events")
    bars.set_title("per site")
    return fig
