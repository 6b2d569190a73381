"""The Streamlit app: page config, settings, cached services, navigation. Nothing else.

Run with ``lookalike serve`` (or ``streamlit run app.py``).
"""

from __future__ import annotations

import logging
import sys

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_sessionmaker
from survey.settings import Settings
from survey.study import media
from survey.web import serving
from survey.web.views import participant


def _admin(make_session: sessionmaker[Session], settings: Settings) -> None:
    # Imported when /admin is opened, not before: the analysis behind it (pandas, scipy,
    # statsmodels, matplotlib; about 170 MB) never loads in a process that only serves participants.
    from survey.web.views import admin

    admin.render(make_session, settings)


@st.cache_resource
def _announce_options() -> None:
    serving.announce_options()  # once per process: the server's log shows the settings it runs with


@st.cache_resource
def _log_to_stderr() -> None:
    """Once per process: the app's own log lines (``lookalike.*``: sign-in attempts, database errors)
    go to the server's log with their time; Python's fallback would drop those below WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"))
    logger = logging.getLogger("lookalike")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


@st.cache_resource
def _sessions(db_url: str) -> sessionmaker[Session]:
    return make_sessionmaker(make_engine(db_url))


def main() -> None:
    st.set_page_config(page_title="Product similarity study", layout="wide")
    # The one place the app reads the environment (`lookalike serve` passes its settings there);
    # read at the start of each script run, which is cheap, so a process-wide cache cannot hand
    # one test's settings to the next.
    settings = Settings.from_env()
    _announce_options()
    _log_to_stderr()
    make_session = _sessions(settings.db_url)
    pages = [
        st.Page(
            lambda: participant.render(make_session, settings.study, preview=settings.preview, settings=settings),
            title="Study",
            url_path="study",
            default=True,
        ),
        st.Page(lambda: _admin(make_session, settings), title="Admin", url_path="admin"),
    ]
    with media.serving(settings.media_dir):
        st.navigation(pages, position="hidden").run()


if __name__ == "__main__":
    main()
