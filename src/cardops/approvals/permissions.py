"""Permissions of the approvals domain.

Deciding on a step is not a permission: it belongs to whoever holds the step's role.
"""

from cardops.auth.permissions import ALL_ROLES, define
from cardops.core.i18n import N_

# Roles that do not originate requests of their own by default (still editable per role).
_NOT_SUBMITTERS = {"picker", "checker", "data_analyst", "key_custodian"}

APPROVALS_DEFINE = define(
    "approvals.define",
    N_("Define approval chains"),
    group="approvals",
    roles=["operations_director"],
)
APPROVALS_SUBMIT = define(
    "approvals.submit",
    N_("Submit requests for approval"),
    group="approvals",
    roles=[r for r in ALL_ROLES if r not in _NOT_SUBMITTERS],
)
APPROVALS_VIEW_ALL = define(
    "approvals.view_all",
    N_("View every approval request"),
    group="approvals",
    roles=["operations_director", "risk_officer"],
)
