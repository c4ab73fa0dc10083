"""The HTTP API."""

from ledger.api.app import create_app

__all__ = ["create_app"]
