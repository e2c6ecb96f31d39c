"""Permissions of the channel domain.

Provider staff are ordinary console users holding the ``channel_specialist`` role and linked to
their provider with a ``ProviderUser`` row: they see only their provider and its subtree.
For county orders the city provider's staff (channel specialists of the seller) approve, pick,
check and dispatch with ``channel.order``; for orders to HQ those steps need the HQ roles.
"""

from __future__ import annotations

from cardops.auth.permissions import define
from cardops.core.i18n import N_

CHANNEL_VIEW = define(
    "channel.view",
    N_("See providers, regions, provider orders and channel reports"),
    group="channel",
    roles=[
        "channel_specialist",
        "channel_supervisor",
        "business_manager",
        "finance_manager",
        "operations_director",
        "warehouse_supervisor",
        "picker",
        "checker",
    ],
)
CHANNEL_MANAGE = define(
    "channel.manage",
    N_("Create and edit providers, contracts, rate cards and regions"),
    group="channel",
    roles=["channel_supervisor"],
)
CHANNEL_ORDER = define(
    "channel.order",
    N_("File provider orders, pick their serials and file county orders with HQ"),
    group="channel",
    roles=["channel_specialist"],
)
CHANNEL_PICK = define(
    "channel.pick",
    N_("Pick the serials of an approved order in the warehouse"),
    group="channel",
    roles=["picker"],
)
CHANNEL_CHECK = define(
    "channel.check",
    N_("Check picked serials against the order"),
    group="channel",
    roles=["checker"],
)
CHANNEL_DISPATCH = define(
    "channel.dispatch",
    N_("Dispatch checked orders with a carrier"),
    group="channel",
    roles=["warehouse_supervisor"],
)
CHANNEL_RECEIVE = define(
    "channel.receive",
    N_("Confirm receipt of a provider order"),
    group="channel",
    roles=["channel_specialist"],
)
