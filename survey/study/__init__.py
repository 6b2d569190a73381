"""The study: its configuration (``config``, ``texts``), the build that turns a catalog into
blinded grids (``build``, ``media``), and what a researcher reads back (``export``, ``monitor``).

The lowest survey layer: it imports ``similarity`` and ``db``, never the participant service,
the analysis or the web app (checked by import-linter, ``make lint``).
"""
