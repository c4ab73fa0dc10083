"""What billed quantities exceed logged ones by, and what explains the excess.

Input excess: over a scope's day buckets, the billed − logged prompt input (uncached + cached reads) is
fitted, through the origin and with non-negative coefficients, against the logged successful requests (a
constant padding per request) and the logged system-prompt tokens (a system prompt counted twice has a
coefficient near 1). A component *fires* only when the fit has enough days and requests, the coefficient is
significant (t ≥ `fit_min_t`) and the fit explains the excess (uncentred R² ≥ `fit_min_r_squared`).
Materiality sets a finding's severity, not its existence: a steady excess of a few tokens per request is
statistically certain long before it costs much, and users want to know before it scales with their
traffic, while zero-mean noise is never significant. When the two regressors
are (almost) proportional they cannot be told apart: the excess is then attributed to the system prompt
when its ratio is near 1, else to padding.

A third regressor, the logged prompt tokens of failed requests (429, 5xx), enters the fit where some were
logged: a statement without request counts (Anthropic's usage report) that bills failures shows an input
excess equal to them (coefficient near 1, within `charged_errors_rel_tolerance`): `charged_errors`.

Request excess: billed requests above logged successful ones, and whether they match the logged
429/5xx failures (charged errors)."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import combinations, compress, repeat

import numpy as np

from ledger.reconcile.findings import EvidenceValue, estimate, per_million, series_entry
from ledger.reconcile.model import Comparison, LoggedTotals, ReconcileSettings
from ledger.vocabulary import PROMPT_CATEGORIES

COLLINEAR_COSINE = 0.995
"""Above this cosine between the two regressors the fit cannot separate padding from system prompts."""

EXACT_FIT = 1e-9
"""A coefficient's standard error below this fraction of it is floating-point rounding of an exact fit."""

_PROMPT = frozenset(PROMPT_CATEGORIES)


@dataclass(frozen=True, slots=True)
class ExcessComponent:
    """One explanation of the input excess."""

    coefficient: float
    """Tokens per request (padding) or billed tokens per logged system-prompt token (double count)."""
    t_stat: float
    tokens: int
    """Excess tokens this component explains over the fitted buckets."""
    fires: bool


@dataclass(frozen=True, slots=True)
class InputExcessFit:
    buckets: tuple[Comparison, ...]
    categories: tuple[str, ...]
    logged_tokens: int
    billed_tokens: int
    requests: int
    system_prompt_tokens: int
    padding: ExcessComponent
    system_prompt: ExcessComponent
    r_squared: float
    residual_rms: float
    collinear: bool
    unit_price: Decimal | None
    """Expected USD per uncached input token (what an excess input token is billed at)."""
    outliers: tuple[Comparison, ...] = ()
    """Buckets left out of the fit (`_outlier_days`); the components' tokens still count them."""
    failed_prompt: ExcessComponent = ExcessComponent(coefficient=0.0, t_stat=0.0, tokens=0, fires=False)
    """Billed tokens per logged prompt token of failed requests (429, 5xx): near 1 when failures are billed."""
    failed_requests: int = 0
    failed_prompt_tokens: int = 0

    @property
    def excess(self) -> int:
        return self.billed_tokens - self.logged_tokens

    @property
    def explained(self) -> int:
        return sum(c.tokens for c in (self.padding, self.system_prompt, self.failed_prompt) if c.fires)

    @property
    def days(self) -> int:
        return sum(bucket.days for bucket in self.buckets)


LoggedSum = Callable[[Sequence[Comparison]], LoggedTotals]
"""Sums the logged usage of buckets (`LoggedTotals.sum` of their `logged`, or a memoized equivalent)."""


def _sum_logged(buckets: Sequence[Comparison]) -> LoggedTotals:
    return LoggedTotals.sum(b.logged for b in buckets)


def fit_input_excess(
    regular_buckets: Sequence[Comparison], settings: ReconcileSettings, logged_totals: LoggedSum = _sum_logged
) -> InputExcessFit | None:
    """Fit one scope's input excess over its regular buckets (`DetectionContext.regular`); None when the statement
    states no prompt input for it."""
    buckets = tuple(b for b in regular_buckets if not _PROMPT.isdisjoint(b.billed_quantities))
    if not buckets:
        return None
    categories = buckets[0].stated(PROMPT_CATEGORIES)
    logged_input: list[int] = []
    billed_input: list[int] = []
    requests: list[float] = []
    prompts: list[float] = []
    failed: list[float] = []
    for bucket in buckets:
        logged = bucket.logged
        logged_input.append(logged.tokens.total(categories))
        billed_input.append(sum(map(bucket.billed_quantities.get, categories, repeat(0))))
        requests.append(float(logged.successful_requests))
        prompts.append(float(logged.system_prompt_tokens))
        failed.append(float(logged.failed_prompt_tokens))
    y = [float(billed - logged) for billed, logged in zip(billed_input, logged_input, strict=True)]
    columns = (requests, prompts, failed) if any(failed) else (requests, prompts)
    totals = logged_totals(buckets)
    unit_price = totals.unit_price("uncached_input")
    coef, t_stats, rss, collinear = _fit_columns(y, columns, settings)
    fitted, total_y2 = len(y), _dot(y, y)
    outliers: frozenset[int] = frozenset()
    start = _robust_start(y, columns, coef)
    for _ in range(ROBUST_ROUNDS):  # fitted again without them, until they stay the same
        found = _outlier_days(y, columns, start, settings)
        if found == outliers:
            break
        outliers = found
        kept = [index not in outliers for index in range(len(y))]
        y_kept = list(compress(y, kept))
        coef, t_stats, rss, collinear = _fit_columns(
            y_kept, tuple(list(compress(column, kept)) for column in columns), settings
        )
        fitted, total_y2 = len(y_kept), _dot(y_kept, y_kept)
        start = coef
    coef, t_stats = [*coef, 0.0, 0.0, 0.0][:3], [*t_stats, 0.0, 0.0, 0.0][:3]
    r_squared = 1.0 - rss / total_y2 if total_y2 > 0 else 0.0
    enough = fitted >= settings.min_days and totals.successful_requests >= settings.min_requests

    def component(index: int, regressor: Sequence[float], *, ratio_ok: bool) -> ExcessComponent:
        tokens = round(coef[index] * math.fsum(regressor))
        fires = (
            enough
            and ratio_ok
            and tokens > 0
            and t_stats[index] >= float(settings.fit_min_t)
            and r_squared >= float(settings.fit_min_r_squared)
        )
        return ExcessComponent(coefficient=coef[index], t_stat=t_stats[index], tokens=tokens, fires=fires)

    def near_one(value: float, tolerance: Decimal) -> bool:
        return abs(Decimal(repr(value)) - 1) <= tolerance

    return InputExcessFit(
        buckets=buckets,
        categories=categories,
        logged_tokens=sum(logged_input),
        billed_tokens=sum(billed_input),
        requests=totals.successful_requests,
        system_prompt_tokens=totals.system_prompt_tokens,
        padding=component(0, requests, ratio_ok=True),
        system_prompt=component(1, prompts, ratio_ok=near_one(coef[1], settings.system_prompt_ratio_tolerance)),
        r_squared=r_squared,
        residual_rms=math.sqrt(rss / fitted),
        collinear=collinear,
        unit_price=unit_price,
        outliers=tuple(buckets[index] for index in sorted(outliers)),
        failed_prompt=component(2, failed, ratio_ok=near_one(coef[2], settings.charged_errors_rel_tolerance)),
        failed_requests=totals.errors_429 + totals.errors_5xx,
        failed_prompt_tokens=totals.failed_prompt_tokens,
    )


def _fit_columns(
    y: Sequence[float], columns: tuple[Sequence[float], ...], settings: ReconcileSettings
) -> tuple[list[float], list[float], float, bool]:
    """`_fit` on (requests, system-prompt tokens), or `_fit_with_failures` when failed requests' prompt tokens
    are a third regressor."""
    if len(columns) == 2:
        return _fit(y, columns[0], columns[1], settings)
    return _fit_with_failures(y, columns, settings)


def _fit_with_failures(
    y: Sequence[float], columns: tuple[Sequence[float], ...], settings: ReconcileSettings
) -> tuple[list[float], list[float], float, bool]:
    """Non-negative least squares through the origin on (requests, system-prompt tokens, failed requests' prompt
    tokens): every subset of the regressors is fitted, the best non-negative one kept (`_best_fit`). Requests
    and system prompts too close to proportional are not fitted together (see `_fit`)."""
    count = len(columns)
    norms = [math.sqrt(_dot(column, column)) for column in columns]
    collinear = bool(norms[0] and norms[1] and _dot(columns[0], columns[1]) / (norms[0] * norms[1]) >= COLLINEAR_COSINE)
    subsets = [s for k in range(1, count + 1) for s in combinations(range(count), k) if all(norms[i] for i in s)]
    if collinear:
        ratio = _dot(columns[1], y) / norms[1] / norms[1]
        dropped = 0 if abs(Decimal(repr(ratio)) - 1) <= settings.system_prompt_ratio_tolerance else 1
        subsets = [s for s in subsets if dropped not in s]
    coef, t_stats, rss = _best_fit(y, columns, subsets)
    return coef, t_stats, rss, collinear


OUTLIER_Z = 5.0
"""A day whose residual exceeds this many robust standard deviations (1.4826 × the median absolute residual)
is left out of the fit."""
MAX_OUTLIER_SHARE = 0.25
ROBUST_ROUNDS = 5
"""Rounds of leaving outliers out and fitting again (a cleaner fit shows more of them, sharper)."""


def _residuals(y: Sequence[float], columns: tuple[Sequence[float], ...], coef: Sequence[float]) -> list[float]:
    """|observed − fitted| per day."""
    fitted = [0.0] * len(y)
    for weight, column in zip(coef, columns, strict=True):
        if weight:
            fitted = [total + weight * value for total, value in zip(fitted, column, strict=True)]
    return [abs(observed - estimate) for observed, estimate in zip(y, fitted, strict=True)]


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _robust_start(y: Sequence[float], columns: tuple[Sequence[float], ...], coef: Sequence[float]) -> list[float]:
    """Where to look for outliers from: of the least-squares fit and the fits on each regressor alone, the one
    whose median absolute residual is least (a few exceptional days can pull least squares to a mixture of
    explanations that fits no day exactly)."""
    starts = [list(coef)]
    for index, regressor in enumerate(columns):
        norm = _dot(regressor, regressor)
        if norm:
            alone = [0.0] * len(columns)
            alone[index] = max(_dot(regressor, y) / norm, 0.0)
            starts.append(alone)
    return min(starts, key=lambda start: _median(_residuals(y, columns, start)))


def _outlier_days(
    y: Sequence[float], columns: tuple[Sequence[float], ...], coef: Sequence[float], settings: ReconcileSettings
) -> frozenset[int]:
    """The days (indexes) a few events make exceptional: logged late or never, or billed across midnight. Their
    excess is a handful of whole requests, against the same few tokens per request every other day, so they
    are far out of the fit by robust statistics (the median absolute residual, which a few such days do not
    move); a fit without them recovers the steady excess exactly. At most a quarter of the days, and never
    below `min_days` left; none when the residuals are all alike."""
    residuals = _residuals(y, columns, coef)
    threshold = max(OUTLIER_Z * 1.4826 * _median(residuals), 1.0)
    outliers = frozenset(index for index, residual in enumerate(residuals) if residual > threshold)
    if len(outliers) > MAX_OUTLIER_SHARE * len(y) or len(y) - len(outliers) < settings.min_days:
        return frozenset()
    return outliers


def _dot(left: Sequence[float], right: Sequence[float]) -> float:
    return math.fsum(map(operator.mul, left, right))


def _fit(
    y: Sequence[float], requests: Sequence[float], prompts: Sequence[float], settings: ReconcileSettings
) -> tuple[list[float], list[float], float, bool]:
    """Non-negative least squares through the origin on (requests, system-prompt tokens).

    Returns coefficients, t statistics, the residual sum of squares and whether the regressors were too
    close to proportional to separate. Two regressors are only fitted together when they are far from
    proportional (cosine < `COLLINEAR_COSINE`); else the excess goes to the system prompt when its ratio
    is near 1, to padding otherwise."""
    squares = (_dot(requests, requests), _dot(prompts, prompts))
    norms = [math.sqrt(squares[0]), math.sqrt(squares[1])]
    collinear = all(norms) and _dot(requests, prompts) / (norms[0] * norms[1]) >= COLLINEAR_COSINE
    candidates: list[tuple[int, ...]]
    if not norms[1]:
        candidates = [(0,)]
    elif collinear:
        ratio = _dot(prompts, y) / squares[1]
        near_one = abs(Decimal(repr(ratio)) - 1) <= settings.system_prompt_ratio_tolerance
        candidates = [(1,)] if near_one else [(0,)]
    else:
        candidates = [(0, 1), (0,), (1,)]
    coef, t_stats, rss = _best_fit(y, (requests, prompts), candidates)
    return coef, t_stats, rss, bool(collinear)


def _best_fit(
    y: Sequence[float], columns: tuple[Sequence[float], ...], candidates: Sequence[tuple[int, ...]]
) -> tuple[list[float], list[float], float]:
    """Of the least-squares fits on each candidate subset of the regressors, the non-negative one with the
    least residual sum of squares (a later candidate wins only by more than rounding): the coefficient and t
    statistic of every regressor (0 outside the subset) and the residual sum of squares (of no fit at all
    when no candidate is non-negative)."""
    regression = _Regression(y, columns)
    best: tuple[float, tuple[int, ...], list[float], list[float]] | None = None
    for subset in candidates:
        solved = regression.fit(subset)
        if solved is None:
            continue
        solution, inverse_diagonal, rss = solved
        if any(value < 0 for value in solution):
            continue
        if best is None or rss < best[0] - 1e-9 * max(rss, 1.0):
            best = (rss, subset, solution, inverse_diagonal)
    coef, t_stats = [0.0] * len(columns), [0.0] * len(columns)
    if best is None:
        return coef, t_stats, _dot(y, y)
    rss, subset, solution, inverse_diagonal = best
    dof = len(y) - len(subset)
    variance = rss / dof if dof > 0 else math.inf
    for position, index in enumerate(subset):
        if regression.rounding_only(index, solution[position]):
            continue  # no explanation, and no t statistic of rounding noise
        coef[index] = solution[position]
        spread = math.sqrt(max(variance * inverse_diagonal[position], 0.0))
        if spread > abs(coef[index]) * EXACT_FIT:
            t_stats[index] = coef[index] / spread
        else:  # no residual but rounding: an exact fit, not a t statistic of 10^16
            t_stats[index] = math.inf if coef[index] > 0 else 0.0
    return coef, t_stats, rss


SINGULAR = 1e-9
"""Regressors whose unit-scaled design has a squared singular value below this are (nearly) linearly dependent."""


class _Regression:
    """Least squares through the origin of the excess on subsets of the regressors (numpy.linalg)."""

    def __init__(self, y: Sequence[float], columns: tuple[Sequence[float], ...]) -> None:
        self.y = np.asarray(y, dtype=float)
        self.design = np.column_stack(columns)
        self.norms = np.linalg.norm(self.design, axis=0)
        # Scaled to unit length, nearly proportional regressors stay well conditioned.
        self.scaled = self.design / np.where(self.norms > 0, self.norms, 1.0)
        self.excess_norm = float(np.linalg.norm(self.y))

    def fit(self, subset: Sequence[int]) -> tuple[list[float], list[float], float] | None:
        """From the singular value decomposition of the subset's scaled columns (X⁺ = V Σ⁻¹ Uᵀ): the coefficients
        (X⁺y), the diagonal of (XᵀX)⁻¹ = X⁺X⁺ᵀ (each coefficient's variance per unit of residual variance) and
        the residual sum of squares. None when a regressor is all zero or they are (nearly) linearly dependent."""
        index = list(subset)
        norms = self.norms[index]
        if not norms.all():
            return None
        left, singular, right = np.linalg.svd(self.scaled[:, index], full_matrices=False)
        if len(singular) < len(index) or singular[-1] ** 2 < SINGULAR:
            return None
        pseudo_inverse = (right.T / singular) @ left.T / norms[:, np.newaxis]
        coefficients = pseudo_inverse @ self.y
        residuals = self.y - self.design[:, index] @ coefficients
        inverse_diagonal = (pseudo_inverse**2).sum(axis=1)
        return coefficients.tolist(), inverse_diagonal.tolist(), float(residuals @ residuals)

    def rounding_only(self, index: int, coefficient: float) -> bool:
        """Whether a coefficient moves the fitted excess by rounding only (in an exact fit, the coefficient of a
        regressor that explains nothing is rounding noise, of either sign)."""
        return coefficient * float(self.norms[index]) <= EXACT_FIT * self.excess_norm


@dataclass(frozen=True, slots=True)
class RequestExcess:
    buckets: tuple[Comparison, ...]
    billed: int
    successful: int
    failed: int
    """Logged 429 + 5xx requests."""
    tolerance: int
    match_tolerance: int
    expected_cost: Decimal | None

    @property
    def extra(self) -> int:
        return self.billed - self.successful

    @property
    def charged_errors(self) -> bool:
        """Billed beyond the successful requests by about the number of logged failures."""
        return self.extra > self.tolerance and self.failed > 0 and abs(self.extra - self.failed) <= self.match_tolerance


def request_excess(
    regular_buckets: Sequence[Comparison], settings: ReconcileSettings, logged_totals: LoggedSum = _sum_logged
) -> RequestExcess | None:
    """Billed against logged requests over a scope's regular buckets stating requests (`DetectionContext.regular`)."""
    buckets = tuple(b for b in regular_buckets if b.billed_requests is not None)
    if not buckets:
        return None
    totals = logged_totals(buckets)
    failed = totals.errors_429 + totals.errors_5xx
    return RequestExcess(
        buckets=buckets,
        billed=sum(b.billed_requests or 0 for b in buckets),
        successful=totals.successful_requests,
        failed=failed,
        tolerance=settings.request_tolerance(totals.successful_requests),
        match_tolerance=max(settings.request_abs_tolerance, math.ceil(settings.charged_errors_rel_tolerance * failed)),
        expected_cost=totals.expected_cost,
    )


def fit_evidence(fit: InputExcessFit, settings: ReconcileSettings) -> dict[str, EvidenceValue]:
    """What padding and system-prompt findings share: the fit, its tolerance and its daily series."""
    return {
        "categories": list(fit.categories),
        "expected": fit.logged_tokens,
        "billed": fit.billed_tokens,
        "difference": fit.excess,
        "requests": fit.requests,
        "system_prompt_tokens": fit.system_prompt_tokens,
        "failed_requests": fit.failed_requests,
        "failed_prompt_tokens": fit.failed_prompt_tokens,
        "days_observed": fit.days,
        "days_left_out_of_fit": [b.first_day for b in fit.outliers],
        "fit": {
            "tokens_per_request": estimate(fit.padding.coefficient, 3),
            "system_prompt_ratio": estimate(fit.system_prompt.coefficient, 4),
            "t_stat_requests": estimate(fit.padding.t_stat, 2),
            "t_stat_system_prompt": estimate(fit.system_prompt.t_stat, 2),
            "failed_prompt_ratio": estimate(fit.failed_prompt.coefficient, 4),
            "t_stat_failed_prompt": estimate(fit.failed_prompt.t_stat, 2),
            "r_squared": estimate(fit.r_squared, 4),
            "residual_rms_tokens": estimate(fit.residual_rms, 1),
            "separable": not fit.collinear,
        },
        "expected_unit_price_per_1m": None if fit.unit_price is None else per_million(fit.unit_price),
        "tolerance": settings.as_evidence(
            "min_days",
            "min_requests",
            "fit_min_t",
            "fit_min_r_squared",
            "system_prompt_ratio_tolerance",
            "charged_errors_rel_tolerance",
        ),
        "series": [
            {
                **series_entry(b, b.logged_quantity(fit.categories), b.billed_quantity(fit.categories)),
                "requests": b.logged.successful_requests,
                "system_prompt_tokens": b.logged.system_prompt_tokens,
            }
            for b in fit.buckets
        ],
    }
