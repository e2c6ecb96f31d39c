"""A POS terminal as a client of the wire contract: for tests, the load generator and labs.

:class:`TerminalSession` holds a terminal's identity and keys and builds requests;
:class:`BlockingTerminal` talks over a plain socket (tests), :class:`AsyncTerminal` over
asyncio streams with many requests in flight (load generator).
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cardops.gateway import codec, crypto


@dataclass
class TerminalSession:
    tid: str
    mid: str
    tmk: bytes
    tpk: bytes | None = None
    tak: bytes | None = None
    stans: Any = field(default_factory=lambda: itertools.count(1))

    def next_stan(self) -> str:
        return f"{next(self.stans) % 1_000_000:06d}"

    def header(self, mti: str, stan: str | None = None) -> codec.Message:
        now = datetime.now(UTC)
        from cardops.core.clock import local

        here = local(now)
        return {
            "t": mti,
            "7": now.strftime("%m%d%H%M%S"),
            "11": stan or self.next_stan(),
            "12": here.strftime("%H%M%S"),
            "13": here.strftime("%m%d"),
            "41": self.tid,
            "42": self.mid,
        }

    def sign_on(self) -> codec.Message:
        msg = self.header("0800")
        del msg["42"]
        msg["70"] = "001"
        return msg

    def accept_keys(self, response: codec.Message) -> None:
        """Take the working keys out of a sign-on response (field 62), checking the KCVs."""
        value = response.get("62", "")
        if len(value) != 76:
            raise ValueError("no keys in the sign-on response")
        tpk = crypto.decrypt_key(self.tmk, value[:32])
        tak = crypto.decrypt_key(self.tmk, value[38:70])
        if crypto.kcv(tpk) != value[32:38] or crypto.kcv(tak) != value[70:76]:
            raise ValueError("key check values do not match")
        self.tpk, self.tak = tpk, tak

    def financial(
        self,
        mti: str,
        processing: str,
        *,
        pan: str | None = None,
        amount: int | None = None,
        expiry: str | None = None,
        pin: str | None = None,
        stan: str | None = None,
        **extra: str,
    ) -> codec.Message:
        msg = self.header(mti, stan)
        msg["3"] = processing
        if pan is not None:
            msg["2"] = pan
        if amount is not None:
            msg["4"] = f"{amount:012d}"
        if expiry:
            msg["14"] = expiry
        msg["22"] = "051"
        msg["25"] = "00"
        msg["49"] = "156"
        if pin is not None and pan is not None:
            assert self.tpk is not None
            msg["52"] = crypto.encrypt_pin_block(self.tpk, pin, pan)
        msg.update(extra)
        return msg

    def purchase(
        self, pan: str, amount: int, *, pin: str | None = None, **kw: Any
    ) -> codec.Message:
        return self.financial("0200", "000000", pan=pan, amount=amount, pin=pin, **kw)

    def encode(self, msg: codec.Message) -> bytes:
        tak = None if msg["t"] == "0800" else self.tak
        return codec.frame(codec.encode_with_mac(msg, tak))

    def verify(self, raw: bytes, response: codec.Message) -> bool:
        """Whether a response's MAC is right (True when it carries none)."""
        where = codec.mac_of(raw, response)
        if where is None or self.tak is None:
            return "64" not in response and "128" not in response
        return crypto.mac_ok(self.tak, *where)


class BlockingTerminal:
    def __init__(self, session: TerminalSession, host: str, port: int, timeout: float = 10) -> None:
        self.session = session
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.last_raw = b""

    def send_raw(self, payload: bytes) -> None:
        self.sock.sendall(payload)

    def receive(self) -> codec.Message:
        header = self._exact(2)
        raw = self._exact(int.from_bytes(header, "big"))
        self.last_raw = raw
        return codec.decode(raw)

    def _exact(self, n: int) -> bytes:
        chunks = b""
        while len(chunks) < n:
            part = self.sock.recv(n - len(chunks))
            if not part:
                raise ConnectionError("closed")
            chunks += part
        return chunks

    def call(self, msg: codec.Message) -> codec.Message:
        self.send_raw(self.session.encode(msg))
        return self.receive()

    def sign_on(self) -> codec.Message:
        response = self.call(self.session.sign_on())
        if response.get("39") == "00":
            self.session.accept_keys(response)
        return response

    def close(self) -> None:
        self.sock.close()


class AsyncTerminal:
    """Many requests in flight on one connection, answers matched by STAN."""

    def __init__(self, session: TerminalSession) -> None:
        self.session = session
        self.pending: dict[str, asyncio.Future[tuple[bytes, codec.Message]]] = {}
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    async def connect(self, host: str, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port)
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.reader is not None
        try:
            while True:
                raw = await codec.read_frame(self.reader, max_len=8192)
                msg = codec.decode(raw)
                future = self.pending.pop(msg.get("11", ""), None)
                if future is not None and not future.done():
                    future.set_result((raw, msg))
        except (asyncio.IncompleteReadError, OSError, ValueError):
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("closed"))

    async def call(self, msg: codec.Message, timeout: float = 10) -> codec.Message:
        assert self.writer is not None
        future: asyncio.Future[tuple[bytes, codec.Message]] = (
            asyncio.get_running_loop().create_future()
        )
        self.pending[msg["11"]] = future
        self.writer.write(self.session.encode(msg))
        _, response = await asyncio.wait_for(future, timeout)
        return response

    async def sign_on(self) -> codec.Message:
        response = await self.call(self.session.sign_on())
        if response.get("39") == "00":
            self.session.accept_keys(response)
        return response

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
        if self.writer:
            self.writer.close()
