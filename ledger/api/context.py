"""What every route needs, built once per app: settings, engine, sessions, the writer, metrics, the clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ledger.access.auth import PrincipalCache
from ledger.access.throttle import FailedAuthThrottle
from ledger.clock import Clock
from ledger.service.metrics import ServiceMetrics
from ledger.settings import Settings
from ledger.sink.group_commit import GroupCommitWriter


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    writer: GroupCommitWriter
    metrics: ServiceMetrics
    clock: Clock
    principals: PrincipalCache
    failed_auth: FailedAuthThrottle
    declared_queries: dict[str, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)
    """Per route (its unique id): the query parameters it takes, and those that are lists; filled as routes are
    first called."""
