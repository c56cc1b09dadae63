"""Quantise a float ONNX model to int8 (onnxruntime's static QDQ, per-channel weights),
calibrated on real frames and compared with the float model on frames not used for
calibration (:func:`auroradask.quantize_model`).

onnxruntime's quantisation tools (and onnx, which they import) are imported only when a
model is quantised: they take seconds to import.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ArgumentError, InputDataError, ModelError
from ..skymaps._skymap import ElevationSource
from ..skymaps._tree import SkymapTree
from ._compare import Agreement, Frames, loaded_model, model_inputs, split_frames, time_models
from ._model import Model, ModelCard, load_model, write_model_card


@dataclass(frozen=True)
class QuantizeReport:
    """What :func:`quantize_model` wrote and what quantisation changed, on held-out frames.

    Attributes
    ----------
    path, sha256
        The int8 model.
    source_path, source_sha256
        The float model it was made from (also recorded in the int8 model's card).
    calibration_frames
        Frames the quantisation ranges were calibrated on.
    agreement
        Float vs int8 on the evaluation frames (none of them used for calibration).
    float_frames_per_second, int8_frames_per_second
        Per core (one onnxruntime thread), model only, best of the repeats, measured
        alternately in the same run.
    """

    path: str
    sha256: str
    source_path: str
    source_sha256: str
    calibration_frames: int
    agreement: Agreement
    float_frames_per_second: float
    int8_frames_per_second: float
    card: ModelCard

    @property
    def speed_ratio(self) -> float:
        """int8 frames/s over float frames/s."""
        return self.int8_frames_per_second / self.float_frames_per_second

    def summary(self) -> str:
        a = self.agreement
        return (
            f"wrote {self.path} (int8, from {os.path.basename(self.source_path)} "
            f"sha256 {self.source_sha256[:12]}…), calibrated on {self.calibration_frames} "
            f"frames; on {a.frames} other frames: labels agree {a.label_agreement:.2%}, "
            f"largest probability difference {a.max_probability_difference:.3f}, "
            f"{self.float_frames_per_second:.1f} → {self.int8_frames_per_second:.1f} frames/s "
            f"per core ({self.speed_ratio:.2f}×)"
        )


class _FrameReader:
    """onnxruntime's CalibrationDataReader over preprocessed frames, a batch at a time."""

    def __init__(self, model: Model, inputs: np.ndarray, batch: int = 8) -> None:
        self.model, self.inputs, self.start = model, inputs, 0
        self.batch = model.batch_size if model.fixed_batch else batch  # the graph's, if fixed

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.start >= len(self.inputs):
            return None
        batch = self.inputs[self.start : self.start + self.batch]
        self.start += self.batch
        if self.model.layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        if self.model.fixed_batch and len(batch) != self.model.batch_size:
            return None  # the last, short batch: a fixed-batch graph cannot take it
        return {self.model.input_name: np.ascontiguousarray(batch)}

    def rewind(self) -> None:
        self.start = 0


def quantize_model(
    model: str | os.PathLike | Model,
    out: str | os.PathLike,
    *,
    calibration: Frames = None,
    calibration_frames: int = 40,
    evaluation: Frames = None,
    elevation: ElevationSource | Mapping[str, ElevationSource] | SkymapTree = "circle",
    skymaps: str | SkymapTree | None = None,
    per_channel: bool = True,
    repeats: int = 3,
    **card: Any,
) -> QuantizeReport:
    """Quantise a float ONNX model to int8 (static, QDQ), calibrated on real frames.

    Activation ranges are calibrated (min/max) on the first ``calibration_frames`` valid
    frames of ``calibration``; the float and the int8 model are then compared, and timed, on
    frames not used for calibration: ``evaluation`` if given, else the rest of
    ``calibration``. The final softmax stays float, so probabilities keep their resolution.

    Parameters
    ----------
    model
        The float ``.onnx`` model (with a card), or a loaded :class:`auroradask.Model`.
    out
        The int8 ``.onnx`` file to write; its card is the float model's with ``quantization``
        recording the method, the calibration and the float model's name and sha256.
    calibration
        Frames to calibrate on (see :func:`model_inputs`); default the bundled sample
        (120 frames: 40 for calibration, 80 held out).
    calibration_frames
        How many valid frames (in time order) calibrate.
    evaluation
        Frames to compare on; default the frames of ``calibration`` after the first
        ``calibration_frames``. Frames a few seconds apart are alike: for an honest figure
        give frames of other nights.
    elevation, skymaps
        The field of view, as for :func:`auroradask.preprocess`.
    per_channel
        Quantise convolution weights per output channel (more accurate, as fast).
    repeats
        Timed runs of each model; the best is reported.
    **card
        ``classes``, ``preset``, ``layout``, ``outputs``: override the float model's card.

    Raises
    ------
    InputDataError
        If there are not more than ``calibration_frames`` valid frames and no ``evaluation``.
    ModelError
        If onnxruntime cannot quantise the model.
    """
    _require_quantization()
    source = loaded_model(model, card)
    out = os.path.abspath(os.fspath(out))
    if out == source.path:
        raise ArgumentError("out: the int8 model must not overwrite the float model")
    if calibration_frames < 1:
        raise ArgumentError(f"calibration_frames: expected >= 1, got {calibration_frames}")
    calib, held = _calibration_and_held_out(
        source, calibration, calibration_frames, evaluation, elevation, skymaps
    )
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(out)) as work:
        quantized = _quantize_static(source, calib, per_channel, work)
        write_model_card(quantized, _int8_card(source, len(calib), per_channel))
        shutil.move(quantized, out)
    int8 = load_model(out, batch_size=source.batch_size, intra_op_threads=1)
    (float_s, int8_s), (expected, got) = time_models([source, int8], held, repeats)
    return QuantizeReport(
        path=out,
        sha256=int8.sha256,
        source_path=source.path,
        source_sha256=source.sha256,
        calibration_frames=len(calib),
        agreement=Agreement.between(expected, got),
        float_frames_per_second=len(held) / float_s,
        int8_frames_per_second=len(held) / int8_s,
        card=int8.card,
    )


def _require_quantization() -> None:
    """Raise an :class:`ImportError` naming the ``quantize`` extra if onnxruntime's
    quantisation tools cannot be imported (they need onnx, and sympy for shape inference)."""
    try:
        # deferred: onnxruntime.quantization imports onnx, seconds; only quantising needs it
        import onnxruntime.quantization  # noqa: F401
        import onnxruntime.quantization.registry  # noqa: F401
        import onnxruntime.quantization.shape_inference  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"quantize_model needs onnx: pip install 'auroradask[quantize]' ({error})"
        ) from None


def _calibration_and_held_out(
    source: Model,
    calibration: Frames,
    calibration_frames: int,
    evaluation: Frames,
    elevation: ElevationSource | Mapping[str, ElevationSource] | SkymapTree,
    skymaps: str | SkymapTree | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The model inputs to calibrate on, and those to compare on (never the same frames
    unless ``evaluation`` says so)."""
    inputs = model_inputs(
        calibration, source.preset, elevation=elevation, skymaps=skymaps, what="calibration"
    )
    if evaluation is None:
        calib, held = split_frames(inputs, calibration_frames, "calibration_frames")
    else:
        calib = inputs[:calibration_frames]
        held = model_inputs(
            evaluation, source.preset, elevation=elevation, skymaps=skymaps, what="evaluation"
        )
    if len(calib) == 0:
        raise InputDataError("calibration: no valid frame to calibrate on")
    if held is None or len(held) == 0:
        raise InputDataError("evaluation: no valid frame to compare the models on")
    return calib, held


def _quantize_static(source: Model, calib: np.ndarray, per_channel: bool, work: str) -> str:
    """onnxruntime's pre-processing and static QDQ quantisation of ``source`` into ``work``;
    the softmax stays float. Returns the int8 model's path."""
    # deferred: onnxruntime.quantization imports onnx, seconds; only quantising needs it
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.registry import QDQRegistry
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = os.path.join(work, "prepared.onnx")
    quantized = os.path.join(work, "int8.onnx")
    try:
        try:  # shape inference and graph fusions (batch norms into convolutions) first
            quant_pre_process(source.path, prepared)
        except Exception:  # noqa: BLE001 - symbolic shape inference fails on some graphs
            quant_pre_process(source.path, prepared, skip_symbolic_shape=True)
        quantize_static(
            prepared,
            quantized,
            _FrameReader(source, calib),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=[op for op in QDQRegistry if op != "Softmax"],
        )
    except (ModelError, ArgumentError):
        raise
    except Exception as error:  # noqa: BLE001 - onnxruntime's tools raise many kinds
        raise ModelError(
            f"quantize: onnxruntime could not quantise {source.name!r} ({error})"
        ) from None
    return quantized


def _int8_card(source: Model, n_calibration: int, per_channel: bool) -> ModelCard:
    """The float model's card, with ``quantization`` saying how and from what."""
    quantization = {
        "method": "onnxruntime static int8, QDQ, activations uint8 (min/max), weights "
        + ("int8 per channel" if per_channel else "int8 per tensor"),
        "calibration_frames": n_calibration,
        "source_file": source.name,
        "source_sha256": source.sha256,
    }
    return dataclasses.replace(
        source.card,
        quantization=quantization,
        description=(source.card.description + " " if source.card.description else "")
        + f"[int8 quantisation of {source.name}, sha256 {source.sha256}]",
    )
