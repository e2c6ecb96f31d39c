"""Permissions of the backup domain."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

BACKUPS_MANAGE = define(
    "backups.manage", N_("Take backups and restore them"), group="backup", roles=[]
)
