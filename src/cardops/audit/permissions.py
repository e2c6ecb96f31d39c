"""Permissions of the audit domain."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

AUDIT_VIEW = define(
    "audit.view",
    N_("Search the audit log"),
    group="audit",
    roles=["operations_director", "risk_officer", "finance_manager"],
)
AUDIT_VERIFY = define(
    "audit.verify", N_("Verify the audit chain"), group="audit", roles=["operations_director"]
)
