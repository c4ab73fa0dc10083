"""What a flood of wrong keys does to a client whose key is valid: its p99 latency alone (the baseline), beside
a flood from another address with the failed-authentication throttle off (TOKENLEDGER_AUTH_FAILURES_PER_MINUTE
=0), and with it on (the defaults). The valid client posts single events from 127.0.0.1 at concurrency 4; the
flood posts them with a new random key each time from 127.0.0.2, paced at 100 requests a second over 16
connections. Cases alternate in slices, so that all see the same machine.

    python -m benchmarks.failed_keys
"""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime

from fastapi import FastAPI

from benchmarks.common import LoadResult, Server, dumps, fresh_database, start_server, tenant_with_key
from ledger.server import create_app
from ledger.settings import get_settings

SLICE_SECONDS = 5.0
SLICES = 4
VALID_CONCURRENCY = 4
FLOOD_CONCURRENCY = 16
FLOOD_RATE = 100.0


def service_app() -> FastAPI:
    """The service as `serve` builds it, from the environment."""
    return create_app(get_settings())


async def _client(
    port: int,
    source: str,
    key_for: object,
    concurrency: int,
    stop_at: float,
    result: LoadResult,
    rate: float | None = None,
) -> None:
    """`concurrency` keep-alive connections from `source`; with `rate`, each paces itself so that together
    they send at most `rate` requests a second (an open-loop flood that does not speed up when answered
    faster)."""

    async def worker(worker_id: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        n = 0
        next_at = time.perf_counter()
        while time.perf_counter() < stop_at:
            if rate is not None:
                next_at += concurrency / rate
                await asyncio.sleep(max(next_at - time.perf_counter(), 0))
            key = key_for() if callable(key_for) else key_for
            body = dumps(
                {
                    "event_id": f"{source}-{worker_id}-{n}-{secrets.token_hex(4)}",
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "provider": "openai",
                    "request_model": "gpt-5.4-mini",
                    "input_tokens": 100,
                    "output_tokens": 10,
                }
            )
            n += 1
            request = (
                f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            close = False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                lowered = line.lower()
                if lowered.startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                close = close or lowered.startswith(b"connection: close")
            await reader.readexactly(length)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.requests += 1
            if b" 202 " not in status_line:
                result.errors += 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        writer.close()

    await asyncio.gather(*(worker(w) for w in range(concurrency)))


def run_slice(server: Server, key: str, *, flood: bool) -> tuple[LoadResult, LoadResult]:
    port = int(server.base_url.rsplit(":", 1)[1])
    valid = LoadResult(0, SLICE_SECONDS, [], 0)
    wrong = LoadResult(0, SLICE_SECONDS, [], 0)

    async def both() -> None:
        stop_at = time.perf_counter() + SLICE_SECONDS
        tasks = [_client(port, "127.0.0.1", key, VALID_CONCURRENCY, stop_at, valid)]
        if flood:
            random_key = lambda: f"tl_{secrets.token_hex(6)}.{secrets.token_urlsafe(24)}"  # noqa: E731
            tasks.append(_client(port, "127.0.0.2", random_key, FLOOD_CONCURRENCY, stop_at, wrong, FLOOD_RATE))
        await asyncio.gather(*tasks)

    asyncio.run(both())
    return valid, wrong


def main() -> None:
    url = fresh_database("tokenledger_bench_failed_keys")
    _, key = tenant_with_key(url)
    throttled = start_server(url, "benchmarks.failed_keys:service_app")
    unthrottled = start_server(url, "benchmarks.failed_keys:service_app", {"TOKENLEDGER_AUTH_FAILURES_PER_MINUTE": "0"})
    cases: dict[str, list[LoadResult]] = {"alone": [], "flood, throttle off": [], "flood, throttle on": []}
    floods: dict[str, list[LoadResult]] = {"flood, throttle off": [], "flood, throttle on": []}
    try:
        run_slice(throttled, key, flood=False)  # warm-up
        run_slice(unthrottled, key, flood=False)
        for _ in range(SLICES):
            cases["alone"].append(run_slice(throttled, key, flood=False)[0])
            for name, server in (("flood, throttle off", unthrottled), ("flood, throttle on", throttled)):
                valid, wrong = run_slice(server, key, flood=True)
                cases[name].append(valid)
                floods[name].append(wrong)
    finally:
        throttled.stop()
        unthrottled.stop()
    baseline = LoadResult.combined(cases["alone"]).percentile(0.99)
    print(f"valid client: single-event POSTs at concurrency {VALID_CONCURRENCY}, {SLICES} slices of {SLICE_SECONDS} s")
    for name, parts in cases.items():
        valid = LoadResult.combined(parts)
        line = (
            f"  {name:20s} {valid.rate:7.0f} req/s  p50 {valid.p50:6.1f} ms  p99 {valid.percentile(0.99):6.1f} ms"
            f"  p99/baseline {valid.percentile(0.99) / baseline:5.2f}  errors {valid.errors}"
        )
        if name in floods:
            wrong = LoadResult.combined(floods[name])
            answered = wrong.requests - wrong.errors
            line += f"  | wrong keys {wrong.rate:6.0f} req/s (accepted {answered})"
        print(line)


if __name__ == "__main__":
    main()
