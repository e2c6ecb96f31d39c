"""Configuration from the environment (prefix ``CARDOPS_``) and an optional ``.env`` file."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    # an empty variable (CARDOPS_SUPPORT_SMTP_PORT=) means the default, as it always did
    model_config = SettingsConfigDict(
        env_prefix="CARDOPS_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    var_dir: Path = Path("var")
    database_url: str = ""
    secret_key: str = ""
    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"
    # Security policy
    password_max_age_days: int = 90  # quarterly rotation (seed 000 §3.1.2)
    password_min_length: int = 10
    lockout_threshold: int = 5
    lockout_minutes: int = 15
    session_hours: int = 12
    token_hours: int = 12
    # Notifications
    smtp_url: str = ""  # smtp://user:pass@host:port?starttls=1 ; empty: e-mail stays queued
    smtp_from: str = "cardops@localhost"
    sms_adapter: str = "log"
    notify_max_attempts: int = 5
    # Redis, shared by every process (risk aggregates of the gateways, public rate limits);
    # empty: each process keeps its own
    redis_url: str = ""
    log_level: str = "INFO"
    # Acquiring gateway (ISO 8583)
    onus_bin: str = "621234"  # the operator's own one-card BIN: paid from the wallets
    credit_bins: str = "625678"  # card-number prefixes of credit cards, comma-separated
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8583
    gateway_metrics_port: int = 0  # Prometheus metrics; 0: none
    upstream: str = ""  # the upstream issuer host "host:port"; empty: off-us cards get 91
    upstream_zpk: str = ""  # zone PIN key (32 hex); empty: the development key of issuer-sim
    upstream_timeout_ms: int = 2000
    gateway_max_amount: int = 5_000_000  # fen per transaction
    gateway_terminal_daily_limit: int = 0  # fen per terminal and day; 0: none
    gateway_card_daily_count: int = 100_000
    gateway_pin_tries: int = 3
    gateway_batch_linger_us: int = 2000
    gateway_alert_to: str = "ops@cardops.local"
    # Risk step of the gateway
    risk: str = "on"  # off / 0 / false / no: no risk step
    risk_redis_prefix: str = "cardops:risk"
    risk_sla_minutes: int = 30
    risk_stats_file: str = ""  # write the risk step's timings here (benchmarks)
    # Service desk
    public_url: str = ""  # where customers reach the public pages; empty: host and port
    support_address: str = ""  # the support mailbox; empty: smtp_from
    support_smtp_host: str = "127.0.0.1"
    support_smtp_port: int = 0  # inbound support mail (SMTP); 0: none
    sla_scan_seconds: float = 60
    # Door controllers poll for new decisions this often
    access_poll_ms: int = Field(default=500, ge=0)
    # Bank clearing-file simulator: its fee rate (fraction, e.g. 0.0025)
    bank_fee_rate: str = "0.0025"
    # Receipts
    pdf_font: str = ""
    # Demo data
    demo_password: str = ""
    # Server
    host: str = "127.0.0.1"
    port: int = 8000
    cookie_secure: bool = False
    documents_max_bytes: int = Field(default=20 * 1024 * 1024)
    max_request_bytes: int = Field(default=64 * 1024 * 1024)  # larger request bodies get a 413

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'cardops.db').as_posix()}"

    @property
    def documents_dir(self) -> Path:
        return self.var_dir / "documents"

    def effective_secret_key(self) -> str:
        """The configured secret, or one generated once and kept under ``var/``."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


@lru_cache
def get_settings() -> Settings:
    """The settings, read once; a value that does not fit its setting is a clear error that
    names the environment variable."""
    try:
        return Settings()
    except ValidationError as exc:
        from cardops.core.errors import ValidationFailed

        problem = exc.errors()[0]
        name = "CARDOPS_" + "_".join(str(part) for part in problem["loc"]).upper()
        raise ValidationFailed(
            "The setting {name} is not valid: {reason}",
            field=name,
            name=name,
            reason=problem["msg"],
        ) from None


def reset_settings() -> None:
    get_settings.cache_clear()
