"""Statement labels no known model answers to: *unmatched*, never a finding by themselves.

A statement line's model is unmatched when it resolves to no model the price catalog knows (tenant aliases
included) and no logged usage of its provider names it. Such labels are listed after an import, in the CLI
drift table and on the report's overview, each with the command that fixes it:
`tokenledger models alias LABEL MODEL [--provider P]` (stored per tenant, read by the next reconciliation run).

Before the reconciler compares the two sides, the billed days of an aliased label take the model it names; a
still unmatched label whose billed tokens and money agree, within the run's tolerances, with the logged usage of
exactly one model of the same provider and account that nothing else bills, is compared as that model (no
substitution, unlogged or unbilled usage is reported between them) and its drift row says "probably the same
model, alias it".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from msgspec.structs import replace
from sqlalchemy import text
from sqlalchemy.orm import Session

from ledger.periods import Period
from ledger.pricing.model_names import normalize_model_name
from ledger.pricing.prices import PriceCatalog, pricing_provider_of
from ledger.reconcile.model import BilledDay, LoggedDay, ReconcileSettings

__all__ = [
    "ProbableAlias",
    "UnmatchedLabel",
    "alias_command",
    "apply_aliases",
    "probable_aliases",
    "unmatched_labels",
    "with_probable_aliases",
]


@dataclass(frozen=True, slots=True)
class UnmatchedLabel:
    """A statement label of one provider that no known model answers to, with what was billed under it."""

    provider: str
    label: str
    lines: int
    tokens: int
    amount: Decimal | None

    @property
    def fix(self) -> str:
        return alias_command(self.provider, self.label)


@dataclass(frozen=True, slots=True)
class ProbableAlias:
    """An unmatched label billed for what one logged model used, tokens and money alike."""

    provider: str
    account: str | None
    label: str
    model: str

    @property
    def note(self) -> str:
        fix = alias_command(self.provider, self.label, self.model)
        return f"billed as {self.label!r}: probably the same model, alias it: {fix}"


def alias_command(provider: str, label: str, model: str = "MODEL") -> str:
    quoted = f'"{label}"' if " " in label else label
    return f"tokenledger models alias {quoted} {model} --provider {provider}"


_LABELS = text(
    """
    SELECT provider, model, count(*) AS lines,
           coalesce(sum(quantity) FILTER (WHERE unit = 'tokens'), 0) AS tokens, sum(amount) AS amount
    FROM statement_lines
    WHERE tenant_id = :tenant AND period_start >= :start AND period_start < :end AND model IS NOT NULL
    GROUP BY provider, model
    """
)
_LOGGED_MODELS = text(
    """
    SELECT DISTINCT provider, response_model, request_model FROM usage_daily
    WHERE tenant_id = :tenant AND day >= :first_day AND day < :end_day
    """
)


def unmatched_labels(session: Session, tenant_id: int, period: Period, catalog: PriceCatalog) -> list[UnmatchedLabel]:
    """The tenant's unmatched statement labels in `period` (see the module docstring), by provider and label."""
    window = {"tenant": tenant_id, "start": period.start, "end": period.end}
    days = {"tenant": tenant_id, "first_day": period.start.date(), "end_day": period.end.date()}
    logged = {
        (provider, normalize_model_name(provider, model))
        for provider, served, requested in session.execute(_LOGGED_MODELS, days)
        for model in (served, requested)
    }
    labels = []
    for provider, label, lines, tokens, amount in session.execute(_LABELS, window):
        if (provider, label) in logged or catalog.resolve(pricing_provider_of(provider, label), label) is not None:
            continue
        labels.append(UnmatchedLabel(provider, label, int(lines), int(tokens), amount))
    return sorted(labels, key=lambda label: (label.provider, label.label))


def apply_aliases(billed: Iterable[BilledDay], aliases: Mapping[tuple[str, str], str]) -> list[BilledDay]:
    """Billed days with each aliased label replaced by the model it names ((provider or '', label) keys)."""
    if not aliases:
        return list(billed)
    renamed = []
    for day in billed:
        model = day.model
        target = None if model is None else aliases.get((day.provider, model)) or aliases.get(("", model))
        renamed.append(day if target is None else replace(day, model=normalize_model_name(day.provider, target)))
    return renamed


def probable_aliases(
    logged: Sequence[LoggedDay],
    billed: Sequence[BilledDay],
    unmatched: Iterable[tuple[str, str]],
    settings: ReconcileSettings,
) -> list[ProbableAlias]:
    """For each unmatched (provider, label): the one logged model of the same provider and account whose tokens
    and expected cost over the period agree with what the label was billed, within the tolerances, and which no
    statement line bills under its own name there. None where no model, or more than one, fits."""
    wanted = set(unmatched)
    billed_models: set[tuple[str, str | None, str | None]] = set()
    label_sums: dict[tuple[str, str | None, str], list[Decimal]] = {}
    for day in billed:
        billed_models.add((day.provider, day.account, day.model))
        if day.model is not None and (day.provider, day.model) in wanted:
            sums = label_sums.setdefault((day.provider, day.account, day.model), [Decimal(0), Decimal(0)])
            sums[0] += sum(day.quantities.values())
            sums[1] += day.total_amount if day.total_amount is not None else sum(day.amounts.values(), Decimal(0))
    # Per provider × account × model, and per provider × model (for statements without accounts).
    logged_tokens: dict[tuple[str, str | None, str], int] = {}
    expected_costs: dict[tuple[str, str | None, str], Decimal | None] = {}
    for row in logged:
        for key in ((row.provider, row.account, row.model), (row.provider, None, row.model)):
            logged_tokens[key] = logged_tokens.get(key, 0) + row.tokens.total()
            so_far = expected_costs.get(key, Decimal(0))
            expected_costs[key] = None if so_far is None or row.expected_cost is None else so_far + row.expected_cost
    found = []
    for (provider, account, label), (tokens, amount) in sorted(label_sums.items(), key=str):
        fits = [
            model
            for (logged_provider, logged_account, model), used in logged_tokens.items()
            if logged_provider == provider
            and logged_account == account
            and (provider, account, model) not in billed_models
            and abs(tokens - used) <= max(Decimal(settings.token_abs_tolerance), settings.token_rel_tolerance * used)
            and (
                (expected := expected_costs[(provider, account, model)]) is None
                or abs(amount - expected) <= max(settings.money_abs_tolerance, settings.money_rel_tolerance * expected)
            )
        ]
        if len(fits) == 1:
            found.append(ProbableAlias(provider, account, label, fits[0]))
    return found


def with_probable_aliases(billed: Sequence[BilledDay], probable: Iterable[ProbableAlias]) -> list[BilledDay]:
    """Billed days of each probable alias's label compared as its model."""
    targets = {(alias.provider, alias.account, alias.label): alias.model for alias in probable}
    if not targets:
        return list(billed)
    return [
        replace(day, model=targets[key]) if (key := (day.provider, day.account, day.model or "")) in targets else day
        for day in billed
    ]
