"""The data model: SQLAlchemy 2 typed ORM. Every datetime is timezone-aware and stored in UTC.

Integrity that matters lives in the database, not only here: one follow-up per (sale, step), one
message per provider id, one open case per customer.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    select,
    text,
    true,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from scheduler.addresses import whatsapp_address
from scheduler.lifecycle import (
    MAYBE_SENT,
    Anchor,
    CaseStatus,
    Channel,
    ConsentSource,
    DeliveryOutcome,
    Direction,
    FollowUpStatus,
    RemedyStatus,
    Role,
    SaleStatus,
    check_follow_up_transition,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zones: values are stored as naive UTC and made aware again when read.
    A naive datetime is refused, because guessing its zone is how follow-ups go out at 3 a.m.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give it a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _enum(cls: type[Enum], name: str) -> SAEnum:
    """Enums are stored as their string values with a CHECK constraint, on both backends."""
    return SAEnum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        Role: _enum(Role, "role"),
        Channel: _enum(Channel, "channel"),
        Direction: _enum(Direction, "direction"),
        SaleStatus: _enum(SaleStatus, "sale_status"),
        FollowUpStatus: _enum(FollowUpStatus, "follow_up_status"),
        CaseStatus: _enum(CaseStatus, "case_status"),
        Anchor: _enum(Anchor, "anchor"),
        RemedyStatus: _enum(RemedyStatus, "remedy_status"),
        DeliveryOutcome: _enum(DeliveryOutcome, "delivery_outcome"),
    }


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role]
    locale: Mapped[str] = mapped_column(String(8), default="es")
    active: Mapped[bool] = mapped_column(default=True)
    # An owner is emailed new and overdue cases unless they turn it off (staff never are).
    notify_cases: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class ApiToken(Base):
    """A bearer token for the JSON API. Only a SHA-256 of the token is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists to tell tokens apart
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Setting(Base):
    """An owner's edit of a configuration key in the admin; it takes precedence over the file."""

    __tablename__ = "settings"

    section: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(100))


class LoginSession(Base):
    """One browser's log-in. Its cookie carries a random token, of which only a SHA-256 is kept;
    logging out, a new password or disabling the user revokes it, and the cookie opens nothing."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]  # brought up to date at most every few minutes
    revoked_at: Mapped[datetime | None]


class LoginFailure(Base):
    """Failed log-ins that slow down guessing: per account and address, per address, and per
    account from everywhere (see `scheduler.accounts.wait_for`)."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)  # "pair:", "ip:", "account:"
    failures: Mapped[int]
    # For "account:" keys, the moment from which the failures held are forgiven one by one.
    last_failed_at: Mapped[datetime]


class Customer(Base):
    """A person: a phone (E.164) or an email (normalised) belongs to one customer at most, so
    the gap between messages and consent hold per person (NULLs never clash)."""

    __tablename__ = "customers"
    __table_args__ = (
        Index("uq_customers_phone", "phone", unique=True),
        Index("uq_customers_email", "email", unique=True),
        Index(  # the list by latest purchase; those who never bought follow by id
            "ix_customers_last_sold",
            "last_sold_at",
            "id",
            sqlite_where=text("last_sold_at IS NOT NULL"),
            postgresql_where=text("last_sold_at IS NOT NULL"),
        ),
        Index("ix_customers_name", "name", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(16))  # E.164
    email: Mapped[str | None] = mapped_column(String(254))
    locale: Mapped[str | None] = mapped_column(String(8))  # None: the business default
    timezone: Mapped[str | None] = mapped_column(String(64))  # None: the business default
    sms_opt_out_at: Mapped[datetime | None]
    sms_opt_out_via: Mapped[str | None] = mapped_column(Text)  # in words, as shown to people
    # Read only where consent is decided: not loaded with every customer (dispatch loads
    # thousands a pass, and two more enum columns each cost it a sixth of its speed).
    sms_opt_out_source: Mapped[ConsentSource | None] = mapped_column(
        _enum(ConsentSource, "sms_opt_out_source"), deferred=True
    )
    email_opt_out_at: Mapped[datetime | None]
    email_opt_out_via: Mapped[str | None] = mapped_column(Text)
    email_opt_out_source: Mapped[ConsentSource | None] = mapped_column(
        _enum(ConsentSource, "email_opt_out_source"), deferred=True
    )
    # A delivery failure report for the email address: nothing more goes there until it changes.
    email_bounced_at: Mapped[datetime | None]
    email_bounce_reason: Mapped[str | None] = mapped_column(Text)
    # WhatsApp goes only to a customer who said yes to it (Meta's rule): when, and how.
    whatsapp_opt_in_at: Mapped[datetime | None]
    whatsapp_opt_in_via: Mapped[str | None] = mapped_column(Text)
    whatsapp_opt_out_at: Mapped[datetime | None]
    whatsapp_opt_out_via: Mapped[str | None] = mapped_column(Text)
    whatsapp_opt_out_source: Mapped[ConsentSource | None] = mapped_column(
        _enum(ConsentSource, "whatsapp_opt_out_source"), deferred=True
    )
    # The secret in the one-click unsubscribe link of every email; made on the first email.
    unsubscribe_token: Mapped[str | None] = mapped_column(String(43), unique=True)
    # The latest `sold_at` of their sales, kept by triggers on `sales` (migration 0025): never
    # written here, read only by the customer list. None for a customer who only wrote in.
    last_sold_at: Mapped[datetime | None] = mapped_column(deferred=True)
    created_at: Mapped[datetime]
    # Erased on request (`scheduler.erasure`): the row stays for the figures, its person goes.
    # Deferred, like last_sold_at: read where a customer is acted on one at a time.
    erased_at: Mapped[datetime | None] = mapped_column(deferred=True)

    sales: Mapped[list[Sale]] = relationship(back_populates="customer")

    @property
    def sms_opt_out(self) -> bool:
        return self.sms_opt_out_at is not None

    @property
    def email_opt_out(self) -> bool:
        return self.email_opt_out_at is not None

    @property
    def whatsapp_opt_out(self) -> bool:
        return self.whatsapp_opt_out_at is not None

    @property
    def whatsapp_opt_in(self) -> bool:
        """Whether WhatsApp may go to them: they said yes, and not no since."""
        return self.whatsapp_opt_in_at is not None and self.whatsapp_opt_out_at is None

    def address(self, channel: Channel) -> str | None:
        if channel is Channel.EMAIL:
            return self.email
        if channel is Channel.WHATSAPP:
            return whatsapp_address(self.phone) if self.phone else None
        return self.phone

    def opt_out_at(self, channel: Channel) -> datetime | None:
        """When the customer said no on `channel`; None while they have not."""
        at: datetime | None = getattr(self, f"{channel}_opt_out_at")
        return at

    def opt_out_via(self, channel: Channel) -> str | None:
        """How they said no on `channel`, in words."""
        via: str | None = getattr(self, f"{channel}_opt_out_via")
        return via

    def opt_out_source(self, channel: Channel) -> ConsentSource | None:
        source: ConsentSource | None = getattr(self, f"{channel}_opt_out_source")
        return source

    def record_opt_out(
        self, channel: Channel, at: datetime | None, via: str | None, source: ConsentSource | None
    ) -> None:
        """Set (or, with Nones, clear) the opt-out on `channel`; `scheduler.consent` decides."""
        setattr(self, f"{channel}_opt_out_at", at)
        setattr(self, f"{channel}_opt_out_via", via)
        setattr(self, f"{channel}_opt_out_source", source)


class Erasure(Base):
    """A customer erased on request: when, by whom, and their phone and email as keyed hashes
    (`scheduler.erasure.address_hash`) with the no's they had said. Nobody can read an
    address back from it; a new sale or a STOP from the same address finds it, so a no said
    before the erasure, or after it, still holds."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), unique=True)
    erased_at: Mapped[datetime]
    erased_by: Mapped[str] = mapped_column(String(100))
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    email_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    sms_opt_out: Mapped[bool] = mapped_column(default=False)
    whatsapp_opt_out: Mapped[bool] = mapped_column(default=False)
    email_opt_out: Mapped[bool] = mapped_column(default=False)


class InstallationSecret(Base):
    """Secrets this installation makes once and keeps with its data (the key of the erased
    addresses' hashes): a backup restored elsewhere keeps working."""

    __tablename__ = "installation_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(100))
    renewal_days: Mapped[int | None]  # products that renew; None: a one-off purchase
    cadence_id: Mapped[int | None] = mapped_column(ForeignKey("cadences.id", ondelete="SET NULL"))


class Sale(Base):
    __tablename__ = "sales"
    __table_args__ = (
        # A customer's sales by time, with their products: the latest by a moment (what a
        # reply or a case answering no follow-up is about) is one entry of it.
        Index("ix_sales_customer_sold", "customer_id", "sold_at", "id", "product_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), index=True)
    sold_at: Mapped[datetime] = mapped_column(index=True)  # the latest sales, on the front page
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[SaleStatus] = mapped_column(default=SaleStatus.ACTIVE)
    cancelled_at: Mapped[datetime | None]
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]

    customer: Mapped[Customer] = relationship(back_populates="sales")
    product: Mapped[Product | None] = relationship()
    follow_ups: Mapped[list[FollowUp]] = relationship(back_populates="sale")


class Cadence(Base):
    """A named sequence of steps after a sale; products choose one, or get the default."""

    __tablename__ = "cadences"
    __table_args__ = (
        # At most one default cadence.
        Index(
            "uq_cadences_one_default",
            "is_default",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    is_default: Mapped[bool] = mapped_column(default=False)
    product_category: Mapped[str | None] = mapped_column(String(100), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    steps: Mapped[list[CadenceStep]] = relationship(
        back_populates="cadence", order_by="CadenceStep.offset_minutes"
    )


class WorkerHeartbeat(Base):
    """What each worker process last said of itself: when it started, that it is alive (every
    few seconds), and its last dispatch pass. The admin and `/healthz?deep=1` read it to say
    when no worker is sending; one row per process, written only by that process."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    tick_seconds: Mapped[int]
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]  # alive: its replies job runs every few seconds
    pass_started_at: Mapped[datetime | None]  # a dispatch pass in progress since then
    last_pass_at: Mapped[datetime | None]  # the last dispatch pass that finished
    last_pass_seconds: Mapped[float | None]
    last_pass_sent: Mapped[int] = mapped_column(default=0)
    stopped_at: Mapped[datetime | None]  # stopped cleanly (SIGTERM), not killed
    # Since it started, for `/metrics`: passes, their seconds, and its sends' outcomes
    # ("sms/sent": n). Counted here, not in the web process, which may be on another machine.
    passes: Mapped[int] = mapped_column(default=0)
    pass_seconds_total: Mapped[float] = mapped_column(default=0.0)
    sends: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SendingPause(Base):
    """Follow-ups held back for a while, and why (a holiday, a recall): the whole business's
    (`scope` "business") or one cadence's (`cadence:<id>`). While it lasts the worker claims
    none of them; the plan is left as it was, so resuming sends what is due and still makes
    sense (the late-grace rule skips the rest, with why). At most one open pause per scope."""

    __tablename__ = "sending_pauses"
    __table_args__ = (
        Index(
            "uq_sending_pauses_open",
            "scope",
            unique=True,
            sqlite_where=text("resumed_at IS NULL"),
            postgresql_where=text("resumed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(32))
    cadence_id: Mapped[int | None] = mapped_column(ForeignKey("cadences.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    paused_at: Mapped[datetime]
    paused_by: Mapped[str] = mapped_column(String(100))
    resumed_at: Mapped[datetime | None]
    resumed_by: Mapped[str | None] = mapped_column(String(100))


class CadenceStep(Base):
    __tablename__ = "cadence_steps"
    __table_args__ = (UniqueConstraint("cadence_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cadence_id: Mapped[int] = mapped_column(ForeignKey("cadences.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))  # stable name, e.g. "day7-check-in"
    anchor: Mapped[Anchor] = mapped_column(default=Anchor.SALE)  # what the offset counts from
    offset_minutes: Mapped[int]
    channel: Mapped[Channel]
    template_name: Mapped[str] = mapped_column(String(100))
    condition: Mapped[str | None] = mapped_column(String(200))  # e.g. "score >= 9"
    active: Mapped[bool] = mapped_column(default=True)

    cadence: Mapped[Cadence] = relationship(back_populates="steps")


class MessageTemplate(Base):
    """A customer-facing template, per channel and locale; owners may edit the defaults."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("name", "channel", "locale"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    channel: Mapped[Channel]
    locale: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str | None] = mapped_column(Text)  # email only
    body: Mapped[str] = mapped_column(Text)  # SMS text or plain-text email
    html_body: Mapped[str | None] = mapped_column(Text)  # email only
    updated_at: Mapped[datetime]


class FollowUp(Base):
    __tablename__ = "follow_ups"
    __table_args__ = (
        # One follow-up per (sale, step); a case's own ("did we solve it?") one per (case, step).
        Index(
            "uq_follow_ups_sale_step",
            "sale_id",
            "step_id",
            unique=True,
            sqlite_where=text("case_id IS NULL"),
            postgresql_where=text("case_id IS NULL"),
        ),
        Index(
            "uq_follow_ups_case_step",
            "case_id",
            "step_id",
            unique=True,
            sqlite_where=text("case_id IS NOT NULL"),
            postgresql_where=text("case_id IS NOT NULL"),
        ),
        # What is due (the claim), and what goes out next of one product: read in due order,
        # then id (as the claim takes them: no sort), the product from the index.
        Index("ix_follow_ups_status_due_at", "status", "due_at", "id", "product_id"),
        # A period's figures, read from the index alone: by due time (status and channel, a
        # cadence's steps, a product's) and by sending time (the funnel, replies joined by
        # id, who was messaged).
        Index("ix_follow_ups_due_figures", "due_at", "status", "channel", "step_id", "product_id"),
        Index(
            "ix_follow_ups_sent_figures",
            "sent_at",
            "status",
            "step_id",
            "customer_id",
            "id",
            "product_id",
        ),
        # A customer's follow-ups, the latest sent first: their page, and whether anything
        # reached them since a failure or they answered any of their last ones (at risk).
        Index("ix_follow_ups_customer_sent", "customer_id", "sent_at", "status"),
        # The paused follow-ups, the soonest first: few among all that wait.
        Index(
            "ix_follow_ups_paused",
            "due_at",
            "id",
            sqlite_where=text("paused_at IS NOT NULL"),
            postgresql_where=text("paused_at IS NOT NULL"),
        ),
        # Why the follow-ups of a period were skipped, from the index alone.
        Index(
            "ix_follow_ups_skipped_because",
            "due_at",
            "status_reason",
            sqlite_where=text("status = 'skipped'"),
            postgresql_where=text("status = 'skipped'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Indexed on its own: the unique (sale, step) index is partial, and a lookup of a sale's
    # follow-ups that does not repeat its condition (a sale's page, a replan) cannot use it.
    sale_id: Mapped[int] = mapped_column(ForeignKey("sales.id", ondelete="CASCADE"), index=True)
    # The sale's product, kept by the database (migration 0032: filled when written null,
    # moved with the sale's); no foreign key of its own, the sale's holds.
    product_id: Mapped[int | None]
    step_id: Mapped[int] = mapped_column(ForeignKey("cadence_steps.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[Channel]
    due_at: Mapped[datetime]
    status: Mapped[FollowUpStatus] = mapped_column(default=FollowUpStatus.SCHEDULED)
    status_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(100))
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)  # e.g. {"score": 9}, for templates
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    # Kept by the database's triggers (migration 0024), never by the app: "in_time" when a
    # reply came within 7 days of sending, "late" when every reply came outside them.
    replied: Mapped[str | None] = mapped_column(String(8))
    # Kept by SQLite's triggers, and on PostgreSQL by the worker within seconds of what the
    # triggers note (migration 0043, `figures.objections`): "resolved" when one of the
    # objections answering it is in a resolved case, "objected" when none is.
    objected: Mapped[str | None] = mapped_column(String(8))
    # Held back by a person (who and why in the audit log): the worker claims it only once
    # resumed. Its status stays what it was: the plan is not lost.
    paused_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    sale: Mapped[Sale] = relationship(back_populates="follow_ups")
    step: Mapped[CadenceStep] = relationship()

    def move_to(self, status: FollowUpStatus, reason: str | None, now: datetime) -> None:
        """Change status along an allowed transition only; leaving `sending` ends the lease."""
        check_follow_up_transition(self.status, status)
        self.status, self.status_reason, self.updated_at = status, reason, now
        if status is not FollowUpStatus.SENDING:
            self.lease_owner = self.lease_expires_at = None


class FollowUpTally(Base):
    """How many follow-ups were due, and sent, on each UTC day, by step, channel, status,
    whether they were replied to, product and whether they were objected to: kept by the
    database's own triggers on `follow_ups` (migrations 0022, 0024, 0032 and 0043), whatever
    writes a follow-up (on SQLite, planning writes its own inserts' counted:
    `FollowUpTalliesWriter`). Each change adds rows of +n and -n;
    `scheduler.figures.tallies.compact` folds them into one row per key. The dashboard sums
    the whole days of a period here instead of counting a quarter's follow-ups one by one."""

    __tablename__ = "follow_up_tallies"
    __table_args__ = (
        # Read from the index alone for everyone's figures; one product's read the rows too.
        Index("ix_follow_up_tallies_due", "due_day", "status", "channel", "step_id", "n"),
        Index(
            "ix_follow_up_tallies_sent", "sent_day", "status", "step_id", "replied", "objected", "n"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    due_day: Mapped[date]
    sent_day: Mapped[date | None]
    step_id: Mapped[int]  # no foreign key: a step's tallies go when its follow-ups go
    channel: Mapped[str] = mapped_column(String(16))  # as follow_ups stores it, unchecked
    status: Mapped[str] = mapped_column(String(16))
    # FollowUp.replied, "none" for null: never null, so that a worker from before migration
    # 0024 cannot fold the tallies without it.
    replied: Mapped[str] = mapped_column(String(8))
    product_id: Mapped[int]  # FollowUp.product_id, 0 for none (not null: as `replied`)
    objected: Mapped[str] = mapped_column(String(8))  # FollowUp.objected, "none" for null
    n: Mapped[int]


class ObjectedRecheck(Base):
    """A follow-up whose `objected` PostgreSQL's triggers left to the worker (migration 0043):
    an objection or a case's status touched it, and writing it there would lock it inside
    transactions that lock cases too, in any order (they would deadlock). The worker writes
    it within seconds and deletes its notes (`figures.objections`); SQLite's triggers write
    it at once and note nothing."""

    __tablename__ = "objected_rechecks"

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign key: nothing to lock; the notes of a follow-up gone are deleted.
    follow_up_id: Mapped[int] = mapped_column(index=True)


class LastSend(Base):
    """Each customer's latest follow-up sent (sent or delivered), kept by the database's
    triggers on `follow_ups` (migration 0036), never by the app: the customers messaged in a
    period to this day are those whose latest send falls in it (`figures.summary`)."""

    __tablename__ = "last_sends"
    __table_args__ = (Index("ix_last_sends_sent_at", "sent_at", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    sent_at: Mapped[datetime]


class FollowUpTalliesWriter(Base):
    """A row here, only within the transaction of a writer inserting follow-ups whose tallies
    it writes itself, counted: SQLite's insert trigger then leaves them (migration 0034).
    Empty at every other moment; PostgreSQL's trigger never reads it."""

    __tablename__ = "follow_up_tallies_writer"

    id: Mapped[int] = mapped_column(primary_key=True)


class Message(Base):
    """Every message, both directions; the provider id makes webhook retries harmless.

    An outbound message is written down before the transport is called, so a worker that dies
    mid-send leaves a trace to look up instead of a silent gap. A follow-up's message is leased
    with its follow-up; a message queued on its own (a person's reply, an acknowledgement, a
    notice to staff) carries its own `due_at`, attempts and lease.
    """

    __tablename__ = "messages"
    __table_args__ = (
        # Queued messages by status and due time: the claim and the take-back read it (a
        # partial index on a status list is one SQLite's planner cannot match to bound values).
        Index(
            "ix_messages_queued",
            "status",
            "due_at",
            sqlite_where=text("due_at IS NOT NULL"),
            postgresql_where=text("due_at IS NOT NULL"),
        ),
        # Replies by time, with what a period's figures count of them (the index answers).
        Index(
            "ix_messages_inbound_time",
            "created_at",
            "follow_up_id",
            "label",
            "score",
            "case_id",
            "product_id",
            sqlite_where=text("direction = 'inbound'"),
            postgresql_where=text("direction = 'inbound'"),
        ),
        # A customer's replies by time: whether they answered anything lately (at risk).
        Index(
            "ix_messages_inbound_customer",
            "customer_id",
            "created_at",
            sqlite_where=text("direction = 'inbound'"),
            postgresql_where=text("direction = 'inbound'"),
        ),
        # Classified replies never read for themes, and by the words they were read with: the
        # worker's `themes` job finds those to read again without a pass over every message.
        Index(
            "ix_messages_themes_unread",
            "id",
            sqlite_where=text(
                "direction = 'inbound' AND label IS NOT NULL AND themes_read_with IS NULL"
            ),
            postgresql_where=text(
                "direction = 'inbound' AND label IS NOT NULL AND themes_read_with IS NULL"
            ),
        ),
        Index(
            "ix_messages_themes_read_with",
            "themes_read_with",
            "id",
            sqlite_where=text("direction = 'inbound' AND label IS NOT NULL"),
            postgresql_where=text("direction = 'inbound' AND label IS NOT NULL"),
        ),
        # What went out, the newest first (the outbox page), and of one status (the failed).
        Index(
            "ix_messages_outbound_time",
            "created_at",
            "id",
            sqlite_where=text("direction = 'outbound'"),
            postgresql_where=text("direction = 'outbound'"),
        ),
        Index(
            "ix_messages_outbound_status",
            "status",
            "created_at",
            "id",
            sqlite_where=text("direction = 'outbound'"),
            postgresql_where=text("direction = 'outbound'"),
        ),
        # The objections by time, with what the complaints and the funnel read of them: a
        # period's are one range of this index, not each one's row and its follow-up's.
        Index(
            "ix_messages_objections",
            "created_at",
            "id",
            "customer_id",
            "follow_up_id",
            "product_id",
            "case_id",
            "themes_read_with",
            "themes",
            sqlite_where=text("direction = 'inbound' AND label = 'objection'"),
            postgresql_where=text("direction = 'inbound' AND label = 'objection'"),
        ),
        # Replies by sender and time: WhatsApp's 24-hour window opens with the latest one.
        Index(
            "ix_messages_inbound_from",
            "from_address",
            "created_at",
            sqlite_where=text("direction = 'inbound'"),
            postgresql_where=text("direction = 'inbound'"),
        ),
        # A case's messages: those in no case (most: follow-ups sent) have no entry.
        Index(
            "ix_messages_case_id",
            "case_id",
            sqlite_where=text("case_id IS NOT NULL"),
            postgresql_where=text("case_id IS NOT NULL"),
        ),
        # A person's answers by time: what each one answered lately, in the inbox.
        Index(
            "ix_messages_sent_by",
            "sent_by_id",
            "created_at",
            sqlite_where=text("sent_by_id IS NOT NULL"),
            postgresql_where=text("sent_by_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    follow_up_id: Mapped[int | None] = mapped_column(ForeignKey("follow_ups.id"), index=True)
    # A reply's follow-up's product, kept by the database (migration 0038: set when the reply
    # is written or moved, moved with the follow-up's); none for any other message.
    product_id: Mapped[int | None]
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))  # its index: above
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # a person's reply
    direction: Mapped[Direction]
    channel: Mapped[Channel]
    from_address: Mapped[str] = mapped_column(String(254))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(24))  # the provider's delivery status
    error_code: Mapped[str | None] = mapped_column(String(16))
    error_message: Mapped[str | None] = mapped_column(Text)
    segments: Mapped[int | None]
    encoding: Mapped[str | None] = mapped_column(String(8))  # GSM-7 or UCS-2
    # WhatsApp outside the customer's 24-hour window: the approved Content template sent, with
    # its numbered variables (`body` is the same message as our template renders it).
    content_sid: Mapped[str | None] = mapped_column(String(34))
    content_variables: Mapped[dict[str, Any] | None]
    # A quick-reply button the customer pressed (WhatsApp's ButtonPayload), read before the text.
    button_payload: Mapped[str | None] = mapped_column(String(256))
    # How an inbound reply was read (listening.classify): label, the rating in it, a person?
    label: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[int | None]
    needs_human: Mapped[bool | None]
    # The themes of a reply's words (listening.themes: "delivery breakage", "" for none), and
    # the fingerprint of the words they were read with: stale once the owner's words change.
    themes: Mapped[str | None] = mapped_column(String(64))
    themes_read_with: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    status_updated_at: Mapped[datetime | None]
    # A message queued on its own: when it may go (a retry's backoff moves it), its hand-overs
    # so far, and which worker holds it until when. None of these for a follow-up's message.
    due_at: Mapped[datetime | None]
    # The database's default: an INSERT names it only when set (a message is written by
    # schemas of every age in the migration tests).
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]


def nothing_in_flight() -> ColumnElement[bool]:
    """A follow-up none of whose messages may have left (a worker died mid-send): one that may
    have is looked up before anything else changes it, else it would be recorded as never sent
    when the provider may hold it."""
    return ~(
        select(Message.id)
        .where(Message.follow_up_id == FollowUp.id, Message.status.in_(MAYBE_SENT))
        .exists()
    )


class OutboxEntry(Base):
    """A message the outbox transport kept instead of sending (the embedded default)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), index=True)  # e.g. "follow-up:12"
    channel: Mapped[Channel]
    to_address: Mapped[str] = mapped_column(String(254))
    from_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class MailboxCursor(Base):
    """How far an IMAP folder has been read: its UIDVALIDITY and the last UID stored. Written
    in the transaction that stores the mail, so a crash reads the same mail again (stored once
    by Message-ID) and never skips one."""

    __tablename__ = "mailbox_cursors"

    mailbox: Mapped[str] = mapped_column(String(400), primary_key=True)  # user@host/folder
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class ShopDelivery(Base):
    """A shop's signed webhook delivery and what came of it. The delivery id makes a retry
    harmless; a cancellation remembered here stops an order paid later from planning
    anything; the body of one that was refused is kept for a person to read."""

    __tablename__ = "shop_deliveries"
    __table_args__ = (
        UniqueConstraint("shop", "delivery_id"),
        Index("ix_shop_deliveries_order", "shop", "order_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop: Mapped[str] = mapped_column(String(16))  # "shopify" | "woocommerce"
    delivery_id: Mapped[str | None] = mapped_column(String(100))  # None: the shop sent none
    topic: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(index=True)
    outcome: Mapped[DeliveryOutcome]
    reason: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    sale_id: Mapped[int | None] = mapped_column(ForeignKey("sales.id", ondelete="SET NULL"))


class LexiconWord(Base):
    """An owner's own word for a label ("chancada" is a complaint here), read with the rules."""

    __tablename__ = "lexicon_words"
    __table_args__ = (UniqueConstraint("label", "word"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(16))
    word: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))


class Case(Base):
    """A reply that needs a person: an objection, a complaint, a question, a low score."""

    __tablename__ = "cases"
    __table_args__ = (
        Index(
            "uq_cases_one_open_per_customer",
            "customer_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index(  # the inbox's order: a search walks it and stops at a page
            "ix_cases_open_deadline",
            "first_response_due_at",
            "id",
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index(  # one product's open cases, in the inbox's order
            "ix_cases_open_product",
            "product_id",
            "first_response_due_at",
            "id",
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index(  # the answered cases by the hours they were counted in: those to count again
            "ix_cases_minutes_counted_with",
            "minutes_counted_with",
            "id",
            sqlite_where=text("first_responded_at IS NOT NULL"),
            postgresql_where=text("first_responded_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    status: Mapped[CaseStatus] = mapped_column(default=CaseStatus.OPEN)
    reason: Mapped[str | None] = mapped_column(String(32))  # the label that opened it
    opened_at: Mapped[datetime] = mapped_column(index=True)
    first_response_due_at: Mapped[datetime]
    first_responded_at: Mapped[datetime | None]
    # The opening-hours minutes from opening to the first answer, as the worker counted them
    # (`figures.first_answers`), and the fingerprint of the hours it counted them in.
    first_answer_minutes: Mapped[int | None]
    minutes_counted_with: Mapped[str | None] = mapped_column(String(16))
    resolved_at: Mapped[datetime | None] = mapped_column(index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    escalation_level: Mapped[int] = mapped_column(default=0)
    outcome: Mapped[str | None] = mapped_column(Text)
    reopened_count: Mapped[int] = mapped_column(default=0)
    # The product of the sale it is about (`casework.context.about`), kept by the database
    # (migration 0042: whenever a case, a reply in it, a follow-up or a sale is written that
    # changes it); no foreign key of its own, the sale's holds.
    product_id: Mapped[int | None]

    notes: Mapped[list[CaseNote]] = relationship(order_by="CaseNote.created_at")
    remedies: Mapped[list[Remedy]] = relationship(order_by="Remedy.created_at")


class CaseNote(Base):
    """An internal note on a case; never shown to the customer."""

    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class SavedAnswer(Base):
    """An answer staff send often, in one language, kept by owners and staff alike: a
    sandboxed template (`customer.first_name`, `product.name`, `deadline`...) inserted into the
    reply box and edited there before it goes."""

    __tablename__ = "saved_answers"
    __table_args__ = (UniqueConstraint("locale", "title"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(8))
    body: Mapped[str] = mapped_column(Text)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime]


class Remedy(Base):
    """What was given to put things right (a discount, a replacement), and who allowed it."""

    __tablename__ = "remedies"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    value: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[RemedyStatus] = mapped_column(
        default=RemedyStatus.GRANTED, server_default=RemedyStatus.GRANTED.value
    )
    created_at: Mapped[datetime] = mapped_column(index=True)
    decided_at: Mapped[datetime | None]  # when the owner approved or declined a request


class AuditEntry(Base):
    """Who changed what and when: every status transition and every admin change."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(100))  # "user:3", "worker:host-123", "cli"
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ColumnMapping(Base):
    """What each column of a sales file holds, as the owner chose once for files with this
    header (`sending.columns.signature`): the next file like it imports without asking."""

    __tablename__ = "column_mappings"

    signature: Mapped[str] = mapped_column(String(64), primary_key=True)
    choices: Mapped[dict[str, str]] = mapped_column(JSON)  # column name -> field, "" or "-"
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(100))
