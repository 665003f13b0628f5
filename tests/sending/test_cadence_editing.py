"""Owners editing cadences: steps checked as a whole, pending follow-ups re-planned."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.casework.cases import open_case_for, resolve_case
from scheduler.config import Config
from scheduler.defaults import install_defaults
from scheduler.lifecycle import Anchor, Channel, Direction, FollowUpStatus
from scheduler.models import AuditEntry, Cadence, Customer, FollowUp, Message, Product, Sale
from scheduler.sending.cadence_editing import (
    CadenceError,
    CadenceInput,
    StepInput,
    check_cadence,
    save_cadence,
)
from scheduler.sending.sales import record_sale
from tests.browsing import fresh, submit
from tests.factories import NOW, sale_input
from web.admin.cadences import _as_input, timeline

TEMPLATES = {("thanks", "sms"), ("check_in", "sms"), ("review_request", "sms")}


def step(key: str, days: str = "1", **changes: object) -> StepInput:
    fields: dict[str, object] = {
        "key": key,
        "anchor": "sale",
        "offset_days": days,
        "offset_hours": "",
        "channel": "sms",
        "template_name": "thanks",
        "condition": "",
    }
    fields.update(changes)
    return StepInput(**fields)  # type: ignore[arg-type]


def test_check_names_every_problem_by_row() -> None:
    edit = CadenceInput(
        "",
        "",
        True,
        [
            step("Day 1"),
            step("day7"),
            step("day7", "8"),
            step("late", "-1"),
            step("review", "0", anchor="score"),
            step("odd", "1", condition="mood > 3"),
            step("mail", channel="email"),
            step("far", "2000"),
            step("huge", "1e10"),
            step("nan", "inf"),
        ],
    )
    assert check_cadence(edit, TEMPLATES) == {
        "name": "a cadence needs a name",
        "steps.0.key": "lower-case letters, digits and dashes, such as day7-check-in",
        "steps.2.key": "already used by step 2",
        "steps.3.offset": "a step cannot come before the sale",
        "steps.4.condition": "a step after a score needs one, such as score >= 9",
        "steps.5.condition": "condition 'mood > 3': unknown fact 'mood' (known: score)",
        "steps.6.template_name": "no email template called 'thanks'",
        "steps.7.offset": "at most 1095 days from its anchor",
        "steps.8.offset": "at most 1095 days from its anchor",
        "steps.9.offset": "days must be a number, such as 7 or -14",
    }


@pytest.mark.parametrize("answer", ["case_ack", "keyword_opt_out", "keyword_use_start"])
def test_a_step_cannot_use_a_template_that_answers_a_customer(answer: str) -> None:
    edit = CadenceInput("Otra", "", True, [step("day1", template_name=answer)])
    assert check_cadence(edit, TEMPLATES | {(answer, "sms")}) == {
        "steps.0.template_name": "this template answers a customer who wrote to us: a step "
        "cannot use it"
    }


def test_the_editor_offers_no_answer_templates(owner_client: FlaskClient, session: Session) -> None:
    install_defaults(session, NOW)
    session.commit()
    page = owner_client.get("/admin/cadences/new").get_data(as_text=True)
    assert "check_in" in page and "keyword_opt_out" not in page and "case_ack" not in page


def test_a_good_cadence_has_no_problems() -> None:
    edit = CadenceInput(
        "Cocinas",
        "cocinas",
        True,
        [
            step("day1"),
            step(
                "review",
                "0",
                offset_hours="2",
                anchor="score",
                template_name="review_request",
                condition="score >= 9",
            ),
            step("renewal", "-14", anchor="renewal", template_name="check_in"),
        ],
    )
    assert check_cadence(edit, TEMPLATES) == {}


@pytest.fixture
def planned(session: Session, config: Config) -> Iterator[Sale]:
    install_defaults(session, NOW)
    sale, _new = record_sale(session, sale_input(), config=config, now=NOW, actor="test")
    session.commit()
    with freeze_time(NOW):
        yield sale


def _default(session: Session) -> Cadence:
    return session.scalars(select(Cadence).where(Cadence.is_default)).one()


def _due(session: Session, sale: Sale) -> dict[str, tuple[FollowUpStatus, object]]:
    rows = session.scalars(select(FollowUp).where(FollowUp.sale_id == sale.id)).all()
    return {row.step.key: (row.status, row.due_at) for row in rows}


def test_editing_the_default_replans_its_pending_follow_ups(
    planned: Sale, session: Session, config: Config
) -> None:
    cadence = _default(session)
    steps = [_as_input(row) for row in cadence.steps if row.key != "day90-usage"]
    steps = [
        step_
        if step_.key != "day7-check-in"
        else step("day7-check-in", "10", template_name="check_in")
        for step_ in steps
    ]
    steps.append(step("day2-tip", "2", template_name="check_in"))
    before = _due(session, planned)
    _saved, counts = save_cadence(
        session,
        cadence,
        CadenceInput(cadence.name, "", True, steps),
        config=config,
        now=NOW,
        actor="user:1",
    )
    session.commit()
    after = _due(session, planned)
    assert counts == {"redated": 1, "cancelled": 1, "added": 1}
    assert after["day7-check-in"][1] - before["day7-check-in"][1] == timedelta(days=3)  # type: ignore[operator]
    assert after["day90-usage"][0] is FollowUpStatus.CANCELLED
    assert after["day2-tip"][0] is FollowUpStatus.SCHEDULED
    assert after["day1-thanks"] == before["day1-thanks"]
    assert session.scalars(select(AuditEntry).where(AuditEntry.action == "cadence.save")).one()


@pytest.mark.parametrize(
    ("active", "anchors", "field", "words"),
    [
        (False, set(Anchor), "active", "make another default"),
        (True, set(Anchor) - {Anchor.CASE}, "steps", "keeps an active step after a resolved case"),
    ],
)
def test_the_default_cadence_stays_active_and_keeps_its_check_after_a_case(
    planned: Sale,
    session: Session,
    config: Config,
    active: bool,
    anchors: set[Anchor],
    field: str,
    words: str,
) -> None:
    cadence = _default(session)
    steps = [_as_input(row) for row in cadence.steps if row.anchor in anchors]
    with pytest.raises(CadenceError) as refused:
        save_cadence(
            session,
            cadence,
            CadenceInput(cadence.name, "", active, steps),
            config=config,
            now=NOW,
            actor="user:1",
        )
    assert words in refused.value.problems[field]


def test_a_cadence_without_a_check_borrows_the_defaults_after_a_resolved_case(
    planned: Sale, session: Session, config: Config
) -> None:
    product = session.scalars(select(Product)).one()
    own, _counts = save_cadence(
        session,
        None,
        CadenceInput("Solo gracias", "", True, [step("day1-thanks")], [product.id]),
        config=config,
        now=NOW,
        actor="user:1",
    )
    message = Message(
        customer_id=planned.customer_id,
        direction=Direction.INBOUND,
        channel=Channel.SMS,
        from_address="+51987654321",
        to_address="+1",
        body="no prende",
        status="received",
        created_at=NOW,
    )
    session.add(message)
    customer = session.get_one(Customer, planned.customer_id)
    case, _opened = open_case_for(
        session, customer, message, reason="objection", config=config, now=NOW
    )
    result = resolve_case(session, case, outcome="cambiado", now=NOW, actor="u", config=config)
    check = session.scalars(select(FollowUp).where(FollowUp.case_id == case.id)).one()
    assert check.step.cadence_id == _default(session).id != own.id
    assert check.step.anchor is Anchor.CASE and result.check_due == check.due_at


def test_owner_creates_a_cadence_for_a_product_on_the_page(
    planned: Sale, owner_client: FlaskClient, session: Session
) -> None:
    product = session.scalars(select(Product)).one()
    form = {
        "name": "Lavadoras",
        "product_category": "",
        "active": "on",
        "step_key": ["day2", "", ""],
        "step_anchor": ["sale", "sale", "sale"],
        "step_offset_days": ["2", "", ""],
        "step_offset_hours": ["", "", ""],
        "step_channel": ["sms", "sms", "sms"],
        "step_template_name": ["thanks", "", ""],
        "step_condition": ["", "", ""],
        "products": [str(product.id)],
    }
    answer = submit(owner_client, "/admin/cadences/new", form, page="/admin/cadences/new")
    assert answer.status_code == 302
    fresh(session)
    created = session.scalars(select(Cadence).where(Cadence.name == "Lavadoras")).one()
    session.refresh(product)
    assert product.cadence_id == created.id
    assert [(s.key, s.offset_minutes) for s in created.steps] == [("day2", 2 * 24 * 60)]
    listing = owner_client.get("/admin/cadences").get_data(as_text=True)
    assert "Lavadoras" in listing and "products that follow it: 1" in listing and "+2 d" in listing


def test_a_bad_cadence_on_the_page_keeps_what_was_typed(
    planned: Sale, owner_client: FlaskClient, session: Session
) -> None:
    form = {
        "name": "Rara",
        "active": "on",
        "step_key": ["x1"],
        "step_anchor": ["score"],
        "step_offset_days": ["uno"],
        "step_offset_hours": [""],
        "step_channel": ["sms"],
        "step_template_name": ["thanks"],
        "step_condition": [""],
    }
    answer = submit(owner_client, "/admin/cadences/new", form, page="/admin/cadences/new")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "days must be a number" in page and "a step after a score needs one" in page
    assert 'value="uno"' in page and 'value="Rara"' in page
    assert session.scalars(select(Cadence).where(Cadence.name == "Rara")).all() == []


def test_staff_cannot_edit_cadences(staff_client: FlaskClient) -> None:
    assert staff_client.get("/admin/cadences").status_code == 403


def test_timeline_puts_steps_on_their_lanes_in_order() -> None:
    markers = timeline(
        [
            step("day1"),
            step("day90", "90"),
            step("review", "0", offset_hours="2", anchor="score"),
            step("renewal", "-14", anchor="renewal"),
            step("off", "5", active=False),
        ]
    )
    by_key = {marker.label: marker for marker in markers}
    assert set(by_key) == {"day1", "day90", "review", "renewal"}
    assert by_key["day1"].left < by_key["day90"].left
    assert by_key["review"].lane == "score" and by_key["review"].when == "+2 h"
    assert by_key["renewal"].when == "-14 d" and by_key["renewal"].left < 96


def test_the_editor_names_the_products_of_its_category(
    planned: Sale, owner_client: FlaskClient, session: Session, config: Config
) -> None:
    product = session.scalars(select(Product)).one()
    product.category = "lavadoras"
    cadence, _counts = save_cadence(
        session,
        None,
        CadenceInput("Lavado", "lavadoras", True, [step("day2", "2")]),
        config=config,
        now=NOW,
        actor="user:1",
    )
    session.commit()
    page = owner_client.get(f"/admin/cadences/{cadence.id}").get_data(as_text=True)
    assert "Also followed by the products of its category: Lavadora" in page
    listed = owner_client.get("/admin/cadences").get_data(as_text=True)
    assert "every product without a cadence of its own or of its category" in listed
    assert "products that follow it: 1" in listed  # through its category; not of the default
