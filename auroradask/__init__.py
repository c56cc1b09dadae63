"""auroradask: classify millions of THEMIS all-sky camera frames with Dask, xarray and ONNX.

The public API, in pipeline order (everything a user needs is importable from here; the
``_``-prefixed modules are the stages behind it):

- archive and frames: :func:`open_archive`, :func:`open_themis` (stream0),
  :func:`open_themis_cdf` (NASA L1 CDF), :func:`open_images` (image folders), :func:`sample_archive`,
  :data:`FRAME_STATUS_MEANINGS`;
- skymaps and preprocessing: :func:`read_skymap`, :func:`open_skymaps` (a skymap tree:
  the skymap valid per site and time), :func:`check_skymap`, :func:`circle_elevation`,
  :func:`field_of_view`, :func:`preprocess` (lazy), :func:`preprocess_frames` (the numpy
  kernel on a stack of frames), :class:`Preset`, :data:`PRESETS`, :func:`get_preset`,
  :func:`clahe_uint16`;
- models and classification: :func:`load_model`, :class:`Model`, :class:`ModelCard`,
  :func:`write_model_card`, :func:`demo_model`, :func:`classify`;
- bring your own model: :func:`convert_model` (PyTorch/Keras/TensorFlow → ONNX),
  :func:`check_model`, :func:`quantize_model` (int8) → :class:`ConvertReport`,
  :class:`CheckReport`, :class:`QuantizeReport`;
- results stores: :func:`to_zarr`, :class:`WriteSummary`, :func:`plan_write` (a dry run:
  what a write would do, how long) → :class:`WritePlan`, :func:`open_results`,
  :func:`describe`, :func:`as_cf` (for netCDF files), :func:`upgrade_store`,
  :func:`export_text`, :func:`import_text` (the published classifier's text files);
- analysis: :func:`usable`, :func:`smooth_labels`, :func:`magnetic_coordinates`,
  :func:`occurrence`, :func:`events`, :func:`coincidence`, :func:`join_nearest`,
  :func:`join_over_events`, :func:`plot_timeline`, :func:`plot_occurrence`,
  :func:`plot_events`;
- against human labels or another store: :func:`evaluate` → :class:`Evaluation`,
  :data:`MAPPINGS` (named code → class mappings);
- seeing what the model saw: :func:`keogram` (lazy), :func:`quicklook` (keogram, labels and
  confidence of a night), :func:`quicklooks` (a folder of them with an HTML index),
  :func:`movie` (→ :class:`MovieInfo`), :func:`montage`, :func:`class_montage`;
- human labels: :func:`label_page` (a self-contained page to label a night on its keogram,
  beside the model → :class:`LabelPageInfo`), :func:`label_sheet` (the page's interval sheet
  from Python), :func:`merge_labels` (several labellers' sheets, with Cohen's kappa between
  them → :class:`LabelMerge`);
- auroral patches: :func:`patches` (detected, georeferenced, tracked → :class:`PatchResult`),
  :func:`patch_blocks` (lazy), :func:`patch_counts` (lazy, for the store), :func:`link_patches`, :func:`summarize_tracks`,
  :func:`read_patch_geometry`, :class:`PatchGeometry`;
- embeddings, new heads, morphologies: :func:`embed` (any tensor of a model, with its
  labels), :func:`embedding_layers`, :func:`fit_head` → :class:`HeadFit` (a linear head
  composed into one ONNX model), :func:`cluster` → :class:`ClusterResult`;
- clusters: :func:`start_client`, :func:`threads_for_model`, :func:`dashboard_link`,
  :func:`dashboard_page` (auroradask's own page, ``/auroradask``, beside Dask's dashboard);
- errors: :class:`AuroradaskError` and its subclasses (also in :mod:`auroradask.errors`).
"""

from __future__ import annotations

from pathlib import Path

from ._analysis import (
    coincidence,
    events,
    join_nearest,
    join_over_events,
    magnetic_coordinates,
    occurrence,
    smooth_labels,
    usable,
)
from ._archive import open_archive
from ._cdf import open_themis_cdf
from ._clahe import clahe_uint16
from ._classify import classify
from ._cluster import dashboard_link, start_client, threads_for_model
from ._clustering import ClusterResult, cluster
from ._dashboard import dashboard_page
from ._embed import embed, embedding_layers
from ._evaluate import MAPPINGS, Evaluation, evaluate
from ._frames import open_themis
from ._heads import HeadFit, fit_head
from ._images import open_images
from ._keogram import keogram
from ._label import LabelMerge, LabelPageInfo, label_page, label_sheet, merge_labels
from ._model import Model, ModelCard, load_model, write_model_card
from ._modeltools import (
    CheckReport,
    ConvertReport,
    QuantizeReport,
    check_model,
    convert_model,
    quantize_model,
)
from ._montage import class_montage, montage
from ._movie import MovieInfo, movie
from ._patches import (
    PatchOptions,
    PatchResult,
    link_patches,
    patch_blocks,
    patch_counts,
    patches,
    summarize_tracks,
)
from ._plots import plot_events, plot_occurrence, plot_timeline
from ._preprocess import (
    PRESETS,
    Preset,
    field_of_view,
    get_preset,
    preprocess,
    preprocess_frames,
)
from ._quicklook import quicklook, quicklooks
from ._schema import FRAME_STATUS_MEANINGS
from ._skymap import PatchGeometry, circle_elevation, read_patch_geometry, read_skymap
from ._skymaps import SkymapTree, check_skymap, open_skymaps
from ._store import (
    WritePlan,
    WriteSummary,
    as_cf,
    describe,
    open_results,
    plan_write,
    to_zarr,
    upgrade_store,
)
from ._textfiles import export_text, import_text
from ._version import __version__
from .errors import (
    ArgumentError,
    AuroradaskError,
    InputDataError,
    ModelError,
    SourceNotFoundError,
    StoreError,
    StoreLockedError,
)

_DATA = Path(__file__).parent / "data"


def sample_archive() -> str:
    """Path of the bundled sample stream0 tree: Gillam, 2014-03-10 06:00-06:06 UT, 120 frames.

    Real THEMIS data; see ``auroradask/data/sample/README.md`` for the attribution.
    """
    return str(_DATA / "sample" / "stream0")


def demo_model() -> str:
    """Path of the bundled demonstration ONNX model (``themis-pa`` preset, four classes).

    NOT trained on real data: a small CNN trained on procedurally generated all-sky frames by
    ``examples/train_demo_model.py``, for running and testing the pipeline.
    """
    return str(_DATA / "models" / "demo-themis-pa.onnx")


__all__ = [
    "ArgumentError",
    "as_cf",
    "AuroradaskError",
    "check_model",
    "check_skymap",
    "CheckReport",
    "circle_elevation",
    "class_montage",
    "clahe_uint16",
    "cluster",
    "classify",
    "ClusterResult",
    "coincidence",
    "convert_model",
    "ConvertReport",
    "dashboard_link",
    "dashboard_page",
    "demo_model",
    "describe",
    "embed",
    "embedding_layers",
    "evaluate",
    "Evaluation",
    "events",
    "export_text",
    "field_of_view",
    "fit_head",
    "FRAME_STATUS_MEANINGS",
    "get_preset",
    "HeadFit",
    "import_text",
    "InputDataError",
    "join_nearest",
    "join_over_events",
    "keogram",
    "label_page",
    "label_sheet",
    "LabelMerge",
    "LabelPageInfo",
    "link_patches",
    "load_model",
    "magnetic_coordinates",
    "MAPPINGS",
    "merge_labels",
    "Model",
    "ModelCard",
    "ModelError",
    "montage",
    "movie",
    "MovieInfo",
    "occurrence",
    "open_archive",
    "open_images",
    "open_results",
    "open_skymaps",
    "open_themis",
    "open_themis_cdf",
    "patch_blocks",
    "patch_counts",
    "patches",
    "PatchGeometry",
    "PatchOptions",
    "PatchResult",
    "plot_events",
    "plot_occurrence",
    "plot_timeline",
    "preprocess",
    "preprocess_frames",
    "Preset",
    "PRESETS",
    "quantize_model",
    "QuantizeReport",
    "quicklook",
    "quicklooks",
    "read_patch_geometry",
    "read_skymap",
    "sample_archive",
    "SkymapTree",
    "smooth_labels",
    "SourceNotFoundError",
    "start_client",
    "threads_for_model",
    "StoreError",
    "StoreLockedError",
    "summarize_tracks",
    "to_zarr",
    "upgrade_store",
    "usable",
    "write_model_card",
    "WriteSummary",
    "WritePlan",
    "plan_write",
    "__version__",
]
