"""Running the reconciler on demand."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from ledger.api.dependencies import ContextDep, PrincipalDep, known_query_only
from ledger.api.openapi import KEYED, PERIOD
from ledger.api.responses import RunResult, ok
from ledger.periods import Period
from ledger.queries.usage import month
from ledger.reconciliation.run import run_reconciliation
from ledger.vocabulary import Role

router = APIRouter(prefix="/v1", tags=["reconciliation"], responses=KEYED, dependencies=[Depends(known_query_only)])


@router.post(
    "/reconciliation/run",
    summary="Reconcile a period now (admin)",
    response_model=None,
    responses=ok(RunResult, "The run, succeeded or failed (a failed run is recorded with its error)"),
)
async def run_now(
    context: ContextDep,
    principal: PrincipalDep,
    period: Annotated[
        str | None, Query(description="The month (YYYY-MM); the current one when left out.", json_schema_extra=PERIOD)
    ] = None,
) -> dict[str, Any]:
    principal.require(Role.ADMIN)
    window = month(period) if period is not None else Period.containing(context.clock.now())
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
