"""The audit log, newest first: who changed what, and when."""

from __future__ import annotations

import json

from flask import render_template, request
from sqlalchemy import select

from scheduler import audit
from scheduler.models import AuditEntry, User
from web.admin import blueprint
from web.database import db_session

PAGE = 200


@blueprint.get("/audit")
def audit_log() -> str:
    session = db_session()
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(PAGE)
    action = request.args.get("action", "").strip()
    if action:
        query = query.where(AuditEntry.action.startswith(action))
    entries = session.scalars(query).all()
    people = {audit.by_user(user.id): user.email for user in session.scalars(select(User))}
    return render_template(
        "admin/audit.html",
        entries=entries,
        people=people,
        action=action,
        details=lambda entry: json.dumps(entry.details, ensure_ascii=False, default=str),
    )
