"""The one retry policy of the importers' fetching and the Python client: what is retried, how long it waits
between attempts, and when it gives up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from ledger.http_retry import GaveUp, RetryPolicy, retry_after_seconds

NOW = datetime(2026, 10, 1, 12, tzinfo=UTC)


def answers(*replies: int | httpx.Response | Exception) -> Callable[[], httpx.Response]:
    """A request that answers each reply in turn: a status, a response, or an error raised."""
    queue = list(replies)

    def request() -> httpx.Response:
        reply = queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply if isinstance(reply, httpx.Response) else httpx.Response(reply)

    return request


def test_network_errors_408_429_and_5xx_are_retried_and_the_first_other_answer_is_returned() -> None:
    waits: list[float] = []
    policy = RetryPolicy(first_wait=1.0, max_wait=60.0, max_attempts=6)

    answer = policy.send(
        answers(httpx.ConnectError("refused"), 408, 429, 502, 503, 404), sleep=waits.append, clock=lambda: NOW
    )

    assert answer.status_code == 404
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_jitter_shortens_each_capped_backoff_by_up_to_its_share() -> None:
    waits: list[float] = []
    policy = RetryPolicy(first_wait=0.5, max_wait=4.0, jitter=0.2, max_attempts=8)

    with pytest.raises(GaveUp) as raised:
        policy.send(answers(*[503] * 8), sleep=waits.append)

    assert raised.value.attempts == 8
    assert raised.value.status == 503
    for wait, backoff in zip(waits, [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0], strict=True):
        assert 0.8 * backoff <= wait <= backoff


def test_retry_after_wins_over_the_backoff_capped_unless_the_policy_waits_it_in_full() -> None:
    later = format_datetime(NOW + timedelta(seconds=3600), usegmt=True)
    replies = (httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(503, headers={"Retry-After": later}))
    capped: list[float] = []
    in_full: list[float] = []

    RetryPolicy(first_wait=1.0, max_wait=60.0).send(answers(*replies, 200), sleep=capped.append, clock=lambda: NOW)
    RetryPolicy(first_wait=1.0, max_wait=60.0, cap_retry_after=False).send(
        answers(*replies, 200), sleep=in_full.append, clock=lambda: NOW
    )

    assert capped == [7.0, 60.0]
    assert in_full == [7.0, 3600.0]


def test_a_sleep_that_says_stop_ends_the_retries_with_the_last_failure() -> None:
    with pytest.raises(GaveUp) as raised:
        RetryPolicy(first_wait=1.0, max_wait=60.0).send(answers(500, 200), sleep=lambda seconds: False)

    assert (raised.value.attempts, raised.value.status) == (1, 500)


def test_retrying_stops_once_the_time_given_has_passed() -> None:
    policy = RetryPolicy(first_wait=0.01, max_wait=0.01, give_up_after=0.05)

    with pytest.raises(GaveUp) as raised:
        policy.send(answers(*[httpx.ReadTimeout("slow")] * 1000))

    assert isinstance(raised.value.last, httpx.ReadTimeout)
    assert 0.05 <= raised.value.seconds < 1.0
    assert str(raised.value).endswith("ReadTimeout")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), ("-3", 0.0), (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0), ("soon", None)],
)
def test_retry_after_is_seconds_or_an_http_date(header: str, seconds: float | None) -> None:
    assert retry_after_seconds(header, NOW) == seconds
