"""TokenLedger's own API keys: tenants, roles and key verification. Only a SHA-256 of each secret is stored;
a key is shown once, when created. Services take a session and never commit."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from ledger.storage.tables import ApiKey, Tenant
from ledger.vocabulary import ROLES as ROLES  # what a key may be issued as; re-exported for the key commands
from ledger.vocabulary import Role

KEY_PREFIX = "tl"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant a key belongs to, and what it may do."""

    tenant_id: int
    key_id: str
    role: str

    def require(self, *roles: str) -> Principal:
        if self.role != Role.ADMIN and self.role not in roles:
            # A valid key without the role is refused with 403, whatever the method; 401 means no valid key.
            raise Forbidden(f"this key has role {self.role!r}; this needs {' or '.join((*roles, Role.ADMIN))}")
        return self


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key_id: str
    secret: str
    tenant: str
    role: str

    @property
    def token(self) -> str:
        return f"{KEY_PREFIX}_{self.key_id}.{self.secret}"


TENANT_NAME_MAX = 100


def create_tenant(session: Session, name: str) -> Tenant:
    if not name.strip():
        raise InvalidRequest("tenant name must not be empty")
    if len(name.strip()) > TENANT_NAME_MAX or not name.strip().isprintable():
        raise InvalidRequest(f"tenant name must be at most {TENANT_NAME_MAX} printable characters")
    tenant = Tenant(name=name.strip())
    session.add(tenant)
    try:
        session.flush()
    except IntegrityError as error:
        raise Conflict(f"tenant {name!r} already exists") from error
    return tenant


def tenant_by_name(session: Session, name: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:
        raise NotFound(f"no tenant named {name!r}")
    return tenant


def tenant_for_cli(session: Session, name: str | None) -> Tenant:
    """The named tenant, or the only one when there is exactly one."""
    if name:
        return tenant_by_name(session, name)
    tenants = list(session.scalars(select(Tenant).order_by(Tenant.id).limit(2)))
    if len(tenants) != 1:
        raise InvalidRequest(
            "name a tenant with --tenant" if tenants else "no tenant yet: tokenledger tenants create NAME"
        )
    return tenants[0]


def create_key(session: Session, tenant_name: str, role: str, *, label: str | None = None) -> IssuedKey:
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    tenant = tenant_by_name(session, tenant_name)
    issued = IssuedKey(key_id=secrets.token_hex(6), secret=secrets.token_urlsafe(24), tenant=tenant.name, role=role)
    session.add(
        ApiKey(tenant_id=tenant.id, id=issued.key_id, role=role, secret_sha256=_digest(issued.secret), label=label)
    )
    session.flush()
    return issued


@dataclass(frozen=True, slots=True)
class KeyListing:
    """A key as an operator lists it: never its secret, which is not stored."""

    key_id: str
    tenant: str
    role: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


def list_keys(session: Session, tenant_name: str | None = None) -> list[KeyListing]:
    """Every key (of the named tenant), revoked ones too, by tenant and creation."""
    query = select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id)
    if tenant_name is not None:
        query = query.where(ApiKey.tenant_id == tenant_by_name(session, tenant_name).id)
    return [
        KeyListing(key.id, tenant, key.role, key.label, key.created_at, key.revoked_at)
        for key, tenant in session.execute(query.order_by(Tenant.name, ApiKey.created_at, ApiKey.id))
    ]


def list_tenants(session: Session) -> list[tuple[Tenant, int]]:
    """Every tenant, with how many keys it has that are not revoked."""
    active = (
        select(func.count())
        .where(ApiKey.tenant_id == Tenant.id, ApiKey.revoked_at.is_(None))
        .correlate(Tenant)
        .scalar_subquery()
    )
    return [(tenant, count) for tenant, count in session.execute(select(Tenant, active).order_by(Tenant.name))]


def revoke_key(session: Session, key_id: str, *, now: datetime) -> None:
    result = session.execute(
        update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=now)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"no active key with id {key_id!r}")


def authenticate(session: Session, token: str) -> Principal:
    """The principal of a bearer token, or Unauthorized."""
    key_id, secret = _split(token)
    key = session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)))
    if key is None or not hmac.compare_digest(key.secret_sha256, _digest(secret)):
        raise Unauthorized("invalid or revoked API key")
    return Principal(tenant_id=key.tenant_id, key_id=key.id, role=key.role)


@dataclass(frozen=True, slots=True)
class CachedPrincipal:
    principal: Principal
    fresh: bool  # False: older than the TTL; usable while one refresh checks the key again


class PrincipalCache:
    """Remembers verified tokens so hot paths skip a database round trip. Keyed by the token's digest.
    An entry is fresh for `ttl_seconds`; for a while after that it is still served, marked stale, while the
    caller re-checks the key once (so a busy key never makes every request wait at the same instant). A
    revoked key stops working within `ttl_seconds` plus one re-check."""

    STALE_FACTOR = 10

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()

    def get(self, token: str) -> CachedPrincipal | None:
        if self._ttl <= 0:
            return None
        entry = self._entries.get(_digest(token))
        if entry is None:
            return None
        age = time.monotonic() - entry[0]
        if age > self._ttl * self.STALE_FACTOR:
            return None
        return CachedPrincipal(entry[1], fresh=age <= self._ttl)

    def claim_refresh(self, token: str) -> bool:
        """True for the one caller that should re-check a stale entry now."""
        digest = _digest(token)
        with self._lock:
            if digest in self._refreshing:
                return False
            self._refreshing.add(digest)
            return True

    def put(self, token: str, principal: Principal) -> None:
        if self._ttl <= 0:
            return
        digest = _digest(token)
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[digest] = (time.monotonic(), principal)
            self._refreshing.discard(digest)

    def forget(self, token: str) -> None:
        digest = _digest(token)
        with self._lock:
            self._entries.pop(digest, None)
            self._refreshing.discard(digest)


def same_text(given: str, expected: str) -> bool:
    """A constant-time comparison of a text someone sent with the one expected. `hmac.compare_digest` raises on
    non-ASCII text, so both are compared as UTF-8 (a lone surrogate included)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def _split(token: str) -> tuple[str, str]:
    prefix = f"{KEY_PREFIX}_"
    if not token.isascii() or not token.startswith(prefix) or "." not in token:
        raise Unauthorized("malformed API key")
    key_id, _, secret = token[len(prefix) :].partition(".")
    if not key_id or not secret:
        raise Unauthorized("malformed API key")
    return key_id, secret


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
