from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey.analysis.simulate import ResponseModel, simulate
from survey.cli import main
from survey.participants import service
from survey.study.export import DICTIONARY, export, tables


@pytest.fixture
def answered(study_db):
    db_path, make_session, _ = study_db
    study = service.current_study(make_session)
    simulate(make_session, study.id, 6, seed=5, model=ResponseModel(effects={"efficientnet/u2netp": 1.0}))
    service.start_participant(make_session, study.id, {"PROLIFIC_PID": "secret-id"}, np.random.default_rng(0))
    return db_path, make_session, study.id


def test_judgements_are_tidy_and_consistent(answered):
    _, make_session, study_id = answered
    t = tables(make_session, study_id)
    j = t["judgements"]
    assert j["response_id"].nunique() == 6 * 15
    per_grid = j.drop_duplicates(["response_id", "grid"])
    for _, g in per_grid.groupby("response_id"):
        protocol = g["protocol"].iloc[0]
        if protocol == "rating":
            assert len(g) == 1 and g["rating"].between(1, 7).all()
        elif protocol == "pairwise":
            assert sorted(g["outcome"]) in (["loss", "win"], ["tie", "tie"])
        else:
            assert (g["outcome"] == "best").sum() == 1 and (g["outcome"] == "worst").sum() == 1
    catch = j[j["is_catch"] & (j["condition"] == "catch/catch")]
    assert not catch.empty and (j[j["condition"] == "catch/catch"]["is_catch"]).all()
    assert set(j.loc[~j["is_catch"], "condition"]) <= {
        f"{m}/{s}" for m in ("ssim", "efficientnet") for s in ("none", "u2netp")
    }


def test_participants_are_pseudonymous_and_counted(answered):
    _, make_session, study_id = answered
    p = tables(make_session, study_id)["participants"]
    assert len(p) == 7 and p["answers"].tolist() == [15] * 6 + [0]
    assert "secret-id" not in p.to_csv()
    assert p["source"].tolist()[-1] == "prolific"


def test_files_and_dictionary(answered, tmp_path):
    db_path, make_session, study_id = answered
    for fmt in ("csv", "parquet"):
        files = export(make_session, study_id, tmp_path / fmt, fmt=fmt)
        assert [f.name for f in files] == [
            f"judgements.{fmt}",
            f"participants.{fmt}",
            f"repeats.{fmt}",
            f"grids.{fmt}",
            f"swipes.{fmt}",  # every table, with its columns, whatever protocols the study uses
            f"swipe_rounds.{fmt}",
            "data_dictionary.csv",
        ]
        read = pd.read_csv if fmt == "csv" else pd.read_parquet
        for name in ("judgements", "participants", "repeats", "grids", "swipes", "swipe_rounds"):
            assert list(read(tmp_path / fmt / f"{name}.{fmt}").columns) == list(DICTIONARY[name])
    d = pd.read_csv(tmp_path / "csv" / "data_dictionary.csv")
    assert d["description"].notna().all() and len(d) == sum(len(c) for c in DICTIONARY.values())
    assert main(["export", "--db", str(db_path), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "judgements.csv").is_file()


def test_no_study_is_study_unavailable_as_in_the_participant_service(make_session):
    """The export raises the one error for a missing study that the service and the analysis raise."""
    from similarity.errors import UserError
    from survey.participants.service import StudyUnavailable as ServiceStudyUnavailable
    from survey.study.errors import StudyUnavailable

    assert ServiceStudyUnavailable is StudyUnavailable and issubclass(StudyUnavailable, UserError)
    with pytest.raises(StudyUnavailable, match="no study with id 404"):
        tables(make_session, 404)
    with pytest.raises(LookupError):  # still a LookupError for callers that caught that
        tables(make_session, 404)
