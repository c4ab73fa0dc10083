"""One retry policy for HTTP requests: the statement importers' fetching and the Python client use it alike.

A request is tried again after a network error (`httpx.RequestError`: no connection, a timeout, a body cut
short) or an answer of 408, 429 or any 5xx; every other answer, a success or a refusal, is the caller's to
read. Before attempt n + 1 it waits what the server's `Retry-After` says when there is one (RFC 9110
§10.2.3: delay-seconds or an HTTP-date), else a capped exponential backoff, `min(first_wait × 2^(n−1),
max_wait)`, shortened at random by up to `jitter` of itself so that clients failing together do not come
back together. It gives up after `max_attempts` attempts, or once `give_up_after` seconds have passed since
the first began. Built on tenacity (https://tenacity.readthedocs.io).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import tenacity

RETRIED_STATUS = frozenset({408, 429})
"""Answers tried again, with every 5xx."""

Failure = httpx.Response | httpx.RequestError
"""What a failed attempt left: a retried answer, or the error that stopped the request."""


def is_retried(status: int) -> bool:
    return status in RETRIED_STATUS or status >= 500


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (RFC 9110 §10.2.3: delay-seconds or an HTTP-date), or None
    when there is none or it is unreadable."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


class GaveUp(Exception):
    """A request still failing when the policy stopped retrying it (or its sleep was cut off)."""

    def __init__(self, last: Failure, attempts: int, seconds: float) -> None:
        super().__init__(f"gave up after {attempts} attempts: {describe(last)}")
        self.last = last
        self.attempts = attempts
        self.seconds = seconds
        """From the start of the first attempt to the end of the last."""

    @property
    def status(self) -> int | None:
        return self.last.status_code if isinstance(self.last, httpx.Response) else None


def describe(failure: Failure) -> str:
    """`HTTP 503` or the error's class name (`ConnectError`): never a body or a URL, which may hold a secret."""
    if isinstance(failure, httpx.Response):
        return f"HTTP {failure.status_code}"
    return type(failure).__name__


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try an HTTP request again, how long to wait before, and when to give up (module docstring)."""

    first_wait: float
    max_wait: float
    jitter: float = 0.0
    """Each backoff is shortened at random by up to this fraction of itself (0 waits exactly)."""
    max_attempts: int | None = None
    give_up_after: float | None = None
    cap_retry_after: bool = True
    """Whether a server's Retry-After is capped at `max_wait` too (else it is waited in full)."""

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be at least 0 and below 1")

    def send(
        self,
        request: Callable[[], httpx.Response],
        *,
        sleep: Callable[[float], bool | None] = time.sleep,
        clock: Callable[[], datetime] = _utc_now,
        before_retry: Callable[[Failure, float], None] | None = None,
    ) -> httpx.Response:
        """The first answer of `request()` that is not retried. Raises GaveUp when the policy stops first, or
        when `sleep(seconds)` returns False (a client closing meanwhile); other errors of `request` propagate.
        `before_retry(failure, seconds)` hears of each wait; `clock` reads a Retry-After given as a date."""
        failed: list[GaveUp] = []  # the last failure, as the GaveUp a cut sleep raises

        def waited(seconds: float) -> None:
            if sleep(seconds) is False:
                raise failed[-1]

        def heard(state: tenacity.RetryCallState) -> None:
            failure = _failure(state)
            failed[:] = [GaveUp(failure, state.attempt_number, state.seconds_since_start or 0.0)]
            if before_retry is not None and state.next_action is not None:
                before_retry(failure, state.next_action.sleep)

        def gave_up(state: tenacity.RetryCallState) -> httpx.Response:
            raise GaveUp(_failure(state), state.attempt_number, state.seconds_since_start or 0.0)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(httpx.RequestError) | tenacity.retry_if_result(_retried_answer),
            stop=self._stop(),
            wait=lambda state: self._wait(state, clock),
            sleep=waited,
            before_sleep=heard,
            retry_error_callback=gave_up,
        )
        response: httpx.Response = retrying(request)
        return response

    def _stop(self) -> tenacity.stop.stop_base:
        stops: list[tenacity.stop.stop_base] = []
        if self.max_attempts is not None:
            stops.append(tenacity.stop_after_attempt(self.max_attempts))
        if self.give_up_after is not None:
            stops.append(tenacity.stop_after_delay(self.give_up_after))
        return tenacity.stop_any(*stops) if stops else tenacity.stop_never

    def _wait(self, state: tenacity.RetryCallState, clock: Callable[[], datetime]) -> float:
        failure = _failure(state)
        if isinstance(failure, httpx.Response):
            retry_after = retry_after_seconds(failure.headers.get("retry-after"), clock())
            if retry_after is not None:
                return min(self.max_wait, retry_after) if self.cap_retry_after else retry_after
        backoff = float(tenacity.wait_exponential(multiplier=self.first_wait, max=self.max_wait)(state))
        return backoff * random.uniform(1.0 - self.jitter, 1.0) if self.jitter else backoff


def _retried_answer(response: httpx.Response) -> bool:
    return is_retried(response.status_code)


def _failure(state: tenacity.RetryCallState) -> Failure:
    outcome = state.outcome
    assert outcome is not None  # tenacity waits, sleeps and stops only after an attempt
    error = outcome.exception()
    if error is None:
        answer: httpx.Response = outcome.result()
        return answer
    assert isinstance(error, httpx.RequestError)  # only those are retried
    return error
