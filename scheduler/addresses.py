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
    parsed = _e164_parsed(text)
    if parsed is None:
        try:
            parsed = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise ValueError(
            f"{raw!r} is not a valid phone number (numbers without + are read as {region})"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_E164 = re.compile(r"\+[1-9][0-9]{2,19}")
_MOST_COUNTRY_DIGITS = 3  # country calling codes have one to three digits
_NATIONAL_DIGITS = range(2, 18)  # what parse accepts after the country code


def _e164_parsed(text: str) -> phonenumbers.PhoneNumber | None:
    """The number `phonenumbers.parse` reads in `text` when it is written as E.164 (a + and
    its digits alone, as shops export them), without its search through free text for a number
    (three quarters of a number's check); None when parse's reading could differ: an unknown
    country code, a length it refuses, a national number starting with 0 or with what the
    country's national prefix may be (both of which parse treats apart)."""
    if not _E164.fullmatch(text):
        return None
    digits = text[1:]
    for size in range(1, _MOST_COUNTRY_DIGITS + 1):  # the shortest known code, as parse
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code)
    )
    if len(national) not in _NATIONAL_DIGITS or national[0] == "0" or metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    if prefix and re.match(prefix, national):
        return None
    return phonenumbers.PhoneNumber(country_code=code, national_number=int(national))


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
# domain in lower case: `_plain_email` says so in one match, where the library took a quarter
# of a shop export's check. Anything else (quotes, IDN, Punycode, special-use names, odd
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
