"""Network coincidence: per slot, how many sites observe and how many show each class."""

from __future__ import annotations

from collections.abc import Iterable

import dask.array as da
import numpy as np
import xarray as xr

from .._results import check_min_confidence, class_indices, class_names, results_arrays
from ._smoothing import _labels
from ._usable import Window, _names


def coincidence(
    results: xr.Dataset,
    classes: str | Iterable[str] | None = None,
    *,
    min_confidence: float | None = None,
    exclude: str | Iterable[str] | None = None,
    smooth: Window = None,
) -> xr.Dataset:
    """For each slot, how many sites observe (are usable) and how many show each class.

    Lazy: a time series as long as the store's time axis, computed chunk by chunk.

    Parameters
    ----------
    results
        A results dataset or store (select sites first with ``.sel(site=...)``).
    classes
        Classes to count (default: all not excluded).
    min_confidence, exclude, smooth
        As for :func:`occurrence`.

    Returns
    -------
    xarray.Dataset
        ``observing(time)`` and ``showing(class, time)``, int16, dask-backed.
    """
    min_confidence = check_min_confidence(min_confidence)
    excluded = class_indices(results, exclude, "exclude")
    all_classes = class_names(results)
    wanted = (
        class_indices(results, classes, "classes")
        if classes is not None
        else [k for k in range(len(all_classes)) if k not in excluded]
    )
    arrays, _ = results_arrays(results, _names(min_confidence))
    label = _labels(results, arrays, smooth, min_confidence, excluded)
    observing = (label >= 0).sum(axis=0, dtype=np.int16)
    showing = da.stack([(label == k).sum(axis=0, dtype=np.int16) for k in wanted])
    return xr.Dataset(
        {
            "observing": ("time", observing, {"long_name": "sites with a usable slot"}),
            "showing": (("class", "time"), showing, {"long_name": "sites showing the class"}),
        },
        coords={"time": results["time"], "class": [all_classes[k] for k in wanted]},
    )
