"""A deadline for every request: one not answered in time gets 503 with Retry-After, whatever it waits for (a
frozen database that never answers, a pool with no free connection, a lock), instead of hanging the client.

The work it was waiting on is cancelled where it can be (coroutines, the group-commit writer's queue); a
database call already running in a worker thread finishes or fails on its own, bounded by the connections'
statement and lock timeouts and TCP keepalives (`ledger.storage.database`)."""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.errors import ServiceUnavailable

log = logging.getLogger("tokenledger.api")


class RequestDeadline:
    """Pure ASGI middleware: HTTP requests to paths other than `exempt` get `seconds` to start their answer."""

    def __init__(self, app: ASGIApp, *, seconds: float, retry_after: str, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.seconds = seconds
        self.retry_after = retry_after
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0 or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        answering = False

        async def send_tracked(message: Message) -> None:
            nonlocal answering
            if message["type"] == "http.response.start":
                answering = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, send_tracked)
        except TimeoutError:
            if answering:  # the answer had begun: it cannot be replaced, only cut
                raise
            log.warning("%s %s not answered within %g s: 503", scope["method"], scope["path"], self.seconds)
            error = ServiceUnavailable(f"no answer within {self.seconds:g} s (the database may be unreachable)")
            body = json.dumps(error.as_json()).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", self.retry_after.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
