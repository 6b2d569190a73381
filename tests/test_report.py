"""The report (`lookalike report`, survey.analysis.report): JSON and HTML of a simulated study."""

from __future__ import annotations

from survey.analysis.simulate import ResponseModel, simulate
from survey.participants import service


def test_report_json_and_html_from_a_simulated_study(study_db, tmp_path, capsys):
    import json
    import time

    from survey.cli import main

    db_path, make_session, _ = study_db
    study = service.current_study(make_session)
    simulate(
        make_session,
        study.id,
        40,
        seed=11,
        model=ResponseModel(effects={"efficientnet/u2netp": 1.0, "ssim/u2netp": -1.0}, inattentive=0.1),
    )
    t0 = time.perf_counter()
    assert main(["report", "--db", str(db_path), "--out", str(tmp_path / "r.html"), "--json", "--n-boot", "500"]) == 0
    seconds = time.perf_counter() - t0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {c["condition"] for c in out["conditions"]} == {
        f"{m}/{s}" for m in ("ssim", "efficientnet") for s in ("none", "u2netp")
    }
    assert all(set(c) >= {"method", "segmenter", "n", "mean", "ci_low", "ci_high"} for c in out["conditions"])
    assert len(out["bradley_terry"]) == 4 and out["exclusions"]["started"] == 40
    assert out["exclusions"]["kept"] < 40  # inattentive raters failed checks and were excluded
    html = (tmp_path / "r.html").read_text()
    assert {p["condition"] for p in out["precision"]} == {c["condition"] for c in out["conditions"]}
    assert {a["protocol"] for a in out["agreement"]} == {"rating", "pairwise"}
    assert out["mixed_model"]["terms"][0]["term"] == "Intercept"
    for section in (
        "Participants",
        "Ratings (1-7)",
        "mixed model",
        "Precision@5",
        "Bradley-Terry",
        "Best-worst",
        "Agreement between participants",
        "objective retrieval",
        "per-rater z-scores",
        "Method &times; segmenter</h3>",
        "Rating distributions",
        "Wins, ties and losses",
        "Plackett-Luce strengths",
    ):
        assert section in html
    assert html.count("<img ") == 8  # flow, means, interaction, distributions, win rates, BT, PL, agreement
    assert {z["condition"] for z in out["zscored"]["conditions"]} == {c["condition"] for c in out["conditions"]}
    assert out["zscored"]["friedman"]["k"] == 4
    assert len(out["win_tie_loss"]) == 12 and all(
        w["n"] == w["wins"] + w["ties"] + w["losses"] for w in out["win_tie_loss"]
    )
    assert len(out["plackett_luce"]) == 4 and {e["rank"] for e in out["plackett_luce"]} >= {1}
    assert all(b["ci_low"] <= b["score"] <= b["ci_high"] for b in out["best_worst"])
    assert all(
        sum(d["counts"]) == c["n"]
        for d, c in zip(
            out["rating_distribution"], sorted(out["conditions"], key=lambda c: c["condition"]), strict=True
        )
    )
    assert seconds < 60, seconds  # a generous bound; the closing note reports the measured time
