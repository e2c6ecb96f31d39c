"""Reading the settled figures: day summary, payout file, merchant statements (Excel, PDF),
provider monthly statements (scoped to a provider's subtree), volume targets, finance data."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.audit.service import record
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.channel.models import Provider
from cardops.channel.service import subtree_ids, visible_provider_ids
from cardops.core.errors import NotFound, PermissionDenied, ValidationFailed
from cardops.core.money import format_minor
from cardops.ledger import service as ledger
from cardops.ledger.service import NewPosting
from cardops.merchants.models import Merchant
from cardops.settlement import service
from cardops.settlement.models import (
    Payout,
    Reward,
    RewardKind,
    RewardRule,
    SettlementFact,
    SettlementWindow,
    ShareLine,
    WindowState,
)
from cardops.settlement.permissions import (
    SETTLEMENT_DATA,
    SETTLEMENT_RATES,
    SETTLEMENT_RUN,
    SETTLEMENT_STATEMENTS,
    SETTLEMENT_VIEW,
)

PAYOUT_HEADER = (
    "payout_date",
    "business_date",
    "mid",
    "merchant_name",
    "bank_name",
    "account_no",
    "account_name",
    "amount",
    "currency",
    "reference",
)


def get_window_or_404(session: Session, day: date) -> SettlementWindow:
    window = service.get_window(session, day)
    if window is None:
        raise NotFound("There is no settlement window for {day}.", day=day.isoformat())
    return window


@dataclass
class MerchantDay:
    merchant: Merchant
    count: int = 0
    cancels: int = 0
    gross: int = 0
    fee: int = 0
    net: int = 0
    payout: int = 0
    carried: int = 0


@dataclass
class DaySummary:
    window: SettlementWindow
    merchants: list[MerchantDay] = field(default_factory=list)
    shares: list[tuple[Provider, str, int, int, int]] = field(default_factory=list)


def day_summary(*, session: Session, actor: User, day: date) -> DaySummary:
    require(actor, SETTLEMENT_VIEW)
    window = get_window_or_404(session, day)
    summary = DaySummary(window=window)
    rows: dict[int, MerchantDay] = {}
    for fact, merchant in session.execute(
        select(SettlementFact, Merchant)
        .join(Merchant, Merchant.id == SettlementFact.merchant_id)
        .where(SettlementFact.window_id == window.id)
    ):
        line = rows.setdefault(merchant.id, MerchantDay(merchant=merchant))
        line.count += fact.count
        line.cancels += fact.cancels
        line.gross += fact.gross
        line.fee += fact.fee
        line.net += fact.gross - fact.fee
    for payout in session.execute(select(Payout).where(Payout.window_id == window.id)).scalars():
        if payout.merchant_id in rows:
            rows[payout.merchant_id].payout = payout.amount
            rows[payout.merchant_id].carried = payout.carried_out
    summary.merchants = sorted(rows.values(), key=lambda r: r.merchant.id)
    for share, provider in session.execute(
        select(ShareLine, Provider)
        .join(Provider, Provider.id == ShareLine.provider_id)
        .where(ShareLine.window_id == window.id)
        .order_by(Provider.code, ShareLine.card_type)
    ):
        summary.shares.append((provider, share.card_type, share.count, share.volume, share.share))
    return summary


def payout_csv(*, session: Session, actor: User, day: date) -> bytes:
    """The bank's payout file for a settled day (UTF-8 CSV, see the user guide for the layout):
    a header line, one line per merchant with a positive amount, and a trailer
    ``TRAILER,<lines>,<total>``. Amounts are yuan with two decimals."""
    require(actor, SETTLEMENT_VIEW)
    window = get_window_or_404(session, day)
    if window.state != WindowState.SETTLED.value:
        raise ValidationFailed(
            "{day} is not settled yet; there is no payout file.",
            field="business_date",
            day=day.isoformat(),
        )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(PAYOUT_HEADER)
    count = total = 0
    for payout, merchant in session.execute(
        select(Payout, Merchant)
        .join(Merchant, Merchant.id == Payout.merchant_id)
        .where(Payout.window_id == window.id, Payout.amount > 0)
        .order_by(Merchant.id)
    ):
        writer.writerow(
            (
                payout.payout_date.isoformat(),
                day.isoformat(),
                merchant.mid or "",
                merchant.name,
                merchant.bank_name,
                merchant.bank_account,
                merchant.bank_account_name,
                plain_yuan(payout.amount),
                "CNY",
                f"STL{day:%Y%m%d}{merchant.id:08d}",
            )
        )
        count += 1
        total += payout.amount
    writer.writerow(("TRAILER", count, plain_yuan(total)))
    return out.getvalue().encode("utf-8")


@dataclass
class StatementLine:
    day: date
    card_type: str
    count: int
    cancels: int
    gross: int
    fee: int

    @property
    def net(self) -> int:
        return self.gross - self.fee


@dataclass
class MerchantStatement:
    merchant: Merchant
    date_from: date
    date_to: date
    lines: list[StatementLine]

    @property
    def totals(self) -> StatementLine:
        return StatementLine(
            day=self.date_to,
            card_type="",
            count=sum(x.count for x in self.lines),
            cancels=sum(x.cancels for x in self.lines),
            gross=sum(x.gross for x in self.lines),
            fee=sum(x.fee for x in self.lines),
        )


def merchant_statement(
    *, session: Session, actor: User, merchant_id: int, date_from: date, date_to: date
) -> MerchantStatement:
    require(actor, SETTLEMENT_VIEW)
    merchant = service._merchant(session, merchant_id)
    if date_to < date_from or (date_to - date_from).days > 366:
        raise ValidationFailed(
            "Choose a period of at most a year, ending after it starts.", field="date_to"
        )
    rows = session.execute(
        select(
            SettlementWindow.business_date,
            SettlementFact.card_type,
            func.sum(SettlementFact.count),
            func.sum(SettlementFact.cancels),
            func.sum(SettlementFact.gross),
            func.sum(SettlementFact.fee),
        )
        .join(SettlementWindow, SettlementWindow.id == SettlementFact.window_id)
        .where(
            SettlementFact.merchant_id == merchant.id,
            SettlementWindow.business_date >= date_from,
            SettlementWindow.business_date <= date_to,
        )
        .group_by(SettlementWindow.business_date, SettlementFact.card_type)
        .order_by(SettlementWindow.business_date, SettlementFact.card_type)
    )
    lines = [StatementLine(d, c, int(n), int(x), int(g), int(f)) for d, c, n, x, g, f in rows]
    return MerchantStatement(merchant=merchant, date_from=date_from, date_to=date_to, lines=lines)


def _yuan(minor: int) -> Decimal:
    """Fen as an exact yuan number for Excel cells."""
    return Decimal(minor).scaleb(-2)


def plain_yuan(minor: int) -> str:
    """1234567 → '12345.67' (no thousands separators: for files other programs read)."""
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    return f"{sign}{units}.{cents:02d}"


def merchant_statement_xlsx(statement: MerchantStatement) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "statement"
    ws.append(["商户对账单 Merchant statement", statement.merchant.name, statement.merchant.mid])
    ws.append(["期间 Period", statement.date_from.isoformat(), statement.date_to.isoformat()])
    ws.append([])
    ws.append(
        [
            "日期 Date",
            "卡类型 Card",
            "笔数 Count",
            "撤销 Cancels",
            "交易额 Gross",
            "手续费 Fee",
            "应结 Net",
        ]
    )
    for x in [*statement.lines, statement.totals]:
        ws.append(
            [
                x.day.isoformat() if x.card_type else "合计 Total",
                x.card_type,
                x.count,
                x.cancels,
                _yuan(x.gross),
                _yuan(x.fee),
                _yuan(x.net),
            ]
        )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def day_summary_xlsx(summary: DaySummary) -> bytes:
    """The day summary as a workbook: the day's totals, one line per merchant (with the
    payout and what is carried), one line per provider and card type (profit shares)."""
    w = summary.window
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "summary"
    ws.append(["结算日汇总 Day summary", w.business_date.isoformat(), w.state])
    ws.append(["截止 Cut-off", w.cutoff])
    ws.append([])
    for label, value in (
        ("笔数 Count", w.count),
        ("交易额 Gross", _yuan(w.gross)),
        ("手续费 Merchant fees", _yuan(w.fee)),
        ("应结 Net to merchants", _yuan(w.net)),
        ("银行手续费 Bank fees", _yuan(w.bank_fee)),
        ("分润 Profit shares", _yuan(w.shares)),
        ("总部留存 HQ margin", _yuan(w.hq_margin)),
        ("调整 Adjustments", _yuan(w.adjustments)),
    ):
        ws.append([label, value])
    merchants = wb.create_sheet("merchants")
    merchants.append(
        [
            "商户号 MID",
            "商户 Merchant",
            "笔数 Count",
            "撤销 Cancels",
            "交易额 Gross",
            "手续费 Fee",
            "应结 Net",
            "付款 Payout",
            "结转 Carried",
        ]
    )
    for r in summary.merchants:
        merchants.append(
            [
                r.merchant.mid or "",
                r.merchant.name,
                r.count,
                r.cancels,
                _yuan(r.gross),
                _yuan(r.fee),
                _yuan(r.net),
                _yuan(r.payout),
                _yuan(r.carried),
            ]
        )
    shares = wb.create_sheet("shares")
    shares.append(
        ["服务商 Provider", "名称 Name", "卡类型 Card", "笔数 Count", "交易额 Volume", "分润 Share"]
    )
    for provider, card_type, count, volume, share in summary.shares:
        shares.append([provider.code, provider.name, card_type, count, _yuan(volume), _yuan(share)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def merchant_statement_pdf(statement: MerchantStatement) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    from cardops.ledger.receipts_pdf import pdf_font

    font = pdf_font().name
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4)
    _width, height = A4
    y = height - 50

    def line(text: str, size: int = 10) -> None:
        nonlocal y
        if y < 50:
            pdf.showPage()
            y = height - 50
        pdf.setFont(font, size)
        pdf.drawString(40, y, text)
        y -= size + 6

    m = statement.merchant
    line(f"商户对账单 Merchant statement  {m.name}  {m.mid or ''}", 13)
    line(f"期间 Period {statement.date_from.isoformat()} – {statement.date_to.isoformat()}")
    line("日期 Date     卡 Card   笔数 Count  撤销   交易额 Gross    手续费 Fee    应结 Net")
    for x in [*statement.lines, statement.totals]:
        label = x.day.isoformat() if x.card_type else "合计 Total"
        line(
            f"{label:<12} {x.card_type:<7} {x.count:>8} {x.cancels:>6} "
            f"{format_minor(x.gross):>14} {format_minor(x.fee):>12} {format_minor(x.net):>12}"
        )
    line("费率按笔计算，四舍五入到分。Fees per transaction, rounded half up to the fen.", 8)
    pdf.save()
    return out.getvalue()


# --- provider statements -----------------------------------------------------------------------


def _check_provider_scope(session: Session, actor: User, provider_id: int) -> Provider:
    require(actor, SETTLEMENT_STATEMENTS)
    provider = session.get(Provider, provider_id) if 0 < provider_id < 2**31 else None
    if provider is None:
        raise NotFound("There is no provider {id}.", id=provider_id, field="provider_id")
    visible = visible_provider_ids(session, actor)
    if visible is not None and provider.id not in visible:
        raise PermissionDenied("You can see the statements of your own providers only.")
    return provider


def statement_providers(session: Session, actor: User) -> list[Provider]:
    require(actor, SETTLEMENT_STATEMENTS)
    visible = visible_provider_ids(session, actor)
    stmt = select(Provider).where(Provider.level != "hq").order_by(Provider.code)
    if visible is not None:
        stmt = stmt.where(Provider.id.in_(visible))
    return list(session.execute(stmt).scalars())


@dataclass
class ProviderStatement:
    provider: Provider
    month: str
    lines: list[tuple[date, str, int, int, int]]  # day, card type, count, volume, share
    rewards: list[Reward]

    @property
    def volume(self) -> int:
        return sum(x[3] for x in self.lines)

    @property
    def share(self) -> int:
        return sum(x[4] for x in self.lines)

    @property
    def reward_total(self) -> int:
        return sum(r.amount for r in self.rewards)


def provider_statement(
    *, session: Session, actor: User, provider_id: int, month: str
) -> ProviderStatement:
    """A provider's profit shares of a month by day and card type, with its rewards. Volume is
    that of every terminal in the provider's subtree."""
    provider = _check_provider_scope(session, actor, provider_id)
    first, last = service.parse_month(month)
    rows = session.execute(
        select(
            SettlementWindow.business_date,
            ShareLine.card_type,
            ShareLine.count,
            ShareLine.volume,
            ShareLine.share,
        )
        .join(SettlementWindow, SettlementWindow.id == ShareLine.window_id)
        .where(
            ShareLine.provider_id == provider.id,
            SettlementWindow.business_date >= first,
            SettlementWindow.business_date <= last,
        )
        .order_by(SettlementWindow.business_date, ShareLine.card_type)
    )
    rewards = list(
        session.execute(
            select(Reward)
            .where(Reward.provider_id == provider.id, Reward.month == month.strip())
            .order_by(Reward.id)
        ).scalars()
    )
    return ProviderStatement(
        provider=provider,
        month=month.strip(),
        lines=[(d, c, int(n), int(v), int(s)) for d, c, n, v, s in rows],
        rewards=rewards,
    )


def provider_statement_xlsx(statement: ProviderStatement) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "statement"
    p = statement.provider
    ws.append(["分润对账单 Profit-share statement", p.code, p.name, statement.month])
    ws.append([])
    ws.append(["日期 Date", "卡类型 Card", "笔数 Count", "交易额 Volume", "分润 Share"])
    for d, c, n, v, s in statement.lines:
        ws.append([d.isoformat(), c, n, _yuan(v), _yuan(s)])
    ws.append(["合计 Total", "", "", _yuan(statement.volume), _yuan(statement.share)])
    ws.append([])
    ws.append(["奖励 Rewards", "", "", "", ""])
    for r in statement.rewards:
        ws.append([r.kind, r.reference, "", "", _yuan(r.amount)])
    ws.append(["奖励合计 Rewards total", "", "", "", _yuan(statement.reward_total)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- reward rules and volume targets --------------------------------------------------------------


def create_rule(
    *,
    session: Session,
    actor: User,
    name: str,
    kind: str,
    amount: int,
    level: str | None = None,
    provider_id: int | None = None,
    threshold: int = 0,
) -> RewardRule:
    require(actor, SETTLEMENT_RATES)
    from cardops.core.errors import FieldErrors

    errors = FieldErrors()
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 100:
        errors.add(ValidationFailed("Enter a name of at most 100 characters.", field="name"))
    if kind not in {k.value for k in RewardKind}:
        errors.add(ValidationFailed("Choose activation or volume.", field="kind"))
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= 10**9:
        errors.add(ValidationFailed("Enter an amount of at most 10 000 000 yuan.", field="amount"))
    if level not in (None, "city", "county"):
        errors.add(ValidationFailed("Choose city, county or any level.", field="level"))
    if provider_id is not None and session.get(Provider, provider_id) is None:
        errors.add(ValidationFailed("Choose a provider from the list.", field="provider_id"))
    if not isinstance(threshold, int) or not 0 <= threshold <= 10**13:
        errors.add(ValidationFailed("Enter a volume target in yuan.", field="threshold"))
    if kind == RewardKind.VOLUME.value and (not isinstance(threshold, int) or threshold <= 0):
        errors.add(ValidationFailed("A volume target must be above zero.", field="threshold"))
    if kind == RewardKind.VOLUME.value and amount == 0:
        errors.add(ValidationFailed("A volume reward must be above zero.", field="amount"))
    errors.raise_if_any()
    rule = RewardRule(
        name=name,
        kind=kind,
        amount=amount,
        level=level,
        provider_id=provider_id,
        threshold=threshold,
        active=True,
    )
    session.add(rule)
    session.flush()
    record(session, actor, "settlement.rule_created", rule)
    return rule


def set_rule_active(*, session: Session, actor: User, rule_id: int, active: bool) -> RewardRule:
    require(actor, SETTLEMENT_RATES)
    rule = session.get(RewardRule, rule_id) if 0 < rule_id < 2**31 else None
    if rule is None:
        raise NotFound("There is no reward rule {id}.", id=rule_id)
    before = {"active": rule.active}
    rule.active = active
    session.flush()
    record(session, actor, "settlement.rule_updated", rule, before=before)
    return rule


def list_rules(session: Session) -> list[RewardRule]:
    return list(session.execute(select(RewardRule).order_by(RewardRule.id)).scalars())


def volume_rewards(*, session: Session, actor: User, month: str) -> list[Reward]:
    """Grant the month's volume-target rewards (达标奖励) once: a provider whose subtree volume
    in the month's settled days reaches a rule's target earns its reward."""
    require(actor, SETTLEMENT_RUN)
    first, last = service.parse_month(month)
    rules = [r for r in list_rules(session) if r.active and r.kind == RewardKind.VOLUME.value]
    if not rules:
        return []
    volumes: dict[int, int] = defaultdict(int)
    for pid, volume in session.execute(
        select(ShareLine.provider_id, func.sum(ShareLine.volume))
        .join(SettlementWindow, SettlementWindow.id == ShareLine.window_id)
        .where(SettlementWindow.business_date >= first, SettlementWindow.business_date <= last)
        .group_by(ShareLine.provider_id)
    ):
        volumes[pid] = int(volume or 0)
    providers = {p.id: p for p in session.execute(select(Provider)).scalars()}
    granted: list[Reward] = []
    reference = f"month:{month.strip()}"
    for rule in rules:
        for pid, volume in sorted(volumes.items()):
            provider = providers[pid]
            if rule.provider_id is not None and rule.provider_id != pid:
                continue
            if rule.level is not None and provider.level != rule.level:
                continue
            if volume < rule.threshold:
                continue
            done = session.execute(
                select(Reward.id).where(
                    Reward.rule_id == rule.id,
                    Reward.provider_id == pid,
                    Reward.reference == reference,
                )
            ).first()
            if done:
                continue
            reward = Reward(
                rule_id=rule.id,
                provider_id=pid,
                kind=rule.kind,
                reference=reference,
                month=month.strip(),
                amount=rule.amount,
            )
            session.add(reward)
            granted.append(reward)
    if not granted:
        return []
    session.flush()
    service._ensure_rewards_account(session, actor)
    service._ensure_accounts(
        session,
        actor,
        {
            service.provider_account(r.provider_id): (
                f"Profit shares payable {providers[r.provider_id].code}",
                f"应付分润 {providers[r.provider_id].code}",
                "liability",
                "2204",
                "provider",
                r.provider_id,
            )
            for r in granted
        },
    )
    outcomes = ledger.post_many(
        session=session,
        actor=actor,
        postings=[
            NewPosting(
                lines=[
                    (service.REWARDS_ACCOUNT, r.amount),
                    (service.provider_account(r.provider_id), -r.amount),
                ],
                description=f"Volume target reward {month}: {providers[r.provider_id].code}",
                reference=f"reward:{month}",
                idempotency_key=f"reward:{r.rule_id}:{r.provider_id}:{reference}",
            )
            for r in granted
        ],
        permission=SETTLEMENT_RUN,
        business_date=last,
    )
    for reward, outcome in zip(granted, outcomes, strict=True):
        reward.posting_number = outcome.number
        record(session, actor, "settlement.reward_earned", reward)
    session.flush()
    return granted


# --- finance data --------------------------------------------------------------------------------

DIMENSIONS = ("provider", "level", "merchant", "card_type")
PERIODS = ("day", "month")


@dataclass
class DataRow:
    period: str
    key: str
    label: str
    count: int
    volume: int
    fee: int


def finance_data(
    *,
    session: Session,
    actor: User,
    date_from: date,
    date_to: date,
    by: str = "provider",
    period: str = "day",
) -> list[DataRow]:
    """Transaction counts and volume (signed: refunds and cancellations subtract) per provider
    (terminals it owns directly), channel level, merchant or card type, per day or month, from
    the settled figures — the same rows the statements are made of."""
    require(actor, SETTLEMENT_DATA)
    if by not in DIMENSIONS:
        raise ValidationFailed("Choose what to group by.", field="by")
    if period not in PERIODS:
        raise ValidationFailed("Choose day or month.", field="period")
    if date_to < date_from or (date_to - date_from).days > 731:
        raise ValidationFailed(
            "Choose a period of at most two years, ending after it starts.", field="date_to"
        )
    stmt = (
        select(
            SettlementWindow.business_date,
            SettlementFact.merchant_id,
            SettlementFact.provider_id,
            SettlementFact.card_type,
            SettlementFact.count,
            SettlementFact.gross,
            SettlementFact.fee,
        )
        .join(SettlementWindow, SettlementWindow.id == SettlementFact.window_id)
        .where(
            SettlementWindow.business_date >= date_from,
            SettlementWindow.business_date <= date_to,
        )
    )
    visible = visible_provider_ids(session, actor)
    if visible is not None:
        stmt = stmt.where(SettlementFact.provider_id.in_(visible))
    providers = {p.id: p for p in session.execute(select(Provider)).scalars()}
    merchants = dict(session.execute(select(Merchant.id, Merchant.name)).all())
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    labels: dict[str, str] = {}
    for day, merchant_id, provider_id, card_type, count, gross, fee in session.execute(stmt):
        when = day.isoformat() if period == "day" else day.strftime("%Y-%m")
        if by == "provider":
            key = str(provider_id or 0)
            p = providers.get(provider_id) if provider_id else None
            labels[key] = f"{p.code} {p.name}" if p else "HQ (no provider)"
        elif by == "level":
            p = providers.get(provider_id) if provider_id else None
            key = p.level if p else "hq"
            labels[key] = key
        elif by == "merchant":
            key = str(merchant_id)
            labels[key] = merchants.get(merchant_id, key)
        else:
            key = card_type
            labels[key] = card_type
        acc = totals[(when, key)]
        acc[0] += count
        acc[1] += gross
        acc[2] += fee
    return [
        DataRow(when, key, labels[key], v[0], v[1], v[2])
        for (when, key), v in sorted(totals.items())
    ]


def finance_data_xlsx(rows: list[DataRow], by: str, period: str) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = f"{by}-{period}"
    ws.append(["期间 Period", "维度 Key", "名称 Name", "笔数 Count", "交易额 Volume", "手续费 Fee"])
    for r in rows:
        ws.append([r.period, r.key, r.label, r.count, _yuan(r.volume), _yuan(r.fee)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def subtree_volume(session: Session, provider_id: int, first: date, last: date) -> int:
    """Volume of the terminals of a provider's subtree from the figures by lowest provider."""
    ids = subtree_ids(session, provider_id)
    total = session.execute(
        select(func.coalesce(func.sum(SettlementFact.gross), 0))
        .join(SettlementWindow, SettlementWindow.id == SettlementFact.window_id)
        .where(
            SettlementFact.provider_id.in_(ids),
            SettlementWindow.business_date >= first,
            SettlementWindow.business_date <= last,
        )
    ).scalar_one()
    return int(total)


def window_row(window: SettlementWindow) -> dict[str, Any]:
    return {
        "business_date": window.business_date.isoformat(),
        "state": window.state,
        "cutoff": window.cutoff,
        "first_id": window.first_id,
        "last_id": window.last_id,
        "count": window.count,
        "gross": window.gross,
        "fee": window.fee,
        "net": window.net,
        "bank_fee": window.bank_fee,
        "shares": window.shares,
        "hq_margin": window.hq_margin,
        "adjustments": window.adjustments,
    }
