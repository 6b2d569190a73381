"""Similarity backend: catalogs (``catalog``), methods (``methods``), segmenters
(``segmenters``), exact top-k search (``search``) and weight resolution (``weights``).

Submodules are imported explicitly so that light users (the survey app) do not pay for
torch at import time.
"""
