"""Analysis of stored labels: usable slots, smoothing, magnetic coordinates, occurrence,
events, network coincidence and joins with other time series.

Everything here works on a results dataset (:func:`auroradask.classify`) or a store
(:func:`auroradask.open_results`), lazily and one chunk at a time, so a store of any size is
never loaded whole. Each step is a numpy *kernel* (a plain function of arrays, tested
against a direct computation) and a thin dask/xarray *wrapper* that maps it over the
chunks: ``map_blocks`` for per-slot work, ``map_overlap`` for the smoother (a window needs
its neighbours across chunk edges), and small per-chunk tables merged on the cluster for
occurrence counts and events.

A store's time axis covers whole UT days, most of it never written (``frame_status == -1``),
so no statistic may use the time axis as its denominator: every rate here is over *usable*
slots (written, classified, optionally confident enough and not of an excluded class), and
the number of usable slots is returned beside it so that rates can be combined.

One module per concern: ``_usable`` (the usable mask and the shared arguments),
``_smoothing``, ``_magnetic`` (AACGM-v2), ``_occurrence``, ``_events``, ``_coincidence`` and
``_joins``. Reading a results dataset (classes, sites, per-slot arrays) is shared with
``auroradask.visual`` through ``auroradask._results``.
"""

from ._coincidence import coincidence
from ._events import events
from ._joins import join_nearest, join_over_events
from ._magnetic import magnetic_coordinates
from ._occurrence import occurrence
from ._smoothing import smooth_labels
from ._usable import usable

__all__ = [
    "coincidence",
    "events",
    "join_nearest",
    "join_over_events",
    "magnetic_coordinates",
    "occurrence",
    "smooth_labels",
    "usable",
]
