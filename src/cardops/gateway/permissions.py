"""Permissions of the acquiring gateway."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

GATEWAY_VIEW = define(
    "gateway.view",
    N_("View gateway transactions, batches and the live operations page"),
    group="gateway",
    roles=["operations_director", "finance_manager", "risk_officer", "data_analyst", "cashier"],
)
STOPLIST_MANAGE = define(
    "gateway.stoplist",
    N_("Add cards to and remove them from the stop list"),
    group="gateway",
    roles=["risk_officer", "cs_supervisor"],
)
CARD_PAN_MANAGE = define(
    "gateway.card_pan",
    N_("Assign card numbers on the operator's BIN and set card PINs"),
    group="gateway",
    roles=["front_desk_clerk", "cs_supervisor"],
)
