"""The Python client: record usage events from an application without ever slowing it down or failing it.

`record()` validates the event against schema v1 locally (so one bad event cannot sink a whole batch on the
server), gives it an `event_id` when it has none, serializes it and appends it to a bounded in-memory buffer;
that is all the application's request path pays. A background thread posts the buffer to `POST /v1/events` as
JSON arrays of up to `batch_size` events, every `flush_interval` seconds or as soon as a batch is full.
Network errors, 408, 429 and 5xx are retried (`ledger.http_retry`) with capped exponential backoff and jitter
(a `Retry-After` header wins) for up to `retry_window` seconds; any other 4xx drops that batch with a warning
carrying the server's answer. When the buffer is full the OLDEST waiting events are dropped, counted in
`dropped` and logged. `flush()` waits for delivery. At interpreter exit (or `close()`) the buffer is flushed
for at most `exit_timeout` seconds (default 1): whatever is still unsent then, the batch in flight included,
is written to a spill file under `spill_dir`, and the next process that uses the same URL and key sends it
first (event ids make a resend harmless). With `spill_dir=None` those events are dropped and counted in the
log instead.

    ledger = TokenLedger("http://127.0.0.1:8000", key)
    ledger.record({"occurred_at": ..., "provider": "openai", "request_model": "gpt-5.4-mini", "usage": {...}})
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import logging
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
import platformdirs

from ledger.events.schema import EventValidationError, json_text, validate_events
from ledger.http_retry import Failure, GaveUp, RetryPolicy

log = logging.getLogger("tokenledger.client")

USER_AGENT = "tokenledger-python/0.1.0"
FIRST_RETRY_DELAY = 0.5
RETRY_JITTER = 0.2
DROP_WARNING_INTERVAL = 30.0
SPILL_DIR_ENV = "TOKENLEDGER_SPILL_DIR"
SPILL_SUFFIX = ".ndjson"


def default_spill_dir() -> Path:
    """Where unsent events wait for the next process: `$TOKENLEDGER_SPILL_DIR`, else the user's cache folder."""
    configured = os.environ.get(SPILL_DIR_ENV)
    return Path(configured) if configured else Path(platformdirs.user_cache_dir("tokenledger")) / "unsent"


Delivery = Literal["sent", "refused", "unsent"]


class UsageRecorder(Protocol):
    """Anything events can be recorded into: a TokenLedger, or a test double."""

    def record(self, event: Mapping[str, Any] | Any) -> None: ...


class TokenLedger:
    """A buffered, never-blocking sender of usage events to one TokenLedger service.

    Counters (read them any time): `sent` events acknowledged by the server (new or duplicate), `dropped`
    events lost to a full buffer, an exhausted retry window or a batch the server refused, `rejected`
    events that failed local validation (never sent).
    """

    _lock: threading.Lock
    _wake: threading.Condition
    _queue: deque[bytes]
    _inflight: list[bytes]
    _thread: threading.Thread | None
    _closing: bool
    _abandoned: bool
    _close_deadline: float
    _flush_requested: bool
    _flush_calls: int
    _next_send: float

    def __init__(
        self,
        url: str,
        key: str,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_buffer: int = 10_000,
        timeout: float = 10.0,
        max_retry_delay: float = 30.0,
        retry_window: float = 3600.0,
        exit_timeout: float = 1.0,
        spill_dir: str | os.PathLike[str] | Literal["default"] | None = "default",
    ) -> None:
        if batch_size < 1 or max_buffer < batch_size:
            raise ValueError(f"need 1 <= batch_size ({batch_size}) <= max_buffer ({max_buffer})")
        if flush_interval <= 0 or timeout <= 0 or max_retry_delay <= 0 or retry_window <= 0:
            raise ValueError("flush_interval, timeout, max_retry_delay and retry_window must be positive")
        if exit_timeout < 0:
            raise ValueError("exit_timeout must not be negative")
        self.endpoint = f"{url.rstrip('/')}/v1/events"
        self.exit_timeout = exit_timeout
        # One folder per service and key: another process of the same application sends what this one left.
        destination = hashlib.sha256(f"{self.endpoint}\n{key}".encode()).hexdigest()[:16]
        root = default_spill_dir() if spill_dir == "default" else spill_dir
        self.spill_dir: Path | None = None if root is None else Path(root) / destination
        self._headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.timeout = timeout
        self.max_retry_delay = max_retry_delay
        self.retry_window = retry_window
        # The service's Retry-After is waited in full: the retry window and close() bound it.
        self._retry = RetryPolicy(
            first_wait=FIRST_RETRY_DELAY,
            max_wait=max_retry_delay,
            jitter=RETRY_JITTER,
            give_up_after=retry_window,
            cap_retry_after=False,
        )
        self.sent = 0
        self.dropped = 0
        self.rejected = 0
        self._reset_state()
        self._last_drop_warning = float("-inf")
        reference = weakref.ref(self)
        atexit.register(_close_at_exit, reference)
        os.register_at_fork(after_in_child=lambda: _reset_after_fork(reference))
        self._take_spilled()  # what an earlier process left goes out first, even if this one records nothing

    # --- the application's side: never blocks, never raises -------------------------------------------------

    def record(self, event: Mapping[str, Any] | Any) -> None:
        """Buffer one event (a mapping or an `EventIn`-like model) for sending. Never raises: an invalid event
        is logged and counted in `rejected`."""
        try:
            payload = _event_payload(event)
            validate_events([payload], tenant_id=0, now=datetime.now(UTC))
            encoded = json_text(payload).encode()
        except EventValidationError as error:
            self._reject(f"{error}; problems: {[problem.as_dict() for problem in error.problems]}")
            return
        except Exception as error:  # a bad event must never fail the application
            self._reject(f"{type(error).__name__}: {error}")
            return
        self._enqueue(encoded)

    async def arecord(self, event: Mapping[str, Any] | Any) -> None:
        """`record` for async code (record itself never blocks: it only appends to the buffer)."""
        self.record(event)

    def flush(self, timeout: float = 10.0) -> bool:
        """Send everything buffered now and wait up to `timeout` seconds. True when the buffer emptied in time
        and nothing was dropped meanwhile (a refused batch, a full buffer)."""
        deadline = time.monotonic() + timeout
        with self._wake:
            dropped = self.dropped
            if not self._queue and not self._inflight:
                return True
            self._ensure_sender()
            self._flush_requested = True
            self._flush_calls += 1
            self._wake.notify_all()
            while self._queue or self._inflight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.wait(remaining)
            return self.dropped == dropped

    async def aflush(self, timeout: float = 10.0) -> bool:
        return await asyncio.to_thread(self.flush, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is buffered for at most `timeout` seconds (default `exit_timeout`), then stop the sender.
        Events still unsent then, the batch in flight included, go to a spill file for the next process (or,
        with `spill_dir=None`, are counted in `dropped`). Never waits longer than `timeout`, however slow the
        service is: a request still in flight is left to the sender thread, which exits with the process."""
        timeout = self.exit_timeout if timeout is None else timeout
        with self._wake:
            if self._closing:
                return
            self._closing = True
            self._close_deadline = time.monotonic() + timeout
            thread = self._thread
            self._wake.notify_all()
        if thread is not None and thread.is_alive():
            thread.join(timeout)
        with self._wake:
            unsent = list(self._queue)
            self._queue.clear()
            if thread is not None and thread.is_alive():
                unsent = self._inflight + unsent  # its request may yet succeed: a resend is a duplicate, no more
                self._abandoned = True
        if unsent:
            self._spill(unsent)

    async def aclose(self, timeout: float | None = None) -> None:
        await asyncio.to_thread(self.close, timeout)

    def __enter__(self) -> TokenLedger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def buffered(self) -> int:
        """Events waiting or being sent."""
        return len(self._queue) + len(self._inflight)

    # --- buffer ------------------------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue = deque()
        self._inflight = []
        self._thread = None
        self._closing = False
        self._abandoned = False
        self._close_deadline = float("inf")
        self._flush_requested = False
        self._flush_calls = 0
        self._next_send = time.monotonic()

    def _enqueue(self, encoded: bytes) -> None:
        with self._wake:
            if self._closing:
                self._count_dropped(1, "the client is closed")
                return
            self._ensure_sender()
            overflow = len(self._queue) + len(self._inflight) + 1 - self.max_buffer
            for _ in range(min(max(overflow, 0), len(self._queue))):
                self._queue.popleft()
            if overflow > 0:
                self._count_dropped(overflow, f"the buffer is full (max_buffer={self.max_buffer}); dropped the oldest")
            if not self._queue:
                # The oldest waiting event waits at most flush_interval (or until the batch is full).
                self._next_send = max(self._next_send, time.monotonic() + self.flush_interval)
                self._wake.notify_all()
            self._queue.append(encoded)
            if len(self._queue) == self.batch_size:
                self._wake.notify_all()

    def _reject(self, problem: str) -> None:
        with self._lock:
            self.rejected += 1
        log.warning("TokenLedger: event not recorded, it is invalid: %s", problem)

    def _count_dropped(self, count: int, reason: str) -> None:
        """Count lost events (the lock is held); warn at most every DROP_WARNING_INTERVAL seconds."""
        self.dropped += count
        now = time.monotonic()
        if now - self._last_drop_warning >= DROP_WARNING_INTERVAL:
            self._last_drop_warning = now
            log.warning("TokenLedger: dropped %d event(s): %s (%d dropped so far)", count, reason, self.dropped)

    def _ensure_sender(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="tokenledger-sender", daemon=True)
            self._thread.start()

    # --- the sender thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout, headers=self._headers) as http:
            while (batch := self._next_batch()) is not None:
                try:
                    delivery = self._deliver(http, batch)
                except Exception:  # a bug here must not strand the batch or stop the sender
                    log.exception("TokenLedger: unexpected error sending %d event(s)", len(batch))
                    delivery = "unsent"
                with self._wake:
                    if self._abandoned:
                        return  # close() spilled this batch already
                    if delivery == "unsent" and self._closing:
                        self._queue.extendleft(reversed(batch))  # close() spills them
                    elif delivery != "sent":
                        self._count_dropped(len(batch), "delivery failed")
                    self._inflight = []
                    self._next_send = time.monotonic() + self.flush_interval
                    self._wake.notify_all()

    def _next_batch(self) -> list[bytes] | None:
        """The next batch to send (now in flight), waiting until one is due; None once closed (and, past a
        close's deadline, with events left: close() spills them)."""
        with self._wake:
            while True:
                now = time.monotonic()
                if self._closing and now >= self._close_deadline:
                    return None
                due = self._closing or self._flush_requested or now >= self._next_send
                if self._queue and (len(self._queue) >= self.batch_size or due):
                    count = min(self.batch_size, len(self._queue))
                    self._inflight = [self._queue.popleft() for _ in range(count)]
                    self._flush_requested = bool(self._queue) and self._flush_requested
                    return self._inflight
                if self._closing:
                    return None
                self._wake.wait(max(self._next_send - now, 0.01) if self._queue else None)

    def _deliver(self, http: httpx.Client, batch: list[bytes]) -> Delivery:
        """Post one batch until it is acknowledged ("sent"), refused, out of retries or closed ("unsent")."""
        body = b"[" + b",".join(batch) + b"]"

        def retrying(failure: Failure, delay: float) -> None:
            log.debug("TokenLedger: retrying %d event(s) in %.1f s: %s", len(batch), delay, _problem(failure))

        try:
            response = self._retry.send(
                lambda: http.post(self.endpoint, content=body), sleep=self._wait_before_retry, before_retry=retrying
            )
        except GaveUp as gave_up:
            if self._past_close_deadline():
                log.debug("TokenLedger: closing with %d event(s) undelivered: %s", len(batch), _problem(gave_up.last))
            else:
                log.warning(
                    "TokenLedger: giving up on %d event(s) after %.0f s of failures: %s",
                    len(batch),
                    gave_up.seconds,
                    _problem(gave_up.last),
                )
            return "unsent"
        if response.status_code < 300:
            with self._lock:
                self.sent += len(batch)
            return "sent"
        log.warning(
            "TokenLedger refused a batch of %d event(s) with HTTP %d; dropping it: %s",
            len(batch),
            response.status_code,
            response.text[:4000],
        )
        return "refused"

    def _wait_before_retry(self, delay: float) -> bool:
        """Sleep `delay` seconds, cut short by a new flush call; False once a close's deadline has passed."""
        with self._wake:
            flush_calls = self._flush_calls
            wake_at = min(time.monotonic() + delay, self._close_deadline)
            while time.monotonic() < wake_at and self._flush_calls == flush_calls:
                self._wake.wait(wake_at - time.monotonic())
        return not self._past_close_deadline()

    def _past_close_deadline(self) -> bool:
        return time.monotonic() >= self._close_deadline

    # --- spill files: what one process could not deliver, the next sends ---------------------------------

    def _spill_files(self) -> list[Path]:
        if self.spill_dir is None:
            return []
        try:
            return sorted(self.spill_dir.glob(f"*{SPILL_SUFFIX}"))
        except OSError:
            return []

    def _spill(self, unsent: list[bytes]) -> None:
        """Write unsent events to a new spill file (or count them dropped when there is none or it fails)."""
        if self.spill_dir is not None:
            name = f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            partial = self.spill_dir / f"{name}.partial"
            try:
                self.spill_dir.mkdir(parents=True, exist_ok=True)
                partial.write_bytes(b"".join(event + b"\n" for event in unsent))
                partial.replace(self.spill_dir / f"{name}{SPILL_SUFFIX}")  # complete, or not there at all
            except OSError as error:
                log.warning("TokenLedger: could not keep unsent events in %s: %s", self.spill_dir, error)
            else:
                log.warning(
                    "TokenLedger: %d event(s) not delivered in time; kept in %s for the next process to send",
                    len(unsent),
                    self.spill_dir,
                )
                return
        with self._lock:
            self._count_dropped(len(unsent), "the client was closed before they could be sent")

    def _take_spilled(self) -> None:
        """Queue the events earlier processes left (oldest first, before this process's own). A file is
        claimed by renaming it, so two processes starting at once never both send it."""
        taken: list[bytes] = []
        for path in self._spill_files():
            claimed = path.with_name(f"{path.name}.{os.getpid()}.sending")
            try:
                path.rename(claimed)
                taken += [line for line in claimed.read_bytes().splitlines() if line.strip()]
                claimed.unlink()
            except OSError:
                continue  # another process claimed it first
        if not taken:
            return
        log.info("TokenLedger: sending %d event(s) an earlier process could not deliver", len(taken))
        with self._wake:
            self._queue.extendleft(reversed(taken))
            overflow = len(self._queue) + len(self._inflight) - self.max_buffer
            for _ in range(max(overflow, 0)):
                self._queue.popleft()
            if overflow > 0:
                self._count_dropped(overflow, f"the buffer is full (max_buffer={self.max_buffer}); dropped the oldest")
            self._next_send = time.monotonic()
            self._ensure_sender()
            self._wake.notify_all()


def _close_at_exit(reference: weakref.ref[TokenLedger]) -> None:
    ledger = reference()
    if ledger is not None:
        ledger.close()


def _reset_after_fork(reference: weakref.ref[TokenLedger]) -> None:
    """A forked child inherits the buffer but neither the sender thread nor a usable lock: start afresh."""
    ledger = reference()
    if ledger is not None:
        ledger._reset_state()


def _problem(failure: Failure) -> str:
    """What went wrong with an attempt, for the log: the error, or the status and the start of the answer."""
    if isinstance(failure, httpx.Response):
        return f"HTTP {failure.status_code}: {failure.text[:500]}"
    return f"{type(failure).__name__}: {failure}"


def _event_payload(event: Mapping[str, Any] | Any) -> dict[str, Any]:
    """The event as a plain dict with an id: a copy of a mapping, or the fields set on a pydantic model (so a
    default such as `cache_read_input_tokens=0` does not override the usage object on the server)."""
    if isinstance(event, Mapping):
        payload = dict(event)
    elif hasattr(event, "model_dump"):
        payload = event.model_dump(exclude_unset=True)
    else:
        raise TypeError(f"an event must be a mapping or an EventIn-like model, got {type(event).__name__}")
    if not payload.get("event_id") and not payload.get("provider_request_id"):
        payload["event_id"] = str(uuid.uuid4())
    return payload
