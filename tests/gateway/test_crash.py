"""SIGKILL the gateway under load, restart it: every approved answer is journaled exactly
once, and each wallet's ledger balance is its opening balance minus what the journal says
was approved (nothing that was not approved moved money)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cardops.gateway.terminal import AsyncTerminal, TerminalSession

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError("gateway exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gateway did not start")


def _run(env: dict[str, str], code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


async def _hammer(port: int, lab: dict, approved: list[tuple[str, str, int]], stop: float) -> None:
    async def one(spec: dict, card: dict) -> None:
        client = AsyncTerminal(
            TerminalSession(spec["tid"], spec["mid"], bytes.fromhex(spec["tmk"]))
        )
        await client.connect("127.0.0.1", port)
        await client.sign_on()
        amount = 100
        while time.monotonic() < stop:
            request = client.session.purchase(card["pan"], amount, pin=card["pin"])
            try:
                response = await client.call(request, timeout=3)
            except (TimeoutError, ConnectionError, OSError):
                return
            if response.get("39") == "00":
                approved.append((response["37"], card["pan"], amount))
            amount += 1

    cards = [c for c in lab["cards"] if c["route"] == "on-us"]
    await asyncio.gather(
        *(one(spec, cards[i % len(cards)]) for i, spec in enumerate(lab["terminals"])),
        return_exceptions=True,
    )


def test_sigkill_under_load_loses_nothing_approved(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(
        CARDOPS_DATABASE_URL=f"sqlite:///{tmp_path / 'crash.db'}",
        CARDOPS_VAR_DIR=str(tmp_path),
        CARDOPS_SECRET_KEY="crash-test",
        CARDOPS_MASTER_KEY="22" * 32,
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
        "    data = lab.seed(s, system_user(s), terminals=4, cards=4, balance=500_000)\n"
        f"lab.write_lab(Path({str(tmp_path / 'lab.json')!r}), data)\n",
    )
    lab = json.loads((tmp_path / "lab.json").read_text())
    port = _port()
    command = [sys.executable, "-m", "cardops.gateway.cli", "--port", str(port), "--upstream", ""]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(port, proc)
    approved: list[tuple[str, str, int]] = []

    async def load_then_kill() -> None:
        task = asyncio.ensure_future(_hammer(port, lab, approved, time.monotonic() + 20))
        for _ in range(200):  # kill once some payments went through
            await asyncio.sleep(0.1)
            if len(approved) >= 10:
                break
        os.kill(proc.pid, signal.SIGKILL)
        await task

    asyncio.run(load_then_kill())
    proc.wait(10)
    assert len(approved) >= 10
    restarted = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait(port, restarted)
    finally:
        restarted.terminate()
        restarted.wait(10)
    cards = [c for c in lab["cards"] if c["route"] == "on-us"]
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
            f"pans = {[c['pan'] for c in cards]!r}\n"
            f"rrns = {[r for r, _, _ in approved]!r}\n"
            "out = {'rrn_counts': {}, 'cards': {}}\n"
            "with unit_of_work() as s:\n"
            "    for r in rrns:\n"
            "        out['rrn_counts'][r] = s.execute(select(func.count(Journal.id)).where("
            "Journal.rrn == r, Journal.approved.is_(True))).scalar_one()\n"
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
    assert set(report["rrn_counts"].values()) == {1}, report["rrn_counts"]
    for pan, (balance, spent) in report["cards"].items():
        assert balance == 500_000 - spent, pan
