"""Who is told of a case: someone always is, or the admin says loudly that nobody would be.

By default every owner who can log in is emailed new and overdue cases (each may turn it off
for themself on their account page); `cases.notify_emails` and `cases.notify_sms` add people,
and `cases.escalate_to`, when set, replaces everyone for overdue cases.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.lifecycle import Role
from scheduler.models import User


@dataclass(frozen=True)
class Recipients:
    new_case: tuple[str, ...]  # email addresses told at once of a new case
    new_case_sms: tuple[str, ...]  # phone numbers told at once
    overdue: tuple[str, ...]  # email addresses told when a case passes its deadline

    @property
    def nobody_of_new_cases(self) -> bool:
        return not (self.new_case or self.new_case_sms)


def _once(addresses: Iterable[str]) -> tuple[str, ...]:
    """In order, each address once whatever its case (Ana@x.pe and ana@x.pe are one inbox)."""
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(address.lower(), address)
    return tuple(seen.values())


def recipients(session: Session, config: Config) -> Recipients:
    owners = session.scalars(
        select(User.email)
        .where(User.role == Role.OWNER, User.active, User.notify_cases)
        .order_by(User.id)
    ).all()
    cases = config.cases
    new_case = _once([*cases.notify_emails, *owners])
    return Recipients(
        new_case=new_case,
        new_case_sms=cases.notify_sms,
        overdue=_once(cases.escalate_to) if cases.escalate_to else new_case,
    )
