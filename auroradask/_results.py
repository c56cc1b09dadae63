"""Reading a results dataset or store: its classes, its sites and its per-slot arrays.

The analysis (``auroradask.analysis``) and the figures (``auroradask.visual``) both take a
results dataset (:func:`auroradask.classify`) or a store (:func:`auroradask.open_results`) and
need the same things from it: class names and indices checked against what the user typed,
site names and coordinates, and the ``(site, time)`` variables as dask arrays with one
chunking. This module is their one home, so that neither room reaches into the other's
private helpers, and so that an unknown class or site is reported the same way everywhere
(an :class:`~auroradask.errors.ArgumentError` naming the argument and what the store has).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dask.array as da
import numpy as np
import xarray as xr

from ._schema import DAY_SLOTS, SITE_CODE
from .errors import ArgumentError

#: UT days per task for variables that are not dask arrays yet (see :func:`results_arrays`).
CHUNK_DAYS = 8


def class_names(results: xr.Dataset) -> list[str]:
    """The class names of a results dataset, in label order (label ``k`` is ``names[k]``)."""
    return [str(c) for c in results["class"].values]


def class_indices(results: xr.Dataset, names: str | Iterable[str] | None, arg: str) -> list[int]:
    """Indices of class names; an unknown name is an :class:`ArgumentError` naming ``arg``.

    ``None`` gives no index (nothing chosen), a string one.
    """
    classes = class_names(results)
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    indices = []
    for name in names:
        if str(name) not in classes:
            raise ArgumentError(f"{arg}: unknown class {str(name)!r}; the store has {classes}")
        indices.append(classes.index(str(name)))
    return indices


def site_names(results: xr.Dataset) -> list[str]:
    """The site codes of a results (or frames) dataset, in row order."""
    return [str(s) for s in results["site"].values]


def not_site_codes(names: Iterable[object]) -> list[str]:
    """The names that are not site codes (lower-case letters and digits), shown for a
    one-line message: each as ``repr`` (line breaks and markup stay visible, never act),
    cut to 40 characters.

    A site name becomes part of file names (``quicklooks``, ``export_text``) and of pages;
    a store or dataset is data from elsewhere, so a name such as ``../../tmp/x`` or
    ``</script>...`` is refused where it is read, not trusted where it is used.
    """
    return [repr(str(n)[:40]) for n in names if not SITE_CODE.fullmatch(str(n))]


def check_site(results: xr.Dataset, site: str, arg: str = "site") -> int:
    """The row of ``site``; an unknown site is an :class:`ArgumentError` naming ``arg``."""
    sites = site_names(results)
    if str(site) not in sites:
        raise ArgumentError(f"{arg}: unknown site {str(site)!r}; the store has {sites}")
    return sites.index(str(site))


def site_coord(results: xr.Dataset, name: str) -> np.ndarray:
    """A per-site coordinate (``latitude``, ``longitude``) as float64, NaN where absent.

    A store written from frames without site coordinates has none; NaN lets every caller
    decide (no magnetic coordinates, a night centred on 00 UT) instead of failing here.
    """
    if name not in results.coords and name not in results.variables:
        return np.full(results.sizes["site"], np.nan)
    return np.asarray(results[name].values, dtype=np.float64)


def check_min_confidence(value: float | None) -> float | None:
    """``min_confidence`` as a float in 0..1 (None: any confidence)."""
    if value is None:
        return None
    if not 0 <= float(value) <= 1:
        raise ArgumentError(f"min_confidence: must be between 0 and 1, got {value!r}")
    return float(value)


def _is_dask(var: xr.DataArray) -> bool:
    return isinstance(var.data, da.Array)


def results_arrays(
    results: xr.Dataset, names: Sequence[str]
) -> tuple[dict[str, da.Array], da.Array]:
    """The named ``(site, time)`` variables as dask arrays with one chunking, and the time
    coordinate as a dask array with the same time chunks.

    Variables that are not dask arrays (a dataset in memory, or a store opened with
    ``chunks=None``) are chunked by site and :data:`CHUNK_DAYS` UT days: one task per
    store chunk costs more in scheduling and in zarr's per-call overhead than the work.
    """
    missing = [n for n in names if n not in results.variables]
    if missing:
        raise ArgumentError(
            f"results: missing {missing}; pass a results dataset (auroradask.classify) or a "
            "store (auroradask.open_results)"
        )
    sub = results[list(names)].transpose("site", "time", ...)
    if not all(_is_dask(sub[n]) for n in names):
        dasked = [sub[n] for n in names if _is_dask(sub[n])]
        time_chunks = dasked[0].chunks[1] if dasked else CHUNK_DAYS * DAY_SLOTS
        sub = sub.chunk({"site": 1, "time": time_chunks})
    sub = sub.unify_chunks()
    arrays = {n: sub[n].data for n in names}
    time_chunks = next(iter(arrays.values())).chunks[1]
    times = da.from_array(np.asarray(results["time"].values, dtype="datetime64[ns]"), time_chunks)
    return arrays, times


__all__ = [
    "CHUNK_DAYS",
    "check_min_confidence",
    "check_site",
    "class_indices",
    "class_names",
    "not_site_codes",
    "results_arrays",
    "site_coord",
    "site_names",
]


def frame_coords(frames: xr.Dataset) -> dict[str, xr.DataArray]:
    """The coordinates of ``frames`` along site and time only: what a product of the frames
    (results, keograms) keeps of them."""
    return {k: v for k, v in frames.coords.items() if set(v.dims) <= {"site", "time"}}
