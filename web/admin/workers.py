"""Whether the workers are sending: each one's last pass, the backlog, and the warning every
owner's page shows when nobody is sending (`scheduler.heartbeats`)."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from scheduler import heartbeats
from scheduler.clock import utcnow
from web.admin import blueprint
from web.database import db_session


@blueprint.get("/workers")
def workers() -> str:
    session, now = db_session(), utcnow()
    return render_template(
        "admin/workers.html",
        workers=heartbeats.workers(session, now=now),
        health=heartbeats.health(session, now=now),
        backlog=heartbeats.backlog(session, now=now),
        backlog_most=heartbeats.BACKLOG_MOST,
        now=now,
    )


@blueprint.app_context_processor
def _worker_health() -> dict[str, object]:
    """`worker_health()` for the layout: read only on an owner's page, which warns when no
    worker is sending."""

    def read() -> heartbeats.Health | None:
        if not (current_user.is_authenticated and current_user.is_owner):
            return None
        return heartbeats.health(db_session(), now=utcnow())

    return {"worker_health": read}
