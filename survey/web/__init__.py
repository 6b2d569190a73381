"""The Streamlit app: the entry point (``app``), thin pages (``views``) over the participant
service, per-browser state (``state``), the preview mode (``preview``) and the processes that
serve it (``serving``). The top survey layer beside :mod:`survey.cli`.
"""
