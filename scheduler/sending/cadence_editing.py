"""Owners editing cadences: the steps checked as a whole, saved, and the follow-ups already
planned from them re-dated (`follow_ups.replan_cadence`).

Steps are matched by their key: an edited step keeps its row (and its follow-ups), a new key
adds one, and a key left out is deactivated, never deleted, since sent follow-ups point at it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.config import Config
from scheduler.lifecycle import PENDING, Anchor, Channel, FollowUpStatus
from scheduler.listening.inbound import ANSWER_TEMPLATES
from scheduler.models import (
    Cadence,
    CadenceStep,
    FollowUp,
    MessageTemplate,
    Product,
    nothing_in_flight,
)
from scheduler.sending.composing import row_channel
from scheduler.sending.due_times import parse_condition
from scheduler.sending.replanning import replan_cadence
from scheduler.typed_text import unfit_character

KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MAX_OFFSET_DAYS = 3 * 365
NOT_A_STEP = "this template answers a customer who wrote to us: a step cannot use it"
# Every resolved case is followed by "did we solve it?": a cadence without such a step borrows
# the default cadence's, so the default cadence must keep one.
CASE_CHECK_KEPT = (
    "the default cadence keeps an active step after a resolved case: every cadence without "
    "one uses it to ask whether the problem was really solved"
)


class CadenceError(ValueError):
    """Edits that cannot be saved; `problems` maps a field ("name", "steps.2.offset") to why."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {text}" for field, text in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class StepInput:
    key: str
    anchor: str
    offset_days: str  # as typed: "7", "-14", "0.5"
    offset_hours: str
    channel: str
    template_name: str
    condition: str
    active: bool = True


@dataclass(frozen=True)
class CadenceInput:
    name: str
    product_category: str
    active: bool
    steps: Sequence[StepInput]
    product_ids: Sequence[int] = ()


def _number(text: str, what: str) -> float:
    try:
        value = float((text or "0").strip().replace(",", "."))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a number, such as 7 or -14")
    return value


def step_offset(step: StepInput) -> timedelta:
    """The step's offset from its anchor; raises ValueError saying what is wrong."""
    days, hours = _number(step.offset_days, "days"), _number(step.offset_hours, "hours")
    if abs(days + hours / 24) > MAX_OFFSET_DAYS:
        raise ValueError(f"at most {MAX_OFFSET_DAYS} days from its anchor")
    return timedelta(days=days, hours=hours)


def offset_parts(minutes: int) -> tuple[int, float]:
    """A step's offset as the editor shows it: whole days toward zero (-14 d stays -14 d), and
    the hours left."""
    days = int(minutes / (24 * 60))
    return days, (minutes - days * 24 * 60) / 60


def check_cadence(edit: CadenceInput, templates: set[tuple[str, str]]) -> dict[str, str]:
    """Every problem with the edit, by field; `templates` holds (name, channel) that exist."""
    problems: dict[str, str] = {}
    if not edit.name.strip():
        problems["name"] = "a cadence needs a name"
    elif len(edit.name.strip()) > 100:
        problems["name"] = "at most 100 characters"
    elif unfit := unfit_character(edit.name):
        problems["name"] = unfit
    if len(edit.product_category.strip()) > 100:
        problems["product_category"] = "at most 100 characters"
    elif unfit := unfit_character(edit.product_category):
        problems["product_category"] = unfit
    seen: dict[str, int] = {}
    for index, step in enumerate(edit.steps):
        where = f"steps.{index}"
        if not KEY.match(step.key):
            problems[f"{where}.key"] = (
                "lower-case letters, digits and dashes, such as day7-check-in"
            )
        elif step.key in seen:
            problems[f"{where}.key"] = f"already used by step {seen[step.key] + 1}"
        seen.setdefault(step.key, index)
        if step.anchor not in {anchor.value for anchor in Anchor}:
            problems[f"{where}.anchor"] = f"one of {', '.join(a.value for a in Anchor)}"
        if step.channel not in {channel.value for channel in Channel}:
            problems[f"{where}.channel"] = "sms, whatsapp or email"
        elif step.template_name in ANSWER_TEMPLATES:
            problems[f"{where}.template_name"] = NOT_A_STEP
        elif (step.template_name, row_channel(Channel(step.channel)).value) not in templates:
            problems[f"{where}.template_name"] = (
                f"no {row_channel(Channel(step.channel))} template called {step.template_name!r}"
            )
        try:
            offset = step_offset(step)
            if step.anchor == Anchor.SALE and offset < timedelta(0):
                problems[f"{where}.offset"] = "a step cannot come before the sale"
        except ValueError as error:
            problems[f"{where}.offset"] = str(error)
        if len(step.condition) > 200:
            problems[f"{where}.condition"] = "at most 200 characters"
        elif step.condition.strip():
            try:
                parse_condition(step.condition)
            except ValueError as error:
                problems[f"{where}.condition"] = str(error)
        elif step.anchor == Anchor.SCORE:
            problems[f"{where}.condition"] = "a step after a score needs one, such as score >= 9"
    if not edit.steps:
        problems["steps"] = "a cadence needs at least one step"
    return problems


def save_cadence(
    session: Session,
    cadence: Cadence | None,
    edit: CadenceInput,
    *,
    config: Config,
    now: datetime,
    actor: str,
) -> tuple[Cadence, dict[str, int]]:
    """Create or update a cadence and re-plan what its sales still have pending; returns it
    with the counts of follow-ups re-dated, cancelled and added. The caller commits."""
    templates = {
        (name, channel.value)
        for name, channel in session.execute(
            select(MessageTemplate.name, MessageTemplate.channel).distinct()
        )
    }
    problems = check_cadence(edit, templates)
    name = edit.name.strip()
    # Looked up only when they could be stored: PostgreSQL refuses a NUL even in a WHERE.
    clash = (
        None
        if "name" in problems
        else session.scalar(select(Cadence.id).where(Cadence.name == name))
    )
    if clash is not None and (cadence is None or clash != cadence.id):
        problems["name"] = f"another cadence is called {name!r}"
    category = edit.product_category.strip() or None
    if category and "product_category" not in problems:
        other = session.scalar(select(Cadence.id).where(Cadence.product_category == category))
        if other is not None and (cadence is None or other != cadence.id):
            problems["product_category"] = f"another cadence already serves {category!r}"
    if problems:
        raise CadenceError(problems)
    if cadence is None:
        cadence = Cadence(name=name, created_at=now, updated_at=now)
        session.add(cadence)
    if cadence.is_default and not edit.active:
        raise CadenceError({"active": "the default cadence stays active: make another default"})
    if cadence.is_default and not any(
        step.active and step.anchor == Anchor.CASE for step in edit.steps
    ):
        raise CadenceError({"steps": CASE_CHECK_KEPT})
    cadence.name, cadence.product_category, cadence.updated_at = name, category, now
    was_active, cadence.active = cadence.active, edit.active
    session.flush()
    rows = {
        row.key: row
        for row in session.scalars(select(CadenceStep).where(CadenceStep.cadence_id == cadence.id))
    }
    for step in edit.steps:
        row = rows.pop(step.key, None) or CadenceStep(cadence_id=cadence.id, key=step.key)
        row.anchor, row.channel = Anchor(step.anchor), Channel(step.channel)
        row.offset_minutes = int(step_offset(step) / timedelta(minutes=1))
        row.template_name, row.active = step.template_name, step.active
        row.condition = step.condition.strip() or None
        session.add(row)
    for gone in rows.values():
        gone.active = False
    _assign_products(session, cadence, edit.product_ids)
    session.flush()
    session.expire(cadence, ["steps"])  # rows were added by key, not through the collection
    if was_active and not cadence.active:
        counts = {"redated": 0, "added": 0, "cancelled": _cancel_pending(session, cadence, now)}
    else:
        counts = replan_cadence(session, cadence.id, config=config, now=now, actor=actor)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="cadence.save",
        entity_type="cadence",
        entity_id=cadence.id,
        name=name,
        steps=[step.key for step in edit.steps],
        active=cadence.active,
    )
    return cadence, counts


def _assign_products(session: Session, cadence: Cadence, product_ids: Sequence[int]) -> None:
    """The products that follow this cadence whatever their category."""
    wanted = set(product_ids)
    for product in session.scalars(select(Product).where(Product.cadence_id == cadence.id)):
        if product.id not in wanted:
            product.cadence_id = None
    if wanted:
        for product in session.scalars(select(Product).where(Product.id.in_(wanted))):
            product.cadence_id = cadence.id


def _cancel_pending(session: Session, cadence: Cadence, now: datetime) -> int:
    steps = select(CadenceStep.id).where(CadenceStep.cadence_id == cadence.id)
    rows = session.scalars(
        select(FollowUp)
        .where(FollowUp.step_id.in_(steps), FollowUp.status.in_(PENDING), nothing_in_flight())
        .with_for_update()
    ).all()
    for row in rows:
        row.move_to(FollowUpStatus.CANCELLED, "the cadence was deactivated", now)
    return len(rows)
