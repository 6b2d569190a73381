"""Signals of automated participants (bots, scripted browsers, AI browser agents), stored with the
participant (``participants.bot_signals``), exported and shown on the admin page; never shown to the
participant and never blocking anyone: a signal is evidence for the researcher, and
``lookalike report --exclude-suspected-bots`` is the researcher's choice.

The signals (:data:`SIGNALS`): what the browser reports (``webdriver``: ``navigator.webdriver`` is
true, which WebDriver, Playwright and Puppeteer set; ``honeypot``: a field no person sees or reaches
was filled; ``early_answer``: an answer pressed before the screen's images had loaded) and what
the answers show once the trials are done (``constant_times``: response times of a regularity
no person produces; ``identical_answers``: the same answer sequence as another participant).

The project's own browser tests are recorded as ``browser_test`` (their browser carries the secret
the test server was started with, :attr:`survey.settings.Settings.browser_test_mark`) and get no
signal, so that a test study's data read like people's.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Participant, Response, Swipe, Trial
from survey.participants.records import participant

#: signal -> what triggers it (the README and the export's data dictionary use these words)
SIGNALS: dict[str, str] = {
    "webdriver": "the browser reported navigator.webdriver = true (WebDriver, Playwright, Puppeteer, Selenium)",
    "honeypot": "a form field that no person sees or reaches (off-screen, hidden from screen readers, "
    "out of the Tab order) was filled",
    "early_answer": "an answer was pressed before every image of the screen had loaded",
    "constant_times": "response times of near-constant length: coefficient of variation below "
    "0.10 over at least 8 answers (people's vary by 40-80 %)",
    "identical_answers": "the same sequence of at least 8 answers as another participant of the study",
}
#: the browser may report only these (anything else is refused, not stored)
BROWSER_SIGNALS = frozenset({"webdriver", "honeypot", "early_answer"})
MIN_ANSWERS = 8
MAX_TIME_CV = 0.10


def add(p: Participant, names: Iterable[str]) -> bool:
    """Add signals to ``p`` (once each, in a stable order); ``False`` for a browser-test participant."""
    if p.browser_test:
        return False
    unknown = set(names) - set(SIGNALS)
    if unknown:
        raise ValueError(f"unknown bot signal(s) {sorted(unknown)}; known: {', '.join(SIGNALS)}")
    p.bot_signals = sorted(set(p.bot_signals or []) | set(names))
    return True


def record_browser_signals(make_session: sessionmaker[Session], token: str, names: Iterable[str]) -> None:
    """Store what the participant's browser reported (a subset of :data:`BROWSER_SIGNALS`)."""
    names = set(names)
    if not names <= BROWSER_SIGNALS:
        raise ValueError(f"a browser may report only {sorted(BROWSER_SIGNALS)}, got {sorted(names)}")
    with make_session.begin() as s:
        p = participant(s, token)
        if p is None:
            raise PermissionError("unknown participant token")
        add(p, names)


def time_variation(times_ms: list[int]) -> float | None:
    """Coefficient of variation (sample SD / mean) of response times; ``None`` below
    :data:`MIN_ANSWERS` times."""
    if len(times_ms) < MIN_ANSWERS or statistics.fmean(times_ms) <= 0:
        return None
    return statistics.stdev(times_ms) / statistics.fmean(times_ms)


def _answer_sequence(s: Session, p: Participant) -> tuple[list[str], list[int]]:
    """The participant's answers in screen order as position-level tokens (nothing a grid id or a
    product names, so two participants' sequences compare across units) and their times."""
    rows = s.execute(
        select(Trial.position, Trial.protocol, Trial.grid_ids, Response.rating, Response.choice, Response.best,
               Response.worst, Response.response_ms)
        .join(Response, Response.trial_id == Trial.id)
        .where(Trial.participant_id == p.id)
    ).all()  # fmt: skip
    answers: list[tuple[int, int, str]] = []
    times = []
    for position, protocol, grids, rating, choice, best, worst, ms in rows:
        if rating is not None and choice is None and best is None:
            answers.append((position, 0, f"r{rating}"))
        elif choice is not None:
            answers.append((position, 0, f"c{choice}"))
        elif best is not None and worst is not None:
            answers.append((position, 0, f"b{grids.index(best)}w{grids.index(worst)}"))
        if ms is not None and protocol != "swipe":  # a round's own time spans its swipes: they count one by one
            times.append(ms)
    swipes = s.execute(
        select(Trial.position, Swipe.phase, Swipe.seq, Swipe.liked, Swipe.response_ms)
        .join(Trial, Trial.id == Swipe.trial_id)
        .where(Swipe.participant_id == p.id, Swipe.liked.is_not(None))
    ).all()
    for position, phase, seq, liked, ms in swipes:
        answers.append((position, seq + (1000 if phase == "judge" else 0), "L" if liked else "N"))
        if ms is not None:
            times.append(ms)
    return [a for *_, a in sorted(answers)], times


def check_answers(s: Session, p: Participant) -> None:
    """After the participant's last trial (in its transaction): near-constant response times, and
    an answer sequence identical to another participant's (both are flagged)."""
    if p.browser_test:
        return
    answers, times = _answer_sequence(s, p)
    cv = time_variation(times)
    if cv is not None and cv < MAX_TIME_CV:
        add(p, ["constant_times"])
    if len(answers) < MIN_ANSWERS:
        return
    p.answer_digest = hashlib.sha256(" ".join(answers).encode()).hexdigest()
    same = s.scalars(
        select(Participant).where(
            Participant.study_id == p.study_id,
            Participant.answer_digest == p.answer_digest,
            Participant.id != p.id,
            Participant.browser_test.is_(False),
        )
    ).all()
    for other in same:
        add(other, ["identical_answers"])
    if same:
        add(p, ["identical_answers"])
