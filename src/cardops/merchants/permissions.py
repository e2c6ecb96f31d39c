"""Permissions of the merchants domain: onboarding with KYC, activation cases, reports."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

MERCHANTS_VIEW = define(
    "merchants.view",
    N_("View merchants and activation cases"),
    group="merchants",
    roles=[
        "channel_specialist",
        "channel_supervisor",
        "business_manager",
        "finance_manager",
        "operations_director",
        "user_mgmt_reviewer",
        "call_agent",
        "call_supervisor",
        "after_sales_specialist",
        "data_analyst",
        "risk_officer",
    ],
)
MERCHANTS_EDIT = define(
    "merchants.edit",
    N_("Register merchants, upload their documents and submit them for KYC review"),
    group="merchants",
    roles=["channel_specialist", "user_mgmt_reviewer"],
)
MERCHANTS_KYC = define(
    "merchants.kyc",
    N_("Review merchants' KYC documents and approve or reject them"),
    group="merchants",
    roles=["user_mgmt_reviewer"],
)
MERCHANTS_STATUS = define(
    "merchants.status",
    N_("Suspend, reinstate and close approved merchants"),
    group="merchants",
    roles=["user_mgmt_reviewer", "business_manager", "operations_director"],
)
ACTIVATIONS_APPLY = define(
    "merchants.apply",
    N_("File activation, change and cancellation applications for terminals"),
    group="merchants",
    roles=["channel_specialist", "user_mgmt_reviewer"],
)
ACTIVATIONS_REVIEW = define(
    "merchants.review",
    N_("Review activation cases of one's region, record platform verdicts and archive cases"),
    group="merchants",
    roles=["user_mgmt_reviewer", "operations_director"],
)
ACTIVATIONS_REVIEW_ALL = define(
    "merchants.review_all",
    N_("Review activation cases of every region"),
    group="merchants",
    roles=["operations_director"],
)
ACTIVATIONS_CALLBACK = define(
    "merchants.callback",
    N_("Record the callback to the user of an activation case"),
    group="merchants",
    roles=["user_mgmt_reviewer", "call_agent", "call_supervisor"],
)
ACTIVATIONS_REPORTS = define(
    "merchants.reports",
    N_("View activation reports and overdue activations"),
    group="merchants",
    roles=[
        "user_mgmt_reviewer",
        "channel_supervisor",
        "business_manager",
        "operations_director",
        "data_analyst",
    ],
)
