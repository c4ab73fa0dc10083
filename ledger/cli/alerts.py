"""`tokenledger alerts`: alert channels, their deliveries and silences."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ledger.access import auth
from ledger.cli.command import TenantName, console, errors, one_line_errors, print_table, prose, session_scope
from ledger.clock import SystemClock
from ledger.settings import get_settings
from ledger.storage.database import create_db_engine, database_url, session_factory

if TYPE_CHECKING:
    from ledger.storage.tables import AlertSilence

alerts_app = typer.Typer(
    help="Alert channels (webhook, Slack, email, PagerDuty) and their deliveries.", no_args_is_help=True
)


@alerts_app.command("add-channel")
@one_line_errors
def alerts_add_channel(
    name: Annotated[str, typer.Option(help="A name for the channel, unique per tenant.")],
    kind: Annotated[str, typer.Option(help="webhook, slack, email or pagerduty.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
    url: Annotated[
        str | None, typer.Option(help="webhook / slack: the URL to POST to; pagerduty: another Events API endpoint.")
    ] = None,
    secret: Annotated[str | None, typer.Option(help="webhook: the HMAC secret (generated when omitted).")] = None,
    smtp_host: Annotated[str | None, typer.Option(help="email: SMTP server.")] = None,
    smtp_port: Annotated[int | None, typer.Option(help="email: SMTP port (587 with --starttls, else 25).")] = None,
    sender: Annotated[str | None, typer.Option("--from", help="email: sender address.")] = None,
    to: Annotated[list[str] | None, typer.Option(help="email: recipient (repeat for more).")] = None,
    starttls: Annotated[bool, typer.Option(help="email: upgrade the connection with STARTTLS.")] = False,
    smtp_user: Annotated[str | None, typer.Option(help="email: SMTP login user.")] = None,
    smtp_password_env: Annotated[
        str | None, typer.Option(help="email: environment variable holding the SMTP password.")
    ] = None,
    min_severity: Annotated[
        str | None, typer.Option(help="info, warning or critical (default: warning, or info with --min-impact-usd).")
    ] = None,
    min_impact_usd: Annotated[str, typer.Option(help="Only findings with at least this impact (USD).")] = "0",
    finding_kind: Annotated[
        list[str] | None, typer.Option(help="Only findings of this kind (repeat for more; default: any).")
    ] = None,
    provider: Annotated[
        list[str] | None, typer.Option(help="Only findings of this provider (repeat for more).")
    ] = None,
    account: Annotated[list[str] | None, typer.Option(help="Only findings of this account (repeatable).")] = None,
    routing_key: Annotated[
        str | None, typer.Option(help="pagerduty: the Events API v2 integration key (kept secret).")
    ] = None,
) -> None:
    """Add an alert channel for a tenant. A finding reaches it when it meets every condition given."""
    from decimal import InvalidOperation

    from ledger.alerts.channels import ChannelOptions, add_channel, describe_target

    try:
        impact = Decimal(min_impact_usd)
    except InvalidOperation:
        raise typer.BadParameter(f"--min-impact-usd must be a number, got {min_impact_usd!r}") from None
    options = ChannelOptions(
        url=url,
        secret=secret,
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        sender=sender,
        recipients=tuple(to or ()),
        starttls=starttls,
        username=smtp_user,
        password_env=smtp_password_env,
        routing_key=routing_key,
    )
    with session_scope(get_settings()) as session:
        owner = auth.tenant_for_cli(session, tenant)
        channel = add_channel(
            session,
            tenant_id=owner.id,
            name=name,
            kind=kind,
            options=options,
            min_severity=min_severity,
            min_impact_usd=impact,
            route={"kinds": finding_kind or [], "providers": provider or [], "accounts": account or []},
        )
        target, generated = describe_target(channel), channel.config.get("secret") if not secret else None
    console.print(f"{kind} channel {name!r} added for {owner.name}: {target}", highlight=False)
    if generated:
        console.print("webhook secret (verify X-TokenLedger-Signature with it; shown once):", style="bold")
        print(generated)


@alerts_app.command("list")
@one_line_errors
def alerts_list(
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """List a tenant's alert channels and its latest deliveries."""
    from ledger.alerts.channels import describe_target
    from ledger.alerts.rules import ROUTE_FIELDS
    from ledger.alerts.silences import silences_in_force
    from ledger.queries import sources

    with session_scope(get_settings()) as session:
        owner = auth.tenant_for_cli(session, tenant)
        channels = [
            (
                c.name,
                c.kind,
                describe_target(c),
                c.min_severity,
                f"{c.min_impact_usd:,.2f}",
                "; ".join(f"{field} {', '.join(c.route[field])}" for field in ROUTE_FIELDS if c.route.get(field))
                or "any",
                "yes" if c.enabled else "no",
            )
            for c in sources.channels(session, owner.id)
        ]
        deliveries = sources.delivery_log(session, owner.id, limit=20)
        silenced = [
            (
                f"#{silence.id}",
                "finding " + silence.fingerprint[:12] if silence.fingerprint else _scope_of(silence),
                silence.until.strftime("%Y-%m-%d %H:%M"),
                silence.reason or "",
            )
            for silence in silences_in_force(session, owner.id, SystemClock().now())
        ]
    table = Table(
        "name",
        "kind",
        "delivers to",
        "min severity",
        "min impact USD",
        "takes",
        "enabled",
        title=f"Alert channels of {owner.name}",
    )
    for row in channels:
        table.add_row(*row)
    if channels:
        print_table(table)
    else:
        console.print("no alert channel yet: tokenledger alerts add-channel --name … --kind …")
    log = Table("queued", "channel", "topic", "status", "attempts", prose("last error"), title="Latest deliveries")
    for line in deliveries:
        log.add_row(
            line.created_at.strftime("%Y-%m-%d %H:%M"),
            line.channel,
            line.topic,
            line.status,
            str(line.attempts),
            line.last_error or "",
        )
    if deliveries:
        print_table(log)
    if silenced:
        muted = Table("silence", "covers", "until (UTC)", prose("reason"), title="Silences in force")
        for cells in silenced:
            muted.add_row(*cells)
        print_table(muted)


def _scope_of(silence: AlertSilence) -> str:
    parts = [f"{name} {value}" for name, value in (("kind", silence.kind), ("provider", silence.provider),
             ("account", silence.account)) if value is not None]  # fmt: skip
    return ", ".join(parts)


ChannelName = Annotated[str, typer.Option("--channel", help="The channel's name.")]


@alerts_app.command("disable")
@one_line_errors
def alerts_disable(channel: ChannelName, tenant: TenantName = None) -> None:
    """Stop alerting a channel (what it had queued fails unsent); `enable` resumes."""
    _set_enabled(channel, tenant, enabled=False)


@alerts_app.command("enable")
@one_line_errors
def alerts_enable(channel: ChannelName, tenant: TenantName = None) -> None:
    """Alert a disabled channel again."""
    _set_enabled(channel, tenant, enabled=True)


def _set_enabled(channel: str, tenant: str | None, *, enabled: bool) -> None:
    from ledger.alerts.channels import set_enabled

    with session_scope(get_settings()) as session:
        set_enabled(session, auth.tenant_for_cli(session, tenant).id, channel, enabled=enabled)
    console.print(f"channel {channel!r} {'enabled' if enabled else 'disabled'}", highlight=False)


@alerts_app.command("remove")
@one_line_errors
def alerts_remove(channel: ChannelName, tenant: TenantName = None) -> None:
    """Remove a channel (its deliveries stay in the log; those still pending are marked failed)."""
    from ledger.alerts.channels import remove_channel

    with session_scope(get_settings()) as session:
        abandoned = remove_channel(session, auth.tenant_for_cli(session, tenant).id, channel, now=SystemClock().now())
    console.print(f"channel {channel!r} removed ({abandoned} pending alerts marked failed)", highlight=False)


@alerts_app.command("rotate-secret")
@one_line_errors
def alerts_rotate_secret(
    channel: ChannelName,
    tenant: TenantName = None,
    secret: Annotated[str | None, typer.Option(help="The new secret (generated when omitted).")] = None,
) -> None:
    """Give a webhook channel a new signing secret; requests are signed with it from the next one on."""
    from ledger.alerts.channels import rotate_secret

    with session_scope(get_settings()) as session:
        new_secret = rotate_secret(session, auth.tenant_for_cli(session, tenant).id, channel, secret=secret)
    console.print(f"channel {channel!r} has a new signing secret", highlight=False)
    if not secret:
        console.print("webhook secret (verify X-TokenLedger-Signature with it; shown once):", style="bold")
        print(new_secret)


@alerts_app.command("replay")
@one_line_errors
def alerts_replay(
    channel: ChannelName,
    tenant: TenantName = None,
    since: Annotated[str | None, typer.Option(help="Only alerts queued from this day (UTC), e.g. 2026-11-01.")] = None,
) -> None:
    """Queue a channel's failed alerts again (after fixing its receiver), to be sent now."""

    from ledger.alerts.channels import replay_failed

    try:
        start = None if since is None else datetime.fromisoformat(since).replace(tzinfo=UTC)
    except ValueError:
        raise typer.BadParameter(f"--since must be a day such as 2026-11-01, got {since!r}") from None
    with session_scope(get_settings()) as session:
        replayed = replay_failed(
            session, auth.tenant_for_cli(session, tenant).id, channel, now=SystemClock().now(), since=start
        )
    console.print(f"{replayed} failed alerts of {channel!r} queued again", highlight=False)


@alerts_app.command("mute")
@one_line_errors
def alerts_mute(
    until: Annotated[str, typer.Option(help="Day (UTC) the silence ends, e.g. 2026-12-31.")],
    finding: Annotated[int | None, typer.Option(help="Mute this finding (its id).")] = None,
    kind: Annotated[str | None, typer.Option(help="Mute findings of this kind.")] = None,
    provider: Annotated[str | None, typer.Option(help="Mute findings of this provider.")] = None,
    account: Annotated[str | None, typer.Option(help="Mute findings of this account.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (shown by alerts list).")] = None,
    tenant: TenantName = None,
) -> None:
    """Alert nobody about a finding, or a scope of findings, until a day."""

    from ledger.alerts.silences import Scope, mute

    try:
        ends = datetime.fromisoformat(until).replace(tzinfo=UTC)
    except ValueError:
        raise typer.BadParameter(f"--until must be a day such as 2026-12-31, got {until!r}") from None
    with session_scope(get_settings()) as session:
        silence = mute(
            session,
            auth.tenant_for_cli(session, tenant).id,
            finding_id=finding,
            scope=Scope(kind=kind, provider=provider, account=account),
            until=ends,
            reason=reason,
            now=SystemClock().now(),
        )
        silence_id = silence.id
    console.print(f"silence #{silence_id} until {ends:%Y-%m-%d %H:%M} UTC", highlight=False)


@alerts_app.command("unmute")
@one_line_errors
def alerts_unmute(
    silence: Annotated[int, typer.Option(help="The silence's number (alerts list shows them).")],
    tenant: TenantName = None,
) -> None:
    """End a silence now."""
    from ledger.alerts.silences import unmute

    with session_scope(get_settings()) as session:
        unmute(session, auth.tenant_for_cli(session, tenant).id, silence)
    console.print(f"silence #{silence} ended", highlight=False)


@alerts_app.command("test")
@one_line_errors
def alerts_test(
    channel: Annotated[str, typer.Option(help="The channel's name.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """Send a test alert over a channel right away and print the outcome."""
    import httpx

    from ledger.alerts import send_test

    settings = get_settings()
    with session_scope(settings) as session, httpx.Client() as http:
        owner = auth.tenant_for_cli(session, tenant)
        outcome = send_test(
            session,
            tenant_id=owner.id,
            channel_name=channel,
            clock=SystemClock(),
            http=http,
            public_url=settings.public_url,
        )
    if not outcome.sent:
        errors.print(f"[red]error:[/red] test alert over {channel!r} failed: {outcome.error}", highlight=False)
        raise typer.Exit(1)
    console.print(f"test alert sent over {channel!r} (alert #{outcome.alert_id})", highlight=False)


@alerts_app.command("deliver")
@one_line_errors
def alerts_deliver() -> None:
    """Send the alerts that are due now (the service sends them as they fall due when its scheduler runs)."""
    import httpx

    from ledger.alerts import deliver_due

    settings = get_settings()
    engine = create_db_engine(database_url(settings), pool_size=2)
    try:
        with httpx.Client() as http:
            stats = deliver_due(session_factory(engine), clock=SystemClock(), http=http, public_url=settings.public_url)
    finally:
        engine.dispose()
    console.print(f"sent {stats.sent}, will retry {stats.retrying}, failed {stats.failed}")
