"""Saved answers: kept per language by owners and staff (checked in the templates' sandbox,
audited), and inserted into a case's reply box written for its customer, after what the
person typed, to be edited before it goes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from scheduler.config import Config
from scheduler.lifecycle import Direction
from scheduler.models import AuditEntry, Case, Message, SavedAnswer, User
from tests.browsing import fresh, submit
from tests.complaints import complaint, frozen
from tests.factories import NOW

__all__ = ["frozen"]
SORRY = (
    "Hola {{ customer.first_name }}, sentimos lo de {{ product.name }}. "
    "Te llamamos {{ deadline }}. {{ business.name }}"
)


@pytest.fixture
def staff_client(frozen: object, staff_client: FlaskClient) -> FlaskClient:
    return staff_client


def _keep(client: FlaskClient, url: str = "/answers/new", **fields: str) -> TestResponse:
    form = {"title": "Disculpa", "locale": "es", "body": SORRY} | fields
    return submit(client, url, form, page="/answers/new")


def _insert(client: FlaskClient, case: Case, answer: object, **typed: str) -> TestResponse:
    form = {"channel": "sms", "subject": "", "body": "", "answer": str(answer)} | typed
    return submit(client, f"/cases/{case.id}/draft", form, page=f"/cases/{case.id}")


def _box(page: str) -> str:
    """The reply box's text, as the browser shows it."""
    box = page.split('name="body"', 1)[1].split(">", 1)[1].split("</textarea>", 1)[0]
    return box.replace("&#39;", "'").replace("&amp;", "&").strip()


def test_staff_keep_an_answer_and_each_change_is_audited(
    staff_client: FlaskClient, session: Session, staff: User
) -> None:
    assert _keep(staff_client).status_code == 302
    listed = staff_client.get("/answers").get_data(as_text=True)
    assert "Disculpa" in listed and "staff@example.com" in listed
    answer = session.scalars(select(SavedAnswer)).one()
    assert (answer.locale, answer.body, answer.updated_by_id) == ("es", SORRY, staff.id)
    changed = _keep(staff_client, f"/answers/{answer.id}", title="Perdón", locale="es")
    assert changed.status_code == 302
    assert (
        submit(staff_client, f"/answers/{answer.id}/delete", {}, page="/answers").status_code == 302
    )
    fresh(session)
    assert session.scalars(select(SavedAnswer)).all() == []
    actions = session.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.entity_type == "saved_answer")
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["answer.add", "answer.edit", "answer.delete"]


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"title": " "}, "title", "is required"),
        ({"title": "x" * 101}, "title", "at most 100 characters"),
        ({"locale": "fr"}, "locale", "not supported"),
        ({"body": ""}, "body", "is required"),
        ({"body": "y" * 1601}, "body", "at most 1600 characters"),
        ({"body": "Hola\x00"}, "body", "U+0000"),
        ({"body": "Hola {{ customer.nombre }}"}, "body", "customer.first_name"),
        ({"body": "{{ ''.__class__.__mro__ }}"}, "body", "unsafe"),
        ({"body": "{% for %}"}, "body", "line 1"),
    ],
)
def test_an_answer_that_cannot_be_kept_saves_nothing_and_says_which_field(
    staff_client: FlaskClient, session: Session, fields: dict[str, str], field: str, says: str
) -> None:
    response = _keep(staff_client, **fields)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    marked = page.split(f'name="{field}"', 1)[1].split("</label>", 1)[0]
    assert says in marked.replace("&#39;", "'")
    fresh(session)
    assert session.scalars(select(SavedAnswer)).all() == []


def test_one_title_per_language(staff_client: FlaskClient, session: Session) -> None:
    assert _keep(staff_client).status_code == 302
    again = _keep(staff_client)
    assert again.status_code == 422 and "already has this title" in again.get_data(as_text=True)
    assert _keep(staff_client, locale="en", body="Hi {{ customer.first_name }}").status_code == 302
    fresh(session)
    assert len(session.scalars(select(SavedAnswer)).all()) == 2


def test_a_rename_to_a_title_taken_is_refused_and_keeps_the_answer(
    staff_client: FlaskClient, session: Session
) -> None:
    assert _keep(staff_client).status_code == 302
    assert (
        _keep(staff_client, title="Gracias", body="Gracias, {{ customer.first_name }}").status_code
        == 302
    )
    thanks = session.scalars(select(SavedAnswer).where(SavedAnswer.title == "Gracias")).one()
    renamed = _keep(staff_client, f"/answers/{thanks.id}", title="Disculpa")
    assert renamed.status_code == 422
    assert "already has this title" in renamed.get_data(as_text=True)
    fresh(session)
    assert sorted(session.scalars(select(SavedAnswer.title)).all()) == ["Disculpa", "Gracias"]


def test_an_inserted_answer_is_written_for_the_customer_after_what_was_typed(
    staff_client: FlaskClient, session: Session, config: Config
) -> None:
    case = complaint(session, config)
    assert _keep(staff_client).status_code == 302
    answer = session.scalars(select(SavedAnswer)).one()
    page = _insert(staff_client, case, answer.id, body="Buenos días.", channel="sms")
    assert page.status_code == 200
    box = _box(page.get_data(as_text=True))
    assert box == (
        "Buenos días.\n\nHola Rosa, sentimos lo de Lavadora. "
        f"Te llamamos hoy antes de las 14:00. {config.business.name}"
    )
    fresh(session)
    assert session.scalar(select(Message).where(Message.direction == Direction.OUTBOUND)) is None
    sent = submit(
        staff_client,
        f"/cases/{case.id}/reply",
        {"channel": "sms", "subject": "", "body": box.replace("hoy", "hoy mismo")},
        page=f"/cases/{case.id}",
    )
    assert sent.status_code == 302
    fresh(session)
    reply = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)).one()
    assert "hoy mismo antes de las 14:00" in reply.body


def test_a_deadline_already_past_is_never_promised(
    staff_client: FlaskClient, session: Session, config: Config, frozen: FrozenDateTimeFactory
) -> None:
    """Past the case's first-answer deadline, `deadline` is the same allowance from now: four
    opening hours from 15:00 on Wednesday in Lima (open until 18:00) is Thursday at 10:00."""
    case = complaint(session, config)
    assert _keep(staff_client, body="{{ deadline }}").status_code == 302
    answer = session.scalars(select(SavedAnswer)).one()
    frozen.move_to(NOW + timedelta(days=2, hours=5))
    page = _insert(staff_client, case, answer.id).get_data(as_text=True)
    assert _box(page) == "mañana antes de las 10:00"


@pytest.mark.parametrize("chosen", ["", "abc", "99999", "9" * 30])
def test_inserting_no_answer_keeps_what_was_typed_and_says_so(
    staff_client: FlaskClient, session: Session, config: Config, chosen: str
) -> None:
    case = complaint(session, config)
    response = _insert(staff_client, case, chosen, body="Lo que escribí")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Choose a saved answer to insert." in page and _box(page) == "Lo que escribí"


def test_an_answer_that_no_longer_renders_is_refused_with_its_reason(
    staff_client: FlaskClient, session: Session, config: Config
) -> None:
    """Kept before a variable it uses was renamed, say: the person is told, nothing is lost."""
    case = complaint(session, config)
    broken = SavedAnswer(title="Vieja", locale="es", body="{{ cliente }}", updated_at=NOW)
    session.add(broken)
    session.commit()
    response = _insert(staff_client, case, broken.id, body="Lo que escribí")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "cliente" in page and "Vieja" in page and _box(page) == "Lo que escribí"
