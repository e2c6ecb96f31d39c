from __future__ import annotations

import pytest

from cardops.access import wiegand
from cardops.core.errors import ValidationFailed


def test_26_bit_frame_round_trip_and_known_value() -> None:
    frame = wiegand.encode_frame(1, 1, 26)
    # facility 1, card 1: even parity over 00000001 0000 (one 1 → parity 1), odd over rest
    assert frame == "1" + "00000001" + "0000000000000001" + "0"
    card = wiegand.parse_frame(frame)
    assert (card.format, card.facility, card.number) == (26, 1, 1)
    for facility, number in ((0, 0), (255, 65535), (12, 34567), (128, 4096)):
        parsed = wiegand.parse_frame(wiegand.encode_frame(facility, number, 26))
        assert (parsed.facility, parsed.number) == (facility, number)


def test_34_bit_frame_round_trip() -> None:
    for facility, number in ((0, 0), (65535, 65535), (1234, 54321)):
        frame = wiegand.encode_frame(facility, number, 34)
        assert len(frame) == 34
        parsed = wiegand.parse_frame(frame)
        assert (parsed.format, parsed.facility, parsed.number) == (34, facility, number)


@pytest.mark.parametrize("size", [26, 34])
def test_every_single_bit_error_is_caught_by_parity(size: int) -> None:
    frame = wiegand.encode_frame(77, 4321, size)
    for i in range(size):
        flipped = frame[:i] + ("0" if frame[i] == "1" else "1") + frame[i + 1 :]
        with pytest.raises(ValidationFailed):
            wiegand.parse_frame(flipped)


def test_bad_frames_and_pairs() -> None:
    with pytest.raises(ValidationFailed):
        wiegand.parse_frame("1010")  # wrong length
    with pytest.raises(ValidationFailed):
        wiegand.encode_frame(256, 1, 26)  # facility out of range for 26 bits
    with pytest.raises(ValidationFailed):
        wiegand.encode_frame(1, 70000, 34)
    assert wiegand.parse("12:34567") == wiegand.WiegandCard(None, 12, 34567)
    assert wiegand.parse(" 12 : 34567 ") == wiegand.WiegandCard(None, 12, 34567)
    assert wiegand.parse("04:A1:B2") is None  # a UID, not facility:number
    assert wiegand.parse("C000001") is None
    assert wiegand.parse(wiegand.encode_frame(3, 9, 26)) == wiegand.WiegandCard(26, 3, 9)
