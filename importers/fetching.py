"""HTTP fetching of statement pages: timeouts, retries (`ledger.http_retry`), cursor pagination.

The credential travels only in request headers. It is never logged, never part of a document name,
and never part of an exception message (error bodies are scrubbed of it before they are quoted).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from urllib.parse import unquote

import httpx

from importers.base import AdminKeyRequired, FetchError, RawDocument
from importers.json_fields import load_json
from ledger.http_retry import GaveUp, RetryPolicy, describe

ProgressHook = Callable[[RawDocument, int], None]
"""Called after every fetched page with the page and how many pages this client has fetched."""

_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key"})
_QUOTED_BODY_CHARS = 300


def _utc_now() -> datetime:
    return datetime.now(UTC)


class FetchClient:
    """GETs JSON pages from one provider's base URL (e.g. the value of an `OPENAI_BASE_URL` setting)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff: float = 1.0,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = _utc_now,
        progress: ProgressHook | None = None,
    ) -> None:
        self._retry = RetryPolicy(first_wait=backoff, max_wait=max_wait, max_attempts=max_attempts)
        self._http = httpx.Client(base_url=base_url, timeout=timeout)
        self._sleep = sleep
        self._clock = clock
        self._progress = progress
        self._fetched = 0

    def __enter__(self) -> FetchClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(
        self,
        path: str,
        params: Sequence[tuple[str, str]],
        *,
        headers: Mapping[str, str],
        source: str,
        credential_env: str | None,
    ) -> RawDocument:
        """One page; retried as `ledger.http_retry` says (network errors, 408, 429, 5xx); 401/403 raise
        AdminKeyRequired."""
        endpoint = f"GET {path}"
        try:
            response = self._retry.send(
                lambda: self._http.get(path, params=list(params), headers=dict(headers)),
                sleep=self._sleep,
                clock=self._clock,
            )
        except GaveUp as gave_up:
            raise FetchError(
                endpoint, gave_up.status, f"{describe(gave_up.last)} after {gave_up.attempts} attempts"
            ) from None
        status = response.status_code
        if status in (401, 403):
            raise AdminKeyRequired(credential_env, status, endpoint)
        if status >= 400:
            body = _scrub(response.text, headers)[:_QUOTED_BODY_CHARS]
            raise FetchError(endpoint, status, f"HTTP {status}: {body}")
        return self._document(response, source)

    def _document(self, response: httpx.Response, source: str) -> RawDocument:
        url = response.request.url
        query = unquote(url.query.decode("ascii"))
        media_type = response.headers.get("content-type", "application/json").split(";")[0].strip()
        document = RawDocument(
            name=f"{url.path}?{query}" if query else url.path,
            content=response.content,
            media_type=media_type,
            source=source,
        )
        self._fetched += 1
        if self._progress is not None:
            self._progress(document, self._fetched)
        return document


def paginate(
    client: FetchClient,
    path: str,
    params: Sequence[tuple[str, str]],
    *,
    headers: Mapping[str, str],
    source: str,
    credential_env: str | None,
) -> Iterator[RawDocument]:
    """Every page of a cursor-paginated list (`has_more` / `next_page`, sent back as `page`)."""
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        query = [*params, ("page", cursor)] if cursor else list(params)
        document = client.get(path, query, headers=headers, source=source, credential_env=credential_env)
        yield document
        body = load_json(document)
        if not isinstance(body, dict) or not body.get("has_more"):
            return
        cursor = body.get("next_page")
        if not isinstance(cursor, str) or not cursor:
            raise FetchError(f"GET {path}", None, "has_more is true but next_page is missing")
        if cursor in seen:
            raise FetchError(f"GET {path}", None, f"next_page {cursor!r} was already fetched")
        seen.add(cursor)


def paginate_grouped(
    client: FetchClient,
    endpoints: Sequence[tuple[str, Sequence[str]]],
    window: Sequence[tuple[str, str]],
    *,
    headers: Mapping[str, str],
    source: str,
    credential_env: str | None,
) -> Iterator[RawDocument]:
    """Every page of each (path, group_by fields) report over the same time window. List parameters go in
    brackets form (`group_by[]=model`), as the providers' SDKs send them (openai/_client.py `qs`)."""
    for path, group_by in endpoints:
        params = [*window, *(("group_by[]", field) for field in group_by)]
        yield from paginate(client, path, params, headers=headers, source=source, credential_env=credential_env)


def _scrub(text: str, headers: Mapping[str, str]) -> str:
    """`text` with every credential header value, and the token in "Bearer <token>", blanked out."""
    for name, value in headers.items():
        if name.lower() not in _SECRET_HEADERS or not value.strip():
            continue
        for secret in sorted({value, value.split()[-1]}, key=len, reverse=True):
            if len(secret) >= 8:
                text = text.replace(secret, "[redacted]")
    return text
