"""How long the Python client holds up the exit of the process that uses it when TokenLedger cannot take the
events: nothing listens at its address ("down"), or a server accepts the connection and never answers
("hung"). Each case runs a fresh interpreter that records 100 events and returns from its script; the figure
is its exit: from the end of the script to its last exit handler, measured inside the process (so the
interpreter's start-up, which varies with the machine's load, does not count). The baseline is the same
script against a TokenLedger stand-in that acknowledges at once, in the same run.

    python -m benchmarks.client_exit
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, free_port

SCRIPT = """
import atexit, sys, time
from datetime import UTC, datetime
from ledger.integrations.client import TokenLedger

returned = []
atexit.register(lambda: print(time.monotonic() - returned[0]))  # registered first, so it runs last
ledger = TokenLedger(sys.argv[1], "tl_bench.secret", flush_interval=3600)
for number in range(100):
    ledger.record({"event_id": f"exit-{number}", "occurred_at": datetime.now(UTC), "provider": "openai",
                   "request_model": "gpt-5.4-mini", "input_tokens": 10, "output_tokens": 2})
returned.append(time.monotonic())
"""
RUNS = 5


@contextmanager
def acknowledging_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            body = json.dumps({"accepted": 100, "duplicates": 0}).encode()
            self.send_response(202)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections, reads nothing, answers nothing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


def exit_seconds(url: str) -> tuple[float, int]:
    """Seconds one process took to exit, and how many of its events it left in a spill file (a fresh folder per run,
    so runs are independent)."""
    with tempfile.TemporaryDirectory() as spill_dir:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENLEDGER_SPILL_DIR": spill_dir}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, url],
            check=True,
            timeout=120,
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        seconds = float(done.stdout.split()[-1])
        spilled = {
            json.loads(line)["event_id"]
            for path in Path(spill_dir).rglob("*.ndjson")
            for line in path.read_text().splitlines()
        }
    return seconds, len(spilled)


def main() -> None:
    down_url = f"http://127.0.0.1:{free_port()}"
    times: dict[str, list[float]] = {"baseline": [], "down": [], "hung": []}
    spilled: dict[str, list[int]] = {"baseline": [], "down": [], "hung": []}
    with acknowledging_server() as ack_url, silent_server() as hung_url:
        for _ in range(RUNS):  # interleaved, so that all three cases see the same machine
            for case, url in (("baseline", ack_url), ("down", down_url), ("hung", hung_url)):
                seconds, count = exit_seconds(url)
                times[case].append(seconds)
                spilled[case].append(count)
    baseline = statistics.median(times["baseline"])
    print(f"exit of a process, median of {RUNS} interleaved runs of a script recording 100 events and returning")
    print(f"  baseline (TokenLedger acknowledges):   {baseline:6.2f} s")
    cases = (("down", "TokenLedger down (connection refused)"), ("hung", "TokenLedger accepts, never answers"))
    for case, label in cases:
        median = statistics.median(times[case])
        print(
            f"  {label + ':':39s}{median:6.2f} s   exit delay {median - baseline:+.2f} s; "
            f"events left for the next process per run: {spilled[case]}"
        )


if __name__ == "__main__":
    main()
