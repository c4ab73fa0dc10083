"""A LiteLLM callback recording one usage event per LiteLLM call, in the SDK and in the proxy.

    import litellm
    litellm.callbacks = [TokenLedgerLogger(TokenLedger(url, key), app="gateway")]

It reads LiteLLM's `standard_logging_object` (mapping: `ledger.integrations.litellm_payload`) on success and failure,
sync and async. LiteLLM may run both the sync and the async hook for one async call; the payload id is the
event id, and a short memory of recent ids keeps such a call from being recorded twice. Recording never raises
into LiteLLM.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from ledger.integrations.client import UsageRecorder
from ledger.integrations.litellm_payload import event_from_payload

log = logging.getLogger("tokenledger.litellm")

RECENT_IDS = 4096


class TokenLedgerLogger(CustomLogger):
    """Records LiteLLM calls into `ledger` (a `TokenLedger`); `app`, `account` and `tags` label every event."""

    def __init__(
        self,
        ledger: UsageRecorder,
        *,
        app: str | None = None,
        account: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.ledger = ledger
        self.app = app
        self.account = account
        self.tags = dict(tags) if tags else None
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._record(kwargs)

    def log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._record(kwargs)

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._record(kwargs)

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._record(kwargs)

    def _record(self, kwargs: Mapping[str, Any]) -> None:
        try:
            payload = kwargs.get("standard_logging_object")
            if payload is None:
                log.debug("TokenLedger: a LiteLLM call without standard_logging_object was not recorded")
                return
            event = event_from_payload(payload, app=self.app, account=self.account, tags=self.tags)
            if event is None or self._seen(event["event_id"]):
                return
            self.ledger.record(event)
        except Exception:
            log.warning("TokenLedger: could not record a LiteLLM call", exc_info=True)

    def _seen(self, event_id: str) -> bool:
        with self._lock:
            if event_id in self._recent:
                return True
            self._recent[event_id] = None
            if len(self._recent) > RECENT_IDS:
                self._recent.popitem(last=False)
            return False
