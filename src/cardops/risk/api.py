"""REST API of the risk domain (/api/v1/risk/...)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from cardops.core.clock import local, utcnow
from cardops.risk import service
from cardops.risk.models import Alert
from cardops.risk.schemas import (
    AlertEventOut,
    AlertOut,
    AssignIn,
    BacktestIn,
    BacktestOut,
    CloseIn,
    ExpressionIn,
    ExpressionOut,
    LimitIn,
    LimitOut,
    NoteIn,
    RatedMerchantOut,
    RatingIn,
    RatingReviewOut,
    ReportOut,
    RuleIn,
    RuleOut,
    RuleUpdate,
    RuleVersionOut,
    ScenarioIn,
    ScenarioOut,
    ScenarioUpdate,
)
from cardops.web.deps import DB, ApiUser, RecordId

router = APIRouter(tags=["risk"])


def alert_out(db: Session, alert: Alert) -> AlertOut:
    out = AlertOut.model_validate(alert)
    out.overdue = service.is_overdue(alert)
    row = service.alert_transaction(db, alert)
    out.response_code = row.response_code if row is not None else None
    return out


# --- scenarios and rules -----------------------------------------------------------------


@router.get("/risk/scenarios", response_model=list[ScenarioOut])
def list_scenarios(db: DB, user: ApiUser) -> list[ScenarioOut]:
    return [ScenarioOut.model_validate(s) for s in service.list_scenarios(session=db, actor=user)]


@router.post("/risk/scenarios", response_model=ScenarioOut, status_code=201)
def create_scenario(body: ScenarioIn, db: DB, user: ApiUser) -> ScenarioOut:
    scenario = service.create_scenario(session=db, actor=user, **body.model_dump())
    db.commit()
    return ScenarioOut.model_validate(scenario)


@router.put("/risk/scenarios/{scenario_id}", response_model=ScenarioOut)
def update_scenario(
    scenario_id: RecordId, body: ScenarioUpdate, db: DB, user: ApiUser
) -> ScenarioOut:
    scenario = service.update_scenario(
        session=db, actor=user, scenario_id=scenario_id, **body.model_dump()
    )
    db.commit()
    return ScenarioOut.model_validate(scenario)


@router.get("/risk/rules", response_model=list[RuleOut])
def list_rules(
    db: DB, user: ApiUser, scenario_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
) -> list[RuleOut]:
    rules = service.list_rules(session=db, actor=user, scenario_id=scenario_id)
    return [RuleOut.model_validate(r) for r in rules]


@router.post("/risk/rules", response_model=RuleOut, status_code=201)
def create_rule(body: RuleIn, db: DB, user: ApiUser) -> RuleOut:
    rule = service.create_rule(session=db, actor=user, **body.model_dump())
    db.commit()
    return RuleOut.model_validate(rule)


@router.get("/risk/rules/{rule_id}", response_model=RuleOut)
def get_rule(rule_id: RecordId, db: DB, user: ApiUser) -> RuleOut:
    return RuleOut.model_validate(service.get_rule(session=db, actor=user, rule_id=rule_id))


@router.put("/risk/rules/{rule_id}", response_model=RuleOut)
def update_rule(rule_id: RecordId, body: RuleUpdate, db: DB, user: ApiUser) -> RuleOut:
    rule = service.update_rule(session=db, actor=user, rule_id=rule_id, **body.model_dump())
    db.commit()
    return RuleOut.model_validate(rule)


@router.get("/risk/rules/{rule_id}/versions", response_model=list[RuleVersionOut])
def rule_versions(rule_id: RecordId, db: DB, user: ApiUser) -> list[RuleVersionOut]:
    versions = service.rule_versions(session=db, actor=user, rule_id=rule_id)
    return [RuleVersionOut.model_validate(v) for v in versions]


@router.post("/risk/rules/validate", response_model=ExpressionOut)
def validate(body: ExpressionIn, db: DB, user: ApiUser) -> ExpressionOut:
    from cardops.auth.service import require
    from cardops.risk.permissions import RISK_VIEW

    require(user, RISK_VIEW)
    return ExpressionOut(fields=service.validate_expression(body.expression))


@router.get("/risk/fields")
def fields(user: ApiUser) -> list[dict[str, object]]:
    from cardops.auth.service import require
    from cardops.risk.permissions import RISK_VIEW

    require(user, RISK_VIEW)
    return service.field_list()


# --- alerts ------------------------------------------------------------------------------


@router.get("/risk/alerts", response_model=list[AlertOut])
def list_alerts(
    db: DB,
    user: ApiUser,
    state: Annotated[str, Query(max_length=16)] = "",
    overdue: bool = False,
    mine: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**7)] = 0,
) -> list[AlertOut]:
    filters = service.AlertFilter(
        state=state, overdue=overdue, assignee_id=user.id if mine else None
    )
    rows = service.list_alerts(session=db, actor=user, filters=filters, limit=limit, offset=offset)
    return [alert_out(db, a) for a in rows]


@router.get("/risk/alerts/{alert_id}", response_model=AlertOut)
def get_alert(alert_id: RecordId, db: DB, user: ApiUser) -> AlertOut:
    return alert_out(db, service.get_alert(session=db, actor=user, alert_id=alert_id))


@router.get("/risk/alerts/{alert_id}/events", response_model=list[AlertEventOut])
def alert_events(alert_id: RecordId, db: DB, user: ApiUser) -> list[AlertEventOut]:
    events = service.alert_events(session=db, actor=user, alert_id=alert_id)
    return [AlertEventOut.model_validate(e) for e in events]


@router.post("/risk/alerts/{alert_id}/take", response_model=AlertOut)
def take_alert(alert_id: RecordId, db: DB, user: ApiUser) -> AlertOut:
    alert = service.take_alert(session=db, actor=user, alert_id=alert_id)
    db.commit()
    return alert_out(db, alert)


@router.post("/risk/alerts/{alert_id}/assign", response_model=AlertOut)
def assign_alert(alert_id: RecordId, body: AssignIn, db: DB, user: ApiUser) -> AlertOut:
    alert = service.assign_alert(session=db, actor=user, alert_id=alert_id, assignee=body.assignee)
    db.commit()
    return alert_out(db, alert)


@router.post("/risk/alerts/{alert_id}/notes", response_model=AlertEventOut, status_code=201)
def add_note(alert_id: RecordId, body: NoteIn, db: DB, user: ApiUser) -> AlertEventOut:
    event = service.add_note(session=db, actor=user, alert_id=alert_id, text=body.text)
    db.commit()
    return AlertEventOut.model_validate(event)


@router.post("/risk/alerts/{alert_id}/close", response_model=AlertOut)
def close_alert(alert_id: RecordId, body: CloseIn, db: DB, user: ApiUser) -> AlertOut:
    alert = service.close_alert(session=db, actor=user, alert_id=alert_id, **body.model_dump())
    db.commit()
    return alert_out(db, alert)


@router.post("/risk/alerts/{alert_id}/reopen", response_model=AlertOut)
def reopen_alert(alert_id: RecordId, body: NoteIn, db: DB, user: ApiUser) -> AlertOut:
    alert = service.reopen_alert(session=db, actor=user, alert_id=alert_id, note=body.text)
    db.commit()
    return alert_out(db, alert)


# --- ratings -----------------------------------------------------------------------------


@router.get("/risk/rating-limits", response_model=list[LimitOut])
def rating_limits(db: DB, user: ApiUser) -> list[LimitOut]:
    return [LimitOut.model_validate(r) for r in service.rating_limits(session=db, actor=user)]


@router.put("/risk/rating-limits/{rating}", response_model=LimitOut)
def set_rating_limit(rating: str, body: LimitIn, db: DB, user: ApiUser) -> LimitOut:
    row = service.set_rating_limit(
        session=db, actor=user, rating=rating[:1] if len(rating) == 1 else "?", **body.model_dump()
    )
    db.commit()
    return LimitOut.model_validate(row)


@router.get("/risk/ratings", response_model=list[RatedMerchantOut])
def merchant_ratings(
    db: DB,
    user: ApiUser,
    due: bool = False,
    rating: Annotated[str, Query(max_length=1)] = "",
) -> list[RatedMerchantOut]:
    rows = service.merchant_ratings(session=db, actor=user, due_only=due, rating=rating)
    return [RatedMerchantOut.model_validate(r) for r in rows]


@router.put("/risk/ratings/{merchant_id}", response_model=RatedMerchantOut)
def rate_merchant(merchant_id: RecordId, body: RatingIn, db: DB, user: ApiUser) -> RatedMerchantOut:
    service.rate_merchant(
        session=db, actor=user, merchant_id=merchant_id, rating=body.rating, note=body.note
    )
    db.commit()
    found = [
        r for r in service.merchant_ratings(session=db, actor=user) if r.merchant_id == merchant_id
    ]
    return RatedMerchantOut.model_validate(found[0])


@router.get("/risk/ratings/{merchant_id}/history", response_model=list[RatingReviewOut])
def rating_history(merchant_id: RecordId, db: DB, user: ApiUser) -> list[RatingReviewOut]:
    rows = service.rating_history(session=db, actor=user, merchant_id=merchant_id)
    return [RatingReviewOut.model_validate(r) for r in rows]


# --- backtest and reports ----------------------------------------------------------------


@router.post("/risk/backtest", response_model=BacktestOut)
def backtest(body: BacktestIn, db: DB, user: ApiUser) -> BacktestOut:
    result = service.backtest(session=db, actor=user, **body.model_dump())
    return BacktestOut.model_validate(result)


@router.get("/risk/report", response_model=ReportOut)
def report(db: DB, user: ApiUser, start: date | None = None, end: date | None = None) -> ReportOut:
    end = end or local(utcnow()).date()
    start = start or end - timedelta(days=13)
    return ReportOut.model_validate(service.report(session=db, actor=user, start=start, end=end))
