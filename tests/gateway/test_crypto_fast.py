"""The gateway's MAC and PIN-block code (cipher contexts kept per key and thread, format 0
decoded by hand) gives exactly psec's results, errors included."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psec import des as psec_des
from psec import mac as psec_mac
from psec import pinblock as psec_pinblock

from cardops.gateway import crypto

KEYS = st.binary(min_size=16, max_size=16)
HEX = "0123456789ABCDEF"
PINS = st.text(alphabet="0123456789", min_size=4, max_size=12)
PANS = st.text(alphabet="0123456789", min_size=13, max_size=19)


def psec_mac_of(tak: bytes, data: bytes) -> str:
    return psec_mac.generate_retail_mac(tak[:8], tak[8:], data, padding=1).hex().upper()


def psec_decrypt_pin(tpk: bytes, block_hex: str, pan: str) -> str | None:
    """The gateway's old ``decrypt_pin``: psec end to end, None on psec's ValueError."""
    try:
        clear = psec_des.decrypt_tdes_ecb(tpk, bytes.fromhex(block_hex))
        return psec_pinblock.decode_pinblock_iso_0(clear, pan)
    except ValueError:
        return None


def psec_encrypt_pin(tpk: bytes, pin: str, pan: str) -> str:
    clear = psec_pinblock.encode_pinblock_iso_0(pin, pan)
    return psec_des.encrypt_tdes_ecb(tpk, clear).hex().upper()


@settings(derandomize=True, max_examples=150, deadline=None)
@given(
    keys=st.lists(KEYS, min_size=1, max_size=4, unique=True),
    calls=st.lists(st.tuples(st.integers(0, 3), st.binary(max_size=300)), max_size=12),
)
def test_retail_mac_interleaved_keys_equal_psec(
    keys: list[bytes], calls: list[tuple[int, bytes]]
) -> None:
    # the same keys again and again, in any order: each context restarts its chain per call
    for which, data in calls:
        key = keys[which % len(keys)]
        assert crypto.retail_mac(key, data) == psec_mac_of(key, data)


@pytest.mark.parametrize("length", [0, 1, 7, 8, 9, 15, 16, 17, 64, 300])
def test_retail_mac_lengths_and_repeats(length: int) -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    data = bytes(range(256))[:length] + bytes(max(0, length - 256))
    for _ in range(3):
        assert crypto.retail_mac(key, data) == psec_mac_of(key, data)


def test_retail_mac_other_key_lengths_stay_psecs() -> None:
    data = b"0200 message"
    key24 = bytes(range(24))
    assert crypto.retail_mac(key24, data) == psec_mac_of(key24, data)
    with pytest.raises(ValueError):
        crypto.retail_mac(bytes(8), data)


def test_retail_mac_failure_drops_the_keys_contexts() -> None:
    key = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    data = bytes(40)
    assert crypto.retail_mac(key, data) == psec_mac_of(key, data)

    class Broken:
        def update(self, data: bytes) -> bytes:
            raise RuntimeError("context failed")

    crypto._THREAD.macs[key].cbc = Broken()  # type: ignore[assignment]
    with pytest.raises(RuntimeError):
        crypto.retail_mac(key, data)
    assert key not in crypto._THREAD.macs
    assert crypto.retail_mac(key, data) == psec_mac_of(key, data)


def test_retail_mac_same_key_in_two_threads() -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    messages = [bytes([i % 256]) * (i % 97) for i in range(400)]
    expected = [psec_mac_of(key, data) for data in messages]
    start = threading.Barrier(2)
    results: dict[int, list[str]] = {}

    def work(which: int) -> None:
        start.wait()
        order = messages if which == 0 else messages[::-1]
        macs = [crypto.retail_mac(key, data) for data in order]
        results[which] = macs if which == 0 else macs[::-1]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {0: expected, 1: expected}


@settings(derandomize=True, max_examples=150, deadline=None)
@given(tpk=KEYS, pin=PINS, pan=PANS)
def test_pin_blocks_round_trip_like_psec(tpk: bytes, pin: str, pan: str) -> None:
    block = psec_encrypt_pin(tpk, pin, pan)
    assert crypto.encrypt_pin_block(tpk, pin, pan) == block
    assert crypto.decrypt_pin(tpk, block, pan) == pin
    assert crypto.decrypt_pin(tpk, block.lower(), pan) == pin


@st.composite
def near_format_0(draw: st.DrawFn) -> str:
    """Clear blocks that are format 0 or almost (any control and length nibble, digits
    with the odd letter, a fill that is mostly ``F``), so every check of the decoder runs."""
    control = draw(st.sampled_from("0" * 12 + HEX))
    used = draw(st.integers(0, 14))
    length = draw(st.one_of(st.just(f"{used:X}"), st.sampled_from(HEX)))
    digits = draw(weighted("0123456789" * 5 + "A", used))
    fill = draw(weighted("F" * 30 + "E0", 14 - used))
    return control + length + digits + fill


def weighted(alphabet: str, size: int) -> st.SearchStrategy[str]:
    """Strings of ``size`` characters drawn as often as they occur in ``alphabet``
    (``st.text`` would treat the alphabet as a set)."""
    return st.lists(st.sampled_from(alphabet), min_size=size, max_size=size).map("".join)


def encrypted_clear_block(tpk: bytes, clear: str, pan: str) -> str:
    """``clear`` (16 hex, before the PAN block is XORed in) as a terminal would send it."""
    pan_block = bytes(2) + bytes.fromhex(pan[-13:-1])
    received = bytes(a ^ b for a, b in zip(bytes.fromhex(clear), pan_block, strict=True))
    return psec_des.encrypt_tdes_ecb(tpk, received).hex().upper()


@settings(derandomize=True, max_examples=300, deadline=None)
@given(tpk=KEYS, clear=near_format_0(), pan=PANS)
def test_decrypt_pin_agrees_with_psec_on_near_blocks(tpk: bytes, clear: str, pan: str) -> None:
    block = encrypted_clear_block(tpk, clear, pan)
    assert crypto.decrypt_pin(tpk, block, pan) == psec_decrypt_pin(tpk, block, pan)


@pytest.mark.parametrize("length", range(16))
def test_decrypt_pin_length_nibble_bounds(length: int) -> None:
    tpk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    pan = "6212345678901234567"
    used = min(length, 14)
    clear = f"0{length:X}" + "73920184650173"[:used] + "F" * (14 - used)
    block = encrypted_clear_block(tpk, clear, pan)
    expected = psec_decrypt_pin(tpk, block, pan)
    assert crypto.decrypt_pin(tpk, block, pan) == expected
    assert (expected is not None) == (4 <= length <= 12)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    tpk=st.one_of(KEYS, st.binary(max_size=30)),
    block=st.one_of(
        st.text(alphabet=HEX, min_size=16, max_size=16),
        st.text(alphabet=HEX + "abcdefg x", max_size=34),
    ),
    pan=st.one_of(PANS, st.text(alphabet="0123456789a٣", max_size=20)),
)
def test_decrypt_pin_garbage_agrees_with_psec(tpk: bytes, block: str, pan: str) -> None:
    assert crypto.decrypt_pin(tpk, block, pan) == psec_decrypt_pin(tpk, block, pan)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    tpk=st.one_of(KEYS, st.binary(max_size=30)),
    pin=st.text(alphabet="0123456789a٣", max_size=14),
    pan=st.one_of(PANS, st.text(alphabet="0123456789a٣", max_size=20)),
)
def test_encrypt_pin_block_errors_agree_with_psec(tpk: bytes, pin: str, pan: str) -> None:
    try:
        expected: str | type[ValueError] = psec_encrypt_pin(tpk, pin, pan)
    except ValueError:
        expected = ValueError
    try:
        got: str | type[ValueError] = crypto.encrypt_pin_block(tpk, pin, pan)
    except ValueError:
        got = ValueError
    assert got == expected


@settings(derandomize=True, max_examples=150, deadline=None)
@given(tpk=KEYS, zpk=KEYS, block=st.binary(min_size=8, max_size=8))
def test_translate_pin_block_equals_psec(tpk: bytes, zpk: bytes, block: bytes) -> None:
    expected = psec_des.encrypt_tdes_ecb(zpk, psec_des.decrypt_tdes_ecb(tpk, block)).hex().upper()
    assert crypto.translate_pin_block(tpk, zpk, block.hex()) == expected
    assert crypto.translate_pin_block(tpk, zpk, block.hex().lower()) == expected


def test_translate_pin_block_other_lengths_stay_psecs() -> None:
    tpk, zpk = bytes(range(16)), bytes(range(16, 32))
    two = bytes(range(16))
    expected = psec_des.encrypt_tdes_ecb(zpk, psec_des.decrypt_tdes_ecb(tpk, two)).hex().upper()
    assert crypto.translate_pin_block(tpk, zpk, two.hex()) == expected
    with pytest.raises(ValueError):
        crypto.translate_pin_block(tpk, zpk, "00112233")
