"""The audit log, newest first: who changed what, and when; filtered by who, what and when (in
the URL), a page at a time."""

from __future__ import annotations

import json

from flask import render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from scheduler import audit
from scheduler.figures.period import PeriodError, days_between
from scheduler.models import AuditEntry, User
from scheduler.paging import Cursor, CursorError, read_id
from scheduler.typed_text import unfit_character
from web.admin import blueprint
from web.database import db_session, services
from web.domain_texts import NAMES, translated

FIELDS = ("who", "action", "type", "entity", "from", "to")


class UnreadableLog(ValueError):
    """A filter of the log that cannot be read: the message names the field."""


def _filter(
    args: dict[str, str], people: dict[str, str]
) -> tuple[audit.AuditFilter, Cursor | None]:
    who = args.get("who") or None
    if who is not None and who not in people and who not in audit.MACHINES:
        raise UnreadableLog(_("Who: nobody the log knows by that name."))
    action = args.get("action", "")
    if len(action) > 64 or unfit_character(action):
        raise UnreadableLog(_("What: an action is at most 64 plain characters."))
    kind = args.get("type") or None
    if kind is not None and kind not in NAMES["AuditEntity"]:
        raise UnreadableLog(_("About: choose one of the list."))
    entity = None
    if args.get("entity"):
        try:
            entity = read_id(args["entity"])
        except ValueError:
            raise UnreadableLog(_("Number: a whole number, such as 42.")) from None
    try:
        days = (
            days_between(args.get("from"), args.get("to"), tz=services().config.business.tz)
            if args.get("from") or args.get("to")
            else None
        )
    except PeriodError as problem:
        label = _("From") if problem.field == "from" else _("To")
        raise UnreadableLog(f"{label}: {translated(problem)}") from None
    try:
        after = Cursor.read(args["after"]) if args.get("after") else None
    except CursorError:
        raise UnreadableLog(_("Page: this link is not a page of the log.")) from None
    wanted = audit.AuditFilter(who, action, kind, entity, days)
    return wanted, after


@blueprint.get("/audit")
def audit_log() -> str | tuple[str, int]:
    session = db_session()
    users = session.scalars(select(User).order_by(User.email)).all()
    people = {audit.by_user(user.id): user.email for user in users}
    given = {field: request.args.get(field, "").strip() for field in FIELDS}
    problem, entries, following, after = None, list[AuditEntry](), None, None
    try:
        wanted, after = _filter(given | {"after": request.args.get("after", "")}, people)
        entries, following = audit.entries(session, wanted, after=after)
    except UnreadableLog as unreadable:
        problem = str(unreadable)
    page = render_template(
        "admin/audit.html",
        entries=entries,
        people=people,
        machines=audit.MACHINES,
        kinds=list(NAMES["AuditEntity"]),
        given=given,
        query={field: value for field, value in given.items() if value},
        following=following,
        after=after,
        problem=problem,
        details=lambda entry: json.dumps(entry.details, ensure_ascii=False, default=str),
    )
    return (page, 400) if problem else page
