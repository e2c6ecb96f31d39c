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
import threading
import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, modes
from cryptography.utils import CryptographyDeprecationWarning
from psec import des as _des
from psec import mac as _mac

# psec reaches TripleDES through its old import path; the algorithm itself is what we want.
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)

_ZERO_BLOCK = bytes(8)
_T = TypeVar("_T")


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


# --- per-thread cipher contexts -----------------------------------------------------------

_MAX_KEYS = 4096  # keys cached per thread before the caches start over


class _MacState:
    """Long-lived contexts for the retail MAC under one TAK (one thread's, never shared).

    Building ``Cipher`` objects cost more than the encryption itself, so each key keeps a
    single-DES(K1) CBC encryptor and a TDES-EDE(K1, K2, K1) ECB encryptor. The CBC context
    carries its chaining value across calls; :attr:`last` (its last output block) is XORed
    into the first block of the next message, which restarts the chain from IV = 0."""

    __slots__ = ("cbc", "ede", "last")

    def __init__(self, tak: bytes) -> None:
        # three copies of K1 make single DES without the 8-byte-key deprecation warning
        self.cbc = Cipher(TripleDES(tak[:8] * 3), modes.CBC(_ZERO_BLOCK)).encryptor()
        self.ede = Cipher(TripleDES(tak), modes.ECB()).encryptor()
        self.last = 0

    def mac(self, data: bytes) -> bytes:
        """The MAC of padded ``data``: EDE(x_n XOR O_{n-1}), O = K1-CBC over blocks 1..n-1."""
        split = len(data) - 8
        chained = 0
        if split:
            head = (int.from_bytes(data[:8]) ^ self.last).to_bytes(8) + data[8:split]
            chained = self.last = int.from_bytes(self.cbc.update(head)[-8:])
        return self.ede.update((int.from_bytes(data[split:]) ^ chained).to_bytes(8))


class _PerThread(threading.local):
    """Each thread's cached contexts (a context's chaining state must not be shared)."""

    def __init__(self) -> None:
        self.macs: dict[bytes, _MacState] = {}
        self.decryptors: dict[bytes, CipherContext] = {}
        self.encryptors: dict[bytes, CipherContext] = {}


_THREAD = _PerThread()


def _cached(cache: dict[bytes, _T], key: bytes, make: Callable[[bytes], _T]) -> _T:
    """``cache[key]``, made on first use; the cache starts over beyond :data:`_MAX_KEYS`."""
    found = cache.get(key)
    if found is None:
        if len(cache) >= _MAX_KEYS:
            cache.clear()
        found = cache[key] = make(key)
    return found


def _tdes_decryptor(key: bytes) -> CipherContext:
    return Cipher(TripleDES(key), modes.ECB()).decryptor()


def _tdes_encryptor(key: bytes) -> CipherContext:
    return Cipher(TripleDES(key), modes.ECB()).encryptor()


def _tdes_ecb(
    cache: dict[bytes, CipherContext],
    key: bytes,
    make: Callable[[bytes], CipherContext],
    block: bytes,
) -> bytes:
    """One 8-byte block through the key's cached ECB context; a failure drops the context,
    so a context left in an unknown state is never used again."""
    context = _cached(cache, key, make)
    try:
        return context.update(block)
    except BaseException:
        cache.pop(key, None)
        raise


# --- MAC and PIN blocks -------------------------------------------------------------------


def retail_mac(tak: bytes, data: bytes) -> str:
    """X9.19 retail MAC of ``data`` with the double-length ``tak``, 16 upper-case hex.

    The same computation as psec's ``generate_retail_mac(tak[:8], tak[8:], data,
    padding=1)`` (tests compare them), on cipher contexts kept per key and thread: psec
    builds three ciphers on every call, which cost more than the encryption itself (the
    gateway computes two MACs per request). A key of another length goes to psec, so its
    result (or error) stays psec's."""
    if len(tak) != 16:
        return retail_mac_psec(tak, data)
    if not data or len(data) % 8:
        data = data + bytes(8 - len(data) % 8)  # ISO 9797-1 padding method 1
    macs = _THREAD.macs
    state = _cached(macs, tak, _MacState)
    try:
        return state.mac(data).hex().upper()
    except BaseException:
        macs.pop(tak, None)  # the chaining value may no longer match state.last
        raise


def retail_mac_psec(tak: bytes, data: bytes) -> str:
    """:func:`retail_mac` computed by psec (the reference the tests compare with)."""
    return _mac.generate_retail_mac(tak[:8], tak[8:], data, padding=1).hex().upper()


def mac_ok(tak: bytes, data: bytes, given: str) -> bool:
    return hmac.compare_digest(retail_mac(tak, data), given.upper())


def _pan_ok(pan: str) -> bool:
    """psec's PAN check for format 0: at least 13 ASCII digits."""
    return len(pan) >= 13 and pan.isascii() and pan.isdigit()


def _pan_block(pan: str) -> int:
    """The format 0 PAN block: ``0000`` + the 12 rightmost digits before the check digit."""
    return int(pan[-13:-1], 16)


def encrypt_pin_block(tpk: bytes, pin: str, pan: str) -> str:
    """An ISO 9564 format 0 PIN block encrypted under ``tpk``, 16 upper-case hex.

    Equal to psec's ``encode_pinblock_iso_0`` + ``encrypt_tdes_ecb`` (same ValueErrors),
    with the block built here and the encryptor kept per key and thread."""
    if not 4 <= len(pin) <= 12 or not (pin.isascii() and pin.isdigit()):
        raise ValueError("PIN must be between 4 and 12 digits long")
    if not _pan_ok(pan):
        raise ValueError("PAN must be at least 13 digits long")
    clear = int(f"{len(pin):02X}{pin}".ljust(16, "F"), 16) ^ _pan_block(pan)
    encrypted = _tdes_ecb(_THREAD.encryptors, tpk, _tdes_encryptor, clear.to_bytes(8))
    return encrypted.hex().upper()


def decrypt_pin(tpk: bytes, block_hex: str, pan: str) -> str | None:
    """The clear PIN of an encrypted format 0 block, or None when it does not decode.

    None exactly when psec's ``decrypt_tdes_ecb`` + ``decode_pinblock_iso_0`` would raise
    ValueError (tests compare them); the block is decoded here and the decryptor kept per
    key and thread, which took most of the time of psec's version."""
    try:
        block = bytes.fromhex(block_hex)
        if len(block) != 8 or not _pan_ok(pan):
            return None
        clear = _tdes_ecb(_THREAD.decryptors, tpk, _tdes_decryptor, block)
    except ValueError:  # bad hex, or a key TDES does not take
        return None
    return _decode_format_0(int.from_bytes(clear) ^ _pan_block(pan))


def _decode_format_0(value: int) -> str | None:
    """The PIN of a clear format 0 block (``0`` + length 4..12 + digits + ``F`` fill)."""
    digits = f"{value:016X}"
    length = int(digits[1], 16)
    if digits[0] != "0" or not 4 <= length <= 12 or digits[2 + length :] != "F" * (14 - length):
        return None
    pin = digits[2 : 2 + length]
    return pin if pin.isdigit() else None


def translate_pin_block(tpk: bytes, zpk: bytes, block_hex: str) -> str:
    """Re-encrypt a PIN block from the terminal's TPK to the upstream's ZPK (same format).

    Through the keys' cached ECB contexts (psec builds its ciphers per call, which was the
    largest single cost of a forwarded request); anything but one 8-byte block goes to psec,
    so its answers and errors stay psec's."""
    block = bytes.fromhex(block_hex)
    if len(block) != 8 or len(tpk) != 16 or len(zpk) != 16:
        return _des.encrypt_tdes_ecb(zpk, _des.decrypt_tdes_ecb(tpk, block)).hex().upper()
    clear = _tdes_ecb(_THREAD.decryptors, tpk, _tdes_decryptor, block)
    return _tdes_ecb(_THREAD.encryptors, zpk, _tdes_encryptor, clear).hex().upper()


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
