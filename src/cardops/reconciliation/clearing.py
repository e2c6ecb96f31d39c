"""The bank's daily clearing file (清算明细文件): read it, check it to the byte, write it.

Format: ``/work/shared/protocol/clearing-file.md`` (``docs/user-guide/reconciliation.md``).
GBK by default, UTF-8 when told; a header with exactly :data:`COLUMNS`; detail lines; a
trailer ``#TOTAL,<detail lines>,<sum of SUCCESS amounts>``. Amounts are yuan text with
exactly two decimals and are parsed exactly (``1234.50`` → 123450 fen), never through floats.

Reading is columnar: the file is transcoded to UTF-8 in streaming chunks (hashed on the way),
the trailer cut off, and Polars parses and validates every column at once. When a line is
bad the error names its line number (the header is line 1) and its column, and nothing is
imported.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from cardops.core.errors import ValidationFailed
from cardops.core.i18n import N_
from cardops.reconciliation.journal import TXN_TYPE

COLUMNS: tuple[str, ...] = (
    "settle_date",
    "txn_time",
    "mid",
    "merchant_name",
    "tid",
    "stan",
    "rrn",
    "auth_code",
    "card",
    "card_type",
    "txn_type",
    "amount",
    "bank_fee",
    "status",
)
HEADER = ",".join(COLUMNS)
TXN_TYPES = ("PURCHASE", "COMPLETION", "REFUND", "VOID", "REVERSAL")
STATUSES = ("SUCCESS", "FAILED")
CARD_TYPES = ("DEBIT", "CREDIT")
FILENAME = re.compile(r"^CLR_([A-Za-z0-9]{1,32})_(\d{8})\.csv$")
TRAILER = re.compile(r"^#TOTAL,(\d{1,12}),(\d{1,15}\.\d{2})$")
# How many days before the business day a transaction may have happened (late clearing).
WINDOW_DAYS = 7
CHUNK = 16 * 1024 * 1024
ICONV = shutil.which("iconv")

# Per column: the anchored pattern it must match and the message when it does not.
_YUAN = r"^\d{1,13}\.\d{2}$"
RULES: dict[str, tuple[str, str]] = {
    "settle_date": (r"^\d{8}$", N_("Line {line}, column {column}: expected a date YYYYMMDD, found '{value}'.")),
    "txn_time": (r"^\d{14}$", N_("Line {line}, column {column}: expected a time YYYYMMDDhhmmss, found '{value}'.")),
    "mid": (r"^[0-9A-Za-z]{15}$", N_("Line {line}, column {column}: a merchant ID has 15 letters or digits, found '{value}'.")),
    "merchant_name": (r"^[^\x00-\x1f]{0,128}$", N_("Line {line}, column {column}: the merchant name is too long or has control characters.")),
    "tid": (r"^[0-9A-Za-z]{8}$", N_("Line {line}, column {column}: a terminal ID has 8 letters or digits, found '{value}'.")),
    "stan": (r"^\d{6}$", N_("Line {line}, column {column}: a trace number has 6 digits, found '{value}'.")),
    "rrn": (r"^\d{12}$", N_("Line {line}, column {column}: a retrieval reference number has 12 digits, found '{value}'.")),
    "auth_code": (r"^[0-9A-Za-z]{0,6}$", N_("Line {line}, column {column}: an authorization code has at most 6 letters or digits, found '{value}'.")),
    "card": (r"^\d{6}\*{4}\d{4}$", N_("Line {line}, column {column}: expected a masked card number like 622848****1234, found '{value}'.")),
    "card_type": (r"^(DEBIT|CREDIT)$", N_("Line {line}, column {column}: expected DEBIT or CREDIT, found '{value}'.")),
    "txn_type": (r"^(PURCHASE|COMPLETION|REFUND|VOID|REVERSAL)$", N_("Line {line}, column {column}: expected PURCHASE, COMPLETION, REFUND, VOID or REVERSAL, found '{value}'.")),
    "amount": (_YUAN, N_("Line {line}, column {column}: an amount is yuan with exactly two decimals, e.g. 1234.50, found '{value}'.")),
    "bank_fee": (_YUAN, N_("Line {line}, column {column}: a fee is yuan with exactly two decimals, e.g. 0.35, found '{value}'.")),
    "status": (r"^(SUCCESS|FAILED)$", N_("Line {line}, column {column}: expected SUCCESS or FAILED, found '{value}'.")),
}  # fmt: skip
_REQUIRED = {c for c in COLUMNS if c not in ("auth_code", "merchant_name")}

Progress = Callable[[str, float], None]


@dataclass
class ParsedFile:
    """A clearing file that passed every check; ``lines`` has one row per detail line."""

    filename: str
    sha256: str
    encoding: str
    size: int
    business_date: date
    acquirer: str
    lines: pl.DataFrame  # line, tid, stan, rrn, date, amount, bank_fee, ok, txn_type, mid, …
    count: int
    success_count: int
    success_amount: int
    bank_fee_total: int


def yuan_text(fen: int) -> str:
    """123450 -> '1234.50' (the file's amount format, no thousands separator)."""
    sign = "-" if fen < 0 else ""
    units, cents = divmod(abs(fen), 100)
    return f"{sign}{units}.{cents:02d}"


def parse_yuan(text: str) -> int:
    """'1234.50' -> 123450, exactly; anything else (``12.5``, ``1e3``, ``-1.00``) is refused."""
    if not re.fullmatch(_YUAN, text):
        raise ValueError(text)
    units, cents = text.split(".")
    return int(units) * 100 + int(cents)


def _bad(message: str, **params: Any) -> ValidationFailed:
    return ValidationFailed(message, field="file", **params)


def _transcode(path: Path, encoding: str, out: Path) -> tuple[str, int, str, str]:
    """Decode ``path`` in chunks into UTF-8 at ``out``; returns (sha256, size, header, trailer).

    The trailer (the last non-empty line) is cut off ``out``; a line that is not in the
    encoding is refused with its line number. GBK goes through the system's ``iconv`` when
    there is one (four times Python's codec), hashed by Python on the way in; if iconv
    refuses the text, Python's codec reads it again to name the bad line.
    """
    fast = _transcode_iconv(path, out) if encoding == "gbk" and ICONV else None
    if fast is None:
        fast = _transcode_python(path, encoding, out)
    digest, size = fast
    with out.open("rb") as fh:
        header = fh.readline(4096).decode("utf-8", errors="replace").rstrip("\r\n")
    return digest, size, header, _cut_trailer(out)


def _transcode_iconv(path: Path, out: Path) -> tuple[str, int] | None:
    digest = hashlib.sha256()
    size = 0
    assert ICONV is not None
    with path.open("rb") as src, out.open("wb") as dst:
        proc = subprocess.Popen(
            [ICONV, "-f", "GBK", "-t", "UTF-8"],
            stdin=subprocess.PIPE,
            stdout=dst,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdin is not None
        first = True
        try:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if first:
                    _check_not_utf8(chunk)
                    first = False
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            code = proc.wait()
    return (digest.hexdigest(), size) if code == 0 else None


def _check_not_utf8(chunk: bytes) -> None:
    if not chunk.isascii() and _is_utf8(chunk):
        raise _bad(
            N_(
                "The file looks like UTF-8 text, not GBK: import it with --utf8 if the bank sent UTF-8."
            )
        )


def _transcode_python(path: Path, encoding: str, out: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    size = 0
    newlines = 0
    with path.open("rb") as src, out.open("wb") as dst:
        first = True
        while True:
            chunk = src.read(CHUNK)
            final = not chunk
            digest.update(chunk)
            size += len(chunk)
            if first and encoding == "utf-8" and chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8) :]
            try:
                text = decoder.decode(chunk, final=final)
            except UnicodeDecodeError as exc:
                line = newlines + chunk.count(b"\n", 0, max(0, exc.start)) + 1
                raise _bad(
                    N_(
                        "Line {line} is not valid {encoding} text: is the file in another "
                        "encoding? (GBK is the default; use --utf8 for a UTF-8 file.)"
                    ),
                    line=line,
                    encoding=encoding.upper(),
                ) from exc
            newlines += chunk.count(b"\n")
            if first and encoding == "gbk":
                _check_not_utf8(chunk)
            first = False
            # UTF-8 in, UTF-8 out: the checked bytes go through as they are
            dst.write(chunk if encoding == "utf-8" else text.encode("utf-8"))
            if final:
                break
    return digest.hexdigest(), size


def _cut_trailer(out: Path) -> str:
    """Cut the last non-empty line off ``out`` and return it."""
    # cut the trailer off the UTF-8 copy
    with out.open("r+b") as fh:
        end = fh.seek(0, os.SEEK_END)
        tail_start = max(0, end - 4096)
        fh.seek(tail_start)
        tail = fh.read()
        stripped = tail.rstrip(b"\r\n")
        cut = stripped.rfind(b"\n")
        if cut < 0 and tail_start > 0:
            raise _bad(N_("The file has no trailer line #TOTAL,<lines>,<amount>."))
        trailer = stripped[cut + 1 :].decode("utf-8").rstrip("\r")
        fh.truncate(tail_start + cut + 1 if cut >= 0 else 0)
    return trailer


def _is_utf8(chunk: bytes) -> bool:
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a character cut at the end of the chunk does not count
        return exc.start >= len(chunk) - 3 and exc.reason == "unexpected end of data"
    return True


def _first_bad_shape(path: Path, until: int | None = None) -> ValidationFailed | None:
    """Slow path after the fast reader refused a line: find the first line of the wrong
    shape (up to line ``until``)."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        for number, row in enumerate(reader, start=1):
            if len(row) != len(COLUMNS):
                return _bad(
                    N_("Line {line} has {found} columns; every line must have {expected}."),
                    line=number,
                    found=len(row),
                    expected=len(COLUMNS),
                )
            if until is not None and number >= until:
                return None
    return (
        None
        if until is not None
        else _bad(N_("The file could not be read as comma-separated text."))
    )


def read_clearing_file(
    path: Path | str,
    *,
    utf8: bool = False,
    filename: str | None = None,
    progress: Progress | None = None,
    workdir: Path | str | None = None,
) -> ParsedFile:
    """Read and check a clearing file; raise ValidationFailed (line, column) when it is bad.

    Two passes over the UTF-8 copy, neither holding the text of the whole file in memory:
    the first (streaming) finds the first bad line of every check and sums the file; the
    second keeps only the compact, typed columns matching needs.
    """
    path = Path(path)
    name = filename or path.name
    if len(name) > 255:
        raise _bad(N_("The file name is too long."))
    if not path.is_file():
        raise _bad(N_("There is no file {name}."), name=str(path))
    encoding = "utf-8" if utf8 else "gbk"
    step = progress or (lambda _label, _done: None)
    with tempfile.TemporaryDirectory(prefix="cardops-clr-", dir=workdir) as tmp:
        utf8_copy = Path(tmp) / "lines.csv"
        step("transcode", 0.0)
        sha, size, header, trailer = _transcode(path, encoding, utf8_copy)
        step("transcode", 1.0)
        if header != HEADER:
            raise _bad(
                N_("Line 1 must be the header {expected}; found {found}."),
                expected=HEADER,
                found=header[:300],
            )
        match = TRAILER.match(trailer)
        if not match:
            raise _bad(
                N_("The last line must be the trailer #TOTAL,<lines>,<amount>; found {found}."),
                found=trailer[:100],
            )
        trailer_count = int(match.group(1))
        trailer_amount = parse_yuan(match.group(2))
        step("parse", 0.0)
        day, acquirer, totals = _check(utf8_copy, name)
        step("parse", 0.5)
        lines = _compact(utf8_copy)
        step("parse", 1.0)
    count = int(totals["count"])
    success_amount = int(totals["success_amount"] or 0)
    if trailer_count != count or trailer_amount != success_amount:
        raise _bad(
            N_(
                "The trailer says {t_lines} lines and {t_amount} yuan of SUCCESS lines; the file "
                "has {lines} lines and {amount} yuan. The file is refused whole."
            ),
            t_lines=trailer_count,
            t_amount=yuan_text(trailer_amount),
            lines=count,
            amount=yuan_text(success_amount),
        )
    return ParsedFile(
        filename=name,
        sha256=sha,
        encoding=encoding,
        size=size,
        business_date=day,
        acquirer=acquirer,
        lines=lines,
        count=count,
        success_count=int(totals["success_count"] or 0),
        success_amount=success_amount,
        bank_fee_total=int(totals["fee_total"] or 0),
    )


def _scan(utf8_copy: Path) -> pl.LazyFrame:
    return pl.scan_csv(
        utf8_copy,
        has_header=True,
        schema=dict.fromkeys(COLUMNS, pl.String),
        quote_char='"',
        row_index_name="line",
        row_index_offset=2,
        empty_string_is_null=True,
    )


def _collect(frame: pl.LazyFrame, utf8_copy: Path, *, streaming: bool = False) -> pl.DataFrame:
    try:
        return frame.collect(engine="streaming" if streaming else "auto")
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError):
        raise _first_bad_shape(utf8_copy) or _bad(
            N_("The file could not be read as comma-separated text.")
        ) from None


def _fen(column: str) -> pl.Expr:
    return pl.col(column).str.replace(".", "", literal=True).cast(pl.Int64, strict=False)


def _check(utf8_copy: Path, name: str) -> tuple[date, str, dict[str, Any]]:
    """Every check in one streaming pass; the earliest bad line is reported."""
    head = _collect(_scan(utf8_copy).head(1), utf8_copy)
    if head.height == 0:
        raise _bad(N_("The file has no detail lines."))
    settle = head.item(0, "settle_date") or ""
    try:
        if not re.fullmatch(r"\d{8}", settle):
            raise ValueError(settle)
        day = date(int(settle[:4]), int(settle[4:6]), int(settle[6:]))
    except ValueError:
        raise _bad(
            N_("Line {line}, column {column}: expected a date YYYYMMDD, found '{value}'."),
            line=2,
            column="settle_date",
            value=settle[:40],
        ) from None
    acquirer = ""
    name_match = FILENAME.match(name)
    if name_match:
        acquirer = name_match.group(1)
        if name_match.group(2) != settle:
            raise _bad(
                N_("The file name says business day {name_day} but its lines say {line_day}."),
                name_day=name_match.group(2),
                line_day=settle,
            )
    earliest = (day - timedelta(days=WINDOW_DAYS)).strftime("%Y%m%d")
    checks: list[pl.Expr] = []
    for column, (pattern, _message) in RULES.items():
        value = pl.col(column)
        if column in _REQUIRED:
            bad = value.is_null() | ~value.str.contains(pattern)
        else:
            bad = value.is_not_null() & ~value.str.contains(pattern)
        checks.append(pl.col("line").filter(bad).min().alias(column))
    txn_day = pl.col("txn_time").str.slice(0, 8)
    stamp = pl.col("txn_time").str.strptime(pl.Datetime, "%Y%m%d%H%M%S", strict=False)
    checks += [
        pl.col("line").filter(pl.col("settle_date") != settle).min().alias("_other_day"),
        pl.col("line")
        .filter(
            pl.col("txn_time").is_not_null()
            & (stamp.is_null() | (txn_day > settle) | (txn_day < earliest))
        )
        .min()
        .alias("_window"),
        pl.col("line").filter(_fen("amount") <= 0).min().alias("_not_positive"),
        pl.len().alias("count"),
        (pl.col("status") == "SUCCESS").sum().alias("success_count"),
        _fen("amount").filter(pl.col("status") == "SUCCESS").sum().alias("success_amount"),
        _fen("bank_fee").filter(pl.col("status") == "SUCCESS").sum().alias("fee_total"),
    ]
    totals = _collect(_scan(utf8_copy).select(checks), utf8_copy, streaming=True).row(0, named=True)
    found = [(totals[c], c) for c in (*RULES, "_other_day", "_window", "_not_positive")]
    found = [(line, column) for line, column in found if line is not None]
    if not found:
        return day, acquirer, totals
    order = [*COLUMNS, "_other_day", "_window", "_not_positive"]
    line, check = min(found, key=lambda item: (item[0], order.index(item[1])))
    column = {"_other_day": "settle_date", "_window": "txn_time", "_not_positive": "amount"}.get(
        check, check
    )
    bad_row = _collect(
        _scan(utf8_copy).filter(pl.col("line") == line).select(sorted({column, "status"})),
        utf8_copy,
    )
    if bad_row.item(0, "status") is None:
        # a short line is padded with empty columns by the CSV reader: say what it is
        shape = _first_bad_shape(utf8_copy, until=line)
        if shape is not None:
            raise shape
    found_value = str(bad_row.item(0, column) or "")[:40]
    if check == "_other_day":
        raise _bad(
            N_(
                "Line {line}, column {column}: every line must have the business day {day}, "
                "found {value}."
            ),
            line=line,
            column=column,
            day=settle,
            value=found_value,
        )
    if check == "_window":
        raise _bad(
            N_(
                "Line {line}, column {column}: {value} is not a time between {earliest} and the "
                "end of the business day {day}."
            ),
            line=line,
            column=column,
            value=found_value,
            earliest=earliest,
            day=settle,
        )
    if check == "_not_positive":
        raise _bad(
            N_("Line {line}, column {column}: an amount is always positive."),
            line=line,
            column=column,
        )
    raise _bad(RULES[column][1], line=line, column=column, value=found_value)


def _compact(utf8_copy: Path) -> pl.DataFrame:
    """The columns matching and the cases need, typed and small."""
    return _collect(
        _scan(utf8_copy).select(
            pl.col("line").cast(pl.Int64),
            "tid",
            pl.col("stan").cast(pl.Int32),
            pl.col("rrn").cast(pl.Int64),
            pl.col("txn_time").str.slice(0, 8).cast(pl.Int32).alias("date"),
            _fen("amount").alias("amount"),
            (pl.col("status") == "SUCCESS").alias("ok"),
            pl.col("txn_type").cast(TXN_TYPE),
            pl.col("mid").cast(pl.Categorical),
        ),
        utf8_copy,
    )


def write_clearing_file(
    frame: pl.DataFrame, path: Path | str, *, encoding: str = "gbk", workdir: str | None = None
) -> tuple[int, int]:
    """Write detail lines (the :data:`COLUMNS`, amounts in fen as ``amount``/``bank_fee``
    integers) as the bank would: header, lines, trailer; GBK unless told otherwise.

    Returns (detail lines, sum of SUCCESS amounts in fen).
    """
    path = Path(path)
    out = frame.select(
        [
            (
                pl.format(
                    "{}.{}",
                    pl.col(c) // 100,
                    (pl.col(c) % 100).cast(pl.String).str.zfill(2),
                ).alias(c)
                if c in ("amount", "bank_fee")
                else pl.col(c)
            )
            for c in COLUMNS
        ]
    )
    count = frame.height
    total = int(frame.filter(pl.col("status") == "SUCCESS")["amount"].sum() or 0)
    with tempfile.NamedTemporaryFile(
        "wb", suffix=".csv", delete=False, dir=workdir or path.parent
    ) as tmp:
        tmp_path = Path(tmp.name)
    try:
        out.write_csv(tmp_path, include_header=True, quote_style="necessary", line_terminator="\n")
        with tmp_path.open("rb") as src, path.open("wb") as dst:
            decoder = codecs.getincrementaldecoder("utf-8")("strict")
            while True:
                chunk = src.read(CHUNK)
                text = decoder.decode(chunk, final=not chunk)
                dst.write(text.encode(encoding, errors="replace"))
                if not chunk:
                    break
            dst.write(f"#TOTAL,{count},{yuan_text(total)}\n".encode(encoding))
    finally:
        tmp_path.unlink(missing_ok=True)
    return count, total
