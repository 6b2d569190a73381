from __future__ import annotations

from pathlib import Path

import pytest

from survey.study.config import Component, ConfigError, Question, StudyConfig
from survey.study.config_file import load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "survey" / "example_study.toml"


def _write(tmp_path, text: str) -> Path:
    p = tmp_path / "study.toml"
    p.write_text(text)
    return p


MINIMAL = '[study]\nname = "s"\ncatalog = "cat/manifest.csv"\n'


def test_the_shipped_example_is_valid_and_complete():
    config = load_config(EXAMPLE)
    assert config.name == "shirts-and-mugs" and Path(config.catalog).is_file()
    assert [c.name for c in config.methods] == ["ssim", "efficientnet"]
    assert config.methods[1].options == {}  # the default efficientnet: Lite2 at 384 px (README)
    assert config.protocols == ("rating", "pairwise") and config.rating_item_ticks
    assert config.attention_check_rate == 0.1 and config.min_response_ms == 1500
    assert config.demographics[0] == Question("age", "Your age group", ("18-29", "30-49", "50-64", "65+"))
    assert config.completion_code == "C1A2B3C4" and config.texts.thank_you.startswith("Thank you")
    assert StudyConfig.from_dict(config.to_dict()) == config  # stored with the study, read back equal


def test_minimal_config_and_relative_catalog(tmp_path):
    config = load_config(_write(tmp_path, MINIMAL))
    assert config.catalog == str((tmp_path / "cat" / "manifest.csv").resolve())
    assert config.protocols == ("rating",) and [c.name for c in config.segmenters] == ["none", "u2netp"]
    assert config.metric_queries_per_category == 1000  # bounds the build's metric search at catalog scale
    assert (
        load_config(_write(tmp_path, MINIMAL + "[references]\nmetric_queries = 0\n")).metric_queries_per_category == 0
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("[study]\nname = 's'\n", r"study.name and study.catalog are required"),
        (MINIMAL + "[protocol]\nuse = ['rating']\n", r"\[protocol\]: unknown section; valid: .*protocols"),
        (MINIMAL + "[protocols]\nuses = ['rating']\n", r"protocols.uses: unknown key; valid in \[protocols\]: .*use"),
        (MINIMAL + "[protocols]\nuse = ['rank']\n", r"protocols: \['rank'\] is not .* from rating, pairwise, ranking"),
        (MINIMAL + "[participants]\nmin_response_ms = 'fast'\n", r"participants.min_response_ms: must be an integer"),
        (MINIMAL + "[participants]\nattention_check_rate = 0.9\n", r"attention_check_rate: must be between 0 and 0.5"),
        (MINIMAL + "[[methods]]\nvariant = 'b0'\n", r"methods\[0\]: missing 'name'"),
        (MINIMAL + "[completion]\nredirect_url = 'prolific.com/x'\n", r"redirect_url: .* must start with https://"),
        (
            MINIMAL + "[demographics]\nquestions = [{ key = 'age', label = 'Age' }]\n",
            r"demographics.questions\[0\]: missing options",
        ),
        (MINIMAL + "[references]\nmetric_queries = -1\n", r"metric_queries_per_category: must be 0 or more"),
        (MINIMAL + "[references]\nmetric_queries = 'all'\n", r"references.metric_queries: must be an integer"),
        ("[study\nname=", r"not valid TOML"),
    ],
)
def test_errors_name_the_key_and_the_fix(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text))


def test_component_names_and_options_are_checked_at_build_time_not_when_loading(tmp_path, make_session):
    """Loading (and serving) a config needs no similarity code; the build checks every name and
    option against the registries before any work (here: before it finds the catalog missing)."""
    from survey.study.build import build_study

    config = load_config(_write(tmp_path, MINIMAL + "[[methods]]\nname = 'sift'\n"))
    assert [c.name for c in config.methods] == ["sift"]
    with pytest.raises(ConfigError, match=r"methods: unknown name 'sift'; valid: clip, efficientnet, ssim"):
        build_study(make_session, config, progress=False)
    config = load_config(_write(tmp_path, MINIMAL + "[[segmenters]]\nname = 'u2netp'\nmodelpath = 'x.onnx'\n"))
    with pytest.raises(
        ConfigError,
        match=r"segmenters: segmenter 'u2netp' has no option\(s\) modelpath; "
        r"options: model_path",
    ):
        build_study(make_session, config, progress=False)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such study config file"):
        load_config(tmp_path / "nope.toml")


def test_protocol_constraints():
    with pytest.raises(ConfigError, match="pairwise compares conditions and needs at least 2"):
        StudyConfig(
            name="x",
            catalog="c",
            methods=(Component("ssim"),),
            segmenters=(Component("none"),),
            protocols=("pairwise",),
        )
    many = tuple(Component(n) for n in ("ssim", "efficientnet", "clip"))
    with pytest.raises(ConfigError, match="ranking shows every distinct grid.*at most 6"):
        StudyConfig(
            name="x",
            catalog="c",
            methods=many,
            segmenters=(Component("none"), Component("u2netp"), Component("maskrcnn")),
            protocols=("ranking",),
        )


def test_build_from_config_file(tmp_path, small_catalog, make_session):
    from sqlalchemy import select

    from db.models import Study
    from survey.study.build import build_study

    path = _write(
        tmp_path,
        f'[study]\nname = "toml"\ncatalog = "{small_catalog}"\n'
        '[[methods]]\nname = "ssim"\n[[segmenters]]\nname = "none"\n'
        '[protocols]\ntrials_per_participant = 3\n[completion]\ncode = "XYZ"\n',
    )
    build_study(make_session, load_config(path), progress=False)
    with make_session() as s:
        study = s.scalar(select(Study))
        assert study.completion_code == "XYZ" and StudyConfig.from_dict(study.config).trials_per_participant == 3
