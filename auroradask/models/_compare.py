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
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from .._schema import OK
from ..errors import ArgumentError, InputDataError
from ..io import open_themis, sample_archive
from ..preprocessing._preprocess import Preset, get_preset, preprocess
from ..skymaps._skymap import ElevationSource
from ..skymaps._tree import SkymapTree
from ._model import Model, load_model, predict

#: The bundled sample, the default frames of every check: real Gillam frames, 06:00-06:06 UT.
SAMPLE_FRAMES = ("gill", "2014-03-10T06:00", "2014-03-10T06:06")

Frames = xr.Dataset | np.ndarray | None


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
) -> np.ndarray:
    """Preprocessed model input ``(n, rows, cols, channels)`` of the valid frames, in order.

    Parameters
    ----------
    frames
        A frames dataset (:func:`auroradask.open_themis`, ...), an array already preprocessed
        as ``preset`` makes it, or ``None`` for the bundled sample (120 real frames).
    preset, elevation, skymaps
        As for :func:`auroradask.preprocess`.
    """
    preset = get_preset(preset)
    if frames is None:
        frames = open_themis(sample_archive(), *SAMPLE_FRAMES, chunk_minutes=1)
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
            f"frames: expected a frames dataset, a preprocessed array or None, got {type(frames)}"
        )
    data = preprocess(frames, preset, elevation, skymaps=skymaps)
    status = frames["frame_status"].values.reshape(-1)
    values = data.values.reshape(-1, *data.shape[2:])
    return values[status == OK]


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


def loaded_model(model, card: Mapping[str, Any], batch_size: int = 32) -> Model:
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
