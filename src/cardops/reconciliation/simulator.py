"""The bank simulator: write a day's journal as the acquiring bank's clearing file.

``cardops journal export DATE --clearing-file PATH`` uses it for tests and user acceptance:
the file it writes reconciles to zero differences, and a tester edits it to plant some.
The bank's fee is a simple configured rate (``CARDOPS_BANK_FEE_RATE``, a decimal fraction,
default ``0.0025`` = 0.25 %), rounded half up to the fen per SUCCESS line; FAILED lines carry
no fee.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.auth.service import require
from cardops.core.config import get_settings
from cardops.core.errors import ValidationFailed
from cardops.merchants.models import Merchant
from cardops.reconciliation.clearing import COLUMNS, write_clearing_file
from cardops.reconciliation.journal import load_day
from cardops.reconciliation.permissions import RECON_VIEW

_RATE = re.compile(r"^0?\.(\d{1,6})$|^0$")


def parse_rate(text: str, *, field: str = "bank_rate") -> int:
    """A fee rate as a decimal fraction ('0.0025') into parts per million (2500), exactly."""
    match = _RATE.match(text.strip())
    if not match:
        raise ValidationFailed(
            "A bank fee rate is a fraction below 1 with at most six decimals, e.g. 0.0025.",
            field=field,
        )
    return int((match.group(1) or "0").ljust(6, "0"))


def bank_rate_ppm() -> int:
    return parse_rate(get_settings().bank_fee_rate)


def clearing_frame(session: Session, day: date, *, rate_ppm: int) -> pl.DataFrame:
    """The lines the bank would send for ``day`` (amounts in fen), in the file's columns."""
    ours = load_day(session, day, export=True)
    names = dict(
        session.execute(select(Merchant.id, Merchant.name).where(Merchant.mid.is_not(None))).all()
    )
    merchants = pl.DataFrame(
        {"merchant_id": list(names), "merchant_name": list(names.values())},
        schema={"merchant_id": pl.Int64, "merchant_name": pl.String},
    )
    zone = get_settings().timezone
    settle = day.strftime("%Y%m%d")
    clock = (
        pl.col("created_at")
        .str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%d %H:%M:%S", strict=False)
        .dt.convert_time_zone(zone)
        .dt.strftime("%H%M%S")
    )
    frame = (
        ours.filter(
            pl.col("rrn").is_not_null()
            & (pl.col("mid").str.len_chars() == 15)
            & (pl.col("tid").str.len_chars() == 8)
            & pl.col("stan").is_not_null()
            & (pl.col("pan_masked").str.len_chars() >= 10)
            & (pl.col("amount") > 0)
        )
        .join(merchants, on="merchant_id", how="left")
        .sort("id")
        .select(
            pl.lit(settle).alias("settle_date"),
            (pl.col("date").cast(pl.String) + clock.fill_null("000000")).alias("txn_time"),
            "mid",
            pl.col("merchant_name").fill_null("").str.slice(0, 128),
            "tid",
            pl.col("stan").cast(pl.String).str.zfill(6),
            pl.col("rrn").cast(pl.String).str.zfill(12),
            pl.col("auth_code").fill_null(""),
            (
                pl.col("pan_masked").str.slice(0, 6)
                + pl.lit("****")
                + pl.col("pan_masked").str.slice(-4, 4)
            ).alias("card"),
            pl.when(pl.col("card_type") == "credit")
            .then(pl.lit("CREDIT"))
            .otherwise(pl.lit("DEBIT"))
            .alias("card_type"),
            pl.col("txn_type").cast(pl.String),
            "amount",
            pl.when(pl.col("ok"))
            .then((pl.col("amount") * rate_ppm + 500_000) // 1_000_000)
            .otherwise(0)
            .alias("bank_fee"),
            pl.when(pl.col("ok"))
            .then(pl.lit("SUCCESS"))
            .otherwise(pl.lit("FAILED"))
            .alias("status"),
        )
    )
    return frame.select(COLUMNS)


def export_day(
    *,
    session: Session,
    actor: User,
    business_date: date,
    path: Path | str,
    rate_ppm: int | None = None,
    encoding: str = "gbk",
) -> tuple[int, int]:
    """Write ``business_date``'s clearing file at ``path``; returns (lines, SUCCESS fen)."""
    require(actor, RECON_VIEW)
    frame = clearing_frame(
        session, business_date, rate_ppm=bank_rate_ppm() if rate_ppm is None else rate_ppm
    )
    return write_clearing_file(frame, path, encoding=encoding)
