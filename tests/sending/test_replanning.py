"""Changing pending follow-ups: cancelling a sale, resuming after a case, re-planning a cadence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.lifecycle import Anchor, Channel, FollowUpStatus, SaleStatus
from scheduler.models import AuditEntry, Cadence, CadenceStep, FollowUp, Sale
from scheduler.sending.replanning import cancel_sale, replan_cadence, resume_held
from tests.dispatching import follow_up, setup_sales
from tests.factories import NOW, sale_input

LIMA = ZoneInfo("America/Lima")
DAY1 = NOW + timedelta(days=1)


def lima(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LIMA).astimezone(UTC)


def _sale(session: Session, external_id: str = "S-1") -> Sale:
    return session.scalars(select(Sale).where(Sale.external_id == external_id)).one()


def _statuses(session: Session, external_id: str = "S-1") -> dict[str, FollowUpStatus]:
    rows = session.execute(
        select(CadenceStep.key, FollowUp.status)
        .join(FollowUp.step)
        .join(FollowUp.sale)
        .where(Sale.external_id == external_id)
    )
    return {key: status for key, status in rows}


def _audit(session: Session, action: str) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
    )


def _step(session: Session, key: str) -> CadenceStep:
    return session.scalars(select(CadenceStep).where(CadenceStep.key == key)).one()


def _cadence_id(session: Session) -> int:
    return session.scalars(select(Cadence.id)).one()


def test_cancel_sale_cancels_only_pending_follow_ups(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        sent = follow_up(session, "day1-thanks")
        sent.status, sent.sent_at = FollowUpStatus.SENT, DAY1
        follow_up(session, "day7-check-in").status = FollowUpStatus.HELD
        sale = _sale(session)
        later = DAY1 + timedelta(hours=2)
        assert cancel_sale(session, sale, now=later, actor="user:1", reason="returned") == 3
        session.commit()
        assert (sale.status, sale.cancelled_at) == (SaleStatus.CANCELLED, later)
        assert _statuses(session) == {
            "day1-thanks": FollowUpStatus.SENT,
            "day7-check-in": FollowUpStatus.CANCELLED,
            "day21-score": FollowUpStatus.CANCELLED,
            "day90-usage": FollowUpStatus.CANCELLED,
        }
        cancelled = follow_up(session, "day7-check-in")
        assert cancelled.status_reason == "returned" and cancelled.updated_at == later
        assert follow_up(session, "day1-thanks").sent_at == DAY1
        [entry] = _audit(session, "sale.cancel")
        assert (entry.actor, entry.entity_type, entry.entity_id) == ("user:1", "sale", sale.id)
        assert entry.at == later
        assert entry.details == {"reason": "returned", "follow_ups": 3}


def test_cancel_sale_is_idempotent(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        sale = _sale(session)
        assert cancel_sale(session, sale, now=DAY1, actor="cli", reason="first") == 4
        session.commit()
        later = DAY1 + timedelta(days=1)
        assert cancel_sale(session, sale, now=later, actor="cli", reason="again") == 0
        session.commit()
        assert sale.cancelled_at == DAY1
        assert len(_audit(session, "sale.cancel")) == 1
        assert {row.status_reason for row in sale.follow_ups} == {"first"}


def test_cancel_sale_leaves_other_sales_alone(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"), sale_input("S-2"))
    with sessions() as session:
        cancel_sale(session, _sale(session, "S-1"), now=DAY1, actor="cli", reason="x")
        session.commit()
        assert set(_statuses(session, "S-2").values()) == {FollowUpStatus.SCHEDULED}
        assert _sale(session, "S-2").status is SaleStatus.ACTIVE


def test_resume_held_reschedules_into_the_window(engine: Engine, config: Config) -> None:
    other = sale_input("S-2", customer_name="Luis Rojas", phone="+51911111111")
    sessions = setup_sales(engine, config, sale_input("S-1"), other)
    with sessions() as session:
        past = follow_up(session, "day7-check-in")  # due Monday 30 Nov, 10:00 Lima
        assert past.due_at == lima(2026, 11, 30, 10)
        future = follow_up(session, "day21-score")  # due Monday 14 Dec, 10:00 Lima
        others = follow_up(session, "day7-check-in", "S-2")
        for row in (past, future, others):
            row.status = FollowUpStatus.HELD
        session.commit()
        now = lima(2026, 12, 1, 21, 30)  # Tuesday 21:30 Lima: the window has closed
        assert resume_held(session, past.customer_id, config=config, now=now) == 2
        session.commit()
        assert past.status is FollowUpStatus.SCHEDULED
        assert past.due_at == lima(2026, 12, 2, 9)
        assert past.status_reason == "resumed after the case closed"
        assert past.updated_at == now
        assert future.status is FollowUpStatus.SCHEDULED
        assert future.due_at == lima(2026, 12, 14, 10)
        assert others.status is FollowUpStatus.HELD
        assert others.due_at == lima(2026, 11, 30, 10)
        assert follow_up(session, "day1-thanks").status is FollowUpStatus.SCHEDULED


def test_resume_held_inside_the_window_goes_now(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        row = follow_up(session, "day7-check-in")
        row.status = FollowUpStatus.HELD
        session.commit()
        now = lima(2026, 12, 1, 11, 15)
        assert resume_held(session, row.customer_id, config=config, now=now) == 1
        assert row.due_at == now
        assert resume_held(session, row.customer_id, config=config, now=now) == 0


def test_replan_redates_a_changed_step_but_not_sent_ones(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        sent = follow_up(session, "day1-thanks")
        sent.status, sent.sent_at = FollowUpStatus.SENT, DAY1
        _step(session, "day1-thanks").offset_minutes = 2 * 24 * 60
        _step(session, "day7-check-in").offset_minutes = 10 * 24 * 60
        cadence_id = _cadence_id(session)
        counts = replan_cadence(session, cadence_id, config=config, now=DAY1, actor="user:1")
        session.commit()
        assert counts == {"redated": 1, "cancelled": 0, "added": 0}
        moved = follow_up(session, "day7-check-in")
        assert moved.due_at == lima(2026, 12, 3, 10)  # Thursday, ten days after the sale
        assert moved.status is FollowUpStatus.SCHEDULED
        assert moved.status_reason == "re-planned after a cadence change"
        assert moved.updated_at == DAY1
        assert follow_up(session, "day1-thanks").due_at == DAY1
        assert follow_up(session, "day21-score").due_at == lima(2026, 12, 14, 10)
        [entry] = _audit(session, "cadence.replan")
        assert (entry.entity_type, entry.entity_id, entry.actor) == (
            "cadence",
            cadence_id,
            "user:1",
        )
        assert entry.details == counts


def test_replan_keeps_a_held_follow_up_held(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        held = follow_up(session, "day7-check-in")
        held.status = FollowUpStatus.HELD
        _step(session, "day7-check-in").offset_minutes = 10 * 24 * 60
        counts = replan_cadence(session, _cadence_id(session), config=config, now=NOW, actor="x")
        assert counts["redated"] == 1
        assert held.status is FollowUpStatus.HELD
        assert held.due_at == lima(2026, 12, 3, 10)


def test_replan_fits_the_new_date_into_the_window(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        _step(session, "day7-check-in").offset_minutes = 6 * 24 * 60  # Sunday: not a send day
        replan_cadence(session, _cadence_id(session), config=config, now=NOW, actor="x")
        assert follow_up(session, "day7-check-in").due_at == lima(2026, 11, 30, 9)


def test_unchanged_cadence_replans_nothing(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        before = {row.id: row.due_at for row in session.scalars(select(FollowUp))}
        counts = replan_cadence(session, _cadence_id(session), config=config, now=NOW, actor="x")
        assert counts == {"redated": 0, "cancelled": 0, "added": 0}
        assert {row.id: row.due_at for row in session.scalars(select(FollowUp))} == before


def test_replan_cancels_follow_ups_of_a_deactivated_step(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"), sale_input("S-2"))
    with sessions() as session:
        _step(session, "day21-score").active = False
        counts = replan_cadence(session, _cadence_id(session), config=config, now=DAY1, actor="x")
        session.commit()
        assert counts == {"redated": 0, "cancelled": 2, "added": 0}
        for external_id in ("S-1", "S-2"):
            row = follow_up(session, "day21-score", external_id)
            assert row.status is FollowUpStatus.CANCELLED
            assert row.status_reason == "step removed from cadence"
            assert follow_up(session, "day7-check-in", external_id).status is (
                FollowUpStatus.SCHEDULED
            )


def test_replan_adds_a_new_step_to_sales_following_the_cadence(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"), sale_input("S-2"))
    with sessions() as session:
        cancel_sale(session, _sale(session, "S-2"), now=NOW, actor="x", reason="returned")
        session.add(
            CadenceStep(
                cadence_id=_cadence_id(session),
                key="day3-tip",
                anchor=Anchor.SALE,
                offset_minutes=3 * 24 * 60,
                channel=Channel.SMS,
                template_name="check_in",
            )
        )
        session.flush()
        counts = replan_cadence(session, _cadence_id(session), config=config, now=NOW, actor="x")
        session.commit()
        assert counts == {"redated": 0, "cancelled": 0, "added": 1}
        added = follow_up(session, "day3-tip", "S-1")
        assert added.status is FollowUpStatus.SCHEDULED
        assert added.due_at == lima(2026, 11, 26, 10)
        assert "day3-tip" not in _statuses(session, "S-2")


def test_replan_leaves_score_anchored_follow_ups_alone(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        sale = _sale(session)
        step = _step(session, "review-request")
        due = NOW + timedelta(days=22)
        score_row = FollowUp(
            sale_id=sale.id,
            step_id=step.id,
            customer_id=sale.customer_id,
            channel=Channel.SMS,
            due_at=due,
            facts={"score": 10},
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(score_row)
        step.offset_minutes = 24 * 60
        session.flush()
        counts = replan_cadence(session, _cadence_id(session), config=config, now=NOW, actor="x")
        assert counts == {"redated": 0, "cancelled": 0, "added": 0}
        assert (score_row.status, score_row.due_at) == (FollowUpStatus.SCHEDULED, due)

        step.active = False  # a score step switched off: its pending follow-ups go
        counts = replan_cadence(session, _cadence_id(session), config=config, now=NOW, actor="x")
        assert counts == {"redated": 0, "cancelled": 1, "added": 0}
        assert score_row.status is FollowUpStatus.CANCELLED
        assert score_row.status_reason == "step removed from cadence"
