"""Every list of the API comes a page at a time: `limit`, `cursor`, `next_cursor`. Keyset on
the list's order, so rows added meanwhile are neither skipped nor repeated, and a cursor that
is not one the list gave is a 400 naming `cursor`."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import update
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.lifecycle import CaseStatus
from scheduler.models import Case
from tests.api_calls import bearer, errors_of, shop
from tests.complaints import complaint
from tests.factories import NOW

LISTS = [
    ("/api/follow-ups", "follow_ups"),
    ("/api/cases", "cases"),
    ("/api/customers", "customers"),
    ("/api/cadences", "cadences"),
]


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with freeze_time(NOW):
        yield


def pages(client: FlaskClient, token: str, path: str, key: str, limit: int) -> list[Any]:
    """Every item of the list, read `limit` at a time."""
    items: list[Any] = []
    cursor = None
    for _ in range(100):
        query = f"limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        answer = client.get(f"{path}?{query}", headers=bearer(token))
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert len(body[key]) <= limit
        items += body[key]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize(("path", "key"), LISTS)
def test_page_by_page_is_the_whole_list_in_its_order(
    client: FlaskClient, session: Session, config: Config, token: str, path: str, key: str
) -> None:
    shop(session, config, customers=5)
    whole = client.get(f"{path}?limit=500", headers=bearer(token)).get_json()
    assert whole["next_cursor"] is None and whole[key]
    for limit in (1, 2, 3):
        assert pages(client, token, path, key, limit) == whole[key]


def test_cases_come_open_first_each_by_deadline(
    client: FlaskClient, session: Session, config: Config, token: str
) -> None:
    for n, hours in enumerate((5, 1, 3, 2)):
        complaint(session, config, name=f"C{n}", phone=f"+5198765400{n}", hours_ago=hours)
    session.execute(update(Case).where(Case.id == 2).values(status=CaseStatus.RESOLVED))
    session.commit()
    cases = pages(client, token, "/api/cases", "cases", 1)
    assert [(c["status"], c["id"]) for c in cases] == [
        ("open", 1),
        ("open", 3),
        ("open", 4),
        ("resolved", 2),
    ]
    deadlines = [c["first_response_due_at"] for c in cases[:3]]
    assert deadlines == sorted(deadlines)
    only_open = client.get("/api/cases?status=open&limit=2", headers=bearer(token)).get_json()
    rest = client.get(
        f"/api/cases?status=open&limit=2&cursor={only_open['next_cursor']}",
        headers=bearer(token),
    ).get_json()
    assert [c["id"] for c in only_open["cases"] + rest["cases"]] == [1, 3, 4]
    assert rest["next_cursor"] is None


def test_rows_added_while_paging_are_neither_skipped_nor_repeated(
    client: FlaskClient, session: Session, config: Config, token: str
) -> None:
    shop(session, config, customers=3)
    before = client.get("/api/follow-ups?limit=500", headers=bearer(token)).get_json()
    first = client.get("/api/follow-ups?limit=4", headers=bearer(token)).get_json()
    # New follow-ups, some due before the page's last row and some after it.
    for n, days in enumerate((-10, -2, 0)):
        sale = {
            "external_id": f"NEW-{n}",
            "sold_at": (NOW + timedelta(days=days, hours=-1)).isoformat(),
            "customer": {"name": "Nuevo", "phone": f"+5198700000{n}"},
        }
        answer = client.post("/api/sales", json=sale, headers=bearer(token))
        assert answer.status_code == 201
    seen = [item["id"] for item in first["follow_ups"]]
    cursor = first["next_cursor"]
    while cursor:
        body = client.get(
            f"/api/follow-ups?limit=4&cursor={cursor}", headers=bearer(token)
        ).get_json()
        seen += [item["id"] for item in body["follow_ups"]]
        cursor = body["next_cursor"]
    assert len(seen) == len(set(seen))  # nothing twice
    assert {item["id"] for item in before["follow_ups"]} <= set(seen)  # nothing skipped


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


HOSTILE = [
    "garbage",
    "!!!",
    "%00",
    "A" * 5000,
    _cursor([]),
    _cursor({"id": 1}),
    _cursor(["x"] * 3),
    _cursor([2**64]),
    _cursor([2**64, 2**64]),
    _cursor([True]),
    _cursor([1.5]),
    _cursor(["\u0000"]),
    _cursor(["\u0000", "2026-11-23T15:00:00+00:00", 1]),
    _cursor(["open", "2026-11-23T15:00:00", 1]),  # no offset
    _cursor(["open", "0001-01-01T00:00:00+14:00", 1]),
    _cursor(["closed", "2026-11-23T15:00:00+00:00", 1]),
    _cursor(["2026-11-23T15:00:00+00:00", "1"]),
    _cursor([[[[[]]]]]),
    base64.urlsafe_b64encode(b"\xff\xfe not json").decode(),
    base64.urlsafe_b64encode(b"[" * 100_000).decode()[:1999],
]


@pytest.mark.parametrize(("path", "key"), LISTS)
def test_a_cursor_the_list_did_not_give_is_a_400_naming_cursor(
    client: FlaskClient, session: Session, config: Config, token: str, path: str, key: str
) -> None:
    shop(session, config, customers=1)
    for cursor in HOSTILE:
        answer = client.get(f"{path}?cursor={cursor}", headers=bearer(token))
        assert answer.status_code == 400, (cursor[:60], answer.get_json())
        assert list(errors_of(answer)) == ["cursor"]


@pytest.mark.parametrize("limit", ["0", "501", "-1", "1.5", "abc", "9" * 5000, "١٢"])
def test_a_limit_out_of_range_is_a_400_naming_limit(
    client: FlaskClient, token: str, limit: str
) -> None:
    for path, _key in LISTS:
        answer = client.get(f"{path}?limit={limit}", headers=bearer(token))
        assert answer.status_code == 400 and list(errors_of(answer)) == ["limit"]
