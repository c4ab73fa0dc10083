"""FastAPI dependencies: the app context, a database session per request, and the calling key."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from ledger.api.context import AppContext
from ledger.auth import Principal, authenticate
from ledger.errors import Unauthorized


async def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_session(context: ContextDep) -> Iterator[Session]:
    with context.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


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
    background task checks it again; an unknown one is checked in the threadpool."""
    token = bearer_token(request)
    cached = context.principals.get(token)
    if cached is None:
        return await run_in_threadpool(principal_for, context, token)
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


PrincipalDep = Annotated[Principal, Depends(get_principal)]
