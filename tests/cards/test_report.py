"""The quarterly card report, its Excel file and chart; the issue registers."""

from __future__ import annotations

import io
from datetime import timedelta

from openpyxl import load_workbook

from cardops.access import service as access
from cardops.access.models import AccessEvent
from cardops.cards import report, service
from cardops.core.clock import utcnow
from tests.cards.conftest import Desk


def _scene(desk: Desk) -> dict[str, str]:
    owner = desk.person("老业主", owner_of="1-101")
    own = desk.issue("owner", owner, "1-101")
    access.set_unit_owner(
        session=desk.db,
        actor=desk.admin,
        unit_id=desk.unit("1-101").id,
        owner_person_id=desk.person("新业主").id,
    )  # ownership changed but the old owner's card was not cancelled
    tenant = desk.issue("tenant", desk.person("租户", docs=("id_front", "lease_contract")), "1-102")
    tenant.valid_until = service.today() - timedelta(days=3)  # expired but still active
    soon = desk.issue("tenant", desk.person("租户二", docs=("id_front", "lease_contract")), "2-101")
    soon.valid_until = service.today() + timedelta(days=10)
    staff = desk.person("员工", docs=("id_front",))
    badge = desk.issue(
        "staff", staff, actor=desk.supervisor, approval_request_id=desk.approved("staff", staff)
    )
    other = desk.issue("cleaner", staff)  # a second card of the same person
    service.cancel_staff_card(
        session=desk.db, actor=desk.supervisor, card_number=badge.number, reason="left"
    )
    lost = desk.issue("tenant", desk.person("租户三", docs=("id_front", "lease_contract")), "2-102")
    service.report_lost(session=desk.db, actor=desk.clerk, card_number=lost.number)
    desk.db.add(
        AccessEvent(
            at=utcnow(),
            presented=lost.number,
            card_id=lost.id,
            door_code="UNIT-2",
            allowed=False,
            reason="lost",
        )
    )
    desk.db.flush()
    return {
        "own": own.number,
        "tenant": tenant.number,
        "soon": soon.number,
        "other": other.number,
        "lost": lost.number,
    }


def test_quarterly_counts_and_anomalies(desk: Desk) -> None:
    cards = _scene(desk)
    rep = report.quarterly_report(session=desk.db, actor=desk.supervisor)
    assert rep.by_kind["tenant"] == {"active": 2, "lost": 1}
    assert rep.counts[("tenant", "1")] == {"active": 1}
    assert rep.counts[("tenant", "2")] == {"active": 1, "lost": 1}
    assert rep.counts[("staff", "")] == {"cancelled": 1}
    assert rep.totals["active"] == 4
    numbers = {k: [r.card for r in rows] for k, rows in rep.anomalies.items()}
    assert numbers["expired_active"] == [cards["tenant"]]
    assert numbers["expiring"] == [cards["soon"]]
    assert numbers["departed_staff"] == [cards["other"]]
    assert numbers["former_owners"] == [cards["own"]]
    assert numbers["lost_used"] == [cards["lost"]]
    svg = str(report.chart_svg(rep))
    assert svg.startswith("<svg") and 'data-kind="tenant" data-state="active"' in svg


def test_quarterly_excel_opens_with_one_sheet_per_table(desk: Desk) -> None:
    cards = _scene(desk)
    rep = report.quarterly_report(session=desk.db, actor=desk.supervisor, quarter="2026Q4")
    book = load_workbook(io.BytesIO(report.to_excel(rep)))
    assert len(book.sheetnames) == 6
    counts = book[book.sheetnames[0]]
    assert "2026Q4" in counts["A1"].value
    lost_sheet = book[book.sheetnames[4]]
    assert lost_sheet["A2"].value == cards["lost"]


def test_registers_keep_owners_and_staff_apart(desk: Desk) -> None:
    cards = _scene(desk)
    owners = service.register(session=desk.db, actor=desk.supervisor, which="owner")
    staff = service.register(session=desk.db, actor=desk.supervisor, which="staff")
    assert {r.card.number for r in owners} >= {cards["own"], cards["lost"]}
    assert all(r.card.holder_kind in service.OWNER_REGISTER_KINDS for r in owners)
    assert {r.card.holder_kind for r in staff} == {"staff", "cleaner"}
    assert ("lost", cards["lost"]) in {(r.kind, r.card.number) for r in owners}
    assert ("cancelled", "staff") in {(r.kind, r.card.holder_kind) for r in staff}
    book = load_workbook(io.BytesIO(report.register_excel(staff, title="员工卡登记表")))
    assert book.active is not None and book.active.max_row == len(staff) + 1
