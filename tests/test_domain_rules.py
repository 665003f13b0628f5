"""Rules the admin's forms used to decide, now the domain's own: each refused by the domain
function, in the words the admin shows (and translates), whoever calls it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.accounts import (
    AccountError,
    change_own_password,
    change_user,
    create_api_token,
    verify_password,
)
from scheduler.casework.cases import resolve_case
from scheduler.casework.staff_actions import CaseworkError, add_note, reply_to_customer
from scheduler.config import Config
from scheduler.consent import ConsentError, staff_wording
from scheduler.defaults import install_defaults
from scheduler.lifecycle import Channel, FollowUpStatus
from scheduler.models import Customer, FollowUp, User
from scheduler.sending.replanning import SaleError, cancel_sale
from scheduler.sending.sales import record_sale
from scheduler.typed_text import typed_text
from tests.complaints import complaint
from tests.factories import NOW, sale_input


def test_what_a_person_types_is_trimmed_and_bounded() -> None:
    assert typed_text("  hola \n", empty="empty", what="a note", most=4) == "hola"
    with pytest.raises(ValueError, match="^empty$"):
        typed_text(" \t", empty="empty", what="a note", most=4)
    with pytest.raises(ValueError, match="^empty$"):
        typed_text(None, empty="empty", what="a note", most=4)
    with pytest.raises(ValueError, match=r"^a note can have at most 4 characters \(5 given\)$"):
        typed_text("holas", empty="empty", what="a note", most=4)
    with pytest.raises(ValueError, match=r"^a note contains the control character U\+0000$"):
        typed_text("a\x00b", empty="empty", what="a note", most=4)  # PostgreSQL stores no NUL
    assert typed_text("a\r\n\tb", empty="empty", what="a note", most=9) == "a\r\n\tb"


def test_a_reply_is_bounded_by_its_channel(session: Session, config: Config, staff: User) -> None:
    case = complaint(session, config, email="rosa@example.pe")
    rosa = session.get_one(Customer, case.customer_id)

    def reply(channel: Channel, body: str, subject: str | None = "Su lavadora") -> None:
        reply_to_customer(
            session, case, rosa, user=staff, channel=channel, body=body, subject=subject, now=NOW
        )

    with pytest.raises(CaseworkError, match=r"^an SMS can have at most 1600 characters \(1601"):
        reply(Channel.SMS, "a" * 1601)
    with pytest.raises(CaseworkError, match=r"^an email can have at most 10000 characters"):
        reply(Channel.EMAIL, "a" * 10_001)
    with pytest.raises(CaseworkError, match=r"^a subject can have at most 200 characters"):
        reply(Channel.EMAIL, "Hola", "s" * 201)
    with pytest.raises(CaseworkError, match="^an email needs a subject$"):
        reply(Channel.EMAIL, "Hola", " ")
    reply(Channel.EMAIL, "a" * 10_000)  # up to the limit is fine


def test_notes_and_outcomes_are_bounded_and_a_case_resolves_once(
    session: Session, config: Config, staff: User
) -> None:
    case = complaint(session, config)
    with pytest.raises(CaseworkError, match=r"^a note can have at most 10000 characters"):
        add_note(session, case, author=staff, body="n" * 10_001, now=NOW)
    with pytest.raises(CaseworkError, match=r"^an outcome can have at most 2000 characters"):
        resolve_case(session, case, outcome="o" * 2001, now=NOW, actor="u", config=config)
    resolve_case(
        session, case, outcome="  Técnico cambió la placa ", now=NOW, actor="u", config=config
    )
    assert case.outcome == "Técnico cambió la placa"
    with pytest.raises(CaseworkError, match="^the case is already resolved$"):
        resolve_case(session, case, outcome="otra vez", now=NOW, actor="u", config=config)


def test_nobody_disables_their_own_log_in(session: Session, owner: User, staff: User) -> None:
    with pytest.raises(AccountError, match="^you cannot disable your own log-in$"):
        change_user(session, staff, active=False, now=NOW, actor="staff", by=staff)
    change_user(session, staff, active=False, now=NOW, actor="owner", by=owner)
    assert not staff.active


def test_a_password_changes_only_with_the_current_one(session: Session, staff: User) -> None:
    def change(current: str) -> None:
        change_own_password(
            session, staff, current=current, new="a new long one", now=NOW, actor="s", keep=None
        )

    with pytest.raises(AccountError, match="^the current password is not right$"):
        change("not my password")
    change("staff password 1")  # tests/conftest.py's STAFF
    assert verify_password(staff.password_hash, "a new long one")


def test_a_token_name_fits_its_column(session: Session) -> None:
    with pytest.raises(AccountError, match=r"^a token's name can have at most 100 characters"):
        create_api_token(session, name="t" * 101, now=NOW, actor="owner")


def test_a_cancelled_sale_says_why_and_who(session: Session, config: Config) -> None:
    install_defaults(session, NOW)  # the default cadence: the sale has follow-ups to cancel
    sale, _new = record_sale(session, sale_input("S-1"), config=config, now=NOW, actor="test")
    for reason in (None, "  "):
        with pytest.raises(SaleError, match="^say why the sale is cancelled$"):
            cancel_sale(session, sale, now=NOW, actor="u", reason=reason)
    with pytest.raises(SaleError, match=r"^a reason can have at most 200 characters"):
        cancel_sale(session, sale, now=NOW, actor="u", reason="r" * 201)
    later = NOW + timedelta(hours=1)
    cancelled = cancel_sale(
        session, sale, now=later, actor="u", reason=" devolvió el equipo ", by="ana@mitienda.pe"
    )
    reasons = session.scalars(
        select(FollowUp.status_reason).where(FollowUp.status == FollowUpStatus.CANCELLED)
    ).all()
    assert cancelled > 0 and set(reasons) == {"ana@mitienda.pe: devolvió el equipo"}


def test_a_consent_change_by_a_person_says_why_on_a_channel_they_have(
    session: Session, config: Config
) -> None:
    sale, _new = record_sale(session, sale_input("S-1"), config=config, now=NOW, actor="test")
    rosa = session.get_one(Customer, sale.customer_id)  # a phone, no email
    wording = staff_wording(rosa, Channel.SMS, " lo pidió por teléfono ", by="ana@mitienda.pe")
    assert wording == "ana@mitienda.pe: lo pidió por teléfono"
    with pytest.raises(ConsentError, match="^the customer has no address for that channel$"):
        staff_wording(rosa, Channel.EMAIL, "lo pidió", by="ana@mitienda.pe")
    with pytest.raises(ConsentError, match=r"^say why \(the customer's words"):
        staff_wording(rosa, Channel.SMS, "", by="ana@mitienda.pe")
