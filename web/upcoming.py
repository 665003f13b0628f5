"""What goes out next: the follow-ups waiting to go, filtered in the URL, with pause, resume and
cancel for those ticked (each recorded); owners pause and resume a cadence or the whole
business (a holiday, a recall) without touching the plan."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from scheduler import audit
from scheduler.clock import utcnow
from scheduler.lifecycle import Channel
from scheduler.models import Cadence, CadenceStep, Product, User
from scheduler.paging import read_id
from scheduler.sending.pauses import PauseError, change_follow_ups, open_pauses, pause, resume
from scheduler.sending.upcoming import COUNT_MOST, DAYS, DAYS_MOST, UpcomingFilter, upcoming
from scheduler.typed_text import unfit_character
from web.auth import my_name, owner_only
from web.database import db_session, get_or_404
from web.domain_texts import translated
from web.list_filters import UnreadableFilter, page_start

blueprint = Blueprint("upcoming", __name__)
FIELDS = ("days", "cadence", "step", "channel", "product", "paused")
VIEW = (*FIELDS, "after")  # what a change keeps of the view it was made from


def _number(text: str, problem: str) -> int:
    try:
        return read_id(text)
    except ValueError:
        raise UnreadableFilter(problem) from None


def _filter(args: dict[str, str]) -> UpcomingFilter:
    days = DAYS
    if args["days"]:
        text = args["days"]
        if not (text.isascii() and text.isdigit() and len(text) <= 3) or not (
            1 <= int(text) <= DAYS_MOST
        ):
            raise UnreadableFilter(_("Days: a whole number from 1 to %(most)d.", most=DAYS_MOST))
        days = int(args["days"])
    cadence = (
        _number(args["cadence"], _("Cadence: choose one of the list.")) if args["cadence"] else None
    )
    step = _number(args["step"], _("Step: choose one of the list.")) if args["step"] else None
    channel = None
    if args["channel"]:
        if args["channel"] not in set(Channel):
            raise UnreadableFilter(_("Channel: SMS, WhatsApp or email."))
        channel = Channel(args["channel"])
    product = None
    if args["product"]:
        if len(args["product"]) > 100 or unfit_character(args["product"]):
            raise UnreadableFilter(_("Product: no product has this SKU."))
        product = db_session().scalar(select(Product.id).where(Product.sku == args["product"]))
        if product is None:
            raise UnreadableFilter(_("Product: no product has this SKU."))
    if args["paused"] not in ("", "yes", "no"):
        raise UnreadableFilter(_("Paused: yes or no."))
    paused = {"": None, "yes": True, "no": False}[args["paused"]]
    return UpcomingFilter(days, cadence, step, channel, product, paused)


@blueprint.get("/upcoming")
def index() -> str | tuple[str, int]:
    """The follow-ups waiting to go, the soonest first; a filter that cannot be read is a 400
    that names the field, with the form as filled."""
    session, now = db_session(), utcnow()
    given = {field: request.args.get(field, "").strip() for field in FIELDS}
    problem, page, after = None, None, None
    try:
        wanted = _filter(given)
        after = page_start(_("Page: this link is not a page of this list."))
        page = upcoming(session, wanted, now=now, after=after)
    except UnreadableFilter as unreadable:
        problem = str(unreadable)
    query = {field: value for field, value in given.items() if value}
    shown = render_template(
        "upcoming.html",
        page=page,
        given=given,
        query=query,
        view=urlencode({**query, **({"after": str(after)} if after else {})}),
        after=after,
        problem=problem,
        days=DAYS,
        cadences=session.scalars(select(Cadence).order_by(Cadence.name)).all(),
        steps=session.execute(
            select(CadenceStep, Cadence.name)
            .join(Cadence, Cadence.id == CadenceStep.cadence_id)
            .order_by(Cadence.name, CadenceStep.offset_minutes)
        ).all(),
        pauses=open_pauses(session),
        people={audit.by_user(user.id): user.email for user in session.scalars(select(User))},
        form=FlaskForm(),
        count_most=COUNT_MOST,
    )
    return (shown, 400) if problem else shown


def _back() -> BaseResponse:
    view = urlencode(
        [
            (key, value)
            for key, value in parse_qsl(request.form.get("view", "")[:2_000])
            if key in VIEW
        ]
    )
    return redirect(url_for("upcoming.index") + (f"?{view}" if view else ""))


@blueprint.post("/upcoming/change")
def change() -> BaseResponse:
    """Pause, resume or cancel the follow-ups ticked, each changed and recorded on its own;
    back to the same view, with what was done and why any other was not."""
    session, form = db_session(), request.form
    try:
        ids = [read_id(value) for value in form.getlist("follow_up")]
    except ValueError:
        ids = []
    action = form.get("action", "")
    try:
        changed, refused = change_follow_ups(
            session, ids, action, form.get("reason"), now=utcnow(), actor=my_name()
        )
    except PauseError as error:
        session.rollback()
        flash(translated(error), "error")
        return _back()
    session.commit()
    if changed:
        flash(_done(action, changed))
    for follow_up_id, why in refused.items():
        flash(_("Follow-up %(id)d: %(why)s", id=follow_up_id, why=translated(why)), "error")
    return _back()


def _done(action: str, count: int) -> str:
    if action == "pause":
        return str(ngettext("%(num)d follow-up paused.", "%(num)d follow-ups paused.", count))
    if action == "resume":
        return str(ngettext("%(num)d follow-up resumed.", "%(num)d follow-ups resumed.", count))
    return str(ngettext("%(num)d follow-up cancelled.", "%(num)d follow-ups cancelled.", count))


def _cadence() -> Cadence | None:
    text = request.form.get("cadence", "")
    if not text:
        return None
    try:
        return get_or_404(Cadence, read_id(text))
    except ValueError:
        abort(404)


@blueprint.post("/upcoming/pause")
@owner_only
def pause_sending() -> BaseResponse:
    """Hold back the business's follow-ups, or one cadence's, with why."""
    session, cadence = db_session(), _cadence()
    try:
        pause(session, cadence, request.form.get("reason", ""), now=utcnow(), actor=my_name())
    except PauseError as error:
        session.rollback()
        flash(translated(error), "error")
        return _back()
    session.commit()
    if cadence is None:
        flash(_("Every follow-up is paused until you resume."))
    else:
        flash(_("The follow-ups of %(name)s are paused until you resume.", name=cadence.name))
    return _back()


@blueprint.post("/upcoming/resume")
@owner_only
def resume_sending() -> BaseResponse:
    session, cadence = db_session(), _cadence()
    try:
        resume(session, cadence, now=utcnow(), actor=my_name())
    except PauseError as error:
        session.rollback()
        flash(translated(error), "error")
        return _back()
    session.commit()
    flash(_("Resumed: what is due goes out, unless too late to still make sense."))
    return _back()
