"""Owners manage logins and API tokens; everyone chooses their own language and password."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.accounts import verify_password
from scheduler.lifecycle import Role
from scheduler.models import ApiToken, AuditEntry, User
from tests.browsing import fresh, log_in, submit
from tests.conftest import OWNER, STAFF


def test_owner_adds_a_staff_login_that_works(owner_client: FlaskClient, session: Session) -> None:
    answer = submit(
        owner_client,
        "/admin/users",
        {"email": "Luis@Tienda.pe", "role": "staff", "locale": "es", "password": "luis password"},
        page="/admin/users",
    )
    assert answer.status_code == 302
    luis = session.scalars(select(User).where(User.email == "luis@tienda.pe")).one()
    assert (luis.role, luis.locale) == (Role.STAFF, "es")
    browser = owner_client.application.test_client()
    assert log_in(browser, "luis@tienda.pe", "luis password").status_code == 302
    assert browser.get("/admin/users").status_code == 403


def test_adding_a_user_twice_or_with_a_short_password_says_why(
    owner_client: FlaskClient, owner: User
) -> None:
    for email, password, reason in (
        (OWNER[0], "long enough pw", "already exists"),
        ("x@tienda.pe", "short", "at least 10 characters"),
    ):
        answer = submit(
            owner_client,
            "/admin/users",
            {"email": email, "role": "staff", "locale": "en", "password": password},
            page="/admin/users",
        )
        assert answer.status_code == 422 and reason in answer.get_data(as_text=True)


def test_disable_promote_and_reset_a_password(
    owner_client: FlaskClient, staff: User, session: Session
) -> None:
    submit(
        owner_client,
        f"/admin/users/{staff.id}",
        {"role": "owner", "active": "yes", "password": "a brand new one"},
        page="/admin/users",
    )
    fresh(session)
    promoted = session.get_one(User, staff.id)
    assert promoted.role is Role.OWNER
    assert verify_password(promoted.password_hash, "a brand new one")
    submit(
        owner_client,
        f"/admin/users/{staff.id}",
        {"role": "staff", "active": "no"},
        page="/admin/users",
    )
    fresh(session)
    assert not session.get_one(User, staff.id).active
    assert (
        log_in(owner_client.application.test_client(), STAFF[0], "a brand new one").status_code
        == 401
    )
    actions = session.scalars(
        select(AuditEntry.action).where(
            AuditEntry.entity_id == staff.id, AuditEntry.entity_type == "user"
        )
    )
    assert {"user.change", "user.password"} <= set(actions)


def test_the_last_owner_stays_an_owner(
    owner_client: FlaskClient, owner: User, session: Session
) -> None:
    submit(
        owner_client,
        f"/admin/users/{owner.id}",
        {"role": "staff", "active": "yes"},
        page="/admin/users",
    )
    page = owner_client.get("/admin/users").get_data(as_text=True)
    assert "is the last owner who can log in" in page
    submit(
        owner_client,
        f"/admin/users/{owner.id}",
        {"role": "owner", "active": "no"},
        page="/admin/users",
    )
    assert "you cannot disable your own log-in" in owner_client.get("/admin/users").get_data(
        as_text=True
    )
    fresh(session)
    me = session.get_one(User, owner.id)
    assert me.role is Role.OWNER and me.active


def test_a_token_is_shown_once_works_and_can_be_revoked(
    owner_client: FlaskClient, session: Session
) -> None:
    page = submit(
        owner_client, "/admin/tokens", {"name": "caja Miraflores"}, page="/admin/tokens"
    ).get_data(as_text=True)
    token = re.search(r'<code class="secret">(pv_[^<]+)</code>', page)
    assert token
    api = owner_client.application.test_client()
    headers = {"Authorization": f"Bearer {token.group(1)}"}
    assert api.get("/api/follow-ups", headers=headers).status_code == 200
    assert token.group(1) not in owner_client.get("/admin/tokens").get_data(as_text=True)
    row = session.scalars(select(ApiToken)).one()
    submit(owner_client, f"/admin/tokens/{row.id}/revoke", {}, page="/admin/tokens")
    assert api.get("/api/follow-ups", headers=headers).status_code == 401
    assert "revoked" in owner_client.get("/admin/tokens").get_data(as_text=True)


def test_staff_cannot_manage_people(staff_client: FlaskClient, owner: User) -> None:
    assert staff_client.get("/admin/users").status_code == 403
    assert staff_client.get("/admin/tokens").status_code == 403
    refused = submit(staff_client, f"/admin/users/{owner.id}", {"role": "staff", "active": "no"})
    assert refused.status_code == 403


def test_each_person_chooses_their_language_and_password(
    staff_client: FlaskClient, staff: User, session: Session
) -> None:
    wrong = submit(
        staff_client,
        "/account",
        {"locale": "en", "current": "nope", "new": "another password"},
        page="/account",
    )
    assert wrong.status_code == 422 and "current password is not right" in wrong.get_data(
        as_text=True
    )
    submit(
        staff_client,
        "/account",
        {"locale": "es", "current": STAFF[1], "new": "otra clave 123"},
        page="/account",
    )
    fresh(session)
    user = session.get_one(User, staff.id)
    assert user.locale == "es" and verify_password(user.password_hash, "otra clave 123")


def test_the_audit_log_shows_who_changed_what(
    owner_client: FlaskClient, staff: User, session: Session
) -> None:
    submit(
        owner_client,
        f"/admin/users/{staff.id}",
        {"role": "staff", "active": "no"},
        page="/admin/users",
    )
    page = owner_client.get("/admin/audit?action=user.").get_data(as_text=True)
    assert "owner@example.com" in page and "<code>user.change</code> user" in page
    assert "&#34;active&#34;: false" in page or '"active": false' in page
    other = owner_client.get("/admin/audit?action=case.").get_data(as_text=True)
    assert "user.change" not in other and "Nothing recorded matches this filter." in other
