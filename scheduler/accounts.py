"""Logins (owners and staff): passwords, the slowing down of guesses, log-in sessions; and API
tokens."""

from __future__ import annotations

import functools
import hashlib
import math
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.addresses import normalise_email
from scheduler.db import insert_or_else
from scheduler.lifecycle import Role
from scheduler.models import ApiToken, LoginFailure, LoginSession, User
from scheduler.typed_text import typed_text

MIN_PASSWORD_LENGTH = 10
# Per account and address: typos cost nothing; from the fourth failure in a row, each waits
# longer (1 s doubling up to MAX_WAIT_SECONDS), so one address gets 4 guesses an hour at most.
FREE_FAILURES = 3
# Per address, whatever the account: many people may share one (an office, a proxy).
FREE_FAILURES_PER_ADDRESS = 20
MAX_WAIT_SECONDS = 15 * 60
# Per account, from every address: 50 failures are held against it, one forgiven every 10
# minutes; when 50 are held, every attempt waits for the next to be forgiven. Guesses spread
# over many addresses get 6 an hour; one address (4 an hour at most) never fills it, so a
# stranger alone cannot make the owner wait.
FREE_FAILURES_PER_ACCOUNT = 50
FORGIVEN_EVERY = timedelta(minutes=10)
ADDRESS_LENGTH = 64  # what a key keeps of the address: an IPv6 with its zone fits
SEEN_EVERY = timedelta(minutes=5)  # how stale a session's last_seen_at may get
_hasher = PasswordHasher()


@functools.cache
def _nobody() -> str:
    """Checked against when the email is unknown, so that a wrong address takes as long as a
    wrong password and the answer does not tell which accounts exist. Hashed on first use, not
    on import: every process (the worker, each CLI command) would pay for it at start."""
    return _hasher.hash(secrets.token_hex(16))


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
        address = normalise_email(email)  # in lower case: logins are case-insensitive
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
    name = typed_text(
        name,
        empty="a token needs a name (who or what will use it)",
        what="a token's name",
        most=100,
        error=AccountError,
    )
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


def login_keys(email: str, address: str) -> list[str]:
    """The counts an attempt on `email` from `address` is held to, in the order they are locked
    (always the same order, so that parallel attempts cannot deadlock)."""
    address = address[:ADDRESS_LENGTH]
    return sorted([f"account:{email}", f"ip:{address}", f"pair:{address} {email}"])


def _forgiven(failures: int, since: datetime, now: datetime) -> int:
    return max(0, min(failures, (now - since) // FORGIVEN_EVERY))


def wait_for(key: str, failures: int, since: datetime, now: datetime) -> float:
    """Seconds an attempt must still wait because of the count under `key` (0: it is checked).

    `since` is the row's last_failed_at: the last failure, or for an account the moment from
    which its failures are forgiven."""
    elapsed = (now - since).total_seconds()
    if key.startswith("account:"):
        excess = failures - _forgiven(failures, since, now) - FREE_FAILURES_PER_ACCOUNT + 1
        step = FORGIVEN_EVERY.total_seconds()
        return max(0.0, excess * step - elapsed % step) if excess > 0 else 0.0
    free = FREE_FAILURES_PER_ADDRESS if key.startswith("ip:") else FREE_FAILURES
    return max(0.0, wait_after(failures, free) - elapsed)


def after_failure(key: str, failures: int, since: datetime, now: datetime) -> tuple[int, datetime]:
    """The count and its moment once a failure is added at `now`."""
    if not key.startswith("account:"):
        return failures + 1, now
    forgiven = _forgiven(failures, since, now)
    held = failures - forgiven
    return held + 1, since + forgiven * FORGIVEN_EVERY if held else now


def authenticate(
    session: Session, *, email: str, address: str, password: str, now: datetime
) -> tuple[User | None, int]:
    """The active user with this email and password (or None), and the whole seconds to wait
    before trying again when the attempt was refused unchecked. A failure counts against the
    account from this address, the address and the account; a success clears the first two
    (the account's count is forgiven with time only, or guessers could reset it by waiting for
    the owner to log in). The counts are locked while the password is checked, so parallel
    guesses take their turn. The caller commits."""
    email = email.strip().lower()
    keys = login_keys(email, address)
    # Every count exists before it is locked, even on a first attempt: parallel first guesses
    # would otherwise all be checked. A row another transaction inserted is waited for.
    session.execute(
        insert_or_else(session, LoginFailure).on_conflict_do_nothing(),
        [{"key": key, "failures": 0, "last_failed_at": now} for key in keys],
    )
    rows = session.scalars(
        select(LoginFailure)
        .where(LoginFailure.key.in_(keys))
        .order_by(LoginFailure.key)
        .with_for_update()
    ).all()
    waits = [wait_for(row.key, row.failures, row.last_failed_at, now) for row in rows]
    wait = max([0, *(math.ceil(value) for value in waits)])
    if wait:
        return None, wait
    user = session.scalar(select(User).where(User.email == email))
    valid = verify_password(user.password_hash if user else _nobody(), password)
    if user is not None and valid and user.active:
        for row in rows:
            if not row.key.startswith("account:"):
                session.delete(row)
        user.last_login_at = now
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        return user, 0
    for row in rows:
        row.failures, row.last_failed_at = after_failure(
            row.key, row.failures, row.last_failed_at, now
        )
    return None, 0


def open_session(session: Session, user: User, *, now: datetime) -> str:
    """A new log-in session for `user`; returns the token its cookie carries (only a digest of
    it is kept). The caller commits."""
    token = secrets.token_urlsafe(32)
    row = LoginSession(user_id=user.id, token_hash=_digest(token), created_at=now, last_seen_at=now)
    session.add(row)
    session.flush()
    return token


def find_session(session: Session, token: str) -> tuple[LoginSession, User] | None:
    """The live session whose cookie carries `token`, and its user if they may still log in."""
    row = session.scalar(
        select(LoginSession).where(
            LoginSession.token_hash == _digest(token), LoginSession.revoked_at.is_(None)
        )
    )
    if row is None:
        return None
    user = session.get(User, row.user_id)
    return (row, user) if user is not None and user.active else None


def seen(row: LoginSession, now: datetime) -> bool:
    """Note that the session was used, at most every few minutes; whether anything changed
    (then the caller commits)."""
    if now - row.last_seen_at < SEEN_EVERY:
        return False
    row.last_seen_at = now
    return True


def end_session(session: Session, token: str, *, now: datetime) -> None:
    """Log out: the cookie that carries `token` opens nothing any more. The caller commits."""
    session.execute(
        update(LoginSession)
        .where(LoginSession.token_hash == _digest(token), LoginSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def end_sessions(session: Session, user: User, *, now: datetime, keep: str | None = None) -> None:
    """End every session of `user` but the one whose cookie carries `keep`. The caller commits."""
    ending = update(LoginSession).where(
        LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None)
    )
    if keep is not None:
        ending = ending.where(LoginSession.token_hash != _digest(keep))
    session.execute(ending.values(revoked_at=now))


def has_owner(session: Session) -> bool:
    """Whether anybody can run this Postventa yet: until then the admin asks for its owner."""
    return session.scalar(select(User.id).where(User.role == Role.OWNER).limit(1)) is not None


def _active_owners(session: Session) -> int:
    count = session.scalar(
        select(func.count()).select_from(User).where(User.role == Role.OWNER, User.active)
    )
    return count or 0


def change_user(
    session: Session,
    user: User,
    *,
    role: Role | None = None,
    active: bool | None = None,
    locale: str | None = None,
    notify_cases: bool | None = None,
    now: datetime,
    actor: str,
    by: User | None = None,
) -> None:
    """Change a login's role, whether it may log in, its language, or whether cases are emailed
    to it; the last owner who can log in stays one, or nobody could run this Postventa, and
    nobody (`by`) disables their own log-in: they would be locked out mid-sentence."""
    if by is not None and by.id == user.id and active is False:
        raise AccountError("you cannot disable your own log-in")
    demoted = role is not None and role is not Role.OWNER and user.role is Role.OWNER
    disabled = active is False and user.active and user.role is Role.OWNER
    if (demoted or disabled) and user.active and _active_owners(session) <= 1:
        raise AccountError(f"{user.email} is the last owner who can log in: make another first")
    details: dict[str, str | bool] = {}
    if role is not None and role is not user.role:
        user.role, details["role"] = role, role.value
    if active is not None and active != user.active:
        user.active, details["active"] = active, active
        if not active:
            end_sessions(session, user, now=now)
    if locale is not None and locale != user.locale:
        user.locale, details["locale"] = locale, locale
    if notify_cases is not None and notify_cases != user.notify_cases:
        user.notify_cases, details["notify_cases"] = notify_cases, notify_cases
    if details:
        audit.record(
            session,
            at=now,
            actor=actor,
            action="user.change",
            entity_type="user",
            entity_id=user.id,
            **details,
        )


def change_own_password(
    session: Session,
    user: User,
    *,
    current: str,
    new: str,
    now: datetime,
    actor: str,
    keep: str | None,
) -> None:
    """A person's own new password, given the one they have now: a session left open on a
    shared computer cannot take the account over."""
    if not verify_password(user.password_hash, current):
        raise AccountError("the current password is not right")
    set_password(session, user, new, now=now, actor=actor, keep=keep)


def set_password(
    session: Session,
    user: User,
    password: str,
    *,
    now: datetime,
    actor: str,
    keep: str | None = None,
) -> None:
    """A new password; it ends every session of `user` opened with the old one but the session
    `keep` (the person who changes their own password stays logged in)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = hash_password(password)
    end_sessions(session, user, now=now, keep=keep)
    audit.record(
        session, at=now, actor=actor, action="user.password", entity_type="user", entity_id=user.id
    )


def revoke_api_token(session: Session, token: ApiToken, *, now: datetime, actor: str) -> None:
    """The token stops working at once; the row stays, for the audit trail."""
    if token.revoked_at is None:
        token.revoked_at = now
        audit.record(
            session,
            at=now,
            actor=actor,
            action="token.revoke",
            entity_type="api_token",
            entity_id=token.id,
            name=token.name,
        )
