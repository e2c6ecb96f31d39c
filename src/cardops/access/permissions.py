"""Permissions of access control: topology, grants, door decisions, logs and door codes."""

from cardops.auth.permissions import define
from cardops.core.i18n import N_

ACCESS_VIEW = define(
    "access.view",
    N_("View properties, doors, access groups and schedules"),
    group="access",
    roles=["front_desk_clerk", "cs_supervisor", "department_manager", "data_analyst"],
)
ACCESS_MANAGE = define(
    "access.manage",
    N_("Edit properties, buildings, units, doors, controllers, access groups and schedules"),
    group="access",
    roles=["cs_supervisor", "department_manager"],
)
ACCESS_GRANT = define(
    "access.grant",
    N_("Grant and revoke door access on cards"),
    group="access",
    roles=["front_desk_clerk", "cs_supervisor"],
)
ACCESS_DECIDE = define(
    "access.decide",
    N_("Ask for door decisions, pull credentials and upload events (door controllers)"),
    group="access",
)
ACCESS_LOG = define(
    "access.log",
    N_("View the door access log"),
    group="access",
    roles=["front_desk_clerk", "cs_supervisor", "department_manager", "data_analyst"],
)
DOOR_CODES_VIEW = define(
    "access.door_codes.view",
    N_("See which door codes exist and when they are valid (never the codes)"),
    group="access",
    roles=["cs_supervisor", "department_manager"],
)
DOOR_CODES_REVEAL = define(
    "access.door_codes.reveal",
    N_("Reveal a door code (audited)"),
    group="access",
    roles=["cs_supervisor"],
)
DOOR_CODES_ROTATE = define(
    "access.door_codes.rotate",
    N_("Generate the next quarter's door codes and notify residents"),
    group="access",
    roles=["cs_supervisor"],
)
