"""Padding and system-prompt double counting: the input-excess fit recovers what was planted, separates the
two when both happen, and stays silent on noise."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from ledger.reconcile import BilledDay, LoggedDay, ReconcileSettings, TokenCounts
from tests.reconcile.month import DAYS, OPENAI, bill_quantity, month, priced, run, statement

# One cent: with tens of thousands of requests even one token per request is then material.
CENT_TOLERANCE = ReconcileSettings(money_abs_tolerance=Decimal("0.01"))


def scope_month(requests: list[int], shares: list[float]) -> list[LoggedDay]:
    """One gpt-5.4 key over len(requests) days. The day's mean system-prompt size cycles through seven
    values so system-prompt tokens are not proportional to requests (otherwise nothing could separate
    padding from a double-counted system prompt)."""
    rows = []
    for index, (n, share) in enumerate(zip(requests, shares, strict=True)):
        with_prompt = round(n * share)
        rows.append(
            priced(
                LoggedDay(
                    provider=OPENAI.provider,
                    account=OPENAI.account,
                    api_key_id=OPENAI.api_key_id,
                    model=OPENAI.model,
                    request_model=OPENAI.model,
                    service_tier="standard",
                    day=DAYS[index],
                    requests=n,
                    successful_requests=n,
                    tokens=TokenCounts(uncached_input=900 * n, cached_input=2000 * n, output=350 * n),
                    system_prompt_tokens=with_prompt * (200 + 150 * (index % 7)),
                    requests_with_system_prompt=with_prompt,
                )
            )
        )
    return rows


def inflate(
    logged: list[LoggedDay], *, per_request: int = 0, prompt_copies: int = 0, noise: list[int] | None = None
) -> list[BilledDay]:
    """The exact statement with billed uncached input inflated per day."""
    noise = noise or [0] * len(logged)
    out = []
    for row, billed, jitter in zip(logged, statement(logged), noise, strict=True):
        extra = per_request * row.successful_requests + prompt_copies * row.system_prompt_tokens + jitter
        out.append(bill_quantity(billed, "uncached_input", billed.quantities["uncached_input"] + extra))
    return out


days = st.integers(min_value=10, max_value=31)


@st.composite
def usage(draw: st.DrawFn) -> tuple[list[int], list[float], list[int]]:
    n = draw(days)
    # Daily volume within ±30%: no day is a spend spike.
    requests = draw(st.lists(st.integers(5_000, 9_000), min_size=n, max_size=n))
    shares = draw(st.lists(st.floats(0.3, 0.9), min_size=n, max_size=n))
    noise = draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n))
    return requests, shares, noise


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(1, 500), data=usage())
def test_planted_padding_is_recovered_within_one_token(k: int, data: tuple[list[int], list[float], list[int]]) -> None:
    requests, shares, noise = data
    logged = scope_month(requests, shares)
    result = run(logged, inflate(logged, per_request=k, noise=noise), settings=CENT_TOLERANCE)

    assert [f.kind for f in result.findings] == ["padding_tokens"]
    evidence = result.findings[0].evidence
    assert abs(Decimal(str(evidence["tokens_per_request"])) - k) <= 1
    assert evidence["days_observed"] == len(requests)
    assert evidence["requests"] == sum(requests)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=usage())
def test_planted_system_prompt_double_count_has_ratio_one(data: tuple[list[int], list[float], list[int]]) -> None:
    requests, shares, noise = data
    logged = scope_month(requests, shares)
    result = run(logged, inflate(logged, prompt_copies=1, noise=noise), settings=CENT_TOLERANCE)

    assert [f.kind for f in result.findings] == ["system_prompt_double_count"]
    evidence = result.findings[0].evidence
    assert abs(Decimal(str(evidence["ratio"])) - 1) <= Decimal("0.01")
    planted = sum(r.system_prompt_tokens for r in logged)
    assert evidence["system_prompt_tokens_logged"] == planted
    # Fitted on system-prompt tokens alone, the noise moves the excess by at most 50 tokens a day. When the
    # days make requests and system prompts nearly proportional yet still separable, least squares may also
    # trade a little of it with the (unreported) padding term: a few hundred tokens in tens of millions.
    assert abs(int(str(evidence["excess_tokens"])) - planted) <= 50 * len(logged) + planted // 10_000


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(1, 500), data=usage())
def test_padding_and_system_prompt_double_count_are_separated(
    k: int, data: tuple[list[int], list[float], list[int]]
) -> None:
    requests, shares, noise = data
    logged = scope_month(requests, shares)
    result = run(logged, inflate(logged, per_request=k, prompt_copies=1, noise=noise), settings=CENT_TOLERANCE)

    by_kind = {f.kind: f.evidence for f in result.findings}
    assert sorted(by_kind) == ["padding_tokens", "system_prompt_double_count"]
    assert abs(Decimal(str(by_kind["padding_tokens"]["tokens_per_request"])) - k) <= 1
    assert abs(Decimal(str(by_kind["system_prompt_double_count"]["ratio"])) - 1) <= Decimal("0.01")
    # Together the two explain the whole excess: nothing is left over for a quantity mismatch.
    explained = int(str(by_kind["padding_tokens"]["excess_tokens"])) + int(
        str(by_kind["system_prompt_double_count"]["excess_tokens"])
    )
    planted = sum(k * r.successful_requests + r.system_prompt_tokens for r in logged)
    assert abs(explained - planted) <= 50 * len(logged) + 1  # the day's noise, and each term rounded to a token


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_random_noise_within_tolerance_yields_no_finding(seed: int) -> None:
    """Every stated quantity of every day moves by up to ±0.4% (the relative tolerance is 0.5%), amounts
    follow the quantities: nothing to report."""
    rng = random.Random(seed)
    logged = month(seed=seed % 1000)
    billed = []
    for row in statement(logged):
        for category, quantity in row.quantities.items():
            row = bill_quantity(row, category, round(quantity * (1 + rng.uniform(-0.004, 0.004))))
        billed.append(row)

    assert run(logged, billed).findings == ()


def test_padding_needs_enough_days_to_be_reported() -> None:
    logged = scope_month([5_000] * 5, [0.5, 0.6, 0.7, 0.4, 0.8])

    result = run(logged, inflate(logged, per_request=40))

    assert "padding_tokens" not in [f.kind for f in result.findings]
    # The excess is still reported, as the plain mismatch it is.
    assert [(f.kind, f.subject) for f in result.findings] == [("quantity_mismatch", "input")]


def test_padding_below_the_money_tolerance_is_reported_as_info() -> None:
    """Materiality sets severity, not existence: a steady padding is certain long before it costs much."""
    logged = scope_month([1_000] * 12, [0.5] * 12)

    result = run(logged, inflate(logged, per_request=1))  # 12,000 tokens ≈ $0.03 < $1.00

    (padding,) = result.findings
    assert (padding.kind, padding.severity) == ("padding_tokens", "info")
    assert padding.evidence["tokens_per_request"] == "1.00"
    assert Decimal(0) < padding.impact_usd < Decimal("0.10")


def test_a_collinear_system_prompt_excess_is_attributed_by_its_ratio() -> None:
    """When every request carries the same system prompt, padding and double counting look alike; an
    excess equal to the system-prompt tokens is then called a double count."""
    logged = [
        replace(r, system_prompt_tokens=r.successful_requests * 700)
        for r in scope_month([2_000 + 150 * i for i in range(20)], [1.0] * 20)
    ]

    result = run(logged, inflate(logged, prompt_copies=1))

    assert [f.kind for f in result.findings] == ["system_prompt_double_count"]
    assert result.findings[0].evidence["fit"]["separable"] is False  # type: ignore[index,call-overload]


def test_an_exact_padding_has_an_infinite_t_statistic_not_a_rounding_error() -> None:
    logged = scope_month([5_000 + 100 * day for day in range(14)], [0.5] * 14)

    result = run(logged, inflate(logged, per_request=40))

    (padding,) = [finding for finding in result.findings if finding.kind == "padding_tokens"]
    fit = padding.evidence["fit"]
    assert isinstance(fit, dict)
    assert (fit["tokens_per_request"], fit["residual_rms_tokens"]) == ("40.000", "0.0")  # evidence is JSON
    assert fit["t_stat_requests"] == "Infinity"


@given(k=st.integers(1, 500), data=usage())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_in_an_exact_fit_what_explains_nothing_has_no_t_statistic_of_rounding_noise(
    k: int, data: tuple[list[int], list[float], list[int]]
) -> None:
    requests, shares, _ = data
    logged = scope_month(requests, shares)

    result = run(logged, inflate(logged, per_request=k), settings=CENT_TOLERANCE)

    (padding,) = [finding for finding in result.findings if finding.kind == "padding_tokens"]
    fit = padding.evidence["fit"]
    assert isinstance(fit, dict)
    assert (fit["t_stat_requests"], fit["system_prompt_ratio"], fit["t_stat_system_prompt"]) == (
        "Infinity",
        "0.0000",
        "0.00",
    )
