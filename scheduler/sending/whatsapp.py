"""WhatsApp's rules for what a business may send, as plain functions: the customer's 24-hour
window, the Content template that must go outside it, and which channel a step takes.

Meta lets a business write free text only within 24 hours of the customer's last message;
outside that window only an approved Content template goes, its placeholders numbered
`{{1}}`, `{{2}}`... The owner's Jinja template stays the one source of the text: its printed
expressions, numbered in order of first appearance, are the Content template's variables, so
the admin shows the owner exactly what to submit to Twilio. The window is read from the
messages table: the latest WhatsApp message from the customer's address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.config import WhatsappConfig
from scheduler.lifecycle import Channel, Direction
from scheduler.models import Customer, Message
from scheduler.sending.sandbox import RenderError, render_part

if TYPE_CHECKING:  # Jinja is loaded by the first template cut into its parts
    from jinja2 import Environment

REFUSED_OUTSIDE_WINDOW = "63016"  # Twilio: free text outside the customer's 24-hour window
WINDOW = timedelta(hours=24)
# Free text is sent only this long before the window closes: a message queued at 23:59 would
# reach Twilio after it, and be refused (63016).
WINDOW_MARGIN = timedelta(minutes=10)
# What Meta refuses in a variable: line breaks, tabs, more than four spaces in a row; and an
# empty one.
_BREAKS = re.compile(r"[\t\r\n]+|\s{5,}")


@cache
def _lexer() -> Environment:
    """Only to cut a template into its parts: nothing is rendered with it."""
    from jinja2 import Environment

    return Environment()


def last_whatsapp_from(session: Session, customers: Iterable[Customer]) -> dict[str, datetime]:
    """Each customer's latest WhatsApp message to us, by their address: the window's start."""
    addresses = [a for c in customers if (a := c.address(Channel.WHATSAPP)) is not None]
    if not addresses:
        return {}
    rows = session.execute(
        select(Message.from_address, func.max(Message.created_at))
        .where(
            Message.direction == Direction.INBOUND,
            Message.channel == Channel.WHATSAPP,
            Message.from_address.in_(addresses),
        )
        .group_by(Message.from_address)
    )
    return {address: at for address, at in rows}


def sms_allowed(customer: Customer) -> bool:
    return customer.phone is not None and customer.sms_opt_out_at is None


def by_sms_instead(message: Message, customer: Customer) -> bool:
    """Free text WhatsApp refused outside the window (63016, when the send was made or in a
    report after it) is never sent blindly again: the follow-up goes by SMS where SMS is
    allowed, else it fails with the reason."""
    return (
        message.channel is Channel.WHATSAPP
        and message.error_code == REFUSED_OUTSIDE_WINDOW
        and sms_allowed(customer)
    )


def window_closes(last_inbound: datetime | None) -> datetime | None:
    """When the customer's 24-hour window closes (None: they never wrote on WhatsApp)."""
    return None if last_inbound is None else last_inbound + WINDOW


def answers_until(last_inbound: datetime | None) -> datetime | None:
    """Until when free text may go: the window's close, less the margin."""
    closes = window_closes(last_inbound)
    return None if closes is None else closes - WINDOW_MARGIN


def in_window(last_inbound: datetime | None, now: datetime) -> bool:
    """Whether free text may go now, with a margin before the window closes."""
    until = answers_until(last_inbound)
    return until is not None and now < until


@dataclass(frozen=True)
class ContentForm:
    """A Jinja template as a Content template: its text with `{{n}}` placeholders, and the
    expression behind each number."""

    text: str
    expressions: tuple[str, ...]  # expressions[0] is {{1}}
    logic: bool  # it has {% ... %} blocks, which a Content template cannot have


def content_form(source: str) -> ContentForm:
    """Number the printed expressions of `source` in order of first appearance; the same
    expression printed twice keeps its number. A syntax error is a RenderError."""
    from jinja2 import TemplateSyntaxError

    expressions: list[str] = []
    parts: list[str] = []
    inside: list[str] | None = None
    logic = False
    try:
        _lexer().parse(source)  # the lexer alone lets an unclosed tag through
        for _line, kind, value in _lexer().lex(source):
            if kind == "variable_begin":
                inside = []
            elif kind == "variable_end" and inside is not None:
                expression = "".join(inside).strip()
                if expression not in expressions:
                    expressions.append(expression)
                parts.append(f"{{{{{expressions.index(expression) + 1}}}}}")
                inside = None
            elif inside is not None:
                inside.append(value)
            elif kind.startswith("comment"):
                continue  # a note to the owner's self: no customer reads it
            else:
                logic = logic or kind == "block_begin"
                parts.append(value)
    except TemplateSyntaxError as error:
        raise RenderError(f"line {error.lineno}: {error.message}") from None
    return ContentForm("".join(parts).strip(), tuple(expressions), logic)


def content_variables(
    form: ContentForm, context: Mapping[str, Any], *, label: str
) -> dict[str, str]:
    """Each numbered expression rendered with `context`, in the shape Meta accepts."""
    variables = {}
    for number, expression in enumerate(form.expressions, start=1):
        value = render_part(
            f"{{{{ {expression} }}}}", context, escaped=False, label=f"{label} {{{{{number}}}}}"
        )
        variables[str(number)] = _BREAKS.sub(" ", value).strip() or "-"
    return variables


def content_key(template: str, locale: str) -> str:
    """How `[whatsapp.content_sids]` names the Content template of a template in a language."""
    return f"{template}/{locale}"


@dataclass(frozen=True)
class Reach:
    """How a step reaches the customer: on which channel, as which Content template (None:
    free text), and, when it is not the step's own channel, why."""

    channel: Channel | None  # None: by no channel at all (`note` says why)
    content_sid: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Facts:
    """What the choice depends on, gathered by dispatch."""

    whatsapp_opt_in: bool  # said yes to WhatsApp and not no since
    sms_allowed: bool  # has a phone and has not opted out of SMS
    last_inbound: datetime | None  # their latest WhatsApp message to us
    refused: bool = False  # WhatsApp already refused this follow-up (63016)


def reach(
    channel: Channel,
    customer: Facts,
    *,
    whatsapp: WhatsappConfig,
    template: str,
    locale: str,
    now: datetime,
) -> Reach:
    """The channel a step planned on `channel` goes by. WhatsApp is used for a WhatsApp step,
    and for an SMS step when the owner prefers it, only to a customer who opted in; outside
    the window only with an approved Content template in the customer's language. What cannot
    go by WhatsApp goes by SMS where SMS is allowed, saying why."""
    if channel is Channel.EMAIL:
        return Reach(channel)
    usable = whatsapp.on and customer.whatsapp_opt_in
    if channel is Channel.SMS and not (usable and whatsapp.prefer_over_sms):
        return Reach(channel)
    why_not = _why_not(customer, whatsapp)
    if why_not is None:
        if in_window(customer.last_inbound, now):
            return Reach(Channel.WHATSAPP)
        sid = whatsapp.content_sids.get(content_key(template, locale))
        if sid is not None:
            return Reach(Channel.WHATSAPP, sid)
        why_not = (
            "WhatsApp's 24-hour window is closed and there is no approved Content template "
            f"for {content_key(template, locale)}"
        )
    if channel is Channel.SMS or customer.sms_allowed:
        return Reach(Channel.SMS, note=f"by SMS: {why_not}")
    return Reach(None, note=f"not by WhatsApp ({why_not}), and SMS is not allowed")


def _why_not(customer: Facts, whatsapp: WhatsappConfig) -> str | None:
    """Why WhatsApp cannot take this message at all, if it cannot."""
    if not whatsapp.on:
        return "WhatsApp is off"
    if not customer.whatsapp_opt_in:
        return "the customer has not opted in to WhatsApp"
    if customer.refused:
        return "WhatsApp refused it (63016: outside the 24-hour window)"
    return None
