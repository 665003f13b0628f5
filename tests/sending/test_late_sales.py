"""A sale recorded days after it happened misses the steps whose time has passed: whoever
records it is told how many and why, through the API, the command line and the admin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy.orm import Session

from scheduler.accounts import create_api_token
from scheduler.defaults import install_defaults
from tests.browsing import submit
from tests.conftest import Cli
from tests.factories import NOW

# Five days before NOW: the day-1 thanks was due four days ago, beyond the 48 h grace.
LATE = "2026-11-18T10:00"
TOLD = "follow-ups skipped: their time had passed more than 48 h before the sale was recorded"


@pytest.fixture
def defaults(session: Session) -> Iterator[None]:
    install_defaults(session, NOW)
    session.commit()
    with freeze_time(NOW):
        yield


def _csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "sales.csv"
    lines = ["external_id,sold_at,customer_name,phone", *rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_api_says_which_follow_ups_were_skipped_and_why(
    defaults: None, client: FlaskClient, session: Session
) -> None:
    token = create_api_token(session, name="shop", now=NOW, actor="test")
    session.commit()
    sale = {
        "external_id": "LATE-1",
        "sold_at": LATE + "-05:00",
        "customer": {"name": "Rosa Quispe", "phone": "+51987654321"},
    }
    answer = client.post("/api/sales", json=sale, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 201
    body = answer.get_json()
    skipped = [item for item in body["follow_ups"] if item["status"] == "skipped"]
    assert [item["step"] for item in skipped] == ["day1-thanks"]
    assert body["skipped_follow_ups"] == 1
    assert skipped[0]["status_reason"].startswith("overdue by 4 d")
    on_time = [item for item in body["follow_ups"] if item["status"] == "scheduled"]
    assert on_time and all("status_reason" not in item for item in on_time)


def test_the_command_line_import_says_how_many_were_skipped(
    defaults: None, postventa: Cli, tmp_path: Path
) -> None:
    path = _csv(
        tmp_path, f"LATE-1,{LATE},Ana Diaz,999888777", "NOW-1,2026-11-23T10:00,Luis Rojas,999888776"
    )
    said = postventa("import-sales", str(path))
    assert said.exit_code == 0, said.output
    assert f"imported 2 new, 0 known; 1 {TOLD}" in said.output
    again = postventa("import-sales", str(path), "--json")
    assert json.loads(again.output)["skipped_follow_ups"] == 0  # nothing new: nothing skipped


def test_the_admin_says_how_many_were_skipped(
    defaults: None, staff_client: FlaskClient, tmp_path: Path
) -> None:
    form = {
        "external_id": "LATE-2",
        "sold_at": LATE,
        "customer_name": "Ana Diaz",
        "phone": "999 888 777",
    }
    answer = submit(staff_client, "/sales/new", form)
    assert f"1 {TOLD}." in staff_client.get(answer.headers["Location"]).get_data(as_text=True)
    upload = {
        "action": "import",
        "content": f"external_id,sold_at,customer_name,phone\nLATE-3,{LATE},Luis Rojas,999888776\n",
    }
    imported = submit(staff_client, "/sales/import", upload)
    assert imported.status_code == 302
    assert f"1 {TOLD}." in staff_client.get(imported.headers["Location"]).get_data(as_text=True)
