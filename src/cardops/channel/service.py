"""The channel: providers tree, regions, provider scoping and provider orders.

The only code that changes channel records; it never commits.

Functions other domains call:

* :func:`region_for_province` — the service region of an install province (merchants);
* :func:`is_outside_region` — whether an install place is outside a provider's area (窜货);
* :func:`visible_provider_ids` — the providers a console user may see (``None``: all).

Order flow (``ProviderOrder``):

* to HQ (buyer a city provider, seller HQ): the buyer files it (draft), uploads the payment
  slip, submits → ``approving`` (the ``distributor_order`` chain). The HQ channel specialist
  picks the serials for the shipping order meanwhile; the last approval allocates them (the
  approval is refused while the picked serials do not match the order). Then the picker scans
  them (``picking``), the checker scans them all again (``checked``), the warehouse supervisor
  dispatches (``dispatched``: units ``shipped``; they stay booked at the sender's location until
  received), and the buyer confirms receipt (``received``: units ``at_provider`` at the buyer).
* county orders (buyer a county provider, seller its city provider): the same without the HQ
  chain; the city provider's staff approve, pick, check and dispatch, then file the order with
  HQ (报备) — the delivery note and serial list are attached to the order.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.approvals import service as approvals
from cardops.approvals.models import ApprovalRequest, RequestState
from cardops.audit.service import record, snapshot
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.channel.models import (
    OrderEvent,
    OrderLine,
    OrderSerial,
    OrderState,
    Provider,
    ProviderLevel,
    ProviderOrder,
    ProviderRateVersion,
    ProviderUser,
    Region,
)
from cardops.channel.permissions import (
    CHANNEL_CHECK,
    CHANNEL_DISPATCH,
    CHANNEL_MANAGE,
    CHANNEL_ORDER,
    CHANNEL_PICK,
    CHANNEL_RECEIVE,
    CHANNEL_VIEW,
)
from cardops.channel.regions import (
    DEFAULT_REGIONS,
    PROVINCES,
    normalize_city,
    normalize_province,
)
from cardops.core.clock import SINCE_ALWAYS, local, utcnow
from cardops.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cardops.core.i18n import N_
from cardops.core.models import next_number
from cardops.parties import service as parties
from cardops.terminals import service as terminals
from cardops.terminals.models import (
    Location,
    Terminal,
    TerminalModel,
    TerminalMovement,
    TerminalState,
)

ORDER_KIND = "distributor_order"
DOC_OWNER = "provider_order"
MAX_SERIALS = 10_000
MAX_LINES = 50
MAX_QUANTITY = 100_000
RATE_BP_MAX = 1_000  # 10 %
CAP_MAX = 100_000_000  # fen
REWARD_MAX = 10_000_000  # fen
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")
_SPLIT = re.compile(r"[\s,;，；、]+")
CARD_TYPES = ("debit", "credit")
OPEN_STATES = (
    OrderState.SUBMITTED.value,
    OrderState.APPROVING.value,
    OrderState.REJECTED.value,
    OrderState.APPROVED.value,
    OrderState.PICKING.value,
    OrderState.CHECKED.value,
)
STATE_LABELS: dict[str, str] = {
    "draft": N_("Draft"),
    "submitted": N_("Submitted"),
    "approving": N_("Being approved"),
    "rejected": N_("Rejected"),
    "approved": N_("Approved"),
    "picking": N_("Picking"),
    "checked": N_("Checked"),
    "dispatched": N_("Dispatched"),
    "received": N_("Received"),
    "cancelled": N_("Cancelled"),
}
LEVEL_LABELS: dict[str, str] = {
    "hq": N_("Headquarters"),
    "city": N_("Prefecture-level (city) provider"),
    "county": N_("County-level provider"),
}

parties.register_document_owner(
    DOC_OWNER,
    label=N_("Provider order"),
    exists=lambda s, i: s.get(ProviderOrder, i) is not None,
    url=lambda i: f"/channel/orders/{i}",
    visible=lambda s, user, i: _order_visible(s, user, i),
)


def _order_visible(session: Session, user: User, order_id: int) -> bool:
    order = session.get(ProviderOrder, order_id)
    return order is not None and _visible(session, user, order)


# --- small helpers --------------------------------------------------------------------------


def _text(value: str | None, *, field: str, max_length: int, required: bool = False) -> str:
    text = parties.plain_text(value)
    if len(text) > max_length:
        raise ValidationFailed("Too long: at most {n} characters.", field=field, n=max_length)
    if required and not text:
        raise ValidationFailed("This field is required.", field=field)
    return text


def parse_serials(text: str | Iterable[str]) -> list[str]:
    """Serials scanned or pasted: one per line (commas and spaces also separate them)."""
    raw = text if isinstance(text, str) else "\n".join(text)
    serials = [s for s in _SPLIT.split(parties.plain_text(raw, multiline=True)) if s]
    if len(serials) > MAX_SERIALS:
        raise ValidationFailed("At most {n} serials at a time.", field="serials", n=MAX_SERIALS)
    for serial in serials:
        if len(serial) > 40:
            raise ValidationFailed(
                "“{serial}” is not a serial number (at most 40 characters).",
                field="serials",
                serial=serial[:40] + "…",
            )
    return serials


def _names(values: Iterable[str], limit: int = 20) -> str:
    items = list(values)
    shown = ", ".join(items[:limit])
    return shown + (f" … (+{len(items) - limit})" if len(items) > limit else "")


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _event(
    session: Session, order: ProviderOrder, actor: User, kind: str, **data: Any
) -> OrderEvent:
    event = OrderEvent(order_id=order.id, kind=kind, actor_id=actor.id, data=data, at=utcnow())
    session.add(event)
    session.flush()
    return event


# --- regions --------------------------------------------------------------------------------


def _province_list(values: Iterable[str], *, field: str) -> list[str]:
    result: list[str] = []
    for value in values:
        if not value.strip():
            continue
        province = normalize_province(value)
        if province is None:
            raise ValidationFailed(
                "“{province}” is not a Chinese province, municipality or autonomous region.",
                field=field,
                province=value.strip()[:32],
            )
        if province not in result:
            result.append(province)
    return result


def split_list(text: str | None) -> list[str]:
    return [s for s in _SPLIT.split(parties.plain_text(text, multiline=True)) if s]


def list_regions(session: Session) -> list[Region]:
    return list(session.execute(select(Region).order_by(Region.code)).scalars())


def install_default_regions(*, session: Session, actor: User) -> list[Region]:
    """Create the six regions of seed 002 that do not exist yet (existing ones are kept)."""
    require(actor, CHANNEL_MANAGE)
    created = []
    for code, (name_zh, name_en, provinces) in DEFAULT_REGIONS.items():
        if session.get(Region, code) is not None:
            continue
        region = Region(code=code, name_zh=name_zh, name_en=name_en, provinces=list(provinces))
        session.add(region)
        session.flush()
        record(session, actor, "region.created", region)
        created.append(region)
    return created


def set_region(
    *,
    session: Session,
    actor: User,
    code: str,
    provinces: Iterable[str],
    reviewer_id: int | None = None,
) -> Region:
    """Replace a region's provinces and reviewer. A province belongs to one region at most."""
    require(actor, CHANNEL_MANAGE)
    code = code if re.fullmatch(r"[a-z_]{1,16}", code or "") else "?"
    region = session.get(Region, code)
    if region is None:
        raise NotFound("No region with code “{region}”.", region=code[:16])
    wanted = _province_list(provinces, field="provinces")
    for other in list_regions(session):
        if other.code == region.code:
            continue
        clash = [p for p in wanted if p in (other.provinces or [])]
        if clash:
            raise Conflict(
                "{province} already belongs to the region {region}; remove it there first.",
                field="provinces",
                province=_names(clash),
                region=other.name_zh,
            )
    if reviewer_id is not None:
        reviewer = session.get(User, reviewer_id) if 0 < reviewer_id < 2**31 else None
        if reviewer is None or reviewer.is_system or not reviewer.is_active:
            raise ValidationFailed("Choose an active user as the reviewer.", field="reviewer_id")
    before = snapshot(region)
    region.provinces = wanted
    region.reviewer_id = reviewer_id
    session.flush()
    record(session, actor, "region.updated", region, before=before)
    return region


def region_for_province(session: Session, province: str | None) -> Region | None:
    """The region whose province list holds ``province`` (``四川`` or ``四川省``), or None."""
    name = normalize_province(province)
    if name is None:
        return None
    for region in list_regions(session):
        if name in (region.provinces or []):
            return region
    return None


def unassigned_provinces(session: Session) -> list[str]:
    taken = {p for r in list_regions(session) for p in (r.provinces or [])}
    return [p for p in PROVINCES if p not in taken]


# --- providers ------------------------------------------------------------------------------


def validate_rate_card(card: dict[str, Any] | None) -> dict[str, Any]:
    """``{"debit": {"rate_bp": 38, "cap": 2000}, "credit": {"rate_bp": 55}}`` checked and
    normalised: rates in basis points (0–1000), caps in fen (optional, positive)."""
    if card is None:
        return {}
    if not isinstance(card, dict):
        raise ValidationFailed("The rate card must be an object by card type.", field="rate_card")
    unknown = [k for k in card if k not in CARD_TYPES]
    if unknown:
        raise ValidationFailed(
            "Unknown card type {kind} in the rate card: use debit or credit.",
            field="rate_card",
            kind=str(unknown[0])[:20],
        )
    result: dict[str, Any] = {}
    for kind in CARD_TYPES:
        entry = card.get(kind)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise ValidationFailed(
                "The rate card must be an object by card type.", field=f"{kind}_rate_bp"
            )
        rate = entry.get("rate_bp")
        if isinstance(rate, bool) or not isinstance(rate, int) or not 0 <= rate <= RATE_BP_MAX:
            raise ValidationFailed(
                "The {kind} rate is a whole number of basis points from 0 to {max}.",
                field=f"{kind}_rate_bp",
                kind=kind,
                max=RATE_BP_MAX,
            )
        clean: dict[str, int] = {"rate_bp": rate}
        cap = entry.get("cap")
        if cap is not None:
            if isinstance(cap, bool) or not isinstance(cap, int) or not 0 < cap <= CAP_MAX:
                raise ValidationFailed(
                    "The {kind} cap is an amount in fen from 1 to {max}.",
                    field=f"{kind}_cap",
                    kind=kind,
                    max=CAP_MAX,
                )
            clean["cap"] = cap
        result[kind] = clean
    return result


def hq_provider(session: Session) -> Provider | None:
    return session.execute(
        select(Provider).where(Provider.level == ProviderLevel.HQ.value).limit(1)
    ).scalar_one_or_none()


def get_provider(session: Session, provider_id: int, *, actor: User | None = None) -> Provider:
    provider = session.get(Provider, provider_id) if 0 < provider_id < 2**31 else None
    if provider is None:
        raise NotFound("No provider with id {id}.", id=provider_id)
    if actor is not None:
        require(actor, CHANNEL_VIEW)
        visible = visible_provider_ids(session, actor)
        if visible is not None and provider.id not in visible:
            raise NotFound("No provider with id {id}.", id=provider_id)
    return provider


def find_provider(session: Session, code: str) -> Provider | None:
    code = (code or "").strip().upper()
    if not _CODE.match(code):
        return None
    return session.execute(select(Provider).where(Provider.code == code)).scalar_one_or_none()


@dataclass
class ProviderFields:
    name: str = ""
    parent_id: int | None = None
    provinces: list[str] = field(default_factory=list)
    cities: list[str] = field(default_factory=list)
    contract_no: str = ""
    contract_start: date | None = None
    contract_end: date | None = None
    rate_card: dict[str, Any] = field(default_factory=dict)
    activation_reward: int = 0
    is_active: bool = True


def _check_fields(session: Session, level: str, fields: ProviderFields) -> ProviderFields:
    name = _text(fields.name, field="name", max_length=128, required=True)
    if level == ProviderLevel.HQ.value:
        if fields.parent_id is not None:
            raise ValidationFailed("Headquarters has no parent.", field="parent_id")
    else:
        if fields.parent_id is None:
            raise ValidationFailed("Choose the parent provider.", field="parent_id")
        parent = session.get(Provider, fields.parent_id) if 0 < fields.parent_id < 2**31 else None
        wanted = ProviderLevel.HQ.value if level == ProviderLevel.CITY.value else "city"
        if parent is None or parent.level != wanted:
            raise ValidationFailed(
                "A city provider's parent is headquarters; a county provider's parent is a city provider.",
                field="parent_id",
            )
    provinces = _province_list(fields.provinces, field="provinces")
    cities: list[str] = []
    for city in fields.cities:
        clean = normalize_city(_text(city, field="cities", max_length=32))
        if clean and clean not in cities:
            cities.append(clean)
    if len(provinces) > len(PROVINCES) or len(cities) > 200:
        raise ValidationFailed("Too many places listed.", field="cities")
    contract_no = _text(fields.contract_no, field="contract_no", max_length=64)
    if (
        fields.contract_start is not None
        and fields.contract_end is not None
        and fields.contract_end < fields.contract_start
    ):
        raise ValidationFailed("The contract cannot end before it starts.", field="contract_end")
    if not 0 <= fields.activation_reward <= REWARD_MAX:
        raise ValidationFailed(
            "The activation reward is an amount from 0 to {max} fen.",
            field="activation_reward",
            max=REWARD_MAX,
        )
    return ProviderFields(
        name=name,
        parent_id=fields.parent_id,
        provinces=provinces,
        cities=cities,
        contract_no=contract_no,
        contract_start=fields.contract_start,
        contract_end=fields.contract_end,
        rate_card=validate_rate_card(fields.rate_card),
        activation_reward=fields.activation_reward,
        is_active=fields.is_active,
    )


def _apply(provider: Provider, fields: ProviderFields) -> None:
    provider.name = fields.name
    provider.parent_id = fields.parent_id
    provider.provinces = fields.provinces
    provider.cities = fields.cities
    provider.contract_no = fields.contract_no
    provider.contract_start = fields.contract_start
    provider.contract_end = fields.contract_end
    provider.rate_card = fields.rate_card
    provider.activation_reward = fields.activation_reward
    provider.is_active = fields.is_active


def create_provider(
    *, session: Session, actor: User, code: str, level: str, fields: ProviderFields
) -> Provider:
    require(actor, CHANNEL_MANAGE)
    code = (code or "").strip().upper()
    if not _CODE.match(code):
        raise ValidationFailed(
            "A provider code is 1–32 capital letters, digits, '-' or '_'.", field="code"
        )
    if level not in LEVEL_LABELS:
        raise ValidationFailed("Choose the level: HQ, city or county.", field="level")
    clean = _check_fields(session, level, fields)
    if level == ProviderLevel.HQ.value and hq_provider(session) is not None:
        raise Conflict("There is already a headquarters provider.", field="level")
    if find_provider(session, code) is not None:
        raise Conflict("The provider code “{provider}” is taken.", field="code", provider=code)
    provider = Provider(code=code, level=level)
    _apply(provider, clean)
    session.add(provider)
    session.flush()
    _remember_rates(session, provider, None, actor)
    record(session, actor, "provider.created", provider)
    return provider


def _remember_rates(
    session: Session, provider: Provider, before: dict[str, Any] | None, actor: User
) -> None:
    """Keep the provider's rate card as a new version when it changed (settlement prices a
    day with the version in force when the day closed). A provider with no version yet (made
    before versions were kept) first gets its old card as the version "since always"."""
    card = dict(provider.rate_card or {})
    if before is not None:
        if card == before:
            return
        first = session.scalar(
            select(ProviderRateVersion.id)
            .where(ProviderRateVersion.provider_id == provider.id)
            .limit(1)
        )
        if first is None:
            session.add(
                ProviderRateVersion(
                    provider_id=provider.id, rate_card=before, recorded_at=SINCE_ALWAYS
                )
            )
    session.add(
        ProviderRateVersion(
            provider_id=provider.id, rate_card=card, actor_id=actor.id, recorded_at=utcnow()
        )
    )


def rate_history(session: Session, actor: User, provider_id: int) -> list[ProviderRateVersion]:
    """The provider's rate card versions, newest first."""
    get_provider(session, provider_id, actor=actor)
    return list(
        session.execute(
            select(ProviderRateVersion)
            .where(ProviderRateVersion.provider_id == provider_id)
            .order_by(ProviderRateVersion.recorded_at.desc(), ProviderRateVersion.id.desc())
        ).scalars()
    )


def update_provider(
    *, session: Session, actor: User, provider_id: int, fields: ProviderFields
) -> Provider:
    require(actor, CHANNEL_MANAGE)
    provider = get_provider(session, provider_id)
    clean = _check_fields(session, provider.level, fields)
    if clean.parent_id == provider.id:
        raise ValidationFailed("A provider cannot be its own parent.", field="parent_id")
    before = snapshot(provider)
    card_before = dict(provider.rate_card or {})
    _apply(provider, clean)
    session.flush()
    _remember_rates(session, provider, card_before, actor)
    record(session, actor, "provider.updated", provider, before=before)
    return provider


def _children_map(session: Session) -> dict[int | None, list[int]]:
    children: dict[int | None, list[int]] = defaultdict(list)
    for pid, parent in session.execute(select(Provider.id, Provider.parent_id)):
        children[parent].append(pid)
    return children


def subtree_ids(session: Session, provider_id: int) -> set[int]:
    children = _children_map(session)
    found = {provider_id}
    todo = [provider_id]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def user_provider(session: Session, user: User) -> Provider | None:
    """The provider a console user works for, or None for HQ staff."""
    link = session.get(ProviderUser, user.id)
    return session.get(Provider, link.provider_id) if link else None


def visible_provider_ids(session: Session, user: User) -> set[int] | None:
    """The providers ``user`` may see: None for HQ staff (all of them), otherwise the user's
    provider and its subtree."""
    provider = user_provider(session, user)
    if provider is None or provider.level == ProviderLevel.HQ.value:
        return None
    return subtree_ids(session, provider.id)


def _acting_provider_id(session: Session, user: User) -> int | None:
    """The provider ``user`` acts for: their own, or HQ for HQ staff."""
    provider = user_provider(session, user)
    if provider is not None:
        return provider.id
    hq = hq_provider(session)
    return hq.id if hq else None


def link_user(*, session: Session, actor: User, user_id: int, provider_id: int) -> ProviderUser:
    """Make a console user staff of a provider (they then see only its subtree)."""
    require(actor, CHANNEL_MANAGE)
    provider = get_provider(session, provider_id)
    user = session.get(User, user_id) if 0 < user_id < 2**31 else None
    if user is None or user.is_system:
        raise NotFound("No user with id {id}.", id=user_id, field="user_id")
    link = session.get(ProviderUser, user.id)
    before = {"provider_id": link.provider_id} if link else None
    if link is None:
        link = ProviderUser(user_id=user.id, provider_id=provider.id)
        session.add(link)
    else:
        link.provider_id = provider.id
    session.flush()
    record(
        session,
        actor,
        "provider.user_linked",
        link,
        before=before,
        after={"provider_id": provider.id, "username": user.username},
    )
    return link


def unlink_user(*, session: Session, actor: User, user_id: int) -> None:
    require(actor, CHANNEL_MANAGE)
    link = session.get(ProviderUser, user_id) if 0 < user_id < 2**31 else None
    if link is None:
        raise NotFound("The user is not linked to a provider.", field="user_id")
    before = snapshot(link)
    session.delete(link)
    session.flush()
    record(session, actor, "provider.user_unlinked", ("provider_users", user_id), before=before)


def provider_users(session: Session, provider_id: int) -> list[User]:
    return list(
        session.execute(
            select(User)
            .join(ProviderUser, ProviderUser.user_id == User.id)
            .where(ProviderUser.provider_id == provider_id)
            .order_by(User.username)
        ).scalars()
    )


def list_providers(*, session: Session, actor: User) -> list[Provider]:
    require(actor, CHANNEL_VIEW)
    stmt = select(Provider).order_by(Provider.code)
    visible = visible_provider_ids(session, actor)
    if visible is not None:
        stmt = stmt.where(Provider.id.in_(visible))
    return list(session.execute(stmt).scalars())


@dataclass
class TreeNode:
    provider: Provider
    depth: int
    children: list[TreeNode] = field(default_factory=list)


def provider_tree(*, session: Session, actor: User) -> list[TreeNode]:
    """The visible providers as a depth-first list of nodes (roots first)."""
    providers = list_providers(session=session, actor=actor)
    ids = {p.id for p in providers}
    by_parent: dict[int | None, list[Provider]] = defaultdict(list)
    for p in providers:
        by_parent[p.parent_id if p.parent_id in ids else None].append(p)
    flat: list[TreeNode] = []

    def walk(parent: int | None, depth: int) -> None:
        for p in sorted(by_parent.get(parent, []), key=lambda x: x.code):
            flat.append(TreeNode(p, depth))
            walk(p.id, depth + 1)

    walk(None, 0)
    return flat


def effective_area(provider: Provider) -> tuple[list[str], list[str]]:
    """The provinces and cities a provider may sell in; a county provider without provinces
    of its own inherits its city provider's."""
    provinces = list(provider.provinces or [])
    cities = [normalize_city(c) for c in (provider.cities or [])]
    node = provider.parent
    while not provinces and node is not None:
        provinces = list(node.provinces or [])
        node = node.parent
    return provinces, cities


def is_outside_region(provider: Provider | None, province: str | None, city: str | None) -> bool:
    """True when an install place lies outside ``provider``'s provinces (and, when it lists
    cities, outside those cities): the unit was sold across regions (窜货). HQ sells anywhere."""
    if provider is None or provider.level == ProviderLevel.HQ.value:
        return False
    provinces, cities = effective_area(provider)
    if provinces:
        where = normalize_province(province) or (province or "").strip()
        if where not in provinces:
            return True
    return bool(cities and normalize_city(city) not in cities)


# --- terminal moves -------------------------------------------------------------------------


def warehouse(session: Session) -> Location:
    return terminals.warehouse(session)


def provider_location(session: Session, provider: Provider) -> Location:
    if provider.level == ProviderLevel.HQ.value:
        return terminals.warehouse(session)
    return terminals.location_for(session, "provider", provider.id, provider.name)


def _move(
    session: Session,
    actor: User,
    terminal: Terminal,
    to_state: TerminalState,
    *,
    kind: str,
    document: str,
    to_location: Location | None = None,
) -> TerminalMovement:
    """Change a unit's state (and location) through the terminals movement service."""
    return terminals.move(
        session, actor, terminal, to_state, to_location, kind=kind, document=document
    )


# --- orders: reading ------------------------------------------------------------------------


def is_county_order(order: ProviderOrder) -> bool:
    return order.seller.level != ProviderLevel.HQ.value


def _visible(session: Session, actor: User, order: ProviderOrder) -> bool:
    visible = visible_provider_ids(session, actor)
    return visible is None or order.buyer_id in visible or order.seller_id in visible


def get_order(*, session: Session, actor: User, order_id: int) -> ProviderOrder:
    """One order the actor may see (404 otherwise, so others' orders are not disclosed)."""
    require(actor, CHANNEL_VIEW)
    order = session.get(ProviderOrder, order_id) if 0 < order_id < 2**31 else None
    if order is None or not _visible(session, actor, order):
        raise NotFound("No provider order with id {id}.", id=order_id)
    return order


def list_orders(
    *,
    session: Session,
    actor: User,
    state: str | None = None,
    county: bool | None = None,
    filed_only: bool = False,
    provider_id: int | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[ProviderOrder]:
    require(actor, CHANNEL_VIEW)
    stmt = select(ProviderOrder)
    visible = visible_provider_ids(session, actor)
    if visible is not None:
        stmt = stmt.where(
            ProviderOrder.buyer_id.in_(visible) | ProviderOrder.seller_id.in_(visible)
        )
    if state:
        stmt = stmt.where(ProviderOrder.state == (state if state in STATE_LABELS else "?"))
    hq = hq_provider(session)
    if county is not None and hq is not None:
        stmt = stmt.where(
            ProviderOrder.seller_id != hq.id if county else ProviderOrder.seller_id == hq.id
        )
    if filed_only:
        stmt = stmt.where(ProviderOrder.filed_with_hq_at.is_not(None))
    if provider_id is not None:
        stmt = stmt.where(
            (ProviderOrder.buyer_id == provider_id) | (ProviderOrder.seller_id == provider_id)
        )
    stmt = stmt.order_by(ProviderOrder.id.desc()).limit(min(limit, 500)).offset(max(offset, 0))
    return list(session.execute(stmt).scalars())


def quantities(order: ProviderOrder) -> dict[int, int]:
    counts: Counter[int] = Counter()
    for line in order.lines:
        counts[line.model_id] += line.quantity
    return dict(counts)


def approval_request(session: Session, order: ProviderOrder) -> ApprovalRequest | None:
    if order.approval_request_id is None:
        return None
    return session.get(ApprovalRequest, order.approval_request_id)


# --- orders: who may act ------------------------------------------------------------------


def _require_buyer_side(session: Session, actor: User, order: ProviderOrder) -> None:
    """The buyer's staff, or the seller's staff entering it on the buyer's behalf."""
    acting = _acting_provider_id(session, actor)
    if acting not in (order.buyer_id, order.seller_id):
        raise PermissionDenied(
            "Only staff of {buyer} or {seller} may do this for order {number}.",
            buyer=order.buyer.name,
            seller=order.seller.name,
            number=order.number,
        )


def _require_seller_side(session: Session, actor: User, order: ProviderOrder) -> None:
    if _acting_provider_id(session, actor) != order.seller_id:
        raise PermissionDenied(
            "Only staff of {seller} may do this for order {number}.",
            seller=order.seller.name,
            number=order.number,
        )


def _state(order: ProviderOrder, *allowed: OrderState) -> None:
    if order.state not in {s.value for s in allowed}:
        raise Conflict(
            "Order {number} is {state}; this cannot be done now.",
            number=order.number,
            state=order.state,
        )


# --- orders: filing -----------------------------------------------------------------------


def create_order(
    *,
    session: Session,
    actor: User,
    lines: Sequence[tuple[int, int]],
    buyer_id: int | None = None,
    note: str = "",
) -> ProviderOrder:
    """A draft order of ``lines`` (model id, quantity) from the buyer to its parent provider.

    Provider staff order for their own provider; HQ staff name the buyer. Prices come from the
    model's list price (``TerminalModel.unit_price``).
    """
    require(actor, CHANNEL_ORDER)
    own = user_provider(session, actor)
    if own is not None and own.level != ProviderLevel.HQ.value:
        if buyer_id is not None and buyer_id != own.id:
            acting_for = get_provider(session, buyer_id, actor=actor)
            if acting_for.parent_id != own.id:
                raise PermissionDenied(
                    "You may file orders only for your own provider.", field="buyer_id"
                )
            buyer = acting_for
        else:
            buyer = own
    else:
        if buyer_id is None:
            raise ValidationFailed("Choose the provider that orders.", field="buyer_id")
        buyer = get_provider(session, buyer_id)
    if buyer.level == ProviderLevel.HQ.value or buyer.parent_id is None:
        raise ValidationFailed("Only city and county providers place orders.", field="buyer_id")
    if not buyer.is_active:
        raise ValidationFailed(
            "{provider} is not active and cannot order.", field="buyer_id", provider=buyer.name
        )
    if not lines:
        raise ValidationFailed("Add at least one model and quantity.", field="lines")
    if len(lines) > MAX_LINES:
        raise ValidationFailed("At most {n} lines.", field="lines", n=MAX_LINES)
    order = ProviderOrder(
        number=next_number(session, "provider_order", "PO"),
        seller_id=buyer.parent_id,
        buyer_id=buyer.id,
        state=OrderState.DRAFT.value,
        created_by_id=actor.id,
        note=_text(note, field="note", max_length=500),
    )
    seen: set[int] = set()
    total = 0
    for n, (model_id, quantity) in enumerate(lines):
        model = session.get(TerminalModel, model_id) if 0 < model_id < 2**31 else None
        if model is None or not model.is_active:
            raise ValidationFailed(
                "Line {n}: choose a terminal model.", field=f"model_{n}", n=n + 1
            )
        if model.id in seen:
            raise ValidationFailed(
                "Line {n}: the model {model} is already on the order.",
                field=f"model_{n}",
                n=n + 1,
                model=model.code,
            )
        seen.add(model.id)
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ValidationFailed(
                "Line {n}: the quantity is a whole number from 1 to {max}.",
                field=f"quantity_{n}",
                n=n + 1,
                max=MAX_QUANTITY,
            )
        order.lines.append(
            OrderLine(model_id=model.id, quantity=quantity, unit_price=model.unit_price)
        )
        total += quantity * model.unit_price
    order.total = total
    session.add(order)
    session.flush()
    _event(session, order, actor, "created", total=total)
    record(session, actor, "provider_order.created", order)
    return order


def upload_payment_slip(
    *,
    session: Session,
    actor: User,
    order_id: int,
    filename: str,
    data: bytes,
    paid_amount: int,
    reference: str,
    content_type: str | None = None,
) -> ProviderOrder:
    """Attach the bank's payment slip (打款回单) with the amount and bank reference."""
    require(actor, CHANNEL_ORDER)
    order = get_order(session=session, actor=actor, order_id=order_id)
    _require_buyer_side(session, actor, order)
    _state(order, OrderState.DRAFT, OrderState.REJECTED)
    if not 0 < paid_amount <= 10**12:
        raise ValidationFailed("Enter the amount paid.", field="paid_amount")
    reference = _text(reference, field="payment_reference", max_length=64, required=True)
    document = parties.upload_document(
        session=session,
        actor=actor,
        owner_type=DOC_OWNER,
        owner_id=order.id,
        doc_type="payment_slip",
        filename=filename,
        data=data,
        content_type=content_type,
        note=reference,
        supersedes_id=order.payment_slip_document_id,
    )
    before = snapshot(order)
    order.payment_slip_document_id = document.id
    order.paid_amount = paid_amount
    order.payment_reference = reference
    session.flush()
    _event(session, order, actor, "payment_slip", paid_amount=paid_amount, reference=reference)
    record(session, actor, "provider_order.payment_slip", order, before=before)
    return order


def upload_order_form(
    *,
    session: Session,
    actor: User,
    order_id: int,
    filename: str,
    data: bytes,
    content_type: str | None = None,
) -> ProviderOrder:
    """Attach the signed and stamped order form (optional)."""
    require(actor, CHANNEL_ORDER)
    order = get_order(session=session, actor=actor, order_id=order_id)
    _require_buyer_side(session, actor, order)
    _state(order, OrderState.DRAFT, OrderState.REJECTED, OrderState.SUBMITTED)
    document = parties.upload_document(
        session=session,
        actor=actor,
        owner_type=DOC_OWNER,
        owner_id=order.id,
        doc_type="signed_form",
        filename=filename,
        data=data,
        content_type=content_type,
        supersedes_id=order.order_form_document_id,
    )
    before = snapshot(order)
    order.order_form_document_id = document.id
    session.flush()
    _event(session, order, actor, "order_form", document_id=document.id)
    record(session, actor, "provider_order.order_form", order, before=before)
    return order


def submit_order(*, session: Session, actor: User, order_id: int) -> ProviderOrder:
    """Send the order (again, after a rejection): orders to HQ go into the approval chain."""
    require(actor, CHANNEL_ORDER)
    order = get_order(session=session, actor=actor, order_id=order_id)
    _require_buyer_side(session, actor, order)
    _state(order, OrderState.DRAFT, OrderState.REJECTED)
    if order.payment_slip_document_id is None:
        raise ValidationFailed(
            "Upload the payment slip before submitting the order.", field="payment_slip"
        )
    if order.paid_amount < order.total:
        raise ValidationFailed(
            "The amount paid ({paid}) is less than the order total ({total}).",
            field="paid_amount",
            paid=f"{order.paid_amount / 100:.2f}",
            total=f"{order.total / 100:.2f}",
        )
    before = snapshot(order)
    order.transition(OrderState.SUBMITTED)
    if not is_county_order(order):
        request = approvals.submit(
            session=session,
            actor=actor,
            kind=ORDER_KIND,
            title=f"{order.number} {order.buyer.name}",
            description=order.note,
            payload={
                "order": order.number,
                "buyer": order.buyer.code,
                "total": order.total,
                "lines": [
                    {"model": line.model.code, "quantity": line.quantity} for line in order.lines
                ],
            },
            subject=order,
            check_permission=False,
        )
        order.approval_request_id = request.id
        order.transition(OrderState.APPROVING)
    session.flush()
    _event(session, order, actor, "submitted")
    record(session, actor, "provider_order.submitted", order, before=before)
    return order


def cancel_order(*, session: Session, actor: User, order_id: int, reason: str) -> ProviderOrder:
    require(actor, CHANNEL_ORDER)
    order = get_order(session=session, actor=actor, order_id=order_id)
    _require_buyer_side(session, actor, order)
    _state(order, OrderState.DRAFT, OrderState.SUBMITTED, OrderState.REJECTED)
    reason = _text(reason, field="reason", max_length=500, required=True)
    before = snapshot(order)
    order.serials.clear()
    order.transition(OrderState.CANCELLED)
    session.flush()
    _event(session, order, actor, "cancelled", reason=reason)
    record(session, actor, "provider_order.cancelled", order, before=before, reason=reason)
    return order


# --- orders: the shipping order (serial selection) -----------------------------------------


def _sender_location(session: Session, order: ProviderOrder) -> Location:
    return provider_location(session, order.seller)


def _stock_state(order: ProviderOrder) -> TerminalState:
    return TerminalState.AT_PROVIDER if is_county_order(order) else TerminalState.IN_STOCK


def _check_selection(session: Session, order: ProviderOrder, serials: list[str]) -> list[Terminal]:
    """The units for ``serials``, refused (naming the serials) unless each is in the sender's
    stock, of an ordered model, on no other open order, and the counts match per model."""
    if not serials:
        raise ValidationFailed("Scan or paste the serials, one per line.", field="serials")
    duplicates = [s for s, n in Counter(serials).items() if n > 1]
    if duplicates:
        raise ValidationFailed(
            "These serials are listed more than once: {serials}.",
            field="serials",
            serials=_names(duplicates),
        )
    found: dict[str, Terminal] = {}
    for chunk in _chunks(serials):
        for unit in session.execute(select(Terminal).where(Terminal.serial.in_(chunk))).scalars():
            found[unit.serial] = unit
    unknown = [s for s in serials if s not in found]
    if unknown:
        raise ValidationFailed(
            "No unit has these serials: {serials}.", field="serials", serials=_names(unknown)
        )
    location = _sender_location(session, order)
    state = _stock_state(order).value
    away = [s for s in serials if found[s].state != state or found[s].location_id != location.id]
    if away:
        raise ValidationFailed(
            "These serials are not in the stock of {sender}: {serials}.",
            field="serials",
            sender=order.seller.name,
            serials=_names(away),
        )
    wanted = quantities(order)
    models = {m.id: m for m in session.execute(select(TerminalModel)).scalars()}
    wrong = [s for s in serials if found[s].model_id not in wanted]
    if wrong:
        raise ValidationFailed(
            "These serials are of a model the order does not include: {serials}.",
            field="serials",
            serials=_names(f"{s} ({models[found[s].model_id].code})" for s in wrong),
        )
    ids = [found[s].id for s in serials]
    taken: list[str] = []
    for chunk_ids in _chunks(ids):  # type: ignore[arg-type]
        rows = session.execute(
            select(Terminal.serial, ProviderOrder.number)
            .join(OrderSerial, OrderSerial.terminal_id == Terminal.id)
            .join(ProviderOrder, ProviderOrder.id == OrderSerial.order_id)
            .where(
                Terminal.id.in_(chunk_ids),
                ProviderOrder.id != order.id,
                ProviderOrder.state.in_(OPEN_STATES),
            )
        )
        taken += [f"{serial} ({number})" for serial, number in rows]
    if taken:
        raise ValidationFailed(
            "These serials are already on another open order: {serials}.",
            field="serials",
            serials=_names(taken),
        )
    given = Counter(found[s].model_id for s in serials)
    for model_id, quantity in wanted.items():
        if given.get(model_id, 0) != quantity:
            raise ValidationFailed(
                "Model {model}: the order asks for {wanted} units but {given} serials were given.",
                field="serials",
                model=models[model_id].code,
                wanted=quantity,
                given=given.get(model_id, 0),
            )
    return [found[s] for s in serials]


def select_serials(
    *, session: Session, actor: User, order_id: int, serials: str | Sequence[str]
) -> ProviderOrder:
    """The shipping order (发货单): the seller's channel staff pick the units to send, by
    scanning or pasting serials. Replaces an earlier selection."""
    require(actor, CHANNEL_ORDER)
    order = get_order(session=session, actor=actor, order_id=order_id)
    _require_seller_side(session, actor, order)
    _state(order, OrderState.SUBMITTED, OrderState.APPROVING)
    units = _check_selection(session, order, parse_serials(serials))
    before = {"serials": [s.terminal.serial for s in order.serials]}
    order.serials.clear()
    session.flush()
    for unit in units:
        order.serials.append(OrderSerial(terminal_id=unit.id, selected_by_id=actor.id))
    session.flush()
    _event(session, order, actor, "serials_selected", count=len(units))
    record(
        session,
        actor,
        "provider_order.serials_selected",
        order,
        before=before,
        after={"serials": [u.serial for u in units]},
    )
    return order


def _allocate(session: Session, actor: User, order: ProviderOrder) -> None:
    serials = [s.terminal.serial for s in order.serials]
    if not serials:
        raise ValidationFailed(
            "Pick the serials for order {number} before it is approved.",
            field="serials",
            number=order.number,
        )
    units = _check_selection(session, order, serials)
    for unit in units:
        _move(session, actor, unit, TerminalState.ALLOCATED, kind="allocate", document=order.number)
    session.flush()


def _on_order_decided(*, session: Session, request: ApprovalRequest, actor: User) -> None:
    if request.subject_type != ProviderOrder.__tablename__ or not request.subject_id:
        return
    try:
        order_id = int(request.subject_id)
    except ValueError:
        return
    order = session.get(ProviderOrder, order_id)
    if order is None or order.approval_request_id != request.id:
        return
    before = snapshot(order)
    if request.state == RequestState.APPROVED:
        _allocate(session, actor, order)
        order.transition(OrderState.APPROVED)
        _event(session, order, actor, "approved", request=request.number)
        record(session, actor, "provider_order.approved", order, before=before)
    else:
        released = [s.terminal.serial for s in order.serials]
        order.serials.clear()
        order.transition(OrderState.REJECTED)
        session.flush()
        _event(session, order, actor, "rejected", request=request.number, released=released)
        record(session, actor, "provider_order.rejected", order, before=before, released=released)


approvals.on_decided(ORDER_KIND, _on_order_decided)


def approve_county_order(*, session: Session, actor: User, order_id: int) -> ProviderOrder:
    """The city provider accepts a county order (no HQ chain); the picked units are allocated."""
    require(actor, CHANNEL_ORDER)
    order = get_order(session=session, actor=actor, order_id=order_id)
    if not is_county_order(order):
        raise Conflict(
            "Order {number} goes to HQ and is approved in the approvals inbox.",
            number=order.number,
        )
    _require_seller_side(session, actor, order)
    _state(order, OrderState.SUBMITTED)
    before = snapshot(order)
    _allocate(session, actor, order)
    order.transition(OrderState.APPROVED)
    session.flush()
    _event(session, order, actor, "approved")
    record(session, actor, "provider_order.approved", order, before=before)
    return order


# --- orders: warehouse ----------------------------------------------------------------------


def _step_permission(order: ProviderOrder, hq_permission: str) -> str:
    return CHANNEL_ORDER if is_county_order(order) else hq_permission


def pick(
    *, session: Session, actor: User, order_id: int, serials: str | Sequence[str]
) -> ProviderOrder:
    """The picker scans units taken from the shelf; a serial not on the order is refused."""
    require(actor, CHANNEL_VIEW)
    order = get_order(session=session, actor=actor, order_id=order_id)
    require(actor, _step_permission(order, CHANNEL_PICK))
    _require_seller_side(session, actor, order)
    _state(order, OrderState.APPROVED, OrderState.PICKING)
    scanned = parse_serials(serials)
    if not scanned:
        raise ValidationFailed("Scan or paste the serials, one per line.", field="serials")
    by_serial = {s.terminal.serial: s for s in order.serials}
    strangers = [s for s in scanned if s not in by_serial]
    if strangers:
        raise ValidationFailed(
            "Not on order {number}: {serials}.",
            field="serials",
            number=order.number,
            serials=_names(strangers),
        )
    before = snapshot(order)
    now = utcnow()
    for serial in scanned:
        line = by_serial[serial]
        if line.picked_at is None:
            line.picked_at = now
            line.picked_by_id = actor.id
    if order.state == OrderState.APPROVED.value:
        order.transition(OrderState.PICKING)
    session.flush()
    left = sum(1 for s in order.serials if s.picked_at is None)
    _event(session, order, actor, "picked", count=len(scanned), left=left)
    record(session, actor, "provider_order.picked", order, before=before, serials=scanned)
    return order


def check(
    *, session: Session, actor: User, order_id: int, serials: str | Sequence[str]
) -> ProviderOrder:
    """The checker scans every unit again: the scan must equal the order's serials exactly."""
    require(actor, CHANNEL_VIEW)
    order = get_order(session=session, actor=actor, order_id=order_id)
    require(actor, _step_permission(order, CHANNEL_CHECK))
    _require_seller_side(session, actor, order)
    if is_county_order(order) and order.state == OrderState.APPROVED.value:
        # county providers may pick and check in one step
        pick(session=session, actor=actor, order_id=order_id, serials=serials)
    _state(order, OrderState.PICKING)
    scanned = parse_serials(serials)
    expected = [s.terminal.serial for s in order.serials]
    scanned_set, expected_set = set(scanned), set(expected)
    missing = [s for s in expected if s not in scanned_set]
    extra = [s for s in dict.fromkeys(scanned) if s not in expected_set]
    if missing or extra:
        raise ValidationFailed(
            "The scan does not match order {number}. Missing: {missing}. Not on the order: {extra}.",
            field="serials",
            number=order.number,
            missing=_names(missing) or "—",
            extra=_names(extra) or "—",
        )
    unpicked = [s.terminal.serial for s in order.serials if s.picked_at is None]
    if unpicked:
        raise ValidationFailed(
            "These serials have not been picked yet: {serials}.",
            field="serials",
            serials=_names(unpicked),
        )
    before = snapshot(order)
    now = utcnow()
    for line in order.serials:
        line.checked_at = now
        line.checked_by_id = actor.id
    order.transition(OrderState.CHECKED)
    session.flush()
    _event(session, order, actor, "checked", count=len(expected))
    record(session, actor, "provider_order.checked", order, before=before)
    return order


def dispatch(
    *, session: Session, actor: User, order_id: int, carrier: str, tracking_no: str
) -> ProviderOrder:
    """Hand the checked units to the carrier: they become ``shipped`` (booked at the sender's
    location until the buyer confirms receipt)."""
    require(actor, CHANNEL_VIEW)
    order = get_order(session=session, actor=actor, order_id=order_id)
    require(actor, _step_permission(order, CHANNEL_DISPATCH))
    _require_seller_side(session, actor, order)
    _state(order, OrderState.CHECKED)
    carrier = _text(carrier, field="carrier", max_length=64, required=True)
    tracking_no = _text(tracking_no, field="tracking_no", max_length=64, required=True)
    before = snapshot(order)
    for line in order.serials:
        _move(
            session,
            actor,
            line.terminal,
            TerminalState.SHIPPED,
            kind="ship",
            document=order.number,
        )
    order.carrier = carrier
    order.tracking_no = tracking_no
    order.dispatched_at = utcnow()
    order.transition(OrderState.DISPATCHED)
    session.flush()
    _event(session, order, actor, "dispatched", carrier=carrier, tracking_no=tracking_no)
    record(session, actor, "provider_order.dispatched", order, before=before)
    return order


def receive(*, session: Session, actor: User, order_id: int) -> ProviderOrder:
    """The buyer confirms receipt: the units are now at the buyer (``at_provider``)."""
    require(actor, CHANNEL_RECEIVE)
    order = get_order(session=session, actor=actor, order_id=order_id)
    acting = _acting_provider_id(session, actor)
    hq = hq_provider(session)
    if acting != order.buyer_id and (hq is None or acting != hq.id):
        raise PermissionDenied(
            "Only staff of {buyer} may confirm receipt of order {number}.",
            buyer=order.buyer.name,
            number=order.number,
        )
    _state(order, OrderState.DISPATCHED)
    before = snapshot(order)
    destination = provider_location(session, order.buyer)
    for line in order.serials:
        _move(
            session,
            actor,
            line.terminal,
            TerminalState.AT_PROVIDER,
            kind="receive",
            document=order.number,
            to_location=destination,
        )
        line.terminal.provider_id = order.buyer_id
    order.received_at = utcnow()
    order.transition(OrderState.RECEIVED)
    session.flush()
    _event(session, order, actor, "received", count=len(order.serials))
    record(session, actor, "provider_order.received", order, before=before)
    return order


# --- the serial list and filing with HQ ------------------------------------------------------

SERIAL_COLUMNS = ("serial", "model", "imei", "iccid")


def serial_rows(order: ProviderOrder) -> list[tuple[str, str, str, str]]:
    """The serial list (机具三码表) of an order: serial, model, IMEI, ICCID."""
    codes = {line.model_id: line.model.code for line in order.lines}
    return [
        (
            s.terminal.serial,
            codes.get(s.terminal.model_id, ""),
            s.terminal.imei or "",
            s.terminal.iccid or "",
        )
        for s in order.serials
    ]


def serial_list_csv(order: ProviderOrder) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(SERIAL_COLUMNS)
    writer.writerows(serial_rows(order))
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def serial_list_xlsx(order: ProviderOrder) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = order.number
    sheet.append(list(SERIAL_COLUMNS))
    for row in serial_rows(order):
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def file_with_hq(*, session: Session, actor: User, order_id: int) -> ProviderOrder:
    """报备: the city provider files a dispatched county order with HQ; the delivery note and
    the serial list are attached to the order, and HQ's channel team sees it."""
    from cardops.channel.delivery_note import render_delivery_note

    require(actor, CHANNEL_ORDER)
    order = get_order(session=session, actor=actor, order_id=order_id)
    if not is_county_order(order):
        raise Conflict("Only county orders are filed with HQ.", number=order.number)
    _require_seller_side(session, actor, order)
    _state(order, OrderState.DISPATCHED, OrderState.RECEIVED)
    if order.filed_with_hq_at is not None:
        raise Conflict("Order {number} is already filed with HQ.", number=order.number)
    before = snapshot(order)
    for filename, data, note in (
        (f"{order.number}-delivery-note.pdf", render_delivery_note(order), "发货单 Delivery note"),
        (f"{order.number}-serials.csv", serial_list_csv(order), "机具三码 Serial list"),
    ):
        parties.upload_document(
            session=session,
            actor=actor,
            owner_type=DOC_OWNER,
            owner_id=order.id,
            doc_type="other",
            filename=filename,
            data=data,
            note=note,
        )
    order.filed_with_hq_at = utcnow()
    session.flush()
    _event(session, order, actor, "filed_with_hq")
    record(session, actor, "provider_order.filed_with_hq", order, before=before)
    return order


# --- cross-region units -------------------------------------------------------------------


def cross_region_units(
    *, session: Session, actor: User, limit: int = 200, offset: int = 0
) -> list[tuple[Terminal, Provider | None]]:
    """Units flagged as sold outside their provider's region (窜货), newest activation first."""
    require(actor, CHANNEL_VIEW)
    stmt = (
        select(Terminal, Provider)
        .outerjoin(Provider, Provider.id == Terminal.provider_id)
        .where(Terminal.cross_region.is_(True))
    )
    visible = visible_provider_ids(session, actor)
    if visible is not None:
        stmt = stmt.where(Terminal.provider_id.in_(visible))
    stmt = stmt.order_by(Terminal.activated_at.desc(), Terminal.id.desc())
    stmt = stmt.limit(min(limit, 1000)).offset(max(offset, 0))
    return [(t, p) for t, p in session.execute(stmt).tuples()]


# --- purchases report -----------------------------------------------------------------------


@dataclass
class PurchaseRow:
    month: str  # YYYY-MM, local time
    provider: Provider
    orders: int = 0
    quantity: int = 0
    amount: int = 0


def purchases_report(
    *,
    session: Session,
    actor: User,
    since: date | None = None,
    until: date | None = None,
) -> list[PurchaseRow]:
    """Orders received, per buying provider per month (of receipt): count, units, amount."""
    require(actor, CHANNEL_VIEW)
    qty = (
        select(OrderLine.order_id, func.sum(OrderLine.quantity).label("qty"))
        .group_by(OrderLine.order_id)
        .subquery()
    )
    stmt = (
        select(ProviderOrder, qty.c.qty)
        .join(qty, qty.c.order_id == ProviderOrder.id)
        .where(
            ProviderOrder.state == OrderState.RECEIVED.value,
            ProviderOrder.received_at.is_not(None),
        )
    )
    visible = visible_provider_ids(session, actor)
    if visible is not None:
        stmt = stmt.where(ProviderOrder.buyer_id.in_(visible))
    rows: dict[tuple[str, int], PurchaseRow] = {}
    for order, quantity in session.execute(stmt).tuples():
        assert order.received_at is not None
        day = local(order.received_at).date()
        if (since and day < since) or (until and day > until):
            continue
        key = (day.strftime("%Y-%m"), order.buyer_id)
        row = rows.get(key)
        if row is None:
            row = rows[key] = PurchaseRow(month=key[0], provider=order.buyer)
        row.orders += 1
        row.quantity += int(quantity or 0)
        row.amount += order.total
    return sorted(rows.values(), key=lambda r: (r.month, r.provider.code))


def purchases_xlsx(rows: list[PurchaseRow]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "purchases"
    sheet.append(["month", "provider code", "provider", "orders", "units", "amount (yuan)"])
    for r in rows:
        sheet.append(
            [r.month, r.provider.code, r.provider.name, r.orders, r.quantity, r.amount / 100]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def purchases_svg(rows: list[PurchaseRow], *, width: int = 640, height: int = 220) -> str:
    """An inline SVG bar chart of the amount received per month."""
    from xml.sax.saxutils import escape

    per_month: dict[str, int] = defaultdict(int)
    for r in rows:
        per_month[r.month] += r.amount
    months = sorted(per_month)
    if not months:
        return ""
    top = max(per_month.values()) or 1
    pad_left, pad_bottom, pad_top = 60, 30, 16
    plot_w, plot_h = width - pad_left - 10, height - pad_bottom - pad_top
    bar_w = plot_w / len(months)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="purchases-chart" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f'<line x1="{pad_left}" y1="{pad_top + plot_h}" x2="{width - 10}" '
        f'y2="{pad_top + plot_h}" stroke="#888"/>',
        f'<text x="{pad_left - 6}" y="{pad_top + 4}" text-anchor="end" font-size="10">'
        f"{top / 100:,.0f}</text>",
    ]
    for i, month in enumerate(months):
        value = per_month[month]
        h = plot_h * value / top
        x = pad_left + i * bar_w + bar_w * 0.15
        y = pad_top + plot_h - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w * 0.7:.1f}" height="{h:.1f}" '
            f'fill="#3b82f6"><title>{escape(month)}: {value / 100:,.2f}</title></rect>'
        )
        parts.append(
            f'<text x="{x + bar_w * 0.35:.1f}" y="{height - 10}" text-anchor="middle" '
            f'font-size="10">{escape(month)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
