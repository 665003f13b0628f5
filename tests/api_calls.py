"""Calling the JSON API in tests: a token's header, and a shop with data to list."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from scheduler.config import Config
from tests.complaints import complaint


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(client: FlaskClient, method: str, path: str, token: str, **kwargs: Any) -> TestResponse:
    return client.open(path, method=method, headers=bearer(token), **kwargs)


def errors_of(response: TestResponse) -> dict[str | None, str]:
    """The errors of an answer by field (the last message of a field when it has several)."""
    return {item["field"]: item["message"] for item in response.get_json()["errors"]}


def shop(session: Session, config: Config, customers: int = 3) -> None:
    """`customers` customers, each with a sale (four follow-ups) and an open case."""
    for n in range(customers):
        complaint(session, config, name=f"Cliente {n}", phone=f"+5198765432{n}")
    session.commit()
