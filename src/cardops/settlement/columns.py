"""Journal rows as columns without a Python object per row, shared by settlement and
reconciliation.

SQLite: the database formats each row with ``printf`` and concatenates a slice of ids into one
text blob (``group_concat``), fields separated by ``\\x1f`` and rows by newlines; Polars parses
the blob. PostgreSQL streams the same layout with ``COPY … (FORMAT text, DELIMITER E'\\x1f')``.
"""

from __future__ import annotations

from typing import Any

import polars as pl

SLICE = 1_000_000  # journal ids per blob
# name -> (SQL expression, printf conversion on SQLite, Polars dtype)
Columns = dict[str, tuple[str, str, Any]]


def schema_of(columns: Columns) -> dict[str, Any]:
    return {name: dtype for name, (_, _, dtype) in columns.items()}


def blob_sql(columns: Columns, where: str, exprs: list[str] | None = None) -> str:
    """SQLite: the rows of ``gateway_journal`` matching ``where`` (with its ``?`` parameters,
    normally an id range) as one text blob; ``exprs`` overrides the columns' SQL."""
    pattern = "\x1f".join(conv for _, conv, _ in columns.values())
    select = ", ".join(exprs if exprs is not None else [sql for sql, _, _ in columns.values()])
    return (
        f"SELECT CAST(group_concat(printf('{pattern}', {select}), char(10)) AS BLOB) "
        f"FROM gateway_journal WHERE {where}"
    )


def read(blob: bytes, schema: dict[str, Any]) -> pl.DataFrame:
    """A blob (or a PostgreSQL text COPY) of ``\\x1f``-separated rows as a typed frame."""
    return pl.read_csv(
        blob,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        schema=schema,
        empty_string_is_null=False,
    )
