"""Persistence: typed models and the engine/session factory."""

from db.engine import make_engine, make_sessionmaker, resolve_db_url
from db.models import (
    Base,
    CatalogItem,
    Condition,
    Grid,
    GridCondition,
    ObjectiveMetric,
    Participant,
    Response,
    Segmentation,
    Study,
    Trial,
)

__all__ = [
    "Base",
    "CatalogItem",
    "Condition",
    "Grid",
    "GridCondition",
    "ObjectiveMetric",
    "Participant",
    "Response",
    "Segmentation",
    "Study",
    "Trial",
    "make_engine",
    "make_sessionmaker",
    "resolve_db_url",
]
