"""The web report's pages: a few lines each that read (`reports.sources`), compute (the pure modules) and
render a template. Every page is scoped to the signed-in key's tenant; pages read drift rows, findings,
runs, imports and the hourly rollup, never raw usage events."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from ledger.api.dependencies import ContextDep, SessionDep, client_address, refuse_a_throttled_address
from ledger.auth import authenticate
from ledger.errors import InvalidRequest, Unauthorized
from ledger.findings import (
    SEVERITIES,
    STATUSES,
    FindingFilter,
    change_status,
    get_finding,
    list_findings,
    status_history,
)
from ledger.periods import Period, PeriodError
from reports import daily, evidence, monthly, overview, quality, sources
from reports.alerts.channels import describe_target
from reports.rendering import environment
from reports.web.signin import (
    REPORT_ROLES,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    SIGNIN_COOKIE,
    SIGNIN_LIFETIME,
    Signer,
    Viewer,
    check_signin_token,
    end_session,
    safe_next,
    signin_token,
    start_session,
    viewer_of,
)

router = APIRouter()


def base_path(request: Request) -> str:
    """Where the report is mounted ("/report")."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def signer_of(request: Request) -> Signer:
    signer: Signer = request.app.state.signer
    return signer


def current_viewer(request: Request, context: ContextDep, session: SessionDep) -> Viewer:
    return viewer_of(session, signer_of(request), request.cookies.get(SESSION_COOKIE), now=context.clock.now())


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


def chosen_period(period: str | None, now: datetime, session: Session, tenant_id: int) -> Period:
    """The `period` parameter (YYYY-MM); without one, the month last reconciled (what there is to look at),
    or the current month when nothing was reconciled yet."""
    if not period:
        return sources.last_reconciled_month(session, tenant_id) or Period.containing(now)
    try:
        return Period.month(period)
    except PeriodError as error:
        raise InvalidRequest(str(error)) from error


def page(
    request: Request, template: str, viewer: Viewer | None, *, status_code: int = 200, **values: Any
) -> HTMLResponse:
    html = environment().get_template(template).render(base=base_path(request), viewer=viewer, **values)
    return HTMLResponse(html, status_code=status_code)


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    context = request.app.state.context
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=f"{base_path(request)}/",
        httponly=True,
        samesite="lax",
        secure=context.settings.cookie_secure,
    )


# Sign-in


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request, context: ContextDep, next: str | None = None) -> HTMLResponse:
    return _signin_page(request, context, next)


def _signin_page(
    request: Request, context: ContextDep, next_path: str | None, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    token, cookie = signin_token(signer_of(request), now=context.clock.now())
    response = page(
        request,
        "signin.html",
        None,
        token=token,
        next=safe_next(next_path, base_path(request)),
        error=error,
        status_code=status_code,
    )
    _cookie(response, request, SIGNIN_COOKIE, cookie, int(SIGNIN_LIFETIME.total_seconds()))
    return response


@router.post("/signin")
def signin(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    key: Annotated[str, Form()],
    token: Annotated[str, Form()],
    next: Annotated[str | None, Form()] = None,
) -> Response:
    now = context.clock.now()
    check_signin_token(signer_of(request), request.cookies.get(SIGNIN_COOKIE), token, now=now)
    address = client_address(request)
    refuse_a_throttled_address(context, address)
    try:
        principal = authenticate(session, key.strip())
    except Unauthorized:
        context.failed_auth.failed(address, time.monotonic())
        return _signin_page(request, context, next, "That key is not valid, or it was revoked.", 401)
    if principal.role not in REPORT_ROLES:
        return _signin_page(
            request, context, next, f"A key of role {principal.role} cannot read reports: use a read or admin key.", 403
        )
    response = RedirectResponse(safe_next(next, base_path(request)), status_code=303)
    value = start_session(session, signer_of(request), tenant_id=principal.tenant_id, key_id=principal.key_id, now=now)
    session.commit()
    _cookie(response, request, SESSION_COOKIE, value, int(SESSION_LIFETIME.total_seconds()))
    response.delete_cookie(SIGNIN_COOKIE, path=f"{base_path(request)}/")
    return response


@router.post("/signout")
def signout(
    request: Request, session: SessionDep, viewer: ViewerDep, csrf: Annotated[str | None, Form()] = None
) -> Response:
    viewer.check_csrf(csrf)
    end_session(session, viewer)
    session.commit()
    response = RedirectResponse(f"{base_path(request)}/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=f"{base_path(request)}/")
    return response


# Pages


@router.get("/", response_class=HTMLResponse)
def overview_page(
    request: Request, context: ContextDep, session: SessionDep, viewer: ViewerDep, period: str | None = None
) -> HTMLResponse:
    now = context.clock.now()
    window = chosen_period(period, now, session, viewer.tenant_id)
    drift = sources.drift_lines(session, viewer.tenant_id, window)
    summary = overview.overview(
        window,
        drift,
        sources.finding_counts(session, viewer.tenant_id, window),
        sources.latest_imports(session, viewer.tenant_id, window),
        sources.latest_runs(session, viewer.tenant_id, window, limit=1),
        now=now,
    )
    return page(
        request,
        "overview.html",
        viewer,
        nav="overview",
        period=window,
        overview=summary,
        import_hint=overview.import_hint,
        reconcile_hint=overview.reconcile_hint(window),
    )


@router.get("/drift", response_class=HTMLResponse)
def drift_page(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    viewer: ViewerDep,
    period: str | None = None,
    provider: str | None = None,
    model: str | None = None,
) -> HTMLResponse:
    window = chosen_period(period, context.clock.now(), session, viewer.tenant_id)
    billed, undated = sources.daily_billed(session, viewer.tenant_id, window)
    result = daily.drift_over_time(
        sources.daily_logged(session, viewer.tenant_id, window),
        billed,
        undated,
        window,
        provider=provider or None,
        model=model if model else None,
    )
    return page(
        request,
        "drift.html",
        viewer,
        nav="drift",
        period=window,
        drift=result,
        provider=provider or "",
        model=model or "",
        import_hint=overview.import_hint,
    )


@router.get("/findings", response_class=HTMLResponse)
def findings_page(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    viewer: ViewerDep,
    period: str | None = None,
    kind: str | None = None,
    provider: str | None = None,
    status: str | None = None,
    severity: str | None = None,
) -> HTMLResponse:
    window = chosen_period(period, context.clock.now(), session, viewer.tenant_id)
    filters = FindingFilter(
        period=window, kind=kind or None, provider=provider or None, status=status or None, severity=severity or None
    )
    found = list_findings(session, viewer.tenant_id, filters, with_evidence=False)
    kinds = sources.finding_kinds(session, viewer.tenant_id, window)
    return page(
        request,
        "findings.html",
        viewer,
        nav="findings",
        period=window,
        findings=found,
        filters=filters,
        kinds=kinds,
        statuses=STATUSES,
        severities=tuple(reversed(SEVERITIES)),
        reconcile_hint=overview.reconcile_hint(window),
    )


@router.get("/findings/{finding_id}", response_class=HTMLResponse)
def finding_page(request: Request, session: SessionDep, viewer: ViewerDep, finding_id: int) -> HTMLResponse:
    finding = get_finding(session, viewer.tenant_id, finding_id)
    return page(
        request,
        "finding.html",
        viewer,
        nav="findings",
        period=Period.containing(finding.period_start),
        finding=finding,
        items=evidence.evidence_items(finding.evidence),
        series=evidence.series_view(finding.evidence),
        history=status_history(session, viewer.tenant_id, finding_id),
        statuses=STATUSES,
    )


@router.post("/findings/{finding_id}/status")
def finding_status(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    viewer: ViewerDep,
    finding_id: int,
    status: Annotated[str, Form()],
    csrf: Annotated[str | None, Form()] = None,
    note: Annotated[str | None, Form()] = None,
) -> Response:
    viewer.check_csrf(csrf)
    viewer.require_admin("changing a finding's status")
    change_status(
        session, viewer.tenant_id, finding_id, status=status, note=note, actor=viewer.key_id, now=context.clock.now()
    )
    session.commit()
    return RedirectResponse(f"{base_path(request)}/findings/{finding_id}", status_code=303)


@router.get("/providers", response_class=HTMLResponse)
def providers_page(
    request: Request, context: ContextDep, session: SessionDep, viewer: ViewerDep, period: str | None = None
) -> HTMLResponse:
    window = chosen_period(period, context.clock.now(), session, viewer.tenant_id)
    rows = quality.model_quality(
        sources.model_usage(session, viewer.tenant_id, window), sources.drift_lines(session, viewer.tenant_id, window)
    )
    return page(
        request, "providers.html", viewer, nav="providers", period=window, rows=rows, error_types=quality.ERROR_TYPES
    )


def _monthly(session: Session, viewer: Viewer, window: Period, now: datetime) -> monthly.MonthlyReport:
    return monthly.monthly_report(
        viewer.tenant,
        window,
        sources.drift_lines(session, viewer.tenant_id, window),
        sources.finding_counts(session, viewer.tenant_id, window),
        generated_at=now,
    )


@router.get("/monthly", response_class=HTMLResponse)
def monthly_page(
    request: Request, context: ContextDep, session: SessionDep, viewer: ViewerDep, period: str | None = None
) -> HTMLResponse:
    window = chosen_period(period, context.clock.now(), session, viewer.tenant_id)
    report = _monthly(session, viewer, window, context.clock.now())
    return page(
        request,
        "monthly.html",
        viewer,
        nav="monthly",
        period=window,
        report=report,
        reconcile_hint=overview.reconcile_hint(window),
    )


@router.get("/monthly.{extension}")
def monthly_download(
    context: ContextDep, session: SessionDep, viewer: ViewerDep, extension: str, period: str | None = None
) -> Response:
    if extension not in ("csv", "json"):
        raise InvalidRequest(f"the monthly report downloads as .csv or .json, not .{extension}")
    window = chosen_period(period, context.clock.now(), session, viewer.tenant_id)
    body = monthly.render(_monthly(session, viewer, window, context.clock.now()), extension)
    filename = f"tokenledger-{window.label}.{extension}"
    media_type = "text/csv; charset=utf-8" if extension == "csv" else "application/json"
    return Response(body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, session: SessionDep, viewer: ViewerDep) -> HTMLResponse:
    channels = sources.channels(session, viewer.tenant_id)
    return page(
        request,
        "alerts.html",
        viewer,
        nav="alerts",
        period=None,
        channels=[(channel, describe_target(channel)) for channel in channels],
        deliveries=sources.delivery_log(session, viewer.tenant_id),
    )
