"""Helpers for driving the Streamlit app and its pages with AppTest (shared by several test modules)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def app(monkeypatch, db_path, **params) -> AppTest:
    """The whole app (participant page by default) on ``db_path``, with URL parameters, after its first run."""
    monkeypatch.setenv("LOOKALIKE_DB", str(db_path))
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def rendered(at: AppTest) -> str:
    """Everything the page sends to the browser, as text (all element protos)."""
    out = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        children = getattr(node, "children", {})
        for child in children.values() if isinstance(children, dict) else children:
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def click(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.button if b.label == label).click().run()


def _admin_script(db_url: str) -> None:
    from db.engine import make_engine, make_sessionmaker
    from survey.settings import Settings
    from survey.web.views import admin

    admin.render(make_sessionmaker(make_engine(db_url)), Settings.from_env())


def admin_page(db_url, monkeypatch, password: str | None) -> AppTest:
    """The admin page alone on ``db_url``, with ``password`` configured (None: none), after its first run."""
    if password is None:
        monkeypatch.delenv("LOOKALIKE_ADMIN_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("LOOKALIKE_ADMIN_PASSWORD", password)
    return AppTest.from_function(_admin_script, args=(db_url,), default_timeout=60).run()
