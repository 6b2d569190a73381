"""Study build: catalog -> every condition's top-k per reference -> blinded grids in the DB."""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import CatalogItem, Condition, Grid, GridCondition, ObjectiveMetric, Segmentation, Study
from similarity.catalogs.catalog import Catalog, Item, Skipped, fetch_and_load, load_catalog
from similarity.catalogs.fetch import ImageStore
from similarity.conditions import ConditionOutput, compute_conditions
from similarity.errors import UserError
from similarity.evaluation.evaluate import RetrievalMetrics
from similarity.execution.cache import Cache
from similarity.execution.executors import Executor
from similarity.execution.pipeline import MaskInfo
from similarity.methods import Method, create_method
from similarity.segmenters import Segmenter, create_segmenter
from survey import protocols as protocol_registry
from survey.study import media
from survey.study.config import ConfigError, StudyConfig, check_components


class StudyExists(UserError, RuntimeError):
    """A study of that name is already built; the message says how to rebuild it or choose another name."""


@dataclass(frozen=True)
class BuildResult:
    study_id: int
    name: str
    conditions: int
    references: int  # of the grid protocols (rating, pairwise, ranking)
    grids: int
    skipped: tuple[Skipped, ...]
    not_segmented: dict[str, list[str]] = field(default_factory=dict)  # segmenter -> item_ids kept whole
    seconds: float = 0.0
    # where the time went: loading (and checking) the catalog, masks + features, searching
    load_seconds: float = 0.0
    feature_seconds: float = 0.0
    search_seconds: float = 0.0
    swipe_pool: int = 0  # products swipe rounds can show and make their reference (every category)


def pick_references(
    catalog: Catalog, config: StudyConfig, rng: np.random.Generator, per_category: int | None = None
) -> list[Item]:
    """``per_category`` (default ``references_per_category``) items per category, matching
    ``reference_filter``, drawn with ``rng``."""
    refs: list[Item] = []
    for category in catalog.categories:
        pool = [
            it
            for it in catalog.in_category(category)
            if all(it.meta.get(k) == v for k, v in config.reference_filter.items())
        ]
        if len(catalog.in_category(category)) <= config.k:
            raise ConfigError(
                f"k: category '{category}' has {len(catalog.in_category(category))} items; "
                f"top-{config.k} needs more than {config.k}: lower k or add products to it"
            )
        if not pool:
            raise ConfigError(
                f"reference_filter: no item of category '{category}' matches "
                f"{config.reference_filter}; change the filter or the manifest"
            )
        n = min(config.references_per_category if per_category is None else per_category, len(pool))
        refs.extend(pool[i] for i in sorted(rng.choice(len(pool), size=n, replace=False)))
    return refs


@dataclass(frozen=True)
class Queries:
    """The products the build computes top-k lists for: the researcher's ``references`` (for the
    grid protocols) and each category's swipe ``pool`` (for swipe rounds, which may make any of
    them a reference). A product in both gets one grid per condition."""

    references: list[Item]
    pool: list[Item]

    @property
    def all(self) -> list[Item]:
        seen = {it.item_id for it in self.references}
        return self.references + [it for it in self.pool if it.item_id not in seen]


def pick_queries(catalog: Catalog, config: StudyConfig) -> Queries:
    """The references (``references_per_category``, drawn with the seed) when the study uses a grid
    protocol, and the swipe pool (``swipe_pool_per_category``, filtered like references, drawn with
    its own stream of the seed) when it uses swipe rounds."""
    grid_protocols = any(not protocol_registry.get_protocol(p).rounds for p in config.protocols)
    rounds = any(protocol_registry.get_protocol(p).rounds for p in config.protocols)
    references = pick_references(catalog, config, np.random.default_rng(config.seed)) if grid_protocols else []
    pool = (
        pick_references(catalog, config, np.random.default_rng([config.seed, 2]), config.swipe_pool_per_category)
        if rounds
        else []
    )
    return Queries(references, pool)


def build_study(
    make_session: sessionmaker[Session],
    config: StudyConfig,
    *,
    replace: bool = False,
    cache_dir: Path | None = None,
    progress: bool = True,
    offline: bool = True,
    executor: Executor | None = None,
    feed: str = "manifest",
    image_store: Path | None = None,
    media_dir: Path | None = None,
) -> BuildResult:
    """Build ``config`` into the database.

    Every method and segmenter is checked against the registries (names and options) before
    any work, then constructed before any image is read, so a typo or missing weights fail
    fast. Weights are downloaded (announced) only with ``offline=False``.

    With ``cache_dir``, masks and features are kept there (see :mod:`similarity.execution.cache`), so
    a rebuild -- or a build resumed after being killed -- computes only what is new. The
    study itself is written in one transaction at the end: an interrupted build leaves no
    half-built study behind.

    With ``media_dir``, the thumbnails the participant page shows are rendered there (see
    :mod:`survey.study.media`); without it they are rendered when first shown.

    ``feed`` is the catalog's format (``manifest`` or ``merchant``); with ``image_store`` its
    image URLs are fetched there first (see :mod:`similarity.catalogs.fetch`). ``executor`` runs the
    models elsewhere (:mod:`similarity.execution.executors`; default: this process).
    """
    started = time.perf_counter()
    check_components(config.methods, config.segmenters)
    replaced_id = _study_to_replace(make_session, config.name, replace=replace)
    t_load = time.perf_counter()
    catalog = _load(config, feed=feed, image_store=image_store, progress=progress)
    load_seconds = time.perf_counter() - t_load
    methods, segmenters = _construct(config, offline=offline)
    queries = pick_queries(catalog, config)
    cache = Cache(cache_dir) if cache_dir is not None else None
    computed = _compute(catalog, queries.all, methods, segmenters, config, cache, progress, executor)
    written = _write_study(make_session, config, catalog, queries, methods, segmenters, computed, cache, replaced_id)
    if media_dir is not None:
        with make_session() as s:
            media.build_thumbnails(media_dir, media.study_photos(s, written.study_id))
    return BuildResult(
        study_id=written.study_id,
        name=config.name,
        conditions=written.conditions,
        references=len(queries.references),
        swipe_pool=len(queries.pool),
        grids=written.grids,
        skipped=catalog.skipped,
        not_segmented=computed.not_segmented(),
        seconds=time.perf_counter() - started,
        load_seconds=load_seconds,
        feature_seconds=computed.feature_seconds,
        search_seconds=computed.search_seconds,
    )


def _study_to_replace(make_session: sessionmaker[Session], name: str, *, replace: bool) -> int | None:
    """The id of the study already named ``name`` (None: there is none); raises :class:`StudyExists`
    when there is one and ``replace`` is off."""
    with make_session() as s:
        existing = s.scalar(select(Study.id).where(Study.name == name))
    if existing is not None and not replace:
        raise StudyExists(
            f"a study named '{name}' already exists in this database; "
            "choose another name, or pass --replace to rebuild it (its answers are deleted)"
        )
    return existing


def _load(config: StudyConfig, *, feed: str, image_store: Path | None, progress: bool) -> Catalog:
    """The study's catalog, checked; with ``image_store``, its product-feed URLs are fetched there
    first (only those not yet stored)."""
    if image_store is not None:
        catalog, _ = fetch_and_load(config.catalog, images=ImageStore(image_store), feed=feed, progress=progress)
        return catalog
    return load_catalog(config.catalog, progress=progress, feed=feed)


@dataclass(frozen=True)
class _Computed:
    """Every condition's output (top-k per reference, metrics) and each segmenter's masks, with the
    seconds spent computing features (masks and embeddings) and searching."""

    outputs: dict[tuple[str, str], ConditionOutput]
    masks: dict[str, dict[str, MaskInfo]]
    feature_seconds: float
    search_seconds: float

    def not_segmented(self) -> dict[str, list[str]]:
        """Per segmenter that found no object in some items, those items' ids (they are kept whole)."""
        not_found = {seg: [i for i, info in res.items() if not info.found] for seg, res in self.masks.items()}
        return {k: v for k, v in not_found.items() if v}


def _construct(config: StudyConfig, *, offline: bool) -> tuple[list[Method], list[Segmenter]]:
    """Every method and segmenter of the study, constructed before any work so that missing weights fail fast."""
    methods = [create_method(c.name, offline=offline, **c.options) for c in config.methods]
    segmenters = [create_segmenter(c.name, offline=offline, **c.options) for c in config.segmenters]
    return methods, segmenters


def _compute(
    catalog: Catalog,
    references: list[Item],
    methods: list[Method],
    segmenters: list[Segmenter],
    config: StudyConfig,
    cache: Cache | None,
    progress: bool,
    executor: Executor | None,
) -> _Computed:
    """Run every condition over the catalog (:func:`compute_conditions`) and time its two parts."""
    t_conditions = time.perf_counter()
    outputs, masks = compute_conditions(
        catalog,
        references,
        methods,
        segmenters,
        k=config.k,
        cache=cache,
        progress=progress,
        executor=executor,
        metric_queries=config.metric_queries_per_category,
        seed=config.seed,
    )
    search_seconds = sum(o.search_seconds for o in outputs.values())
    feature_seconds = time.perf_counter() - t_conditions - search_seconds
    return _Computed(outputs, masks, feature_seconds, search_seconds)


@dataclass(frozen=True)
class _Written:
    """What :func:`_write_study` stored: the new study's id and how many conditions and condition grids."""

    study_id: int
    conditions: int
    grids: int


def _write_study(
    make_session: sessionmaker[Session],
    config: StudyConfig,
    catalog: Catalog,
    queries: Queries,
    methods: list[Method],
    segmenters: list[Segmenter],
    computed: _Computed,
    cache: Cache | None,
    replaced_id: int | None,
) -> _Written:
    """Store the study in one transaction: the study row (replacing ``replaced_id`` and, by cascade,
    all it had), its catalog, conditions, condition and attention-check grids, and segmentations."""
    with make_session.begin() as s:
        if replaced_id is not None:
            s.execute(delete(Study).where(Study.id == replaced_id))  # cascades in the database
        study = Study(
            name=config.name,
            catalog_root=str(catalog.root),
            config=config.to_dict(),
            completion_code=config.completion_code or secrets.token_hex(4).upper(),
        )
        s.add(study)
        s.flush()
        rows = _add_catalog(s, study.id, catalog, queries)
        conditions = _add_conditions(s, study.id, methods, segmenters)
        grids = _add_condition_grids(s, study.id, computed.outputs, conditions, rows)
        _add_catch_grids(s, study.id, config, catalog, queries.all, rows)
        _add_segmentations(s, study.id, segmenters, computed.masks, cache, rows)
        return _Written(study.id, len(conditions), grids)


def _add_catalog(s: Session, study_id: int, catalog: Catalog, queries: Queries) -> dict[str, CatalogItem]:
    """One row per catalog item, the references and the swipe pool marked; returns them by item_id
    (their ids are set at the next flush)."""
    references = {it.item_id for it in queries.references}
    pool = {it.item_id for it in queries.pool}
    rows = {
        it.item_id: CatalogItem(
            study_id=study_id,
            item_id=it.item_id,
            path=str(it.path),
            category=it.category,
            group_name=it.group,
            sha256=it.sha256,
            meta=it.meta,
            is_reference=it.item_id in references,
            in_swipe_pool=it.item_id in pool,
        )
        for it in catalog.items
    }
    s.add_all(rows.values())
    return rows


def _add_conditions(
    s: Session, study_id: int, methods: list[Method], segmenters: list[Segmenter]
) -> dict[tuple[str, str], Condition]:
    """One row per method x segmenter, keyed by their names, flushed (ids set)."""
    conditions = {
        (m.name, g.name): Condition(
            study_id=study_id,
            method=m.name,
            segmenter=g.name,
            method_params=m.params(),
            segmenter_params=g.params(),
        )
        for m in methods
        for g in segmenters
    }
    s.add_all(conditions.values())
    s.flush()
    return conditions


def _add_condition_grids(
    s: Session,
    study_id: int,
    outputs: dict[tuple[str, str], ConditionOutput],
    conditions: dict[tuple[str, str], Condition],
    rows: dict[str, CatalogItem],
) -> int:
    """Each condition's retrieval metrics and its top-k per reference as grids; returns the number of grids.

    Conditions whose top-k holds the same products for a reference share one grid (shown in the
    order of the first condition that produced it); each condition keeps its own scores for it."""
    grids: dict[tuple[str, frozenset[str]], Grid] = {}
    order: dict[str, list[str]] = {}
    for key, output in outputs.items():
        if output.metrics is not None and output.metrics.queries:
            _add_metrics(s, conditions[key].id, output.metrics)
        for top in output.rankings:
            gkey = (top.reference, frozenset(top.item_ids))
            if gkey not in grids:
                grids[gkey] = Grid(
                    id=secrets.token_hex(8),
                    study_id=study_id,
                    reference_id=rows[top.reference].id,
                    item_ids=[rows[i].id for i in top.item_ids],
                    kind="condition",
                )
                order[grids[gkey].id] = list(top.item_ids)
                s.add(grids[gkey])
                s.flush()
            grid = grids[gkey]
            score_of = dict(zip(top.item_ids, top.scores, strict=True))
            s.add(
                GridCondition(
                    grid_id=grid.id, condition_id=conditions[key].id, scores=[score_of[i] for i in order[grid.id]]
                )
            )
    return len(grids)


def _add_metrics(s: Session, condition_id: int, metrics: RetrievalMetrics) -> None:
    """A condition's objective retrieval metrics (recall@1, recall@5, mAP over its queries): the
    fields of ``metrics`` are the table's columns."""
    s.add(ObjectiveMetric(condition_id=condition_id, **asdict(metrics)))


def _add_catch_grids(
    s: Session,
    study_id: int,
    config: StudyConfig,
    catalog: Catalog,
    references: list[Item],
    rows: dict[str, CatalogItem],
) -> None:
    """Attention-check grids: for each reference, ``k`` products of other categories (seeded)."""
    catch_rng = np.random.default_rng([config.seed, 1])
    for ref in references:
        others = [it for it in catalog.items if it.category != ref.category]
        if len(others) >= config.k:
            pick = catch_rng.choice(len(others), size=config.k, replace=False)
            s.add(
                Grid(
                    id=secrets.token_hex(8),
                    study_id=study_id,
                    reference_id=rows[ref.item_id].id,
                    item_ids=[rows[others[i].item_id].id for i in pick],
                    kind="catch",
                )
            )


def _add_segmentations(
    s: Session,
    study_id: int,
    segmenters: list[Segmenter],
    masks: dict[str, dict[str, MaskInfo]],
    cache: Cache | None,
    rows: dict[str, CatalogItem],
) -> None:
    """Each segmenter's mask per item: coverage, whether an object was found, and the cached mask file."""
    for seg in segmenters:
        for item_id, info in masks[seg.name].items():
            mask_path = cache.mask_path(seg.identity(), rows[item_id].sha256) if cache and not seg.trivial else None
            s.add(
                Segmentation(
                    study_id=study_id,
                    catalog_item_id=rows[item_id].id,
                    segmenter=seg.name,
                    coverage=info.coverage,
                    found=info.found,
                    mask_path=str(mask_path) if mask_path else None,
                )
            )
