"""The web report's pages: a few lines each that read (`ledger.queries.sources`), compute (the pure modules) and
render a template. Every page is scoped to the signed-in key's tenant; pages read drift rows, findings,
runs, imports and the hourly rollup, never raw usage events."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from ledger.access.auth import authenticate
from ledger.alerts.budgets import budget_statuses
from ledger.alerts.channels import describe_target, remove_channel, replay_failed, rotate_secret, set_enabled
from ledger.api.dependencies import ContextDep, SessionDep, client_address, refuse_a_throttled_address
from ledger.errors import InvalidRequest, NotFound, Unauthorized
from ledger.periods import Period, PeriodError, day_start
from ledger.pricing.catalog import base_layer, load_catalog
from ledger.pricing.model_aliases import unmatched_labels
from ledger.queries import finding_sources, money_over_time, sources
from ledger.queries.dispute_pack import load_dispute_pack
from ledger.queries.findings import (
    STATUSES,
    FindingFilter,
    change_status,
    finding_json,
    get_finding,
    list_findings,
    status_history,
)
from ledger.queries.footing import footed
from ledger.vocabulary import REPORT_ROLES
from reports import evidence, findings_list, monthly, overview, quality, spend
from reports.rendering import environment
from reports.web.signin import (
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


def findings_list_view(
    kind: str | None = None,
    provider: str | None = None,
    account: str | None = None,
    model: str | None = None,
    status: str | None = None,
    severity: str | None = None,
    sort: str | None = None,
    order: str | None = None,
) -> findings_list.ListView:
    """The findings list's filters and order from the query."""
    return findings_list.ListView.of(
        sort, order, kind=kind, provider=provider, account=account, model=model, status=status, severity=severity
    )


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
        previous_drift=sources.drift_lines(session, viewer.tenant_id, window.previous()),
        impacts=sources.finding_impacts(session, viewer.tenant_id, window),
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
        unmatched=unmatched_labels(session, viewer.tenant_id, window, load_catalog(session, viewer.tenant_id)),
        price_data=base_layer()[0].describe(),
        has_input=summary.reconciled or sources.has_input(session, viewer.tenant_id, window),
        budgets=budget_statuses(session, viewer.tenant_id, now),
        budget_month=Period.containing(now),
    )


@router.get("/drift", response_class=HTMLResponse)
def drift_page(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    viewer: ViewerDep,
    period: str | None = None,
    provider: str | None = None,
    account: str | None = None,
    key: str | None = None,
    model: str | None = None,
    app: str | None = None,
) -> HTMLResponse:
    window = chosen_period(period, context.clock.now(), session, viewer.tenant_id)
    logged = sources.logged_money(session, viewer.tenant_id, window)
    billed = sources.billed_money(session, viewer.tenant_id, window)
    scope = money_over_time.ScopeFilter(
        provider=provider or None,
        account=account or None,
        api_key_id=key or None,
        model=model or None,
        app=app or None,
    )
    return page(
        request,
        "drift.html",
        viewer,
        nav="drift",
        period=window,
        drift=money_over_time.money_over_time(logged, billed, window, scope),
        choices=money_over_time.choices(logged, billed),
        scope=scope,
        import_hint=overview.import_hint,
    )


FindingsView = Annotated[findings_list.ListView, Depends(findings_list_view)]


@router.get("/findings", response_class=HTMLResponse)
def findings_page(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    viewer: ViewerDep,
    view: FindingsView,
    period: str | None = None,
) -> HTMLResponse:
    window = chosen_period(period, context.clock.now(), session, viewer.tenant_id)
    every = list_findings(session, viewer.tenant_id, FindingFilter(period=window), with_evidence=False)
    found = findings_list.shown(every, view)
    impacts, total = footed([finding.impact_usd for finding in found])
    return page(
        request,
        "findings.html",
        viewer,
        nav="findings",
        period=window,
        findings=list(zip(found, impacts, strict=True)),
        total_impact=total,
        any_findings=bool(every),
        view=view,
        choices=findings_list.choices(every),
        reconcile_hint=overview.reconcile_hint(window),
    )


@router.get("/findings.csv")
def findings_csv(
    context: ContextDep, session: SessionDep, viewer: ViewerDep, view: FindingsView, period: str | None = None
) -> Response:
    window = chosen_period(period, context.clock.now(), session, viewer.tenant_id)
    every = list_findings(session, viewer.tenant_id, FindingFilter(period=window), with_evidence=False)
    body = findings_list.to_csv(findings_list.shown(every, view))
    filename = f"tokenledger-findings-{window.label}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/findings/{finding_id}", response_class=HTMLResponse)
def finding_page(request: Request, session: SessionDep, viewer: ViewerDep, finding_id: int) -> HTMLResponse:
    finding = get_finding(session, viewer.tenant_id, finding_id)
    data = finding_json(finding)
    lines, line_count = sources.finding_statement_lines(session, viewer.tenant_id, finding, limit=LINES_SHOWN)
    return page(
        request,
        "finding.html",
        viewer,
        nav="findings",
        period=Period.containing(finding.period_start),
        finding=finding,
        sentences=finding_sources.explanation(data),
        items=evidence.evidence_items(finding.evidence),
        series=evidence.series_view(finding.evidence),
        lines=lines,
        line_count=line_count,
        events=sources.finding_events(session, viewer.tenant_id, finding),
        events_url=finding_sources.events_url(data),
        history=status_history(session, viewer.tenant_id, finding_id),
        statuses=STATUSES,
    )


LINES_SHOWN = 50
"""Statement lines listed on a finding's page; the dispute pack has them all."""


@router.get("/findings/{finding_id}/dispute-pack")
def finding_dispute_pack(context: ContextDep, session: SessionDep, viewer: ViewerDep, finding_id: int) -> Response:
    name, body = load_dispute_pack(session, viewer.tenant_id, finding_id, now=context.clock.now())
    return Response(
        body, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'}
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
        has_input=sources.has_input(session, viewer.tenant_id, window),
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


def spend_range(
    context: ContextDep,
    session: SessionDep,
    viewer: ViewerDep,
    period: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> tuple[Period, Period]:
    """The days to show (`since`..`until`, both inclusive UTC days, or the month `period`) and as many days
    just before them."""
    if since or until:
        try:
            first, last = date.fromisoformat(since or ""), date.fromisoformat(until or "")
        except ValueError:
            raise InvalidRequest("since and until are days such as 2026-10-01, and go together") from None
        if last < first:
            raise InvalidRequest(f"until ({last}) is before since ({first})")
        if (last - first).days > 366:
            raise InvalidRequest("a range of at most 367 days")
        window = Period(day_start(first), day_start(last + timedelta(days=1)))
    else:
        window = chosen_period(period, context.clock.now(), session, viewer.tenant_id)
    span = window.end - window.start
    return window, Period(window.start - span, window.start)


SpendRange = Annotated[tuple[Period, Period], Depends(spend_range)]


def _spend(session: Session, viewer: Viewer, days: tuple[Period, Period], top: int) -> spend.Spend:
    window, before = days
    return spend.spend(
        sources.logged_money(session, viewer.tenant_id, window),
        sources.logged_money(session, viewer.tenant_id, before),
        first_day=window.start.date(),
        last_day=(window.end - timedelta(days=1)).date(),
        limit=top,
    )


@router.get("/spend", response_class=HTMLResponse)
def spend_page(
    request: Request, session: SessionDep, viewer: ViewerDep, days: SpendRange, top: int = 10
) -> HTMLResponse:
    result = _spend(session, viewer, days, max(1, min(top, 100)))
    return page(
        request, "spend.html", viewer, nav="spend", period=Period.containing(days[0].start), spend=result, top=top
    )


@router.get("/spend.csv")
def spend_csv(
    session: SessionDep, viewer: ViewerDep, days: SpendRange, table: str = "model", top: int = 10
) -> Response:
    if table not in spend.DIMENSIONS:
        raise InvalidRequest(f"table must be one of {', '.join(spend.DIMENSIONS)}, got {table!r}")
    result = _spend(session, viewer, days, max(1, min(top, 100)))
    filename = f"tokenledger-spend-by-{table}-{result.first_day}-{result.last_day}.csv"
    return Response(
        spend.table_csv(result.table(table)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, session: SessionDep, viewer: ViewerDep) -> HTMLResponse:
    return _alerts(request, session, viewer)


CHANNEL_ACTIONS = ("disable", "enable", "replay", "rotate-secret", "remove")


@router.post("/alerts/channels/{name}/{action}", response_class=HTMLResponse)
def channel_action(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    viewer: ViewerDep,
    name: str,
    action: str,
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    """What `tokenledger alerts disable|enable|replay|rotate-secret|remove` do, for an admin key."""
    viewer.check_csrf(csrf)
    viewer.require_admin("managing alert channels")
    if action not in CHANNEL_ACTIONS:
        raise NotFound(f"a channel can be told to {', '.join(CHANNEL_ACTIONS)}, not {action!r}")
    now = context.clock.now()
    secret = None
    if action in ("disable", "enable"):
        set_enabled(session, viewer.tenant_id, name, enabled=action == "enable")
    elif action == "replay":
        replay_failed(session, viewer.tenant_id, name, now=now)
    elif action == "rotate-secret":
        secret = rotate_secret(session, viewer.tenant_id, name)
    else:
        remove_channel(session, viewer.tenant_id, name, now=now)
    session.commit()
    if secret is None:
        return RedirectResponse(f"{base_path(request)}/alerts", status_code=303)
    return _alerts(request, session, viewer, new_secret=(name, secret))


def _alerts(
    request: Request, session: Session, viewer: Viewer, new_secret: tuple[str, str] | None = None
) -> HTMLResponse:
    channels = sources.channels(session, viewer.tenant_id)
    return page(
        request,
        "alerts.html",
        viewer,
        nav="alerts",
        period=None,
        channels=[(channel, describe_target(channel)) for channel in channels],
        deliveries=sources.delivery_log(session, viewer.tenant_id),
        new_secret=new_secret,
    )
