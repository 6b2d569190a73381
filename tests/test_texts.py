"""The participant texts: one catalog, English and German complete, overrides validated."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from survey.study import texts
from survey.study.config import ConfigError, StudyConfig
from survey.study.config_file import load_config
from tests.apptest import app, click

VIEWS = Path(__file__).resolve().parents[1] / "survey" / "web" / "views"
#: The modules that draw what a participant sees.
PARTICIPANT_PAGES = [VIEWS / "participant.py", VIEWS / "protocol_parts.py", VIEWS / "products.py"]


@pytest.mark.parametrize("language", texts.LANGUAGES)
def test_every_language_has_every_key_with_the_same_placeholders(language):
    catalog = texts.CATALOG[language]
    assert set(catalog) == set(texts.EN), set(texts.EN) ^ set(catalog)
    for key, text in catalog.items():
        assert text.strip(), key
        assert texts.placeholders(text) == texts.placeholders(texts.EN[key]), key


def test_german_is_a_translation_not_a_copy():
    same = [k for k in texts.EN if texts.DE[k] == texts.EN[k] and not texts.EN[k].strip().isdigit()]
    assert same == []


@pytest.mark.parametrize("page", PARTICIPANT_PAGES, ids=lambda p: p.name)
def test_the_participant_pages_hold_no_text_of_their_own(page):
    """Every string literal shown by the page comes from the catalog: no st.* call in the page is
    given a literal (keys, formats, CSS and HTML scaffolding aside)."""
    tree = ast.parse(page.read_text())
    shown = {"markdown", "button", "error", "warning", "success", "radio", "caption", "selectbox", "text_area"}
    literals = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in shown and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                literals.append(first.value)
    assert literals == []


def test_overrides_are_validated_by_key_and_placeholders(tmp_path):
    base = '[study]\nname = "s"\ncatalog = "m.csv"\nlanguage = "de"\n[texts]\n'
    path = tmp_path / "s.toml"
    path.write_text(base + 'submit = "Weiter"\nprogress = "{number}/{total}"\nthank_you = "Danke!"\n')
    config = load_config(path)
    catalog = config.texts_catalog()
    assert (catalog["submit"], catalog.fmt("progress", number=2, total=9), catalog["done"]) == (
        "Weiter",
        "2/9",
        "Danke!",
    )
    assert catalog["start"] == "Beginnen"  # not overridden: German
    for bad, message in (
        ('sumbit = "x"', r"texts.sumbit: unknown key"),
        ('progress = "Seite {n}"', r"texts.progress: must use exactly \{number\}, \{total\}"),
    ):
        path.write_text(base + bad + "\n")
        with pytest.raises(ConfigError, match=message):
            load_config(path)
    with pytest.raises(ConfigError, match="study.language: 'fr' is not one of en, de"):
        StudyConfig(name="s", catalog="m.csv", language="fr")


def test_a_german_study_speaks_german(monkeypatch, tiny_study):
    db, _, _ = tiny_study("deutsch", trials_per_participant=1, language="de", text_overrides={"start": "Los"})
    at = app(monkeypatch, db)
    assert "Willkommen" in at.markdown[0].value
    at = click(click(at, "Einverstanden, beginnen"), "Los")
    assert at.radio[0].label == "Wie ähnlich sind die fünf Empfehlungen dem Produkt?"
    assert [b.label for b in at.button] == ["Absenden", "Beenden und verlassen"]
