"""Preprocessing frames for a model: the exact CLAHE (numpy reference, ``_clahe``; the
compiled kernel, ``_clahe_numba``), presets, field of view and the lazy wrapper
(``_preprocess``).
"""

from ._clahe import clahe_uint16
from ._preprocess import PRESETS, Preset, field_of_view, get_preset, preprocess, preprocess_frames

__all__ = [
    "clahe_uint16",
    "field_of_view",
    "get_preset",
    "preprocess",
    "preprocess_frames",
    "Preset",
    "PRESETS",
]
