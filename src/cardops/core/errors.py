"""Domain errors: a stable code, an HTTP status, an English message translated on display.

The API turns them into RFC 9457 problem details; the console shows the message on the page.
Keep each message one string literal so the translation check can find it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cardops.core.i18n import translate


class CardopsError(Exception):
    status: int = 400
    code: str = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        errors: list[tuple[str, str]] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(message.format(**params) if params else message)
        self.message = message
        self.params = params
        self.field = field
        self.errors = errors or []
        if code:
            self.code = code

    def localized(self, locale: str | None = None) -> str:
        return translate(self.message, locale, **self.params)

    def field_errors(self, locale: str | None = None) -> list[dict[str, str]]:
        items = [
            {"field": field, "message": translate(message, locale, **self.params)}
            for field, message in self.errors
        ]
        if self.field and not items:
            items.append({"field": self.field, "message": self.localized(locale)})
        return items


class ValidationFailed(CardopsError):
    status = 422
    code = "invalid"


class NotFound(CardopsError):
    status = 404
    code = "not_found"


class Conflict(CardopsError):
    status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class RateLimited(Conflict):
    status = 429
    code = "rate_limited"


class PermissionDenied(CardopsError):
    status = 403
    code = "permission_denied"


class AuthenticationFailed(CardopsError):
    status = 401
    code = "authentication_failed"


class FieldErrors:
    """Collect field errors so that a form shows all of them at once."""

    def __init__(self) -> None:
        self.items: list[ValidationFailed] = []

    def check(self, func_: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``func_``; keep its ValidationFailed instead of raising it."""
        try:
            return func_(*args, **kwargs)
        except ValidationFailed as exc:
            self.items.append(exc)
            return None

    def add(self, exc: ValidationFailed) -> None:
        self.items.append(exc)

    def raise_if_any(self) -> None:
        if len(self.items) == 1:
            raise self.items[0]
        if self.items:
            params: dict[str, Any] = {}
            for item in self.items:
                params.update(item.params)
            raise ValidationFailed(
                "Some fields are not valid.",
                errors=[(item.field or "request", item.message) for item in self.items],
                **params,
            )
