"""Recording sales: the customer and product they belong to, once per external id."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from scheduler.bulk_writes import insert_rows
from scheduler.collector import collections_paused
from scheduler.config import Config
from scheduler.db import begin_writing, chunked, planned_with_their_values
from scheduler.erasure import honour_earlier_no
from scheduler.lifecycle import FollowUpStatus, SaleStatus
from scheduler.models import Base, Customer, FollowUp, Product, Sale
from scheduler.sending.planning import plan_sales, to_plan
from scheduler.sending.products import change_product

# The tables themselves, for inserts of many rows (`bulk_writes.insert_rows`).
AUDIT = Base.metadata.tables["audit_log"]
CUSTOMERS = Base.metadata.tables["customers"]
PRODUCTS = Base.metadata.tables["products"]
SALES = Base.metadata.tables["sales"]
SALE_COLUMNS = (
    "external_id",
    "customer_id",
    "product_id",
    "sold_at",
    "amount",
    "currency",
    "status",
    "attributes",
    "created_at",
)
SALE_KEYS = ("id", "external_id")  # what inserting them returns: each new sale's id
PRODUCT_TERMS = ("category", "renewal_days")  # what a sale may say about its product


@dataclass(frozen=True, slots=True)
class SaleInput:
    """A validated sale as it arrives from the API, a CSV row or the admin form.

    `phone` is already E.164 and `sold_at` aware: validation happens before this point.
    """

    external_id: str
    sold_at: datetime
    customer_name: str
    phone: str | None = None
    email: str | None = None
    locale: str | None = None
    timezone: str | None = None
    product_sku: str | None = None
    product_name: str | None = None
    category: str | None = None  # given: the product's, from now on (the shop's word)
    renewal_days: int | None = None
    amount: Decimal | None = None
    currency: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    whatsapp_opt_in: bool = False  # the customer said yes to WhatsApp when buying


class NewCustomer(NamedTuple):
    """A customer to insert, as their first sale gives them (the columns, in order)."""

    name: str
    phone: str | None
    email: str | None
    locale: str | None
    timezone: str | None
    created_at: datetime


class Buyer(NamedTuple):
    """What recording a sale reads of its customer: plain values, not an ORM object per sale."""

    id: int
    phone: str | None
    email: str | None
    timezone: str | None
    created_at: datetime


BUYER_COLUMNS = (
    Customer.id,
    Customer.phone,
    Customer.email,
    Customer.timezone,
    Customer.created_at,
)


def _keyed(buyers: Iterable[Buyer]) -> dict[tuple[str, str], Buyer]:
    """`buyers` by ("phone", value) and ("email", value), as `_customer_rows` gives them."""
    known: dict[tuple[str, str], Buyer] = {}
    for buyer in buyers:
        if buyer.phone:
            known[("phone", buyer.phone)] = buyer
        if buyer.email:
            known[("email", buyer.email)] = buyer
    return known


def _customer_rows(
    session: Session, phones: Sequence[str], emails: Sequence[str]
) -> dict[tuple[str, str], Buyer]:
    """The customers with these phones and emails, keyed by ("phone" | "email", value)."""
    with planned_with_their_values(session):
        known = _keyed(_buyers_with(session, Customer.phone, phones))
        # Those found by their phone are not read a second time by their email.
        unread = [email for email in emails if ("email", email) not in known]
        known |= _keyed(_buyers_with(session, Customer.email, unread))
    return known


def _buyers_with(
    session: Session, column: InstrumentedAttribute[str | None], values: Sequence[str]
) -> Iterator[Buyer]:
    """The customers whose `column` is one of `values`, a chunk of them a statement."""
    for chunk in chunked(values):
        for row in session.execute(select(*BUYER_COLUMNS).where(column.in_(chunk))):
            yield Buyer(*row)


def _customers_for(session: Session, sales: Sequence[SaleInput], now: datetime) -> dict[str, Buyer]:
    """Each sale's customer by external id: the one with this phone, else the one with this
    email, else a new one. Phone and email are each unique among customers (database indexes),
    and new customers are inserted with ON CONFLICT DO NOTHING and then read back, so sales of
    one person arriving at once, in one batch or in parallel requests, share one customer.

    When the phone belongs to one customer and the email to another, the phone wins: replies
    and STOPs by SMS reach us from the number alone (`listening.inbound` matches by phone), so the
    sale must sit with the person whose number it is for the gap rule and consent to hold.
    """
    phones = sorted({sale.phone for sale in sales if sale.phone})
    emails = sorted({sale.email for sale in sales if sale.email})
    # Each phone and email's customer: a row, or the index of one to insert below. Sales are
    # taken in order, as recording them one at a time would: a later sale whose phone an earlier
    # one brought is that customer's, an email alone does not move a phone.
    owner: dict[tuple[str, str], Buyer | int] = dict(_customer_rows(session, phones, emails))
    rows: list[NewCustomer] = []
    choice: dict[str, Buyer | int] = {}
    for sale in sales:
        found = owner.get(("phone", sale.phone)) if sale.phone else None
        if found is None and sale.email:
            found = owner.get(("email", sale.email))
        if found is None:
            found = len(rows)
            rows.append(
                NewCustomer(
                    sale.customer_name, sale.phone, sale.email, sale.locale, sale.timezone, now
                )
            )
            for kind in ("phone", "email"):
                if value := getattr(sale, kind):
                    owner.setdefault((kind, value), found)
        choice[sale.external_id] = found
    reachable = [row for row in rows if row.phone or row.email]
    unreachable = [row for row in rows if not (row.phone or row.email)]
    # Sorted, so that two batches lock the same index entries in the same order (no deadlock).
    reachable.sort(key=lambda row: (row.phone or "", row.email or ""))
    inserted = insert_rows(
        session,
        CUSTOMERS,
        NewCustomer._fields,
        reachable,
        ignoring_conflicts=True,
        returning=("id", "phone", "email"),
    )
    # Each row returned is one of ours, by its phone (else its email): the rest as we wrote it.
    ours = {(row.phone, None if row.phone else row.email): row for row in reachable}
    known = _keyed(
        Buyer(id_, phone, email, ours[phone, None if phone else email].timezone, now)
        for id_, phone, email in inserted
    )
    # The rows a parallel request inserted first (nothing returned for them) are theirs: read.
    lost = [
        row
        for row in reachable
        if ("phone", row.phone) not in known and ("email", row.email) not in known
    ]
    if lost:
        known |= _customer_rows(
            session,
            sorted({row.phone for row in lost if row.phone}),
            sorted({row.email for row in lost if row.email}),
        )
    # A customer with neither phone nor email is nobody else's: inserted as it is.
    created = _insert_returning(session, unreachable)
    without_address = dict(zip(map(id, unreachable), created, strict=True))
    chosen: dict[str, Buyer] = {}
    for external_id, found in choice.items():
        if isinstance(found, int):  # ours, or a parallel request's that won the insert
            row = rows[found]
            found = (
                without_address.get(id(row))
                or known.get(("phone", row.phone or ""))
                or known.get(("email", row.email or ""))
            )
        if found is None:  # inserted, then deleted by someone else before we read it back
            raise LookupError(f"sale {external_id}: its customer vanished while recorded")
        chosen[external_id] = found
    return chosen


def _whatsapp_yes(
    session: Session,
    sales: Sequence[SaleInput],
    customers: Mapping[str, Buyer],
    *,
    now: datetime,
    actor: str,
) -> None:
    """Record the WhatsApp opt-in given with a sale, for customers with none yet (the first
    yes is kept); a no given on WhatsApp itself stays: it is a later word than the shop's."""
    ids = sorted({customers[s.external_id].id for s in sales if s.whatsapp_opt_in})
    for chunk in chunked(ids):
        session.execute(
            update(Customer)
            .where(Customer.id.in_(chunk), Customer.whatsapp_opt_in_at.is_(None))
            .values(whatsapp_opt_in_at=now, whatsapp_opt_in_via=f"said yes with a sale ({actor})"),
            execution_options={"synchronize_session": "fetch"},
        )


def _insert_returning(session: Session, rows: list[NewCustomer]) -> list[Buyer]:
    """New customers inserted and read back in order, in one statement."""
    if not rows:
        return []
    statement = insert(Customer).returning(*BUYER_COLUMNS, sort_by_parameter_order=True)
    return [Buyer(*row) for row in session.execute(statement, [row._asdict() for row in rows])]


def _product_rows(session: Session, skus: Sequence[str]) -> dict[str, Product]:
    return {
        product.sku: product
        for chunk in chunked(skus)
        for product in session.scalars(select(Product).where(Product.sku.in_(chunk)))
    }


def _products_for(
    session: Session, sales: Sequence[SaleInput], *, config: Config, now: datetime, actor: str
) -> dict[str, Product]:
    """Each SKU's product, created if new with ON CONFLICT DO NOTHING then read back: parallel
    sales of a new SKU share the one product that the first of them created.

    A category or renewal period given with a sale is the shop's word on its product: set on a
    new one, and on one that exists changed (audited; the sales it already has follow, see
    `products.change_product`). Within a batch the first sale to give a value for a SKU is
    taken (a CSV's check refuses a later row of the file that says otherwise)."""
    skus = sorted({sale.product_sku for sale in sales if sale.product_sku})
    products = _product_rows(session, skus)
    names: dict[str, str] = {}
    terms: dict[str, dict[str, Any]] = {sku: {} for sku in skus}
    for sale in sales:
        if not sale.product_sku:
            continue
        for key in PRODUCT_TERMS:
            if (value := getattr(sale, key)) is not None:
                terms[sale.product_sku].setdefault(key, value)
        if sale.product_sku not in products:
            names.setdefault(sale.product_sku, sale.product_name or sale.product_sku)
    if names:
        rows = [
            {"sku": sku, "name": name, "category": None, "renewal_days": None} | terms[sku]
            for sku, name in sorted(names.items())
        ]
        columns = ("sku", "name", "category", "renewal_days")
        rows_of = [tuple(row[column] for column in columns) for row in rows]
        insert_rows(session, PRODUCTS, columns, rows_of, ignoring_conflicts=True)
        products = _product_rows(session, skus)
    for sku in skus:  # in order, so that two batches lock products in the same order
        if terms[sku] and sku in products:
            change_product(session, products[sku], terms[sku], config=config, now=now, actor=actor)
    return products


def _existing(session: Session, external_ids: Sequence[str]) -> dict[str, Sale]:
    with planned_with_their_values(session):
        return {
            sale.external_id: sale
            for chunk in chunked(external_ids)
            for sale in session.scalars(
                select(Sale)
                .where(Sale.external_id.in_(chunk))
                # What `differences` compares, loaded with them: a file imported again
                # compares every row, in a handful of queries.
                .options(selectinload(Sale.customer), selectinload(Sale.product))
            )
        }


def _loaded(
    session: Session, arrivals: Sequence[tuple[int, datetime]]
) -> Iterator[tuple[Customer, datetime]]:
    """Each customer (by id) with the date of their sale, loaded in a handful of queries when
    first asked for: `honour_earlier_no` asks only once someone was ever erased."""
    ids = sorted({customer_id for customer_id, _sold in arrivals})
    customers = {
        customer.id: customer
        for chunk in chunked(ids)
        for customer in session.scalars(select(Customer).where(Customer.id.in_(chunk)))
    }
    for customer_id, sold_at in arrivals:
        yield customers[customer_id], sold_at


@dataclass(frozen=True)
class Recorded:
    """What recording a batch of sales did, by external id: the sales there before (loaded
    with their customer and product, for `differences`) and the ids of those it created."""

    existing: dict[str, Sale]
    created: dict[str, int]
    # How many follow-ups of the created sales were skipped as they were planned, when
    # nothing else can have skipped any (see `skipped_as_late`); None when something may have.
    skipped: int | None = 0


def record_sales(
    session: Session, sales: Sequence[SaleInput], *, config: Config, now: datetime, actor: str
) -> list[tuple[Sale, bool]]:
    """Each sale with its external id, created with its follow-ups if new, in input order; the
    flag says whether it was created. A handful of queries per batch, whatever its size: imports
    and the API share this path. Re-sending an external id changes nothing, even in a race."""
    begin_writing(session)
    with collections_paused(len(sales)):  # over the store and the load of the new sales
        recorded = _store(session, sales, config=config, now=now, actor=actor)
        loaded = {
            sale.id: sale
            for chunk in chunked(sorted(recorded.created.values()))
            for sale in session.scalars(select(Sale).where(Sale.id.in_(chunk)))
        }
    fresh = set(recorded.created)
    results = []
    for sale in sales:
        row = recorded.existing.get(sale.external_id) or loaded[recorded.created[sale.external_id]]
        results.append((row, sale.external_id in fresh))
        fresh.discard(sale.external_id)  # a duplicate later in the batch was not created
    return results


def store_sales(
    session: Session, sales: Sequence[SaleInput], *, config: Config, now: datetime, actor: str
) -> Recorded:
    """`record_sales`, the sales it creates not loaded: an import needs their ids alone."""
    begin_writing(session)
    with collections_paused(len(sales)):
        return _store(session, sales, config=config, now=now, actor=actor)


def _store(
    session: Session, sales: Sequence[SaleInput], *, config: Config, now: datetime, actor: str
) -> Recorded:
    """`store_sales`, the write lock taken and the collector paused."""
    existing = _existing(session, sorted({sale.external_id for sale in sales}))
    new: list[SaleInput] = []
    seen = set(existing)
    for sale in sales:  # the first of duplicate external ids in one batch wins
        if sale.external_id not in seen:
            seen.add(sale.external_id)
            new.append(sale)
    if not new:
        return Recorded(existing, {})
    try:
        with session.begin_nested():
            customers = _customers_for(session, new, now)
            _whatsapp_yes(session, new, customers, now=now, actor=actor)
            products = _products_for(session, new, config=config, now=now, actor=actor)
            rows = [
                (
                    sale.external_id,
                    customers[sale.external_id].id,
                    product.id if (product := products.get(sale.product_sku or "")) else None,
                    sale.sold_at,
                    sale.amount,
                    sale.currency,
                    SaleStatus.ACTIVE,
                    sale.attributes,
                    now,
                )
                for sale in new
            ]
            inserted = insert_rows(session, SALES, SALE_COLUMNS, rows, returning=SALE_KEYS)
            created = {external_id: sale_id for sale_id, external_id in inserted}
            planned = plan_sales(
                session,
                [
                    to_plan(
                        created[sale.external_id],
                        sale.sold_at,
                        products.get(sale.product_sku or ""),
                        customers[sale.external_id],
                    )
                    for sale in new
                ],
                config,
                now,
            )
            # New customers with a number or email someone erased had: their no's hold,
            # and settle what was just planned for them (`consent.opt_out`).
            arrivals = [
                (buyer.id, sale.sold_at)
                for sale in new
                if (buyer := customers[sale.external_id]).created_at == now
            ]
            noes = honour_earlier_no(session, _loaded(session, arrivals), now=now, actor=actor)
    except IntegrityError:
        if len(sales) == 1:  # another request recorded it first: theirs is the sale
            winner = session.scalar(select(Sale).where(Sale.external_id == sales[0].external_id))
            if winner is None:
                raise
            return Recorded({winner.external_id: winner}, {})
        each = [store_sales(session, [sale], config=config, now=now, actor=actor) for sale in sales]
        counts = [one.skipped for one in each]
        return Recorded(
            {key: row for one in each for key, row in one.existing.items()},
            {key: sale_id for one in each for key, sale_id in one.created.items()},
            None if None in counts else sum(filter(None, counts)),
        )
    insert_rows(
        session,
        AUDIT,
        ("at", "actor", "action", "entity_type", "entity_id", "details"),
        [
            (
                now,
                actor,
                "sale.record",
                "sale",
                created[sale.external_id],
                {
                    "external_id": sale.external_id,
                    "follow_ups": planned.added[created[sale.external_id]],
                },
            )
            for sale in new
        ],
    )
    # An opt-out made for an erased customer's address settles what was just planned.
    return Recorded(existing, created, planned.skipped if noes == 0 else None)


def skipped_as_late(session: Session, sales: Sequence[Sale]) -> int:
    """How many follow-ups of these sales, just recorded, were skipped as they were planned: a
    sale recorded days after it happened misses the steps whose time passed beyond the grace,
    and whoever recorded it is told so rather than left to believe every step will go."""
    return skipped_as_late_by_id(session, [sale.id for sale in sales])


def skipped_as_late_by_id(session: Session, sale_ids: Sequence[int]) -> int:
    """`skipped_as_late` for the sales with these ids."""
    return sum(
        session.scalar(
            select(func.count()).where(
                FollowUp.sale_id.in_(chunk),
                FollowUp.case_id.is_(None),
                FollowUp.status == FollowUpStatus.SKIPPED,
            )
        )
        or 0
        for chunk in chunked(sale_ids)
    )


def _shown(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def differences(existing: Sale, incoming: SaleInput) -> list[tuple[str, str]]:
    """What a sale sent again under a recorded external id says otherwise, by field (named as
    intake names them), each as "recorded as X, sent as Y": the same id with other content is
    another sale or a correction, and neither may pass for a repeat. Compared: when it was sold,
    who bought it (the phone when one is sent, as that is how its customer is found, else the
    email), the product's SKU, the amount and the currency. Not compared: names, locale, time
    zone, product name and attributes, which systems spell differently for the same sale."""
    customer, product = existing.customer, existing.product
    pairs: list[tuple[str, object, object]] = [
        ("sold_at", existing.sold_at, incoming.sold_at),
        ("product_sku", product.sku if product else None, incoming.product_sku),
        ("amount", existing.amount, incoming.amount),
        ("currency", existing.currency, incoming.currency),
    ]
    if incoming.phone is not None:
        pairs.insert(1, ("phone", customer.phone, incoming.phone))
    elif incoming.email is not None:
        pairs.insert(1, ("email", customer.email, incoming.email))
    return [
        (field, f"recorded as {_shown(recorded)}, sent as {_shown(sent)}")
        for field, recorded, sent in pairs
        if recorded != sent
    ]


def record_sale(
    session: Session, sale: SaleInput, *, config: Config, now: datetime, actor: str
) -> tuple[Sale, bool]:
    """`record_sales` for one sale."""
    return record_sales(session, [sale], config=config, now=now, actor=actor)[0]
