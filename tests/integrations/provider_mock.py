"""A provider stand-in on 127.0.0.1: answers scripted replies (JSON bodies or Server-Sent Events) in the
provider's documented shapes and keeps every request it received, so a test can check what was sent."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a JSON body, or SSE events `(event name or None, data)`. With `cut_after`, a
    stream is sent in chunked encoding and the connection is cut after that many events, in the middle of a
    chunk, as when a provider's server or a proxy in between drops it."""

    status: int = 200
    body: Any = None
    events: tuple[tuple[str | None, str], ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    event_delay: float = 0.0
    gzip: bool = False
    cut_after: int | None = None


@dataclass(frozen=True)
class Received:
    method: str
    host: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float


def sse(*data: Any, event: str | None = None) -> tuple[tuple[str | None, str], ...]:
    """SSE events whose data are the JSON of `data` (strings are sent as they are)."""
    return tuple((event, item if isinstance(item, str) else json.dumps(item)) for item in data)


def named_sse(*events: dict[str, Any]) -> tuple[tuple[str | None, str], ...]:
    """Anthropic-style SSE: each event's `event:` line is its JSON `type`."""
    return tuple((item["type"], json.dumps(item)) for item in events)


class ProviderMock:
    """Serves the scripted replies in order, whatever the path; `base_url` is its root."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.received: list[Received] = []
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                target = urlsplit(self.path)  # absolute-form when the client goes through us as a proxy
                mock.received.append(
                    Received(
                        "POST",
                        target.hostname or self.headers.get("host", ""),
                        target.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        json.loads(raw) if raw else None,
                        time.monotonic(),
                    )
                )
                unscripted = Reply(500, {"error": {"message": "no reply scripted"}})
                reply = mock.replies.popleft() if mock.replies else unscripted
                if reply.events:
                    self._stream(reply)
                else:
                    payload = json.dumps(reply.body).encode()
                    self.send_response(reply.status)
                    if reply.gzip:
                        payload = gzip.compress(payload)
                        self.send_header("content-encoding", "gzip")
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)

            def _stream(self, reply: Reply) -> None:
                self.send_response(reply.status)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                chunked = reply.cut_after is not None
                if chunked:
                    self.send_header("transfer-encoding", "chunked")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.close_connection = True
                for number, (name, data) in enumerate(reply.events):
                    if reply.event_delay:
                        time.sleep(reply.event_delay)
                    frame = ((f"event: {name}\n" if name else "") + f"data: {data}\n\n").encode()
                    if number == reply.cut_after:
                        frame = b"%x\r\n" % len(frame) + frame[: len(frame) // 2]  # half a chunk, then nothing
                    elif chunked:
                        frame = b"%x\r\n" % len(frame) + frame + b"\r\n"
                    try:
                        self.wfile.write(frame)
                        self.wfile.flush()
                    except OSError:  # the client went away (a timeout test)
                        return
                    if number == reply.cut_after:
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
