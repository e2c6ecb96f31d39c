"""Risk services: scenarios and rules (validated, versioned), alerts worked to closure,
merchant ratings and their limits, backtests over the journal, reports.

Every change calls ``require`` first, records an audit entry and bumps the ``risk_config``
version so that running gateways reload within a second or two. Nothing here commits.
"""

from __future__ import annotations

import re
from collections import Counter as Tally
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import cel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.audit.service import record, snapshot
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.core.clock import as_utc, local, utcnow
from cardops.core.errors import Conflict, FieldErrors, NotFound, ValidationFailed
from cardops.core.models import bump_version
from cardops.risk.expressions import FIELDS, compile_rule
from cardops.risk.models import (
    ALERT_STATES,
    CONFIG_VERSION,
    DECLINE_CODES,
    OUTCOMES,
    RATINGS,
    REVIEW_MONTHS,
    SCORED_KINDS,
    Alert,
    AlertEvent,
    AlertState,
    MerchantRating,
    RatingLimit,
    RatingReview,
    Rule,
    RuleVersion,
    Scenario,
)
from cardops.risk.permissions import (
    RISK_ALERTS,
    RISK_RATINGS,
    RISK_RULES,
    RISK_SUSPEND,
    RISK_VIEW,
)

CODE = re.compile(r"^[A-Za-z0-9_.-]{2,32}$")
MAX_SCORE = 1000
MAX_LIMIT = 10**12  # fen


# --- input checks -----------------------------------------------------------------------


def _text(value: str | None, *, field: str, max_length: int, required: bool = True) -> str:
    text = " ".join((value or "").split())
    if required and not text:
        raise ValidationFailed("This field is required.", field=field)
    if len(text) > max_length:
        raise ValidationFailed("At most {n} characters.", field=field, n=max_length)
    return text


def _code(value: str | None, *, field: str = "code") -> str:
    text = (value or "").strip()
    if not CODE.match(text):
        raise ValidationFailed(
            "Use 2 to 32 letters, digits, dots, dashes or underscores.", field=field
        )
    return text


def _whole(value: Any, *, field: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise ValidationFailed("Enter a whole number.", field=field)
    if isinstance(value, int):
        number = value
    else:
        text = str(value if value is not None else "").strip()
        if not re.fullmatch(r"[+-]?\d{1,13}", text):
            raise ValidationFailed("Enter a whole number.", field=field)
        number = int(text)
    if not low <= number <= high:
        raise ValidationFailed(
            "Enter a number from {low} to {high}.", field=field, low=low, high=high
        )
    return number


def _decline_code(value: str | None, *, field: str, blank: bool) -> str:
    code = (value or "").strip()
    if blank and not code:
        return ""
    if code not in DECLINE_CODES:
        raise ValidationFailed("Choose 59, 61 or 65.", field=field)
    return code


def _limit(value: Any, *, field: str) -> int | None:
    """A limit in fen; ``None`` or "" = no limit. Text is yuan with up to 2 decimals."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValidationFailed("Enter an amount in yuan, e.g. 5000 or 5000.00.", field=field)
    if isinstance(value, int):
        fen = value
    else:
        text = str(value).strip().replace(",", "")
        if text.startswith("-"):
            raise ValidationFailed("A limit cannot be below zero.", field=field)
        if not re.fullmatch(r"\d{1,10}(\.\d{1,2})?", text):
            raise ValidationFailed("Enter an amount in yuan, e.g. 5000 or 5000.00.", field=field)
        whole, _, cents = text.partition(".")
        fen = int(whole) * 100 + int((cents + "00")[:2])
    if fen < 0:
        raise ValidationFailed("A limit cannot be below zero.", field=field)
    if fen > MAX_LIMIT:
        raise ValidationFailed("The limit is too large.", field=field)
    return fen


def _changed(session: Session) -> None:
    bump_version(session, CONFIG_VERSION)


# --- scenarios ---------------------------------------------------------------------------


@dataclass
class ScenarioFields:
    code: str
    name: str
    kinds: list[str]
    review_threshold: int
    decline_threshold: int
    decline_code: str
    active: bool


def _scenario_fields(
    *,
    code: str | None,
    name: str | None,
    kinds: list[str] | str | None,
    review_threshold: Any,
    decline_threshold: Any,
    decline_code: str | None,
    active: bool,
) -> ScenarioFields:
    errors = FieldErrors()
    clean_code = errors.check(_code, code)
    clean_name = errors.check(_text, name, field="name", max_length=128)
    if isinstance(kinds, str):
        kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    kind_list = [k for k in (kinds or []) if k]
    if not kind_list:
        errors.add(ValidationFailed("Choose at least one kind of request.", field="kinds"))
    elif any(k not in SCORED_KINDS for k in kind_list):
        errors.add(
            ValidationFailed(
                "Choose among purchase, preauth, completion, refund and balance.", field="kinds"
            )
        )
    review = errors.check(
        _whole, review_threshold, field="review_threshold", low=1, high=100 * MAX_SCORE
    )
    decline = errors.check(
        _whole, decline_threshold, field="decline_threshold", low=1, high=100 * MAX_SCORE
    )
    if review is not None and decline is not None and decline <= review:
        errors.add(
            ValidationFailed(
                "The decline threshold must be above the review threshold ({review}).",
                field="decline_threshold",
                review=review,
            )
        )
    code_ = errors.check(_decline_code, decline_code, field="decline_code", blank=False)
    errors.raise_if_any()
    return ScenarioFields(
        clean_code,
        clean_name,
        sorted(set(kind_list), key=list(SCORED_KINDS).index),
        review,
        decline,
        code_,
        bool(active),
    )


def list_scenarios(*, session: Session, actor: User) -> list[Scenario]:
    require(actor, RISK_VIEW)
    return list(session.execute(select(Scenario).order_by(Scenario.code)).scalars())


def get_scenario(*, session: Session, actor: User, scenario_id: int) -> Scenario:
    require(actor, RISK_VIEW)
    scenario = session.get(Scenario, scenario_id) if 0 < scenario_id < 2**31 else None
    if scenario is None:
        raise NotFound("There is no scenario {id}.", id=scenario_id)
    return scenario


def create_scenario(
    *,
    session: Session,
    actor: User,
    code: str,
    name: str,
    kinds: list[str] | str | None = None,
    review_threshold: Any = 50,
    decline_threshold: Any = 100,
    decline_code: str = "59",
    active: bool = True,
) -> Scenario:
    require(actor, RISK_RULES)
    f = _scenario_fields(
        code=code,
        name=name,
        kinds=kinds if kinds is not None else ["purchase", "preauth", "completion"],
        review_threshold=review_threshold,
        decline_threshold=decline_threshold,
        decline_code=decline_code,
        active=active,
    )
    if session.execute(select(Scenario.id).where(Scenario.code == f.code)).first():
        raise Conflict("A scenario with code {code} exists already.", field="code", code=f.code)
    scenario = Scenario(
        code=f.code,
        name=f.name,
        kinds=",".join(f.kinds),
        review_threshold=f.review_threshold,
        decline_threshold=f.decline_threshold,
        decline_code=f.decline_code,
        active=f.active,
    )
    session.add(scenario)
    session.flush()
    _changed(session)
    record(session, actor, "risk.scenario_created", scenario)
    return scenario


def update_scenario(
    *,
    session: Session,
    actor: User,
    scenario_id: int,
    name: str,
    kinds: list[str] | str | None,
    review_threshold: Any,
    decline_threshold: Any,
    decline_code: str,
    active: bool,
) -> Scenario:
    require(actor, RISK_RULES)
    scenario = get_scenario(session=session, actor=actor, scenario_id=scenario_id)
    f = _scenario_fields(
        code=scenario.code,
        name=name,
        kinds=kinds,
        review_threshold=review_threshold,
        decline_threshold=decline_threshold,
        decline_code=decline_code,
        active=active,
    )
    before = snapshot(scenario)
    scenario.name = f.name
    scenario.kinds = ",".join(f.kinds)
    scenario.review_threshold = f.review_threshold
    scenario.decline_threshold = f.decline_threshold
    scenario.decline_code = f.decline_code
    scenario.active = f.active
    session.flush()
    _changed(session)
    record(session, actor, "risk.scenario_updated", scenario, before=before)
    return scenario


# --- rules -------------------------------------------------------------------------------


def validate_expression(expression: str) -> list[str]:
    """The declared fields the expression uses; :class:`ValidationFailed` with the position
    when it does not parse, names an unknown field or is not a true/false condition."""
    return compile_rule(expression).fields


def list_rules(*, session: Session, actor: User, scenario_id: int | None = None) -> list[Rule]:
    require(actor, RISK_VIEW)
    query = select(Rule).order_by(Rule.scenario_id, Rule.code)
    if scenario_id is not None:
        query = query.where(Rule.scenario_id == scenario_id)
    return list(session.execute(query).scalars())


def get_rule(*, session: Session, actor: User, rule_id: int) -> Rule:
    require(actor, RISK_VIEW)
    rule = session.get(Rule, rule_id) if 0 < rule_id < 2**31 else None
    if rule is None:
        raise NotFound("There is no rule {id}.", id=rule_id)
    return rule


def rule_versions(*, session: Session, actor: User, rule_id: int) -> list[RuleVersion]:
    get_rule(session=session, actor=actor, rule_id=rule_id)
    return list(
        session.execute(
            select(RuleVersion)
            .where(RuleVersion.rule_id == rule_id)
            .order_by(RuleVersion.version.desc())
        ).scalars()
    )


def _rule_fields(
    *, name: str | None, expression: str | None, score: Any, decline_code: str | None
) -> tuple[str, str, int, str]:
    errors = FieldErrors()
    clean_name = errors.check(_text, name, field="name", max_length=128)
    compiled = errors.check(compile_rule, expression or "")
    clean_score = errors.check(_whole, score, field="score", low=-MAX_SCORE, high=MAX_SCORE)
    code = errors.check(_decline_code, decline_code, field="decline_code", blank=True)
    errors.raise_if_any()
    return clean_name, compiled.source, clean_score, code


def _version(session: Session, actor: User, rule: Rule, note: str) -> None:
    session.add(
        RuleVersion(
            rule_id=rule.id,
            version=rule.version,
            expression=rule.expression,
            score=rule.score,
            decline_code=rule.decline_code,
            active=rule.active,
            note=note,
            saved_by_id=actor.id,
            saved_at=utcnow(),
        )
    )


def create_rule(
    *,
    session: Session,
    actor: User,
    scenario_id: int,
    code: str,
    name: str,
    expression: str,
    score: Any = 10,
    decline_code: str = "",
    active: bool = True,
    note: str = "",
) -> Rule:
    require(actor, RISK_RULES)
    errors = FieldErrors()
    clean_code = errors.check(_code, code)
    scenario = session.get(Scenario, scenario_id) if 0 < scenario_id < 2**31 else None
    if scenario is None:
        errors.add(ValidationFailed("Choose a scenario.", field="scenario_id"))
    try:
        fields = _rule_fields(
            name=name, expression=expression, score=score, decline_code=decline_code
        )
    except ValidationFailed as exc:
        if exc.errors:
            for f, message in exc.errors:
                errors.add(ValidationFailed(message, field=f, **exc.params))
        else:
            errors.add(exc)
        fields = None
    errors.raise_if_any()
    assert fields is not None
    if session.execute(select(Rule.id).where(Rule.code == clean_code)).first():
        raise Conflict("A rule with code {code} exists already.", field="code", code=clean_code)
    rule = Rule(
        scenario_id=scenario_id,
        code=clean_code,
        name=fields[0],
        expression=fields[1],
        score=fields[2],
        decline_code=fields[3],
        active=bool(active),
        version=1,
    )
    session.add(rule)
    session.flush()
    _version(session, actor, rule, _text(note, field="note", max_length=500, required=False))
    _changed(session)
    record(session, actor, "risk.rule_created", rule)
    return rule


def update_rule(
    *,
    session: Session,
    actor: User,
    rule_id: int,
    name: str,
    expression: str,
    score: Any,
    decline_code: str = "",
    active: bool = True,
    note: str = "",
) -> Rule:
    """Save a new version of the rule (refused whole when any field is wrong: the running
    version stays)."""
    require(actor, RISK_RULES)
    rule = get_rule(session=session, actor=actor, rule_id=rule_id)
    clean_name, source, clean_score, code = _rule_fields(
        name=name, expression=expression, score=score, decline_code=decline_code
    )
    clean_note = _text(note, field="note", max_length=500, required=False)
    before = snapshot(rule)
    same = (
        rule.name == clean_name
        and rule.expression == source
        and rule.score == clean_score
        and rule.decline_code == code
        and rule.active == bool(active)
    )
    if same:
        return rule
    rule.name = clean_name
    rule.expression = source
    rule.score = clean_score
    rule.decline_code = code
    rule.active = bool(active)
    rule.version += 1
    session.flush()
    _version(session, actor, rule, clean_note)
    _changed(session)
    record(session, actor, "risk.rule_updated", rule, before=before)
    return rule


def reset_rule_errors(*, session: Session, actor: User, rule_id: int) -> Rule:
    """The officer has read the run-time failures: start counting again."""
    require(actor, RISK_RULES)
    rule = get_rule(session=session, actor=actor, rule_id=rule_id)
    before = snapshot(rule)
    rule.error_count = 0
    rule.last_error = ""
    rule.last_error_at = None
    session.flush()
    record(session, actor, "risk.rule_errors_reset", rule, before=before)
    return rule


def field_list() -> list[dict[str, Any]]:
    from cardops.core.i18n import gettext

    out = []
    for spec in FIELDS.values():
        window = spec.name.rsplit("_", 1)[-1] if spec.name.count("_") else ""
        out.append(
            {
                "name": spec.name,
                "type": spec.type,
                "nullable": spec.nullable,
                "help": gettext(spec.help, window=window),
            }
        )
    return out


# --- alerts ------------------------------------------------------------------------------


@dataclass
class AlertFilter:
    state: str = ""
    assignee_id: int | None = None
    overdue: bool = False
    rule: str = ""


def _alerts_query(f: AlertFilter) -> Any:
    query = select(Alert)
    if f.state:
        if f.state not in ALERT_STATES:
            raise ValidationFailed("Choose open, in progress or closed.", field="state")
        query = query.where(Alert.state == f.state)
    if f.assignee_id is not None:
        query = query.where(Alert.assignee_id == f.assignee_id)
    if f.overdue:
        query = query.where(
            Alert.first_looked_at.is_(None),
            Alert.state == AlertState.OPEN.value,
            Alert.due_at < utcnow(),
        )
    return query


def list_alerts(
    *,
    session: Session,
    actor: User,
    filters: AlertFilter | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Alert]:
    """The queue: open alerts first, the oldest due first."""
    require(actor, RISK_VIEW)
    f = filters or AlertFilter()
    query = _alerts_query(f).order_by(
        (Alert.state == AlertState.CLOSED.value), Alert.due_at, Alert.id
    )
    rows = list(
        session.execute(query.limit(max(1, min(limit, 500))).offset(max(0, offset))).scalars()
    )
    if f.rule:
        rows = [a for a in rows if any(r.get("code") == f.rule for r in a.rules or [])]
    return rows


def is_overdue(alert: Alert, now: datetime | None = None) -> bool:
    """The SLA on first look: nobody has taken the alert up by its due time."""
    if alert.first_looked_at is not None:
        return as_utc(alert.first_looked_at) > as_utc(alert.due_at)
    return alert.state == AlertState.OPEN.value and as_utc(now or utcnow()) > as_utc(alert.due_at)


def get_alert(*, session: Session, actor: User, alert_id: int) -> Alert:
    require(actor, RISK_VIEW)
    alert = session.get(Alert, alert_id) if 0 < alert_id < 2**31 else None
    if alert is None:
        raise NotFound("There is no alert {id}.", id=alert_id)
    return alert


def alert_events(*, session: Session, actor: User, alert_id: int) -> list[AlertEvent]:
    get_alert(session=session, actor=actor, alert_id=alert_id)
    return list(
        session.execute(
            select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
        ).scalars()
    )


def alert_transaction(session: Session, alert: Alert) -> Any:
    """The journal row of the alert's request (its final answer), if any."""
    from cardops.gateway.models import Journal

    if not alert.dup_key:
        return None
    return session.execute(
        select(Journal).where(Journal.dup_key == alert.dup_key)
    ).scalar_one_or_none()


def _event(
    session: Session,
    actor: User,
    alert: Alert,
    code: str,
    text: str = "",
    **data: Any,
) -> AlertEvent:
    event = AlertEvent(
        alert_id=alert.id, code=code, text=text, data=data, actor_id=actor.id, at=utcnow()
    )
    session.add(event)
    return event


def _looked(alert: Alert, actor: User) -> None:
    if alert.first_looked_at is None:
        alert.first_looked_at = utcnow()
    if alert.state == AlertState.OPEN.value:
        alert.transition(AlertState.IN_PROGRESS)
    if alert.assignee_id is None:
        alert.assignee_id = actor.id


def _open_alert_for_work(session: Session, actor: User, alert_id: int) -> Alert:
    require(actor, RISK_ALERTS)
    alert = get_alert(session=session, actor=actor, alert_id=alert_id)
    if alert.state == AlertState.CLOSED.value:
        raise Conflict("Alert {id} is closed; reopen it first.", id=alert.id)
    return alert


def take_alert(*, session: Session, actor: User, alert_id: int) -> Alert:
    """The officer takes the alert up (first look; assigned to them)."""
    alert = _open_alert_for_work(session, actor, alert_id)
    before = snapshot(alert)
    alert.assignee_id = actor.id
    _looked(alert, actor)
    _event(session, actor, alert, "taken")
    session.flush()
    record(session, actor, "risk.alert_taken", alert, before=before)
    return alert


def assign_alert(*, session: Session, actor: User, alert_id: int, assignee: str) -> Alert:
    from cardops.auth.service import find_user, has_permission

    alert = _open_alert_for_work(session, actor, alert_id)
    name = (assignee or "").strip()
    user = find_user(session, name) if name else None
    if user is None or not user.is_active:
        raise ValidationFailed("There is no active user {name}.", field="assignee", name=name)
    if not has_permission(user, RISK_ALERTS):
        raise ValidationFailed(
            "{name} may not work risk alerts.", field="assignee", name=user.username
        )
    before = snapshot(alert)
    alert.assignee_id = user.id
    if alert.state == AlertState.OPEN.value:
        alert.transition(AlertState.IN_PROGRESS)
    if alert.first_looked_at is None:
        alert.first_looked_at = utcnow()
    _event(session, actor, alert, "assigned", assignee=user.username)
    session.flush()
    record(session, actor, "risk.alert_assigned", alert, before=before)
    return alert


def add_note(*, session: Session, actor: User, alert_id: int, text: str) -> AlertEvent:
    require(actor, RISK_ALERTS)
    alert = get_alert(session=session, actor=actor, alert_id=alert_id)
    body = (text or "").strip()
    if not body:
        raise ValidationFailed("Write the note.", field="text")
    if len(body) > 4000:
        raise ValidationFailed("At most {n} characters.", field="text", n=4000)
    before = snapshot(alert)
    if alert.state != AlertState.CLOSED.value:
        _looked(alert, actor)
    event = _event(session, actor, alert, "note", body)
    session.flush()
    record(session, actor, "risk.alert_note", alert, before=before, note=body[:200])
    return event


def close_alert(
    *,
    session: Session,
    actor: User,
    alert_id: int,
    outcome: str,
    note: str = "",
    stop_card: bool = False,
    suspend_merchant: bool = False,
) -> Alert:
    """Record the outcome. ``card_stoplisted`` (or fraud confirmed with ``stop_card``) puts
    the card on the gateway's stop list; ``merchant_suspended`` (or ``suspend_merchant``)
    suspends the merchant — in the same transaction."""
    alert = _open_alert_for_work(session, actor, alert_id)
    if outcome not in OUTCOMES:
        raise ValidationFailed(
            "Choose the outcome: fraud confirmed, false positive, merchant warned, merchant "
            "suspended or card stop-listed.",
            field="outcome",
        )
    text = (note or "").strip()
    if len(text) > 4000:
        raise ValidationFailed("At most {n} characters.", field="note", n=4000)
    if outcome in ("fraud_confirmed", "merchant_suspended", "card_stoplisted") and not text:
        raise ValidationFailed("Say what was found.", field="note")
    stop = outcome == "card_stoplisted" or (outcome == "fraud_confirmed" and stop_card)
    suspend = outcome == "merchant_suspended" or (outcome == "fraud_confirmed" and suspend_merchant)
    before = snapshot(alert)
    _looked(alert, actor)
    if stop:
        _stop_card(session, actor, alert, text)
    if suspend:
        _suspend_merchant(session, actor, alert, text)
    alert.transition(AlertState.CLOSED)
    alert.outcome = outcome
    alert.closed_at = utcnow()
    _event(session, actor, alert, "closed", text, outcome=outcome)
    session.flush()
    record(session, actor, "risk.alert_closed", alert, before=before)
    return alert


def _stop_card(session: Session, actor: User, alert: Alert, note: str) -> None:
    """Stop-list the alert's card by its keyed hash (a card already stopped stays as it is)."""
    from cardops.gateway import service as gateway

    if not alert.pan_hash:
        raise ValidationFailed("This alert has no card to stop.", field="outcome")
    gateway.add_stop_by_hash(
        session=session,
        actor=actor,
        pan_hash=alert.pan_hash,
        pan_masked=alert.pan_masked,
        reason="counterfeit",
        note=f"risk alert {alert.id}: {note}",
        alert_id=alert.id,
    )
    _event(session, actor, alert, "card_stoplisted", pan=alert.pan_masked)


def _suspend_merchant(session: Session, actor: User, alert: Alert, note: str) -> None:
    from cardops.merchants.models import Merchant
    from cardops.merchants.service import set_merchant_status

    require(actor, RISK_SUSPEND)
    merchant = session.get(Merchant, alert.merchant_id) if alert.merchant_id else None
    if merchant is None:
        raise ValidationFailed("This alert has no merchant to suspend.", field="outcome")
    # the merchants domain's own suspension (state, history, audit); risk holds its permission
    set_merchant_status(session, actor, merchant, "suspend", f"risk alert {alert.id}: {note}"[:500])
    _event(session, actor, alert, "merchant_suspended", merchant=merchant.name)


def reopen_alert(*, session: Session, actor: User, alert_id: int, note: str) -> Alert:
    require(actor, RISK_ALERTS)
    alert = get_alert(session=session, actor=actor, alert_id=alert_id)
    text = _text(note, field="note", max_length=500)
    before = snapshot(alert)
    alert.transition(AlertState.IN_PROGRESS)
    alert.outcome = ""
    alert.closed_at = None
    _event(session, actor, alert, "reopened", text)
    session.flush()
    record(session, actor, "risk.alert_reopened", alert, before=before)
    return alert


# --- merchant ratings --------------------------------------------------------------------


def rating_limits(*, session: Session, actor: User) -> list[RatingLimit]:
    require(actor, RISK_VIEW)
    found = {r.rating: r for r in session.execute(select(RatingLimit)).scalars()}
    return [found.get(r) or RatingLimit(rating=r) for r in RATINGS]


def set_rating_limit(
    *,
    session: Session,
    actor: User,
    rating: str,
    single_limit: Any,
    daily_limit: Any,
    monthly_limit: Any,
) -> RatingLimit:
    require(actor, RISK_RATINGS)
    if rating not in RATINGS:
        raise ValidationFailed("Choose a rating from A to D.", field="rating")
    errors = FieldErrors()
    single = errors.check(_limit, single_limit, field="single_limit")
    daily = errors.check(_limit, daily_limit, field="daily_limit")
    monthly = errors.check(_limit, monthly_limit, field="monthly_limit")
    errors.raise_if_any()
    if single is not None and daily is not None and single > daily:
        raise ValidationFailed(
            "The single limit cannot be above the daily limit.", field="single_limit"
        )
    if daily is not None and monthly is not None and daily > monthly:
        raise ValidationFailed(
            "The daily limit cannot be above the monthly limit.", field="daily_limit"
        )
    row = session.get(RatingLimit, rating)
    before = snapshot(row) if row is not None else None
    if row is None:
        row = RatingLimit(rating=rating)
        session.add(row)
    row.single_limit, row.daily_limit, row.monthly_limit = single, daily, monthly
    session.flush()
    _changed(session)
    record(session, actor, "risk.rating_limit_set", row, before=before)
    return row


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    last = [
        31,
        29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28,
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][month - 1]
    return date(year, month, min(day.day, last))


def rate_merchant(
    *, session: Session, actor: User, merchant_id: int, rating: str, note: str = ""
) -> MerchantRating:
    """Rate (or review) a merchant: the gateway applies the rating's limits at its next
    configuration check (about a second); the review is kept in the history."""
    from cardops.merchants.models import Merchant

    require(actor, RISK_RATINGS)
    merchant = session.get(Merchant, merchant_id) if 0 < merchant_id < 2**31 else None
    if merchant is None:
        raise NotFound("There is no merchant {id}.", id=merchant_id)
    if rating not in RATINGS:
        raise ValidationFailed("Choose a rating from A to D.", field="rating")
    text = _text(note, field="note", max_length=500, required=False)
    row = session.get(MerchantRating, merchant_id)
    previous = row.rating if row is not None else ""
    if previous and previous != rating and not text:
        raise ValidationFailed("Say why the rating changes.", field="note")
    before = snapshot(row) if row is not None else None
    if row is None:
        row = MerchantRating(merchant_id=merchant_id)
        session.add(row)
    now = utcnow()
    row.rating = rating
    row.reviewed_at = now
    row.reviewed_by_id = actor.id
    row.next_review_on = _add_months(local(now).date(), REVIEW_MONTHS[rating])
    row.note = text
    session.add(
        RatingReview(
            merchant_id=merchant_id,
            rating_from=previous,
            rating_to=rating,
            note=text,
            actor_id=actor.id,
            at=now,
        )
    )
    session.flush()
    _changed(session)
    record(session, actor, "risk.merchant_rated", row, before=before, merchant=merchant.name)
    return row


@dataclass
class RatedMerchant:
    merchant_id: int
    name: str
    mid: str
    state: str
    rating: str
    reviewed_at: datetime | None
    next_review_on: date | None
    due: bool


def merchant_ratings(
    *, session: Session, actor: User, due_only: bool = False, rating: str = ""
) -> list[RatedMerchant]:
    from cardops.merchants.models import Merchant

    require(actor, RISK_VIEW)
    today = local(utcnow()).date()
    rows = session.execute(
        select(Merchant, MerchantRating)
        .outerjoin(MerchantRating, MerchantRating.merchant_id == Merchant.id)
        .where(Merchant.state.in_(("approved", "suspended")))
        .order_by(Merchant.name)
    ).all()
    out = []
    for merchant, rated in rows:
        due = rated is None or rated.next_review_on <= today
        if due_only and not due:
            continue
        if rating and (rated.rating if rated else "") != rating:
            continue
        out.append(
            RatedMerchant(
                merchant.id,
                merchant.name,
                merchant.mid or "",
                merchant.state,
                rated.rating if rated else "",
                rated.reviewed_at if rated else None,
                rated.next_review_on if rated else None,
                due,
            )
        )
    return out


def rating_history(*, session: Session, actor: User, merchant_id: int) -> list[RatingReview]:
    require(actor, RISK_VIEW)
    return list(
        session.execute(
            select(RatingReview)
            .where(RatingReview.merchant_id == merchant_id)
            .order_by(RatingReview.id.desc())
        ).scalars()
    )


# --- backtest ----------------------------------------------------------------------------


@dataclass
class RuleResult:
    code: str
    name: str
    active: bool
    fired: int = 0
    errors: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


@dataclass
class BacktestResult:
    scenario: str
    start: date
    end: date
    requests: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    rules: list[RuleResult] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False


def _day_range(start: date, end: date) -> tuple[datetime, datetime]:
    from zoneinfo import ZoneInfo

    from cardops.core.config import get_settings

    tz = ZoneInfo(get_settings().timezone)
    return (
        datetime.combine(start, time.min, tz).astimezone(as_utc(utcnow()).tzinfo),
        datetime.combine(end + timedelta(days=1), time.min, tz).astimezone(as_utc(utcnow()).tzinfo),
    )


def backtest(
    *,
    session: Session,
    actor: User,
    scenario_id: int,
    start: date,
    end: date,
    include_inactive: bool = True,
    max_rows: int = 200_000,
) -> BacktestResult:
    """Replay the journal from ``start`` to ``end`` (local days) through a scenario's rules
    (drafts included unless told otherwise), with the aggregates rebuilt as they were at
    each request (the preceding 24 hours warm them up). Nothing is changed."""
    from cardops.gateway.models import Journal
    from cardops.risk.aggregates import Event, MemoryStore, Probe
    from cardops.risk.runtime import (
        COUNTED_KINDS,
        DEBIT_KINDS,
        PIN_RCS,
        load_scenarios,
        run_scenario,
    )

    require(actor, RISK_VIEW)
    scenario = get_scenario(session=session, actor=actor, scenario_id=scenario_id)
    if end < start:
        raise ValidationFailed("The end date is before the start date.", field="end")
    if (end - start).days > 92:
        raise ValidationFailed("Backtest at most {n} days at a time.", field="end", n=92)
    loaded = load_scenarios(session, include_inactive=include_inactive, scenario_id=scenario.id)[0]
    rules = {
        r.id: r
        for r in session.execute(select(Rule).where(Rule.scenario_id == scenario.id)).scalars()
    }
    loaded.rules = [r for r in loaded.rules if include_inactive or rules[r.id].active]
    result = BacktestResult(scenario=scenario.code, start=start, end=end)
    by_code = {
        r.code: RuleResult(r.code, rules[r.id].name, rules[r.id].active) for r in loaded.rules
    }
    result.rules = list(by_code.values())
    begin, finish = _day_range(start, end)
    ratings = {
        row.merchant_id: row.rating for row in session.execute(select(MerchantRating)).scalars()
    }
    store = MemoryStore()
    errors: Tally[str] = Tally()

    def failed(rule: Any, message: str) -> None:
        errors[rule.code] += 1

    fired_keys: dict[str, list[str]] = {}
    from zoneinfo import ZoneInfo

    from cardops.core.config import get_settings

    tz = ZoneInfo(get_settings().timezone)
    rows = session.execute(
        select(
            Journal.created_at,
            Journal.kind,
            Journal.pan_hash,
            Journal.pan_masked,
            Journal.tid,
            Journal.mid,
            Journal.merchant_id,
            Journal.amount,
            Journal.response_code,
            Journal.local_date,
            Journal.card_type,
            Journal.dup_key,
            Journal.route,
        )
        .where(
            Journal.created_at >= begin - timedelta(hours=24),
            Journal.created_at < finish,
            Journal.kind.in_(COUNTED_KINDS),
        )
        .order_by(Journal.created_at, Journal.id)
    )
    for row in rows:
        at = as_utc(row.created_at)
        ts = at.timestamp()
        if at >= begin and row.kind in loaded.kinds:
            if result.requests >= max_rows:
                result.truncated = True
                break
            result.requests += 1
            features = store.features(
                Probe(
                    ts, row.pan_hash, row.tid, row.merchant_id, row.local_date, row.local_date[:6]
                )
            )
            usual = features["merchant__usual_amount"]
            when = at.astimezone(tz)
            features.update(
                txn__amount=row.amount,
                txn__kind=row.kind,
                txn__card_type=row.card_type or "",
                txn__onus=row.route == "on-us",
                txn__hour=when.hour,
                txn__weekday=when.isoweekday(),
                txn__amount_ratio=row.amount / usual if usual else None,
                terminal__tid=row.tid,
                merchant__id=row.merchant_id or 0,
                merchant__mid=row.mid or "",
                merchant__rating=ratings.get(row.merchant_id or 0, ""),
            )
            verdict = run_scenario(loaded, cel.Context(features), failed)
            result.decisions[verdict.decision] = result.decisions.get(verdict.decision, 0) + 1
            for rule in verdict.fired:
                by_code[rule.code].fired += 1
            if verdict.fired and row.dup_key:
                fired_keys[row.dup_key] = [r.code for r in verdict.fired]
            if verdict.decision != "approve" and len(result.samples) < 100:
                result.samples.append(
                    {
                        "at": at,
                        "tid": row.tid,
                        "mid": row.mid,
                        "card": row.pan_masked,
                        "amount": row.amount,
                        "kind": row.kind,
                        "rc": row.response_code,
                        "decision": verdict.decision,
                        "score": verdict.total,
                        "rules": [r.code for r in verdict.fired],
                    }
                )
        approved = row.response_code == "00"
        store.record(
            [
                Event(
                    ts=ts,
                    card=row.pan_hash,
                    tid=row.tid or None,
                    merchant=row.merchant_id,
                    approved_amount=row.amount if approved and row.kind in DEBIT_KINDS else 0,
                    declined=not approved,
                    pin_failure=row.response_code in PIN_RCS,
                    stoplisted=row.response_code in ("41", "43"),
                    day=row.local_date,
                    month=row.local_date[:6],
                )
            ]
        )
    for code, n in errors.items():
        if code in by_code:
            by_code[code].errors = n
    # the known outcomes of alerts raised on the same requests
    keys = list(fired_keys)
    for start_at in range(0, len(keys), 500):
        chunk = keys[start_at : start_at + 500]
        for dup_key, outcome in session.execute(
            select(Alert.dup_key, Alert.outcome).where(
                Alert.dup_key.in_(chunk), Alert.outcome != ""
            )
        ):
            for code in fired_keys.get(dup_key or "", []):
                outcomes = by_code[code].outcomes
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return result


# --- reports -----------------------------------------------------------------------------


@dataclass
class RiskReport:
    start: date
    end: date
    alerts_by_rule: list[tuple[str, dict[str, int], int]]  # rule, outcome → n, total
    declines_by_reason: list[tuple[str, int]]
    merchants_by_rating: list[tuple[str, int]]
    days: list[str]
    alerts_per_day: list[int]
    declines_per_day: list[int]
    open_alerts: int
    overdue_alerts: int


def report(*, session: Session, actor: User, start: date, end: date) -> RiskReport:
    from cardops.gateway.models import Journal
    from cardops.merchants.models import Merchant

    require(actor, RISK_VIEW)
    if end < start:
        raise ValidationFailed("The end date is before the start date.", field="end")
    if (end - start).days > 366:
        raise ValidationFailed("At most {n} days at a time.", field="end", n=366)
    begin, finish = _day_range(start, end)
    days = [(start + timedelta(days=i)).strftime("%Y%m%d") for i in range((end - start).days + 1)]
    per_rule: dict[str, Tally[str]] = {}
    alerts_day: Tally[str] = Tally()
    for rules, outcome, created in session.execute(
        select(Alert.rules, Alert.outcome, Alert.created_at).where(
            Alert.created_at >= begin, Alert.created_at < finish
        )
    ):
        alerts_day[local(created).strftime("%Y%m%d")] += 1
        for item in rules or []:
            per_rule.setdefault(str(item.get("code")), Tally())[outcome or "open"] += 1
    alerts_by_rule = sorted(
        ((code, dict(t), sum(t.values())) for code, t in per_rule.items()),
        key=lambda x: -x[2],
    )
    first, last = days[0], days[-1]
    declines = session.execute(
        select(Journal.response_code, func.count())
        .where(
            Journal.local_date >= first,
            Journal.local_date <= last,
            Journal.response_code != "00",
            Journal.kind.in_(tuple(SCORED_KINDS)),
        )
        .group_by(Journal.response_code)
        .order_by(func.count().desc())
    ).all()
    declines_day = dict(
        session.execute(
            select(Journal.local_date, func.count())
            .where(
                Journal.local_date >= first,
                Journal.local_date <= last,
                Journal.response_code != "00",
                Journal.kind.in_(tuple(SCORED_KINDS)),
            )
            .group_by(Journal.local_date)
        ).all()
    )
    rated = dict(
        session.execute(
            select(MerchantRating.rating, func.count()).group_by(MerchantRating.rating)
        ).all()
    )
    unrated = session.execute(
        select(func.count(Merchant.id))
        .outerjoin(MerchantRating, MerchantRating.merchant_id == Merchant.id)
        .where(Merchant.state == "approved", MerchantRating.merchant_id.is_(None))
    ).scalar_one()
    open_count = session.execute(
        select(func.count(Alert.id)).where(Alert.state != AlertState.CLOSED.value)
    ).scalar_one()
    overdue = session.execute(
        select(func.count(Alert.id)).where(
            Alert.state == AlertState.OPEN.value,
            Alert.first_looked_at.is_(None),
            Alert.due_at < utcnow(),
        )
    ).scalar_one()
    return RiskReport(
        start=start,
        end=end,
        alerts_by_rule=alerts_by_rule,
        declines_by_reason=[(rc or "", int(n)) for rc, n in declines],
        merchants_by_rating=[(r, int(rated.get(r, 0))) for r in RATINGS] + [("", int(unrated))],
        days=days,
        alerts_per_day=[alerts_day.get(d, 0) for d in days],
        declines_per_day=[int(declines_day.get(d, 0)) for d in days],
        open_alerts=int(open_count),
        overdue_alerts=int(overdue),
    )
