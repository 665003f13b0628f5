"""What the admin's forms share."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from flask_wtf import FlaskForm
from wtforms import SelectChoice, StringField

from scheduler.lifecycle import Channel
from scheduler.models import Customer
from web.domain_texts import NAMES


def options(pairs: Iterable[tuple[str, str]]) -> list[SelectChoice]:
    """Choices for a select or radio field, from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


def named_options(values: Iterable[StrEnum]) -> list[SelectChoice]:
    """Choices for values of the domain, each labelled with its name in the reader's language."""
    return [SelectChoice(value.value, NAMES[type(value).__name__][value]) for value in values]


def channels_of(customer: Customer, *, whatsapp: bool) -> list[SelectChoice]:
    """The channels the customer has an address for (WhatsApp only where the shop has it on):
    a form offers no address they lack."""
    return named_options(
        channel
        for channel in Channel
        if customer.address(channel) and (whatsapp or channel is not Channel.WHATSAPP)
    )


class OpenCaseForm(FlaskForm):  # type: ignore[misc]
    """A case for a customer at risk, opened with one click: `why` is said for them."""

    why = StringField("why")
