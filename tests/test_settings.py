"""One settings object, read from the environment in one module only."""

from __future__ import annotations

import re
from pathlib import Path

from survey.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_from_env_reads_every_variable_and_flags_win(tmp_path):
    env = {
        "LOOKALIKE_DB": str(tmp_path / "a.db"),
        "LOOKALIKE_STUDY": "s1",
        "LOOKALIKE_HOME": str(tmp_path / "h"),
        "LOOKALIKE_OFFLINE": "1",
        "LOOKALIKE_ADMIN_PASSWORD": "pw",
    }
    s = Settings.from_env(environ=env)
    assert s == Settings(
        db_url=f"sqlite:///{tmp_path / 'a.db'}", study="s1", home=tmp_path / "h", offline=True, admin_password="pw"
    )
    assert s.cache_dir == tmp_path / "h" / "cache"
    assert Settings.from_env(environ={**env, "LOOKALIKE_OFFLINE": "0"}).offline is False
    assert Settings.from_env(environ={}, offline=True).offline is True  # the --offline flag
    assert Settings.from_env(str(tmp_path / "b.db"), environ=env).db_url == f"sqlite:///{tmp_path / 'b.db'}"
    bare = Settings.from_env(environ={})
    assert bare.study is None and bare.admin_password is None and not bare.offline
    assert bare.db_url == f"sqlite:///{Path('lookalike.db').resolve()}"


def test_to_env_round_trips_for_the_served_app(tmp_path):
    """`lookalike serve` hands its settings to the Streamlit process through the environment."""
    s = Settings(db_url="sqlite:////x.db", study="s", home=tmp_path, offline=True, admin_password="pw")
    assert Settings.from_env(environ=s.to_env()) == s
    plain = Settings(db_url="sqlite:////x.db", study=None, home=tmp_path)
    assert Settings.from_env(environ=plain.to_env()) == plain


def test_no_other_module_reads_the_environment():
    allowed = {ROOT / "survey" / "settings.py", ROOT / "survey" / "cli" / "study.py"}  # serve builds the child's env
    readers = [
        p.relative_to(ROOT)
        for pkg in ("similarity", "survey", "db")
        for p in (ROOT / pkg).rglob("*.py")
        if p not in allowed and re.search(r"\benviron\b|\bgetenv\b", p.read_text())
    ]
    assert readers == []
