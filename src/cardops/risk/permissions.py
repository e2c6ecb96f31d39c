"""Permissions of the risk domain: rules, alerts, merchant ratings."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

RISK_VIEW = define(
    "risk.view",
    N_("View risk rules, alerts, merchant ratings, backtests and risk reports"),
    group="risk",
    roles=["risk_officer", "operations_director", "data_analyst"],
)
RISK_RULES = define(
    "risk.rules",
    N_("Write risk rules and scenarios and set their thresholds"),
    group="risk",
    roles=["risk_officer", "operations_director"],
)
RISK_ALERTS = define(
    "risk.alerts",
    N_("Work risk alerts: take, assign, add notes, record the outcome"),
    group="risk",
    roles=["risk_officer", "operations_director"],
)
RISK_RATINGS = define(
    "risk.ratings",
    N_("Rate merchants A–D and set the limits of each rating"),
    group="risk",
    roles=["risk_officer", "operations_director"],
)
RISK_SUSPEND = define(
    "risk.suspend",
    N_("Suspend a merchant from a confirmed fraud alert"),
    group="risk",
    roles=["operations_director", "risk_officer"],
)
