"""Drawing keograms: a stored or computed keogram on a UT time axis, north (or east) up.

:func:`plot_keogram` draws any keogram (:func:`auroradask.keogram`, or a store's
``keogram``) alone or into the caller's axes, as asilib's ``plot_keogram(ax=...)`` does;
the quicklook and the movie draw theirs with the same steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from .._figure import returned, target_axes
from .._palette import NO_FRAME
from .._schema import OK, SLOT
from ..errors import ArgumentError
from ._inputs import check_contrast
from ._keogram import KEOGRAM_ROW, keogram_axis

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_keogram(
    keo: xr.DataArray,
    *,
    site: str | None = None,
    contrast: tuple[float, float] = (1, 99),
    ax: Any = None,
) -> Figure | Axes:
    """Draw a keogram on a UT time axis: row 0 (north, or east) on top, its ends named.

    Slots without a frame (gaps, missing files) are drawn in a pale colour, never as dark
    sky; counts are stretched between two percentiles of the keogram's frames.

    Parameters
    ----------
    keo
        A keogram from :func:`auroradask.keogram` or a store's ``keogram`` variable
        (``(site, time, keogram_row)`` or one site's ``(time, keogram_row)``); computed here.
    site
        The site to draw when ``keo`` holds several.
    contrast
        Percentiles of the counts mapped to black and white.
    ax
        A matplotlib Axes to draw into (its colour bar takes room from it); a new figure
        otherwise.

    Returns
    -------
    matplotlib.figure.Figure or matplotlib.axes.Axes
        A new figure; or the Axes given as ``ax``.
    """
    import matplotlib.dates as mdates  # deferred: matplotlib is slow to import

    if not isinstance(keo, xr.DataArray) or KEOGRAM_ROW not in keo.dims:
        raise ArgumentError(
            "keo: expected a keogram DataArray (auroradask.keogram, or a store's 'keogram')"
        )
    contrast = check_contrast(contrast)
    site, keo = _one_site_keogram(keo, site)
    times = keo["time"].values
    if len(times) == 0:
        raise ArgumentError("keo: no time slot to draw")
    t0, t1 = pd.Timestamp(times[0]), pd.Timestamp(times[-1]) + pd.Timedelta(SLOT)
    grid = np.arange(t0.to_datetime64(), t1.to_datetime64(), SLOT).astype("datetime64[ns]")
    fig, axes, given = target_axes(ax, 1, (11, 4))
    ax = axes[0]
    draw_keogram(ax, keo, grid, None, (mdates.date2num(t0), mdates.date2num(t1)), contrast)
    locator = mdates.AutoDateLocator(minticks=4, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_xlabel(f"UT, {t0:%Y-%m-%d %H:%M:%S} to {t1:%Y-%m-%d %H:%M:%S}")
    direction = keo.attrs.get("direction", "north-south")
    ax.set_title(f"{site}: keogram ({direction})" if site else f"keogram ({direction})")
    return returned(fig, axes, given)


def _one_site_keogram(keo: xr.DataArray, site: str | None) -> tuple[str | None, xr.DataArray]:
    if "site" not in keo.dims:
        name = str(keo["site"].values) if "site" in keo.coords else site
        return name, keo.compute()
    sites = [str(s) for s in keo["site"].values]
    if site is None:
        if len(sites) != 1:
            raise ArgumentError(f"site: the keogram holds sites {sites}; choose one with site=")
        site = sites[0]
    if site not in sites:
        raise ArgumentError(f"site: the keogram has no site {site!r}; it holds {sites}")
    return site, keo.isel(site=sites.index(site)).compute()


def keogram_image(
    keo: xr.DataArray, grid: np.ndarray, status: xr.DataArray | None = None
) -> np.ndarray:
    """``(rows, len(grid))`` float counts of a one-site keogram on the slot grid, NaN where
    there is no frame (slot outside the keogram, or ``frame_status`` not ok)."""
    values = np.asarray(keo.values, dtype=np.float32)
    times = keo["time"].values
    good = values.max(axis=-1) > 0  # a slot without a frame is all zeros
    if "frame_status" in keo.coords:
        good &= keo["frame_status"].values == OK
    if status is not None:
        st = status.reindex(time=times, fill_value=-1).values
        good &= st == OK
    image = np.full((values.shape[-1], len(grid)), np.nan, dtype=np.float32)
    where = np.searchsorted(grid, times)
    inside = (where < len(grid)) & (grid[np.minimum(where, len(grid) - 1)] == times)
    keep = inside & good
    image[:, where[keep]] = values[keep].T
    return image


def draw_keogram(ax, keo, grid, status, xlim, contrast) -> None:
    """A one-site keogram on the slot ``grid`` into ``ax`` over ``xlim`` (date numbers):
    row 0 (north or east) on top, its ends named, elevation or pixel ticks, a colour bar of
    counts stretched between the ``contrast`` percentiles, no frame in :data:`NO_FRAME`."""
    image = keogram_image(keo, grid, status)
    finite = image[np.isfinite(image)]
    if finite.size:
        vmin, vmax = np.percentile(finite, contrast)
        vmax = max(vmax, vmin + 1)
    else:
        vmin, vmax = 0, 1
    from matplotlib import colormaps  # deferred: matplotlib is slow to import

    cmap = colormaps["gray"].with_extremes(bad=NO_FRAME)
    n = image.shape[0]
    shown = ax.imshow(
        np.ma.masked_invalid(image),
        aspect="auto",
        interpolation="antialiased",
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        extent=(xlim[0], xlim[1], n - 0.5, -0.5),  # keogram_row 0 (north or east) on top
    )
    axis = keogram_axis(keo)
    ax.set_yticks(axis["ticks"])
    ax.set_yticklabels(axis["ticklabels"], fontsize=8)
    ax.set_ylabel(axis["label"])
    first, last = axis["ends"]
    for y, text, va in ((0.99, first, "top"), (0.01, last, "bottom")):
        ax.text(
            1.005, y, text, transform=ax.transAxes, ha="left", va=va, fontsize=11, weight="bold"
        )
    colorbar = ax.figure.colorbar(shown, ax=ax, pad=0.03, fraction=0.03)
    colorbar.set_label(f"counts ({contrast[0]:g}–{contrast[1]:g} %)", fontsize=8)
    colorbar.ax.tick_params(labelsize=7)
