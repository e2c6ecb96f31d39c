"""Permissions of the warranty domain: numbered service cards, returns and exchanges.

Provider staff (users linked to a provider in the channel) act only within their provider's
subtree: a branch issues its own numbers to its dealers, a dealer registers its own cards.
"""

from __future__ import annotations

from cardops.auth.permissions import define
from cardops.core.i18n import N_

WARRANTY_VIEW = define(
    "warranty.view",
    N_("See service-card ranges, registered cards, flagged sales, points and returns"),
    group="warranty",
    roles=[
        "channel_specialist",
        "channel_supervisor",
        "business_manager",
        "call_agent",
        "call_supervisor",
        "after_sales_specialist",
        "data_analyst",
        "finance_manager",
        "cashier",
    ],
)
WARRANTY_MANAGE = define(
    "warranty.manage",
    N_("Generate service-card ranges and set floor prices, warranty periods and points"),
    group="warranty",
    roles=["channel_supervisor"],
)
WARRANTY_ISSUE = define(
    "warranty.issue",
    N_("Issue service-card numbers to branches and dealers"),
    group="warranty",
    roles=["channel_specialist", "channel_supervisor"],
)
WARRANTY_REGISTER = define(
    "warranty.register",
    N_("Register service cards against sales"),
    group="warranty",
    roles=["channel_specialist", "after_sales_specialist"],
)
WARRANTY_RETURNS = define(
    "warranty.returns",
    N_("Take and handle return and exchange requests"),
    group="warranty",
    roles=["after_sales_specialist", "call_agent", "call_supervisor"],
)
WARRANTY_SETTLE = define(
    "warranty.settle",
    N_("Complete returns: post refunds, compensations and price differences"),
    group="warranty",
    roles=["after_sales_specialist", "cashier", "finance_manager"],
)
