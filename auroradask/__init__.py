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
  :func:`plot_occurrence_dial` (MLAT × MLT, sites pooled), :func:`plot_events`;
- against human labels or another store: :func:`evaluate` → :class:`Evaluation`,
  :data:`MAPPINGS` (named code → class mappings);
- seeing what the model saw: :func:`keogram` (lazy), :func:`plot_keogram`, :func:`quicklook` (keogram, labels and
  confidence of a night), :func:`quicklooks` (a folder of them with an HTML index),
  :func:`movie` (→ :class:`MovieInfo`), :func:`montage`, :func:`class_montage`,
  :func:`mosaic` (several sites on a map, outlined in label colours), :func:`mosaic_movie`,
  :func:`map_mesh` (a skymap's pixel corners at a mapping altitude → :class:`MapMesh`);
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

# Lazy: ``import auroradask`` loads this file, ``errors`` and lazy_loader, nothing else. Each
# public name is imported from its room the first time it is touched (scikit-image's way):
# a script that only opens frames never pays for matplotlib, onnxruntime or scikit-learn, and
# the names and rooms are listed once, in ``__init__.pyi``, which type checkers read too.
import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
_ROOMS = frozenset(
    "analysis distributed errors evaluation io labelling learn models patchtracking "
    "preprocessing "
    "skymaps store visual".split()
)
# the rooms are reachable as attributes (``auroradask.analysis``) and importable, but the
# star-export and the API reference list the public names only, as before the rooms existed
__all__ = [name for name in __all__ if name not in _ROOMS]
