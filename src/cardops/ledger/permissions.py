"""Permissions of the ledger and receipts."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

LEDGER_VIEW = define(
    "ledger.view",
    N_("View ledger accounts, balances and postings"),
    group="ledger",
    roles=["cashier", "finance_manager", "operations_director", "data_analyst"],
)
LEDGER_POST = define(
    "ledger.post",
    N_("Post and reverse manual ledger postings"),
    group="ledger",
    roles=["cashier", "finance_manager"],
)
LEDGER_ACCOUNTS = define(
    "ledger.accounts",
    N_("Open, rename and close ledger accounts"),
    group="ledger",
    roles=["finance_manager"],
)
RECEIPTS_ISSUE = define(
    "receipts.issue",
    N_("Take payments and issue receipts"),
    group="ledger",
    roles=["cashier", "front_desk_clerk", "finance_manager"],
)
RECEIPTS_VIEW = define(
    "receipts.view",
    N_("View and print receipts"),
    group="ledger",
    roles=["cashier", "front_desk_clerk", "finance_manager", "operations_director"],
)
RECEIPTS_VOID = define(
    "receipts.void",
    N_("Void receipts (posts the reversal)"),
    group="ledger",
    roles=["finance_manager"],
)
