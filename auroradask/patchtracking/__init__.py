"""Auroral patches: detected in each frame and georeferenced with the skymap (``_detect``,
numpy kernels), run lazily over a frames dataset (``_patches``), tracked across frames
(``_tracks``), and returned as a :class:`PatchResult` (``_result``). Named ``patchtracking``,
not ``patches``, because :func:`auroradask.patches` is the public function.
"""

from ._patches import PatchOptions, patch_blocks, patch_counts, patches
from ._result import PatchResult
from ._tracks import link_patches, summarize_tracks

__all__ = [
    "link_patches",
    "patch_blocks",
    "patch_counts",
    "patches",
    "PatchOptions",
    "PatchResult",
    "summarize_tracks",
]
