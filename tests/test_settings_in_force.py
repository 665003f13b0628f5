"""What an owner saves in the admin is followed by every way in: the web app, the JSON API, the
command line's import and one-off pass, and the worker (tests/test_settings.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from scheduler.accounts import create_api_token
from scheduler.config import Config
from scheduler.db import make_session_factory
from scheduler.defaults import install_defaults
from scheduler.lifecycle import FollowUpStatus
from scheduler.models import CadenceStep, FollowUp, Sale
from scheduler.settings import save
from tests.browsing import fresh, submit
from tests.conftest import Cli
from tests.dispatching import setup_sales
from tests.factories import NOW, sale_input

# The owner narrowed the send window in the admin; the file still says 09:00-20:00.
OWNERS_WINDOW = {"business": {"send_window": "14:00-16:00"}}
# The day-1 thanks of a sale at NOW (Monday 10:00 in Lima) goes on Tuesday at 14:00 in Lima.
DAY_ONE_IN_OWNERS_WINDOW = datetime.fromisoformat("2026-11-24T19:00:00+00:00")


@pytest.fixture
def owners_window(session: Session, config: Config) -> Iterator[None]:
    install_defaults(session, NOW)
    save(session, config, OWNERS_WINDOW, actor="user:1", now=NOW)
    session.commit()
    with freeze_time(NOW):
        yield


def _day_one(session: Session, external_id: str) -> FollowUp:
    fresh(session)
    return session.scalars(
        select(FollowUp)
        .join(Sale, Sale.id == FollowUp.sale_id)
        .join(CadenceStep, CadenceStep.id == FollowUp.step_id)
        .where(Sale.external_id == external_id, CadenceStep.key == "day1-thanks")
    ).one()


def _due(row: FollowUp) -> datetime:
    return row.due_at.replace(tzinfo=row.due_at.tzinfo or NOW.tzinfo)


def test_the_api_plans_in_the_owners_window(
    owners_window: None, client: FlaskClient, session: Session
) -> None:
    token = create_api_token(session, name="shop", now=NOW, actor="test")
    session.commit()
    sale = {
        "external_id": "API-1",
        "sold_at": NOW.isoformat(),
        "customer": {"name": "Rosa Quispe", "phone": "+51987654321"},
        "product": {"sku": "LAV-9"},
    }
    answer = client.post("/api/sales", json=sale, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 201, answer.get_json()
    assert _due(_day_one(session, "API-1")) == DAY_ONE_IN_OWNERS_WINDOW


def test_a_sale_recorded_in_the_admin_plans_in_the_owners_window(
    owners_window: None, staff_client: FlaskClient, session: Session
) -> None:
    form = {
        "external_id": "WEB-1",
        "sold_at": "2026-11-23T10:00",
        "customer_name": "Ana Diaz",
        "phone": "999 888 777",
        "product_name": "Cocina",
    }
    assert submit(staff_client, "/sales/new", form).status_code == 302
    assert _due(_day_one(session, "WEB-1")) == DAY_ONE_IN_OWNERS_WINDOW


def test_the_command_line_import_plans_in_the_owners_window(
    owners_window: None, postventa: Cli, session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "sales.csv"
    path.write_text(
        "external_id,sold_at,customer_name,phone\nCSV-1,2026-11-23T10:00,Ana Diaz,999888777\n",
        encoding="utf-8",
    )
    result = postventa("import-sales", str(path))
    assert result.exit_code == 0, result.output
    assert _due(_day_one(session, "CSV-1")) == DAY_ONE_IN_OWNERS_WINDOW


def test_dispatch_once_keeps_to_the_owners_days(
    engine: Engine, config: Config, postventa: Cli, session: Session
) -> None:
    setup_sales(engine, config, sale_input("S-1"))
    with make_session_factory(engine).begin() as owner:  # no sending on Tuesdays from now on
        days = [day for day in config.business.send_days if day != "tue"]
        save(owner, config, {"business": {"send_days": days}}, actor="user:1", now=NOW)
    with freeze_time(NOW + timedelta(days=1)):  # Tuesday 10:00 in Lima: the day-1 thanks is due
        result = postventa("dispatch", "--once", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sent"] == 0
    row = _day_one(session, "S-1")
    assert row.status is FollowUpStatus.SCHEDULED
    assert _due(row) == datetime.fromisoformat("2026-11-25T14:00:00+00:00")  # Wed. 09:00 Lima
