"""Whether the workers are sending: each one's last pass, the backlog, and the warning every
owner's page shows when nobody is sending (`scheduler.heartbeats`)."""

from __future__ import annotations

from flask import g, render_template
from flask_login import current_user

from scheduler import heartbeats
from scheduler.clock import utcnow
from web.admin import blueprint
from web.database import db_session


def _health() -> heartbeats.Health:
    """Read once a request: the page and the layout's warning both show it."""
    if "worker_health" not in g:
        g.worker_health = heartbeats.health(db_session(), now=utcnow())
    found: heartbeats.Health = g.worker_health
    return found


@blueprint.get("/workers")
def workers() -> str:
    health = _health()
    return render_template(
        "admin/workers.html",
        workers=health.workers,
        health=health,
        backlog=heartbeats.backlog(db_session(), now=health.now),
        backlog_most=heartbeats.BACKLOG_MOST,
        now=health.now,
    )


@blueprint.app_context_processor
def _worker_health() -> dict[str, object]:
    """`worker_health()` for the layout: read only on an owner's page, which warns when no
    worker is sending."""

    def read() -> heartbeats.Health | None:
        if not (current_user.is_authenticated and current_user.is_owner):
            return None
        return _health()

    return {"worker_health": read}
