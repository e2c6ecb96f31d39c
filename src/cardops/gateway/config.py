"""Gateway settings: the ``CARDOPS_`` environment settings of :mod:`cardops.core.config`
(``CARDOPS_GATEWAY_PORT``, ``CARDOPS_UPSTREAM`` …) with the gateway's own fixed tuning."""

from __future__ import annotations

from dataclasses import dataclass, field

from cardops.core.config import get_settings

DEV_ZPK = "0123456789ABCDEFFEDCBA9876543210"  # development zone PIN key shared with issuer-sim


def _bins(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


@dataclass
class GatewayConfig:
    onus_bin: str = field(default_factory=lambda: get_settings().onus_bin)
    # card-number prefixes of credit cards (everything else, on-us included, is debit)
    credit_bins: tuple[str, ...] = field(default_factory=lambda: _bins(get_settings().credit_bins))
    host: str = field(default_factory=lambda: get_settings().gateway_host)
    port: int = field(default_factory=lambda: get_settings().gateway_port)
    metrics_port: int = field(default_factory=lambda: get_settings().gateway_metrics_port)
    # upstream issuer host "host:port"; empty: every card off our BIN gets 91
    upstream: str = field(default_factory=lambda: get_settings().upstream)
    upstream_zpk: str = field(default_factory=lambda: get_settings().upstream_zpk or DEV_ZPK)
    upstream_timeout_ms: int = field(default_factory=lambda: get_settings().upstream_timeout_ms)
    max_amount: int = field(default_factory=lambda: get_settings().gateway_max_amount)
    terminal_daily_limit: int = field(
        default_factory=lambda: get_settings().gateway_terminal_daily_limit
    )
    card_daily_count: int = field(default_factory=lambda: get_settings().gateway_card_daily_count)
    pin_tries: int = field(default_factory=lambda: get_settings().gateway_pin_tries)
    max_batch: int = 256
    # a batch smaller than ``batch_linger_below`` waits this long for more requests first
    batch_linger_ms: float = field(
        default_factory=lambda: get_settings().gateway_batch_linger_us / 1000
    )
    batch_linger_below: int = 8
    node: str = ""
    decline_alert_ratio: float = 0.5  # alert when more than half of the last minute declines
    alert_recipient: str = field(default_factory=lambda: get_settings().gateway_alert_to)
