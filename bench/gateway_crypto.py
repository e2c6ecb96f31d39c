"""Timing: the gateway's per-request crypto (retail MAC, PIN block) against psec, per call.

Each figure is the median of 5 ``timeit`` repeats, in microseconds per call, for a 160-byte
MAC input (about a purchase request) and one PIN block. ``--src`` times the ``crypto``
module of another checkout (e.g. ``--src ../main/src`` for the code before a change); psec's
figures are the reference either way. Usage:
    python bench/gateway_crypto.py [--src PATH] [--number 20000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

TAK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TPK = bytes.fromhex("FEDCBA98765432100123456789ABCDEF")
DATA = bytes(range(160))
PIN = "246810"
PAN = "6212345678901234"


def per_call_us(function: Callable[[], object], number: int) -> float:
    """Median over 5 repeats of the time per call, in microseconds."""
    runs = timeit.repeat(function, number=number, repeat=5)
    return statistics.median(runs) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path(__file__).parent.parent / "src")
    parser.add_argument("--number", type=int, default=20_000)
    args = parser.parse_args()
    sys.path.insert(0, str(args.src.resolve()))

    from psec import des, mac, pinblock

    from cardops.gateway import crypto

    block = crypto.encrypt_pin_block(TPK, PIN, PAN)
    assert crypto.decrypt_pin(TPK, block, PAN) == PIN
    assert (
        crypto.retail_mac(TAK, DATA)
        == mac.generate_retail_mac(TAK[:8], TAK[8:], DATA, padding=1).hex().upper()
    )

    def psec_decrypt() -> str:
        return pinblock.decode_pinblock_iso_0(des.decrypt_tdes_ecb(TPK, bytes.fromhex(block)), PAN)

    def psec_encrypt() -> str:
        return des.encrypt_tdes_ecb(TPK, pinblock.encode_pinblock_iso_0(PIN, PAN)).hex().upper()

    cases: list[tuple[str, Callable[[], object]]] = [
        ("retail_mac", lambda: crypto.retail_mac(TAK, DATA)),
        ("psec generate_retail_mac", lambda: mac.generate_retail_mac(TAK[:8], TAK[8:], DATA, 1)),
        ("decrypt_pin", lambda: crypto.decrypt_pin(TPK, block, PAN)),
        ("psec decrypt + decode", psec_decrypt),
        ("encrypt_pin_block", lambda: crypto.encrypt_pin_block(TPK, PIN, PAN)),
        ("psec encode + encrypt", psec_encrypt),
    ]
    print(f"crypto module: {crypto.__file__}")
    for name, function in cases:
        print(f"{name:28} {per_call_us(function, args.number):7.2f} µs/call")


if __name__ == "__main__":
    main()
