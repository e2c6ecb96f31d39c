"""``cardops users …``: manage users from the command line (acts as the system user)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from cardops.auth import service
from cardops.core.db import unit_of_work

NAME = "users"
app = typer.Typer(help="Users, roles and the permission review.", no_args_is_help=True)
out = Console()


@app.command("list")
def list_users() -> None:
    """List users with their roles and last login."""
    with unit_of_work() as session:
        table = Table("user", "name", "active", "roles", "last login")
        for user in service.list_users(session=session, actor=service.system_user(session)):
            table.add_row(
                user.username,
                user.display_name,
                "yes" if user.is_active else "no",
                ", ".join(sorted(service.role_codes_of(user))),
                user.last_login_at.isoformat(timespec="minutes") if user.last_login_at else "",
            )
        out.print(table)


@app.command("create")
def create(
    username: str,
    display_name: str = typer.Option(..., "--name", help="The person's name."),
    role: list[str] = typer.Option([], "--role", help="Role code; repeat for several."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
    email: str = typer.Option("", help="E-mail address."),
) -> None:
    """Create a user; they must change the password at first login."""
    with unit_of_work() as session:
        user = service.create_user(
            session=session,
            actor=service.system_user(session),
            username=username,
            display_name=display_name,
            password=password,
            roles=role,
            email=email,
        )
        out.print(f"created {user.username}")


@app.command("set-password")
def set_password(
    username: str,
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Set a temporary password (to be changed at next login) and unlock the account."""
    with unit_of_work() as session:
        user = _get(session, username)
        service.reset_password(
            session=session,
            actor=service.system_user(session),
            user_id=user.id,
            new_password=password,
        )
        out.print(f"password set for {username}; it must be changed at next login")


@app.command("grant")
def grant(username: str, role: str) -> None:
    """Give a user a role."""
    with unit_of_work() as session:
        user = _get(session, username)
        service.grant_role(
            session=session, actor=service.system_user(session), user_id=user.id, role_code=role
        )
        out.print(f"{username} now holds {role}")


@app.command("revoke")
def revoke(username: str, role: str) -> None:
    """Take a role away from a user."""
    with unit_of_work() as session:
        user = _get(session, username)
        service.revoke_role(
            session=session, actor=service.system_user(session), user_id=user.id, role_code=role
        )
        out.print(f"{username} no longer holds {role}")


@app.command("unlock")
def unlock(username: str) -> None:
    """Unlock an account locked after failed logins."""
    with unit_of_work() as session:
        user = _get(session, username)
        service.unlock_user(session=session, actor=service.system_user(session), user_id=user.id)
        out.print(f"{username} unlocked")


@app.command("review")
def review() -> None:
    """The permission review: who holds which role, since when, last login."""
    with unit_of_work() as session:
        table = Table(
            "user", "active", "role", "since", "granted by", "last login", "password changed"
        )
        for row in service.permission_review(session=session, actor=service.system_user(session)):
            table.add_row(
                row.username,
                "yes" if row.is_active else "no",
                row.role_code or "-",
                row.granted_at.date().isoformat() if row.granted_at else "",
                row.granted_by or "",
                row.last_login_at.date().isoformat() if row.last_login_at else "never",
                row.password_changed_at.date().isoformat(),
            )
        out.print(table)


def _get(session, username: str):  # type: ignore[no-untyped-def]
    from cardops.core.errors import NotFound

    user = service.find_user(session, username)
    if user is None or user.is_system:
        raise NotFound("No user named “{username}”.", username=username)
    return user
