"""The ground the model tools stand on: real model inputs, and two models run, timed and
compared on them.

Converting, checking and quantising a model (:func:`auroradask.convert_model`,
:func:`auroradask.check_model`, :func:`auroradask.quantize_model`) all run models on the same
*real* preprocessed frames (the bundled sample unless told otherwise) and report what changed,
because a converted or quantised model that gives other labels is worse than no model: the
conversion succeeds silently and the science shifts.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._schema import OK
from ..errors import ArgumentError, InputDataError
from ..io import open_archive, open_themis, sample_archive
from ..io._requests import check_interval
from ..preprocessing._preprocess import Preset, get_preset, preprocess
from ..skymaps._skymap import ElevationSource
from ..skymaps._tree import SkymapTree
from ._model import Model, load_model, predict

#: The bundled sample, the default frames of every check: real Gillam frames, 06:00-06:06 UT.
SAMPLE_FRAMES = ("gill", "2014-03-10T06:00", "2014-03-10T06:06")

Frames = xr.Dataset | np.ndarray | str | os.PathLike | None


@dataclass(frozen=True)
class Agreement:
    """How far two models' outputs are apart on the same frames."""

    frames: int
    label_agreement: float
    max_probability_difference: float

    @classmethod
    def between(cls, reference: np.ndarray, other: np.ndarray) -> Agreement:
        """Compare two ``(n, n_classes)`` probability arrays."""
        if len(reference) == 0:
            return cls(0, float("nan"), float("nan"))
        return cls(
            frames=len(reference),
            label_agreement=float((reference.argmax(1) == other.argmax(1)).mean()),
            max_probability_difference=float(np.abs(reference - other).max()),
        )


def model_inputs(
    frames: Frames,
    preset: str | Preset | Mapping[str, Any],
    *,
    elevation: ElevationSource | Mapping[str, ElevationSource] | SkymapTree = "circle",
    skymaps: str | SkymapTree | None = None,
    what: str = "frames",
) -> np.ndarray:
    """Preprocessed model input ``(n, rows, cols, channels)`` of the valid frames, in order.

    Parameters
    ----------
    frames
        A frames dataset (:func:`auroradask.open_themis`, ...), a stream0 archive (path or
        URL: the first hour it holds, see :func:`source_frames`), an array already
        preprocessed as ``preset`` makes it, or ``None`` for the bundled sample (120 real
        frames).
    preset, elevation, skymaps
        As for :func:`auroradask.preprocess`.
    what
        The argument's name, for messages.
    """
    preset = get_preset(preset)
    if frames is None:
        frames = open_themis(sample_archive(), *SAMPLE_FRAMES, chunk_minutes=1)
    elif isinstance(frames, str | os.PathLike):
        frames = source_frames(frames, what=what)
    if isinstance(frames, np.ndarray):
        expected = (*preset.size, preset.channels)
        if frames.ndim != 4 or frames.shape[1:] != expected:
            raise ArgumentError(
                f"frames: an array must be preprocessed model input (n, {expected[0]}, "
                f"{expected[1]}, {expected[2]}) for preset {preset.name!r}, got {frames.shape}"
            )
        return frames.astype(np.dtype(preset.dtype), copy=False)
    if not isinstance(frames, xr.Dataset):
        raise ArgumentError(
            f"{what}: expected a frames dataset, a stream0 archive, a preprocessed array or "
            f"None, got {type(frames)}"
        )
    data = preprocess(frames, preset, elevation, skymaps=skymaps)
    status = frames["frame_status"].values.reshape(-1)
    values = data.values.reshape(-1, *data.shape[2:])
    return values[status == OK]


def source_frames(
    source: str | os.PathLike,
    sites: str | Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    *,
    cache: str | os.PathLike | bool | None = None,
    what: str = "frames",
) -> xr.Dataset:
    """Frames of a stream0 archive to check, convert or calibrate a model on.

    With ``sites`` and ``start``: those, as :func:`auroradask.open_themis` opens them
    (``end`` by default the end of the start's UT day). Without them, what the archive
    holds: the site of its first day with data, when that day holds one site (or the site
    given), and the first hour with files of that site (or of ``start``'s interval). A model
    check needs some real frames, not a choice of night: for the bundled sample this is
    Gillam, 2014-03-10 06:00 to 07:00 UT, its 120 frames.

    Raises
    ------
    ArgumentError
        Naming ``what``, if the archive holds no day folder, or several sites where one must
        be chosen.
    """
    site_list = [sites] if isinstance(sites, str) else list(sites or [])
    if site_list and start is not None:
        end = end if end is not None else pd.Timestamp(start).strftime("%Y-%m-%d")
        return open_themis(source, site_list, start, end, cache=cache)
    archive = open_archive(source, cache=cache)
    if start is not None:  # a time, no site: the one site present then
        start_ts, end_ts = check_interval(
            start, end if end is not None else pd.Timestamp(start).strftime("%Y-%m-%d")
        )
        present = archive.sites_present(start_ts, end_ts)
        if len(present) != 1:
            held = ", ".join(present) if present else "no site"
            raise ArgumentError(
                f"{what}: {archive.url} holds {held} in [{start_ts}, {end_ts}): "
                "give a site (--site)"
            )
        return open_themis(source, present, start_ts, end_ts, cache=cache)
    day, site = _first_day(archive, site_list[0] if site_list else None, what)
    day_dir = posixpath.join(archive.root, day.strftime("%Y/%m/%d"))
    site_dir = next(
        posixpath.join(day_dir, n) for n in archive.list_names(day_dir) if n.startswith(f"{site}_")
    )
    hours = sorted(n for n in archive.list_names(site_dir) if re.fullmatch(r"ut\d{2}", n))
    for hour in hours:
        if archive.list_names(posixpath.join(site_dir, hour)):
            first = day + pd.Timedelta(hours=int(hour[2:]))
            return open_themis(source, site, first, first + pd.Timedelta(hours=1), cache=cache)
    raise ArgumentError(f"{what}: {site_dir} holds no utHH folder with files")


def _first_day(archive, site: str | None, what: str) -> tuple[pd.Timestamp, str]:
    """The first UT day folder of ``archive`` with a site folder (of ``site`` if given), and
    that site; walks YYYY/MM/DD in order, listing only until it is found."""

    def numbered(folder: str, digits: int) -> list[str]:
        return sorted(n for n in archive.list_names(folder) if re.fullmatch(rf"\d{{{digits}}}", n))

    for year in numbered(archive.root, 4):
        for month in numbered(posixpath.join(archive.root, year), 2):
            for day in numbered(posixpath.join(archive.root, year, month), 2):
                folder = posixpath.join(archive.root, year, month, day)
                codes = sorted({n.split("_", 1)[0] for n in archive.list_names(folder) if "_" in n})
                if site is not None:
                    codes = [c for c in codes if c == site]
                if not codes:
                    continue
                if len(codes) > 1:
                    raise ArgumentError(
                        f"{what}: {archive.url} holds the sites {', '.join(codes)} on "
                        f"{year}-{month}-{day}: give a site and a start (--site, --start)"
                    )
                return pd.Timestamp(f"{year}-{month}-{day}"), codes[0]
    whose = f" of site {site!r}" if site else ""
    raise ArgumentError(
        f"{what}: {archive.url} holds no stream0 day folder{whose} "
        "(YYYY/MM/DD/<site>_<imager>/utHH/): give a site and a start (--site, --start)"
    )


def split_frames(
    inputs: np.ndarray, first: int | None, what: str
) -> tuple[np.ndarray, np.ndarray | None]:
    if first is None:
        return inputs, None
    if first < 1:
        raise ArgumentError(f"{what}: expected >= 1 frames, got {first}")
    if len(inputs) <= first:
        raise InputDataError(
            f"{what}: {len(inputs)} valid frames, need more than {first} (the calibration "
            "frames and at least one held-out frame to compare on)"
        )
    return inputs[:first], inputs[first:]


def loaded_model(model, card: Mapping[str, Any], batch_size: int | str = "auto") -> Model:
    if isinstance(model, Model):
        if any(v is not None for v in card.values()):
            raise ArgumentError("model: pass card overrides to load_model, not with a loaded Model")
        return model
    unknown = set(card) - {"classes", "preset", "layout", "outputs"}
    if unknown:
        raise ArgumentError(f"unknown arguments {sorted(unknown)}")
    return load_model(model, batch_size=batch_size, intra_op_threads=1, **card)


def time_models(
    models: Sequence[Model], inputs: np.ndarray, repeats: int
) -> tuple[list[float], list[np.ndarray]]:
    """Best wall time of each model over ``inputs`` (runs alternate between the models, so a
    load change on a shared machine hits them alike), and each model's probabilities."""
    if repeats < 1:
        raise ArgumentError(f"repeats: expected >= 1, got {repeats}")
    single = [dataclasses.replace(m, intra_op_threads=1) for m in models]
    outputs = [predict(m, inputs[: m.batch_size]) for m in single]  # warm up: first-run costs
    best = [np.inf] * len(single)
    for _ in range(repeats):
        for i, m in enumerate(single):
            started = time.perf_counter()
            outputs[i] = predict(m, inputs)
            best[i] = min(best[i], time.perf_counter() - started)
    return best, outputs
