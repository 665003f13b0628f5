"""`GET /api/cadences`, `GET|PUT /api/cadences/{name}`: cadences read and replaced through the
admin editor's own checks and saving (steps by key, pending follow-ups re-planned)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from scheduler.config import Config
from scheduler.models import AuditEntry, Cadence, Product
from tests.api_calls import call, errors_of, shop
from tests.factories import NOW


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with freeze_time(NOW):
        yield


def put(client: FlaskClient, token: str, name: str, body: Any) -> TestResponse:
    return call(client, "PUT", f"/api/cadences/{name}", token, json=body)


def step(key: str, days: float = 1, **changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "key": key,
        "anchor": "sale",
        "offset": {"days": days},
        "channel": "sms",
        "template": "thanks",
    }
    return item | changes


def test_the_default_cadence_reads_back_as_it_is_put(
    client: FlaskClient, session: Session, config: Config, token: str
) -> None:
    shop(session, config, customers=1)
    listed = call(client, "GET", "/api/cadences", token).get_json()
    assert [c["name"] for c in listed["cadences"]] == ["Default"]
    default = call(client, "GET", "/api/cadences/Default", token).get_json()
    assert default == listed["cadences"][0] and default["is_default"] is True
    renewal = next(s for s in default["steps"] if s["anchor"] == "renewal")
    assert renewal["offset"] == {"days": -14, "hours": 0}
    body = {key: default[key] for key in ("active", "product_category", "steps")}
    usage = next(s for s in body["steps"] if s["key"] == "day90-usage")
    usage["offset"] = {"days": 80, "hours": 3}
    saved = put(client, token, "Default", body)
    assert saved.status_code == 200
    assert saved.get_json()["replanned"]["redated"] == 1  # the pending day-90 follow-up
    again = call(client, "GET", "/api/cadences/Default", token).get_json()
    moved = next(s for s in again["steps"] if s["key"] == "day90-usage")
    assert moved["offset"] == {"days": 80, "hours": 3}
    session.rollback()
    actors = session.scalars(select(AuditEntry.actor).where(AuditEntry.action == "cadence.save"))
    assert list(actors) == ["api:tienda-online"]


def test_a_new_name_creates_a_cadence_and_products_keep_their_choice(
    client: FlaskClient, session: Session, config: Config, token: str
) -> None:
    shop(session, config, customers=1)
    created = put(client, token, "Lavadoras", {"steps": [step("day2-thanks", 2)]})
    assert created.status_code == 201
    assert created.get_json()["steps"][0]["template"] == "thanks"
    session.rollback()
    cadence = session.scalars(select(Cadence).where(Cadence.name == "Lavadoras")).one()
    product = session.scalars(select(Product)).one()
    product.cadence_id = cadence.id
    session.commit()
    changed = put(client, token, "Lavadoras", {"steps": [step("day3-thanks", 3)]})
    assert changed.status_code == 200
    steps = {s["key"]: s["active"] for s in changed.get_json()["steps"]}
    assert steps == {"day2-thanks": False, "day3-thanks": True}  # left out: paused
    session.rollback()
    assert session.get_one(Product, product.id).cadence_id == cadence.id
    missing = call(client, "GET", "/api/cadences/Nada", token)
    assert missing.status_code == 404


def test_every_problem_is_named_by_its_path(
    client: FlaskClient, session: Session, config: Config, token: str
) -> None:
    shop(session, config, customers=1)
    steps = [
        step("ok-step"),
        step("Bad Key"),
        step("late", -2),
        step("score", anchor="score"),
        step("nope", template="no-such-template"),
    ]
    answer = put(client, token, "Nueva", {"steps": steps})
    assert answer.status_code == 422
    problems = errors_of(answer)
    assert set(problems) == {
        "steps[1].key",
        "steps[2].offset",
        "steps[3].condition",
        "steps[4].template",
    }
    assert problems["steps[2].offset"] == "a step cannot come before the sale"
    shapes = put(
        client,
        token,
        "Nueva",
        {
            "steps": [
                "x",
                {"key": 1, "anchor": "sale", "offset": {"weeks": 1}, "template": "t"},
                step("a", offset={"days": "7"}),
            ],
            "colour": "red",
        },
    )
    assert shapes.status_code == 422
    assert set(errors_of(shapes)) == {
        "colour",
        "steps[0]",
        "steps[1].key",
        "steps[1].channel",
        "steps[2].offset.days",
    }
    session.rollback()
    assert session.scalars(select(Cadence.name)).all() == ["Default"]


@pytest.mark.parametrize(
    ("name", "body", "status"),
    [
        ("Default", {"steps": []}, 422),
        ("Default", {"steps": [step("x")], "active": False}, 422),
        ("x" * 101, {"steps": [step("x")]}, 422),
        ("Rosa%00", {"steps": [step("x")]}, 422),
        ("Nueva", {"steps": [step(f"s{n}") for n in range(101)]}, 422),
        ("Nueva", {"steps": [step("x", 1e308 * 10)]}, 422),
        ("Nueva", {"steps": [step("x", 10**400)]}, 422),
        ("Nueva", {"steps": [step("x")], "product_category": "\u0000"}, 422),
        ("Nueva", [step("x")], 400),
        ("Nueva", None, 400),
    ],
)
def test_hostile_cadences_are_4xx_never_a_500(
    client: FlaskClient,
    session: Session,
    config: Config,
    token: str,
    name: str,
    body: Any,
    status: int,
) -> None:
    shop(session, config, customers=1)
    answer = put(client, token, name, body)
    assert answer.status_code == status, answer.get_data(as_text=True)[:300]
    assert answer.get_json()["errors"]
