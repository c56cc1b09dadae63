"""The names of auroradask's top level, for type checkers and for lazy_loader: each is
imported from its room the first time it is used (``auroradask/__init__.py``)."""

from ._schema import (
    FRAME_STATUS_MEANINGS as FRAME_STATUS_MEANINGS,
)
from ._version import (
    __version__ as __version__,
)
from .analysis import (
    coincidence as coincidence,
)
from .analysis import (
    events as events,
)
from .analysis import (
    join_nearest as join_nearest,
)
from .analysis import (
    join_over_events as join_over_events,
)
from .analysis import (
    magnetic_coordinates as magnetic_coordinates,
)
from .analysis import (
    occurrence as occurrence,
)
from .analysis import (
    smooth_labels as smooth_labels,
)
from .analysis import (
    usable as usable,
)
from .distributed import (
    dashboard_link as dashboard_link,
)
from .distributed import (
    dashboard_page as dashboard_page,
)
from .distributed import (
    start_client as start_client,
)
from .distributed import (
    threads_for_model as threads_for_model,
)
from .errors import (
    ArgumentError as ArgumentError,
)
from .errors import (
    AuroradaskError as AuroradaskError,
)
from .errors import (
    InputDataError as InputDataError,
)
from .errors import (
    ModelError as ModelError,
)
from .errors import (
    SourceNotFoundError as SourceNotFoundError,
)
from .errors import (
    StoreError as StoreError,
)
from .errors import (
    StoreLockedError as StoreLockedError,
)
from .evaluation import (
    MAPPINGS as MAPPINGS,
)
from .evaluation import (
    Evaluation as Evaluation,
)
from .evaluation import (
    evaluate as evaluate,
)
from .io import (
    export_text as export_text,
)
from .io import (
    import_text as import_text,
)
from .io import (
    open_archive as open_archive,
)
from .io import (
    open_images as open_images,
)
from .io import (
    open_themis as open_themis,
)
from .io import (
    open_themis_cdf as open_themis_cdf,
)
from .io import (
    sample_archive as sample_archive,
)
from .learn import (
    ClusterResult as ClusterResult,
)
from .learn import (
    HeadFit as HeadFit,
)
from .learn import (
    cluster as cluster,
)
from .learn import (
    fit_head as fit_head,
)
from .models import (
    CheckReport as CheckReport,
)
from .models import (
    ConvertReport as ConvertReport,
)
from .models import (
    Model as Model,
)
from .models import (
    ModelCard as ModelCard,
)
from .models import (
    QuantizeReport as QuantizeReport,
)
from .models import (
    check_model as check_model,
)
from .models import (
    classify as classify,
)
from .models import (
    convert_model as convert_model,
)
from .models import (
    demo_model as demo_model,
)
from .models import (
    embed as embed,
)
from .models import (
    embedding_layers as embedding_layers,
)
from .models import (
    load_model as load_model,
)
from .models import (
    quantize_model as quantize_model,
)
from .models import (
    write_model_card as write_model_card,
)
from .patchtracking import (
    PatchOptions as PatchOptions,
)
from .patchtracking import (
    PatchResult as PatchResult,
)
from .patchtracking import (
    link_patches as link_patches,
)
from .patchtracking import (
    patch_blocks as patch_blocks,
)
from .patchtracking import (
    patch_counts as patch_counts,
)
from .patchtracking import (
    patches as patches,
)
from .patchtracking import (
    summarize_tracks as summarize_tracks,
)
from .preprocessing import (
    PRESETS as PRESETS,
)
from .preprocessing import (
    Preset as Preset,
)
from .preprocessing import (
    clahe_uint16 as clahe_uint16,
)
from .preprocessing import (
    field_of_view as field_of_view,
)
from .preprocessing import (
    get_preset as get_preset,
)
from .preprocessing import (
    preprocess as preprocess,
)
from .preprocessing import (
    preprocess_frames as preprocess_frames,
)
from .skymaps import (
    PatchGeometry as PatchGeometry,
)
from .skymaps import (
    SkymapTree as SkymapTree,
)
from .skymaps import (
    check_skymap as check_skymap,
)
from .skymaps import (
    circle_elevation as circle_elevation,
)
from .skymaps import (
    open_skymaps as open_skymaps,
)
from .skymaps import (
    read_patch_geometry as read_patch_geometry,
)
from .skymaps import (
    read_skymap as read_skymap,
)
from .store import (
    WritePlan as WritePlan,
)
from .store import (
    WriteSummary as WriteSummary,
)
from .store import (
    as_cf as as_cf,
)
from .store import (
    describe as describe,
)
from .store import (
    open_results as open_results,
)
from .store import (
    plan_write as plan_write,
)
from .store import (
    to_zarr as to_zarr,
)
from .store import (
    upgrade_store as upgrade_store,
)
from .visual import (
    MovieInfo as MovieInfo,
)
from .visual import (
    class_montage as class_montage,
)
from .visual import (
    keogram as keogram,
)
from .visual import (
    montage as montage,
)
from .visual import (
    movie as movie,
)
from .visual import (
    plot_events as plot_events,
)
from .visual import (
    plot_keogram as plot_keogram,
)
from .visual import (
    plot_occurrence as plot_occurrence,
)
from .visual import (
    plot_timeline as plot_timeline,
)
from .visual import (
    quicklook as quicklook,
)
from .visual import (
    quicklooks as quicklooks,
)
