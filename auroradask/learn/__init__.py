"""Learning on embeddings: new linear heads composed into one ONNX model (``_heads``) and
clusters of morphologies (``_clusters``). Needs the ``learn`` extra (scikit-learn).
"""

from ._clusters import ClusterResult, cluster
from ._heads import HeadFit, fit_head

__all__ = [
    "cluster",
    "ClusterResult",
    "fit_head",
    "HeadFit",
]
