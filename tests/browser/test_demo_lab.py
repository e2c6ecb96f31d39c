"""What ``make run`` leaves for lab tools: every terminal ``var/lab.json`` lists is still
activated once all the demo data is in (the repairs demo once took one of them into the
workshop, and the load generator's sign-on was refused with 58)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from cardops.core.db import make_engine
from cardops.terminals.models import Terminal
from tests.browser.conftest import LiveServer


def test_the_lab_terminals_stay_activated(live_server: LiveServer, var_dir: Path) -> None:
    lab = json.loads((var_dir / "lab.json").read_text())
    tids = [t["tid"] for t in lab["terminals"]]
    assert tids
    engine = make_engine(live_server.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Terminal.tid, Terminal.state).where(Terminal.tid.in_(tids))
            ).all()
            states = {tid: state for tid, state in rows}
    finally:
        engine.dispose()
    assert states == dict.fromkeys(tids, "activated")
