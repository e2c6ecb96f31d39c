"""``cardops issuer-sim``: the upstream issuer host for development and tests.

It speaks the same ISO 8583 dialect as the gateway (2-byte length, ``default_ascii``), knows
a fixed set of test cards (PIN, balance, expiry, stop state) and answers by them. PIN blocks
arrive under the zone PIN key (``CARDOPS_UPSTREAM_ZPK``). ``slow_ms`` delays every answer,
``drop_rate`` leaves that share of requests unanswered (to exercise timeouts and reversals).
"""

from __future__ import annotations

import asyncio
import random
import secrets
from dataclasses import dataclass, field

from cardops.gateway import codec, crypto
from cardops.gateway.config import DEV_ZPK

SIM_BIN = "623456"
SIM_CREDIT_BIN = "625678"  # the simulator's credit cards (the gateway's default credit BIN)


@dataclass
class SimCard:
    pan: str
    pin: str
    balance: int  # fen
    expiry: str  # YYMM
    state: str = "active"  # active | lost | stolen | blocked
    tries: int = 0


def _pan(n: int, bin_: str = SIM_BIN) -> str:
    body = f"{bin_}{n:09d}"
    return body + crypto.luhn_digit(body)


def sim_cards() -> list[SimCard]:
    """The simulator's cards; the same every time (the lab file lists them)."""
    cards = [
        SimCard(_pan(1), "123456", 10_000_000, "3012"),
        SimCard(_pan(2), "654321", 500_000, "3012"),
        SimCard(_pan(3), "111222", 100, "3012"),  # little money: 51
        SimCard(_pan(4), "123456", 100_000, "2001"),  # expired: 54
        SimCard(_pan(5), "123456", 100_000, "3012", state="lost"),  # 41
        SimCard(_pan(6), "123456", 100_000, "3012", state="stolen"),  # 43
    ]
    # load-test cards: plenty of money
    cards += [SimCard(_pan(100 + i), "123456", 10**11, "3012") for i in range(200)]
    cards += [SimCard(_pan(300 + i, SIM_CREDIT_BIN), "123456", 10**11, "3012") for i in range(50)]
    return cards


@dataclass
class Auth:
    pan: str
    amount: int
    kind: str
    reversed: bool = False


@dataclass
class IssuerSim:
    zpk: bytes = field(default_factory=lambda: bytes.fromhex(DEV_ZPK))
    slow_ms: int = 0
    drop_rate: float = 0.0
    pin_tries: int = 3
    cards: dict[str, SimCard] = field(default_factory=dict)
    auths: dict[tuple[str, str], Auth] = field(default_factory=dict)  # (TID, STAN)
    by_rrn: dict[str, tuple[str, str]] = field(default_factory=dict)
    received: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not self.cards:
            self.cards = {c.pan: c for c in sim_cards()}

    def answer(self, msg: codec.Message) -> codec.Message:
        mti = msg.get("t", "")
        out: codec.Message = {"t": codec.response_mti(mti)}
        for key in ("3", "4", "7", "11", "37", "41", "42", "90"):
            if key in msg:
                out[key] = msg[key]
        out["39"] = self.decide(msg, out)
        return out

    def decide(self, msg: codec.Message, out: codec.Message) -> str:
        mti, pc = msg.get("t"), msg.get("3", "")
        tid = msg.get("41", "")
        if mti == "0400":
            original = codec.parse_original(msg.get("90", ""))
            if original is None:
                return "30"
            auth = self.auths.get((tid, original[1]))
            if auth is None:
                return "25"
            if not auth.reversed:
                auth.reversed = True
                card = self.cards.get(auth.pan)
                if card is not None and auth.kind in ("purchase", "completion"):
                    card.balance += auth.amount
                elif card is not None and auth.kind == "refund":
                    card.balance -= auth.amount
            return "00"
        amount = int(msg.get("4", "0") or 0)
        found = self.by_rrn.get(msg.get("37", ""))
        previous = self.auths.get(found) if found else None
        if mti == "0200" and pc == "020000":
            if previous is None or previous.reversed:
                return "25"
            previous.reversed = True
            card = self.cards.get(previous.pan)
            if card is not None:
                card.balance += previous.amount
            return "00"
        pan = msg.get("2") or (previous.pan if previous is not None else "")
        card = self.cards.get(pan)
        if card is None:
            return "14"
        if card.state == "lost":
            return "41"
        if card.state == "stolen":
            return "43"
        if card.state != "active":
            return "57"
        if card.expiry < crypto_now_yymm() or (msg.get("14") and msg["14"] != card.expiry):
            return "54"
        kind = {"000000": "purchase", "200000": "refund", "310000": "balance"}.get(pc, "")
        if mti == "0100":
            kind = "preauth"
        elif mti == "0200" and pc == "000000" and msg.get("25") == "06":
            kind = "completion"
        if not kind:
            return "12"
        if kind in ("purchase", "preauth", "balance"):
            if card.tries >= self.pin_tries:
                return "75"
            block = msg.get("52")
            pin = crypto.decrypt_pin(self.zpk, block, card.pan) if block else None
            if pin != card.pin:
                card.tries += 1
                return "75" if card.tries >= self.pin_tries else "55"
            card.tries = 0
        if kind == "balance":
            out["54"] = f"0002156C{card.balance:012d}"
            return "00"
        if kind in ("purchase", "completion", "preauth") and card.balance < amount:
            return "51"
        if kind in ("purchase", "completion"):
            card.balance -= amount
        elif kind == "refund":
            card.balance += amount
        self.auths[(tid, msg.get("11", ""))] = Auth(card.pan, amount, kind)
        if "37" in msg:
            self.by_rrn[msg["37"]] = (tid, msg.get("11", ""))
        out["38"] = f"{secrets.randbelow(10**6):06d}"
        return "00"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                raw = await codec.read_frame(reader, max_len=8192)
                self.received += 1
                try:
                    msg = codec.decode(raw)
                except ValueError:
                    continue
                if self.slow_ms or self.drop_rate:
                    task = asyncio.ensure_future(self._later(msg, writer))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                else:
                    writer.write(codec.frame(codec.encode(self.answer(msg))))
        except (asyncio.IncompleteReadError, OSError, codec.FrameTooLong):
            pass
        finally:
            writer.close()

    async def _later(self, msg: codec.Message, writer: asyncio.StreamWriter) -> None:
        if self.drop_rate and random.random() < self.drop_rate:
            return
        if self.slow_ms:
            await asyncio.sleep(self.slow_ms / 1000)
        if not writer.is_closing():
            writer.write(codec.frame(codec.encode(self.answer(msg))))

    async def start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self.handle, host, port, reuse_address=True)


def crypto_now_yymm() -> str:
    from cardops.core.clock import local, utcnow

    return local(utcnow()).strftime("%y%m")
