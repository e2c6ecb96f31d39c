"""Rule conditions: CEL checked against the declared fields, with the error's position."""

from __future__ import annotations

import cel
import pytest

from cardops.core.errors import ValidationFailed
from cardops.risk.expressions import compile_rule, sample_context


def _refused(expression: str) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        compile_rule(expression)
    assert caught.value.field == "expression"
    return caught.value


def test_a_syntax_error_names_line_and_column() -> None:
    exc = _refused("card.count_10m >= 3 &&\n  txn.amount >")
    assert exc.params["line"] == 2 and exc.params["column"] == 15
    assert "line 2, column 15" in str(exc)


def test_an_unknown_field_is_refused_where_it_stands() -> None:
    exc = _refused("card.count_10m >= 3 && txn.amont > 5")
    assert exc.params["name"] == "txn.amont"
    assert (exc.params["line"], exc.params["column"]) == (1, 24)
    assert _refused("x > 1").params["name"] == "x"
    assert _refused("card > 1").params["name"] == "card"


def test_a_condition_must_be_true_or_false_and_type_check() -> None:
    assert "gives a int" in str(_refused("txn.amount + 1"))
    assert "type-check" in str(_refused('txn.amount > "big"'))
    _refused("")


def test_fields_are_rewritten_to_flat_variables() -> None:
    compiled = compile_rule(
        'has(txn.amount_ratio) && txn.amount_ratio >= 5.0 && merchant.rating in ["C", "D"]'
    )
    assert compiled.fields == ["merchant.rating", "txn.amount_ratio"]
    context = sample_context()
    context.update(txn__amount_ratio=None, merchant__rating="D")
    # a null ratio: has() is false, the rule does not hold (and does not fail)
    assert compiled.program.execute(cel.Context(context)) is False
    context["txn__amount_ratio"] = 6.0
    assert compiled.program.execute(cel.Context(context)) is True


def test_macros_bind_their_own_variables() -> None:
    compiled = compile_rule("[1000, 2000].exists(x, txn.amount == x)")
    assert compiled.fields == ["txn.amount"]
