"""Study build: catalog -> every condition's top-k per reference -> blinded grids in the DB."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from tqdm.auto import tqdm

from db.models import CatalogItem, Condition, Grid, GridCondition, Study
from similarity.catalog import Catalog, Item, Skipped, load_catalog
from similarity.images import load_rgb
from similarity.methods import Method, create_method
from similarity.search import TopK, rank_category
from similarity.segmenters import Segmenter, create_segmenter

from .config import StudyConfig


class StudyExists(RuntimeError):
    pass


@dataclass(frozen=True)
class BuildResult:
    study_id: int
    name: str
    conditions: int
    references: int
    grids: int
    skipped: tuple[Skipped, ...]
    not_segmented: dict[str, list[str]] = field(default_factory=dict)  # segmenter -> item_ids kept whole
    seconds: float = 0.0


def pick_references(catalog: Catalog, config: StudyConfig, rng: np.random.Generator) -> list[Item]:
    """``references_per_category`` items per category, matching ``reference_filter``, drawn with ``rng``."""
    refs: list[Item] = []
    for category in catalog.categories:
        pool = [it for it in catalog.in_category(category)
                if all(it.meta.get(k) == v for k, v in config.reference_filter.items())]
        if len(catalog.in_category(category)) <= config.k:
            raise ValueError(f"category '{category}' has {len(catalog.in_category(category))} items; "
                             f"top-{config.k} needs more than {config.k}")
        if not pool:
            raise ValueError(f"category '{category}': no item matches reference_filter {config.reference_filter}")
        n = min(config.references_per_category, len(pool))
        refs.extend(pool[i] for i in sorted(rng.choice(len(pool), size=n, replace=False)))
    return refs


def compute_rankings(catalog: Catalog, references: list[Item], methods: list[Method],
                     segmenters: list[Segmenter], *, k: int, progress: bool = True,
                     ) -> tuple[dict[tuple[str, str], list[TopK]], dict[str, list[str]]]:
    """Top-k lists for every (method, segmenter) condition, plus items each segmenter kept whole."""
    originals = {it.item_id: load_rgb(it.path) for it in tqdm(catalog.items, desc="loading images",
                                                                disable=not progress)}
    rankings: dict[tuple[str, str], list[TopK]] = {}
    not_found: dict[str, list[str]] = {}
    for seg in segmenters:
        images: dict[str, object] = {}
        not_found[seg.name] = []
        for it in tqdm(catalog.items, desc=f"segmenting ({seg.name})", disable=not progress):
            result = seg.segment([originals[it.item_id]])[0]
            images[it.item_id] = result.image
            if not result.found:
                not_found[seg.name].append(it.item_id)
        image_of: Callable[[Item], object] = lambda it: images[it.item_id]  # noqa: E731
        for method in methods:
            lists: list[TopK] = []
            for category in tqdm(catalog.categories, desc=f"ranking ({method.name}/{seg.name})",
                                 disable=not progress):
                cat_refs = [r for r in references if r.category == category]
                if cat_refs:
                    lists.extend(rank_category(method, catalog.in_category(category), image_of,  # type: ignore[arg-type]
                                               cat_refs, k=k))
            rankings[(method.name, seg.name)] = lists
    return rankings, not_found


def build_study(make_session: sessionmaker[Session], config: StudyConfig, *, replace: bool = False,
                progress: bool = True) -> BuildResult:
    started = time.perf_counter()
    with make_session() as s:
        existing = s.scalar(select(Study).where(Study.name == config.name))
        if existing is not None and not replace:
            raise StudyExists(f"a study named '{config.name}' already exists in this database; "
                              "choose another name, or pass --replace to rebuild it (its answers are deleted)")
    catalog = load_catalog(config.catalog)
    # Construct every component before any work, so missing weights fail fast.
    methods = [create_method(c.name, **c.options) for c in config.methods]
    segmenters = [create_segmenter(c.name, **c.options) for c in config.segmenters]
    rng = np.random.default_rng(config.seed)
    references = pick_references(catalog, config, rng)
    rankings, not_found = compute_rankings(catalog, references, methods, segmenters, k=config.k,
                                           progress=progress)

    with make_session.begin() as s:
        if existing is not None:
            s.execute(delete(Study).where(Study.id == existing.id))  # cascades in the database
        study = Study(name=config.name, catalog_root=str(catalog.root), config=config.to_dict(),
                      completion_code=config.completion_code or secrets.token_hex(4).upper())
        s.add(study)
        s.flush()
        rows = {it.item_id: CatalogItem(study_id=study.id, item_id=it.item_id, path=str(it.path),
                                        category=it.category, group_name=it.group, sha256=it.sha256,
                                        meta=it.meta) for it in catalog.items}
        s.add_all(rows.values())
        conditions = {}
        for m in methods:
            for g in segmenters:
                conditions[(m.name, g.name)] = Condition(study_id=study.id, method=m.name, segmenter=g.name,
                                                         method_params=m.params(), segmenter_params=g.params())
        s.add_all(conditions.values())
        s.flush()
        # Conditions whose top-k holds the same products for a reference share one grid
        # (shown in the order of the first condition that produced it).
        grids: dict[tuple[str, frozenset[str]], Grid] = {}
        order: dict[str, list[str]] = {}
        for key, lists in rankings.items():
            for top in lists:
                gkey = (top.reference, frozenset(top.item_ids))
                if gkey not in grids:
                    grids[gkey] = Grid(id=secrets.token_hex(8), study_id=study.id,
                                       reference_id=rows[top.reference].id,
                                       item_ids=[rows[i].id for i in top.item_ids])
                    order[grids[gkey].id] = list(top.item_ids)
                    s.add(grids[gkey])
                    s.flush()
                grid = grids[gkey]
                score_of = dict(zip(top.item_ids, top.scores))
                s.add(GridCondition(grid_id=grid.id, condition_id=conditions[key].id,
                                    scores=[score_of[i] for i in order[grid.id]]))
        study_id = study.id
    return BuildResult(study_id=study_id, name=config.name, conditions=len(conditions),
                       references=len(references), grids=len(grids), skipped=catalog.skipped,
                       not_segmented={k: v for k, v in not_found.items() if v},
                       seconds=time.perf_counter() - started)
