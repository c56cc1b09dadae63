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

from .._figure import returned, target_axes
from .._palette import NO_DATA, UNUSABLE, UNWRITTEN, class_color, class_colors
from .._results import check_site, class_names, site_coord
from .._schema import SLOT
from ..analysis import magnetic_coordinates, smooth_labels, usable
from ..analysis._magnetic import DEFAULT_ALTITUDE_KM, aacgm_site
from ..analysis._usable import Window
from ..errors import ArgumentError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
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
#: Most bins of a bar chart whose rates are written above the bars, in all and per inch.
MAX_BAR_LABELS, BAR_LABELS_PER_INCH = 40, 4


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
    ax: Any = None,
) -> Figure | tuple[Axes, Axes]:
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
    ax
        Two matplotlib Axes to draw into (label strip, confidence), e.g. a column of a
        larger figure; a new figure otherwise.

    Returns
    -------
    matplotlib.figure.Figure or (Axes, Axes)
        A new figure of two axes sharing a UT time axis; or the two axes given as ``ax``.

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
    colors = class_colors(classes)

    fig, axes, given = target_axes(
        ax, 2, (11, 4.2), nrows=2, ncols=1, sharex=True, height_ratios=[1, 2]
    )
    strip, conf_ax = axes
    x0, x1 = mdates.date2num(start), mdates.date2num(end)
    draw_label_strip(strip, code, colors, (x0, x1))
    strip.set_ylabel("label")
    label_legend(fig, classes, colors, ax=strip if given else None)
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
    _night_time_axis(strip, conf_ax, start, end)
    conf_ax.grid(alpha=0.3)
    strip.set_title(
        _timeline_title(one, site, night, (lat, lon), altitude_km, start + (end - start) / 2)
    )
    return returned(fig, axes, given)


def _night_time_axis(strip, conf_ax, start: pd.Timestamp, end: pd.Timestamp) -> None:
    """A UT axis from ``start`` to ``end`` under the confidence, the strip above it unlabelled
    (shared in a new figure, not in axes given), as many ticks as fit the axes' width."""
    import matplotlib.dates as mdates

    inches = conf_ax.get_position().width * conf_ax.figure.get_figwidth()
    ticks = max(4, min(13, int(1.5 * inches)))  # "HH:MM" labels that do not touch
    for axis in (strip, conf_ax):
        axis.set_xlim(mdates.date2num(start), mdates.date2num(end))
        axis.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=ticks))
        axis.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    strip.tick_params(labelbottom=False)
    conf_ax.set_xlabel(f"UT, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}")


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
        cmap=ListedColormap([*colors, UNUSABLE, UNWRITTEN]),
        vmin=-0.5,
        vmax=n + 1.5,
        extent=(xlim[0], xlim[1], 0, 1),
    )
    ax.set_yticks([])


def label_legend(fig, classes: list[str], colors: list, extra: Sequence = (), ax=None) -> None:
    """The legend of a label strip, outside the axes at the upper right: of the figure, or
    of ``ax`` (in a caller's figure, whose layout is not ours)."""
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=name) for c, name in zip(colors, classes, strict=True)]
    handles += [
        Patch(facecolor=UNUSABLE, label="not usable"),
        Patch(facecolor=UNWRITTEN, edgecolor="black", label="not written"),
        *extra,
    ]
    if ax is not None:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    else:
        fig.legend(handles=handles, loc="outside right upper", fontsize=8)


def plot_occurrence(
    occurrence: xr.Dataset,
    cls: str | None = None,
    *,
    x: str | None = None,
    y: str | None = None,
    ax: Any = None,
) -> Figure | Axes:
    """Occurrence rate of a class as a heatmap over two groupings (or a bar chart over one).

    Groupings not on an axis are combined the right way, by summing counts and usable slots
    before dividing. Bins and cells without usable slots are grey ("no data"), never drawn
    as a rate; rates are drawn from 0.

    Parameters
    ----------
    occurrence
        From :func:`auroradask.occurrence`.
    cls
        Class to show (default: the only class, or ``pulsating`` if present).
    x, y
        Groupings on the axes (default: the first two dimensions after ``class``).
    ax
        A matplotlib Axes to draw into (a heatmap's colour bar takes room from it); a new
        figure otherwise.

    Returns
    -------
    matplotlib.figure.Figure or matplotlib.axes.Axes
        A new figure; or the Axes given as ``ax``.
    """
    cls, x, y = _occurrence_axes(occurrence, cls, x, y)
    dims = [d for d in occurrence["count"].dims if d != "class"]
    keep = [d for d in (y, x) if d is not None]
    count = occurrence["count"].sel({"class": cls}).sum([d for d in dims if d not in keep])
    total = occurrence["usable"].sum([d for d in dims if d not in keep]).transpose(*keep)
    rate = (count / total.where(total > 0)).transpose(*keep)
    hours = float(total.sum()) * pd.Timedelta(SLOT).total_seconds() / 3600

    fig, axes, given = target_axes(ax, 1, (8, 4.8))
    ax = axes[0]
    xs = _positions(rate[x].values)
    if y is None:
        _draw_rate_bars(ax, xs, rate.values, total.values, class_color(cls))
        ax.set_ylabel(f"rate of {cls} (of usable slots)")
    else:
        ys = _positions(rate[y].values)
        bar = _draw_rate_map(fig, ax, xs, ys, rate.values)
        bar.set_ylabel(f"rate of {cls} (of usable slots)")
        ax.set_ylabel(AXIS_LABELS.get(y, y))
        _ticks(ax.yaxis, rate[y].values, ys)
    ax.set_xlabel(AXIS_LABELS.get(x, x))
    _ticks(ax.xaxis, rate[x].values, xs)
    ax.set_title(
        f"Occurrence of {cls}\n{hours:,.1f} h of usable frames; grey: no data", fontsize="medium"
    )
    return returned(fig, axes, given)


def _occurrence_axes(
    occurrence: xr.Dataset, cls: str | None, x: str | None, y: str | None
) -> tuple[str, str, str | None]:
    """The class and the groupings on the axes, checked against the table."""
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
    return cls, x, y


def _rate_max(rate: np.ndarray) -> float:
    """The highest rate, or 1 where every rate is 0 or no data (an axis of 0..1, not 0..0)."""
    finite = rate[np.isfinite(rate)]
    top = float(finite.max()) if finite.size else 0.0
    return top if top > 0 else 1.0


def _draw_rate_bars(ax, xs: np.ndarray, rate: np.ndarray, total: np.ndarray, color) -> None:
    """Bars of the rates from 0; bins without usable slots shaded as no data (no bar), and
    the rate written over each bar (a rate of 0 reads "0.00", not an empty bin) while the
    numbers fit side by side."""
    from matplotlib.patches import Patch, Rectangle

    ax.bar(xs, np.nan_to_num(rate), color=color, width=0.8)
    empty = total == 0
    width = np.diff(_edges(xs))
    for x0, w in zip(xs[empty] - width[empty] / 2, width[empty], strict=True):
        # a Rectangle over the whole height (axvspan gives a Polygon before matplotlib 3.9)
        ax.add_patch(
            Rectangle(
                (x0, 0),
                w,
                1,
                transform=ax.get_xaxis_transform(),
                facecolor=NO_DATA,
                edgecolor="none",
                zorder=0,
            )
        )
    top = min(1.0, 1.15 * _rate_max(rate)) if (np.nan_to_num(rate) > 0).any() else 1.0
    ax.set_ylim(0, top)
    inches = ax.get_position().width * ax.figure.get_figwidth()
    if len(xs) <= min(MAX_BAR_LABELS, BAR_LABELS_PER_INCH * inches):
        for x, value in zip(xs[~empty], rate[~empty], strict=True):
            ax.text(
                x,
                value + 0.01 * top,
                f"{value:.2f}",
                ha="center",
                va="bottom",
                fontsize=6,
                color="#555555",
            )
    if empty.any():
        ax.legend(handles=[Patch(facecolor=NO_DATA, label="no data")], loc="upper right")


def _draw_rate_map(fig, ax, xs: np.ndarray, ys: np.ndarray, rate: np.ndarray):
    """A heatmap of the rates, colours from 0, cells without usable slots grey; the colour
    bar's axes."""
    ax.set_facecolor(NO_DATA)
    mesh = ax.pcolormesh(
        _edges(xs),
        _edges(ys),
        np.ma.masked_invalid(rate),
        cmap="viridis",
        vmin=0,
        vmax=_rate_max(rate),
        shading="flat",
    )
    return fig.colorbar(mesh, ax=ax).ax


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


def plot_events(
    events: pd.DataFrame,
    *,
    sites: Sequence[str] | None = None,
    cls: str | None = None,
    ax: Any = None,
) -> Figure | Axes | tuple[Axes, Axes]:
    """Events per site: each event as a bar on its site's row in UT, and counts per site.

    No events gives the same figure, labelled, with "no events" and no time axis (there is
    no time to show), not a made-up date.

    Parameters
    ----------
    events
        From :func:`auroradask.events` (columns ``site``, ``start``, ``end``).
    sites
        Rows to show, in order (default: the sites with events, sorted).
    cls
        The class, for the title (default: the events' ``class`` column, or what
        :func:`auroradask.events` recorded in ``events.attrs`` when there is no event).
    ax
        Where to draw: one matplotlib Axes (the event raster alone) or two (the raster and
        the events per site); a new figure of both otherwise.

    Returns
    -------
    matplotlib.figure.Figure, Axes or (Axes, Axes)
        A new figure of two axes, the event raster (UT) and the number of events and hours
        per site; or the axes given as ``ax``.
    """
    missing = [c for c in ("site", "start", "end") if c not in events.columns]
    if missing:
        raise ArgumentError(f"events: missing columns {missing}; pass auroradask.events output")
    sites = list(sites) if sites is not None else sorted(map(str, events["site"].unique()))
    if cls is None and "class" in events.columns and len(events):
        cls = str(events["class"].iloc[0])
    cls = cls if cls is not None else events.attrs.get("class")
    size = (11, 1.2 + 0.35 * max(len(sites), 2))
    count = 1 if ax is not None and not isinstance(ax, list | tuple | np.ndarray) else 2
    fig, axes, given = target_axes(ax, count, size, ncols=2, sharey=True, width_ratios=[4, 1])
    raster = axes[0]
    color = class_color(cls) if cls is not None else NO_DATA
    counts, hours = _draw_event_rows(raster, events, sites, color)
    raster.set_yticks(range(len(sites)))
    raster.set_yticklabels(sites)
    raster.set_ylim(-0.6, len(sites) - 0.4)
    raster.set_ylabel("site")
    _event_time_axis(raster, events)
    what = f" of {cls}" if cls is not None else ""
    raster.set_title(f"{len(events)} events{what}" if len(events) else f"no events{what}")
    if len(axes) == 2:
        _draw_site_counts(axes[1], counts, hours, color)
    return returned(fig, axes, given)


def _draw_site_counts(bars, counts: list[int], hours: list[float], color) -> None:
    """Events per site as bars, with their hours written beside each."""
    from matplotlib.ticker import MaxNLocator  # deferred: matplotlib is slow to import

    bars.barh(range(len(counts)), counts, color=color)
    for i, (c, h) in enumerate(zip(counts, hours, strict=True)):
        bars.text(c, i, f" {h:.1f} h", va="center", fontsize=8)
    bars.set_xlim(0, 1.35 * max([*counts, 1]))  # room for the hours beside the longest bar
    bars.xaxis.set_major_locator(MaxNLocator(integer=True))
    bars.set_ylim(-0.6, len(counts) - 0.4)  # the rows of the raster beside it
    bars.tick_params(labelleft=False)
    bars.set_xlabel("events")
    bars.set_title("per site")


def _draw_event_rows(raster, events: pd.DataFrame, sites: list[str], color) -> tuple[list, list]:
    """Each site's events as bars on its row; the number of events and their hours per site."""
    import matplotlib.dates as mdates

    counts, hours = [], []
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
    return counts, hours


def _event_time_axis(raster, events: pd.DataFrame) -> None:
    """A UT axis over the events (dates in the offset, also marked UT); none without events."""
    import matplotlib.dates as mdates

    raster.set_xlabel("UT")
    raster.grid(axis="x", alpha=0.3)
    if not len(events):
        raster.set_xticks([])
        raster.text(0.5, 0.5, "no events", transform=raster.transAxes, ha="center")
        return
    locator = mdates.AutoDateLocator()
    raster.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator)
    formatter.offset_formats = [f"{f} UT" if f else f for f in formatter.offset_formats]
    raster.xaxis.set_major_formatter(formatter)
    first, last = pd.Timestamp(events["start"].min()), pd.Timestamp(events["end"].max())
    pad = (last - first) * 0.02 + pd.Timedelta(minutes=1)
    raster.set_xlim(mdates.date2num(first - pad), mdates.date2num(last + pad))
