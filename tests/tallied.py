"""What the tallies and the follow-ups' kept columns should say, read from the follow-ups,
their replies, sales and cases one by one (not from what the triggers kept); and a shop with
three follow-ups sent, to write replies to."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.figures.objections import noted_follow_ups, read_again
from scheduler.figures.summary import REPLY_WINDOW
from scheduler.figures.tallies import IN_TIME, KEY, NO_REPLY, NOT_OBJECTED, RESOLVED
from scheduler.lifecycle import CaseStatus, Direction, FollowUpStatus
from scheduler.listening.classify import Label
from scheduler.models import Case, FollowUp, FollowUpTally, Message, Sale
from scheduler.sending.sales import SaleInput
from tests.dispatching import Clock, dispatcher, setup_sales
from tests.factories import NOW, sale_input


def replies_say(session: Session) -> dict[int, str | None]:
    """What each follow-up's `replied` should be, read from its replies here: "in_time" when
    one came within 7 days of its sending, "late" when all came outside them."""
    said: dict[int, str | None] = {}
    rows = session.execute(
        select(FollowUp.id, FollowUp.sent_at, Message.created_at).outerjoin(
            Message,
            (Message.follow_up_id == FollowUp.id) & (Message.direction == Direction.INBOUND),
        )
    )
    for follow_up, sent, reply in rows:
        if reply is None:
            said.setdefault(follow_up, None)
        elif sent is not None and sent <= reply <= sent + REPLY_WINDOW:
            said[follow_up] = IN_TIME
        elif said.get(follow_up) != IN_TIME:
            said[follow_up] = "late"
    return said


def objections_say(session: Session) -> dict[int, str | None]:
    """What each follow-up's `objected` should be, read from its replies and their cases here:
    "resolved" when an objection to it is in a resolved case, "objected" when none is."""
    said: dict[int, str | None] = {}
    rows = session.execute(
        select(FollowUp.id, Message.id, Case.status)
        .select_from(FollowUp)
        .outerjoin(
            Message,
            (Message.follow_up_id == FollowUp.id)
            & (Message.direction == Direction.INBOUND)
            & (Message.label == Label.OBJECTION.value),
        )
        .outerjoin(Case, Case.id == Message.case_id)
    )
    for follow_up, objection, status in rows:
        if objection is None:
            said.setdefault(follow_up, None)
        elif status is CaseStatus.RESOLVED:
            said[follow_up] = RESOLVED
        elif said.get(follow_up) != RESOLVED:
            said[follow_up] = "objected"
    return said


def kept_objected(session: Session) -> dict[int, str | None]:
    rows = session.execute(select(FollowUp.id, FollowUp.objected))
    return {follow_up: objected for follow_up, objected in rows}


def kept_replied(session: Session) -> dict[int, str | None]:
    return {row.id: row.replied for row in session.execute(select(FollowUp.id, FollowUp.replied))}


def one_by_one(session: Session) -> Counter[tuple[Hashable, ...]]:
    """What the tallies should say: each follow-up's UTC days, step, channel, status, whether
    it was replied to, its sale's product and whether it was objected to (read from its
    replies, its sale and its objections' cases, not from what the triggers kept)."""
    found: Counter[tuple[Hashable, ...]] = Counter()
    replied, objected = replies_say(session), objections_say(session)
    for follow_up, due, sent, step, channel, status, product in session.execute(
        select(
            FollowUp.id,
            FollowUp.due_at,
            FollowUp.sent_at,
            FollowUp.step_id,
            FollowUp.channel,
            FollowUp.status,
            Sale.product_id,
        ).join(Sale, Sale.id == FollowUp.sale_id)
    ):
        day = sent.astimezone(UTC).date() if sent else None
        said = replied[follow_up] or NO_REPLY
        key = (due.astimezone(UTC).date(), day, step, str(channel), str(status), said)
        found[(*key, product or 0, objected[follow_up] or NOT_OBJECTED)] += 1
    return found


def tallied(session: Session) -> Counter[tuple[Hashable, ...]]:
    columns = [getattr(FollowUpTally, name) for name in KEY]
    rows = session.execute(select(*columns, func.sum(FollowUpTally.n)).group_by(*columns))
    return +Counter({tuple(key): int(n) for *key, n in rows})


def sales(count: int) -> list[SaleInput]:
    return [sale_input(f"S-{n}", phone=f"+5198700{n:04d}") for n in range(count)]


def sent_three(engine: Engine, config: Config) -> tuple[list[int], Any]:
    """Three customers' day-1 thank-yous sent (their ids, and the clock they went out by)."""
    sessions = setup_sales(engine, config, *sales(3))
    clock = Clock(NOW + timedelta(days=1))
    assert dispatcher(sessions, config, clock).run_pass()["sent"] == 3
    with sessions() as session:
        sent = session.scalars(
            select(FollowUp.id).where(FollowUp.status == FollowUpStatus.SENT).order_by(FollowUp.id)
        ).all()
    return list(sent), sessions


def worked(session: Session) -> None:
    """On PostgreSQL, what the worker's next look writes: every noted follow-up's
    `objected`, in this transaction (SQLite's triggers note none)."""
    for follow_up in noted_follow_ups(session):
        assert read_again(session, follow_up)


def agreed(session: Session) -> None:
    """`replied` and `objected` (once the worker has looked) are what the replies say, and
    the tallies count the follow-ups as they are."""
    session.flush()
    worked(session)
    assert kept_replied(session) == replies_say(session)
    assert kept_objected(session) == objections_say(session)
    assert tallied(session) == one_by_one(session)
