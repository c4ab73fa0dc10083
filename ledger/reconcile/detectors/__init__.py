"""The detectors. A detector is a module of this package exposing `KIND` (the finding kind it emits; a contract),
`ORDER` (its place among the kinds: the order findings come out in, and the kinds are listed in by the API and
in error messages), `ON_THE_BILL` (whether its findings' impact is money on the provider's bill, which explains
drift, or money at risk, which does not) and `detect(context) -> list[Finding]`; adding one is adding its module
(and its test): `DETECTORS` lists every module found here, by `ORDER`.

The order they run in does not change the findings: each emits findings of its own kind only, and `reconcile()`
sorts the findings by kind first (`overlaps.resolve_overlaps`), keeping the order of one detector's own findings
of equal rank."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Protocol, cast

from ledger.reconcile.context import DetectionContext
from ledger.reconcile.model import Finding


class Detector(Protocol):
    KIND: str
    ORDER: int
    ON_THE_BILL: bool

    def detect(self, context: DetectionContext) -> list[Finding]: ...


def _discovered() -> list[Detector]:
    """Every module of this package, imported, as a detector, by `ORDER`; a module without `KIND`, `ORDER`,
    `ON_THE_BILL` or `detect`, or two of one `ORDER`, are refused."""
    detectors = []
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        if (
            not isinstance(getattr(module, "KIND", None), str)
            or not isinstance(getattr(module, "ORDER", None), int)
            or not isinstance(getattr(module, "ON_THE_BILL", None), bool)
            or not callable(getattr(module, "detect", None))
        ):
            raise TypeError(
                f"{module.__name__}: a detector module exposes KIND (a str), ORDER (an int), ON_THE_BILL (a bool) "
                "and detect()"
            )
        detectors.append(cast(Detector, module))
    orders = [detector.ORDER for detector in detectors]
    if len(set(orders)) != len(orders):
        raise TypeError(f"two detectors share an ORDER: {sorted(orders)}")
    return sorted(detectors, key=lambda detector: detector.ORDER)


DETECTORS: tuple[Detector, ...] = tuple(_discovered())
