"""Permissions of the settlement domain: windows and settlement runs, rate cards and rules,
statements, finance data."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

SETTLEMENT_VIEW = define(
    "settlement.view",
    N_("View settlement windows, day summaries, merchant statements and payout files"),
    group="settlement",
    roles=["finance_manager", "cashier", "operations_director", "data_analyst"],
)
SETTLEMENT_RUN = define(
    "settlement.run",
    N_("Close settlement windows and settle business days"),
    group="settlement",
    roles=["finance_manager"],
)
SETTLEMENT_RATES = define(
    "settlement.rates",
    N_("Edit merchant rate cards, the bank rate card, the cut-off and reward rules"),
    group="settlement",
    roles=["finance_manager"],
)
SETTLEMENT_STATEMENTS = define(
    "settlement.statements",
    N_("View providers' monthly profit-sharing statements (provider staff: their own subtree)"),
    group="settlement",
    roles=[
        "finance_manager",
        "cashier",
        "data_analyst",
        "operations_director",
        "channel_specialist",
        "channel_supervisor",
        "business_manager",
    ],
)
SETTLEMENT_DATA = define(
    "settlement.data",
    N_("View and export transaction volume and counts for finance"),
    group="settlement",
    roles=["finance_manager", "cashier", "data_analyst", "operations_director"],
)
