"""Human labels, made where the model's are shown: a self-contained page to label a night on
its keogram beside the model's labels (``_page``, its keogram and thumbnails ``_images``), the
sheets it saves (``_sheets``: the interval form :func:`auroradask.evaluate` reads, and a
per-frame table for :func:`auroradask.fit_head`), and several labellers' sheets merged with
their agreement, Cohen's kappa (``_merge``).
"""

from ._merge import LabelMerge, merge_labels
from ._page import LabelPageInfo, label_page
from ._sheets import label_sheet

__all__ = ["LabelMerge", "LabelPageInfo", "label_page", "label_sheet", "merge_labels"]
