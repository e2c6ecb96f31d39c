"""The FastAPI application: console pages, REST API under /api/v1, OpenAPI docs at /docs."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import cardops
from cardops.core.config import get_settings
from cardops.core.errors import CardopsError
from cardops.core.i18n import current_locale, gettext, negotiate, normalize
from cardops.core.registry import domain_modules, load_models
from cardops.web.deps import LANG_COOKIE, LoginRequired, PasswordChangeRequired
from cardops.web.templating import render

log = logging.getLogger("cardops.web")
STATIC_DIR = Path(__file__).resolve().parent / "static"


class LocaleMiddleware:
    """Choose zh_CN or en per request: the language switch cookie, else the browser's language."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        cookie_lang = None
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == LANG_COOKIE:
                cookie_lang = normalize(value)
        accept = headers.get("accept-language")
        if cookie_lang:
            locale = cookie_lang
        elif scope["path"].startswith("/api/") and not accept:
            locale = "en"
        else:
            locale = negotiate(accept)
        token = current_locale.set(locale)
        try:
            await self.app(scope, receive, send)
        finally:
            current_locale.reset(token)


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``max_request_bytes`` before they are read into memory
    or spooled to disk (uploads are checked against their own, smaller limit afterwards)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = get_settings().max_request_bytes
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > limit:
                await self._too_large(scope, send, limit)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await self._too_large(scope, send, limit)

    @staticmethod
    async def _too_large(scope: Scope, send: Send, limit: int) -> None:
        detail = gettext("The request is too large (at most {mb} MB).", mb=limit // (1024 * 1024))
        body = json.dumps(
            {
                "type": "https://cardops.dev/problems/too_large",
                "title": "too large",
                "status": 413,
                "detail": detail,
                "code": "too_large",
            },
            ensure_ascii=False,
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def problem(
    request: Request,
    status: int,
    code: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://cardops.dev/problems/{code}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def _error_page(
    status: int, message: str, errors: list[dict[str, str]] | None = None
) -> HTMLResponse:
    html = render("error.html", status=status, message=message, errors=errors or [])
    return HTMLResponse(html, status_code=status)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form", "cookie")]
    return ".".join(parts) or "request"


def _validation_message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return gettext("This field is required.")
    if kind in ("string_too_short", "too_short"):
        return gettext("Too short: at least {n}.", n=ctx.get("min_length", "?"))
    if kind in ("string_too_long", "too_long"):
        return gettext("Too long: at most {n}.", n=ctx.get("max_length", "?"))
    if kind.startswith("int") or kind.startswith("float"):
        return gettext("Enter a whole number.")
    if kind.startswith("greater_than") or kind.startswith("less_than"):
        return gettext("The number is out of range.")
    if kind.startswith("date") or kind.startswith("datetime"):
        return gettext("Enter a valid date.")
    if kind.startswith("bool"):
        return gettext("Enter true or false.")
    if kind == "string_pattern_mismatch":
        return gettext("The format is not valid.")
    if kind in ("enum", "literal_error"):
        return gettext("Choose one of the allowed values.")
    return gettext("The value is not valid.")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CardopsError)
    async def _cardops_error(request: Request, exc: CardopsError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if _is_api(request):
            return problem(
                request, exc.status, exc.code, exc.localized(), exc.field_errors(), headers
            )
        return _error_page(exc.status, exc.localized(), exc.field_errors())

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": _field_name(e.get("loc", ())), "message": _validation_message(e)}
            for e in exc.errors()
        ]
        detail = gettext("Some fields are not valid.")
        if _is_api(request):
            return problem(request, 422, "invalid", detail, errors)
        return _error_page(422, detail, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {
            404: gettext("Not found."),
            405: gettext("This method is not allowed here."),
        }
        detail = messages.get(exc.status_code) or str(exc.detail)
        if _is_api(request) or exc.status_code not in (404, 405):
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
            return problem(
                request, exc.status_code, code, detail, headers=getattr(exc, "headers", None)
            )
        return _error_page(exc.status_code, detail)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": f"/login?next={exc.next_url}"})
        return RedirectResponse(f"/login?next={exc.next_url}", status_code=303)

    @app.exception_handler(PasswordChangeRequired)
    async def _password_change(request: Request, exc: PasswordChangeRequired) -> Response:
        return RedirectResponse("/password", status_code=303)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(request: Request, exc: Exception) -> Response:
        # A value the database cannot hold (a number too large, a malformed string) is bad input.
        log.warning("bad input reached the database on %s: %s", request.url.path, exc)
        detail = gettext("A value is out of range or malformed.")
        if _is_api(request):
            return problem(request, 422, "invalid", detail)
        return _error_page(422, detail)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        detail = gettext("Something went wrong on our side. The error has been logged.")
        if _is_api(request):
            return problem(request, 500, "internal_error", detail)
        return _error_page(500, detail)


@asynccontextmanager
async def _run_background_jobs(app: FastAPI) -> AsyncIterator[None]:
    """Start every domain's ``jobs.run(stop)`` (e.g. the notification dispatcher)."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(module.run(stop)) for module in domain_modules("jobs")]
    try:
        yield
    finally:
        stop.set()
        for task in tasks:
            try:
                await asyncio.wait_for(task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
            except Exception:
                log.exception("background job failed while stopping")


def serve_app() -> FastAPI:
    """The app as ``cardops serve`` runs it: with background jobs."""
    return create_app(run_jobs=True)


def create_app(
    *, run_jobs: bool = False, session_maker: sessionmaker[Session] | None = None
) -> FastAPI:
    """The application. ``session_maker`` binds it to a database other than the configured one
    (the browser tests serve a database of their own)."""
    load_models()
    from cardops.auth.permissions import load_all

    load_all()
    app = FastAPI(
        title="cardops",
        version=cardops.__version__,
        description="Operations platform for card issuers and POS terminal operators.",
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=_run_background_jobs if run_jobs else None,
    )
    app.state.session_maker = session_maker
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(LocaleMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in domain_modules("api"):
        app.include_router(module.router, prefix="/api/v1")
    for module in domain_modules("views"):
        app.include_router(module.router, include_in_schema=False)
    from cardops.web import views as shell

    app.include_router(shell.router, include_in_schema=False)
    app.include_router(shell.api_router, prefix="/api/v1")
    return app
