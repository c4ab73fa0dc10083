"""Routes for imported billing statements."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from ledger.api.dependencies import PrincipalDep, SessionDep, known_query_only
from ledger.api.openapi import KEYED, Month
from ledger.api.responses import Statements, ok
from ledger.queries.usage import month
from ledger.statements.store import statement_totals
from ledger.vocabulary import Role

router = APIRouter(prefix="/v1", tags=["statements"], responses=KEYED, dependencies=[Depends(known_query_only)])


@router.get(
    "/statements",
    summary="Statement totals by provider × account × model × usage type",
    response_model=None,
    responses=ok(Statements),
)
def get_statements(
    session: SessionDep,
    principal: PrincipalDep,
    period: Month,
) -> dict[str, Any]:
    principal.require(Role.READ)
    window = month(period)
    return {"period": window.label, "rows": statement_totals(session, principal.tenant_id, window)}
