"""Rate card versions: the bank's rate card, the default merchant rate and each provider's
rate card are kept as versions, and a day is priced with those in force when its window
closed. Changing a card after a day closed leaves that day alone (settling it again gives
the same figures, where it used to refuse: "its figures now come out differently") and
prices the next day."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from cardops.channel import service as channel
from cardops.channel.models import ProviderRateVersion
from cardops.core.clock import SINCE_ALWAYS, freeze
from cardops.settlement import service
from cardops.settlement.compute import fee_of
from cardops.settlement.models import RateVersion
from tests.factories import api_headers, console, make_user
from tests.settlement.conftest import DAY, World, at

NEXT = DAY + timedelta(days=1)


def _settings(world: World, **change: Any) -> None:
    config = service.get_config(world.db)
    bank, default = config.bank_rate_card, config.default_merchant_rate
    values: dict[str, Any] = {
        "cutoff": config.cutoff,
        "bank_debit_bp": bank["debit"]["rate_bp"],
        "bank_debit_cap": bank["debit"].get("cap"),
        "bank_credit_bp": bank["credit"]["rate_bp"],
        "default_debit_bp": default["debit"]["rate_bp"],
        "default_debit_cap": default["debit"].get("cap"),
        "default_credit_bp": default["credit"]["rate_bp"],
    }
    values.update(change)
    service.update_config(session=world.db, actor=world.finance, **values)


def _county_card(world: World, card: dict[str, Any]) -> None:
    supervisor = make_user(world.db, "channel_supervisor")
    county = world.county
    channel.update_provider(
        session=world.db,
        actor=supervisor,
        provider_id=county.id,
        fields=channel.ProviderFields(
            name=county.name,
            parent_id=county.parent_id,
            provinces=list(county.provinces or []),
            cities=list(county.cities or []),
            rate_card=card,
        ),
    )


def test_a_closed_day_keeps_the_rates_in_force_when_it_closed(world: World) -> None:
    world.journal("purchase", 1_000_000)  # county terminal, debit: capped fees
    world.journal("purchase", 10_000)
    first = service.settle_day(session=world.db, actor=world.finance, business_date=DAY)
    facts = first.computed.facts[(world.merchants[0].id, world.county.id, "debit")]
    share = first.computed.shares[(world.county.id, "debit")].share
    assert facts.bank_fee == fee_of(1_000_000, (30, 1500)) + fee_of(10_000, (30, 1500))

    # later that morning finance changes the bank's card and the default merchant rate, and
    # the channel supervisor the county provider's card
    freeze(at(NEXT, 10))
    _settings(world, bank_debit_bp=50, bank_debit_cap=2500, default_debit_bp=80)
    _county_card(world, {"debit": {"rate_bp": 50, "cap": 1950}, "credit": {"rate_bp": 55}})

    again = service.settle_day(session=world.db, actor=world.finance, business_date=DAY)
    assert again.unchanged and again.postings == 0
    assert again.computed.shares[(world.county.id, "debit")].share == share

    # the day after is priced with the new cards
    world.journal("purchase", 1_000_000, when=at(NEXT, 12))
    world.journal("purchase", 10_000, when=at(NEXT, 12))
    freeze(at(NEXT + timedelta(days=1), 9))
    later = service.settle_day(session=world.db, actor=world.finance, business_date=NEXT)
    facts = later.computed.facts[(world.merchants[0].id, world.county.id, "debit")]
    assert facts.bank_fee == fee_of(1_000_000, (50, 2500)) + fee_of(10_000, (50, 2500))
    county_cost = fee_of(1_000_000, (50, 1950)) + fee_of(10_000, (50, 1950))
    assert later.computed.shares[(world.county.id, "debit")].share == facts.fee - county_cost

    # what was in force at each close
    cards = service.settings_cards_at(world.db, first.window.closed_at)
    assert cards["bank"]["debit"] == {"rate_bp": 30, "cap": 1500}
    assert cards["default"]["debit"]["rate_bp"] != 80
    assert service.settings_cards_at(world.db, None)["default"]["debit"]["rate_bp"] == 80


def test_versions_are_kept_with_who_and_when(world: World) -> None:
    freeze(at(NEXT, 10))
    _settings(world, bank_credit_bp=48)
    _settings(world, bank_credit_bp=48)  # nothing changed: no version
    versions = service.rate_history(world.db, world.finance)
    bank = [v for v in versions if v.scope == "bank"]
    # the card before the first change is kept as "since always", then the change
    assert [v.rate_card["credit"]["rate_bp"] for v in bank] == [48, 45]
    assert bank[1].recorded_at == SINCE_ALWAYS and bank[0].actor_id == world.finance.id
    assert not [v for v in versions if v.scope == "default"]

    card = {"debit": {"rate_bp": 46, "cap": 1900}, "credit": {"rate_bp": 55}}
    _county_card(world, card)
    rows = world.db.execute(
        select(ProviderRateVersion)
        .where(ProviderRateVersion.provider_id == world.county.id)
        .order_by(ProviderRateVersion.id)
    ).scalars()
    assert [(r.rate_card["debit"]["rate_bp"], r.recorded_at == SINCE_ALWAYS) for r in rows] == [
        (45, True),
        (46, False),
    ]
    assert world.db.execute(select(RateVersion.id)).first() is not None


def test_history_in_the_api_and_on_the_console(
    world: World, client: TestClient, app: FastAPI
) -> None:
    freeze(at(NEXT, 10))
    _settings(world, bank_credit_bp=47)
    _county_card(world, {"debit": {"rate_bp": 47}, "credit": {"rate_bp": 55}})
    headers = api_headers(world.db, "channel_supervisor", "finance_manager")
    history = client.get("/api/v1/settlement/rate-history", headers=headers).json()
    assert [(h["scope"], h["rate_card"]["credit"]["rate_bp"]) for h in history] == [
        ("bank", 47),
        ("bank", 45),
    ]
    url = f"/api/v1/channel/providers/{world.county.id}/rate-history"
    provider = client.get(url, headers=headers).json()
    assert [p["rate_card"]["debit"]["rate_bp"] for p in provider] == [47, 45]
    assert client.get(url, headers=api_headers(world.db, "cashier")).status_code == 403
    c = console(app, world.db, "channel_supervisor", "finance_manager")
    page = c.get("/settlement/rates").text
    assert 'id="settings-versions"' in page and "0.47" in page
    page = c.get(f"/channel/providers/{world.county.id}").text
    assert 'id="provider-rate-versions"' in page and '<td class="num">47</td>' in page
