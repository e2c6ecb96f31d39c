"""Two gateway processes on one port (SO_REUSEPORT) on one SQLite database: the same
request sent to both is processed once (the others get the journaled answer), and wallets
running out of money are never overdrawn across the processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cardops.gateway.terminal import AsyncTerminal, TerminalSession
from tests.gateway.test_crash import _port, _run, _wait

pytestmark = pytest.mark.slow

BALANCE, AMOUNT, ROUNDS, COPIES = 1_000, 100, 8, 3


def _listeners(port: int) -> int:
    """How many sockets listen on ``port`` (Linux /proc/net/tcp, state 0A)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(
        1 for row in rows if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A"
    )


def _wait_listeners(port: int, count: int, procs: list[subprocess.Popen[bytes]]) -> None:
    for _ in range(300):
        if any(proc.poll() is not None for proc in procs):
            raise RuntimeError("a gateway exited")
        if _listeners(port) >= count:
            return
        time.sleep(0.1)
    raise RuntimeError("the gateways did not all listen")


async def _drive(port: int, lab: dict) -> list[tuple[str, list[dict[str, str]]]]:
    """Each terminal: ``COPIES`` connections; every purchase is sent on all of them at
    once. Returns (card, the answers of the copies) per purchase."""
    cards = [c for c in lab["cards"] if c["route"] == "on-us"]
    out: list[tuple[str, list[dict[str, str]]]] = []

    async def terminal(index: int, spec: dict) -> None:
        session = TerminalSession(spec["tid"], spec["mid"], bytes.fromhex(spec["tmk"]))
        clients = [AsyncTerminal(session) for _ in range(COPIES)]
        for client in clients:
            await client.connect("127.0.0.1", port)
        assert (await clients[0].sign_on()).get("39") == "00"
        card = cards[index % len(cards)]
        for _ in range(ROUNDS):
            request = session.purchase(card["pan"], AMOUNT, pin=card["pin"])
            answers = await asyncio.gather(*(c.call(dict(request), timeout=20) for c in clients))
            out.append((card["pan"], answers))
        for client in clients:
            await client.close()

    await asyncio.gather(*(terminal(i, spec) for i, spec in enumerate(lab["terminals"])))
    return out


def test_two_processes_one_port_no_double_processing_no_overdraft(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(
        CARDOPS_DATABASE_URL=f"sqlite:///{tmp_path / 'two.db'}",
        CARDOPS_VAR_DIR=str(tmp_path),
        CARDOPS_SECRET_KEY="two-processes",
        CARDOPS_MASTER_KEY="33" * 32,
    )
    _run(
        env,
        "from cardops.core.db import get_engine, unit_of_work\n"
        "from cardops.core.migrate import bootstrap\n"
        "import cardops.gateway.models\n"
        "from cardops.auth.service import system_user\n"
        "from cardops.gateway import lab\n"
        "from pathlib import Path\n"
        "bootstrap(get_engine())\n"
        "with unit_of_work() as s:\n"
        f"    data = lab.seed(s, system_user(s), terminals=4, cards=2, balance={BALANCE})\n"
        f"lab.write_lab(Path({str(tmp_path / 'lab.json')!r}), data)\n",
    )
    lab = json.loads((tmp_path / "lab.json").read_text())
    port = _port()
    command = [sys.executable, "-m", "cardops.gateway.cli", "--port", str(port), "--upstream", ""]
    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    try:
        for proc in procs:
            _wait(port, proc)
        _wait_listeners(port, 2, procs)
        results = asyncio.run(_drive(port, lab))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    approved: dict[str, int] = {}
    for pan, answers in results:
        # every copy got the same answer: processed once, the others answered from it
        assert len({(a.get("39"), a.get("37"), a.get("38")) for a in answers}) == 1, answers
        assert answers[0]["39"] in ("00", "51"), answers
        if answers[0]["39"] == "00":
            approved[pan] = approved.get(pan, 0) + 1
    # each card had ROUNDS * 2 purchases for BALANCE / AMOUNT payments' worth of money
    onus = [c["pan"] for c in lab["cards"] if c["route"] == "on-us"]
    assert approved == dict.fromkeys(onus, BALANCE // AMOUNT)
    report = json.loads(
        _run(
            env,
            "import json\n"
            "from sqlalchemy import select, func\n"
            "from cardops.core.db import unit_of_work\n"
            "import cardops.gateway.models\n"
            "from cardops.gateway.models import Journal, OnusCard\n"
            "from cardops.gateway import crypto\n"
            "from cardops.cards.models import Card\n"
            "from cardops.wallets import service as wallets\n"
            f"pans = {onus!r}\n"
            "out = {'cards': {}}\n"
            "with unit_of_work() as s:\n"
            "    out['rows_per_key'] = sorted(set(s.execute(select(func.count(Journal.id))"
            ".where(Journal.kind == 'purchase').group_by(Journal.dup_key)).scalars()))\n"
            "    out['nodes'] = len(set(s.execute(select(Journal.node)).scalars()))\n"
            "    for pan in pans:\n"
            "        h = crypto.pan_hash(pan)\n"
            "        card = s.execute(select(Card).join(OnusCard, OnusCard.card_id == Card.id)"
            ".where(OnusCard.pan_hash == h)).scalar_one()\n"
            "        spent = s.execute(select(func.coalesce(func.sum(Journal.amount), 0)).where("
            "Journal.pan_hash == h, Journal.approved.is_(True), Journal.kind == 'purchase'))"
            ".scalar_one()\n"
            "        out['cards'][pan] = [wallets.balance(s, card), int(spent)]\n"
            "print(json.dumps(out))\n",
        )
        .strip()
        .splitlines()[-1]
    )
    assert report["rows_per_key"] == [1]  # one journal row per TID + STAN + date
    assert report["nodes"] == 2  # both processes served
    for pan, (balance, spent) in report["cards"].items():
        assert (balance, spent) == (0, BALANCE), pan
    assert (tmp_path / "two.db.gateway-lock").exists()  # the writers took turns on it
