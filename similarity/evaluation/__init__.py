"""Objective evaluation against same-product ground truth: retrieval metrics (``evaluate``),
their confidence intervals and paired comparisons (``retrieval_stats``), and the report
(``report``) behind ``lookalike evaluate``.
"""
