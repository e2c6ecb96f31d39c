"""Permissions of the notify domain."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

NOTIFY_VIEW = define(
    "notify.view",
    N_("View the notification outbox"),
    group="notify",
    roles=["operations_director", "cs_supervisor", "call_supervisor"],
)
NOTIFY_SEND = define(
    "notify.send",
    N_("Send e-mails and SMS to customers"),
    group="notify",
    roles=[
        "cs_supervisor",
        "front_desk_clerk",
        "call_agent",
        "call_supervisor",
        "after_sales_specialist",
    ],
)
NOTIFY_MANAGE = define(
    "notify.manage",
    N_("Retry failed notifications, dispatch the outbox, send test e-mails"),
    group="notify",
)
