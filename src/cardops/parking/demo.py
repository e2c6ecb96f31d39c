"""Demo data: in property SUNNY, one owner gets a current monthly parking permit with its
documents, and another an expired one (runs after the cards demo; skips if it has no cards)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.access.models import Property
from cardops.cards.models import Card, CardState, HolderKind
from cardops.core.demo_loader import DemoContext
from cardops.parking import service

PROPERTY = "SUNNY"
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc000000301010018dd8db40000000049454e44ae426082"
)


def placeholder_pdf(title: str) -> bytes:
    """A tiny valid PDF standing in for a scanned copy."""
    text = title.encode("ascii", "replace")
    stream = b"BT /F1 12 Tf 36 100 Td (" + text + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def demo_documents(plate: str) -> dict[str, service.Upload]:
    docs = {
        code: service.Upload(f"{code}-{plate}.pdf", placeholder_pdf(f"{code} {plate}"))
        for code in ("driving_licence", "vehicle_licence", "insurance_policy", "agreement")
    }
    docs["id_copy"] = service.Upload(f"id-{plate}.png", _PNG + plate.encode(), "image/png")
    return docs


def load(session: Session, ctx: DemoContext) -> None:
    prop = session.execute(select(Property).where(Property.code == PROPERTY)).scalar_one_or_none()
    if prop is None:
        return
    owners = list(
        session.execute(
            select(Card)
            .where(
                Card.property_id == prop.id,
                Card.state == CardState.ACTIVE.value,
                Card.holder_kind == HolderKind.OWNER.value,
                Card.person_id.is_not(None),
            )
            .order_by(Card.id)
        ).scalars()
    )
    if not owners:
        return  # the cards demo made no cards: nothing to park
    clerk = ctx.users.get("front_desk_clerk", ctx.admin)
    plans = [("川A12345", "B1-001", 0), ("川AD12345", "B1-002", 3)]  # months ago
    for card, (plate, space, months_ago) in zip(owners, plans, strict=False):
        start = service.add_months(service.today(), -months_ago)
        service.issue_permit(
            session=session,
            actor=clerk,
            card_number=card.number,
            plate=plate,
            space=space,
            monthly_fee=30000,
            months=1,
            start=start if months_ago else None,
            payment_method="wechat" if months_ago else "cash",
            documents=demo_documents(plate),
            idempotency_key=f"demo:parking:{card.number}",
        )
