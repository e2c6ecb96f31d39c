"""Settings come from ``CARDOPS_`` environment variables through core.config, the domains'
among them; a value that does not fit is a clear error naming the variable, on the command
line too, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cardops.core.config import get_settings, reset_settings
from cardops.core.errors import ValidationFailed
from cardops.gateway.config import GatewayConfig
from cardops.risk.runtime import RiskConfig


def test_domain_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDOPS_GATEWAY_PORT", "9583")
    monkeypatch.setenv("CARDOPS_CREDIT_BINS", "625678, 628888")
    monkeypatch.setenv("CARDOPS_RISK", "off")
    monkeypatch.setenv("CARDOPS_SUPPORT_SMTP_PORT", "")  # empty: the default, as before
    reset_settings()
    try:
        assert get_settings().support_smtp_port == 0
        config = GatewayConfig()
        assert config.port == 9583 and config.credit_bins == ("625678", "628888")
        assert config.upstream_zpk  # the development key when none is set
        assert RiskConfig().enabled is False
    finally:
        for name in (
            "CARDOPS_GATEWAY_PORT",
            "CARDOPS_CREDIT_BINS",
            "CARDOPS_RISK",
            "CARDOPS_SUPPORT_SMTP_PORT",
        ):
            monkeypatch.delenv(name)
        reset_settings()


def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDOPS_GATEWAY_PORT", "eighty")
    reset_settings()
    try:
        with pytest.raises(ValidationFailed) as exc:
            get_settings()
        assert exc.value.field == "CARDOPS_GATEWAY_PORT"
    finally:
        monkeypatch.delenv("CARDOPS_GATEWAY_PORT")
        reset_settings()
    env = dict(os.environ, CARDOPS_GATEWAY_PORT="eighty")
    done = subprocess.run(
        [sys.executable, "-m", "cardops.cli", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "CARDOPS_GATEWAY_PORT" in done.stderr and "Traceback" not in done.stderr
