"""Gateway settings, read from the environment (``CARDOPS_`` prefix) in this module."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEV_ZPK = "0123456789ABCDEFFEDCBA9876543210"  # development zone PIN key shared with issuer-sim


def _int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class GatewayConfig:
    onus_bin: str = field(default_factory=lambda: os.environ.get("CARDOPS_ONUS_BIN", "621234"))
    # card-number prefixes of credit cards (everything else, on-us included, is debit)
    credit_bins: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            p.strip()
            for p in os.environ.get("CARDOPS_CREDIT_BINS", "625678").split(",")
            if p.strip()
        )
    )
    host: str = field(default_factory=lambda: os.environ.get("CARDOPS_GATEWAY_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _int("CARDOPS_GATEWAY_PORT", 8583))
    metrics_port: int = field(default_factory=lambda: _int("CARDOPS_GATEWAY_METRICS_PORT", 0))
    # upstream issuer host "host:port"; empty: every card off our BIN gets 91
    upstream: str = field(default_factory=lambda: os.environ.get("CARDOPS_UPSTREAM", ""))
    upstream_zpk: str = field(
        default_factory=lambda: os.environ.get("CARDOPS_UPSTREAM_ZPK", DEV_ZPK)
    )
    upstream_timeout_ms: int = field(
        default_factory=lambda: _int("CARDOPS_UPSTREAM_TIMEOUT_MS", 2000)
    )
    max_amount: int = field(default_factory=lambda: _int("CARDOPS_GATEWAY_MAX_AMOUNT", 5_000_000))
    terminal_daily_limit: int = field(
        default_factory=lambda: _int("CARDOPS_GATEWAY_TERMINAL_DAILY_LIMIT", 0)
    )
    card_daily_count: int = field(
        default_factory=lambda: _int("CARDOPS_GATEWAY_CARD_DAILY_COUNT", 100_000)
    )
    pin_tries: int = field(default_factory=lambda: _int("CARDOPS_GATEWAY_PIN_TRIES", 3))
    max_batch: int = 256
    # a batch smaller than ``batch_linger_below`` waits this long for more requests first
    batch_linger_ms: float = field(
        default_factory=lambda: _int("CARDOPS_GATEWAY_BATCH_LINGER_US", 2000) / 1000
    )
    batch_linger_below: int = 8
    node: str = ""
    decline_alert_ratio: float = 0.5  # alert when more than half of the last minute declines
    alert_recipient: str = field(
        default_factory=lambda: os.environ.get("CARDOPS_GATEWAY_ALERT_TO", "ops@cardops.local")
    )
