"""The staff inbox: open cases by deadline, replies nobody could match, and each case's page
with the conversation, the reply box, notes, remedies and the resolution."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_date, ngettext
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse
from wtforms import (
    DecimalField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Optional

from scheduler.casework.bulk import BulkAction, on_cases
from scheduler.casework.cases import resolve_case
from scheduler.casework.context import case_context
from scheduler.casework.inbox import COUNT_MOST, open_cases, tab_counts
from scheduler.casework.notices import unsent_notices
from scheduler.casework.saved_answers import answers_for, render_answer
from scheduler.casework.staff_actions import (
    CaseworkError,
    RemedyKind,
    RemedyRequest,
    add_note,
    assign,
    decide_remedy,
    record_remedy,
    reply_to_customer,
    withdraw_remedy,
)
from scheduler.clock import utcnow
from scheduler.figures.period import period_from
from scheduler.figures.staff import StaffFigures, staff_figures
from scheduler.lifecycle import Channel, Direction, RemedyStatus
from scheduler.listening.unmatched import unmatched_replies
from scheduler.models import Case, Customer, Message, Remedy, SavedAnswer, User
from scheduler.paging import read_id
from scheduler.sending.composing import locale_of
from scheduler.sending.whatsapp import answers_until, in_window, last_whatsapp_from
from web.auth import me, my_name, owner_only
from web.database import db_session, get_or_404, services
from web.domain_texts import translated
from web.forms import channels_of, named_options, options
from web.inbox_filter import FIELDS, KINDS, VIEW, UnreadableFilter, read_filter

blueprint = Blueprint("inbox", __name__)
PAGE = 200


class ReplyForm(FlaskForm):  # type: ignore[misc]
    channel = RadioField("channel", choices=named_options(Channel), default="sms")
    subject = StringField("subject")
    body = TextAreaField("body")


class NoteForm(FlaskForm):  # type: ignore[misc]
    body = TextAreaField("note")


class AssignForm(FlaskForm):  # type: ignore[misc]
    assignee = SelectField("assignee", choices=[])


class RemedyForm(FlaskForm):  # type: ignore[misc]
    kind = SelectField("kind", choices=named_options(RemedyKind))
    value = DecimalField("value", places=2, validators=[Optional()])
    description = StringField("description")


class ResolveForm(FlaskForm):  # type: ignore[misc]
    outcome = TextAreaField("outcome")


class DecideForm(FlaskForm):  # type: ignore[misc]
    decision = RadioField(
        "decision", choices=options([("approve", "approve"), ("decline", "decline")])
    )


def time_left(due: datetime, now: datetime) -> tuple[str, bool]:
    """The deadline in words a person reads at a glance, and whether it has passed."""
    late = now > due
    minutes = int(abs(due - now) / timedelta(minutes=1))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours) + [f"{minutes} min"]
    span = " ".join(parts[:2])
    if late:
        return _("overdue by %(span)s", span=span), True
    return _("%(span)s left", span=span), False


@blueprint.get("/inbox")
def index() -> str | tuple[str, int]:
    """Open cases, the nearest deadline first, filtered as the URL says, a page at a time; or,
    in their own tab, unmatched replies. A filter that cannot be read is a 400 that says
    which field, with the form as it was filled."""
    session, now = db_session(), utcnow()
    tab = request.args.get("tab", "open")
    counts = tab_counts(session, me=me().id)
    if tab == "unmatched":
        unmatched = unmatched_replies(session, PAGE)
        return render_template("inbox/unmatched.html", tab=tab, unmatched=unmatched, counts=counts)
    tz = services().config.business.tz
    problem, asked, page = None, None, None
    try:
        asked = read_filter(request.args, session, tz=tz, mine=tab == "mine")
    except UnreadableFilter as unreadable:
        problem = str(unreadable)
    if asked is not None:
        page = open_cases(session, asked.filter, me=me().id, now=now, after=asked.after)
    rows = page.rows if page else []
    latest = _latest_inbound([case.id for case, _customer in rows])
    users = {user.id: user for user in session.scalars(select(User))}
    requested = session.scalars(
        select(Remedy).where(Remedy.status == RemedyStatus.REQUESTED).order_by(Remedy.created_at)
    ).all()
    shown = render_template(
        "inbox/index.html",
        tab=tab,
        counts=counts,
        page=page,
        rows=rows,
        asked=asked,
        given={field: request.args.get(field, "") for field in FIELDS},
        kinds=KINDS,
        problem=problem,
        latest=latest,
        users=users,
        now=now,
        time_left=time_left,
        requested=requested,
        mine=_my_figures(session, now),
        count_most=COUNT_MOST,
    )
    return (shown, 400) if problem else shown


@blueprint.get("/inbox/waiting.json")
def waiting() -> dict[str, int]:
    """How many cases wait, for the inbox's title and its notice of new cases (polled)."""
    counts = tab_counts(db_session(), me=me().id)
    return {
        "open": counts.open,
        "waiting": counts.waiting,
        "mine": counts.mine,
        "newest": counts.newest,
    }


def _bulk_done(action: BulkAction, count: int) -> str:
    if action is BulkAction.ASSIGN:
        return str(ngettext("%(num)d case assigned.", "%(num)d cases assigned.", count))
    if action is BulkAction.RESOLVE:
        return str(ngettext("%(num)d case resolved.", "%(num)d cases resolved.", count))
    return str(ngettext("Note added to %(num)d case.", "Note added to %(num)d cases.", count))


@blueprint.post("/inbox/bulk")
def bulk() -> BaseResponse:
    """One action on the cases ticked in the list, each case changed and recorded on its own;
    back to the same view of the inbox, with what was done and what each refusal said."""
    session, form = db_session(), request.form
    view = urlencode(
        [(key, value) for key, value in parse_qsl(form.get("view", "")[:2_000]) if key in VIEW]
    )
    back = redirect(url_for("inbox.index") + (f"?{view}" if view else ""))
    try:
        action = BulkAction(form.get("action", ""))
        ids = [read_id(value) for value in form.getlist("case")]
    except ValueError:
        flash(_("Choose the cases and what to do with them."), "error")
        return back
    assignee = None
    if action is BulkAction.ASSIGN and form.get("assignee"):
        try:
            assignee = session.get(User, read_id(form["assignee"]))
        except ValueError:
            assignee = None
        if assignee is None:
            flash(_("Choose somebody."), "error")
            return back
    try:
        outcome = on_cases(
            session,
            ids,
            action,
            user=me(),
            assignee=assignee,
            text=form.get("text", ""),
            config=services().config,
            now=utcnow(),
        )
    except CaseworkError as error:
        session.rollback()
        flash(translated(error), "error")
        return back
    session.commit()
    if outcome.done:
        flash(_bulk_done(action, len(outcome.done)))
    for case_id, why in outcome.refused.items():
        flash(_("Case %(id)d: %(why)s", id=case_id, why=translated(why)), "error")
    return back


MY_DAYS = 30  # the period of a person's own figures on their inbox


def _my_figures(session: Session, now: datetime) -> StaffFigures:
    config = services().config
    tz = config.business.tz
    period = period_from(None, None, tz=tz, today=now.astimezone(tz).date(), default_days=MY_DAYS)
    return staff_figures(session, me().id, period, now=now, opening=config.cases.opening_hours)


def _latest_inbound(case_ids: list[int]) -> dict[int, Message]:
    latest: dict[int, Message] = {}
    for message in db_session().scalars(
        select(Message)
        .where(Message.case_id.in_(case_ids), Message.direction == Direction.INBOUND)
        .order_by(Message.created_at, Message.id)
    ):
        if message.case_id is not None:
            latest[message.case_id] = message
    return latest


def _case(case_id: int, *, lock: bool = False) -> tuple[Session, Case, Customer]:
    """The case and its customer; `lock` for a change, so that two people (or a double click,
    or the worker joining a new reply) take turns on it."""
    session = db_session()
    case = session.get(Case, case_id, with_for_update=lock)
    customer = session.get(Customer, case.customer_id) if case else None
    if case is None or customer is None:
        abort(404)
    return session, case, customer


def _conversation(session: Session, case: Case, customer: Customer) -> list[Message]:
    """The case's messages and what the customer exchanged with us shortly before it opened."""
    since = case.opened_at - timedelta(days=30)
    return list(
        session.scalars(
            select(Message)
            .where(
                Message.customer_id == customer.id,
                or_(Message.case_id == case.id, Message.created_at >= since),
            )
            .order_by(Message.created_at, Message.id)
        )
    )


def _answer_on(
    conversation: list[Message], choices: list[SelectChoice], customer: Customer, *, open_: bool
) -> str:
    """Staff answer where the customer last wrote from, if a reply may go there (WhatsApp only
    while its window is `open_`)."""
    offered = {choice.value for choice in choices}
    if not open_:
        offered.discard(Channel.WHATSAPP.value)
    wrote = [m.channel.value for m in conversation if m.direction is Direction.INBOUND]
    if wrote and wrote[-1] in offered:
        return wrote[-1]
    return "sms" if customer.phone else "email"


def _assign_choices(session: Session) -> list[SelectChoice]:
    active = session.scalars(select(User).where(User.active).order_by(User.email))
    return options([("", _("nobody")), *((str(user.id), user.email) for user in active)])


@blueprint.get("/cases/<int:case_id>")
def case_page(case_id: int) -> str:
    return _case_page(*_case(case_id))


def _case_page(
    session: Session,
    case: Case,
    customer: Customer,
    *,
    resolve: ResolveForm | None = None,
    inserted: str | None = None,
) -> str:
    config = services().config
    conversation = _conversation(session, case, customer)
    address = customer.address(Channel.WHATSAPP)
    last_whatsapp = last_whatsapp_from(session, [customer]).get(address) if address else None
    open_ = in_window(last_whatsapp, utcnow())
    choices = channels_of(customer, whatsapp=config.whatsapp.on)  # no box for a missing address
    reply = ReplyForm(channel=_answer_on(conversation, choices, customer, open_=open_))
    reply.channel.choices = choices
    reply.subject.data = reply.subject.data or config.business.name
    if inserted is not None:  # after what the person had typed, never over it
        typed = (reply.body.data or "").rstrip()
        reply.body.data = f"{typed}\n\n{inserted}" if typed else inserted
    assign_form = AssignForm(assignee=str(case.assignee_id or ""))
    assign_form.assignee.choices = _assign_choices(session)
    return render_template(
        "inbox/case.html",
        case=case,
        customer=customer,
        conversation=conversation,
        context=case_context(session, case),
        whatsapp_closes=answers_until(last_whatsapp) if config.whatsapp.on else None,
        unsent_notices=unsent_notices(session, case),
        users={user.id: user for user in session.scalars(select(User))},
        reply=reply,
        answers=answers_for(session, locale_of(customer, config)),
        note=NoteForm(),
        assign_form=assign_form,
        remedy=RemedyForm(),
        resolve=resolve or ResolveForm(),
        decide=DecideForm(),
        withdraw=FlaskForm(),
        now=utcnow(),
        time_left=time_left,
        limits=services().config.remedies,
    )


def _back(case: Case) -> BaseResponse:
    return redirect(url_for("inbox.case_page", case_id=case.id))


def _done(session: Session, case: Case, message: str) -> BaseResponse:
    session.commit()
    flash(message)
    return _back(case)


def _refused(case: Case, error: CaseworkError | str) -> BaseResponse:
    flash(translated(error), "error")
    return _back(case)


@blueprint.post("/cases/<int:case_id>/reply")
def reply(case_id: int) -> BaseResponse:
    session, case, customer = _case(case_id, lock=True)
    form = ReplyForm()
    if not form.validate_on_submit():
        return _refused(case, _("Choose a channel: SMS, WhatsApp or email."))
    if form.channel.data == Channel.WHATSAPP and not services().config.whatsapp.on:
        return _refused(case, _("WhatsApp is off: answer by SMS or email."))
    try:
        reply_to_customer(
            session,
            case,
            customer,
            user=me(),
            channel=Channel(form.channel.data),
            body=form.body.data or "",
            subject=form.subject.data,
            now=utcnow(),
        )
    except CaseworkError as error:
        return _refused(case, error)
    return _done(session, case, _("Reply queued: it goes out within seconds."))


@blueprint.post("/cases/<int:case_id>/draft")
def draft(case_id: int) -> str | tuple[str, int]:
    """The case's page again, the chosen saved answer written for this customer and added to
    the reply box after what was typed there (kept, as the channel and subject are); nothing
    is sent until the person sends it."""
    session, case, customer = _case(case_id)
    try:
        answer = session.get(SavedAnswer, read_id(request.form.get("answer", "")))
    except ValueError:
        answer = None
    if answer is None:
        flash(_("Choose a saved answer to insert."), "error")
        return _case_page(session, case, customer), 422
    try:
        text = render_answer(
            session, answer, case, customer, config=services().config, now=utcnow()
        )
    except CaseworkError as error:
        flash(translated(error), "error")
        return _case_page(session, case, customer), 422
    return _case_page(session, case, customer, inserted=text)


@blueprint.post("/cases/<int:case_id>/assign")
def assign_case(case_id: int) -> BaseResponse:
    session, case, _customer = _case(case_id, lock=True)
    form = AssignForm()
    form.assignee.choices = _assign_choices(session)
    if not form.validate_on_submit():
        return _refused(case, _("Choose somebody."))
    chosen = form.assignee.data
    if request.form.get("to_me"):  # the "Assign to me" button, whatever the list shows
        user: User | None = me()
    else:
        user = session.get(User, int(chosen)) if chosen else None
    try:
        assign(session, case, user, by=me(), now=utcnow())
    except CaseworkError as error:
        return _refused(case, error)
    return _done(session, case, _("Assigned."))


@blueprint.post("/cases/<int:case_id>/notes")
def note(case_id: int) -> BaseResponse:
    session, case, _customer = _case(case_id)
    form = NoteForm()
    try:
        add_note(session, case, author=me(), body=form.body.data or "", now=utcnow())
    except CaseworkError as error:
        return _refused(case, error)
    return _done(session, case, _("Note added."))


@blueprint.post("/cases/<int:case_id>/remedies")
def remedy(case_id: int) -> BaseResponse:
    session, case, _customer = _case(case_id, lock=True)
    form = RemedyForm()
    if not form.validate_on_submit():
        problems = [f"{name}: {'; '.join(errors)}" for name, errors in form.errors.items()]
        return _refused(case, "; ".join(problems))
    request_ = RemedyRequest(
        RemedyKind(form.kind.data),
        form.description.data or "",
        Decimal(form.value.data) if form.value.data is not None else None,
    )
    try:
        given = record_remedy(
            session, case, request_, user=me(), config=services().config, now=utcnow()
        )
    except CaseworkError as error:
        return _refused(case, error)
    if given.status is RemedyStatus.REQUESTED:
        return _done(session, case, _("Above your limit: the owner has been asked to approve."))
    return _done(session, case, _("Remedy recorded."))


@blueprint.post("/remedies/<int:remedy_id>/decide")
@owner_only
def decide(remedy_id: int) -> BaseResponse:
    session, remedy_row = db_session(), get_or_404(Remedy, remedy_id, lock=True)
    case = session.get_one(Case, remedy_row.case_id)
    form = DecideForm()
    if not form.validate_on_submit() or form.decision.data not in ("approve", "decline"):
        return _refused(case, _("Approve or decline."))
    try:
        approve = form.decision.data == "approve"
        decide_remedy(session, remedy_row, owner=me(), approve=approve, now=utcnow())
    except CaseworkError as error:
        return _refused(case, error)
    return _done(session, case, _("Approved.") if approve else _("Declined."))


@blueprint.post("/remedies/<int:remedy_id>/withdraw")
def withdraw(remedy_id: int) -> BaseResponse:
    """The CSRF token is checked before any view; the remedy is locked against the owner's
    answer arriving at the same moment."""
    session, remedy_row = db_session(), get_or_404(Remedy, remedy_id, lock=True)
    case = session.get_one(Case, remedy_row.case_id)
    try:
        withdraw_remedy(session, remedy_row, user=me(), now=utcnow())
    except CaseworkError as error:
        return _refused(case, error)
    return _done(session, case, _("Request withdrawn."))


@blueprint.post("/cases/<int:case_id>/resolve")
def resolve(case_id: int) -> BaseResponse | tuple[str, int]:
    session, case, customer = _case(case_id, lock=True)
    form = ResolveForm()
    try:
        result = resolve_case(
            session,
            case,
            outcome=form.outcome.data or "",
            now=utcnow(),
            actor=my_name(),
            config=services().config,
        )
    except CaseworkError as error:
        session.rollback()  # the page below reads the case as it is, with what was typed kept
        flash(translated(error), "error")
        return _case_page(session, case, customer, resolve=form), 422
    message = _("Resolved. %(count)d follow-ups resumed.", count=result.resumed)
    if result.check_due is not None:
        message += " " + _(
            "The customer will be asked on %(day)s whether it was solved.",
            day=format_date(result.check_due),
        )
    else:
        message += " " + _(
            "Nobody will ask whether it was solved: %(why)s.", why=translated(result.no_check or "")
        )
    return _done(session, case, message)
