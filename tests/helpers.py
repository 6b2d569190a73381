"""Plain helpers the test modules share (tests/conftest.py keeps only fixtures and hooks)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(sub: str) -> Path:
    """Real photos in ../shared/data (never copied into the repo)."""
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests read real photos from ../shared/data beside the checkout")
    return path


#: The demo study's four conditions (method/segmenter), for simulated designs.
CONDITIONS = ["efficientnet/none", "efficientnet/u2netp", "ssim/none", "ssim/u2netp"]


def expected_rating(effect: float, model) -> float:
    """E[rating] under the simulate response model: latent + bias ~ N(effect, noise^2 + bias^2), rating =
    round(4 + 1.5 x) clipped to 1..7, so P(rating <= k) = Phi(((k + 0.5 - 4) / 1.5 - effect) / s)."""
    import numpy as np
    from scipy import stats

    s = np.hypot(model.noise_sd, model.bias_sd)
    cdf = stats.norm.cdf(((np.arange(1, 7) + 0.5 - 4) / 1.5 - effect) / s)
    return float(7 - cdf.sum())


def synthetic_design(
    conditions: list[str],
    references: int,
    trials_per_participant: int,
    protocols: tuple[str, ...] = ("rating", "pairwise", "ranking"),
):
    """A simulation design without a database: every condition its own grid for each of ``references``
    references (no shared grids), no attention checks."""
    import pandas as pd

    from survey.analysis.simulate import Design

    rows = [
        {
            "grid": f"g{r}-{i}",
            "reference": f"r{r}",
            "method": c.split("/")[0],
            "segmenter": c.split("/", 1)[1] if "/" in c else "",
            "condition": c,
        }
        for r in range(references)
        for i, c in enumerate(conditions)
    ]
    return Design(pd.DataFrame(rows), trials_per_participant, protocols)


def answer_all(
    make_session, token: str, rng, *, fail_checks: bool = False, finish: bool = True, like_first: bool = False
) -> None:
    """Answer every trial of a consented participant through the service (any protocol), then,
    with ``finish``, the closing questions (left unanswered). ``like_first``: a swipe round's
    first product is liked (every round judges a set)."""
    from survey.participants import service

    service.finish_instructions(make_session, token)
    while (st := service.participant_state(make_session, token)).stage == "trial":
        t = st.trial
        if t.swipe is not None:
            first = like_first and t.swipe.phase == "choose"
            answer_swipe(make_session, token, t, rng, fail_checks=fail_checks, like=1.0 if first else 0.5)
            continue
        service.mark_shown(make_session, token, t.trial_id)
        if t.protocol == "rating":
            service.submit_rating(make_session, token, t.trial_id, 7 if fail_checks else int(rng.integers(1, 8)))
        elif t.protocol == "pairwise":
            service.submit_pairwise(make_session, token, t.trial_id, str(rng.choice(["left", "right", "tie"])))
        else:
            service.submit_ranking(make_session, token, t.trial_id, 0, len(t.grids) - 1)
    if finish and st.stage == "questions":
        service.submit_questions(make_session, token, {}, None)


def answer_swipe(make_session, token: str, t, rng, *, fail_checks: bool = False, like: float = 0.5) -> None:
    """Answer the screen a swipe round shows now (``t.swipe``): like each product with probability
    ``like`` (checks too with ``fail_checks``), pick the first product liked, rate a set 4."""
    from survey.participants import service

    screen = t.swipe
    if screen.phase in ("choose", "judge"):
        service.submit_swipe(make_session, token, screen.swipe_id, bool(fail_checks or rng.random() < like))
    elif screen.phase == "pick":
        service.submit_pick(make_session, token, t.trial_id, 0)
    else:
        service.submit_set_rating(make_session, token, t.trial_id, 4)


def built_study_config(small_catalog):
    """The configuration of the shared study (conftest.built_study and pg_built_study)."""
    from survey.study.config import Question, StudyConfig

    return StudyConfig(
        name="t",
        catalog=str(small_catalog),
        references_per_category=2,
        reference_filter={"view": "packshot"},
        seed=1,
        protocols=("rating", "pairwise", "ranking"),
        trials_per_participant=4,
        rating_item_ticks=True,
        attention_check_rate=0.25,
        completion_code="DONE42",
        redirect_url="https://example.org/complete?cc=DONE42",
        demographics=(Question("age", "Your age group", ("18-29", "30-49", "50+")),),
    )


def build_tiny_study(make_session, catalog: Path, cache_dir: Path, name: str = "tiny", **overrides):
    """A quick study on ``catalog`` (conftest.tiny_study): SSIM on raw photos (no weights), one
    reference per category; keyword arguments override any StudyConfig field. Returns its StudyInfo."""
    from survey.participants import service
    from survey.study.build import build_study
    from survey.study.config import Component, StudyConfig

    fields = {
        "methods": (Component("ssim"),),
        "segmenters": (Component("none"),),
        "references_per_category": 1,
        **overrides,
    }
    build_study(
        make_session, StudyConfig(name=name, catalog=str(catalog), **fields), cache_dir=cache_dir, progress=False
    )
    return service.current_study(make_session, name)


def sqlite_copy(built_study, tmp_path) -> str:
    """A private copy of the built SQLite study in ``tmp_path``; its URL."""
    import sqlite3

    src_path, _ = built_study
    dst_path = tmp_path / "copy.db"
    src, dst = sqlite3.connect(src_path), sqlite3.connect(dst_path)
    src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{dst_path}"


def catalog_subset(manifest: Path, out_dir: Path, categories: int = 1) -> Path:
    """A manifest in ``out_dir`` of the first ``categories`` categories of ``manifest`` (the same photos,
    by absolute path): a smaller real catalog for tests of a build's logic rather than its models."""
    import csv

    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    keep = list(dict.fromkeys(r["category"] for r in rows))[:categories]
    out = out_dir / "manifest.csv"
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            {**r, "file": str((manifest.parent / r["file"]).resolve())} for r in rows if r["category"] in keep
        )
    return out


def offline_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """The environment every test runs in: caches, thumbnails and image stores go to ``home`` (a folder
    of this test run, never ~/.cache/lookalike; tests that need their own set LOOKALIKE_HOME again),
    nothing is downloaded (test_weights unsets LOOKALIKE_OFFLINE explicitly), no usage statistics."""
    monkeypatch.setenv("LOOKALIKE_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "1")
    monkeypatch.setenv("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    monkeypatch.delenv("LOOKALIKE_STUDY", raising=False)
    monkeypatch.delenv("PROLIFIC_TOKEN", raising=False)  # a real token never reaches a test
    monkeypatch.delenv("LOOKALIKE_PROLIFIC_API", raising=False)
