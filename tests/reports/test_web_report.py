"""The web report through the real app: signing in and out, every page of a reconciled month and of an empty
one, status changes, downloads, and access control (tenant scoping, roles, CSRF, revoked keys)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ledger.access import auth
from ledger.storage.database import session_factory
from ledger.storage.tables import AlertChannel
from reports.web.signin import SESSION_COOKIE, SIGNIN_COOKIE, Signer
from tests import rows
from tests.conftest import make_tenant
from tests.months import Month, csrf_of, sign_in


def test_an_unauthenticated_visit_is_sent_to_sign_in_and_back(client: TestClient, october: Month) -> None:
    answer = client.get("/report/findings?period=2026-10", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/report/signin?next=/report/findings%3Fperiod%3D2026-10"
    form = client.get(answer.headers["location"])
    assert 'value="/report/findings?period=2026-10"' in form.text


def test_signing_in_sets_an_http_only_same_site_session_cookie(client: TestClient, october: Month) -> None:
    form = client.get("/report/signin")
    token = form.text.split('name="token" value="')[1].split('"')[0]
    answer = client.post(
        "/report/signin",
        data={"key": october.key("read"), "token": token, "next": "/report/drift"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/report/drift"
    cookie = next(value for value in answer.headers.get_list("set-cookie") if value.startswith("tokenledger_report="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    assert "Path=/report/" in cookie
    assert october.key("read") not in cookie


def test_a_wrong_revoked_or_ingest_key_does_not_sign_in(client: TestClient, october: Month) -> None:
    def attempt(key: str) -> tuple[int, str]:
        form = client.get("/report/signin")
        token = form.text.split('name="token" value="')[1].split('"')[0]
        answer = client.post("/report/signin", data={"key": key, "token": token}, follow_redirects=False)
        return answer.status_code, answer.text

    status, page = attempt("tl_000000000000.nope")
    assert status == 401
    assert "not valid, or it was revoked" in page
    status, page = attempt(october.key("ingest"))
    assert status == 403
    assert "A key of role ingest cannot read reports" in page


def test_the_sign_in_form_needs_its_own_token(client: TestClient, october: Month) -> None:
    answer = client.post("/report/signin", data={"key": october.key("read"), "token": "forged"}, follow_redirects=False)
    assert answer.status_code == 403
    assert "tokenledger_report" not in answer.headers.get("set-cookie", "")


def test_sign_in_never_redirects_to_another_site(client: TestClient, october: Month) -> None:
    form = client.get("/report/signin")
    token = form.text.split('name="token" value="')[1].split('"')[0]
    answer = client.post(
        "/report/signin",
        data={"key": october.key("read"), "token": token, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/report/"


def test_the_overview_shows_money_per_provider_findings_imports_and_unpriced_models(
    client: TestClient, october: Month
) -> None:
    sign_in(client, october.key("read"))
    page = client.get("/report/?period=2026-10")
    assert page.status_code == 200
    html = page.text
    assert "2,400.00 USD" in html
    assert "2,532.50 USD" in html
    assert "+120.50 USD" in html
    assert "+5.02%" in html
    assert 'data-chart="cost-by-provider-data"' in html
    assert "No statement for anthropic in 2026-10 yet:" in html
    assert "tokenledger import anthropic --period 2026-10" in html
    assert "<strong>1</strong> critical" in html
    assert "my-finetune" in html
    assert "40,000" in html
    assert "openai" in html
    assert "62" in html
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["cache-control"] == "no-store"


def test_an_empty_month_says_what_to_do_next(client: TestClient, october: Month) -> None:
    sign_in(client, october.key("read"))
    overview = client.get("/report/?period=2026-09").text
    assert "nothing to reconcile" in overview  # no usage, no statement: reconciling would find nothing
    assert "tokenledger reconcile --period 2026-09" not in overview
    assert "tokenledger import openai --period 2026-09" in overview
    assert "No usage logged and no statement imported for 2026-09" in client.get("/report/drift?period=2026-09").text
    assert "No usage logged for 2026-09" in client.get("/report/providers?period=2026-09").text
    monthly = client.get("/report/monthly?period=2026-09").text
    assert "nothing to reconcile" in monthly
    assert "tokenledger reconcile --period 2026-09" not in monthly
    assert "No findings for 2026-09" in client.get("/report/findings?period=2026-09").text


def test_drift_over_time_charts_and_tabulates_each_day_in_usd(client: TestClient, october: Month) -> None:
    sign_in(client, october.key("read"))
    html = client.get("/report/drift?period=2026-10&provider=openai&model=gpt-5.4-mini").text
    assert '<script type="application/json" id="money-1-data">' in html
    assert '"labels":["2026-10-01","2026-10-02"' in html
    assert '<th scope="row">2026-10-01</th><td class="num" data-label="Expected">' in html
    assert '<td class="num" data-label="Billed">840.00 USD</td>' in html
    assert '<option value="gpt-5.4-mini" selected>gpt-5.4-mini</option>' in html


def test_the_providers_page_shows_latency_errors_and_substitution(client: TestClient, october: Month) -> None:
    sign_in(client, october.key("read"))
    html = client.get("/report/providers?period=2026-10").text
    assert "300 ms / 2.5 s / 2.5 s" in html
    assert "rate_limit 2.00%" in html
    assert "asked: gpt-5.4-mini" in html
    assert "8,000.00 USD" in html


def test_findings_are_listed_and_filtered(client: TestClient, october: Month) -> None:
    sign_in(client, october.key("read"))
    html = client.get("/report/findings?period=2026-10").text
    assert f'href="/report/findings/{october.finding_id}"' in html
    assert f'href="/report/findings/{october.spike_id}"' in html
    assert ">2026-10-01 – 2026-10-31</td>" in html  # the month by its last day, not the next month's first
    only_spikes = client.get("/report/findings?period=2026-10&kind=spend_spike").text
    assert f"/report/findings/{october.spike_id}" in only_spikes
    assert f'/report/findings/{october.finding_id}"' not in only_spikes
    assert "matches these filters" in client.get("/report/findings?period=2026-10&status=disputed").text


def test_a_finding_shows_its_evidence_in_words_and_numbers_and_its_series(client: TestClient, october: Month) -> None:
    sign_in(client, october.key("read"))
    html = client.get(f"/report/findings/{october.finding_id}").text
    assert "billed more than logged" in html
    assert "<dt>Overcharge USD</dt>" in html
    assert "120.50 USD" in html
    assert "<dt>Billed</dt>" in html
    assert "1,260,000" in html
    assert "<dt>Token abs tolerance</dt>" in html
    assert 'id="finding-series-data"' in html
    assert '<th scope="row">2026-10-01</th><td class="num">600,000</td><td class="num">630,000</td>' in html
    spike = client.get(f"/report/findings/{october.spike_id}").text
    assert "95.00 USD" in spike
    assert "10.00 USD" in spike


def test_an_admin_changes_a_status_from_the_page_and_sees_the_history(client: TestClient, october: Month) -> None:
    sign_in(client, october.key("admin"))
    page = client.get(f"/report/findings/{october.finding_id}").text
    answer = client.post(
        f"/report/findings/{october.finding_id}/status",
        data={"csrf": csrf_of(page), "status": "acknowledged", "note": "asked OpenAI support"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    after = client.get(answer.headers["location"]).text
    assert '<dd class="status-acknowledged" id="status">acknowledged</dd>' in after
    assert "asked OpenAI support" in after
    assert f"<code>{october.keys.key_ids['admin']}</code>" in after


def test_a_read_key_sees_no_status_form_and_cannot_post_one(client: TestClient, october: Month) -> None:
    sign_in(client, october.key("read"))
    page = client.get(f"/report/findings/{october.finding_id}").text
    assert "Only an admin key can change a finding" in page
    answer = client.post(
        f"/report/findings/{october.finding_id}/status", data={"csrf": csrf_of(page), "status": "resolved"}
    )
    assert answer.status_code == 403
    assert "needs an admin key" in answer.text
    assert '<dd class="status-open" id="status">open</dd>' in client.get(f"/report/findings/{october.finding_id}").text


def test_a_post_without_the_sessions_csrf_token_is_refused(client: TestClient, october: Month) -> None:
    sign_in(client, october.key("admin"))
    answer = client.post(f"/report/findings/{october.finding_id}/status", data={"csrf": "forged", "status": "resolved"})
    assert answer.status_code == 403
    assert client.post("/report/signout", data={}).status_code == 403


def test_another_tenants_pages_and_downloads_are_never_reachable(
    client: TestClient, engine: Engine, october: Month
) -> None:
    stranger = make_tenant(engine)
    sign_in(client, stranger.read["Authorization"].split(" ")[1])
    assert client.get(f"/report/findings/{october.finding_id}").status_code == 404
    admin = make_tenant(engine)
    sign_in(client, admin.admin["Authorization"].split(" ")[1])
    page = client.get("/report/findings?period=2026-10").text
    assert (
        client.post(
            f"/report/findings/{october.finding_id}/status", data={"csrf": csrf_of(page), "status": "resolved"}
        ).status_code
        == 404
    )
    download = client.get("/report/monthly.csv?period=2026-10")
    assert download.status_code == 200
    assert download.text.strip() == ",".join(
        [
            "provider",
            "account",
            "model",
            "logged_tokens",
            "billed_tokens",
            "token_categories",
            "expected_cost",
            "billed_cost",
            "difference",
            "percent",
            "currency",
            "findings",
        ]
    )


def test_the_monthly_report_downloads_as_csv_and_json(client: TestClient, october: Month) -> None:
    sign_in(client, october.key("read"))
    page = client.get("/report/monthly?period=2026-10").text
    assert 'href="/report/monthly.csv?period=2026-10"' in page
    assert "Total (USD)" in page
    download = client.get("/report/monthly.csv?period=2026-10")
    assert download.headers["content-disposition"] == 'attachment; filename="tokenledger-2026-10.csv"'
    lines = list(csv.DictReader(io.StringIO(download.text)))
    assert [line["model"] for line in lines] == ["claude-haiku-4-5", "gpt-5.4-mini", "my-finetune", ""]
    as_json = client.get("/report/monthly.json?period=2026-10")
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.json()["totals"][0]["difference"] == "120.5"
    assert client.get("/report/monthly.pdf?period=2026-10").status_code == 422


def test_a_revoked_keys_session_stops_at_once(client: TestClient, engine: Engine, october: Month) -> None:
    sign_in(client, october.key("read"))
    assert client.get("/report/?period=2026-10").status_code == 200
    with session_factory(engine).begin() as session:
        auth.revoke_key(session, october.keys.key_ids["read"], now=datetime.now(UTC))
    answer = client.get("/report/?period=2026-10", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/report/signin")


def test_signing_out_ends_the_session(client: TestClient, october: Month) -> None:
    sign_in(client, october.key("read"))
    page = client.get("/report/?period=2026-10").text
    answer = client.post("/report/signout", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert answer.status_code == 303
    assert client.get("/report/", follow_redirects=False).status_code == 303


def test_a_forged_or_tampered_cookie_is_not_a_session(client: TestClient, october: Month) -> None:
    sign_in(client, october.key("read"))
    value = client.cookies.get("tokenledger_report")
    assert value
    body, mac = value.rsplit(".", 1)
    client.cookies.clear()
    client.cookies.set("tokenledger_report", body + "." + ("0" if mac[0] != "0" else "1") + mac[1:], path="/report/")
    assert client.get("/report/", follow_redirects=False).status_code == 303


def test_the_alerts_page_lists_channels_without_secrets_and_the_delivery_log(
    client: TestClient, engine: Engine, october: Month
) -> None:
    with session_factory(engine).begin() as session:
        rows.channel(
            session,
            october.tenant_id,
            name="slack-ops",
            kind="slack",
            config={"url": "https://hooks.slack.com/services/T000/B000/XXXXSECRET"},
        )
    sign_in(client, october.key("read"))
    html = client.get("/report/alerts").text
    assert "slack-ops" in html
    assert "https://hooks.slack.com/…" in html
    assert "XXXXSECRET" not in html
    assert "No alert was queued yet" in html


def test_a_bad_period_or_unknown_page_is_an_html_error(client: TestClient, october: Month) -> None:
    sign_in(client, october.key("read"))
    bad = client.get("/report/?period=October")
    assert bad.status_code == 422
    assert "period must look like 2026-10" in bad.text
    missing = client.get("/report/nowhere")
    assert missing.status_code == 404
    assert "There is no such page." in missing.text


def test_input_the_database_cannot_hold_is_an_html_error_not_a_server_error(client: TestClient, october: Month) -> None:
    sign_in(client, october.key("admin"))
    page = client.get(f"/report/findings/{october.finding_id}").text

    beyond_any_id = client.get(f"/report/findings/{2**63}")
    nul_filter = client.get("/report/findings?period=2026-10&provider=open%00ai")
    nul_note = client.post(
        f"/report/findings/{october.finding_id}/status",
        data={"csrf": csrf_of(page), "status": "resolved", "note": "see\x00ticket"},
    )

    assert beyond_any_id.status_code == 404
    assert nul_filter.status_code == 422
    assert "provider holds a NUL character" in nul_filter.text
    assert nul_note.status_code == 422
    assert "note holds a NUL character" in nul_note.text
    assert '<dd class="status-open" id="status">open</dd>' in client.get(f"/report/findings/{october.finding_id}").text


def test_the_chart_library_is_served_with_its_licence(client: TestClient) -> None:
    library = client.get("/report/static/chart.umd.min.js")
    assert library.status_code == 200
    assert "javascript" in library.headers["content-type"]
    assert library.text.startswith("/*!\n * Chart.js v4")
    assert "MIT License" in client.get("/report/static/chart.js.LICENSE.md").text


def test_an_admin_manages_channels_on_the_alerts_page_and_a_read_key_cannot(
    client: TestClient, engine: Engine, october: Month
) -> None:
    with session_factory(engine).begin() as session:
        rows.channel(session, october.tenant_id, name="hooks", config={"url": "http://127.0.0.1:9/h", "secret": "old"})
    sign_in(client, october.key("read"))
    page = client.get("/report/alerts").text
    assert "Manage" not in page
    refused = client.post("/report/alerts/channels/hooks/disable", data={"csrf": csrf_of(page)})
    assert refused.status_code == 403

    client.cookies.clear()
    sign_in(client, october.key("admin"))
    page = client.get("/report/alerts").text
    assert ">disable</button>" in page
    done = client.post("/report/alerts/channels/hooks/disable", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, "/report/alerts")
    page = client.get("/report/alerts").text
    assert ">enable</button>" in page
    rotated = client.post("/report/alerts/channels/hooks/rotate-secret", data={"csrf": csrf_of(page)})
    assert rotated.status_code == 200
    with session_factory(engine)() as session:
        secret = session.scalars(
            sa.select(AlertChannel.config).where(AlertChannel.tenant_id == october.tenant_id)
        ).one()["secret"]
    assert secret != "old"
    assert secret in rotated.text  # shown once, on this answer
    assert secret not in client.get("/report/alerts").text
    forged = client.post("/report/alerts/channels/hooks/remove", data={"csrf": "forged"})
    assert forged.status_code in (400, 403)
    removed = client.post("/report/alerts/channels/hooks/remove", data={"csrf": csrf_of(rotated.text)})
    assert "No alert channel yet" in removed.text


def test_the_drift_page_counts_statement_lines_imported_since_it_was_last_shown(
    client: TestClient, october: Month, engine: Engine
) -> None:
    sign_in(client, october.key("read"))
    before = client.get("/report/drift?period=2026-10&provider=openai").text
    assert 'data-figure="billed">2,520.00 USD</strong>' in before
    with session_factory(engine).begin() as session:
        rows.statement_line(session, october.tenant_id, day=date(2026, 10, 4), quantity=1_000, amount="10.00")
    after = client.get("/report/drift?period=2026-10&provider=openai").text
    assert 'data-figure="billed">2,530.00 USD</strong>' in after


def test_a_copy_of_the_cookie_opens_nothing_after_signing_out(client: TestClient, october: Month) -> None:
    sign_in(client, october.key("read"))
    copied = client.cookies.get("tokenledger_report")
    assert copied
    page = client.get("/report/?period=2026-10").text
    client.post("/report/signout", data={"csrf": csrf_of(page)}, follow_redirects=False)

    client.cookies.clear()
    client.cookies.set("tokenledger_report", copied, path="/report/")
    answer = client.get("/report/?period=2026-10", follow_redirects=False)

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/report/signin")


def test_signing_out_ends_only_that_session(client: TestClient, october: Month) -> None:
    sign_in(client, october.key("read"))
    first = client.cookies.get("tokenledger_report")
    client.cookies.clear()
    sign_in(client, october.key("read"))
    page = client.get("/report/?period=2026-10").text
    client.post("/report/signout", data={"csrf": csrf_of(page)}, follow_redirects=False)

    client.cookies.clear()
    client.cookies.set("tokenledger_report", first or "", path="/report/")

    assert client.get("/report/?period=2026-10", follow_redirects=False).status_code == 200


def test_non_ascii_in_the_cookie_csrf_or_sign_in_token_is_refused_not_a_server_error(
    client: TestClient, october: Month
) -> None:
    form = client.get("/report/signin")
    bad_token = client.post(
        "/report/signin", data={"key": october.key("read"), "token": "jeton-é"}, follow_redirects=False
    )
    non_ascii_key = client.post(
        "/report/signin",
        data={"key": "tl_é.ü", "token": form.text.split('name="token" value="')[1].split('"')[0]},
        follow_redirects=False,
    )
    sign_in(client, october.key("admin"))
    session = client.cookies.get("tokenledger_report") or ""
    bad_csrf = client.post(f"/report/findings/{october.finding_id}/status", data={"csrf": "é", "status": "resolved"})
    client.cookies.clear()
    cookie = f"tokenledger_report={session[:-1]}é".encode()  # as a browser may send it: UTF-8 bytes
    bad_cookie = client.get("/report/?period=2026-10", headers={"Cookie": cookie}, follow_redirects=False)

    assert bad_token.status_code == 403
    assert "token: the sign-in form expired" in bad_token.text
    assert non_ascii_key.status_code == 401
    assert bad_csrf.status_code == 403
    assert "csrf: the form is out of date" in bad_csrf.text
    assert bad_cookie.status_code == 303
    assert bad_cookie.headers["location"].startswith("/report/signin")


def test_a_signed_cookie_value_opens_only_the_cookie_it_was_signed_for_and_only_unaltered() -> None:
    signer = Signer(b"the report's secret")
    value = signer.dumps({"s": "form-token", "i": 1_790_000_000}, cookie_name=SIGNIN_COOKIE)
    altered = value[:-1] + ("B" if value[-1] == "A" else "A")

    assert signer.loads(value, cookie_name=SIGNIN_COOKIE) == {"s": "form-token", "i": 1_790_000_000}
    assert signer.loads(value, cookie_name=SESSION_COOKIE) is None
    assert Signer(b"another secret").loads(value, cookie_name=SIGNIN_COOKIE) is None
    assert signer.loads(altered, cookie_name=SIGNIN_COOKIE) is None
