"""Skymaps: reading one skymap file and its elevation map (``_skymap``), the tree of
skymaps valid per site and time (``_tree``), and a skymap's pixels on the map at a mapping
altitude (``_projection``).
"""

from ._projection import MapMesh, map_mesh
from ._skymap import PatchGeometry, circle_elevation, read_patch_geometry, read_skymap
from ._tree import SkymapTree, check_skymap, open_skymaps

__all__ = [
    "check_skymap",
    "circle_elevation",
    "map_mesh",
    "MapMesh",
    "open_skymaps",
    "PatchGeometry",
    "read_patch_geometry",
    "read_skymap",
    "SkymapTree",
]
