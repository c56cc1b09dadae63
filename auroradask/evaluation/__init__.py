"""Evaluation against human labels or another store: truth tables, metrics and the
:class:`Evaluation`.
"""

from ._evaluate import MAPPINGS, Evaluation, evaluate

__all__ = [
    "evaluate",
    "Evaluation",
    "MAPPINGS",
]
