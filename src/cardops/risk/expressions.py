"""Rule expressions: CEL (package ``common-expression-language``) over a declared field list.

A rule reads ``txn.amount``, ``card.count_10m``, ``merchant.usual_amount`` … The expression is
parsed by CEL (syntax errors keep CEL's line and column), then every name is checked against
:data:`FIELDS` (an unknown field is refused with its position), then the dotted names are
rewritten to flat variables (``card.count_10m`` → ``card__count_10m``: a flat context is
four times cheaper to build than nested maps) and compiled once per rule version. A trial run
against typical values of the declared types refuses expressions that do not type-check or do
not give true/false.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cel

from cardops.core.errors import ValidationFailed
from cardops.core.i18n import N_

WINDOWS = ("10m", "1h", "24h")
WINDOW_SECONDS = {"10m": 600, "1h": 3600, "24h": 86400}
METRICS = ("count", "sum", "declines", "pin_failures", "stoplisted")

_METRIC_HELP = {
    "count": N_("requests in the last {window}"),
    "sum": N_("approved amount (fen) in the last {window}"),
    "declines": N_("declined requests in the last {window}"),
    "pin_failures": N_("wrong-PIN answers (55, 75) in the last {window}"),
    "stoplisted": N_("stop-listed card attempts in the last {window}"),
}


@dataclass(frozen=True)
class FieldSpec:
    name: str  # "card.count_10m"
    type: str  # int | double | string | bool
    help: str
    nullable: bool = False

    @property
    def var(self) -> str:
        return self.name.replace(".", "__")


def _fields() -> dict[str, FieldSpec]:
    out: list[FieldSpec] = [
        FieldSpec("txn.amount", "int", N_("amount in fen")),
        FieldSpec("txn.kind", "string", N_("purchase, preauth, completion, refund or balance")),
        FieldSpec("txn.card_type", "string", N_("debit or credit")),
        FieldSpec("txn.onus", "bool", N_("the card is one of our own one-card cards")),
        FieldSpec("txn.hour", "int", N_("hour of day in the merchant's local time (0–23)")),
        FieldSpec("txn.weekday", "int", N_("day of week in local time, 1 = Monday … 7 = Sunday")),
        FieldSpec(
            "txn.amount_ratio",
            "double",
            N_("amount divided by the merchant's usual amount (null without history)"),
            nullable=True,
        ),
        FieldSpec(
            "txn.first_at_merchant",
            "bool",
            N_("first time this card is used at this merchant"),
        ),
        FieldSpec("terminal.tid", "string", N_("terminal ID")),
        FieldSpec("merchant.id", "int", N_("merchant number in cardops")),
        FieldSpec("merchant.mid", "string", N_("merchant ID (MID)")),
        FieldSpec("merchant.rating", "string", N_("rating A–D, empty when not rated")),
        FieldSpec(
            "merchant.usual_amount",
            "int",
            N_("the merchant's average approved amount (fen; null without history)"),
            nullable=True,
        ),
        FieldSpec("merchant.day_total", "int", N_("approved amount today (fen)")),
        FieldSpec("merchant.month_total", "int", N_("approved amount this month (fen)")),
    ]
    for dim in ("card", "terminal", "merchant"):
        for metric in METRICS:
            if dim == "card" and metric == "stoplisted":
                continue
            for window in WINDOWS:
                out.append(FieldSpec(f"{dim}.{metric}_{window}", "int", _METRIC_HELP[metric]))
    return {f.name: f for f in out}


FIELDS: dict[str, FieldSpec] = _fields()
NAMESPACES = ("txn", "card", "terminal", "merchant")
_SAMPLE = {"int": 1, "double": 1.5, "string": "x", "bool": True}
_COMPREHENSIONS = ("all", "exists", "exists_one", "map", "filter")
_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<string>[rR]?[bB]?("{3}[\s\S]*?"{3}|'{3}[\s\S]*?'{3}|"(\\.|[^"\\\n])*"|'(\\.|[^'\\\n])*'))
    |(?P<number>0[xX][0-9a-fA-F]+[uU]?|\d+\.\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+[uU]?)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<punct>\S)""",
    re.VERBOSE,
)
_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+): (?:Syntax error: )?([^\n]*)")


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _parse_error(expression: str, exc: Exception) -> ValidationFailed:
    found = _CEL_POSITION.search(str(exc))
    if found is None:
        return ValidationFailed(
            "The expression does not parse: {reason}", field="expression", reason=str(exc)[:200]
        )
    return ValidationFailed(
        "The expression does not parse at line {line}, column {column}: {reason}",
        field="expression",
        line=int(found.group(1)),
        column=int(found.group(2)),
        reason=found.group(3)[:200],
    )


def _unknown(expression: str, offset: int, name: str) -> ValidationFailed:
    line, column = _position(expression, offset)
    return ValidationFailed(
        "Unknown field {name} at line {line}, column {column}: use one of the declared fields.",
        field="expression",
        name=name,
        line=line,
        column=column,
    )


def rewrite(expression: str) -> tuple[str, list[str]]:
    """Check every name against :data:`FIELDS`; return the flat CEL text and the fields used.
    Raises :class:`ValidationFailed` with the position of the first unknown name."""
    tokens = [
        (m.lastgroup or "", m.group(), m.start())
        for m in _TOKEN.finditer(expression)
        if m.lastgroup != "space"
    ]
    bound: set[str] = set()
    for i, (kind, text, _) in enumerate(tokens):
        # x.exists(v, …): v is a variable bound by the macro
        if (
            kind == "ident"
            and text in _COMPREHENSIONS
            and i > 0
            and tokens[i - 1][1] == "."
            and i + 3 < len(tokens)
            and tokens[i + 1][1] == "("
            and tokens[i + 2][0] == "ident"
            and tokens[i + 3][1] == ","
        ):
            bound.add(tokens[i + 2][1])
    out: list[str] = []
    used: list[str] = []
    last = 0
    i = 0
    while i < len(tokens):
        kind, text, start = tokens[i]
        prev = tokens[i - 1][1] if i > 0 else ""
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind != "ident" or prev == "." or nxt == "(":
            i += 1
            continue
        if text in ("true", "false", "null", "in") or text in bound:
            i += 1
            continue
        if text not in NAMESPACES:
            raise _unknown(expression, start, text)
        if nxt != "." or i + 2 >= len(tokens) or tokens[i + 2][0] != "ident":
            raise _unknown(expression, start, text)
        name = f"{text}.{tokens[i + 2][1]}"
        spec = FIELDS.get(name)
        if spec is None:
            raise _unknown(expression, start, name)
        end = tokens[i + 2][2] + len(tokens[i + 2][1])
        replacement = spec.var
        # has(ns.field) → a null test (every declared variable is always bound)
        if (
            i >= 2
            and tokens[i - 1][1] == "("
            and tokens[i - 2][1] == "has"
            and i + 3 < len(tokens)
            and tokens[i + 3][1] == ")"
        ):
            has_start = tokens[i - 2][2]
            out.append(expression[last:has_start])
            out.append(f"({spec.var} != null)")
            last = tokens[i + 3][2] + 1
            used.append(name)
            i += 4
            continue
        out.append(expression[last:start])
        out.append(replacement)
        last = end
        used.append(name)
        i += 3
    out.append(expression[last:])
    return "".join(out), sorted(set(used))


def sample_context() -> dict[str, Any]:
    return {spec.var: _SAMPLE[spec.type] for spec in FIELDS.values()}


@dataclass
class Compiled:
    source: str
    flat: str
    fields: list[str]
    program: Any


def compile_rule(expression: str) -> Compiled:
    """Validate and compile; :class:`ValidationFailed` (field ``expression``) when it is not
    a true/false condition over the declared fields."""
    text = (expression or "").strip()
    if not text:
        raise ValidationFailed("Write the rule's condition.", field="expression")
    if len(text) > 4000:
        raise ValidationFailed("At most {n} characters.", field="expression", n=4000)
    try:
        cel.compile(text)
    except Exception as exc:  # CEL says where it stopped
        raise _parse_error(text, exc) from None
    flat, used = rewrite(text)
    try:
        program = cel.compile(flat)
    except Exception as exc:  # pragma: no cover - the original parsed
        raise _parse_error(text, exc) from None
    try:
        result = program.execute(cel.Context(sample_context()))
    except Exception as exc:
        raise ValidationFailed(
            "The expression does not type-check against the declared fields: {reason}",
            field="expression",
            reason=str(exc).split(". ")[0][:200],
        ) from None
    if not isinstance(result, bool):
        raise ValidationFailed(
            "The expression must give true or false; it gives a {type}.",
            field="expression",
            type=type(result).__name__,
        )
    return Compiled(source=text, flat=flat, fields=used, program=program)
