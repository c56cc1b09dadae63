"""Skymaps: reading one skymap file and its elevation map (``_skymap``), and the tree of
skymaps valid per site and time (``_tree``).
"""

from ._skymap import PatchGeometry, circle_elevation, read_patch_geometry, read_skymap
from ._tree import SkymapTree, check_skymap, open_skymaps

__all__ = [
    "check_skymap",
    "circle_elevation",
    "open_skymaps",
    "PatchGeometry",
    "read_patch_geometry",
    "read_skymap",
    "SkymapTree",
]
