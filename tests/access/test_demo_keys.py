"""Running the demo again gives fresh keys and retires the ones the run before printed."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from ledger.demo.setup import ensure_demo_tenant
from ledger.storage.database import session_factory
from ledger.storage.tables import ApiKey, Tenant


def active_keys(engine: Engine, tenant: str) -> int:
    with session_factory(engine)() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(ApiKey)
                .join(Tenant, Tenant.id == ApiKey.tenant_id)
                .where(Tenant.name == tenant, ApiKey.revoked_at.is_(None))
            )
            or 0
        )


def test_each_demo_run_leaves_one_active_key_per_role(engine: Engine) -> None:
    tenant = f"demo-{secrets.token_hex(3)}"
    first = ensure_demo_tenant(engine, tenant)
    second = ensure_demo_tenant(engine, tenant)
    assert set(first) == set(second)
    assert first != second
    assert active_keys(engine, tenant) == len(second)
