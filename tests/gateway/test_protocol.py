"""The wire contract: sign-on keys, Z1, MAC, duplicates, format errors, response codes."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.auth.service import system_user
from cardops.gateway import codec, crypto, service
from cardops.gateway.models import Journal
from cardops.gateway.terminal import BlockingTerminal, TerminalSession
from cardops.wallets import service as wallets
from tests.gateway.conftest import PIN, Running, World


def test_sign_on_returns_working_keys_under_the_tmk_with_check_values(
    gateway: Running, world: World
) -> None:
    client = gateway.terminal(world)
    response = client.call(client.session.sign_on())
    assert response["t"] == "0810" and response["39"] == "00" and response["70"] == "001"
    keys = response["62"]
    assert len(keys) == 76 and keys == keys.upper()
    tpk = crypto.decrypt_key(world.tmk, keys[:32])
    tak = crypto.decrypt_key(world.tmk, keys[38:70])
    assert crypto.kcv(tpk) == keys[32:38] and crypto.kcv(tak) == keys[70:76]
    assert "64" not in response  # a sign-on is not MACed
    client.close()


def test_financial_request_before_sign_on_gets_z1(gateway: Running, world: World) -> None:
    client = gateway.terminal(world)
    client.session.tak = client.session.tpk = crypto.new_key()
    response = client.call(client.session.purchase(world.pan, 100, pin=PIN))
    assert response["39"] == "Z1"
    client.close()


def test_wrong_mac_gets_a0_and_moves_no_money(
    db: Session, world: World, pos: BlockingTerminal
) -> None:
    good_tak = pos.session.tak
    pos.session.tak = crypto.new_key()
    response = pos.call(pos.session.purchase(world.pan, 700, pin=PIN))
    assert response["39"] == "A0"
    pos.session.tak = good_tak
    db.expire_all()
    assert wallets.balance(db, world.card) == 100_000


def test_duplicate_is_answered_from_the_journal_and_charged_once(
    db: Session, world: World, pos: BlockingTerminal
) -> None:
    request = pos.session.purchase(world.pan, 1200, pin=PIN)
    first = pos.call(request)
    again = pos.call(request)
    assert first["39"] == again["39"] == "00"
    assert first["37"] == again["37"] and first["38"] == again["38"]
    changed = dict(request, **{"4": f"{1300:012d}"})
    assert pos.call(changed)["39"] == "94"
    db.expire_all()
    assert wallets.balance(db, world.card) == 100_000 - 1200
    count = db.execute(select(func.count(Journal.id)).where(Journal.rrn == first["37"]))
    assert count.scalar_one() == 1


def test_undecodable_message_with_readable_header_gets_30(
    gateway: Running, world: World, pos: BlockingTerminal
) -> None:
    good = codec.encode({"t": "0200", "11": "000777", "41": world.tid, "42": world.mid})
    pos.send_raw(codec.frame(good + b"garbage"))
    response = pos.receive()
    assert response["t"] == "0210" and response["39"] == "30" and response["11"] == "000777"


def test_garbage_closes_only_that_connection(
    gateway: Running, world: World, pos: BlockingTerminal
) -> None:
    bad = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
    bad.sendall(codec.frame(b"\x00\xffnot iso at all"))
    assert bad.recv(10) == b""
    bad.close()
    assert pos.call(pos.session.purchase(world.pan, 100, pin=PIN))["39"] == "00"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"2": "6212340000000000"}, "14"),
        ({"14": "2001"}, "54"),
        ({"4": "000000000000"}, "13"),
        ({"4": "000999999999"}, "61"),
        ({"3": "990000"}, "12"),
        ({"42": "OTHERMERCHANT01"}, "03"),
    ],
)
def test_card_and_amount_checks(
    world: World, pos: BlockingTerminal, change: dict[str, str], code: str
) -> None:
    request = pos.session.purchase(world.pan, 500, pin=PIN)
    request.update(change)
    assert pos.call(request)["39"] == code


def test_insufficient_funds_and_wrong_pin_then_tries_exceeded(
    world: World, pos: BlockingTerminal
) -> None:
    assert pos.call(pos.session.purchase(world.pan, 100_001, pin=PIN))["39"] == "51"
    assert pos.call(pos.session.purchase(world.pan, 100, pin="999999"))["39"] == "55"
    assert pos.call(pos.session.purchase(world.pan, 100, pin="999998"))["39"] == "55"
    assert pos.call(pos.session.purchase(world.pan, 100, pin="999997"))["39"] == "75"
    assert pos.call(pos.session.purchase(world.pan, 100, pin=PIN))["39"] == "75"


@pytest.mark.parametrize(
    ("reason", "code"), [("lost", "41"), ("stolen", "43"), ("counterfeit", "59")]
)
def test_stop_list_declines(
    db: Session, world: World, gateway: Running, reason: str, code: str
) -> None:
    service.add_stop(
        session=db, actor=system_user(db), pan=world.pan, reason=reason, note="reported by phone"
    )
    db.commit()
    gateway.engine.stoplist_checked = 0
    client = gateway.terminal(world)
    client.sign_on()
    assert client.call(client.session.purchase(world.pan, 100, pin=PIN))["39"] == code
    client.close()


def test_terminal_not_activated_gets_58(db: Session, world: World, gateway: Running) -> None:
    world.terminal.state = "faulty"
    db.commit()
    client = gateway.terminal(world)
    assert client.call(client.session.sign_on())["39"] == "58"
    client.close()


def test_balance_inquiry_returns_field_54(world: World, pos: BlockingTerminal) -> None:
    request = pos.session.financial("0200", "310000", pan=world.pan, pin=PIN)
    response = pos.call(request)
    assert response["39"] == "00"
    assert response["54"] == "0002156C" + f"{100_000:012d}"
    assert pos.session.verify(pos.last_raw, response)


def test_echo_needs_no_mac(world: World, pos: BlockingTerminal) -> None:
    msg = pos.session.header("0800")
    msg["70"] = "301"
    assert pos.call(msg)["39"] == "00"


def test_terminal_session_rejects_bad_check_values(world: World) -> None:
    session = TerminalSession(world.tid, world.mid, world.tmk)
    with pytest.raises(ValueError):
        session.accept_keys({"62": "0" * 76})
