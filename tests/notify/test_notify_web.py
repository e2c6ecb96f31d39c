"""The outbox through the API, the console, the CLI and the background job."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cardops.cli import app as cli_app
from cardops.notify import jobs, service
from cardops.notify.models import MessageState, OutboxMessage
from tests.factories import api_headers, console, field_error
from tests.notify.conftest import Collector, Configure

EMAIL = {
    "channel": "email",
    "recipient": "li.na@example.cn",
    "subject": "门禁密码变更通知",
    "body": "您所在楼栋的门禁密码已于今日更新。",
}


def test_api_enqueue_list_and_dispatch(client: TestClient, db: Session, smtp: Collector) -> None:
    clerk = api_headers(db, "front_desk_clerk")
    response = client.post("/api/v1/notifications", headers=clerk, json=EMAIL)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["state"] == "pending" and created["body"] == EMAIL["body"]

    supervisor = api_headers(db, "cs_supervisor")
    rows = client.get("/api/v1/notifications?state=pending", headers=supervisor).json()
    assert [r["id"] for r in rows] == [created["id"]]
    assert "body" not in rows[0]

    admin = api_headers(db, "sysadmin")
    response = client.post("/api/v1/notifications/dispatch", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"sent": 1, "failed": 0}
    assert smtp.messages[0].message["Subject"] == "门禁密码变更通知"
    one = client.get(f"/api/v1/notifications/{created['id']}", headers=supervisor).json()
    assert one["state"] == "sent" and one["attempts"] == 1


def test_api_invalid_recipient_is_422_on_recipient(client: TestClient, db: Session) -> None:
    clerk = api_headers(db, "front_desk_clerk")
    for body in ({**EMAIL, "recipient": "li.na-at-example.cn"}, {**EMAIL, "channel": "sms"}):
        response = client.post("/api/v1/notifications", headers=clerk, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "recipient"


def test_api_limit_is_bounded(client: TestClient, db: Session) -> None:
    supervisor = api_headers(db, "cs_supervisor")
    response = client.get("/api/v1/notifications?limit=100000", headers=supervisor)
    assert response.status_code == 422


def test_api_dedupe_key_answers_200_with_the_first(client: TestClient, db: Session) -> None:
    clerk = api_headers(db, "front_desk_clerk")
    body = {**EMAIL, "dedupe_key": "door-code:block-7:2026-03"}
    first = client.post("/api/v1/notifications", headers=clerk, json=body)
    again = client.post("/api/v1/notifications", headers=clerk, json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


def test_api_permissions(client: TestClient, db: Session) -> None:
    cashier = api_headers(db, "cashier")
    assert client.post("/api/v1/notifications", headers=cashier, json=EMAIL).status_code == 403
    clerk = api_headers(db, "front_desk_clerk")
    assert client.get("/api/v1/notifications", headers=clerk).status_code == 403
    supervisor = api_headers(db, "cs_supervisor")
    response = client.post("/api/v1/notifications/dispatch", headers=supervisor)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    message_id = client.post("/api/v1/notifications", headers=supervisor, json=EMAIL).json()["id"]
    assert (
        client.post(f"/api/v1/notifications/{message_id}/retry", headers=supervisor).status_code
        == 403
    )


def test_api_retry_of_a_dead_message(
    client: TestClient, db: Session, configure: Configure, closed_port: int
) -> None:
    configure(smtp_url=f"smtp://127.0.0.1:{closed_port}", notify_max_attempts=1)
    message = service.enqueue(db, **EMAIL)  # type: ignore[arg-type]
    db.commit()
    assert service.dispatch_due(db) == (0, 1)
    db.commit()
    admin = api_headers(db, "sysadmin")
    response = client.post(f"/api/v1/notifications/{message.id}/retry", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "pending" and response.json()["attempts"] == 0
    again = client.post(f"/api/v1/notifications/{message.id}/retry", headers=admin)
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"


def test_console_outbox_page_and_permissions(
    app: FastAPI, db: Session, configure: Configure, closed_port: int
) -> None:
    configure(smtp_url=f"smtp://127.0.0.1:{closed_port}", notify_max_attempts=1)
    message = service.enqueue(db, **EMAIL)  # type: ignore[arg-type]
    service.dispatch_due(db)
    db.commit()

    assert console(app, db, "cashier").get("/notifications").status_code == 403

    supervisor = console(app, db, "cs_supervisor")
    page = supervisor.get("/notifications")
    assert page.status_code == 200
    assert "li.na@example.cn" in page.text and 'data-state="dead"' in page.text
    assert "dispatch-now" not in page.text and "/retry" not in page.text
    assert supervisor.post(f"/notifications/{message.id}/retry").status_code == 403
    assert supervisor.post("/notifications/dispatch").status_code == 403

    admin = console(app, db, "sysadmin")
    page = admin.get("/notifications?state=dead")
    assert "dispatch-now" in page.text and f"/notifications/{message.id}/retry" in page.text
    response = admin.post(f"/notifications/{message.id}/retry")
    assert response.status_code == 303
    db.refresh(message)
    assert message.state == MessageState.PENDING


def test_console_send_now_and_test_email(app: FastAPI, db: Session, smtp: Collector) -> None:
    service.enqueue(db, **EMAIL)  # type: ignore[arg-type]
    db.commit()
    admin = console(app, db, "sysadmin")
    response = admin.post("/notifications/dispatch")
    assert response.status_code == 303
    assert len(smtp.messages) == 1
    assert "1" in admin.get("/notifications").text

    bad = admin.post("/notifications/test-email", {"recipient": "nobody"})
    assert bad.status_code == 422
    assert field_error(bad.text, "recipient")

    response = admin.post("/notifications/test-email", {"recipient": "ops@example.cn"})
    assert response.status_code == 303
    assert smtp.messages[-1].rcpt_tos == ["ops@example.cn"]
    assert "ops@example.cn" in admin.get("/notifications").text


def test_cli_test_email_and_dispatch(db: Session, smtp: Collector) -> None:
    runner = CliRunner()
    result = runner.invoke(cli_app, ["notify", "test-email", "ops@example.cn"])
    assert result.exit_code == 0, result.output
    assert "sent" in result.output
    assert smtp.messages[-1].rcpt_tos == ["ops@example.cn"]

    service.enqueue(db, **EMAIL)  # type: ignore[arg-type]
    db.commit()
    result = runner.invoke(cli_app, ["notify", "dispatch"])
    assert result.exit_code == 0, result.output
    assert "sent 1, failed 0" in result.output
    assert len(smtp.messages) == 2


def test_cli_test_email_without_smtp_fails_with_the_reason(
    db: Session, configure: Configure
) -> None:
    configure(smtp_url=None)
    result = CliRunner().invoke(cli_app, ["notify", "test-email", "ops@example.cn"])
    assert result.exit_code == 1
    assert "CARDOPS_SMTP_URL" in result.output


def test_background_job_sends_then_stops(
    db: Session, configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(sms_adapter="log")
    message = service.enqueue(
        db, channel="sms", recipient="13600136000", subject="", body="工单已受理"
    )
    db.commit()
    rounds: list[tuple[int, int]] = []
    real_dispatch = jobs.dispatch_once

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def one_round() -> tuple[int, int]:
            result = real_dispatch()
            rounds.append(result)
            loop.call_soon_threadsafe(stop.set)  # the server shuts down after the first round
            return result

        monkeypatch.setattr(jobs, "dispatch_once", one_round)
        await jobs.run(stop, interval=3600)

    asyncio.run(main())
    assert rounds == [(1, 0)]
    db.expire_all()
    sent = db.get(OutboxMessage, message.id)
    assert sent is not None and sent.state == MessageState.SENT
