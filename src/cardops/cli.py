"""The ``cardops`` command: one sub-command group per domain."""

from __future__ import annotations

import logging
import os
import signal
import sys

import typer
from rich.console import Console

from cardops.core.registry import domain_modules

app = typer.Typer(
    help="cardops: cards, terminals and the people who run them.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
out = Console()
err = Console(stderr=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations up to the newest, and create default roles."""
    from cardops.core.config import get_settings
    from cardops.core.db import get_engine
    from cardops.core.migrate import bootstrap

    bootstrap(get_engine())
    out.print(
        f"[green]Database is up to date[/green]: {_safe_url(get_settings().effective_database_url)}"
    )


@app.command()
def demo(
    if_empty: bool = typer.Option(False, "--if-empty", help="Do nothing when users already exist."),
) -> None:
    """Load demo data: an admin with every role, one user per default role, sample records."""
    from cardops.core.demo_loader import load_demo

    load_demo(if_empty=if_empty, console=out)


@app.command()
def serve(
    host: str = typer.Option(
        None, help="Address to listen on (default CARDOPS_HOST or 127.0.0.1)."
    ),
    port: int = typer.Option(None, help="Port (default CARDOPS_PORT or 8000)."),
    reload: bool = typer.Option(False, help="Reload on code changes (development)."),
    with_gateway: bool = typer.Option(
        False, "--with-gateway", help="Also run the ISO 8583 gateway (cardops gateway) beside it."
    ),
    with_issuer_sim: bool = typer.Option(
        False,
        "--with-issuer-sim",
        help="With --with-gateway and no CARDOPS_UPSTREAM: also run the issuer simulator on"
        " 127.0.0.1 as the gateway's upstream host (development).",
    ),
    issuer_sim_port: int = typer.Option(8584, help="Port of the issuer simulator."),
) -> None:
    """Serve the web console and the REST API (and, with --with-gateway, the ISO 8583 gateway)."""
    import subprocess

    import uvicorn

    from cardops.core.config import get_settings

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    children: list[subprocess.Popen[bytes]] = []
    if with_gateway:
        env = dict(os.environ)
        if with_issuer_sim and not settings.upstream:
            sim = [sys.executable, "-m", "cardops.cli", "gateway", "issuer-sim"]
            children.append(
                subprocess.Popen(
                    [*sim, "--port", str(issuer_sim_port)], preexec_fn=_die_with_parent
                )
            )
            env["CARDOPS_UPSTREAM"] = f"127.0.0.1:{issuer_sim_port}"
            out.print(
                f"issuer simulator: tcp://127.0.0.1:{issuer_sim_port} (the gateway's upstream)"
            )
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "cardops.cli", "gateway"],
                env=env,
                preexec_fn=_die_with_parent,
            )
        )
        out.print(
            f"ISO 8583 gateway: tcp://{settings.gateway_host}:{settings.gateway_port}"
            " (CARDOPS_GATEWAY_HOST/PORT)"
        )
        # uvicorn shuts down on SIGTERM and then raises it again for the default handler,
        # which ended this process before the ``finally`` below: the gateway was left
        # running on its port. Raised as SystemExit instead, the ``finally`` stops it.
        signal.signal(signal.SIGTERM, _exit_on_signal)
    out.print(f"cardops console:  [bold]http://{host}:{port}/[/bold]")
    out.print(f"API docs:         http://{host}:{port}/docs")
    try:
        uvicorn.run("cardops.web.app:serve_app", factory=True, host=host, port=port, reload=reload)
    finally:
        for child in reversed(children):
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _die_with_parent() -> None:
    """In a child of ``cardops serve`` (the gateway, the issuer simulator), before it runs:
    the kernel sends it SIGTERM when serve dies, however it dies (Linux; elsewhere the
    ``finally`` of serve stops it)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _safe_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _register_domains() -> None:
    for module in domain_modules("cli"):
        app.add_typer(module.app, name=module.NAME)
        for name, sub_app in getattr(module, "TOP_LEVEL", {}).items():
            app.add_typer(sub_app, name=name)
        # single top-level commands, e.g. ``cardops settle DATE``: {name: function}
        for name, command in getattr(module, "TOP_LEVEL_COMMANDS", {}).items():
            app.command(name)(command)


_register_domains()


def main() -> None:
    from cardops.core.config import get_settings
    from cardops.core.errors import CardopsError

    try:
        level = get_settings().log_level.upper()
        logging.basicConfig(
            level=level if level in logging.getLevelNamesMapping() else "INFO",
            stream=sys.stderr,
            format="%(levelname)s %(name)s: %(message)s",
        )
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
        app()
    except CardopsError as exc:
        err.print(f"[red]{exc.code}[/red]: {exc.localized()}")
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
