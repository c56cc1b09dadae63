"""The names of auroradask's top level, for type checkers and for lazy_loader: each is
imported from its room the first time it is used (``auroradask/__init__.py``)."""

from . import (
    analysis as analysis,
    distributed as distributed,
    errors as errors,
    evaluation as evaluation,
    io as io,
    labelling as labelling,
    learn as learn,
    models as models,
    patchtracking as patchtracking,
    preprocessing as preprocessing,
    skymaps as skymaps,
    store as store,
    visual as visual,
)
from ._schema import FRAME_STATUS_MEANINGS as FRAME_STATUS_MEANINGS
from ._version import __version__ as __version__
from .analysis import (
    coincidence as coincidence,
    events as events,
    join_nearest as join_nearest,
    join_over_events as join_over_events,
    magnetic_coordinates as magnetic_coordinates,
    occurrence as occurrence,
    smooth_labels as smooth_labels,
    usable as usable,
)
from .distributed import (
    batch_cluster as batch_cluster,
    dashboard_link as dashboard_link,
    dashboard_page as dashboard_page,
    start_client as start_client,
    threads_for_model as threads_for_model,
)
from .errors import (
    ArgumentError as ArgumentError,
    AuroradaskError as AuroradaskError,
    ClusterError as ClusterError,
    InputDataError as InputDataError,
    ModelError as ModelError,
    SourceNotFoundError as SourceNotFoundError,
    StoreError as StoreError,
    StoreLockedError as StoreLockedError,
)
from .evaluation import (
    MAPPINGS as MAPPINGS,
    Evaluation as Evaluation,
    evaluate as evaluate,
)
from .io import (
    export_text as export_text,
    import_text as import_text,
    open_archive as open_archive,
    open_images as open_images,
    open_themis as open_themis,
    open_themis_cdf as open_themis_cdf,
    sample_archive as sample_archive,
    to_asilib as to_asilib,
)
from .labelling import (
    LabelMerge as LabelMerge,
    LabelPageInfo as LabelPageInfo,
    label_page as label_page,
    label_sheet as label_sheet,
    merge_labels as merge_labels,
)
from .learn import (
    ClusterResult as ClusterResult,
    HeadFit as HeadFit,
    cluster as cluster,
    fit_head as fit_head,
)
from .models import (
    CheckReport as CheckReport,
    ConvertReport as ConvertReport,
    Model as Model,
    ModelCard as ModelCard,
    QuantizeReport as QuantizeReport,
    check_model as check_model,
    classify as classify,
    convert_model as convert_model,
    demo_model as demo_model,
    embed as embed,
    embedding_layers as embedding_layers,
    load_model as load_model,
    quantize_model as quantize_model,
    write_model_card as write_model_card,
)
from .patchtracking import (
    PatchOptions as PatchOptions,
    PatchResult as PatchResult,
    link_patches as link_patches,
    patch_blocks as patch_blocks,
    patch_counts as patch_counts,
    patches as patches,
    summarize_tracks as summarize_tracks,
)
from .preprocessing import (
    PRESETS as PRESETS,
    Preset as Preset,
    clahe_uint16 as clahe_uint16,
    field_of_view as field_of_view,
    get_preset as get_preset,
    preprocess as preprocess,
    preprocess_frames as preprocess_frames,
)
from .skymaps import (
    MapMesh as MapMesh,
    PatchGeometry as PatchGeometry,
    SkymapTree as SkymapTree,
    check_skymap as check_skymap,
    circle_elevation as circle_elevation,
    map_mesh as map_mesh,
    open_skymaps as open_skymaps,
    read_patch_geometry as read_patch_geometry,
    read_skymap as read_skymap,
)
from .store import (
    BatchPlan as BatchPlan,
    WritePlan as WritePlan,
    WriteSummary as WriteSummary,
    as_cf as as_cf,
    describe as describe,
    open_results as open_results,
    plan_batch as plan_batch,
    plan_write as plan_write,
    to_zarr as to_zarr,
    upgrade_store as upgrade_store,
)
from .visual import (
    MovieInfo as MovieInfo,
    class_montage as class_montage,
    keogram as keogram,
    montage as montage,
    mosaic as mosaic,
    mosaic_movie as mosaic_movie,
    movie as movie,
    plot_events as plot_events,
    plot_keogram as plot_keogram,
    plot_occurrence as plot_occurrence,
    plot_occurrence_dial as plot_occurrence_dial,
    plot_timeline as plot_timeline,
    quicklook as quicklook,
    quicklooks as quicklooks,
)
