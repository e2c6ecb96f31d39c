"""Terminal master keys (TMK): generation at registration, encryption at rest, export.

* A TMK is a 16-byte double-length TDES key from :mod:`secrets`, adjusted to odd parity.
* Its key check value (KCV) is the first 3 bytes of TDES-ECB encrypting a zero block, in hex.
* At rest it is encrypted with AES-256-GCM under the operator master key, the unit's serial
  being the associated data (a ciphertext copied to another unit does not decrypt). Stored as
  ``v1:`` + base64(nonce ‖ ciphertext ‖ tag).
* The operator master key is read from the environment variable ``CARDOPS_MASTER_KEY``
  (64 hex digits = 32 bytes). When it is not set, one is derived from the application's secret
  key with HKDF-SHA256 and a warning is logged once — fine for a demo, not for production:
  set ``CARDOPS_MASTER_KEY`` and keep it apart from the database backups.
* Only holders of ``keys.export`` (the key custodian) may export keys; every export is audited
  with the serials, never the keys. The console and every other API never show a TMK.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.audit.service import record
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.core.errors import NotFound, ValidationFailed
from cardops.terminals.models import InboundBatch, Terminal
from cardops.terminals.permissions import KEYS_EXPORT

log = logging.getLogger(__name__)
MASTER_KEY_ENV = "CARDOPS_MASTER_KEY"
PREFIX = "v1:"
MAX_EXPORT = 200_000

# byte -> the same byte with its low bit set so that the byte has an odd number of 1 bits
_ODD_PARITY = bytes((b & 0xFE) | ((bin(b & 0xFE).count("1") + 1) % 2) for b in range(256))
_ZERO_BLOCK = bytes(8)


def odd_parity(key: bytes) -> bytes:
    return key.translate(_ODD_PARITY)


def kcv(key: bytes) -> str:
    """Key check value: the first 3 bytes of TDES-ECB(key, 00…00), upper-case hex."""
    full = key + key[:8] if len(key) == 16 else key  # double-length as 3-key K1 K2 K1
    encryptor = Cipher(TripleDES(full), modes.ECB()).encryptor()
    return (encryptor.update(_ZERO_BLOCK) + encryptor.finalize())[:3].hex().upper()


@lru_cache(maxsize=4)
def _master_key(env_value: str | None, secret: str) -> bytes:
    if env_value:
        try:
            key = bytes.fromhex(env_value.strip())
        except ValueError as exc:
            raise RuntimeError(f"{MASTER_KEY_ENV} must be 64 hexadecimal digits") from exc
        if len(key) != 32:
            raise RuntimeError(f"{MASTER_KEY_ENV} must be 64 hexadecimal digits (32 bytes)")
        return key
    log.warning(
        "%s is not set: deriving the TMK master key from the secret key. "
        "Set %s (64 hex digits) in production.",
        MASTER_KEY_ENV,
        MASTER_KEY_ENV,
    )
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"cardops", info=b"cardops tmk master key v1"
    ).derive(secret.encode())


def master_key() -> bytes:
    from cardops.core.config import get_settings

    env_value = os.environ.get(MASTER_KEY_ENV)
    secret = "" if env_value else get_settings().effective_secret_key()
    return _master_key(env_value, secret)


@dataclass(frozen=True, slots=True)
class SealedKey:
    encrypted: str
    kcv: str


class Sealer:
    """Generates TMKs and seals them under the master key; reuse one for a whole batch."""

    def __init__(self, key: bytes | None = None) -> None:
        self._aead = AESGCM(key or master_key())

    def seal(self, serial: str, tmk: bytes) -> str:
        nonce = secrets.token_bytes(12)
        blob = nonce + self._aead.encrypt(nonce, tmk, serial.encode())
        return PREFIX + base64.b64encode(blob).decode()

    def open(self, serial: str, encrypted: str) -> bytes:
        if not encrypted.startswith(PREFIX):
            raise ValueError("unknown TMK format")
        blob = base64.b64decode(encrypted[len(PREFIX) :])
        return self._aead.decrypt(blob[:12], blob[12:], serial.encode())

    def new_keys(self, serials: Sequence[str]) -> list[SealedKey]:
        """A fresh odd-parity TMK per serial: its sealed form and its KCV."""
        raw = odd_parity(secrets.token_bytes(16 * len(serials)))
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, serial in enumerate(serials):
                tmk = raw[16 * i : 16 * i + 16]
                out.append(SealedKey(encrypted=self.seal(serial, tmk), kcv=kcv(tmk)))
        return out


@dataclass(frozen=True, slots=True)
class ExportedKey:
    serial: str
    tmk_hex: str
    kcv: str


def export_tmks(
    *,
    session: Session,
    actor: User,
    serials: Sequence[str] = (),
    batch: str | None = None,
    purpose: str = "",
) -> list[ExportedKey]:
    """Decrypt the TMKs of ``serials`` and/or every unit of inbound ``batch`` for key injection.

    Only ``keys.export`` holders; one audit entry per export naming the serials (not the keys).
    """
    require(actor, KEYS_EXPORT)
    wanted = [s.strip() for s in serials if s and s.strip()]
    if len(wanted) > MAX_EXPORT:
        raise ValidationFailed("At most {n} serials at a time.", field="serials", n=MAX_EXPORT)
    units: list[Terminal] = []
    if batch:
        found = session.execute(
            select(InboundBatch).where(InboundBatch.number == batch.strip()[:32])
        ).scalar_one_or_none()
        if found is None:
            raise NotFound("No inbound batch {number}.", field="batch", number=batch[:32])
        units.extend(
            session.execute(
                select(Terminal).where(Terminal.inbound_batch_id == found.id).order_by(Terminal.id)
            ).scalars()
        )
    if wanted:
        by_serial: dict[str, Terminal] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for row in session.execute(select(Terminal).where(Terminal.serial.in_(chunk))):
                by_serial[row[0].serial] = row[0]
        missing = [s for s in wanted if s not in by_serial]
        if missing:
            raise NotFound(
                "No terminal with serial {serial}.", field="serials", serial=", ".join(missing[:20])
            )
        units.extend(by_serial[s] for s in wanted)
    if not units:
        raise ValidationFailed("Name at least one serial or a batch.", field="serials")
    seen: set[int] = set()
    sealer = Sealer()
    out = []
    for unit in units:
        if unit.id in seen:
            continue
        seen.add(unit.id)
        if not unit.tmk_encrypted:
            raise ValidationFailed(
                "Terminal {serial} has no master key.", field="serials", serial=unit.serial
            )
        tmk = sealer.open(unit.serial, unit.tmk_encrypted)
        out.append(
            ExportedKey(serial=unit.serial, tmk_hex=tmk.hex().upper(), kcv=unit.tmk_kcv or "")
        )
    record(
        session,
        actor,
        "terminal.tmk_exported",
        ("terminals", "tmk"),
        count=len(out),
        serials=[k.serial for k in out],
        batch=batch or None,
        purpose=purpose[:200],
    )
    return out


def export_csv(keys: Sequence[ExportedKey]) -> str:
    lines = ["serial,tmk_hex,kcv"]
    lines += [f"{k.serial},{k.tmk_hex},{k.kcv}" for k in keys]
    return "\n".join(lines) + "\n"
