"""A small world for the repairs tests: a manufacturer and model, a provider with a merchant,
units at the provider, installed at the merchant and in stock, and the four kinds of user."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.channel.models import Provider
from cardops.merchants.models import Merchant
from cardops.terminals import service as terminals
from cardops.terminals.models import Supplier, Terminal, TerminalModel, TerminalState
from tests.factories import make_user

_seq = itertools.count(1)
# a valid 1×1 PNG (what the signature pad posts, only smaller)
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6300010000050001"
    "0d0a2db40000000049454e44ae426082"
)


@dataclass
class World:
    db: Session
    after_sales: User
    technician: User
    warehouse: User
    agent: User
    supplier: Supplier
    model: TerminalModel
    provider: Provider
    merchant: Merchant

    def unit(self, state: TerminalState = TerminalState.IN_STOCK) -> Terminal:
        """A fresh unit: in stock at HQ, at the provider, or installed/activated at the merchant."""
        n = next(_seq)
        if state == TerminalState.AT_PROVIDER:
            where = terminals.location_for(self.db, "provider", self.provider.id, "P")
        elif state in (TerminalState.INSTALLED, TerminalState.ACTIVATED):
            where = terminals.location_for(self.db, "merchant", self.merchant.id, "M")
        else:
            where = terminals.warehouse(self.db)
        unit = Terminal(
            serial=f"RPT{n:07d}",
            model_id=self.model.id,
            supplier_id=self.supplier.id,
            state=state.value,
            location_id=where.id,
            provider_id=self.provider.id if state != TerminalState.IN_STOCK else None,
            merchant_id=self.merchant.id
            if state in (TerminalState.INSTALLED, TerminalState.ACTIVATED)
            else None,
        )
        self.db.add(unit)
        self.db.flush()
        return unit


@pytest.fixture
def world(db: Session) -> World:
    n = next(_seq)
    supplier = Supplier(name=f"RP maker {n}", kind="manufacturer")
    db.add(supplier)
    db.flush()
    model = TerminalModel(code=f"RP-POS-{n}", name="Repair test POS", supplier_id=supplier.id)
    provider = Provider(code=f"RP-{n}", name="维修测试服务商", level="city")
    db.add_all([model, provider])
    db.flush()
    merchant = Merchant(
        name="维修测试商户",
        kind="individual",
        state="approved",
        provider_id=provider.id,
        address="成都市高新区天府大道 1 号",
    )
    db.add(merchant)
    db.flush()
    return World(
        db=db,
        after_sales=make_user(db, "after_sales_specialist"),
        technician=make_user(db, "technician"),
        warehouse=make_user(db, "warehouse_supervisor"),
        agent=make_user(db, "call_agent"),
        supplier=supplier,
        model=model,
        provider=provider,
        merchant=merchant,
    )
