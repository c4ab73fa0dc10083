"""Overlap rules are scope-true: a finding explains or suppresses another only on the same scope (or one
containing it), in the same period and category; findings on independent scopes never hide each other."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ledger.reconcile import ReconcileSettings, Scope
from ledger.reconcile.findings import new_finding
from ledger.reconcile.model import CATEGORIES, Finding
from ledger.reconcile.overlaps import KIND_ORDER, resolve_overlaps

PERIOD = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
SUBJECTS = {
    "price_drift": CATEGORIES,
    "quantity_mismatch": ("input", "cache_write", "output", "requests"),
    "model_substitution": ("requested:gpt-5.4", "billed_as:gpt-5.4"),
}


def finding(kind: str, scope: Scope, subject: str = "", **evidence: str) -> Finding:
    return new_finding(
        kind=kind,
        scope=scope,
        period=PERIOD,
        impact_usd=Decimal("2.67"),
        rate=None,
        evidence=evidence,
        summary=kind,
        settings=ReconcileSettings(),
        subject=subject,
    )


def independent(one: Scope, other: Scope) -> bool:
    return not one.contains(other) and not other.contains(one)


names = st.sampled_from(["a", "b", "c"])
scopes = st.builds(
    Scope,
    provider=st.sampled_from(["anthropic", "openai"]),
    account=st.none() | names.map(lambda n: f"wrk_{n}"),
    api_key_id=st.none() | names.map(lambda n: f"key_{n}"),
    model=st.none() | st.sampled_from(["claude-haiku-4-5", "claude-sonnet-4-5"]),
    service_tier=st.none() | st.just("standard"),
)


@st.composite
def findings(draw: st.DrawFn, scope: Scope) -> Finding:
    kind = draw(st.sampled_from(KIND_ORDER))
    subject = draw(st.sampled_from(SUBJECTS.get(kind, ("",))))
    source = draw(st.sampled_from(["logged", "billed", "billed_rolled_up"]))
    return finding(kind, scope, subject, quantity_source=source)


@given(st.data())
def test_findings_on_independent_scopes_never_hide_each_other(data: st.DataObject) -> None:
    one = data.draw(scopes)
    other = data.draw(scopes.filter(lambda scope: independent(one, scope)))
    first, second = data.draw(findings(one)), data.draw(findings(other))

    kept = resolve_overlaps([first, second])

    assert sorted(f.fingerprint for f in kept) == sorted({first.fingerprint, second.fingerprint})


def test_a_price_drift_in_one_workspace_is_not_hidden_by_a_double_count_in_another() -> None:
    model = "claude-haiku-4-5"
    drift = finding("price_drift", Scope(provider="anthropic", account="wrk_a", model=model), "output",
                    quantity_source="logged")  # fmt: skip
    double = finding("system_prompt_double_count", Scope(provider="anthropic", account="wrk_b", model=model))

    assert resolve_overlaps([drift, double]) == sorted([double, drift], key=lambda f: KIND_ORDER.index(f.kind))


def test_an_implied_rate_moved_by_its_own_scopes_quantity_is_not_reported_twice() -> None:
    scope = Scope(provider="anthropic", account="wrk_a", model="claude-haiku-4-5")
    drift = finding("price_drift", scope, "output", quantity_source="logged")
    on_key = Scope(provider="anthropic", account="wrk_a", api_key_id="key_a", model="claude-haiku-4-5")
    mismatch = finding("quantity_mismatch", on_key, "output")
    other_category = finding("quantity_mismatch", on_key, "input")

    assert resolve_overlaps([drift, mismatch]) == [mismatch]
    assert len(resolve_overlaps([drift, other_category])) == 2  # input moved, not output
    billed = finding("price_drift", scope, "output", quantity_source="billed_rolled_up")
    assert len(resolve_overlaps([billed, mismatch])) == 2  # a billed rate is the rate, whatever the quantity
