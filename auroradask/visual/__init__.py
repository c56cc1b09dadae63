"""Looking at what the model saw: figures of the analysis (``_plots``, the MLAT × MLT
occurrence dial in ``_dial``), keograms (``_keogram``, drawn by ``_keogram_plot``), quicklooks
(``_quicklook``), movies (``_movie``), montages (``_montage``) and mosaics of several sites on
a map (``_mosaic``, ``_mosaic_movie``).

Every figure of the package is made by ``_figure.new_figure`` (an Agg canvas outside pyplot);
``_inputs`` reads the stores, frames and contrast arguments the figures share.
"""

from ._dial import plot_occurrence_dial
from ._keogram import keogram
from ._keogram_plot import plot_keogram
from ._montage import class_montage, montage
from ._mosaic import mosaic
from ._mosaic_movie import mosaic_movie
from ._movie import MovieInfo, movie
from ._plots import plot_events, plot_occurrence, plot_timeline
from ._quicklook import quicklook, quicklooks

__all__ = [
    "class_montage",
    "keogram",
    "montage",
    "mosaic",
    "mosaic_movie",
    "movie",
    "MovieInfo",
    "plot_events",
    "plot_keogram",
    "plot_occurrence",
    "plot_occurrence_dial",
    "plot_timeline",
    "quicklook",
    "quicklooks",
]
