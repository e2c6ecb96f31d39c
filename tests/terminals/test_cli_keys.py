"""``cardops terminals import`` and ``cardops keys export-tmk`` on a database of their own
(the commands commit); TMKs encrypted at rest, exported only by a key custodian, audited."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cardops.audit.models import AuditEntry
from cardops.auth.service import system_user
from cardops.cli import app
from cardops.core.config import reset_settings
from cardops.core.db import get_engine, make_engine
from cardops.core.errors import PermissionDenied
from cardops.core.migrate import bootstrap
from cardops.terminals import keys
from cardops.terminals.importer import import_file, sample_csv
from cardops.terminals.models import Terminal
from tests.factories import PASSWORD, make_user
from tests.terminals.helpers import model, supplier


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    bootstrap(engine)
    with Session(engine) as session:
        maker = supplier(session, "DEMO")
        model(session, maker, "DEMO-POS")
        session.commit()
    monkeypatch.setenv("CARDOPS_DATABASE_URL", url)
    monkeypatch.setenv("CARDOPS_VAR_DIR", str(tmp_path / "var"))
    reset_settings()
    get_engine.cache_clear()
    yield engine
    engine.dispose()
    monkeypatch.undo()
    reset_settings()
    get_engine.cache_clear()


def _units(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(Terminal)).scalar_one())


def test_cli_import_exit_codes_and_row_lines(cli_db: Engine, tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "good.csv"
    good.write_bytes(sample_csv(20, model="DEMO-POS", prefix="CLI", start=1))
    result = runner.invoke(
        app, ["terminals", "import", str(good), "--supplier", "DEMO", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert _units(cli_db) == 0

    result = runner.invoke(app, ["terminals", "import", str(good), "--supplier", "DEMO"])
    assert result.exit_code == 0, result.output
    assert "imported 20 units as batch IB" in result.output
    assert _units(cli_db) == 20

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "serial,model,imei\n"
        "NEW-0000001,DEMO-POS,\n"
        "CLI00000001,DEMO-POS,\n"
        "NEW-0000002,NOPE,\n"
        "NEW-0000003,DEMO-POS,123456789012345\n"
    )
    result = runner.invoke(app, ["terminals", "import", str(bad), "--supplier", "DEMO"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.startswith("row ")]
    assert lines == [
        "row 3: serial: Serial CLI00000001 is already registered.",
        "row 4: model: Unknown model “NOPE” for supplier DEMO.",
        "row 5: imei: The IMEI 123456789012345 fails its Luhn check digit.",
    ]
    assert _units(cli_db) == 20  # NEW-0000001 was fine but nothing was imported


def test_export_tmk_needs_a_key_custodian_and_is_audited(cli_db: Engine, tmp_path: Path) -> None:
    with Session(cli_db) as session:
        make_user(session, "key_custodian", username="keeper")
        make_user(session, "warehouse_supervisor", username="boss")
        outcome = import_file(
            session=session,
            actor=system_user(session),
            supplier="DEMO",
            filename="k.csv",
            data=sample_csv(3, model="DEMO-POS", prefix="KEY", start=1),
        )
        assert outcome.batch is not None
        batch = outcome.batch.number
        session.commit()
    out = tmp_path / "keys.csv"
    runner = CliRunner()
    refused = runner.invoke(
        app,
        ["keys", "export-tmk", "--user", "boss", "--batch", batch, "--out", str(out)],
        input=f"{PASSWORD}\n",
    )
    assert refused.exit_code == 1
    assert "permission_denied" in refused.output
    assert not out.exists()
    wrong = runner.invoke(
        app,
        ["keys", "export-tmk", "--user", "keeper", "--serial", "KEY00000001", "--out", str(out)],
        input="not-the-password\n",
    )
    assert wrong.exit_code == 1 and not out.exists()

    result = runner.invoke(
        app,
        ["keys", "export-tmk", "--user", "keeper", "--batch", batch, "--out", str(out)],
        input=f"{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    rows = out.read_text().splitlines()
    assert rows[0] == "serial,tmk_hex,kcv"
    assert [r.split(",")[0] for r in rows[1:]] == ["KEY00000001", "KEY00000002", "KEY00000003"]
    with Session(cli_db) as session:
        for line in rows[1:]:
            serial, tmk_hex, kcv = line.split(",")
            unit = session.execute(select(Terminal).where(Terminal.serial == serial)).scalar_one()
            assert unit.tmk_kcv == kcv == keys.kcv(bytes.fromhex(tmk_hex))
            assert tmk_hex.lower() not in (unit.tmk_encrypted or "").lower()
        entry = session.execute(
            select(AuditEntry).where(AuditEntry.action == "terminal.tmk_exported")
        ).scalar_one()
        assert entry.actor_name == "keeper"
        assert entry.extra is not None and entry.extra["serials"] == [
            "KEY00000001",
            "KEY00000002",
            "KEY00000003",
        ]
        assert rows[1].split(",")[1] not in str(entry.extra)


def test_tmk_is_odd_parity_sealed_and_its_kcv_matches_a_known_vector(db: Session) -> None:
    # Known test vector: the double-length key 0123456789ABCDEFFEDCBA9876543210 has KCV 08D7B4.
    known = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    assert keys.kcv(known) == "08D7B4"
    sealer = keys.Sealer(bytes(range(32)))
    [sealed] = sealer.new_keys(["SEAL-000001"])
    tmk = sealer.open("SEAL-000001", sealed.encrypted)
    assert len(tmk) == 16 and all(bin(b).count("1") % 2 == 1 for b in tmk)
    assert tmk.hex() not in sealed.encrypted.lower()
    assert sealed.kcv == keys.kcv(tmk)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = Cipher(TripleDES(tmk + tmk[:8]), modes.ECB()).encryptor()
        assert (enc.update(bytes(8)) + enc.finalize())[:3].hex().upper() == sealed.kcv
    with pytest.raises(InvalidTag):
        sealer.open("OTHER-00001", sealed.encrypted)  # bound to its serial


def test_export_refused_without_the_permission(db: Session) -> None:
    maker = supplier(db)
    mod = model(db, maker)
    import_file(
        session=db,
        actor=system_user(db),
        supplier=maker,
        filename="p.csv",
        data=sample_csv(1, model=mod.code, prefix="PERM", start=1),
    )
    clerk = make_user(db, "warehouse_supervisor")
    with pytest.raises(PermissionDenied):
        keys.export_tmks(session=db, actor=clerk, serials=["PERM00000001"])
    custodian = make_user(db, "key_custodian")
    [exported] = keys.export_tmks(session=db, actor=custodian, serials=["PERM00000001"])
    assert len(exported.tmk_hex) == 32
