"""The one way auroradask makes a matplotlib figure.

Every figure of the package (analysis plots, keograms, quicklooks, montages, the movie's
background, evaluation plots, patch tracks) is a :class:`matplotlib.figure.Figure` with its
own Agg canvas, made by :func:`new_figure`, never through ``pyplot``: no global figure state
is created or left behind, no backend is switched for the user's session (a global
``matplotlib.use("Agg")`` would turn off a notebook's inline figures), and drawing is safe
in Dask workers, threads and servers. The caller saves with ``fig.savefig(path)``; a
notebook displays a returned figure as any other.

Every plotting function also takes ``ax=``: the caller's Axes (or, for a figure of several
panels, a sequence of them) to draw into, as matplotlib, pandas, xarray and asilib do; it
then returns those axes (:func:`target_axes`, :func:`returned`).

matplotlib is imported when a figure is made, so ``import auroradask`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ArgumentError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def new_figure(
    width: float, height: float, *, layout: str | None = "constrained", dpi: float | None = None
) -> Figure:
    """A new figure of ``width`` × ``height`` inches with an Agg canvas, outside pyplot.

    Parameters
    ----------
    width, height
        Size in inches.
    layout
        matplotlib's layout engine (``"constrained"`` by default: labels, colour bars and
        legends placed outside the axes without overlapping; None for axes placed by hand).
    dpi
        Dots per inch of the canvas (matplotlib's default when None).

    Returns
    -------
    matplotlib.figure.Figure
    """
    # imported here, deferred: matplotlib is a slow import that only figures need
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def target_axes(
    ax: Any, count: int, size: tuple[float, float], **subplots: Any
) -> tuple[Figure, list[Axes], bool]:
    """The axes a plotting function draws into: the caller's (``ax``), or ``count`` new ones.

    Parameters
    ----------
    ax
        None (a new figure of ``size`` inches with ``count`` axes from ``subplots``), one
        matplotlib Axes, or a sequence of ``count`` of them.
    count
        How many axes the figure has.
    size
        ``(width, height)`` of a new figure.
    **subplots
        Passed to :meth:`matplotlib.figure.Figure.subplots` for a new figure.

    Returns
    -------
    figure, axes, given
        The figure of the axes, the axes as a list, and whether they were the caller's.
    """
    from matplotlib.axes import Axes  # deferred: matplotlib is slow to import

    if ax is None:
        fig = new_figure(*size)
        return fig, list(np.atleast_1d(fig.subplots(**subplots)).ravel()), False
    axes = [ax] if isinstance(ax, Axes) else list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) != count or not all(isinstance(a, Axes) for a in axes):
        what = "an Axes" if count == 1 else f"a sequence of {count} Axes"
        raise ArgumentError(f"ax: expected {what}, got {ax!r}")
    return axes[0].figure, axes, True


def returned(fig: Figure, axes: list[Axes], given: bool) -> Any:
    """What a plotting function returns: the caller's axes (one, or a tuple of them) when it
    drew into them, as matplotlib's and pandas' plotting functions do; else the new figure."""
    if not given:
        return fig
    return axes[0] if len(axes) == 1 else tuple(axes)


__all__ = ["new_figure", "returned", "target_axes"]
