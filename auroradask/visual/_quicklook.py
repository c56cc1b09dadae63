"""Nightly quicklooks: the keogram over the label strip and the confidence, per site and night.

A quicklook is what a user checks a classifier with: the sky (a keogram, so the whole night
fits one figure) and the labels on the same UT axis, with "no data" never drawn as "no
aurora". The keogram comes from the store when ``classify`` stored one (no pass over the raw
archive), else it is computed from the frames of ``source`` for the night's written span.
:func:`quicklooks` draws every (site, night) of a store into a folder with a static
``index.html`` that pages through nights and sites (no server needed).
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .._figure import returned, target_axes
from .._html import script_json
from .._palette import NO_FRAME, class_colors
from .._results import check_site, class_names, not_site_codes, site_coord
from .._schema import FRAME_STATUS_MEANINGS, OK, SLOT
from ..analysis import usable
from ..errors import ArgumentError
from ._inputs import check_contrast, frames_of, results_of
from ._keogram import KEOGRAM, keogram
from ._keogram_plot import draw_keogram
from ._plots import (
    draw_label_strip,
    label_legend,
    night_start,
    night_window,
    nothing_written,
    strip_codes,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Slots per hour: the unit in which :func:`nights_written` looks for written data.
_HOUR_SLOTS = 3600 // int(pd.Timedelta(SLOT).total_seconds())


def night_keogram(
    results: xr.Dataset,
    site: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    source: Any = None,
    **keogram_options: Any,
) -> xr.DataArray | None:
    """The keogram of ``site`` over [start, end): stored in ``results`` if it is there, else
    computed from ``source`` (an archive or frames dataset), else None. Computed (numpy)."""
    if KEOGRAM in results and not keogram_options:
        keo = results[KEOGRAM].isel(site=check_site(results, site))
        return keo.sel(time=slice(start, end - pd.Timedelta(SLOT))).compute()
    if source is None:
        return None
    frames = frames_of(source, site, start, end)
    return keogram(frames, **keogram_options).isel(site=0).compute()


def quicklook(
    store: str | os.PathLike | xr.Dataset,
    *,
    site: str,
    night: Any,
    source: Any = None,
    path: str | os.PathLike | None = None,
    group: str | None = None,
    span: str = "written",
    contrast: tuple[float, float] = (1, 99),
    min_confidence: float | None = None,
    exclude: str | Iterable[str] | None = None,
    dpi: int = 110,
    ax: Any = None,
    **keogram_options: Any,
) -> Figure | tuple[Axes, Axes, Axes]:
    """One site's night at a glance: keogram, label strip and confidence on one UT axis.

    Parameters
    ----------
    store
        A results store (path or URL) or a results dataset.
    site
        Site code.
    night
        The date on which the night starts (``"2014-03-09"``), or a UT time inside the night
        (``"2014-03-10T06:00"``, which at Gillam is in the night of 2014-03-09): the 24 h UT
        centred on local midnight, as :func:`auroradask.plot_timeline`.
    source
        Where to read frames when the store holds no keogram: a stream0 archive (path or
        URL) or a frames dataset. Without it and without a stored keogram, the keogram panel
        says so and the labels are drawn alone.
    path
        Also save the figure there (``.png``, ``.pdf``, ``.svg``).
    group
        Group inside the store.
    span
        ``"written"`` (default): the time axis covers the night's written slots (rounded out
        to 10 minutes, or to a minute when they span less than 2 h); ``"night"``: the whole 24 h window.
    contrast
        Percentiles of the keogram's counts (over its frames in the span) mapped to black
        and white: raw counts span 3,000 to 65,535 and one bright moment would darken the rest.
    min_confidence, exclude
        What counts as usable (as for :func:`auroradask.occurrence`); unusable written slots
        are grey in the label strip, unwritten ones white.
    dpi
        Resolution of the saved figure.
    ax
        Three matplotlib Axes to draw into (keogram, label strip, confidence), e.g. a
        column of a figure of several nights; a new figure otherwise.
    **keogram_options
        Passed to :func:`auroradask.keogram` when the keogram is computed from ``source``
        (``skymap=``, ``direction=``, ...); given, they also override a stored keogram.

    Returns
    -------
    matplotlib.figure.Figure or (Axes, Axes, Axes)
        A new figure; or the three axes given as ``ax``.

    Raises
    ------
    ArgumentError
        For an unknown site, a date that cannot be read, or a night with nothing written.
    """
    import matplotlib.dates as mdates
    from matplotlib.patches import Patch

    if span not in ("written", "night"):
        raise ArgumentError(f"span: expected 'written' or 'night', got {span!r}")
    lo_pct, hi_pct = check_contrast(contrast)
    results = results_of(store, group)
    classes = class_names(results)
    one = _night(results, site, night, span, min_confidence, exclude)
    grid = np.arange(one.t0.to_datetime64(), one.t1.to_datetime64(), SLOT)
    grid = grid.astype("datetime64[ns]")
    keo = night_keogram(results, site, one.t0, one.t1, source, **keogram_options)
    fig, axes, given = target_axes(
        ax, 3, (11, 6.2), nrows=3, ncols=1, sharex=True, height_ratios=[5, 0.6, 1.8]
    )
    keo_ax, strip, conf_ax = axes
    xlim = (mdates.date2num(one.t0), mdates.date2num(one.t1))
    if keo is not None:
        draw_keogram(
            keo_ax, keo, grid, one.data["frame_status"].isel(site=0), xlim, (lo_pct, hi_pct)
        )
    else:
        _draw_no_keogram(keo_ax)
    colors = class_colors(classes)
    # the strip and the keogram cover the whole span: slots outside the dataset are unwritten
    code = strip_codes(grid, one.times, one.label, one.status >= 0, len(classes))
    draw_label_strip(strip, code, colors, xlim)
    strip.set_ylabel("label", rotation=0, ha="right", va="center")
    no_frame = Patch(facecolor=NO_FRAME, edgecolor="black", label="no frame (keogram)")
    label_legend(fig, classes, colors, [no_frame], ax=strip if given else None)
    _draw_confidence(conf_ax, one, colors, xlim)
    keo_ax.set_title(_title_of(site, night, one, classes), fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return returned(fig, axes, given)


def _title_of(site: str, night: Any, one: _Night, classes: list[str]) -> str:
    """``site: night of DATE, H h of frames; class n, ...`` (the classes labelled)."""
    counts = {
        c: int((one.label == k).sum()) for k, c in enumerate(classes) if (one.label == k).any()
    }
    hours = (one.status == OK).sum() * pd.Timedelta(SLOT).total_seconds() / 3600
    return (
        f"{site}: night of {night_start(night, one.longitude).date()}, {hours:.2f} h of frames; "
        + ", ".join(f"{c} {v}" for c, v in counts.items())
    )


@dataclass(frozen=True)
class _Night:
    """One site's slots shown by a quicklook: the span ``[t0, t1)`` and its slots' data."""

    data: xr.Dataset  # the one-site results over the span
    t0: pd.Timestamp
    t1: pd.Timestamp
    times: np.ndarray
    status: np.ndarray
    label: np.ndarray  # usable slots' labels, -1 elsewhere
    confidence: np.ndarray
    longitude: float = float("nan")  # the site's: which night a time belongs to


def _night(results, site, night, span, min_confidence, exclude) -> _Night:
    """The slots of ``site`` in the night's window, cut to ``span``; an error if none is
    written."""
    row = check_site(results, site)
    lon = site_coord(results, "longitude")[row]
    start, end = night_window(night, lon)
    one = results.isel(site=[row]).sel(time=slice(start, end - pd.Timedelta(SLOT)))
    status = one["frame_status"].values[0] if one.sizes["time"] else np.zeros(0, np.int8)
    written = status >= 0
    if not written.any():
        raise nothing_written(results, row, site, night, lon)
    times = one["time"].values
    t0, t1 = _written_span(times[written], start, end) if span == "written" else (start, end)
    inside = (times >= t0.to_datetime64()) & (times < t1.to_datetime64())
    one = one.isel(time=np.flatnonzero(inside))
    ok = usable(one, min_confidence=min_confidence, exclude=exclude).values[0]
    label = np.where(ok, one["label"].values[0], -1)
    return _Night(
        one, t0, t1, times[inside], status[inside], label, one["confidence"].values[0], lon
    )


def _written_span(
    written_times: np.ndarray, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The written slots' span rounded out to 10 minutes (a minute when under 2 h), within
    the night's window."""
    first, last = pd.Timestamp(written_times[0]), pd.Timestamp(written_times[-1])
    unit = "1min" if last - first < pd.Timedelta(hours=2) else "10min"
    t0 = max(first.floor(unit), start)
    t1 = min((last + pd.Timedelta(SLOT)).ceil(unit), end)
    if t1 <= last:
        t1 = last + pd.Timedelta(SLOT)
    return t0, t1


def _draw_no_keogram(ax) -> None:
    ax.set_facecolor(NO_FRAME)
    ax.text(
        0.5,
        0.5,
        "no keogram: the store holds none; give source= (the archive) to compute it",
        transform=ax.transAxes,
        ha="center",
        va="center",
    )
    ax.set_yticks([])


def _draw_confidence(ax, one: _Night, colors: list, xlim: tuple[float, float]) -> None:
    import matplotlib.dates as mdates

    for k, color in enumerate(colors):
        mine = one.label == k
        if mine.any():
            ax.plot(mdates.date2num(one.times[mine]), one.confidence[mine], ".", ms=2, color=color)
    ax.set_ylim(0, 1.05)
    ax.set_yticks([0, 0.5, 1])
    ax.set_ylabel("confidence")
    ax.grid(alpha=0.3)
    ax.set_xlim(*xlim)
    locator = mdates.AutoDateLocator(minticks=4, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_xlabel(f"UT, {one.t0:%Y-%m-%d %H:%M} to {one.t1:%Y-%m-%d %H:%M}")


# ----------------------------------------------------------------------------- many nights


def nights_written(results: xr.Dataset, site: str) -> list[str]:
    """The nights (dates they start on, ``YYYY-MM-DD``) in which ``site`` has written slots.

    Computed hour by hour from ``frame_status`` chunk by chunk, so a store of years is never
    loaded whole.
    """
    row = check_site(results, site)
    status = results["frame_status"].isel(site=row).data
    if not isinstance(status, da.Array):
        status = da.from_array(np.asarray(status))
    n = status.shape[0]
    pad = (-n) % _HOUR_SLOTS
    written = status >= 0
    if pad:
        written = da.concatenate([written, da.zeros(pad, dtype=bool)])
    hourly = written.reshape(-1, _HOUR_SLOTS).any(axis=1).compute()
    times = results["time"].values
    lon = site_coord(results, "longitude")[row]
    offset = pd.Timedelta(hours=round(0.0 if not np.isfinite(lon) else -float(lon) / 15.0))
    nights = set()
    for k in np.flatnonzero(hourly):
        first = pd.Timestamp(times[k * _HOUR_SLOTS])
        last = pd.Timestamp(times[min((k + 1) * _HOUR_SLOTS, n) - 1])
        for t in (first, last):
            nights.add((t - pd.Timedelta(hours=12) - offset).floor("D").strftime("%Y-%m-%d"))
    return sorted(nights)


def quicklooks(
    store: str | os.PathLike | xr.Dataset,
    folder: str | os.PathLike,
    *,
    sites: str | Sequence[str] | None = None,
    nights: Sequence[Any] | None = None,
    source: Any = None,
    group: str | None = None,
    progress: Any = None,
    skipped: Any = None,
    **options: Any,
) -> Path:
    """Draw the quicklook of every (site, night) with frames into ``folder``, and an index.

    Writes ``folder/<site>/<site>_<YYYY-MM-DD>.png`` per site and night, and
    ``folder/index.html``: a static page (no server, no network) with a viewer that pages
    through nights (←/→) and sites (↑/↓) and a table linking every figure. A night whose
    written slots hold no frame (a run over whole UT days writes the daylight hours as
    ``no_file``) gets no figure: it is reported to ``skipped``.

    Parameters
    ----------
    store, source, group
        As for :func:`quicklook`.
    folder
        Output folder (created).
    sites
        Sites to draw (default: all of the store's).
    nights
        Nights to draw, as for :func:`quicklook` (default: every night with written slots,
        per site).
    progress
        Called with ``(site, night, path)`` after each figure.
    skipped
        Called with ``(site, night, reason)`` for each night not drawn because none of its
        slots holds a frame (``reason`` says what its slots hold, or ``"nothing written"``
        for a night given in ``nights``).
    **options
        Passed to :func:`quicklook`.

    Returns
    -------
    pathlib.Path
        The path of ``index.html``.
    """
    results = results_of(store, group)
    all_sites = [str(s) for s in results["site"].values]
    if sites is None:
        chosen = all_sites
    else:
        chosen = [sites] if isinstance(sites, str) else list(sites)
        for s in chosen:
            check_site(results, s)
    bad = not_site_codes(chosen)
    if bad:  # a dataset in memory; a store with such names is refused when opened
        raise ArgumentError(
            f"store: sites {', '.join(bad)} are not site codes (lower-case letters and "
            "digits); refusing to name files after them"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    figures: list[dict[str, str]] = []
    for site in chosen:
        lon = site_coord(results, "longitude")[check_site(results, site)]
        wanted = (
            nights_written(results, site)
            if nights is None
            else [night_start(n, lon).strftime("%Y-%m-%d") for n in nights]
        )
        for night in wanted:
            empty = _no_frame(results, site, night, lon)
            if empty is not None:
                # a night found in the store with nothing written is an edge hour of another
                if skipped is not None and (empty or nights is not None):
                    skipped(site, night, empty or "nothing written")
                continue
            relative = f"{site}/{site}_{night}.png"
            target = _inside(folder, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            fig = quicklook(results, site=site, night=night, source=source, **options)
            fig.savefig(target, dpi=options.get("dpi", 110))
            figures.append({"site": site, "night": night, "file": relative})
            if progress is not None:
                progress(site, night, target)
    index = folder / "index.html"
    index.write_text(index_html(figures, title=_title(results)), encoding="utf-8")
    return index


def _inside(folder: Path, relative: str) -> Path:
    """``folder / relative``, which must stay inside ``folder`` (names come from a store)."""
    target = folder / relative
    if not target.resolve().is_relative_to(folder.resolve()):
        raise ArgumentError(f"store: {relative!r} would be written outside {str(folder)!r}")
    return target


def _no_frame(results: xr.Dataset, site: str, night: str, longitude: float) -> str | None:
    """None where ``site`` has a frame in the night; else why not: ``""`` when nothing is
    written there, else what its written slots hold (``"no frame: 7,200 slots written,
    no_file 7,200"``)."""
    start, end = night_window(night, longitude)
    status = results["frame_status"].isel(site=check_site(results, site))
    status = np.asarray(status.sel(time=slice(start, end - pd.Timedelta(SLOT))).values)
    if (status == OK).any():
        return None
    written = status[status >= 0]
    if not written.size:
        return ""
    counts = np.bincount(written.astype(np.int64), minlength=len(FRAME_STATUS_MEANINGS))
    held = ", ".join(
        f"{FRAME_STATUS_MEANINGS[k]} {n:,}" for k, n in enumerate(counts) if n and k != OK
    )
    return f"no frame: {written.size:,} slots written, {held}"


def _title(results: xr.Dataset) -> str:
    model = results.attrs.get("model_file") or results.attrs.get("model") or ""
    return f"auroradask quicklooks{f' ({model})' if model else ''}"


def index_html(figures: list[dict[str, str]], *, title: str = "auroradask quicklooks") -> str:
    """A static page paging through quicklooks: a viewer (night ←/→, site ↑/↓ or the
    buttons) over a table of nights × sites linking every figure, which works without
    JavaScript too. ``figures``: ``{"site", "night", "file"}`` with paths relative to it."""
    sites = sorted({f["site"] for f in figures})
    nights = sorted({f["night"] for f in figures})
    by_key = {(f["night"], f["site"]): f["file"] for f in figures}
    rows = []
    for night in nights:
        cells = []
        for site in sites:
            file = by_key.get((night, site))
            cells.append(
                f'<td><a href="{html.escape(file)}">{html.escape(site)}</a></td>'
                if file
                else "<td></td>"
            )
        rows.append(f"<tr><th>{html.escape(night)}</th>{''.join(cells)}</tr>")
    header = "".join(f"<th>{html.escape(s)}</th>" for s in sites)
    data = script_json(figures)  # no '<', '>' or '&' left: a name cannot close the script
    esc_title = html.escape(title)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc_title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
#viewer img {{ max-width: 100%; border: 1px solid #ccc; }}
#bar button, #bar select {{ font-size: 1em; margin-right: .4em; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
td, th {{ border: 1px solid #ddd; padding: .2em .5em; }}
</style></head>
<body>
<h1>{esc_title}</h1>
<p>{len(figures)} quicklooks, {len(nights)} nights, {len(sites)} sites.
Keys: &larr;/&rarr; night, &uarr;/&darr; site.</p>
<div id="viewer" hidden>
<div id="bar"><button id="prev">&larr; night</button><button id="next">night &rarr;</button>
<select id="site"></select><select id="night"></select> <span id="where"></span></div>
<a id="link"><img id="image" alt="quicklook"></a>
</div>
<table><tr><th>night</th>{header}</tr>
{chr(10).join(rows)}
</table>
<script>
const figures = {data};
const sites = [...new Set(figures.map(f => f.site))].sort();
const nights = [...new Set(figures.map(f => f.night))].sort();
const file = (n, s) => (figures.find(f => f.night === n && f.site === s) || {{}}).file;
let site = sites[0], night = nights[0];
const $ = id => document.getElementById(id);
for (const s of sites) $("site").add(new Option(s, s));
for (const n of nights) $("night").add(new Option(n, n));
function nightsOf(s) {{ return nights.filter(n => file(n, s)); }}
function show() {{
  if (!file(night, site)) night = nightsOf(site)[0];
  const f = file(night, site);
  $("image").src = f; $("link").href = f; $("site").value = site; $("night").value = night;
  const mine = nightsOf(site);
  $("where").textContent = `night ${{mine.indexOf(night) + 1}} of ${{mine.length}} at ${{site}}`;
  location.hash = `${{site}}/${{night}}`;
}}
function step(d) {{
  const mine = nightsOf(site); const i = mine.indexOf(night) + d;
  if (i >= 0 && i < mine.length) {{ night = mine[i]; show(); }}
}}
function stepSite(d) {{
  const i = sites.indexOf(site) + d;
  if (i >= 0 && i < sites.length) {{ site = sites[i]; show(); }}
}}
$("prev").onclick = () => step(-1); $("next").onclick = () => step(1);
$("site").onchange = e => {{ site = e.target.value; show(); }};
$("night").onchange = e => {{ night = e.target.value; show(); }};
document.onkeydown = e => {{
  const k = {{ArrowLeft: () => step(-1), ArrowRight: () => step(1),
             ArrowUp: () => stepSite(-1), ArrowDown: () => stepSite(1)}}[e.key];
  if (k) {{ k(); e.preventDefault(); }}
}};
if (figures.length) {{
  const [s, n] = location.hash.slice(1).split("/");
  if (sites.includes(s)) site = s;
  if (nights.includes(n)) night = n;
  $("viewer").hidden = false; show();
}}
</script>
</body></html>
"""
