"""Export the whole books as a beancount file (``cardops ledger export --format beancount``).

Accounts become ``<Type>:<Cxxxx>`` (a sub-ledger nests under its parent:
``Liabilities:C2203:C2203-merchant-12``): beancount wants each component to start with a
capital letter or digit and contain only letters, digits and dashes, so an account code's
other characters become dashes and a ``C`` is put in front. Every account is opened on
1970-01-01; every posting becomes a transaction dated with its business date, with the posting
number as metadata. Amounts are fen written as yuan with two decimals.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.ledger.models import Account, Posting, PostingLine

ROOTS = {
    "asset": "Assets",
    "liability": "Liabilities",
    "equity": "Equity",
    "income": "Income",
    "expense": "Expenses",
}
_BAD = re.compile(r"[^A-Za-z0-9-]")


def component(code: str) -> str:
    return "C" + _BAD.sub("-", code)


def account_name(account: Account, by_id: dict[int, Account]) -> str:
    parts = [component(account.code)]
    parent = by_id.get(account.parent_id) if account.parent_id else None
    if parent is not None:
        parts.insert(0, component(parent.code))
    return ":".join([ROOTS[account.type], *parts])


def _number(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    return f"{sign}{units}.{cents:02d}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def export_lines(session: Session) -> Iterator[str]:
    accounts = {a.id: a for a in session.execute(select(Account)).scalars()}
    names = {aid: account_name(a, accounts) for aid, a in accounts.items()}
    currencies = sorted({a.currency for a in accounts.values()})
    yield "; cardops ledger export"
    yield f'option "operating_currency" "{currencies[0] if currencies else "CNY"}"'
    yield ""
    for aid in sorted(accounts, key=lambda i: names[i]):
        yield f"1970-01-01 open {names[aid]} {accounts[aid].currency}"
    yield ""
    postings = session.execute(
        select(Posting.id, Posting.number, Posting.business_date, Posting.description).order_by(
            Posting.business_date, Posting.id
        )
    ).all()
    batch = 2000
    for start in range(0, len(postings), batch):
        chunk = postings[start : start + batch]
        lines: dict[int, list[tuple[int, int, str]]] = {}
        for posting_id, account_id, amount, currency in session.execute(
            select(
                PostingLine.posting_id,
                PostingLine.account_id,
                PostingLine.amount,
                PostingLine.currency,
            )
            .where(PostingLine.posting_id.in_([p.id for p in chunk]))
            .order_by(PostingLine.id)
        ):
            lines.setdefault(posting_id, []).append((account_id, amount, currency))
        for posting_id, number, day, description in chunk:
            yield f"{day.isoformat()} * {_quote(description)}"
            yield f"  number: {_quote(number)}"
            for account_id, amount, currency in lines.get(posting_id, []):
                yield f"  {names[account_id]}  {_number(amount)} {currency}"
            yield ""


def export_text(session: Session) -> str:
    return "\n".join(export_lines(session)) + "\n"
