"""FastAPI dependencies: the app context, a database session per request, and the calling key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Annotated, Any, get_args, get_origin

from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from ledger.access.auth import Principal, authenticate
from ledger.api.context import AppContext
from ledger.errors import InvalidRequest, TooManyFailedAuthentications, Unauthorized


def refuse_unknown_query(request: Request, known: frozenset[str], repeatable: frozenset[str] = frozenset()) -> None:
    """Query parameters the route does not take are refused, not ignored (`?peroid=2026-10` must not list every
    month), as are a parameter given twice unless it is a list (`repeatable`) and a NUL character, which no
    text stored in PostgreSQL can hold."""
    if not request.scope.get("query_string"):
        return
    seen: set[str] = set()
    for name, value in request.query_params.multi_items():
        if name not in known:
            takes = ", ".join(sorted(known)) or "no query parameters"
            raise InvalidRequest(f"unknown query parameter {name!r}; this route takes {takes}")
        if name in seen and name not in repeatable:
            raise InvalidRequest(f"query parameter {name!r} is given more than once")
        if "\x00" in value:
            raise InvalidRequest(f"query parameter {name!r} holds a NUL character")
        seen.add(name)


async def known_query_only(request: Request) -> None:
    """A route dependency: `refuse_unknown_query` with the query parameters the route declares."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    declared: dict[str, tuple[frozenset[str], frozenset[str]]] = request.app.state.context.declared_queries
    if route.unique_id not in declared:
        params = _query_params(route.dependant)
        declared[route.unique_id] = (
            frozenset(param.alias for param in params),
            frozenset(param.alias for param in params if _is_list(param.field_info.annotation)),
        )
    refuse_unknown_query(request, *declared[route.unique_id])


def _query_params(dependant: Dependant) -> list[Any]:
    """The query parameters (FastAPI's fields: `alias`, `field_info`) of a route's dependency tree."""
    params: list[Any] = list(dependant.query_params)
    for sub in dependant.dependencies:
        params += _query_params(sub)
    return params


def _is_list(annotation: Any) -> bool:
    """`list[…]`, alone or in a union (`list[str] | None`)."""
    return get_origin(annotation) is list or any(_is_list(member) for member in get_args(annotation))


async def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_session(context: ContextDep) -> Iterator[Session]:
    with context.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def client_address(request: Request) -> str:
    """The peer's address (behind a proxy, what uvicorn's --proxy-headers made of X-Forwarded-For)."""
    return request.client.host if request.client else ""


def refuse_a_throttled_address(context: AppContext, address: str) -> None:
    retry_after = context.failed_auth.retry_after(address, time.monotonic())
    if retry_after is not None:
        raise TooManyFailedAuthentications(retry_after)


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    return token.strip()


def principal_for(context: AppContext, token: str) -> Principal:
    """Check the token against the database and remember the answer (a refused token is forgotten)."""
    try:
        with context.sessions() as session:
            principal = authenticate(session, token)
    except Unauthorized:
        context.principals.forget(token)
        raise
    context.principals.put(token, principal)
    return principal


async def get_principal(request: Request, context: ContextDep) -> Principal:
    """The calling key. A remembered key costs no thread hop; a stale one is served while a single
    background task checks it again; an unknown one is checked in the threadpool, unless its address sent
    too many wrong keys lately (then 429 at once, `ledger.access.throttle`)."""
    token = bearer_token(request)  # no key at all costs no lookup: neither counted nor throttled
    cached = context.principals.get(token)
    if cached is None:
        address = client_address(request)
        refuse_a_throttled_address(context, address)
        try:
            return await run_in_threadpool(principal_for, context, token)
        except Unauthorized:
            context.failed_auth.failed(address, time.monotonic())
            raise
    if not cached.fresh and context.principals.claim_refresh(token):
        task = asyncio.get_running_loop().create_task(_refresh(context, token))
        _REFRESHES.add(task)
        task.add_done_callback(_REFRESHES.discard)
    return cached.principal


_REFRESHES: set[asyncio.Task[None]] = set()


async def _refresh(context: AppContext, token: str) -> None:
    try:
        await run_in_threadpool(principal_for, context, token)
    except Exception:  # revoked or unreachable: the next request decides afresh
        context.principals.forget(token)


BEARER_KEY = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="A TokenLedger API key (`tokenledger keys create`), sent as `Authorization: Bearer <key>`. "
    "Its role decides what it may do: `ingest` sends usage, `read` reads, `admin` does both and more.",
)
"""Declares the key in the OpenAPI document (the docs' Authorize button); `get_principal` reads the header."""


async def principal_of_request(
    request: Request,
    context: ContextDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER_KEY)],
) -> Principal:
    return await get_principal(request, context)


PrincipalDep = Annotated[Principal, Depends(principal_of_request)]
