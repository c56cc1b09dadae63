"""Analysis of stored labels: usable frames, smoothing, magnetic coordinates, occurrence,
events and joins with other tables.
"""

from ._analysis import (
    coincidence,
    events,
    join_nearest,
    join_over_events,
    magnetic_coordinates,
    occurrence,
    smooth_labels,
    usable,
)

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
