"""One action on many cases from the inbox: each case changed and recorded on its own, a case
that refuses reported while the others go on (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.casework.bulk import MOST, BulkAction, on_cases
from scheduler.casework.staff_actions import CaseworkError
from scheduler.config import Config
from scheduler.lifecycle import CaseStatus
from scheduler.models import AuditEntry, Case, CaseNote, User
from tests.browsing import fresh, submit
from tests.complaints import complaint, frozen, waiting_remedy
from tests.factories import NOW

__all__ = ["frozen"]  # a fixture of tests.complaints

LATER = NOW + timedelta(days=2)


@pytest.fixture
def staff_client(frozen: object, staff_client: FlaskClient) -> FlaskClient:
    return staff_client


def three_cases(session: Session, config: Config) -> list[Case]:
    return [
        complaint(session, config, name=f"Cliente {n}", phone=f"+5198765432{n}") for n in range(3)
    ]


def audited(session: Session, action: str) -> list[int]:
    rows = session.scalars(
        select(AuditEntry.entity_id).where(AuditEntry.action == action).order_by(AuditEntry.id)
    )
    return [entity for entity in rows if entity is not None]


def test_each_case_is_assigned_and_recorded_on_its_own(
    session: Session, config: Config, staff: User, owner: User, frozen: object
) -> None:
    cases = three_cases(session, config)
    ids = [case.id for case in cases]
    done = on_cases(
        session, ids, BulkAction.ASSIGN, user=owner, assignee=staff, config=config, now=LATER
    )
    session.commit()
    assert done.done == sorted(ids) and done.refused == {}
    assert {session.get_one(Case, i).assignee_id for i in ids} == {staff.id}
    assert audited(session, "case.assign") == sorted(ids)


def test_a_case_that_refuses_is_reported_and_the_others_are_resolved(
    session: Session, config: Config, staff: User, frozen: object
) -> None:
    first, waiting, third = three_cases(session, config)
    waiting_remedy(session, waiting, staff)
    session.commit()
    done = on_cases(
        session,
        [third.id, first.id, waiting.id, 99_999],
        BulkAction.RESOLVE,
        user=staff,
        text="Cambiamos el equipo a todos",
        config=config,
        now=LATER,
    )
    session.commit()
    assert done.done == [first.id, third.id]
    assert done.refused == {
        waiting.id: "a remedy still waits for the owner's answer: withdraw it or ask the owner",
        99_999: "no such case",
    }
    fresh(session)
    statuses = {case.id: session.get_one(Case, case.id).status for case in (first, waiting, third)}
    assert statuses == {
        first.id: CaseStatus.RESOLVED,
        waiting.id: CaseStatus.OPEN,
        third.id: CaseStatus.RESOLVED,
    }
    assert session.get_one(Case, first.id).outcome == "Cambiamos el equipo a todos"
    assert audited(session, "case.resolve") == [first.id, third.id]
    again = on_cases(
        session,
        [first.id],
        BulkAction.RESOLVE,
        user=staff,
        text="otra vez",
        config=config,
        now=LATER,
    )
    assert again.refused == {first.id: "the case is already resolved"}


def test_one_note_each_and_nothing_for_an_action_that_cannot_be_done(
    session: Session, config: Config, staff: User, frozen: object
) -> None:
    cases = three_cases(session, config)
    ids = [case.id for case in cases]
    wrongs: list[tuple[list[int], str, str]] = [
        (ids, "   ", "the note is empty"),
        ([], "hola", "choose at least one case"),
        (list(range(1, MOST + 2)), "hola", f"at most {MOST} cases at once"),
    ]
    for case_ids, text, why in wrongs:
        with pytest.raises(CaseworkError, match=why):
            on_cases(
                session, case_ids, BulkAction.NOTE, user=staff, text=text, config=config, now=LATER
            )
    assert session.scalar(select(func.count()).select_from(CaseNote)) == 0
    done = on_cases(
        session, ids, BulkAction.NOTE, user=staff, text="Llamar mañana", config=config, now=LATER
    )
    session.commit()
    assert done.done == sorted(ids)
    notes = session.execute(select(CaseNote.case_id, CaseNote.body).order_by(CaseNote.case_id))
    assert [tuple(note) for note in notes] == [(i, "Llamar mañana") for i in sorted(ids)]


def test_the_inbox_acts_on_the_ticked_cases_and_comes_back_to_the_same_view(
    staff_client: FlaskClient, session: Session, config: Config, staff: User, owner: User
) -> None:
    cases = three_cases(session, config)
    page = staff_client.get("/inbox?q=lavadora&kind=objection").get_data(as_text=True)
    assert 'form="bulk"' in page and 'name="view" value="q=lavadora&amp;kind=objection"' in page
    answer = submit(
        staff_client,
        "/inbox/bulk",
        {
            "case": [str(cases[0].id), str(cases[2].id)],
            "action": "assign",
            "assignee": str(owner.id),
            "view": "q=lavadora&kind=objection&next=//evil.example",
        },
    )
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/inbox?q=lavadora&kind=objection"
    shown = staff_client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "2 cases assigned." in shown
    fresh(session)
    assert [session.get_one(Case, case.id).assignee_id for case in cases] == [
        owner.id,
        None,
        owner.id,
    ]
    refused = submit(
        staff_client, "/inbox/bulk", {"case": [str(cases[1].id)], "action": "resolve", "text": ""}
    )
    assert refused.headers["Location"] == "/inbox"
    assert "say how it was resolved" in staff_client.get("/inbox").get_data(as_text=True)
    nonsense = submit(staff_client, "/inbox/bulk", {"case": ["x"], "action": "explode"})
    assert nonsense.status_code == 302
    assert "Choose the cases and what to do" in staff_client.get("/inbox").get_data(as_text=True)


@pytest.mark.parametrize(
    "data",
    [
        {"case": ["9" * 30], "action": "note", "text": "x"},
        {"case": ["2147483648"], "action": "note", "text": "x"},
        {"case": ["-1"], "action": "note", "text": "x"},
        {"case": ["１２"], "action": "note", "text": "x"},  # digits, but not ASCII ones
        {"case": ["1"], "action": "assign", "assignee": "9" * 30},
    ],
)
def test_numbers_no_row_could_have_are_refused_not_looked_up(
    staff_client: FlaskClient, session: Session, config: Config, data: dict[str, object]
) -> None:
    """A number past the ids' 32 bits made PostgreSQL refuse the query (a 500)."""
    complaint(session, config)
    answer = submit(staff_client, "/inbox/bulk", data)
    assert answer.status_code == 302
    page = staff_client.get("/inbox").get_data(as_text=True)
    assert "Choose the cases and what to do" in page or "Choose somebody." in page
