"""Web report page latency at the scale of a month of 10M usage events.

Fills a fresh database (COPY) with what such a month leaves behind — the hourly rollup (`--keys-per-hour`
distinct provider × account × key × model × app × tier × band rows per hour, their requests summing to
`--events`), daily statement lines, drift rows, findings with 31-day series, runs and imports — then serves
the real app with uvicorn, signs in as a browser does and renders each page `--renders` times (after two
warm-ups), printing p50 / p95 per page against the 200 ms target; then the drift and spend pages while usage
arrives (new usage before every render) against the drift page after a change of prices (the whole month priced
again), with their ratio.

Usage: python -m benchmarks.report_pages [--events 10000000] [--keys-per-hour 100] [--renders 30]
Uses TOKENLEDGER_DATABASE_URL's server (a fresh database `tokenledger_bench_reports`) or an embedded one.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import psycopg
from fastapi import FastAPI

from benchmarks.common import conninfo, fresh_database, start_server, tenant_with_key
from ledger.periods import Period
from ledger.server import create_app
from ledger.settings import get_settings
from ledger.sink import latency
from ledger.sink.rollup import ALL_COLUMNS, SUM_COLUMNS

PERIOD = Period.month("2026-10")
TARGET_MS = 200.0
PROVIDERS = {
    "openai": ("gpt-5.4", "gpt-5.4-mini", "gpt-5.4-nano", "o4-mini"),
    "anthropic": ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-5"),
    "google": ("gemini-2.5-pro", "gemini-2.5-flash"),
    "mistral": ("mistral-large-latest", "mistral-small-latest", "codestral-latest"),
}
ACCOUNTS = ("proj_main", "proj_batch", "proj_eval")
APPS = ("support-bot", "search", "agent", "summarizer", "evals")
CATEGORIES = ("uncached_input", "cached_input", "output")


def fill(url: str, tenant_id: int, events: int, keys_per_hour: int) -> dict[str, int]:
    """COPY a month of rollup rows, statement lines, drift rows, findings, runs and imports."""
    rng = random.Random(7)
    scopes = [(provider, model) for provider, models in PROVIDERS.items() for model in models]
    hours = int((PERIOD.end - PERIOD.start) / timedelta(hours=1))
    per_row = max(1, events // (hours * keys_per_hour))
    counts: dict[str, int] = {}
    with psycopg.connect(conninfo(url)) as conn:
        with conn.cursor().copy(f"COPY usage_hourly ({', '.join(ALL_COLUMNS)}) FROM STDIN") as copy:
            for hour_index in range(hours):
                hour = PERIOD.start + timedelta(hours=hour_index)
                for key in range(keys_per_hour):
                    provider, model = scopes[key % len(scopes)]
                    sums: dict[str, int | Decimal] = dict.fromkeys(SUM_COLUMNS, 0)
                    sums.update(
                        requests=per_row,
                        input_tokens=per_row * 1_200,
                        output_tokens=per_row * 300,
                        cache_read_input_tokens=per_row * 400,
                        status_2xx=per_row - 3,
                        status_429=3,
                        error_rate_limit=3,
                        finish_stop=per_row - 5,
                        finish_length=5,
                        streamed=per_row // 2,
                        streamed_missing_finish=1,
                        reported_cost=Decimal(0),
                    )
                    histogram = latency.histogram_of(rng.choices((300, 600, 900, 1_500, 4_000), k=40))
                    copy.write_row(
                        (
                            tenant_id,
                            hour,
                            provider,
                            ACCOUNTS[key % len(ACCOUNTS)],
                            f"key_{key}",
                            model,
                            model,
                            APPS[key % len(APPS)],
                            "standard",
                            key % 3,
                            *sums.values(),
                            None,
                            None,
                            histogram,
                            histogram,
                        )
                    )
        counts["usage_hourly"] = hours * keys_per_hour
        with conn.cursor().copy(
            "COPY statement_lines (tenant_id, source, document_id, provider, account, api_key_id, model_raw, model, "
            "period_start, period_end, usage_type, quantity, unit, amount, currency, final, import_period_start, "
            "location, raw) FROM STDIN"
        ) as copy:
            lines = 0
            for day in PERIOD.days():
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                for provider, model in scopes:
                    for account in ACCOUNTS:
                        for category in CATEGORIES:
                            copy.write_row(
                                (
                                    tenant_id,
                                    provider,
                                    1,
                                    provider,
                                    account,
                                    None,
                                    model,
                                    model,
                                    start,
                                    start + timedelta(days=1),
                                    category,
                                    Decimal(rng.randint(10**6, 10**8)),
                                    "tokens",
                                    Decimal("12.3400"),
                                    "USD",
                                    True,
                                    PERIOD.start,
                                    f"line {lines}",
                                    "{}",
                                )
                            )
                            lines += 1
        counts["statement_lines"] = lines
        computed = datetime(2026, 11, 2, tzinfo=UTC)
        with conn.cursor().copy(
            "COPY drift_rows (tenant_id, period_start, provider, account, model, period_end, logged_tokens, "
            "billed_tokens, logged_by_category, billed_by_category, expected_cost, billed_cost, difference, percent, "
            "currency, computed_at) FROM STDIN"
        ) as copy:
            for provider, model in scopes:
                for account in ACCOUNTS:
                    expected = Decimal(rng.randint(100, 90_000)) / 10
                    billed = expected * Decimal("1.03")
                    copy.write_row(
                        (
                            tenant_id,
                            PERIOD.start,
                            provider,
                            account,
                            model,
                            PERIOD.end,
                            10**9,
                            10**9,
                            json.dumps({"uncached_input": 10**9}),
                            json.dumps({"uncached_input": 10**9}),
                            expected,
                            billed,
                            billed - expected,
                            Decimal("3.00"),
                            "USD",
                            computed,
                        )
                    )
        counts["drift_rows"] = len(scopes) * len(ACCOUNTS)
        kinds = ("quantity_mismatch", "cache_mischarge", "price_drift", "spend_spike", "missing_finish_reason")
        with conn.cursor().copy(
            "COPY findings (tenant_id, fingerprint, kind, severity, status, provider, account, model, period_start, "
            "period_end, impact_usd, evidence, summary, first_seen, last_seen) FROM STDIN"
        ) as copy:
            for n in range(300):
                provider, model = scopes[n % len(scopes)]
                series = [{"day": day.isoformat(), "logged": 10**7, "billed": 10**7 + n} for day in PERIOD.days()]
                evidence = {
                    "expected": 10**9,
                    "billed": 10**9 + n,
                    "difference": n,
                    "series": series,
                    "tolerance": {"token_rel_tolerance": "0.005", "token_abs_tolerance": 1000},
                }
                copy.write_row(
                    (
                        tenant_id,
                        f"fp{n:05d}",
                        kinds[n % len(kinds)],
                        ("info", "warning", "critical")[n % 3],
                        "open",
                        provider,
                        ACCOUNTS[n % len(ACCOUNTS)],
                        model,
                        PERIOD.start,
                        PERIOD.end,
                        Decimal(n) * Decimal("1.5"),
                        json.dumps(evidence),
                        f"finding {n}",
                        computed,
                        computed,
                    )
                )
        counts["findings"] = 300
        for day in PERIOD.days():
            started = datetime(day.year, day.month, day.day, 7, tzinfo=UTC)
            conn.execute(
                "INSERT INTO reconciliation_runs (tenant_id, period_start, period_end, trigger, started_at, "
                "finished_at, status, counts) VALUES (%s, %s, %s, 'schedule', %s, %s, 'succeeded', '{}')",
                (tenant_id, PERIOD.start, PERIOD.end, started, started + timedelta(seconds=20)),
            )
        for source in PROVIDERS:
            conn.execute(
                "INSERT INTO statement_imports (tenant_id, source, period_start, period_end, imported_at, documents, "
                "lines, unknown_lines) VALUES (%s, %s, %s, %s, %s, 31, 1000, 0)",
                (tenant_id, source, PERIOD.start, PERIOD.end, computed),
            )
        conn.execute("ANALYZE")
    counts["events_represented"] = per_row * hours * keys_per_hour
    return counts


def signed_in(base_url: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30, follow_redirects=True)
    form = client.get("/report/signin")
    match = re.search(r'name="token" value="([^"]+)"', form.text)
    if not match:
        raise RuntimeError("the sign-in page has no form token")
    answer = client.post("/report/signin", data={"key": token, "token": match[1]})
    if answer.status_code != 200 or "/signin" in str(answer.url):
        raise RuntimeError(f"sign-in failed: HTTP {answer.status_code}")
    return client


def measure(client: httpx.Client, path: str, renders: int, before: Callable[[int], None] | None = None) -> list[float]:
    """Milliseconds of `renders` renders of `path` after two warm-ups; `before(n)`, when given, runs before the
    n-th render, untimed."""
    for _ in range(2):
        client.get(path).raise_for_status()
    timings = []
    for n in range(renders):
        if before is not None:
            before(n)
        started = time.perf_counter()
        client.get(path).raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def new_usage(url: str, tenant_id: int, name: str) -> Callable[[int], None]:
    """Store a new hourly rollup row in the period's last hour (as ingest does; its trigger folds it into the
    daily rollup): usage arriving while pages are read, of a new key (`name` and the render's number)."""

    def store(n: int) -> None:
        with psycopg.connect(conninfo(url)) as conn:
            conn.execute(
                f"INSERT INTO usage_hourly ({', '.join(ALL_COLUMNS)}) SELECT tenant_id, hour, provider, account, "
                f"'{name}_{n}', {', '.join(ALL_COLUMNS[5:])} FROM usage_hourly WHERE tenant_id = %s AND hour = %s "
                "AND api_key_id = 'key_0'",
                (tenant_id, PERIOD.end - timedelta(hours=1)),
            )

    return store


def new_alias(url: str, tenant_id: int) -> Callable[[int], None]:
    """Store a new model alias of the tenant: its prices change, so every day of the period is priced again
    (what every new event cost when pages kept a whole period's priced usage)."""

    def store(n: int) -> None:
        with psycopg.connect(conninfo(url)) as conn:
            conn.execute(
                "INSERT INTO model_aliases (tenant_id, provider, label, model) VALUES (%s, 'openai', %s, 'gpt-5.4')",
                (tenant_id, f"bench-label-{n}"),
            )

    return store


def report(name: str, timings: list[float]) -> float:
    """Print a page's p50 and p95 against the target; return its p50."""
    ordered = sorted(timings)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    verdict = "ok" if p95 <= TARGET_MS else "SLOW"
    median = statistics.median(ordered)
    print(f"{name:<28} {median:>8.1f} {p95:>8.1f}   {verdict}")
    return median


def bench_app() -> FastAPI:
    """The service's app, configured from the environment `start_server` sets."""
    return create_app(get_settings())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--keys-per-hour", type=int, default=100)
    parser.add_argument("--renders", type=int, default=30)
    args = parser.parse_args()

    url = fresh_database("tokenledger_bench_reports")
    tenant_id, token = tenant_with_key(url, role="read")
    started = time.perf_counter()
    counts = fill(url, tenant_id, args.events, args.keys_per_hour)
    print(
        f"filled in {time.perf_counter() - started:.1f} s: "
        + ", ".join(f"{name} {count:,}" for name, count in counts.items())
    )

    server = start_server(url, "benchmarks.report_pages:bench_app")
    try:
        client = signed_in(server.base_url, token)
        try:
            finding_id = re.search(r'href="/report/findings/(\d+)"', client.get("/report/findings?period=2026-10").text)
            pages = {
                "overview": "/report/?period=2026-10",
                "drift over time": "/report/drift?period=2026-10",
                "drift, one model": "/report/drift?period=2026-10&provider=openai&model=gpt-5.4-mini",
                "spend": "/report/spend?period=2026-10",
                "findings": "/report/findings?period=2026-10",
                "finding": f"/report/findings/{finding_id[1] if finding_id else 1}",
                "providers": "/report/providers?period=2026-10",
                "monthly report": "/report/monthly?period=2026-10",
                "monthly CSV": "/report/monthly.csv?period=2026-10",
                "alerts": "/report/alerts",
            }
            print(f"\n{'page':<28} {'p50 ms':>8} {'p95 ms':>8}   target p95 <= {TARGET_MS:.0f} ms")
            for name, path in pages.items():
                report(name, measure(client, path, args.renders))
            # While usage streams in, every render follows new usage (of the period's last day); the baseline
            # is a render after a change of the tenant's prices, when every day of the month is priced again.
            drift = pages["drift over time"]
            streaming = report(
                "drift, after new usage", measure(client, drift, args.renders, new_usage(url, tenant_id, "late_drift"))
            )
            report(
                "spend, after new usage",
                measure(client, pages["spend"], args.renders, new_usage(url, tenant_id, "late_spend")),
            )
            repriced = report(
                "drift, after new prices", measure(client, drift, args.renders, new_alias(url, tenant_id))
            )
            print(f"\nafter new usage / after new prices (whole month priced), p50: {streaming / repriced:.2f}")
        finally:
            client.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
