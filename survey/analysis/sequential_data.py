"""A study's primary comparison as the stopping rule reads it: one difference per analysed participant, in
the order they finished (:func:`participant_differences`), and the rule applied to them
(:func:`study_sequential`, what ``lookalike study status``, the admin page and the report show)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from db.models import Study
from survey.analysis.exclusions import DEFAULT_RULES, ExclusionFlow, ExclusionRules, apply_exclusions
from survey.analysis.sequential import SequentialResult, monitor
from survey.study.config import StudyConfig
from survey.study.errors import StudyUnavailable
from survey.study.export import tables
from survey.study.stopping import PrimaryComparison


def _values(tidy: dict[str, pd.DataFrame], primary: PrimaryComparison) -> pd.DataFrame:
    """participant, condition, value: each rating (rating protocol) or each judged like (swipe) of a or b."""
    if primary.protocol == "rating":
        j = tidy["judgements"]
        j = j[(j["protocol"] == "rating") & ~j["is_catch"].astype(bool) & j["rating"].notna()]
        out = j.assign(value=j["rating"].astype(float))
    else:
        s = tidy["swipes"]
        s = s[(s["phase"] == "judge") & ~s["is_check"].astype(bool) & s["liked"].notna()]
        out = s.assign(value=s["liked"].astype(bool).astype(float))
    return out[out["condition"].isin([primary.a, primary.b])][["participant", "condition", "value"]]


def participant_differences(
    tidy: dict[str, pd.DataFrame], kept_ids: tuple[int, ...], primary: PrimaryComparison
) -> np.ndarray:
    """Per analysed participant (``kept_ids``), ordered by when they finished their trials: their mean value
    on condition a minus that on b (:data:`survey.study.stopping.PRIMARY_PROTOCOLS`); NaN for a participant
    without answers on both."""
    people = tidy["participants"]
    people = people[people["participant"].isin(kept_ids)].sort_values(["trials_done_at", "participant"])
    means = _values(tidy, primary).pivot_table(index="participant", columns="condition", values="value")
    means = means.reindex(index=people["participant"], columns=[primary.a, primary.b])
    return (means[primary.a] - means[primary.b]).to_numpy(float)


def sequential_of(config: StudyConfig, tidy: dict[str, pd.DataFrame], flow: ExclusionFlow) -> SequentialResult | None:
    """``config``'s stopping rule on the participants ``flow`` keeps; None when the study declares none."""
    if config.primary is None or config.stopping is None:
        return None
    d = participant_differences(tidy, flow.kept_ids, config.primary)
    return monitor(d, flow.kept, config.primary, config.stopping)


def study_config(make_session: sessionmaker[Session], study_id: int) -> StudyConfig:
    """The configuration stored with study ``study_id`` at build time."""
    with make_session() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise StudyUnavailable(f"no study with id {study_id}; `lookalike study list` shows this database's studies")
        return StudyConfig.from_dict(study.config)


def study_sequential(
    make_session: sessionmaker[Session], study_id: int, *, rules: ExclusionRules = DEFAULT_RULES
) -> SequentialResult | None:
    """The study's stopping rule applied to its analysed participants so far; None without a rule."""
    config = study_config(make_session, study_id)
    if config.stopping is None:
        return None
    tidy = tables(make_session, study_id)
    return sequential_of(config, tidy, apply_exclusions(tidy["participants"], rules))
