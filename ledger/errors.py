"""Errors a user can act on. Each has a stable machine `code`, an HTTP status, and a message that names
what is wrong. One handler in `ledger.api` renders them; the CLI prints them as one line.

    TokenLedgerError
    ├── NotFound (404)            ├── Unauthorized (401)      ├── Forbidden (403)
    ├── InvalidRequest (422)      ├── PayloadTooLarge (413)   ├── ServiceUnavailable (503)
    ├── UndecodableBody (400)     ├── UnsupportedMediaType (415)
    ├── Conflict (409)            └── TooManyFailedAuthentications (429)
"""

from __future__ import annotations

from typing import Any, ClassVar


class TokenLedgerError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class NotFound(TokenLedgerError):
    status = 404
    code = "not_found"


class Unauthorized(TokenLedgerError):
    status = 401
    code = "unauthorized"


class Forbidden(TokenLedgerError):
    status = 403
    code = "forbidden"


class InvalidRequest(TokenLedgerError):
    status = 422
    code = "invalid_request"


class UndecodableBody(TokenLedgerError):
    """A body whose Content-Encoding cannot be undone (not gzip, cut short, or followed by other bytes)."""

    status = 400
    code = "invalid_request"


class PayloadTooLarge(TokenLedgerError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(TokenLedgerError):
    status = 415
    code = "unsupported_media_type"


class ServiceUnavailable(TokenLedgerError):
    status = 503
    code = "database_unavailable"


class Conflict(TokenLedgerError):
    status = 409
    code = "already_exists"


class TooManyFailedAuthentications(TokenLedgerError):
    """Too many wrong keys came from the client's address: it may try again after `retry_after` seconds."""

    status = 429
    code = "too_many_failed_authentications"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many invalid API keys from this address; retry in {retry_after} s")
        self.retry_after = retry_after
