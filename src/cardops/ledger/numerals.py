"""Amounts in Chinese capital numerals (大写金额), as written on receipts and cheques.

Follows the usual rules of the People's Bank of China's payment regulations: financial digits
壹贰叁…, units 拾佰仟万亿, one 零 for any run of zeros inside the number, 元 then 角 and 分,
and 整 when there are no 分 (``120.00`` → 壹佰贰拾元整, ``1005.30`` → 壹仟零伍元叁角整,
``1.05`` → 壹元零伍分, ``0.05`` → 伍分).
"""

from __future__ import annotations

DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ("", "拾", "佰", "仟")


def _below_10000(n: int) -> str:
    """0 < n < 10000, without leading 零."""
    out: list[str] = []
    zero_pending = False
    for power in (3, 2, 1, 0):
        digit = (n // 10**power) % 10
        if digit == 0:
            zero_pending = bool(out)
            continue
        if zero_pending:
            out.append("零")
            zero_pending = False
        out.append(DIGITS[digit] + _UNITS[power])
    return "".join(out)


def integer_words(n: int) -> str:
    """A whole number of yuan (n > 0) in capital numerals: 100010000 → 壹亿零壹万."""
    if n >= 10**8:
        high, low = divmod(n, 10**8)
        text = integer_words(high) + "亿"
        if low:
            text += ("零" if low < 10**7 else "") + integer_words(low)
        return text
    if n >= 10**4:
        high, low = divmod(n, 10**4)
        text = _below_10000(high) + "万"
        if low:
            text += ("零" if low < 1000 else "") + _below_10000(low)
        return text
    return _below_10000(n)


def amount_in_words(minor: int) -> str:
    """Fen to 大写金额: 12000 → 壹佰贰拾元整, 5 → 伍分, 0 → 零元整, -100 → 负壹元整."""
    if minor < 0:
        return "负" + amount_in_words(-minor)
    if minor == 0:
        return "零元整"
    yuan, cents = divmod(minor, 100)
    jiao, fen = divmod(cents, 10)
    text = integer_words(yuan) + "元" if yuan else ""
    if jiao:
        text += DIGITS[jiao] + "角"
    elif fen and yuan:
        text += "零"
    if fen:
        text += DIGITS[fen] + "分"
    else:
        text += "整"
    return text
