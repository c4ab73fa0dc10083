"""The HTTP side of the SDK hooks: a transport wrapped around the one inside the SDK client's HTTP client.

Every request the SDK sends passes through it, whatever the entry point (`create`, the `stream()` helpers,
`with_raw_response`, each retry), so it sees exactly what went over the wire: the request JSON, the status,
the body bytes and every Server-Sent Event, with their timing. Streams are observed as the caller reads them,
never buffered; the event is recorded at the stream's terminal event (or when the response is closed).

The SDK clients have no public hook on an already-built client, so this replaces the HTTP client's
`_transport` (and its proxy `_mounts`). It works with `httpx` and with `httpx2`, which the openai and
anthropic SDKs now use (same transport API; the response stream must subclass that module's byte streams).
"""

from __future__ import annotations

import logging
import sys
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from functools import cache
from types import ModuleType
from typing import Any, Protocol

from ledger.integrations.instrument.calls import Call, EventSink, Labels, plan_call
from ledger.integrations.instrument.sse import SSEParser

log = logging.getLogger("tokenledger.instrument")


class _Decompressor(Protocol):
    def decompress(self, data: bytes) -> bytes: ...


def httpx_module(http_client: Any) -> ModuleType:
    """`httpx` or `httpx2`, whichever the client is built on."""
    for cls in type(http_client).__mro__:
        root = cls.__module__.partition(".")[0]
        if root in ("httpx", "httpx2"):
            return sys.modules[root]
    raise TypeError(f"not an httpx client: {type(http_client).__name__}")


def instrument_http_client(http_client: Any, labels: Labels, sink: EventSink) -> None:
    """Route the client's requests through an observing transport (again: just relabel)."""
    module = httpx_module(http_client)
    asynchronous = isinstance(http_client, module.AsyncClient)

    def wrap(transport: Any) -> Any:
        if transport is None:
            return None
        if isinstance(transport, _ObservingTransport):
            transport.labels, transport.sink = labels, sink
            return transport
        kind = AsyncObservingTransport if asynchronous else SyncObservingTransport
        return kind(transport, module, labels, sink)

    http_client._transport = wrap(http_client._transport)
    http_client._mounts = {pattern: wrap(transport) for pattern, transport in http_client._mounts.items()}


class _ObservingTransport:
    def __init__(self, inner: Any, module: ModuleType, labels: Labels, sink: EventSink) -> None:
        self.inner = inner
        self.module = module
        self.labels = labels
        self.sink = sink

    def _plan(self, request: Any) -> tuple[Any, Call | None]:
        """The request to send and its call, or (request, None) when it is not an LLM API call."""
        try:
            body = request.content
            planned = plan_call(
                self.labels,
                method=request.method,
                host=request.url.host,
                path=request.url.path,
                body=body,
                headers=request.headers,
                occurred_at=datetime.now(UTC),
                started=time.monotonic(),
                sink=self.sink,
            )
        except Exception:  # a streamed upload, an unreadable body: not ours to observe
            return request, None
        if planned is None:
            return request, None
        if planned.body is not None:
            headers = [(name, value) for name, value in request.headers.multi_items() if name != "content-length"]
            request = self.module.Request(
                request.method, request.url, headers=headers, content=planned.body, extensions=request.extensions
            )
        return request, planned.call

    def _failed(self, call: Call, error: Exception) -> None:
        """A request that got no response. One that never reached the provider (no connection) is not a call."""
        module = self.module
        if isinstance(error, module.ConnectError | module.ConnectTimeout | module.PoolTimeout):
            return
        call.fail("timeout" if isinstance(error, module.TimeoutException) else "network")
        call.finish(time.monotonic())

    def _observe(self, response: Any, call: Call) -> _Observer:
        call.response_started(response.status_code)
        headers = response.headers
        server_sent = headers.get("content-type", "").startswith("text/event-stream")
        rewrite = call.hide_usage_chunk and server_sent and response.status_code < 300
        observer = _Observer(call, self.module, headers.get("content-encoding", ""), server_sent, rewrite)
        if observer.rewrite and observer.decoding:
            # The caller now gets the decoded stream.
            del headers["content-encoding"]
            headers.pop("content-length", None)
        return observer


class SyncObservingTransport(_ObservingTransport):
    def handle_request(self, request: Any) -> Any:
        request, call = self._plan(request)
        if call is None:
            return self.inner.handle_request(request)
        try:
            response = self.inner.handle_request(request)
        except self.module.TransportError as error:
            self._failed(call, error)
            raise
        response.stream = _sync_stream_class(self.module)(response.stream, self._observe(response, call))
        return response

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> SyncObservingTransport:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.inner.__exit__(*exc_info)


class AsyncObservingTransport(_ObservingTransport):
    async def handle_async_request(self, request: Any) -> Any:
        request, call = self._plan(request)
        if call is None:
            return await self.inner.handle_async_request(request)
        try:
            response = await self.inner.handle_async_request(request)
        except self.module.TransportError as error:
            self._failed(call, error)
            raise
        response.stream = _async_stream_class(self.module)(response.stream, self._observe(response, call))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> AsyncObservingTransport:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.inner.__aexit__(*exc_info)


class _Observer:
    """Feeds a call with a response body as it passes; with `rewrite`, passes on the decoded stream minus the
    events the call hides. Observation never breaks the caller's stream: on an internal error it stops."""

    def __init__(self, call: Call, module: ModuleType, content_encoding: str, server_sent: bool, rewrite: bool):
        self.call = call
        self.module = module
        self.parser = SSEParser() if server_sent else None
        self.decoders = _decoders(content_encoding)
        self.broken = self.decoders is None
        self.rewrite = rewrite and not self.broken
        self.decoding = bool(self.decoders)

    def chunk(self, raw: bytes) -> bytes:
        """The bytes to hand on for `raw`."""
        if self.broken:
            return raw
        at = time.monotonic()
        try:
            data = raw
            for decoder in self.decoders or ():
                data = decoder.decompress(data)
            if self.parser is None:
                self.call.feed_body(data)
                return raw
            passed = [event.raw for event in self.parser.feed(data) if not self.call.feed_event(event, at)]
            if self.call.facts.complete:
                self.call.finish(at)
            return b"".join(passed) if self.rewrite else raw
        except Exception:
            log.warning("TokenLedger: stopped observing a %s response", self.call.provider, exc_info=True)
            self.broken = True
            return raw

    def rest(self) -> bytes:
        """What a rewritten stream still holds when the body ends (an event without its blank line)."""
        return self.parser.rest() if self.rewrite and self.parser is not None and not self.broken else b""

    def failed(self, error: BaseException) -> None:
        self.call.fail("timeout" if isinstance(error, self.module.TimeoutException) else "network")

    def closed(self) -> None:
        self.call.finish(time.monotonic())


@cache
def _sync_stream_class(module: ModuleType) -> type:
    class ObservedStream(module.SyncByteStream):  # type: ignore[name-defined,misc]
        def __init__(self, inner: Any, observer: _Observer) -> None:
            self._inner = inner
            self._observer = observer

        def __iter__(self) -> Iterator[bytes]:
            try:
                for raw in self._inner:
                    if data := self._observer.chunk(raw):
                        yield data
            except module.TransportError as error:
                self._observer.failed(error)
                raise
            if rest := self._observer.rest():
                yield rest

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._observer.closed()

    return ObservedStream


@cache
def _async_stream_class(module: ModuleType) -> type:
    class ObservedAsyncStream(module.AsyncByteStream):  # type: ignore[name-defined,misc]
        def __init__(self, inner: Any, observer: _Observer) -> None:
            self._inner = inner
            self._observer = observer

        async def __aiter__(self) -> AsyncIterator[bytes]:
            try:
                async for raw in self._inner:
                    if data := self._observer.chunk(raw):
                        yield data
            except module.TransportError as error:
                self._observer.failed(error)
                raise
            if rest := self._observer.rest():
                yield rest

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._observer.closed()

    return ObservedAsyncStream


def _decoders(content_encoding: str) -> list[_Decompressor] | None:
    """Incremental decoders undoing a Content-Encoding (listed in the order applied), or None when one of them
    is unknown here (the body then goes unobserved)."""
    decoders: list[_Decompressor] = []
    for coding in reversed([part.strip().lower() for part in content_encoding.split(",") if part.strip()]):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            decoders.append(zlib.decompressobj(zlib.MAX_WBITS | 16))
        elif coding == "deflate":
            decoders.append(_Deflate())
        elif coding == "br" and (brotli := _optional("brotli") or _optional("brotlicffi")):
            decoders.append(_Brotli(brotli.Decompressor()))
        elif coding == "zstd" and (zstandard := _optional("zstandard")):
            decoders.append(zstandard.ZstdDecompressor().decompressobj())
        else:
            return None
    return decoders


class _Deflate:
    """`deflate` as servers send it: zlib-wrapped, or (against RFC 9110) raw."""

    def __init__(self) -> None:
        self._first = True
        self._decompressor = zlib.decompressobj()

    def decompress(self, data: bytes) -> bytes:
        if self._first:
            self._first = False
            try:
                return self._decompressor.decompress(data)
            except zlib.error:
                self._decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._decompressor.decompress(data)


class _Brotli:
    """`brotli` decompresses with `process`, `brotlicffi` with `decompress`."""

    def __init__(self, decompressor: Any) -> None:
        self._step = getattr(decompressor, "decompress", None) or decompressor.process

    def decompress(self, data: bytes) -> bytes:
        return bytes(self._step(data))


def _optional(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        return None
