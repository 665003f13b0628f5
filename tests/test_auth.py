"""Logging in: the first owner's set-up, log-in and out, CSRF, cookies, slowing down guessing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.accounts import wait_after
from scheduler.lifecycle import Role
from scheduler.models import AuditEntry, User
from tests.browsing import csrf_token, log_in, submit
from tests.conftest import OWNER, STAFF


def test_first_run_asks_for_the_owner_once(client: FlaskClient, session: Session) -> None:
    assert client.get("/").headers["Location"] == "/setup"
    assert client.get("/login").headers["Location"] == "/setup"
    page = client.get("/setup").get_data(as_text=True)
    assert "Create the owner" in page
    answer = submit(
        client,
        "/setup",
        {
            "email": "Ana@Tienda.pe",
            "password": "una clave larga",
            "confirm": "una clave larga",
            "locale": "es",
        },
        page="/setup",
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    owner = session.scalars(select(User)).one()
    assert (owner.email, owner.role, owner.locale) == ("ana@tienda.pe", Role.OWNER, "es")
    assert owner.password_hash.startswith("$argon2")
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "user.add")).one()
    assert audit.actor == "setup" and audit.details["role"] == "owner"
    assert client.get("/").status_code == 200  # logged in at once
    assert client.get("/setup").status_code == 404  # and never again


def test_setup_refuses_a_short_or_mistyped_password(client: FlaskClient, session: Session) -> None:
    short = submit(
        client,
        "/setup",
        {"email": "a@b.pe", "password": "corta", "confirm": "corta"},
        page="/setup",
    )
    assert short.status_code == 200 and "at least 10" in short.get_data(as_text=True)
    mistyped = submit(
        client,
        "/setup",
        {"email": "a@b.pe", "password": "una clave larga", "confirm": "una clave larg"},
        page="/setup",
    )
    assert mistyped.status_code == 200
    page = mistyped.get_data(as_text=True)
    assert "The two passwords are not the same." in page
    assert "Field must be equal" not in page and "confirm:" not in page
    assert session.scalars(select(User)).all() == []


def test_pages_need_a_log_in_and_come_back_after_it(client: FlaskClient, owner: User) -> None:
    assert client.get("/inbox?tab=unmatched").headers["Location"] == (
        "/login?next=/inbox?tab%3Dunmatched"
    )
    answer = submit(
        client,
        "/login?next=/inbox?tab%3Dunmatched",
        {"email": OWNER[0].upper(), "password": OWNER[1]},
        page="/login",
    )
    assert answer.headers["Location"] == "/inbox?tab=unmatched"
    assert client.get("/inbox").status_code == 200


def test_log_in_never_redirects_off_site(client: FlaskClient, owner: User) -> None:
    for target in (
        "https://evil.example/",
        "//evil.example/x",
        "http:evil",
        "/\\evil.example",
        "/inbox%0d%0aSet-Cookie:x=1",
        "inbox",
    ):
        browser = client.application.test_client()
        answer = submit(
            browser,
            f"/login?next={target}",
            {"email": OWNER[0], "password": OWNER[1]},
            page="/login",
        )
        assert answer.headers["Location"] == "/", target


def test_public_routes_need_no_log_in(client: FlaskClient, owner: User) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/follow-ups").status_code == 401  # its own bearer tokens
    stylesheet = client.get("/static/postventa.css")
    assert stylesheet.status_code == 200
    stylesheet.close()
    assert client.get("/unsubscribe/nothing").status_code == 404


def test_forms_without_the_csrf_token_are_refused(client: FlaskClient, owner: User) -> None:
    answer = client.post("/login", data={"email": OWNER[0], "password": OWNER[1]})
    assert answer.status_code == 400
    assert client.get("/inbox").status_code == 302  # not logged in


def test_session_cookie_is_http_only_and_same_site(client: FlaskClient, owner: User) -> None:
    answer = log_in(client, *OWNER)
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_log_out(owner_client: FlaskClient) -> None:
    assert submit(owner_client, "/logout", {}).headers["Location"] == "/login"
    assert owner_client.get("/inbox").status_code == 302


def test_wrong_email_and_wrong_password_get_the_same_answer(
    client: FlaskClient, owner: User
) -> None:
    wrong_password = log_in(client, OWNER[0], "not the password")
    nobody = log_in(client, "nobody@example.com", OWNER[1])
    assert wrong_password.status_code == nobody.status_code == 401
    assert "Wrong email or password." in wrong_password.get_data(as_text=True)
    assert "Wrong email or password." in nobody.get_data(as_text=True)


def test_failed_log_ins_are_slowed_down(app: Flask, owner: User) -> None:
    start = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    with freeze_time(start) as clock:
        browser = app.test_client()
        for _ in range(3):  # typos are free
            assert log_in(browser, OWNER[0], "typo typo typo").status_code == 401
        too_soon = log_in(browser, OWNER[0], "typo typo typo")
        assert too_soon.status_code == 429  # not even checked
        assert "Try again in 1 s" in too_soon.get_data(as_text=True)
        clock.tick(timedelta(seconds=1))
        assert log_in(browser, OWNER[0], "typo typo typo").status_code == 401  # the fourth
        refused = log_in(browser, *OWNER)  # even the right password waits
        assert refused.status_code == 429
        assert "Try again in 2 s" in refused.get_data(as_text=True)
        clock.tick(timedelta(seconds=2))
        assert log_in(browser, *OWNER).status_code == 302
        # A success clears the count: the next typo is free again.
        other = app.test_client()
        assert log_in(other, OWNER[0], "typo typo typo").status_code == 401
        assert log_in(other, *OWNER).status_code == 302


def test_slow_down_doubles_up_to_a_quarter_hour() -> None:
    assert [wait_after(n) for n in range(7)] == [0, 0, 0, 1, 2, 4, 8]
    assert wait_after(30) == 15 * 60


def test_a_disabled_user_cannot_log_in(client: FlaskClient, owner: User, session: Session) -> None:
    owner.active = False
    session.commit()
    assert log_in(client, *OWNER).status_code == 401


def test_staff_cannot_use_owner_actions(staff_client: FlaskClient) -> None:
    answer = staff_client.post(
        "/remedies/1/decide",
        data={"decision": "approve", "csrf_token": csrf_token(staff_client, "/inbox")},
    )
    assert answer.status_code == 403
    assert "Only an owner can do this" in answer.get_data(as_text=True)


def test_an_overlong_email_is_an_answer_not_a_crash(client: FlaskClient, owner: User) -> None:
    answer = log_in(client, "a" * 400 + "@example.com", "whatever password")
    assert answer.status_code == 200 and "Log in" in answer.get_data(as_text=True)


def test_a_strangers_typos_do_not_lock_out_a_colleague_behind_the_same_address(
    app: Flask, owner: User, staff: User
) -> None:
    with freeze_time(datetime(2026, 11, 23, 15, 0, tzinfo=UTC)):
        stranger, colleague = app.test_client(), app.test_client()
        for _ in range(3):
            assert log_in(stranger, STAFF[0], "typo typo typo").status_code == 401
        assert log_in(stranger, STAFF[0], "typo typo typo").status_code == 429  # that account
        assert log_in(colleague, *OWNER).status_code == 302  # same address, another account


def test_a_new_password_ends_the_other_sessions(
    owner_client: FlaskClient, staff_client: FlaskClient, staff: User
) -> None:
    assert staff_client.get("/inbox").status_code == 200
    submit(
        owner_client,
        f"/admin/users/{staff.id}",
        {"role": "staff", "active": "yes", "password": "reset by the owner"},
        page="/admin/users",
    )
    assert staff_client.get("/inbox").status_code == 302  # the old session is over
