"""Synthetic results datasets with the schema of :func:`auroradask.classify`, for tests,
the benchmark and the example.

Two builders:

- :func:`make_results` wraps explicit numpy arrays (labels, statuses, confidences), so that a
  test can state the answer it expects by hand;
- :func:`synthetic_results` generates structured nights lazily, one site-day at a time, so
  that a store of any size can be written without holding it in memory. The labels of a
  site-day depend only on ``seed``, the site and the day, never on the chunking.

Plain module (not a conftest) so that ``benchmarks/`` and ``examples/`` can import it too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

import auroradask
from auroradask._schema import (
    DAY_SLOTS,
    FRAME_MISSING,
    NO_FILE,
    NOT_CLASSIFIED,
    OK,
    SLOT,
    frame_status_attrs,
    label_attrs,
)
from auroradask.io._sites import THEMIS_SITES

CLASSES = ("bad_viewing", "no_aurora", "other_aurora", "pulsating")
ATTRS = {"model_sha256": "0" * 64, "preset": "synthetic", "model_file": "synthetic.onnx"}


def _dataset(
    label, status, confidence, probability, timestamp, times, sites, classes, chunk
) -> xr.Dataset:
    dims = ("site", "time")
    info = [THEMIS_SITES.get(s) for s in sites]
    ds = xr.Dataset(
        {
            "label": (dims, label, label_attrs(classes)),
            "confidence": (dims, confidence, {"long_name": "probability of the label"}),
            "probability": (("site", "time", "class"), probability),
            "timestamp": (dims, timestamp),
            "frame_status": (dims, status, frame_status_attrs()),
        },
        coords={
            "site": np.array(sites, dtype=object),
            "time": times,
            "class": np.array(classes, dtype=object),
            "latitude": ("site", [s.latitude if s else np.nan for s in info]),
            "longitude": ("site", [s.longitude if s else np.nan for s in info]),
        },
        attrs=dict(ATTRS),
    )
    return ds.chunk({"site": 1, "time": chunk})


def make_results(
    label: np.ndarray,
    frame_status: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    *,
    start: str = "2014-03-10",
    sites: Sequence[str] = ("gill",),
    classes: Sequence[str] = CLASSES,
    chunk: int = 300,
) -> xr.Dataset:
    """A results dataset from explicit ``(site, time)`` arrays, chunked along time.

    ``frame_status`` defaults to 0 where ``label >= 0`` and 1 (no file) elsewhere;
    ``confidence`` to 0.9 where classified. ``probability`` puts ``confidence`` on the label.
    """
    label = np.asarray(label, dtype=np.int8).reshape(len(sites), -1)
    if frame_status is None:
        frame_status = np.where(label >= 0, OK, NO_FILE)
    status = np.asarray(frame_status, dtype=np.int8).reshape(label.shape)
    if confidence is None:
        confidence = np.where(label >= 0, 0.9, np.nan)
    confidence = np.asarray(confidence, dtype=np.float32).reshape(label.shape)
    confidence = np.where(label >= 0, confidence, np.nan).astype(np.float32)
    times = pd.Timestamp(start).to_datetime64().astype("datetime64[ns]") + SLOT * np.arange(
        label.shape[1]
    )
    probability = _probability(label, confidence, len(classes))
    timestamp = np.where(
        status == OK, times[None, :] + np.timedelta64(250, "ms"), np.datetime64("NaT")
    )
    return _dataset(
        label,
        status,
        confidence,
        probability,
        timestamp.astype("datetime64[ns]"),
        times,
        list(sites),
        list(classes),
        chunk,
    )


def _probability(label: np.ndarray, confidence: np.ndarray, n_classes: int) -> np.ndarray:
    rest = (1 - confidence) / max(n_classes - 1, 1)
    probability = np.repeat(rest[..., None], n_classes, axis=-1).astype(np.float32)
    s, t = np.nonzero(label >= 0)
    probability[s, t, label[s, t]] = confidence[s, t]
    return probability


# ------------------------------------------------------------------- structured nights


def site_day(seed: int, site_index: int, day: np.datetime64, longitude: float) -> dict:
    """One site-day of structured labels: a night centred on local solar midnight, longer
    in winter; pulsating aurora mostly after midnight in long events, other classes in
    shorter segments, flickers of single other labels, short missing-frame gaps.

    Returns ``label``, ``frame_status`` (int8) and ``confidence`` (float32) of 28,800 slots.
    """
    day = np.datetime64(day, "D")
    day_number = int(day.astype(np.int64))
    rng = np.random.default_rng([seed, site_index, day_number + 100_000])
    doy = int((day - day.astype("datetime64[Y]")).astype(np.int64))
    night_hours = 12 + 4 * np.cos(2 * np.pi * (doy + 10) / 365.25)
    lon = 0.0 if np.isnan(longitude) else float(longitude)
    midnight_hour = (-lon / 15.0) % 24
    hour = np.arange(DAY_SLOTS) * (SLOT / np.timedelta64(1, "h"))
    local = (hour - midnight_hour + 12) % 24 - 12  # hours from local midnight, -12..12
    night = np.abs(local) < night_hours / 2

    label = np.full(DAY_SLOTS, NOT_CLASSIFIED, dtype=np.int8)
    status = np.full(DAY_SLOTS, NO_FILE, dtype=np.int8)
    status[night] = OK
    # segments of one class: pulsating likelier after local midnight, and longer
    t = 0
    while t < DAY_SLOTS:
        after_midnight = 0 <= local[t] < 6
        p = [0.15, 0.35, 0.3, 0.2] if not after_midnight else [0.1, 0.2, 0.2, 0.5]
        k = int(rng.choice(4, p=p))
        mean = 200 if k == 3 else 60
        n = int(rng.geometric(1 / mean))
        label[t : t + n] = k
        t += n
    flicker = rng.random(DAY_SLOTS) < 0.01
    label[flicker] = rng.integers(0, 4, flicker.sum())
    for _ in range(rng.poisson(3)):  # missing frames
        g = int(rng.integers(0, DAY_SLOTS))
        status[g : g + int(rng.integers(1, 20))] = FRAME_MISSING
    if rng.random() < 0.1:  # a lost file: ten minutes without frames
        g = int(rng.integers(0, DAY_SLOTS - 200))
        status[g : g + 200] = NO_FILE
    label[status != OK] = NOT_CLASSIFIED
    confidence = rng.uniform(0.3, 1.0, DAY_SLOTS).astype(np.float32)
    confidence[label < 0] = np.nan
    return {"label": label, "frame_status": status, "confidence": confidence}


def _synthetic_block(site_index, times, *, seed, site_offsets, longitudes, n_classes):
    """A (site, time, 3 + n_classes) float64 block: label, status, confidence, probabilities."""
    sites = site_index.ravel()
    times = times.ravel().astype("datetime64[ns]")
    out = np.empty((len(sites), len(times), 3 + n_classes))
    days = times.astype("datetime64[D]")
    for i, s in enumerate(sites):
        for day in np.unique(days):
            part = days == day
            first = int((times[part][0] - day) // SLOT)
            one = site_day(seed, site_offsets[s], day, longitudes[s])
            sl = slice(first, first + int(part.sum()))
            label, status, conf = one["label"][sl], one["frame_status"][sl], one["confidence"][sl]
            out[i, part, 0] = label
            out[i, part, 1] = status
            out[i, part, 2] = conf
            out[i, part, 3:] = _probability(label[None], conf[None], n_classes)[0]
    return out


def synthetic_results(
    sites: Sequence[str] = ("gill", "fsmi"),
    start: str = "2014-01-01",
    days: int = 2,
    *,
    chunk: int = DAY_SLOTS,
    seed: int = 0,
) -> xr.Dataset:
    """Lazily generated results of whole UT days, structured nights (see :func:`site_day`)."""
    sites = list(sites)
    t0 = pd.Timestamp(start).floor("D").to_datetime64().astype("datetime64[ns]")
    times = t0 + SLOT * np.arange(days * DAY_SLOTS)
    info = [THEMIS_SITES.get(s) for s in sites]
    longitudes = [s.longitude if s else np.nan for s in info]
    k = len(CLASSES)
    time_chunks = da.from_array(times, chunks=chunk)
    record = da.map_blocks(
        _synthetic_block,
        da.arange(len(sites), chunks=1)[:, None, None],
        time_chunks[None, :, None],
        seed=seed,
        site_offsets=[sum(map(ord, s)) for s in sites],
        longitudes=longitudes,
        n_classes=k,
        chunks=((1,) * len(sites), time_chunks.chunks[0], (3 + k,)),
        dtype=np.float64,
        meta=np.empty((0, 0, 0)),
    )
    label = record[..., 0].astype(np.int8)
    status = record[..., 1].astype(np.int8)
    confidence = record[..., 2].astype(np.float32)
    probability = record[..., 3:].astype(np.float32)
    timestamp = da.where(
        status == OK, time_chunks[None, :] + np.timedelta64(250, "ms"), np.datetime64("NaT", "ns")
    )
    return _dataset(
        label, status, confidence, probability, timestamp, times, sites, list(CLASSES), chunk
    )


def write_store(results: xr.Dataset, path: str | os.PathLike) -> xr.Dataset:
    """Write ``results`` with :func:`auroradask.to_zarr` and open the store again."""
    auroradask.to_zarr(results, path)
    return auroradask.open_results(path)


# ------------------------------------------------------------ labels planted at known MLT


def exact_mlt(site: str, times: np.ndarray, altitude_km: float = 110.0) -> np.ndarray:
    """AACGM-v2 MLT (hours) of ``site`` at every time, straight from ``aacgmv2`` (the site's
    magnetic longitude taken at the middle of the times: its drift over a day is far below a
    second of MLT), with no interpolation: the reference the planted labels are placed by."""
    import aacgmv2

    info = THEMIS_SITES[site]
    times = pd.DatetimeIndex(times)
    middle = times[len(times) // 2].to_pydatetime()
    mlon = aacgmv2.get_aacgm_coord(info.latitude, info.longitude, altitude_km, middle)[1]
    return np.asarray(aacgmv2.convert_mlt(np.full(len(times), mlon), list(times.to_pydatetime())))


def planted_mlt_results(
    windows: dict[str, tuple[int, int]],
    *,
    start: str = "2014-03-10",
    hours: int = 24,
    margin_s: float = 30.0,
    chunk: int = 900,
    cls: str = "pulsating",
    other: str = "no_aurora",
    no_frame_every: dict[str, int] | None = None,
) -> tuple[xr.Dataset, np.ndarray]:
    """Results whose slots are ``cls`` exactly where the site's MLT is in its window
    ``[first, end)`` (hours; ``end`` may pass 24) and ``other`` elsewhere, with the MLT of
    every slot (the reference, :func:`exact_mlt`) beside them.

    Slots within ``margin_s`` of a whole MLT hour have no frame (not usable), so that a
    slot's MLT hour is the same however MLT is computed (auroradask interpolates it, within
    seconds); ``no_frame_every`` takes the frame of every n-th slot of a site too (sites
    with different usable counts). Returns ``(results, mlt)``, ``mlt`` of shape ``(site, time)``.
    """
    sites = list(windows)
    n = int(hours * 3600 // SLOT.astype("timedelta64[s]").astype(int))
    times = pd.Timestamp(start).to_datetime64().astype("datetime64[ns]") + SLOT * np.arange(n)
    mlt = np.stack([exact_mlt(s, times) for s in sites])
    label = np.full(mlt.shape, CLASSES.index(other), dtype=np.int8)
    for i, site in enumerate(sites):
        first, end = windows[site]
        inside = ((mlt[i] - first) % 24) < (end - first)
        label[i, inside] = CLASSES.index(cls)
        if no_frame_every and site in no_frame_every:
            label[i, :: no_frame_every[site]] = NOT_CLASSIFIED
    near_hour = np.abs(mlt - np.round(mlt)) * 3600 < margin_s
    label[near_hour] = NOT_CLASSIFIED
    return make_results(label, start=start, sites=sites, chunk=chunk), mlt
