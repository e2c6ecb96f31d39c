"""Wiegand card numbers: 26-bit (H10301) and 34-bit frames with their parity bits.

A reader sends the card as a frame of bits. 26-bit: even parity bit, 8-bit facility code,
16-bit card number, odd parity bit; the even bit covers the first 12 data bits, the odd bit
the last 12. 34-bit: even parity bit, 16-bit facility, 16-bit card number, odd parity bit;
each parity bit covers 16 data bits. Controllers may also send ``"FFF:NNNNN"``
(facility:number in decimal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cardops.core.errors import ValidationFailed

# format -> (facility bits, number bits)
FORMATS: dict[int, tuple[int, int]] = {26: (8, 16), 34: (16, 16)}
_PAIR = re.compile(r"^\s*(\d{1,5})\s*:\s*(\d{1,10})\s*$")
_FRAME = re.compile(r"^[01]{26}$|^[01]{34}$")


@dataclass(frozen=True, slots=True)
class WiegandCard:
    format: int | None  # 26, 34, or None when given as facility:number
    facility: int
    number: int

    @property
    def key(self) -> int:
        """One integer for lookups: facility and number together."""
        return key_of(self.facility, self.number)

    def __str__(self) -> str:
        return f"{self.facility}:{self.number}"


def key_of(facility: int, number: int) -> int:
    return (facility << 32) | number


def _ones(bits: str) -> int:
    return bits.count("1")


def is_frame(text: str) -> bool:
    return bool(_FRAME.match(text))


def parse_frame(bits: str) -> WiegandCard:
    """Decode a 26- or 34-bit frame given as a string of 0 and 1; the parity must be right."""
    bits = bits.strip()
    if not is_frame(bits):
        raise ValidationFailed("A Wiegand frame is 26 or 34 characters of 0 and 1.", field="card")
    size = len(bits)
    facility_bits, number_bits = FORMATS[size]
    half = (size - 2) // 2
    data = bits[1:-1]
    even_ok = (_ones(bits[0]) + _ones(data[:half])) % 2 == 0
    odd_ok = (_ones(data[half:]) + _ones(bits[-1])) % 2 == 1
    if not (even_ok and odd_ok):
        raise ValidationFailed("The Wiegand frame has a parity error.", field="card")
    facility = int(data[:facility_bits], 2)
    number = int(data[facility_bits : facility_bits + number_bits], 2)
    return WiegandCard(size, facility, number)


def encode_frame(facility: int, number: int, size: int = 26) -> str:
    """The frame a reader would send for ``facility`` and ``number``."""
    if size not in FORMATS:
        raise ValidationFailed("A Wiegand format is 26 or 34 bits.", field="wiegand_format")
    facility_bits, number_bits = FORMATS[size]
    check_range(facility, number, size)
    data = f"{facility:0{facility_bits}b}{number:0{number_bits}b}"
    half = len(data) // 2
    even = "1" if _ones(data[:half]) % 2 else "0"
    odd = "0" if _ones(data[half:]) % 2 else "1"
    return even + data + odd


def check_range(facility: int, number: int, size: int) -> None:
    facility_bits, number_bits = FORMATS[size]
    if not 0 <= facility < (1 << facility_bits):
        raise ValidationFailed(
            "The facility code must be between 0 and {n}.",
            field="wiegand_facility",
            n=(1 << facility_bits) - 1,
        )
    if not 0 <= number < (1 << number_bits):
        raise ValidationFailed(
            "The Wiegand card number must be between 0 and {n}.",
            field="wiegand_number",
            n=(1 << number_bits) - 1,
        )


def parse_pair(text: str) -> WiegandCard | None:
    """``"FFF:NNNNN"`` (facility:number in decimal), or None when the text is not that."""
    match = _PAIR.match(text)
    if match is None:
        return None
    return WiegandCard(None, int(match.group(1)), int(match.group(2)))


def parse(text: str) -> WiegandCard | None:
    """A frame or a facility:number pair; None when ``text`` is neither (a bad frame raises)."""
    text = text.strip()
    if is_frame(text):
        return parse_frame(text)
    return parse_pair(text)
