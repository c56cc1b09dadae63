"""The one way auroradask makes a matplotlib figure.

Every figure of the package (analysis plots, keograms, quicklooks, montages, the movie's
background, evaluation plots, patch tracks) is a :class:`matplotlib.figure.Figure` with its
own Agg canvas, made by :func:`new_figure`, never through ``pyplot``: no global figure state
is created or left behind, no backend is switched for the user's session (a global
``matplotlib.use("Agg")`` would turn off a notebook's inline figures), and drawing is safe
in Dask workers, threads and servers. The caller saves with ``fig.savefig(path)``; a
notebook displays a returned figure as any other.

matplotlib is imported when a figure is made, so ``import auroradask`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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


__all__ = ["new_figure"]
