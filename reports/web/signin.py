"""Signing in to the web report with a TokenLedger key of role read or admin.

The session is a row of `report_sessions` (its random id, the key id, its tenant, when it began) and a cookie
(HttpOnly, SameSite=Lax, path = the report's root) holding that id, the tenant, a per-session CSRF token and
when it was issued, signed with HMAC-SHA256 (itsdangerous). Expiry is read from the issued-at in the cookie
against the application's clock (as every other time here), not from itsdangerous' wall-clock timestamp. The
key itself is never stored. Every request looks the session and its key up again, so signing out (which
deletes the row) ends the session for every copy of the cookie, a revoked key's session stops at once and a
role change applies on the next page. Every form POST carries the session's CSRF token; the sign-in form
carries a token tied to a short-lived cookie of its own (so no other site can sign a browser in)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ledger.access.auth import same_text
from ledger.errors import Forbidden, TokenLedgerError
from ledger.storage.tables import ApiKey, ReportSession, Tenant
from ledger.vocabulary import REPORT_ROLES, Role

SESSION_COOKIE = "tokenledger_report"
SIGNIN_COOKIE = "tokenledger_signin"
SESSION_LIFETIME = timedelta(hours=12)
SIGNIN_LIFETIME = timedelta(minutes=30)


class SignInRequired(TokenLedgerError):
    """No valid session: the browser is sent to the sign-in page."""

    status = 401
    code = "sign_in_required"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking at the report: a key of role read or admin, and its tenant."""

    tenant_id: int
    tenant: str
    key_id: str
    role: str
    csrf: str
    session_id: str

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def require_admin(self, action: str) -> None:
        if not self.is_admin:
            raise Forbidden(f"{action} needs an admin key; you signed in with a {self.role} key")

    def check_csrf(self, token: str | None) -> None:
        if not token or not same_text(token, self.csrf):
            raise Forbidden("csrf: the form is out of date or did not come from this site: reload the page and retry")


class Signer:
    """Signs the report's cookie values and checks them (itsdangerous: JSON, base64url, HMAC-SHA256). Each
    cookie has its own salt, so the value of one never passes for the other."""

    def __init__(self, secret: bytes) -> None:
        self._serializer = URLSafeSerializer(secret, signer_kwargs={"digest_method": hashlib.sha256})

    def dumps(self, value: dict[str, Any], *, cookie_name: str) -> str:
        return str(self._serializer.dumps(value, salt=cookie_name))

    def loads(self, token: str | None, *, cookie_name: str) -> dict[str, Any] | None:
        """The signed value, or None when the token is missing, malformed or not signed by this secret for
        this cookie."""
        if not token:
            return None
        try:
            value = self._serializer.loads(token, salt=cookie_name)
        except BadData:
            return None
        return value if isinstance(value, dict) else None


def start_session(session: Session, signer: Signer, *, tenant_id: int, key_id: str, now: datetime) -> str:
    """A new session for the key (a fresh id and CSRF token, issued now), as its cookie value. Sessions past
    their lifetime are deleted on the way. The caller commits."""
    session.execute(delete(ReportSession).where(ReportSession.created_at < now - SESSION_LIFETIME))
    session_id = secrets.token_urlsafe(24)
    session.add(ReportSession(tenant_id=tenant_id, id=session_id, key_id=key_id, created_at=now))
    session.flush()
    value = {"t": tenant_id, "s": session_id, "c": secrets.token_urlsafe(24), "i": int(now.timestamp())}
    return signer.dumps(value, cookie_name=SESSION_COOKIE)


def end_session(session: Session, viewer: Viewer) -> None:
    """Sign the viewer's session out: no copy of its cookie opens anything any more. The caller commits."""
    session.execute(
        delete(ReportSession).where(ReportSession.tenant_id == viewer.tenant_id, ReportSession.id == viewer.session_id)
    )


def viewer_of(session: Session, signer: Signer, token: str | None, *, now: datetime) -> Viewer:
    """The viewer of a session cookie; SignInRequired when it is missing, forged, expired, signed out, or its
    key was revoked or no longer has a report role."""
    value = signer.loads(token, cookie_name=SESSION_COOKIE)
    if (
        value is None
        or not {"t", "s", "c", "i"} <= value.keys()
        or not isinstance(value["t"], int)
        or not isinstance(value["s"], str)
        or not isinstance(value["c"], str)
        or not isinstance(value["i"], int)
    ):
        raise SignInRequired("sign in to see the report")
    if now.timestamp() - value["i"] > SESSION_LIFETIME.total_seconds():
        raise SignInRequired("your session expired: sign in again")
    row = session.execute(
        select(ApiKey.id, ApiKey.role, Tenant.name)
        .select_from(ReportSession)
        .join(ApiKey, (ApiKey.tenant_id == ReportSession.tenant_id) & (ApiKey.id == ReportSession.key_id))
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(
            ReportSession.tenant_id == value["t"],
            ReportSession.id == value["s"],
            ReportSession.created_at > now - SESSION_LIFETIME,
            ApiKey.revoked_at.is_(None),
        )
    ).one_or_none()
    if row is None or row.role not in REPORT_ROLES:
        raise SignInRequired("this session ended, or its key was revoked or may no longer read reports: sign in again")
    return Viewer(
        tenant_id=value["t"], tenant=row.name, key_id=row.id, role=row.role, csrf=value["c"], session_id=value["s"]
    )


def signin_token(signer: Signer, *, now: datetime) -> tuple[str, str]:
    """(form token, cookie value) for the sign-in form."""
    token = secrets.token_urlsafe(24)
    return token, signer.dumps({"s": token, "i": int(now.timestamp())}, cookie_name=SIGNIN_COOKIE)


def check_signin_token(signer: Signer, cookie: str | None, form_token: str | None, *, now: datetime) -> None:
    value = signer.loads(cookie, cookie_name=SIGNIN_COOKIE)
    if (
        value is None
        or not form_token
        or not same_text(str(value.get("s", "")), form_token)
        or not isinstance(value.get("i"), int)
        or now.timestamp() - value["i"] > SIGNIN_LIFETIME.total_seconds()
    ):
        raise Forbidden("token: the sign-in form expired or did not come from this site: reload it and sign in again")


def safe_next(next_path: str | None, base: str) -> str:
    """Where to go after signing in: a path inside the report, never another site."""
    if next_path and next_path.startswith(f"{base}/") and not next_path.startswith("//") and "\\" not in next_path:
        return next_path
    return f"{base}/"
