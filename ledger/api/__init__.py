"""The HTTP API under /v1 (the report at /report is mounted beside it by `ledger.server`)."""

from ledger.api.app import create_api

__all__ = ["create_api"]
