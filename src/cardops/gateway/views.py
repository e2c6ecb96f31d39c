"""Console pages of the gateway: transactions with charts, the stop list, on-us card numbers
and PINs, and the live operations page."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from cardops.auth.service import require
from cardops.core.clock import as_utc, utcnow
from cardops.core.errors import CardopsError
from cardops.core.i18n import N_
from cardops.gateway import service
from cardops.gateway.permissions import CARD_PAN_MANAGE, GATEWAY_VIEW, STOPLIST_MANAGE
from cardops.web.deps import Console, ConsoleForm, ConsolePage, RecordId, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()

NAV = [
    NavItem(
        N_("Transactions"), "/gateway/transactions", GATEWAY_VIEW, section=N_("Gateway"), order=500
    ),
    NavItem(N_("Stop list"), "/gateway/stoplist", GATEWAY_VIEW, section=N_("Gateway"), order=501),
    NavItem(
        N_("Card numbers and PINs"),
        "/gateway/cards",
        CARD_PAN_MANAGE,
        section=N_("Gateway"),
        order=502,
    ),
    NavItem(
        N_("Live operations"), "/gateway/operations", GATEWAY_VIEW, section=N_("Gateway"), order=503
    ),
]
REASONS = [("lost", N_("Lost")), ("stolen", N_("Stolen")), ("counterfeit", N_("Counterfeit"))]


def _text(console: Console, name: str, limit: int = 500) -> str:
    raw = console.form.get(name)
    if isinstance(raw, list):
        raw = raw[0] if raw else ""
    return raw.strip()[:limit] if isinstance(raw, str) else ""


def chart(buckets: list[service.Bucket]) -> dict[str, Any]:
    """Bars of volume and a line of approval rate, as SVG coordinates."""
    width, height, pad = 720, 180, 24
    top = max([b.total for b in buckets] + [1])
    step = (width - 2 * pad) / max(len(buckets), 1)
    bars, points = [], []
    for i, b in enumerate(buckets):
        h = (height - 2 * pad) * b.total / top
        x = pad + i * step
        bars.append(
            {
                "x": round(x + 2, 1),
                "y": round(height - pad - h, 1),
                "w": round(step - 4, 1),
                "h": round(h, 1),
                "label": b.label,
                "total": b.total,
                "rate": round(b.rate * 100),
            }
        )
        if b.total:
            y = height - pad - (height - 2 * pad) * b.rate
            points.append(f"{x + step / 2:.1f},{y:.1f}")
    return {"width": width, "height": height, "bars": bars, "line": " ".join(points), "top": top}


@router.get("/gateway/transactions", response_class=HTMLResponse)
def transactions(
    console: ConsolePage,
    tid: str = "",
    mid: str = "",
    card: str = "",
    rrn: str = "",
    day: str = "",
    result: str = "",
    page: int = 1,
) -> HTMLResponse:
    require(console.user, GATEWAY_VIEW)
    chosen: date | None = None
    error = None
    try:
        chosen = date.fromisoformat(day[:10]) if day else None
    except ValueError:
        error = N_("Enter the date as YYYY-MM-DD.")
    filters = service.TxFilter(
        tid=tid[:8], mid=mid[:15], card=card[:19], rrn=rrn[:12], day=chosen, result=result[:8]
    )
    page = max(1, min(page, 10_000))
    rows, total = service.search(
        session=console.db, actor=console.user, filters=filters, limit=50, offset=(page - 1) * 50
    )
    buckets = service.volume(session=console.db, actor=console.user, filters=filters)
    return console.render(
        "gateway/transactions.html",
        rows=rows,
        total=total,
        page=page,
        pages=max(1, (total + 49) // 50),
        values={
            "tid": tid[:8],
            "mid": mid[:15],
            "card": card[:19],
            "rrn": rrn[:12],
            "day": day[:10],
            "result": result[:8],
        },
        chart=chart(buckets),
        error=error,
    )


def _stop_page(console: Console, status_code: int = 200, **extra: Any) -> HTMLResponse:
    entries = service.list_stops(session=console.db, actor=console.user, active_only=False)
    extra.setdefault("values", {})
    return console.render(
        "gateway/stoplist.html", status_code=status_code, entries=entries, reasons=REASONS, **extra
    )


@router.get("/gateway/stoplist", response_class=HTMLResponse)
def stoplist(console: ConsolePage) -> HTMLResponse:
    require(console.user, GATEWAY_VIEW)
    return _stop_page(console)


@router.post("/gateway/stoplist", response_class=HTMLResponse)
def stoplist_add(console: ConsoleForm) -> Response:
    require(console.user, STOPLIST_MANAGE)
    values = {k: _text(console, k) for k in ("pan", "reason", "note")}
    try:
        entry = service.add_stop(session=console.db, actor=console.user, **values)
    except CardopsError as exc:
        console.db.rollback()
        values["pan"] = values["pan"][:23]
        return _stop_page(console, exc.status, values=values, **form_error_context(exc))
    console.flash("Card {masked} is on the stop list.", masked=entry.pan_masked)
    console.db.commit()
    return console.redirect("/gateway/stoplist")


@router.post("/gateway/stoplist/{entry_id}/remove", response_class=HTMLResponse)
def stoplist_remove(console: ConsoleForm, entry_id: RecordId) -> Response:
    require(console.user, STOPLIST_MANAGE)
    try:
        entry = service.remove_stop(
            session=console.db, actor=console.user, entry_id=entry_id, note=_text(console, "note")
        )
    except CardopsError as exc:
        console.db.rollback()
        return _stop_page(console, exc.status, **form_error_context(exc))
    console.flash("Card {masked} was taken off the stop list.", masked=entry.pan_masked)
    console.db.commit()
    return console.redirect("/gateway/stoplist")


@router.get("/gateway/cards", response_class=HTMLResponse)
def cards(console: ConsolePage) -> HTMLResponse:
    require(console.user, CARD_PAN_MANAGE)
    return console.render("gateway/cards.html", values={}, bin=service.onus_bin())


@router.post("/gateway/cards", response_class=HTMLResponse)
def cards_post(console: ConsoleForm) -> Response:
    require(console.user, CARD_PAN_MANAGE)
    values = {
        "card_number": _text(console, "card_number", 32),
        "action": _text(console, "action", 8),
    }
    pin = _text(console, "pin", 12)
    try:
        if values["action"] == "pan":
            assigned = service.assign_pan(
                session=console.db,
                actor=console.user,
                card_number=values["card_number"],
                replace=bool(console.form.get("replace")),
            )
            if pin:
                service.set_pin(
                    session=console.db,
                    actor=console.user,
                    card_number=values["card_number"],
                    pin=pin,
                )
            console.db.commit()
            return console.render(
                "gateway/cards.html",
                values=values,
                bin=service.onus_bin(),
                assigned=assigned.pan,
                expiry=assigned.onus.expiry,
            )
        service.set_pin(
            session=console.db, actor=console.user, card_number=values["card_number"], pin=pin
        )
    except CardopsError as exc:
        console.db.rollback()
        return console.render(
            "gateway/cards.html",
            status_code=exc.status,
            values=values,
            bin=service.onus_bin(),
            **form_error_context(exc),
        )
    console.flash("The PIN of card {number} is set.", number=values["card_number"])
    console.db.commit()
    return console.redirect("/gateway/cards")


def _operations(console: Console) -> dict[str, Any]:
    nodes = service.nodes(session=console.db, actor=console.user)
    now = utcnow()
    live = []
    for node in nodes:
        metrics = node.metrics or {}
        requests = metrics.get("requests", {})
        by_code: dict[str, int] = {}
        for key, n in requests.items():
            by_code[key.split(":", 1)[-1]] = by_code.get(key.split(":", 1)[-1], 0) + n
        live.append(
            {
                "node": node,
                "alive": now - as_utc(node.heartbeat_at) < timedelta(seconds=15),
                "metrics": metrics,
                "by_code": sorted(by_code.items()),
                "total": sum(by_code.values()),
            }
        )
    batches = service.list_batches(session=console.db, actor=console.user, limit=20)
    return {"live": live, "batches": batches}


@router.get("/gateway/operations", response_class=HTMLResponse)
def operations(console: ConsolePage) -> HTMLResponse:
    require(console.user, GATEWAY_VIEW)
    return console.render("gateway/operations.html", **_operations(console))


@router.get("/gateway/operations/panel", response_class=HTMLResponse)
def operations_panel(console: ConsolePage) -> HTMLResponse:
    require(console.user, GATEWAY_VIEW)
    return console.render("gateway/_operations_panel.html", **_operations(console))
