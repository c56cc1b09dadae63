"""A new classifier from a few hundred labels: a linear head on a network's embeddings.

:func:`fit_head` matches human labels (in any form :func:`auroradask.evaluate` reads) with the
frames of an embedding dataset (:func:`auroradask.embed`), fits a scikit-learn pipeline
(standardisation, then ridge, logistic regression or a linear SVM), scores it by
cross-validation with whole nights held out (neighbouring frames of a night are nearly the
same frame: a split by frame would score memory, not generalisation), and exports it as one
ONNX model: the feature extractor (the base model cut at the embedding layer, pooled as
:func:`auroradask.embed` pools) composed with the head, with a model card, so that
``auroradask classify --model head.onnx`` runs it like any other model.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import xarray as xr

from ..errors import ArgumentError, ModelError
from ..evaluation._matching import ResultsReader, match_truth
from ..evaluation._metrics import confusion_matrix
from ..evaluation._truth import MAPPINGS, open_dataset, resolve_mapping, truth_form
from ..models._embed import EMBEDDING_OUTPUT, extend_graph
from ..models._model import CARD_KEY, Model, ModelCard, file_sha256, load_model
from ._extra import require_sklearn

HEAD_KINDS = ("ridge", "logistic", "svm")
#: Nights are cut at 18 UT: local noon to early afternoon at every THEMIS site (−60° to
#: −150° longitude), so a whole night of any of them lies within one "night" key.
NIGHT_BOUNDARY_HOURS = 18
#: Name of the composed model's class output (the head's scores or probabilities).
HEAD_OUTPUT = "head/probabilities"


@dataclass
class HeadFit:
    """A fitted head: its cross-validated figures and the estimator fitted on every frame.

    Attributes
    ----------
    classes
        The head's classes, in output order.
    kind
        ``"ridge"``, ``"logistic"`` or ``"svm"``.
    accuracy
        Cross-validated accuracy: each frame predicted by a head fitted without its night.
    confusion
        Cross-validated counts, truth along rows, predicted along columns.
    folds
        Per fold: ``fold``, ``nights`` held out, ``frames``, ``accuracy``.
    frames
        The labelled frames used: ``site``, ``time``, ``night``, ``truth`` (class index),
        ``predicted`` (the cross-validated prediction).
    skipped
        Truth that matched no embedded frame, as :attr:`auroradask.Evaluation.skipped`.
    estimator
        The scikit-learn pipeline fitted on every labelled frame.
    base
        The feature extractor: ``model_path``, ``model_sha256``, ``layer``.
    path
        The ONNX model written by :meth:`save` (None until then).
    """

    classes: list[str]
    kind: str
    accuracy: float
    confusion: pd.DataFrame
    folds: pd.DataFrame
    frames: pd.DataFrame
    skipped: pd.DataFrame
    estimator: Any
    base: dict[str, str]
    n_features: int
    base_card: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    @property
    def nights(self) -> int:
        """Site-nights with labelled frames."""
        return int(self.frames["night"].nunique())

    def summary(self) -> str:
        """The figures in a few lines, for the command line and notebooks."""
        lines = [
            f"{self.kind} head on {self.base['layer']} of {os.path.basename(self.base['model_path'])}: "
            f"{len(self.frames)} frames, {self.nights} site-nights, {len(self.classes)} classes",
            f"cross-validated accuracy (whole nights held out, {len(self.folds)} folds): "
            f"{self.accuracy:.3f}",
            "confusion (rows truth, columns predicted):",
            self.confusion.to_string(),
        ]
        if len(self.skipped):
            lines.append(f"truth not matched: {int(self.skipped['frames'].fillna(1).sum())} frames")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def save(self, path: str | os.PathLike) -> str:
        """Write the feature extractor and this head as one ONNX model with a model card.

        ``auroradask classify --model PATH`` (or :func:`auroradask.classify`) then runs it as
        any other model: the card carries the base model's preprocessing preset and the
        head's classes.

        Returns
        -------
        str
            The path written.
        """
        path = os.fspath(path)
        proto = compose(self)
        import onnx  # deferred: seconds to import; only writing a head needs it

        onnx.save(proto, path)
        self.path = path
        load_model(path)  # the card and the graph agree, or this is a bug
        return path


def night_of(times: np.ndarray) -> np.ndarray:
    """The night of each time: the UT date of ``time + 24 h - NIGHT_BOUNDARY_HOURS``."""
    shift = np.timedelta64(24 - NIGHT_BOUNDARY_HOURS, "h")
    return (np.asarray(times, dtype="datetime64[ns]") + shift).astype("datetime64[D]")


def _head_classes(kind: str, table: Any, mapping: Any, classes: Sequence[str] | None) -> list[str]:
    """The head's classes: given, the mapping's targets, or the truth's labels (sorted)."""
    if classes is not None:
        return [str(c) for c in classes]
    if mapping is not None:
        if isinstance(mapping, (str, os.PathLike)) and os.fspath(mapping) in MAPPINGS:
            targets = MAPPINGS[os.fspath(mapping)].values()
        elif isinstance(mapping, (str, os.PathLike)):
            try:
                with open(os.fspath(mapping)) as f:
                    targets = json.load(f).values()
            except (OSError, ValueError, AttributeError) as error:
                raise ArgumentError(f"mapping: cannot read {mapping!r} ({error})") from None
        else:
            targets = mapping.values()
        names = {str(t) for t in targets if t is not None}
    elif kind == "results":
        return [str(c) for c in table["class"].values]
    else:
        column = "Classification" if kind == "sheet" else "label"
        names = {str(v).strip() for v in table[column].dropna() if str(v).strip()}
    unique: dict[str, str] = {}
    for name in sorted(names):
        unique.setdefault(name.lower(), name)
    return sorted(unique.values())


def labelled_frames(
    embeddings: xr.Dataset,
    truth: Any,
    *,
    mapping: Any = None,
    sheet: str | int | None = None,
    classes: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Truth matched with the embedded frames, by the loaders of :func:`auroradask.evaluate`.

    Returns
    -------
    (frames, skipped, classes)
        ``frames``: ``site``, ``time``, ``truth`` (index into ``classes``); ``skipped`` as in
        an :class:`auroradask.Evaluation`.
    """
    data = ResultsReader(embeddings)
    kind, table, described = truth_form(truth, sheet)
    head_classes = _head_classes(kind, table, mapping, classes)
    data.classes = head_classes  # truth codes become the head's classes, not the base model's
    mapping_table = resolve_mapping(mapping, head_classes)
    frames, skipped = match_truth(kind, table, data, mapping_table, described.get("source", ""))
    return frames[["site", "time", "truth"]], skipped, head_classes


def gather(embeddings: xr.Dataset, frames: pd.DataFrame) -> np.ndarray:
    """The embedding rows ``(n, features)`` float32 of the frames' (site, time), in order."""
    n_features = embeddings.sizes["feature"]
    out = np.empty((len(frames), n_features), dtype=np.float32)
    time = embeddings["time"].values
    for site, part in frames.groupby("site", sort=False):
        index = np.searchsorted(time, part["time"].to_numpy())
        rows = embeddings["embedding"].sel(site=site).isel(time=index)
        out[part.index.to_numpy()] = np.asarray(rows.values, dtype=np.float32)
    return out


def _estimator(kind: str, regularization: float, seed: int, n_frames: int):
    # deferred: scikit-learn is the optional `learn` extra (checked by require_sklearn)
    from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "ridge":
        head = RidgeClassifier(alpha=regularization)
    elif kind == "logistic":
        head = LogisticRegression(C=1.0 / regularization, max_iter=2000, random_state=seed)
    else:
        # a linear SVM (hinge loss, one against the rest) by averaged stochastic gradient
        # descent: scikit-learn's LinearSVC does not convert with skl2onnx 1.20. alpha is
        # 1 / (C n), so that `regularization` means for it what 1/C means for LinearSVC
        head = SGDClassifier(
            loss="hinge",
            alpha=regularization / n_frames,
            average=True,
            max_iter=2000,
            tol=1e-5,
            random_state=seed,
        )
    return make_pipeline(StandardScaler(), head)


def _base_model(embeddings: xr.Dataset, model: str | os.PathLike | Model | None) -> Model:
    attrs = embeddings["embedding"].attrs
    if model is None:
        path = attrs.get("model_path", "")
        if not path or not os.path.exists(path):
            raise ArgumentError(
                f"model: the embeddings' model {attrs.get('model_file', '?')!r} is not at "
                f"{path!r}; give model= (the ONNX file the embeddings were made with)"
            )
        model = path
    base = model if isinstance(model, Model) else load_model(model)
    want = attrs.get("model_sha256")
    if want and base.sha256 != want:
        raise ModelError(
            f"model: {base.path!r} is not the model the embeddings were made with "
            f"(sha256 {base.sha256[:12]}…, the embeddings say {str(want)[:12]}…)"
        )
    return base


def fit_head(
    embeddings: xr.Dataset | str | os.PathLike,
    truth: str | os.PathLike | pd.DataFrame | xr.Dataset,
    *,
    kind: str = "ridge",
    path: str | os.PathLike | None = None,
    model: str | os.PathLike | Model | None = None,
    mapping: str | os.PathLike | Mapping[str, str | None] | None = None,
    sheet: str | int | None = None,
    classes: Sequence[str] | None = None,
    folds: int = 5,
    regularization: float = 1.0,
    seed: int = 0,
) -> HeadFit:
    """Fit a linear classifier on embeddings of labelled frames; score it night by night.

    Parameters
    ----------
    embeddings
        An embedding dataset from :func:`auroradask.embed`, or its store. Store it (or
        ``.persist()`` it) first: the labelled frames are read twice (labels, then rows).
    truth
        Labels in any form :func:`auroradask.evaluate` reads: an interval sheet, a per-frame
        table (``site``, ``time``, ``label``), an interval table (``site``, ``start``,
        ``end``, ``label``), or a results dataset or store (e.g. to distil a model).
    kind
        ``"ridge"`` (default: closed form, robust with few labels; the ~82 % OATH baseline),
        ``"logistic"`` (calibrated probabilities) or ``"svm"`` (a linear SVM, hinge loss by
        averaged stochastic gradient descent).
    path
        Write the composed ONNX model here (see :meth:`HeadFit.save`).
    model
        The ONNX model the embeddings were made with (default: the path recorded in the
        embeddings, if it still holds the same file); checked by sha256.
    mapping, sheet
        As for :func:`auroradask.evaluate`.
    classes
        The head's classes in output order (default: the mapping's targets, or the truth's
        labels, sorted). Every class needs labelled frames.
    folds
        Cross-validation folds, each holding out whole site-nights (fewer if there are fewer
        nights).
    regularization
        Ridge's ``alpha``; ``1/C`` of the logistic regression and the SVM.
    seed
        For the solvers that draw random numbers.

    Returns
    -------
    HeadFit

    Raises
    ------
    ArgumentError
        If ``kind`` is unknown, fewer than two site-nights are labelled, or a class has no
        labelled frame.
    ModelError
        If ``model`` is not the one the embeddings were made with.
    """
    require_sklearn()
    _check_fit_arguments(kind, folds, regularization)
    ds = open_dataset(embeddings, "embeddings")
    if "embedding" not in ds:
        raise ArgumentError("embeddings: no 'embedding' variable; make one with auroradask.embed")
    base = _base_model(ds, model) if path is not None or model is not None else None
    frames, skipped, head_classes = labelled_frames(
        ds, truth, mapping=mapping, sheet=sheet, classes=classes
    )
    frames, x = _training_rows(ds, frames, head_classes)
    y = frames["truth"].to_numpy()
    estimator = _estimator(kind, regularization, seed, len(y))
    predicted, fold_table, fitted = _fit_and_score(
        estimator, x, y, frames["night"].to_numpy(), folds
    )
    frames["predicted"] = predicted
    confusion = pd.DataFrame(
        confusion_matrix(y, predicted, len(head_classes)),
        index=pd.Index(head_classes, name="truth"),
        columns=pd.Index(head_classes, name="predicted"),
    )
    fit = HeadFit(
        classes=head_classes,
        kind=kind,
        accuracy=float((predicted == y).mean()),
        confusion=confusion,
        folds=fold_table,
        frames=frames,
        skipped=skipped,
        estimator=fitted,
        base=_base_description(base, ds["embedding"].attrs),
        n_features=x.shape[1],
        base_card=base.card.to_dict() if base else {},
    )
    if path is not None:
        fit.save(path)
    return fit


def _base_description(base: Model | None, attrs: Mapping[str, Any]) -> dict[str, str]:
    """The feature extractor of :attr:`HeadFit.base`: the model given, or what the
    embeddings record."""
    return {
        "model_path": base.path if base else str(attrs.get("model_path", "")),
        "model_sha256": base.sha256 if base else str(attrs.get("model_sha256", "")),
        "layer": str(attrs.get("layer", "")),
    }


def _check_fit_arguments(kind: str, folds: int, regularization: float) -> None:
    """Refuse a bad ``kind``, ``folds`` or ``regularization`` before any data is read."""
    if kind not in HEAD_KINDS:
        raise ArgumentError(f"kind: expected one of {HEAD_KINDS}, got {kind!r}")
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ArgumentError(f"folds: expected a whole number >= 2, got {folds!r}")
    if not regularization > 0:
        raise ArgumentError(f"regularization: expected > 0, got {regularization!r}")


def _training_rows(
    ds: xr.Dataset, frames: pd.DataFrame, classes: Sequence[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The labelled frames with their ``night``, and their embedding rows ``(n, features)``.

    Refuses what cannot be fitted and scored: no labelled frame, a class without frames, a
    labelled frame without an embedding, or a single site-night (cross-validation holds out
    whole nights).
    """
    if frames.empty:
        raise ArgumentError("truth: no labelled frame matches an embedded frame")
    counts = np.bincount(frames["truth"].to_numpy(), minlength=len(classes))
    absent = [c for c, n in zip(classes, counts, strict=True) if n == 0]
    if absent:
        raise ArgumentError(f"truth: no labelled frame of class(es) {absent}")
    frames = frames.reset_index(drop=True)
    frames["night"] = frames["site"].astype(str) + "-" + night_of(frames["time"]).astype(str)
    x = gather(ds, frames)
    if not np.isfinite(x).all():
        raise ArgumentError("embeddings: a labelled frame has no embedding (not classified)")
    if frames["night"].nunique() < 2:
        raise ArgumentError(
            "truth: labelled frames of one site-night only; cross-validation holds out whole "
            "nights, so label at least two"
        )
    return frames, x


def _fit_and_score(
    estimator: Any, x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int
) -> tuple[np.ndarray, pd.DataFrame, Any]:
    """Cross-validate ``estimator`` with whole nights (groups) held out, then fit it on every
    frame.

    Returns
    -------
    (predicted, folds, fitted)
        Each frame predicted by a copy fitted without its night; per fold ``fold``,
        ``nights`` held out, ``frames`` and ``accuracy``; a copy fitted on all frames.
    """
    # deferred: scikit-learn is the optional `learn` extra (checked by require_sklearn)
    from sklearn.base import clone
    from sklearn.model_selection import GroupKFold

    n_splits = min(folds, len(np.unique(groups)))
    predicted = np.empty_like(y)
    rows = []
    for k, (train, test) in enumerate(GroupKFold(n_splits=n_splits).split(x, y, groups)):
        fitted = clone(estimator).fit(x[train], y[train])
        predicted[test] = fitted.predict(x[test])
        rows.append(
            {
                "fold": k,
                "nights": len(np.unique(groups[test])),
                "frames": len(test),
                "accuracy": float((predicted[test] == y[test]).mean()),
            }
        )
    table = pd.DataFrame(rows, columns=["fold", "nights", "frames", "accuracy"])
    return predicted, table, clone(estimator).fit(x, y)


# ------------------------------------------------------------------------------ export


def compose(fit: HeadFit):
    """The feature extractor cut at the embedding layer, and the head, as one ONNX graph."""
    require_sklearn()
    # deferred: skl2onnx is the optional `learn` extra; onnx takes seconds to import
    import onnx
    from onnx import compose as onnx_compose
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    base_path, layer = fit.base["model_path"], fit.base["layer"]
    if not base_path or not os.path.exists(base_path):
        raise ArgumentError(f"model: the base model {base_path!r} is not there to compose with")
    if file_sha256(base_path) != fit.base["model_sha256"]:
        raise ModelError(f"model: {base_path!r} changed since the head was fitted")
    extractor, _, _ = extend_graph(base_path, layer, only_embedding=True)
    opset = next(o.version for o in extractor.opset_import if o.domain in ("", "ai.onnx"))
    estimator = fit.estimator
    head = convert_sklearn(
        estimator,
        initial_types=[("features", FloatTensorType([None, fit.n_features]))],
        target_opset={"": opset, "ai.onnx.ml": 3},
        # class scores as one (n, classes) tensor, not a list of dicts
        options={id(estimator.steps[-1][1]): {"zipmap": False}},
    )
    head = _two_scores(head, len(fit.classes), fit.n_features)
    head = _same_opset(head, opset)
    head.ir_version = extractor.ir_version
    scores_name = head.graph.output[-1].name  # (label, probabilities or scores)
    merged = onnx_compose.merge_models(
        extractor,
        head,
        io_map=[(EMBEDDING_OUTPUT, "features")],
        prefix2="head/",
        outputs=["head/" + scores_name],
    )
    del merged.metadata_props[:]
    base_card = ModelCard.from_dict(fit.base_card, "the base model") if fit.base_card else None
    if base_card is None:
        base_card = load_model(base_path).card
    card = dataclasses.replace(
        base_card,
        classes=list(fit.classes),
        # a logistic regression gives probabilities; ridge and SVM give decision scores,
        # which classify turns into a softmax (the argmax, so the label, is the head's)
        outputs="probabilities" if fit.kind == "logistic" else "logits",
        description=(
            f"A {fit.kind} head (auroradask.fit_head) on layer {layer!r} of "
            f"{os.path.basename(base_path)} (sha256 {fit.base['model_sha256']}), fitted on "
            f"{len(fit.frames)} labelled frames of {fit.nights} site-nights; cross-validated "
            f"accuracy {fit.accuracy:.3f} with whole nights held out. Base model: "
            f"{base_card.description}"
        ),
    )
    merged.metadata_props.add(key=CARD_KEY, value=card.to_json())
    merged.producer_name = "auroradask.fit_head"
    onnx.checker.check_model(merged)
    return merged


def _same_opset(head, opset: int):
    """The head at the extractor's opset of the default domain (skl2onnx picks the lowest
    its operators need; onnx.compose merges only graphs of one opset per domain)."""
    import onnx  # deferred: seconds to import; only writing a head needs it

    have = next((o.version for o in head.opset_import if o.domain in ("", "ai.onnx")), opset)
    if have == opset:
        return head
    try:
        converted = onnx.version_converter.convert_version(head, opset)
    except Exception as error:  # noqa: BLE001 - onnx raises RuntimeError and others
        raise ModelError(
            f"model: the head cannot be expressed at the base model's opset {opset} ({error})"
        ) from None
    return converted


def _two_scores(head, n_classes: int, n_features: int):
    """A binary linear head gives one decision score ``s`` (for the second class): make it
    ``(-s/2, s/2)``, whose softmax is the logistic of ``s`` and whose argmax is the head's
    prediction, so that the model has one output per class as a card requires."""
    from onnx import TensorProto, helper, numpy_helper  # deferred: seconds to import

    sess = ort.InferenceSession(head.SerializeToString(), providers=["CPUExecutionProvider"])
    scores = head.graph.output[-1]
    probe = sess.run([scores.name], {"features": np.zeros((1, n_features), np.float32)})[0]
    if np.asarray(probe).reshape(1, -1).shape[1] != 1 or n_classes != 2:
        return head
    graph = head.graph
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(0.5, np.float32), "binary_half"),
            numpy_helper.from_array(np.array([-1, 1], np.int64), "binary_shape"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Reshape", [scores.name, "binary_shape"], ["binary_score"]),
            helper.make_node("Mul", ["binary_score", "binary_half"], ["binary_half_score"]),
            helper.make_node("Neg", ["binary_half_score"], ["binary_minus_half_score"]),
            helper.make_node(
                "Concat",
                ["binary_minus_half_score", "binary_half_score"],
                ["binary_scores"],
                axis=1,
            ),
        ]
    )
    kept = [o for o in graph.output if o.name != scores.name]
    del graph.output[:]
    graph.output.extend(kept)
    graph.output.append(
        helper.make_tensor_value_info("binary_scores", TensorProto.FLOAT, [None, 2])
    )
    return head
