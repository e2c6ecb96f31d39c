"""Amounts in Chinese capital numerals (大写金额) on receipts."""

from __future__ import annotations

import pytest

from cardops.ledger.numerals import amount_in_words


@pytest.mark.parametrize(
    ("fen", "words"),
    [
        (0, "零元整"),
        (5, "伍分"),
        (50, "伍角整"),
        (55, "伍角伍分"),
        (100, "壹元整"),
        (105, "壹元零伍分"),
        (1000, "壹拾元整"),
        (2000, "贰拾元整"),
        (12000, "壹佰贰拾元整"),
        (100530, "壹仟零伍元叁角整"),
        (168032, "壹仟陆佰捌拾元叁角贰分"),
        (101000, "壹仟零壹拾元整"),
        (10000100, "壹拾万零壹元整"),
        (1000010000, "壹仟万零壹佰元整"),
        (10000000000, "壹亿元整"),
        (10001000000, "壹亿零壹万元整"),
        (11000000000, "壹亿壹仟万元整"),
        (1234567890123, "壹佰贰拾叁亿肆仟伍佰陆拾柒万捌仟玖佰零壹元贰角叁分"),
        (-12000, "负壹佰贰拾元整"),
    ],
)
def test_amount_in_words(fen: int, words: str) -> None:
    assert amount_in_words(fen) == words
