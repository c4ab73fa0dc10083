"""Running the reconciler on demand."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from ledger.api.dependencies import ContextDep, PrincipalDep
from ledger.errors import InvalidRequest
from ledger.periods import Period, PeriodError
from ledger.reconciliation import run_reconciliation

router = APIRouter(prefix="/v1", tags=["reconciliation"])


@router.post("/reconciliation/run", summary="Reconcile a period now (admin)")
async def run_now(context: ContextDep, principal: PrincipalDep, period: str | None = None) -> dict[str, Any]:
    principal.require("admin")
    try:
        window = Period.month(period) if period else Period.containing(context.clock.now())
    except PeriodError as error:
        raise InvalidRequest(str(error)) from error
    outcome = await run_in_threadpool(
        run_reconciliation,
        context.sessions,
        tenant_id=principal.tenant_id,
        period=window,
        settings=context.settings,
        now=context.clock.now(),
        trigger="api",
    )
    return {
        "run_id": outcome.run_id,
        "period": window.label,
        "status": outcome.status,
        "counts": outcome.counts,
        "error": outcome.error,
    }
