"""Streamlit entry point: `streamlit run app.py` (or `lookalike serve`)."""

from survey.web.app import main

main()
