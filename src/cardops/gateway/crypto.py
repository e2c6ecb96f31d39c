"""Key handling for the gateway (psec): working keys, check values, retail MAC, PIN blocks.

* Working keys (TPK, TAK) are fresh odd-parity double-length TDES keys, sent to the terminal
  encrypted under its TMK (TDES-ECB) with their check values (first 3 bytes of TDES-ECB of a
  zero block).
* MAC: ISO 9797-1 algorithm 3 (ANSI X9.19 retail MAC), padding method 1, full 8 bytes.
* PIN blocks: ISO 9564 format 0 under the terminal's TPK; translated to the upstream's zone
  PIN key (ZPK) when a request is forwarded.
* Card numbers are never stored or logged in full: :func:`pan_hash` (HMAC-SHA256 under a key
  derived from the application secret) and :func:`mask_pan` (first six, last four).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import warnings
from functools import lru_cache

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.utils import CryptographyDeprecationWarning
from psec import des as _des
from psec import mac as _mac
from psec import pinblock as _pinblock

# psec reaches TripleDES through its old import path; the algorithm itself is what we want.
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)

_ZERO_BLOCK = bytes(8)


def new_key() -> bytes:
    """A double-length TDES key with odd parity."""
    return _des.adjust_key_parity(secrets.token_bytes(16))


def kcv(key: bytes) -> str:
    return _des.generate_kcv(key, 3).hex().upper()


def encrypt_key(kek: bytes, key: bytes) -> str:
    """``key`` encrypted under ``kek`` (TDES-ECB), 32 upper-case hex."""
    return _des.encrypt_tdes_ecb(kek, key).hex().upper()


def decrypt_key(kek: bytes, hex_key: str) -> bytes:
    return _des.decrypt_tdes_ecb(kek, bytes.fromhex(hex_key))


@lru_cache(maxsize=8192)
def _des_key(key: bytes) -> TripleDES:
    """The cipher algorithm object of a single-length key (built once per working key)."""
    return TripleDES(key)


def retail_mac(tak: bytes, data: bytes) -> str:
    """X9.19 retail MAC of ``data`` with the double-length ``tak``, 16 upper-case hex.

    The same computation as psec's ``generate_retail_mac(tak[:8], tak[8:], data,
    padding=1)`` (a test compares them), with the algorithm objects built once per key:
    psec builds them on every call, which cost more than the encryption itself (the
    gateway computes two MACs per request)."""
    if not data or len(data) % 8:
        data = data + bytes(8 - len(data) % 8)  # ISO 9797-1 padding method 1
    k1 = _des_key(tak[:8])
    last = Cipher(k1, modes.CBC(_ZERO_BLOCK)).encryptor().update(data)[-8:]
    middle = Cipher(_des_key(tak[8:]), modes.ECB()).decryptor().update(last)
    return Cipher(k1, modes.ECB()).encryptor().update(middle).hex().upper()


def retail_mac_psec(tak: bytes, data: bytes) -> str:
    """:func:`retail_mac` computed by psec (the reference the tests compare with)."""
    return _mac.generate_retail_mac(tak[:8], tak[8:], data, padding=1).hex().upper()


def mac_ok(tak: bytes, data: bytes, given: str) -> bool:
    return hmac.compare_digest(retail_mac(tak, data), given.upper())


def encrypt_pin_block(tpk: bytes, pin: str, pan: str) -> str:
    """An ISO 9564 format 0 PIN block encrypted under ``tpk``, 16 upper-case hex."""
    clear = _pinblock.encode_pinblock_iso_0(pin, pan)
    return _des.encrypt_tdes_ecb(tpk, clear).hex().upper()


def decrypt_pin(tpk: bytes, block_hex: str, pan: str) -> str | None:
    """The clear PIN of an encrypted format 0 block, or None when it does not decode."""
    try:
        clear = _des.decrypt_tdes_ecb(tpk, bytes.fromhex(block_hex))
        return _pinblock.decode_pinblock_iso_0(clear, pan)
    except ValueError:
        return None


def translate_pin_block(tpk: bytes, zpk: bytes, block_hex: str) -> str:
    """Re-encrypt a PIN block from the terminal's TPK to the upstream's ZPK (same format)."""
    clear = _des.decrypt_tdes_ecb(tpk, bytes.fromhex(block_hex))
    return _des.encrypt_tdes_ecb(zpk, clear).hex().upper()


# --- card numbers -------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _pan_key(secret: str) -> bytes:
    return hashlib.sha256(b"cardops pan hash v1\x00" + secret.encode()).digest()


_PAN_KEY: list[tuple[object, bytes]] = []  # (the settings object it was made from, key)


def pan_key() -> bytes:
    """The PAN-hash key, derived once per settings object (the secret may live in a file
    under ``var/``; reading it per card number cost more than the hash)."""
    from cardops.core.config import get_settings

    settings = get_settings()
    if _PAN_KEY and _PAN_KEY[0][0] is settings:
        return _PAN_KEY[0][1]
    key = _pan_key(settings.effective_secret_key())
    _PAN_KEY[:] = [(settings, key)]
    return key


def pan_hash(pan: str) -> str:
    """Keyed hash of a card number (64 hex): the only form in which a full PAN is kept."""
    return hmac.new(pan_key(), pan.encode(), hashlib.sha256).hexdigest()


def mask_pan(pan: str) -> str:
    if len(pan) < 11:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def luhn_ok(pan: str) -> bool:
    if not pan.isdigit() or not 12 <= len(pan) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(pan)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_digit(body: str) -> str:
    for d in "0123456789":
        if luhn_ok(body + d):
            return d
    raise ValueError("not a number")


# --- PIN verification values --------------------------------------------------------------

PVV_ITERATIONS = 20_000


def pin_verification_value(pin: str, bound: str, salt: bytes | None = None) -> str:
    """PBKDF2-SHA256 of the PIN bound to the card (``bound`` = its PAN hash):
    ``pbkdf2$iterations$salt$hash``."""
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", (pin + ":" + bound).encode(), salt, PVV_ITERATIONS)
    return f"pbkdf2${PVV_ITERATIONS}${salt.hex()}${digest.hex()}"


def pin_matches(stored: str, pin: str, bound: str) -> bool:
    try:
        _, iterations, salt_hex, digest_hex = stored.split("$")
        digest = hashlib.pbkdf2_hmac(
            "sha256", (pin + ":" + bound).encode(), bytes.fromhex(salt_hex), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)
