"""Demo data for a first start: users with a generated (or configured) password, sample records.

Each domain may add its own sample records in ``<domain>/demo.py`` with
``load(session: Session, ctx: DemoContext) -> None``.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field

from rich.console import Console
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.core.config import get_settings
from cardops.core.db import get_engine, unit_of_work
from cardops.core.migrate import bootstrap
from cardops.core.registry import domain_modules


@dataclass
class DemoContext:
    password: str
    admin: User
    users: dict[str, User] = field(default_factory=dict)  # role code -> demo user


def generate_password() -> str:
    letters = "".join(secrets.choice(string.ascii_letters) for _ in range(8))
    digits = "".join(secrets.choice(string.digits) for _ in range(4))
    return f"{letters}-{digits}"


def load_demo(*, if_empty: bool, console: Console) -> None:
    from cardops.auth import service as auth

    settings = get_settings()
    bootstrap(get_engine())
    with unit_of_work() as session:
        if auth.count_users(session) > 0:
            if if_empty:
                creds = settings.var_dir / "demo-logins.txt"
                if creds.exists():
                    console.print(f"Demo logins are in [bold]{creds}[/bold].")
                return
            console.print("[yellow]Users exist already; demo data is loaded only once.[/yellow]")
            return
        password = settings.demo_password or generate_password()
        ctx = _create_users(session, password)
        for module in domain_modules("demo"):
            module.load(session, ctx)
        # every user the demo created (domains add some: provider staff, …), admin first
        usernames = sorted(
            u.username for u in auth.list_users(session=session, actor=auth.system_user(session))
        )
    usernames.sort(key=lambda name: name != "admin")
    lines = [f"{'user':<24} password"] + [f"{name:<24} {password}" for name in usernames]
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    creds = settings.var_dir / "demo-logins.txt"
    creds.write_text(
        "Demo logins (admin holds every role; each role has a user named after it)\n"
        + "\n".join(lines)
        + "\n"
    )
    creds.chmod(0o600)
    console.print(f"[green]Demo data loaded.[/green] Logins (also kept in {creds}):")
    console.print(f"  admin / {password}   (every role)")
    console.print(f"  one user per role, named after it, e.g. front_desk_clerk / {password}")


def _create_users(session: Session, password: str) -> DemoContext:
    from cardops.auth import service as auth
    from cardops.auth.permissions import DEFAULT_ROLES

    system = auth.system_user(session)
    admin = auth.create_user(
        session=session,
        actor=system,
        username="admin",
        display_name="Administrator",
        password=password,
        roles=list(DEFAULT_ROLES),
        must_change_password=False,
    )
    ctx = DemoContext(password=password, admin=admin)
    for code, (_, name_zh) in DEFAULT_ROLES.items():
        ctx.users[code] = auth.create_user(
            session=session,
            actor=system,
            username=code,
            display_name=name_zh,
            password=password,
            roles=[code],
            must_change_password=False,
        )
    return ctx
