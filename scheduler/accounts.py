"""Logins (owners and staff) and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.contacts import normalise_email
from scheduler.lifecycle import Role
from scheduler.models import ApiToken, User

MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()


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
