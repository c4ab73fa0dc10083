"""The web report as an application mounted inside the service (`/report`): its pages, static assets, and
errors rendered as HTML pages (a missing session redirects to sign-in)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from ledger.api.context import AppContext
from ledger.errors import TokenLedgerError, TooManyFailedAuthentications
from ledger.sink.group_commit import is_unavailable
from reports.web.pages import base_path, page, router
from reports.web.signin import Signer, SignInRequired

log = logging.getLogger("tokenledger.reports")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def create_report_app(context: AppContext) -> FastAPI:
    """The report application. Sessions are signed with `settings.session_secret`, or a random secret per
    process when it is unset (then sessions end when the process restarts)."""
    secret = context.settings.session_secret
    report = FastAPI(title="TokenLedger report", docs_url=None, redoc_url=None, openapi_url=None)
    report.state.context = context
    report.state.signer = Signer(secret.encode() if secret else secrets.token_bytes(32))
    report.include_router(router)
    report.mount("/static", StaticFiles(packages=[("reports", "static")]), name="static")

    @report.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            if name != "Cache-Control" or not request.url.path.startswith(f"{base_path(request)}/static/"):
                response.headers.setdefault(name, value)
        return response

    @report.exception_handler(SignInRequired)
    async def sign_in(request: Request, error: SignInRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{base_path(request)}/signin?next={quote(target)}", status_code=303)

    @report.exception_handler(TokenLedgerError)
    async def known_error(request: Request, error: TokenLedgerError) -> HTMLResponse:
        response = _error_page(request, error.status, error.message)
        if isinstance(error, TooManyFailedAuthentications):
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @report.exception_handler(RequestValidationError)
    async def invalid_parameters(request: Request, error: RequestValidationError) -> HTMLResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in problem['loc'][1:])}: {problem['msg']}" for problem in error.errors()
        )
        return _error_page(request, 422, f"Invalid request: {problems}")

    @report.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> HTMLResponse:
        return _error_page(
            request, error.status_code, "There is no such page." if error.status_code == 404 else str(error.detail)
        )

    @report.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, error: SQLAlchemyError) -> HTMLResponse:
        if is_unavailable(error):
            response = _error_page(request, 503, "The database is unreachable; retry in a moment.")
            response.headers["Retry-After"] = "2"
            return response
        log.exception("database error in the report")
        return _error_page(request, 500, "Something went wrong; the error is in the service log.")

    return report


def _error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return page(request, "error.html", None, status_code=status, status=status, message=message)
