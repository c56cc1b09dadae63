"""Check a model before a long run: its card, its graph's inputs and outputs, its preset,
frames/s per core and the labels it gives on real frames (:func:`auroradask.check_model`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from ..errors import InputDataError
from ..preprocessing._preprocess import Preset
from ..skymaps._skymap import ElevationSource
from ..skymaps._tree import SkymapTree
from ._compare import Frames, loaded_model, model_inputs, time_models
from ._model import Model, ModelCard


@dataclass(frozen=True)
class GraphTensor:
    """A graph input or output as onnxruntime sees it."""

    name: str
    shape: tuple
    type: str


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_model` found: the card, the graph, speed and labels on real frames.

    ``frames_per_second_per_core`` is measured with one onnxruntime thread, model only
    (preprocessing excluded), best of the repeats: the figure to multiply by a cluster's cores.
    """

    path: str
    sha256: str
    card: ModelCard
    preset: Preset
    inputs: tuple[GraphTensor, ...]
    outputs: tuple[GraphTensor, ...]
    batch_size: int
    frames: int
    seconds: float
    frames_per_second_per_core: float
    label_counts: dict[str, int]

    def summary(self) -> str:
        lines = [f"model: {self.path}", f"sha256: {self.sha256}"]
        card = self.card.to_dict()
        lines += [f"card.{k}: {v}" for k, v in card.items() if k != "preset"]
        lines.append(f"preset: {self.preset.to_json()}")
        for kind, tensors in (("input", self.inputs), ("output", self.outputs)):
            lines += [f"{kind}: {t.name} {list(t.shape)} {t.type}" for t in tensors]
        lines.append(
            f"speed: {self.frames} frames in {self.seconds:.2f} s, "
            f"{self.frames_per_second_per_core:.1f} frames/s per core (model only, batch "
            f"{self.batch_size})"
        )
        lines.append("labels: " + ", ".join(f"{k} {v}" for k, v in self.label_counts.items()))
        return "\n".join(lines)


def check_model(
    model: str | os.PathLike | Model,
    frames: Frames = None,
    *,
    elevation: ElevationSource | Mapping[str, ElevationSource] | SkymapTree = "circle",
    skymaps: str | SkymapTree | None = None,
    batch_size: int | str = "auto",
    repeats: int = 3,
    **card: Any,
) -> CheckReport:
    """Describe a model and run it on real frames: is it usable, how fast, what does it say.

    Parameters
    ----------
    model
        An ``.onnx`` path or a loaded :class:`auroradask.Model`.
    frames
        Frames to run on (see :func:`model_inputs`); default the bundled sample.
    elevation, skymaps
        The field of view, as for :func:`auroradask.preprocess`.
    batch_size
        Frames per onnxruntime call for the timing: ``"auto"`` (default) as
        :func:`auroradask.classify` chooses it (:func:`auroradask.load_model`), so that the
        rate is the one classification gets.
    repeats
        Timed runs over all frames; the best is reported (the others absorb a busy machine).
    **card
        ``classes``, ``preset``, ``layout``, ``outputs``: override the card, as for
        :func:`auroradask.load_model`.

    Raises
    ------
    ModelError
        If the model and its card do not fit (the same checks as :func:`load_model`).
    """
    loaded = loaded_model(model, card, batch_size=batch_size)
    inputs = model_inputs(frames, loaded.preset, elevation=elevation, skymaps=skymaps)
    if len(inputs) == 0:
        raise InputDataError("frames: no valid frame to run the model on")
    (seconds,), (probability,) = time_models([loaded], inputs, repeats)
    sess = _plain_session(loaded.path)
    counts = np.bincount(probability.argmax(1), minlength=len(loaded.classes))
    return CheckReport(
        path=loaded.path,
        sha256=loaded.sha256,
        card=loaded.card,
        preset=loaded.preset,
        inputs=tuple(GraphTensor(i.name, tuple(i.shape), i.type) for i in sess.get_inputs()),
        outputs=tuple(GraphTensor(o.name, tuple(o.shape), o.type) for o in sess.get_outputs()),
        batch_size=loaded.batch_size,
        frames=len(inputs),
        seconds=seconds,
        frames_per_second_per_core=len(inputs) / seconds,
        label_counts={c: int(n) for c, n in zip(loaded.classes, counts, strict=True)},
    )


def _plain_session(path: str):

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])
