"""Getting products in: catalog folders and CSVs (``catalog``), product feeds (``feeds``),
fetching their images (``fetch``) and the built-in demo catalog (``demo``).
"""
