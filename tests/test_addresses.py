"""Phone numbers to E.164 and email addresses to one spelling."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.addresses import _plain_email, normalise_email, normalise_phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("987 654 321", "PE", "+51987654321"),
        ("+51 987-654-321", "PE", "+51987654321"),
        ("(305) 555-0142", "US", "+13055550142"),
        ("+1 305 555 0142", "PE", "+13055550142"),
        ("612 34 56 78", "ES", "+34612345678"),
        ("00 51 987 654 321", "ES", "+51987654321"),
        ("011 51 987 654 321", "US", "+51987654321"),
    ],
)
def test_phone_numbers_become_e164(raw: str, region: str, expected: str) -> None:
    assert normalise_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["12", "abc", "", "+51 123"])
def test_invalid_phone_numbers_say_what_was_wrong(raw: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{raw!r} is not a valid phone number")):
        normalise_phone(raw, "PE")


def test_emails_are_normalised_and_checked() -> None:
    assert normalise_email("  ana@EXAMPLE.pe ") == "ana@example.pe"
    with pytest.raises(ValueError, match="'ana@' is not a valid email address"):
        normalise_email("ana@")


def _library(raw: str) -> str:
    """What email_validator alone makes of `raw`: the answer `normalise_email` must give."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        return f"refused: {error}"


def _ours(raw: str) -> str:
    try:
        return normalise_email(raw)
    except ValueError as error:
        return "refused: " + str(error).removeprefix(f"{raw!r} is not a valid email address: ")


@pytest.mark.parametrize(
    "raw",
    [
        "ana@example.pe",
        "Ana.Quispe@Example.PE",
        " rosa+pedidos@TIENDA.com.pe\t",
        "o'brien@mail.co.uk",
        "a!#$%&'*+-/=?^_`{|}~z@x.io",
        "INFO@shop.pe",  # RFC 2142 names: lower case either way
        "ana@mail-1.example.pe",
        "ana@1.example.pe",
        "ana@sub.example.museum",
        "ana@a.b.c.d.e.pe",
        # Special-use names, refused by the library whatever their case.
        "ana@shop.test",
        "ana@server.LOCAL",
        "ana@localhost",
        "ana@mail.localhost",
        "ana@x.invalid",
        "ana@1.0.168.192.in-addr.arpa",
        "ana@shop.onion",
        "ana@shop.example",
        # Dots, hyphens and lengths.
        "ana@example.pe.",
        "ana.@example.pe",
        ".ana@example.pe",
        "an..a@example.pe",
        "ana@example..pe",
        "ana@-example.pe",
        "ana@example-.pe",
        "ana@exa--mple.pe",
        "ana@ab--cd.pe",
        "ana@example.p3",
        "ana@example.123",
        "ana@example",
        "ana@@example.pe",
        "@example.pe",
        "ana@",
        "ana",
        "a" * 64 + "@example.pe",
        "a" * 240 + "@example.pe",
        "ana@" + "a" * 63 + ".pe",
        "ana@" + "a" * 64 + ".pe",
        "ana@" + ".".join(["a" * 60] * 4) + ".pe",
        "ana@" + ".".join(["a" * 61] * 4) + ".pe",
        # Spaces, quotes, brackets, display names.
        "ana quispe@example.pe",
        "ana@exam ple.pe",
        '"ana quispe"@example.pe',
        '"ana"@example.pe',
        '"a\\"b"@example.pe',
        "Ana <ana@example.pe>",
        "ana@[192.168.0.1]",
        "ana(comment)@example.pe",
        # Not ASCII: internationalised names and Punycode.
        "josé@example.pe",
        "ana@correo.españa.es",
        "ana@XN--ESPAA-RTA.es",
        "ana@xn--espaa-rta.es",
        "ana@xn--invalid.pe",
        "ana@ｅｘａｍｐｌｅ.pe",
        "ana@example。pe",
        "ana@exam\u00adple.pe",
        "ana@examp\u200ble.pe",
        "ana\u0301@example.pe",
        "ana＠example.pe",
        "ana@example.pe\n",
        "ana@exam\x00ple.pe",
    ],
)
def test_emails_read_as_email_validator_reads_them(raw: str) -> None:
    assert _ours(raw) == _library(raw)


_EMAIL_ALPHABET = "aZ09._-+'@\"!~ áé\u00adxn-.-@ＡＢ。"


@given(st.text(_EMAIL_ALPHABET, max_size=30) | st.emails().map(lambda address: address.upper()))
@settings(max_examples=400, deadline=None, derandomize=True, database=None)
def test_any_email_reads_as_email_validator_reads_it(raw: str) -> None:
    assert _ours(raw) == _library(raw)


def test_plain_addresses_are_read_without_the_library() -> None:
    assert _plain_email("Ana.Quispe@Example.PE") == "ana.quispe@example.pe"
    assert _plain_email("ana@shop.test") is None  # the library says why not
