"""A real HTTP receiver on 127.0.0.1 for alert deliveries: records each POST (with the time it arrived) and
answers with the next scripted status, after an optional delay (a hung receiver)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    """`time.time()` when the request arrived."""


@dataclass
class Receiver:
    url: str = ""
    statuses: list[int] = field(default_factory=list)
    delay_seconds: float = 0.0
    requests: list[Received] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.requests)


@contextmanager
def http_receiver(delay_seconds: float = 0.0) -> Iterator[Receiver]:
    state = Receiver(delay_seconds=delay_seconds)
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            arrived = time.time()
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, arrived))
            if state.delay_seconds:
                release.wait(state.delay_seconds)
            status = state.statuses.pop(0) if state.statuses else 200
            try:
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"upstream broke")
            except OSError:
                pass  # the client gave up waiting

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        release.set()
        server.shutdown()
        server.server_close()
