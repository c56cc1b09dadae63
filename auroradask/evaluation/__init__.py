"""Evaluation against human labels or another store: truth tables (``_truth``), matching them
with the frames of the results (``_matching``), the metrics (``_metrics``) and the
:class:`Evaluation` (``_evaluation``).
"""

from ._evaluation import Evaluation, evaluate
from ._truth import MAPPINGS

__all__ = [
    "evaluate",
    "Evaluation",
    "MAPPINGS",
]
