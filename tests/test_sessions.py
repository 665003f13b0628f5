"""Log-in sessions end when asked: a log-out, a new password or a disabled user, on the server,
so that a copy of the cookie opens nothing afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.models import LoginSession, User
from tests.browsing import fresh, log_in, submit
from tests.conftest import OWNER, STAFF

START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def _copy(app: Flask, browser: FlaskClient) -> FlaskClient:
    """Another browser holding the same session cookie (as a thief who copied it would)."""
    cookie = browser.get_cookie("session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    return thief


def _logged_in(app: Flask, login: tuple[str, str]) -> FlaskClient:
    browser = app.test_client()
    assert log_in(browser, *login).status_code == 302
    return browser


def test_a_copied_cookie_opens_nothing_after_log_out(app: Flask, owner: User) -> None:
    browser = _logged_in(app, OWNER)
    thief = _copy(app, browser)
    assert thief.get("/inbox").status_code == 200  # the copy works while the session lasts
    assert submit(browser, "/logout", {}).headers["Location"] == "/login"
    replayed = thief.get("/inbox")
    assert replayed.status_code == 302 and replayed.headers["Location"].startswith("/login")
    assert thief.get("/admin/users").status_code == 302


def test_logging_out_in_one_browser_keeps_the_others(app: Flask, owner: User) -> None:
    laptop, phone = _logged_in(app, OWNER), _logged_in(app, OWNER)
    submit(laptop, "/logout", {})
    assert laptop.get("/inbox").status_code == 302
    assert phone.get("/inbox").status_code == 200


def test_the_server_keeps_a_digest_and_marks_the_log_out(
    app: Flask, owner: User, session: Session
) -> None:
    browser = _logged_in(app, OWNER)
    row = session.scalars(select(LoginSession)).one()
    assert row.user_id == owner.id and row.revoked_at is None
    cookie = browser.get_cookie("session")
    assert cookie is not None and row.token_hash not in cookie.value
    submit(browser, "/logout", {})
    fresh(session)
    assert session.scalars(select(LoginSession)).one().revoked_at is not None


def test_a_new_password_keeps_this_session_and_ends_the_others(app: Flask, owner: User) -> None:
    laptop, phone = _logged_in(app, OWNER), _logged_in(app, OWNER)
    answer = submit(
        laptop,
        "/account",
        {"locale": "en", "current": OWNER[1], "new": "a new password 2"},
        page="/account",
    )
    assert answer.status_code == 302
    assert laptop.get("/inbox").status_code == 200  # the one who changed it goes on
    assert phone.get("/inbox").status_code == 302  # opened with the old password: over
    assert log_in(app.test_client(), OWNER[0], "a new password 2").status_code == 302


def test_an_owner_resetting_their_own_password_in_the_users_page_stays_logged_in(
    app: Flask, owner: User
) -> None:
    laptop, phone = _logged_in(app, OWNER), _logged_in(app, OWNER)
    submit(
        laptop,
        f"/admin/users/{owner.id}",
        {"role": "owner", "active": "yes", "password": "reset by myself 3"},
        page="/admin/users",
    )
    assert laptop.get("/inbox").status_code == 200
    assert phone.get("/inbox").status_code == 302


def test_disabling_a_user_ends_their_open_sessions(app: Flask, owner: User, staff: User) -> None:
    owner_browser, staff_browser = _logged_in(app, OWNER), _logged_in(app, STAFF)
    assert staff_browser.get("/inbox").status_code == 200
    submit(
        owner_browser,
        f"/admin/users/{staff.id}",
        {"role": "staff", "active": "no"},
        page="/admin/users",
    )
    assert staff_browser.get("/inbox").status_code == 302
    assert owner_browser.get("/inbox").status_code == 200


def test_a_cookie_from_before_server_sessions_is_a_log_in_page(app: Flask, owner: User) -> None:
    # Before migration 0011 the cookie carried "<user id>:<piece of the password hash>".
    old = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    browser = app.test_client()
    browser.set_cookie("session", old.dumps({"_user_id": f"{owner.id}:abcdef123456"}))
    assert browser.get("/inbox").status_code == 302


def test_last_seen_is_kept_without_a_write_per_page(
    app: Flask, owner: User, session: Session
) -> None:
    with freeze_time(START) as clock:
        browser = _logged_in(app, OWNER)
        clock.tick(timedelta(minutes=4))
        assert browser.get("/inbox").status_code == 200
        fresh(session)
        assert session.scalars(select(LoginSession)).one().last_seen_at == START
        clock.tick(timedelta(minutes=2))
        assert browser.get("/inbox").status_code == 200
        fresh(session)
        assert session.scalars(select(LoginSession)).one().last_seen_at == START + timedelta(
            minutes=6
        )
