"""Saved answers: what staff write often, kept once per language by owners and staff, and
rendered for one case into the reply box, where the person edits it before it goes.

They run in the templates' sandbox, with the variables a template has (`customer.name`,
`customer.first_name`, `product.name`, `business.name`) and `deadline`: when a person will
have answered, as the customer would say it. It is the case's first-answer deadline while
that is still ahead, else the same time allowance counted from now, so that an answer never
promises a moment already past.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.casework.business_hours import add_opening_hours
from scheduler.casework.cases import deadline_words
from scheduler.casework.context import about
from scheduler.casework.staff_actions import CaseworkError
from scheduler.config import Config
from scheduler.models import Case, Customer, Product, SavedAnswer
from scheduler.sending.composing import NO_PRODUCT, customer_vars
from scheduler.sending.intake import supported_locale
from scheduler.sending.sandbox import SMS_MAX_CHARS, RenderError, render_part
from scheduler.typed_text import typed_text

TITLE_MOST = 100  # saved_answers.title
BODY_MOST = SMS_MAX_CHARS  # what the reply box takes
Problem = tuple[str, str]
SAMPLE = {"es": ("Rosa Quispe", "Lavadora EcoWash 9 kg"), "en": ("Mary Smith", "EcoWash washer")}


@dataclass(frozen=True)
class AnswerDraft:
    title: str
    locale: str
    body: str


def answer_context(
    *, customer: Mapping[str, str], product: str, deadline: str, config: Config
) -> dict[str, Any]:
    """What a saved answer sees: plain values, as a template's, so the sandbox reaches no row."""
    return {
        "customer": dict(customer),
        "product": {"name": product},
        "business": {"name": config.business.name},
        "deadline": deadline,
    }


def _sample(locale: str, config: Config, now: datetime) -> dict[str, Any]:
    name, product = SAMPLE.get(locale, SAMPLE["en"])
    deadline = deadline_words(now + timedelta(hours=4), now, config.business.tz, locale)
    customer = customer_vars(Customer(name=name))
    return answer_context(customer=customer, product=product, deadline=deadline, config=config)


def check_answer(
    title: str | None, locale: str | None, body: str | None, *, config: Config, now: datetime
) -> AnswerDraft | list[Problem]:
    """The answer, or every problem with it by field; its text must render for a made-up
    customer (a misspelt variable is refused here, not when a person inserts it)."""
    problems: list[Problem] = []
    checked: dict[str, str] = {}
    checks: dict[str, Callable[[], str]] = {
        "title": lambda: typed_text(title, empty="is required", what="a title", most=TITLE_MOST),
        "locale": lambda: supported_locale((locale or "").strip()),
        "body": lambda: typed_text(body, empty="is required", what="an answer", most=BODY_MOST),
    }
    for field, check in checks.items():
        try:
            checked[field] = check()
        except ValueError as error:
            problems.append((field, str(error)))
    if "body" in checked:
        try:
            render_part(
                checked["body"],
                _sample(checked.get("locale", config.business.locale), config, now),
                escaped=False,
                label="the answer",
            )
        except RenderError as error:
            problems.append(("body", str(error)))
    if problems:
        return problems
    return AnswerDraft(checked["title"], checked["locale"], checked["body"])


def save_answer(
    session: Session,
    draft: AnswerDraft,
    *,
    answer: SavedAnswer | None,
    user_id: int,
    now: datetime,
    actor: str,
) -> SavedAnswer:
    """Add the answer, or change `answer`; audited. CaseworkError when its language already
    has an answer of that title."""
    row = answer or SavedAnswer()
    session.flush()  # what is pending goes first: the savepoint holds this change alone
    try:
        with session.begin_nested():  # a taken title undoes this change, not the request's
            row.title, row.locale, row.body = draft.title, draft.locale, draft.body
            row.updated_by_id, row.updated_at = user_id, now
            session.add(row)
            session.flush()
    except IntegrityError:
        raise CaseworkError("an answer in this language already has this title") from None
    audit.record(
        session,
        at=now,
        actor=actor,
        action="answer.edit" if answer else "answer.add",
        entity_type="saved_answer",
        entity_id=row.id,
        title=row.title,
        locale=row.locale,
    )
    return row


def delete_answer(session: Session, answer: SavedAnswer, *, now: datetime, actor: str) -> None:
    audit.record(
        session,
        at=now,
        actor=actor,
        action="answer.delete",
        entity_type="saved_answer",
        entity_id=answer.id,
        title=answer.title,
        locale=answer.locale,
    )
    session.delete(answer)


def answers_for(session: Session, locale: str) -> list[SavedAnswer]:
    """Every saved answer, those in `locale` (the customer's) first, each language by title."""
    every = session.scalars(select(SavedAnswer).order_by(SavedAnswer.title, SavedAnswer.id))
    return sorted(every, key=lambda answer: answer.locale != locale)


def answer_deadline(case: Case, config: Config, now: datetime) -> datetime:
    """The case's first-answer deadline while it is ahead; else the same allowance from now."""
    if case.first_responded_at is None and case.first_response_due_at > now:
        return case.first_response_due_at
    cases = config.cases
    return add_opening_hours(
        now, cases.first_response_hours, cases.opening_hours, config.business.tz
    )


def render_answer(
    session: Session,
    answer: SavedAnswer,
    case: Case,
    customer: Customer,
    *,
    config: Config,
    now: datetime,
) -> str:
    """The answer written for this case's customer, in the answer's language; CaseworkError
    when it cannot be (an answer saved before a variable was renamed, say)."""
    sale = about(session, case)
    product = session.get(Product, sale.product_id) if sale and sale.product_id else None
    tz = ZoneInfo(customer.timezone or config.business.timezone)
    deadline = deadline_words(answer_deadline(case, config, now), now, tz, answer.locale)
    context = answer_context(
        customer=customer_vars(customer),
        product=product.name if product else NO_PRODUCT.get(answer.locale, NO_PRODUCT["en"]),
        deadline=deadline,
        config=config,
    )
    try:
        return render_part(answer.body, context, escaped=False, label=f"answer {answer.title!r}")
    except RenderError as error:
        raise CaseworkError(str(error)) from None
