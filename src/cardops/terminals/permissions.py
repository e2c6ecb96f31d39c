"""Permissions of the terminals domain."""

from __future__ import annotations

from cardops.auth.permissions import define
from cardops.core.i18n import N_

_HQ_STAFF = [
    "channel_specialist",
    "channel_supervisor",
    "business_manager",
    "finance_manager",
    "operations_director",
    "warehouse_supervisor",
    "inbound_clerk",
    "picker",
    "checker",
    "user_mgmt_reviewer",
    "after_sales_specialist",
    "call_agent",
    "call_supervisor",
    "data_analyst",
]

TERMINALS_VIEW = define(
    "terminals.view",
    N_("Search terminals, see stock and each unit's history"),
    group="terminals",
    roles=_HQ_STAFF,
)
TERMINALS_SUPPLIERS = define(
    "terminals.suppliers",
    N_("Manage suppliers and terminal models"),
    group="terminals",
    roles=["business_manager", "warehouse_supervisor"],
)
TERMINALS_PURCHASE = define(
    "terminals.purchase",
    N_("File purchase requests to suppliers"),
    group="terminals",
    roles=["business_manager", "channel_supervisor"],
)
TERMINALS_INBOUND = define(
    "terminals.inbound",
    N_("Import manufacturers' serial lists (inbound)"),
    group="terminals",
    roles=["inbound_clerk", "warehouse_supervisor"],
)
TERMINALS_QC = define(
    "terminals.qc",
    N_("Quality-check received units and return them to the factory"),
    group="terminals",
    roles=["inbound_clerk", "warehouse_supervisor", "after_sales_specialist"],
)
TERMINALS_MAINTAIN = define(
    "terminals.maintain",
    N_("Record installs, inspections and repairs; request scrapping"),
    group="terminals",
    roles=["after_sales_specialist", "warehouse_supervisor"],
)
TERMINALS_REPORTS = define(
    "terminals.reports",
    N_("Stock reports and their Excel export"),
    group="terminals",
    roles=[
        "data_analyst",
        "operations_director",
        "warehouse_supervisor",
        "business_manager",
        "finance_manager",
        "channel_supervisor",
    ],
)
KEYS_EXPORT = define(
    "keys.export",
    N_("Export terminal master keys for key injection"),
    group="terminals",
    roles=["key_custodian"],
)
