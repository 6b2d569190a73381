"""Streamlit entry point: `streamlit run app.py` (or `lookalike serve`)."""

from survey.app import main

main()
