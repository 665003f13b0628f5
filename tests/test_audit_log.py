"""The audit log's pages: filtered by who, what and when, newest first, cut by keyset (SQLite
and PostgreSQL); a filter that cannot be read is a 400 naming the field."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.audit import AuditFilter, entries
from scheduler.config import defaults
from scheduler.figures.period import days_between
from scheduler.models import AuditEntry, User
from tests.factories import NOW

TZ = defaults().business.tz


def fill(session: Session, owner: User) -> None:
    """Twelve entries an hour apart, newest last: the owner's on cases, the worker's (two of
    its processes) on sales, the customer's opt-outs, two at the same moment."""
    for n in range(12):
        actor, action, kind = [
            (audit.by_user(owner.id), "case.assign", "case"),
            ("worker:host-1" if n % 2 else "worker", "sale.cancel", "sale"),
            ("customer", "customer.opt_out", "customer"),
        ][n % 3]
        at = NOW + timedelta(hours=min(n, 10))  # the last three at the same moment
        audit.record(session, at=at, actor=actor, action=action, entity_type=kind, entity_id=n)
    session.commit()


FILLED = {"case.assign", "sale.cancel", "customer.opt_out"}


def ids(found: list[AuditEntry]) -> list[int | None]:
    """The entries `fill` wrote, by number (the owner's own creation is in the log too)."""
    return [entry.entity_id for entry in found if entry.action in FILLED]


def test_the_log_filtered_by_who_what_and_when(session: Session, owner: User) -> None:
    fill(session, owner)
    every, following = entries(session, AuditFilter())
    assert ids(every) == [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0] and following is None
    mine, _ = entries(session, AuditFilter(who=audit.by_user(owner.id)))
    assert ids(mine) == [9, 6, 3, 0]
    worker, _ = entries(session, AuditFilter(who="worker"))  # any of its processes
    assert ids(worker) == [10, 7, 4, 1]
    sales, _ = entries(session, AuditFilter(action="sale."))
    assert ids(sales) == [10, 7, 4, 1]
    assert ids(entries(session, AuditFilter(action="%"))[0]) == []  # a character, no wildcard
    customers, _ = entries(session, AuditFilter(entity_type="customer", entity_id=5))
    assert ids(customers) == [5]
    # NOW is 10:00 in Lima: entries up to 13:00 fall on the first day, 14:00 on are later.
    first_day, _ = entries(
        session, AuditFilter(days=days_between("2026-11-23", "2026-11-23", tz=TZ))
    )
    assert ids(first_day) == [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    none, _ = entries(session, AuditFilter(days=days_between("2026-11-24", None, tz=TZ)))
    assert ids(none) == []


def test_pages_newest_first_neither_repeat_nor_skip(session: Session, owner: User) -> None:
    """Pages of five, three entries sharing one moment across a page's end; an entry written
    meanwhile goes to the first page, and the pages already cut go on where they were."""
    fill(session, owner)
    first, following = entries(session, AuditFilter(), size=5)
    audit.record(session, at=NOW + timedelta(days=1), actor="cli", action="x", entity_type="case")
    session.commit()
    seen = ids(first)
    while following is not None:
        page, following = entries(session, AuditFilter(), after=following, size=5)
        seen += ids(page)
    assert seen == [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]


def test_the_log_page_filters_and_pages_by_the_url(
    owner_client: FlaskClient, owner: User, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("scheduler.audit.PAGE", 2)
    fill(session, owner)
    page = owner_client.get("/admin/audit?who=worker&type=sale").get_data(as_text=True)
    assert page.count("<code>sale.cancel</code>") == 2 and "case.assign" not in page
    following = re.search(r'href="([^"]+)" rel="next"', page)
    assert following is not None
    link = html.unescape(following.group(1))
    assert "who=worker" in link and "type=sale" in link
    second = owner_client.get(link).get_data(as_text=True)
    assert second.count("<code>sale.cancel</code>") == 2 and 'rel="next"' not in second
    assert "The newest" in second


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("who=user:999", "Who: nobody the log knows by that name."),
        ("action=" + "x" * 65, "What: an action is at most 64 plain characters."),
        ("action=a%00b", "What: an action is at most 64 plain characters."),
        ("type=planet", "About: choose one of the list."),
        ("entity=12a", "Number: a whole number, such as 42."),
        ("entity=" + "9" * 18, "Number: a whole number, such as 42."),
        ("after=1.2147483648", "Page: this link is not a page of the log."),
        ("from=2026-02-30", "From: "),
        ("from=2026-11-30&to=2026-11-01", "From: "),
        ("after=7", "Page: this link is not a page of the log."),
    ],
)
def test_a_log_filter_that_cannot_be_read_is_a_400(
    owner_client: FlaskClient, query: str, says: str
) -> None:
    answer = owner_client.get(f"/admin/audit?{query}")
    assert answer.status_code == 400 and html.escape(says, quote=False) in answer.get_data(
        as_text=True
    )
