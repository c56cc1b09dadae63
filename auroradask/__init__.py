"""auroradask: classify millions of THEMIS all-sky camera frames with Dask, xarray and ONNX."""

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
from ._classify import classify
from ._cluster import dashboard_link, start_client
from ._frames import FRAME_STATUS_MEANINGS, open_themis
from ._model import Model, ModelCard, ModelError, load_model, write_model_card
from ._plots import plot_events, plot_occurrence, plot_timeline
from ._preprocess import PRESETS, Preset, get_preset, preprocess
from ._skymap import read_skymap
from ._store import StoreError, StoreLockedError, WriteSummary, describe, open_results, to_zarr
from ._textfiles import export_text
from ._version import __version__

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
    "FRAME_STATUS_MEANINGS",
    "Model",
    "ModelCard",
    "ModelError",
    "PRESETS",
    "StoreError",
    "StoreLockedError",
    "WriteSummary",
    "Preset",
    "classify",
    "coincidence",
    "dashboard_link",
    "describe",
    "events",
    "demo_model",
    "export_text",
    "get_preset",
    "join_nearest",
    "join_over_events",
    "load_model",
    "magnetic_coordinates",
    "occurrence",
    "preprocess",
    "read_skymap",
    "__version__",
    "open_archive",
    "open_results",
    "open_themis",
    "plot_events",
    "plot_occurrence",
    "plot_timeline",
    "sample_archive",
    "smooth_labels",
    "start_client",
    "to_zarr",
    "usable",
    "write_model_card",
]
