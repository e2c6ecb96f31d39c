"""The gateway's retail MAC (algorithm objects cached per key) equals psec's."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cardops.gateway import crypto


@settings(derandomize=True, max_examples=60, deadline=None)
@given(key=st.binary(min_size=16, max_size=16), data=st.binary(max_size=300))
def test_retail_mac_equals_psec(key: bytes, data: bytes) -> None:
    assert crypto.retail_mac(key, data) == crypto.retail_mac_psec(key, data)


def test_retail_mac_known_answer_and_key_separation() -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    data = bytes.fromhex("1234567890ABCDEF")
    assert crypto.retail_mac(key, data) == crypto.retail_mac_psec(key, data)
    assert len(crypto.retail_mac(key, data)) == 16
    # the cache is per key: another key gives another MAC of the same data
    other = bytes.fromhex("FEDCBA98765432100123456789ABCDEF")
    assert crypto.retail_mac(other, data) != crypto.retail_mac(key, data)
    # padding method 1: the empty message is one zero block, 7 bytes pad to 8
    assert crypto.retail_mac(key, b"") == crypto.retail_mac(key, bytes(8))
    assert crypto.retail_mac(key, b"\x01" * 7) == crypto.retail_mac(key, b"\x01" * 7 + b"\x00")
