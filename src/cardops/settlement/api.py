"""REST API: /api/v1/settlement/… windows, settlement runs, payout files, rate cards,
statements, reward rules and finance data."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from cardops.auth.service import require
from cardops.settlement import reports, service
from cardops.settlement.permissions import SETTLEMENT_RATES, SETTLEMENT_VIEW
from cardops.web.deps import DB, ApiUser, RecordId

router = APIRouter(prefix="/settlement", tags=["settlement"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class RateIn(BaseModel):
    debit_bp: int = Field(ge=0, le=service.MAX_BP)
    debit_cap: int | None = Field(default=None, gt=0, le=service.MAX_CAP)
    credit_bp: int = Field(ge=0, le=service.MAX_BP)
    effective_from: date
    note: str = Field(default="", max_length=200)


class SettingsIn(BaseModel):
    cutoff: str = Field(max_length=5)
    bank_debit_bp: int = Field(ge=0, le=service.MAX_BP)
    bank_debit_cap: int | None = Field(default=None, gt=0, le=service.MAX_CAP)
    bank_credit_bp: int = Field(ge=0, le=service.MAX_BP)
    default_debit_bp: int = Field(ge=0, le=service.MAX_BP)
    default_debit_cap: int | None = Field(default=None, gt=0, le=service.MAX_CAP)
    default_credit_bp: int = Field(ge=0, le=service.MAX_BP)


class RuleIn(BaseModel):
    name: str = Field(max_length=100)
    kind: Literal["activation", "volume"]
    amount: int = Field(ge=0, le=10**9)
    level: Literal["city", "county"] | None = None
    provider_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    threshold: int = Field(default=0, ge=0, le=10**13)


def _day(value: str) -> date:
    return service.parse_day(value)


@router.get("/windows")
def windows(db: DB, user: ApiUser) -> list[dict[str, Any]]:
    require(user, SETTLEMENT_VIEW)
    return [reports.window_row(w) for w in service.list_windows(db)]


@router.get("/windows/{business_date}", response_model=None)
def window(
    business_date: str, db: DB, user: ApiUser, format: Literal["json", "xlsx"] = "json"
) -> Any:
    summary = reports.day_summary(session=db, actor=user, day=_day(business_date))
    if format == "xlsx":
        return Response(reports.day_summary_xlsx(summary), media_type=XLSX)
    return {
        **reports.window_row(summary.window),
        "merchants": [
            {
                "merchant_id": r.merchant.id,
                "mid": r.merchant.mid,
                "name": r.merchant.name,
                "count": r.count,
                "cancels": r.cancels,
                "gross": r.gross,
                "fee": r.fee,
                "net": r.net,
                "payout": r.payout,
                "carried": r.carried,
            }
            for r in summary.merchants
        ],
        "shares": [
            {
                "provider_id": p.id,
                "code": p.code,
                "card_type": c,
                "count": n,
                "volume": v,
                "share": s,
            }
            for p, c, n, v, s in summary.shares
        ],
    }


@router.post("/windows/{business_date}/close")
def close(business_date: str, db: DB, user: ApiUser) -> dict[str, Any]:
    w = service.close_window(session=db, actor=user, business_date=_day(business_date))
    db.commit()
    return reports.window_row(w)


@router.post("/windows/{business_date}/settle")
def settle(business_date: str, db: DB, user: ApiUser) -> dict[str, Any]:
    result = service.settle_day(session=db, actor=user, business_date=_day(business_date))
    db.commit()
    return {
        **reports.window_row(result.window),
        "postings": result.postings,
        "unchanged": result.unchanged,
    }


@router.get("/windows/{business_date}/payout.csv")
def payout(business_date: str, db: DB, user: ApiUser) -> Response:
    day = _day(business_date)
    return Response(
        reports.payout_csv(session=db, actor=user, day=day),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="payout-{day}.csv"'},
    )


@router.get("/merchants/{merchant_id}/rates")
def rates(merchant_id: RecordId, db: DB, user: ApiUser) -> list[dict[str, Any]]:
    require(user, SETTLEMENT_VIEW)
    return [
        {
            "id": c.id,
            "debit_bp": c.debit_bp,
            "debit_cap": c.debit_cap,
            "credit_bp": c.credit_bp,
            "effective_from": c.effective_from.isoformat(),
            "note": c.note,
        }
        for c in service.merchant_rate_history(db, merchant_id)
    ]


@router.post("/merchants/{merchant_id}/rates", status_code=201)
def set_rate(merchant_id: RecordId, body: RateIn, db: DB, user: ApiUser) -> dict[str, Any]:
    card = service.set_merchant_rate(
        session=db, actor=user, merchant_id=merchant_id, **body.model_dump()
    )
    db.commit()
    return {"id": card.id, "effective_from": card.effective_from.isoformat()}


@router.get("/merchants/{merchant_id}/statement", response_model=None)
def merchant_statement(
    merchant_id: RecordId,
    db: DB,
    user: ApiUser,
    date_from: Annotated[str, Query(max_length=10)],
    date_to: Annotated[str, Query(max_length=10)],
    format: Literal["json", "xlsx", "pdf"] = "json",
) -> Any:
    statement = reports.merchant_statement(
        session=db,
        actor=user,
        merchant_id=merchant_id,
        date_from=service.parse_day(date_from, field="date_from"),
        date_to=service.parse_day(date_to, field="date_to"),
    )
    if format == "xlsx":
        return Response(reports.merchant_statement_xlsx(statement), media_type=XLSX)
    if format == "pdf":
        return Response(reports.merchant_statement_pdf(statement), media_type="application/pdf")
    return {
        "merchant_id": statement.merchant.id,
        "lines": [
            {
                "day": x.day.isoformat(),
                "card_type": x.card_type,
                "count": x.count,
                "cancels": x.cancels,
                "gross": x.gross,
                "fee": x.fee,
                "net": x.net,
            }
            for x in statement.lines
        ],
        "total": {
            "count": statement.totals.count,
            "gross": statement.totals.gross,
            "fee": statement.totals.fee,
            "net": statement.totals.net,
        },
    }


@router.get("/providers/{provider_id}/statement", response_model=None)
def provider_statement(
    provider_id: RecordId,
    db: DB,
    user: ApiUser,
    month: Annotated[str, Query(max_length=7)],
    format: Literal["json", "xlsx"] = "json",
) -> Any:
    statement = reports.provider_statement(
        session=db, actor=user, provider_id=provider_id, month=month
    )
    if format == "xlsx":
        return Response(reports.provider_statement_xlsx(statement), media_type=XLSX)
    return {
        "provider_id": statement.provider.id,
        "month": statement.month,
        "lines": [
            {"day": d.isoformat(), "card_type": c, "count": n, "volume": v, "share": s}
            for d, c, n, v, s in statement.lines
        ],
        "volume": statement.volume,
        "share": statement.share,
        "rewards": [
            {"kind": r.kind, "reference": r.reference, "amount": r.amount}
            for r in statement.rewards
        ],
    }


@router.get("/data", response_model=None)
def data(
    db: DB,
    user: ApiUser,
    date_from: Annotated[str, Query(max_length=10)],
    date_to: Annotated[str, Query(max_length=10)],
    by: Literal["provider", "level", "merchant", "card_type"] = "provider",
    period: Literal["day", "month"] = "day",
    format: Literal["json", "xlsx"] = "json",
) -> Any:
    rows = reports.finance_data(
        session=db,
        actor=user,
        date_from=service.parse_day(date_from, field="date_from"),
        date_to=service.parse_day(date_to, field="date_to"),
        by=by,
        period=period,
    )
    if format == "xlsx":
        return Response(reports.finance_data_xlsx(rows, by, period), media_type=XLSX)
    return [r.__dict__ for r in rows]


@router.put("/settings")
def put_settings(body: SettingsIn, db: DB, user: ApiUser) -> dict[str, Any]:
    row = service.update_config(session=db, actor=user, **body.model_dump())
    db.commit()
    return {
        "cutoff": row.cutoff,
        "bank_rate_card": row.bank_rate_card,
        "default_merchant_rate": row.default_merchant_rate,
    }


@router.get("/rate-history")
def rate_history(db: DB, user: ApiUser) -> list[dict[str, Any]]:
    """Versions of the bank's rate card ("bank") and the default merchant rate ("default"),
    newest first; a closed day is priced with the versions in force when it closed."""
    return [
        {
            "scope": v.scope,
            "rate_card": v.rate_card,
            "recorded_at": v.recorded_at,
            "actor_id": v.actor_id,
        }
        for v in service.rate_history(db, user)
    ]


@router.get("/rules")
def rules(db: DB, user: ApiUser) -> list[dict[str, Any]]:
    require(user, SETTLEMENT_RATES)
    return [
        {
            "id": r.id,
            "name": r.name,
            "kind": r.kind,
            "amount": r.amount,
            "level": r.level,
            "provider_id": r.provider_id,
            "threshold": r.threshold,
            "active": r.active,
        }
        for r in reports.list_rules(db)
    ]


@router.post("/rules", status_code=201)
def create_rule(body: RuleIn, db: DB, user: ApiUser) -> dict[str, Any]:
    rule = reports.create_rule(session=db, actor=user, **body.model_dump())
    db.commit()
    return {"id": rule.id}
