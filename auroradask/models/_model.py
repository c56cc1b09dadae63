"""ONNX models: the model card, validation against the graph, one session per worker process.

A model card says how to feed a model and what its outputs mean. It is read, in this order of
precedence, from arguments given to :func:`load_model`, from the ONNX file's
``metadata_props`` (key ``auroradask.card``, written by :func:`write_model_card`), or from a
JSON sidecar ``<model>.json``. Whatever the card does not say is taken from the graph
(input name, layout, size, dtype) where the graph makes it unambiguous.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
from scipy.special import softmax

from .._schema import BATCH_ACTIVATION_BYTES, MAX_BATCH_SIZE
from ..errors import ArgumentError, ModelError, SourceNotFoundError
from ..io._remote import (
    fetch,
    fetch_sidecar,
    file_sha256,  # re-exported: models, embed and heads check a model file by it
    is_url,
    model_file,
    remember_model,
)
from ..preprocessing._preprocess import Preset, get_preset

CARD_KEY = "auroradask.card"
_ORT_DTYPES = {"tensor(float)": "float32", "tensor(uint8)": "uint8"}


@dataclass
class ModelCard:
    """How to feed a model and what its outputs mean.

    Attributes
    ----------
    classes
        Class names in output order.
    preset
        Preprocessing parameters (a :class:`auroradask.Preset` as a dict, or a preset name).
    input_name
        Name of the graph input to feed (default: the first input).
    layout
        ``"NHWC"`` (channels last) or ``"NCHW"``.
    size
        Input (rows, cols).
    dtype
        Input dtype, ``"float32"`` or ``"uint8"``.
    outputs
        ``"probabilities"`` or ``"logits"`` (softmax is applied to logits).
    description
        Free text: what the model is, what it was trained on.
    quantization
        Set by :func:`auroradask.quantize_model` on the models it writes: the method, the
        calibration frames, and the file name and sha256 of the float model it came from.
        ``None`` (and absent from the JSON) for any other model.
    """

    classes: list[str] = field(default_factory=list)
    preset: dict[str, Any] | str | None = None
    input_name: str | None = None
    layout: str | None = None
    size: tuple[int, int] | None = None
    dtype: str | None = None
    outputs: str = "probabilities"
    description: str = ""
    quantization: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        card = dataclasses.asdict(self)
        card["size"] = list(self.size) if self.size else None
        if card["quantization"] is None:  # cards of float models stay as they were
            del card["quantization"]
        return card

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str) -> ModelCard:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ModelError(f"model card in {where}: unknown fields {sorted(unknown)}")
        values = dict(values)
        if values.get("size") is not None:
            values["size"] = tuple(int(v) for v in values["size"])
        return cls(**values)


def write_model_card(onnx_path: str | os.PathLike, card: ModelCard | dict[str, Any]) -> None:
    """Store a model card in an ONNX file's ``metadata_props`` (needs the ``onnx`` package).

    Parameters
    ----------
    onnx_path
        The model file; it is rewritten in place.
    card
        A :class:`ModelCard` or a dict of its fields.
    """
    try:
        import onnx  # deferred: seconds to import; only writing a card needs it
    except ImportError:
        raise ImportError("write_model_card needs the onnx package: pip install onnx") from None
    if isinstance(card, dict):
        card = ModelCard.from_dict(card, "argument")
    model = onnx.load(os.fspath(onnx_path))
    kept = [p for p in model.metadata_props if p.key != CARD_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=CARD_KEY, value=card.to_json())
    onnx.save(model, os.fspath(onnx_path))


@dataclass(frozen=True)
class Model:
    """A validated model: its file, its card, and how to run it. Small and picklable.

    Build it with :func:`load_model`; sessions are created by :func:`session` on each worker.
    """

    path: str
    sha256: str
    card: ModelCard
    preset: Preset
    input_name: str
    layout: str
    batch_size: int
    providers: tuple[str, ...]
    intra_op_threads: int
    fixed_batch: bool = False
    #: the URL the model was loaded from (``path`` is then the client's cached copy): workers
    #: that lack ``path`` fetch it from there (see ``auroradask._workers``)
    source: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def classes(self) -> list[str]:
        return list(self.card.classes)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def session_key(self) -> tuple:
        return (self.path, self.sha256, self.providers, self.intra_op_threads)

    def provenance(self) -> dict[str, str]:
        """Attributes recording which model made a result."""
        return {
            "model_file": self.name,
            "model_sha256": self.sha256,
            "model_card": self.card.to_json(),
            "preset": self.preset.to_json(),
        }


def load_model(
    path: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    preset: str | Preset | dict[str, Any] | None = None,
    layout: str | None = None,
    outputs: str | None = None,
    batch_size: int | str = "auto",
    providers: str | Sequence[str] | None = None,
    intra_op_threads: int = 1,
    storage_options: dict[str, Any] | None = None,
) -> Model:
    """Read a model's card and check it against the graph; read no data.

    Parameters
    ----------
    path
        An ``.onnx`` file: a local path, or an fsspec URL (``s3://…/model.onnx``,
        ``https://…``) for workers that share no disk with this machine. A URL is fetched
        into the local cache (with its ``.json`` card beside it, if there is one), and each
        worker that lacks the file fetches it from there too.
    classes, preset, layout, outputs
        Override the card (or stand in for one where the model has none).
    batch_size
        Frames per onnxruntime call (forced to the graph's batch size if that is fixed).
        ``"auto"`` (default): as many as fit in 256 MB of activations, at most 32, from the
        size of every node's output for one frame (onnxruntime's profiler, one run of a
        blank frame): 32 for small models, 5 for a ResNet-50, so that each worker's
        onnxruntime arena, which grows to the largest call, stays small.
    providers
        ``"cpu"`` (default), ``"cuda"``, or onnxruntime provider names.
    intra_op_threads
        onnxruntime threads per run. The default of 1 leaves parallelism to dask (each dask
        thread runs the model on its own chunk); raise it when a worker has fewer dask
        threads than cores.
    storage_options
        Passed to fsspec for a model URL (credentials, endpoint), here and on the workers.

    Raises
    ------
    SourceNotFoundError
        If the file does not exist.
    ModelError
        Saying what does not fit: the card and the graph's input rank, size,
        dtype or layout, the number of classes and the output size, or the preset.
    """
    source = None
    if is_url(path):  # fetched here to be checked; workers fetch it too, or get it shipped
        source = os.fspath(path)
        path = fetch(source, storage_options, what="model")
        fetch_sidecar(source, storage_options)
    path = os.path.abspath(os.fspath(path))
    if not os.path.exists(path):
        raise SourceNotFoundError(f"model: {path!r} does not exist")
    provider_list = _providers(providers)
    sess = _new_session(path, provider_list, 1)
    card = _read_card(path, sess)
    overrides = {"classes": list(classes) if classes is not None else None, "layout": layout}
    overrides["outputs"] = outputs
    if preset is not None:
        overrides["preset"] = preset if isinstance(preset, str | dict) else preset.to_dict()
    card = dataclasses.replace(card, **{k: v for k, v in overrides.items() if v is not None})
    where = f"model {os.path.basename(path)!r}"
    graph_input, layout, (rows, cols, channels), dtype = _check_input(where, sess, card)
    _check_outputs(where, sess, card)
    preset = _check_preset(where, card, (rows, cols), channels, dtype)
    fixed_batch = isinstance(graph_input.shape[0], int)
    if fixed_batch:
        batch_size = graph_input.shape[0]
    elif batch_size == "auto":
        per_frame = activation_bytes_per_frame(
            path, graph_input.name, layout, (rows, cols, channels), preset, dtype
        )
        batch_size = int(min(MAX_BATCH_SIZE, max(1, BATCH_ACTIVATION_BYTES // max(per_frame, 1))))
    if isinstance(batch_size, str) or isinstance(batch_size, bool):
        raise ArgumentError(f"batch_size: expected a number >= 1 or 'auto', got {batch_size!r}")
    if batch_size < 1:
        raise ArgumentError(f"batch_size: expected >= 1, got {batch_size}")
    card = dataclasses.replace(
        card, input_name=graph_input.name, layout=layout, size=preset.size, dtype=dtype
    )
    del sess
    _return_freed_memory()
    model = Model(
        path=path,
        sha256=file_sha256(path),
        card=card,
        preset=preset,
        input_name=graph_input.name,
        layout=layout,
        batch_size=int(batch_size),
        providers=tuple(provider_list),
        intra_op_threads=int(intra_op_threads),
        fixed_batch=fixed_batch,
        source=source,
        storage_options=dict(storage_options or {}) if source else {},
    )
    remember_model(model)  # to_zarr ships it to workers that lack the file
    return model


def _return_freed_memory() -> None:
    """Give the heap's freed pages back to the operating system (glibc's ``malloc_trim``).

    ``load_model`` opens the graph in the calling process twice (to check it, and to size
    its batches), and glibc keeps what those sessions freed: about 390 MB for a ResNet-50,
    held by the client for a whole run although no model runs there (the workers have their
    own sessions). Elsewhere than glibc (macOS, musl) this does nothing.
    """
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


_ACTIVATIONS: dict[tuple, int] = {}


def activation_bytes_per_frame(
    path: str, input_name: str, layout: str, dims: tuple, preset: Preset, dtype: str
) -> int:
    """Bytes of node outputs for one frame: the sum over the graph's nodes of the output
    sizes onnxruntime's profiler reports for a run of one blank frame on the CPU.

    An upper bound of the activations alive at once (onnxruntime reuses buffers), so the
    batch size chosen from it errs on the side of memory. Cached per file and size.
    """
    key = (path, file_sha256(path), tuple(preset.size))
    if key in _ACTIVATIONS:
        return _ACTIVATIONS[key]
    rows, cols = (
        d if isinstance(d, int) else s for d, s in zip(dims[:2], preset.size, strict=True)
    )
    channels = dims[2] if isinstance(dims[2], int) else preset.channels
    shape = (1, rows, cols, channels) if layout == "NHWC" else (1, channels, rows, cols)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="auroradask-profile-") as folder:
        options.profile_file_prefix = os.path.join(folder, "run")
        try:
            sess = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            sess.run(None, {input_name: np.zeros(shape, dtype=np.dtype(dtype))})
            with open(sess.end_profiling()) as f:
                events = json.load(f)
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelError(
                f"model: cannot run {os.path.basename(path)!r} on a blank frame to size its "
                f"batches ({error}); give batch_size= a number"
            ) from None
    total = sum(
        int(e.get("args", {}).get("output_size", 0))
        for e in events
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")
    )
    _ACTIVATIONS[key] = total
    return total


def _read_card(path: str, sess) -> ModelCard:
    meta = sess.get_modelmeta().custom_metadata_map
    if CARD_KEY in meta:
        try:
            return ModelCard.from_dict(json.loads(meta[CARD_KEY]), f"{path} metadata")
        except json.JSONDecodeError as error:
            raise ModelError(f"model: the card in {path!r} is not JSON ({error})") from None
    sidecar = os.path.splitext(path)[0] + ".json"
    if os.path.exists(sidecar):
        try:
            with open(sidecar) as f:
                return ModelCard.from_dict(json.load(f), sidecar)
        except json.JSONDecodeError as error:
            raise ModelError(f"model: card {sidecar!r} is not JSON ({error})") from None
    return ModelCard()


def _check_input(where: str, sess, card: ModelCard):
    """The graph input to feed, its layout, (rows, cols, channels) and dtype, where the card
    and the graph agree on them."""
    inputs = {i.name: i for i in sess.get_inputs()}
    input_name = card.input_name or next(iter(inputs))
    if input_name not in inputs:
        raise ModelError(f"{where}: no input named {input_name!r}; inputs are {list(inputs)}")
    graph_input = inputs[input_name]
    shape = list(graph_input.shape)
    if len(shape) != 4:
        raise ModelError(
            f"{where}: input {input_name!r} has rank {len(shape)}, expected 4 (images)"
        )
    layout = card.layout or _guess_layout(shape)
    if layout not in ("NHWC", "NCHW"):
        raise ModelError(
            f"{where}: cannot tell the input layout from shape {shape}; give layout='NHWC' or 'NCHW'"
        )
    dims = (shape[1], shape[2], shape[3]) if layout == "NHWC" else (shape[2], shape[3], shape[1])
    dtype = _ORT_DTYPES.get(graph_input.type)
    if dtype is None:
        raise ModelError(f"{where}: input type {graph_input.type} is not float32 or uint8")
    if card.dtype and card.dtype != dtype:
        raise ModelError(f"{where}: the card says input dtype {card.dtype}, the graph has {dtype}")
    return graph_input, layout, dims, dtype


def _check_outputs(where: str, sess, card: ModelCard) -> None:
    if not card.classes:
        raise ModelError(f"{where}: no class names; give classes=[...] or a model card")
    n_out = sess.get_outputs()[0].shape[-1]
    if isinstance(n_out, int) and n_out != len(card.classes):
        raise ModelError(
            f"{where}: {len(card.classes)} class names {card.classes} for {n_out} outputs"
        )
    if card.outputs not in ("probabilities", "logits"):
        raise ModelError(
            f"{where}: outputs must be 'probabilities' or 'logits', not {card.outputs!r}"
        )


def _check_preset(where: str, card: ModelCard, graph_size, channels, dtype) -> Preset:
    """The card's preset, checked against the graph's input size, channels and dtype."""
    if card.preset is None:
        raise ModelError(f"{where}: no preprocessing preset; give preset='themis-pa' or a card")
    try:
        preset = get_preset(card.preset)
    except ArgumentError as error:
        raise ModelError(f"{where}: {error}") from None
    card_size = tuple(card.size) if card.size else None
    for name, size in (("card", card_size), ("preset", preset.size)):
        if size is None:
            continue
        for want, have in zip(size, graph_size, strict=True):
            if isinstance(have, int) and want != have:
                raise ModelError(
                    f"{where}: the {name} gives input size {tuple(size)}, the graph takes {tuple(graph_size)}"
                )
    if isinstance(channels, int) and channels != preset.channels:
        raise ModelError(
            f"{where}: the graph takes {channels} channels, the preset gives {preset.channels}"
        )
    if preset.dtype != dtype:
        raise ModelError(f"{where}: the graph takes {dtype}, the preset gives {preset.dtype}")
    return preset


def _guess_layout(shape: list) -> str | None:
    last, second = shape[3], shape[1]
    if last in (1, 3) and second not in (1, 3):
        return "NHWC"
    if second in (1, 3) and last not in (1, 3):
        return "NCHW"
    return None


def _providers(providers: str | Sequence[str] | None) -> list[str]:
    if providers is None or providers == "cpu":
        return ["CPUExecutionProvider"]
    if providers == "cuda":
        wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    elif isinstance(providers, str):
        wanted = [providers]
    else:
        wanted = list(providers)
    available = ort.get_available_providers()
    missing = [p for p in wanted if p not in available]
    if missing:
        raise ModelError(
            f"providers: {missing} not available in this onnxruntime (available: {available}); "
            "for CUDA install onnxruntime-gpu"
        )
    return wanted


def _new_session(path: str | bytes, providers: Sequence[str], intra_op_threads: int):
    """A session of a model file, or of a serialized graph (``bytes``)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(path, sess_options=options, providers=list(providers))
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
        what = repr(path) if isinstance(path, str) else "a serialized graph"
        raise ModelError(f"model: cannot load {what} with onnxruntime ({error})") from None


# --------------------------------------------------------------- sessions on the workers

_SESSIONS: dict[tuple, Any] = {}
_SESSIONS_LOCK = threading.Lock()


def session(model: Model):
    """This process's onnxruntime session for ``model``, created on first use.

    Cached by (path, sha256, providers, threads) and never pickled into the task graph: each
    worker process makes its own, and its dask threads share it (``InferenceSession.run`` is
    thread-safe), so a model's weights are in memory once per process.
    """
    key = model.session_key()
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            # the client's file where this machine has it; else shipped or fetched
            path = model_file(model)
            _SESSIONS[key] = _new_session(path, model.providers, model.intra_op_threads)
        return _SESSIONS[key]


_TENSORS = threading.local()


def model_tensor(model: Model, batch: np.ndarray) -> np.ndarray:
    """The tensor onnxruntime reads for ``(n, rows, cols, 1 or channels)`` channels-last input.

    One channel is broadcast to the graph's channels here, in the graph's layout (NCHW or
    NHWC) and padded to a fixed batch size, in one pass into a buffer that each thread keeps:
    a fresh 19 MB array per mini-batch would be mapped and faulted in again every time (the
    workers' mmap threshold is 16 MB). Input already in the graph's shape is passed as is.
    """
    n, rows, cols, given = batch.shape
    channels = model.preset.channels
    size = model.batch_size if model.fixed_batch else n
    if given not in (1, channels):
        raise ModelError(f"model {model.name!r}: input has {given} channels, expected {channels}")
    if given == channels and size == n and (model.layout == "NHWC" or channels == 1):
        layout = batch if model.layout == "NHWC" else batch.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(layout)
    # room for a whole mini-batch: a chunk's last, partial batch uses the leading rows of the
    # same buffer (a contiguous view) instead of a buffer of its own, made and dropped per chunk
    rows_kept = max(size, model.batch_size)
    if model.layout == "NHWC":
        shape = (rows_kept, rows, cols, channels)
    else:
        shape = (rows_kept, channels, rows, cols)
    buffers = _TENSORS.__dict__.setdefault("buffers", {})
    key = (shape, batch.dtype.str)
    if key not in buffers:
        buffers.clear()  # one model's shape at a time per thread
        buffers[key] = np.empty(shape, dtype=batch.dtype)
    tensor = buffers[key][:size]
    if model.layout == "NHWC" and given == 1 and channels == 3:
        # GRAY2BGR copies one channel into three with SIMD, 10x numpy's broadcasting copy
        flat = np.ascontiguousarray(batch).reshape(n * rows, cols)
        written = cv2.cvtColor(flat, cv2.COLOR_GRAY2BGR, dst=tensor[:n].reshape(n * rows, cols, 3))
        if not np.shares_memory(written, tensor):  # pragma: no cover - OpenCV reallocated
            tensor[:n] = written.reshape(n, rows, cols, 3)
    elif model.layout == "NHWC":
        tensor[:n] = batch
    else:
        for c in range(channels):
            tensor[:n, c] = batch[..., 0 if given == 1 else c]
    tensor[n:] = 0  # the padding of a fixed batch size
    return tensor


def predict(model: Model, inputs: np.ndarray) -> np.ndarray:
    """Class probabilities for ``(n, rows, cols, channels)`` inputs, in mini-batches.

    ``inputs`` may hold one channel where the graph takes three identical ones: it is
    broadcast only in the tensor given to onnxruntime (:func:`model_tensor`).

    Returns
    -------
    numpy.ndarray
        ``(n, n_classes)`` float32; softmax applied if the card says the outputs are logits.
    """
    return run_model(model, inputs)[0]


def run_model(
    model: Model, inputs: np.ndarray, *, sess=None, extra: str | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Class probabilities, and the graph output ``extra`` (rows flattened) if one is named.

    ``sess`` is a session of the model's graph, or of that graph with more outputs (by
    default this process's session of ``model``); the classes are its first output. One
    loop for :func:`predict` and :func:`auroradask.embed`, so that an embedding run gives
    exactly the labels :func:`auroradask.classify` gives.
    """
    sess = session(model) if sess is None else sess
    n_classes = len(model.classes)
    names = [sess.get_outputs()[0].name] + ([extra] if extra else [])
    out = np.empty((len(inputs), n_classes), dtype=np.float32)
    more = None
    for start in range(0, len(inputs), model.batch_size):
        batch = inputs[start : start + model.batch_size]
        n = len(batch)
        tensor = model_tensor(model, batch)
        fetched = sess.run(names, {model.input_name: tensor})
        result = np.asarray(fetched[0], dtype=np.float32).reshape(len(tensor), -1)[:n]
        if result.shape[1] != n_classes:
            raise ModelError(
                f"model {model.name!r}: {result.shape[1]} outputs for {n_classes} classes"
            )
        out[start : start + n] = result
        if extra:
            values = np.asarray(fetched[1], dtype=np.float32).reshape(len(tensor), -1)[:n]
            if more is None:
                more = np.empty((len(inputs), values.shape[1]), dtype=np.float32)
            more[start : start + n] = values
    if extra and more is None:
        more = np.empty((0, 0), dtype=np.float32)
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        # NaN would become "not classified" downstream, and pass for a frame problem
        raise ModelError(
            f"model {model.name!r}: NaN or infinite outputs for {int(bad.sum())} of "
            f"{len(out)} frames; the model is broken for this input"
        )
    if model.card.outputs == "logits":
        out = softmax(out, axis=1).astype(np.float32)
    elif len(out) and not np.allclose(out.sum(axis=1), 1.0, atol=1e-3):
        raise ModelError(
            f"model {model.name!r}: outputs do not sum to 1, so they are not probabilities; "
            "declare outputs='logits' in the card or the arguments"
        )
    return out, more


def demo_model() -> str:
    """Path of the bundled demonstration ONNX model (``themis-pa`` preset, four classes).

    NOT trained on real data: a small CNN trained on procedurally generated all-sky frames by
    ``examples/train_demo_model.py``, for running and testing the pipeline.
    """
    return os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "data",
        "models",
        "demo-themis-pa.onnx",
    )
