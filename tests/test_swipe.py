"""The swipe protocol through the participant service: the build's pool, the rounds a participant
gets, every swipe stored once, the choose / pick / judge / rate screens, checks, and the export."""

from __future__ import annotations

import html
from collections import Counter

import numpy as np
import pytest
from sqlalchemy import select

from db.models import CatalogItem, Grid, GridCondition, Participant, Response, Swipe, Trial
from survey.participants import service
from survey.study.config import Component, ConfigError, StudyConfig
from survey.study.export import tables
from tests.helpers import answer_all

SWIPE = {"protocols": ("swipe",), "swipe_pool_per_category": 6}


def _start(make_session, study, seed: int = 0) -> str:
    token = service.start_participant(make_session, study.id, {}, np.random.default_rng(seed))
    service.finish_instructions(make_session, token)
    return token


def _screen(make_session, token):
    st = service.participant_state(make_session, token)
    assert st.stage == "trial" and st.trial.protocol == "swipe", st.stage
    return st.trial


def test_every_swipe_key_has_a_default_and_bad_ones_are_named():
    config = StudyConfig(name="s", catalog="c.csv", protocols=("swipe",))
    assert (config.swipe_pool_per_category, config.swipe_max_swipes, config.swipe_reference) == (12, 10, "first_like")
    with pytest.raises(ConfigError, match="swipe.reference"):
        StudyConfig(name="s", catalog="c.csv", protocols=("swipe",), swipe_reference="last")
    with pytest.raises(ConfigError, match="swipe.max_swipes"):
        StudyConfig(name="s", catalog="c.csv", protocols=("swipe",), swipe_max_swipes=0)


def test_the_build_gives_every_pool_product_a_grid_and_a_catch_grid(tiny_study):
    _, make_session, study = tiny_study("pool", **SWIPE)
    with make_session() as s:
        items = s.scalars(select(CatalogItem).where(CatalogItem.study_id == study.id)).all()
        pool = [it for it in items if it.in_swipe_pool]
        assert Counter(it.category for it in pool) == {c: 6 for c in {it.category for it in items}}
        assert all(it.meta.get("view") is not None for it in pool)
        assert not any(it.is_reference for it in items)  # no grid protocol: no researcher references
        kinds = Counter((g.reference_id, g.kind) for g in s.scalars(select(Grid).where(Grid.study_id == study.id)))
        assert all(kinds[(it.id, "condition")] == 1 and kinds[(it.id, "catch")] == 1 for it in pool)


def test_a_round_chooses_the_first_liked_product_then_judges_its_set_once_each(tiny_study):
    _, make_session, study = tiny_study("flow", **SWIPE)
    token = _start(make_session, study)
    first = _screen(make_session, token)
    assert first.swipe.phase == "choose" and first.swipe.shown == 1
    assert _screen(make_session, token).swipe.swipe_id == first.swipe.swipe_id  # a reload shows the same product
    assert service.submit_swipe(make_session, token, first.swipe.swipe_id, False)
    assert not service.submit_swipe(make_session, token, first.swipe.swipe_id, True)  # answered once
    second = _screen(make_session, token)
    assert second.swipe.phase == "choose" and second.swipe.product_path != first.swipe.product_path
    assert service.submit_swipe(make_session, token, second.swipe.swipe_id, True)  # the reference
    judged = []
    while (t := _screen(make_session, token)).trial_id == first.trial_id:
        assert t.swipe.phase == "judge" and t.swipe.reference_path == second.swipe.product_path
        assert t.swipe.product_path == t.swipe.set_paths[t.swipe.position - 1]
        judged.append(t.swipe.position)
        assert service.submit_swipe(make_session, token, t.swipe.swipe_id, len(judged) % 2 == 0)
    assert judged == [1, 2, 3, 4, 5]
    with make_session() as s:
        round1 = s.get(Trial, first.trial_id)
        assert round1.reference_id is not None and len(round1.grid_ids) == 1
        assert s.scalar(select(Response).where(Response.trial_id == round1.id)).rating is None
        rows = s.scalars(select(Swipe).where(Swipe.trial_id == round1.id)).all()
        assert [(r.phase, r.liked) for r in rows].count(("choose", True)) == 1 and len(rows) == 7
        assert all(r.answered_at is not None and r.response_ms is not None for r in rows)


def test_a_round_without_a_like_ends_after_max_swipes(tiny_study):
    _, make_session, study = tiny_study("nolike", swipe_max_swipes=3, **SWIPE)
    token = _start(make_session, study)
    first = _screen(make_session, token)
    for _ in range(3):
        t = _screen(make_session, token)
        assert t.trial_id == first.trial_id and t.swipe.phase == "choose"
        service.submit_swipe(make_session, token, t.swipe.swipe_id, False)
    assert _screen(make_session, token).trial_id != first.trial_id
    rounds = tables(make_session, study.id)["swipe_rounds"]
    row = rounds[rounds["round"] == 1].iloc[0]
    assert row["outcome"] == "no_like" and row["choose_swipes"] == 3 and row["reference"] is None


def test_pick_mode_picks_among_the_liked_and_rate_mode_rates_the_set(tiny_study):
    config = {**SWIPE, "swipe_reference": "pick", "swipe_pick_after": 2, "swipe_rate_similarity": True}
    _, make_session, study = tiny_study("pick", **config)
    token = _start(make_session, study)
    liked = []
    while (t := _screen(make_session, token)).swipe.phase == "choose":
        liked.append(t.swipe.product_path)
        service.submit_swipe(make_session, token, t.swipe.swipe_id, True)
    assert t.swipe.phase == "pick" and list(t.swipe.liked_paths) == liked and len(liked) == 2
    with pytest.raises(ValueError, match="from 1 to 2"):
        service.submit_pick(make_session, token, t.trial_id, 2)
    assert service.submit_pick(make_session, token, t.trial_id, 1)
    assert not service.submit_pick(make_session, token, t.trial_id, 0)  # picked once
    with pytest.raises(ValueError, match="after each of its products"):
        service.submit_set_rating(make_session, token, t.trial_id, 5)
    while (j := _screen(make_session, token)).swipe.phase == "judge":
        assert j.swipe.reference_path == liked[1]
        service.submit_swipe(make_session, token, j.swipe.swipe_id, True)
    assert j.swipe.phase == "rate" and j.trial_id == t.trial_id
    assert service.submit_set_rating(make_session, token, t.trial_id, 6)
    rounds = tables(make_session, study.id)["swipe_rounds"]
    assert rounds.iloc[0]["rating"] == 6 and rounds.iloc[0]["outcome"] == "judged"


def test_liking_the_check_product_flags_the_participant(tiny_study):
    _, make_session, study = tiny_study("check", attention_check_rate=0.5, **SWIPE)
    token = _start(make_session, study)
    answer_all(make_session, token, np.random.default_rng(0), fail_checks=True)
    swipes = tables(make_session, study.id)["swipes"]
    checks = swipes[swipes["is_check"]]
    assert len(checks) == 2 and checks["liked"].all()  # ceil(0.5 x 4 rounds) judged sets with a check
    sizes = swipes[swipes["phase"] == "judge"].groupby("round").size()
    assert checks["condition"].isna().all() and sorted(sizes) == [5, 5, 6, 6]  # the check is one more product
    with make_session() as s:
        flags = s.scalar(select(Participant.flags).where(Participant.token == token))
    assert sum(f.startswith("failed_check:") for f in flags) == 2


def test_rounds_balance_conditions_within_and_across_participants(tiny_study):
    _, make_session, study = tiny_study(
        "balance", segmenters=(Component("none"), Component("u2netp")), **SWIPE
    )  # 2 conditions x 4 categories
    arms: Counter[str] = Counter()
    for k in range(4):
        token = _start(make_session, study, seed=k)
        with make_session() as s:
            pid = s.scalar(select(Participant.id).where(Participant.token == token))
            units = s.scalars(select(Trial.unit).where(Trial.participant_id == pid)).all()
        labels = Counter(u.rsplit(":", 1)[1] for u in units)
        assert len(units) == 4 and len({u.split(":")[1] for u in units}) == 4  # one round per category
        assert sorted(labels.values()) == [2, 2]  # each condition equally often
        arms.update(units)
    assert len(arms) == 8 and set(arms.values()) == {2}  # every arm as often as every other


def test_a_study_mixing_swipe_and_rating_serves_both_and_exports_each(tiny_study):
    _, make_session, study = tiny_study("mixed", protocols=("rating", "swipe"), trials_per_participant=2)
    token = _start(make_session, study)
    with make_session() as s:
        pid = s.scalar(select(Participant.id).where(Participant.token == token))
        protocols = s.scalars(select(Trial.protocol).where(Trial.participant_id == pid).order_by(Trial.position)).all()
        refs = s.scalars(select(CatalogItem).where(CatalogItem.is_reference)).all()
        made = s.scalars(select(GridCondition.grid_id)).all()
    assert protocols == ["rating", "rating", "swipe", "swipe"] and len(refs) == 4 and made
    answer_all(make_session, token, np.random.default_rng(1))
    out = tables(make_session, study.id)
    assert set(out["judgements"]["protocol"]) == {"rating"} and len(out["swipe_rounds"]) == 2
    assert out["participants"].iloc[0]["answers"] == 4
    judged = out["swipes"][(out["swipes"]["phase"] == "judge") & ~out["swipes"]["is_check"]]
    assert judged["condition"].notna().all() and judged["reference"].notna().all()


def test_simulated_swipe_study_reports_like_rates_base_rate_and_lift_that_the_export_recomputes(tiny_study):
    from survey.analysis.results import compute_results
    from survey.analysis.simulate import ResponseModel, simulate

    _, make_session, study = tiny_study("simulated", segmenters=(Component("none"), Component("u2netp")), **SWIPE)
    model = ResponseModel(effects={"ssim/u2netp": 1.5})
    simulate(make_session, study.id, 16, seed=3, model=model)
    results = compute_results(make_session, study.id, n_boot=200)
    swipe = results.swipe
    assert swipe is not None and sum(swipe.rounds.values()) == 16 * 4
    out = tables(make_session, study.id)["swipes"]
    judged = out[(out["phase"] == "judge") & ~out["is_check"]]
    by_hand = judged.groupby("condition")["liked"].mean()
    rates = {r.condition: r.rate for r in swipe.like_rates.rates}
    assert rates == pytest.approx(by_hand.to_dict())
    assert rates["ssim/u2netp"] > rates["ssim/none"]  # the simulated effect is recovered
    chosen = out[out["phase"] == "choose"]
    assert swipe.base_rate.rate == pytest.approx(chosen["liked"].mean())  # likes / swipes pooled
    lift = {x.condition: x.ratio for x in swipe.lifts.lifts}
    assert lift["ssim/none"] == pytest.approx(rates["ssim/none"] / swipe.base_rate.rate)
    assert swipe.model is not None and "condition" in swipe.model.formula
    recall = {o.condition: o.recall_at_5 for o in results.objective}
    assert set(recall) == set(rates) and swipe.objective is not None and swipe.objective.n == 2  # like vs recall@5
    assert results.to_json()["swipe"]["like_rates"]["rates"][0]["condition"] == "ssim/none"
    from survey.analysis.report import render_html

    page = render_html(results)
    assert "Swipe rounds" in page and f"{rates['ssim/u2netp']:.3f}" in page
    assert html.escape(swipe.model.formula) in page  # the formula fitted, as printed


def test_status_and_admin_progress_count_swipe_rounds(tiny_study):
    from survey.participants.status import format_status, refresh_status
    from survey.study.monitor import progress

    _, make_session, study = tiny_study("status", **SWIPE)
    for k in range(2):
        answer_all(make_session, _start(make_session, study, seed=k), np.random.default_rng(k), like_first=True)
    st = refresh_status(make_session, study.id)
    (swipe,) = st.protocols
    assert swipe.protocol == "swipe" and swipe.units == 4 and swipe.answered_min == swipe.answered_max == 2
    assert "swipe: 4 units" in format_status(st)
    judged = progress(make_session, study.id)
    assert set(judged["protocol"]) == {"swipe"} and judged["judgements"].sum() == 8  # every round judged a set


def test_power_of_a_swipe_study_grows_with_participants_and_stays_near_alpha_without_an_effect(tiny_study, capsys):
    from survey.analysis.swipe_power import swipe_design, swipe_power_curve
    from survey.cli import main

    db, make_session, study = tiny_study("power", segmenters=(Component("none"), Component("u2netp")), **SWIPE)
    design = swipe_design(make_session, study.id)
    assert (len(design.categories), design.conditions, design.k) == (4, ("ssim/none", "ssim/u2netp"), 5)
    effect = swipe_power_curve(design, [8, 40], shifts={"ssim/u2netp": 1.0}, reps=20, seed=1)
    small, large = effect.points
    assert large.model_power > small.model_power and large.model_power >= 0.8
    null = swipe_power_curve(design, [40], shifts={}, reps=40, seed=2).points[0]
    assert null.model_power <= 0.2 and null.pair_power <= 0.2  # about alpha (0.05): 40 studies, loose bound
    args = ["power", "--db", str(db), "--protocol", "swipe", "--effects", "ssim/u2netp=1.0", "--participants", "20"]
    assert main([*args, "--reps", "5"]) == 0
    assert "model power" in capsys.readouterr().out


def test_the_admin_page_shows_swipe_like_rates_once_unblinded(tiny_study, monkeypatch):
    from tests.apptest import admin_page

    db, make_session, study = tiny_study("admin", segmenters=(Component("none"), Component("u2netp")), **SWIPE)
    for k in range(3):
        answer_all(make_session, _start(make_session, study, seed=k), np.random.default_rng(k), like_first=True)
    at = admin_page(str(db), monkeypatch, "s3cret")
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    at.checkbox[0].check().run()
    assert at.exception == []
    table = next(d.value for d in at.dataframe if "like rate" in d.value.columns)
    assert set(table["condition"]) == {"ssim/none", "ssim/u2netp"} and table["products judged"].sum() == 3 * 4 * 5
    assert any("base rate of random products" in c.value for c in at.caption)


def test_a_preview_plays_swipe_rounds_in_its_sandbox_and_leaves_the_study_untouched(tiny_study):
    from survey.web.preview import sandbox

    _, make_session, study = tiny_study("preview", **SWIPE)
    copy = sandbox(make_session, study.id)
    token = _start(copy, study)
    answer_all(copy, token, np.random.default_rng(0), like_first=True)
    assert service.participant_state(copy, token).stage in ("questions", "done")
    assert len(tables(copy, study.id)["swipe_rounds"]) == 4
    with make_session() as s:
        assert s.scalar(select(Swipe.id)) is None  # nothing written to the real study
