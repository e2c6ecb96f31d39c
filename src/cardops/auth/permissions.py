"""The permission registry: every action is a named permission; roles bundle them.

Each domain declares its permissions with ``define`` in its own ``permissions.py`` and says
which default roles get them. Roles stay editable: defaults are applied once per permission.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cardops.core.i18n import N_


@dataclass(frozen=True, slots=True)
class Permission:
    code: str
    label: str  # English source string, translated on display
    group: str


PERMISSIONS: dict[str, Permission] = {}
DEFAULT_GRANTS: dict[str, set[str]] = {}

# Default roles from SPEC §1 and the seeds' org charts: code -> (English, Chinese).
DEFAULT_ROLES: dict[str, tuple[str, str]] = {
    "sysadmin": ("System administrator", "系统管理员"),
    "front_desk_clerk": ("Front-desk clerk", "客服前台"),
    "cs_supervisor": ("Customer-service supervisor", "客服主管"),
    "department_manager": ("Department manager", "部门经理"),
    "cashier": ("Finance / cashier", "财务出纳"),
    "channel_specialist": ("Channel specialist", "渠道专员"),
    "channel_supervisor": ("Channel supervisor", "渠道主管"),
    "business_manager": ("Business manager", "业务经理"),
    "finance_manager": ("Finance manager", "财务经理"),
    "operations_director": ("Operations director", "运营总监"),
    "warehouse_supervisor": ("Warehouse supervisor", "仓库主管"),
    "inbound_clerk": ("Inbound clerk", "入库员"),
    "picker": ("Picker", "拣货员"),
    "checker": ("Checker", "复核员"),
    "user_mgmt_reviewer": ("User-management reviewer", "用户管理审核员"),
    "call_agent": ("Call-centre agent", "呼叫中心坐席"),
    "call_supervisor": ("Call-centre supervisor", "呼叫中心主管"),
    "after_sales_specialist": ("After-sales specialist", "售后专员"),
    "data_analyst": ("Data analyst", "数据分析员"),
    "risk_officer": ("Risk officer", "风控专员"),
    "key_custodian": ("Key custodian", "密钥保管员"),
    "technician": ("Technician", "维修技术员"),
}

ALL_ROLES = tuple(DEFAULT_ROLES)


def define(code: str, label: str, *, group: str, roles: Iterable[str] = ()) -> str:
    """Declare a permission and the default roles that hold it (sysadmin holds all)."""
    PERMISSIONS[code] = Permission(code=code, label=label, group=group)
    for role in {"sysadmin", *roles}:
        if role not in DEFAULT_ROLES:
            raise ValueError(f"unknown default role {role!r} for permission {code!r}")
        DEFAULT_GRANTS.setdefault(role, set()).add(code)
    return code


def load_all() -> dict[str, Permission]:
    from cardops.core.registry import domain_modules

    domain_modules("permissions")
    return PERMISSIONS


# The platform's own permissions.
USERS_VIEW = define("users.view", N_("View users and roles"), group="auth")
USERS_MANAGE = define(
    "users.manage", N_("Create users, reset passwords, grant roles"), group="auth"
)
ROLES_MANAGE = define("roles.manage", N_("Create roles and edit their permissions"), group="auth")
PERMISSION_REVIEW = define(
    "users.review",
    N_("Run the permission review report"),
    group="auth",
    roles=["operations_director"],
)
