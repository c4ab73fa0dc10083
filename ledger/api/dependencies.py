"""FastAPI dependencies: the app context, a database session per request, and the calling key."""

from __future__ import annotations

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
    cached = context.principals.get(token)
    if cached is not None:
        return cached
    with context.sessions() as session:
        principal = authenticate(session, token)
    context.principals.put(token, principal)
    return principal


async def get_principal(request: Request, context: ContextDep) -> Principal:
    """The calling key; a cached key costs no thread hop, an unknown one is checked in the threadpool."""
    token = bearer_token(request)
    cached = context.principals.get(token)
    if cached is not None:
        return cached
    return await run_in_threadpool(principal_for, context, token)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
