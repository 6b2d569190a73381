"""The protocol registry (survey/protocols.py): every protocol has its part in every layer, and
every list of protocols, executors and feeds is derived from the one that defines them."""

from __future__ import annotations

import argparse
import importlib

import pytest

from survey import protocols
from survey.protocols import NAMES, PROTOCOLS, Parts, UnknownProtocol, part_tables

#: The module of each layer that registers its part of every protocol (survey/protocols.py).
LAYER_MODULES = {
    "study": "survey.study.protocol_parts",
    "participants": "survey.participants.protocol_parts",
    "web": "survey.web.views.protocol_parts",
    "analysis": "survey.analysis.protocol_parts",
}


def _layer_tables() -> list[Parts[object]]:
    for module in LAYER_MODULES.values():
        importlib.import_module(module)
    return [t for t in part_tables() if t.layer in LAYER_MODULES]


def test_every_protocol_has_a_part_in_every_layer():
    tables = _layer_tables()
    assert {t.layer for t in tables} == set(LAYER_MODULES)
    assert {t.layer: t.missing() for t in tables} == {t.layer: () for t in tables}


def test_a_protocol_without_its_parts_is_caught(monkeypatch):
    """The check above fails for a protocol that some layer did not register."""
    tables = _layer_tables()
    triad = protocols.Protocol("triad", "three grids: the odd one out", min_conditions=3)
    monkeypatch.setattr(protocols, "PROTOCOLS", {**PROTOCOLS, "triad": triad})
    monkeypatch.setattr(protocols, "NAMES", (*NAMES, "triad"))
    assert {t.layer: t.missing() for t in tables} == {layer: ("triad",) for layer in LAYER_MODULES}
    with pytest.raises(LookupError, match="protocol 'triad' has no trial page in the web layer"):
        importlib.import_module(LAYER_MODULES["web"]).VIEWS["triad"]


def test_a_table_refuses_unknown_names_and_second_parts(monkeypatch):
    monkeypatch.setattr(protocols, "_TABLES", [])
    table: Parts[int] = Parts("test", "number")
    assert part_tables() == (table,)
    table.register("rating", 1)
    with pytest.raises(ValueError, match="already has a number"):
        table.register("rating", 2)
    with pytest.raises(UnknownProtocol, match="unknown protocol 'triad'; valid: rating, pairwise, ranking"):
        table.register("triad", 3)
    with pytest.raises(UnknownProtocol):
        table["triad"]
    assert table["rating"] == 1 and table.missing() == ("pairwise", "ranking", "swipe")


def test_the_command_line_offers_what_the_registries_define():
    from similarity.catalogs.feeds import FEEDS
    from similarity.execution.executors import EXECUTORS
    from survey.cli import parser as build_parser

    parser = build_parser()
    choices: dict[tuple[str, str], tuple[str, ...]] = {}
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, sub in subparsers.choices.items():
        for action in sub._actions:
            if action.choices is not None and action.option_strings:
                choices[(command, action.option_strings[-1])] = tuple(action.choices)
    assert choices[("build", "--protocols")] == NAMES
    assert {v for (c, flag), v in choices.items() if flag == "--executor"} == {tuple(EXECUTORS)}
    assert {v for (c, flag), v in choices.items() if flag == "--feed"} == {tuple(FEEDS)}


def test_the_study_config_takes_its_protocol_names_and_options_from_the_registry(tmp_path):
    from survey.study.config import ConfigError
    from survey.study.config_file import load_config

    study = tmp_path / "study.toml"
    study.write_text(
        '[study]\nname = "x"\ncatalog = "c"\n[protocols]\nuse = ["rating"]\nrating_item_ticks = true\n'
        '[[methods]]\nname = "ssim"\n[[segmenters]]\nname = "none"\n'
    )
    assert load_config(study).rating_item_ticks is True
    study.write_text(study.read_text().replace('["rating"]', '["triad"]'))
    with pytest.raises(ConfigError, match="from rating, pairwise, ranking"):
        load_config(study)
    study.write_text(study.read_text().replace('["triad"]', '["pairwise"]'))
    with pytest.raises(ConfigError, match="pairwise compares conditions and needs at least 2"):
        load_config(study)


@pytest.mark.parametrize("protocol", NAMES)
def test_every_protocol_is_explained_to_participants_in_every_language(protocol):
    from survey.study import texts

    for language, catalog in texts.CATALOG.items():
        assert catalog.get(f"instructions_{protocol}", "").strip(), (language, protocol)
