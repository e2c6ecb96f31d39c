"""Permissions of the parties domain: persons, organisations, documents."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

PARTIES_VIEW = define(
    "parties.view",
    N_("View persons and organisations"),
    group="parties",
    roles=[
        "front_desk_clerk",
        "cs_supervisor",
        "department_manager",
        "cashier",
        "channel_specialist",
        "channel_supervisor",
        "business_manager",
        "finance_manager",
        "operations_director",
        "user_mgmt_reviewer",
        "call_agent",
        "call_supervisor",
        "after_sales_specialist",
        "risk_officer",
    ],
)
PARTIES_EDIT = define(
    "parties.edit",
    N_("Register and edit persons and organisations"),
    group="parties",
    roles=[
        "front_desk_clerk",
        "cs_supervisor",
        "channel_specialist",
        "channel_supervisor",
        "business_manager",
        "user_mgmt_reviewer",
    ],
)
DOCUMENTS_VIEW = define(
    "documents.view",
    N_("View and download documents"),
    group="parties",
    roles=[
        "front_desk_clerk",
        "cs_supervisor",
        "department_manager",
        "cashier",
        "channel_specialist",
        "channel_supervisor",
        "business_manager",
        "finance_manager",
        "operations_director",
        "user_mgmt_reviewer",
        "call_supervisor",
        "after_sales_specialist",
        "technician",
        "risk_officer",
    ],
)
DOCUMENTS_UPLOAD = define(
    "documents.upload",
    N_("Upload documents"),
    group="parties",
    roles=[
        "front_desk_clerk",
        "cs_supervisor",
        "cashier",
        "channel_specialist",
        "channel_supervisor",
        "business_manager",
        "user_mgmt_reviewer",
        "call_agent",  # attachments of tickets, photos of return requests (not viewing ID copies)
        "call_supervisor",
        "after_sales_specialist",
        "technician",  # photos and signatures of repairs and field visits
    ],
)
