"""Convert a PyTorch, Keras or TensorFlow model to ONNX, with its card, and prove it agrees.

:func:`convert_model` reads a PyTorch module (TorchScript file, ``torch.export`` ``.pt2``
file, or ``module:callable`` that builds it), a Keras ``.keras``/``.h5`` file or a TensorFlow
SavedModel, exports it to ONNX with the model card written in, runs both on the same real
preprocessed frames, and refuses to write a model whose probabilities differ from the
source's by more than a tolerance. Each kind of source is an :class:`_Adapter`: how to run it
on a batch and how to export it.

The frameworks are optional extras (``auroradask[torch]``, ``auroradask[tensorflow]``); they
are imported only by the adapter that needs them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import softmax

from ..errors import ArgumentError, InputDataError, ModelError, SourceNotFoundError
from ..preprocessing._preprocess import Preset, get_preset
from ..skymaps._skymap import ElevationSource
from ..skymaps._tree import SkymapTree
from ._compare import Agreement, Frames, model_inputs
from ._model import ModelCard, load_model, predict, write_model_card

#: Largest probability difference :func:`convert_model` accepts between source and ONNX.
#: Float32 conversions of the same arithmetic agree to ~1e-6; 1e-4 leaves room for reordered
#: sums (fused kernels) and none for a wrong layout, preprocessing or missing softmax.
CONVERT_TOLERANCE = 1e-4
#: Frames per call when the models are run for a comparison or a timing.
_BATCH = 16


@dataclass(frozen=True)
class ConvertReport:
    """What :func:`convert_model` wrote and how well the ONNX model agrees with its source.

    Attributes
    ----------
    path
        The ONNX file (written only if ``written``).
    source, source_kind
        What was converted and how it was read (``"torch"``, ``"torchscript"``,
        ``"torch.export"``, ``"keras"``, ``"savedmodel"``).
    card
        The model card written into the file.
    agreement
        Source vs ONNX on the same preprocessed frames.
    tolerance
        The largest probability difference accepted.
    written
        False when the models disagreed beyond ``tolerance`` and ``force`` was not given
        (only with ``raise_error=False``; otherwise a :class:`ModelError` is raised).
    """

    path: str
    source: str
    source_kind: str
    card: ModelCard
    agreement: Agreement
    tolerance: float
    written: bool

    def summary(self) -> str:
        a = self.agreement
        state = "wrote" if self.written else "did NOT write"
        return (
            f"{state} {self.path} ({self.source_kind} {self.source}): on {a.frames} frames, "
            f"labels agree {a.label_agreement:.1%}, largest probability difference "
            f"{a.max_probability_difference:.2e} (tolerance {self.tolerance:.0e})"
        )


def convert_model(
    source: Any,
    out: str | os.PathLike,
    *,
    classes: Sequence[str],
    preset: str | Preset | Mapping[str, Any] = "themis-pa",
    layout: str | None = None,
    outputs: str = "probabilities",
    description: str = "",
    frames: Frames = None,
    elevation: ElevationSource | Mapping[str, ElevationSource] | SkymapTree = "circle",
    skymaps: str | SkymapTree | None = None,
    tolerance: float = CONVERT_TOLERANCE,
    force: bool = False,
    opset: int = 17,
) -> ConvertReport:
    """Convert a PyTorch, Keras or TensorFlow model to ONNX with its card, and prove it agrees.

    The source and the ONNX model are both run on the same preprocessed frames; the file is
    written only if their class probabilities differ by at most ``tolerance`` (or ``force``).

    Parameters
    ----------
    source
        A ``torch.nn.Module`` or Keras model object; a TorchScript file (``.pt``, ``.pth``,
        ``.ts``: ``torch.jit.save``); a ``torch.export`` file (``.pt2``); ``"module:callable"``
        or ``"file.py:callable"`` returning a module (or being one); a Keras ``.keras`` or
        ``.h5`` file; or a TensorFlow SavedModel folder.
    out
        The ``.onnx`` file to write.
    classes
        Class names in output order.
    preset
        The preprocessing the model was trained with: a name, a :class:`Preset` or a dict.
    layout
        The layout the source model takes: default ``"NCHW"`` for PyTorch (its convention),
        ``"NHWC"`` for Keras and TensorFlow. The ONNX model takes the same.
    outputs
        ``"probabilities"`` if the model ends in a softmax, ``"logits"`` if not.
    description
        Free text for the card: what the model is and what it was trained on.
    frames, elevation, skymaps
        The frames to compare on (default: the bundled sample), see :func:`model_inputs`.
    tolerance
        Largest accepted difference between the source's and the ONNX model's probabilities.
    force
        Write the model even if it disagrees beyond ``tolerance`` (the report says so).
    opset
        ONNX opset to export with.

    Returns
    -------
    ConvertReport

    Raises
    ------
    ModelError
        If the models disagree beyond ``tolerance`` (nothing is written), if the export
        fails, or if the card does not fit the exported graph.
    ArgumentError
        If ``source`` cannot be read as any supported kind.
    ImportError
        Naming the extra to install when the source's framework is missing.
    """
    out = os.path.abspath(os.fspath(out))
    preset_obj = get_preset(preset)
    adapter = _source_adapter(source)
    layout = layout or adapter.default_layout
    card = _card(adapter, classes, preset, preset_obj, layout, outputs, description)
    inputs = model_inputs(frames, preset_obj, elevation=elevation, skymaps=skymaps)
    if len(inputs) == 0:
        raise InputDataError("frames: no valid frame to compare the models on")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(out)) as work:
        tmp = os.path.join(work, "model.onnx")
        rows, cols = preset_obj.size
        shape = (
            (rows, cols, preset_obj.channels)
            if layout == "NHWC"
            else (preset_obj.channels, rows, cols)
        )
        adapter.export(tmp, shape, preset_obj.dtype, opset, work)
        write_model_card(tmp, card)
        converted = load_model(tmp, intra_op_threads=1)  # the card against the graph
        expected = _run_source(adapter, inputs, layout, outputs)
        agreement = Agreement.between(expected, predict(converted, inputs))
        report = ConvertReport(
            path=out,
            source=adapter.name,
            source_kind=adapter.kind,
            card=converted.card,
            agreement=agreement,
            tolerance=tolerance,
            written=agreement.max_probability_difference <= tolerance or force,
        )
        if not report.written:
            raise ModelError(_disagreement(adapter, agreement, tolerance))
        shutil.move(tmp, out)
    return report


def _card(
    adapter: _Adapter,
    classes: Sequence[str],
    preset: str | Preset | Mapping[str, Any],
    preset_obj: Preset,
    layout: str,
    outputs: str,
    description: str,
) -> ModelCard:
    """The card of the converted model, after checking the arguments it is made of."""
    if layout not in ("NHWC", "NCHW"):
        raise ArgumentError(f"layout: expected 'NHWC' or 'NCHW', got {layout!r}")
    if outputs not in ("probabilities", "logits"):
        raise ArgumentError(f"outputs: expected 'probabilities' or 'logits', got {outputs!r}")
    if not classes:
        raise ArgumentError("classes: give the class names in output order")
    return ModelCard(
        classes=list(classes),
        preset=preset if isinstance(preset, str) else preset_obj.to_dict(),
        input_name="image",
        layout=layout,
        size=preset_obj.size,
        dtype=preset_obj.dtype,
        outputs=outputs,
        description=description
        or f"converted by auroradask.convert_model from {adapter.kind} {adapter.name}",
    )


def _disagreement(adapter: _Adapter, agreement: Agreement, tolerance: float) -> str:
    """Why nothing was written, and what to look at."""
    return (
        f"convert: the ONNX model disagrees with {adapter.kind} {adapter.name}: "
        f"largest probability difference {agreement.max_probability_difference:.2e} > "
        f"tolerance {tolerance:.0e}, labels agree on {agreement.label_agreement:.1%} "
        f"of {agreement.frames} frames; nothing written (check the layout, the preset "
        "and outputs='logits'; force=True / --force writes it anyway)"
    )


def _run_source(adapter, inputs: np.ndarray, layout: str, outputs: str) -> np.ndarray:
    parts = []
    for start in range(0, len(inputs), _BATCH):
        batch = inputs[start : start + _BATCH]
        if layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        result = np.asarray(adapter.run(np.ascontiguousarray(batch)), dtype=np.float32)
        parts.append(result.reshape(len(batch), -1))
    probability = np.concatenate(parts)
    return softmax(probability, axis=1) if outputs == "logits" else probability


@dataclass
class _Adapter:
    """One source model: how to run it on a batch and how to export it to ONNX."""

    kind: str
    name: str
    default_layout: str
    run: Callable[[np.ndarray], np.ndarray]
    export: Callable[[str, tuple, str, int, str], None]


def _source_adapter(source: Any) -> _Adapter:
    if not isinstance(source, str | os.PathLike):
        if _is_torch_module(source):
            return _torch_adapter(source, "torch", type(source).__name__)
        keras = sys.modules.get("keras")
        tf = sys.modules.get("tensorflow")
        if (keras is not None and isinstance(source, keras.Model)) or (
            tf is not None and isinstance(source, tf.keras.Model)
        ):
            return _keras_adapter(source, type(source).__name__)
        raise ArgumentError(
            f"source: a {type(source).__name__} is not a PyTorch module or a Keras model"
        )
    text = os.fspath(source)
    if os.path.isdir(text):
        if not os.path.exists(os.path.join(text, "saved_model.pb")):
            raise ArgumentError(f"source: folder {text!r} is not a TensorFlow SavedModel")
        return _savedmodel_adapter(text)
    if os.path.isfile(text):
        ext = os.path.splitext(text)[1].lower()
        if ext in (".keras", ".h5", ".hdf5"):
            return _keras_adapter(_load_keras(text), text)
        if ext == ".pt2":
            torch = _import_torch()
            program = torch.export.load(text)
            return _torch_adapter(program.module(), "torch.export", text, program=program)
        if ext in (".pt", ".pth", ".ts", ".torchscript"):
            torch = _import_torch()
            try:
                module = torch.jit.load(text, map_location="cpu")
            except RuntimeError as error:
                raise ArgumentError(
                    f"source: {text!r} is not a TorchScript file ({str(error).splitlines()[0]}); "
                    "a state dict holds no architecture: give module:callable that builds it"
                ) from None
            return _torch_adapter(module, "torchscript", text)
        raise ArgumentError(
            f"source: cannot tell what {text!r} is from its extension; expected .pt/.pth/.ts "
            "(TorchScript), .pt2 (torch.export), .keras/.h5 (Keras) or a SavedModel folder"
        )
    if ":" in text:
        return _torch_adapter(_build_from_callable(text), "torch", text)
    raise SourceNotFoundError(f"source: {text!r} does not exist (nor is it module:callable)")


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _build_from_callable(text: str):
    target, _, attr = text.rpartition(":")
    try:
        if target.endswith(".py"):
            if not os.path.isfile(target):
                raise SourceNotFoundError(f"source: {target!r} does not exist")
            spec = importlib.util.spec_from_file_location(
                "_auroradask_model_source_" + os.path.basename(target)[:-3], target
            )
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ImportError as error:
        raise ArgumentError(f"source: cannot import {target!r} ({error})") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ArgumentError(f"source: {target!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not _is_torch_module(obj) and callable(obj):
        obj = obj()
    if not _is_torch_module(obj):
        raise ArgumentError(f"source: {text} gave a {type(obj).__name__}, not a torch.nn.Module")
    return obj


def _import_torch():
    try:
        import torch  # deferred: the optional `torch` extra, and seconds to import
    except ImportError:
        raise ImportError(
            "converting a PyTorch model needs torch: pip install 'auroradask[torch]' "
            "(see the README for the CPU-only wheel)"
        ) from None
    return torch


def _torch_adapter(module, kind: str, name: str, program=None) -> _Adapter:
    torch = _import_torch()
    if program is None:  # an exported program's module was captured in its mode already
        module.eval()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            result = module(torch.from_numpy(batch))
        if isinstance(result, tuple | list):
            result = result[0]
        return result.detach().cpu().numpy()

    def export(path: str, shape: tuple, dtype: str, opset: int, work: str) -> None:
        example = torch.zeros((2, *shape), dtype=getattr(torch, dtype))
        try:
            if program is not None:  # an ExportedProgram: the dynamo exporter (onnxscript)
                torch.onnx.export(
                    program, (example,), path, opset_version=opset, dynamo=True, verbose=False
                )
                _rename_io(path)
                return
            torch.onnx.export(
                module,
                (example,),
                path,
                input_names=["image"],
                output_names=["output"],
                dynamic_axes={"image": {0: "batch"}, "output": {0: "batch"}},
                opset_version=opset,
                dynamo=False,
            )
        except Exception as error:  # noqa: BLE001 - torch raises many kinds; say which step failed
            raise ModelError(f"convert: torch.onnx.export failed ({error})") from None

    return _Adapter(kind, name, "NCHW", run, export)


def _rename_io(path: str) -> None:
    """Name the first input ``image``, as the card says (the dynamo exporter names it after
    the forward argument)."""
    import onnx  # deferred: seconds to import; only a conversion needs it

    model = onnx.load(path)
    old = model.graph.input[0].name
    if old != "image":
        model.graph.input[0].name = "image"
        for node in model.graph.node:
            node.input[:] = ["image" if n == old else n for n in node.input]
        onnx.save(model, path)


def _import_tf():
    try:
        import tensorflow as tf  # deferred: the optional `tensorflow` extra, and seconds to import
    except ImportError:
        raise ImportError(
            "converting a Keras or TensorFlow model needs tensorflow and tf2onnx: "
            "pip install 'auroradask[tensorflow]'"
        ) from None
    return tf


def _load_keras(path: str):
    tf = _import_tf()
    try:
        return tf.keras.models.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - keras raises many kinds for a bad file
        raise ArgumentError(f"source: cannot read Keras model {path!r} ({error})") from None


def _keras_adapter(model, name: str) -> _Adapter:
    tf = _import_tf()

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model(tf.constant(batch), training=False))

    def export(path: str, shape: tuple, dtype: str, opset: int, work: str) -> None:
        # Keras 3 models go through a SavedModel, the form tf2onnx reads for every Keras
        saved = os.path.join(work, "saved_model")
        signature = [tf.TensorSpec((None, *shape), getattr(tf, dtype), name="image")]
        try:
            model.export(saved, format="tf_saved_model", verbose=False, input_signature=signature)
        except (AttributeError, TypeError):  # Keras 2 (tf.keras, tf_keras): no such arguments
            tf.saved_model.save(model, saved)
        _tf2onnx_saved_model(saved, path, opset)

    return _Adapter("keras", name, "NHWC", run, export)


def _savedmodel_adapter(folder: str) -> _Adapter:
    tf = _import_tf()
    loaded = tf.saved_model.load(folder)
    if "serving_default" not in loaded.signatures:
        raise ArgumentError(f"source: SavedModel {folder!r} has no serving_default signature")
    function = loaded.signatures["serving_default"]
    (input_name,) = function.structured_input_signature[1]

    def run(batch: np.ndarray) -> np.ndarray:
        result = function(**{input_name: tf.constant(batch)})
        return np.asarray(next(iter(result.values())))

    def export(path: str, shape: tuple, dtype: str, opset: int, work: str) -> None:
        _tf2onnx_saved_model(folder, path, opset)
        _rename_io(path)

    return _Adapter("savedmodel", folder, "NHWC", run, export)


def _tf2onnx_saved_model(folder: str, path: str, opset: int) -> None:
    command = [
        sys.executable,
        "-m",
        "tf2onnx.convert",
        "--saved-model",
        folder,
        "--output",
        path,
        "--opset",
        str(opset),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not os.path.exists(path):
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ModelError(f"convert: tf2onnx failed on {folder!r} ({last})")
