"""Auroral patches: detected in each frame, georeferenced with the skymap, tracked across
frames (``_patches``). Named ``patchtracking``, not ``patches``, because
:func:`auroradask.patches` is the public function.
"""

from ._patches import (
    PatchOptions,
    PatchResult,
    link_patches,
    patch_blocks,
    patch_counts,
    patches,
    summarize_tracks,
)

__all__ = [
    "link_patches",
    "patch_blocks",
    "patch_counts",
    "patches",
    "PatchOptions",
    "PatchResult",
    "summarize_tracks",
]
