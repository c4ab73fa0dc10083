"""Alert channels as an operator manages them with `tokenledger alerts …`: what each channel takes (routing
and thresholds, all conditions at once), and the channels' lifecycle."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from ledger.alerts import deliver_due, queue_finding_alert
from ledger.alerts.messages import signature
from ledger.cli.main import app
from ledger.storage.database import session_factory
from ledger.storage.tables import AlertChannel, AlertOutbox, Finding
from tests import rows
from tests.clocks import FixedClock
from tests.conftest import make_tenant
from tests.http_receiver import http_receiver
from tests.months import tenant_id_of
from tests.rows import NOW


@pytest.fixture
def operator(fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> tuple[CliRunner, int]:
    """The CLI on a database with one tenant (so no command needs --tenant)."""
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", fresh_engine.url.render_as_string(hide_password=False))
    return CliRunner(), tenant_id_of(fresh_engine, make_tenant(fresh_engine, "acme").name)


def run(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, ["alerts", *args])
    assert result.exit_code == 0, result.output
    return result.output


def channels_alerted(engine: Engine, tenant_id: int, finding_id: int | None = None, **finding: str) -> list[str]:
    """Store a finding (or take the stored one) and queue its alert as new, as a reconcile does: which
    channels got it."""
    with session_factory(engine).begin() as session:
        if finding_id is None:
            stored = rows.finding(session, tenant_id, **finding)  # type: ignore[arg-type]
        else:
            stored = session.get_one(Finding, (tenant_id, finding_id))
        before = set(session.scalars(sa.select(AlertOutbox.id).where(AlertOutbox.tenant_id == tenant_id)))
        queue_finding_alert(
            session, tenant_id=tenant_id, finding=stored, previous_severity=None, previous_impact=None, now=NOW
        )
        return list(
            session.scalars(
                sa.select(AlertChannel.name)
                .join(AlertOutbox, AlertOutbox.channel_id == AlertChannel.id)
                .where(AlertOutbox.tenant_id == tenant_id, AlertOutbox.id.not_in(before or {0}))
                .order_by(AlertChannel.name)
            )
        )


def test_a_channel_takes_only_findings_meeting_all_its_conditions(
    operator: tuple[CliRunner, int], fresh_engine: Engine
) -> None:
    cli, tenant_id = operator
    hook = "https://hooks.example.com/tokenledger"
    run(cli, "add-channel", "--name", "everything", "--kind", "webhook", "--url", hook)
    run(cli, "add-channel", "--name", "big-critical", "--kind", "webhook", "--url", hook,
        "--min-severity", "critical", "--min-impact-usd", "100")  # fmt: skip
    run(cli, "add-channel", "--name", "big-any", "--kind", "webhook", "--url", hook, "--min-impact-usd", "1000")
    run(cli, "add-channel", "--name", "openai-prices", "--kind", "webhook", "--url", hook, "--finding-kind",
        "price_drift", "--provider", "openai", "--account", "proj_web", "--account", "proj_main")  # fmt: skip

    listed = run(cli, "list")
    assert "kinds price_drift; providers openai; accounts proj_main, proj_web" in listed

    alerted = channels_alerted(fresh_engine, tenant_id, severity="critical", impact="150", kind="price_drift")
    assert alerted == ["big-critical", "everything", "openai-prices"]
    assert channels_alerted(fresh_engine, tenant_id, severity="critical", impact="50") == ["everything"]
    assert channels_alerted(fresh_engine, tenant_id, severity="warning", impact="500") == ["everything"]
    assert channels_alerted(fresh_engine, tenant_id, severity="info", impact="-2500") == ["big-any"]
    assert channels_alerted(
        fresh_engine, tenant_id, severity="warning", impact="5", kind="price_drift", account="proj_other"
    ) == ["everything"]


def test_a_route_naming_an_unknown_finding_kind_is_refused(operator: tuple[CliRunner, int]) -> None:
    cli, _ = operator
    result = cli.invoke(
        app, ["alerts", "add-channel", "--name", "x", "--kind", "slack", "--url", "https://hooks.slack.com/services/x",
              "--finding-kind", "overbilling"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "--finding-kind must be one of" in result.output
    assert "got 'overbilling'" in result.output


def outbox_of(engine: Engine, tenant_id: int) -> list[tuple[str, str, int]]:
    with session_factory(engine)() as session:
        return [
            (row.topic, row.status, row.attempts)
            for row in session.scalars(
                sa.select(AlertOutbox).where(AlertOutbox.tenant_id == tenant_id).order_by(AlertOutbox.id)
            )
        ]


def test_an_operator_disables_enables_rotates_replays_and_removes_a_channel(
    operator: tuple[CliRunner, int], fresh_engine: Engine
) -> None:
    cli, tenant_id = operator
    with http_receiver() as receiver:
        added = run(cli, "add-channel", "--name", "hooks", "--kind", "webhook", "--url", receiver.url)
        first_secret = added.strip().splitlines()[-1]

        run(cli, "disable", "--channel", "hooks")
        assert channels_alerted(fresh_engine, tenant_id, severity="critical") == []
        run(cli, "enable", "--channel", "hooks")
        assert channels_alerted(fresh_engine, tenant_id, severity="critical") == ["hooks"]

        receiver.statuses = [500]
        with httpx.Client() as http:
            deliver_due(session_factory(fresh_engine), clock=FixedClock(NOW), http=http, max_attempts=1)
        assert outbox_of(fresh_engine, tenant_id) == [("finding", "failed", 1)]

        rotated = run(cli, "rotate-secret", "--channel", "hooks")
        second_secret = rotated.strip().splitlines()[-1]
        assert second_secret != first_secret
        assert "1 failed alerts of 'hooks' queued again" in run(cli, "replay", "--channel", "hooks")
        assert "deliveries" in run(cli, "list").lower()
        assert run(cli, "deliver").strip() == "sent 1, will retry 0, failed 0"
        request = receiver.requests[-1]
        assert request.headers["x-tokenledger-signature"] == signature(second_secret, request.body)

        assert "removed (0 pending alerts marked failed)" in run(cli, "remove", "--channel", "hooks")
        assert "no alert channel yet" in run(cli, "list")
        assert outbox_of(fresh_engine, tenant_id) == [("finding", "sent", 1)]  # the log stays


def test_only_a_webhook_has_a_secret_to_rotate(operator: tuple[CliRunner, int]) -> None:
    cli, _ = operator
    run(cli, "add-channel", "--name", "ops", "--kind", "slack", "--url", "https://hooks.slack.com/services/T1/B2/c3")
    result = cli.invoke(app, ["alerts", "rotate-secret", "--channel", "ops"])
    assert result.exit_code == 1
    assert "only a webhook has a signing secret" in result.output
    missing = cli.invoke(app, ["alerts", "disable", "--channel", "nope"])
    assert (missing.exit_code, missing.output.strip()) == (1, "error: no alert channel named 'nope'")


def test_a_muted_finding_or_scope_alerts_nobody_until_the_silence_ends(
    operator: tuple[CliRunner, int], fresh_engine: Engine
) -> None:
    cli, tenant_id = operator
    run(cli, "add-channel", "--name", "everything", "--kind", "webhook", "--url", "https://hooks.example.com/x")
    with session_factory(fresh_engine).begin() as session:
        noisy_id = rows.finding(session, tenant_id, severity="critical", impact="500", account="proj_noisy").id

    run(cli, "mute", "--finding", str(noisy_id), "--until", "2099-01-01", "--reason", "credit promised")
    run(cli, "mute", "--provider", "anthropic", "--kind", "spend_spike", "--until", "2099-01-01")
    listed = run(cli, "list")
    assert "credit promised" in listed
    assert "kind spend_spike, provider anthropic" in listed

    assert channels_alerted(fresh_engine, tenant_id, noisy_id) == []
    muted_scope = {"provider": "anthropic", "kind": "spend_spike"}
    assert channels_alerted(fresh_engine, tenant_id, severity="critical", **muted_scope) == []
    assert channels_alerted(fresh_engine, tenant_id, severity="critical", provider="anthropic") == ["everything"]
    assert channels_alerted(fresh_engine, tenant_id, severity="critical", kind="spend_spike") == ["everything"]

    silence = next(line for line in listed.splitlines() if "credit promised" in line).split("│")[1].strip()
    run(cli, "unmute", "--silence", silence.lstrip("#"))
    assert channels_alerted(fresh_engine, tenant_id, noisy_id) == ["everything"]
    past = cli.invoke(app, ["alerts", "mute", "--kind", "spend_spike", "--until", "2020-01-01"])
    assert (past.exit_code, "must be in the future" in past.output) == (1, True)
