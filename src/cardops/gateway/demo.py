"""Demo data for the gateway: activated lab terminals with known TMKs, on-us cards with PANs
and PINs, and ``var/lab.json`` for tools that drive the gateway in a lab."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cardops.auth.service import system_user
from cardops.core.config import get_settings
from cardops.core.demo_loader import DemoContext
from cardops.gateway import lab
from cardops.gateway.config import GatewayConfig


def load(session: Session, ctx: DemoContext) -> None:
    config = GatewayConfig()
    data = lab.seed(session, system_user(session), terminals=3, cards=3, prefix="D")
    session.flush()
    lab.write_lab(
        get_settings().var_dir / "lab.json",
        {"gateway": {"host": config.host, "port": config.port}, **data},
    )
