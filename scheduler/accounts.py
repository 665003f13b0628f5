"""Logins (owners and staff) and API tokens."""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Sequence
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.contacts import normalise_email
from scheduler.lifecycle import Role
from scheduler.models import ApiToken, LoginFailure, User

MIN_PASSWORD_LENGTH = 10
FREE_FAILURES = 3  # typos cost nothing; from the fourth failure in a row, each waits longer
FREE_FAILURES_PER_ADDRESS = 20
MAX_WAIT_SECONDS = 15 * 60
_hasher = PasswordHasher()
# Checked against when the email is unknown, so that a wrong address takes as long as a wrong
# password and the answer does not tell which accounts exist.
_NOBODY = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A login or token request that cannot be carried out; the message says why."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def add_user(
    session: Session, *, email: str, role: Role, password: str, now: datetime, actor: str
) -> User:
    """Create a login; the caller commits."""
    try:
        address = normalise_email(email).lower()  # logins are case-insensitive
    except ValueError as error:
        raise AccountError(str(error)) from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise AccountError(f"a user with the email {address} already exists")
    user = User(email=address, role=role, password_hash=hash_password(password), created_at=now)
    session.add(user)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="user.add",
        entity_type="user",
        entity_id=user.id,
        email=address,
        role=str(role),
    )
    return user


def _digest(token: str) -> str:
    # Tokens are 256 random bits, so a plain SHA-256 is enough; argon2 would slow every API call.
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(session: Session, *, name: str, now: datetime, actor: str) -> str:
    """Store a new API token (hashed) and return it; it cannot be shown again."""
    name = name.strip()
    if not name:
        raise AccountError("a token needs a name (who or what will use it)")
    token = "pv_" + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=_digest(token), prefix=token[:10], created_at=now)
    session.add(row)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="token.create",
        entity_type="api_token",
        entity_id=row.id,
        name=name,
    )
    return token


def find_api_token(session: Session, token: str, now: datetime) -> ApiToken | None:
    """The live token row for a presented bearer token, marking it used; None if not valid."""
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None))
    )
    if row is not None:
        row.last_used_at = now
    return row


def wait_after(failures: int, free: int = FREE_FAILURES) -> float:
    """Seconds a log-in must wait after `failures` failed attempts in a row: none for the first
    `free`, then doubling from 1 s up to 15 minutes."""
    if failures < free:
        return 0.0
    return float(min(2 ** (failures - free), MAX_WAIT_SECONDS))


def _free(key: str) -> int:
    # Many people may share one address (an office, a proxy): an address alone is slowed down
    # only after many more failures than an account, so a stranger's typos cannot lock them out.
    return FREE_FAILURES_PER_ADDRESS if key.startswith("ip:") else FREE_FAILURES


def authenticate(
    session: Session, keys: Sequence[str], *, email: str, password: str, now: datetime
) -> tuple[User | None, int]:
    """The active user with this email and password (or None), and the whole seconds to wait
    before trying again when the attempt was refused unchecked. A failure counts against every
    key (the account, the address it came from); a success clears them. The counts are locked
    while the password is checked, so parallel guesses take their turn. The caller commits."""
    rows = session.scalars(
        select(LoginFailure).where(LoginFailure.key.in_(keys)).with_for_update()
    ).all()
    waits = [
        wait_after(row.failures, _free(row.key)) - (now - row.last_failed_at).total_seconds()
        for row in rows
    ]
    wait = max([0, *(math.ceil(value) for value in waits)])
    if wait:
        return None, wait
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    valid = verify_password(user.password_hash if user else _NOBODY, password)
    if user is not None and valid and user.active:
        session.execute(delete(LoginFailure).where(LoginFailure.key.in_(keys)))
        user.last_login_at = now
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        return user, 0
    for key in keys:
        _count_failure(session, key, now)
    return None, 0


def _count_failure(session: Session, key: str, now: datetime) -> None:
    counted = session.execute(
        update(LoginFailure)
        .where(LoginFailure.key == key)
        .values(failures=LoginFailure.failures + 1, last_failed_at=now)
    )
    if counted.rowcount:  # type: ignore[attr-defined]
        return
    try:
        with session.begin_nested():  # two failures racing for a new key: one inserts
            session.add(LoginFailure(key=key, failures=1, last_failed_at=now))
    except IntegrityError:
        _count_failure(session, key, now)


def has_owner(session: Session) -> bool:
    """Whether anybody can run this Postventa yet: until then the admin asks for its owner."""
    return session.scalar(select(User.id).where(User.role == Role.OWNER).limit(1)) is not None


def _active_owners(session: Session) -> int:
    count = session.scalar(
        select(func.count()).select_from(User).where(User.role == Role.OWNER, User.active)
    )
    return count or 0


def change_user(
    session: Session, user: User, *, role: Role | None = None, active: bool | None = None,
    locale: str | None = None, notify_cases: bool | None = None, now: datetime, actor: str,
) -> None:  # fmt: skip
    """Change a login's role, whether it may log in, its language, or whether cases are emailed
    to it; the last owner who can log in stays one, or nobody could run this Postventa."""
    demoted = role is not None and role is not Role.OWNER and user.role is Role.OWNER
    disabled = active is False and user.active and user.role is Role.OWNER
    if (demoted or disabled) and user.active and _active_owners(session) <= 1:
        raise AccountError(f"{user.email} is the last owner who can log in: make another first")
    details: dict[str, str | bool] = {}
    if role is not None and role is not user.role:
        user.role, details["role"] = role, role.value
    if active is not None and active != user.active:
        user.active, details["active"] = active, active
    if locale is not None and locale != user.locale:
        user.locale, details["locale"] = locale, locale
    if notify_cases is not None and notify_cases != user.notify_cases:
        user.notify_cases, details["notify_cases"] = notify_cases, notify_cases
    if details:
        audit.record(session, at=now, actor=actor, action="user.change", entity_type="user",
                     entity_id=user.id, **details)  # fmt: skip


def set_password(session: Session, user: User, password: str, *, now: datetime, actor: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = hash_password(password)
    audit.record(session, at=now, actor=actor, action="user.password", entity_type="user",
                 entity_id=user.id)  # fmt: skip


def revoke_api_token(session: Session, token: ApiToken, *, now: datetime, actor: str) -> None:
    """The token stops working at once; the row stays, for the audit trail."""
    if token.revoked_at is None:
        token.revoked_at = now
        audit.record(session, at=now, actor=actor, action="token.revoke", entity_type="api_token",
                     entity_id=token.id, name=token.name)  # fmt: skip
