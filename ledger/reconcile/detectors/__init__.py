"""The detectors. A detector is a module exposing `KIND` (the finding kind it emits; a contract) and
`detect(context) -> list[Finding]`; adding one is one module and one line in `DETECTORS`."""

from __future__ import annotations

from typing import Protocol

from ledger.reconcile.context import DetectionContext
from ledger.reconcile.detectors import (
    cache_mischarge,
    charged_errors,
    missing_finish_reason,
    model_substitution,
    padding_tokens,
    price_drift,
    quantity_mismatch,
    silent_truncation,
    spend_spike,
    system_prompt_double_count,
    unbilled_usage,
    unlogged_usage,
)
from ledger.reconcile.model import Finding


class Detector(Protocol):
    KIND: str

    def detect(self, context: DetectionContext) -> list[Finding]: ...


DETECTORS: list[Detector] = [
    padding_tokens,
    system_prompt_double_count,
    cache_mischarge,
    price_drift,
    quantity_mismatch,
    unlogged_usage,
    unbilled_usage,
    charged_errors,
    model_substitution,
    silent_truncation,
    missing_finish_reason,
    spend_spike,
]
