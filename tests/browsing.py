"""Using the admin as a person does: log in, and post forms with the page's CSRF token."""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from scheduler.config import Config
from scheduler.settings import LiveSettings

TOKEN = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def csrf_token(client: FlaskClient, page: str = "/login") -> str:
    """The CSRF token a form on `page` carries (one per browser session)."""
    html = client.get(page).get_data(as_text=True)
    found = TOKEN.search(html)
    assert found, f"no CSRF token on {page}"
    return found.group(1) or found.group(2)


def submit(
    client: FlaskClient, url: str, data: dict[str, Any], *, page: str = "/inbox"
) -> TestResponse:
    """Post a form as the browser would after opening `page`."""
    return client.post(url, data={**data, "csrf_token": csrf_token(client, page)})


def check_upload(client: FlaskClient, content: bytes, name: str = "ventas.csv") -> TestResponse:
    """Choose a file on the import page and ask for its dry run, as the browser would."""
    return client.post(
        "/sales/import",
        data={
            "csrf_token": csrf_token(client, "/sales/import"),
            "action": "check",
            "file": (io.BytesIO(content), name),
        },
        content_type="multipart/form-data",
    )


def fresh(session: Session) -> None:
    """Forget what this session read: the app committed since, in its own transaction (and a
    SQLite reader keeps the snapshot its transaction began with)."""
    session.rollback()
    session.expire_all()


def log_in(client: FlaskClient, email: str, password: str) -> TestResponse:
    return submit(client, "/login", {"email": email, "password": password}, page="/login")


def use_config(app: Flask, **changes: Mapping[str, Any]) -> Config:
    """Run `app` with some configuration keys changed (as if its file said so)."""
    services = app.extensions["postventa"]
    config: Config = services.config.replace(**changes)
    app.extensions["postventa"] = dataclasses.replace(services, settings=LiveSettings(config, None))
    return config
