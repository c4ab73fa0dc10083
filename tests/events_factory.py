"""Building usage events for tests: realistic defaults, any field overridable."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any


def usage_event(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"evt-{secrets.token_hex(8)}",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "provider": "openai",
        "account": "proj_main",
        "api_key_id": "key_app",
        "request_model": "gpt-5.4-mini",
        "input_tokens": 1_200,
        "output_tokens": 300,
        "cache_read_input_tokens": 200,
        "finish_reason": "stop",
        "latency_ms": 850,
        "app": "support-bot",
    }
    event.update(fields)
    return {key: value for key, value in event.items() if value is not None}
