"""What goes out next: the waiting follow-ups, filtered and paged; pausing, resuming and
cancelling those ticked (each recorded); a cadence or the whole business paused and resumed
without touching the plan, which the worker obeys."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from scheduler.config import Config
from scheduler.defaults import install_defaults
from scheduler.lifecycle import FollowUpStatus
from scheduler.models import AuditEntry, Cadence, CadenceStep, FollowUp
from scheduler.sending.pauses import PauseError, change_follow_ups, pause, resume
from scheduler.sending.sales import record_sale
from tests.browsing import fresh, submit
from tests.dispatching import DAY1, Clock, dispatcher, follow_up, setup_sales
from tests.factories import NOW, sale_input


@pytest.fixture
def shop(session: Session, config: Config) -> Iterator[Session]:
    """Two sales at NOW (a washer, a kitchen), by the default cadence; the clock at NOW. Only
    the first customer has an email, for the day-90 one."""
    install_defaults(session, NOW)
    for number, sku, name, phone, email in (
        (1, "LAV-9", "Lavadora", "+51987654321", "uno@example.pe"),
        (2, "COC-4", "Cocina", "+51911222333", None),
    ):
        record_sale(
            session,
            sale_input(
                f"S-{number}",
                product_sku=sku,
                product_name=name,
                phone=phone,
                email=email,
                customer_name=f"Cliente {number}",
            ),
            config=config,
            now=NOW,
            actor="test",
        )
    session.commit()
    with freeze_time(NOW):
        yield session


def _due(session: Session) -> list[tuple[int, str, str]]:
    rows = session.execute(
        select(FollowUp.id, CadenceStep.key, FollowUp.due_at)
        .join(CadenceStep, CadenceStep.id == FollowUp.step_id)
        .where(FollowUp.status == FollowUpStatus.SCHEDULED)
        .order_by(FollowUp.due_at, FollowUp.id)
    ).all()
    return [(row_id, key, due.isoformat()) for row_id, key, due in rows]


def _listed(page: str) -> list[tuple[str, str]]:
    """The follow-ups a page lists: each row's customer and step."""
    cells = r'>(Cliente \d)</a>.*?</td>\s*<td>[^<]*<br><span class="meta">([\w-]+)</span>'
    return re.findall(cells, page, re.S)


def test_the_next_days_soonest_first_with_filters(shop: Session, owner_client: FlaskClient) -> None:
    page = owner_client.get("/upcoming").get_data(as_text=True)
    assert "4 follow-ups waiting" in page  # day 1 and day 7 of each sale
    listed = _listed(page)
    assert [step for _name, step in listed] == ["day1-thanks"] * 2 + ["day7-check-in"] * 2
    month = owner_client.get("/upcoming?days=30").get_data(as_text=True)
    assert "6 follow-ups waiting" in month  # and day 21
    kitchen = owner_client.get("/upcoming?days=30&product=COC-4").get_data(as_text=True)
    assert {name for name, _step in _listed(kitchen)} == {"Cliente 2"}
    step = shop.scalars(select(CadenceStep).where(CadenceStep.key == "day7-check-in")).one()
    one_step = owner_client.get(f"/upcoming?step={step.id}").get_data(as_text=True)
    assert [s for _n, s in _listed(one_step)] == ["day7-check-in"] * 2
    email = owner_client.get("/upcoming?days=366&channel=email").get_data(as_text=True)
    assert _listed(email) == [("Cliente 1", "day90-usage")]
    other = Cadence(name="Otra", created_at=NOW, updated_at=NOW)
    shop.add(other)
    shop.commit()
    assert "No follow-up waiting matches" in owner_client.get(
        f"/upcoming?cadence={other.id}"
    ).get_data(as_text=True)


def test_the_count_stops_at_its_bound(
    shop: Session, owner_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for where in ("scheduler.sending.upcoming.COUNT_MOST", "web.upcoming.COUNT_MOST"):
        monkeypatch.setattr(where, 3)
    page = owner_client.get("/upcoming").get_data(as_text=True)
    assert "More than 3 follow-ups waiting" in page and len(_listed(page)) == 4
    exact = owner_client.get("/upcoming?product=COC-4").get_data(as_text=True)
    assert "2 follow-ups waiting" in exact


def test_pages_by_keyset(
    shop: Session, owner_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("scheduler.sending.upcoming.PAGE", 3)
    url, seen = "/upcoming?days=366", []
    while url:
        page = owner_client.get(url).get_data(as_text=True)
        seen += _listed(page)
        following = re.search(r'href="(/upcoming\?after=[^"]+)" rel="next"', page)
        url = following.group(1).replace("&amp;", "&") if following else ""
    assert len(seen) == 8 and len(set(seen)) == 8


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("days=0", "Days:"),
        ("days=367", "Days:"),
        ("days=x", "Days:"),
        ("cadence=uno", "Cadence:"),
        ("step=99999999999", "Step:"),
        ("channel=fax", "Channel:"),
        ("product=NOPE", "Product:"),
        ("product=LAV%00", "Product:"),
        ("paused=maybe", "Paused:"),
        ("after=1.x", "Page:"),
    ],
)
def test_a_filter_that_cannot_be_read_is_a_400_naming_it(
    shop: Session, staff_client: FlaskClient, query: str, field: str
) -> None:
    response = staff_client.get(f"/upcoming?{query}")
    assert response.status_code == 400 and field in response.get_data(as_text=True)


def _change(client: FlaskClient, ids: list[int], action: str, reason: str = "") -> TestResponse:
    form = {"follow_up": [str(i) for i in ids], "action": action, "reason": reason}
    return submit(client, "/upcoming/change", form | {"view": "days=30"}, page="/upcoming")


def test_pause_resume_and_cancel_those_ticked_each_recorded(
    shop: Session, staff_client: FlaskClient
) -> None:
    ids = list(
        shop.scalars(
            select(FollowUp.id)
            .where(FollowUp.status == FollowUpStatus.SCHEDULED)
            .order_by(FollowUp.due_at, FollowUp.id)
        ).all()
    )
    before = _due(shop)
    refused = _change(staff_client, ids[:2], "pause")
    assert refused.status_code == 302
    assert "say why" in staff_client.get("/upcoming").get_data(as_text=True)
    done = _change(staff_client, ids[:2], "pause", "el cliente viaja")
    assert done.headers["Location"].endswith("/upcoming?days=30")
    page = staff_client.get("/upcoming?paused=yes").get_data(as_text=True)
    assert "2 follow-ups paused." in page and len(_listed(page)) == 2
    again = _change(staff_client, [ids[0], ids[2]], "pause", "otra vez")
    assert again.status_code == 302
    flashes = staff_client.get("/upcoming").get_data(as_text=True)
    assert (
        "1 follow-up paused." in flashes and f"Follow-up {ids[0]}: it is paused already" in flashes
    )
    _change(staff_client, [ids[1]], "resume")
    _change(staff_client, [ids[3]], "cancel", "devolvió el producto")
    fresh(shop)
    assert shop.get_one(FollowUp, ids[3]).status is FollowUpStatus.CANCELLED
    assert (
        shop.get_one(FollowUp, ids[3]).status_reason
        == "cancelled by a person: devolvió el producto"
    )
    paused = shop.scalars(select(FollowUp.id).where(FollowUp.paused_at.is_not(None))).all()
    assert sorted(paused) == sorted([ids[0], ids[2]])
    assert _due(shop) == [row for row in before if row[0] != ids[3]]  # the plan, as it was
    actions = shop.execute(
        select(AuditEntry.action, AuditEntry.entity_id, AuditEntry.details)
        .where(AuditEntry.entity_type == "follow_up")
        .order_by(AuditEntry.id)
    ).all()
    assert [(action, entity) for action, entity, _details in actions] == [
        ("follow_up.pause", ids[0]),
        ("follow_up.pause", ids[1]),
        ("follow_up.pause", ids[2]),
        ("follow_up.resume", ids[1]),
        ("follow_up.cancel", ids[3]),
    ]
    assert actions[0][2] == {"reason": "el cliente viaja"}


def test_too_many_or_none_ticked_is_refused_whole(shop: Session, staff_client: FlaskClient) -> None:
    _change(staff_client, [], "pause", "x")
    assert "tick at least one follow-up" in staff_client.get("/upcoming").get_data(as_text=True)
    _change(staff_client, list(range(1, 202)), "pause", "x")
    assert "at most 200 follow-ups at once" in staff_client.get("/upcoming").get_data(as_text=True)
    _change(staff_client, [1], "delete", "x")
    assert "choose pause, resume or cancel" in staff_client.get("/upcoming").get_data(as_text=True)


def test_only_owners_pause_a_cadence_or_the_business(
    shop: Session, staff_client: FlaskClient
) -> None:
    form = {"cadence": "", "reason": "feriado"}
    assert submit(staff_client, "/upcoming/pause", form, page="/upcoming").status_code == 403
    assert submit(staff_client, "/upcoming/resume", {}, page="/upcoming").status_code == 403


def test_the_owner_pauses_the_business_then_a_cadence_and_resumes(
    shop: Session, owner_client: FlaskClient
) -> None:
    form = {"cadence": "", "reason": "feriado largo", "view": "days=30"}
    assert submit(owner_client, "/upcoming/pause", form, page="/upcoming").status_code == 302
    page = owner_client.get("/upcoming").get_data(as_text=True)
    assert "Every follow-up is paused" in page and "feriado largo" in page and "all paused" in page
    submit(owner_client, "/upcoming/pause", form, page="/upcoming")
    assert "already paused" in owner_client.get("/upcoming").get_data(as_text=True)
    submit(owner_client, "/upcoming/resume", {}, page="/upcoming")
    cadence = shop.scalars(select(Cadence)).one()
    by_cadence = {"cadence": str(cadence.id), "reason": "retiro de producto"}
    submit(owner_client, "/upcoming/pause", by_cadence, page="/upcoming")
    page = owner_client.get("/upcoming").get_data(as_text=True)
    assert f"The follow-ups of {cadence.name} are paused" in page and "cadence paused" in page
    assert "Every follow-up is paused" not in page
    submit(owner_client, "/upcoming/resume", {"cadence": str(cadence.id)}, page="/upcoming")
    page = owner_client.get("/upcoming").get_data(as_text=True)
    assert "are paused" not in page and "cadence paused" not in page
    fresh(shop)
    actions = shop.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.action.startswith("sending."))
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["sending.pause", "sending.resume", "sending.pause", "sending.resume"]


def test_the_worker_sends_nothing_paused_and_all_once_resumed(
    engine: Engine, config: Config
) -> None:
    """Paused on Monday; on Tuesday at 10:00 the day-1 thank-yous are due. The business's
    pause holds both, a cadence's pause too, a follow-up's own pause holds that one; resumed,
    what is due goes, and a thank-you that fell three days late meanwhile is skipped with why."""
    sessions = setup_sales(
        engine, config, sale_input("S-1"), sale_input("S-2", phone="+51911222333")
    )
    clock = Clock(DAY1)
    with sessions.begin() as session:
        pause(session, None, "feriado", now=NOW, actor="user:1")
    assert dispatcher(sessions, config, clock).run_pass()["claimed"] == 0
    with sessions.begin() as session:
        resume(session, None, now=NOW, actor="user:1")
        pause(session, session.scalars(select(Cadence)).one(), "retiro", now=NOW, actor="user:1")
    assert dispatcher(sessions, config, clock).run_pass()["claimed"] == 0
    with sessions.begin() as session:
        resume(session, session.scalars(select(Cadence)).one(), now=NOW, actor="user:1")
        held = follow_up(session, "day1-thanks", "S-2")
        change_follow_ups(session, [held.id], "pause", "viaja", now=NOW, actor="user:1")
    summary = dispatcher(sessions, config, clock).run_pass()
    assert (summary["claimed"], summary["sent"]) == (1, 1)
    with sessions.begin() as session:
        held = follow_up(session, "day1-thanks", "S-2")
        assert (held.status, held.paused_at) == (FollowUpStatus.SCHEDULED, NOW)
        change_follow_ups(session, [held.id], "resume", None, now=NOW, actor="user:1")
    clock.advance(days=3)
    summary = dispatcher(sessions, config, clock).run_pass()
    assert summary["skipped"] >= 1
    with sessions() as session:
        late = follow_up(session, "day1-thanks", "S-2")
        assert late.status is FollowUpStatus.SKIPPED
        assert late.status_reason == "72.0 h late when its turn came (grace 48.0 h)"


def test_two_pauses_of_one_scope_at_once_make_one(session: Session, config: Config) -> None:
    install_defaults(session, NOW)
    pause(session, None, "feriado", now=NOW, actor="user:1")
    with pytest.raises(PauseError, match="already paused"):
        pause(session, None, "otra vez", now=NOW, actor="user:2")
    with pytest.raises(PauseError, match="not paused"):
        resume(session, session.scalars(select(Cadence)).one(), now=NOW, actor="user:1")
    with pytest.raises(PauseError, match="say why"):
        pause(session, session.scalars(select(Cadence)).one(), "  ", now=NOW, actor="user:1")
