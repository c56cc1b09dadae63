"""Bring your own model: convert it to ONNX, check it, quantise it to int8 — each with numbers.

Every step runs the models on the same *real* preprocessed frames (the bundled sample unless
told otherwise) and reports what changed, because a converted or quantised model that gives
other labels is worse than no model: the conversion succeeds silently and the science shifts.

- :func:`convert_model`: a PyTorch module (TorchScript file, ``torch.export`` ``.pt2`` file,
  or ``module:callable`` that builds it), a Keras ``.keras``/``.h5`` file or a TensorFlow
  SavedModel → ONNX with the model card written in; refuses to write a model whose
  probabilities differ from the source's by more than a tolerance.
- :func:`check_model`: the card, the graph's inputs and outputs, the preset, frames/s per
  core, label counts.
- :func:`quantize_model`: static int8 (onnxruntime's QDQ, per-channel weights), calibrated on
  real frames, compared with the float model on frames not used for calibration.

The frameworks are optional extras (``auroradask[torch]``, ``auroradask[tensorflow]``,
``auroradask[quantize]``); they are imported only by the function that needs them.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import softmax

from ._model import Model, ModelCard, load_model, predict, write_model_card
from ._preprocess import Preset, get_preset, preprocess
from ._schema import OK
from ._skymap import ElevationSource
from ._skymaps import SkymapTree
from .errors import ArgumentError, InputDataError, ModelError, SourceNotFoundError

#: The bundled sample, the default frames of every check: real Gillam frames, 06:00-06:06 UT.
SAMPLE_FRAMES = ("gill", "2014-03-10T06:00", "2014-03-10T06:06")
#: Largest probability difference :func:`convert_model` accepts between source and ONNX.
#: Float32 conversions of the same arithmetic agree to ~1e-6; 1e-4 leaves room for reordered
#: sums (fused kernels) and none for a wrong layout, preprocessing or missing softmax.
CONVERT_TOLERANCE = 1e-4
#: Frames per call when the models are run for a comparison or a timing.
_BATCH = 16

Frames = xr.Dataset | np.ndarray | str | os.PathLike | None


# ----------------------------------------------------------------------------- reports


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


# ------------------------------------------------------------------------------ frames


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
        from . import open_themis, sample_archive

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
    from ._archive import open_archive
    from ._frames import check_interval, open_themis

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


def _split(
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


# -------------------------------------------------------------------------------- check


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
    loaded = _loaded(model, card, batch_size=batch_size)
    inputs = model_inputs(frames, loaded.preset, elevation=elevation, skymaps=skymaps)
    if len(inputs) == 0:
        raise InputDataError("frames: no valid frame to run the model on")
    (seconds,), (probability,) = _time_models([loaded], inputs, repeats)
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


def _loaded(model, card: Mapping[str, Any], batch_size: int | str = "auto") -> Model:
    if isinstance(model, Model):
        if any(v is not None for v in card.values()):
            raise ArgumentError("model: pass card overrides to load_model, not with a loaded Model")
        return model
    unknown = set(card) - {"classes", "preset", "layout", "outputs"}
    if unknown:
        raise ArgumentError(f"unknown arguments {sorted(unknown)}")
    return load_model(model, batch_size=batch_size, intra_op_threads=1, **card)


def _plain_session(path: str):
    import onnxruntime as ort

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def _time_models(
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


# ------------------------------------------------------------------------------ convert


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
    if layout not in ("NHWC", "NCHW"):
        raise ArgumentError(f"layout: expected 'NHWC' or 'NCHW', got {layout!r}")
    if outputs not in ("probabilities", "logits"):
        raise ArgumentError(f"outputs: expected 'probabilities' or 'logits', got {outputs!r}")
    if not classes:
        raise ArgumentError("classes: give the class names in output order")
    rows, cols = preset_obj.size
    shape = (rows, cols, preset_obj.channels)
    shape = shape if layout == "NHWC" else (shape[2], shape[0], shape[1])
    card = ModelCard(
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
    inputs = model_inputs(frames, preset_obj, elevation=elevation, skymaps=skymaps)
    if len(inputs) == 0:
        raise InputDataError("frames: no valid frame to compare the models on")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(out)) as work:
        tmp = os.path.join(work, "model.onnx")
        adapter.export(tmp, shape, preset_obj.dtype, opset, work)
        write_model_card(tmp, card)
        converted = load_model(tmp, intra_op_threads=1)  # the card against the graph
        expected = _run_source(adapter, inputs, layout, outputs)
        got = predict(converted, inputs)
        agreement = Agreement.between(expected, got)
        ok = agreement.max_probability_difference <= tolerance
        report = ConvertReport(
            path=out,
            source=adapter.name,
            source_kind=adapter.kind,
            card=converted.card,
            agreement=agreement,
            tolerance=tolerance,
            written=ok or force,
        )
        if not report.written:
            raise ModelError(
                f"convert: the ONNX model disagrees with {adapter.kind} {adapter.name}: "
                f"largest probability difference {agreement.max_probability_difference:.2e} > "
                f"tolerance {tolerance:.0e}, labels agree on {agreement.label_agreement:.1%} "
                f"of {agreement.frames} frames; nothing written (check the layout, the preset "
                "and outputs='logits'; force=True / --force writes it anyway)"
            )
        shutil.move(tmp, out)
    return report


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
        import torch
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
    import onnx

    model = onnx.load(path)
    old = model.graph.input[0].name
    if old != "image":
        model.graph.input[0].name = "image"
        for node in model.graph.node:
            node.input[:] = ["image" if n == old else n for n in node.input]
        onnx.save(model, path)


def _import_tf():
    try:
        import tensorflow as tf
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


# ----------------------------------------------------------------------------- quantise


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
    try:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.registry import QDQRegistry
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as error:
        raise ImportError(
            f"quantize_model needs onnx: pip install 'auroradask[quantize]' ({error})"
        ) from None
    source = _loaded(model, card)
    out = os.path.abspath(os.fspath(out))
    if out == source.path:
        raise ArgumentError("out: the int8 model must not overwrite the float model")
    if calibration_frames < 1:
        raise ArgumentError(f"calibration_frames: expected >= 1, got {calibration_frames}")
    inputs = model_inputs(
        calibration, source.preset, elevation=elevation, skymaps=skymaps, what="calibration"
    )
    if evaluation is None:
        calib, held = _split(inputs, calibration_frames, "calibration_frames")
    else:
        calib = inputs[:calibration_frames]
        held = model_inputs(
            evaluation, source.preset, elevation=elevation, skymaps=skymaps, what="evaluation"
        )
    if len(calib) == 0:
        raise InputDataError("calibration: no valid frame to calibrate on")
    if held is None or len(held) == 0:
        raise InputDataError("evaluation: no valid frame to compare the models on")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(out)) as work:
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
        quantization = {
            "method": "onnxruntime static int8, QDQ, activations uint8 (min/max), weights "
            + ("int8 per channel" if per_channel else "int8 per tensor"),
            "calibration_frames": len(calib),
            "source_file": source.name,
            "source_sha256": source.sha256,
        }
        int8_card = dataclasses.replace(
            source.card,
            quantization=quantization,
            description=(source.card.description + " " if source.card.description else "")
            + f"[int8 quantisation of {source.name}, sha256 {source.sha256}]",
        )
        write_model_card(quantized, int8_card)
        shutil.move(quantized, out)
    int8 = load_model(out, batch_size=source.batch_size, intra_op_threads=1)
    (float_s, int8_s), (expected, got) = _time_models([source, int8], held, repeats)
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
