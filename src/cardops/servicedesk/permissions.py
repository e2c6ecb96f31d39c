"""Permissions of the service desk: tickets, SLA settings, callbacks, surveys, reports."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

_DESK = ["call_agent", "call_supervisor", "after_sales_specialist"]

TICKETS_VIEW = define(
    "servicedesk.view",
    N_("View service desk tickets"),
    group="servicedesk",
    roles=[*_DESK, "technician", "operations_director", "data_analyst"],
)
TICKETS_EDIT = define(
    "servicedesk.edit",
    N_("Create tickets, reply, add notes, change their state and record callbacks"),
    group="servicedesk",
    roles=[*_DESK, "technician"],
)
TICKETS_ASSIGN = define(
    "servicedesk.assign",
    N_("Assign tickets to teams and people, merge duplicates"),
    group="servicedesk",
    roles=_DESK,
)
SLA_MANAGE = define(
    "servicedesk.sla",
    N_("Edit SLA targets, the business calendar, holidays and teams"),
    group="servicedesk",
    roles=["call_supervisor"],
)
REPORTS_VIEW = define(
    "servicedesk.reports",
    N_("Service desk reports, agent KPIs and survey results"),
    group="servicedesk",
    roles=["call_supervisor", "operations_director", "data_analyst"],
)
