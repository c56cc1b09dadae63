"""Frames → model input → results, lazily: one task per chunk reads, preprocesses, classifies."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import cv2
import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from .._results import frame_coords
from .._schema import NOT_CLASSIFIED, OK, frame_status_attrs, label_attrs
from ..errors import ArgumentError
from ..preprocessing._preprocess import frame_blocks, preprocess_into
from ..skymaps._skymap import ElevationSource
from ..skymaps._tree import SkymapTree
from ..visual._keogram import keogram as make_keogram
from ._model import Model, load_model, predict


def classify(
    frames: xr.Dataset,
    model: str | os.PathLike | Model,
    *,
    elevation: ElevationSource | Mapping[str, ElevationSource] | SkymapTree = "circle",
    skymaps: str | SkymapTree | None = None,
    classes: Sequence[str] | None = None,
    preset: Any = None,
    layout: str | None = None,
    outputs: str | None = None,
    batch_size: int | str = "auto",
    providers: str | Sequence[str] | None = None,
    intra_op_threads: int = 1,
    keogram: bool | Mapping[str, Any] = True,
) -> xr.Dataset:
    """Classify frames with an ONNX model, lazily.

    The model's card says which preprocessing preset to apply; it is applied here, in the same
    task as the model, so the float input of a chunk never leaves the worker. Frames whose
    ``frame_status`` is not 0 are not sent to the model.

    Parameters
    ----------
    frames
        A frames dataset from :func:`auroradask.open_themis`.
    model
        An ``.onnx`` path or a :class:`auroradask.model.Model` from
        :func:`auroradask.load_model`.
    elevation, skymaps
        Elevation map(s) for the field of view, or a skymap tree giving the skymap valid at
        each frame's time; see :func:`auroradask.preprocess`.
    classes, preset, layout, outputs, batch_size, providers, intra_op_threads
        Passed to :func:`auroradask.load_model` when ``model`` is a path; they override the
        model card.
    keogram
        True (default): add ``keogram(site, time, keogram_row)`` uint16, the frames'
        north-south zenith column (:func:`auroradask.keogram`), computed from the same read
        of each chunk as the labels, so that a store can draw quicklooks without a second
        pass over the archive (~0.5 kB a frame against 128 kB for the frame). A dict passes
        its options to :func:`auroradask.keogram` (e.g. ``{"skymap": path}``); False: none.

    Returns
    -------
    xarray.Dataset
        ``label(site, time)`` int8 (-1 where not classified), ``confidence(site, time)``
        float32 (NaN where not classified), ``probability(site, time, class)`` float32,
        ``timestamp`` and ``frame_status`` from the frames, ``keogram`` (unless
        ``keogram=False``); coordinates ``class`` and ``keogram_row``; attributes
        recording the model, its card, the preset, the elevation maps, the source and the
        versions.

    Raises
    ------
    ModelError
        Before any data is read, if the model, its card and the arguments do not fit.
    """
    if isinstance(model, Model):
        given = {"classes": classes, "preset": preset, "layout": layout, "outputs": outputs}
        if any(v is not None for v in given.values()):
            raise ArgumentError("model: pass card overrides to load_model, not with a loaded Model")
    else:
        model = load_model(
            model,
            classes=classes,
            preset=preset,
            layout=layout,
            outputs=outputs,
            batch_size=batch_size,
            providers=providers,
            intra_op_threads=intra_op_threads,
        )
    blocks = frame_blocks(frames, model.preset, elevation, skymaps)
    n_classes = len(model.classes)
    probability = blocks.map_chunks(
        "classify", _classify_chunk, {"c": n_classes}, np.float32, model=model
    )
    results = results_dataset(frames, model, blocks, probability)
    if keogram:
        options = dict(keogram) if isinstance(keogram, Mapping) else {}
        keo = make_keogram(frames, **options)
        # the geometry stays in the attributes; per-site pixel coordinates are not results
        keo = keo.drop_vars(
            [c for c in keo.coords if c not in keo.dims and c not in results.coords]
        )
        results["keogram"] = keo
    return results


def results_dataset(
    frames: xr.Dataset, model: Model, blocks, probability: da.Array, stage: str = "classify"
) -> xr.Dataset:
    """The results of ``probability(site, time, class)``: labels, confidences, provenance.

    Shared by :func:`classify` and :func:`auroradask.embed`, whose results are the same.
    """
    # named as the classify stage: the dashboard shows read, classify, write
    label = da.map_blocks(
        label_from_probability,
        probability,
        drop_axis=2,
        dtype=np.int8,
        name=f"{stage}-" + tokenize(probability, "label"),
    )
    confidence = da.blockwise(
        confidence_of_label,
        "st",
        probability,
        "stc",
        label,
        "st",
        concatenate=True,
        dtype=np.float32,
        meta=np.empty((0, 0), dtype=np.float32),
        name=f"{stage}-" + tokenize(probability, "confidence"),
    )

    coords = frame_coords(frames)
    coords["class"] = ("class", np.array(model.classes, dtype=object))
    results = xr.Dataset(
        {
            "label": (("site", "time"), label, label_attrs(model.classes)),
            "confidence": (
                ("site", "time"),
                confidence,
                {"long_name": "probability of the chosen class", "units": "1"},
            ),
            "probability": (
                ("site", "time", "class"),
                probability,
                {"long_name": "class probabilities", "units": "1"},
            ),
            "timestamp": frames["timestamp"].variable,
            "frame_status": frames["frame_status"].variable,
        },
        coords=coords,
    )
    results["frame_status"].attrs = frame_status_attrs()
    results.attrs = {
        **model.provenance(),
        "elevation_source": json.dumps(blocks.elevation_sources),
        "source": str(frames.attrs.get("source", "")),
        **software_versions(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "title": "THEMIS ASI frame classification",
    }
    return results


def software_versions() -> dict[str, str]:
    """Versions of auroradask and what it computes with, for provenance."""
    versions = {}
    for package in ("auroradask", "numpy", "dask", "xarray", "zarr", "onnxruntime"):
        try:
            versions[f"version_{package}"] = version(package)
        except PackageNotFoundError:
            versions[f"version_{package}"] = "unknown"
    versions["version_opencv"] = cv2.__version__
    return versions


# ----------------------------------------------------------------------------- kernels


def classify_frames(
    frames: np.ndarray, valid: np.ndarray, fov: np.ndarray, model: Model
) -> np.ndarray:
    """Probabilities ``(n, n_classes)`` for a ``(n, y, x)`` uint16 stack; NaN rows where invalid.

    Preprocesses and classifies one mini-batch at a time, so the float input of a whole chunk
    (120 MB for 200 frames at 224×224×3) never exists at once, and preprocesses one channel:
    the three identical channels of the ``themis-pa`` input are made only in the tensor fed
    to onnxruntime (a third of the preprocessing's writes, no 3-channel copy in between).
    """
    out = np.full((len(frames), len(model.classes)), np.nan, dtype=np.float32)
    index = np.flatnonzero(valid)
    if index.size == 0:
        return out
    # one channel, into the same array every mini-batch: predict() broadcasts it to the
    # graph's channels only as it builds the tensor onnxruntime reads
    rows, cols = model.preset.size
    inputs = np.empty(
        (min(model.batch_size, len(index)), rows, cols, 1), dtype=np.dtype(model.preset.dtype)
    )
    for first in range(0, len(index), model.batch_size):
        batch = index[first : first + model.batch_size]
        one_channel = inputs[: len(batch)]
        preprocess_into(frames, batch, fov, model.preset, one_channel, np.arange(len(batch)))
        out[batch] = predict(model, one_channel)
    return out


def label_from_probability(probability: np.ndarray) -> np.ndarray:
    """Index of the most probable class along the last axis; -1 where a row holds NaN."""
    classified = ~np.isnan(probability).any(axis=-1)
    filled = np.where(classified[..., None], probability, -np.inf)
    return np.where(classified, filled.argmax(axis=-1), NOT_CLASSIFIED).astype(np.int8)


def confidence_of_label(probability: np.ndarray, label: np.ndarray) -> np.ndarray:
    """The probability of the chosen class ``label`` (one axis less); NaN where not classified."""
    index = np.maximum(label, 0).astype(np.intp)[..., None]
    chosen = np.take_along_axis(probability, index, axis=-1)[..., 0]
    return np.where(label >= 0, chosen, np.nan).astype(np.float32)


def _classify_chunk(images, status, fov, model):
    cv2.setNumThreads(1)  # parallelism comes from dask
    return classify_frames(images[0], status[0] == OK, fov[0], model)[None]
