"""Shared pieces of the benchmark scripts: a fresh database, a server process, and a fast load generator."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ledger.access import auth
from ledger.storage.database import create_db_engine, session_factory, start_embedded_postgres, upgrade

ROOT = Path(__file__).resolve().parent.parent


def fresh_database(name: str) -> str:
    """A new, migrated database on TOKENLEDGER_DATABASE_URL's server (or an embedded one)."""
    server = os.environ.get("TOKENLEDGER_DATABASE_URL") or start_embedded_postgres(ROOT / "var" / "bench")
    admin_url = make_url(server).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


def conninfo(url: str) -> str:
    """A SQLAlchemy URL of the database as a libpq connection string, for psycopg directly."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def tenant_with_key(url: str, role: str = "ingest") -> tuple[int, str]:
    engine = create_db_engine(url, pool_size=1)
    name = f"bench-{secrets.token_hex(3)}"
    with session_factory(engine).begin() as session:
        tenant = auth.create_tenant(session, name)
        key = auth.create_key(session, name, role)
        tenant_id = tenant.id
    engine.dispose()
    return tenant_id, key.token


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(url: str, app_factory: str, extra_env: dict[str, str] | None = None) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "TOKENLEDGER_DATABASE_URL": url,
        "TOKENLEDGER_SCHEDULER_ENABLED": "false",
        "PYTHONPATH": str(ROOT),
        **(extra_env or {}),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app_factory,
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--workers",
            os.environ.get("BENCH_WORKERS", "1"),
        ],
        env=env,
        cwd=ROOT,
    )
    base_url = f"http://127.0.0.1:{port}"
    wait_until_healthy(base_url, process)
    return Server(process, base_url)


def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes]) -> None:
    """Return once the server at `base_url` answers /healthz; kill it and raise if it has not within a minute."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start")


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @classmethod
    def combined(cls, parts: list[LoadResult]) -> LoadResult:
        """Several runs of the same load as one."""
        return cls(
            sum(part.requests for part in parts),
            sum(part.seconds for part in parts),
            [latency for part in parts for latency in part.latencies_ms],
            sum(part.errors for part in parts),
        )

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")


async def _load(
    port: int,
    path: str,
    headers: dict[str, str],
    body_for: Callable[[int, int], bytes],
    concurrency: int,
    seconds: float | None,
    total: int | None,
) -> LoadResult:
    """Keep-alive HTTP/1.1 POSTs from `concurrency` connections, for `seconds` or until `total` requests."""
    latencies: list[float] = []
    errors = 0
    sent = 0
    stop_at = time.perf_counter() + seconds if seconds else None
    header_lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())

    async def worker(worker_id: int) -> None:
        nonlocal errors, sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        while True:
            if stop_at and time.perf_counter() >= stop_at:
                break
            if total is not None:
                if sent >= total:
                    break
                sent += 1
            body = body_for(worker_id, n)
            n += 1
            request = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"{header_lines}Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            if b" 202 " not in status_line and b" 200 " not in status_line:
                errors += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return LoadResult(len(latencies), time.perf_counter() - started, latencies, errors)


def run_load(
    base_url: str,
    path: str,
    headers: dict[str, str],
    body_for: Callable[[int, int], bytes],
    *,
    concurrency: int,
    seconds: float | None = None,
    total: int | None = None,
) -> LoadResult:
    port = int(base_url.rsplit(":", 1)[1])
    return asyncio.run(_load(port, path, headers, body_for, concurrency, seconds, total))


def dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
