"""Gateway fixtures: an approved merchant with an activated terminal, an on-us card with
money and a PIN, and a gateway listening on a real TCP port in a background thread."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy.orm import Session

from cardops.auth.service import system_user
from cardops.cards.models import Card
from cardops.gateway import crypto, service
from cardops.gateway.config import GatewayConfig
from cardops.gateway.engine import Engine
from cardops.gateway.server import GatewayServer
from cardops.gateway.terminal import BlockingTerminal, TerminalSession
from cardops.merchants.models import Merchant
from cardops.terminals import service as terminals
from cardops.terminals.keys import Sealer
from cardops.terminals.models import Supplier, Terminal, TerminalModel
from cardops.wallets import service as wallets

_seq = itertools.count(1)
PIN = "246810"


@dataclass
class World:
    merchant: Merchant
    terminal: Terminal
    tmk: bytes
    card: Card
    pan: str
    expiry: str

    @property
    def tid(self) -> str:
        assert self.terminal.tid
        return self.terminal.tid

    @property
    def mid(self) -> str:
        assert self.merchant.mid
        return self.merchant.mid


def make_merchant(
    db: Session, *, state: str = "approved", daily_limit: int | None = None
) -> Merchant:
    n = next(_seq)
    merchant = Merchant(
        mid=f"8981000{n:08d}",
        name=f"Shop {n}",
        kind="corporate",
        state=state,
        daily_limit=daily_limit,
    )
    db.add(merchant)
    db.flush()
    return merchant


def make_terminal(
    db: Session, merchant: Merchant, *, state: str = "activated"
) -> tuple[Terminal, bytes]:
    n = next(_seq)
    maker = Supplier(name=f"GW maker {n}-{id(db)}", kind="manufacturer")
    db.add(maker)
    db.flush()
    model = TerminalModel(code=f"GW-{n}-{id(db) % 10000}", name="POS", supplier_id=maker.id)
    db.add(model)
    db.flush()
    serial = f"GWSN{n:06d}{id(db) % 10000:04d}"
    tmk = crypto.new_key()
    unit = Terminal(
        serial=serial,
        model_id=model.id,
        supplier_id=maker.id,
        state=state,
        location_id=terminals.warehouse(db).id,
        merchant_id=merchant.id,
        tid=f"{n % 10**8:08d}",
        mid=merchant.mid,
        tmk_encrypted=Sealer().seal(serial, tmk),
        tmk_kcv=crypto.kcv(tmk),
    )
    db.add(unit)
    db.flush()
    return unit, tmk


def make_onus_card(db: Session, *, balance: int = 100_000, pin: str = PIN) -> tuple[Card, str, str]:
    n = next(_seq)
    actor = system_user(db)
    card = Card(number=f"G{n:07d}{id(db) % 1000:03d}", state="active")
    db.add(card)
    db.flush()
    wallets.enable_wallet(session=db, actor=actor, card_number=card.number)
    if balance:
        wallets.top_up(session=db, actor=actor, card_number=card.number, amount=balance)
    assigned = service.assign_pan(session=db, actor=actor, card_number=card.number)
    service.set_pin(session=db, actor=actor, card_number=card.number, pin=pin)
    db.flush()
    return card, assigned.pan, assigned.onus.expiry


@pytest.fixture
def world(db: Session) -> World:
    merchant = make_merchant(db)
    terminal, tmk = make_terminal(db, merchant)
    card, pan, expiry = make_onus_card(db)
    db.commit()
    return World(merchant, terminal, tmk, card, pan, expiry)


class Running:
    """A gateway on 127.0.0.1:<free port> in a background event loop."""

    def __init__(self, config: GatewayConfig) -> None:
        self.engine = Engine(config)
        self.server = GatewayServer(self.engine, background=False)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(
            self.server.start("127.0.0.1", 0), self.loop
        ).result(10)

    def run(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def terminal(self, world: World) -> BlockingTerminal:
        return BlockingTerminal(
            TerminalSession(world.tid, world.mid, world.tmk), "127.0.0.1", self.port
        )


@pytest.fixture
def gateway_config() -> GatewayConfig:
    return GatewayConfig(onus_bin="621234", upstream="", node="test-node")


@pytest.fixture
def gateway(db: Session, gateway_config: GatewayConfig) -> Iterator[Running]:
    running = Running(gateway_config)
    yield running
    running.stop()


@pytest.fixture
def pos(gateway: Running, world: World) -> Iterator[BlockingTerminal]:
    client = gateway.terminal(world)
    assert client.sign_on()["39"] == "00"
    yield client
    client.close()


def today() -> date:
    from cardops.core.clock import local, utcnow

    return local(utcnow()).date()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # psec reaches TripleDES through cryptography's deprecated path; not our concern here
    for item in items:
        if "tests/gateway" in str(item.path):
            item.add_marker(
                pytest.mark.filterwarnings(
                    "ignore::cryptography.utils.CryptographyDeprecationWarning"
                )
            )
