"""Configuration from the environment (prefix ``CARDOPS_``) and an optional ``.env`` file."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARDOPS_", env_file=".env", extra="ignore")

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
    return Settings()


def reset_settings() -> None:
    get_settings.cache_clear()
