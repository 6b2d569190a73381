"""The stopping rule on a study: the [primary] / [stopping] TOML tables, the per-participant differences
read from the export, and what `lookalike study status`, the report and `report --json` say."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from sqlalchemy import update

from db.models import Study
from survey.study.config import ConfigError
from survey.study.config_file import load_config
from survey.study.stopping import PrimaryComparison, StoppingRule

TOML = """
[study]
name = "seq"
catalog = "manifest.csv"

[protocols]
use = ["rating"]

[primary]
protocol = "rating"
a = "efficientnet/u2netp"
b = "ssim/none"

[stopping]
{stopping}
"""


def _load(tmp_path, stopping: str, **replace: str):
    text = TOML.format(stopping=stopping)
    for old, new in replace.items():
        text = text.replace(old, new)
    path = tmp_path / "study.toml"
    path.write_text(text)
    return load_config(path)


def test_toml_tables_are_read_validated_and_survive_storage(tmp_path):
    from survey.study.config import StudyConfig

    config = _load(tmp_path, 'rule = "group-sequential"\nlooks = [20, 40, 60]\nspending = "pocock"\nfutility_z = 0.5')
    assert config.primary == PrimaryComparison("rating", "efficientnet/u2netp", "ssim/none")
    assert config.stopping == StoppingRule("group-sequential", 0.05, (20, 40, 60), "pocock", 0.5)
    assert StudyConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config  # stored as JSON with the study
    anytime = _load(tmp_path, 'rule = "anytime"\nalpha = 0.1\nplanned_participants = 80')
    assert anytime.stopping == StoppingRule("anytime", 0.1, planned_participants=80)
    bad = [
        ('rule = "group-sequential"\nlooks = [40, 20]', "stopping.looks: must increase"),
        ('rule = "group-sequential"\nlooks = "20,40"', "stopping.looks: must be a list"),
        ('rule = "anytime"', "stopping.planned_participants"),
        ('rule = "group-sequential"\nlooks = [20]\nhorizon = 3', "stopping.horizon: unknown key"),
        ("looks = [20]", "missing rule"),
    ]
    for stopping, message in bad:
        with pytest.raises(ConfigError, match=message) as err:
            _load(tmp_path, stopping)
        assert str(tmp_path / "study.toml") in str(err.value)  # the file is named
    with pytest.raises(ConfigError, match="primary.a: 'clip/none' is not a condition of this study"):
        _load(
            tmp_path, 'rule = "anytime"\nplanned_participants = 30', **{'a = "efficientnet/u2netp"': 'a = "clip/none"'}
        )
    with pytest.raises(ConfigError, match="primary.protocol: 'swipe' is not among the study's protocols"):
        _load(tmp_path, 'rule = "anytime"\nplanned_participants = 30', **{'protocol = "rating"': 'protocol = "swipe"'})


@pytest.mark.slow  # the shared study with real weights (built_study)
def test_status_report_and_json_show_the_looks(sqlite_study_db, capsys):
    from survey.analysis.exclusions import apply_exclusions
    from survey.analysis.results import compute_results
    from survey.analysis.sequential_data import participant_differences, study_sequential
    from survey.cli import main
    from survey.study.export import tables

    url, make_session, _ = sqlite_study_db
    primary = PrimaryComparison("rating", "efficientnet/u2netp", "ssim/none")
    rule = StoppingRule("group-sequential", 0.05, (6, 12, 30), "obrien-fleming", futility_z=0.3)
    with make_session.begin() as s:  # as if the study file had declared them at build time
        config = s.scalar(Study.__table__.select().with_only_columns(Study.config))
        declared = {**config, "primary": dataclasses.asdict(primary), "stopping": dataclasses.asdict(rule)}
        s.execute(update(Study).values(config=declared))
    args = ["--db", url, "--participants", "14", "--seed", "2", "--effects", "efficientnet/u2netp=1.5"]
    assert main(["simulate", *args]) == 0
    capsys.readouterr()

    # the differences, recomputed from the export with pandas: mean rating of a minus b per analysed participant
    tidy = tables(make_session, 1)
    flow = apply_exclusions(tidy["participants"])
    got = participant_differences(tidy, flow.kept_ids, primary)
    j = tidy["judgements"]
    j = j[(j["protocol"] == "rating") & ~j["is_catch"].astype(bool)]
    order = tidy["participants"].set_index("participant").loc[list(flow.kept_ids)].sort_values("trials_done_at")
    want = [
        j[(j.participant == p) & (j.condition == primary.a)].rating.astype(float).mean()
        - j[(j.participant == p) & (j.condition == primary.b)].rating.astype(float).mean()
        for p in order.index
    ]
    np.testing.assert_allclose(got, want)
    assert len(got) == flow.kept and np.isfinite(got).sum() >= 3

    res = study_sequential(make_session, 1)
    assert res is not None and res.analysed == flow.kept
    assert [lk.decision for lk in res.looks][2] == "not reached"
    assert main(["study", "status", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "Primary comparison: efficientnet/u2netp - ssim/none" in out and "Now: " in out
    assert main(["study", "status", "--db", url, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert [lk["planned"] for lk in status["stopping"]["looks"]] == [6, 12, 30]
    assert status["stopping"]["looks"][0]["estimate"] == pytest.approx(res.looks[0].estimate)
    results = compute_results(make_session, 1, n_boot=50)
    assert results.sequential == res
    from survey.analysis.report import render_html

    page = render_html(results)
    assert "Primary comparison and stopping rule" in page and res.blinded_decision[1:] in page
