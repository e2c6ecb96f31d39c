"""Permissions of reconciliation with the acquiring bank (对账)."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

RECON_VIEW = define(
    "reconciliation.view",
    N_("View the bank's clearing files, reconciliation results and difference cases"),
    group="reconciliation",
    roles=["finance_manager", "cashier", "data_analyst", "operations_director"],
)
RECON_IMPORT = define(
    "reconciliation.import",
    N_("Import the bank's clearing file and reconcile a day against the journal"),
    group="reconciliation",
    roles=["finance_manager", "cashier"],
)
RECON_WORK = define(
    "reconciliation.work",
    N_("Investigate reconciliation differences and close them by bank claim or write-off"),
    group="reconciliation",
    roles=["finance_manager", "cashier"],
)
RECON_ADJUST = define(
    "reconciliation.adjust",
    N_("Close a reconciliation difference with an adjustment posting to the ledger"),
    group="reconciliation",
    roles=["finance_manager"],
)
