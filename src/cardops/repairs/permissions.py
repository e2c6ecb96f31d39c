"""Permissions of the repair workshop and field service."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

REPAIRS_VIEW = define(
    "repairs.view",
    N_("View repair cases, RMA batches and field visits"),
    group="repairs",
    roles=[
        "after_sales_specialist",
        "technician",
        "warehouse_supervisor",
        "call_agent",
        "call_supervisor",
        "operations_director",
    ],
)
REPAIRS_INTAKE = define(
    "repairs.intake",
    N_("Receive faulty terminals with the appraisal form"),
    group="repairs",
    roles=["after_sales_specialist"],
)
REPAIRS_INSPECT = define(
    "repairs.inspect",
    N_("Inspect faulty terminals and record in-house repairs"),
    group="repairs",
    roles=["technician"],
)
REPAIRS_MANAGE = define(
    "repairs.manage",
    N_("Decide on repairs, lend loaners, record replacements and return units"),
    group="repairs",
    roles=["after_sales_specialist"],
)
REPAIRS_RMA = define(
    "repairs.rma",
    N_("Send RMA batches to the factory and receive them back"),
    group="repairs",
    roles=["after_sales_specialist", "warehouse_supervisor"],
)
VISITS_EDIT = define(
    "repairs.visits",
    N_("Schedule and record field service visits"),
    group="repairs",
    roles=["technician", "after_sales_specialist"],
)
CHECKLIST_MANAGE = define(
    "repairs.checklist",
    N_("Configure the preventive checklist of field visits"),
    group="repairs",
    roles=["after_sales_specialist"],
)
