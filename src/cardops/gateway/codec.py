"""The wire format of ``shared/protocol/iso8583.md``: framing, encoding, MAC placement.

Messages are pyiso8583 ``default_ascii`` documents (dicts of field number → str) preceded by
a 2-byte big-endian length. The MAC is the last field (64, or 128 with a secondary bitmap)
and covers the encoded message from the first MTI byte to the byte before it.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import iso8583
from iso8583.specs import default_ascii

SPEC: dict[str, dict[str, Any]] = copy.deepcopy(default_ascii)
MAX_FRAME = 4096  # longer frames are refused and the connection closed
MAC_LEN = 16
ZERO_MAC = "0" * MAC_LEN

Message = dict[str, str]


class FrameTooLong(Exception):
    pass


async def read_frame(reader: asyncio.StreamReader, *, max_len: int = MAX_FRAME) -> bytes:
    """One frame's payload; raises ``asyncio.IncompleteReadError`` at end of stream."""
    header = await reader.readexactly(2)
    length = int.from_bytes(header, "big")
    if length == 0 or length > max_len:
        raise FrameTooLong(length)
    return await reader.readexactly(length)


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(2, "big") + payload


# The fast path below handles the contract's messages (``default_ascii``: ASCII text, fixed
# or LL/LLL ASCII lengths, hex bitmaps, no tertiary bitmap) in a few slices instead of
# pyiso8583's per-field bookkeeping; anything it is not sure about (a bad length, non-ASCII,
# field 65, a value of the wrong size …) goes to pyiso8583, which then gives its answer or
# its exact error. The result equals pyiso8583's byte for byte (tests/gateway/test_codec.py).
_FIXED: dict[int, int] = {}  # field → length, fixed-length fields
_VAR: dict[int, tuple[int, int]] = {}  # field → (digits of the length prefix, max length)
for _key, _spec in SPEC.items():
    if _key.isdigit() and 2 <= int(_key) <= 128 and _key != "65":
        assert _spec["data_enc"] == "ascii" and _spec["len_enc"] == "ascii"
        assert "left_pad" not in _spec and _spec.get("len_count", "bytes") == "bytes"
        if _spec["len_type"] == 0:
            _FIXED[int(_key)] = _spec["max_len"]
        else:
            _VAR[int(_key)] = (_spec["len_type"], _spec["max_len"])
assert SPEC["h"]["max_len"] == 0 and SPEC["t"]["data_enc"] == "ascii"
assert SPEC["p"]["data_enc"] == "ascii" and SPEC["1"]["data_enc"] == "ascii"
_HEX = frozenset("0123456789abcdefABCDEF")
_BITS = tuple(tuple(b for b in range(8) if n >> (7 - b) & 1) for n in range(256))
_KEYS = {n: str(n) for n in range(129)}
_PRESENT = {str(n): n for n in list(_FIXED) + list(_VAR)}


def _fast_decode(text: str) -> Message | None:
    """``text`` (the message as ASCII) decoded, or None when pyiso8583 must judge it."""
    size = len(text)
    if size < 20:
        return None
    primary = text[4:20]
    if not _HEX.issuperset(primary):
        return None
    bitmap = bytes.fromhex(primary)
    idx = 20
    if bitmap[0] & 0x80:
        if size < 36 or not _HEX.issuperset(secondary := text[20:36]):
            return None
        bitmap += bytes.fromhex(secondary)
        idx = 36
        if bitmap[8] & 0x80:  # field 65: pyiso8583's extended (tertiary) bitmap
            return None
    out: Message = {"t": text[:4]}
    fixed, var, keys = _FIXED, _VAR, _KEYS
    for byte_no, byte in enumerate(bitmap):
        if not byte:
            continue
        for bit in _BITS[byte]:
            field = byte_no * 8 + bit + 1
            if field == 1:
                continue
            length = fixed.get(field)
            if length is None:
                digits, most = var[field]
                prefix = text[idx : idx + digits]
                if len(prefix) != digits or not prefix.isdigit():  # ASCII: 0-9 only
                    return None
                length = int(prefix)
                if length > most:
                    return None
                idx += digits
            end = idx + length
            if end > size:
                return None
            out[keys[field]] = text[idx:end]
            idx = end
    if idx != size:
        return None
    return out


def decode(data: bytes) -> Message:
    """Decode a message; raises ``iso8583.DecodeError`` (a ``ValueError``) on bad input."""
    if isinstance(data, bytes | bytearray) and data.isascii():
        out = _fast_decode(data.decode("ascii"))
        if out is not None:
            return out
    doc, _ = iso8583.decode(bytes(data), SPEC)
    return {k: v for k, v in doc.items() if k not in ("p", "1", "h")}


def partial(data: bytes) -> Message:
    """What could be read of an undecodable message: MTI, STAN and TID when they came through."""
    try:
        iso8583.decode(bytes(data), SPEC)
    except iso8583.DecodeError as exc:
        doc = exc.doc_dec or {}
        out = {}
        if isinstance(doc.get("t"), str) and len(doc["t"]) == 4 and doc["t"].isdigit():
            out["t"] = doc["t"]
        stan, tid = doc.get("11"), doc.get("41")
        if isinstance(stan, str) and len(stan) == 6 and stan.isdigit():
            out["11"] = stan
        if isinstance(tid, str) and len(tid) == 8 and tid.isprintable():
            out["41"] = tid
        return out
    except Exception:
        return {}
    return {}


def mac_field(message: Message) -> str:
    """Where a message's MAC goes: 128 when it has a secondary bitmap, else 64."""
    return "128" if any(k.isdigit() and 64 < int(k) < 128 for k in message) else "64"


def _fast_encode(message: Message) -> bytes | None:
    """``message`` encoded, or None when pyiso8583 must judge it (see ``_fast_decode``)."""
    mti = message.get("t")
    if type(mti) is not str or len(mti) != 4 or not mti.isascii():
        return None
    present, fixed, var = _PRESENT, _FIXED, _VAR
    fields = []
    for key, value in message.items():
        if key == "t" or key == "p" or key == "1":
            continue
        field = present.get(key)
        if field is None or type(value) is not str or not value.isascii():
            return None
        fields.append((field, value))
    fields.sort()
    bitmap = bytearray(16 if fields and fields[-1][0] > 64 else 8)
    if len(bitmap) == 16:
        bitmap[0] = 0x80
    parts = [mti, ""]
    for field, value in fields:
        bitmap[(field - 1) >> 3] |= 0x80 >> ((field - 1) & 7)
        length = fixed.get(field)
        if length is None:
            digits, most = var[field]
            if len(value) > most:
                return None
            parts.append(f"{len(value):0{digits}d}")
        elif len(value) != length:
            return None
        parts.append(value)
    parts[1] = bitmap.hex().upper()
    return "".join(parts).encode("ascii")


def encode(message: Message) -> bytes:
    fast = _fast_encode(message)
    if fast is not None:
        return fast
    doc = {k: v for k, v in message.items() if k not in ("p", "1")}
    raw, _ = iso8583.encode(doc, SPEC)
    return bytes(raw)


def encode_with_mac(message: Message, tak: bytes | None) -> bytes:
    """Encode; when ``tak`` is given, add the MAC as the last field."""
    from cardops.gateway.crypto import retail_mac

    doc = {k: v for k, v in message.items() if k not in ("64", "128")}
    if tak is None:
        return encode(doc)
    doc[mac_field(doc)] = ZERO_MAC
    raw = encode(doc)
    return raw[:-MAC_LEN] + retail_mac(tak, raw[:-MAC_LEN]).encode()


def mac_of(raw: bytes, message: Message) -> tuple[bytes, str] | None:
    """(MAC input, MAC given) of a decoded request, or None when it carries no MAC where the
    contract puts it (the last field, 64 or 128 by bitmap)."""
    where = mac_field({k: v for k, v in message.items() if k not in ("64", "128")})
    other = "64" if where == "128" else "128"
    if where not in message or other in message:
        return None
    numbers = [int(k) for k in message if k.isdigit()]
    if max(numbers) != int(where):
        return None
    return raw[:-MAC_LEN], raw[-MAC_LEN:].decode("ascii", "replace")


def response_mti(mti: str) -> str:
    if len(mti) == 4 and mti.isdigit():
        return mti[:2] + str(int(mti[2]) + 1 if mti[2] in "02468" else int(mti[2])) + mti[3]
    return "0810"


def original_data(mti: str, stan: str, transmitted: str) -> str:
    """Field 90: original MTI + STAN + field 7 + 22 zeros."""
    return f"{mti:0>4}{stan:0>6}{transmitted:0>10}" + "0" * 22


def parse_original(value: str) -> tuple[str, str, str] | None:
    if len(value) != 42 or not value.isdigit():
        return None
    return value[:4], value[4:10], value[10:20]
