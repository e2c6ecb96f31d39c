"""``cardops gateway``: run the acquiring gateway; ``issuer-sim`` and ``loadgen`` beside it;
assign on-us card numbers and PINs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.console import Console

from cardops.gateway.aio import run_loop
from cardops.gateway.config import GatewayConfig

NAME = "gateway"
app = typer.Typer(
    help="Acquiring gateway (ISO 8583): run it, the issuer simulator, the load generator.",
    invoke_without_command=True,
)
out = Console()


@app.callback()
def gateway(
    ctx: typer.Context,
    host: str = typer.Option(None, help="Address (default CARDOPS_GATEWAY_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default CARDOPS_GATEWAY_PORT or 8583)."),
    upstream: str = typer.Option(
        None, help="Upstream issuer host:port (default CARDOPS_UPSTREAM; empty: none)."
    ),
    metrics_port: int = typer.Option(
        None, help="Serve Prometheus metrics on this port (default CARDOPS_GATEWAY_METRICS_PORT)."
    ),
) -> None:
    """Run the gateway (several processes may share the port)."""
    if ctx.invoked_subcommand is not None:
        return
    from cardops.gateway.server import serve

    config = GatewayConfig()
    config.host = host or config.host
    config.port = port if port is not None else config.port
    if upstream is not None:
        config.upstream = upstream
    if metrics_port is not None:
        config.metrics_port = metrics_port
    check_settings(config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out.print(
        f"cardops gateway:  [bold]{config.host}:{config.port}[/bold] (ISO 8583, 2-byte length)"
    )
    run_loop(serve(config))


def check_settings(config: GatewayConfig) -> None:
    """Refuse to start on a setting that would only fail later, e.g. alerts that could never
    be sent (the outbox refuses an address that is not one)."""
    from cardops.core.errors import ValidationFailed
    from cardops.notify.service import normalize_email

    try:
        normalize_email(config.alert_recipient)
    except ValidationFailed as exc:
        raise ValidationFailed(
            "CARDOPS_GATEWAY_ALERT_TO: “{value}” is not a valid e-mail address.",
            field="CARDOPS_GATEWAY_ALERT_TO",
            value=config.alert_recipient[:80],
        ) from exc


@app.command("issuer-sim")
def issuer_sim(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8584, help="Port."),
    slow: int = typer.Option(0, "--slow", help="Answer every request this many ms late."),
    drop_rate: float = typer.Option(0.0, "--drop-rate", help="Share of requests left unanswered."),
) -> None:
    """The upstream issuer host: test cards with PINs, balances, expiry and stop states."""
    from cardops.gateway.simulator import IssuerSim, sim_cards

    async def main() -> None:
        sim = IssuerSim(slow_ms=slow, drop_rate=drop_rate)
        server = await sim.start(host, port)
        out.print(f"issuer simulator: [bold]{host}:{port}[/bold], {len(sim.cards)} cards")
        for card in sim_cards()[:6]:
            out.print(f"  {card.pan} PIN {card.pin} exp {card.expiry} {card.state} {card.balance}")
        async with server:
            await server.serve_forever()

    run_loop(main())


@app.command("loadgen")
def loadgen(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8583),
    connections: int = typer.Option(50, "--connections", "-n", min=1, max=2000),
    seconds: float = typer.Option(10.0, "--seconds", min=0.5, max=3600),
    route: str = typer.Option("on-us", help="Cards of the lab file to use: on-us or upstream."),
    lab: Path = typer.Option(None, help="Lab file (default var/lab.json)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    rate: float = typer.Option(
        None,
        "--rate",
        min=1,
        help="Open loop: this many requests/s in total, spread over the connections, latency"
        " counted from each request's scheduled send time (default: closed loop, capacity).",
    ),
) -> None:
    """Drive N terminal connections (sign-on, then purchases with PIN and MAC)."""
    from cardops.core.clock import today
    from cardops.core.config import get_settings
    from cardops.gateway.loadgen import load_lab, run_load

    path = lab or get_settings().var_dir / "lab.json"
    data = load_lab(path)
    # cards with at least ¥1,000 on them (a run of 1-fen purchases never spends that; the
    # simulator's ¥1 card would answer 51 once spent) that have not expired (54)
    this_month = today().strftime("%y%m")
    cards = [
        c
        for c in data.get("cards", [])
        if c.get("route") == route
        and c.get("balance", 0) >= 100_000
        and str(c.get("expiry", "")) >= this_month
    ]
    result = run_loop(
        run_load(
            host=host,
            port=port,
            terminals=data.get("terminals", []),
            cards=cards,
            connections=connections,
            seconds=seconds,
            rate=rate,
        )
    )
    summary = result.summary()
    if as_json:
        out.print_json(json.dumps(summary))
        return
    out.print(
        f"{summary['requests']} requests in {summary['seconds']} s: "
        f"[bold]{summary['per_second']}/s[/bold] ({summary['approved_per_second']} approved/s), "
        f"p50 {summary['p50_ms']} ms, p95 {summary['p95_ms']} ms, p99 {summary['p99_ms']} ms"
    )
    out.print(f"response codes: {summary['codes']}; errors: {summary['errors']}")
    if rate:
        out.print(f"paced at {rate:g}/s; sent late (> 1 ms after schedule): {summary['late']}")


@app.command("assign-pan")
def assign_pan(card_number: str, pin: str = typer.Option(None, help="Also set this PIN.")) -> None:
    """Give a one-card card a card number on our BIN (printed once) and optionally a PIN."""
    from cardops.auth.service import system_user
    from cardops.core.db import unit_of_work
    from cardops.gateway import service

    with unit_of_work() as session:
        actor = system_user(session)
        assigned = service.assign_pan(session=session, actor=actor, card_number=card_number)
        if pin:
            service.set_pin(session=session, actor=actor, card_number=card_number, pin=pin)
    out.print(f"card {card_number}: {assigned.pan} expiry {assigned.onus.expiry}")


# Top-level commands ``cardops issuer-sim`` and ``cardops loadgen`` (registered by the CLI).
sim_app = typer.Typer(help="The upstream issuer simulator.", invoke_without_command=True)
sim_app.callback()(issuer_sim)
loadgen_app = typer.Typer(help="The gateway load generator.", invoke_without_command=True)
loadgen_app.callback()(loadgen)

if __name__ == "__main__":
    app()

# Also registered at the top level: `cardops issuer-sim`, `cardops loadgen` (issue 5 names them so).
TOP_LEVEL = {"issuer-sim": sim_app, "loadgen": loadgen_app}
