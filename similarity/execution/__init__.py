"""Running methods and segmenters over a catalog: the local pipeline (``local``, ``pipeline``),
executors that may run it elsewhere (``executors``, ``ray_executor``), and the on-disk caches
of masks and features (``cache``, ``store``).
"""
