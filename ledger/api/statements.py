"""Routes for imported billing statements."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ledger.api.dependencies import PrincipalDep, SessionDep
from ledger.errors import InvalidRequest
from ledger.periods import Period, PeriodError
from ledger.statements import statement_totals

router = APIRouter(prefix="/v1", tags=["statements"])


@router.get("/statements", summary="Statement totals by provider × account × model × usage type")
def get_statements(session: SessionDep, principal: PrincipalDep, period: str) -> dict[str, Any]:
    principal.require("read")
    try:
        window = Period.month(period)
    except PeriodError as error:
        raise InvalidRequest(str(error)) from error
    return {"period": window.label, "rows": statement_totals(session, principal.tenant_id, window)}
