"""The staff inbox: cases by deadline, unmatched replies, and working a case to its end."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.casework.cases import resolve_case
from scheduler.casework.staff_actions import CaseworkError, RemedyKind, RemedyRequest, within_limit
from scheduler.config import Config, defaults
from scheduler.consent import opt_out
from scheduler.lifecycle import (
    CaseStatus,
    Channel,
    ConsentSource,
    Direction,
    FollowUpStatus,
    RemedyStatus,
    Role,
)
from scheduler.models import AuditEntry, Case, Customer, FollowUp, Message, Remedy, User
from tests.browsing import fresh, submit
from tests.complaints import complaint, frozen, give, waiting_remedy
from tests.dispatching import dispatcher
from tests.factories import NOW, inbound_sms

__all__ = ["frozen"]  # a fixture of tests.complaints


# The browsers log in once the clock is frozen (see `frozen`).
@pytest.fixture
def owner_client(frozen: object, owner_client: FlaskClient) -> FlaskClient:
    return owner_client


@pytest.fixture
def staff_client(frozen: object, staff_client: FlaskClient) -> FlaskClient:
    return staff_client


def test_inbox_lists_open_cases_nearest_deadline_first_with_time_left(
    owner_client: FlaskClient, session: Session, config: Config, frozen: object
) -> None:
    complaint(session, config, name="Later Lopez", phone="+51911111111")
    complaint(session, config, name="Overdue Osorio", phone="+51922222222", hours_ago=30)
    page = owner_client.get("/inbox").get_data(as_text=True)
    assert page.index("Overdue Osorio") < page.index("Later Lopez")
    assert "overdue by" in page and "4 h 0 min left" in page
    assert "la lavadora no prende" in page


def test_unmatched_replies_have_their_own_tab(
    staff_client: FlaskClient, session: Session, frozen: object
) -> None:
    session.add(
        inbound_sms(  # read by the worker
            "<b>quien es?</b>",
            NOW,
            sender="+51900000000",
            label="question",
            needs_human=True,
        )
    )
    session.commit()
    page = staff_client.get("/inbox?tab=unmatched").get_data(as_text=True)
    assert "+51900000000" in page and "&lt;b&gt;quien es?&lt;/b&gt;" in page
    assert "<b>quien es?</b>" not in page


def test_case_page_shows_the_conversation_escaped(
    staff_client: FlaskClient, session: Session, config: Config, frozen: object
) -> None:
    case = complaint(session, config, body="<script>alert('x')</script> no funciona")
    page = staff_client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; no funciona" in page
    assert "<script>alert" not in page
    assert staff_client.get("/cases/999").status_code == 404


def test_reply_by_sms_is_queued_and_meets_the_deadline(
    staff_client: FlaskClient, staff: User, session: Session, config: Config, frozen: object
) -> None:
    case = complaint(session, config)
    answer = submit(
        staff_client, f"/cases/{case.id}/reply", {"channel": "sms", "body": "Le llamamos hoy."}
    )
    assert answer.status_code == 302
    fresh(session)
    reply = session.scalars(
        select(Message).where(Message.case_id == case.id, Message.direction == Direction.OUTBOUND)
    ).one()
    assert (reply.to_address, reply.body, reply.sent_by_id) == (
        "+51987654321",
        "Le llamamos hoy.",
        staff.id,
    )
    assert (reply.status, reply.due_at) == ("prepared", NOW + timedelta(days=2))  # within seconds
    assert session.get_one(Case, case.id).first_responded_at == NOW + timedelta(days=2)
    page = staff_client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "Reply queued" in page and "staff@example.com" in page


def test_the_inbox_shows_the_domains_own_refusals(
    staff_client: FlaskClient, staff: User, session: Session, config: Config, frozen: object
) -> None:
    """What is typed is judged by the domain, and its words are shown (in Spanish to a
    Spanish reader), not a form's guess of them."""
    case = complaint(session, config, email="rosa@example.pe")
    long_subject = {"channel": "email", "subject": "s" * 201, "body": "Hola"}
    assert submit(staff_client, f"/cases/{case.id}/reply", long_subject).status_code == 302
    page = staff_client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "a subject can have at most 200 characters (201 given)" in page
    staff.locale = "es"
    session.commit()
    submit(staff_client, f"/cases/{case.id}/notes", {"body": "   "})
    assert "la nota está vacía" in staff_client.get(f"/cases/{case.id}").get_data(as_text=True)
    nul = submit(staff_client, f"/cases/{case.id}/notes", {"body": "pegado\x00de otro sitio"})
    assert nul.status_code == 302  # refused with the reason, never a database error
    page = staff_client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "una nota contiene el carácter de control U+0000" in page
    assert session.scalar(select(Message).where(Message.direction == Direction.OUTBOUND)) is None


def test_a_notice_to_staff_that_did_not_go_out_is_said_on_the_case(
    staff_client: FlaskClient, session: Session, config: Config, frozen: object
) -> None:
    from scheduler.sending.queueing import queue

    case = complaint(session, config)
    for to, status in (("ana@mitienda.pe", "unknown"), ("luis@mitienda.pe", "stored")):
        notice = queue(
            session,
            case_id=case.id,
            channel=Channel.EMAIL,
            to=to,
            subject="Nuevo caso",
            body="...",
            now=NOW,
        )
        notice.status = status
    session.commit()
    page = staff_client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "Not every notice of this case reached the staff:" in page
    assert "ana@mitienda.pe (unknown: check with the provider)" in page
    assert "luis@mitienda.pe" not in page  # that one went out


def test_reply_respects_the_opt_out(
    staff_client: FlaskClient, session: Session, config: Config, frozen: object
) -> None:
    case = complaint(session, config)
    customer = session.get_one(Customer, case.customer_id)
    customer.sms_opt_out_at = NOW
    session.commit()
    answer = submit(staff_client, f"/cases/{case.id}/reply", {"channel": "sms", "body": "Hola"})
    assert answer.status_code == 302
    page = staff_client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "the customer opted out of SMS" in page
    assert session.scalar(select(Message).where(Message.direction == Direction.OUTBOUND)) is None
    no_email = submit(
        staff_client,
        f"/cases/{case.id}/reply",
        {"channel": "email", "subject": "Hola", "body": "Hola"},
    )
    assert no_email.status_code == 302
    assert "no email address" in staff_client.get(f"/cases/{case.id}").get_data(as_text=True)


def test_assign_to_me_and_to_somebody(
    staff_client: FlaskClient,
    staff: User,
    owner: User,
    session: Session,
    config: Config,
    frozen: object,
) -> None:
    case = complaint(session, config)
    submit(staff_client, f"/cases/{case.id}/assign", {"assignee": "", "to_me": "1"})
    fresh(session)
    assert session.get_one(Case, case.id).assignee_id == staff.id
    submit(staff_client, f"/cases/{case.id}/assign", {"assignee": str(owner.id)})
    fresh(session)
    assert session.get_one(Case, case.id).assignee_id == owner.id
    mine = staff_client.get("/inbox?tab=mine").get_data(as_text=True)
    assert "Rosa Quispe" not in mine
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "case.assign")).all()
    assert [entry.details["assignee"] for entry in audit] == [staff.email, owner.email]
    assert audit[0].actor == f"user:{staff.id}"


def test_internal_notes_stay_internal(
    staff_client: FlaskClient, session: Session, config: Config, frozen: object
) -> None:
    case = complaint(session, config)
    submit(staff_client, f"/cases/{case.id}/notes", {"body": "Cliente frecuente, <ojo>"})
    page = staff_client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "Cliente frecuente, &lt;ojo&gt;" in page
    assert session.scalar(select(Message).where(Message.direction == Direction.OUTBOUND)) is None


def test_a_remedy_within_the_staff_limit_is_granted(
    staff_client: FlaskClient, session: Session, config: Config, frozen: object
) -> None:
    case = complaint(session, config)
    give(staff_client, case, "discount", "10", "10% en su proxima compra")
    remedy = session.scalars(select(Remedy)).one()
    assert (remedy.status, remedy.value, remedy.approved_by_id) == (
        RemedyStatus.GRANTED,
        Decimal("10.00"),
        None,
    )


def test_a_remedy_above_the_limit_asks_the_owner_who_approves_it(
    staff_client: FlaskClient,
    owner_client: FlaskClient,
    owner: User,
    session: Session,
    config: Config,
    frozen: object,
) -> None:
    case = complaint(session, config)
    give(staff_client, case, "refund", "300", "Devolucion parcial")
    remedy = session.scalars(select(Remedy)).one()
    assert remedy.status is RemedyStatus.REQUESTED
    assert "the owner has been asked" in staff_client.get(f"/cases/{case.id}").get_data(
        as_text=True
    )
    # Resolving waits for the owner's answer.
    submit(staff_client, f"/cases/{case.id}/resolve", {"outcome": "Devuelto"})
    fresh(session)
    assert session.get_one(Case, case.id).status is CaseStatus.OPEN
    assert "Remedies waiting for your approval" in owner_client.get("/inbox").get_data(as_text=True)
    refused = submit(staff_client, f"/remedies/{remedy.id}/decide", {"decision": "approve"})
    assert refused.status_code == 403
    submit(owner_client, f"/remedies/{remedy.id}/decide", {"decision": "approve"})
    fresh(session)
    remedy = session.scalars(select(Remedy)).one()
    assert (remedy.status, remedy.approved_by_id) == (RemedyStatus.GRANTED, owner.id)
    again = submit(owner_client, f"/remedies/{remedy.id}/decide", {"decision": "decline"})
    assert again.status_code == 302
    assert "already granted" in owner_client.get(f"/cases/{case.id}").get_data(as_text=True)


def test_an_invalid_remedy_says_what_is_wrong(
    staff_client: FlaskClient, session: Session, config: Config, frozen: object
) -> None:
    case = complaint(session, config)
    give(staff_client, case, "discount", "150", "mucho")
    page = staff_client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "a discount is a percentage: at most 100" in page
    assert session.scalars(select(Remedy)).all() == []


@pytest.mark.parametrize(
    ("kind", "value", "role", "allowed"),
    [
        (RemedyKind.DISCOUNT, "10", Role.STAFF, True),
        (RemedyKind.DISCOUNT, "10.5", Role.STAFF, False),
        (RemedyKind.REFUND, "1", Role.STAFF, False),
        (RemedyKind.REPLACEMENT, None, Role.STAFF, True),
        (RemedyKind.OTHER, None, Role.STAFF, False),
        (RemedyKind.REFUND, "5000", Role.OWNER, True),
    ],
)
def test_staff_limits(kind: RemedyKind, value: str | None, role: Role, allowed: bool) -> None:
    request = RemedyRequest(kind, "x", Decimal(value) if value else None)
    assert within_limit(request, role, defaults().remedies) is allowed


def test_resolving_resumes_held_follow_ups_and_plans_the_check(
    staff_client: FlaskClient, session: Session, config: Config, frozen: object
) -> None:
    case = complaint(session, config)
    held = session.scalars(select(FollowUp).where(FollowUp.status == FollowUpStatus.HELD)).all()
    assert held  # the complaint held Rosa's next follow-ups
    answer = submit(staff_client, f"/cases/{case.id}/resolve", {"outcome": "Tecnico cambio placa"})
    assert answer.status_code == 302
    fresh(session)
    resolved = session.get_one(Case, case.id)
    assert (resolved.status, resolved.outcome) == (CaseStatus.RESOLVED, "Tecnico cambio placa")
    assert not session.scalars(select(FollowUp).where(FollowUp.status == FollowUpStatus.HELD)).all()
    check = session.scalars(select(FollowUp).where(FollowUp.case_id == case.id)).one()
    page = staff_client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert f"{len(held)} follow-ups resumed" in page
    assert "whether it was solved" in page and check.status is FollowUpStatus.SCHEDULED
    assert "Answer the customer" not in page  # a resolved case takes no reply box


@pytest.mark.parametrize(
    "email, channel, said",
    [
        ("rosa@example.pe", Channel.EMAIL, "whether it was solved"),  # by email instead
        (None, None, "opted out of every channel we could ask on"),  # nothing announced
    ],
)
def test_the_check_after_a_case_goes_where_the_customer_still_consents(
    staff_client: FlaskClient,
    session: Session,
    config: Config,
    frozen: object,
    email: str | None,
    channel: Channel | None,
    said: str,
) -> None:
    case = complaint(session, config, email=email)
    customer = session.get_one(Customer, case.customer_id)
    opt_out(
        session,
        customer,
        channel=Channel.SMS,
        source=ConsentSource.STAFF,
        via="asked by phone",
        now=NOW,
        actor="test",
    )
    session.commit()
    submit(staff_client, f"/cases/{case.id}/resolve", {"outcome": "Tecnico cambio placa"})
    fresh(session)
    checks = session.scalars(select(FollowUp.channel).where(FollowUp.case_id == case.id)).all()
    assert checks == ([channel] if channel else [])
    assert said in staff_client.get(f"/cases/{case.id}").get_data(as_text=True)


def test_a_reply_queued_before_a_stop_is_not_sent(
    session: Session, config: Config, staff: User, frozen: object
) -> None:
    from scheduler.casework.staff_actions import reply_to_customer
    from scheduler.db import make_session_factory

    case = complaint(session, config)
    customer = session.get_one(Customer, case.customer_id)
    reply_to_customer(
        session, case, customer, user=staff, channel=Channel.SMS, body="Hola", subject=None, now=NOW
    )
    customer.sms_opt_out_at = NOW
    session.commit()
    sessions = make_session_factory(session.get_bind())  # type: ignore[arg-type]
    counts = dispatcher(sessions, config, lambda: NOW).queued.run_pass()
    fresh(session)
    reply = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)).one()
    assert counts["queued_skipped"] == 1 and reply.status == "failed"
    assert "opted out" in (reply.error_message or "")


def test_the_owners_are_asked_by_email_to_approve(
    staff_client: FlaskClient, owner: User, session: Session, config: Config, frozen: object
) -> None:
    case = complaint(session, config)
    give(staff_client, case, "replacement", "", "una lavadora nueva")  # allowed: nobody asked
    give(staff_client, case, "refund", "300", "Devolucion parcial")
    fresh(session)
    asked = session.scalars(
        select(Message).where(
            Message.case_id == case.id,
            Message.customer_id.is_(None),
            Message.to_address == owner.email,
        )
    ).all()
    assert len(asked) == 1 and asked[0].channel is Channel.EMAIL
    # The owner reads the admin in English: so does the email (the business's language is es).
    assert asked[0].subject == "A remedy to approve: refund 300.00: Devolucion parcial"
    assert f"/cases/{case.id}" in asked[0].body and "staff@example.com" in asked[0].body


@pytest.mark.parametrize(
    ("kind", "value", "problem"),
    [
        ("discount", "NaN", "needs a value of at least 0.01"),
        ("refund", "Infinity", "needs a value of at least 0.01"),
        ("refund", "0.000000001", "needs a value of at least 0.01"),
        ("refund", "99999999999", "at most 9999999999.99"),
        ("replacement", "5", "a replacement takes no value"),
    ],
)
def test_odd_remedy_values_are_refused_with_a_reason(
    staff_client: FlaskClient,
    session: Session,
    config: Config,
    frozen: object,
    kind: str,
    value: str,
    problem: str,
) -> None:
    case = complaint(session, config)
    give(staff_client, case, kind, value, "algo")
    assert problem in staff_client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert session.scalars(select(Remedy)).all() == []


def test_staff_limits_count_what_was_already_given(
    staff_client: FlaskClient, session: Session, config: Config, frozen: object
) -> None:
    case = complaint(session, config)
    give(staff_client, case, "discount", "6", "6% ahora")
    give(staff_client, case, "discount", "6", "6% mas")
    statuses = [r.status for r in session.scalars(select(Remedy).order_by(Remedy.id))]
    assert statuses == [RemedyStatus.GRANTED, RemedyStatus.REQUESTED]


def test_a_refused_resolve_keeps_the_outcome_and_the_request_can_be_withdrawn(
    staff_client: FlaskClient, session: Session, config: Config, frozen: object
) -> None:
    case = complaint(session, config)
    give(staff_client, case, "refund", "300", "Devolución parcial")
    refused = submit(staff_client, f"/cases/{case.id}/resolve", {"outcome": "Se devolvió todo"})
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "Se devolvió todo</textarea>" in page and "waits for the owner" in page
    remedy = session.scalars(select(Remedy)).one()
    assert submit(staff_client, f"/remedies/{remedy.id}/withdraw", {}).status_code == 302
    fresh(session)
    assert session.scalars(select(Remedy)).all() == []
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "remedy.withdraw")).one()
    assert entry.details["description"] == "Devolución parcial"
    done = submit(staff_client, f"/cases/{case.id}/resolve", {"outcome": "Se devolvió todo"})
    assert done.status_code == 302
    fresh(session)
    assert session.get_one(Case, case.id).status is CaseStatus.RESOLVED


def test_only_the_person_who_asked_withdraws_a_request(
    staff_client: FlaskClient,
    owner_client: FlaskClient,
    session: Session,
    config: Config,
    frozen: object,
) -> None:
    case = complaint(session, config)
    give(staff_client, case, "refund", "300", "Devolución parcial")
    remedy = session.scalars(select(Remedy)).one()
    answer = submit(owner_client, f"/remedies/{remedy.id}/withdraw", {})
    assert answer.status_code == 302
    page = owner_client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "only the person who asked can withdraw a request" in page
    fresh(session)
    assert session.get_one(Remedy, remedy.id).status is RemedyStatus.REQUESTED


def test_resolving_refuses_in_the_domain_while_a_remedy_waits(
    session: Session, config: Config, staff: User, frozen: object
) -> None:
    case = complaint(session, config)
    waiting_remedy(session, case, staff)
    with pytest.raises(CaseworkError, match="waits for the owner"):
        resolve_case(session, case, outcome="done", now=NOW, actor="test", config=config)
    with pytest.raises(CaseworkError, match="say how it was resolved"):
        resolve_case(session, case, outcome="  ", now=NOW, actor="test", config=config)
    assert case.status is CaseStatus.OPEN


def test_the_inbox_filter_is_in_the_url_and_pages_go_on_with_it(
    staff_client: FlaskClient,
    session: Session,
    config: Config,
    frozen: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("scheduler.casework.inbox.PAGE", 2)
    for n, name in enumerate(["Ana Uno", "Bea Dos", "Carla Tres"]):
        complaint(session, config, name=name, phone=f"+5191111111{n}", hours_ago=3 - n)
    complaint(session, config, name="Otro Asunto", phone="+51922222222", body="gracias, todo bien")
    first = staff_client.get("/inbox?q=lavadora&kind=objection")
    page = first.get_data(as_text=True)
    assert first.status_code == 200 and "3 cases match." in page
    assert "Ana Uno" in page and "Bea Dos" in page and "Carla Tres" not in page
    assert "Otro Asunto" not in page and 'value="lavadora"' in page
    following = re.search(r'href="([^"]+)" rel="next"', page)
    assert following is not None
    link = html.unescape(following.group(1))
    assert "q=lavadora" in link and "kind=objection" in link
    second = staff_client.get(link).get_data(as_text=True)
    assert "Carla Tres" in second and "Ana Uno" not in second and 'rel="next"' not in second
    assert "First cases" in second and "3 cases match." in second
    # A search counts its matches so far, then says "more than"; the whole inbox, every one.
    monkeypatch.setattr("scheduler.casework.inbox.COUNT_MOST", 2)
    monkeypatch.setattr("web.inbox.COUNT_MOST", 2)
    searched = staff_client.get("/inbox?q=lavadora").get_data(as_text=True)
    assert "More than 2 cases match." in searched and "Ana Uno" in searched
    assert "4 cases match." in staff_client.get("/inbox").get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("from=2026-13-01", "Opened from: "),
        ("from=2026-11-30&to=2026-11-01", "Opened from: "),
        ("to=yesterday", "Opened until: "),
        ("product=NOPE", "Product: no product has the SKU NOPE."),
        ("kind=rude", "Kind: rude is not a kind of case."),
        ("assignee=boss", "Assigned to: choose anyone, me, nobody or someone."),
        ("channel=fax", "Channel: choose SMS, email or WhatsApp."),
        ("overdue=yes", "Overdue: tick it, or leave it out."),
        ("q=" + "x" * 201, "Search: at most 200 characters."),
        ("q=a%00b", "Search: contains the control character U+0000."),
        ("after=99.x", "Page: this link is not a page of the inbox."),
        ("after=99.2147483648", "Page: this link is not a page of the inbox."),
        ("after=" + "9" * 20 + ".1", "Page: this link is not a page of the inbox."),
    ],
)
def test_an_unreadable_filter_is_a_400_that_says_which_field(
    staff_client: FlaskClient, session: Session, config: Config, query: str, says: str
) -> None:
    complaint(session, config)
    answer = staff_client.get(f"/inbox?{query}&q2=kept")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and html.escape(says, quote=False) in page
    assert "Rosa Quispe" not in page  # no list under a filter that could not be read


def test_the_title_and_the_poll_count_the_cases_waiting(
    staff_client: FlaskClient, session: Session, config: Config
) -> None:
    complaint(session, config)
    answered = complaint(session, config, name="Ya Respondida", phone="+51933333333")
    answered.first_responded_at = answered.opened_at
    session.commit()
    page = staff_client.get("/inbox").get_data(as_text=True)
    assert "<title>(1) Inbox" in page and 'data-open="2"' in page
    assert f'data-newest="{answered.id}"' in page
    assert staff_client.get("/inbox/waiting.json").get_json() == {
        "open": 2,
        "waiting": 1,
        "mine": 0,
        "newest": answered.id,
    }


def test_the_poll_is_behind_the_log_in(client: FlaskClient, owner: User) -> None:
    answer = client.get("/inbox/waiting.json")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
