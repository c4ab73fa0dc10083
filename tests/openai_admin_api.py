"""A stand-in for OpenAI's Admin API on 127.0.0.1, answering with the documented shapes saved in
tests/importers/openai (two usage pages, one costs page), or with the pages a test sets in `OpenAIAdminApi.pages`,
and a 429 before the first answer."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

OPENAI = Path(__file__).parent / "importers" / "openai"
ADMIN_KEY = "sk-admin-test"


class OpenAIAdminApi(BaseHTTPRequestHandler):
    """Answers like OpenAI's Admin API: two usage pages, one costs page, a 429 first."""

    seen: ClassVar[list[str]] = []
    pages: ClassVar[dict[str, object] | None] = None
    """Path under /v1 → the one page it answers (instead of the saved files)."""
    rate_limited_once = False
    delay_seconds = 0.0
    """How long each answer takes (a slow provider)."""

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        OpenAIAdminApi.seen.append(self.path)
        time.sleep(OpenAIAdminApi.delay_seconds)
        if self.headers.get("Authorization") != f"Bearer {ADMIN_KEY}":
            return self._send(401, {"error": {"message": "Invalid admin key"}})
        if not OpenAIAdminApi.rate_limited_once:
            OpenAIAdminApi.rate_limited_once = True
            return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        if OpenAIAdminApi.pages is not None:
            page = OpenAIAdminApi.pages.get(url.path.removeprefix("/v1"))
            return self._send(200, page) if page is not None else self._send(404, {"error": {"message": "not found"}})
        if url.path == "/v1/organization/usage/completions":
            page = "usage_completions_p2.json" if query.get("page") else "usage_completions_p1.json"
            return self._send(200, json.loads((OPENAI / page).read_text()))
        if url.path == "/v1/organization/costs":
            return self._send(200, json.loads((OPENAI / "costs.json").read_text()))
        return self._send(404, {"error": {"message": "not found"}})

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def openai_admin_api() -> Iterator[str]:
    """Serve the stand-in; yields its base URL (what TOKENLEDGER_OPENAI_BASE_URL is set to)."""
    OpenAIAdminApi.seen, OpenAIAdminApi.rate_limited_once, OpenAIAdminApi.delay_seconds = [], False, 0.0
    OpenAIAdminApi.pages = None
    server = ThreadingHTTPServer(("127.0.0.1", 0), OpenAIAdminApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
