"""Every refusal of a clearing file names the problem (line and column where there is one)
and imports nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.core.errors import CardopsError
from cardops.reconciliation import service
from cardops.reconciliation.clearing import HEADER, parse_yuan
from cardops.reconciliation.models import ClearingFile, ReconCase, ReconRun
from cardops.reconciliation.simulator import export_day
from tests.reconciliation.conftest import DAY, Day, read_lines, standard_day, write_lines


@pytest.fixture
def bank_file(db: Session, system: User, journal_day: Day, tmp_path: Path) -> Path:
    standard_day(journal_day)
    path = tmp_path / f"CLR_ICBC01_{DAY:%Y%m%d}.csv"
    export_day(session=db, actor=system, business_date=DAY, path=path)
    return path


def _nothing_imported(db: Session) -> None:
    for table in (ClearingFile, ReconRun, ReconCase):
        assert db.execute(select(func.count()).select_from(table)).scalar_one() == 0


def _refused(db: Session, system: User, path: Path, **kwargs: object) -> CardopsError:
    with pytest.raises(CardopsError) as info, db.begin_nested():
        service.import_file(session=db, actor=system, path=path, **kwargs)  # type: ignore[arg-type]
    return info.value


def _edit(path: Path, line_no: int, column: int, value: str) -> None:
    lines = read_lines(path)
    fields = lines[line_no - 1].split(",")
    # the merchant name may hold a quoted comma: count columns from the right
    fields[column - 14 if column >= 4 else column] = value
    lines[line_no - 1] = ",".join(fields)
    write_lines(path, lines[:-1], fix_trailer=True)


@pytest.mark.parametrize(
    ("column", "value", "name"),
    [
        (11, "12.5", "amount"),
        (11, "1e3", "amount"),
        (11, "-1.00", "amount"),
        (11, "1,234.50", "amount"),
        (12, "0.3", "bank_fee"),
        (5, "12345", "stan"),
        (6, "ABC", "rrn"),
        (9, "PREPAID", "card_type"),
        (10, "SALE", "txn_type"),
        (13, "OK", "status"),
        (1, "2026-11-20", "txn_time"),
    ],
)
def test_a_bad_value_is_refused_with_line_and_column(
    db: Session, system: User, bank_file: Path, column: int, value: str, name: str
) -> None:
    _edit(bank_file, 5, column, value)
    error = _refused(db, system, bank_file)
    message = str(error)
    assert "Line 5" in message or "Line 5 has" in message or "columns" in message
    if name != "amount" or value != "1,234.50":
        assert f"column {name}" in message
    assert error.field == "file"
    _nothing_imported(db)


def test_exact_amounts() -> None:
    assert parse_yuan("1234.50") == 123450
    assert parse_yuan("0.01") == 1
    for bad in ("12.5", "1e3", "-1.00", "1234.5", " 1.00", "1.005"):
        with pytest.raises(ValueError):
            parse_yuan(bad)


def test_the_header_must_be_exact(db: Session, system: User, bank_file: Path) -> None:
    lines = read_lines(bank_file)
    lines[0] = HEADER.replace("rrn", "RRN")
    write_lines(bank_file, lines[:-1])
    assert "Line 1 must be the header" in str(_refused(db, system, bank_file))
    _nothing_imported(db)


def test_a_trailer_that_disagrees_refuses_the_whole_file(
    db: Session, system: User, bank_file: Path
) -> None:
    lines = read_lines(bank_file)
    count = len(lines) - 2
    lines[-1] = f"#TOTAL,{count},1.00"
    write_lines(bank_file, lines, fix_trailer=False)
    assert "The file is refused whole" in str(_refused(db, system, bank_file))
    lines[-1] = f"#TOTAL,{count + 1},{lines[-1].split(',')[2]}"
    write_lines(bank_file, lines, fix_trailer=False)
    _refused(db, system, bank_file)
    write_lines(bank_file, lines[:-1], fix_trailer=False)  # no trailer at all
    assert "trailer" in str(_refused(db, system, bank_file))
    _nothing_imported(db)


def test_the_wrong_encoding_is_refused(db: Session, system: User, bank_file: Path) -> None:
    text = bank_file.read_bytes().decode("gbk")
    bank_file.write_bytes(text.encode("utf-8"))
    assert "--utf8" in str(_refused(db, system, bank_file))
    # and a GBK file read as UTF-8 names the first line that is not UTF-8
    bank_file.write_bytes(text.encode("gbk"))
    error = str(_refused(db, system, bank_file, utf8=True))
    assert "is not valid UTF-8" in error and "Line 2" in error
    _nothing_imported(db)
    # told the right encoding, the UTF-8 copy imports
    bank_file.write_bytes(text.encode("utf-8"))
    outcome = service.import_file(session=db, actor=system, path=bank_file, utf8=True)
    assert outcome.counts()["matched"] == 22


def test_a_date_outside_the_window_is_refused(db: Session, system: User, bank_file: Path) -> None:
    _edit(bank_file, 3, 1, "20261001101010")
    assert "column txn_time" in str(_refused(db, system, bank_file))
    _edit(bank_file, 3, 1, "20261121101010")  # after the business day
    assert "column txn_time" in str(_refused(db, system, bank_file))
    _nothing_imported(db)


def test_a_line_of_another_day_or_a_misnamed_file_is_refused(
    db: Session, system: User, bank_file: Path, tmp_path: Path
) -> None:
    _edit(bank_file, 4, 0, "20261119")
    assert "column settle_date" in str(_refused(db, system, bank_file))
    _edit(bank_file, 4, 0, "20261120")
    other = tmp_path / "CLR_ICBC01_20261121.csv"
    other.write_bytes(bank_file.read_bytes())
    assert "The file name says business day" in str(_refused(db, system, other))
    _nothing_imported(db)


def test_a_line_with_the_wrong_number_of_columns(
    db: Session, system: User, bank_file: Path
) -> None:
    lines = read_lines(bank_file)
    lines.insert(3, "20261120,20261120101010,only,three")
    write_lines(bank_file, lines[:-1])
    error = str(_refused(db, system, bank_file))
    assert "Line 4 has 4 columns" in error
    _nothing_imported(db)


def test_the_same_file_twice_is_refused_and_a_corrected_one_needs_replace(
    db: Session, system: User, bank_file: Path, tmp_path: Path
) -> None:
    first = service.import_file(session=db, actor=system, path=bank_file)
    assert first.counts()["matched"] == 22
    error = _refused(db, system, bank_file)
    assert error.status == 409 and "already imported" in str(error)
    renamed = tmp_path / "copy.csv"
    renamed.write_bytes(bank_file.read_bytes())
    assert "already imported" in str(_refused(db, system, renamed, replace=True))
    lines = read_lines(bank_file)
    write_lines(bank_file, lines[:2] + lines[3:-1])  # corrected: one line fewer
    error = _refused(db, system, bank_file)
    assert error.field == "replace" and "--replace" in str(error)
    assert db.execute(select(func.count()).select_from(ClearingFile)).scalar_one() == 1
    second = service.import_file(
        session=db, actor=system, path=bank_file, replace=True, reason="bank resent"
    )
    assert second.counts()["missing_at_bank"] == 1
    files = db.execute(select(ClearingFile).order_by(ClearingFile.id)).scalars().all()
    assert [f.state for f in files] == ["replaced", "active"]
    assert files[0].replaced_by_id == files[1].id and files[0].replace_reason == "bank resent"
    runs = db.execute(select(ReconRun).order_by(ReconRun.id)).scalars().all()
    assert [r.current for r in runs] == [False, True]  # the earlier run is kept in history


def test_windows_line_ends_and_a_utf8_byte_order_mark_are_accepted(
    db: Session, system: User, bank_file: Path
) -> None:
    text = bank_file.read_bytes().decode("gbk")
    bank_file.write_bytes(("\ufeff" + text.replace("\n", "\r\n")).encode("utf-8"))
    outcome = service.import_file(session=db, actor=system, path=bank_file, utf8=True)
    assert outcome.counts()["matched"] == 22
