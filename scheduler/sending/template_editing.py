"""Owners editing the customer-facing templates: a preview on sample data before anything is
saved, the SMS size it costs, and a way back to the shipped default.

A template is saved only if it renders on the sample data in the same sandbox the worker uses:
a misspelt variable or a broken tag is shown at its line in the editor, not discovered when a
follow-up fails at 10 a.m.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.casework.cases import deadline_words
from scheduler.config import Config
from scheduler.defaults import default_templates
from scheduler.lifecycle import Anchor, Channel
from scheduler.listening.inbound import ACK_TEMPLATE, KEYWORD_TEMPLATES, USE_START_TEMPLATE
from scheduler.models import CadenceStep, Customer, MessageTemplate, Product, Sale
from scheduler.sending.composing import channel_name, email_layout, template_context
from scheduler.sending.sandbox import (
    WHATSAPP_MAX_CHARS,
    Rendered,
    RenderError,
    TemplateSource,
    render,
    render_part,
)
from scheduler.sending.segments import SmsSize, sms_size
from scheduler.sending.whatsapp import ContentForm, content_form, content_key

VARIABLES = (
    ("customer.name", "customer.first_name"),
    ("product.name", "product.sku"),
    ("sale.external_id", "sale.sold_on", "sale.amount", "sale.currency"),
    ("business.name", "business.review_url"),
    ("reply.instructions",),
    ("renewal_date", "score", "deadline", "locale"),
)
_ERROR_LINE = re.compile(r"\bline (\d+)\b")
KEYWORD_ANSWERS = frozenset({*KEYWORD_TEMPLATES.values(), USE_START_TEMPLATE})
USAGE_WORDS = {
    Anchor.SALE: "a step after the sale",
    Anchor.SCORE: "a step after a score",
    Anchor.RENEWAL: "a step before a renewal",
    Anchor.CASE: "a step after a case",
}
SAMPLE_NAMES = {"es": "Rosa Quispe", "en": "Mary Johnson"}


@dataclass(frozen=True)
class WhatsappPreview:
    """An SMS template as WhatsApp sends it: the Content template to have approved (numbered
    variables), and whether it fits WhatsApp's 1 024 characters."""

    form: ContentForm
    length: int  # as rendered for WhatsApp, with the sample data
    fits: bool
    content_sid: str | None  # the approved one mapped to this template and language, if any


@dataclass(frozen=True)
class Preview:
    rendered: Rendered | None
    error: str | None = None
    line: int | None = None  # where the error is, when the template says
    size: SmsSize | None = None  # SMS only
    whatsapp: WhatsappPreview | None = None  # SMS only: what WhatsApp sends of it


def sample_context(
    config: Config,
    locale: str,
    channel: Channel,
    now: datetime,
    *,
    renews: bool = True,
    facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a template sees for a made-up sale: by default every variable any step may be
    given (the preview); `renews` and `facts` narrow it to one kind of step."""
    customer = Customer(name=SAMPLE_NAMES.get(locale, SAMPLE_NAMES["en"]), locale=locale)
    product = Product(
        sku="LAV-9", name="Lavadora EcoWash 9 kg", renewal_days=365 if renews else None
    )
    sale = Sale(
        external_id="B001-1234",
        sold_at=now - timedelta(days=7),
        customer=customer,
        product=product,
        amount=Decimal("1899.00"),
        currency="PEN",
    )
    if facts is None:  # the answers to a customer who wrote get these too
        deadline, name = _deadline(config, locale, now), channel_name(Channel.WHATSAPP, locale)
        facts = {"score": 9, "deadline": deadline, "channel": name}
    return template_context(sale=sale, config=config, locale=locale, channel=channel, facts=facts)


def _deadline(config: Config, locale: str, now: datetime) -> str:
    tz = ZoneInfo(config.business.timezone)
    return deadline_words(now + timedelta(hours=4), now, tz, locale)


def usages(
    session: Session, source: TemplateSource, config: Config, now: datetime
) -> list[tuple[str, dict[str, Any]]]:
    """Each way the template is really rendered, with only the variables it gets then: after
    a sale (no score, maybe no renewal date), after a score, before a renewal, after a case;
    the acknowledgement of a case and the keyword answers get fewer still."""
    locale, channel = source.locale, source.channel
    customer = {
        "name": SAMPLE_NAMES.get(locale, SAMPLE_NAMES["en"]),
        "first_name": SAMPLE_NAMES.get(locale, SAMPLE_NAMES["en"]).split()[0],
    }
    business = {"name": config.business.name}
    if source.name == ACK_TEMPLATE:
        deadline = _deadline(config, locale, now)
        return [
            (
                "the case acknowledgement",
                {"business": business, "customer": customer, "deadline": deadline},
            )
        ]
    if source.name in KEYWORD_ANSWERS:
        channel_words = channel_name(Channel.WHATSAPP, locale)
        return [("a keyword answer", {"business": business, "channel": channel_words})]
    anchors = set(
        session.scalars(
            select(CadenceStep.anchor).where(
                CadenceStep.template_name == source.name,
                CadenceStep.channel == channel,
                CadenceStep.active,
            )
        )
    )
    found = []  # a template no step uses yet is judged by the preview alone
    for anchor in sorted(anchors):
        renews = anchor is Anchor.RENEWAL
        facts = {"score": 9} if anchor is Anchor.SCORE else {}
        context = sample_context(config, locale, channel, now, renews=renews, facts=facts)
        found.append((USAGE_WORDS[anchor], context))
    return found


def check_usages(
    session: Session, source: TemplateSource, config: Config, now: datetime
) -> str | None:
    """The first way the template would fail when really sent, said as such; None if none."""
    for usage, context in usages(session, source, config, now):
        try:
            render(source, context, email_layout())
        except RenderError as error:
            return f"when sent as {usage}: {error}"
    return None


def preview(source: TemplateSource, config: Config, now: datetime | None = None) -> Preview:
    now = now or datetime.now(UTC)
    context = sample_context(config, source.locale, source.channel, now)
    try:
        rendered = render(source, context, email_layout())
    except RenderError as error:
        return Preview(None, str(error), _line(str(error)))
    if source.channel is not Channel.SMS:
        return Preview(rendered)
    return Preview(
        rendered, size=sms_size(rendered.text), whatsapp=whatsapp_preview(source, config, now)
    )


def whatsapp_preview(source: TemplateSource, config: Config, now: datetime) -> WhatsappPreview:
    """What WhatsApp would send of an SMS template that renders (so its syntax is sound)."""
    context = sample_context(config, source.locale, Channel.WHATSAPP, now)
    text = render_part(source.body, context, escaped=False, label=source.label("body"))
    return WhatsappPreview(
        form=content_form(source.body),
        length=len(text),
        fits=len(text) <= WHATSAPP_MAX_CHARS,
        content_sid=config.whatsapp.content_sids.get(content_key(source.name, source.locale)),
    )


def preview_as_sent(
    session: Session, source: TemplateSource, config: Config, now: datetime
) -> Preview:
    """The preview, carrying the first way the draft would fail when really sent."""
    result = preview(source, config, now)
    problem = result.error or check_usages(session, source, config, now)
    if problem is None or result.error:
        return result
    return Preview(result.rendered, problem, _line(problem), result.size, result.whatsapp)


def _line(error: str) -> int | None:
    found = _ERROR_LINE.search(error)
    return int(found.group(1)) if found else None


def save_template(
    session: Session,
    row: MessageTemplate,
    *,
    subject: str | None,
    body: str,
    config: Config,
    now: datetime,
    actor: str,
) -> Preview:
    """Store the edit if it renders the way it is sent; the preview says so, or why not (with
    its line), and nothing is stored then."""
    body = body.replace("\r\n", "\n").strip("\n")
    subject = (subject or "").strip() or None if row.channel is Channel.EMAIL else None
    draft = TemplateSource(row.name, row.channel, row.locale, body, subject, row.html_body)
    result = preview_as_sent(session, draft, config, now)
    if result.error is None and (row.subject, row.body) != (subject, body):
        audit.record(
            session,
            at=now,
            actor=actor,
            action="template.edit",
            entity_type="template",
            entity_id=row.id,
            name=row.name,
            channel=row.channel.value,
            locale=row.locale,
            before=row.body,
            after=body,
        )
        row.subject, row.body, row.updated_at = subject, body, now
    return result


def shipped(row: MessageTemplate) -> tuple[str | None, str] | None:
    """The default subject and body this template came with, if Postventa ships one."""
    for default in default_templates():
        if (default.name, default.channel, default.locale) == (row.name, row.channel, row.locale):
            return default.subject, default.body
    return None


def reset_template(session: Session, row: MessageTemplate, *, now: datetime, actor: str) -> bool:
    """Back to the shipped text; False when there is none (an owner's own template)."""
    original = shipped(row)
    if original is None:
        return False
    if (row.subject, row.body) != original:
        row.subject, row.body = original
        row.html_body, row.updated_at = None, now
        audit.record(
            session,
            at=now,
            actor=actor,
            action="template.reset",
            entity_type="template",
            entity_id=row.id,
            name=row.name,
            channel=row.channel.value,
            locale=row.locale,
        )
    return True
