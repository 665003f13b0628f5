"""Configuration: a TOML file, environment overrides for secrets, built-in defaults.

Every value is validated when it is loaded, so a typo stops start-up with one line that names
the key, instead of surfacing as a wrong send hours later.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import tomllib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from email.headerregistry import Address
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from scheduler.addresses import WHATSAPP_PREFIX

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LOCALES = ("es", "en")

# Environment variables that override file values: secrets and the database stay out of files.
ENV_OVERRIDES = {
    "POSTVENTA_DATABASE_URL": ("database", "url"),
    "POSTVENTA_SECRET_KEY": ("web", "secret_key"),
    "TWILIO_ACCOUNT_SID": ("twilio", "account_sid"),
    "TWILIO_AUTH_TOKEN": ("twilio", "auth_token"),
    "POSTVENTA_SMTP_PASSWORD": ("email", "smtp_password"),
    "POSTVENTA_IMAP_PASSWORD": ("email.inbound", "password"),
    "POSTVENTA_SHOPIFY_SECRET": ("shops", "shopify_secret"),
    "POSTVENTA_WOOCOMMERCE_SECRET": ("shops", "woocommerce_secret"),
    "POSTVENTA_METRICS_TOKEN": ("metrics", "token"),
}


class ConfigError(ValueError):
    """A configuration problem; the message is ready to show to the person running Postventa."""


T = TypeVar("T")
Parser = Callable[[Any], Any]


def _setting(default: Any, parse: Parser) -> Any:
    """Declare a key: its raw default (parsed like any file value) and its parser."""
    return field(metadata={"default": default, "parse": parse})


# --- value parsers: each returns the parsed value or raises ValueError with the problem ----------


def _typed(kind: type[T], what: str) -> Callable[[Any], T]:
    def parse(value: Any) -> T:
        # bool is a subclass of int in Python but never a valid number in a config file.
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ValueError(f"expected {what}, got {type(value).__name__}")
        return value

    return parse


_str = _typed(str, "a string")
_bool = _typed(bool, "true or false")


def _int_between(low: int, high: int) -> Parser:
    def parse(value: Any) -> int:
        number = _typed(int, "a whole number")(value)
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}")
        return number

    return parse


def _number(low: float, high: float, *, above_low: bool = False, off: str = "") -> Parser:
    """A finite number from `low` (or above it) to `high`: an hour count of 1e308 passes a
    "positive" check and then overflows every date it is added to."""

    def parse(value: Any) -> float:
        ok = not isinstance(value, bool) and isinstance(value, int | float)
        if ok and math.isfinite(value) and (value > low if above_low else value >= low):
            if value <= high:
                return float(value)
        if above_low:
            raise ValueError(f"expected a number above {low:g}, at most {high:g}{off}")
        raise ValueError(f"expected a number from {low:g} to {high:g}{off}")

    return parse


_positive_hours = _number(0, 8760, above_low=True)  # up to a year
_percent = _number(0, 100)


def _one_of(*choices: str) -> Parser:
    def parse(value: Any) -> str:
        if _str(value) not in choices:
            raise ValueError(f"must be one of: {', '.join(choices)}")
        return str(value)

    return parse


def _non_empty(value: Any) -> str:
    text = _str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _time_zone(value: Any) -> str:
    name = _str(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone (use an IANA name such as America/Lima)") from None
    return name


def _country(value: Any) -> str:
    code = _str(value).upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("unknown ISO 3166 country code (such as PE, ES, US)")
    return code


@dataclass(frozen=True)
class TimeWindow:
    """A daily window of local wall-clock time, start inclusive, end exclusive."""

    start: time
    end: time

    def __str__(self) -> str:
        end = "24:00" if self.end == time.max else f"{self.end:%H:%M}"
        return f"{self.start:%H:%M}-{end}"


_WINDOW = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def parse_window(value: Any) -> TimeWindow:
    """Parse 'HH:MM-HH:MM'; windows that cross midnight are refused (nobody wants a 3 a.m. SMS)."""
    match = _WINDOW.match(_str(value).strip())
    if not match:
        raise ValueError("expected HH:MM-HH:MM, such as 09:00-20:00")
    h1, m1, h2, m2 = (int(group) for group in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError("not a valid time of day")
    start = time(h1, m1)
    end = time.max if h2 == 24 else time(h2, m2)
    if start >= end:
        raise ValueError("start must be before end")
    return TimeWindow(start, end)


def _weekdays(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"expected a non-empty list of days from {', '.join(WEEKDAYS)}")
    days = [str(day).lower() for day in value]
    unknown = [day for day in days if day not in WEEKDAYS]
    if unknown:
        raise ValueError(f"unknown day {unknown[0]!r} (use {', '.join(WEEKDAYS)})")
    if len(set(days)) != len(days):
        raise ValueError("a day is listed twice")
    return tuple(day for day in WEEKDAYS if day in days)


def _emails(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError('expected a list of addresses, such as ["ana@mitienda.pe"]')
    return tuple(_email_or_empty(_non_empty(item)) for item in value)


def _phones(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError('expected a list of E.164 numbers, such as ["+51987654321"]')
    return tuple(_e164_or_empty(_non_empty(item)) for item in value)


def _words(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
        raise ValueError('expected a list of words, such as ["horario", "hours"]')
    return tuple(w.strip() for w in value)


OpeningHours = dict[str, TimeWindow]  # weekday -> its opening window; a day left out is closed


def _opening_hours(value: Any) -> OpeningHours:
    if not isinstance(value, dict):
        raise ValueError('expected a table such as {mon = "09:00-18:00", sat = "09:00-13:00"}')
    unknown = [day for day in value if day not in WEEKDAYS]
    if unknown:
        raise ValueError(f"unknown day {unknown[0]!r} (use {', '.join(WEEKDAYS)})")
    hours = {}
    for day in WEEKDAYS:
        text = value.get(day, "")
        if text != "":
            try:
                hours[day] = parse_window(text)
            except ValueError as error:
                raise ValueError(f"{day}: {error}") from None
    if not hours:
        raise ValueError("the business must be open at least one day a week")
    return hours


def _http_url(value: Any) -> str:
    url = _str(value).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    return url.rstrip("/")


def _http_url_or_empty(value: Any) -> str:
    return _http_url(value) if _str(value).strip() else ""


_DRIVERS = {"sqlite": "sqlite", "sqlite+pysqlite": "sqlite", "postgresql": "postgresql+psycopg"}
_DRIVERS |= {"postgres": "postgresql+psycopg", "postgresql+psycopg": "postgresql+psycopg"}


def _database_url(value: Any) -> str:
    """Accept SQLite and PostgreSQL URLs; PostgreSQL always goes through psycopg 3."""
    try:
        url: URL = make_url(_non_empty(value))
    except ArgumentError:
        raise ValueError(
            "not a database URL (expected sqlite:///path or postgresql://...)"
        ) from None
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise ValueError(f"unsupported database {url.drivername!r} (use sqlite or postgresql)")
    if driver == "sqlite" and not url.database:
        raise ValueError("an SQLite URL needs a file path, such as sqlite:///instance/postventa.db")
    if driver.startswith("postgresql") and not url.database:
        raise ValueError("a PostgreSQL URL needs a database name")
    return url.set(drivername=driver).render_as_string(hide_password=False)


def _e164_or_empty(value: Any) -> str:
    number = _str(value).strip()
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if (
        not number.startswith("+")
        or parsed is None
        or not phonenumbers.is_possible_number(parsed)
        or number != phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    ):
        raise ValueError("expected an E.164 number such as +15005550006")
    return number


def _pattern_or_empty(pattern: str, example: str) -> Parser:
    compiled = re.compile(pattern)

    def parse(value: Any) -> str:
        text = _str(value).strip()
        if text and not compiled.fullmatch(text):
            raise ValueError(f"expected something like {example}")
        return text

    return parse


def _email_or_empty(value: Any) -> str:
    text = _str(value).strip()
    if not text:
        return ""
    # Imported here: its patterns take a while to compile, and only a configuration that
    # names an address needs them.
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None


def _mailbox_or_empty(value: Any) -> str:
    """An address, or a display name and an address ("Mi Tienda <postventa@example.com>"): the
    name is what customers see in their inbox, so shops give one."""
    text = _str(value).strip()
    if not text:
        return ""
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise ValueError("must be one line, without control characters")
    named = _MAILBOX.fullmatch(text)
    name = named["name"].strip().strip('"').strip() if named else ""
    address = _email_or_empty(named["address"] if named else text)
    if not address:
        raise ValueError("the address between < and > is missing")
    mailbox = str(Address(display_name=name, addr_spec=address)) if name else address
    if len(mailbox) > 254:  # messages.from_address
        raise ValueError("must be at most 254 characters")
    return mailbox


_MAILBOX = re.compile(r"(?P<name>[^<>]*?)\s*<(?P<address>[^<>]*)>")


LOCAL_URL = "http://127.0.0.1:5000"  # `postventa run`'s own address: reachable from this machine


# --- sections ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = _setting("sqlite:///instance/postventa.db", _database_url)


@dataclass(frozen=True)
class BusinessConfig:
    name: str = _setting("Mi Tienda", _non_empty)
    country: str = _setting("PE", _country)
    timezone: str = _setting("America/Lima", _time_zone)
    locale: str = _setting("es", _one_of(*LOCALES))
    send_window: TimeWindow = _setting("09:00-20:00", parse_window)
    send_days: tuple[str, ...] = _setting(["mon", "tue", "wed", "thu", "fri", "sat"], _weekdays)
    # Where people and Twilio reach the app. Unset, `run` and `web` put the address they serve.
    public_url: str = _setting("", _http_url_or_empty)
    review_url: str = _setting("", _http_url_or_empty)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def base_url(self) -> str:
        """The start of every link and webhook address: `public_url`, else this machine's."""
        return (self.public_url or LOCAL_URL).rstrip("/")


@dataclass(frozen=True)
class WebConfig:
    secret_key: str = _setting("", _str)
    # Reverse proxies in front of the app whose X-Forwarded-For to believe (log-in throttling
    # counts failures per address); 0 when browsers reach the app directly.
    proxies: int = _setting(0, _int_between(0, 5))


@dataclass(frozen=True)
class SmsConfig:
    transport: str = _setting("outbox", _one_of("outbox", "twilio"))
    keyword_replies: str = _setting("twilio-gaps", _one_of("twilio-gaps", "all", "none"))


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str = _setting("", _pattern_or_empty(r"AC[0-9a-fA-F]{32}", "AC + 32 hex digits"))
    auth_token: str = _setting("", _str)
    from_number: str = _setting("", _e164_or_empty)
    messaging_service_sid: str = _setting(
        "", _pattern_or_empty(r"MG[0-9a-fA-F]{32}", "MG + 32 hex digits")
    )
    api_base_url: str = _setting("https://api.twilio.com", _http_url)
    max_per_second: float = _setting(1, _number(0, 1000, off=" (0 turns it off)"))


CONTENT_KEY = re.compile(r"(?P<template>[a-z0-9_]{1,100})/(?P<locale>[a-z]{2})")
CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")


def _whatsapp_sender(value: Any) -> str:
    text = _str(value).strip()
    if not text:
        return ""
    if not text.startswith(WHATSAPP_PREFIX):
        raise ValueError("expected whatsapp: and an E.164 number, such as whatsapp:+14155238886")
    number = _e164_or_empty(text.removeprefix(WHATSAPP_PREFIX))
    if not number:
        raise ValueError("the number after whatsapp: is missing")
    return WHATSAPP_PREFIX + number


def _content_sids(value: Any) -> dict[str, str]:
    """ "<template>/<locale>" -> the approved Content template's SID (HX + 32 hex digits)."""
    if not isinstance(value, Mapping):
        raise ValueError('expected a table of "template/locale" = "HX..." pairs')
    sids: dict[str, str] = {}
    for key, sid in value.items():
        named = CONTENT_KEY.fullmatch(str(key))
        if named is None or named["locale"] not in LOCALES:
            raise ValueError(
                f'{str(key)[:60]!r} is not a template and a language such as "check_in/es" '
                f"(languages: {', '.join(LOCALES)})"
            )
        if not isinstance(sid, str) or not CONTENT_SID.fullmatch(sid.strip()):
            raise ValueError(f"{key}: expected a Content template SID, HX + 32 hex digits")
        sids[str(key)] = sid.strip()
    return dict(sorted(sids.items()))


@dataclass(frozen=True)
class WhatsappConfig:
    transport: str = _setting("off", _one_of("off", "outbox", "twilio"))
    # The WhatsApp sender; empty: Twilio's messaging service (twilio.messaging_service_sid).
    from_number: str = _setting("", _whatsapp_sender)
    prefer_over_sms: bool = _setting(True, _bool)  # SMS steps go by WhatsApp to who opted in
    content_sids: dict[str, str] = _setting({}, _content_sids)
    max_per_second: float = _setting(20, _number(0, 1000, off=" (0 turns it off)"))

    @property
    def on(self) -> bool:
        return self.transport != "off"


@dataclass(frozen=True)
class EmailConfig:
    transport: str = _setting("outbox", _one_of("outbox", "smtp"))
    smtp_host: str = _setting("localhost", _non_empty)
    smtp_port: int = _setting(587, _int_between(1, 65535))
    smtp_user: str = _setting("", _str)
    smtp_password: str = _setting("", _str)
    starttls: bool = _setting(True, _bool)
    from_address: str = _setting("", _mailbox_or_empty)
    max_per_second: float = _setting(10, _number(0, 1000, off=" (0 turns it off)"))


@dataclass(frozen=True)
class InboundEmailConfig:
    """`[email.inbound]`: where customers' email replies arrive, read over IMAP by the worker."""

    transport: str = _setting("off", _one_of("off", "imap"))
    reply_to: str = _setting(
        "", _mailbox_or_empty
    )  # every email to a customer asks for replies here
    imap_host: str = _setting("", _str)
    imap_port: int = _setting(993, _int_between(1, 65535))
    imap_security: str = _setting("ssl", _one_of("ssl", "starttls"))
    username: str = _setting("", _str)
    password: str = _setting("", _str)
    folder: str = _setting("INBOX", _non_empty)


@dataclass(frozen=True)
class ShopsConfig:
    """The secrets that shops sign their order webhooks with; empty: that shop's webhook
    refuses every request (an unsigned order could plan messages to anyone)."""

    shopify_secret: str = _setting("", _str)
    woocommerce_secret: str = _setting("", _str)


@dataclass(frozen=True)
class WorkerConfig:
    tick_seconds: int = _setting(30, _int_between(1, 3600))
    batch_size: int = _setting(1000, _int_between(1, 10_000))
    concurrency: int = _setting(8, _int_between(1, 256))
    max_attempts: int = _setting(5, _int_between(1, 100))
    send_timeout_seconds: float = _setting(15, _number(0, 600, above_low=True))
    lease_seconds: int = _setting(600, _int_between(30, 86_400))


@dataclass(frozen=True)
class CadencesConfig:
    late_grace_hours: float = _setting(48, _positive_hours)
    min_gap_hours: float = _setting(20, _number(0, 8760, off=" (0 turns it off)"))


@dataclass(frozen=True)
class SalesConfig:
    """How far from now a sale may be dated: further back or ahead is a typo (a year 0206 for
    2026), and its follow-ups would be planned for a purchase that did not happen then."""

    max_age_days: int = _setting(3650, _int_between(1, 36_500))
    max_future_hours: float = _setting(24, _number(0, 8760))


@dataclass(frozen=True)
class CasesConfig:
    first_response_hours: float = _setting(4, _positive_hours)
    notify_emails: tuple[str, ...] = _setting([], _emails)  # staff told at once of a new case
    notify_sms: tuple[str, ...] = _setting([], _phones)
    escalate_to: tuple[str, ...] = _setting([], _emails)  # the owner(s), when a case is overdue
    escalation_levels: int = _setting(2, _int_between(0, 10))
    acknowledge: bool = _setting(True, _bool)
    routine_words: tuple[str, ...] = _setting([], _words)
    opening_hours: OpeningHours = _setting(
        {day: "09:00-18:00" for day in WEEKDAYS[:5]} | {"sat": "09:00-13:00"}, _opening_hours
    )


@dataclass(frozen=True)
class RemediesConfig:
    """What staff may give to put things right without asking (owners may give anything)."""

    staff_max_discount_percent: float = _setting(10, _percent)
    staff_max_refund: float = _setting(0, _number(0, 9_999_999_999.99))  # 0: always ask
    staff_may_replace: bool = _setting(True, _bool)


@dataclass(frozen=True)
class LoggingConfig:
    """What the processes write to standard error: readable lines, or one JSON object per
    event for a log collector. Phone numbers, addresses and message bodies stay out of the
    logs unless `personal_data` lets them in (a log is kept longer and read by more people
    than the database)."""

    format: str = _setting("text", _one_of("text", "json"))
    level: str = _setting("info", _one_of("debug", "info", "warning", "error"))
    personal_data: bool = _setting(False, _bool)


def _networks(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError('a list of networks, such as ["127.0.0.0/8", "10.0.0.0/8"]')
    try:
        return tuple(str(ipaddress.ip_network(item, strict=False)) for item in value)
    except ValueError as error:
        raise ValueError(f"not a network: {error}") from None


@dataclass(frozen=True)
class MetricsConfig:
    """Who may read `/metrics`: a scraper with the bearer `token`, or one whose address is in
    `allow_from` (reached directly: a request that came through a proxy the app does not count
    in `web.proxies` is not believed to be local)."""

    token: str = _setting("", _str)
    allow_from: tuple[str, ...] = _setting(["127.0.0.0/8", "::1/128"], _networks)


@dataclass(frozen=True)
class PrivacyConfig:
    """How long the words of messages and of closed cases are kept (0: for as long as the
    shop keeps its data); what counts stays."""

    retention_months: int = _setting(0, _int_between(0, 1200))


@dataclass(frozen=True)
class Config:
    """The whole validated configuration; `source` says where it came from, for messages."""

    database: DatabaseConfig
    business: BusinessConfig
    web: WebConfig
    sms: SmsConfig
    twilio: TwilioConfig
    whatsapp: WhatsappConfig
    email: EmailConfig
    email_inbound: InboundEmailConfig
    shops: ShopsConfig
    worker: WorkerConfig
    cadences: CadencesConfig
    sales: SalesConfig
    cases: CasesConfig
    remedies: RemediesConfig
    logging: LoggingConfig
    metrics: MetricsConfig
    privacy: PrivacyConfig
    source: str = "built-in defaults"

    def replace(self, **sections: Mapping[str, Any]) -> Config:
        """A copy with some keys changed, validated like a file (handy for tests and tools); a
        table within a table is named as its attribute (`email_inbound` for [email.inbound])."""
        raw: dict[str, Any] = {}
        for name, cls in _SECTIONS.items():
            section = getattr(self, _attribute(name))
            values = {f.name: as_raw(getattr(section, f.name)) for f in dataclasses.fields(cls)}
            _table_at(raw, name).update(values)
        for attribute, changes in sections.items():
            _table_at(raw, SECTION_NAMES.get(attribute, attribute)).update(changes)
        return _build(raw, self.source, {})


def as_raw(value: Any) -> Any:
    """The file form of a parsed value, so that it parses back to itself."""
    if isinstance(value, TimeWindow):
        return str(value)
    if isinstance(value, dict):
        return {key: as_raw(item) for key, item in value.items()}
    return list(value) if isinstance(value, tuple) else value


_SECTIONS: dict[str, type[Any]] = {
    "database": DatabaseConfig,
    "business": BusinessConfig,
    "web": WebConfig,
    "sms": SmsConfig,
    "twilio": TwilioConfig,
    "whatsapp": WhatsappConfig,
    "email": EmailConfig,
    "email.inbound": InboundEmailConfig,  # a table within [email]
    "shops": ShopsConfig,
    "worker": WorkerConfig,
    "cadences": CadencesConfig,
    "sales": SalesConfig,
    "cases": CasesConfig,
    "remedies": RemediesConfig,
    "logging": LoggingConfig,
    "metrics": MetricsConfig,
    "privacy": PrivacyConfig,
}


def _attribute(name: str) -> str:
    """The Config attribute of a section: `email.inbound` is `email_inbound`."""
    return name.replace(".", "_")


SECTION_NAMES = {_attribute(name): name for name in _SECTIONS}  # Config attribute -> [section]


def _table_at(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """The (new or existing) table of raw values at a section's dotted name."""
    table = raw
    for part in name.split("."):
        table = table.setdefault(part, {})
    return table


def _given(raw: Mapping[str, Any], name: str) -> Any:
    """What the file gives for a section: a table, something else (an error), or nothing."""
    value: Any = raw
    for part in name.split("."):
        value = value.get(part, {}) if isinstance(value, Mapping) else {}
    return value


def _build(raw: Mapping[str, Any], source: str, from_env: Mapping[tuple[str, str], str]) -> Config:
    errors: list[str] = []
    tops = {name.partition(".")[0] for name in _SECTIONS}
    for section in raw:
        if section not in tops:
            errors.append(f"{source}: unknown section [{section}]")
    for name in _SECTIONS:
        parent = name.rpartition(".")[0]
        if (not parent or isinstance(_given(raw, parent), Mapping)) and not isinstance(
            _given(raw, name), Mapping
        ):
            errors.append(f"{source}: {name} must be a table ([{name}])")
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        given = _given(raw, name)
        given = given if isinstance(given, Mapping) else {}
        known = {f.name for f in dataclasses.fields(cls)}
        known |= {child.rpartition(".")[2] for child in _SECTIONS if child.startswith(f"{name}.")}
        errors += [f"{source}: unknown key {name}.{key}" for key in given if key not in known]
        parsed: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = given.get(f.name, f.metadata["default"])
            try:
                parsed[f.name] = f.metadata["parse"](value)
            except ValueError as problem:
                env = from_env.get((name, f.name))
                where = f"environment {env}" if env else source
                shown = "(secret)" if env and env != "POSTVENTA_DATABASE_URL" else repr(value)
                errors.append(f"{where}: {name}.{f.name} {shown}: {problem}")
        if not errors:
            sections[name] = cls(**parsed)
    if not errors:
        errors += _cross_checks(sections, source)
    if errors:
        raise ConfigError("\n".join(errors))
    return Config(
        **{_attribute(name): section for name, section in sections.items()}, source=source
    )


def _cross_checks(sections: Mapping[str, Any], source: str) -> list[str]:
    """Rules that involve more than one key: a chosen transport needs its credentials."""
    errors = []
    twilio: TwilioConfig = sections["twilio"]
    if sections["sms"].transport == "twilio":
        for key in ("account_sid", "auth_token"):
            if not getattr(twilio, key):
                errors.append(f'{source}: twilio.{key} is required when sms.transport = "twilio"')
        if not (twilio.from_number or twilio.messaging_service_sid):
            errors.append(
                f"{source}: twilio.from_number or twilio.messaging_service_sid is required "
                'when sms.transport = "twilio"'
            )
    whatsapp: WhatsappConfig = sections["whatsapp"]
    if whatsapp.transport == "twilio":
        for key in ("account_sid", "auth_token"):
            if not getattr(twilio, key):
                errors.append(
                    f'{source}: twilio.{key} is required when whatsapp.transport = "twilio"'
                )
        if not (whatsapp.from_number or twilio.messaging_service_sid):
            errors.append(
                f"{source}: whatsapp.from_number or twilio.messaging_service_sid is required "
                'when whatsapp.transport = "twilio"'
            )
    if sections["email"].transport == "smtp" and not sections["email"].from_address:
        errors.append(f'{source}: email.from_address is required when email.transport = "smtp"')
    inbound: InboundEmailConfig = sections["email.inbound"]
    if inbound.transport == "imap":
        for key in ("reply_to", "imap_host", "username", "password"):
            if not getattr(inbound, key):
                when = 'when email.inbound.transport = "imap"'
                errors.append(f"{source}: email.inbound.{key} is required {when}")
    return errors


def defaults() -> Config:
    """The built-in configuration, as if no file and no environment variable were given."""
    return _build({}, "built-in defaults", {})


def find_config_file(
    explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> Path | None:
    """The file to read: --config, else $POSTVENTA_CONFIG, else ./config.toml if present."""
    if explicit:
        return Path(explicit)
    if environ.get("POSTVENTA_CONFIG"):
        return Path(environ["POSTVENTA_CONFIG"])
    default = Path("config.toml")
    return default if default.is_file() else None


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Load and validate the configuration, raising ConfigError with every problem found."""
    environ = os.environ if environ is None else environ
    file = find_config_file(path, environ)
    raw: dict[str, Any] = {}
    source = "built-in defaults"
    if file is not None:
        source = str(file)
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{source}: configuration file not found") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{source}: not valid TOML: {error}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"{source}: cannot read: {error}") from None
    from_env: dict[tuple[str, str], str] = {}
    for variable, (section, key) in ENV_OVERRIDES.items():
        if environ.get(variable) and isinstance(_given(raw, section), dict):
            _table_at(raw, section)[key] = environ[variable]
            from_env[(section, key)] = variable
    return _build(raw, source, from_env)
