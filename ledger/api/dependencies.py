"""FastAPI dependencies: the app context, a database session per request, and the calling key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from ledger.api.context import AppContext
from ledger.auth import Principal, authenticate
from ledger.errors import Unauthorized


def get_context(request: Request) -> AppContext:
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


def get_principal(request: Request, context: ContextDep) -> Principal:
    return principal_for(context, bearer_token(request))


PrincipalDep = Annotated[Principal, Depends(get_principal)]
