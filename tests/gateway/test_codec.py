"""The codec's fast path equals pyiso8583 ``default_ascii`` byte for byte, errors included."""

from __future__ import annotations

import copy

import iso8583
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from iso8583.specs import default_ascii

from cardops.gateway import codec

SPEC = copy.deepcopy(default_ascii)
FIELDS = [k for k in SPEC if k.isdigit() and 2 <= int(k) <= 128 and k != "65"]
ASCII = st.characters(min_codepoint=0, max_codepoint=127)
TEXT = st.characters(min_codepoint=0, max_codepoint=300)  # some not ASCII


def reference_encode(message: dict[str, str]) -> bytes | type[Exception]:
    doc = {k: v for k, v in message.items() if k not in ("p", "1")}
    try:
        raw, _ = iso8583.encode(doc, SPEC)
    except Exception as exc:
        return type(exc)
    return bytes(raw)


def reference_decode(data: bytes) -> dict[str, str] | type[Exception]:
    try:
        doc, _ = iso8583.decode(data, SPEC)
    except Exception as exc:
        return type(exc)
    return {k: v for k, v in doc.items() if k not in ("p", "1", "h")}


def ours(fn, arg):  # type: ignore[no-untyped-def]
    try:
        return fn(arg)
    except Exception as exc:
        return type(exc)


@st.composite
def field_value(draw: st.DrawFn, key: str) -> str:
    spec = SPEC[key]
    size = spec["max_len"]
    if spec["len_type"] == 0:
        # mostly the right size, sometimes one off (pyiso8583 refuses those)
        length = draw(st.sampled_from([size, size, size, size - 1, size + 1]))
    else:
        length = draw(st.integers(0, min(size + 1, 40)) | st.just(size))
    return draw(
        st.text(alphabet=st.one_of(ASCII, ASCII, ASCII, TEXT), min_size=length, max_size=length)
    )


@st.composite
def messages(draw: st.DrawFn) -> dict[str, str]:
    keys = draw(st.lists(st.sampled_from(FIELDS), max_size=12, unique=True))
    mti = draw(
        st.sampled_from(["0200", "0210", "0800", "0400", "0420"]) | st.text(ASCII, max_size=5)
    )
    message = {"t": mti}
    for key in keys:
        message[key] = draw(field_value(key))
    if draw(st.booleans()) and draw(st.booleans()):
        message[draw(st.sampled_from(["65", "h", "129", "x", "0"]))] = "0" * 16
    return message


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
@example({"t": "0200"})
@example({"t": "0200", "2": "", "128": "0" * 16})
def test_encode_equals_pyiso8583(message: dict[str, str]) -> None:
    expected = reference_encode(message)
    assert ours(codec.encode, message) == expected
    if isinstance(expected, bytes):
        # and back: what pyiso8583 encodes, both decoders read the same
        assert codec.decode(expected) == reference_decode(expected)


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    """Encoded messages, then cut, extended or with bytes changed."""
    message = draw(messages())
    raw = reference_encode(message)
    if not isinstance(raw, bytes):
        raw = draw(st.binary(max_size=80))
    data = bytearray(raw)
    for _ in range(draw(st.integers(0, 3))):
        choice = draw(st.integers(0, 3))
        if choice == 0 and data:
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif choice == 1:
            data += draw(st.binary(max_size=4))
        elif choice == 2 and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.sampled_from(b"0123456789ABCDEFaf +-\x80\xff"))
        elif choice == 3 and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    return bytes(data)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled())
@example(b"0200" + b"0000000000000000")
@example(b"0200C000000000000000" + b"0000000000000000" + b"05" + b"12345")  # fields 1 and 2
@example(b"0200C0000000000000008000000000000000" + b"0" * 16)  # field 65: extended bitmap
@example(b"02004000000000000000+5abcde")  # "+5": int() reads it, pyiso8583 too
@example(b"0200400000000000000 05abcde")  # a space in the bitmap
def test_decode_equals_pyiso8583(data: bytes) -> None:
    assert ours(codec.decode, data) == reference_decode(data)


def test_the_fast_path_is_taken_for_the_contract_messages() -> None:
    message = {
        "t": "0200",
        "2": "6212340000000000007",
        "3": "000000",
        "4": "000000000100",
        "11": "000001",
        "41": "T0000001",
        "64": "0" * 16,
    }
    raw = codec.encode(message)
    assert codec._fast_encode(message) == raw == reference_encode(message)
    assert codec._fast_decode(raw.decode()) == message == reference_decode(raw)


def test_non_ascii_and_bad_types_fall_back_to_pyiso8583_errors() -> None:
    with pytest.raises(iso8583.EncodeError):
        codec.encode({"t": "0200", "41": "T000000é"})
    with pytest.raises(iso8583.DecodeError):
        codec.decode(b"0200" + b"\x80" * 16)
