"""The card policy of a property (``Property.card_policy``): per holder kind the validity in
months, the card fee and deposit in fen, the fee for an extension, and a limit of active cards
per unit. Missing values fall back to :data:`DEFAULTS`.

Rules checked on save (SPEC §2, seed 000): owners and their family get 24 or 60 months; every
other holder kind at most 24 months; staff, cleaner and lift-maintainer cards are free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cardops.cards.models import HolderKind
from cardops.core.errors import ValidationFailed
from cardops.core.i18n import N_

OWNER_KINDS = frozenset({HolderKind.OWNER, HolderKind.FAMILY})
STAFF_KINDS = frozenset({HolderKind.STAFF, HolderKind.CLEANER, HolderKind.LIFT_MAINTAINER})
HOUSEHOLD_KINDS = frozenset(
    {HolderKind.OWNER, HolderKind.FAMILY, HolderKind.RELATIVE, HolderKind.NANNY, HolderKind.TENANT}
)
OWNER_VALIDITY_CHOICES = (24, 60)
MAX_OTHER_MONTHS = 24
MAX_FEE = 1_000_000  # fen: 10,000 yuan
MAX_PER_UNIT = 99

HOLDER_LABELS: dict[str, str] = {
    HolderKind.OWNER: N_("Owner"),
    HolderKind.FAMILY: N_("Immediate family"),
    HolderKind.RELATIVE: N_("Relative or friend"),
    HolderKind.TENANT: N_("Tenant"),
    HolderKind.NANNY: N_("Nanny"),
    HolderKind.RENOVATION: N_("Renovation worker"),
    HolderKind.MERCHANT: N_("Merchant"),
    HolderKind.STAFF: N_("Property staff"),
    HolderKind.CLEANER: N_("Cleaner"),
    HolderKind.LIFT_MAINTAINER: N_("Lift maintainer"),
}

# kind -> validity_months, fee, deposit, extension_fee, max_per_unit (0 = no limit)
DEFAULTS: dict[str, dict[str, int]] = {
    HolderKind.OWNER: {
        "validity_months": 60,
        "fee": 2000,
        "deposit": 0,
        "extension_fee": 0,
        "max_per_unit": 4,
    },
    HolderKind.FAMILY: {
        "validity_months": 60,
        "fee": 2000,
        "deposit": 0,
        "extension_fee": 0,
        "max_per_unit": 0,
    },
    HolderKind.RELATIVE: {
        "validity_months": 12,
        "fee": 2000,
        "deposit": 5000,
        "extension_fee": 0,
        "max_per_unit": 0,
    },
    HolderKind.TENANT: {
        "validity_months": 12,
        "fee": 2000,
        "deposit": 5000,
        "extension_fee": 0,
        "max_per_unit": 0,
    },
    HolderKind.NANNY: {
        "validity_months": 12,
        "fee": 2000,
        "deposit": 5000,
        "extension_fee": 0,
        "max_per_unit": 0,
    },
    HolderKind.RENOVATION: {
        "validity_months": 3,
        "fee": 2000,
        "deposit": 10000,
        "extension_fee": 0,
        "max_per_unit": 0,
    },
    HolderKind.MERCHANT: {
        "validity_months": 12,
        "fee": 2000,
        "deposit": 5000,
        "extension_fee": 0,
        "max_per_unit": 0,
    },
    HolderKind.STAFF: {
        "validity_months": 24,
        "fee": 0,
        "deposit": 0,
        "extension_fee": 0,
        "max_per_unit": 0,
    },
    HolderKind.CLEANER: {
        "validity_months": 12,
        "fee": 0,
        "deposit": 0,
        "extension_fee": 0,
        "max_per_unit": 0,
    },
    HolderKind.LIFT_MAINTAINER: {
        "validity_months": 12,
        "fee": 0,
        "deposit": 0,
        "extension_fee": 0,
        "max_per_unit": 0,
    },
}
FIELDS = ("validity_months", "fee", "deposit", "extension_fee", "max_per_unit")


@dataclass(frozen=True, slots=True)
class KindPolicy:
    kind: str
    validity_months: int
    fee: int
    deposit: int
    extension_fee: int
    max_per_unit: int  # 0: no limit


def effective(policy: dict[str, Any] | None) -> dict[str, dict[str, int]]:
    """The stored policy merged over the defaults (every kind, every field)."""
    stored = policy if isinstance(policy, dict) else {}
    merged: dict[str, dict[str, int]] = {}
    for kind, defaults in DEFAULTS.items():
        row = stored.get(kind.value if isinstance(kind, HolderKind) else kind)
        row = row if isinstance(row, dict) else {}
        merged[str(kind)] = {
            name: int(row[name]) if isinstance(row.get(name), int) else value
            for name, value in defaults.items()
        }
    return merged


def for_kind(policy: dict[str, Any] | None, kind: str) -> KindPolicy:
    row = effective(policy)[str(HolderKind(kind))]
    return KindPolicy(kind=str(kind), **row)


def validate(policy: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Check a policy (partial or whole) and return the whole effective policy.

    Every problem is reported with the form field ``<kind>.<name>``.
    """
    if not isinstance(policy, dict):
        raise ValidationFailed("The card policy must be a JSON object.", field="policy")
    errors: list[tuple[str, str]] = []
    for kind in policy:
        if kind not in DEFAULTS:
            raise ValidationFailed(
                "Unknown holder kind “{kind}” in the card policy.", field="policy", kind=kind
            )
    merged = effective({})
    for kind, row in policy.items():
        if not isinstance(row, dict):
            raise ValidationFailed(
                "Unknown holder kind “{kind}” in the card policy.", field="policy", kind=kind
            )
        for name, value in row.items():
            if name not in FIELDS:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                errors.append((f"{kind}.{name}", N_("Enter a whole number.")))
                continue
            merged[kind][name] = value
    for kind, row in merged.items():
        months = row["validity_months"]
        if HolderKind(kind) in OWNER_KINDS:
            if months not in OWNER_VALIDITY_CHOICES:
                errors.append(
                    (
                        f"{kind}.validity_months",
                        N_("Owner and family cards are valid for 24 or 60 months."),
                    )
                )
        elif not 1 <= months <= MAX_OTHER_MONTHS:
            errors.append(
                (
                    f"{kind}.validity_months",
                    N_(
                        "Cards of holders other than owners and their family are valid for 1 to 24 months."
                    ),
                )
            )
        for name in ("fee", "deposit", "extension_fee"):
            if not 0 <= row[name] <= MAX_FEE:
                errors.append((f"{kind}.{name}", N_("Enter an amount between 0 and 10,000 yuan.")))
        if HolderKind(kind) in STAFF_KINDS and (row["fee"] or row["deposit"]):
            errors.append((f"{kind}.fee", N_("Staff cards are free: no fee and no deposit.")))
        if not 0 <= row["max_per_unit"] <= MAX_PER_UNIT:
            errors.append((f"{kind}.max_per_unit", N_("Enter a limit between 0 (none) and 99.")))
    if errors:
        raise ValidationFailed(
            "The card policy has {n} problem(s); see the fields marked.",
            field="policy",
            errors=errors,
            n=len(errors),
        )
    return merged


STATE_LABELS: dict[str, str] = {
    "stock": N_("In finance's stock"),
    "office": N_("Blank, at the office"),
    "active": N_("Active"),
    "lost": N_("Reported lost"),
    "returned": N_("Returned"),
    "cancelled": N_("Cancelled"),
    "replaced": N_("Replaced"),
    "scrapped": N_("Scrapped"),
    "other": N_("Other states"),
}

EVENT_LABELS: dict[str, str] = {
    "requisitioned": N_("Requisitioned by the office"),
    "issued": N_("Issued"),
    "granted": N_("Doors granted"),
    "acknowledged": N_("Holder signed the register"),
    "lost": N_("Reported lost"),
    "found": N_("Loss report cancelled"),
    "reissued": N_("Reissued (new card)"),
    "replaced": N_("Replaced (old card)"),
    "replacement": N_("Replacement (new card)"),
    "returned": N_("Returned"),
    "cancelled": N_("Cancelled"),
    "extended": N_("Extended"),
    "validity_set": N_("Validity changed"),
    "parking_issued": N_("Parking permit issued"),
    "parking_topped_up": N_("Parking permit topped up"),
    "parking_ended": N_("Parking permit ended"),
    "wallet_enabled": N_("Wallet enabled"),
    "wallet_topped_up": N_("Wallet topped up"),
    "wallet_moved_in": N_("Wallet balance moved in"),
    "wallet_moved_out": N_("Wallet balance moved out"),
}
