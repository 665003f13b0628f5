"""From a follow-up row to the message its customer will read: template, variables, rendering.

The variables are documented in `message_templates/README.md`; this is the only place that
builds them, so the admin's preview and the real send cannot disagree.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.config import LOCALES, Config
from scheduler.defaults import templates_root
from scheduler.lifecycle import Channel
from scheduler.models import CadenceStep, Customer, MessageTemplate, Product
from scheduler.sending.sandbox import (
    Rendered,
    RenderError,
    TemplateSource,
    load_sandboxes,
    render,
)
from scheduler.sending.segments import SmsSize, sms_size
from scheduler.sending.whatsapp import content_form, content_variables

NO_PRODUCT = {"es": "tu compra", "en": "your purchase"}
REPLY_INSTRUCTIONS = {
    (Channel.SMS, "es"): "Responde a este SMS: lo lee una persona.",
    (Channel.SMS, "en"): "Reply to this text: a person reads it.",
    (Channel.EMAIL, "es"): "Responde a este correo: lo lee una persona.",
    (Channel.EMAIL, "en"): "Reply to this email: a person reads it.",
    (Channel.WHATSAPP, "es"): "Responde a este mensaje: lo lee una persona.",
    (Channel.WHATSAPP, "en"): "Reply to this message: a person reads it.",
}


CHANNEL_NAMES = {
    "es": {Channel.SMS: "SMS", Channel.WHATSAPP: "WhatsApp", Channel.EMAIL: "correo"},
    "en": {Channel.SMS: "SMS", Channel.WHATSAPP: "WhatsApp", Channel.EMAIL: "email"},
}


def channel_name(channel: Channel, locale: str) -> str:
    """What a customer calls the channel, for a keyword's answer ("ya no te escribiremos por
    WhatsApp"): consent is per channel, and the answer must say which."""
    return CHANNEL_NAMES.get(locale, CHANNEL_NAMES["en"])[channel]


@cache
def email_layout() -> str:
    return (templates_root() / "email" / "layout.html").read_text(encoding="utf-8")


class SaleRead(Protocol):
    """What a message reads of a sale: a `Sale`, or the values dispatch reads of one."""

    @property
    def customer(self) -> Customer: ...
    @property
    def product(self) -> Product | None: ...
    @property
    def sold_at(self) -> datetime: ...
    @property
    def external_id(self) -> str: ...
    @property
    def amount(self) -> Decimal | None: ...
    @property
    def currency(self) -> str | None: ...


class FollowUpRead(Protocol):
    """What composing reads of a follow-up: a `FollowUp`, or the values dispatch reads of one
    (a batch's follow-ups and sales as objects cost more to build than to render)."""

    @property
    def sale(self) -> SaleRead: ...
    @property
    def step(self) -> CadenceStep: ...
    @property
    def channel(self) -> Channel: ...
    @property
    def facts(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Composed:
    rendered: Rendered
    size: SmsSize | None  # SMS only
    channel: Channel
    content_sid: str | None = None  # WhatsApp outside the window: the Content template
    content_variables: dict[str, str] | None = None
    note: str | None = None  # why not on the step's own channel, or not by WhatsApp


def locale_of(customer: Customer, config: Config) -> str:
    return customer.locale or config.business.locale


def row_channel(channel: Channel) -> Channel:
    """The channel whose templates `channel` uses: WhatsApp's are SMS's."""
    return Channel.SMS if channel is Channel.WHATSAPP else channel


class TemplateBook:
    """The templates, read once per batch: a pass renders hundreds of messages from a dozen."""

    def __init__(self, rows: Iterable[MessageTemplate]) -> None:
        self._rows = {(row.name, row.channel, row.locale): row for row in rows}

    @classmethod
    def load(cls, session: Session, *names: str) -> TemplateBook:
        """Every template, or only those called `names` (a webhook's one answer)."""
        query = select(MessageTemplate)
        if names:
            query = query.where(MessageTemplate.name.in_(names))
        return cls(session.scalars(query))

    def find(
        self, name: str, channel: Channel, locale: str, fallback: str
    ) -> MessageTemplate | None:
        """The template in the customer's language, else in the business's. WhatsApp says
        what SMS says: it uses the SMS template."""
        channel = row_channel(channel)
        return self._rows.get((name, channel, locale)) or self._rows.get((name, channel, fallback))


def customer_vars(customer: Customer) -> dict[str, str]:
    return {"name": customer.name, "first_name": customer.name.split()[0]}


@lru_cache(maxsize=4096)
def long_date(day: date, locale: str) -> str:
    """A date as the locale writes it in full ("23 de noviembre de 2026"): Babel takes longer
    than the rest of a message's variables, and a pass's sales share a few days."""
    from babel.dates import format_date  # here: a dispatch pass with nothing due needs no Babel

    return format_date(day, "long", locale=locale)


def load_composer() -> None:
    """Load now what composing needs, not at a worker's first pass: Babel's dates with each
    locale's data, and the sandboxes (50 ms and 10 000 objects, which the worker then freezes
    with the rest of what it has loaded: `collector.freeze_loaded`)."""
    for locale in LOCALES:
        long_date(date(2000, 1, 1), locale)
    load_sandboxes()


def template_context(
    *, sale: SaleRead, config: Config, locale: str, channel: Channel, facts: dict[str, Any]
) -> dict[str, Any]:
    """The variables a template sees; plain values, so the sandbox exposes no ORM object."""
    customer, product = sale.customer, sale.product
    sold_on = sale.sold_at.astimezone(config.business.tz).date()  # the date on the receipt
    renewal = (
        long_date(sold_on + timedelta(days=product.renewal_days), locale)
        if product is not None and product.renewal_days
        else None
    )
    return {
        "locale": locale,
        "customer": customer_vars(customer),
        "product": {
            "name": product.name if product else NO_PRODUCT.get(locale, NO_PRODUCT["en"]),
            "sku": product.sku if product else "",
        },
        "sale": {
            "external_id": sale.external_id,
            "sold_on": long_date(sold_on, locale),
            "amount": f"{sale.amount:.2f}" if sale.amount is not None else "",
            "currency": sale.currency or "",
        },
        "business": {"name": config.business.name, "review_url": config.business.review_url},
        "reply": {
            "instructions": REPLY_INSTRUCTIONS.get((channel, locale))
            or REPLY_INSTRUCTIONS[(channel, "en")]
        },
        **({"renewal_date": renewal} if renewal else {}),
        **facts,
    }


def compose(
    follow_up: FollowUpRead,
    config: Config,
    book: TemplateBook,
    channel: Channel | None = None,
    content_sid: str | None = None,
) -> Composed:
    """Render the follow-up's template for its customer, on `channel` (default: the
    follow-up's), with the Content template's variables when `content_sid` is given;
    RenderError says what is wrong."""
    sale = follow_up.sale
    channel = channel or follow_up.channel
    locale = locale_of(sale.customer, config)
    step = follow_up.step
    row = book.find(step.template_name, channel, locale, config.business.locale)
    if row is None:
        fallback = config.business.locale
        tried = repr(locale) if locale == fallback else f"{locale!r} or {fallback!r}"
        raise RenderError(f"no {row_channel(channel)} template {step.template_name!r} in {tried}")
    source = TemplateSource(row.name, channel, row.locale, row.body, row.subject, row.html_body)
    context = template_context(
        sale=sale, config=config, locale=row.locale, channel=channel, facts=follow_up.facts
    )
    rendered = render(source, context, email_layout())
    size = sms_size(rendered.text) if channel is Channel.SMS else None
    variables = None
    if content_sid is not None:
        form = content_form(row.body)
        variables = content_variables(form, context, label=source.label("body"))
    return Composed(rendered, size, channel, content_sid, variables)


def unsubscribe_url(customer: Customer, config: Config) -> str:
    """The customer's one-click unsubscribe link (RFC 8058), making its token on first use."""
    if customer.unsubscribe_token is None:
        customer.unsubscribe_token = secrets.token_urlsafe(32)
    return f"{config.business.base_url}/unsubscribe/{customer.unsubscribe_token}"
