"""Who may open what: every route of the app, checked from its rule, so a new page cannot be
left open by mistake."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from scheduler.models import User
from web.auth import PUBLIC


def _urls(app: Flask, method: str) -> list[str]:
    """Every route taking `method` outside the public blueprints, with 1 for each id."""
    urls = []
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rsplit(".", 1)[0] if "." in rule.endpoint else None
        if method not in (rule.methods or ()) or blueprint in PUBLIC or rule.endpoint == "static":
            continue
        urls.append(rule.build({name: 1 for name in rule.arguments})[1])  # type: ignore[index]
    return sorted(urls)


def test_the_app_has_the_pages_this_test_expects(app: Flask) -> None:
    expected = {
        "/",
        "/inbox",
        "/cases/1",
        "/customers",
        "/outbox",
        "/admin/settings",
        "/admin/cadences",
        "/admin/templates/1",
        "/admin/users",
        "/admin/tokens",
    }
    assert expected <= set(_urls(app, "GET"))


def test_every_page_needs_a_log_in(app: Flask, client: FlaskClient, owner: User) -> None:
    for url in _urls(app, "GET"):
        answer = client.get(url)
        assert answer.status_code == 302, url
        assert answer.headers["Location"].startswith("/login?next="), url
    for url in _urls(app, "POST"):
        assert client.post(url, data={}).status_code in (302, 400), url  # log-in or CSRF first


# Owners' pages outside /admin/: a customer's data on request, and their erasure.
OWNERS_ELSEWHERE = {"/customers/1/data", "/customers/1/data.json", "/customers/1/erase"}


def test_staff_get_403_on_every_owner_page(app: Flask, staff_client: FlaskClient) -> None:
    owner_pages = [
        url for url in _urls(app, "GET") if url.startswith("/admin/") or url in OWNERS_ELSEWHERE
    ]
    assert len(owner_pages) >= 8 and OWNERS_ELSEWHERE <= set(owner_pages)
    for url in owner_pages:
        assert staff_client.get(url).status_code == 403, url


def test_staff_open_every_other_page(app: Flask, staff_client: FlaskClient) -> None:
    for url in _urls(app, "GET"):
        if not url.startswith("/admin/") and url not in OWNERS_ELSEWHERE:
            assert staff_client.get(url).status_code in (200, 302, 404), url  # 404: no row 1
