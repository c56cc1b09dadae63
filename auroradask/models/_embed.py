"""What a network sees: any intermediate tensor of an ONNX model as an embedding per frame.

The model's graph is extended with the named tensor as one more output (pooled over its
spatial axes to one value per channel), so one run of the model per mini-batch gives both the
class probabilities that :func:`auroradask.classify` gives and the embedding: an embedding
dataset is a results dataset with one more variable, ``embedding(site, time, feature)``, and
is stored, resumed and opened like results.

Each worker process builds the extended graph from the model file once and keeps its session
(as :func:`auroradask.models._model.session` does for classification), so the task graph carries the
small :class:`Model`, never the graph.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import pandas as pd
import xarray as xr

from .._schema import OK
from ..errors import ArgumentError, ModelError, SourceNotFoundError
from ..preprocessing._preprocess import frame_blocks, preprocess_frames
from ..skymaps._skymap import ElevationSource
from ..skymaps._tree import SkymapTree
from ._classify import results_dataset
from ._model import Model, _new_session, file_sha256, load_model, run_model

#: The graph output added for the (pooled) embedding.
EMBEDDING_OUTPUT = "auroradask_embedding"
EMBEDDING_DTYPES = ("float16", "float32")
_FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}


def _onnx():
    try:
        import onnx  # deferred: seconds to import; only a graph being extended needs it
    except ImportError:  # pragma: no cover - a dependency; a broken install only
        raise ImportError("embeddings need the onnx package: pip install onnx") from None
    return onnx


# ------------------------------------------------------------------------ the graph


def _tensor_shapes(model_proto) -> dict[str, tuple[int, list]]:
    """Element type and shape (ints, names or None per axis) of every typed tensor."""
    onnx = _onnx()
    try:
        inferred = onnx.shape_inference.infer_shapes(model_proto)
    except Exception:  # noqa: BLE001 - a graph onnx cannot infer: use what it declares
        inferred = model_proto
    shapes = {}
    graph = inferred.graph
    for info in [*graph.input, *graph.value_info, *graph.output]:
        tensor = info.type.tensor_type
        if not tensor.HasField("shape"):
            shapes[info.name] = (tensor.elem_type, None)
            continue
        dims = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in tensor.shape.dim
        ]
        shapes[info.name] = (tensor.elem_type, dims)
    return shapes


def embedding_layers(model: str | os.PathLike | Model) -> pd.DataFrame:
    """The tensors of a model's graph that can be embeddings, in graph order.

    Parameters
    ----------
    model
        An ``.onnx`` path or a loaded :class:`auroradask.Model`.

    Returns
    -------
    pandas.DataFrame
        One row per floating-point node output of rank 2 or more: ``name`` (give it to
        :func:`embed` as ``output``), ``op`` (the node that makes it), ``shape`` (as the graph
        declares it after shape inference; None where unknown), ``pooled`` (True where
        :func:`embed` averages it over its spatial axes) and ``features`` (the embedding's
        length, where the graph says). The layer just before the classifier (the input of the
        last ``Gemm``/``MatMul``) is the usual choice for a new head or for clustering.
    """
    onnx = _onnx()
    path = model.path if isinstance(model, Model) else os.fspath(model)
    if not os.path.exists(path):
        raise SourceNotFoundError(f"model: {path!r} does not exist")
    proto = onnx.load(path)
    shapes = _tensor_shapes(proto)
    rows = []
    for node in proto.graph.node:
        for name in node.output:
            elem, dims = shapes.get(name, (0, None))
            if elem not in _FLOAT_TYPES or (dims is not None and len(dims) < 2):
                continue
            features = dims[1] if dims is not None and isinstance(dims[1], int) else None
            rows.append(
                {
                    "name": name,
                    "op": node.op_type,
                    "shape": None if dims is None else tuple(dims),
                    "pooled": dims is not None and len(dims) > 2,
                    "features": features,
                }
            )
    return pd.DataFrame(rows, columns=["name", "op", "shape", "pooled", "features"])


def extend_graph(path: str, output: str, *, only_embedding: bool = False):
    """The model's graph with tensor ``output`` as the extra output :data:`EMBEDDING_OUTPUT`.

    A tensor of rank 3 or more is averaged over its axes after the second
    (``GlobalAveragePool``: ONNX lays feature maps out channels first, ``(N, C, H, W)``) and
    flattened to ``(N, C)``; a rank-2 tensor is taken as it is. With ``only_embedding`` the
    graph is cut down to what the embedding needs (the feature extractor of a composed head).

    Returns
    -------
    (onnx.ModelProto, pooled: bool, declared shape)
    """
    onnx = _onnx()
    from onnx import TensorProto, helper  # deferred with onnx itself (see _onnx)

    proto = onnx.load(path)
    graph = proto.graph
    produced = {name for node in graph.node for name in node.output}
    if output not in produced:
        raise ModelError(
            f"output: the graph of {os.path.basename(path)!r} has no tensor {output!r}; "
            "auroradask.embedding_layers(model) lists the candidates"
        )
    shapes = _tensor_shapes(proto)
    elem, dims = shapes.get(output, (0, None))
    if elem and elem not in _FLOAT_TYPES:
        raise ModelError(f"output: tensor {output!r} is not floating point (ONNX type {elem})")
    if dims is None:
        raise ModelError(
            f"output: the rank of tensor {output!r} is unknown to shape inference; "
            "name a tensor whose shape the graph declares"
        )
    if len(dims) < 2:
        raise ModelError(
            f"output: tensor {output!r} has rank {len(dims)}; an embedding needs (N, ...)"
        )
    pooled = len(dims) > 2
    source = output
    nodes = []
    if pooled:
        nodes.append(helper.make_node("GlobalAveragePool", [source], [EMBEDDING_OUTPUT + "_pool"]))
        source = EMBEDDING_OUTPUT + "_pool"
    nodes.append(helper.make_node("Flatten", [source], [EMBEDDING_OUTPUT + "_flat"], axis=1))
    nodes.append(
        helper.make_node(
            "Cast", [EMBEDDING_OUTPUT + "_flat"], [EMBEDDING_OUTPUT], to=TensorProto.FLOAT
        )
    )
    graph.node.extend(nodes)
    graph.output.append(
        helper.make_tensor_value_info(EMBEDDING_OUTPUT, TensorProto.FLOAT, [None, None])
    )
    if only_embedding:
        extractor = onnx.utils.Extractor(proto)
        inputs = [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}]
        cut = extractor.extract_model(inputs, [EMBEDDING_OUTPUT])
        cut.metadata_props.extend(proto.metadata_props)
        del cut.opset_import[:]
        cut.opset_import.extend(proto.opset_import)
        cut.ir_version = proto.ir_version
        proto = cut
    return proto, pooled, tuple(dims)


# ------------------------------------------------------------------ sessions on the workers

_SESSIONS: dict[tuple, Any] = {}
_SESSIONS_LOCK = threading.Lock()


def embedding_session(model: Model, output: str):
    """This process's session of the model extended with ``output``, made on first use."""
    key = (*model.session_key(), output)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            if file_sha256(model.path) != model.sha256:
                raise ModelError(f"model: {model.path!r} changed since it was loaded")
            _SESSIONS[key] = _session_of_extended_graph(model, output)
        return _SESSIONS[key]


def _session_of_extended_graph(model: Model, output: str):
    """A session of the extended graph, its weights saved beside it as external data.

    onnxruntime maps external weights from their file; from a serialized graph it would
    hold the graph's bytes and its own copy at once: a ResNet-50's session cost ~160 MB more
    at its peak than one made from a file. The files go when the session exists.
    """
    onnx = _onnx()
    proto, _, _ = extend_graph(model.path, output)
    folder = tempfile.mkdtemp(prefix="auroradask-embed-")
    try:
        path = os.path.join(folder, "extended.onnx")
        onnx.save(
            proto, path, save_as_external_data=True, all_tensors_to_one_file=True, location="w"
        )
        del proto
        gc.collect()
        return _new_session(path, model.providers, model.intra_op_threads)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def embed_frames(
    frames: np.ndarray, valid: np.ndarray, fov: np.ndarray, model: Model, output: str
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities ``(n, n_classes)`` and embeddings ``(n, features)`` float32 of a
    ``(n, y, x)`` uint16 stack, one mini-batch at a time; NaN rows where ``valid`` is False."""
    sess = embedding_session(model, output)
    index = np.flatnonzero(valid)
    probability = np.full((len(frames), len(model.classes)), np.nan, dtype=np.float32)
    embedding = None
    for first in range(0, len(index), model.batch_size):
        batch = index[first : first + model.batch_size]
        inputs = preprocess_frames(frames[batch], fov, model.preset)
        p, e = run_model(model, inputs, sess=sess, extra=EMBEDDING_OUTPUT)
        if embedding is None:
            n_features = e.shape[1]
            embedding = np.full((len(frames), n_features), np.nan, dtype=np.float32)
        probability[batch], embedding[batch] = p, e
    if embedding is None:  # no valid frame: the caller knows the width
        embedding = np.full((len(frames), 0), np.nan, dtype=np.float32)
    return probability, embedding


def _embed_chunk(images, status, fov, model, layer, n_features):
    cv2.setNumThreads(1)  # parallelism comes from dask
    probability, embedding = embed_frames(images[0], status[0] == OK, fov[0], model, layer)
    if embedding.shape[1] != n_features:
        if embedding.size == 0:  # no valid frame in the chunk
            embedding = np.full((len(probability), n_features), np.nan, dtype=np.float32)
        else:
            raise ModelError(
                f"model {model.name!r}: tensor {layer!r} gave {embedding.shape[1]} features, "
                f"{n_features} expected"
            )
    return np.concatenate([probability, embedding], axis=1)[None]


# ----------------------------------------------------------------------------- the API


def embed(
    frames: xr.Dataset,
    model: str | os.PathLike | Model,
    *,
    output: str,
    dtype: str = "float16",
    elevation: ElevationSource | Mapping[str, ElevationSource] | SkymapTree = "circle",
    skymaps: str | SkymapTree | None = None,
    classes: Sequence[str] | None = None,
    preset: Any = None,
    layout: str | None = None,
    outputs: str | None = None,
    batch_size: int | str = "auto",
    providers: str | Sequence[str] | None = None,
    intra_op_threads: int = 1,
) -> xr.Dataset:
    """Classify frames and keep what the model sees at tensor ``output``, lazily.

    The model runs whole anyway, so its class probabilities come for free: the result is what
    :func:`auroradask.classify` returns (the same labels) plus ``embedding``. Write it with
    :func:`auroradask.to_zarr` like any results: an embedding store is a results store with
    one more variable, resumable and chunked by site-day. Give an embedding dataset to
    :func:`auroradask.fit_head` (a new classifier from a few labelled nights) or
    :func:`auroradask.cluster` (morphologies without labels).

    Parameters
    ----------
    frames
        A frames dataset from :func:`auroradask.open_themis` (or another reader).
    model
        An ``.onnx`` path or a :class:`auroradask.Model`.
    output
        Name of a tensor of the graph (:func:`auroradask.embedding_layers` lists them; for
        the demo model's penultimate layer: ``"/Concat_output_0"``). A feature map
        ``(N, C, H, W)`` is averaged over its spatial axes to ``C`` features (global average
        pooling, as classifier heads do); a ``(N, C)`` tensor is kept as it is.
    dtype
        ``"float16"`` (default: half the storage; embeddings are activations of a float32
        network, whose last three digits no head or clustering needs) or ``"float32"``.
    elevation, skymaps, classes, preset, layout, outputs, providers, intra_op_threads
        As for :func:`auroradask.classify`.
    batch_size
        Frames per onnxruntime call: ``"auto"`` (default) as :func:`auroradask.classify`
        chooses it, from the model's activation size (:func:`auroradask.load_model`), or a
        number.

    Returns
    -------
    xarray.Dataset
        The variables of :func:`auroradask.classify` and ``embedding(site, time, feature)``
        (``dtype``; NaN where the frame was not classified) with coordinate ``feature``; its
        attributes record the model file and sha256, the layer, its shape and the pooling.

    Raises
    ------
    ModelError
        Before any data is read, if the model does not fit or has no tensor ``output``.
    ArgumentError
        If ``dtype`` is not float16 or float32.
    """
    if str(dtype) not in EMBEDDING_DTYPES:
        raise ArgumentError(f"dtype: expected one of {EMBEDDING_DTYPES}, got {dtype!r}")
    if not isinstance(output, str) or not output:
        raise ArgumentError("output: name a tensor of the graph (see embedding_layers)")
    if not isinstance(model, Model):
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
    elif any(v is not None for v in (classes, preset, layout, outputs)):
        raise ArgumentError("model: pass card overrides to load_model, not with a loaded Model")
    proto, pooled, shape = extend_graph(model.path, output)
    if isinstance(shape[1], int):
        n_features = shape[1]  # (N, C, ...): C features once pooled
    else:  # the graph does not say: one run on a blank input tells
        n_features = _feature_count(model, proto)
    del proto
    n_classes = len(model.classes)
    blocks = frame_blocks(frames, model.preset, elevation, skymaps)
    # one task runs the model once per chunk for both: probabilities, then the embedding
    both = blocks.map_chunks(
        "embed",
        _embed_chunk,
        {"v": n_classes + n_features},
        np.float32,
        model=model,
        layer=output,
        n_features=n_features,
    )
    results = results_dataset(frames, model, blocks, both[:, :, :n_classes], stage="embed")
    embedding = both[:, :, n_classes:].astype(dtype)
    return _with_embedding(results, embedding, model, output, pooled, shape)


def _with_embedding(
    results: xr.Dataset, embedding, model: Model, output: str, pooled: bool, shape
) -> xr.Dataset:
    """``results`` with ``embedding(site, time, feature)``, its ``feature`` coordinate and
    attributes that say which model, layer and pooling made it."""
    n_features = embedding.shape[-1]
    results["embedding"] = xr.Variable(
        ("site", "time", "feature"),
        embedding,
        {
            "long_name": f"activations of {output}"
            + (" averaged over its spatial axes" if pooled else ""),
            "model_file": model.name,
            "model_sha256": model.sha256,
            "model_path": model.path,
            "layer": output,
            "layer_shape": str(list(shape)),
            "pooling": "global_average" if pooled else "none",
        },
    )
    results = results.assign_coords(feature=("feature", np.arange(n_features, dtype=np.int32)))
    results.attrs["title"] = "THEMIS ASI frame classification and embeddings"
    results.attrs["embedding_layer"] = output
    return results


def _feature_count(model: Model, proto) -> int:
    """The embedding's length: one run of the extended graph on a blank input."""
    sess = _new_session(proto.SerializeToString(), model.providers, 1)
    rows, cols = model.preset.size
    blank = np.zeros((1, rows, cols, model.preset.channels), dtype=model.preset.dtype)
    if model.layout == "NCHW":
        blank = blank.transpose(0, 3, 1, 2)
    if model.fixed_batch:
        blank = np.repeat(blank, model.batch_size, axis=0)
    try:
        value = sess.run([EMBEDDING_OUTPUT], {model.input_name: np.ascontiguousarray(blank)})[0]
    except Exception as error:  # noqa: BLE001 - onnxruntime's own exception types
        raise ModelError(f"output: running the graph to its tensor failed ({error})") from None
    return int(np.asarray(value).reshape(len(blank), -1).shape[1])
