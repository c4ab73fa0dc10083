"""Routes for findings and reconciliation results: list and read findings, change a finding's status (admin),
and a period's drift rows with its latest runs. A key sees only its tenant's findings; another tenant's is
404."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ledger.api.dependencies import ContextDep, PrincipalDep, SessionDep, known_query_only
from ledger.api.openapi import (
    FINDING_KINDS,
    FINDING_SEVERITIES,
    FINDING_STATUSES,
    KEYED,
    AnyMonth,
    Month,
    error_responses,
)
from ledger.api.responses import Findings, FindingWithChanges, Reconciliation, ok
from ledger.display import plain_decimal
from ledger.errors import Forbidden
from ledger.queries.dispute_pack import load_dispute_pack
from ledger.queries.findings import (
    FindingFilter,
    change_json,
    finding_json,
    get_finding,
    list_findings,
    status_history,
)
from ledger.queries.sources import drift_lines, latest_runs
from ledger.queries.usage import month, resolve_range
from ledger.reconciliation.triage import MAX_NOTE_CHARS, change_status
from ledger.storage.tables import BIGINT_MAX
from ledger.vocabulary import Role

router = APIRouter(prefix="/v1", tags=["findings"], responses=KEYED, dependencies=[Depends(known_query_only)])
NOT_FOUND = error_responses(404)
FindingId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="The finding's id.")]


class StatusChange(BaseModel):
    """A new status for a finding, with an optional note saying why."""

    model_config = ConfigDict(extra="forbid")

    status: str = Field(description="open, acknowledged, resolved or disputed", json_schema_extra=FINDING_STATUSES)
    note: str | None = Field(default=None, max_length=MAX_NOTE_CHARS)


@router.get(
    "/findings",
    summary="Findings, filtered by period, kind, provider, status or severity",
    response_model=None,
    responses=ok(Findings),
)
def get_findings(
    session: SessionDep,
    principal: PrincipalDep,
    period: AnyMonth = None,
    kind: Annotated[str | None, Query(json_schema_extra=FINDING_KINDS)] = None,
    provider: str | None = None,
    status: Annotated[str | None, Query(json_schema_extra=FINDING_STATUSES)] = None,
    severity: Annotated[str | None, Query(json_schema_extra=FINDING_SEVERITIES)] = None,
) -> dict[str, Any]:
    principal.require(Role.READ)
    filters = FindingFilter(
        period=resolve_range(period, None, None),
        kind=kind,
        provider=provider,
        status=status,
        severity=severity,
    )
    return {"findings": [finding_json(finding) for finding in list_findings(session, principal.tenant_id, filters)]}


@router.get(
    "/findings/{finding_id}",
    summary="One finding with its status changes",
    response_model=None,
    responses={**ok(FindingWithChanges), **NOT_FOUND},
)
def get_one_finding(session: SessionDep, principal: PrincipalDep, finding_id: FindingId) -> dict[str, Any]:
    principal.require(Role.READ)
    finding = get_finding(session, principal.tenant_id, finding_id)
    changes = status_history(session, principal.tenant_id, finding_id)
    return {**finding_json(finding), "changes": [change_json(change) for change in changes]}


@router.get(
    "/findings/{finding_id}/dispute-pack",
    summary="A finding's dispute pack (ZIP): summary, statement lines with provenance, affected events",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "The ZIP."}, **NOT_FOUND},
)
def get_dispute_pack(
    session: SessionDep, principal: PrincipalDep, context: ContextDep, finding_id: FindingId
) -> Response:
    principal.require(Role.READ)
    name, body = load_dispute_pack(session, principal.tenant_id, finding_id, now=context.clock.now())
    return Response(
        body, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.patch(
    "/findings/{finding_id}",
    summary="Change a finding's status, with a note (admin)",
    response_model=None,
    responses={**ok(FindingWithChanges, "The finding, with its status changes"), **NOT_FOUND},
)
def patch_finding(
    session: SessionDep, context: ContextDep, principal: PrincipalDep, finding_id: FindingId, body: StatusChange
) -> dict[str, Any]:
    if principal.role != "admin":
        raise Forbidden(f"changing a finding's status needs an admin key; this key has role {principal.role!r}")
    change_status(
        session,
        principal.tenant_id,
        finding_id,
        status=body.status,
        note=body.note,
        actor=principal.key_id,
        now=context.clock.now(),
    )
    session.commit()
    return get_one_finding(session, principal, finding_id)


@router.get(
    "/reconciliation",
    summary="A period's drift rows and its latest reconciliation runs",
    response_model=None,
    responses=ok(Reconciliation),
)
def get_reconciliation(
    session: SessionDep,
    principal: PrincipalDep,
    period: Month,
) -> dict[str, Any]:
    principal.require(Role.READ)
    window = month(period)
    rows = [
        {
            "provider": line.provider,
            "account": line.account,
            "model": line.model,
            "logged_tokens": line.logged_tokens,
            "billed_tokens": line.billed_tokens,
            "logged_by_category": line.logged_by_category,
            "billed_by_category": line.billed_by_category,
            "expected_cost": plain_decimal(line.expected_cost),
            "billed_cost": plain_decimal(line.billed_cost),
            "difference": plain_decimal(line.difference),
            "percent": plain_decimal(line.percent),
            "currency": line.currency,
            "note": line.note,
            "computed_at": line.computed_at.isoformat(),
        }
        for line in drift_lines(session, principal.tenant_id, window)
    ]
    runs = [
        {
            "id": run.id,
            "trigger": run.trigger,
            "status": run.status,
            "started_at": run.started_at.isoformat(),
            "finished_at": None if run.finished_at is None else run.finished_at.isoformat(),
            "counts": run.counts,
            "error": run.error,
        }
        for run in latest_runs(session, principal.tenant_id, window)
    ]
    return {"period": window.label, "rows": rows, "runs": runs}
