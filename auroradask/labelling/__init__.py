"""Human labels, made where the model's are shown: a self-contained page to label a night on
its keogram beside the model's labels (``_page``), the sheets it saves (the interval form
:func:`auroradask.evaluate` reads, and a per-frame table for :func:`auroradask.fit_head`), and
several labellers' sheets merged with their agreement (Cohen's kappa).
"""

from ._page import LabelMerge, LabelPageInfo, label_page, label_sheet, merge_labels

__all__ = ["LabelMerge", "LabelPageInfo", "label_page", "label_sheet", "merge_labels"]
