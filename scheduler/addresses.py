"""Normalising how customers are reached: phones to E.164, emails to one spelling."""

from __future__ import annotations

import re

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


# An address as nearly every customer writes one: ASCII letters, digits and marks before the @,
# a hostname of two or more labels after it (each 1-63 characters, no hyphen at either end, the
# last ending in a letter). For these, email_validator's answer is the address as given, its
# domain in lower case: `_plain_email` says so in one match, a third of a shop export's check
# spent in the library before. Anything else (quotes, IDN, Punycode, special-use names, odd
# lengths) goes to the library, which alone says what is wrong with an address.
_ATEXT = r"[a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~]+"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_PLAIN_EMAIL = re.compile(
    rf"{_ATEXT}(?:\.{_ATEXT})*@(?:{_LABEL}\.)+(?:[a-zA-Z0-9][a-zA-Z0-9-]{{0,61}})?[a-zA-Z]"
)
_EMAIL_MOST, _DOMAIN_MOST = 254, 253  # RFC 5321 4.5.3.1.3 and RFC 1035 2.3.4, as the library


def _plain_email(address: str) -> str | None:
    """`address` in lower case when email_validator would accept it as it is, else None (ask
    the library). "--" is left to the library: Punycode ("xn--") and the labels RFC 5890
    reserves."""
    from email_validator import SPECIAL_USE_DOMAIN_NAMES

    if len(address) > _EMAIL_MOST or not _PLAIN_EMAIL.fullmatch(address):
        return None
    domain = address.rpartition("@")[2].lower()
    if len(domain) > _DOMAIN_MOST or "--" in domain:
        return None
    if any(domain == name or domain.endswith("." + name) for name in SPECIAL_USE_DOMAIN_NAMES):
        return None
    return address.lower()


def normalise_email(raw: str) -> str:
    """The normalised address in lower case, or ValueError saying what is wrong with it.

    Customers are matched by this string (one customer per email), and no mailbox a shop's
    customer uses tells `Rosa@` from `rosa@`, so neither do we.
    """
    # Imported here: its patterns take a while to compile, and the models import this module.
    from email_validator import EmailNotValidError, validate_email

    address = raw.strip()
    plain = _plain_email(address)
    if plain is not None:
        return plain
    try:
        return validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise ValueError(f"{raw!r} is not a valid email address: {error}") from None
