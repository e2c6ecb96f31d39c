"""Permissions of parking permits (停车卡/车场授权)."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

PARKING_VIEW = define(
    "parking.view",
    N_("View parking permits"),
    group="parking",
    roles=["front_desk_clerk", "cs_supervisor", "cashier", "finance_manager", "data_analyst"],
)
PARKING_MANAGE = define(
    "parking.manage",
    N_("Issue, top up and end parking permits"),
    group="parking",
    roles=["front_desk_clerk", "cs_supervisor", "cashier"],
)
