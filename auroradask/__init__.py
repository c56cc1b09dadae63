"""auroradask: classify millions of THEMIS all-sky camera frames with Dask, xarray and ONNX."""

from __future__ import annotations

from pathlib import Path

from ._archive import open_archive
from ._classify import classify
from ._cluster import dashboard_link, start_client
from ._evaluate import MAPPINGS, Evaluation, evaluate
from ._frames import FRAME_STATUS_MEANINGS, open_themis
from ._model import Model, ModelCard, ModelError, load_model, write_model_card
from ._preprocess import PRESETS, Preset, get_preset, preprocess
from ._skymap import read_skymap
from ._store import StoreError, StoreLockedError, WriteSummary, describe, open_results, to_zarr
from ._textfiles import export_text, import_text
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
    "Evaluation",
    "FRAME_STATUS_MEANINGS",
    "MAPPINGS",
    "Model",
    "ModelCard",
    "ModelError",
    "PRESETS",
    "StoreError",
    "StoreLockedError",
    "WriteSummary",
    "Preset",
    "classify",
    "dashboard_link",
    "describe",
    "evaluate",
    "demo_model",
    "export_text",
    "get_preset",
    "import_text",
    "load_model",
    "preprocess",
    "read_skymap",
    "__version__",
    "open_archive",
    "open_results",
    "open_themis",
    "sample_archive",
    "start_client",
    "to_zarr",
    "write_model_card",
]
