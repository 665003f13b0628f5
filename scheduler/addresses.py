"""Normalising how customers are reached: phones to E.164, emails to one spelling."""

from __future__ import annotations

import phonenumbers


def normalise_phone(raw: str, region: str) -> str:
    """E.164 for `raw`, reading numbers without a leading + as local to `region` (ISO 3166).

    Inbound SMS are matched to customers by this exact string, so every number stored goes
    through here.
    """
    text = raw.strip()
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise ValueError(
            f"{raw!r} is not a valid phone number (numbers without + are read as {region})"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


WHATSAPP_PREFIX = "whatsapp:"


def whatsapp_address(phone: str) -> str:
    """Twilio's address of a phone on WhatsApp: `whatsapp:+E164`."""
    return f"{WHATSAPP_PREFIX}{phone}"


def phone_of(address: str) -> str:
    """The phone number in a Twilio address: `whatsapp:+E164` or a plain number."""
    return address.strip().removeprefix(WHATSAPP_PREFIX)


def normalise_email(raw: str) -> str:
    """The normalised address in lower case, or ValueError saying what is wrong with it.

    Customers are matched by this string (one customer per email), and no mailbox a shop's
    customer uses tells `Rosa@` from `rosa@`, so neither do we.
    """
    # Imported here: its patterns take a while to compile, and the models import this module.
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise ValueError(f"{raw!r} is not a valid email address: {error}") from None
