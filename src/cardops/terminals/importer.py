"""Inbound import of a manufacturer's serial list (验货入库): CSV or Excel, all or nothing.

The file has a header row. Columns (case-insensitive; Chinese names accepted):

* ``serial`` (SN, 序列号) — required, 6–40 letters, digits or ``-``;
* ``model`` (机型, 型号) — required, the code of one of the supplier's terminal models;
* ``imei`` — optional, 15 digits whose last digit is the Luhn check digit;
* ``iccid`` (SIM ICCID) — optional, 19 or 20 digits starting with ``89`` whose last digit is the
  Luhn check digit over the digits before it; a 19-digit ICCID may carry one trailing ``F``
  (the padding nibble read from the SIM), which is dropped when stored;
* any other column is kept in the unit's ``extra_codes``.

Row numbers are the spreadsheet's: the header is row 1, the first unit row 2. Every row is
checked and every error reported (``row N: field: reason``); with any error nothing is
imported. Duplicates are refused inside the file (both rows named) and against units already
registered (serial, IMEI, ICCID). On success one InboundBatch, the units (state ``received``
at the HQ warehouse, each with a fresh TMK) and their ``inbound`` movements are inserted in
bulk; one audit entry records the batch.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, cast
from xml.etree import ElementTree

from sqlalchemy import Connection, Table, select
from sqlalchemy.orm import Session

from cardops.audit.service import record
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.core.clock import utcnow
from cardops.core.errors import NotFound, ValidationFailed
from cardops.core.i18n import N_, translate
from cardops.core.models import next_number
from cardops.terminals import service
from cardops.terminals.keys import Sealer
from cardops.terminals.models import (
    InboundBatch,
    PurchaseRequest,
    Supplier,
    Terminal,
    TerminalModel,
    TerminalMovement,
    TerminalState,
)
from cardops.terminals.permissions import TERMINALS_INBOUND

MAX_ROWS = 200_000
MAX_ERRORS = 1000  # reported; counting goes on
PREVIEW_ROWS = 20
CHUNK = 2000
SERIAL_RE = re.compile(r"^[A-Za-z0-9-]{6,40}$")
_DIGITS = re.compile(r"^\d+$")

ALIASES = {
    "serial": "serial",
    "sn": "serial",
    "serial_number": "serial",
    "serial number": "serial",
    "序列号": "serial",
    "机身号": "serial",
    "model": "model",
    "机型": "model",
    "型号": "model",
    "imei": "imei",
    "iccid": "iccid",
    "sim iccid": "iccid",
    "sim_iccid": "iccid",
    "sim卡号": "iccid",
}


# "0".."9" -> the digit doubled with its digits summed (Luhn), as "0".."9"
_DOUBLE = bytes.maketrans(b"0123456789", b"0246813579")


def luhn_ok(digits: str) -> bool:
    """Luhn check over an all-digit string (C-speed: translate and sum bytes)."""
    raw = digits.encode()[::-1]
    total = sum(raw[0::2]) + sum(raw[1::2].translate(_DOUBLE)) - 48 * len(raw)
    return total % 10 == 0


def luhn_digit(body: str) -> str:
    """The Luhn check digit to append to ``body``."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = ord(ch) - 48
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def sample_csv(count: int, *, model: str, prefix: str = "DEMO", start: int = 1) -> bytes:
    """A valid serial list (serial, model, imei, iccid) for demos, tests and benchmarks."""
    lines = ["serial,model,imei,iccid"]
    for n in range(start, start + count):
        imei_body = f"86{n:012d}"
        iccid_body = f"898601{n:012d}"
        lines.append(
            f"{prefix}{n:08d},{model},{imei_body}{luhn_digit(imei_body)},"
            f"{iccid_body}{luhn_digit(iccid_body)}"
        )
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    field: str
    message: str  # English source, translated on display
    params: dict[str, Any] = dc_field(default_factory=dict)

    def text(self, locale: str | None = None) -> str:
        reason = translate(self.message, locale, **self.params)
        return f"row {self.row}: {self.field}: {reason}"


class ImportRejected(ValidationFailed):
    """The file has errors: nothing was imported. ``rows`` lists them all."""

    def __init__(self, rows: list[RowError], total: int) -> None:
        super().__init__("The file has {n} errors; nothing was imported.", field="file", n=total)
        self.rows = rows

    def field_errors(self, locale: str | None = None) -> list[dict[str, str]]:
        return [
            {
                "field": f"row {e.row}: {e.field}",
                "message": translate(e.message, locale, **e.params),
            }
            for e in self.rows
        ]


@dataclass
class Parsed:
    rows: list[dict[str, Any]]  # serial, model_id, model, imei, iccid, extra, row
    errors: list[RowError]
    error_count: int
    header: list[str]
    sha256: str
    filename: str

    @property
    def ok(self) -> bool:
        return self.error_count == 0


# --- reading the file -----------------------------------------------------------------------


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030")  # GBK superset: Excel "CSV" saved on Chinese Windows


def _csv_rows(data: bytes) -> Iterator[list[Any]]:
    text = _decode(data)
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count) if first else ","
    yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def _column_index(ref: str) -> int:
    index = 0
    for ch in ref:
        if "A" <= ch <= "Z":
            index = index * 26 + ord(ch) - 64
        else:
            break
    return index - 1


def _first_sheet_path(book: zipfile.ZipFile) -> str:
    workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
    sheet = workbook.find(f"{_NS}sheets/{_NS}sheet")
    if sheet is None:
        raise ValueError("no sheet")
    rel_id = sheet.get(f"{_REL_NS}id")
    rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    for rel in rels:
        if rel.get("Id") == rel_id:
            target = rel.get("Target", "")
            return target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    raise ValueError("sheet not found")


def _xlsx_rows(data: bytes) -> Iterator[list[Any]]:
    """Rows of the first sheet of an .xlsx, values as text/numbers.

    A small streaming reader (zipfile + expat) — several times faster than openpyxl for a
    100,000-row serial list; it reads shared strings, inline strings, numbers and booleans.
    """
    try:
        book = zipfile.ZipFile(io.BytesIO(data))
        path = _first_sheet_path(book)
        shared: list[str] = []
        if "xl/sharedStrings.xml" in book.namelist():
            with book.open("xl/sharedStrings.xml") as handle:
                for _, element in ElementTree.iterparse(handle):
                    if element.tag == f"{_NS}si":
                        shared.append("".join(t.text or "" for t in element.iter(f"{_NS}t")))
                        element.clear()
        handle = book.open(path)
    except (zipfile.BadZipFile, KeyError, ValueError, ElementTree.ParseError) as exc:
        raise ValidationFailed(
            "The file is not a readable Excel workbook (.xlsx).", field="file"
        ) from exc
    row_tag, cell_tag, value_tag = f"{_NS}row", f"{_NS}c", f"{_NS}v"
    try:
        for _, element in ElementTree.iterparse(handle):
            if element.tag != row_tag:
                continue
            values: list[Any] = []
            for cell in element.iter(cell_tag):
                ref = cell.get("r")
                if ref:
                    index = _column_index(ref)
                    if index > len(values):
                        values.extend([None] * (index - len(values)))
                kind = cell.get("t")
                if kind == "inlineStr":
                    values.append("".join(t.text or "" for t in cell.iter(f"{_NS}t")))
                    continue
                node = cell.find(value_tag)
                text = node.text if node is not None else None
                if text is None:
                    values.append(None)
                elif kind == "s":
                    values.append(shared[int(text)])
                elif kind in ("str", "e"):
                    values.append(text)
                elif kind == "b":
                    values.append(text == "1")
                else:
                    number = float(text)
                    values.append(
                        int(number)
                        if number.is_integer() and "E" not in text.upper() and abs(number) < 2**53
                        else number
                    )
            element.clear()
            yield values
    except (ElementTree.ParseError, ValueError, IndexError) as exc:
        raise ValidationFailed(
            "The file is not a readable Excel workbook (.xlsx).", field="file"
        ) from exc
    finally:
        handle.close()
        book.close()


def is_excel(filename: str, data: bytes) -> bool:
    return filename.lower().endswith((".xlsx", ".xlsm")) or data[:4] == b"PK\x03\x04"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    return str(value).strip()


# --- checking -------------------------------------------------------------------------------


def _existing(session: Session, column: str, values: list[str]) -> set[str]:
    """Which of ``values`` are already in ``terminals.<column>`` (driver-level IN queries)."""
    found: set[str] = set()
    connection = session.connection()
    if connection.dialect.name == "postgresql":  # one array parameter per 20,000 values
        sql = f"SELECT {column} FROM terminals WHERE {column} = ANY(%s)"
        for start in range(0, len(values), 20_000):
            part = values[start : start + 20_000]
            found.update(row[0] for row in connection.exec_driver_sql(sql, (part,)))
        return found
    mark = "?" if connection.dialect.paramstyle in ("qmark", "numeric") else "%s"
    for start in range(0, len(values), 900):
        chunk = tuple(values[start : start + 900])
        sql = f"SELECT {column} FROM terminals WHERE {column} IN ({', '.join([mark] * len(chunk))})"
        found.update(row[0] for row in connection.exec_driver_sql(sql, chunk))
    return found


def parse(session: Session, *, supplier: Supplier, filename: str, data: bytes) -> Parsed:
    """Read and check every row; nothing is written."""
    sha = hashlib.sha256(data).hexdigest()
    errors: list[RowError] = []
    count = 0

    def error(row: int, field_: str, message: str, **params: Any) -> None:
        nonlocal count
        count += 1
        if len(errors) < MAX_ERRORS:
            errors.append(RowError(row, field_, message, params))

    if not data:
        raise ValidationFailed("The file is empty. Choose a file to upload.", field="file")
    reader = _xlsx_rows(data) if is_excel(filename, data) else _csv_rows(data)
    header_raw = next(reader, None)
    if header_raw is None:
        raise ValidationFailed("The file is empty. Choose a file to upload.", field="file")
    header = [_cell(h).lower().lstrip("\ufeff").strip() for h in header_raw]
    columns = [ALIASES.get(h, h) for h in header]
    if "serial" not in columns or "model" not in columns:
        raise ValidationFailed(
            "The first row must name the columns; “serial” and “model” are required.",
            field="file",
        )
    i_serial = columns.index("serial")
    i_model = columns.index("model")
    i_imei = columns.index("imei") if "imei" in columns else -1
    i_iccid = columns.index("iccid") if "iccid" in columns else -1
    extras = [
        (i, name)
        for i, name in enumerate(header)
        if name and i not in (i_serial, i_model, i_imei, i_iccid)
    ]
    models = {
        m.code.upper(): m
        for m in session.execute(
            select(TerminalModel).where(TerminalModel.supplier_id == supplier.id)
        ).scalars()
    }
    width = len(header)
    rows: list[dict[str, Any]] = []
    seen_serial: dict[str, int] = {}
    seen_imei: dict[str, int] = {}
    seen_iccid: dict[str, int] = {}
    serial_match = SERIAL_RE.match
    digits_match = _DIGITS.match
    for number, raw in enumerate(reader, start=2):
        if len(raw) < width:
            raw = list(raw) + [None] * (width - len(raw))
        cells = [v.strip() if type(v) is str else _cell(v) for v in raw]
        if not any(cells):
            continue  # blank lines are skipped
        if len(rows) + 1 > MAX_ROWS:
            raise ValidationFailed(
                "At most {n} units in one file; split it.", field="file", n=MAX_ROWS
            )
        serial = cells[i_serial]
        code = cells[i_model].upper()
        imei = cells[i_imei] if i_imei >= 0 else ""
        iccid = cells[i_iccid].upper() if i_iccid >= 0 else ""
        if not serial:
            error(number, "serial", N_("The serial is missing."))
        elif not serial_match(serial):
            error(
                number,
                "serial",
                N_("“{value}” is not a serial: use 6–40 letters, digits or “-”."),
                value=serial[:60],
            )
        elif serial in seen_serial:
            first = seen_serial[serial]
            error(
                number,
                "serial",
                N_("Serial {value} appears twice in the file: rows {first} and {second}."),
                value=serial,
                first=first,
                second=number,
            )
        else:
            seen_serial[serial] = number
        mod = models.get(code)
        if not code:
            error(number, "model", N_("The model is missing."))
        elif mod is None:
            error(
                number,
                "model",
                N_("Unknown model “{value}” for supplier {supplier}."),
                value=code[:40],
                supplier=supplier.name,
            )
        if imei:
            if len(imei) != 15 or not digits_match(imei):
                error(
                    number,
                    "imei",
                    N_("The IMEI {value} must have exactly 15 digits."),
                    value=imei[:40],
                )
            elif not luhn_ok(imei):
                error(
                    number, "imei", N_("The IMEI {value} fails its Luhn check digit."), value=imei
                )
            elif imei in seen_imei:
                error(
                    number,
                    "imei",
                    N_("IMEI {value} appears twice in the file: rows {first} and {second}."),
                    value=imei,
                    first=seen_imei[imei],
                    second=number,
                )
            else:
                seen_imei[imei] = number
        if iccid:
            if iccid.endswith("F") and len(iccid) == 20:
                iccid = iccid[:-1]
            if "E" in iccid or "." in iccid:
                error(
                    number,
                    "iccid",
                    N_(
                        "The ICCID {value} was stored as a number and lost digits; format the column as text."
                    ),
                    value=iccid[:40],
                )
            elif (
                not digits_match(iccid) or len(iccid) not in (19, 20) or not iccid.startswith("89")
            ):
                error(
                    number,
                    "iccid",
                    N_("The ICCID {value} must be 19 or 20 digits starting with 89."),
                    value=iccid[:40],
                )
            elif not luhn_ok(iccid):
                error(
                    number,
                    "iccid",
                    N_("The ICCID {value} fails its Luhn check digit."),
                    value=iccid,
                )
            elif iccid in seen_iccid:
                error(
                    number,
                    "iccid",
                    N_("ICCID {value} appears twice in the file: rows {first} and {second}."),
                    value=iccid,
                    first=seen_iccid[iccid],
                    second=number,
                )
            else:
                seen_iccid[iccid] = number
        extra = {name: cells[i] for i, name in extras if cells[i]}
        rows.append(
            {
                "row": number,
                "serial": serial,
                "model": code,
                "model_id": mod.id if mod else None,
                "imei": imei or None,
                "iccid": iccid or None,
                "extra": extra,
            }
        )
    if not rows:
        raise ValidationFailed("The file lists no units.", field="file")
    for value in sorted(_existing(session, "serial", list(seen_serial))):
        error(
            seen_serial[value], "serial", N_("Serial {value} is already registered."), value=value
        )
    for value in sorted(_existing(session, "imei", list(seen_imei))):
        error(seen_imei[value], "imei", N_("IMEI {value} is already registered."), value=value)
    for value in sorted(_existing(session, "iccid", list(seen_iccid))):
        error(seen_iccid[value], "iccid", N_("ICCID {value} is already registered."), value=value)
    errors.sort(key=lambda e: (e.row, e.field))
    return Parsed(rows, errors, count, header, sha, filename)


# --- importing ------------------------------------------------------------------------------

UNIT_COLUMNS = (
    "serial",
    "model_id",
    "supplier_id",
    "imei",
    "iccid",
    "extra_codes",
    "state",
    "location_id",
    "inbound_batch_id",
    "tmk_encrypted",
    "tmk_kcv",
    "cross_region",
    "created_at",
    "updated_at",
)
MOVE_COLUMNS = (
    "terminal_id",
    "at",
    "kind",
    "to_location_id",
    "to_state",
    "document",
    "actor_id",
    "note",
    "data",
)


def _binder(connection: Connection, table: Table) -> Callable[[str, Any], Any]:
    """Convert a Python value to what the driver takes for a column (UTC datetimes, JSON,
    booleans), as SQLAlchemy would; used once per constant and per non-trivial value."""
    dialect = connection.dialect
    processors = {
        column.name: column.type._cached_bind_processor(dialect) for column in table.columns
    }

    def bind(name: str, value: Any) -> Any:
        processor = processors[name]
        return processor(value) if processor else value

    return bind


def _bulk_insert(
    connection: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """One driver-level executemany (COPY on PostgreSQL): no per-row SQLAlchemy work for
    100,000 units."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        raw: Any = connection.connection.driver_connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    mark = "?" if connection.dialect.paramstyle in ("qmark", "numeric") else "%s"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    connection.exec_driver_sql(sql, rows)


@dataclass
class Outcome:
    parsed: Parsed
    batch: InboundBatch | None

    @property
    def count(self) -> int:
        return len(self.parsed.rows)


def find_supplier(session: Session, name: str) -> Supplier:
    clean = (name or "").strip()[:128]
    found = session.execute(select(Supplier).where(Supplier.name == clean)).scalar_one_or_none()
    if found is None:
        raise NotFound("No supplier named “{name}”.", field="supplier", name=clean)
    return found


def import_file(
    *,
    session: Session,
    actor: User,
    supplier: Supplier | str,
    filename: str,
    data: bytes,
    dry_run: bool = False,
    purchase_request_id: int | None = None,
) -> Outcome:
    """Check the file and, unless ``dry_run``, import it. Raises :class:`ImportRejected`
    (422, every bad row listed) when any row is wrong; then nothing is written."""
    require(actor, TERMINALS_INBOUND)
    maker = find_supplier(session, supplier) if isinstance(supplier, str) else supplier
    request = None
    if purchase_request_id is not None:
        request = (
            session.get(PurchaseRequest, purchase_request_id)
            if 0 < purchase_request_id < 2**31
            else None
        )
        if request is None or request.supplier_id != maker.id:
            raise ValidationFailed(
                "Choose a purchase request of this supplier.", field="purchase_request_id"
            )
    parsed = parse(session, supplier=maker, filename=filename, data=data)
    if not parsed.ok:
        raise ImportRejected(parsed.errors, parsed.error_count)
    if dry_run:
        return Outcome(parsed, None)
    now = utcnow()
    batch = InboundBatch(
        number=next_number(session, "inbound", "IB"),
        supplier_id=maker.id,
        purchase_request_id=request.id if request else None,
        filename=(filename or "")[-255:],
        file_sha256=parsed.sha256,
        count=len(parsed.rows),
        received_at=now,
        received_by_id=actor.id,
    )
    session.add(batch)
    session.flush()
    place = service.warehouse(session)
    sealer = Sealer()
    connection = session.connection()
    state = TerminalState.RECEIVED.value
    rows = parsed.rows
    units = cast(Table, Terminal.__table__)
    bind = _binder(connection, units)
    stamp = bind("created_at", now)
    no_extra = bind("extra_codes", {})
    false = bind("cross_region", False)
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        keys = sealer.new_keys([r["serial"] for r in chunk])
        _bulk_insert(
            connection,
            units,
            UNIT_COLUMNS,
            [
                (
                    r["serial"],
                    r["model_id"],
                    maker.id,
                    r["imei"],
                    r["iccid"],
                    bind("extra_codes", r["extra"]) if r["extra"] else no_extra,
                    state,
                    place.id,
                    batch.id,
                    key.encrypted,
                    key.kcv,
                    false,
                    stamp,
                    stamp,
                )
                for r, key in zip(chunk, keys, strict=True)
            ],
        )
    ids = (
        connection.execute(
            select(Terminal.id).where(Terminal.inbound_batch_id == batch.id).order_by(Terminal.id)
        )
        .scalars()
        .all()
    )
    per_model: dict[tuple[int, int, str], int] = {}
    for r in rows:
        key = (place.id, r["model_id"], state)
        per_model[key] = per_model.get(key, 0) + 1
    service.bump_counts(session, per_model)
    moves = cast(Table, TerminalMovement.__table__)
    bind_move = _binder(connection, moves)
    at = bind_move("at", now)
    empty = bind_move("data", {})
    for start in range(0, len(ids), CHUNK * 2):
        _bulk_insert(
            connection,
            moves,
            MOVE_COLUMNS,
            [
                (terminal_id, at, "inbound", place.id, state, batch.number, actor.id, "", empty)
                for terminal_id in ids[start : start + CHUNK * 2]
            ],
        )
    if request is not None and request.state == "ordered":
        before = {"state": request.state}
        request.state = "received"
        record(
            session, actor, "purchase_request.received", request, before=before, batch=batch.number
        )
    record(
        session,
        actor,
        "inbound_batch.imported",
        batch,
        count=batch.count,
        file_sha256=batch.file_sha256,
    )
    return Outcome(parsed, batch)
