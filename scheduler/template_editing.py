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

from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.cases import deadline_words
from scheduler.composing import email_layout, template_context
from scheduler.config import Config
from scheduler.defaults import default_templates
from scheduler.lifecycle import Channel
from scheduler.models import Customer, MessageTemplate, Product, Sale
from scheduler.rendering import Rendered, RenderError, TemplateSource, render
from scheduler.segments import SmsSize, sms_size

VARIABLES = (
    ("customer.name", "customer.first_name"),
    ("product.name", "product.sku"),
    ("sale.external_id", "sale.sold_on", "sale.amount", "sale.currency"),
    ("business.name", "business.review_url"),
    ("reply.instructions",),
    ("renewal_date", "score", "deadline", "locale"),
)
_LINE = re.compile(r"\bline (\d+)\b")
SAMPLE_NAMES = {"es": "Rosa Quispe", "en": "Mary Johnson"}


@dataclass(frozen=True)
class Preview:
    rendered: Rendered | None
    error: str | None = None
    line: int | None = None  # where the error is, when the template says
    size: SmsSize | None = None  # SMS only


def sample_context(config: Config, locale: str, channel: Channel, now: datetime) -> dict[str, Any]:
    """What a template sees for a made-up sale: every variable any step may be given."""
    customer = Customer(name=SAMPLE_NAMES.get(locale, SAMPLE_NAMES["en"]), locale=locale)
    product = Product(sku="LAV-9", name="Lavadora EcoWash 9 kg", renewal_days=365)
    sale = Sale(external_id="B001-1234", sold_at=now - timedelta(days=7), customer=customer,
                product=product, amount=Decimal("1899.00"), currency="PEN")  # fmt: skip
    tz = ZoneInfo(config.business.timezone)
    deadline = deadline_words(now + timedelta(hours=4), now, tz, locale)
    facts = {"score": 9, "deadline": deadline}
    return template_context(sale=sale, config=config, locale=locale, channel=channel, facts=facts)


def preview(source: TemplateSource, config: Config, now: datetime | None = None) -> Preview:
    now = now or datetime.now(UTC)
    context = sample_context(config, source.locale, source.channel, now)
    try:
        rendered = render(source, context, email_layout())
    except RenderError as error:
        found = _LINE.search(str(error))
        return Preview(None, str(error), int(found.group(1)) if found else None)
    size = sms_size(rendered.text) if source.channel is Channel.SMS else None
    return Preview(rendered, size=size)


def save_template(
    session: Session, row: MessageTemplate, *, subject: str | None, body: str, config: Config,
    now: datetime, actor: str,
) -> Preview:  # fmt: skip
    """Store the edit if it renders; raises RenderError (with its line) when it does not."""
    body = body.replace("\r\n", "\n").strip("\n")
    subject = (subject or "").strip() or None if row.channel is Channel.EMAIL else None
    draft = TemplateSource(row.name, row.channel, row.locale, body, subject, row.html_body)
    result = preview(draft, config, now)
    if result.error:
        raise RenderError(result.error)
    if (row.subject, row.body) != (subject, body):
        audit.record(
            session, at=now, actor=actor, action="template.edit", entity_type="template",
            entity_id=row.id, name=row.name, channel=row.channel.value, locale=row.locale,
            before=row.body, after=body,
        )  # fmt: skip
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
            session, at=now, actor=actor, action="template.reset", entity_type="template",
            entity_id=row.id, name=row.name, channel=row.channel.value, locale=row.locale,
        )  # fmt: skip
    return True
