"""Permissions of the one-card cards domain."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

CARDS_VIEW = define(
    "cards.view",
    N_("View cards, their holders and history"),
    group="cards",
    roles=[
        "front_desk_clerk",
        "cs_supervisor",
        "department_manager",
        "cashier",
        "finance_manager",
        "operations_director",
        "data_analyst",
    ],
)
CARDS_STOCK = define(
    "cards.stock",
    N_("Receive blank card batches and fulfil requisitions"),
    group="cards",
    roles=["cashier", "finance_manager"],
)
CARDS_REQUISITION = define(
    "cards.requisition",
    N_("Requisition blank cards for the property office"),
    group="cards",
    roles=["front_desk_clerk", "cs_supervisor"],
)
CARDS_ISSUE = define(
    "cards.issue",
    N_("Issue cards and take card fees and deposits"),
    group="cards",
    roles=["front_desk_clerk", "cs_supervisor"],
)
CARDS_ISSUE_STAFF = define(
    "cards.issue_staff",
    N_("Issue property staff cards"),
    group="cards",
    roles=["cs_supervisor"],
)
CARDS_MANAGE = define(
    "cards.manage",
    N_("Report cards lost, cancel loss reports, reissue, replace, return and extend cards"),
    group="cards",
    roles=["front_desk_clerk", "cs_supervisor"],
)
CARDS_CANCEL = define(
    "cards.cancel",
    N_("Cancel cards on ownership change or when staff leave"),
    group="cards",
    roles=["cs_supervisor", "department_manager"],
)
CARDS_POLICY = define(
    "cards.policy",
    N_("Edit the card policy of a property"),
    group="cards",
    roles=["cs_supervisor", "department_manager"],
)
CARDS_REPORT = define(
    "cards.report",
    N_("View card registers and the quarterly card report"),
    group="cards",
    roles=["cs_supervisor", "department_manager", "operations_director", "data_analyst"],
)
