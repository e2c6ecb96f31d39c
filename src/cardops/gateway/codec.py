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


def decode(data: bytes) -> Message:
    """Decode a message; raises ``iso8583.DecodeError`` (a ``ValueError``) on bad input."""
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


def encode(message: Message) -> bytes:
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
