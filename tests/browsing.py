"""Using the admin as a person does: log in, and post forms with the page's CSRF token."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

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


def log_in(client: FlaskClient, email: str, password: str) -> TestResponse:
    return submit(client, "/login", {"email": email, "password": password}, page="/login")
