"""Turning a recorded sale into follow-up rows: the database side of `due_times`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from operator import itemgetter
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.orm import Session

from scheduler.bulk_writes import insert_rows
from scheduler.config import Config
from scheduler.db import chunked
from scheduler.figures.tallies import KEY, NO_REPLY, NOT_OBJECTED
from scheduler.lifecycle import Anchor, Channel, FollowUpStatus, SaleStatus
from scheduler.models import Base, Cadence, CadenceStep, Customer, FollowUp, Product, Sale
from scheduler.sending.due_times import (
    Planned,
    SendRules,
    Step,
    parse_condition,
    plan_after_score,
    plan_sale,
    plan_step,
)

# The tables themselves for the inserts of follow-ups: without the ORM's bookkeeping per row.
FOLLOW_UPS = Base.metadata.tables["follow_ups"]
TALLIES = Base.metadata.tables["follow_up_tallies"]
TALLIES_WRITER = Base.metadata.tables["follow_up_tallies_writer"]
TALLIED = (*KEY, "n")


class Because(StrEnum):
    """Why a product follows its cadence: chosen for it, its category's, or the default."""

    PRODUCT = "product"
    CATEGORY = "category"
    DEFAULT = "default"


def choose_cadence(
    cadence_id: int | None, category: str | None, cadences: Iterable[Cadence]
) -> tuple[Cadence, Because] | None:
    """The product's own cadence, else its category's, else the default; active ones only
    (one chosen for the product but paused hands it on to the next)."""
    active = [cadence for cadence in cadences if cadence.active]

    def fits(cadence: Cadence, because: Because) -> bool:
        if because is Because.PRODUCT:
            return cadence_id is not None and cadence.id == cadence_id
        if because is Because.CATEGORY:
            return category is not None and cadence.product_category == category
        return cadence.is_default

    for because in Because:  # in the order of preference
        for cadence in active:
            if fits(cadence, because):
                return cadence, because
    return None


def cadence_of(session: Session, product: Product | None) -> tuple[Cadence, Because] | None:
    """The cadence a product's sales follow (no product: the default's), and why."""
    if product is None:
        return _cadence_of_kind(session, None, None)
    return _cadence_of_kind(session, product.cadence_id, product.category)


def _cadence_of_kind(
    session: Session, cadence_id: int | None, category: str | None
) -> tuple[Cadence, Because] | None:
    candidates = session.scalars(
        select(Cadence).where(
            Cadence.active.is_(True),
            or_(
                Cadence.id == cadence_id,
                Cadence.product_category == category,
                Cadence.is_default.is_(True),
            ),
        )
    )
    return choose_cadence(cadence_id, category, candidates)


def cadence_for(session: Session, sale: Sale) -> Cadence | None:
    """The cadence a sale follows: its product's (see `cadence_of`)."""
    chosen = cadence_of(session, sale.product)
    return chosen[0] if chosen else None


def send_rules(config: Config, customer: Customer) -> SendRules:
    """The customer's own time zone, else the business's, with the business's window and days."""
    return rules_in(config, customer.timezone)


def rules_in(config: Config, timezone: str | None) -> SendRules:
    """`send_rules` for a customer whose time zone is `timezone`."""
    business = config.business
    return SendRules(
        tz=ZoneInfo(timezone or business.timezone),
        window=business.send_window,
        days=business.send_days,
    )


def to_step(row: CadenceStep) -> Step:
    return Step(
        id=row.id,
        key=row.key,
        anchor=row.anchor,
        offset=timedelta(minutes=row.offset_minutes),
        channel=row.channel,
        condition=parse_condition(row.condition) if row.condition else None,
    )


def reachable_channel(
    wanted: Channel, customer: Customer, *, consenting: bool = False
) -> Channel | None:
    """The step's channel if the customer has that address, else the other one, else None.
    `consenting`: only a channel they have not opted out of (a follow-up planned now for a
    moment announced now, such as "did we solve it?", must not be one that will be skipped)."""
    usable = {Channel.SMS: bool(customer.phone), Channel.EMAIL: bool(customer.email)}
    if consenting:
        usable = {c: ok and customer.opt_out_at(c) is None for c, ok in usable.items()}
    return _reachable(wanted, usable)


def _reachable(wanted: Channel, usable: Mapping[Channel, bool]) -> Channel | None:
    if usable[wanted]:
        return wanted
    other = Channel.EMAIL if wanted is Channel.SMS else Channel.SMS
    return other if usable[other] else None


def _as_sent(planned: Planned, *, phone: bool, email: bool) -> Planned:
    """`planned` on the channel it can go by (`reachable_channel`), or skipped when the
    customer has neither a phone nor an email."""
    step_id, wanted, due_at = planned.step_id, planned.channel, planned.due_at
    channel = _reachable(wanted, {Channel.SMS: phone, Channel.EMAIL: email})
    if channel is None:
        return Planned(step_id, wanted, due_at, FollowUpStatus.SKIPPED, "no phone or email")
    if channel is wanted:
        return planned
    return Planned(step_id, channel, due_at, planned.status, planned.reason)


# A follow-up as planned, in the order of `_values`.
PLANNED = (
    "sale_id",
    "product_id",
    "step_id",
    "customer_id",
    "channel",
    "due_at",
    "status",
    "status_reason",
    "attempts",
    "facts",
    "created_at",
    "updated_at",
)
NO_FACTS: dict[str, Any] = {}  # written, never changed: shared by the rows of a batch


def _values(
    sale_id: int, product_id: int | None, customer_id: int, planned: Planned, now: datetime
) -> tuple[Any, ...]:
    return (
        sale_id,
        product_id,
        planned.step_id,
        customer_id,
        planned.channel,
        planned.due_at,
        planned.status,
        planned.reason,
        0,
        NO_FACTS,
        now,
        now,
    )


def _row(sale: Sale, planned: Planned, now: datetime) -> dict[str, Any]:
    values = _values(sale.id, sale.product_id, sale.customer_id, planned, now)
    return dict(zip(PLANNED, values, strict=True))


class Reachable(Protocol):
    """A customer as planning reads them: an ORM one, or the plain values of one."""

    @property
    def id(self) -> int: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def timezone(self) -> str | None: ...


class ToPlan(NamedTuple):
    """A sale as planning reads it, in plain values: from the ORM when planning again, from
    the rows just written when recording (no Sale, Customer or Product read per sale)."""

    sale_id: int
    product_id: int | None
    customer_id: int
    sold_at: datetime
    cadence_id: int | None  # its product's, as `cadence_of` reads it
    category: str | None
    renewal_days: int | None
    phone: bool  # the customer has one (theirs: not necessarily the sale's)
    email: bool
    timezone: str | None  # the customer's own


def to_plan(
    sale_id: int, sold_at: datetime, product: Product | None, customer: Reachable
) -> ToPlan:
    """A sale as planning reads it, from its product and its customer."""
    return ToPlan(
        sale_id,
        product.id if product else None,
        customer.id,
        sold_at,
        product.cadence_id if product else None,
        product.category if product else None,
        product.renewal_days if product else None,
        bool(customer.phone),
        bool(customer.email),
        customer.timezone,
    )


class SalesPlanned(NamedTuple):
    """What `plan_sales` created: how many follow-ups each sale got, and how many of them
    were planned as skipped (their time passed beyond the grace, nobody to reach)."""

    added: dict[int, int]
    skipped: int


def schedule_sales(
    session: Session, sales: Sequence[Sale], config: Config, now: datetime
) -> dict[int, int]:
    """Create the follow-ups these sales are missing, in one insert; running it again adds
    nothing. Returns how many each sale got."""
    have: set[tuple[int, int]] = set()
    for chunk in chunked([sale.id for sale in sales]):
        existing = select(FollowUp.sale_id, FollowUp.step_id).where(
            FollowUp.sale_id.in_(chunk), FollowUp.case_id.is_(None)
        )
        have.update((sale_id, step_id) for sale_id, step_id in session.execute(existing))
    planned = [to_plan(sale.id, sale.sold_at, sale.product, sale.customer) for sale in sales]
    return plan_sales(session, planned, config, now, have=have).added


def plan_sales(
    session: Session,
    sales: Sequence[ToPlan],
    config: Config,
    now: datetime,
    *,
    have: Collection[tuple[int, int]] = (),
) -> SalesPlanned:
    """Create the follow-ups of these sales, but those in `have` (sale id, step id), in one
    insert; returns how many each sale got, and how many were skipped. Cadences are looked
    up once per kind of product, and a sale's follow-ups dated once per kind of product,
    moment of sale, zone and reach: the sales of one file or order often share all four."""
    grace = timedelta(hours=config.cadences.late_grace_hours)
    steps_of: dict[tuple[int | None, str | None], list[Step]] = {}
    rules_of: dict[str | None, SendRules] = {}
    dated: dict[tuple[Any, ...], list[Planned]] = {}
    rows: list[tuple[Any, ...]] = []
    added = dict.fromkeys((sale.sale_id for sale in sales), 0)
    skipped = 0
    for sale in sales:
        kind = (sale.cadence_id, sale.category)
        key = (kind, sale.renewal_days, sale.sold_at, sale.timezone, sale.phone, sale.email)
        planned = dated.get(key)
        if planned is None:
            if kind not in steps_of:
                chosen = _cadence_of_kind(session, *kind)
                steps_of[kind] = (
                    [to_step(row) for row in chosen[0].steps if row.active] if chosen else []
                )
            if sale.timezone not in rules_of:
                rules_of[sale.timezone] = rules_in(config, sale.timezone)
            planned = dated[key] = [
                _as_sent(plan, phone=sale.phone, email=sale.email)
                for plan in plan_sale(
                    steps_of[kind],
                    sold_at=sale.sold_at,
                    renewal_days=sale.renewal_days,
                    rules=rules_of[sale.timezone],
                    now=now,
                    grace=grace,
                )
            ]
        for plan in planned:
            if (sale.sale_id, plan.step_id) not in have:
                rows.append(_values(sale.sale_id, sale.product_id, sale.customer_id, plan, now))
                added[sale.sale_id] += 1
                skipped += plan.status is FollowUpStatus.SKIPPED
    _insert_planned(session, rows)
    return SalesPlanned(added, skipped)


# What a planned follow-up is tallied by, read from its `_values`.
_TALLY_KEY = itemgetter(
    *(PLANNED.index(name) for name in ("due_at", "step_id", "channel", "status", "product_id"))
)


def _insert_planned(session: Session, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert the follow-ups `_values` made. On SQLite, whose triggers fire row by row, their
    tallies are written here, counted (a row per day, step, channel, status and product: a
    few dozen for thousands of follow-ups), while `follow_up_tallies_writer` holds a row that
    tells the insert trigger to leave them (migration 0034): its row per follow-up was a fifth
    of the insert's time. The row goes however the insert ends, for every other writer's
    inserts to be tallied again. PostgreSQL's trigger, one a statement, is left to count."""
    if not rows or session.get_bind().dialect.name != "sqlite":
        insert_rows(session, FOLLOW_UPS, PLANNED, rows)
        return
    counted: Counter[tuple[Any, ...]] = Counter()
    for (due_at, step_id, channel, status, product_id), n in Counter(map(_TALLY_KEY, rows)).items():
        day = due_at.astimezone(UTC).date()  # as SQLite's date() reads the stored UTC time
        counted[(day, step_id, str(channel), str(status), product_id or 0)] += n
    connection = session.connection()  # no flush of pending objects while the row is there
    connection.execute(insert(TALLIES_WRITER).values(id=1))
    try:
        insert_rows(session, FOLLOW_UPS, PLANNED, rows)
    finally:
        connection.execute(delete(TALLIES_WRITER))
    tallies = [
        (day, None, step_id, channel, status, NO_REPLY, product_id, NOT_OBJECTED, n)
        for (day, step_id, channel, status, product_id), n in counted.items()
    ]
    insert_rows(session, TALLIES, TALLIED, tallies)


def schedule_case_check(
    session: Session, case_id: int, customer: Customer, *, config: Config, now: datetime
) -> int:
    """Plan "did we solve it?" for a case just resolved, on the customer's latest sale: its
    cadence's steps anchored on the case's resolution, else the default cadence's, so that a
    cadence without one still keeps the promise, on a channel the customer has not opted out
    of. Returns how many were planned (0 for a customer with no active sale, or none we may
    write to: nothing would be sent)."""
    sale = session.scalars(
        select(Sale)
        .where(Sale.customer_id == customer.id, Sale.status == SaleStatus.ACTIVE)
        .order_by(Sale.sold_at.desc(), Sale.id.desc())
        .limit(1)
    ).first()
    if sale is None:
        return 0
    steps = _case_steps(cadence_for(session, sale))
    if not steps:
        steps = _case_steps(session.scalar(select(Cadence).where(Cadence.is_default.is_(True))))
    grace = timedelta(hours=config.cadences.late_grace_hours)
    rules = send_rules(config, customer)
    rows = [
        _row(sale, planned, now)
        | {"channel": channel, "case_id": case_id}
        | {"facts": {"case_id": case_id}}
        for planned in (plan_step(to_step(step), now, rules, now, grace) for step in steps)
        if (channel := reachable_channel(planned.channel, customer, consenting=True))
    ]
    if rows:
        session.execute(insert(FOLLOW_UPS), rows)
    return len(rows)


def _case_steps(cadence: Cadence | None) -> list[CadenceStep]:
    if cadence is None:
        return []
    return [row for row in cadence.steps if row.active and row.anchor is Anchor.CASE]


def schedule_after_score(
    session: Session,
    sale: Sale,
    *,
    score: int,
    at: datetime,
    config: Config,
    now: datetime,
    facts: dict[str, Any] | None = None,
) -> int:
    """Plan the steps a score enables (a review request after a 9, a hand-off after a 3),
    dated from when it arrived; `facts` (with the score) reach their templates. Returns how
    many were added; a step already planned for the sale is not planned twice."""
    cadence = cadence_for(session, sale)
    if cadence is None:
        return 0
    planned = plan_after_score(
        [to_step(row) for row in cadence.steps if row.active],
        score=score,
        at=at,
        rules=send_rules(config, sale.customer),
        now=now,
        grace=timedelta(hours=config.cadences.late_grace_hours),
    )
    have = set(session.scalars(select(FollowUp.step_id).where(FollowUp.sale_id == sale.id)))
    phone, email = bool(sale.customer.phone), bool(sale.customer.email)
    rows = [
        _row(sale, _as_sent(plan, phone=phone, email=email), now)
        | {"facts": {"score": score, **(facts or {})}}
        for plan in planned
        if plan.step_id not in have
    ]
    if rows:
        session.execute(insert(FOLLOW_UPS), rows)
    return len(rows)
