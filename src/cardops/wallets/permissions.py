"""Permissions of card wallets (储值)."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

WALLETS_VIEW = define(
    "wallets.view",
    N_("View card wallet balances and statements"),
    group="wallets",
    roles=["front_desk_clerk", "cs_supervisor", "cashier", "finance_manager"],
)
WALLETS_MANAGE = define(
    "wallets.manage",
    N_("Enable card wallets and move a balance to a reissued card"),
    group="wallets",
    roles=["front_desk_clerk", "cs_supervisor", "cashier"],
)
WALLETS_TOPUP = define(
    "wallets.topup",
    N_("Top up card wallets at the desk"),
    group="wallets",
    roles=["front_desk_clerk", "cashier"],
)
WALLETS_DEBIT = define(
    "wallets.debit",
    N_("Debit and reverse card wallet payments (acquiring gateway, integrators)"),
    group="wallets",
)
