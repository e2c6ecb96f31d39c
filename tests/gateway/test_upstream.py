"""Cards off our BIN go to the upstream host (the issuer simulator) over one connection."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.gateway import codec
from cardops.gateway.config import GatewayConfig
from cardops.gateway.models import Journal, SafEntry
from cardops.gateway.simulator import IssuerSim, sim_cards
from tests.gateway.conftest import Running, World

GOOD, RICH2, POOR, EXPIRED, LOST, STOLEN = sim_cards()[:6]


class Sim:
    def __init__(self, **kwargs: object) -> None:
        self.sim = IssuerSim(**kwargs)  # type: ignore[arg-type]
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.server = asyncio.run_coroutine_threadsafe(
            self.sim.start("127.0.0.1", 0), self.loop
        ).result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            for task in list(self.sim.tasks):
                task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def sim() -> Iterator[Sim]:
    running = Sim()
    yield running
    running.stop()


def _gateway(port: int, timeout_ms: int = 2000) -> Running:
    return Running(
        GatewayConfig(upstream=f"127.0.0.1:{port}", upstream_timeout_ms=timeout_ms, node="t")
    )


def test_purchase_via_the_issuer_with_translated_pin(db: Session, world: World, sim: Sim) -> None:
    gateway = _gateway(sim.port)
    try:
        pos = gateway.terminal(world)
        pos.sign_on()
        before = sim.sim.cards[GOOD.pan].balance
        response = pos.call(pos.session.purchase(GOOD.pan, 1500, pin=GOOD.pin, expiry=GOOD.expiry))
        assert response["39"] == "00" and len(response["38"]) == 6
        assert pos.session.verify(pos.last_raw, response)
        assert sim.sim.cards[GOOD.pan].balance == before - 1500
        codes = {
            card.pan: pos.call(pos.session.purchase(card.pan, 1000, pin=card.pin))["39"]
            for card in (POOR, EXPIRED, LOST, STOLEN)
        }
        assert codes == {POOR.pan: "51", EXPIRED.pan: "54", LOST.pan: "41", STOLEN.pan: "43"}
        assert pos.call(pos.session.purchase(RICH2.pan, 100, pin="000000"))["39"] == "55"
        row = db.execute(select(Journal).where(Journal.rrn == response["37"])).scalar_one()
        assert row.route == "upstream" and row.approved and row.upstream_stan
        pos.close()
    finally:
        gateway.stop()


def test_unreachable_upstream_answers_91(world: World) -> None:
    gateway = _gateway(1)  # nothing listens on port 1
    try:
        pos = gateway.terminal(world)
        pos.sign_on()
        assert pos.call(pos.session.purchase(GOOD.pan, 100, pin=GOOD.pin))["39"] == "91"
        pos.close()
    finally:
        gateway.stop()


def test_timeout_answers_91_and_stores_a_reversal_that_is_forwarded(
    db: Session, world: World
) -> None:
    slow = Sim(slow_ms=1500)
    gateway = _gateway(slow.port, timeout_ms=300)
    try:
        pos = gateway.terminal(world)
        pos.sign_on()
        before = slow.sim.cards[GOOD.pan].balance
        assert pos.call(pos.session.purchase(GOOD.pan, 900, pin=GOOD.pin))["39"] == "91"
        entry = db.execute(select(SafEntry)).scalars().first()
        assert entry is not None and entry.done_at is None
        assert entry.message["t"] == "0400"
        time.sleep(1.6)  # the late answer debited the card at the host
        assert slow.sim.cards[GOOD.pan].balance == before - 900
        slow.sim.slow_ms = 0
        gateway.run(gateway.server.forward_stored())
        db.expire_all()
        entry = db.get(SafEntry, entry.id)
        assert entry is not None and entry.done_at is not None and entry.response_code == "00"
        assert slow.sim.cards[GOOD.pan].balance == before  # the reversal gave it back
        pos.close()
    finally:
        gateway.stop()
        slow.stop()


def test_repeat_and_reversal_sent_while_the_original_is_at_the_issuer_wait_for_it(
    world: World,
) -> None:
    """The terminal sends a purchase, its repeat and its reversal back to back while the
    issuer takes its time: the repeat is answered like the original (forwarded once), and
    the reversal is processed after the original's answer and stored for the issuer, so the
    money comes back."""
    slow = Sim(slow_ms=300)
    gateway = _gateway(slow.port)
    try:
        pos = gateway.terminal(world)
        pos.sign_on()
        before = slow.sim.cards[GOOD.pan].balance
        request = pos.session.purchase(GOOD.pan, 700, pin=GOOD.pin, expiry=GOOD.expiry)
        original = codec.original_data("0200", request["11"], request["7"])
        reversal = pos.session.financial(
            "0400", "000000", pan=GOOD.pan, amount=700, **{"90": original}
        )
        pos.send_raw(
            pos.session.encode(request) + pos.session.encode(request) + pos.session.encode(reversal)
        )
        answers = [pos.receive() for _ in range(3)]
        purchases = [a for a in answers if a["t"] == "0210"]
        assert [a["39"] for a in purchases] == ["00", "00"]
        assert purchases[0]["37"] == purchases[1]["37"]
        [reversed_] = [a for a in answers if a["t"] == "0410"]
        assert reversed_["39"] == "00"
        gateway.run(gateway.server.forward_stored())  # the reversal, stored for the issuer
        assert slow.sim.cards[GOOD.pan].balance == before
        pos.close()
    finally:
        gateway.stop()
        slow.stop()
