"""Inbound import: CSV and Excel, every bad-input case, nothing imported on error."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.auth.service import system_user
from cardops.terminals import importer
from cardops.terminals.importer import ImportRejected, import_file, sample_csv
from cardops.terminals.models import InboundBatch, Terminal, TerminalMovement
from tests.terminals.helpers import iccid, imei, model, supplier


def _count(db: Session) -> int:
    return int(db.execute(select(func.count()).select_from(Terminal)).scalar_one())


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_csv_import_registers_units_with_movements_and_keys(db: Session) -> None:
    maker = supplier(db)
    mod = model(db, maker)
    data = sample_csv(30, model=mod.code, prefix="CSVA", start=700_000)
    outcome = import_file(
        session=db, actor=system_user(db), supplier=maker, filename="list.csv", data=data
    )
    assert outcome.batch is not None and outcome.batch.number.startswith("IB")
    units = (
        db.execute(select(Terminal).where(Terminal.inbound_batch_id == outcome.batch.id))
        .scalars()
        .all()
    )
    assert len(units) == 30
    assert {u.state for u in units} == {"received"}
    assert all(u.tmk_encrypted and len(u.tmk_kcv or "") == 6 for u in units)
    moves = db.execute(
        select(func.count())
        .select_from(TerminalMovement)
        .where(TerminalMovement.document == outcome.batch.number)
    ).scalar_one()
    assert moves == 30


def test_excel_import_with_bom_gbk_and_extra_columns(db: Session) -> None:
    maker = supplier(db)
    mod = model(db, maker)
    data = _xlsx(
        [
            ["SN", "机型", "IMEI", "ICCID", "batch_no"],
            ["XLSX-000001", mod.code, int(imei(710_001)), iccid(710_001) + "F", "B7"],
            ["XLSX-000002", mod.code.lower(), imei(710_002), None, None],
        ]
    )
    outcome = import_file(
        session=db, actor=system_user(db), supplier=maker, filename="list.xlsx", data=data
    )
    assert outcome.count == 2
    first = db.execute(select(Terminal).where(Terminal.serial == "XLSX-000001")).scalar_one()
    assert first.imei == imei(710_001)
    assert first.iccid == iccid(710_001)  # trailing F padding dropped
    assert first.extra_codes == {"batch_no": "B7"}

    gbk = f"序列号,型号\nGBK-000001,{mod.code}\n".encode("gbk")
    assert (
        import_file(
            session=db, actor=system_user(db), supplier=maker, filename="g.csv", data=gbk
        ).count
        == 1
    )
    bom = b"\xef\xbb\xbf" + f"serial,model\nBOM-000001,{mod.code}\n".encode()
    assert (
        import_file(
            session=db, actor=system_user(db), supplier=maker, filename="b.csv", data=bom
        ).count
        == 1
    )


def test_every_bad_row_is_reported_and_nothing_is_imported(db: Session) -> None:
    maker = supplier(db)
    mod = model(db, maker)
    import_file(
        session=db,
        actor=system_user(db),
        supplier=maker,
        filename="first.csv",
        data=f"serial,model,imei,iccid\nHAVE-000001,{mod.code},{imei(720_000)},{iccid(720_000)}\n".encode(),
    )
    before = _count(db)
    bad_imei = imei(720_005)[:-1] + str((int(imei(720_005)[-1]) + 1) % 10)
    bad_iccid = iccid(720_006)[:-1] + str((int(iccid(720_006)[-1]) + 1) % 10)
    lines = [
        "serial,model,imei,iccid",
        f"DUP-000001,{mod.code},{imei(720_001)},",  # row 2
        f"DUP-000001,{mod.code},,",  # row 3: duplicate of row 2
        f"HAVE-000001,{mod.code},,",  # row 4: already registered
        "UNK-000001,NO-SUCH-MODEL,,",  # row 5
        f"LUHN-000001,{mod.code},{bad_imei},",  # row 6
        f"ICC-000001,{mod.code},,{bad_iccid}",  # row 7
        f"ICC-000002,{mod.code},,1234567890123456789",  # row 8: not 89…
        f"IMEIDUP-001,{mod.code},{imei(720_000)},",  # row 9: IMEI already registered
        f"x,{mod.code},,",  # row 10: malformed serial
        f"OK-0000001,{mod.code},,",  # row 11: fine, still not imported
    ]
    with pytest.raises(ImportRejected) as rejected:
        import_file(
            session=db,
            actor=system_user(db),
            supplier=maker,
            filename="bad.csv",
            data=("\n".join(lines) + "\n").encode(),
        )
    texts = [e.text("en") for e in rejected.value.rows]
    assert "row 3: serial: Serial DUP-000001 appears twice in the file: rows 2 and 3." in texts
    assert "row 4: serial: Serial HAVE-000001 is already registered." in texts
    assert any(t.startswith("row 5: model: Unknown model") for t in texts)
    assert any(t.startswith("row 6: imei:") and "Luhn" in t for t in texts)
    assert any(t.startswith("row 7: iccid:") and "Luhn" in t for t in texts)
    assert any(t.startswith("row 8: iccid:") and "starting with 89" in t for t in texts)
    assert any(t.startswith("row 9: imei:") and "already registered" in t for t in texts)
    assert any(t.startswith("row 10: serial:") for t in texts)
    assert not any(t.startswith("row 11") for t in texts)
    assert rejected.value.status == 422
    assert _count(db) == before
    assert (
        db.execute(
            select(func.count()).select_from(InboundBatch).where(InboundBatch.filename == "bad.csv")
        ).scalar_one()
        == 0
    )


def test_dry_run_checks_without_importing(db: Session) -> None:
    maker = supplier(db)
    mod = model(db, maker)
    before = _count(db)
    outcome = import_file(
        session=db,
        actor=system_user(db),
        supplier=maker,
        filename="d.csv",
        data=sample_csv(5, model=mod.code, prefix="DRY", start=730_000),
        dry_run=True,
    )
    assert outcome.batch is None and outcome.count == 5
    assert _count(db) == before


def test_a_file_without_the_required_columns_is_refused(db: Session) -> None:
    maker = supplier(db)
    with pytest.raises(importer.ValidationFailed) as refused:
        import_file(
            session=db, actor=system_user(db), supplier=maker, filename="x.csv", data=b"a,b\n1,2\n"
        )
    assert refused.value.field == "file"
