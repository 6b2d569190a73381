"""Survey: study configuration and build, participant service, Streamlit pages, analysis and reports."""
