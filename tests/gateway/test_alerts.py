"""Operations alerts go through the outbox: the upstream link going down and a jump in the
decline rate each queue one e-mail (per node and 10 minutes) to the configured recipient,
which by default is a valid address."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.gateway.config import GatewayConfig
from cardops.gateway.engine import Engine
from cardops.gateway.server import GatewayServer
from cardops.notify.models import OutboxMessage


def _alerts(db: Session) -> list[OutboxMessage]:
    return list(
        db.execute(select(OutboxMessage).where(OutboxMessage.subject.like("Gateway:%"))).scalars()
    )


def test_an_alert_reaches_the_outbox_once_per_key(db: Session) -> None:
    engine = Engine(GatewayConfig(node="alert-node"))
    assert engine.config.alert_recipient == "ops@cardops.local"
    for _ in range(2):
        engine.alert("Gateway: upstream host unreachable", "down", "gateway-upstream-down:n:1")
    [message] = _alerts(db)
    assert message.recipient == "ops@cardops.local"
    assert message.channel == "email"


def test_a_decline_spike_raises_an_alert(db: Session) -> None:
    engine = Engine(GatewayConfig(node="alert-node"))
    server = GatewayServer(engine)
    for _ in range(15):
        engine.metrics.observe("0200", "00", 0.01, True)
    asyncio.run(server.check_decline_rate())
    assert _alerts(db) == []  # under half declined: no alert
    for _ in range(25):
        engine.metrics.observe("0200", "51", 0.01, True)
    asyncio.run(server.check_decline_rate())
    [message] = _alerts(db)
    assert "declined" in message.body and "alert-node" in message.body


def test_the_gateway_refuses_to_start_with_an_alert_address_that_is_not_one() -> None:
    from cardops.core.errors import ValidationFailed
    from cardops.gateway.cli import check_settings

    check_settings(GatewayConfig())  # the default is fine
    with pytest.raises(ValidationFailed) as exc:
        check_settings(GatewayConfig(alert_recipient="ops@localhost"))
    assert exc.value.field == "CARDOPS_GATEWAY_ALERT_TO"
    assert "ops@localhost" in exc.value.localized("en")
    assert "不是有效的电子邮件地址" in exc.value.localized("zh_CN")
