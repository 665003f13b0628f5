"""Someone is always told of a case: the owners by default, each free to turn it off, and the
admin says loudly when nobody would be."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from scheduler.accounts import add_user
from scheduler.casework.notices import escalate_overdue
from scheduler.casework.recipients import recipients
from scheduler.config import Config
from scheduler.lifecycle import Role
from scheduler.models import Message, User
from tests.browsing import fresh, submit
from tests.complaints import DUE, open_case
from tests.dispatching import setup_sales
from tests.factories import sale_input

AT = datetime(2026, 11, 1, tzinfo=UTC)


def _login(session: Session, email: str, role: Role = Role.OWNER) -> User:
    return add_user(
        session, email=email, role=role, password="a long password", now=AT, actor="test"
    )


def test_owners_are_told_unless_they_turn_it_off(session: Session, config: Config) -> None:
    ana = _login(session, "ana@tienda.pe")
    _login(session, "luis@tienda.pe", Role.STAFF)
    gone = _login(session, "old@tienda.pe")
    gone.active = False
    told = recipients(session, config)
    assert (told.new_case, told.overdue) == (("ana@tienda.pe",), ("ana@tienda.pe",))
    ana.notify_cases = False
    told = recipients(session, config)
    assert told.nobody_of_new_cases and told.overdue == ()


def test_the_lists_add_people_and_escalate_to_replaces_them_for_overdue_cases(
    session: Session, config: Config
) -> None:
    _login(session, "ana@tienda.pe")
    listed = config.replace(cases={"notify_emails": ["ANA@tienda.pe", "jose@tienda.pe"]})
    assert recipients(session, listed).new_case == ("ANA@tienda.pe", "jose@tienda.pe")
    escalating = listed.replace(cases={"escalate_to": ["duena@tienda.pe"]})
    assert recipients(session, escalating).overdue == ("duena@tienda.pe",)


def test_a_default_install_tells_the_owner_of_new_and_overdue_cases(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"))
    with sessions.begin() as session:
        _login(session, "duena@tienda.pe")
    open_case(sessions, config)
    with sessions.begin() as session:
        assert escalate_overdue(session, config=config, now=DUE) == 1
    with sessions() as session:
        subjects = session.scalars(
            select(Message.subject)
            .where(Message.to_address == "duena@tienda.pe")
            .order_by(Message.created_at, Message.id)  # PostgreSQL keeps no order of its own
        ).all()
    assert len(subjects) == 2  # the new case, then the case past its deadline
    assert subjects[0] is not None and subjects[0].startswith("Nuevo caso")


def test_the_home_and_settings_pages_warn_when_nobody_would_be_told(
    owner_client: FlaskClient, owner: User, session: Session
) -> None:
    warning = "Nobody would be told of a new complaint"
    assert warning not in owner_client.get("/").get_data(as_text=True)
    form = {"locale": "en"}  # the box unticked: no more case emails for this owner
    assert submit(owner_client, "/account", form, page="/account").status_code == 302
    fresh(session)
    assert session.get_one(User, owner.id).notify_cases is False
    assert warning in owner_client.get("/").get_data(as_text=True)
    assert warning in owner_client.get("/admin/settings").get_data(as_text=True)
    submit(owner_client, "/account", {"locale": "en", "notify_cases": "y"}, page="/account")
    assert warning not in owner_client.get("/").get_data(as_text=True)


def test_staff_saving_their_account_changes_nothing_about_case_emails(
    staff_client: FlaskClient, staff: User, session: Session
) -> None:
    assert submit(staff_client, "/account", {"locale": "es"}, page="/account").status_code == 302
    fresh(session)
    assert session.get_one(User, staff.id).notify_cases is True
