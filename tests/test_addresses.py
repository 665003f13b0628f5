"""Phone numbers to E.164 and email addresses to one spelling."""

from __future__ import annotations

import re

import pytest

from scheduler.addresses import normalise_email, normalise_phone


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
