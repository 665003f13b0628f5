"""Phone numbers to E.164 and email addresses to one spelling."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.addresses import _e164_parsed, _plain_email, normalise_email, normalise_phone


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


def _library_phone(raw: str, region: str) -> str:
    """What phonenumbers alone makes of `raw`: the answer `normalise_phone` must give."""
    try:
        parsed = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return "refused"
    if not phonenumbers.is_valid_number(parsed):
        return "refused"
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _our_phone(raw: str, region: str) -> str:
    try:
        return normalise_phone(raw, region)
    except ValueError as error:
        assert str(error) == (
            f"{raw!r} is not a valid phone number (numbers without + are read as {region})"
        )
        return "refused"


def _examples() -> list[str]:
    """Every region's example numbers as E.164, and each with a national 0 after its country
    code, as people write British and Italian numbers."""
    numbers = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in phonenumbers.PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                code = f"+{example.country_code}"
                numbers += [e164, f"{code}0{e164.removeprefix(code)}"]
    for calling_code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        example = phonenumbers.example_number_for_non_geo_entity(calling_code)
        if example is not None:
            numbers.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    return numbers


ODD_PHONES = [
    "+390612345678",  # Italy's leading 0 is part of the number
    "+39 06 1234 5678",
    "+4407911123456",  # a national 0 written after the country code
    "+447911123456",
    "+5491123456789",  # Argentina's mobile 9
    "+541123456789",
    "+5215512345678",  # Mexico's old mobile 1
    "+78005553535",
    "+77012345678",  # Kazakhstan shares +7
    "+80012345678",
    "+88213300000",
    "+999123456789",  # no such country code
    "+0051987654321",
    "+51",
    "+519",
    "+5199",
    "+51987654321 ",
    " +51987654321",
    "+51987654321000000000",
    "+519876543210000000000",
    "+1 305 555 0142",
    "+13055550142",
    "+12015550123",
    "+16135550123",  # Canada shares +1
    "+18005550199",
    "++51987654321",
    "＋51987654321",
    "+５１987654321",
]


@pytest.mark.parametrize("region", ["PE", "US", "IT"])
def test_phones_read_as_phonenumbers_reads_them(region: str) -> None:
    read_as_e164 = 0
    for raw in [*_examples(), *ODD_PHONES]:
        assert _our_phone(raw, region) == _library_phone(raw, region), raw
        parsed = _e164_parsed(raw.strip())
        if parsed is not None:  # the very number parse reads, field by field
            assert parsed == phonenumbers.parse(raw, region), raw
            read_as_e164 += 1
    assert read_as_e164 > 1000  # most numbers written as E.164 skip parse


@given(
    st.builds(
        lambda plus, digits: plus + digits,
        st.sampled_from(["+", "+0", "+1", "+39", "+44", "+51", "+52", "+54", "+7", "+800", "+9"]),
        st.text("0123456789", max_size=18),
    ),
    st.sampled_from(["PE", "US", "GB"]),
)
@settings(max_examples=600, deadline=None, derandomize=True, database=None)
def test_any_plus_number_reads_as_phonenumbers_reads_it(raw: str, region: str) -> None:
    assert _our_phone(raw, region) == _library_phone(raw, region)


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
