"""SQLAlchemy 2.0 typed models.

Blinding lives in the schema: a :class:`Grid` knows its reference and items only; which
conditions produced it is in :class:`GridCondition`, a separate table that participant
code never reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[Mapping[object, type[TypeEngine[Any]] | TypeEngine[Any]]] = {
        dict[str, Any]: JSON,
        list[int]: JSON,
        list[float]: JSON,
        list[str]: JSON,
        list[bool]: JSON,
        datetime: DateTime(timezone=True),
    }


class Study(Base):
    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    catalog_root: Mapped[str] = mapped_column(Text)
    config: Mapped[dict[str, Any]]
    completion_code: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed


class CatalogItem(Base):
    __tablename__ = "catalog_items"
    __table_args__ = (UniqueConstraint("study_id", "item_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(300))
    path: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(200), index=True)
    group_name: Mapped[str | None] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: a reference of the researcher's protocols (rating, pairwise, ranking): drawn by the build
    is_reference: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: in its category's swipe pool: a swipe round may show it, and it may become the round's reference
    in_swipe_pool: Mapped[bool] = mapped_column(default=False, server_default=false())


class Condition(Base):
    __tablename__ = "conditions"
    __table_args__ = (UniqueConstraint("study_id", "method", "segmenter"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(100))
    segmenter: Mapped[str] = mapped_column(String(100))
    method_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    segmenter_params: Mapped[dict[str, Any]] = mapped_column(default=dict)

    @hybrid_property
    def label(self) -> str:
        """``method/segmenter``, the one name of a condition in analyses, exports and reports; also
        usable in a query (``select(Condition.label)``)."""
        return f"{self.method}/{self.segmenter}"

    @label.inplace.expression
    @classmethod
    def _label_expression(cls) -> ColumnElement[str]:
        return cls.method + "/" + cls.segmenter


class Grid(Base):
    """A blinded top-k list for one reference; ``id`` is an opaque random token.

    ``kind`` is 'condition' (made by one or more conditions, see GridCondition) or 'catch'
    (an attention check: products of another category, never analysed as a condition).
    """

    __tablename__ = "grids"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    reference_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id"), index=True)
    item_ids: Mapped[list[int]]  # catalog_items.id, best first
    kind: Mapped[str] = mapped_column(String(16), default="condition")


class GridCondition(Base):
    """The unblinding map, stored apart: which conditions produced which grid."""

    __tablename__ = "grid_conditions"
    grid_id: Mapped[str] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True)
    condition_id: Mapped[int] = mapped_column(ForeignKey("conditions.id", ondelete="CASCADE"), primary_key=True)
    scores: Mapped[list[float]]  # this condition's score for each grid item, in grid order


class Participant(Base):
    __tablename__ = "participants"
    #: one participant per platform id (e.g. PROLIFIC_PID) and study; NULLs (direct visitors) don't collide
    __table_args__ = (Index("uq_participants_study_external", "study_id", "external_id", unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(200), index=True)
    source: Mapped[str] = mapped_column(String(20), default="direct")
    url_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    consented_at: Mapped[datetime | None]
    instructions_done_at: Mapped[datetime | None]
    trials_done_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]  # after the optional questions: the code was shown
    #: active | completed | returned | timed_out | screened_out (survey.participants.lifecycle); each leaving
    #: transition has its own time below, ``completed_at`` the completion
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active", index=True)
    last_active_at: Mapped[datetime | None]  # consent, then every answer: what the time limit runs from
    returned_at: Mapped[datetime | None]  # pressed "stop and leave" and confirmed
    timed_out_at: Mapped[datetime | None]  # no answer for the study's time_limit_minutes
    screened_out_at: Mapped[datetime | None]  # failed the comprehension phase
    comprehension_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    comprehension_passed_at: Mapped[datetime | None]  # passed the comprehension phase (if the study has one)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)  # e.g. "failed_check:3", "too_fast:7"
    #: signals of an automated participant (survey/participants/bot_signals.py), e.g. "webdriver"
    bot_signals: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    answer_digest: Mapped[str | None] = mapped_column(String(64), index=True)  # hash of the answer sequence
    browser_test: Mapped[bool] = mapped_column(default=False, server_default=false())  # the project's own tests
    demographics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    comment: Mapped[str | None] = mapped_column(Text)


class Trial(Base):
    """One screen for one participant. ``grid_ids`` is the display order: [grid] for rating,
    [left, right] for pairwise, [set 1, ..., set n] for ranking. ``unit`` identifies what is
    judged (the same unit is never shown twice to one participant).

    A swipe trial is a round of several screens (its products are :class:`Swipe` rows): its
    ``reference_id`` is NULL until the participant has chosen the reference (for ever when the
    round ends without a like), its ``grid_ids`` are [] until then and [grid] after (plus the
    catch grid whose first product is the check, when ``with_check``)."""

    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("participant_id", "position"), UniqueConstraint("participant_id", "unit"))
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(20))
    reference_id: Mapped[int | None] = mapped_column(ForeignKey("catalog_items.id"), index=True)
    grid_ids: Mapped[list[str]] = mapped_column(JSON)
    unit: Mapped[str] = mapped_column(String(120), index=True)
    is_catch: Mapped[bool] = mapped_column(default=False)
    is_repeat: Mapped[bool] = mapped_column(default=False, server_default=false())  # a unit shown again (test-retest)
    with_check: Mapped[bool] = mapped_column(default=False, server_default=false())  # swipe: a check product inside
    shown_at: Mapped[datetime | None]


class UnitCount(Base):
    """Per unit (``Trial.unit``) of a study, attention checks and repeats not counted: ``trials``,
    the trials that count for balance, i.e. answered ones plus unanswered ones held by *active*
    participants (what the assignment reads to find the least-judged units, in one short query
    whatever the study's size); ``answered``, the answers stored. Kept by :mod:`survey.participants.planning`:
    added in the transaction (and under the study-row lock) that inserts the trials, decreased
    when a participant leaves (returned, timed out, screened out: their unanswered units go back
    to the pool), ``answered`` increased with each answer; so both always equal counting."""

    __tablename__ = "unit_counts"
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True)
    unit: Mapped[str] = mapped_column(String(120), primary_key=True)
    trials: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AdaptivePlan(Base):
    """What the adaptive choice of one participant's pairwise units saw (``pairwise_assignment =
    "adaptive"``, :func:`survey.participants.adaptive.choose_pairwise`), so that it can be replayed
    (:func:`survey.participants.adaptive.replay`): the generator's ``seed``, the ``floor``, the
    ``conditions`` (the order of the win matrix), the ``wins`` of the pairwise answers the fit used (row
    over column, ties half), the highest answer id among them (``last_response_id``; None: no answer
    yet) and the ``counts`` per unit key (answered or held) the choice read."""

    __tablename__ = "adaptive_plans"
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True)
    seed: Mapped[int] = mapped_column(Integer)
    floor: Mapped[int] = mapped_column(Integer)
    last_response_id: Mapped[int | None] = mapped_column(Integer)
    conditions: Mapped[list[str]] = mapped_column(JSON)
    wins: Mapped[list[list[float]]] = mapped_column(JSON)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)


class AdaptiveChoice(Base):
    """One pairwise unit chosen for a participant by the adaptive assignment, in the order chosen
    (``position`` 0, 1, ...; the trials' display order is drawn afterwards): ``phase`` "floor" (least
    judged, while a pair of conditions is below the floor) or "adaptive" (``gain``: the reduction of the
    summed variance of the log-strengths it was chosen for)."""

    __tablename__ = "adaptive_choices"
    __table_args__ = (CheckConstraint("phase IN ('floor', 'adaptive')", name="adaptive_phase_values"),)
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("adaptive_plans.participant_id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit: Mapped[str] = mapped_column(String(120))
    phase: Mapped[str] = mapped_column(String(8))
    gain: Mapped[float | None] = mapped_column(Float)


class Response(Base):
    """The answer to one trial (at most one: unique trial_id). Columns by protocol:
    rating -> ``rating`` (+ ``ticks``, one bool per grid item, when collected);
    pairwise -> ``choice`` ('left', 'right' or 'tie');
    ranking -> ``best``, ``worst`` (grid ids)."""

    __tablename__ = "responses"
    __table_args__ = (
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 7", name="rating_1_to_7"),
        CheckConstraint("choice IS NULL OR choice IN ('left', 'right', 'tie')", name="choice_values"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), unique=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), index=True)
    rating: Mapped[int | None] = mapped_column(Integer)
    ticks: Mapped[list[bool] | None] = mapped_column(JSON)
    choice: Mapped[str | None] = mapped_column(String(8))
    best: Mapped[str | None] = mapped_column(String(32))
    worst: Mapped[str | None] = mapped_column(String(32))
    response_ms: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Swipe(Base):
    """One product shown in a swipe round (:class:`Trial` of protocol ``swipe``) and its answer.

    ``phase``: ``choose`` (a product of the category's pool: like it to make it the reference),
    ``pick`` (with ``reference = "pick"``: the product picked among those liked; ``liked`` true) or
    ``judge`` (a product of the round's judged set: ``grid_id`` the set's grid, ``position`` its
    place 1..n in the set shown, ``is_check`` the attention-check product of another category).
    The row is written when the product is first shown, so a reload shows the same product;
    ``liked`` is NULL until answered, then set once."""

    __tablename__ = "swipes"
    __table_args__ = (
        UniqueConstraint("trial_id", "phase", "seq"),
        CheckConstraint("phase IN ('choose', 'pick', 'judge')", name="swipe_phase_values"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), index=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    phase: Mapped[str] = mapped_column(String(8))
    seq: Mapped[int] = mapped_column(Integer)  # 1-based, within the round's phase
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id"))
    grid_id: Mapped[str | None] = mapped_column(ForeignKey("grids.id"))
    position: Mapped[int | None] = mapped_column(Integer)
    is_check: Mapped[bool] = mapped_column(default=False, server_default=false())
    liked: Mapped[bool | None]
    shown_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    response_ms: Mapped[int | None]


class Segmentation(Base):
    """Per image and segmenter: how much of the photo the mask kept, and where the mask PNG is."""

    __tablename__ = "segmentations"
    __table_args__ = (UniqueConstraint("catalog_item_id", "segmenter"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    catalog_item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id", ondelete="CASCADE"))
    segmenter: Mapped[str] = mapped_column(String(100))
    coverage: Mapped[float]
    found: Mapped[bool]  # False: nothing detected, the whole photo was used
    mask_path: Mapped[str | None] = mapped_column(Text)


class ObjectiveMetric(Base):
    """A condition's retrieval quality against the catalog's ``group`` ground truth."""

    __tablename__ = "objective_metrics"
    condition_id: Mapped[int] = mapped_column(ForeignKey("conditions.id", ondelete="CASCADE"), primary_key=True)
    recall_at_1: Mapped[float]
    recall_at_5: Mapped[float]
    mean_average_precision: Mapped[float]
    queries: Mapped[int]


class ProlificSync(Base):
    """One reconciliation of a study with its Prolific submissions (``lookalike prolific sync``, or
    ``serve --prolific-sync-minutes``): when, by whom, what Prolific listed, whom it released here,
    and what did not match. ``ok`` false: the API could not be read (``error`` says why) and nothing
    in the study was changed."""

    __tablename__ = "prolific_syncs"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    prolific_study_id: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(100))
    ok: Mapped[bool]
    error: Mapped[str | None] = mapped_column(Text)
    submissions: Mapped[int] = mapped_column(Integer, default=0)
    #: submissions per Prolific status, e.g. {"ACTIVE": 3, "RETURNED": 1}
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: participants this sync moved out of ``active``: [{"pid", "status", "at"}]
    released: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: what did not match: [{"kind", "pid", "detail"}]
    mismatches: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class ProlificAction(Base):
    """One call that changes something on Prolific (approve, reject): who asked, when, what was
    sent (never the token) and what the API answered (``status_code`` NULL: no answer came)."""

    __tablename__ = "prolific_actions"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(16))  # APPROVE | REJECT
    submission_id: Mapped[str] = mapped_column(String(64))
    participant_pid: Mapped[str | None] = mapped_column(String(200))
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status_code: Mapped[int | None] = mapped_column(Integer)
    answer: Mapped[str] = mapped_column(Text)
    ok: Mapped[bool]


class AdminSignIn(Base):
    """One attempt to sign in to the admin page or to open its preview link, whatever came of it:
    ``success``, ``failure`` (a wrong password or link) or ``refused`` (not evaluated: the browser
    session or the client address was waiting out a back-off or a lock-out). The limiter counts the
    rows of every app process (survey/study/sign_ins.py); the password is never stored."""

    __tablename__ = "admin_sign_ins"
    __table_args__ = (
        CheckConstraint("outcome IN ('success', 'failure', 'refused')", name="admin_sign_in_outcome_values"),
        CheckConstraint("target IN ('admin', 'preview')", name="admin_sign_in_target_values"),
        Index("ix_admin_sign_ins_address_at", "address", "attempted_at"),
        Index("ix_admin_sign_ins_browser_session_at", "browser_session", "attempted_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    attempted_at: Mapped[datetime]
    address: Mapped[str] = mapped_column(String(64))  # the client's address, "local" for this machine
    browser_session: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(8))  # admin | preview
    outcome: Mapped[str] = mapped_column(String(8))  # success | failure | refused
